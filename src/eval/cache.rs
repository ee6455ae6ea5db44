//! Embedding cache: one bincode file of embeddings keyed by (model, alignment,
//! mirrored, image path, file size, mtime), so that a rerun with other metric
//! options skips the network entirely. A changed file gets a new key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::source::SourceId;
use super::EvalError;

const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Key {
    source: SourceId,
    mirrored: bool,
    path: PathBuf,
    size: u64,
    mtime_ns: u128,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: Vec<(Key, Vec<f32>)>,
}

/// Embeddings of evaluated photos, kept in one bincode file so that a rerun skips the networks.
pub struct EmbeddingCache {
    path: PathBuf,
    entries: HashMap<Key, Vec<f32>>,
    dirty: bool,
}

impl EmbeddingCache {
    /// Opens the cache at `path`, empty when the file does not exist yet.
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let corrupt = |reason: String| EvalError::Cache {
            path: path.to_path_buf(),
            reason,
        };
        let entries = match std::fs::read(path) {
            Ok(bytes) => {
                let (file, _): (CacheFile, usize) =
                    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                        .map_err(|e| {
                            corrupt(format!("unreadable ({e}); delete it to start afresh"))
                        })?;
                if file.version != FORMAT_VERSION {
                    return Err(corrupt(format!(
                        "format version {} (expected {FORMAT_VERSION}); delete it",
                        file.version
                    )));
                }
                file.entries.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(EvalError::io(path, e)),
        };
        Ok(EmbeddingCache {
            path: path.to_path_buf(),
            entries,
            dirty: false,
        })
    }

    /// How many embeddings are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached embedding, if the image file is unchanged since it was stored.
    pub fn get(&self, source: &SourceId, image: &Path, mirrored: bool) -> Option<Vec<f32>> {
        self.entries.get(&key(source, image, mirrored)?).cloned()
    }

    /// Caches an embedding of `image` (by its size and mtime now), written at the next `save`.
    pub fn insert(&mut self, source: &SourceId, image: &Path, mirrored: bool, embedding: Vec<f32>) {
        if let Some(k) = key(source, image, mirrored) {
            self.entries.insert(k, embedding);
            self.dirty = true;
        }
    }

    /// Writes the cache if it changed (temporary file + rename: never half-written).
    pub fn save(&mut self) -> Result<(), EvalError> {
        if !self.dirty {
            return Ok(());
        }
        let file = CacheFile {
            version: FORMAT_VERSION,
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let bytes =
            bincode::serde::encode_to_vec(&file, bincode::config::standard()).map_err(|e| {
                EvalError::Cache {
                    path: self.path.clone(),
                    reason: e.to_string(),
                }
            })?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| EvalError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| EvalError::io(&self.path, e))?;
        self.dirty = false;
        Ok(())
    }
}

/// None when the image cannot be stat'ed: such an image is simply not cached.
fn key(source: &SourceId, image: &Path, mirrored: bool) -> Option<Key> {
    let meta = std::fs::metadata(image).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let path = std::fs::canonicalize(image).ok()?;
    Some(Key {
        source: source.clone(),
        mirrored,
        path,
        size: meta.len(),
        mtime_ns,
    })
}
