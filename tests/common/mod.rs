//! Helpers shared by the integration tests: where the data is, and how to run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared` beside the checkout (or `$FDB_SHARED`), if it is there.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FDB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"));
    dir.is_dir().then_some(dir)
}

/// LFW's images folder in `../shared`, or `None` with a note that the test is skipped.
pub fn lfw_images(test: &str) -> Option<PathBuf> {
    let dir = shared_dir().map(|s| s.join("datasets/lfw/images")).filter(|d| d.is_dir());
    if dir.is_none() {
        eprintln!("skipping {test}: ../shared/datasets/lfw is not here");
    }
    dir
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// Run `fdb` with `--db db` and the given arguments.
pub fn fdb(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fdb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the fdb binary runs")
}

/// Run `fdb --json …` and parse what it printed.
pub fn fdb_json(db: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = fdb(db, &all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("fdb {args:?} printed no JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code(), value)
}

/// An LFW image path: `DIR/name/name_%04d.jpg`.
pub fn lfw_image(images: &Path, name: &str, i: usize) -> PathBuf {
    images.join(name).join(format!("{name}_{i:04}.jpg"))
}

/// (name, image count) from `lfw-names.txt`.
pub fn lfw_people(images: &Path) -> Vec<(String, usize)> {
    let names = std::fs::read_to_string(images.join("../lfw-names.txt")).expect("lfw-names.txt");
    names
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}
