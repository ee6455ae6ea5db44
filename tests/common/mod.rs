//! Helpers shared by the integration tests: where the data is, and how to run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod data;
pub mod serve;
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

/// Chromium, for the tests that look at a page in a real browser (CI installs Debian's).
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Headless Chromium on `url` with a profile of its own, its output once it is done.
pub fn headless(url: &str, extra: &[&str], profile: &Path) -> Output {
    Command::new(chromium().expect("Chromium is installed"))
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// Start `fdb --db db ARGS…` in the background, its output discarded: the process a test
/// waits on, holds a lock with, or kills midway.
pub fn fdb_background<S: AsRef<std::ffi::OsStr>>(db: &Path, args: &[S]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fdb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the fdb binary starts")
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

/// `fdb --json search [extra…] paths…`: the rows, checked to be one per photo in the photos'
/// order, and the exit code.
pub fn search_rows(db: &Path, extra: &[&str], paths: &[String]) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut args = vec!["search"];
    args.extend_from_slice(extra);
    args.extend(paths.iter().map(String::as_str));
    let (code, rows) = fdb_json(db, &args);
    let rows = rows.as_array().unwrap_or_else(|| panic!("search printed no list: {rows}")).clone();
    assert_eq!(rows.len(), paths.len(), "one row per photo: {rows:?}");
    for (row, path) in rows.iter().zip(paths) {
        assert_eq!(row["path"].as_str(), Some(path.as_str()), "rows in the photos' order");
    }
    (code, rows)
}

/// A models dir of its own under `dir` (new versions and manifests are written there),
/// sharing the installed weight files through links.
pub fn scratch_models(dir: &Path) -> PathBuf {
    use fdb_models::weights;
    let installed = weights::ensure_installed(&weights::default_models_dir()).expect("models install");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for file in [&installed.facenet, &installed.mtcnn] {
        std::os::unix::fs::symlink(file, models.join(file.file_name().unwrap())).unwrap();
    }
    installed.manifest.write(&models).unwrap();
    models
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

/// Copies the directory tree `from` (a fixture database, say) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
