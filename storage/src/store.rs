//! `Store`: opening the database, its trees, and the meta settings.

use crate::ann::AnnIndex;
use crate::codec;
use crate::migrate;
use crate::error::{Result, StoreError};
use crate::types::{IndexLoad, StoreOptions};
use crate::vector_file::VectorFiles;
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};

/// Version of the on-disk layout. An fdb that finds a higher one refuses to open it; a lower
/// one is migrated (`migrate`). 2: embeddings in vector files instead of sled trees. 3: face
/// records may end with a quality score (older records are read as they are, quality unknown).
pub const SCHEMA_VERSION: u32 = 3;
/// The only metric: squared L2 between unit vectors (see `distance`).
pub const METRIC: &str = "squared_l2_unit";

pub(crate) const META_SCHEMA: &[u8] = b"schema_version";
/// The vector files' directory inside the database directory.
const VECTORS_DIR: &str = "vectors";
pub(crate) const META_ACTIVE_MODEL: &[u8] = b"active_model";
pub(crate) const META_METRIC: &[u8] = b"metric";
pub(crate) const META_THRESHOLD: &[u8] = b"threshold";
/// The name of the crops tree, when it is not "crops".
pub(crate) const META_CROPS_TREE: &[u8] = b"crops_tree";
const META_USER_PREFIX: &str = "user/";

pub(crate) fn meta_dim_key(model: &str) -> Vec<u8> {
    format!("dim/{model}").into_bytes()
}

/// Positions of the trees in the list handed to sled transactions (`Store::tx_trees`).
pub(crate) mod tx {
    pub const META: usize = 0;
    pub const PEOPLE: usize = 1;
    pub const NAMES: usize = 2;
    pub const FACES: usize = 3;
    pub const SHA: usize = 4;
    pub const BY_PERSON: usize = 5;
    pub const CROPS: usize = 6;
    pub const TOMBSTONES: usize = 7;
}

pub(crate) struct Trees {
    pub(crate) meta: sled::Tree,
    /// PersonId → Person record.
    pub(crate) people: sled::Tree,
    /// name → PersonId.
    pub(crate) names: sled::Tree,
    /// FaceId → Face record.
    pub(crate) faces: sled::Tree,
    /// sha256 of the source image → FaceId.
    pub(crate) sha: sled::Tree,
    /// PersonId ++ FaceId → ().
    pub(crate) by_person: sled::Tree,
    /// FaceId → encoded crop; the tree named by `META_CROPS_TREE` (replaced by
    /// `Store::rebuild_crops` when sled loses a page of it).
    pub(crate) crops: RwLock<sled::Tree>,
    /// FaceId of a deleted face still in the index graph → (). Its row stays in the active
    /// model's vector file until a rebuild drops it: reloading the graph needs it.
    pub(crate) tombstones: sled::Tree,
    /// The index snapshot (see `snapshot`).
    pub(crate) snapshot: sled::Tree,
}

/// Held by every write: writes to the store and the index happen one at a time.
pub(crate) type WriterGuard<'a> = parking_lot::MutexGuard<'a, ()>;

/// The face database. Send + Sync: searches share the index under a read lock while one
/// writer (serialised by `writer`) adds or removes.
pub struct Store {
    pub(crate) path: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) t: Trees,
    /// Every model's embeddings, beside sled.
    pub(crate) vectors: VectorFiles,
    pub(crate) opts: StoreOptions,
    /// Serialises writers so face ids reach the index in increasing order.
    pub(crate) writer: Mutex<()>,
    pub(crate) index: RwLock<Option<AnnIndex>>,
    pub(crate) index_load: Mutex<IndexLoad>,
    /// Names this process as the lock holder; removed on close.
    pub(crate) pid_file: PathBuf,
    /// What open found missing (see `damage`).
    pub(crate) damage: Mutex<crate::damage::Damage>,
}

impl Store {
    /// Opens (or creates, mode 0700) the database at `path` and loads its index. An existing
    /// directory is made private (0700, its files 0600); one that holds other files is refused.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store> {
        crate::dir::prepare(path, opts.create)?;
        let db = crate::dir::open_sled(path, opts.lock_wait)?;
        let pid_file = crate::dir::write_pid_file(path)?;
        let t = Trees {
            meta: db.open_tree("meta")?,
            people: db.open_tree("people")?,
            names: db.open_tree("people_by_name")?,
            faces: db.open_tree("faces")?,
            sha: db.open_tree("faces_by_sha256")?,
            by_person: db.open_tree("faces_by_person")?,
            crops: RwLock::new(db.open_tree(crops_tree_name(&db)?)?),
            tombstones: db.open_tree("tombstones")?,
            snapshot: db.open_tree("index_snapshot")?,
        };
        let found = check_schema(path, &t.meta)?;
        let vectors = VectorFiles::open(&path.join(VECTORS_DIR))?;
        migrate::to_current(&db, &t, &vectors, found)?;
        let store = Store {
            path: path.to_path_buf(),
            db,
            t,
            vectors,
            opts,
            writer: Mutex::new(()),
            index: RwLock::new(None),
            index_load: Mutex::new(IndexLoad::Empty),
            pid_file,
            damage: Mutex::new(crate::damage::Damage::default()),
        };
        store.finish_interrupted_import()?;
        store.load_index()?;
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this build writes (a database at an older one is migrated at open).
    pub fn schema_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    /// The one metric: `"squared_l2_unit"`, squared L2 between unit vectors.
    pub fn metric(&self) -> &'static str {
        METRIC
    }

    /// How the index was obtained at open (snapshot + incremental, or rebuild).
    pub fn index_load(&self) -> IndexLoad {
        *self.index_load.lock()
    }

    /// The model whose embeddings are searched (set by the first add, changed by `switch_model`).
    pub fn active_model(&self) -> Result<Option<String>> {
        self.t
            .meta
            .get(META_ACTIVE_MODEL)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("active model id is not UTF-8".into())))
            .transpose()
    }

    /// Sets the model whose embeddings are searched and rebuilds the index for it.
    /// To re-embed all faces with a new model, use `switch_model`.
    pub fn set_active_model(&self, model: &str) -> Result<()> {
        check_model_id(model)?;
        let _w = self.writer.lock();
        self.t.meta.insert(META_ACTIVE_MODEL, model.as_bytes())?;
        self.rebuild_index_locked()
    }

    /// The verification threshold (squared L2), if one was set.
    pub fn threshold(&self) -> Result<Option<f32>> {
        match self.t.meta.get(META_THRESHOLD)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt("threshold is not 4 bytes".into()))?;
                Ok(Some(f32::from_le_bytes(b)))
            }
        }
    }

    /// Sets the verification threshold (squared L2, 0 to 4).
    pub fn set_threshold(&self, threshold: f32) -> Result<()> {
        if !(threshold.is_finite() && (0.0..=4.0).contains(&threshold)) {
            return Err(StoreError::InvalidArgument(format!(
                "threshold {threshold} is not a squared L2 distance between unit vectors (0 to 4)"
            )));
        }
        self.t.meta.insert(META_THRESHOLD, &threshold.to_le_bytes())?;
        Ok(())
    }

    /// The facade's own settings, in a namespace apart from the store's.
    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.t.meta.get(format!("{META_USER_PREFIX}{key}"))?.map(|v| v.to_vec()))
    }

    /// Stores one of the facade's own settings (see `meta_get`).
    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.t.meta.insert(format!("{META_USER_PREFIX}{key}"), value)?;
        Ok(())
    }

    /// The vector sets that have stored embeddings, sorted: one per model (and, for fdb, per
    /// recipe; `fdb::FaceDb::vectors_id` names the active one).
    pub fn vector_ids(&self) -> Vec<String> {
        self.vectors.models()
    }

    /// The trees a write transaction may touch, in the order of the `tx` constants.
    pub(crate) fn tx_trees(&self) -> Vec<sled::Tree> {
        let t = &self.t;
        vec![
            t.meta.clone(),
            t.people.clone(),
            t.names.clone(),
            t.faces.clone(),
            t.sha.clone(),
            t.by_person.clone(),
            t.crops.read().clone(),
            t.tombstones.clone(),
        ]
    }

    /// The crops tree (a handle: cheap to clone).
    pub(crate) fn crops(&self) -> sled::Tree {
        self.t.crops.read().clone()
    }

    pub(crate) fn scratch_dir(&self) -> PathBuf {
        self.path.join("index.scratch")
    }

    pub(crate) fn dim_of(&self, model: &str) -> Result<Option<usize>> {
        match self.t.meta.get(meta_dim_key(model))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::key_id(&v, "model dimension")? as usize)),
        }
    }
}

/// The crops tree's name: "crops", or the one a rebuild moved them to.
pub(crate) fn crops_tree_name(db: &sled::Db) -> Result<Vec<u8>> {
    Ok(db.open_tree("meta")?.get(META_CROPS_TREE)?.map_or_else(|| b"crops".to_vec(), |v| v.to_vec()))
}

const MAX_MODEL_ID_BYTES: usize = 100;

pub(crate) fn check_model_id(model: &str) -> Result<()> {
    if model.is_empty() {
        return Err(StoreError::InvalidArgument("the model id is empty".into()));
    }
    // It names the model's vector file, in hex: 200 characters stay within any file system's limit.
    if model.len() > MAX_MODEL_ID_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "the model id {model:?} is longer than {MAX_MODEL_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The schema version the database was written with (a new one gets the current version).
fn check_schema(path: &Path, meta: &sled::Tree) -> Result<u32> {
    match meta.get(META_SCHEMA)? {
        None => {
            meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            meta.insert(META_METRIC, METRIC.as_bytes())?;
            Ok(SCHEMA_VERSION)
        }
        Some(v) => {
            let b: [u8; 4] = v.as_ref().try_into().map_err(|_| {
                StoreError::Corrupt(format!("{}: schema version is not 4 bytes", path.display()))
            })?;
            let found = u32::from_be_bytes(b);
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
            }
            Ok(found)
        }
    }
}
