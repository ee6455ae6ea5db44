//! The three MTCNN networks with facenet-pytorch's layer semantics and parameter names.
//!
//! Inputs and outputs are NCHW like facenet-pytorch's; inside, activations are NHWC so each
//! convolution is one im2col copy plus one matmul (the embedder's [`Conv`]), which on the CPU
//! is far faster than candle's NCHW `conv2d` for these small maps.

use super::layers::{max_pool_ceil, Prelu};
use crate::facenet::{Conv, Padding, Window};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

fn conv(in_c: usize, out_c: usize, kernel: usize, vb: VarBuilder) -> Result<Conv> {
    Conv::load(vb, in_c, out_c, Window::new((kernel, kernel), 1, Padding::Valid), false, 1.0)
}

/// A convolution `conv{i}` followed by its per-channel PReLU `prelu{i}`, over NHWC.
struct ConvPrelu {
    conv: Conv,
    prelu: Prelu,
}

impl ConvPrelu {
    fn load(i: usize, in_c: usize, out_c: usize, kernel: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv(in_c, out_c, kernel, vb.pp(format!("conv{i}")))?,
            prelu: Prelu::load(out_c, vb.pp(format!("prelu{i}")))?,
        })
    }
}

impl Module for ConvPrelu {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.prelu.forward(&self.conv.forward(xs)?)
    }
}

/// A fully connected layer `dense{i}` followed by its PReLU `prelu{i}`.
struct DensePrelu {
    dense: Linear,
    prelu: Prelu,
}

impl DensePrelu {
    fn load(i: usize, in_f: usize, out_f: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            dense: linear(in_f, out_f, vb.pp(format!("dense{i}")))?,
            prelu: Prelu::load(out_f, vb.pp(format!("prelu{i}")))?,
        })
    }
}

impl Module for DensePrelu {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.prelu.forward(&self.dense.forward(xs)?)
    }
}

fn nchw_to_nhwc(xs: &Tensor) -> Result<Tensor> {
    xs.permute((0, 2, 3, 1))?.contiguous()
}

/// facenet-pytorch flattens R-/O-Net features after permuting NCHW to NWHC; the dense weights
/// were trained on that order. From NHWC that is swapping H and W.
fn flatten_nwhc(xs: &Tensor) -> Result<Tensor> {
    xs.permute((0, 2, 1, 3))?.contiguous()?.flatten_from(1)
}

/// Proposal network: fully convolutional, one 12×12 window per output cell (stride 2).
pub struct PNet {
    block1: ConvPrelu,
    block2: ConvPrelu,
    block3: ConvPrelu,
    conv4_1: Conv,
    conv4_2: Conv,
}

impl PNet {
    /// Loads the P-Net's weights (facenet-pytorch's names).
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            block1: ConvPrelu::load(1, 3, 10, 3, &vb)?,
            block2: ConvPrelu::load(2, 10, 16, 3, &vb)?,
            block3: ConvPrelu::load(3, 16, 32, 3, &vb)?,
            conv4_1: conv(32, 2, 1, vb.pp("conv4_1"))?,
            conv4_2: conv(32, 4, 1, vb.pp("conv4_2"))?,
        })
    }

    /// Returns (box regression `[N,4,h,w]`, face probability `[N,2,h,w]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = max_pool_ceil(&self.block1.forward(&nchw_to_nhwc(xs)?)?, 2, 2)?;
        let xs = self.block3.forward(&self.block2.forward(&xs)?)?;
        let prob = candle_nn::ops::softmax(&self.conv4_1.forward(&xs)?, D::Minus1)?;
        let reg = self.conv4_2.forward(&xs)?;
        let to_nchw = |t: Tensor| t.permute((0, 3, 1, 2))?.contiguous();
        Ok((to_nchw(reg)?, to_nchw(prob)?))
    }
}

/// Refinement network on 24×24 candidates.
pub struct RNet {
    block1: ConvPrelu,
    block2: ConvPrelu,
    block3: ConvPrelu,
    dense4: DensePrelu,
    dense5_1: Linear,
    dense5_2: Linear,
}

impl RNet {
    /// Loads the R-Net's weights (facenet-pytorch's names).
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            block1: ConvPrelu::load(1, 3, 28, 3, &vb)?,
            block2: ConvPrelu::load(2, 28, 48, 3, &vb)?,
            block3: ConvPrelu::load(3, 48, 64, 2, &vb)?,
            dense4: DensePrelu::load(4, 576, 128, &vb)?,
            dense5_1: linear(128, 2, vb.pp("dense5_1"))?,
            dense5_2: linear(128, 4, vb.pp("dense5_2"))?,
        })
    }

    /// Returns (box regression `[N,4]`, face probability `[N,2]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = max_pool_ceil(&self.block1.forward(&nchw_to_nhwc(xs)?)?, 3, 2)?;
        let xs = max_pool_ceil(&self.block2.forward(&xs)?, 3, 2)?;
        let xs = self.block3.forward(&xs)?;
        let xs = self.dense4.forward(&flatten_nwhc(&xs)?)?;
        let prob = candle_nn::ops::softmax(&self.dense5_1.forward(&xs)?, D::Minus1)?;
        let reg = self.dense5_2.forward(&xs)?;
        Ok((reg, prob))
    }
}

/// Output network on 48×48 candidates: final box, probability and five landmarks.
pub struct ONet {
    block1: ConvPrelu,
    block2: ConvPrelu,
    block3: ConvPrelu,
    block4: ConvPrelu,
    dense5: DensePrelu,
    dense6_1: Linear,
    dense6_2: Linear,
    dense6_3: Linear,
}

impl ONet {
    /// Loads the O-Net's weights (facenet-pytorch's names).
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            block1: ConvPrelu::load(1, 3, 32, 3, &vb)?,
            block2: ConvPrelu::load(2, 32, 64, 3, &vb)?,
            block3: ConvPrelu::load(3, 64, 64, 3, &vb)?,
            block4: ConvPrelu::load(4, 64, 128, 2, &vb)?,
            dense5: DensePrelu::load(5, 1152, 256, &vb)?,
            dense6_1: linear(256, 2, vb.pp("dense6_1"))?,
            dense6_2: linear(256, 4, vb.pp("dense6_2"))?,
            dense6_3: linear(256, 10, vb.pp("dense6_3"))?,
        })
    }

    /// Returns (box regression `[N,4]`, landmarks `[N,10]` (5 x then 5 y), probability `[N,2]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let xs = max_pool_ceil(&self.block1.forward(&nchw_to_nhwc(xs)?)?, 3, 2)?;
        let xs = max_pool_ceil(&self.block2.forward(&xs)?, 3, 2)?;
        let xs = max_pool_ceil(&self.block3.forward(&xs)?, 2, 2)?;
        let xs = self.block4.forward(&xs)?;
        let xs = self.dense5.forward(&flatten_nwhc(&xs)?)?;
        let prob = candle_nn::ops::softmax(&self.dense6_1.forward(&xs)?, D::Minus1)?;
        let reg = self.dense6_2.forward(&xs)?;
        let landmarks = self.dense6_3.forward(&xs)?;
        Ok((reg, landmarks, prob))
    }
}
