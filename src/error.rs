//! fdb's errors. Each one that comes from a user's file names the file and the reason.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FdbError {
    #[error(transparent)]
    Image(#[from] fdb_models::imageio::ImageError),
    #[error("{path}: no face found")]
    NoFace { path: PathBuf },
    #[error("{path}: {count} faces found, but --single-face asks for exactly one")]
    SeveralFaces { path: PathBuf, count: usize },
    #[error(transparent)]
    Models(#[from] fdb_models::weights::InstallError),
    #[error("the database: {0}")]
    Storage(#[from] fdb_storage::StoreError),
    #[error(transparent)]
    Embed(#[from] fdb_models::facenet::EmbedError),
    #[error("the network failed: {0}")]
    Inference(#[from] candle_core::Error),
    #[error("unknown device {0:?}: use cpu, cuda or cuda:N")]
    BadDevice(String),
    #[error("device {0} is not available (is this a --features cuda build, with a GPU and its driver?)")]
    DeviceUnavailable(String),
    #[error("no person named {0:?} in the database")]
    UnknownPerson(String),
    #[error("{0}")]
    Invalid(String),
}

impl FdbError {
    /// True when the error is about one input file, so a batch can go on past it.
    pub fn is_per_file(&self) -> bool {
        matches!(self, Self::Image(_) | Self::NoFace { .. } | Self::SeveralFaces { .. })
    }
}

pub type Result<T, E = FdbError> = std::result::Result<T, E>;
