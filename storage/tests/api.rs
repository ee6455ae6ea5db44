//! Behaviour of the public API on small synthetic databases.

mod common;

use common::{exact_top_k, face, sha, squared_l2, unit, vector};
use fdb_storage::{FaceId, IndexLoad, Store, StoreError, StoreOptions};
use std::collections::BTreeMap;

const DIM: usize = 32;

fn open(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("db"), StoreOptions::default()).unwrap()
}

/// A store with `people` people of `per_person` faces each; returns (store, [(face id, vector)]).
fn populated(dir: &std::path::Path, people: usize, per_person: usize) -> (Store, Vec<(u64, Vec<f32>)>) {
    populated_with(dir, StoreOptions::default(), people, per_person)
}

fn populated_with(
    dir: &std::path::Path,
    opts: StoreOptions,
    people: usize,
    per_person: usize,
) -> (Store, Vec<(u64, Vec<f32>)>) {
    let store = Store::open(&dir.join("db"), opts).unwrap();
    let mut items = Vec::new();
    let mut n = 0;
    for p in 0..people {
        let pid = store.add_person(&format!("person {p}"), BTreeMap::new()).unwrap();
        let faces: Vec<_> = (0..per_person)
            .map(|_| {
                n += 1;
                face(pid, n, "m1", vector(n, DIM))
            })
            .collect();
        let vectors: Vec<Vec<f32>> = faces.iter().map(|f| f.embedding.clone()).collect();
        let ids = store.add_faces(faces).unwrap();
        items.extend(ids.into_iter().map(|id| id.0).zip(vectors));
    }
    (store, items)
}

#[test]
fn people_add_get_rename_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let meta = BTreeMap::from([("team".to_string(), "blue".to_string())]);
    let ann = store.add_person("Ann", meta.clone()).unwrap();
    let bob = store.add_person("bob", BTreeMap::new()).unwrap();
    assert!(matches!(store.add_person("Ann", BTreeMap::new()), Err(StoreError::NameTaken(n)) if n == "Ann"));
    // Names are case-sensitive.
    store.add_person("ann", BTreeMap::new()).unwrap();
    assert_eq!(store.person(ann).unwrap().unwrap().meta, meta);
    assert_eq!(store.person_by_name("bob").unwrap().unwrap().id, bob);
    let names: Vec<String> = store.people().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["Ann", "bob", "ann"]);

    assert!(matches!(store.rename_person("bob", "Ann"), Err(StoreError::NameTaken(_))));
    assert!(matches!(store.rename_person("nobody", "x"), Err(StoreError::NotFound(_))));
    store.rename_person("bob", "Robert").unwrap();
    assert!(store.person_by_name("bob").unwrap().is_none());
    assert_eq!(store.person_by_name("Robert").unwrap().unwrap().id, bob);

    store.add_face(face(bob, 1, "m1", vector(1, DIM))).unwrap();
    store.add_face(face(bob, 2, "m1", vector(2, DIM))).unwrap();
    store.add_face(face(ann, 3, "m1", vector(3, DIM))).unwrap();
    assert_eq!(store.remove_person("Robert").unwrap(), 2);
    assert!(store.person(bob).unwrap().is_none());
    assert_eq!(store.face_count(), 1);
    assert!(store.face_by_sha256(&sha(1)).unwrap().is_none());
    assert!(matches!(store.remove_person("Robert"), Err(StoreError::NotFound(_))));
    store.verify_integrity().unwrap();
}

#[test]
fn faces_are_stored_and_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p = store.add_person("Ann", BTreeMap::new()).unwrap();
    let v = vec![3.0, 4.0, 0.0, 0.0];
    let id = store.add_face(face(p, 7, "m1", v)).unwrap();
    let f = store.face(id).unwrap().unwrap();
    assert_eq!((f.person, f.source_name.as_str(), f.source_sha256), (p, "img_00007.jpg", sha(7)));
    assert_eq!(f.landmarks[4], [65.0, 80.0]);
    assert_eq!(store.face_by_sha256(&sha(7)).unwrap(), Some(id));
    assert_eq!(store.face_crop(id).unwrap(), b"crop-bytes-7");
    // Stored L2-normalised: (3,4) / 5.
    assert_eq!(store.embedding(id, "m1").unwrap().unwrap(), vec![0.6, 0.8, 0.0, 0.0]);
    assert_eq!(store.embedding(id, "other").unwrap(), None);
    assert_eq!(store.active_model().unwrap().as_deref(), Some("m1"));
    assert_eq!(store.faces_of(p).unwrap().len(), 1);

    // Re-enrolling the same image is refused, so callers can treat it as a no-op.
    assert!(matches!(store.add_face(face(p, 7, "m1", vec![1.0, 0.0, 0.0, 0.0])), Err(StoreError::Duplicate(_))));
    // Unknown people, bad vectors and wrong dimensions are clear errors.
    let ghost = fdb_storage::PersonId(999_999);
    assert!(matches!(store.add_face(face(ghost, 8, "m1", vec![1.0; 4])), Err(StoreError::NotFound(_))));
    assert!(matches!(store.add_face(face(p, 9, "m1", vec![0.0; 4])), Err(StoreError::InvalidEmbedding(_))));
    assert!(matches!(store.add_face(face(p, 9, "m1", vec![f32::NAN; 4])), Err(StoreError::InvalidEmbedding(_))));
    let vector_bytes = store.stats().unwrap().vector_bytes;
    match store.add_face(face(p, 9, "m1", vec![1.0; 5])) {
        Err(e @ StoreError::InvalidEmbedding(_)) => {
            assert!(e.to_string().contains("model \"m1\"") && e.to_string().contains("4 dimensions"), "{e}")
        }
        other => panic!("expected InvalidEmbedding, got {other:?}"),
    }
    // A face by another model than the database's could never be searched: refused, by name.
    let err = store.add_face(face(p, 9, "m2", vec![1.0; 4])).unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)) && err.to_string().contains("img_00009.jpg"), "{err}");
    let mixed = vec![face(p, 9, "m1", vec![1.0; 4]), face(p, 10, "m2", vec![1.0; 4])];
    assert!(matches!(store.add_faces(mixed), Err(StoreError::InvalidArgument(_))));
    // Nothing of the refused faces is left: not even a row in a vector file.
    assert!(store.face_by_sha256(&sha(9)).unwrap().is_none());
    assert_eq!(store.stats().unwrap().vector_bytes, vector_bytes);
    assert_eq!(store.vector_ids(), vec!["m1".to_string()]);
    assert!(matches!(store.search(&[1.0; 5], 1, None), Err(StoreError::InvalidEmbedding(_))));

    store.remove_face(id).unwrap();
    assert!(store.face(id).unwrap().is_none());
    assert!(matches!(store.face_crop(id), Err(StoreError::NotFound(_))));
    assert!(matches!(store.remove_face(id), Err(StoreError::NotFound(_))));
    assert_eq!(store.face_by_sha256(&sha(7)).unwrap(), None);
    store.verify_integrity().unwrap();
}

#[test]
fn a_batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p = store.add_person("Ann", BTreeMap::new()).unwrap();
    store.add_face(face(p, 1, "m1", vector(1, DIM))).unwrap();
    // The third face repeats an enrolled image: nothing of the batch may be stored.
    let batch = vec![face(p, 2, "m1", vector(2, DIM)), face(p, 3, "m1", vector(3, DIM)), face(p, 1, "m1", vector(9, DIM))];
    let vector_bytes = store.stats().unwrap().vector_bytes;
    assert!(matches!(store.add_faces(batch), Err(StoreError::Duplicate(_))));
    assert_eq!(store.face_count(), 1);
    // The vectors written ahead of the refused transaction are taken back.
    assert_eq!(store.stats().unwrap().vector_bytes, vector_bytes);
    assert!(store.face_by_sha256(&sha(2)).unwrap().is_none());
    assert_eq!(store.search(&vector(2, DIM), 5, None).unwrap().len(), 1);
    store.verify_integrity().unwrap();
}

#[test]
fn an_import_stores_every_batch_then_builds_one_index_that_reopens_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let people: Vec<_> = (0..30).map(|p| store.add_person(&format!("person {p}"), BTreeMap::new()).unwrap()).collect();
    let early = store.add_face(face(people[0], 1, "m1", vector(1, DIM))).unwrap();
    let batches: Vec<Vec<_>> = (0..6u64).map(|b| (0..100u64).map(|i| 2 + b * 100 + i).map(|n| face(people[(n % 30) as usize], n, "m1", vector(n, DIM))).collect()).collect();
    let mut items: Vec<(u64, Vec<f32>)> = vec![(early.0, vector(1, DIM))];
    let ids = store.import_faces(batches.clone()).unwrap();
    assert_eq!(ids.len(), 600);
    items.extend(ids.iter().map(|id| id.0).zip(batches.iter().flatten().map(|f| f.embedding.clone())));
    assert_eq!(store.stats().unwrap().index_points, 601);
    for q in 0..30u64 {
        let query = vector(20_000 + q, DIM);
        let got: Vec<u64> = store.search(&query, 10, Some(200)).unwrap().iter().map(|h| h.face.0).collect();
        assert_eq!(got, exact_top_k(&query, &items, 10), "query {q}");
    }
    store.verify_integrity().unwrap();

    // A batch that fails (a repeated image) ends the import; the batches before it stay, indexed.
    let p = people[1];
    let more = vec![vec![face(p, 900, "m1", vector(900, DIM))], vec![face(p, 901, "m1", vector(901, DIM)), face(p, 5, "m1", vector(5, DIM))], vec![face(p, 902, "m1", vector(902, DIM))]];
    assert!(matches!(store.import_faces(more), Err(StoreError::Duplicate(_))));
    assert_eq!(store.face_count(), 602);
    assert!(store.face_by_sha256(&sha(901)).unwrap().is_none() && store.face_by_sha256(&sha(902)).unwrap().is_none());
    assert_eq!(store.search(&vector(900, DIM), 1, None).unwrap()[0].face, store.face_by_sha256(&sha(900)).unwrap().unwrap());
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 }, "the import wrote its index snapshot");
    store.verify_integrity().unwrap();
}

#[test]
fn search_matches_an_exact_scan_and_reports_squared_l2() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 40, 10);
    for q in 0..50u64 {
        let query = vector(10_000 + q, DIM);
        let hits = store.search(&query, 10, Some(200)).unwrap();
        let got: Vec<u64> = hits.iter().map(|h| h.face.0).collect();
        assert_eq!(got, exact_top_k(&query, &items, 10), "query {q}");
        let (_, v) = items.iter().find(|(id, _)| *id == hits[0].face.0).unwrap();
        assert!((hits[0].distance - squared_l2(&unit(&query), &unit(v))).abs() < 1e-4);
        assert_eq!(hits[0].person, store.face(hits[0].face).unwrap().unwrap().person);
    }
    // A stored vector finds itself at distance 0.
    let hits = store.search(&items[17].1, 1, None).unwrap();
    assert_eq!(hits[0].face.0, items[17].0);
    assert!(hits[0].distance < 1e-5);
}

#[test]
fn deleted_faces_are_never_returned_and_compaction_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 30, 10);
    assert_eq!(store.searchable_faces(), 300);
    let removed: Vec<&(u64, Vec<f32>)> = items.iter().step_by(7).collect();
    for (id, _) in &removed {
        store.remove_face(FaceId(*id)).unwrap();
    }
    assert_eq!(store.stats().unwrap().tombstones, removed.len());
    assert_eq!(store.searchable_faces(), 300 - removed.len());
    store.verify_integrity().unwrap();
    let live: Vec<(u64, Vec<f32>)> = items.iter().filter(|(id, _)| !removed.iter().any(|(r, _)| r == id)).cloned().collect();
    for (id, v) in &removed {
        let hits = store.search(v, 10, Some(200)).unwrap();
        assert!(hits.iter().all(|h| h.face.0 != *id), "deleted face {id} returned");
        let got: Vec<u64> = hits.iter().map(|h| h.face.0).collect();
        assert_eq!(got, exact_top_k(v, &live, 10));
    }
    let before = store.stats().unwrap().vector_bytes;
    store.compact().unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.tombstones, stats.index_points, stats.faces), (0, live.len(), live.len()));
    assert_eq!(store.searchable_faces(), live.len());
    // The removed faces' rows (16 bytes of head and DIM f32 each) left the vector file.
    assert_eq!(before - stats.vector_bytes, (removed.len() * (16 + 4 * DIM)) as u64);
    store.verify_integrity().unwrap();
    for (id, v) in &live {
        assert_eq!(store.embedding(FaceId(*id), "m1").unwrap(), Some(unit(v)));
    }
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 });
    store.verify_integrity().unwrap();
}

#[test]
fn a_failed_removal_hides_nothing_and_unhides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 3, 10);
    let (gone, v) = &items[4];
    store.remove_face(FaceId(*gone)).unwrap();
    // Removing it again fails, and it stays hidden.
    assert!(matches!(store.remove_face(FaceId(*gone)), Err(StoreError::NotFound(_))));
    assert!(store.search(v, 5, None).unwrap().iter().all(|h| h.face.0 != *gone));
    // Removing a face that never existed fails and hides nothing.
    assert!(matches!(store.remove_face(FaceId(u64::MAX)), Err(StoreError::NotFound(_))));
    assert_eq!(store.stats().unwrap().tombstones, 1);
    assert_eq!(store.searchable_faces(), 29);
    let (kept, kept_v) = &items[5];
    assert_eq!(store.search(kept_v, 1, None).unwrap()[0].face.0, *kept);
    store.verify_integrity().unwrap();
}

#[test]
fn tombstones_past_the_fraction_trigger_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions { compact_fraction: 0.1, ..StoreOptions::default() };
    let store = Store::open(&dir.path().join("db"), opts).unwrap();
    let p = store.add_person("Ann", BTreeMap::new()).unwrap();
    let ids = store.add_faces((1..=50).map(|n| face(p, n, "m1", vector(n, DIM))).collect()).unwrap();
    for id in &ids[..5] {
        store.remove_face(*id).unwrap();
    }
    assert_eq!(store.stats().unwrap().tombstones, 5); // 5 of 50 is not above 10%
    store.remove_face(ids[5]).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.tombstones, stats.index_points), (0, 44));
    store.verify_integrity().unwrap();
}

#[test]
fn reopen_loads_the_snapshot_and_adds_later_faces_without_rebuilding() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions { snapshot_after: 100, ..StoreOptions::default() };
    let (store, mut items) = populated_with(dir.path(), opts.clone(), 20, 10);
    store.flush().unwrap(); // 200 new points >= 100: writes a snapshot
    let p = store.add_person("late", BTreeMap::new()).unwrap();
    for n in 0..30u64 {
        let v = vector(50_000 + n, DIM);
        let id = store.add_face(face(p, 50_000 + n, "m1", v.clone())).unwrap();
        items.push((id.0, v));
    }
    store.remove_face(FaceId(items[3].0)).unwrap();
    let removed = items.remove(3);
    store.flush().unwrap(); // 30 new points < 100: no new snapshot
    // Simulate a crash after flush: no Drop, so no snapshot on close.
    std::mem::forget(store);

    // The leaked Db still holds its lock in this process, so reopen a copy of the directory.
    let copy = dir.path().join("copy");
    copy_dir(&dir.path().join("db"), &copy);
    let store = Store::open(&copy, opts).unwrap();
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 30 });
    store.verify_integrity().unwrap();
    for (id, v) in items.iter().step_by(9) {
        assert_eq!(store.search(v, 1, None).unwrap()[0].face.0, *id);
    }
    assert!(store.search(&removed.1, 10, None).unwrap().iter().all(|h| h.face.0 != removed.0));
    drop(store); // a clean close snapshots the 30 extra points
    let store = Store::open(&copy, StoreOptions::default()).unwrap();
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 });
    store.verify_integrity().unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_corrupt_snapshot_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 10, 10);
    drop(store);
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let snap = db.open_tree("index_snapshot").unwrap();
        let mut chunk = snap.get("graph/00000000").unwrap().unwrap().to_vec();
        let mid = chunk.len() / 2;
        chunk[mid] ^= 0x5a;
        snap.insert("graph/00000000", chunk).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.index_load(), IndexLoad::Rebuilt);
    store.verify_integrity().unwrap();
    assert_eq!(store.search(&items[5].1, 1, None).unwrap()[0].face.0, items[5].0);
    drop(store);
    assert_eq!(open(dir.path()).index_load(), IndexLoad::Snapshot { added: 0 });
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta").unwrap().insert("schema_version", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    match Store::open(&dir.path().join("db"), StoreOptions::default()) {
        Err(e @ StoreError::NewerSchema { found: 99, supported: fdb_storage::SCHEMA_VERSION, .. }) => {
            assert!(e.to_string().contains("newer"), "{e}")
        }
        other => panic!("expected NewerSchema, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_second_open_is_locked_and_the_directory_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let err = Store::open(&path, StoreOptions::default()).err().expect("second open must fail");
    assert!(matches!(err, StoreError::Locked { .. }));
    assert!(err.to_string().contains("database is in use by another process"), "{err}");
    drop(store);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
    let missing = dir.path().join("missing");
    let opts = StoreOptions { create: false, ..StoreOptions::default() };
    assert!(matches!(Store::open(&missing, opts), Err(StoreError::NoDatabase { .. })));
    assert!(!missing.exists());
}

#[test]
fn settings_and_user_meta_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.threshold().unwrap(), None);
    store.set_threshold(1.1).unwrap();
    assert!(matches!(store.set_threshold(5.0), Err(StoreError::InvalidArgument(_))));
    store.meta_set("ui.theme", b"dark").unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.threshold().unwrap(), Some(1.1));
    assert_eq!(store.meta_get("ui.theme").unwrap().as_deref(), Some(&b"dark"[..]));
    assert_eq!(store.meta_get("absent").unwrap(), None);
    assert_eq!((store.schema_version(), store.metric()), (3, "squared_l2_unit"));
}

#[test]
fn switch_model_reembeds_everything_then_flips() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 10, 10);
    // A face left without a new embedding: refused, old model still active and searchable.
    let partial = items[1..].iter().map(|(id, _)| (FaceId(*id), vector(id + 7, 16)));
    assert!(matches!(store.switch_model("m2", partial), Err(StoreError::InvalidArgument(_))));
    assert_eq!(store.active_model().unwrap().as_deref(), Some("m1"));
    assert_eq!(store.search(&items[0].1, 1, None).unwrap()[0].face.0, items[0].0);

    let new: Vec<(u64, Vec<f32>)> = items.iter().map(|(id, _)| (*id, vector(id + 7, 16))).collect();
    store.switch_model("m2", new.iter().map(|(id, v)| (FaceId(*id), v.clone()))).unwrap();
    assert_eq!(store.active_model().unwrap().as_deref(), Some("m2"));
    store.verify_integrity().unwrap();
    for (id, v) in new.iter().step_by(11) {
        let hits = store.search(v, 1, None).unwrap();
        assert_eq!(hits[0].face.0, *id);
        assert!(hits[0].distance < 1e-5);
    }
    assert!(matches!(store.search(&items[0].1, 1, None), Err(StoreError::InvalidEmbedding(_))));
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 });
    assert_eq!(store.search(&new[3].1, 1, None).unwrap()[0].face.0, new[3].0);
}

#[test]
fn readers_search_while_a_writer_adds() {
    let dir = tempfile::tempdir().unwrap();
    let (store, items) = populated(dir.path(), 10, 10);
    let p = store.add_person("writer", BTreeMap::new()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 0..200u64 {
                store.add_face(face(p, 90_000 + n, "m1", vector(90_000 + n, DIM))).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for (id, v) in items.iter().cycle().take(300) {
                    assert_eq!(store.search(v, 1, Some(100)).unwrap()[0].face.0, *id);
                }
            });
        }
    });
    assert_eq!(store.face_count(), 300);
    store.verify_integrity().unwrap();
}

/// `tests/fixtures/schema1` was written by the fdb of schema 1 (commit bced9ff): people
/// `person0`..`person5` with faces n = 10p..10p+9 by model "m1" (vector(n, 16)), switched to
/// "m2" (vector(n + 1000, 8)) and back to "m1", then faces 3, 17 and 42 removed. Opening it
/// moves the vectors of both models, and the removed faces' (the tombstones' values), out of
/// sled into vector files.
#[test]
fn a_schema_1_database_is_migrated_with_every_vector_and_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema1"), &path);
    let n_of = |store: &Store, id: FaceId| -> u64 {
        let name = store.face(id).unwrap().unwrap().source_name;
        name.trim_start_matches("img_").trim_end_matches(".jpg").parse().unwrap()
    };
    for round in 0..2 {
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 }, "round {round}");
        assert_eq!(store.vector_ids(), vec!["m1".to_string(), "m2".to_string()]);
        store.verify_integrity().unwrap();
        let stats = store.stats().unwrap();
        assert_eq!((stats.faces, stats.tombstones, stats.index_points), (57, 3, 60));
        let mut live = Vec::new();
        for person in store.people().unwrap() {
            for f in store.faces_of(person.id).unwrap() {
                let n = n_of(&store, f.id);
                assert_eq!(store.embedding(f.id, "m1").unwrap(), Some(unit(&vector(n, 16))), "face {n}");
                assert_eq!(store.embedding(f.id, "m2").unwrap(), Some(unit(&vector(n + 1000, 8))), "face {n}");
                live.push((f.id.0, vector(n, 16)));
            }
        }
        assert_eq!(live.len(), 57);
        for (id, v) in &live {
            let got: Vec<u64> = store.search(v, 10, Some(100)).unwrap().iter().map(|h| h.face.0).collect();
            assert_eq!(got, exact_top_k(v, &live, 10), "face {id}");
        }
        // The removed faces are in the graph (their vectors were the tombstones' values), never found.
        for n in [3u64, 17, 42] {
            assert!(store.search(&vector(n, 16), 1, None).unwrap()[0].distance > 1e-3);
        }
        drop(store);
    }
    let db = sled::open(&path).unwrap();
    assert!(db.tree_names().iter().all(|n| !n.starts_with(b"emb/")));
    let version = db.open_tree("meta").unwrap().get("schema_version").unwrap().unwrap();
    assert_eq!(version.as_ref(), &fdb_storage::SCHEMA_VERSION.to_be_bytes());
    drop(db);
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    store.compact().unwrap();
    assert_eq!((store.stats().unwrap().tombstones, store.stats().unwrap().index_points), (0, 57));
    store.verify_integrity().unwrap();
}

#[test]
fn close_saves_the_index_and_gives_the_database_back() {
    let dir = tempfile::tempdir().unwrap();
    // No snapshot is due at flush before 1,000 new points: only a close saves these 200.
    let opts = StoreOptions { snapshot_after: 1000, ..StoreOptions::default() };
    let (store, items) = populated_with(dir.path(), opts, 20, 10);
    store.flush().unwrap();
    store.close().unwrap();
    let path = dir.path().join("db");
    assert!(!path.join("lock.pid").exists(), "the lock holder's pid file goes with the close");
    // sled lets go of its file lock from a background thread: the reopen may wait for it.
    let store = Store::open(&path, StoreOptions { lock_wait: std::time::Duration::from_secs(10), ..StoreOptions::default() }).unwrap();
    assert_eq!(store.index_load(), IndexLoad::Snapshot { added: 0 }, "the close wrote the index snapshot");
    for (id, v) in items.iter().step_by(17) {
        assert_eq!(store.search(v, 1, None).unwrap()[0].face.0, *id);
    }
}
