//! fdb's storage engine: people and faces in sled, their embeddings in vector files beside it,
//! searched through an HNSW index (hnsw_rs) whose snapshot lives in sled.
//!
//! It knows vectors, people and bytes, nothing of images or networks. Distances are squared L2
//! between unit vectors (0 = same direction, 2 = orthogonal, 4 = opposite).
//!
//! ```
//! use fdb_storage::{NewFace, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("faces.db"), StoreOptions::default())?;
//! let alice = store.add_person("alice", Default::default())?;
//! let mut embedding = vec![0.0f32; 512];
//! embedding[0] = 1.0;
//! let face = store.add_face(NewFace {
//!     person: alice,
//!     source_name: "alice_1.jpg".into(),
//!     source_sha256: [1; 32],
//!     bbox: [10.0, 10.0, 110.0, 130.0],
//!     landmarks: [[0.0; 2]; 5],
//!     score: 0.99,
//!     quality: Some(0.9),
//!     model_id: "facenet-20180408-102900".into(),
//!     crop: Vec::new(),
//!     embedding: embedding.clone(),
//! })?;
//! let hits = store.search(&embedding, 1, None)?; // nearest faces, squared L2
//! assert_eq!((hits[0].face, hits[0].person), (face, alice));
//! assert!(hits[0].distance < 1e-6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod ann;
pub mod archive;
mod backup;
mod codec;
mod damage;
mod dir;
mod enrol;
pub mod distance;
mod error;
mod faces;
mod graph_codec;
mod graph_view;
mod integrity;
mod maintenance;
mod migrate;
mod nibble_codes;
mod people;
mod snapshot;
mod store;
#[cfg(test)]
mod test_mutations;
#[cfg(test)]
mod test_vectors;
mod txn;
mod types;
mod vector_file;

pub use archive::{validate_archive, ArchiveSummary, ImportOptions, ImportReport};
pub use backup::BackupReport;
pub use damage::Damage;
pub use enrol::{Enrolled, Owner};
pub use error::{Result, StoreError};
pub use maintenance::disk_bytes;
pub use store::{Store, METRIC, SCHEMA_VERSION};
pub use types::{Face, FaceId, Hit, IndexLoad, IndexParams, NewFace, NewPerson, Person, PersonId, Stats, StoreOptions};

// The facade shares one Store between threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};
