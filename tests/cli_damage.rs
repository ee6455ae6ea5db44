//! Damage injected into a database through its files, then `fdb check`, `fdb repair` and the
//! read-only commands through the real binary. Before: a deleted or cut vector file left `fdb
//! info` counting every face and `fdb search` answering "unknown" for enrolled people.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const PEOPLE: [&str; 3] = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];

fn photos(numbers: &[usize]) -> Vec<String> {
    PEOPLE
        .iter()
        .flat_map(|p| numbers.iter().map(move |i| fixtures().join("people").join(p).join(format!("{p}_{i:04}.jpg"))))
        .map(|p| p.display().to_string())
        .collect()
}

/// A database of the 12 fixture photos, enrolled once and copied for each kind of damage.
fn enrolled(dir: &Path) -> PathBuf {
    let db = dir.join("enrolled");
    let mut args = vec!["enroll".to_string()];
    args.extend(photos(&[1, 2, 3, 4]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(12)), "{summary}");
    db
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

fn vector_file(db: &Path) -> PathBuf {
    let files: Vec<PathBuf> = files_in(&db.join("vectors")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "f32")).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn flip(path: &Path, at: usize, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[at..at + n] {
        *b ^= 0x5a;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Every fixture person's photos are found as that person (the 4th is enrolled, so distance ~0).
fn assert_everyone_found(db: &Path) {
    let probes = photos(&[1, 4]);
    let mut args = vec!["search"];
    args.extend(probes.iter().map(String::as_str));
    let (code, rows) = fdb_json(db, &args);
    let rows = rows.as_array().unwrap_or_else(|| panic!("{rows}"));
    for (probe, row) in probes.iter().zip(rows) {
        let expected = PEOPLE.iter().find(|p| probe.contains(*p)).unwrap();
        assert_eq!(row["faces"][0]["identity"].as_str(), Some(*expected), "{row}");
    }
    assert_eq!(code, Some(0));
}

/// The database's vectors id and every face's stored vector, read through the store.
fn stored_vectors(db: &Path) -> (String, std::collections::BTreeMap<u64, Vec<f32>>) {
    let store = fdb_storage::Store::open(db, fdb_storage::StoreOptions { create: false, ..Default::default() }).unwrap();
    let vectors = store.active_model().unwrap().expect("an enrolled database names its vectors");
    let mut rows = std::collections::BTreeMap::new();
    for person in store.people().unwrap() {
        for face in store.faces_of(person.id).unwrap() {
            rows.insert(face.id.0, store.embedding(face.id, &vectors).unwrap().unwrap_or_default());
        }
    }
    (vectors, rows)
}

/// Each repaired face's vector is the one enrolment stored: the same model and recipe, only the
/// embedder's batch differs. (A plain embedding of a crop enrolled with `flip` differs by up to
/// ~0.02 in a component.)
fn assert_vectors_equal(what: &str, before: &std::collections::BTreeMap<u64, Vec<f32>>, after: &std::collections::BTreeMap<u64, Vec<f32>>) {
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "{what}: the same faces");
    for (face, v) in before {
        let w = &after[face];
        assert_eq!(v.len(), w.len(), "{what}: face {face}");
        let worst = v.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{what}: face {face}'s repaired vector differs from the enrolled one by up to {worst}");
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A kind of damage: its name, what it does to a database, and how many faces lose their vector.
type Damage = (&'static str, fn(&Path), usize);

#[test]
fn lost_cut_or_flipped_vectors_are_reported_and_repaired_from_the_crops() {
    let tmp = tempfile::tempdir().unwrap();
    let original = enrolled(tmp.path());
    let (vectors, enrolled_rows) = stored_vectors(&original);
    assert!(vectors.ends_with("#centred"), "a new database embeds with the default recipe: {vectors}");
    let damages: [Damage; 3] = [
        ("deleted", |db| std::fs::remove_file(vector_file(db)).unwrap(), 12),
        // The header and the first 4 rows of 2,064 bytes stay.
        ("truncated", |db| std::fs::File::options().write(true).open(vector_file(db)).unwrap().set_len(16 + 4 * 2064 + 100).unwrap(), 8),
        // 64 bytes across the end of row 5 and the start of row 6.
        ("flipped", |db| flip(&vector_file(db), 16 + 6 * 2064 - 32, 64), 2),
    ];
    for (what, damage, missing) in damages {
        let db = tmp.path().join(what);
        copy_dir(&original, &db);
        damage(&db);

        // Read-only commands refuse to answer instead of saying "unknown".
        for args in [vec!["info"], vec!["search", &photos(&[1])[0]], vec!["list"]] {
            let out = fdb(&db, &args);
            assert_eq!(out.status.code(), Some(2), "{what}: {args:?}");
            let err = stderr(&out);
            assert!(err.contains("needs a repair") && err.contains(&format!("{missing} faces")), "{what}: {err}");
        }
        let (code, report) = fdb_json(&db, &["check"]);
        assert_eq!(code, Some(1), "{what}: {report}");
        assert_eq!(report["check"]["missing_vectors"].as_array().unwrap().len(), missing, "{what}: {report}");

        let (code, report) = fdb_json(&db, &["repair"]);
        assert_eq!(code, Some(0), "{what}: {report}");
        assert_eq!(report["repair"]["restored"].as_array().unwrap().len(), missing, "{what}: {report}");
        assert_eq!(report["repair"]["lost"].as_array().unwrap().len(), 0, "{what}: {report}");
        let (code, report) = fdb_json(&db, &["check"]);
        assert_eq!((code, report["healthy"].as_bool()), (Some(0), Some(true)), "{what}: {report}");
        assert_vectors_equal(what, &enrolled_rows, &stored_vectors(&db).1);
        assert_everyone_found(&db);
    }
}

#[test]
fn a_damaged_snapshot_is_rebuilt_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    {
        let sled = sled::open(&db).unwrap();
        let tree = sled.open_tree("index_snapshot").unwrap();
        let key = tree.iter().keys().map(|k| k.unwrap()).find(|k| k.starts_with(b"graph/")).expect("a graph chunk");
        let mut chunk = tree.get(&key).unwrap().unwrap().to_vec();
        let mid = chunk.len() / 2;
        chunk[mid] ^= 0xff;
        tree.insert(key, chunk).unwrap();
        sled.flush().unwrap();
    }
    let (code, report) = fdb_json(&db, &["check"]);
    assert_eq!(code, Some(0), "a rebuilt snapshot loses nothing: {report}");
    assert!(report["check"]["snapshot_rebuilt"].as_str().is_some_and(|s| s.contains("checksum")), "{report}");
    assert_everyone_found(&db);
}

#[test]
fn a_lost_crop_blob_is_reported_and_faces_with_nothing_left_are_named_as_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let original = enrolled(tmp.path());

    // sled keeps the crops' leaf in a blob file: deleting the blobs loses the crops.
    let crops_only = tmp.path().join("crops_only");
    copy_dir(&original, &crops_only);
    let blobs = files_in(&crops_only.join("blobs"));
    assert!(!blobs.is_empty(), "sled wrote no blob");
    blobs.iter().for_each(|b| std::fs::remove_file(b).unwrap());
    let (code, report) = fdb_json(&crops_only, &["check"]);
    assert_eq!(code, Some(1), "{report}");
    let without_crop = report["check"]["unreadable_crops"].as_array().unwrap().len();
    assert!(without_crop > 0, "{report}");
    // The embeddings are intact: searches still find everyone, and a repair keeps every face and
    // lets new faces in (sled cannot write into a tree that lost a page).
    assert_everyone_found(&crops_only);
    let (code, report) = fdb_json(&crops_only, &["repair"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["repair"]["crops_missing"].as_array().unwrap().len(), without_crop, "{report}");
    let stranger = fixtures().join("strangers/AJ_Cook_0001.jpg").display().to_string();
    let (code, summary) = fdb_json(&crops_only, &["enroll", "--name", "AJ_Cook", &stranger]);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(1)), "{summary}");
    assert_everyone_found(&crops_only);

    // Crops and embeddings both gone: those faces are lost, and named.
    let both = tmp.path().join("both");
    copy_dir(&original, &both);
    files_in(&both.join("blobs")).iter().for_each(|b| std::fs::remove_file(b).unwrap());
    std::fs::remove_file(vector_file(&both)).unwrap();
    let (code, report) = fdb_json(&both, &["repair"]);
    assert_eq!(code, Some(1), "faces were lost: {report}");
    let lost = report["repair"]["lost"].as_array().unwrap();
    let restored = report["repair"]["restored"].as_array().unwrap();
    assert_eq!(lost.len() + restored.len(), 12, "{report}");
    assert!(!lost.is_empty());
    for face in lost {
        assert!(PEOPLE.contains(&face["person"].as_str().unwrap()) && face["source"].as_str().unwrap().ends_with(".jpg"), "{face}");
    }
    let (code, report) = fdb_json(&both, &["check"]);
    assert_eq!((code, report["healthy"].as_bool()), (Some(0), Some(true)), "{report}");
    let (_, info) = fdb_json(&both, &["info"]);
    assert_eq!(info["stats"]["faces"].as_u64(), Some(12 - lost.len() as u64), "{info}");
}
