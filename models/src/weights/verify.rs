//! Weights are checked against the sha256 the manifest records before a network loads them:
//! a flipped byte in a weights file gave "same person" for two different people.
//!
//! Hashing the 90 MB embedder on every CLI call costs ~0.3 s, so a file that hashed right is
//! remembered in `.verified.json` beside the manifest, under a key of what the file system says
//! about it: device, inode, size, mtime and ctime in nanoseconds. Any write through the file
//! system moves ctime to the time of the write, and ctime cannot be set back by a user (unlike
//! mtime, which `touch -d` restores), so a same-size edit changes the key and the file is hashed
//! again. A file whose ctime is less than `RACY_MARGIN` before the hash began is not remembered,
//! so an edit in the same clock tick as the one that was hashed cannot share its key (git's
//! "racily clean" rule). What the key cannot see: bytes changed under the file system (a disk
//! going bad, a raw write to the block device) after the file was remembered. `fdb models
//! install --repair` and a changed key hash the file in full.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::install::{hex, write_atomic, InstallError, Installed};
use super::manifest::ModelEntry;

/// The cache of files whose hash was checked, in the models dir.
pub const CACHE_FILE: &str = ".verified.json";
/// A file changed this close to its hash is hashed again next time.
const RACY_MARGIN: Duration = Duration::from_secs(2);

/// What the file system says about a file; equal keys mean no write through the file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileKey {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    fn of(meta: &fs::Metadata) -> Self {
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Verified {
    key: FileKey,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    files: BTreeMap<String, Verified>,
}

impl Cache {
    fn read(dir: &Path) -> Self {
        // A missing or garbled cache only costs a hash.
        fs::read(dir.join(CACHE_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    fn write(&self, dir: &Path) {
        // A read-only models dir just means hashing every time.
        let _ = write_atomic(&dir.join(CACHE_FILE), &serde_json::to_vec_pretty(self).expect("plain data"));
    }
}

/// The sha256 of a file, read in 1 MiB steps.
pub fn file_sha256(path: &Path) -> Result<String, InstallError> {
    let mut file = fs::File::open(path).map_err(|e| InstallError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| InstallError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Checks `entry`'s file in `dir` against the manifest's sha256, trusting the cache when the
/// file's key is unchanged; returns the file's path.
pub fn verify_entry(dir: &Path, entry: &ModelEntry) -> Result<PathBuf, InstallError> {
    let path = dir.join(&entry.file);
    let meta = fs::metadata(&path).map_err(|e| InstallError::io(&path, e))?;
    let key = FileKey::of(&meta);
    let mut cache = Cache::read(dir);
    if cache.files.get(&entry.file).is_some_and(|v| v.key == key && v.sha256 == entry.file_sha256) {
        return Ok(path);
    }
    let started = SystemTime::now();
    check_hash(&path, entry)?;
    let changed = UNIX_EPOCH + Duration::from_nanos(key.ctime_ns.max(0) as u64);
    if changed + RACY_MARGIN <= started {
        cache.files.insert(entry.file.clone(), Verified { key, sha256: entry.file_sha256.clone() });
        cache.write(dir);
    }
    Ok(path)
}

/// Hashes `entry`'s file in full and compares it with the manifest.
pub fn check_hash(path: &Path, entry: &ModelEntry) -> Result<(), InstallError> {
    let found = file_sha256(path)?;
    if entry.file_sha256.is_empty() || found != entry.file_sha256 {
        return Err(InstallError::Damaged {
            path: path.to_path_buf(),
            model: entry.id.clone(),
            expected: entry.file_sha256.clone(),
            found,
        });
    }
    Ok(())
}

impl Installed {
    /// The weights file of model `id`, checked against the manifest (see the module docs).
    pub fn verified_file(&self, id: &str) -> Result<PathBuf, InstallError> {
        let entry = self.manifest.get(id).ok_or_else(|| InstallError::UnknownModel {
            id: id.to_string(),
            dir: self.dir.clone(),
        })?;
        verify_entry(&self.dir, entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_for(dir: &Path, bytes: &[u8]) -> ModelEntry {
        fs::write(dir.join("w.bin"), bytes).unwrap();
        ModelEntry { id: "m".into(), file: "w.bin".into(), file_sha256: hex(&Sha256::digest(bytes)), ..Default::default() }
    }

    /// Backdates ctime's view of the last write by sleeping past the racy margin.
    fn settle() {
        std::thread::sleep(RACY_MARGIN + Duration::from_millis(50));
    }

    #[test]
    fn a_same_size_edit_with_its_mtime_restored_is_still_caught() {
        let dir = tempfile::tempdir().unwrap();
        let entry = entry_for(dir.path(), &[7u8; 4096]);
        settle();
        verify_entry(dir.path(), &entry).unwrap();
        assert!(Cache::read(dir.path()).files.contains_key("w.bin"), "a settled good file is remembered");
        verify_entry(dir.path(), &entry).unwrap();

        let path = dir.path().join("w.bin");
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[2048] ^= 1;
        fs::write(&path, &bytes).unwrap();
        fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 4096);
        let err = verify_entry(dir.path(), &entry).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, InstallError::Damaged { .. }) && msg.contains("w.bin") && msg.contains("--repair"), "{msg}");
    }

    #[test]
    fn a_file_changed_just_before_its_hash_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let entry = entry_for(dir.path(), b"fresh weights");
        verify_entry(dir.path(), &entry).unwrap();
        assert!(!Cache::read(dir.path()).files.contains_key("w.bin"));
    }

    #[test]
    fn a_cache_entry_for_other_bytes_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let entry = entry_for(dir.path(), b"weights one");
        settle();
        verify_entry(dir.path(), &entry).unwrap();
        // The manifest now expects other bytes (a reinstall): the remembered hash no longer applies.
        let other = ModelEntry { file_sha256: hex(&Sha256::digest(b"weights two")), ..entry };
        assert!(matches!(verify_entry(dir.path(), &other), Err(InstallError::Damaged { .. })));
    }
}
