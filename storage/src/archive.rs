//! The portable archive: a database's settings, people and faces (with their crops and every
//! stored embedding) in one file that another fdb, on another machine or of a later version,
//! imports (`Store::export_archive`, `Store::import_archive`).
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic    "FDBARCHV"                      8 bytes
//! format   u32                             ARCHIVE_FORMAT; a reader refuses a higher one
//! records  kind u8, length u32, payload, crc32 u32 (of kind, length and payload)
//! ```
//!
//! Payloads are bincode 2 (standard configuration; floats as 4 bytes, so embeddings round-trip
//! bit for bit). The records come in this order: one header (`ArchiveHeader`), the settings
//! (`meta` keys: the threshold and the caller's `user/` settings), the people
//! (`ArchivedPerson`), the faces (`ArchivedFace`, which name their person by its id in the
//! archive), and a trailer with the number of each; the file ends there. A flipped byte fails its
//! record's checksum, a cut file misses its trailer, and a trailer whose counts differ from the
//! records read is refused: `validate_archive` reads the whole file before an import writes
//! anything.
//!
//! An import is all or nothing, also when the process is killed: before its first write it stores
//! `meta`'s `import_pending` key (the first id it will use; ids only grow and the writer lock
//! keeps other writers out), each batch is one transaction, and the key goes in the same batch
//! as the archive's settings at the end. An open that finds the key removes every face and
//! person with an id from it on (their vector rows become garbage), then the key.

use crate::codec::{self, id_key};
use crate::error::{Result, StoreError};
use crate::faces::{decode_face, Units};
use crate::people::decode_person;
use crate::store::{tx, Store, WriterGuard, META_THRESHOLD};
use crate::txn::TxResult;
use crate::types::{FaceId, NewFace, NewPerson, PersonId};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The archive format this build writes, and the newest it reads.
pub const ARCHIVE_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"FDBARCHV";
/// `meta` key of an import in progress: the first id it used (u64 big-endian).
pub(crate) const META_IMPORT_PENDING: &[u8] = b"import_pending";
const META_USER_PREFIX: &str = "user/";

const KIND_HEADER: u8 = 1;
const KIND_SETTING: u8 = 2;
const KIND_PERSON: u8 = 3;
const KIND_FACE: u8 = 4;
const KIND_TRAILER: u8 = 5;
/// No record is larger (a face with a big crop is well under 1 MB): a damaged length cannot
/// make a reader allocate gigabytes.
const MAX_RECORD: u32 = 256 << 20;
/// Faces per import transaction (and per call of the re-embedding hook).
const IMPORT_BATCH: usize = 64;
/// Faces or people removed per transaction when an unfinished import is taken back.
const ROLLBACK_BATCH: usize = 256;

/// What the archive says about the database it was written from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// The program that wrote it ("fdb-storage 0.2.0").
    pub writer: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The schema version of the database it was written from.
    pub schema_version: u32,
    /// The model whose embeddings that database searched.
    pub active_model: Option<String>,
    /// Every model with stored embeddings, and its dimension.
    pub models: Vec<(String, u32)>,
}

/// A person in an archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchivedPerson {
    /// The person's id in the database the archive was written from (faces name it).
    pub id: u64,
    /// The name.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Free-form attributes.
    pub meta: BTreeMap<String, String>,
}

/// A face in an archive: its record, its crop and its embeddings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchivedFace {
    /// The archive id of its person.
    pub person: u64,
    /// Where the face came from, as given at enrolment.
    pub source_name: String,
    /// The sha256 of the source file's bytes.
    pub source_sha256: [u8; 32],
    /// x1, y1, x2, y2 in source pixels.
    pub bbox: [f32; 4],
    /// Five landmarks as (x, y) in source pixels.
    pub landmarks: [[f32; 2]; 5],
    /// The detector's probability.
    pub score: f32,
    /// The quality score given at enrolment, if any.
    pub quality: Option<f32>,
    /// The model that embedded the face when it was enrolled.
    pub model_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The aligned crop, encoded as it was stored.
    pub crop: Vec<u8>,
    /// Every stored embedding of the face: (model, unit vector).
    pub embeddings: Vec<(String, Vec<f32>)>,
}

#[derive(Serialize, Deserialize)]
struct Setting {
    key: String,
    value: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    settings: u64,
    people: u64,
    faces: u64,
}

/// One record after the header.
#[derive(Clone, Debug, PartialEq)]
pub enum ArchiveRecord {
    /// A `meta` setting: `threshold` or a `user/` key.
    Setting {
        /// The `meta` key.
        key: String,
        /// Its bytes.
        value: Vec<u8>,
    },
    /// A person.
    Person(ArchivedPerson),
    /// A face.
    Face(Box<ArchivedFace>),
}

/// What an archive holds, from `validate_archive` or an export.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveSummary {
    /// The archive file.
    pub path: PathBuf,
    /// Its header.
    pub header: ArchiveHeader,
    /// Settings records.
    pub settings: u64,
    /// People.
    pub people: u64,
    /// Faces.
    pub faces: u64,
    /// The file's size.
    pub bytes: u64,
}

/// Reads an archive record by record, checking each one's checksum and the order of kinds; the
/// trailer's counts are checked when it is reached, and nothing may follow it.
pub struct ArchiveReader {
    path: PathBuf,
    input: BufReader<File>,
    len: u64,
    offset: u64,
    records: u64,
    header: ArchiveHeader,
    last_kind: u8,
    counts: [u64; 3],
    done: bool,
}

impl ArchiveReader {
    /// Opens an archive and reads its magic, format and header.
    pub fn open(path: &Path) -> Result<ArchiveReader> {
        let file = File::open(path).map_err(|e| StoreError::io(format!("{}: opening the archive", path.display()), e))?;
        let len = file.metadata().map_err(|e| StoreError::io(format!("{}: reading the archive", path.display()), e))?.len();
        let bad = |reason: String| StoreError::BadArchive { path: path.to_path_buf(), reason };
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut start = [0u8; 12];
        if len < 12 || input.read_exact(&mut start).is_err() {
            return Err(bad(format!("not an fdb archive (only {len} bytes)")));
        }
        if &start[..8] != MAGIC {
            return Err(bad("not an fdb archive (wrong magic bytes)".into()));
        }
        let format = u32::from_le_bytes(start[8..12].try_into().expect("4 bytes"));
        if format > ARCHIVE_FORMAT {
            return Err(bad(format!(
                "archive format version {format} is newer than this fdb reads ({ARCHIVE_FORMAT}); upgrade fdb"
            )));
        }
        if format == 0 {
            return Err(bad("archive format version 0 does not exist (damaged header)".into()));
        }
        let placeholder = ArchiveHeader { writer: String::new(), created_ms: 0, schema_version: 0, active_model: None, models: Vec::new() };
        let mut reader = ArchiveReader {
            path: path.to_path_buf(),
            input,
            len,
            offset: 12,
            records: 0,
            header: placeholder,
            last_kind: 0,
            counts: [0; 3],
            done: false,
        };
        let (kind, payload) = reader.read_raw()?;
        if kind != KIND_HEADER {
            return Err(reader.bad(format!("the first record is of kind {kind}, not the header")));
        }
        reader.header = reader.decode(&payload, "the header")?;
        reader.last_kind = KIND_HEADER;
        Ok(reader)
    }

    /// The archive's header.
    pub fn header(&self) -> &ArchiveHeader {
        &self.header
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bad(&self, reason: String) -> StoreError {
        StoreError::BadArchive { path: self.path.clone(), reason }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, payload: &[u8], what: &str) -> Result<T> {
        codec::decode(payload, what).map_err(|e| self.bad(format!("record {} ({what}) cannot be read: {e}", self.records)))
    }

    /// The next record's kind and payload, its checksum checked.
    fn read_raw(&mut self) -> Result<(u8, Vec<u8>)> {
        let at = self.offset;
        let record = self.records + 1;
        let truncated = |this: &Self| {
            this.bad(format!("the archive ends inside record {record} at byte {at} of {}: it is truncated", this.len))
        };
        let mut head = [0u8; 5];
        if self.len - at < 5 || self.input.read_exact(&mut head).is_err() {
            return Err(truncated(self));
        }
        let kind = head[0];
        let length = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes"));
        let left = self.len - at - 5;
        if length > MAX_RECORD || u64::from(length) + 4 > left {
            return Err(self.bad(format!(
                "record {record} at byte {at} claims {length} bytes, but only {left} follow: the archive is truncated or damaged"
            )));
        }
        let mut payload = vec![0u8; length as usize];
        let mut crc = [0u8; 4];
        if self.input.read_exact(&mut payload).is_err() || self.input.read_exact(&mut crc).is_err() {
            return Err(truncated(self));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        if hasher.finalize() != u32::from_le_bytes(crc) {
            return Err(self.bad(format!("record {record} at byte {at} fails its checksum: the archive is damaged")));
        }
        self.offset = at + 5 + u64::from(length) + 4;
        self.records = record;
        Ok((kind, payload))
    }

    /// The next record, or `None` once the trailer was read and found to match.
    pub fn next_record(&mut self) -> Result<Option<ArchiveRecord>> {
        if self.done {
            return Ok(None);
        }
        let (kind, payload) = self.read_raw()?;
        if kind < self.last_kind || !(KIND_SETTING..=KIND_TRAILER).contains(&kind) {
            return Err(self.bad(format!("record {} at byte {} is out of order (kind {kind} after {})", self.records, self.offset, self.last_kind)));
        }
        self.last_kind = kind;
        let record = match kind {
            KIND_SETTING => {
                let s: Setting = self.decode(&payload, "a setting")?;
                self.counts[0] += 1;
                ArchiveRecord::Setting { key: s.key, value: s.value }
            }
            KIND_PERSON => {
                self.counts[1] += 1;
                ArchiveRecord::Person(self.decode(&payload, "a person")?)
            }
            KIND_FACE => {
                self.counts[2] += 1;
                ArchiveRecord::Face(Box::new(self.decode(&payload, "a face")?))
            }
            _ => {
                let t: Trailer = self.decode(&payload, "the trailer")?;
                if [t.settings, t.people, t.faces] != self.counts {
                    return Err(self.bad(format!(
                        "the trailer counts {} settings, {} people and {} faces, the archive holds {}, {} and {}",
                        t.settings, t.people, t.faces, self.counts[0], self.counts[1], self.counts[2]
                    )));
                }
                if self.offset != self.len {
                    return Err(self.bad(format!("{} bytes follow the trailer", self.len - self.offset)));
                }
                self.done = true;
                return Ok(None);
            }
        };
        Ok(Some(record))
    }

    fn summary(&self) -> ArchiveSummary {
        ArchiveSummary {
            path: self.path.clone(),
            header: self.header.clone(),
            settings: self.counts[0],
            people: self.counts[1],
            faces: self.counts[2],
            bytes: self.len,
        }
    }
}

/// Reads a whole archive, checking every record's checksum, the order of records, that every
/// face names a person of the archive, and the trailer's counts; writes nothing.
pub fn validate_archive(path: &Path) -> Result<ArchiveSummary> {
    let mut reader = ArchiveReader::open(path)?;
    let mut people = HashSet::new();
    while let Some(record) = reader.next_record()? {
        match record {
            ArchiveRecord::Person(p) => {
                people.insert(p.id);
            }
            ArchiveRecord::Face(f) if !people.contains(&f.person) => {
                return Err(reader.bad(format!(
                    "record {} (face {}) names person {}, whom the archive does not hold",
                    reader.records, f.source_name, f.person
                )));
            }
            _ => {}
        }
    }
    Ok(reader.summary())
}

/// Writes records with their checksums.
struct RecordWriter<W: Write> {
    out: W,
}

impl<W: Write> RecordWriter<W> {
    fn record<T: Serialize>(&mut self, kind: u8, value: &T) -> std::io::Result<()> {
        let payload = codec::encode(value);
        let length = u32::try_from(payload.len()).ok().filter(|&l| l <= MAX_RECORD).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a record of {} bytes is too large", payload.len()))
        })?;
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&length.to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        self.out.write_all(&head)?;
        self.out.write_all(&payload)?;
        self.out.write_all(&hasher.finalize().to_le_bytes())
    }
}

/// Turns an archived person's name into the name stored, or says why it cannot be one.
pub type NameRule<'a> = Box<dyn Fn(&str) -> std::result::Result<String, String> + 'a>;
/// Embeds encoded crops (one vector per crop), or says why it cannot.
pub type Embedder<'a> = Box<dyn FnMut(&[&[u8]]) -> std::result::Result<Vec<Vec<f32>>, String> + 'a>;

/// How `Store::import_archive` treats an archive; the facade fills in its policy.
pub struct ImportOptions<'a> {
    /// The model the imported faces' vectors must be by: the store's active model (or the one
    /// it will have). When it is the archive's active model, the archive's embeddings are stored
    /// bit for bit; otherwise `embed` computes them from the crops.
    pub model: String,
    /// Turns an archived name into the name stored and matched (the facade: NFC, trimmed), or
    /// refuses it.
    pub name: NameRule<'a>,
    /// Embeds encoded crops by `model`, for an archive whose embeddings are by another model;
    /// without it such an archive is refused.
    pub embed: Option<Embedder<'a>>,
    /// Also store the archive's settings (the threshold and the caller's `user/` settings).
    pub apply_settings: bool,
}

/// A face an import left out because its photo is stored already.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedFace {
    /// The archived face's source name.
    pub source_name: String,
    /// The face already stored with the same photo (sha256).
    pub existing: u64,
}

/// What `Store::import_archive` did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportReport {
    /// What the archive held.
    #[serde(skip)]
    pub archive: Option<ArchiveSummary>,
    /// People created.
    pub people_created: usize,
    /// Archived people whose name was already in the store (their faces joined them).
    pub people_matched: usize,
    /// Faces stored.
    pub faces_imported: usize,
    /// Faces whose photo (sha256) was stored already.
    pub faces_skipped: Vec<SkippedFace>,
    /// True when the archive's embeddings were stored as they are; false when they were
    /// computed again from the crops (another model or recipe).
    pub embeddings_kept: bool,
    /// Settings stored.
    pub settings_applied: usize,
}

/// An archived person, as the import maps it.
struct PersonSlot {
    name: String,
    meta: BTreeMap<String, String>,
    /// The store's person, once known (existing, or created with their first face).
    target: Option<PersonId>,
}

/// A face waiting in an import batch.
struct Pending {
    face: Box<ArchivedFace>,
    embedding: Option<Vec<f32>>,
}

impl Store {
    /// Writes the portable archive of the whole database to `path` (a new file, mode 0600):
    /// written beside it and renamed when complete, under the writer lock, so it is consistent
    /// while other threads write (they wait; searches go on). Streams: one face at a time.
    pub fn export_archive(&self, path: &Path) -> Result<ArchiveSummary> {
        if path.exists() {
            return Err(StoreError::InvalidArgument(format!("{}: exists; an export writes a new file", path.display())));
        }
        let name = path.file_name().ok_or_else(|| StoreError::InvalidArgument(format!("{}: not a file name", path.display())))?;
        let tmp = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let written = self.write_archive(&tmp);
        let renamed = written.and_then(|s| {
            std::fs::rename(&tmp, path).map_err(|e| StoreError::io(format!("{}: renaming the finished archive", path.display()), e))?;
            Ok(s)
        });
        match renamed {
            Ok(mut summary) => {
                summary.path = path.to_path_buf();
                Ok(summary)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn write_archive(&self, tmp: &Path) -> Result<ArchiveSummary> {
        let io = |e| StoreError::io(format!("{}: writing the archive", tmp.display()), e);
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(tmp).map_err(io)?;
        let mut w = RecordWriter { out: BufWriter::with_capacity(1 << 20, file) };
        let _w = self.writer.lock();
        w.out.write_all(MAGIC).map_err(io)?;
        w.out.write_all(&ARCHIVE_FORMAT.to_le_bytes()).map_err(io)?;
        let models = self.vectors.models();
        let header = ArchiveHeader {
            writer: format!("fdb-storage {}", env!("CARGO_PKG_VERSION")),
            created_ms: codec::now_ms(),
            schema_version: crate::store::SCHEMA_VERSION,
            active_model: self.active_model()?,
            models: models.iter().map(|m| (m.clone(), self.vectors.with(m, |f| f.dim() as u32).unwrap_or(0))).collect(),
        };
        w.record(KIND_HEADER, &header).map_err(io)?;
        let mut counts = [0u64; 3];
        let mut settings: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(t) = self.t.meta.get(META_THRESHOLD)? {
            settings.push((String::from_utf8_lossy(META_THRESHOLD).into_owned(), t.to_vec()));
        }
        for kv in self.t.meta.scan_prefix(META_USER_PREFIX) {
            let (k, v) = kv?;
            settings.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        for (key, value) in settings {
            w.record(KIND_SETTING, &Setting { key, value }).map_err(io)?;
            counts[0] += 1;
        }
        for kv in self.t.people.iter() {
            let (k, v) = kv?;
            let p = decode_person(codec::key_id(&k, "people")?, &v)?;
            w.record(KIND_PERSON, &ArchivedPerson { id: p.id.0, name: p.name, created_ms: p.created_ms, meta: p.meta }).map_err(io)?;
            counts[1] += 1;
        }
        let crops = self.crops();
        for kv in self.t.faces.iter() {
            let (k, v) = kv?;
            let id = codec::key_id(&k, "faces")?;
            let f = decode_face(id, &v)?;
            let crop = crops.get(id_key(id))?.ok_or_else(|| {
                StoreError::Corrupt(format!("face {id} ({}) has no crop; `fdb repair` first", f.source_name))
            })?;
            let mut embeddings = Vec::new();
            for m in &models {
                if let Some(v) = self.vectors.get(m, id)? {
                    embeddings.push((m.clone(), v));
                }
            }
            let face = ArchivedFace {
                person: f.person.0,
                source_name: f.source_name,
                source_sha256: f.source_sha256,
                bbox: f.bbox,
                landmarks: f.landmarks,
                score: f.score,
                quality: f.quality,
                model_id: f.model_id,
                created_ms: f.created_ms,
                crop: crop.to_vec(),
                embeddings,
            };
            w.record(KIND_FACE, &face).map_err(io)?;
            counts[2] += 1;
        }
        w.record(KIND_TRAILER, &Trailer { settings: counts[0], people: counts[1], faces: counts[2] }).map_err(io)?;
        let file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        Ok(ArchiveSummary {
            path: tmp.to_path_buf(),
            header,
            settings: counts[0],
            people: counts[1],
            faces: counts[2],
            bytes,
        })
    }

    /// Imports an archive: all of it or, on any error (a damaged archive, a failed
    /// re-embedding) or a kill, nothing. The whole file is checked first (`validate_archive`).
    /// Faces whose photo (sha256) is stored already are skipped and reported; archived people
    /// are matched by name (after `options.name`), the others are created with their first face.
    /// The index is rebuilt once at the end.
    pub fn import_archive(&self, path: &Path, mut options: ImportOptions<'_>) -> Result<ImportReport> {
        let summary = validate_archive(path)?;
        let keep = summary.header.active_model.as_deref() == Some(options.model.as_str());
        if !keep && options.embed.is_none() {
            return Err(StoreError::InvalidArgument(format!(
                "{}: its embeddings are by {:?}, this database's by {:?}, and no embedder was given to compute them from the crops",
                path.display(),
                summary.header.active_model,
                options.model
            )));
        }
        let w = self.writer.lock();
        if let Some(active) = self.active_model()? {
            if active != options.model {
                return Err(StoreError::InvalidArgument(format!(
                    "import by model {:?} into a store whose model is {active:?}",
                    options.model
                )));
            }
        }
        let first = self.db.generate_id()?;
        let mut pending = id_key(first).to_vec();
        pending.push(u8::from(self.active_model()?.is_some()));
        self.t.meta.insert(META_IMPORT_PENDING, pending)?;
        self.db.flush()?;
        let mut report = ImportReport {
            archive: None,
            people_created: 0,
            people_matched: 0,
            faces_imported: 0,
            faces_skipped: Vec::new(),
            embeddings_kept: keep,
            settings_applied: 0,
        };
        match self.import_locked(path, &mut options, keep, &mut report, &w) {
            Ok(()) => {
                report.archive = Some(summary);
                Ok(report)
            }
            Err(e) => {
                self.roll_back_import_locked(&w)?;
                Err(e)
            }
        }
    }

    fn import_locked(
        &self,
        path: &Path,
        options: &mut ImportOptions<'_>,
        keep: bool,
        report: &mut ImportReport,
        w: &WriterGuard,
    ) -> Result<()> {
        let mut reader = ArchiveReader::open(path)?;
        let mut settings = sled::Batch::default();
        let mut people: HashMap<u64, PersonSlot> = HashMap::new();
        // Names created by this import, so that two archived people of one name are one person.
        let mut created: HashMap<String, PersonId> = HashMap::new();
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
        let mut batch: Vec<Pending> = Vec::new();
        while let Some(record) = reader.next_record()? {
            match record {
                ArchiveRecord::Setting { key, value } => {
                    if options.apply_settings && (key.as_bytes() == META_THRESHOLD || key.starts_with(META_USER_PREFIX)) {
                        settings.insert(key.as_bytes(), value);
                        report.settings_applied += 1;
                    }
                }
                ArchiveRecord::Person(p) => {
                    let name = (options.name)(&p.name).map_err(|why| reader.bad(format!("person {:?}: {why}", p.name)))?;
                    let target = self.person_by_name(&name)?.map(|existing| existing.id);
                    if target.is_some() {
                        report.people_matched += 1;
                    }
                    people.insert(p.id, PersonSlot { name, meta: p.meta, target });
                }
                ArchiveRecord::Face(face) => {
                    if !people.contains_key(&face.person) {
                        return Err(reader.bad(format!("face {} names person {}, whom the archive does not hold", face.source_name, face.person)));
                    }
                    if let Some(existing) = self.face_by_sha256(&face.source_sha256)? {
                        report.faces_skipped.push(SkippedFace { source_name: face.source_name.clone(), existing: existing.0 });
                        continue;
                    }
                    if !seen.insert(face.source_sha256) {
                        continue; // the same photo twice in the archive: the first copy is imported
                    }
                    let embedding = if keep {
                        let stored = face.embeddings.iter().find(|(m, _)| *m == options.model).map(|(_, v)| v.clone());
                        Some(stored.ok_or_else(|| {
                            reader.bad(format!("face {} has no embedding by the archive's own model {:?}", face.source_name, options.model))
                        })?)
                    } else {
                        None
                    };
                    batch.push(Pending { face, embedding });
                    if batch.len() == IMPORT_BATCH {
                        self.import_batch(&reader, &mut batch, &mut people, &mut created, options, keep, report, w)?;
                    }
                }
            }
        }
        self.import_batch(&reader, &mut batch, &mut people, &mut created, options, keep, report, w)?;
        // The settings and the end of the import, in one atomic batch.
        settings.remove(META_IMPORT_PENDING);
        self.t.meta.apply_batch(settings)?;
        self.db.flush()?;
        if report.faces_imported > 0 {
            self.rebuild_index_locked()?;
            self.db.flush()?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn import_batch(
        &self,
        reader: &ArchiveReader,
        batch: &mut Vec<Pending>,
        people: &mut HashMap<u64, PersonSlot>,
        created: &mut HashMap<String, PersonId>,
        options: &mut ImportOptions<'_>,
        keep: bool,
        report: &mut ImportReport,
        w: &WriterGuard,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(batch);
        let embeddings: Vec<Vec<f32>> = if keep {
            pending.iter().map(|p| p.embedding.clone().expect("kept embeddings are read with their faces")).collect()
        } else {
            let crops: Vec<&[u8]> = pending.iter().map(|p| p.face.crop.as_slice()).collect();
            let embed = options.embed.as_mut().expect("checked before the import began");
            let vectors = embed(&crops).map_err(|why| {
                StoreError::InvalidArgument(format!("{}: computing embeddings from the archive's crops: {why}", reader.path.display()))
            })?;
            if vectors.len() != crops.len() {
                return Err(StoreError::InvalidArgument(format!(
                    "the embedder returned {} embeddings for {} crops",
                    vectors.len(),
                    crops.len()
                )));
            }
            vectors
        };
        let mut new_people = Vec::new();
        let mut faces = Vec::with_capacity(pending.len());
        for (p, embedding) in pending.into_iter().zip(embeddings) {
            let slot = people.get_mut(&p.face.person).expect("checked when the face was read");
            let person = match slot.target.or_else(|| created.get(&slot.name).copied()) {
                Some(id) => id,
                None => {
                    let id = self.new_person_id()?;
                    new_people.push(NewPerson { id, name: slot.name.clone(), meta: slot.meta.clone() });
                    created.insert(slot.name.clone(), id);
                    report.people_created += 1;
                    id
                }
            };
            slot.target = Some(person);
            let f = *p.face;
            faces.push(NewFace {
                person,
                source_name: f.source_name,
                source_sha256: f.source_sha256,
                bbox: f.bbox,
                landmarks: f.landmarks,
                score: f.score,
                quality: f.quality,
                model_id: options.model.clone(),
                crop: f.crop,
                embedding,
            });
        }
        let units = if keep { Units::Exact } else { Units::Normalise };
        let (ids, _, _) = self.store_faces_locked(&new_people, faces, units, w)?;
        report.faces_imported += ids.len();
        Ok(())
    }

    /// Takes back an import that did not finish (see the module docs): every face and person
    /// with an id from the pending key's on goes (and the active model the import set, in a
    /// store that had none), then the key. Returns how many faces went.
    pub(crate) fn roll_back_import_locked(&self, _w: &WriterGuard) -> Result<usize> {
        let Some(pending) = self.t.meta.get(META_IMPORT_PENDING)? else {
            return Ok(0);
        };
        if pending.len() != 9 {
            return Err(StoreError::Corrupt(format!("the pending import's key holds {} bytes, not 9", pending.len())));
        }
        let first = codec::key_id(&pending[..8], "pending import")?;
        let had_model = pending[8] != 0;
        let trees = self.tx_trees();
        let faces: Vec<u64> =
            self.t.faces.range(id_key(first)..).keys().map(|k| codec::key_id(&k?, "faces")).collect::<Result<_>>()?;
        for chunk in faces.chunks(ROLLBACK_BATCH) {
            trees.as_slice().transaction(|t| -> TxResult<()> {
                for &id in chunk {
                    // Not in the index: no tombstones.
                    self.tx_remove_face(t, FaceId(id), None)?;
                }
                Ok(())
            })?;
        }
        let people: Vec<u64> =
            self.t.people.range(id_key(first)..).keys().map(|k| codec::key_id(&k?, "people")).collect::<Result<_>>()?;
        for chunk in people.chunks(ROLLBACK_BATCH) {
            trees.as_slice().transaction(|t| -> TxResult<()> {
                for &id in chunk {
                    if let Some(bytes) = t[tx::PEOPLE].remove(&id_key(id))? {
                        let name = decode_person(id, &bytes).map(|p| p.name).unwrap_or_default();
                        if t[tx::NAMES].get(name.as_bytes())?.as_deref() == Some(&id_key(id)[..]) {
                            t[tx::NAMES].remove(name.as_bytes())?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        let mut end = sled::Batch::default();
        if !had_model {
            end.remove(crate::store::META_ACTIVE_MODEL);
        }
        end.remove(META_IMPORT_PENDING);
        self.t.meta.apply_batch(end)?;
        self.db.flush()?;
        Ok(faces.len())
    }

    /// At open: takes back an import that a kill interrupted. Returns how many faces went.
    pub(crate) fn finish_interrupted_import(&self) -> Result<usize> {
        let w = self.writer.lock();
        self.roll_back_import_locked(&w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::unit_vectors;
    use crate::StoreOptions;

    fn new_face(person: PersonId, n: u8, embedding: Vec<f32>) -> NewFace {
        NewFace {
            person,
            source_name: format!("{n}.jpg"),
            source_sha256: [n; 32],
            bbox: [0.0; 4],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
            quality: None,
            model_id: "m".into(),
            crop: vec![n],
            embedding,
        }
    }

    /// What a kill leaves in the middle of an import (the pending key, some batches committed,
    /// nothing taken back) is taken back by the next open, and nothing stored before it goes.
    #[test]
    fn an_import_cut_off_by_a_kill_is_taken_back_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let vectors = unit_vectors(6, 8, 1);
        let (before_people, before_faces) = {
            let store = Store::open(&path, StoreOptions { lock_wait: std::time::Duration::from_secs(10), ..StoreOptions::default() }).unwrap();
            let alice = store.add_person("alice", Default::default()).unwrap();
            store.add_faces(vec![new_face(alice, 1, vectors[0].clone()), new_face(alice, 2, vectors[1].clone())]).unwrap();
            // An import's first steps: the pending key, then two batches, one of them with a
            // new person and one joining alice.
            let w = store.writer.lock();
            let mut pending = id_key(store.db.generate_id().unwrap()).to_vec();
            pending.push(1);
            store.t.meta.insert(META_IMPORT_PENDING, pending).unwrap();
            store.db.flush().unwrap();
            let bob = NewPerson { id: store.new_person_id().unwrap(), name: "bob".into(), meta: Default::default() };
            let bob_id = bob.id;
            store
                .store_faces_locked(&[bob], vec![new_face(bob_id, 3, vectors[2].clone()), new_face(bob_id, 4, vectors[3].clone())], Units::Exact, &w)
                .unwrap();
            store.store_faces_locked(&[], vec![new_face(alice, 5, vectors[4].clone())], Units::Normalise, &w).unwrap();
            store.db.flush().unwrap();
            drop(w);
            assert_eq!((store.person_count(), store.face_count()), (2, 5));
            (vec!["alice".to_string()], 2)
        };
        let store = Store::open(&path, StoreOptions { lock_wait: std::time::Duration::from_secs(10), ..StoreOptions::default() }).unwrap();
        assert!(store.t.meta.get(META_IMPORT_PENDING).unwrap().is_none());
        let names: Vec<String> = store.people().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!((names, store.face_count()), (before_people, before_faces));
        assert!(store.face_by_sha256(&[3; 32]).unwrap().is_none() && store.face_by_sha256(&[5; 32]).unwrap().is_none());
        assert!(store.person_by_name("bob").unwrap().is_none());
        store.verify_integrity().unwrap();
        let hits = store.search(&vectors[0], 5, None).unwrap();
        assert_eq!(hits.len(), 2);
    }
}
