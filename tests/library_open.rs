//! How an app opens and drives a database: getters that never install anything, a read-only
//! open that refuses writes and never creates a database, and an enrolment cancelled midway
//! that keeps exactly the photos it finished.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::fixtures;
use fdb::recipe::DEFAULT_RECIPE;
use fdb::{CancelToken, EnrollOptions, EnrollStatus, FaceDb, FdbError, OpenOptions, Progress, ProgressEvent, Stage};
use fdb_models::weights::{base_figures, InstallError};

const PEOPLE: [&str; 3] = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];

fn photo(person: &str, i: usize) -> PathBuf {
    fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))
}

/// A writer's options: the networks on the CPU, the weights installed if they are missing.
fn writer() -> OpenOptions {
    OpenOptions::new().device("cpu").install_models(true).lock_wait(Duration::from_secs(10))
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn getters_never_install_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_models = tmp.path().join("models");
    std::fs::create_dir(&empty_models).unwrap();
    // Even with installing allowed, the getters work without the weights and download nothing.
    let options = writer().models_dir(&empty_models);
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    let base = base_figures::facenet_recipes().into_iter().find(|f| f.recipe == DEFAULT_RECIPE.tag()).unwrap();
    assert_eq!(db.thresholds().verify().unwrap(), base.default_threshold, "the base model's LFW threshold");
    let t = db.thresholds().current().unwrap();
    assert_eq!(t.verify_source, "lfw");
    assert!(db.thresholds().search().unwrap() > 0.0 && db.thresholds().search().unwrap() <= t.verify_threshold);
    let stats = db.info().unwrap();
    assert_eq!((stats.people, stats.faces, stats.recipe), (0, 0, DEFAULT_RECIPE));
    assert_eq!(stats.model, fdb_models::weights::FACENET_MODEL_ID);
    // Asked for directly, the missing weights are a clear error naming what is missing.
    match db.models().installed() {
        Err(FdbError::Models(InstallError::Missing { dir, missing })) => {
            assert_eq!(dir, empty_models);
            assert!(missing.contains("manifest") || missing.contains("safetensors"), "{missing}");
        }
        other => panic!("expected the weights to be missing: {other:?}"),
    }
    assert_eq!(files_in(&empty_models), 0, "nothing was installed");
    // The explicit install, cancelled before it starts, does nothing either.
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let err = db.models().install(&Progress::new().cancel_with(&cancelled)).unwrap_err();
    assert!(matches!(err, FdbError::Cancelled { done: 0, total: 1 }), "{err}");
    assert_eq!(files_in(&empty_models), 0, "nothing was installed");
    drop(db);

    // Without installing allowed, a call that needs the networks fails the same clear way.
    let options = OpenOptions::new().device("cpu").models_dir(&empty_models).lock_wait(Duration::from_secs(10));
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    assert!(matches!(db.search(photo("Tony_Blair", 1), 1), Err(FdbError::Models(InstallError::Missing { .. }))));
    assert_eq!(files_in(&empty_models), 0, "nothing was installed");
}

#[test]
fn read_only_opens_refuse_writes_and_never_create_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    let err = FaceDb::open_read_only(&missing).err().expect("no database to open");
    assert_eq!(err.kind(), "no_database", "{err}");
    assert!(!missing.exists(), "a read-only open created {}", missing.display());

    let path = tmp.path().join("db");
    let db = FaceDb::open_with(&path, writer()).unwrap();
    for person in PEOPLE {
        db.enroll(person, &[photo(person, 1), photo(person, 2)]).unwrap();
    }
    // sled locks the database for one handle at a time: a reader waits for the writer.
    let busy = FaceDb::open_with(&path, OpenOptions::new().read_only(true).lock_wait(Duration::ZERO))
        .err()
        .expect("the writer holds the lock");
    // The holder's pid, read from its pid file: this process.
    assert!(matches!(busy, FdbError::Locked { pid: Some(pid), .. } if pid == std::process::id()), "{busy}");
    db.close().unwrap();

    let db = FaceDb::open_with(&path, OpenOptions::new().read_only(true).device("cpu").lock_wait(Duration::from_secs(10))).unwrap();
    let answer = db.search(photo("Tony_Blair", 3), 1).unwrap();
    assert_eq!(answer.identity.as_deref(), Some("Tony_Blair"));
    assert!(db.verify(photo("Colin_Powell", 1), photo("Colin_Powell", 3)).unwrap().same);
    assert_eq!(db.info().unwrap().faces, 6);
    let face = db.embed(photo("Serena_Williams", 3)).unwrap().remove(0);
    let refused: Vec<(&str, FdbError)> = vec![
        ("enroll", db.enroll("Someone", &[photo("Serena_Williams", 3)]).unwrap_err()),
        ("add_face", db.add_face("Someone", &face).unwrap_err()),
        ("rename", db.rename("Tony_Blair", "Tony").unwrap_err()),
        ("remove_person", db.remove_person("Tony_Blair").unwrap_err()),
        ("set_verify_threshold", db.thresholds().set_verify(1.0).unwrap_err()),
        ("compact", db.compact().unwrap_err()),
    ];
    for (call, err) in refused {
        assert!(matches!(err, FdbError::ReadOnly { operation, .. } if operation == call), "{call}: {err}");
    }
    assert_eq!(db.people().unwrap().len(), 3);
    assert_eq!(db.faces("Tony_Blair").unwrap().len(), 2);
    // And a writer waits for the reader.
    let err = FaceDb::open_with(&path, OpenOptions::new()).err().expect("the reader holds the lock");
    assert!(matches!(err, FdbError::Locked { .. }), "{err}");
}

#[test]
fn a_cancelled_enrolment_keeps_exactly_the_photos_it_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let db = FaceDb::open_with(&path, writer()).unwrap();
    let photos: Vec<(String, PathBuf)> =
        PEOPLE.iter().flat_map(|p| (1..=4).map(move |i| (p.to_string(), photo(p, i)))).collect();
    let mut options = EnrollOptions::default();
    options.batch = 2;
    let cancel = CancelToken::new();
    let events = Mutex::new(Vec::new());
    let on_event = |e: ProgressEvent| {
        events.lock().unwrap().push((e.stage, e.done, e.total));
        if e.done >= 4 {
            cancel.cancel(); // as a UI's button would, between two batches
        }
    };
    let progress = Progress::new().on_event(&on_event).cancel_with(&cancel);
    match db.enroll_many(&photos, &options, &progress) {
        Err(FdbError::Cancelled { done, total }) => assert_eq!((done, total), (4, 12)),
        other => panic!("expected a cancellation: {other:?}"),
    }
    assert_eq!(*events.lock().unwrap(), [(Stage::Enroll, 2, 12), (Stage::Enroll, 4, 12)]);
    let stored = |db: &FaceDb| -> Vec<String> {
        let mut names = Vec::new();
        for person in db.people().unwrap() {
            names.extend(db.faces(&person.name).unwrap().into_iter().map(|f| f.source_name));
        }
        names
    };
    let first_four: Vec<String> = photos[..4].iter().map(|(_, p)| p.display().to_string()).collect();
    assert_eq!(stored(&db), first_four);
    db.close().unwrap();

    // Reopened: consistent, the same four faces, and the rest enrols after them.
    let db = FaceDb::open_with(&path, writer()).unwrap();
    let check = db.check().unwrap();
    assert!(check.healthy(), "{check:?}");
    assert_eq!(stored(&db), first_four);
    let reports = db.enroll_many(&photos, &options, &Progress::new()).unwrap();
    let duplicates = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Duplicate { .. })).count();
    let enrolled = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Enrolled { .. })).count();
    assert_eq!((duplicates, enrolled), (4, 8));
    assert_eq!(db.info().unwrap().faces, 12);
    let missing = db.remove_face(fdb::FaceId(u64::MAX)).unwrap_err();
    assert!(matches!(missing, FdbError::NotFound { .. }), "{missing}");
}

#[test]
fn a_cancelled_model_switch_leaves_the_vectors_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let db = FaceDb::open_with(tmp.path().join("db"), writer()).unwrap();
    for person in PEOPLE {
        db.enroll(person, &[photo(person, 1), photo(person, 2)]).unwrap();
    }
    let (model, vectors) = (db.models().model_id().unwrap(), db.models().vectors_id().unwrap());
    let before = db.search(photo("Tony_Blair", 3), 3).unwrap();
    let cancel = CancelToken::new();
    let seen = Mutex::new(Vec::new());
    let on_event = |e: ProgressEvent| {
        seen.lock().unwrap().push((e.stage, e.done, e.total));
        cancel.cancel(); // after the first chunk of trunk features, before the commit
    };
    let progress = Progress::new().on_event(&on_event).cancel_with(&cancel);
    // Plain embeddings of the same model: every face re-embedded, if it were not cancelled.
    let err = db.models().switch_to_recipe(&model, fdb::recipe::Recipe::Plain, &progress).unwrap_err();
    assert!(matches!(err, FdbError::Cancelled { done: 6, total: 6 }), "{err}");
    assert_eq!(*seen.lock().unwrap(), [(Stage::Features, 6, 6)]);
    assert_eq!(db.models().vectors_id().unwrap(), vectors);
    let after = db.search(photo("Tony_Blair", 3), 3).unwrap();
    let ranked = |r: &fdb::SearchResult| r.matches.iter().map(|m| (m.person.clone(), m.distance)).collect::<Vec<_>>();
    assert_eq!(ranked(&after), ranked(&before));
    assert!(db.check().unwrap().healthy());
}

/// A models manifest whose centred-recipe centre was cut short (a hand edit, or damage) is
/// refused by name when the networks load, never a panic when a vector is centred; nothing
/// stored is touched, and the same database answers again once the manifest is whole.
#[test]
fn a_centre_of_the_wrong_length_in_the_manifest_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let models = common::scratch_models(tmp.path());
    let path = tmp.path().join("db");
    let options = || OpenOptions::new().models_dir(models.clone()).device("cpu").lock_wait(Duration::from_secs(10));
    let db = FaceDb::open_with(&path, options()).unwrap();
    db.enroll("Tony_Blair", &[photo("Tony_Blair", 1), photo("Tony_Blair", 2)]).unwrap();
    db.close().unwrap();

    let manifest_file = models.join(fdb_models::weights::Manifest::FILE);
    let whole = std::fs::read(&manifest_file).unwrap();
    let mut manifest = fdb_models::weights::Manifest::read(&manifest_file).unwrap();
    for entry in &mut manifest.models {
        for figures in entry.recipes.iter_mut().filter(|f| f.recipe == "centred") {
            figures.centre.truncate(3);
        }
    }
    manifest.write(&models).unwrap();
    let db = FaceDb::open_with(&path, options()).unwrap();
    let err = db.search(photo("Tony_Blair", 3), 1).unwrap_err();
    assert!(matches!(&err, FdbError::Corrupt { path, .. } if path.ends_with("manifest.json")), "{err}");
    assert!(err.to_string().contains("centre has 3 numbers"), "{err}");
    assert_eq!(db.info().unwrap().faces, 2, "nothing stored was lost");
    db.close().unwrap();

    std::fs::write(&manifest_file, whole).unwrap();
    let db = FaceDb::open_with(&path, options()).unwrap();
    assert_eq!(db.search(photo("Tony_Blair", 3), 1).unwrap().identity.as_deref(), Some("Tony_Blair"));
}
