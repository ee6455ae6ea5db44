//! fdb's storage engine: people and faces in sled, their embeddings in vector files beside it,
//! searched through an HNSW index (hnsw_rs) whose snapshot lives in sled.
//!
//! It knows vectors, people and bytes, nothing of images or networks. Distances are squared L2
//! between unit vectors (0 = same direction, 2 = orthogonal, 4 = opposite).

mod ann;
mod codec;
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
mod test_vectors;
mod txn;
mod types;
mod vector_file;

pub use error::{Result, StoreError};
pub use maintenance::disk_bytes;
pub use store::{Store, METRIC, SCHEMA_VERSION};
pub use types::{Face, FaceId, Hit, IndexLoad, IndexParams, NewFace, Person, PersonId, Stats, StoreOptions};

// The facade shares one Store between threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};
