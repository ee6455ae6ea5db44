//! Embeddings in files of fdb's own beside sled: one file per model, `vectors/<model in hex>.f32`.
//!
//! sled 0.34 keeps ~1.7 bytes in its log for each byte of a 2 KB value (docs/benchmarks.md,
//! "Vector files and snapshot format 3"); a row here costs its size. A file is a 16-byte header (magic, dim) and fixed
//! rows: face id (u64 LE), crc32 of the id and the vector, 4 zero bytes, `dim` f32 LE. Rows are
//! only appended; a face's row is found through the id → row map read when the file is opened.
//!
//! Crash ordering keeps sled from ever naming a row the file lacks: rows are written and synced
//! before the sled transaction that references them commits, and dropped (`retain`) only after
//! sled's removal is durable. Rows that sled does not reference (a crash between the append and
//! the commit; removed faces) are garbage until `retain`. A torn last row is cut off at open.

use crate::error::{Result, StoreError};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"fdbvec\0\x01";
const HEADER_LEN: u64 = 16;
/// Face id, crc32, 4 zero bytes.
const ROW_HEAD: usize = 16;
const EXTENSION: &str = "f32";
/// Bytes read per step by a scan.
const SCAN_BYTES: usize = 8 << 20;

/// One model's vectors.
pub(crate) struct VectorFile {
    path: PathBuf,
    file: File,
    dim: usize,
    /// Face id → its row.
    rows: HashMap<u64, u32>,
    /// Rows in the file, garbage included.
    len: u32,
}

/// Rows appended by one call, so that a failed sled commit can take them back.
pub(crate) struct Appended {
    model: String,
    len_before: u32,
    /// Each id with the row it had before, if any.
    replaced: Vec<(u64, Option<u32>)>,
}

impl VectorFile {
    fn row_bytes(&self) -> usize {
        ROW_HEAD + 4 * self.dim
    }

    fn offset(&self, row: u32) -> u64 {
        HEADER_LEN + row as u64 * self.row_bytes() as u64
    }

    /// A new, empty file (replacing any file at `path`).
    fn create(path: &Path, dim: usize) -> Result<VectorFile> {
        let io = |e| StoreError::io(format!("{}: creating the vector file", path.display()), e);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(io)?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
        file.write_all_at(&header, 0).map_err(io)?;
        file.sync_all().map_err(io)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok(VectorFile { path: path.to_path_buf(), file, dim, rows: HashMap::new(), len: 0 })
    }

    /// Opens a file, cutting off a torn last row and leaving rows that fail their checksum
    /// out of the map (`verify_integrity` then reports their faces).
    fn open(path: &Path) -> Result<VectorFile> {
        let io = |e| StoreError::io(format!("{}: opening the vector file", path.display()), e);
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0).map_err(io)?;
        if &header[..8] != MAGIC {
            return Err(StoreError::Corrupt(format!("{}: not an fdb vector file", path.display())));
        }
        let dim = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        if dim == 0 {
            return Err(StoreError::Corrupt(format!("{}: vector file of dimension 0", path.display())));
        }
        let mut vf = VectorFile { path: path.to_path_buf(), file, dim, rows: HashMap::new(), len: 0 };
        let bytes = vf.file.metadata().map_err(io)?.len() - HEADER_LEN;
        let whole = bytes / vf.row_bytes() as u64;
        if bytes % vf.row_bytes() as u64 != 0 {
            vf.file.set_len(HEADER_LEN + whole * vf.row_bytes() as u64).map_err(io)?;
        }
        vf.len = u32::try_from(whole)
            .map_err(|_| StoreError::Corrupt(format!("{}: more rows than fdb addresses", path.display())))?;
        let mut rows = HashMap::with_capacity(whole as usize);
        vf.scan_rows(|row, bytes| {
            if row_checksum_ok(bytes) {
                rows.insert(row_id(bytes), row);
            }
            Ok(())
        })?;
        vf.rows = rows;
        Ok(vf)
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.rows.contains_key(&id)
    }

    /// Ids with a row, garbage included, in no order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows.keys().copied()
    }

    pub(crate) fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        let Some(&row) = self.rows.get(&id) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; self.row_bytes()];
        self.file
            .read_exact_at(&mut buf, self.offset(row))
            .map_err(|e| StoreError::io(format!("{}: reading the vector of face {id}", self.path.display()), e))?;
        match decode_row(&buf) {
            Some((found, v)) if found == id => Ok(Some(v)),
            _ => Err(StoreError::Corrupt(format!("{}: row {row} (face {id}) fails its checksum", self.path.display()))),
        }
    }

    /// Calls `f(row, bytes)` for every row in file order, reading in large steps.
    fn scan_rows(&self, mut f: impl FnMut(u32, &[u8]) -> Result<()>) -> Result<()> {
        let row_bytes = self.row_bytes();
        let per_step = (SCAN_BYTES / row_bytes).max(1);
        let mut buf = vec![0u8; per_step * row_bytes];
        let mut row = 0u32;
        while row < self.len {
            let n = (per_step as u32).min(self.len - row);
            let step = &mut buf[..n as usize * row_bytes];
            self.file
                .read_exact_at(step, self.offset(row))
                .map_err(|e| StoreError::io(format!("{}: reading the vectors", self.path.display()), e))?;
            for (i, r) in step.chunks_exact(row_bytes).enumerate() {
                f(row + i as u32, r)?;
            }
            row += n;
        }
        Ok(())
    }

    /// Calls `f(id, vector)` for the current row of every id, in file order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, Vec<f32>) -> Result<()>) -> Result<()> {
        self.scan_rows(|row, bytes| {
            let id = row_id(bytes);
            if self.rows.get(&id) != Some(&row) {
                return Ok(()); // garbage, or a row that failed its checksum at open
            }
            let (_, v) = decode_row(bytes).ok_or_else(|| {
                StoreError::Corrupt(format!("{}: row {row} (face {id}) fails its checksum", self.path.display()))
            })?;
            f(id, v)
        })
    }

    /// Appends rows and syncs them; returns the rows' first position and each id's previous
    /// row. On an error nothing is appended.
    ///
    /// An id may already have a row: sled 0.34 hands an id out again after a kill when its first
    /// use never became durable (its counter is made durable one step behind). sled never
    /// repeats the id of a durable record, so the older row is garbage from an add that a crash
    /// cut off between this append and its commit, and the new row supersedes it.
    fn append(&mut self, rows: &[(u64, &[f32])]) -> Result<(u32, Vec<(u64, Option<u32>)>)> {
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        for (id, v) in rows {
            if v.len() != self.dim {
                return Err(StoreError::InvalidEmbedding(format!(
                    "its embeddings have {} dimensions, this one has {}",
                    self.dim,
                    v.len()
                )));
            }
            if !seen.insert(*id) {
                return Err(StoreError::InvalidArgument(format!("face {id} is given twice")));
            }
        }
        let len_before = self.len;
        let new_len = u32::try_from(self.len as u64 + rows.len() as u64)
            .map_err(|_| StoreError::InvalidArgument(format!("{}: more rows than fdb addresses", self.path.display())))?;
        let mut buf = Vec::with_capacity(rows.len() * self.row_bytes());
        for (id, v) in rows {
            encode_row(&mut buf, *id, v);
        }
        let written = self.file.write_all_at(&buf, self.offset(len_before)).and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.offset(len_before));
            return Err(StoreError::io(format!("{}: writing vectors", self.path.display()), e));
        }
        let replaced = rows.iter().enumerate().map(|(i, (id, _))| (*id, self.rows.insert(*id, len_before + i as u32))).collect();
        self.len = new_len;
        Ok((len_before, replaced))
    }

    /// Takes back the rows of an `append` that sled did not commit.
    fn take_back(&mut self, len_before: u32, replaced: &[(u64, Option<u32>)]) -> Result<()> {
        for &(id, previous) in replaced {
            match previous {
                Some(row) => self.rows.insert(id, row),
                None => self.rows.remove(&id),
            };
        }
        self.len = len_before;
        self.file
            .set_len(self.offset(len_before))
            .map_err(|e| StoreError::io(format!("{}: taking back unstored vectors", self.path.display()), e))
    }

    /// Rewrites the file with only the rows of ids that `keep` accepts (a copy, synced and
    /// renamed over the old file). Only for ids whose removal sled already holds durably.
    fn retain(&mut self, keep: impl Fn(u64) -> bool) -> Result<usize> {
        let dropped = self.len as usize - self.rows.keys().filter(|id| keep(**id)).count();
        if dropped == 0 {
            return Ok(0);
        }
        let tmp = self.path.with_extension("tmp");
        let mut out = VectorFile::create(&tmp, self.dim)?;
        let mut batch: Vec<(u64, Vec<f32>)> = Vec::new();
        let flush = |out: &mut VectorFile, batch: &mut Vec<(u64, Vec<f32>)>| -> Result<()> {
            out.append(&borrowed(batch))?;
            batch.clear();
            Ok(())
        };
        self.for_each(|id, v| {
            if keep(id) {
                batch.push((id, v));
                if batch.len() * out.row_bytes() >= SCAN_BYTES {
                    flush(&mut out, &mut batch)?;
                }
            }
            Ok(())
        })?;
        flush(&mut out, &mut batch)?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| StoreError::io(format!("{}: replacing the vector file", self.path.display()), e))?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        out.path = self.path.clone();
        *self = out;
        Ok(dropped)
    }
}

/// The vector files of every model, in the database's `vectors` directory.
pub(crate) struct VectorFiles {
    dir: PathBuf,
    files: RwLock<HashMap<String, VectorFile>>,
    /// Files that could not be opened (file name, why): their models' faces have no rows until
    /// a repair writes the file again.
    unreadable: Vec<(String, String)>,
}

impl VectorFiles {
    /// Opens every model's file in `dir` (created 0700 if missing); removes the copies a
    /// crash left behind in `retain`.
    pub(crate) fn open(dir: &Path) -> Result<VectorFiles> {
        let io = |e| StoreError::io(format!("{}: opening the vector directory", dir.display()), e);
        if !dir.is_dir() {
            crate::dir::create_private_dir(dir).map_err(io)?;
        }
        let mut files = HashMap::new();
        let mut unreadable = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp") => std::fs::remove_file(&path).map_err(io)?,
                Some(EXTENSION) => {
                    let len = std::fs::metadata(&path).map_err(io)?.len();
                    if len < HEADER_LEN {
                        // A crash inside `create`, before any row: nothing can name it.
                        std::fs::remove_file(&path).map_err(io)?;
                    } else if let Some(model) = path.file_stem().and_then(|s| s.to_str()).and_then(model_of_stem) {
                        match VectorFile::open(&path) {
                            Ok(file) => {
                                files.insert(model, file);
                            }
                            // A damaged header: the store reports the faces it leaves without rows.
                            Err(StoreError::Corrupt(why)) => unreadable.push((path.display().to_string(), why)),
                            Err(e) => return Err(e),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(VectorFiles { dir: dir.to_path_buf(), files: RwLock::new(files), unreadable })
    }

    /// The files open could not read (see `unreadable`).
    pub(crate) fn unreadable(&self) -> Vec<(String, String)> {
        self.unreadable.clone()
    }

    fn path_of(&self, model: &str) -> PathBuf {
        self.dir.join(format!("{}.{EXTENSION}", crate::codec::hex(model.as_bytes())))
    }

    /// Models with a vector file, sorted.
    pub(crate) fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = self.files.read().keys().cloned().collect();
        models.sort();
        models
    }

    /// Runs `f` on a model's file, if it has one.
    pub(crate) fn with<T>(&self, model: &str, f: impl FnOnce(&VectorFile) -> T) -> Option<T> {
        self.files.read().get(model).map(f)
    }

    pub(crate) fn get(&self, model: &str, id: u64) -> Result<Option<Vec<f32>>> {
        self.with(model, |f| f.get(id)).unwrap_or(Ok(None))
    }

    pub(crate) fn contains(&self, model: &str, id: u64) -> bool {
        self.with(model, |f| f.contains(id)).unwrap_or(false)
    }

    /// Appends rows to a model's file (created at `dim` if it has none) and syncs them.
    pub(crate) fn append(&self, model: &str, dim: usize, rows: &[(u64, &[f32])]) -> Result<Appended> {
        let mut files = self.files.write();
        // A file that never held a row may have been made for another dimension by an add that
        // failed: sled holds no dimension for the model then.
        let fresh = files.get(model).map_or(true, |f| f.len == 0 && f.dim != dim);
        if fresh {
            files.insert(model.to_string(), VectorFile::create(&self.path_of(model), dim)?);
        }
        let file = files.get_mut(model).expect("inserted above");
        let (len_before, replaced) = file.append(rows).map_err(|e| match e {
            StoreError::InvalidEmbedding(why) => StoreError::InvalidEmbedding(format!("model {model:?}: {why}")),
            e => e,
        })?;
        Ok(Appended { model: model.to_string(), len_before, replaced })
    }

    /// Takes back appended rows that sled did not commit.
    pub(crate) fn take_back(&self, appended: Appended) -> Result<()> {
        match self.files.write().get_mut(&appended.model) {
            Some(f) => f.take_back(appended.len_before, &appended.replaced),
            None => Ok(()),
        }
    }

    /// Empties a model's file (for a model that is not active: nothing durable refers to it).
    pub(crate) fn recreate(&self, model: &str, dim: usize) -> Result<()> {
        let file = VectorFile::create(&self.path_of(model), dim)?;
        self.files.write().insert(model.to_string(), file);
        Ok(())
    }

    /// Drops the rows of a model whose ids `keep` refuses; returns how many went.
    pub(crate) fn retain(&self, model: &str, keep: impl Fn(u64) -> bool) -> Result<usize> {
        match self.files.write().get_mut(model) {
            Some(f) => f.retain(keep),
            None => Ok(0),
        }
    }

    /// Bytes of every vector file.
    pub(crate) fn bytes(&self) -> u64 {
        crate::maintenance::disk_bytes(&self.dir)
    }
}

/// Owned rows (face id, vector), borrowed the way `append` takes them.
pub(crate) fn borrowed(rows: &[(u64, Vec<f32>)]) -> Vec<(u64, &[f32])> {
    rows.iter().map(|(id, v)| (*id, v.as_slice())).collect()
}

fn encode_row(buf: &mut Vec<u8>, id: u64, v: &[f32]) {
    let start = buf.len();
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&[0u8; 8]);
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    let crc = row_crc(&buf[start..]);
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// crc32 of the id and the vector (the crc and the spare bytes are not covered).
fn row_crc(row: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&row[..8]);
    h.update(&row[ROW_HEAD..]);
    h.finalize()
}

fn row_checksum_ok(row: &[u8]) -> bool {
    row_crc(row) == u32::from_le_bytes(row[8..12].try_into().unwrap())
}

fn row_id(row: &[u8]) -> u64 {
    u64::from_le_bytes(row[..8].try_into().unwrap())
}

fn decode_row(row: &[u8]) -> Option<(u64, Vec<f32>)> {
    if !row_checksum_ok(row) {
        return None;
    }
    let id = row_id(row);
    let v = row[ROW_HEAD..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Some((id, v))
}

/// The model id a file stem names (the id's bytes in hex).
fn model_of_stem(stem: &str) -> Option<String> {
    if stem.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..stem.len()).step_by(2).map(|i| u8::from_str_radix(&stem[i..i + 2], 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Makes a file's creation or renaming in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("{}: syncing the directory", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(seed: u64, dim: usize) -> Vec<f32> {
        (0..dim).map(|i| ((seed * 31 + i as u64) % 17) as f32 - 8.0).collect()
    }

    #[test]
    fn rows_survive_reopen_and_a_torn_or_damaged_row_is_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = VectorFiles::open(&dir.path().join("vectors")).unwrap();
        let (a, b, c) = (v(1, 8), v(2, 8), v(3, 8));
        files.append("model é", 8, &[(10, &a), (11, &b)]).unwrap();
        files.append("model é", 8, &[(12, &c)]).unwrap();
        assert!(matches!(files.append("model é", 8, &[(13, &c), (13, &c)]), Err(StoreError::InvalidArgument(_))));
        assert!(matches!(files.append("model é", 8, &[(13, &c[..4])]), Err(StoreError::InvalidEmbedding(_))));
        let path = files.path_of("model é");
        drop(files);

        // A torn append: half a row after the last whole one.
        let row = ROW_HEAD + 32;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&vec![7u8; row / 2], HEADER_LEN + 3 * row as u64).unwrap();
        let files = VectorFiles::open(&dir.path().join("vectors")).unwrap();
        assert_eq!(files.models(), vec!["model é".to_string()]);
        assert_eq!(files.get("model é", 11).unwrap(), Some(b.clone()));
        assert_eq!(files.get("model é", 12).unwrap(), Some(c.clone()));
        assert_eq!(files.get("model é", 99).unwrap(), None);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN + 3 * row as u64);
        drop(files);

        // A flipped bit in row 0's vector: face 10 is left out, the others still read.
        f.write_all_at(&[0x40], HEADER_LEN + ROW_HEAD as u64 + 5).unwrap();
        let files = VectorFiles::open(&dir.path().join("vectors")).unwrap();
        assert!(!files.contains("model é", 10));
        assert_eq!(files.get("model é", 12).unwrap(), Some(c));
    }

    #[test]
    fn take_back_and_retain_leave_exactly_the_kept_rows() {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vectors");
        let files = VectorFiles::open(&vdir).unwrap();
        let vs: Vec<Vec<f32>> = (0..50).map(|i| v(i, 4)).collect();
        let rows: Vec<(u64, &[f32])> = vs.iter().enumerate().map(|(i, x)| (i as u64, x.as_slice())).collect();
        files.append("m", 4, &rows[..40]).unwrap();
        let appended = files.append("m", 4, &rows[40..]).unwrap();
        files.take_back(appended).unwrap();
        assert!(!files.contains("m", 45) && files.contains("m", 39));
        // An id sled hands out again after a kill supersedes its orphaned row; taken back, the
        // old row is the id's again (and a reopen reads the newest row that was kept).
        let again = files.append("m", 4, &[(7, &vs[8])]).unwrap();
        assert_eq!(files.get("m", 7).unwrap(), Some(vs[8].clone()));
        files.take_back(again).unwrap();
        assert_eq!(files.get("m", 7).unwrap(), Some(vs[7].clone()));
        files.append("m", 4, &[(6, &vs[5])]).unwrap();
        assert_eq!(files.get("m", 6).unwrap(), Some(vs[5].clone()));
        drop(files);
        let files = VectorFiles::open(&vdir).unwrap();
        assert_eq!(files.get("m", 6).unwrap(), Some(vs[5].clone()));
        assert_eq!(files.retain("m", |_| true).unwrap(), 1); // the superseded row of 6
        assert_eq!(files.get("m", 6).unwrap(), Some(vs[5].clone()));
        // The taken-back ids can be appended again.
        files.append("m", 4, &rows[40..45]).unwrap();
        assert_eq!(files.retain("m", |id| id % 3 == 0).unwrap(), 30);
        assert_eq!(files.retain("m", |id| id % 3 == 0).unwrap(), 0);
        drop(files);
        std::fs::write(vdir.join("6d.tmp"), b"left by a crash").unwrap();
        std::fs::write(vdir.join("6e.f32"), b"fdbvec").unwrap(); // a crash inside `create`
        let files = VectorFiles::open(&vdir).unwrap();
        let mut seen = Vec::new();
        files.with("m", |f| f.for_each(|id, x| Ok(seen.push((id, x))))).unwrap().unwrap();
        seen.sort_by_key(|(id, _)| *id); // file order: 6's newer row comes after 39's
        let expected: Vec<(u64, Vec<f32>)> =
            (0..45u64).filter(|i| i % 3 == 0).map(|i| (i, vs[if i == 6 { 5 } else { i as usize }].clone())).collect();
        assert_eq!(seen, expected);
        assert!(!vdir.join("6d.tmp").exists() && !vdir.join("6e.f32").exists());
        assert_eq!(files.models(), vec!["m".to_string()]);
    }
}
