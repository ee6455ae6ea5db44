//! Backups and the portable archive: `fdb backup`, `fdb export`, `fdb import`.
//!
//! The storage engine copies and archives bytes and vectors (`fdb_storage::Store::backup`,
//! `export_archive`, `import_archive`; the archive's format is in `fdb_storage::archive`). What
//! the facade adds to an import is fdb's policy: names are matched as enrolment stores them
//! (`names::normalise`); an archive's embeddings are kept bit for bit only when they are by the
//! database's own model and recipe (its vectors id), and otherwise computed again from the
//! archived crops the way `fdb repair` does (`FaceDb::embed_stored_crops`); the archive's
//! settings (thresholds, the 1:N target, a saved impostor tail) are taken only into a database
//! that holds no faces yet; and the calibration sample is drawn again afterwards.

use std::path::Path;

use serde::Serialize;

use fdb_storage::{ArchiveSummary, BackupReport, ImportOptions, StoreError};

use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;
use crate::names;

/// What `FaceDb::export` wrote.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ExportReport {
    /// The archive file.
    pub file: std::path::PathBuf,
    /// The vectors id (model and recipe) of the embeddings the archive holds for searches.
    pub model: Option<String>,
    /// People archived.
    pub people: u64,
    /// Faces archived, each with its crop and embeddings.
    pub faces: u64,
    /// Settings archived.
    pub settings: u64,
    /// The archive's size in bytes.
    pub bytes: u64,
}

/// What `FaceDb::backup` wrote.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupSummary {
    /// The backup's directory.
    pub path: std::path::PathBuf,
    /// People copied.
    pub people: usize,
    /// Faces copied.
    pub faces: usize,
    /// Bytes the backup takes on disk.
    pub bytes: u64,
}

/// What `FaceDb::import` did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ImportSummary {
    /// The archive file.
    pub file: std::path::PathBuf,
    /// The vectors id of the archive's embeddings.
    pub archive_model: Option<String>,
    /// The database's vectors id, which the imported faces now have.
    pub model: String,
    /// The counts and what was skipped.
    #[serde(flatten)]
    pub report: fdb_storage::ImportReport,
}

impl From<BackupReport> for BackupSummary {
    fn from(r: BackupReport) -> Self {
        BackupSummary { path: r.path, people: r.people, faces: r.faces, bytes: r.bytes }
    }
}

impl From<ArchiveSummary> for ExportReport {
    fn from(s: ArchiveSummary) -> Self {
        ExportReport { file: s.path, model: s.header.active_model, people: s.people, faces: s.faces, settings: s.settings, bytes: s.bytes }
    }
}

/// An archive's own faults (and the refusals of an import) read as fdb's argument errors: they
/// name the file and the reason, not "the database".
fn archive_error(e: StoreError) -> FdbError {
    match e {
        StoreError::BadArchive { path, reason } => FdbError::Corrupt { path, reason },
        StoreError::InvalidArgument(why) => FdbError::Invalid(why),
        e => FdbError::Storage(e),
    }
}

/// Reads a whole archive and checks it (every record's checksum, their order, the trailer's
/// counts) without a database: what `fdb import` does before it creates one.
pub fn validate_archive(file: impl AsRef<Path>) -> Result<ExportReport> {
    Ok(fdb_storage::validate_archive(file.as_ref()).map_err(archive_error)?.into())
}

impl FaceDb {
    /// A consistent copy of the whole database in the new (or empty) directory `dest`, taken
    /// while other threads go on using this handle (writers wait for the copy); the copy is
    /// opened and integrity-checked before it is put in place.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupSummary> {
        Ok(self.store().backup(dest.as_ref()).map_err(archive_error)?.into())
    }

    /// Writes the portable archive (`fdb_storage::archive`) of the database to the new file
    /// `file`: settings, people, faces with their crops and every stored embedding.
    pub fn export(&self, file: impl AsRef<Path>) -> Result<ExportReport> {
        Ok(self.store().export_archive(file.as_ref()).map_err(archive_error)?.into())
    }

    /// Imports an archive, all of it or nothing (see the module docs). Faces whose photo is
    /// stored already are skipped and listed.
    pub fn import(&self, file: impl AsRef<Path>) -> Result<ImportSummary> {
        self.writable("import")?;
        let file = file.as_ref();
        let header = fdb_storage::archive::ArchiveReader::open(file).map_err(archive_error)?.header().clone();
        let model = self.vectors_id()?;
        let empty = self.store().face_count() == 0;
        let embed = |crops: &[&[u8]]| -> std::result::Result<Vec<Vec<f32>>, String> {
            let labelled: Vec<(String, &[u8])> =
                crops.iter().enumerate().map(|(i, c)| (format!("{}: crop {}", file.display(), i + 1), *c)).collect();
            self.embed_stored_crops(&labelled)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|v| v.map_err(|e| e.to_string()))
                .collect()
        };
        let options = ImportOptions {
            model: model.clone(),
            name: Box::new(|name: &str| names::normalise(name).map_err(|e| e.to_string())),
            embed: Some(Box::new(embed)),
            apply_settings: empty,
        };
        let report = self.store().import_archive(file, options).map_err(archive_error)?;
        if report.faces_imported > 0 {
            // The sample names faces by id: it is drawn again from the database as it is now.
            self.note_removed()?;
        }
        self.store().flush()?;
        Ok(ImportSummary { file: file.to_path_buf(), archive_model: header.active_model, model, report })
    }
}
