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
//!
//! `--layers top:N` trains the layers above a cut on the network's activations there
//! (`3·3·1792` floats, 64.5 KB a view), cached the same way in
//! `<db>/trunk-activations/<trunk model>@<cut>.bin` under the same rules: keyed by the model
//! that computes them (head-only versions share their root's), the cut, face and view (the
//! crop, its mirror, seeded jitters), and dropped with their face. They are kept as f32, so a
//! top trained from the cache sees exactly what the network computes; only the records'
//! offsets are held in memory (~50 bytes a view), the floats are read from the file per batch.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{FdbError, Result};

const MAGIC: &[u8; 8] = b"FDBTRNK1";
/// The folder inside the database directory; sled ignores files it did not make.
const DIR: &str = "trunk-features";
/// The folder of the activation caches (`open_activations`).
const ACTIVATIONS_DIR: &str = "trunk-activations";
const HEADER: usize = MAGIC.len() + 4;

/// Where a record's floats are: in memory, or at this byte offset of the file.
enum Slot {
    Memory(Vec<f32>),
    File(u64),
}

/// The trunk-feature cache of one trunk model: what is in the file, and what is waiting to be
/// appended. The activation caches (`open_activations`) keep only each record's offset in
/// memory and read its floats from the file when asked.
pub struct TrunkCache {
    path: PathBuf,
    dim: usize,
    entries: HashMap<(u64, u8), Slot>,
    pending: Vec<(u64, u8)>,
    /// Records stay in the file (only their offsets in memory).
    on_disk: bool,
    reader: Option<File>,
}

impl TrunkCache {
    /// The cache file of `trunk` for the database at `db_dir`.
    pub fn path_for(db_dir: &Path, trunk: &str) -> PathBuf {
        db_dir.join(DIR).join(format!("{}.bin", safe_name(trunk)))
    }

    /// The activation cache file of `trunk` at the cut named `cut` (`Cut::name`).
    pub fn activations_path(db_dir: &Path, trunk: &str, cut: &str) -> PathBuf {
        db_dir.join(ACTIVATIONS_DIR).join(format!("{}@{}.bin", safe_name(trunk), safe_name(cut)))
    }

    /// Open (or start) the cache of `trunk`, features of `dim` floats, held in memory. A file of
    /// another feature size is started afresh.
    pub fn open(db_dir: &Path, trunk: &str, dim: usize) -> Result<Self> {
        Self::open_path(Self::path_for(db_dir, trunk), dim, false)
    }

    /// Open (or start) the cache of `trunk`'s activations at the cut named `cut`, `dim` floats
    /// a record (`3·3·1792`, 64.5 KB). Only the records' offsets are held in memory; `read`
    /// takes the floats from the file.
    pub fn open_activations(db_dir: &Path, trunk: &str, cut: &str, dim: usize) -> Result<Self> {
        Self::open_path(Self::activations_path(db_dir, trunk, cut), dim, true)
    }

    fn open_path(path: PathBuf, dim: usize, on_disk: bool) -> Result<Self> {
        let mut cache = Self { path, dim, entries: HashMap::new(), pending: Vec::new(), on_disk, reader: None };
        match File::open(&cache.path) {
            Ok(file) => cache.read_index(file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&cache.path, e)),
        }
        Ok(cache)
    }

    fn record_len(&self) -> usize {
        9 + 4 * self.dim
    }

    fn read_index(&mut self, file: File) -> Result<()> {
        let len = file.metadata().map_err(|e| io_err(&self.path, e))?.len() as usize;
        let mut reader = BufReader::with_capacity(1 << 20, file.try_clone().map_err(|e| io_err(&self.path, e))?);
        let mut header = [0u8; HEADER];
        if len < HEADER || reader.read_exact(&mut header).is_err() || &header[..MAGIC.len()] != MAGIC {
            let reason = "not a trunk-feature cache (delete it to rebuild)".to_string();
            return Err(FdbError::Corrupt { path: self.path.clone(), reason });
        }
        let dim = u32::from_le_bytes(header[MAGIC.len()..].try_into().expect("4 bytes")) as usize;
        if dim != self.dim {
            // Features of another size: none can be used, and appending would garble the file.
            return std::fs::remove_file(&self.path).map_err(|e| io_err(&self.path, e));
        }
        let record = self.record_len();
        let whole = HEADER + (len - HEADER) / record * record;
        if whole < len {
            // Cut a crash's short last record, so that later appends start on a record boundary.
            let file = OpenOptions::new().write(true).open(&self.path).map_err(|e| io_err(&self.path, e))?;
            file.set_len(whole as u64).map_err(|e| io_err(&self.path, e))?;
        }
        let mut key = [0u8; 9];
        let mut floats = vec![0u8; 4 * dim];
        for offset in (HEADER..whole).step_by(record) {
            reader.read_exact(&mut key).map_err(|e| io_err(&self.path, e))?;
            let face = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
            let slot = if self.on_disk {
                reader.seek(SeekFrom::Current(4 * dim as i64)).map_err(|e| io_err(&self.path, e))?;
                Slot::File((offset + 9) as u64)
            } else {
                reader.read_exact(&mut floats).map_err(|e| io_err(&self.path, e))?;
                Slot::Memory(floats.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
            };
            self.entries.insert((face, key[8]), slot);
        }
        self.reader = Some(file);
        Ok(())
    }

    /// How many (face, view) records are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a face's view is cached.
    pub fn contains(&self, face: u64, view: u8) -> bool {
        self.entries.contains_key(&(face, view))
    }

    /// The cached features of a face's view, if they are held in memory (always, for a cache
    /// from `open`; `read` also answers from the file).
    pub fn get(&self, face: u64, view: u8) -> Option<&[f32]> {
        match self.entries.get(&(face, view))? {
            Slot::Memory(v) => Some(v),
            Slot::File(_) => None,
        }
    }

    /// The cached floats of a face's view, from memory or from the file.
    pub fn read(&self, face: u64, view: u8) -> Result<Option<Cow<'_, [f32]>>> {
        match self.entries.get(&(face, view)) {
            None => Ok(None),
            Some(Slot::Memory(v)) => Ok(Some(Cow::Borrowed(v))),
            Some(Slot::File(offset)) => Ok(Some(Cow::Owned(self.read_at(*offset)?))),
        }
    }

    fn read_at(&self, offset: u64) -> Result<Vec<f32>> {
        let reader = self.reader.as_ref().ok_or_else(|| FdbError::Invalid(format!("{}: not open", self.path.display())))?;
        let mut bytes = vec![0u8; 4 * self.dim];
        reader.read_exact_at(&mut bytes, offset).map_err(|e| io_err(&self.path, e))?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }

    /// Remember features; they reach the file at the next `flush`.
    pub fn insert(&mut self, face: u64, view: u8, features: Vec<f32>) -> Result<()> {
        if features.len() != self.dim {
            return Err(FdbError::Invalid(format!("trunk features of {} floats, the cache holds {}", features.len(), self.dim)));
        }
        if self.entries.insert((face, view), Slot::Memory(features)).is_none() {
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
        let mut offset = if fresh { HEADER } else { file.metadata().map_err(|e| io_err(&self.path, e))?.len() as usize };
        let mut out = BufWriter::new(file);
        if fresh {
            self.write_header(&mut out)?;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut written = Vec::with_capacity(pending.len());
        for key in &pending {
            self.write_record(&mut out, *key)?;
            written.push((*key, offset + 9));
            offset += self.record_len();
        }
        out.flush().map_err(|e| io_err(&self.path, e))?;
        self.reopened()?;
        if self.on_disk {
            for (key, at) in written {
                self.entries.insert(key, Slot::File(at as u64));
            }
        }
        Ok(())
    }

    fn reopened(&mut self) -> Result<()> {
        self.reader = Some(File::open(&self.path).map_err(|e| io_err(&self.path, e))?);
        Ok(())
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
        for key in &keys {
            self.write_record(&mut out, *key)?;
        }
        out.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        self.pending.clear();
        self.reopened()?;
        if self.on_disk {
            for (i, key) in keys.into_iter().enumerate() {
                self.entries.insert(key, Slot::File((HEADER + i * self.record_len() + 9) as u64));
            }
        }
        Ok(())
    }

    fn write_header(&self, out: &mut impl Write) -> Result<()> {
        out.write_all(MAGIC).and_then(|_| out.write_all(&(self.dim as u32).to_le_bytes())).map_err(|e| io_err(&self.path, e))
    }

    fn write_record(&self, out: &mut impl Write, (face, view): (u64, u8)) -> Result<()> {
        let mut record = Vec::with_capacity(self.record_len());
        record.extend_from_slice(&face.to_le_bytes());
        record.push(view);
        let floats = self.read(face, view)?.ok_or_else(|| FdbError::Invalid(format!("{}: no record {face}/{view}", self.path.display())))?;
        for v in floats.iter() {
            record.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&record).map_err(|e| io_err(&self.path, e))
    }
}

fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn io_err(path: &Path, e: std::io::Error) -> FdbError {
    FdbError::Io { path: path.to_path_buf(), source: e }
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
    fn activations_stay_on_disk_and_follow_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = TrunkCache::open_activations(dir.path(), "base", "mixed_7a", 3).unwrap();
        cache.insert(1, 0, vec![1.0, 2.0, 3.0]).unwrap();
        cache.insert(2, 1, vec![4.0, 5.0, 6.0]).unwrap();
        assert_eq!(cache.get(1, 0), Some(&[1.0, 2.0, 3.0][..]), "held until flushed");
        cache.flush().unwrap();
        assert_eq!(cache.get(1, 0), None, "on disk once flushed");
        assert_eq!(cache.read(1, 0).unwrap().as_deref(), Some(&[1.0, 2.0, 3.0][..]));
        cache.insert(3, 0, vec![7.0, 8.0, 9.0]).unwrap();
        cache.flush().unwrap();
        assert_eq!(cache.read(3, 0).unwrap().as_deref(), Some(&[7.0, 8.0, 9.0][..]));

        let mut again = TrunkCache::open_activations(dir.path(), "base", "mixed_7a", 3).unwrap();
        assert_eq!(again.len(), 3);
        assert!(again.contains(2, 1) && !again.contains(2, 0));
        assert_eq!(again.read(2, 1).unwrap().as_deref(), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(again.retain_faces(&HashSet::from([2, 3])).unwrap(), 1);
        assert_eq!(again.read(3, 0).unwrap().as_deref(), Some(&[7.0, 8.0, 9.0][..]), "offsets follow the rewrite");
        let third = TrunkCache::open_activations(dir.path(), "base", "mixed_7a", 3).unwrap();
        assert_eq!((third.len(), third.read(1, 0).unwrap()), (2, None));

        // Another cut, another trunk, the trunk features: each a file of its own.
        assert!(TrunkCache::open_activations(dir.path(), "base", "repeat_2.4", 3).unwrap().is_empty());
        assert!(TrunkCache::open_activations(dir.path(), "other", "mixed_7a", 3).unwrap().is_empty());
        assert!(TrunkCache::open(dir.path(), "base", 3).unwrap().is_empty());
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
