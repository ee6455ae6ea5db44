//! Arguments, names, errors, exit codes and the lock, through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn photo(name: &str, i: usize) -> String {
    fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg")).display().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn enrolled(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let (code, summary) = fdb_json(&db, &["enroll", &photo("Tony_Blair", 1), &photo("Colin_Powell", 1)]);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(2)), "{summary}");
    db
}

#[test]
fn thresholds_and_counts_outside_their_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    let (a, b) = (photo("Tony_Blair", 2), photo("Colin_Powell", 2));
    // inf and 5 used to call any pair the same person, NaN none.
    for t in ["inf", "5", "NaN", "-0.5"] {
        let out = fdb(&db, &["verify", &format!("--threshold={t}"), &a, &b]);
        assert_eq!(out.status.code(), Some(2), "--threshold {t}");
        assert!(stderr(&out).contains("outside 0..4"), "{t}: {}", stderr(&out));
        let out = fdb(&db, &["threshold", "--", t]);
        assert_eq!(out.status.code(), Some(2), "threshold {t}");
    }
    assert_eq!(fdb(&db, &["verify", "--threshold", "1.2", &a, &b]).status.code(), Some(1));
    // -k 0 used to answer "unknown" for an enrolled person.
    let out = fdb(&db, &["search", "-k", "0", &photo("Tony_Blair", 2)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("0 ranks no one"), "{}", stderr(&out));
}

#[test]
fn retrain_refuses_an_unknown_augmentation_and_one_without_jittered_views() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    let out = fdb(&db, &["retrain", "--augment", "dark", "--jitter", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("geometric, light, camera or all"), "{}", stderr(&out));
    // The photometric presets alter jittered views: without any, the run would train on
    // exactly what `geometric` gives.
    let out = fdb(&db, &["retrain", "--augment", "light"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--jitter"), "{}", stderr(&out));
    // The regularisation, the people sampling and the clean check refuse what they cannot use,
    // before any training.
    let nowhere = tmp.path().join("nowhere").join("images").display().to_string();
    for (args, says) in [
        (vec!["--people-sampling", "easy"], "uniform, hard or hard:FLOOR"),
        (vec!["--l2-to-base=-1"], "--l2-to-base -1"),
        (vec!["--layers", "all", "--l2-to-base", "1"], "--layers all does not take it"),
        (vec!["--lfw", &nowhere], "pairsDevTest.txt"),
    ] {
        let out = fdb(&db, &[&["retrain"][..], &args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn names_are_trimmed_normalised_and_printable() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    // A trailing space used to make a second "Tony_Blair".
    let (code, summary) = fdb_json(&db, &["enroll", "--name", "Tony_Blair ", &photo("Tony_Blair", 2)]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["images"][0]["person"], "Tony_Blair");
    // Decomposed and composed é are one person.
    fdb_json(&db, &["enroll", "--name", "Jose\u{301}", &photo("Serena_Williams", 1)]);
    let (_, summary) = fdb_json(&db, &["enroll", "--name", "Jos\u{e9}", &photo("Serena_Williams", 2)]);
    assert_eq!(summary["images"][0]["person"], "Jos\u{e9}");
    let (_, list) = fdb_json(&db, &["list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"Jos\u{e9}") && names.contains(&"Tony_Blair"), "{names:?}");
    // Escapes and newlines are refused, and nothing is stored.
    for bad in ["\u{1b}[31mRed", "Two\nLines"] {
        let out = fdb(&db, &["enroll", "--name", bad, &photo("Serena_Williams", 3)]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&out).contains("control character"), "{}", stderr(&out));
    }
    assert_eq!(fdb_json(&db, &["list"]).1.as_array().unwrap().len(), 3);
    // Lookups take the same form.
    assert_eq!(fdb(&db, &["rename", " Jose\u{301} ", "Jose"]).status.code(), Some(0));
    assert_eq!(fdb_json(&db, &["list", "Jose"]).1.as_array().unwrap().len(), 2);
}

#[test]
fn a_duplicate_reports_whose_photo_it_is_and_a_missing_file_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    let (code, summary) = fdb_json(&db, &["enroll", "--name", "Other", &photo("Tony_Blair", 1)]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!((summary["images"][0]["status"].as_str(), summary["images"][0]["person"].as_str()), (Some("duplicate"), Some("Tony_Blair")));
    let missing = tmp.path().join("Somebody").join("gone.jpg");
    let (code, summary) = fdb_json(&db, &["enroll", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{summary}");
    let reason = summary["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("gone.jpg: no such file"), "{reason}");
}

#[test]
fn exit_codes_follow_one_table_and_json_errors_are_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    let garbage = tmp.path().join("garbage.jpg");
    std::fs::write(&garbage, b"not a photo").unwrap();
    let stranger = fixtures().join("strangers/AJ_Cook_0001.jpg").display().to_string();
    // search: 0 identified, 1 unknown (a negative answer), 2 an unreadable probe (an error;
    // it used to be 1 where verify said 2).
    assert_eq!(fdb(&db, &["search", &photo("Tony_Blair", 2)]).status.code(), Some(0));
    assert_eq!(fdb(&db, &["search", &stranger]).status.code(), Some(1));
    assert_eq!(fdb(&db, &["search", garbage.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(fdb(&db, &["verify", &photo("Tony_Blair", 2), garbage.to_str().unwrap()]).status.code(), Some(2));
    // enroll: a photo without a face is a negative answer.
    let no_face = fixtures().join("no_face_shapes.png").display().to_string();
    assert_eq!(fdb(&db, &["enroll", "--name", "Nobody", &no_face]).status.code(), Some(1));
    // Errors in JSON name their kind (FdbError::kind): a whole command's, and each photo's.
    let (code, error) = fdb_json(&db, &["rename", "Nobody", "Somebody"]);
    assert_eq!((code, error["kind"].as_str()), (Some(2), Some("unknown_person")), "{error}");
    let (code, error) = fdb_json(&tmp.path().join("no-db-here"), &["list"]);
    assert_eq!((code, error["kind"].as_str()), (Some(2), Some("no_database")), "{error}");
    let (code, summary) = fdb_json(&db, &["enroll", "--name", "Nobody", &no_face, garbage.to_str().unwrap()]);
    let kinds: Vec<&str> = summary["failures"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!((code, kinds), (Some(2), vec!["no_face", "image"]), "{summary}");
    // Argument errors with --json are JSON on stdout, exit 2.
    for args in [vec!["--json", "search", "-k", "zero", "x.jpg"], vec!["--json", "frobnicate"], vec!["--json", "verify", "only_one.jpg"]] {
        let out = fdb(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out:?}"));
        assert!(value["error"].as_str().is_some_and(|e| !e.is_empty()), "{value}");
    }
    let help = fdb(&db, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}

#[test]
fn a_busy_database_is_waited_for_and_its_holder_named() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    // A second fdb holds the database while it loads the networks and enrols ten photos.
    let mut photos: Vec<String> = ["Colin_Powell", "Serena_Williams", "Tony_Blair"]
        .iter()
        .flat_map(|p| (2..=4).map(move |i| photo(p, i)))
        .collect();
    photos.push(fixtures().join("strangers/AJ_Cook_0001.jpg").display().to_string());
    let args: Vec<&str> = std::iter::once("enroll").chain(photos.iter().map(String::as_str)).collect();
    let mut holder = fdb_background(&db, &args);
    let pid_file = db.join("lock.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.starts_with(&holder.id().to_string())) {
        assert!(Instant::now() < deadline, "the enrolment never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let out = fdb(&db, &["--wait", "0.5", "list"]);
    let waited = started.elapsed();
    let busy = out.status.code() == Some(2);
    if busy {
        let err = stderr(&out);
        assert!(err.contains("in use by another process") && err.contains(&format!("pid {}", holder.id())), "{err}");
        assert!(waited >= Duration::from_millis(500), "gave up after {waited:?}");
    }
    // A long enough wait gets in once the enrolment is done.
    let out = fdb(&db, &["--wait", "120", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(holder.wait().unwrap().success());
    assert!(busy, "the enrolment ended before the second process tried the lock");
    assert!(!pid_file.exists(), "the holder removes its pid file");
}
