//! `fdb backup`, `fdb export` and `fdb import` through the real binary on the fixture photos:
//! the copy and the imported database answer a search as the original does; a damaged archive
//! is refused by name and changes nothing; a backup never writes into a non-empty directory;
//! `kill -9` during an import leaves all of it or none.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const PEOPLE: [&str; 2] = ["Colin_Powell", "Serena_Williams"];

fn photo(person: &str, i: usize) -> String {
    fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg")).display().to_string()
}

/// The two fixture people from photos 1–3 each.
fn enrolled(dir: &Path) -> PathBuf {
    let db = dir.join("original");
    let mut args = vec!["enroll".to_string()];
    args.extend(PEOPLE.iter().flat_map(|p| (1..=3).map(move |i| photo(p, i))));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(6)), "{summary}");
    db
}

/// (identity, nearest person, distance) of a search for an enrolled photo and a new one of each
/// person.
fn answers(db: &Path) -> Vec<(String, String, f64)> {
    let probes: Vec<String> = PEOPLE.iter().flat_map(|p| [photo(p, 2), photo(p, 4)]).collect();
    let (code, rows) = search_rows(db, &[], &probes);
    assert_eq!(code, Some(0), "{rows:?}");
    rows.iter()
        .map(|row| {
            let face = &row["faces"][0];
            (
                face["identity"].as_str().unwrap_or("unknown").to_string(),
                face["matches"][0]["person"].as_str().unwrap().to_string(),
                face["matches"][0]["distance"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn listing(db: &Path) -> serde_json::Value {
    let (code, list) = fdb_json(db, &["list"]);
    assert_eq!(code, Some(0), "{list}");
    list
}

#[test]
fn backup_export_and_import_answer_as_the_original_and_damage_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let original = enrolled(tmp.path());
    let expected = answers(&original);
    let names: Vec<&str> = expected.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, ["Colin_Powell", "Colin_Powell", "Serena_Williams", "Serena_Williams"]);

    // backup
    let copy = tmp.path().join("backups/copy");
    let (code, out) = fdb_json(&original, &["backup", copy.to_str().unwrap()]);
    assert_eq!((code, out["backup"]["faces"].as_u64(), out["backup"]["people"].as_u64()), (Some(0), Some(6), Some(2)), "{out}");
    assert_eq!(answers(&copy), expected, "the backup answers as the original");
    let (code, check) = fdb_json(&copy, &["check"]);
    assert_eq!((code, &check["healthy"]), (Some(0), &serde_json::json!(true)), "{check}");

    // a backup into a directory that holds files is refused, and the directory left alone
    let out = fdb(&original, &["backup", copy.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exists and is not empty") && stderr.contains(copy.to_str().unwrap()), "{stderr}");
    assert_eq!(answers(&copy), expected);

    // export, then import into a new database
    let archive = tmp.path().join("faces.fdbarchive");
    let (code, out) = fdb_json(&original, &["export", archive.to_str().unwrap()]);
    assert_eq!((code, out["export"]["faces"].as_u64()), (Some(0), Some(6)), "{out}");
    let imported = tmp.path().join("imported");
    let (code, out) = fdb_json(&imported, &["import", archive.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let r = &out["import"];
    assert_eq!((r["faces_imported"].as_u64(), r["people_created"].as_u64(), r["embeddings_kept"].as_bool()), (Some(6), Some(2), Some(true)), "{out}");
    assert_eq!(answers(&imported), expected, "the imported database answers as the original, at the same distances");
    assert_eq!(listing(&imported), listing(&original));

    // importing again skips every photo
    let (code, out) = fdb_json(&imported, &["import", archive.to_str().unwrap()]);
    assert_eq!((code, out["import"]["faces_imported"].as_u64(), out["import"]["faces_skipped"].as_array().map(Vec::len)), (Some(0), Some(0), Some(6)), "{out}");

    // damaged archives: exit 2, the file and the reason named, the target unchanged
    let good = std::fs::read(&archive).unwrap();
    let target = tmp.path().join("target");
    let (code, _) = fdb_json(&target, &["enroll", &photo("Tony_Blair", 1)]);
    assert_eq!(code, Some(0));
    let before = listing(&target);
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    for (what, bytes, reason) in [("flipped", flipped, "damaged"), ("truncated", good[..good.len() - 100].to_vec(), "truncated")] {
        let damaged = tmp.path().join(format!("{what}.fdbarchive"));
        std::fs::write(&damaged, bytes).unwrap();
        let out = fdb(&target, &["import", damaged.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(damaged.to_str().unwrap()) && stderr.contains(reason), "{what}: {stderr}");
        let (code, json) = fdb_json(&target, &["import", damaged.to_str().unwrap()]);
        assert_eq!(code, Some(2));
        assert!(json["error"].as_str().is_some_and(|e| e.contains(damaged.to_str().unwrap())), "{json}");
        assert_eq!(listing(&target), before, "{what}: the target changed");
        // Nor is a new database made for it.
        let fresh = tmp.path().join(format!("never-{what}"));
        assert_eq!(fdb(&fresh, &["import", damaged.to_str().unwrap()]).status.code(), Some(2));
        assert!(!fresh.exists(), "{what}: a database was made for a damaged archive");
    }
}

/// Bytes in a database's vector files.
fn vector_bytes(db: &Path) -> u64 {
    std::fs::read_dir(db.join("vectors")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

/// The number of faces in a database, by `fdb list`.
fn face_count(db: &Path) -> u64 {
    listing(db).as_array().unwrap().iter().map(|p| p["faces"].as_u64().unwrap()).sum()
}

/// An import into a database whose vectors are plain embeddings computes every face of an
/// archive of the default recipe's embeddings again from its crop: 130 LFW faces, three batches, several
/// seconds, killed at five moments spread over its run.
#[test]
fn kill_9_during_an_import_leaves_all_of_it_or_none() {
    let Some(images) = lfw_images() else { return };
    const FACES: u64 = 130;
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let photos: Vec<String> = lfw_people(&images)
        .into_iter()
        .take(FACES as usize)
        .map(|(name, _)| lfw_image(&images, &name, 1).display().to_string())
        .collect();
    let mut args = vec!["enroll"];
    args.extend(photos.iter().map(String::as_str));
    let (code, summary) = fdb_json(&original, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(FACES)), "{}", summary["failures"]);
    let archive = tmp.path().join("faces.fdbarchive");
    let (code, _) = fdb_json(&original, &["export", archive.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let plain = tmp.path().join("plain");
    let (code, _) = fdb_json(&plain, &["enroll", &photo("Tony_Blair", 1)]);
    assert_eq!(code, Some(0));
    let (code, out) = fdb_json(&plain, &["models", "use", "facenet-20180408-102900", "--recipe", "plain"]);
    assert_eq!(code, Some(0), "{out}");

    // One whole run, to time it.
    let whole = tmp.path().join("whole");
    copy_dir(&plain, &whole);
    let started = std::time::Instant::now();
    let (code, out) = fdb_json(&whole, &["import", archive.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!((code, out["import"]["faces_imported"].as_u64(), out["import"]["embeddings_kept"].as_bool()), (Some(0), Some(FACES), Some(false)), "{out}");
    assert_eq!(face_count(&whole), FACES + 1);

    // When to kill: after a share of the whole run's time, or as soon as the import has appended
    // this many vector rows (a batch about to commit, or just committed), plus a few ms.
    enum When {
        Share(f64),
        Rows(u64, u64),
    }
    let rounds = [When::Rows(64, 0), When::Rows(64, 40), When::Rows(128, 0), When::Share(0.15), When::Share(0.5), When::Share(0.95)];
    let mut outcomes = Vec::new();
    for (round, when) in rounds.into_iter().enumerate() {
        let db = tmp.path().join(format!("round{round}"));
        copy_dir(&plain, &db);
        let mut child = fdb_background(&db, &[Path::new("import"), &archive]);
        let what = match when {
            When::Share(fraction) => {
                std::thread::sleep(took.mul_f64(fraction));
                format!("{fraction} of {took:?}")
            }
            When::Rows(rows, extra_ms) => {
                while child.try_wait().unwrap().is_none() && vector_bytes(&db) < vector_bytes(&plain) + rows * 2064 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                std::thread::sleep(std::time::Duration::from_millis(extra_ms));
                format!("{rows} rows + {extra_ms} ms")
            }
        };
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        // Rows appended by batches that were stored before the kill (left as garbage when
        // the import is taken back).
        let rows_written = (vector_bytes(&db) - vector_bytes(&plain)) / 2064;
        let faces = face_count(&db);
        assert!(faces == 1 || faces == FACES + 1, "round {round} (killed at {what}): {faces} faces");
        let (code, check) = fdb_json(&db, &["check"]);
        assert_eq!(code, Some(0), "round {round}: {check}");
        // Imported again after the kill, it is whole.
        let (code, _) = fdb_json(&db, &["import", archive.to_str().unwrap()]);
        assert_eq!((code, face_count(&db)), (Some(0), FACES + 1), "round {round}");
        outcomes.push((what, finished, rows_written, faces));
    }
    eprintln!("kill -9 during a {took:?} import (when, finished before the kill, vector rows written, faces after): {outcomes:?}");
    assert!(
        outcomes.iter().any(|&(_, finished, rows, faces)| !finished && rows > 0 && faces == 1),
        "no kill fell after a batch was stored: the taking back was not exercised"
    );
}
