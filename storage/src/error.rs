//! Errors of the storage engine. Every variant says what went wrong in words a user can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: database is in use by another process")]
    Locked { path: PathBuf },

    #[error("{path}: database schema version {found} is newer than this fdb supports ({supported}); upgrade fdb")]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },

    #[error("database is corrupt: {0}")]
    Corrupt(String),

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    #[error("storage engine error: {0}")]
    Sled(#[from] sled::Error),

    #[error("not found: {0}")]
    NotFound(String),

    #[error("a person named {0:?} already exists")]
    NameTaken(String),

    #[error("the image with sha256 {0} is already enrolled")]
    Duplicate(String),

    #[error("invalid embedding: {0}")]
    InvalidEmbedding(String),

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io { context: context.into(), source }
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}
