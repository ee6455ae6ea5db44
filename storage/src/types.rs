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

/// A person: a name that faces are enrolled under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// The person's id.
    pub id: PersonId,
    /// The person's name, unique in the database (case-sensitive).
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Free-form key/value data kept with the person.
    pub meta: BTreeMap<String, String>,
}

/// A person `Store::add_faces_with_people` creates together with their first faces.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPerson {
    /// From `Store::new_person_id`.
    pub id: PersonId,
    /// The name, unique in the store.
    pub name: String,
    /// Free-form attributes.
    pub meta: BTreeMap<String, String>,
}

/// A face to enrol. `embedding` is L2-normalised by the store before it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFace {
    /// Whose face this is.
    pub person: PersonId,
    /// Where the face came from, as the caller names it (fdb stores the file path).
    pub source_name: String,
    /// The sha256 of the source file's bytes: a second enrolment of the same bytes is a `Duplicate`.
    pub source_sha256: [u8; 32],
    /// x1, y1, x2, y2 in source pixels.
    pub bbox: [f32; 4],
    /// Five landmarks (eyes, nose, mouth corners) as (x, y) in source pixels.
    pub landmarks: [[f32; 2]; 5],
    /// The detector's probability for this face.
    pub score: f32,
    /// The caller's quality score of the face (opaque to the store); `None`: unknown.
    pub quality: Option<f32>,
    /// The model that computed `embedding`; must be the database's active model.
    pub model_id: String,
    /// The aligned crop, encoded (PNG or JPEG), so faces can be re-embedded by a new model.
    pub crop: Vec<u8>,
    /// The face's embedding (any length; the store L2-normalises it).
    pub embedding: Vec<f32>,
}

/// A stored face, without its crop and embedding (fetch those with `face_crop` / `embedding`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The face's id.
    pub id: FaceId,
    /// Whose face this is.
    pub person: PersonId,
    /// Where the face came from, as given at enrolment.
    pub source_name: String,
    /// The sha256 of the source file's bytes.
    pub source_sha256: [u8; 32],
    /// x1, y1, x2, y2 in source pixels.
    pub bbox: [f32; 4],
    /// Five landmarks (eyes, nose, mouth corners) as (x, y) in source pixels.
    pub landmarks: [[f32; 2]; 5],
    /// The detector's probability for this face.
    pub score: f32,
    /// The quality score given at enrolment; `None` for faces stored before schema 3, or
    /// enrolled without one.
    pub quality: Option<f32>,
    /// The model that embedded the face when it was enrolled.
    pub model_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// One search answer. `distance` is the squared L2 distance between unit vectors (0..=4),
/// i.e. `2 - 2·cos`, the scale FaceNet thresholds are usually given in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The face found.
    pub face: FaceId,
    /// Whose face it is.
    pub person: PersonId,
    /// Squared L2 distance between the query and the face (0..=4).
    pub distance: f32,
}

/// HNSW parameters. Defaults were chosen by the 100k benchmark (see docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexParams {
    /// Max links per node on upper layers (layer 0 gets twice as many).
    pub m: usize,
    /// Beam width while inserting (hnsw_rs and fdb's bulk build); larger builds a better graph, slower.
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

/// How a `Store` is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Create the database directory (mode 0700) if it does not exist.
    pub create: bool,
    /// How long an open waits for another process to close the database.
    pub lock_wait: std::time::Duration,
    /// HNSW parameters of the index (used when it is built).
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
            lock_wait: std::time::Duration::ZERO,
            index: IndexParams::default(),
            snapshot_after: 1000,
            compact_fraction: 0.2,
        }
    }
}

/// What a database holds, from `Store::stats`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// People stored.
    pub people: usize,
    /// Faces stored (live).
    pub faces: usize,
    /// Deleted faces still present in the index graph (filtered out of answers).
    pub tombstones: usize,
    /// Points in the index graph, tombstones included.
    pub index_points: usize,
    /// The model whose embeddings are searched, if one is set.
    pub active_model: Option<String>,
    /// Bytes the database directory takes on disk.
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
    Snapshot {
        /// Faces stored after the snapshot, inserted into the index at open.
        added: usize,
    },
    /// Rebuilt from the stored embeddings (snapshot missing, corrupt or for another model).
    Rebuilt,
}
