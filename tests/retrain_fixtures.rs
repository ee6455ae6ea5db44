//! `FaceDb::retrain` end to end on the fixture photos: a new model version is written beside
//! the base model with its parent named, the database switches to it (every face re-embedded
//! from its stored crop), answers stay right, and rolling back restores the base embeddings.

mod common;

use std::path::Path;

use common::fixtures;
use fdb::retrain::RetrainOptions;
use fdb::{FaceDb, OpenOptions};
use fdb_models::train::TrainConfig;
use fdb_models::weights::{self, Manifest};

/// A models dir of its own for this test (new versions are written there), sharing the
/// installed base files through links.
fn scratch_models(dir: &Path) -> std::path::PathBuf {
    let installed = weights::ensure_installed(&weights::default_models_dir()).expect("models install");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for file in [&installed.facenet, &installed.mtcnn] {
        std::os::unix::fs::symlink(file, models.join(file.file_name().unwrap())).unwrap();
    }
    installed.manifest.write(&models).unwrap();
    models
}

#[test]
fn retrain_switches_to_a_new_version_and_can_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = scratch_models(tmp.path());
    let options = OpenOptions { models_dir: models_dir.clone(), device: Some("cpu".into()), install_models: false };
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    let people = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];
    for person in people {
        let photos: Vec<_> =
            (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
        db.enroll(person, &photos).unwrap();
    }
    let probe = fixtures().join("people/Tony_Blair/Tony_Blair_0004.jpg");
    let base = db.model_id().unwrap();
    let before = db.search(&probe, 3).unwrap();

    let options = RetrainOptions {
        train: TrainConfig { epochs: 2, batches_per_epoch: 3, people_per_batch: 2, faces_per_person: 3, ..Default::default() },
        validation_fraction: 0.34,
        force: true,
    };
    let mut epochs_seen = 0;
    let report = db.retrain(&options, |_| epochs_seen += 1).unwrap();
    assert_eq!(epochs_seen, 2);
    assert_eq!((report.train_people, report.validation_people), (2, 1));
    assert_eq!((report.train_faces, report.validation_faces), (6, 3));
    assert!(report.switched);
    assert_eq!(report.parent, base);
    assert_eq!(db.model_id().unwrap(), report.model);

    let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
    let entry = manifest.get(&report.model).expect("the new version is listed");
    assert_eq!(entry.parent.as_deref(), Some(base.as_str()));
    assert!(models_dir.join(&entry.file).is_file());
    // Every stored face has an embedding of the new model, and answers are still right.
    for person in db.people().unwrap() {
        for face in db.faces(&person.name).unwrap() {
            assert!(db.store().embedding(face.id, &report.model).unwrap().is_some());
        }
    }
    assert_eq!(db.search(&probe, 3).unwrap().matches[0].person, "Tony_Blair");

    // Roll back: the base model's answers come back (re-embedded from the lossless crops).
    db.switch_to(&base).unwrap();
    assert_eq!(db.model_id().unwrap(), base);
    let after = db.search(&probe, 3).unwrap();
    assert_eq!(after.matches.len(), before.matches.len());
    for (a, b) in after.matches.iter().zip(&before.matches) {
        assert_eq!(a.person, b.person);
        assert!((a.distance - b.distance).abs() < 1e-4, "{} vs {}", a.distance, b.distance);
    }
}
