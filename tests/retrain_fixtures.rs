//! `FaceDb::retrain` end to end on the fixture photos: a new model version is written beside
//! the base model with its parent named, the database switches to it (every face re-embedded
//! from its stored crop), answers stay right, and rolling back restores the base embeddings.
//! The trunk features behind all this are cached beside the database and reused.

mod common;

use common::{fixtures, scratch_models};
use fdb::retrain::{RetrainEvent, RetrainOptions};
use fdb::trunk_cache::TrunkCache;
use fdb::{FaceDb, OpenOptions};
use fdb_models::train::augment::{render_view, Augment};
use fdb_models::train::TrainConfig;
use fdb_models::weights::Manifest;

#[test]
fn retrain_switches_to_a_new_version_and_can_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = scratch_models(tmp.path());
    let options = OpenOptions { models_dir: models_dir.clone(), device: Some("cpu".into()), install_models: false, ..OpenOptions::default() };
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
        jitter: 0,
        ..Default::default()
    };
    let mut epochs_seen = 0;
    let report = db
        .retrain(&options, |e| {
            if let RetrainEvent::Epoch(_) = e {
                epochs_seen += 1
            }
        })
        .unwrap();
    assert_eq!(epochs_seen, 2);
    // Nine faces, the crop and its mirror each: all computed once, and the switch found them cached.
    assert_eq!((report.features_computed, report.features_cached), (18, 0));
    assert_eq!((report.train_people, report.validation_people), (2, 1));
    assert_eq!((report.train_faces, report.validation_faces), (6, 3));
    assert!(report.switched);
    assert_eq!(report.parent, base);
    assert_eq!(db.model_id().unwrap(), report.model);

    let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
    let entry = manifest.get(&report.model).expect("the new version is listed");
    assert_eq!(entry.parent.as_deref(), Some(base.as_str()));
    assert!(models_dir.join(&entry.file).is_file());
    // Every stored face has an embedding of the new model (under the database's recipe, which a
    // retrain keeps), and answers are still right.
    let vectors = db.vectors_id().unwrap();
    assert_eq!(vectors, db.recipe().unwrap().vectors_id(&report.model));
    for person in db.people().unwrap() {
        for face in db.faces(&person.name).unwrap() {
            assert!(db.store().embedding(face.id, &vectors).unwrap().is_some());
        }
    }
    assert_eq!(db.search(&probe, 3).unwrap().matches[0].person, "Tony_Blair");
    assert_eq!(entry.trunk.as_deref(), Some(base.as_str()), "a head-only version shares the base trunk");

    // The switch re-embedded from cached features (the crop's and its mirror's): the same as the
    // full network on the crops under the database's recipe.
    let engine = db.engine().unwrap();
    assert_eq!(engine.model_id(), report.model);
    for person in db.people().unwrap() {
        for face in db.faces(&person.name).unwrap() {
            let crop = fdb_models::imageio::decode_image(&db.store().face_crop(face.id).unwrap(), "crop").unwrap();
            let full = engine.embed_recipe(&[crop], db.recipe().unwrap()).unwrap().remove(0);
            let stored = db.store().embedding(face.id, &vectors).unwrap().unwrap();
            let worst = full.iter().zip(&stored).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "face {}: cached switch differs from the full network by {worst}", face.id.0);
        }
    }

    // A second retrain (from the new version, whose trunk is the base's) computes nothing.
    let again = db.retrain(&options, |_| {}).unwrap();
    assert_eq!((again.features_computed, again.features_cached), (0, 18));
    // Both runs' learning curves are kept in the database, oldest first, for `retrain --plot`.
    let runs = db.retrain_runs().unwrap();
    assert_eq!(runs.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(), [report.model.as_str(), again.model.as_str()]);
    assert_eq!(runs[1].parent, report.model);
    assert_eq!((runs[0].epochs.clone(), runs[1].epochs.clone()), (report.epochs.clone(), again.epochs.clone()));
    assert_eq!(runs[0].before, report.before.verification_accuracy);

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

#[test]
fn cached_trunk_features_equal_fresh_ones_and_removed_faces_leave_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = scratch_models(tmp.path());
    let options = OpenOptions { models_dir, device: Some("cpu".into()), install_models: false, ..OpenOptions::default() };
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    let person = "Colin_Powell";
    let photos: Vec<_> = (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
    db.enroll(person, &photos).unwrap();
    let faces: Vec<_> = db.faces(person).unwrap().into_iter().map(|f| f.id).collect();
    let engine = db.engine().unwrap();

    // Four views: the crop, its mirror, one jitter and its mirror.
    let first = db.trunk_features(&engine, &faces, 4, Augment::Geometric, |_, _| {}).unwrap();
    assert_eq!((first.computed, first.cached), (12, 0));
    let second = db.trunk_features(&engine, &faces, 4, Augment::Geometric, |_, _| {}).unwrap();
    assert_eq!((second.computed, second.cached), (0, 12));
    for (face, (a, b)) in faces.iter().zip(first.views.iter().zip(&second.views)) {
        assert_eq!(a, b);
        let crop = fdb_models::imageio::decode_image(&db.store().face_crop(*face).unwrap(), "crop").unwrap();
        let views: Vec<_> = (0..4).map(|v| render_view(&crop, face.0, v, Augment::Geometric)).collect();
        let fresh = engine.trunk_features(&views).unwrap();
        for (cached, fresh) in b.iter().zip(&fresh) {
            let worst = cached.iter().zip(fresh).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "face {}: cached and fresh features differ by {worst}", face.0);
        }
    }

    // A removed face's features leave the cache file the next time it is used.
    db.remove_face(faces[0].0).unwrap();
    let rest = db.trunk_features(&engine, &faces[1..], 4, Augment::Geometric, |_, _| {}).unwrap();
    assert_eq!((rest.computed, rest.cached), (0, 8));
    let cache = TrunkCache::open(db.path(), engine.model_id(), fdb_models::facenet::TRUNK_DIM).unwrap();
    assert_eq!(cache.len(), 8);
    assert!(cache.get(faces[0].0, 0).is_none());

    // Another augmentation has a cache of its own: the crop and its mirror are the same
    // pictures, the jittered views are altered ones.
    let light = db.trunk_features(&engine, &faces[1..], 4, Augment::Light, |_, _| {}).unwrap();
    assert_eq!((light.computed, light.cached), (8, 0));
    let largest_difference = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    for (geometric, light) in rest.views.iter().zip(&light.views) {
        assert!(largest_difference(&geometric[0], &light[0]) < 1e-5);
        assert!(largest_difference(&geometric[1], &light[1]) < 1e-5);
        assert!(largest_difference(&geometric[2], &light[2]) > 1e-2, "the light view is another picture");
    }
    assert_eq!(TrunkCache::open(db.path(), engine.model_id(), fdb_models::facenet::TRUNK_DIM).unwrap().len(), 8);
}

/// The parent's weights are checked again when the new version is written: a file damaged while
/// the head trains is refused by name, and no version is made from it.
#[test]
fn a_parent_damaged_during_training_is_not_copied_into_a_new_version() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = scratch_models(tmp.path());
    // scratch_models links to the installed weights: damage a private copy instead.
    let installed = fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()).unwrap();
    let facenet = models_dir.join(installed.facenet.file_name().unwrap());
    std::fs::remove_file(&facenet).unwrap();
    std::fs::copy(&installed.facenet, &facenet).unwrap();
    let options = OpenOptions { models_dir: models_dir.clone(), device: Some("cpu".into()), install_models: false, ..OpenOptions::default() };
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        let photos: Vec<_> =
            (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
        db.enroll(person, &photos).unwrap();
    }
    let options = RetrainOptions {
        train: TrainConfig { epochs: 2, batches_per_epoch: 2, people_per_batch: 2, faces_per_person: 3, ..Default::default() },
        validation_fraction: 0.34,
        force: true,
        jitter: 0,
        ..Default::default()
    };
    // After the first epoch (the file was checked when training began), 64 bytes in its middle
    // change, size kept.
    let mut damaged = false;
    let err = db
        .retrain(&options, |e| {
            if matches!(e, RetrainEvent::Epoch(_)) && !damaged {
                let mut bytes = std::fs::read(&facenet).unwrap();
                let middle = bytes.len() / 2;
                for b in &mut bytes[middle..middle + 64] {
                    *b ^= 0xA5;
                }
                std::fs::write(&facenet, &bytes).unwrap();
                damaged = true;
            }
        })
        .unwrap_err()
        .to_string();
    assert!(damaged, "training ran no epoch");
    let name = facenet.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name) && err.contains("damaged"), "{err}");
    let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
    assert_eq!(manifest.models.iter().filter(|m| m.parent.is_some()).count(), 0, "no version was listed");
}
