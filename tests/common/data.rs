//! Test data a clone may lack: `../shared` (LFW, the goldens), the installed weights, the
//! facenet-pytorch wheel. Shared by the tests of the workspace root and of `models/`
//! (`#[path]`-included there), so it uses nothing but std.
//!
//! With `FDB_REQUIRE_DATA=1` (CI sets it) a missing piece fails the test that needs it, naming
//! what is missing. Without it the test is skipped and says so on the terminal: the note goes
//! to the stderr handle itself, which libtest does not capture (it hides a passing test's
//! `println!`). `tests/required_data.rs` lists every missing piece in one place.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The switch that turns a missing piece of data into a failure.
pub const REQUIRE_DATA: &str = "FDB_REQUIRE_DATA";

pub fn data_required() -> bool {
    std::env::var(REQUIRE_DATA).is_ok_and(|v| v == "1")
}

/// The workspace root: the ancestor of this crate holding `tests/fixtures`.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|d| d.join("tests/fixtures").is_dir()).unwrap_or(manifest).to_path_buf()
}

/// Where `../shared` is expected: `$FDB_SHARED`, else `shared` beside the workspace.
pub fn shared_root() -> PathBuf {
    match std::env::var_os("FDB_SHARED").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared"),
    }
}

/// `../shared/<rel>`; a failure under `FDB_REQUIRE_DATA=1`, else a visible skip.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = shared_root().join(rel);
    if path.exists() {
        Some(path)
    } else {
        missing(&format!("{} (set FDB_SHARED to the shared data folder)", path.display()))
    }
}

/// `../shared` itself, once each of `rels` is found under it.
pub fn shared_with(rels: &[&str]) -> Option<PathBuf> {
    for rel in rels {
        shared(rel)?;
    }
    Some(shared_root())
}

/// The one place a test gives up for lack of data: panics when data is required, otherwise
/// tells the terminal that the running test (libtest names its thread after it) is skipped.
pub fn missing<T>(what: &str) -> Option<T> {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if data_required() {
        panic!("{test}: missing {what}; {REQUIRE_DATA}=1 makes missing data a failure");
    }
    // One write, so that the line is not torn by the test runner's own output.
    let line = format!("SKIPPED {test}: missing {what} ({REQUIRE_DATA}=1 makes this a failure)\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}
