//! fdb's errors. Each one that comes from a user's file names the file and the reason.

use std::path::PathBuf;

/// What can go wrong in fdb; an error about one input file names the file and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FdbError {
    /// A photo could not be read.
    #[error(transparent)]
    Image(#[from] fdb_models::imageio::ImageError),
    /// A raw frame (or a decoded image) whose sizes do not fit its pixels.
    #[error("raw frame: {0}")]
    Frame(#[from] crate::image_input::FrameError),
    /// No face was found in a photo.
    #[error("{path}: no face found")]
    NoFace {
        /// The photo (for one given from memory, its `ImageInput::label`).
        path: PathBuf,
    },
    /// Several faces were found where `--single-face` asks for one.
    #[error("{path}: {count} faces found, but --single-face asks for exactly one")]
    SeveralFaces {
        /// The photo.
        path: PathBuf,
        /// How many faces were found.
        count: usize,
    },
    /// A face below the quality floor asked for (`EnrollOptions::min_quality`).
    #[error("{path}: face quality {quality:.2} is below --min-quality {floor:.2} ({terms})")]
    LowQuality {
        /// The photo.
        path: PathBuf,
        /// The face's quality score.
        quality: f32,
        /// The floor it missed.
        floor: f32,
        /// The terms of the score (detector, size, brightness, contrast, sharpness).
        terms: String,
    },
    /// The model files are missing or could not be installed.
    #[error(transparent)]
    Models(#[from] fdb_models::weights::InstallError),
    /// The database failed (a locked database and a missing person or face have variants of
    /// their own: `Locked`, `NotFound`).
    #[error("the database: {0}")]
    Storage(fdb_storage::StoreError),
    /// Another process has the database open, still after `OpenOptions::lock_wait`.
    #[error("{source}")]
    Locked {
        /// The holder's process id, when its pid file names a running process.
        pid: Option<u32>,
        /// The storage error, with the path and the time waited.
        source: fdb_storage::StoreError,
    },
    /// No face or person by that id.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored data that fdb itself keeps beside the store (the calibration sample, a saved
    /// impostor tail, the retraining history, a trunk-feature cache) cannot be read.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The database directory, or the file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A face embedded by another model or recipe than the database's: its vector cannot be
    /// compared with the stored ones.
    #[error("the face was embedded as {found:?}, but this database's vectors are {expected:?}")]
    ModelMismatch {
        /// The database's vectors (`FaceDb::vectors_id`).
        expected: String,
        /// The face's.
        found: String,
    },
    /// A model version that is not in the models dir's manifest.
    #[error("model {model} is not installed; see `fdb models list`")]
    ModelNotInstalled {
        /// The model id asked for.
        model: String,
    },
    /// A write on a database opened read-only (`OpenOptions::read_only`).
    #[error("{path}: the database is open read-only; {operation} writes")]
    ReadOnly {
        /// The database directory.
        path: PathBuf,
        /// The call refused.
        operation: &'static str,
    },
    /// A long call stopped by its `CancelToken`; what it finished before stopping is kept
    /// (see `progress`).
    #[error("cancelled after {done} of {total} items")]
    Cancelled {
        /// Items finished (and, for a write, committed).
        done: usize,
        /// Items asked for.
        total: usize,
    },
    /// A file fdb writes (a report, a plot, a scratch directory) could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The embedder could not load or run.
    #[error(transparent)]
    Embed(#[from] fdb_models::facenet::EmbedError),
    /// A network failed while running.
    #[error("the network failed: {0}")]
    Inference(#[from] candle_core::Error),
    /// A `--device` that is none of cpu, cuda, cuda:N.
    #[error("unknown device {0:?}: use cpu, cuda or cuda:N")]
    BadDevice(String),
    /// The device asked for cannot be used here.
    #[error("device {0} is not available (is this a --features cuda build, with a GPU and its driver?)")]
    DeviceUnavailable(String),
    /// No person of that name is in the database.
    #[error("no person named {0:?} in the database")]
    UnknownPerson(String),
    /// An argument out of its range (the message says which).
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: the database needs a repair: {reason}; searches would miss those faces. Run `fdb repair` (`fdb check` lists them)")]
    /// Faces have no readable embedding: searches would miss them until `fdb repair`.
    NeedsRepair {
        /// The database directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
}

impl From<fdb_storage::StoreError> for FdbError {
    /// A locked database and a missing record get variants of their own.
    fn from(e: fdb_storage::StoreError) -> Self {
        use fdb_storage::StoreError;
        match e {
            StoreError::Locked { pid, .. } => FdbError::Locked { pid, source: e },
            StoreError::NotFound(what) => FdbError::NotFound { what },
            other => FdbError::Storage(other),
        }
    }
}

impl FdbError {
    /// True when the error is about one input file, so a batch can go on past it.
    pub fn is_per_file(&self) -> bool {
        matches!(self, Self::Image(_) | Self::Frame(_) | Self::NoFace { .. } | Self::SeveralFaces { .. } | Self::LowQuality { .. })
    }

    /// True for a readable photo without a usable face: a negative answer (exit code 1), not
    /// an error (2).
    pub fn is_negative(&self) -> bool {
        matches!(self, Self::NoFace { .. } | Self::SeveralFaces { .. } | Self::LowQuality { .. })
    }

    /// The error's kind in one stable snake_case word, for machines (the CLI's `--json`
    /// errors carry it as `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Image(_) => "image",
            Self::Frame(_) => "frame",
            Self::NoFace { .. } => "no_face",
            Self::SeveralFaces { .. } => "several_faces",
            Self::LowQuality { .. } => "low_quality",
            Self::Models(_) => "models",
            Self::Storage(fdb_storage::StoreError::NoDatabase { .. }) => "no_database",
            Self::Storage(fdb_storage::StoreError::Corrupt(_)) => "corrupt",
            Self::Storage(_) => "storage",
            Self::Locked { .. } => "locked",
            Self::NotFound { .. } => "not_found",
            Self::Corrupt { .. } => "corrupt",
            Self::ModelMismatch { .. } => "model_mismatch",
            Self::ModelNotInstalled { .. } => "model_not_installed",
            Self::ReadOnly { .. } => "read_only",
            Self::Cancelled { .. } => "cancelled",
            Self::Io { .. } => "io",
            Self::Embed(_) => "embed",
            Self::Inference(_) => "inference",
            Self::BadDevice(_) | Self::DeviceUnavailable(_) => "device",
            Self::UnknownPerson(_) => "unknown_person",
            Self::Invalid(_) => "invalid",
            Self::NeedsRepair { .. } => "needs_repair",
        }
    }
}

/// An error kept in a report (`EnrollStatus::Failed`, `EnrollStatus::NoFace`): shared, so the
/// report stays `Clone`; as JSON, `reason` (the message) and `kind` (`FdbError::kind`).
#[derive(Debug, Clone)]
pub struct ReportedError(pub std::sync::Arc<FdbError>);

impl ReportedError {
    /// The error.
    pub fn error(&self) -> &FdbError {
        &self.0
    }
}

impl From<FdbError> for ReportedError {
    fn from(e: FdbError) -> Self {
        Self(std::sync::Arc::new(e))
    }
}

impl std::ops::Deref for ReportedError {
    type Target = FdbError;
    fn deref(&self) -> &FdbError {
        &self.0
    }
}

impl std::fmt::Display for ReportedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Two reports are equal when their errors are of one kind with one message.
impl PartialEq for ReportedError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_string() == other.to_string()
    }
}

impl serde::Serialize for ReportedError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("reason", &self.to_string())?;
        map.serialize_entry("kind", self.kind())?;
        map.end()
    }
}

/// fdb's result type.
pub type Result<T, E = FdbError> = std::result::Result<T, E>;
