//! Errors of the storage engine. Every variant says what went wrong in words a user can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
/// What can go wrong in the store; each message names what it is about.
pub enum StoreError {
    /// Another process has the database open (sled's file lock), still after waiting.
    #[error("{path}: database is in use by another process{holder}; waited {} s (--wait SECONDS waits longer)", waited.as_secs_f32())]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// " (pid N: command)" of the holder when its pid file names a running process, else empty.
        holder: String,
        /// The holder's process id, when its pid file names a running process.
        pid: Option<u32>,
        /// How long the open waited.
        waited: std::time::Duration,
    },

    /// Nothing at the path is a database, and the caller did not ask to create one.
    #[error("no fdb database at {path}")]
    NoDatabase {
        /// The path given.
        path: PathBuf,
    },

    /// The directory holds files and is not a database: fdb will not write into it.
    #[error("{path}: the directory holds files and is not an fdb database; fdb will not write into it (give --db a new or empty directory)")]
    NotADatabase {
        /// The directory.
        path: PathBuf,
    },

    /// The database was written by a newer fdb.
    #[error("{path}: database schema version {found} is newer than this fdb supports ({supported}); upgrade fdb")]
    NewerSchema {
        /// The database directory.
        path: PathBuf,
        /// The database's schema version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// Stored data fails a check (a crc, a cross reference, a format).
    #[error("database is corrupt: {0}")]
    Corrupt(String),

    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which file.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// sled failed.
    #[error("storage engine error: {0}")]
    Sled(#[from] sled::Error),

    /// No person or face by that name or id.
    #[error("not found: {0}")]
    NotFound(String),

    /// A person of that name exists already.
    #[error("a person named {0:?} already exists")]
    NameTaken(String),

    /// A file with these bytes is enrolled already.
    #[error("the image with sha256 {0} is already enrolled")]
    Duplicate(String),

    /// An embedding of the wrong length, model or values.
    #[error("invalid embedding: {0}")]
    InvalidEmbedding(String),

    /// A parameter out of its range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A portable archive (`archive`) that cannot be read: not an archive, a newer format,
    /// truncated, or a record failing its checksum. Nothing was imported.
    #[error("{path}: {reason}")]
    BadArchive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong with it, and where.
        reason: String,
    },
}

/// The store's result type.
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
