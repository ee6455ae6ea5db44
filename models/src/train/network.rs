//! Training the whole network (`fdb retrain --layers all`), meant for a GPU.
//!
//! Every weight is a `Var` in a `VarMap` filled from the model file. The network is rebuilt
//! from the vars before each forward pass: its kernels are re-laid out (and residual scales
//! folded in) at load, so they must follow each update. With vars as weights the activations
//! carry gradients, which sends the convs down their differentiable paths (`facenet::conv`).

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use image::RgbImage;
use rand::Rng;

use super::augment::{render_view, Augment};
use super::head::{mined_loss, EpochLog, MinedLoss, TrainConfig};
use super::schedule::run_epochs;
use super::metrics::{rank1, verification_accuracy};
use super::Mining;
use crate::facenet::{preprocess, InceptionResnetV1};

/// Aligned crops with person labels; `seeds[i]` makes face i's jittered views its own.
#[derive(Debug, Clone, Default)]
pub struct CropSet {
    /// The aligned 160×160 crops.
    pub crops: Vec<RgbImage>,
    /// Per crop, the index of its person.
    pub labels: Vec<usize>,
    /// Per crop, the seed of its jittered views.
    pub seeds: Vec<u64>,
    /// What the jittered views alter besides position and scale.
    pub augment: Augment,
}

/// Faces per forward pass when embedding without gradients.
const EVAL_BATCH: usize = 32;

/// Trains every weight of the embedder (`--layers all`): the vars, their optimiser and the network rebuilt from them.
pub struct NetworkTrainer {
    varmap: VarMap,
    optimizer: AdamW,
    device: Device,
}

impl NetworkTrainer {
    /// The network of the safetensors file `weights`, every tensor trainable, under AdamW.
    pub fn load(weights: &Path, learning_rate: f64, weight_decay: f64, device: &Device) -> Result<Self> {
        let mut varmap = VarMap::new();
        // Building the network through the map creates a var per tensor; the file then fills them.
        InceptionResnetV1::load(VarBuilder::from_varmap(&varmap, DType::F32, device))?;
        varmap.load(weights)?;
        let params = ParamsAdamW { lr: learning_rate, weight_decay, ..Default::default() };
        let optimizer = AdamW::new(varmap.all_vars(), params)?;
        Ok(Self { varmap, optimizer, device: device.clone() })
    }

    fn network(&self) -> Result<InceptionResnetV1> {
        InceptionResnetV1::load(VarBuilder::from_varmap(&self.varmap, DType::F32, &self.device))
    }

    /// `[N, 512]` unit embeddings of aligned 160×160 crops, carrying gradients to the vars.
    pub fn embed(&self, faces: &[RgbImage]) -> Result<Tensor> {
        let input = preprocess(faces, &self.device).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        self.network()?.forward(&input)
    }

    /// Sets the optimiser's learning rate (the schedule's cosine decay).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.optimizer.set_learning_rate(learning_rate);
    }

    /// Mine triplets among `faces` (person `labels`) and the loss's gradients, without applying
    /// them; no gradients when the batch gave no triplet.
    pub fn loss_and_gradients(
        &self,
        faces: &[RgbImage],
        labels: &[usize],
        alpha: f32,
        mining: Mining,
        rng: &mut impl Rng,
    ) -> Result<(MinedLoss, Option<GradStore>)> {
        let batch = mined_loss(&self.embed(faces)?, labels, alpha, mining, rng)?;
        let grads = batch.loss.as_ref().map(Tensor::backward).transpose()?;
        Ok((batch, grads))
    }

    /// Applies one optimiser step with these gradients.
    pub fn apply(&mut self, grads: &GradStore) -> Result<()> {
        self.optimizer.step(grads)
    }

    /// One training step on a batch.
    pub fn step(&mut self, faces: &[RgbImage], labels: &[usize], alpha: f32, mining: Mining, rng: &mut impl Rng) -> Result<MinedLoss> {
        let (batch, grads) = self.loss_and_gradients(faces, labels, alpha, mining, rng)?;
        if let Some(grads) = grads {
            self.apply(&grads)?;
        }
        Ok(batch)
    }

    /// The trainable tensor `name` (as named in the model file).
    pub fn var(&self, name: &str) -> Option<Var> {
        self.varmap.data().lock().ok()?.get(name).cloned()
    }

    /// Every tensor by name, as it is now.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let data = self.varmap.data().lock().expect("the var map is not poisoned");
        let mut all: Vec<(String, Tensor)> = data.iter().map(|(n, v)| (n.clone(), v.as_tensor().detach())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl NetworkTrainer {
    /// Unit embeddings of every crop (no gradients kept).
    pub fn embed_all(&self, crops: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let network = self.network()?;
        let mut rows = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(EVAL_BATCH) {
            let input = preprocess(chunk, &self.device).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            rows.extend(network.forward(&input)?.detach().to_vec2::<f32>()?);
        }
        Ok(rows)
    }

    /// Held-out verification accuracy and rank-1 of the network as it is now.
    pub fn evaluate(&self, val: &CropSet) -> Result<(f64, f64)> {
        let e = self.embed_all(&val.crops)?;
        Ok((verification_accuracy(&e, &val.labels).0, rank1(&e, &val.labels)))
    }
}

/// Train every layer on `train` (each batch draws one of `views` augmented views per face),
/// scoring `val` after each epoch. The trainer holds the result.
pub fn train_network(
    trainer: &mut NetworkTrainer,
    train: &CropSet,
    val: &CropSet,
    views: usize,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochLog) -> std::ops::ControlFlow<()>,
) -> Result<Vec<EpochLog>> {
    run_epochs(
        trainer,
        cfg,
        &train.labels,
        |_| views,
        |trainer, picks, learning_rate, rng| {
            trainer.set_learning_rate(learning_rate);
            let faces: Vec<RgbImage> = picks.iter().map(|&(f, v)| render_view(&train.crops[f], train.seeds[f], v, train.augment)).collect();
            let labels: Vec<usize> = picks.iter().map(|&(f, _)| train.labels[f]).collect();
            trainer.step(&faces, &labels, cfg.alpha, cfg.mining, rng)
        },
        |trainer| trainer.evaluate(val),
        on_epoch,
    )
}
