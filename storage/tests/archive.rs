//! The portable archive (export → import) and backups, through the public API.

use fdb_storage::{ArchiveSummary, ImportOptions, NewFace, NewPerson, Store, StoreError, StoreOptions};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const DIM: usize = 16;
const MODEL: &str = "m1#flip";

fn unit(rng: &mut impl Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn sha(n: u64, salt: u8) -> [u8; 32] {
    let mut s = [salt; 32];
    s[..8].copy_from_slice(&n.to_be_bytes());
    s
}

fn face(person: fdb_storage::PersonId, n: u64, salt: u8, rng: &mut impl Rng) -> NewFace {
    face_by(MODEL, person, n, salt, rng)
}

fn face_by(model: &str, person: fdb_storage::PersonId, n: u64, salt: u8, rng: &mut impl Rng) -> NewFace {
    NewFace {
        person,
        source_name: format!("photos/{salt}/{n}.jpg"),
        source_sha256: sha(n, salt),
        bbox: [n as f32, 2.0, 3.5, 4.25],
        landmarks: [[n as f32 * 0.5, 1.0]; 5],
        score: 0.99,
        quality: if n.is_multiple_of(3) { None } else { Some(0.5 + n as f32 / 1000.0) },
        model_id: model.into(),
        crop: (0..200 + n as usize).map(|i| (i as u64 * 7 + n) as u8).collect(),
        embedding: unit(rng),
    }
}

/// Opens (or reopens) a store. sled releases a closed database's file lock from a background
/// thread, so a reopen right after a drop may wait for it.
fn open(path: &Path) -> Store {
    Store::open(path, StoreOptions { lock_wait: std::time::Duration::from_secs(10), ..StoreOptions::default() }).unwrap()
}

/// A store with `people` people of `per` faces each (people named `{prefix}{i}`, with metadata).
fn filled(path: &Path, prefix: &str, people: usize, per: u64, salt: u8) -> Store {
    filled_by(MODEL, path, prefix, people, per, salt)
}

fn filled_by(model: &str, path: &Path, prefix: &str, people: usize, per: u64, salt: u8) -> Store {
    let store = open(path);
    let mut rng = rand::rngs::StdRng::seed_from_u64(salt as u64);
    for p in 0..people {
        let id = store.new_person_id().unwrap();
        let meta: BTreeMap<String, String> = [("team".to_string(), format!("t{p}"))].into();
        let faces = (0..per).map(|i| face_by(model, id, p as u64 * 100 + i, salt, &mut rng)).collect();
        store.add_faces_with_people(vec![NewPerson { id, name: format!("{prefix}{p}"), meta }], faces).unwrap();
    }
    store.set_threshold(1.125).unwrap();
    store.meta_set("fdb.far_1n", &0.005f64.to_le_bytes()).unwrap();
    store.flush().unwrap();
    store
}

fn keep(model: &str) -> ImportOptions<'static> {
    ImportOptions { model: model.into(), name: Box::new(|n: &str| Ok(n.to_string())), embed: None, apply_settings: true }
}

/// Everything a store holds, keyed by photo: (person name and meta, source, bbox, landmarks,
/// score, quality, crop, vector bits).
type Content = BTreeMap<[u8; 32], (String, BTreeMap<String, String>, String, String, Vec<u8>, Vec<u32>)>;

fn content(store: &Store) -> Content {
    let mut out = BTreeMap::new();
    for p in store.people().unwrap() {
        for f in store.faces_of(p.id).unwrap() {
            let v = store.embedding(f.id, &store.active_model().unwrap().unwrap()).unwrap().expect("a vector");
            let record = format!("{} {:?} {:?} {} {:?} {}", f.source_name, f.bbox, f.landmarks, f.score, f.quality, f.model_id);
            let crop = store.face_crop(f.id).unwrap();
            out.insert(f.source_sha256, (p.name.clone(), p.meta.clone(), record, String::new(), crop, v.iter().map(|x| x.to_bits()).collect()));
        }
    }
    out
}

/// Each stored vector's search answer: (person name, distance bits) of the top 3.
fn answers(store: &Store, probes: &[Vec<f32>]) -> Answers {
    probes
        .iter()
        .map(|q| {
            store
                .search(q, 3, Some(200))
                .unwrap()
                .into_iter()
                .map(|h| (store.person(h.person).unwrap().unwrap().name, h.distance.to_bits()))
                .collect()
        })
        .collect()
}

fn probes(n: usize) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    (0..n).map(|_| unit(&mut rng)).collect()
}

fn export(store: &Store, dir: &Path) -> (PathBuf, ArchiveSummary) {
    let file = dir.join("faces.fdbarchive");
    let summary = store.export_archive(&file).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    (file, summary)
}

#[test]
fn export_then_import_restores_people_faces_crops_and_vectors_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled(&dir.path().join("a"), "person", 4, 6, 1);
    let (file, summary) = export(&source, dir.path());
    assert_eq!((summary.people, summary.faces, summary.settings), (4, 24, 2));
    assert_eq!(summary.header.active_model.as_deref(), Some(MODEL));
    assert!(source.export_archive(&file).is_err(), "an export never overwrites a file");

    let target = open(&dir.path().join("b"));
    let report = target.import_archive(&file, keep(MODEL)).unwrap();
    assert_eq!((report.people_created, report.people_matched, report.faces_imported), (4, 0, 24));
    assert!(report.embeddings_kept && report.faces_skipped.is_empty());
    assert_eq!(content(&target), content(&source));
    let q = probes(20);
    assert_eq!(answers(&target, &q), answers(&source, &q));
    assert_eq!(target.threshold().unwrap(), Some(1.125));
    assert_eq!(target.meta_get("fdb.far_1n").unwrap(), Some(0.005f64.to_le_bytes().to_vec()));
    target.verify_integrity().unwrap();

    // Again: every photo is stored already, so everything is skipped and nothing changes.
    let again = target.import_archive(&file, keep(MODEL)).unwrap();
    assert_eq!((again.faces_imported, again.faces_skipped.len(), again.people_created), (0, 24, 0));
    assert_eq!(content(&target), content(&source));

    // Reopened, the imported store answers the same (its index snapshot and ids are its own).
    drop(target);
    let target = open(&dir.path().join("b"));
    assert_eq!(answers(&target, &q), answers(&source, &q));
    target.verify_integrity().unwrap();
}

#[test]
fn an_import_into_a_store_of_another_model_embeds_the_crops_and_matches_people_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled(&dir.path().join("a"), "person", 2, 3, 1);
    let (file, _) = export(&source, dir.path());
    // The target already knows "person1" under another model; one of the archive's photos is
    // stored there already.
    let target = open(&dir.path().join("b"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let id = target.new_person_id().unwrap();
    let mut existing = face(id, 100, 1, &mut rng); // person1's first photo (n = 100, salt 1)
    existing.model_id = "m2".into();
    target
        .add_faces_with_people(vec![NewPerson { id, name: "person1".into(), meta: Default::default() }], vec![existing])
        .unwrap();
    let calls = AtomicUsize::new(0);
    let options = ImportOptions {
        model: "m2".into(),
        name: Box::new(|n: &str| Ok(n.to_string())),
        // A stand-in embedder: the crop's length decides the vector.
        embed: Some(Box::new(|crops: &[&[u8]]| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(crops.iter().map(|c| (0..DIM).map(|i| if i == c.len() % DIM { 1.0 } else { 0.1 }).collect()).collect())
        })),
        apply_settings: false,
    };
    let report = target.import_archive(&file, options).unwrap();
    assert_eq!((report.faces_imported, report.faces_skipped.len()), (5, 1));
    assert_eq!((report.people_created, report.people_matched), (1, 1));
    assert!(!report.embeddings_kept);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(target.threshold().unwrap(), None, "settings were not asked for");
    let person1 = target.person_by_name("person1").unwrap().unwrap();
    assert_eq!(target.faces_of(person1.id).unwrap().len(), 3);
    assert_eq!(person1.meta, BTreeMap::new(), "a matched person keeps their own metadata");
    for f in target.faces_of(person1.id).unwrap() {
        assert_eq!(f.model_id, "m2");
        assert!(target.embedding(f.id, "m2").unwrap().is_some());
    }
    target.verify_integrity().unwrap();
}

/// The answers to probes: per probe, (person, distance bits) of the nearest faces.
type Answers = Vec<Vec<(String, u32)>>;

/// (people, faces, names, the answers to probes) of a store.
fn snapshot(store: &Store) -> (usize, usize, Vec<String>, Answers) {
    let names = store.people().unwrap().into_iter().map(|p| p.name).collect();
    (store.person_count(), store.face_count(), names, answers(store, &probes(10)))
}

#[test]
fn damaged_archives_are_refused_by_name_and_the_target_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled(&dir.path().join("a"), "person", 3, 4, 1);
    let (file, _) = export(&source, dir.path());
    let good = std::fs::read(&file).unwrap();
    let target_path = dir.path().join("b");
    let target = filled(&target_path, "other", 2, 2, 2);
    let before = snapshot(&target);
    let damaged = dir.path().join("damaged.fdbarchive");
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated in a face", good[..good.len() / 2].to_vec(), "truncated"),
        // The trailer is 12 bytes: kind, length, three one-byte counts, crc.
        ("without its trailer", good[..good.len() - 12].to_vec(), "truncated"),
        ("cut inside the last face", good[..good.len() - 30].to_vec(), "truncated"),
        ("wrong magic", [b"NOTANARC".as_slice(), &good[8..]].concat(), "not an fdb archive"),
        ("newer format", [&good[..8], 2u32.to_le_bytes().as_slice(), &good[12..]].concat(), "format version 2 is newer"),
        ("empty", Vec::new(), "not an fdb archive"),
    ];
    let mut flipped = good.clone();
    let at = good.len() * 3 / 4; // inside a face's crop
    flipped[at] ^= 0x10;
    cases.push(("a flipped byte", flipped, "fails its checksum"));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    cases.push(("bytes after the trailer", trailing, "4 bytes follow the trailer"));
    for (what, bytes, reason) in cases {
        std::fs::write(&damaged, &bytes).unwrap();
        let err = target.import_archive(&damaged, keep(MODEL)).unwrap_err();
        assert!(matches!(err, StoreError::BadArchive { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&damaged.display().to_string()) && msg.contains(reason), "{what}: {msg}");
        assert_eq!(snapshot(&target), before, "{what}: the target changed");
    }
    target.verify_integrity().unwrap();
    drop(target);
    let target = open(&target_path);
    assert_eq!(snapshot(&target), before);
}

#[test]
fn a_failure_half_way_through_an_import_takes_back_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    // 150 faces: three batches of the embedder; the second one fails.
    let source = filled(&dir.path().join("a"), "person", 3, 50, 1);
    let (file, _) = export(&source, dir.path());
    let target_path = dir.path().join("b");
    // The target's vectors are by another model, so the archive's crops are embedded again.
    let target = filled_by("m2", &target_path, "other", 2, 2, 2);
    let before = snapshot(&target);
    let calls = AtomicUsize::new(0);
    let options = ImportOptions {
        model: "m2".into(),
        name: Box::new(|n: &str| Ok(n.to_string())),
        embed: Some(Box::new(|crops: &[&[u8]]| {
            if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                return Err("the embedder failed".into());
            }
            Ok(crops.iter().map(|_| vec![1.0; DIM]).collect())
        })),
        apply_settings: true,
    };
    let err = target.import_archive(&file, options).unwrap_err();
    assert!(err.to_string().contains("the embedder failed"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the first batch was stored before the failure");
    assert_eq!(snapshot(&target), before);
    assert_eq!(target.threshold().unwrap(), Some(1.125), "the target's own settings stay");
    target.verify_integrity().unwrap();
}

#[test]
fn backup_while_another_thread_adds_faces_holds_a_consistent_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("db")));
    const BATCHES: u64 = 400;
    let added = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, added) = (store.clone(), added.clone());
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            for n in 0..BATCHES {
                // Every other batch creates its person with the face; the rest join person n-1.
                let (people, person) = if n % 2 == 0 {
                    let id = store.new_person_id().unwrap();
                    (vec![NewPerson { id, name: format!("p{n}"), meta: Default::default() }], id)
                } else {
                    (Vec::new(), store.person_by_name(&format!("p{}", n - 1)).unwrap().unwrap().id)
                };
                store.add_faces_with_people(people, vec![face(person, n, 9, &mut rng)]).unwrap();
                added.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while added.load(Ordering::SeqCst) < 50 {
        std::thread::yield_now();
    }
    let dest = dir.path().join("backups/copy");
    let report = store.backup(&dest).unwrap();
    let at_end = added.load(Ordering::SeqCst);
    writer.join().unwrap();
    assert!(report.faces >= 50 && report.faces <= at_end, "{} faces backed up, {} added by then", report.faces, at_end);
    assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o700);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("backups")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("copy")], "no partial copy is left beside it");

    let copy = open(&dest);
    copy.verify_integrity().unwrap();
    // Exactly the first k adds, each whole: its person, crop and vector.
    let mut seen: Vec<u64> = Vec::new();
    for p in copy.people().unwrap() {
        let faces = copy.faces_of(p.id).unwrap();
        assert!(!faces.is_empty(), "{} has no face", p.name);
        for f in faces {
            let n = u64::from_be_bytes(f.source_sha256[..8].try_into().unwrap());
            assert_eq!(p.name, format!("p{}", n - n % 2));
            assert_eq!(copy.face_crop(f.id).unwrap(), store.face_crop(f.id).unwrap());
            assert_eq!(copy.embedding(f.id, MODEL).unwrap(), store.embedding(f.id, MODEL).unwrap());
            seen.push(n);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..report.faces as u64).collect::<Vec<_>>());
    // New faces in the copy get ids past every copied one.
    let max = copy.people().unwrap().iter().flat_map(|p| copy.faces_of(p.id).unwrap()).map(|f| f.id).max().unwrap();
    let person = copy.people().unwrap()[0].id;
    let new = copy.add_face(face(person, 10_000, 9, &mut rand::rngs::StdRng::seed_from_u64(4))).unwrap();
    assert!(new > max, "{new:?} after {max:?}");
    copy.verify_integrity().unwrap();

    // A second backup into the now non-empty directory is refused, and leaves it alone.
    let err = store.backup(&dest).unwrap_err();
    assert!(err.to_string().contains("exists and is not empty"), "{err}");
    assert!(dest.join("db").is_file());
}
