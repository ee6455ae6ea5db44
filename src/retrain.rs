//! `fdb retrain`: fine-tune the embedder's head on the enrolled galleries with triplet loss,
//! store the result as a new model version, and switch the database to it if it is better.
//!
//! The trunk stays frozen (the CPU default), so each face's 1792-d trunk features are computed
//! once per view (the stored crop and its mirror) and the head trains on those.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use fdb_models::facenet::{BOTTLENECK_BIAS, BOTTLENECK_WEIGHT};
use fdb_models::train::{self, EpochLog, FeatureSet, HeadWeights, TrainConfig};
use fdb_models::weights::{self, install::write_model, ModelEntry, NamedTensor};
use fdb_storage::{FaceId, PersonId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;

#[derive(Debug, Clone)]
pub struct RetrainOptions {
    pub train: TrainConfig,
    /// Fraction of people held out for validation.
    pub validation_fraction: f64,
    /// Switch to the new model even if it is not better on the held-out people.
    pub force: bool,
}

impl Default for RetrainOptions {
    fn default() -> Self {
        Self { train: TrainConfig::default(), validation_fraction: 0.2, force: false }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrainReport {
    pub parent: String,
    pub model: String,
    pub train_people: usize,
    pub train_faces: usize,
    pub validation_people: usize,
    pub validation_faces: usize,
    pub before: Scores,
    pub after: Scores,
    pub epochs: Vec<EpochLog>,
    /// The database now uses the new model.
    pub switched: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    pub verification_accuracy: f64,
    pub rank1: f64,
}

impl FaceDb {
    /// Train a new head on the galleries, store it as a model version, and switch if it is better.
    pub fn retrain(&self, options: &RetrainOptions, on_epoch: impl FnMut(&EpochLog)) -> Result<RetrainReport> {
        let engine = self.engine()?;
        let models = self.models()?;
        let parent = self.model_id()?;
        let parent_entry = models.manifest.get(&parent).cloned().ok_or_else(|| missing_model(&parent))?;

        let gallery = self.gallery_with_two_faces()?;
        let (train_people, val_people) = split_people(&gallery, options.validation_fraction, options.train.seed);
        if train_people.len() < 2 || val_people.is_empty() {
            return Err(FdbError::Invalid(format!(
                "retraining needs at least 3 people with 2 or more faces each; this database has {}",
                gallery.len()
            )));
        }
        let train_set = self.features(&engine, &gallery, &train_people)?;
        let val_set = self.features(&engine, &gallery, &val_people)?;

        let base = read_head(&models.dir.join(&parent_entry.file))?;
        let device = Device::Cpu;
        let before = scores(&val_set, &base, &device)?;
        let (trained, epochs) = train::train_head(&train_set, &val_set, &base, &options.train, &device, on_epoch)?;
        let after = scores(&val_set, &trained, &device)?;

        let model = format!("{parent}+ft{}", unix_seconds());
        self.store_model_version(&models.dir, &parent_entry, &model, &trained)?;
        let better = after.verification_accuracy > before.verification_accuracy
            || (after.verification_accuracy == before.verification_accuracy && after.rank1 > before.rank1);
        let switched = better || options.force;
        if switched {
            self.switch_to(&model)?;
        }
        Ok(RetrainReport {
            parent,
            model,
            train_people: train_people.len(),
            train_faces: train_set.labels.len(),
            validation_people: val_people.len(),
            validation_faces: val_set.labels.len(),
            before,
            after,
            epochs,
            switched,
        })
    }

    /// Re-embed every stored face with `model` (from the stored crops) and make it the active model.
    /// The old model stays active until the store commits the switch, so a crash leaves it in place.
    pub fn switch_to(&self, model: &str) -> Result<()> {
        let models = self.models()?;
        models.manifest.get(model).ok_or_else(|| missing_model(model))?;
        let device = crate::device::select_device(self.options().device.as_deref())?;
        let engine = Engine::load(&models, model, device)?;
        let mut embeddings: Vec<(FaceId, Vec<f32>)> = Vec::new();
        for person in self.store().people()? {
            let faces = self.store().faces_of(person.id)?;
            let crops = self.crops(faces.iter().map(|f| f.id))?;
            let vectors = engine.embed(&crops)?;
            embeddings.extend(faces.iter().map(|f| f.id).zip(vectors));
        }
        self.store().switch_model(model, embeddings.into_iter())?;
        self.store().flush()?;
        self.reset_engine();
        Ok(())
    }

    /// Each person with two or more faces, and their faces.
    fn gallery_with_two_faces(&self) -> Result<BTreeMap<PersonId, Vec<FaceId>>> {
        let mut gallery = BTreeMap::new();
        for person in self.store().people()? {
            let faces: Vec<FaceId> = self.store().faces_of(person.id)?.into_iter().map(|f| f.id).collect();
            if faces.len() >= 2 {
                gallery.insert(person.id, faces);
            }
        }
        Ok(gallery)
    }

    fn crops(&self, faces: impl Iterator<Item = FaceId>) -> Result<Vec<image::RgbImage>> {
        faces
            .map(|id| {
                let bytes = self.store().face_crop(id)?;
                Ok(fdb_models::imageio::decode_image(&bytes, &format!("stored crop of face {}", id.0))?)
            })
            .collect()
    }

    /// Trunk features of the crop and its mirror for every face of `people`.
    fn features(&self, engine: &Engine, gallery: &BTreeMap<PersonId, Vec<FaceId>>, people: &[PersonId]) -> Result<FeatureSet> {
        let mut set = FeatureSet::default();
        for (label, person) in people.iter().enumerate() {
            let crops = self.crops(gallery[person].iter().copied())?;
            let mirrored: Vec<image::RgbImage> = crops.iter().map(image::imageops::flip_horizontal).collect();
            let plain = engine.trunk_features(&crops)?;
            let flipped = engine.trunk_features(&mirrored)?;
            for (a, b) in plain.into_iter().zip(flipped) {
                set.views.push(vec![a, b]);
                set.labels.push(label);
            }
        }
        Ok(set)
    }

    /// Write the parent's weights with the trained head as `model`, and list it in the manifest.
    fn store_model_version(&self, dir: &std::path::Path, parent: &ModelEntry, model: &str, head: &HeadWeights) -> Result<()> {
        let base = candle_core::safetensors::load(dir.join(&parent.file), &Device::Cpu)?;
        let mut tensors: Vec<NamedTensor> = Vec::with_capacity(base.len());
        for (name, t) in base {
            let data = match name.as_str() {
                BOTTLENECK_WEIGHT => head.weight.clone(),
                BOTTLENECK_BIAS => head.bias.clone(),
                _ => t.flatten_all()?.to_vec1::<f32>()?,
            };
            tensors.push(NamedTensor::new(name, t.dims().to_vec(), data));
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let file = format!("{}.safetensors", model.replace('+', "-"));
        let entry = ModelEntry {
            id: model.into(),
            kind: "embedder".into(),
            file: file.clone(),
            parent: Some(parent.id.clone()),
            embedding_dim: parent.embedding_dim,
            default_threshold: parent.default_threshold,
            impostor_fit: parent.impostor_fit,
            ..ModelEntry::default()
        };
        let entry = write_model(dir, &file, &tensors, entry)?;
        let mut manifest = weights::installed(dir)?.manifest;
        manifest.upsert(entry);
        manifest.write(dir)?;
        Ok(())
    }
}

fn missing_model(id: &str) -> FdbError {
    FdbError::Invalid(format!("model {id} is not installed; see `fdb models list`"))
}

fn scores(set: &FeatureSet, head: &HeadWeights, device: &Device) -> Result<Scores> {
    let (verification_accuracy, rank1) = train::evaluate(set, head, device)?;
    Ok(Scores { verification_accuracy, rank1 })
}

/// Person-disjoint split: a seeded shuffle, the first `fraction` of people held out.
fn split_people(gallery: &BTreeMap<PersonId, Vec<FaceId>>, fraction: f64, seed: u64) -> (Vec<PersonId>, Vec<PersonId>) {
    let mut people: Vec<PersonId> = gallery.keys().copied().collect();
    people.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let held_out = ((people.len() as f64 * fraction).round() as usize).clamp(1, people.len().saturating_sub(1).max(1));
    let train = people.split_off(held_out.min(people.len()));
    (train, people)
}

fn read_head(file: &std::path::Path) -> Result<HeadWeights> {
    let tensors = candle_core::safetensors::load(file, &Device::Cpu)?;
    let get = |name: &str| -> Result<&Tensor> {
        tensors.get(name).ok_or_else(|| FdbError::Invalid(format!("{}: no tensor {name}", file.display())))
    };
    let (w, b) = (get(BOTTLENECK_WEIGHT)?, get(BOTTLENECK_BIAS)?);
    let (out_dim, in_dim) = w.dims2()?;
    Ok(HeadWeights { weight: w.flatten_all()?.to_vec1()?, bias: b.to_vec1()?, in_dim, out_dim })
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_person_disjoint_seeded_and_keeps_both_sides_non_empty() {
        let gallery: BTreeMap<PersonId, Vec<FaceId>> =
            (0..10).map(|i| (PersonId(i), vec![FaceId(2 * i), FaceId(2 * i + 1)])).collect();
        let (train, val) = split_people(&gallery, 0.2, 3);
        assert_eq!((train.len(), val.len()), (8, 2));
        assert!(val.iter().all(|p| !train.contains(p)));
        assert_eq!(split_people(&gallery, 0.2, 3), (train, val));
        let small: BTreeMap<_, _> = gallery.into_iter().take(2).collect();
        let (t, v) = split_people(&small, 0.2, 3);
        assert_eq!((t.len(), v.len()), (1, 1));
    }
}
