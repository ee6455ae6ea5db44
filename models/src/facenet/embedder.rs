//! Aligned 160×160 RGB faces → FaceNet embeddings, in batches, on a chosen device.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;

use super::{InceptionResnetV1, INPUT_SIZE};

/// Faces per forward pass unless told otherwise. On the CPU a pass is split by face across the
/// cores; on 2 cores the bench gives 30.8 faces/s at 32 and 30.5 at 8 (54% more than at 1).
pub const DEFAULT_MAX_BATCH: usize = 32;

/// Why the embedder could not load or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The weights file cannot be loaded.
    #[error("cannot load FaceNet weights from {path}: {source}")]
    Load {
        /// The safetensors file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A face crop is not 160×160.
    #[error("face {index} is {width}×{height}; the embedder takes aligned {INPUT_SIZE}×{INPUT_SIZE} crops")]
    WrongSize {
        /// Which face of the batch.
        index: usize,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// A `--device` that is none of cpu, cuda, cuda:N.
    #[error("unknown device {0:?}: use \"cpu\", \"cuda\" or \"cuda:N\"")]
    UnknownDevice(String),
    /// The device cannot be opened (no GPU, no driver, a build without `cuda`).
    #[error("device {name}: {source}")]
    Device {
        /// The device asked for.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// candle failed while running the network.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `"cpu"`, `"cuda"` or `"cuda:N"` → a candle device; CUDA needs the crate's `cuda` feature.
pub fn device_from_name(name: &str) -> Result<Device, EmbedError> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => name
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| EmbedError::UnknownDevice(name.to_string()))?,
    };
    Device::new_cuda(ordinal).map_err(|source| EmbedError::Device { name: name.to_string(), source })
}

/// The FaceNet network on a device, with the preprocessing it was trained with.
#[derive(Debug, Clone)]
pub struct Embedder {
    device: Device,
    model: InceptionResnetV1,
    max_batch: usize,
    /// The weights' and activations' type: F32, or F16/BF16 to trade accuracy for GPU speed.
    dtype: DType,
}

impl Embedder {
    /// Loads the safetensors written by the weight install (`facenet-20180408-102900.safetensors`).
    pub fn load(weights: &Path, device: &Device) -> Result<Self, EmbedError> {
        Self::load_as(weights, device, DType::F32)
    }

    /// The same, computing in `dtype` (embeddings are still returned as f32).
    pub fn load_as(weights: &Path, device: &Device, dtype: DType) -> Result<Self, EmbedError> {
        let load_error = |source| EmbedError::Load { path: weights.to_path_buf(), source };
        let bytes = std::fs::read(weights).map_err(|e| load_error(e.into()))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, dtype, device).map_err(load_error)?;
        let model = InceptionResnetV1::load(vb).map_err(load_error)?;
        Ok(Self { device: device.clone(), model, max_batch: DEFAULT_MAX_BATCH, dtype })
    }

    /// Faces per forward pass (at least 1): bigger batches use the cores better, up to a point.
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// The device the network runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network itself (for training and the trunk/head split).
    pub fn model(&self) -> &InceptionResnetV1 {
        &self.model
    }

    /// One 512-d, L2-normalised embedding per aligned 160×160 face, in order.
    pub fn embed(&self, faces: &[RgbImage]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.in_batches(faces, |input| self.model.forward_nhwc(input))
    }

    /// The frozen trunk's `[1792]` features per aligned face, the input of the trainable head.
    pub fn trunk_features(&self, faces: &[RgbImage]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.in_batches(faces, |input| self.model.trunk_nhwc(input))
    }

    /// The network's activations at `cut` per aligned face, flattened NHWC (`3·3·1792`
    /// floats): the input of a top trained by `--layers top:N`.
    pub fn activations(&self, faces: &[RgbImage], cut: super::Cut) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.in_batches(faces, |input| self.model.forward_to(cut, input)?.flatten_from(1))
    }

    /// Runs `network` on the standardised faces, `max_batch` at a time, one row per face.
    fn in_batches(
        &self,
        faces: &[RgbImage],
        network: impl Fn(&Tensor) -> candle_core::Result<Tensor> + Sync,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut rows = Vec::with_capacity(faces.len());
        for (chunk_index, chunk) in faces.chunks(self.max_batch).enumerate() {
            let first = chunk_index * self.max_batch;
            let threads = rayon::current_num_threads();
            if self.device.is_cpu() && self.dtype == DType::F32 && threads > 1 && chunk.len() > 1 {
                // On the CPU a batch is split by face across the threads, each running its part
                // of the network alone (see `cpu::on_this_thread`).
                let part = chunk.len().div_ceil(threads);
                let parts: Vec<_> = chunk
                    .par_chunks(part)
                    .enumerate()
                    .map(|(i, faces)| -> Result<Vec<Vec<f32>>, EmbedError> {
                        let input = standardised_nhwc(faces, first + i * part, &self.device)?;
                        Ok(super::cpu::on_this_thread(|| network(&input))?.to_vec2::<f32>()?)
                    })
                    .collect();
                for part in parts {
                    rows.extend(part?);
                }
            } else {
                let input = standardised_nhwc(chunk, first, &self.device)?.to_dtype(self.dtype)?;
                rows.extend(network(&input)?.to_dtype(DType::F32)?.to_vec2::<f32>()?);
            }
        }
        Ok(rows)
    }
}

/// The network input for `faces`: `[N, 3, 160, 160]`, `(pixel − 127.5) / 128`.
pub fn preprocess(faces: &[RgbImage], device: &Device) -> Result<Tensor, EmbedError> {
    Ok(standardised_nhwc(faces, 0, device)?.permute((0, 3, 1, 2))?.contiguous()?)
}

/// `[N, 160, 160, 3]`, `(pixel − 127.5) / 128`: the fixed standardisation this model was
/// trained with (not per-image prewhitening). `first_index` numbers the faces in errors.
fn standardised_nhwc(faces: &[RgbImage], first_index: usize, device: &Device) -> Result<Tensor, EmbedError> {
    let mut data = Vec::with_capacity(faces.len() * INPUT_SIZE * INPUT_SIZE * 3);
    for (i, face) in faces.iter().enumerate() {
        if face.dimensions() != (INPUT_SIZE as u32, INPUT_SIZE as u32) {
            let (width, height) = face.dimensions();
            return Err(EmbedError::WrongSize { index: first_index + i, width, height });
        }
        data.extend(face.as_raw().iter().map(|&p| (p as f32 - 127.5) / 128.0));
    }
    Ok(Tensor::from_vec(data, (faces.len(), INPUT_SIZE, INPUT_SIZE, 3), device)?)
}
