//! Searches that arrive together share the detector's and the embedder's batches. Each time a
//! worker is free, the searches waiting (up to `--batch`, after a short window when only one
//! waits) go through detection as one batch and through the embedder as one batch of all their
//! faces, and each is then answered on its own, with the same decision as `FaceDb::search`.
//! The embedder's cost per face falls with the batch (see the README's speed table); on two
//! CPU cores, whose networks use both cores already, sharing measured no gain (the README's
//! `fdb serve` figures), so `--batch` is 1 unless asked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::errors::{ApiError, ApiResult};
use super::pool::{Pool, Ticket};
use super::uploads::Upload;
use crate::engine::{Alignment, FaceChoice, FoundFace, Photo};
use crate::facedb::{FaceDb, SearchResult};
use crate::FaceEmbedding;

/// How long a lone search waits for company before it runs alone.
const WINDOW: Duration = Duration::from_millis(3);

/// One search waiting for its batch.
struct Job {
    upload: Upload,
    k: usize,
    all_faces: bool,
    /// Its place in the queue, given back when the batch starts.
    ticket: Ticket,
    reply: oneshot::Sender<ApiResult<Vec<SearchResult>>>,
}

/// Hands searches to the batching loop.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// Batches run and the searches in them, for `/metrics`.
#[derive(Default)]
pub struct Counts {
    /// Batches run.
    pub batches: AtomicU64,
    /// Searches answered in them.
    pub searches: AtomicU64,
}

impl Batcher {
    /// Starts the loop that gathers searches into batches of at most `max` and runs each on a
    /// worker of `pool`. The channel needs no bound of its own: each job holds a place in the
    /// pool's bounded queue.
    pub fn start(db: Arc<FaceDb>, pool: Arc<Pool>, max: usize) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let max = max.max(1);
        let counts = Arc::new(Counts::default());
        let counted = counts.clone();
        tokio::spawn(async move {
            loop {
                // While the workers are busy, searches pile up in the channel and go together.
                let Some(first) = rx.recv().await else { return };
                let Ok(worker) = pool.worker().await else { return };
                let mut jobs = vec![first];
                while jobs.len() < max {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) if jobs.len() == 1 => match tokio::time::timeout(WINDOW, rx.recv()).await {
                            Ok(Some(job)) => jobs.push(job),
                            _ => break,
                        },
                        Err(_) => break,
                    }
                }
                counted.batches.fetch_add(1, Ordering::Relaxed);
                counted.searches.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                let db = db.clone();
                tokio::spawn(worker.run(move || answer_batch(&db, jobs)));
            }
        });
        Self { jobs: tx, counts }
    }

    /// Batches run and the searches in them so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.counts.batches.load(Ordering::Relaxed), self.counts.searches.load(Ordering::Relaxed))
    }

    /// The answers for each face of `upload` (the central one, or all with `all_faces`).
    pub async fn search(&self, ticket: Ticket, upload: Upload, k: usize, all_faces: bool) -> ApiResult<Vec<SearchResult>> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { upload, k, all_faces, ticket, reply }).map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
}

/// Runs a batch on this (blocking) thread and sends each search its answer.
fn answer_batch(db: &FaceDb, jobs: Vec<Job>) {
    let (replies, jobs): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .map(|Job { upload, k, all_faces, ticket, reply }| {
            drop(ticket); // running now, no longer waiting
            (reply, (upload, k, all_faces))
        })
        .collect();
    for (reply, answer) in replies.into_iter().zip(search_many(db, &jobs)) {
        let _ = reply.send(answer); // a request that timed out no longer listens
    }
}

/// `FaceDb::search_faces` for many photos at once: one detector pass per face choice, one
/// embedder pass for all their faces.
fn search_many(db: &FaceDb, jobs: &[(Upload, usize, bool)]) -> Vec<ApiResult<Vec<SearchResult>>> {
    let mut answers: Vec<Option<ApiResult<Vec<SearchResult>>>> = vec![None; jobs.len()];
    let photos: Vec<Option<Photo>> = jobs
        .iter()
        .enumerate()
        .map(|(i, (upload, _, _))| match upload.input().decode() {
            Ok(photo) => Some(photo),
            Err(e) => {
                answers[i] = Some(Err(upload.error(e)));
                None
            }
        })
        .collect();
    if let Err(e) = embed_and_answer(db, jobs, &photos, &mut answers) {
        let e = ApiError::from(e);
        answers.iter_mut().filter(|a| a.is_none()).for_each(|a| *a = Some(Err(e.clone())));
    }
    answers.into_iter().map(|a| a.expect("every search is answered")).collect()
}

/// Detection, embedding and the answers; an error here (the networks failed) is every
/// unanswered search's.
fn embed_and_answer(
    db: &FaceDb,
    jobs: &[(Upload, usize, bool)],
    photos: &[Option<Photo>],
    answers: &mut [Option<ApiResult<Vec<SearchResult>>>],
) -> crate::Result<()> {
    let engine = db.engine()?;
    let whole_image = db.options().whole_image;
    let mut faces: Vec<(usize, Vec<FoundFace>)> = Vec::new();
    for all_faces in [false, true] {
        let group: Vec<usize> = (0..jobs.len()).filter(|&i| photos[i].is_some() && jobs[i].2 == all_faces).collect();
        if group.is_empty() {
            continue;
        }
        let choice = if all_faces { FaceChoice::All } else { FaceChoice::One { strict: false } };
        let group_photos: Vec<&Photo> = group.iter().filter_map(|&i| photos[i].as_ref()).collect();
        for (i, found) in group.into_iter().zip(engine.find_faces(&group_photos, choice, Alignment::Crop, whole_image)?) {
            match found {
                Ok(found) => faces.push((i, found)),
                Err(e) => answers[i] = Some(Err(jobs[i].0.error(e))),
            }
        }
    }
    let crops: Vec<image::RgbImage> = faces.iter().flat_map(|(_, f)| f.iter().map(|f| f.crop.clone())).collect();
    let mut vectors = engine.embed_recipe(&crops, db.recipe()?)?.into_iter();
    let vectors_id = db.vectors_id()?;
    for (i, found) in faces {
        let photo = photos[i].as_ref().expect("only decoded photos have faces");
        let answer = found
            .into_iter()
            .map(|face| {
                let vector = vectors.next().expect("a vector per crop");
                db.search_face(&FaceEmbedding::new(face, vector, &vectors_id, photo, false), jobs[i].1)
            })
            .collect::<crate::Result<Vec<_>>>()
            .map_err(ApiError::from);
        answers[i] = Some(answer);
    }
    Ok(())
}
