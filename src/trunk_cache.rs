//! A persistent cache of the frozen trunk's features, per (face, view), beside the database.
//!
//! Retraining the head and switching to a head-only version both need the trunk's 1792-d
//! features of every stored crop; computing them is the whole network's cost (~50 ms a view on
//! two cores), so they are computed once per trunk and kept in
//! `<db>/trunk-features/<trunk model>.bin`. Retrained head-only versions share their root's
//! trunk (`Manifest::trunk_of`), so they share one file; another trunk gets another file.
//!
//! The file is append-only: a header, then records `face u64 LE, view u8, dim × f32 LE`. A
//! crash mid-append leaves a short last record, which opening ignores. Face ids only grow and
//! are never reused, so a record stays valid as long as its face exists; `retain_faces` drops
//! the records of removed faces.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{FdbError, Result};

const MAGIC: &[u8; 8] = b"FDBTRNK1";
/// The folder inside the database directory; sled ignores files it did not make.
const DIR: &str = "trunk-features";

/// The trunk-feature cache of one trunk model: what is in the file, and what is waiting to be appended.
pub struct TrunkCache {
    path: PathBuf,
    dim: usize,
    entries: HashMap<(u64, u8), Vec<f32>>,
    pending: Vec<(u64, u8)>,
}

impl TrunkCache {
    /// The cache file of `trunk` for the database at `db_dir`, features of `dim` floats.
    pub fn path_for(db_dir: &Path, trunk: &str) -> PathBuf {
        let safe: String = trunk.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        db_dir.join(DIR).join(format!("{safe}.bin"))
    }

    /// Open (or start) the cache of `trunk`. A file of another feature size is started afresh.
    pub fn open(db_dir: &Path, trunk: &str, dim: usize) -> Result<Self> {
        let path = Self::path_for(db_dir, trunk);
        let mut cache = Self { path, dim, entries: HashMap::new(), pending: Vec::new() };
        match File::open(&cache.path) {
            Ok(file) => cache.read(file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&cache.path, e)),
        }
        Ok(cache)
    }

    fn read(&mut self, file: File) -> Result<()> {
        let mut bytes = Vec::new();
        std::io::BufReader::new(file).read_to_end(&mut bytes).map_err(|e| io_err(&self.path, e))?;
        let header = MAGIC.len() + 4;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            return Err(FdbError::Invalid(format!("{}: not a trunk-feature cache (delete it to rebuild)", self.path.display())));
        }
        let dim = u32::from_le_bytes(bytes[MAGIC.len()..header].try_into().expect("4 bytes")) as usize;
        if dim != self.dim {
            // Features of another size: none can be used, and appending would garble the file.
            return std::fs::remove_file(&self.path).map_err(|e| io_err(&self.path, e));
        }
        let record = 9 + 4 * dim;
        let whole = header + (bytes.len() - header) / record * record;
        if whole < bytes.len() {
            // Cut a crash's short last record, so that later appends start on a record boundary.
            let file = OpenOptions::new().write(true).open(&self.path).map_err(|e| io_err(&self.path, e))?;
            file.set_len(whole as u64).map_err(|e| io_err(&self.path, e))?;
        }
        for r in bytes[header..whole].chunks_exact(record) {
            let face = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            let floats = r[9..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
            self.entries.insert((face, r[8]), floats);
        }
        Ok(())
    }

    /// How many (face, view) features are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached features of a face's view, if any.
    pub fn get(&self, face: u64, view: u8) -> Option<&[f32]> {
        self.entries.get(&(face, view)).map(Vec::as_slice)
    }

    /// Remember features; they reach the file at the next `flush`.
    pub fn insert(&mut self, face: u64, view: u8, features: Vec<f32>) -> Result<()> {
        if features.len() != self.dim {
            return Err(FdbError::Invalid(format!("trunk features of {} floats, the cache holds {}", features.len(), self.dim)));
        }
        if self.entries.insert((face, view), features).is_none() {
            self.pending.push((face, view));
        }
        Ok(())
    }

    /// Drop the records of faces not in `live` (removed since they were cached); returns how
    /// many records went. The file is rewritten only when something went.
    pub fn retain_faces(&mut self, live: &HashSet<u64>) -> Result<usize> {
        let before = self.entries.len();
        self.entries.retain(|(face, _), _| live.contains(face));
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.rewrite()?;
        }
        Ok(dropped)
    }

    /// Append the new records to the file.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let fresh = !self.path.exists();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| io_err(&self.path, e))?;
        let mut out = BufWriter::new(file);
        if fresh {
            self.write_header(&mut out)?;
        }
        let pending = std::mem::take(&mut self.pending);
        for key in &pending {
            self.write_record(&mut out, *key)?;
        }
        out.flush().map_err(|e| io_err(&self.path, e))
    }

    /// Write every record to a new file and rename it over the old one.
    fn rewrite(&mut self) -> Result<()> {
        let tmp = self.path.with_extension("bin.tmp");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let mut out = BufWriter::new(File::create(&tmp).map_err(|e| io_err(&tmp, e))?);
        self.write_header(&mut out)?;
        let mut keys: Vec<(u64, u8)> = self.entries.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.write_record(&mut out, key)?;
        }
        out.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        self.pending.clear();
        Ok(())
    }

    fn write_header(&self, out: &mut impl Write) -> Result<()> {
        out.write_all(MAGIC).and_then(|_| out.write_all(&(self.dim as u32).to_le_bytes())).map_err(|e| io_err(&self.path, e))
    }

    fn write_record(&self, out: &mut impl Write, (face, view): (u64, u8)) -> Result<()> {
        let mut record = Vec::with_capacity(9 + 4 * self.dim);
        record.extend_from_slice(&face.to_le_bytes());
        record.push(view);
        for v in &self.entries[&(face, view)] {
            record.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&record).map_err(|e| io_err(&self.path, e))
    }
}

fn io_err(path: &Path, e: std::io::Error) -> FdbError {
    FdbError::Invalid(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_removed_faces_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = TrunkCache::open(dir.path(), "base", 3).unwrap();
        cache.insert(1, 0, vec![1.0, 2.0, 3.0]).unwrap();
        cache.insert(1, 1, vec![4.0, 5.0, 6.0]).unwrap();
        cache.insert(2, 0, vec![7.0, 8.0, 9.0]).unwrap();
        assert!(cache.insert(3, 0, vec![1.0]).is_err(), "a wrong size is refused");
        cache.flush().unwrap();
        cache.insert(3, 0, vec![0.5, 0.5, 0.5]).unwrap();
        cache.flush().unwrap(); // appended to the existing file

        let mut again = TrunkCache::open(dir.path(), "base", 3).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(again.get(1, 1), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(again.get(3, 0), Some(&[0.5, 0.5, 0.5][..]));
        assert_eq!(again.get(2, 1), None);

        assert_eq!(again.retain_faces(&HashSet::from([1, 3])).unwrap(), 1);
        let third = TrunkCache::open(dir.path(), "base", 3).unwrap();
        assert_eq!(third.len(), 3);
        assert_eq!(third.get(2, 0), None);

        // Another trunk has its own file; another feature size starts empty.
        assert!(TrunkCache::open(dir.path(), "other", 3).unwrap().is_empty());
        assert!(TrunkCache::open(dir.path(), "base", 4).unwrap().is_empty());
    }

    #[test]
    fn a_short_last_record_from_a_crash_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = TrunkCache::open(dir.path(), "base", 2).unwrap();
        cache.insert(5, 0, vec![1.0, 2.0]).unwrap();
        cache.insert(6, 0, vec![3.0, 4.0]).unwrap();
        cache.flush().unwrap();
        let path = TrunkCache::path_for(dir.path(), "base");
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let reopened = TrunkCache::open(dir.path(), "base", 2).unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened.get(5, 0), Some(&[1.0, 2.0][..]));
        let mut reopened = reopened;
        reopened.insert(7, 1, vec![5.0, 6.0]).unwrap();
        reopened.flush().unwrap();
        let last = TrunkCache::open(dir.path(), "base", 2).unwrap();
        assert_eq!((last.len(), last.get(7, 1)), (2, Some(&[5.0, 6.0][..])), "appends after a crash stay aligned");
    }

    #[test]
    fn a_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = TrunkCache::path_for(dir.path(), "base");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"hello").unwrap();
        let err = TrunkCache::open(dir.path(), "base", 2).err().unwrap().to_string();
        assert!(err.contains("not a trunk-feature cache"), "{err}");
    }
}
