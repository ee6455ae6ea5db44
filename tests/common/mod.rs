//! Helpers shared by the integration tests: where the data is, and how to run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod data;
#[allow(unused_imports)]
pub use data::{data_required, missing, shared, shared_root, shared_with, REQUIRE_DATA};

/// LFW's images folder in `../shared`: a visible skip without it, a failure under
/// `FDB_REQUIRE_DATA=1`.
pub fn lfw_images() -> Option<PathBuf> {
    shared("datasets/lfw/pairs.txt")?;
    shared("datasets/lfw/images")
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
