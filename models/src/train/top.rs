//! Training the last Block8s and the bottleneck (`fdb retrain --layers top:N`) on the network's
//! activations at a cut, computed once per (face, view) and cached: a CPU can train deeper than
//! the head without running the frozen layers below the cut.
//!
//! The trainable tensors are `Var`s in a `VarMap` holding only the top's tensors, filled from
//! the model file. As in `network`, the top is rebuilt from the vars before each forward pass
//! (its kernels are re-laid out at load), and with vars as weights the convs take candle's
//! differentiable ops. Scoring rebuilds it from detached copies, which takes the CPU fast path.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::head::{mined_loss, EpochLog, MinedLoss, Optimizer_, TrainConfig};
use super::metrics::{rank1, verification_accuracy};
use super::schedule::run_epochs;
use crate::facenet::{Cut, Top, CUT_SHAPE};

/// Faces per forward pass when embedding without gradients.
const EVAL_BATCH: usize = 256;

/// Faces with person labels whose activations at a cut are read on demand, one (face, view) at
/// a time, so that a set need not fit in memory (the caller's cache may stream from disk).
pub struct ActivationSet<'a> {
    /// Per face, the index of its person.
    pub labels: Vec<usize>,
    /// Per face, how many views it has (view 0 is the plain crop).
    pub views: Vec<usize>,
    /// The activations of `(face, view)`: `3·3·1792` floats, NHWC.
    pub read: Box<dyn Fn(usize, usize) -> Result<Vec<f32>> + 'a>,
}

impl ActivationSet<'_> {
    /// `[picks, 3, 3, 1792]` activations of these (face, view) picks.
    pub fn batch(&self, picks: &[(usize, usize)], device: &Device) -> Result<Tensor> {
        let (h, w, c) = CUT_SHAPE;
        let mut rows = Vec::with_capacity(picks.len() * h * w * c);
        for &(face, view) in picks {
            let row = (self.read)(face, view)?;
            if row.len() != h * w * c {
                candle_core::bail!("activations of {} floats, a cut has {}", row.len(), h * w * c);
            }
            rows.extend_from_slice(&row);
        }
        Tensor::from_vec(rows, (picks.len(), h, w, c), device)
    }
}

/// Trains the top above a cut: its vars, their optimiser, and the top rebuilt from them.
pub struct TopTrainer {
    varmap: VarMap,
    cut: Cut,
    optimizer: Optimizer_,
    device: Device,
}

impl TopTrainer {
    /// The top above `cut` of the safetensors file `weights`, every tensor of it trainable,
    /// under `cfg`'s optimiser.
    pub fn load(weights: &Path, cut: Cut, cfg: &TrainConfig, device: &Device) -> Result<Self> {
        let mut varmap = VarMap::new();
        // Building the top through the map creates a var per tensor it reads; the file then fills them.
        Top::load(VarBuilder::from_varmap(&varmap, DType::F32, device), cut)?;
        varmap.load(weights)?;
        let optimizer = Optimizer_::new(cfg, sorted_vars(&varmap))?;
        Ok(Self { varmap, cut, optimizer, device: device.clone() })
    }

    /// The cut the top starts at.
    pub fn cut(&self) -> Cut {
        self.cut
    }

    /// The top built on the vars: its outputs carry gradients to them.
    fn tracked(&self) -> Result<Top> {
        Top::load(VarBuilder::from_varmap(&self.varmap, DType::F32, &self.device), self.cut)
    }

    /// The top as it is now, on detached copies (the CPU fast path, no gradients).
    pub fn frozen(&self) -> Result<Top> {
        let tensors: HashMap<String, Tensor> = self.tensors().into_iter().collect();
        Top::load(VarBuilder::from_tensors(tensors, DType::F32, &self.device), self.cut)
    }

    /// `[N, 512]` unit embeddings of `[N, 3, 3, 1792]` activations, carrying gradients to the vars.
    pub fn embed(&self, activations: &Tensor) -> Result<Tensor> {
        self.tracked()?.forward(activations)
    }

    /// One training step on the activations of a batch with person `labels`.
    pub fn step(&mut self, activations: &Tensor, labels: &[usize], cfg: &TrainConfig, rng: &mut impl rand::Rng) -> Result<MinedLoss> {
        let batch = mined_loss(&self.embed(activations)?, labels, cfg.alpha, cfg.mining, rng)?;
        if let Some(loss) = &batch.loss {
            let vars = sorted_vars(&self.varmap);
            let decayed: Vec<&Var> = vars.iter().collect();
            self.optimizer.backward_step(loss, &decayed)?;
        }
        Ok(batch)
    }

    /// Sets the optimiser's learning rate (the schedule's cosine decay).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.optimizer.set_learning_rate(learning_rate);
    }

    /// Unit embeddings of view 0 of every face in `set` (no gradients kept).
    pub fn embed_all(&self, set: &ActivationSet) -> Result<Vec<Vec<f32>>> {
        let top = self.frozen()?;
        let faces: Vec<(usize, usize)> = (0..set.labels.len()).map(|f| (f, 0)).collect();
        let mut rows = Vec::with_capacity(faces.len());
        for chunk in faces.chunks(EVAL_BATCH) {
            rows.extend(top.forward(&set.batch(chunk, &self.device)?)?.to_vec2::<f32>()?);
        }
        Ok(rows)
    }

    /// Held-out verification accuracy and rank-1 of the top as it is now.
    pub fn evaluate(&self, val: &ActivationSet) -> Result<(f64, f64)> {
        let e = self.embed_all(val)?;
        Ok((verification_accuracy(&e, &val.labels).0, rank1(&e, &val.labels)))
    }

    /// The top's tensors by name (as named in the model file), as they are now.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let data = self.varmap.data().lock().expect("the var map is not poisoned");
        let mut all: Vec<(String, Tensor)> = data.iter().map(|(n, v)| (n.clone(), v.as_tensor().detach())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The map's vars in name order, so that a run does not depend on the map's hashing.
fn sorted_vars(varmap: &VarMap) -> Vec<Var> {
    let data = varmap.data().lock().expect("the var map is not poisoned");
    let mut vars: Vec<(&String, &Var)> = data.iter().collect();
    vars.sort_by(|a, b| a.0.cmp(b.0));
    vars.into_iter().map(|(_, v)| v.clone()).collect()
}

/// Train the top on `train` (each batch draws one view per face), scoring view 0 of `val`
/// after each epoch. The trainer holds the result.
pub fn train_top(
    trainer: &mut TopTrainer,
    train: &ActivationSet,
    val: &ActivationSet,
    cfg: &TrainConfig,
    on_epoch: impl FnMut(&EpochLog) -> std::ops::ControlFlow<()>,
) -> Result<Vec<EpochLog>> {
    run_epochs(
        trainer,
        cfg,
        &train.labels,
        |face| train.views[face],
        |trainer, picks, learning_rate, rng| {
            trainer.set_learning_rate(learning_rate);
            let labels: Vec<usize> = picks.iter().map(|&(f, _)| train.labels[f]).collect();
            let activations = train.batch(picks, &trainer.device)?;
            trainer.step(&activations, &labels, cfg, rng)
        },
        |trainer| trainer.evaluate(val),
        on_epoch,
    )
}
