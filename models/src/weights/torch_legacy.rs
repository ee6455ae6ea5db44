//! Legacy (pre-1.6) torch.save reader (detector helper owns this).

use super::{ConvertError, NamedTensor};

/// Placeholder until the legacy reader lands from the `mtcnn` branch.
pub fn read_state_dict(_bytes: &[u8]) -> Result<Vec<NamedTensor>, ConvertError> {
    Err(ConvertError::Malformed("this build has no legacy torch reader yet".into()))
}
