//! Where faces are kept, through the real binary: private modes on a directory that existed
//! before, a foreign directory refused, read-only commands that never create a database, and
//! a URL refused instead of becoming a directory tree.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn photo(name: &str, i: usize) -> String {
    fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg")).display().to_string()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_existing_loose_directory_and_every_file_in_it_become_private() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("d");
    std::fs::create_dir(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = fdb(&db, &["enroll", &photo("Tony_Blair", 1)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut seen = 0;
    let mut todo = vec![db.clone()];
    while let Some(dir) = todo.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 3, "sled's files and the vector file were checked");
    // Loosened again by hand (a copy, an umask): the next command tightens them.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(db.join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(fdb(&db, &["list"]).status.code(), Some(0));
    assert_eq!((mode(&db), mode(&db.join("db"))), (0o700, 0o600));
}

#[test]
fn a_directory_that_is_not_a_database_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("documents");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("letter.txt"), b"dear").unwrap();
    for args in [vec!["info"], vec!["enroll", "--name", "Tony", &photo("Tony_Blair", 1)]] {
        let out = fdb(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("is not an fdb database"), "{}", stderr(&out));
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("letter.txt")]);
}

#[test]
fn read_only_commands_never_create_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    let tony = photo("Tony_Blair", 1);
    for args in [vec!["info"], vec!["list"], vec!["search", &tony], vec!["check"], vec!["threshold"], vec!["remove", "x"]] {
        let out = fdb(&missing, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(&format!("no fdb database at {}", missing.display())), "{args:?}: {}", stderr(&out));
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // verify needs no database: the model's own threshold.
    let out = fdb(&missing, &["verify", &tony, &photo("Tony_Blair", 2)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!missing.exists());
}

#[test]
fn a_database_url_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fdb"))
        .current_dir(tmp.path())
        .args(["--db", "postgresql://user@localhost/faces", "enroll", &photo("Tony_Blair", 1)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("postgresql:// URL is not a database fdb can open"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing was created");
}
