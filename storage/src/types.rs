//! The public records of the store: people, faces, search hits, options and stats.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A person's id: a sled `generate_id`, stored big-endian so keys sort by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PersonId(pub u64);

/// A face's id: a sled `generate_id`; ids only grow, which lets the index snapshot say
/// "I cover every face up to id N".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FaceId(pub u64);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub meta: BTreeMap<String, String>,
}

/// A face to enrol. `embedding` is L2-normalised by the store before it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFace {
    pub person: PersonId,
    pub source_name: String,
    pub source_sha256: [u8; 32],
    /// x1, y1, x2, y2 in source pixels.
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
    pub model_id: String,
    /// The aligned crop, encoded (PNG or JPEG), so faces can be re-embedded by a new model.
    pub crop: Vec<u8>,
    pub embedding: Vec<f32>,
}

/// A stored face, without its crop and embedding (fetch those with `face_crop` / `embedding`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Face {
    pub id: FaceId,
    pub person: PersonId,
    pub source_name: String,
    pub source_sha256: [u8; 32],
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
    pub model_id: String,
    pub created_ms: u64,
}

/// One search answer. `distance` is the squared L2 distance between unit vectors (0..=4),
/// i.e. `2 - 2·cos`, the scale FaceNet thresholds are usually given in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub face: FaceId,
    pub person: PersonId,
    pub distance: f32,
}

/// HNSW parameters. Defaults were chosen by the 100k benchmark (see docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexParams {
    /// Max links per node on upper layers (layer 0 gets twice as many).
    pub m: usize,
    pub ef_construction: usize,
    /// Default beam width of a search when the caller passes `ef: None`.
    pub ef_search: usize,
}

impl Default for IndexParams {
    fn default() -> Self {
        // 100k faces (docs/benchmarks.md, 2026-11-29): recall@10 0.993 at a p50 of 0.22 ms.
        IndexParams { m: 24, ef_construction: 200, ef_search: 64 }
    }
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Create the database directory (mode 0700) if it does not exist.
    pub create: bool,
    pub index: IndexParams,
    /// `flush()` writes a new index snapshot once this many faces were indexed since the last one;
    /// fewer are simply re-inserted on the next open.
    pub snapshot_after: usize,
    /// Rebuild the index without tombstones once they exceed this fraction of its points.
    pub compact_fraction: f32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create: true,
            index: IndexParams::default(),
            snapshot_after: 1000,
            compact_fraction: 0.2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub people: usize,
    pub faces: usize,
    /// Deleted faces still present in the index graph (filtered out of answers).
    pub tombstones: usize,
    /// Points in the index graph, tombstones included.
    pub index_points: usize,
    pub active_model: Option<String>,
    pub disk_bytes: u64,
    /// Bytes of the stored index snapshot (its graph), part of `disk_bytes`.
    pub snapshot_bytes: u64,
    /// Bytes of the vector files, part of `disk_bytes`.
    pub vector_bytes: u64,
}

/// How `open` obtained the index; lets callers (and tests) see that a big database did not rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexLoad {
    /// No active model yet, so no index.
    Empty,
    /// Loaded from the snapshot, then `added` faces stored after it were inserted.
    Snapshot { added: usize },
    /// Rebuilt from the stored embeddings (snapshot missing, corrupt or for another model).
    Rebuilt,
}
