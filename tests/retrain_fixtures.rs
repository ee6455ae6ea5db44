//! `FaceDb::retrain` end to end on the fixture photos: a new model version is written beside
//! the base model with its parent named, the database switches to it (every face re-embedded
//! from its stored crop), answers stay right, and rolling back restores the base embeddings.
//! The trunk features behind all this are cached beside the database and reused.

mod common;

use common::{fixtures, scratch_models};
use fdb::retrain::{Layers, RetrainEvent, RetrainOptions};
use fdb::trunk_cache::TrunkCache;
use fdb::{FaceDb, OpenOptions, Progress};
use fdb_models::train::augment::{render_view, Augment};
use fdb_models::train::TrainConfig;
use fdb_models::weights::Manifest;

#[test]
fn retrain_switches_to_a_new_version_and_can_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = scratch_models(tmp.path());
    let options = OpenOptions::new().models_dir(models_dir.clone()).device("cpu");
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    let people = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];
    for person in people {
        let photos: Vec<_> =
            (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
        db.enroll(person, &photos).unwrap();
    }
    let probe = fixtures().join("people/Tony_Blair/Tony_Blair_0004.jpg");
    let base = db.models().model_id().unwrap();
    let before = db.search(&probe, 3).unwrap();

    let mut options = RetrainOptions::default();
    options.train = TrainConfig { epochs: 2, batches_per_epoch: 3, people_per_batch: 2, faces_per_person: 3, ..Default::default() };
    (options.validation_fraction, options.force, options.jitter) = (0.34, true, 0);
    let mut epochs_seen = 0;
    let report = db
        .retrainer()
        .run(&options, |e| {
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
    assert_eq!(db.models().model_id().unwrap(), report.model);

    let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
    let entry = manifest.get(&report.model).expect("the new version is listed");
    assert_eq!(entry.parent.as_deref(), Some(base.as_str()));
    assert!(models_dir.join(&entry.file).is_file());
    // Every stored face has an embedding of the new model (under the database's recipe, which a
    // retrain keeps), and answers are still right.
    let vectors = db.models().vectors_id().unwrap();
    assert_eq!(vectors, db.models().recipe().unwrap().vectors_id(&report.model));
    for person in db.people().unwrap() {
        for face in db.faces(&person.name).unwrap() {
            assert!(db.store().embedding(face.id, &vectors).unwrap().is_some());
        }
    }
    assert_eq!(db.search(&probe, 3).unwrap().matches[0].person, "Tony_Blair");
    assert_eq!(entry.trunk.as_deref(), Some(base.as_str()), "a head-only version shares the base trunk");

    // The switch re-embedded from cached features (the crop's and its mirror's): the same as the
    // full network on the crops under the database's recipe.
    assert_stored_vectors_are_the_full_networks(&db, &report.model, &vectors);

    // A second retrain (from the new version, whose trunk is the base's) computes nothing.
    let again = db.retrainer().run(&options, |_| {}).unwrap();
    assert_eq!((again.features_computed, again.features_cached), (0, 18));
    // Both runs' learning curves are kept in the database, oldest first, for `retrain --plot`.
    let runs = db.retrainer().runs().unwrap();
    assert_eq!(runs.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(), [report.model.as_str(), again.model.as_str()]);
    assert_eq!(runs[1].parent, report.model);
    assert_eq!((runs[0].epochs.clone(), runs[1].epochs.clone()), (report.epochs.clone(), again.epochs.clone()));
    assert_eq!(runs[0].before, report.before.verification_accuracy);

    // Roll back: the base model's answers come back (re-embedded from the lossless crops).
    db.models().switch_to(&base, &Progress::new()).unwrap();
    assert_eq!(db.models().model_id().unwrap(), base);
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
    let options = OpenOptions::new().models_dir(models_dir).device("cpu");
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    let person = "Colin_Powell";
    let photos: Vec<_> = (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
    db.enroll(person, &photos).unwrap();
    let faces: Vec<_> = db.faces(person).unwrap().into_iter().map(|f| f.id).collect();
    let engine = db.engine().unwrap();

    // Four views: the crop, its mirror, one jitter and its mirror.
    let first = db.retrainer().trunk_features(&engine, &faces, 4, Augment::Geometric, |_, _| Ok(())).unwrap();
    assert_eq!((first.computed, first.cached), (12, 0));
    let second = db.retrainer().trunk_features(&engine, &faces, 4, Augment::Geometric, |_, _| Ok(())).unwrap();
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
    db.remove_face(faces[0]).unwrap();
    let rest = db.retrainer().trunk_features(&engine, &faces[1..], 4, Augment::Geometric, |_, _| Ok(())).unwrap();
    assert_eq!((rest.computed, rest.cached), (0, 8));
    let cache = TrunkCache::open(db.path(), engine.model_id(), fdb_models::facenet::TRUNK_DIM).unwrap();
    assert_eq!(cache.len(), 8);
    assert!(cache.get(faces[0].0, 0).is_none());

    // Another augmentation has a cache of its own: the crop and its mirror are the same
    // pictures, the jittered views are altered ones.
    let light = db.retrainer().trunk_features(&engine, &faces[1..], 4, Augment::Light, |_, _| Ok(())).unwrap();
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
    let options = OpenOptions::new().models_dir(models_dir.clone()).device("cpu");
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        let photos: Vec<_> =
            (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
        db.enroll(person, &photos).unwrap();
    }
    let mut options = RetrainOptions::default();
    options.train = TrainConfig { epochs: 2, batches_per_epoch: 2, people_per_batch: 2, faces_per_person: 3, ..Default::default() };
    (options.validation_fraction, options.force, options.jitter) = (0.34, true, 0);
    // After the first epoch (the file was checked when training began), 64 bytes in its middle
    // change, size kept.
    let mut damaged = false;
    let err = db
        .retrainer()
        .run(&options, |e| {
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

/// A database of the three fixture people (three photos each) with a models dir of its own,
/// under `dir`.
fn three_people(dir: &std::path::Path) -> (FaceDb, std::path::PathBuf) {
    let models_dir = scratch_models(dir);
    let options = OpenOptions::new().models_dir(models_dir.clone()).device("cpu");
    let db = FaceDb::open_with(dir.join("db"), options).unwrap();
    for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        let photos: Vec<_> =
            (1..=3).map(|i| fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).collect();
        db.enroll(person, &photos).unwrap();
    }
    (db, models_dir)
}

fn small_run(layers: Layers, learning_rate: f64, force: bool) -> RetrainOptions {
    let mut options = RetrainOptions::default();
    options.train = TrainConfig {
        epochs: 2,
        batches_per_epoch: 2,
        people_per_batch: 2,
        faces_per_person: 3,
        learning_rate,
        seed: 11,
        ..Default::default()
    };
    (options.validation_fraction, options.force, options.jitter) = (0.34, force, 1);
    (options.augment, options.layers) = (Augment::Geometric, layers);
    options
}

/// `--layers top:2` trains the last two Block8s and the bottleneck from cached activations: the
/// same seed on two databases enrolled alike gives bit-identical learning curves and weights;
/// every other tensor is the parent's; the new version's file loads like any version; and the
/// switch, which takes the gallery's trunk features from the activations through the trained
/// top, stores what the full network of the new version computes from the crops (1e-5).
#[test]
fn top_training_from_cached_activations_is_seeded_and_switches_like_any_version() {
    let layers: Layers = "top:2".parse().unwrap();
    assert_eq!("repeat_2.3".parse::<Layers>().unwrap(), layers);
    assert!("top:7".parse::<Layers>().is_err() && "top:0".parse::<Layers>().is_err());
    let options = small_run(layers, 1e-3, true);
    let mut runs = Vec::new();
    for name in ["a", "b"] {
        let tmp = tempfile::tempdir().unwrap();
        let (db, models_dir) = three_people(tmp.path());
        let base = db.models().model_id().unwrap();
        let report = db.retrainer().run(&options, |_| {}).unwrap();
        // Nine faces × (crop, mirror, one jitter and its mirror), computed up to the cut once.
        assert_eq!((report.features_computed, report.features_cached), (36, 0), "{name}");
        let again = TrunkCache::open_activations(db.path(), &base, "repeat_2.3", 3 * 3 * 1792).unwrap();
        assert_eq!(again.len(), 36);
        assert!(report.switched);
        let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
        let entry = manifest.get(&report.model).unwrap().clone();
        assert_eq!((entry.parent.as_deref(), entry.trunk.as_deref()), (Some(base.as_str()), None), "a top version has its own trunk");
        let tensors = candle_core::safetensors::load(models_dir.join(&entry.file), &candle_core::Device::Cpu).unwrap();
        let parent = candle_core::safetensors::load(models_dir.join(&manifest.get(&base).unwrap().file), &candle_core::Device::Cpu).unwrap();
        assert_eq!(tensors.len(), parent.len());
        let mut changed = 0;
        for (name, t) in &parent {
            let same = t.flatten_all().unwrap().to_vec1::<f32>().unwrap() == tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            if !fdb_models::facenet::Cut::below_top(2).unwrap().is_above(name) {
                assert!(same, "{name} is below the cut and must be the parent's");
            } else if !same {
                changed += 1;
            }
        }
        assert!(changed > 0, "training changed nothing above the cut");

        // The switch's stored vectors are the new version's full network on the crops.
        assert_stored_vectors_are_the_full_networks(&db, &report.model, &db.models().vectors_id().unwrap());
        let mut top: Vec<(String, Vec<u32>)> = tensors
            .iter()
            .filter(|(n, _)| fdb_models::facenet::Cut::below_top(2).unwrap().is_above(n))
            .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()))
            .collect();
        top.sort();
        runs.push((report.epochs.clone(), report.before.verification_accuracy, report.after.rank1, top));
    }
    assert_eq!(runs[0].0, runs[1].0, "the learning curves of two seeded runs");
    assert!(runs[0] == runs[1], "two seeded runs give bit-identical weights");
}

/// The guarded switch: a version that does not improve the held-out people (here a learning
/// rate of 0 leaves it equal to its parent, and so does a huge pull to the base at a learning
/// rate that moves it otherwise) is written and listed, but the database stays on its model,
/// for the head as for a top.
#[test]
fn a_version_that_does_not_improve_is_not_switched_to() {
    let held = |layers: Layers| {
        let mut run = small_run(layers, 1e-2, false);
        run.train.l2_to_base = 1e9;
        run
    };
    let top1: Layers = "top:1".parse().unwrap();
    for (options, layers) in [(small_run(Layers::Head, 0.0, false), Layers::Head), (small_run(top1, 0.0, false), top1), (held(top1), top1)] {
        let tmp = tempfile::tempdir().unwrap();
        let (db, models_dir) = three_people(tmp.path());
        let base = db.models().model_id().unwrap();
        let vectors = db.models().vectors_id().unwrap();
        let report = db.retrainer().run(&options, |_| {}).unwrap();
        if options.train.l2_to_base > 0.0 {
            // Every trained tensor stayed within rounding of the parent's.
            let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
            let load = |id: &str| candle_core::safetensors::load(models_dir.join(&manifest.get(id).unwrap().file), &candle_core::Device::Cpu).unwrap();
            let (trained, parent) = (load(&report.model), load(&base));
            for (name, t) in &parent {
                let (a, b) = (t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), trained[name].flatten_all().unwrap().to_vec1::<f32>().unwrap());
                let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-6, "{name} moved {worst} from the base under λ = 1e9");
            }
        }
        assert_eq!(
            (report.after.verification_accuracy, report.after.rank1),
            (report.before.verification_accuracy, report.before.rank1),
            "{layers:?}"
        );
        assert!(!report.switched, "{layers:?}: switched to a version that is not better");
        assert_eq!((db.models().model_id().unwrap(), db.models().vectors_id().unwrap()), (base.clone(), vectors));
        let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
        assert!(manifest.get(&report.model).is_some(), "{layers:?}: the version is kept for `fdb models use`");
        assert!(!db.retrainer().runs().unwrap()[0].switched);
    }
}

/// A retrain cancelled after its first epoch (`RetrainOptions::cancel`) stores nothing: no
/// version in the manifest, no run in the history, the database on its model.
#[test]
fn a_cancelled_retrain_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, models_dir) = three_people(tmp.path());
    let (base, vectors) = (db.models().model_id().unwrap(), db.models().vectors_id().unwrap());
    let options = small_run(Layers::Head, 0.05, true);
    let mut epochs = 0;
    let err = db
        .retrainer()
        .run(&options, |e| {
            if let RetrainEvent::Epoch(_) = e {
                epochs += 1;
                options.cancel.cancel(); // a clone of this token could be cancelled from any thread
            }
        })
        .unwrap_err();
    assert!(matches!(err, fdb::FdbError::Cancelled { done: 1, total: 2 }), "{err}");
    assert_eq!(epochs, 1, "training stopped after the epoch in which it was cancelled");
    let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
    assert_eq!(manifest.models.iter().filter(|m| m.parent.is_some()).count(), 0, "no version was listed");
    assert!(db.retrainer().runs().unwrap().is_empty());
    assert_eq!((db.models().model_id().unwrap(), db.models().vectors_id().unwrap()), (base, vectors));
}

/// `--people-sampling hard` draws people by what they taught in the previous epoch: two runs
/// with one seed on two databases enrolled alike give the same learning curves and weights.
#[test]
fn hard_people_sampling_is_reproducible_with_a_seed() {
    let mut options = small_run(Layers::Head, 1e-3, true);
    options.train.epochs = 3;
    options.train.people = "hard:0.3".parse().unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        let (db, models_dir) = three_people(tmp.path());
        let report = db.retrainer().run(&options, |_| {}).unwrap();
        let manifest = Manifest::read(&models_dir.join(Manifest::FILE)).unwrap();
        let tensors = candle_core::safetensors::load(models_dir.join(&manifest.get(&report.model).unwrap().file), &candle_core::Device::Cpu).unwrap();
        let head: Vec<u32> = tensors["bottleneck.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect();
        runs.push((report.epochs, head));
    }
    assert_eq!(runs[0].0.len(), 3);
    assert!(runs[0] == runs[1], "two seeded runs with hard people differ");
}

/// A small LFW under `dir`: the fixture people's photos as `images/name/name_NNNN.jpg`, and a
/// View 1 `pairsDevTest.txt` of 10 same and 10 different pairs beside the images.
fn small_lfw(dir: &std::path::Path) -> std::path::PathBuf {
    let images = dir.join("lfw").join("images");
    let people = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];
    for person in people {
        std::fs::create_dir_all(images.join(person)).unwrap();
        for i in 1..=4 {
            let name = format!("{person}_{i:04}.jpg");
            std::fs::copy(fixtures().join("people").join(person).join(&name), images.join(person).join(&name)).unwrap();
        }
    }
    let mut lines = vec!["10".to_string()];
    let same = [(1, 2), (1, 3), (2, 4), (3, 4)];
    lines.extend((0..10).map(|k| format!("{}\t{}\t{}", people[k % 3], same[k % 4].0, same[k % 4].1)));
    lines.extend((0..10).map(|k| format!("{}\t{}\t{}\t{}", people[k % 3], 1 + k % 4, people[(k + 1) % 3], 1 + (k / 3) % 4)));
    std::fs::write(dir.join("lfw").join("pairsDevTest.txt"), lines.join("\n") + "\n").unwrap();
    images
}

/// `--lfw DIR`: the parent and the new version are scored on clean View 1 DevTest pairs. The
/// figures, taken from activations at the cut through each version's top, are what the
/// evaluator gives with each version's full network on the same pairs (`fdb eval lfw --pairs
/// pairsDevTest.txt --model ID`). A wrong folder fails before any training, naming the file.
#[test]
fn retrain_scores_both_versions_on_clean_lfw_pairs_like_the_evaluator() {
    let tmp = tempfile::tempdir().unwrap();
    let images = small_lfw(tmp.path());
    let (db, _) = three_people(tmp.path());
    let base = db.models().model_id().unwrap();

    let mut wrong = small_run(Layers::Head, 1e-3, true);
    wrong.lfw = Some(tmp.path().join("nowhere").join("images"));
    let mut epochs = 0;
    let err = db.retrainer().run(&wrong, |e| epochs += usize::from(matches!(e, RetrainEvent::Epoch(_)))).unwrap_err().to_string();
    assert!(err.contains("pairsDevTest.txt") && epochs == 0, "{err}");

    for layers in [Layers::Head, "top:1".parse().unwrap()] {
        let mut options = small_run(layers, 1e-2, false);
        options.lfw = Some(images.clone());
        let report = db.retrainer().run(&options, |_| {}).unwrap();
        let clean = report.clean_lfw.clone().expect("scored on clean LFW");
        assert_eq!(clean.pairs, 20);
        assert!(clean.pairs_file.ends_with("pairsDevTest.txt"));
        let evaluator = |model: &str| {
            let engine = fdb::engine::Engine::load(&db.models().installed().unwrap(), model, candle_core::Device::Cpu).unwrap();
            let set = fdb::clean_lfw::PairSet::read(&clean.pairs_file, &images).unwrap();
            let mut source = fdb::eval::EngineSource::new(&engine, fdb::Alignment::Crop);
            let options = fdb::eval::EvalOptions::default();
            fdb::eval::evaluate_pairs(&set.pairs, &mut source, fdb::eval::EmbedRun::new(options.flip), &options).unwrap().accuracy_mean
        };
        assert_eq!(clean.parent, evaluator(&base), "{layers:?}: the parent");
        assert_eq!(clean.model, evaluator(&report.model), "{layers:?}: the new version");
        assert_eq!(clean.flagged, clean.parent - clean.model > 0.005);
        assert!(!report.switched || db.models().model_id().unwrap() == report.model);
        if report.switched {
            db.models().switch_to(&base, &fdb::Progress::new()).unwrap();
        }
    }
}

/// Every stored face's vector under `vectors` is what `model`'s full network makes of its crop
/// under the database's recipe (to 1e-5): the switch's cached path equals the plain one.
fn assert_stored_vectors_are_the_full_networks(db: &FaceDb, model: &str, vectors: &str) {
    let engine = db.engine().unwrap();
    assert_eq!(engine.model_id(), model);
    for person in db.people().unwrap() {
        for face in db.faces(&person.name).unwrap() {
            let crop = fdb_models::imageio::decode_image(&db.store().face_crop(face.id).unwrap(), "crop").unwrap();
            let full = engine.embed_recipe(&[crop], db.models().recipe().unwrap()).unwrap().remove(0);
            let stored = db.store().embedding(face.id, vectors).unwrap().unwrap();
            let worst = full.iter().zip(&stored).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "face {}: the switch differs from the full network by {worst}", face.id.0);
        }
    }
}
