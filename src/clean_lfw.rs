//! The clean-LFW check of a retrained version (`fdb retrain --lfw DIR`): LFW View 1's
//! `pairsDevTest.txt` (500 same and 500 different pairs) scored by the parent and by the new
//! version with the evaluator's protocol (10 folds, squared L2, no flip: what `fdb eval lfw
//! --pairs pairsDevTest.txt` reports). A version that gains in its own domain must not lose
//! the faces the base model knew: a loss of more than `CLEAN_LOSS_FLAG` is flagged.
//!
//! The photos are detected and aligned once and run up to a cut below the trained layers once;
//! each version's top finishes them (the layers below the cut are the parent's in both), so the
//! check costs about one pass of the network per photo (~1,550 photos).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use fdb_models::facenet::{Cut, Top, CUT_SHAPE};
use image::RgbImage;
use serde::Serialize;

use crate::engine::{Alignment, Engine};
use crate::error::{FdbError, Result};
use crate::eval::{self, EvalOptions, ImagePair, PairEmbeddings};
use crate::eval::EngineSource;

/// The largest loss of clean accuracy (0..1) a version shows without a flag: 0.5 pt.
pub const CLEAN_LOSS_FLAG: f64 = 0.005;
/// Crops per pass up to the cut.
const CHUNK: usize = 64;

/// The parent's and the new version's accuracy on clean pairs.
#[derive(Debug, Clone, Serialize)]
pub struct CleanLfw {
    /// The pairs file.
    pub pairs_file: PathBuf,
    /// Pairs scored.
    pub pairs: usize,
    /// The parent's mean 10-fold accuracy.
    pub parent: f64,
    /// The new version's.
    pub model: f64,
    /// The new version loses more than `CLEAN_LOSS_FLAG`.
    pub flagged: bool,
    /// Seconds the check took.
    pub seconds: f64,
}

impl CleanLfw {
    /// Accuracy lost (negative: gained).
    pub fn loss(&self) -> f64 {
        self.parent - self.model
    }
}

/// A View 1 pairs file resolved under LFW's images folder, and its distinct photos.
pub struct PairSet {
    /// The pairs, in the evaluator's fold order.
    pub pairs: Vec<ImagePair>,
    /// Each photo once, in path order.
    pub photos: Vec<PathBuf>,
}

impl PairSet {
    /// `pairs_file` (View 1 or 2) with its photos under `images` (`DIR/name/name_NNNN.jpg`).
    pub fn read(pairs_file: &Path, images: &Path) -> Result<Self> {
        let invalid = |e: eval::EvalError| FdbError::Invalid(e.to_string());
        let parsed = eval::read_pairs(pairs_file).map_err(invalid)?;
        let pairs = eval::resolve_lfw_pairs(images, &parsed.fold_order()).map_err(invalid)?;
        let photos: std::collections::BTreeSet<&PathBuf> = pairs.iter().flat_map(|p| [&p.left, &p.right]).collect();
        let photos = photos.into_iter().cloned().collect();
        Ok(Self { pairs, photos })
    }

    /// The evaluator's mean 10-fold accuracy (squared L2, no flip), given each photo's
    /// embedding in `photos` order.
    pub fn accuracy(&self, embeddings: &[Vec<f32>]) -> Result<f64> {
        let of: HashMap<&Path, &Vec<f32>> = self.photos.iter().map(PathBuf::as_path).zip(embeddings).collect();
        let side = |p: &Path| of.get(p).map(|e| (*e).clone()).ok_or_else(|| FdbError::Invalid(format!("{}: no embedding", p.display())));
        let pairs = PairEmbeddings {
            left: self.pairs.iter().map(|p| side(&p.left)).collect::<Result<_>>()?,
            right: self.pairs.iter().map(|p| side(&p.right)).collect::<Result<_>>()?,
            same: self.pairs.iter().map(|p| p.same).collect(),
        };
        let report = eval::evaluate(&pairs, &EvalOptions::default()).map_err(|e| FdbError::Invalid(e.to_string()))?;
        Ok(report.accuracy_mean)
    }
}

/// The aligned crop of each photo as `fdb eval lfw` cuts it: the central face, or the central
/// region where none is found.
pub fn aligned_crops(engine: &Engine, photos: &[PathBuf]) -> Result<Vec<RgbImage>> {
    let mut source = EngineSource::new(engine, Alignment::Crop);
    let mut crops = Vec::with_capacity(photos.len());
    for chunk in photos.chunks(CHUNK) {
        for (path, crop) in chunk.iter().zip(source.crops(chunk)) {
            crops.push(crop.map_err(|why| FdbError::Invalid(format!("{}: {why}", path.display())))?);
        }
    }
    Ok(crops)
}

/// The activations at `cut` of `crops` (the engine's layers below it).
pub fn activations(engine: &Engine, crops: &[RgbImage], cut: Cut) -> Result<Vec<Vec<f32>>> {
    let mut rows = Vec::with_capacity(crops.len());
    for chunk in crops.chunks(CHUNK) {
        rows.extend(engine.activations(chunk, cut)?);
    }
    Ok(rows)
}

/// Unit embeddings by the top above `cut` of the model file `weights`, from activations at the cut.
pub fn top_embeddings(weights: &Path, cut: Cut, activations: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let device = Device::Cpu;
    let tensors = candle_core::safetensors::load(weights, &device)?;
    let top = Top::load(VarBuilder::from_tensors(tensors, DType::F32, &device), cut)?;
    let (h, w, c) = CUT_SHAPE;
    let mut rows = Vec::with_capacity(activations.len());
    for chunk in activations.chunks(4 * CHUNK) {
        let x = Tensor::from_vec(chunk.concat(), (chunk.len(), h, w, c), &device)?;
        rows.extend(top.forward(&x)?.to_vec2::<f32>()?);
    }
    Ok(rows)
}

/// The clean check of `model` against `parent` (both model files; `engine` runs the parent).
/// With a `cut`, the versions share the layers below it and only their tops run; without one
/// (a whole-network version) `model_engine` embeds the crops in full.
pub fn check(
    set: &PairSet,
    pairs_file: &Path,
    engine: &Engine,
    parent: &Path,
    model: &Path,
    cut: Option<Cut>,
    model_engine: impl FnOnce() -> Result<Engine>,
) -> Result<CleanLfw> {
    let started = std::time::Instant::now();
    let crops = aligned_crops(engine, &set.photos)?;
    let (parent_embeddings, model_embeddings) = match cut {
        Some(cut) => {
            let below = activations(engine, &crops, cut)?;
            (top_embeddings(parent, cut, &below)?, top_embeddings(model, cut, &below)?)
        }
        None => (engine.embed(&crops)?, model_engine()?.embed(&crops)?),
    };
    let (parent, model) = (set.accuracy(&parent_embeddings)?, set.accuracy(&model_embeddings)?);
    Ok(CleanLfw {
        pairs_file: pairs_file.to_path_buf(),
        pairs: set.pairs.len(),
        parent,
        model,
        flagged: parent - model > CLEAN_LOSS_FLAG,
        seconds: started.elapsed().as_secs_f64(),
    })
}
