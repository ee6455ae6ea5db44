//! The CLI end to end on the LFW photos copied into tests/fixtures, so it runs on any clone:
//! enrol, idempotence, search, strangers, verify exit codes, bad input, remove and reopen, lock.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn person_images(name: &str, numbers: &[usize]) -> Vec<String> {
    numbers
        .iter()
        .map(|i| fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg")).display().to_string())
        .collect()
}

const PEOPLE: [&str; 3] = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];

fn enrolled_db(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let images: Vec<String> = PEOPLE.iter().flat_map(|p| person_images(p, &[1, 2, 3])).collect();
    let mut args = vec!["enroll"];
    args.extend(images.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(9)), "{summary}");
    db
}

#[test]
fn enrol_search_verify_remove_on_fixture_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled_db(tmp.path());

    // Idempotent: the same files again are all duplicates.
    let again: Vec<String> = person_images("Tony_Blair", &[1, 2, 3]);
    let mut args = vec!["enroll"];
    args.extend(again.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((summary["enrolled"].as_u64(), summary["duplicates"].as_u64()), (Some(0), Some(3)), "{summary}");
    assert_eq!(code, Some(0));

    // Each person's fourth photo is found and accepted; strangers are unknown.
    let probes: Vec<String> = PEOPLE.iter().flat_map(|p| person_images(p, &[4])).collect();
    let mut args = vec!["search"];
    args.extend(probes.iter().map(String::as_str));
    let (_, rows) = fdb_json(&db, &args);
    for (person, row) in PEOPLE.iter().zip(rows.as_array().unwrap()) {
        assert_eq!(row["faces"][0]["identity"].as_str(), Some(*person), "{row}");
        let t = row["faces"][0]["threshold"].as_f64().unwrap();
        assert!(t > 0.3 && t < 1.5, "threshold {t}");
    }
    let strangers: Vec<String> = std::fs::read_dir(fixtures().join("strangers"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["search"];
    args.extend(strangers.iter().map(String::as_str));
    let (_, rows) = fdb_json(&db, &args);
    for row in rows.as_array().unwrap() {
        assert!(row["faces"][0]["identity"].is_null(), "a stranger was accepted: {row}");
    }

    // verify: 0 same, 1 different, 2 error naming the file.
    let blair = person_images("Tony_Blair", &[1, 4]);
    let serena = person_images("Serena_Williams", &[1]);
    assert_eq!(fdb(&db, &["verify", &blair[0], &blair[1]]).status.code(), Some(0));
    assert_eq!(fdb(&db, &["verify", &blair[0], &serena[0]]).status.code(), Some(1));
    let missing = tmp.path().join("nope.jpg");
    let out = fdb(&db, &["verify", &blair[0], missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jpg"));

    // Remove a person; after reopening they are gone and the others are intact.
    assert!(fdb(&db, &["remove", "Serena_Williams"]).status.success());
    let (_, list) = fdb_json(&db, &["list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&"Serena_Williams"));
    let (_, rows) = fdb_json(&db, &["search", "-k", "5", &probes[1]]);
    assert!(rows[0]["faces"][0]["matches"].as_array().unwrap().iter().all(|m| m["person"] != "Serena_Williams"));
    let (_, rows) = fdb_json(&db, &["search", &probes[2]]);
    assert_eq!(rows[0]["faces"][0]["identity"].as_str(), Some("Tony_Blair"));
}

#[test]
fn bad_files_fail_by_name_and_leave_the_database_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled_db(tmp.path());
    let (_, before) = fdb_json(&db, &["info"]);

    let empty = tmp.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let truncated = tmp.path().join("truncated.jpg");
    let whole = std::fs::read(&person_images("Colin_Powell", &[4])[0]).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 3]).unwrap();
    let text = tmp.path().join("notes.jpg");
    std::fs::write(&text, b"this is not a photo").unwrap();
    let no_face = fixtures().join("no_face_shapes.png");
    let bomb = fixtures().join("bomb_100000x100000.png");
    let good = person_images("Colin_Powell", &[4]);
    // The good photo twice: the second copy in the same batch is a duplicate, not a failure.
    let files = [empty.clone(), truncated.clone(), text.clone(), no_face.clone(), bomb.clone(), PathBuf::from(&good[0]), PathBuf::from(&good[0])];
    let mut args = vec!["enroll", "--name", "Someone"];
    let file_args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(file_args.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!(code, Some(1), "a batch with failures exits non-zero");
    assert_eq!(summary["enrolled"].as_u64(), Some(1), "the good photo still goes in: {summary}");
    assert_eq!(summary["duplicates"].as_u64(), Some(1), "{summary}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 5, "{summary}");
    for (file, word) in [(&empty, "empty"), (&truncated, "runcated"), (&text, "not an image"), (&no_face, "no face"), (&bomb, "limit")] {
        let reason = failures.iter().find(|f| f["path"] == file.display().to_string()).expect("each file reported")["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains(&*file.file_name().unwrap().to_string_lossy()) && reason.contains(word), "{reason}");
    }
    let (_, after) = fdb_json(&db, &["info"]);
    assert_eq!(after["stats"]["faces"].as_u64(), Some(before["stats"]["faces"].as_u64().unwrap() + 1));
}

#[test]
fn a_database_in_use_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("db");
    let _held = fdb::FaceDb::open(&db_path).unwrap();
    let out = fdb(&db_path, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"), "{}", String::from_utf8_lossy(&out.stderr));
}
