//! `Store::backup`: a consistent copy of an open database into a new directory.
//!
//! The copy is logical, under the writer lock (writers wait, searches go on): every sled tree
//! key by key into a new sled database, every vector file row by row (crcs checked as they are
//! read) into new vector files. sled's own files are never copied while sled has them open. The
//! copy is written into a private directory beside the destination, opened and checked
//! (`verify_integrity`, the counts read under the lock), and only then renamed to the
//! destination; on any failure it is removed.
//!
//! Face ids must keep growing in the copy (the index snapshot covers "every face up to id N"),
//! so the copy's id counter is set past the original's: sled persists its counter in steps of
//! `idgen_persist_interval` and resumes two steps past the last one, so the copy is opened with
//! a step of a multiple of a million at least the original's next id, reopened, and one id drawn.

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::vector_file::{self, VectorFiles};
use std::path::{Path, PathBuf};

/// Entries per sled batch while copying a tree (and at most this many bytes).
const COPY_ENTRIES: usize = 1_000;
const COPY_BYTES: usize = 16 << 20;
/// Vector rows per append while copying a vector file.
const COPY_ROWS: usize = 4_096;
/// sled's default `idgen_persist_interval`, which every open of a database uses.
const SLED_ID_STEP: u64 = 1_000_000;
/// The vector files' directory (as in `store`).
const VECTORS_DIR: &str = "vectors";

/// What `Store::backup` wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupReport {
    /// The backup's directory.
    pub path: PathBuf,
    /// People copied.
    pub people: usize,
    /// Faces copied.
    pub faces: usize,
    /// sled trees copied.
    pub trees: usize,
    /// Models whose vector files were copied.
    pub models: usize,
    /// Bytes the backup takes on disk.
    pub bytes: u64,
}

impl Store {
    /// Copies the whole database (people, faces, crops, vectors of every model, the index
    /// snapshot, every setting) into `dest`, which must not exist or be an empty directory. The
    /// copy is taken under the writer lock, so it holds every write that finished before it and
    /// none that started after; it is opened and integrity-checked before it is renamed to
    /// `dest` (0700, files 0600). Not copied: `trunk-features/` (retraining's cache, rebuilt on
    /// demand) and the lock file.
    pub fn backup(&self, dest: &Path) -> Result<BackupReport> {
        check_destination(dest, &self.path)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            crate::dir::create_private_dir(&parent)
                .map_err(|e| StoreError::io(format!("{}: creating the backup's parent directory", parent.display()), e))?;
        }
        let name = dest.file_name().ok_or_else(|| StoreError::InvalidArgument(format!("{}: not a directory name", dest.display())))?;
        let tmp = parent.join(format!(".{}.fdb-backup-{}", name.to_string_lossy(), std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| StoreError::io(format!("{}: removing an old partial backup", tmp.display()), e))?;
        }
        let made = self.write_backup(&tmp).and_then(|(report, next_id)| {
            verify_backup(&tmp, &report, next_id)?;
            if dest.is_dir() {
                // Empty (checked above): rename cannot replace a directory on every system.
                std::fs::remove_dir(dest).map_err(|e| StoreError::io(format!("{}: replacing the empty directory", dest.display()), e))?;
            }
            std::fs::rename(&tmp, dest).map_err(|e| StoreError::io(format!("{}: moving the finished backup into place", dest.display()), e))?;
            vector_file::sync_dir(&parent)?;
            Ok(report)
        });
        match made {
            Ok(report) => Ok(BackupReport { path: dest.to_path_buf(), bytes: crate::maintenance::disk_bytes(dest), ..report }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// The copy itself, under the writer lock; also returns the original's next id.
    fn write_backup(&self, tmp: &Path) -> Result<(BackupReport, u64)> {
        crate::dir::create_private_dir(tmp).map_err(|e| StoreError::io(format!("{}: creating the backup directory", tmp.display()), e))?;
        let w = self.writer.lock();
        // One past the last id the original handed out.
        let next_id = self.db.generate_id()? + 1;
        // sled expects its persisted counter to be a multiple of the step it is opened with:
        // a multiple of the default step (1,000,000) is one for every later open.
        let step = next_id.div_ceil(SLED_ID_STEP).max(1) * SLED_ID_STEP;
        let config = sled::Config::new().path(tmp).idgen_persist_interval(step);
        let copy = config.open()?;
        let names = self.db.tree_names();
        for name in &names {
            copy_tree(&self.db.open_tree(name)?, &copy.open_tree(name)?)?;
        }
        copy.flush()?;
        let vectors = VectorFiles::open(&tmp.join(VECTORS_DIR))?;
        let models = self.vectors.models();
        for model in &models {
            let Some(dim) = self.vectors.with(model, |f| f.dim()) else { continue };
            vectors.recreate(model, dim)?;
            let mut rows: Vec<(u64, Vec<f32>)> = Vec::with_capacity(COPY_ROWS);
            let read = self.vectors.with(model, |f| {
                f.for_each(|id, v| {
                    rows.push((id, v));
                    if rows.len() == COPY_ROWS {
                        vectors.append(model, dim, &vector_file::borrowed(&rows))?;
                        rows.clear();
                    }
                    Ok(())
                })
            });
            if let Some(read) = read {
                read?;
            }
            if !rows.is_empty() {
                vectors.append(model, dim, &vector_file::borrowed(&rows))?;
            }
        }
        let report = BackupReport {
            path: tmp.to_path_buf(),
            people: self.t.people.len(),
            faces: self.t.faces.len(),
            trees: names.len(),
            models: models.len(),
            bytes: 0,
        };
        drop(w);
        drop(copy);
        // Reopened with that step, sled resumes at 2 × step and persists it with the first id
        // drawn; any later open resumes past that.
        let copy = config.open()?;
        copy.generate_id()?;
        copy.flush()?;
        drop(copy);
        crate::dir::make_private(tmp)?;
        Ok((report, next_id))
    }
}

/// A backup goes into a new or empty directory, outside the database.
fn check_destination(dest: &Path, db: &Path) -> Result<()> {
    if dest.exists() {
        if !dest.is_dir() {
            return Err(StoreError::InvalidArgument(format!("{}: exists and is not a directory; a backup goes into a new directory", dest.display())));
        }
        let empty = std::fs::read_dir(dest)
            .map_err(|e| StoreError::io(format!("{}: reading the backup directory", dest.display()), e))?
            .next()
            .is_none();
        if !empty {
            return Err(StoreError::InvalidArgument(format!(
                "{}: exists and is not empty; a backup goes into a new or empty directory",
                dest.display()
            )));
        }
    }
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if absolute(dest).starts_with(absolute(db)) {
        return Err(StoreError::InvalidArgument(format!("{}: inside the database it would back up", dest.display())));
    }
    Ok(())
}

/// Copies every entry of `from` into `to`, in batches.
fn copy_tree(from: &sled::Tree, to: &sled::Tree) -> Result<()> {
    let mut batch = sled::Batch::default();
    let (mut entries, mut bytes) = (0, 0);
    for kv in from.iter() {
        let (k, v) = kv?;
        bytes += k.len() + v.len();
        entries += 1;
        batch.insert(k, v);
        if entries == COPY_ENTRIES || bytes >= COPY_BYTES {
            to.apply_batch(std::mem::take(&mut batch))?;
            (entries, bytes) = (0, 0);
        }
    }
    to.apply_batch(batch)?;
    Ok(())
}

/// Opens the finished copy as a store and checks it: every cross reference, every vector's crc,
/// the index, the counts read under the lock, and an id counter past the original's.
fn verify_backup(tmp: &Path, expected: &BackupReport, next_id: u64) -> Result<()> {
    // sled lets go of its file lock from a background thread after the writing handle drops,
    // so the copy can still be locked for a moment (seen under load: `Locked`).
    let opts = crate::StoreOptions { create: false, lock_wait: std::time::Duration::from_secs(10), ..Default::default() };
    let store = Store::open(tmp, opts)?;
    store.verify_integrity().map_err(|e| StoreError::Corrupt(format!("the backup at {} fails its check: {e}", tmp.display())))?;
    let found = (store.person_count(), store.face_count());
    if found != (expected.people, expected.faces) {
        return Err(StoreError::Corrupt(format!(
            "the backup holds {} people and {} faces, the database held {} and {}",
            found.0, found.1, expected.people, expected.faces
        )));
    }
    let id = store.db.generate_id()?;
    if id < next_id {
        return Err(StoreError::Corrupt(format!("the backup's id counter resumes at {id}, behind the database's {next_id}")));
    }
    let damage = store.damage();
    if damage.needs_repair() || !damage.unreadable_files.is_empty() {
        return Err(StoreError::Corrupt(format!("the backup misses the vectors of {} faces", damage.missing_vectors.len())));
    }
    Ok(())
}
