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

/// The one face of an answered search row (an error row fails the test).
fn only_face(row: &serde_json::Value) -> &serde_json::Value {
    assert!(row.get("error").is_none(), "the search failed: {row}");
    let faces = row["faces"].as_array().unwrap_or_else(|| panic!("no faces in {row}"));
    assert_eq!(faces.len(), 1, "{row}");
    &faces[0]
}

/// The base model's manifest entry in the installed models dir.
fn base_model() -> fdb_models::weights::ModelEntry {
    let installed = fdb_models::weights::installed(&fdb_models::weights::default_models_dir()).expect("the weights are installed");
    installed.manifest.get(fdb_models::weights::FACENET_MODEL_ID).expect("the base model is in the manifest").clone()
}

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
    // The thresholds come from the model manifest's figures for the default recipe: 1:1 its
    // LFW threshold, 1:N the threshold its LFW impostor tail gives for 9 faces at the default 1%
    // stranger-accept target (three people are far too few for the gallery's own calibration).
    let model = base_model();
    let figures = model.recipes.iter().find(|f| f.recipe == fdb::recipe::DEFAULT_RECIPE.tag()).expect("figures of the default recipe");
    let verify_t = figures.default_threshold;
    let tail = fdb::decision::LowerTail { pairs: figures.impostor_pairs, points: figures.impostor_tail.clone() };
    let search_t = fdb::decision::search_threshold_from_tail(verify_t, &tail, fdb::decision::DEFAULT_FAR_1N, 9);
    assert!(search_t < verify_t, "9 faces tighten the search threshold below {verify_t}");
    let (code, t) = fdb_json(&db, &["threshold"]);
    assert_eq!(code, Some(0));
    assert!((t["verify_threshold"].as_f64().unwrap() - f64::from(verify_t)).abs() < 1e-6, "{t} vs {verify_t}");
    assert!((t["search_threshold"].as_f64().unwrap() - f64::from(search_t)).abs() < 1e-6, "{t} vs {search_t}");

    let probes: Vec<String> = PEOPLE.iter().flat_map(|p| person_images(p, &[4])).collect();
    let (code, rows) = search_rows(&db, &[], &probes);
    assert_eq!(code, Some(0));
    for (person, row) in PEOPLE.iter().zip(&rows) {
        let face = only_face(row);
        assert_eq!(face["identity"].as_str(), Some(*person), "{row}");
        assert_eq!(face["matches"][0]["person"].as_str(), Some(*person), "{row}");
        let t = face["threshold"].as_f64().unwrap();
        assert!((t - f64::from(search_t)).abs() < 1e-6, "search threshold {t}, the manifest gives {search_t}");
    }
    let strangers: Vec<String> = std::fs::read_dir(fixtures().join("strangers"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert_eq!(strangers.len(), 3);
    // Each stranger's photo is searched (an error or a missing face would not be an "unknown");
    // "unknown" is a negative answer: exit 1.
    let (code, rows) = search_rows(&db, &[], &strangers);
    assert_eq!(code, Some(1));
    for row in &rows {
        let face = only_face(row);
        assert!(!face["matches"].as_array().unwrap().is_empty(), "{row}");
        assert!(face["identity"].is_null(), "a stranger was accepted: {row}");
    }

    // verify: 0 same, 1 different, 2 error naming the file.
    let blair = person_images("Tony_Blair", &[1, 4]);
    let serena = person_images("Serena_Williams", &[1]);
    let (code, same) = fdb_json(&db, &["verify", &blair[0], &blair[1]]);
    assert_eq!((code, same["same"].as_bool()), (Some(0), Some(true)), "{same}");
    let used = same["threshold"].as_f64().unwrap();
    assert!((used - f64::from(verify_t)).abs() < 1e-6, "verify uses the manifest's threshold {verify_t}: {same}");
    assert!(same["distance"].as_f64().unwrap() < f64::from(verify_t), "{same}");
    let (code, different) = fdb_json(&db, &["verify", &blair[0], &serena[0]]);
    assert_eq!((code, different["same"].as_bool()), (Some(1), Some(false)), "{different}");
    assert!(different["distance"].as_f64().unwrap() > f64::from(verify_t), "{different}");
    let missing = tmp.path().join("nope.jpg");
    let out = fdb(&db, &["verify", &blair[0], missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jpg"));

    // Remove a person; after reopening they are gone and the others are intact.
    let (code, removed) = fdb_json(&db, &["remove", "Serena_Williams"]);
    assert_eq!((code, removed["faces"].as_u64()), (Some(0), Some(3)), "{removed}");
    let (code, list) = fdb_json(&db, &["list"]);
    assert_eq!(code, Some(0));
    let names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&"Serena_Williams"));
    let (code, rows) = search_rows(&db, &["-k", "5"], &probes[1..2]);
    // Exit 0 if someone was accepted, 1 for "unknown" (the likely answer now Serena is gone).
    assert_eq!(code, Some(if only_face(&rows[0])["identity"].is_null() { 1 } else { 0 }), "{rows:?}");
    let matches = only_face(&rows[0])["matches"].as_array().unwrap().clone();
    assert_eq!(matches.len(), 2, "the two people left: {matches:?}");
    assert!(matches.iter().all(|m| m["person"] != "Serena_Williams"));
    let (code, rows) = search_rows(&db, &[], &probes[2..3]);
    assert_eq!(code, Some(0));
    assert_eq!(only_face(&rows[0])["identity"].as_str(), Some("Tony_Blair"));
}

#[test]
fn bad_files_fail_by_name_and_leave_the_database_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled_db(tmp.path());
    let (code, before) = fdb_json(&db, &["info"]);
    assert_eq!((code, before["stats"]["faces"].as_u64()), (Some(0), Some(9)), "{before}");

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
    assert_eq!(code, Some(2), "a batch with unreadable files is an error (exit 2)");
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
    let (code, after) = fdb_json(&db, &["info"]);
    assert_eq!(code, Some(0));
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
