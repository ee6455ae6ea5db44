//! Running a hard-conditions plan through the product: a scratch `FaceDb`, its `enroll_many`
//! for the galleries and its `search` for every altered probe.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;

use super::alter::alter;
use super::plan::{HardSetPlan, Probe};
use super::tally::{HardReport, ProbeOutcome};
use crate::engine::{Alignment, Engine, FaceChoice, WholeImage};
use crate::error::{FdbError, Result};
use crate::facedb::{EnrollOptions, EnrollStatus, FaceDb, OpenOptions};

/// Photos decoded and detected together while making the probes.
const CHUNK: usize = 32;

/// How `fdb eval hard` runs.
pub struct HardRunOptions {
    /// How the scratch database is opened (models dir, device).
    pub open: OpenOptions,
    /// Where the altered photos (and `outcomes.csv`) go; a temporary directory when `None`.
    pub out: Option<PathBuf>,
}

/// Enrols the plan's galleries into a scratch database, makes and searches every probe.
/// `progress(done, total)` follows the photos.
pub fn run_hard(plan: &HardSetPlan, options: &HardRunOptions, progress: impl Fn(usize, usize) + Sync) -> Result<(HardReport, Vec<ProbeOutcome>)> {
    let started = Instant::now();
    let scratch = tempfile::tempdir().map_err(|e| FdbError::Io { path: std::env::temp_dir(), source: e })?;
    let out = options.out.clone().unwrap_or_else(|| scratch.path().join("probes"));
    let db = FaceDb::open_with(scratch.path().join("db"), options.open.clone())?;

    let items: Vec<(String, PathBuf)> =
        plan.people.iter().flat_map(|p| p.gallery.iter().map(|g| (p.name.clone(), g.clone()))).collect();
    let all: Vec<&Probe> = plan.probes.iter().chain(&plan.strangers).collect();
    let total = items.len() + 2 * all.len();
    // The enrolment reports photos done so far; `progress` takes those just finished.
    let reported = std::sync::atomic::AtomicUsize::new(0);
    let on_event = |e: crate::progress::ProgressEvent| {
        let before = reported.swap(e.done, std::sync::atomic::Ordering::Relaxed);
        progress(e.done - before, total)
    };
    let enrolled = db.enroll_many(&items, &EnrollOptions::default(), &crate::progress::Progress::new().on_event(&on_event))?;
    let gallery_failed = enrolled.iter().filter(|r| matches!(r.status, EnrollStatus::Failed { .. })).count();
    let floor = options.open.quality_floor;
    let gallery_low_quality =
        enrolled.iter().filter(|r| matches!(r.status, EnrollStatus::Enrolled { quality, .. } if quality < floor)).count();

    let engine = db.engine()?;
    let mut made: Vec<(&Probe, PathBuf)> = Vec::with_capacity(all.len());
    let mut skipped = 0;
    for chunk in all.chunks(CHUNK) {
        for (probe, path) in chunk.iter().zip(make_probes(&engine, chunk, &out)?) {
            match path {
                Some(path) => made.push((probe, path)),
                None => skipped += 1,
            }
        }
        progress(chunk.len(), total);
    }

    let mut outcomes = Vec::with_capacity(made.len());
    let mut threshold = None;
    for (probe, path) in made {
        let outcome = match db.search(&path, 5) {
            Ok(answer) => {
                threshold = Some(answer.threshold);
                let nearest = answer.matches.first();
                ProbeOutcome {
                    path,
                    original: probe.source.clone(),
                    person: probe.person.clone(),
                    condition: probe.condition,
                    found: true,
                    source: Some(answer.source),
                    nearest: nearest.map(|m| m.person.clone()),
                    distance: nearest.map(|m| m.distance),
                    identity: answer.identity,
                    quality: Some(answer.quality),
                    low_quality: answer.low_quality,
                }
            }
            Err(FdbError::NoFace { .. }) => ProbeOutcome {
                path,
                original: probe.source.clone(),
                person: probe.person.clone(),
                condition: probe.condition,
                found: false,
                source: None,
                nearest: None,
                distance: None,
                identity: None,
                quality: None,
                low_quality: false,
            },
            Err(e) => return Err(e),
        };
        outcomes.push(outcome);
        progress(1, total);
    }

    let mut report = HardReport::new(plan.split, plan.seed, &outcomes);
    report.people = plan.people.len();
    report.gallery_images = items.len();
    report.gallery_failed = gallery_failed;
    report.gallery_low_quality = gallery_low_quality;
    report.quality_floor = floor;
    report.skipped_no_clean_face = skipped;
    report.search_threshold = threshold;
    report.seconds = started.elapsed().as_secs_f64();
    if options.out.is_some() {
        write_outcomes_csv(&out.join("outcomes.csv"), &outcomes)?;
    }
    Ok((report, outcomes))
}

/// Alters each probe's clean photo by the box the detector finds in it and writes it under
/// `out/<condition>/`; `None` where the clean photo has no face.
fn make_probes(engine: &Engine, probes: &[&Probe], out: &Path) -> Result<Vec<Option<PathBuf>>> {
    let paths: Vec<PathBuf> = probes.iter().map(|p| p.source.clone()).collect();
    let decoded = Engine::decode_files(&paths);
    let photos = decoded.into_iter().collect::<Result<Vec<_>>>()?;
    let refs: Vec<_> = photos.iter().collect();
    let found = engine.find_faces(&refs, FaceChoice::One { strict: false }, Alignment::Crop, WholeImage::Never)?;
    probes
        .iter()
        .zip(&photos)
        .zip(found)
        .map(|((probe, photo), faces)| {
            let Ok(faces) = faces else { return Ok(None) };
            let altered = alter(&photo.image, faces[0].detection.bbox, probe.condition, probe.seed);
            let kind = if probe.person.is_some() { "probes" } else { "strangers" };
            let dir = out.join(kind).join(probe.condition.name());
            std::fs::create_dir_all(&dir).map_err(|e| FdbError::Io { path: dir.clone(), source: e })?;
            let stem = probe.source.file_stem().unwrap_or_default().to_string_lossy();
            let path = dir.join(format!("{stem}.png"));
            save(&altered, probe.condition.is_gray(), &path)?;
            Ok(Some(path))
        })
        .collect()
}

fn save(image: &RgbImage, gray: bool, path: &Path) -> Result<()> {
    let written = if gray {
        image::GrayImage::from_fn(image.width(), image.height(), |x, y| image::Luma([image.get_pixel(x, y)[0]])).save(path)
    } else {
        image.save(path)
    };
    written.map_err(|e| FdbError::Invalid(format!("{}: {e}", path.display())))
}

fn write_outcomes_csv(path: &Path, outcomes: &[ProbeOutcome]) -> Result<()> {
    let mut text = String::from("path,original,person,condition,found,source,nearest,distance,identity,quality,low_quality\n");
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let num = |v: Option<f32>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for o in outcomes {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            o.path.display(),
            o.original.display(),
            opt(&o.person),
            o.condition.name(),
            o.found,
            opt(&o.source),
            opt(&o.nearest),
            num(o.distance),
            opt(&o.identity),
            num(o.quality),
            o.low_quality
        ));
    }
    std::fs::write(path, text).map_err(|e| FdbError::Io { path: path.to_path_buf(), source: e })
}
