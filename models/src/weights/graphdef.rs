//! Frozen TensorFlow GraphDef → Inception-ResNet-v1 tensors (embedder helper owns this).

use super::{ConvertError, NamedTensor};

/// Placeholder until the GraphDef decoder lands from the `embed` branch.
pub fn convert_facenet(_pb: &[u8]) -> Result<Vec<NamedTensor>, ConvertError> {
    Err(ConvertError::Malformed("this build has no GraphDef converter yet".into()))
}
