//! The database directory: what counts as one, keeping it private, and its lock.
//!
//! Faces are biometric data: the directory is 0700 and every file in it 0600, also when the
//! directory existed before fdb was pointed at it (a 0755 `mkdir`, files written under a loose
//! umask). sled holds an exclusive lock on its `db` file while a process has the database open;
//! `lock.pid` beside it names that process so that a second one can say who it waits for.

use crate::error::{Result, StoreError};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Names the process that holds the database open.
const PID_FILE: &str = "lock.pid";
/// How often a waiting open tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// True when `path` holds the files sled creates for a database.
fn is_database(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file()
}

/// Makes `path` ready to open: refuses what is not a database, creates it when asked, and makes
/// it private.
pub(crate) fn prepare(path: &Path, create: bool) -> Result<()> {
    if path.is_dir() {
        if !is_database(path) {
            let empty = fs::read_dir(path)
                .map_err(|e| StoreError::io(format!("{}: reading the database directory", path.display()), e))?
                .next()
                .is_none();
            if !empty {
                return Err(StoreError::NotADatabase { path: path.to_path_buf() });
            }
            if !create {
                return Err(StoreError::NoDatabase { path: path.to_path_buf() });
            }
        }
        return make_private(path);
    }
    if path.exists() {
        return Err(StoreError::InvalidArgument(format!("{}: exists and is not a directory", path.display())));
    }
    if !create {
        return Err(StoreError::NoDatabase { path: path.to_path_buf() });
    }
    create_private_dir(path).map_err(|e| StoreError::io(format!("{}: creating the database directory", path.display()), e))
}

/// Creates `path` and its missing parents, mode 0700.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Directories 0700 and files 0600, all the way down.
pub(crate) fn make_private(path: &Path) -> Result<()> {
    let fail = |p: &Path, e| StoreError::io(format!("{}: making the database private", p.display()), e);
    let mut todo = vec![path.to_path_buf()];
    while let Some(dir) = todo.pop() {
        set_mode(&dir, 0o700).map_err(|e| fail(&dir, e))?;
        for entry in fs::read_dir(&dir).map_err(|e| fail(&dir, e))? {
            let entry = entry.map_err(|e| fail(&dir, e))?;
            let kind = entry.file_type().map_err(|e| fail(&entry.path(), e))?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                set_mode(&entry.path(), 0o600).map_err(|e| fail(&entry.path(), e))?;
            }
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Opens sled, waiting up to `wait` for another process to let go of the database.
pub(crate) fn open_sled(path: &Path, wait: Duration) -> Result<sled::Db> {
    let started = Instant::now();
    loop {
        match try_open_sled(path) {
            Err(StoreError::Locked { .. }) if started.elapsed() < wait => std::thread::sleep(LOCK_RETRY),
            Err(StoreError::Locked { .. }) => {
                let (pid, holder) = holder(path).unzip();
                let holder = holder.unwrap_or_default();
                return Err(StoreError::Locked { path: path.to_path_buf(), holder, pid, waited: wait });
            }
            other => return other,
        }
    }
}

/// sled takes an exclusive file lock and reports a failure to get it as an `Io` error whose
/// message starts "could not acquire lock"; that is the "in use" case.
fn try_open_sled(path: &Path) -> Result<sled::Db> {
    match sled::Config::new().path(path).open() {
        Ok(db) => Ok(db),
        Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
            Err(StoreError::Locked { path: path.to_path_buf(), holder: String::new(), pid: None, waited: Duration::ZERO })
        }
        Err(sled::Error::Io(e)) => Err(StoreError::io(format!("{}: opening the database", path.display()), e)),
        Err(sled::Error::Corruption { at, .. }) => {
            Err(StoreError::Corrupt(format!("{}: sled reports corruption at {at:?}", path.display())))
        }
        Err(e) => Err(e.into()),
    }
}

/// Records this process as the holder of the lock (called once sled holds it).
pub(crate) fn write_pid_file(path: &Path) -> Result<PathBuf> {
    let file = path.join(PID_FILE);
    let command: Vec<String> = std::env::args().collect();
    let text = format!("{}\n{}\n", std::process::id(), command.join(" "));
    fs::write(&file, text).map_err(|e| StoreError::io(format!("{}: writing the lock holder's pid", file.display()), e))?;
    set_mode(&file, 0o600).map_err(|e| StoreError::io(format!("{}: making it private", file.display()), e))?;
    Ok(file)
}

/// The pid and " (pid N: command)" of the process named in the pid file, if it is still running.
fn holder(path: &Path) -> Option<(u32, String)> {
    let text = fs::read_to_string(path.join(PID_FILE)).ok()?;
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok())?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return None; // left by a process that was killed; the holder wrote none
    }
    Some(match lines.next().filter(|c| !c.is_empty()) {
        Some(command) => (pid, format!(" (pid {pid}: {command})")),
        None => (pid, format!(" (pid {pid})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_existing_loose_directory_and_its_files_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("db");
        fs::create_dir(&db).unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&db, true).unwrap();
        assert_eq!(mode(&db), 0o700);
        fs::write(db.join("conf"), b"").unwrap();
        fs::write(db.join("db"), b"").unwrap();
        fs::create_dir(db.join("blobs")).unwrap();
        fs::write(db.join("blobs/1"), b"x").unwrap();
        for p in [db.join("conf"), db.join("db"), db.join("blobs/1")] {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        }
        fs::set_permissions(db.join("blobs"), fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&db, false).unwrap();
        assert_eq!(
            [mode(&db.join("conf")), mode(&db.join("db")), mode(&db.join("blobs")), mode(&db.join("blobs/1"))],
            [0o600, 0o600, 0o700, 0o600]
        );
    }

    #[test]
    fn a_foreign_directory_is_refused_and_nothing_is_created_without_create() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        assert!(matches!(prepare(tmp.path(), true), Err(StoreError::NotADatabase { .. })));
        let missing = tmp.path().join("missing");
        let err = prepare(&missing, false).unwrap_err();
        assert_eq!(err.to_string(), format!("no fdb database at {}", missing.display()));
        assert!(!missing.exists());
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(prepare(&empty, false), Err(StoreError::NoDatabase { .. })));
    }
}
