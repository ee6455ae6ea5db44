//! Legacy (pre-1.6) torch.save reader (detector helper owns this).
