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
    /// The model files are missing or could not be installed.
    #[error(transparent)]
    Models(#[from] fdb_models::weights::InstallError),
    /// The database failed.
    #[error("the database: {0}")]
    Storage(#[from] fdb_storage::StoreError),
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

impl FdbError {
    /// True when the error is about one input file, so a batch can go on past it.
    pub fn is_per_file(&self) -> bool {
        matches!(self, Self::Image(_) | Self::Frame(_) | Self::NoFace { .. } | Self::SeveralFaces { .. })
    }

    /// True for a readable photo without a usable face: a negative answer (exit code 1), not
    /// an error (2).
    pub fn is_negative(&self) -> bool {
        matches!(self, Self::NoFace { .. } | Self::SeveralFaces { .. })
    }
}

/// fdb's result type.
pub type Result<T, E = FdbError> = std::result::Result<T, E>;
