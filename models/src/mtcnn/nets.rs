//! The three MTCNN networks with facenet-pytorch's layer semantics and parameter names.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{conv2d, linear, prelu, Conv2d, Conv2dConfig, Linear, PReLU, VarBuilder};

/// Max pooling with PyTorch's `ceil_mode=True`: candle only floors, so the right and bottom
/// edges are padded with −inf until the last partial window fits.
fn max_pool_ceil(xs: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    let padded = |len: usize| {
        let out = (len.saturating_sub(kernel)).div_ceil(stride) + 1;
        (out - 1) * stride + kernel - len
    };
    let xs = pad_neg_inf(xs, 2, padded(h))?;
    let xs = pad_neg_inf(&xs, 3, padded(w))?;
    xs.max_pool2d_with_stride(kernel, stride)
}

fn pad_neg_inf(xs: &Tensor, dim: usize, extra: usize) -> Result<Tensor> {
    if extra == 0 {
        return Ok(xs.clone());
    }
    let mut shape = xs.dims().to_vec();
    shape[dim] = extra;
    let fill = Tensor::full(f32::NEG_INFINITY, shape, xs.device())?.to_dtype(xs.dtype())?;
    Tensor::cat(&[xs, &fill], dim)
}

fn conv(in_c: usize, out_c: usize, k: usize, vb: VarBuilder) -> Result<Conv2d> {
    conv2d(in_c, out_c, k, Conv2dConfig::default(), vb)
}

/// facenet-pytorch flattens R-/O-Net features after permuting NCHW to NWHC; the dense weights
/// were trained on that order.
fn flatten_nwhc(xs: &Tensor) -> Result<Tensor> {
    xs.permute((0, 3, 2, 1))?.contiguous()?.flatten_from(1)
}

/// Proposal network: fully convolutional, one 12×12 window per output cell (stride 2).
pub struct PNet {
    conv1: Conv2d,
    prelu1: PReLU,
    conv2: Conv2d,
    prelu2: PReLU,
    conv3: Conv2d,
    prelu3: PReLU,
    conv4_1: Conv2d,
    conv4_2: Conv2d,
}

impl PNet {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 10, 3, vb.pp("conv1"))?,
            prelu1: prelu(Some(10), vb.pp("prelu1"))?,
            conv2: conv(10, 16, 3, vb.pp("conv2"))?,
            prelu2: prelu(Some(16), vb.pp("prelu2"))?,
            conv3: conv(16, 32, 3, vb.pp("conv3"))?,
            prelu3: prelu(Some(32), vb.pp("prelu3"))?,
            conv4_1: conv(32, 2, 1, vb.pp("conv4_1"))?,
            conv4_2: conv(32, 4, 1, vb.pp("conv4_2"))?,
        })
    }

    /// Returns (box regression `[N,4,h,w]`, face probability `[N,2,h,w]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = self.prelu1.forward(&self.conv1.forward(xs)?)?;
        let xs = max_pool_ceil(&xs, 2, 2)?;
        let xs = self.prelu2.forward(&self.conv2.forward(&xs)?)?;
        let xs = self.prelu3.forward(&self.conv3.forward(&xs)?)?;
        let prob = candle_nn::ops::softmax(&self.conv4_1.forward(&xs)?, 1)?;
        let reg = self.conv4_2.forward(&xs)?;
        Ok((reg, prob))
    }
}

/// Refinement network on 24×24 candidates.
pub struct RNet {
    conv1: Conv2d,
    prelu1: PReLU,
    conv2: Conv2d,
    prelu2: PReLU,
    conv3: Conv2d,
    prelu3: PReLU,
    dense4: Linear,
    prelu4: PReLU,
    dense5_1: Linear,
    dense5_2: Linear,
}

impl RNet {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 28, 3, vb.pp("conv1"))?,
            prelu1: prelu(Some(28), vb.pp("prelu1"))?,
            conv2: conv(28, 48, 3, vb.pp("conv2"))?,
            prelu2: prelu(Some(48), vb.pp("prelu2"))?,
            conv3: conv(48, 64, 2, vb.pp("conv3"))?,
            prelu3: prelu(Some(64), vb.pp("prelu3"))?,
            dense4: linear(576, 128, vb.pp("dense4"))?,
            prelu4: prelu(Some(128), vb.pp("prelu4"))?,
            dense5_1: linear(128, 2, vb.pp("dense5_1"))?,
            dense5_2: linear(128, 4, vb.pp("dense5_2"))?,
        })
    }

    /// Returns (box regression `[N,4]`, face probability `[N,2]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = self.prelu1.forward(&self.conv1.forward(xs)?)?;
        let xs = max_pool_ceil(&xs, 3, 2)?;
        let xs = self.prelu2.forward(&self.conv2.forward(&xs)?)?;
        let xs = max_pool_ceil(&xs, 3, 2)?;
        let xs = self.prelu3.forward(&self.conv3.forward(&xs)?)?;
        let xs = self.prelu4.forward(&self.dense4.forward(&flatten_nwhc(&xs)?)?)?;
        let prob = candle_nn::ops::softmax(&self.dense5_1.forward(&xs)?, D::Minus1)?;
        let reg = self.dense5_2.forward(&xs)?;
        Ok((reg, prob))
    }
}

/// Output network on 48×48 candidates: final box, probability and five landmarks.
pub struct ONet {
    conv1: Conv2d,
    prelu1: PReLU,
    conv2: Conv2d,
    prelu2: PReLU,
    conv3: Conv2d,
    prelu3: PReLU,
    conv4: Conv2d,
    prelu4: PReLU,
    dense5: Linear,
    prelu5: PReLU,
    dense6_1: Linear,
    dense6_2: Linear,
    dense6_3: Linear,
}

impl ONet {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 32, 3, vb.pp("conv1"))?,
            prelu1: prelu(Some(32), vb.pp("prelu1"))?,
            conv2: conv(32, 64, 3, vb.pp("conv2"))?,
            prelu2: prelu(Some(64), vb.pp("prelu2"))?,
            conv3: conv(64, 64, 3, vb.pp("conv3"))?,
            prelu3: prelu(Some(64), vb.pp("prelu3"))?,
            conv4: conv(64, 128, 2, vb.pp("conv4"))?,
            prelu4: prelu(Some(128), vb.pp("prelu4"))?,
            dense5: linear(1152, 256, vb.pp("dense5"))?,
            prelu5: prelu(Some(256), vb.pp("prelu5"))?,
            dense6_1: linear(256, 2, vb.pp("dense6_1"))?,
            dense6_2: linear(256, 4, vb.pp("dense6_2"))?,
            dense6_3: linear(256, 10, vb.pp("dense6_3"))?,
        })
    }

    /// Returns (box regression `[N,4]`, landmarks `[N,10]` (5 x then 5 y), probability `[N,2]`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let xs = self.prelu1.forward(&self.conv1.forward(xs)?)?;
        let xs = max_pool_ceil(&xs, 3, 2)?;
        let xs = self.prelu2.forward(&self.conv2.forward(&xs)?)?;
        let xs = max_pool_ceil(&xs, 3, 2)?;
        let xs = self.prelu3.forward(&self.conv3.forward(&xs)?)?;
        let xs = max_pool_ceil(&xs, 2, 2)?;
        let xs = self.prelu4.forward(&self.conv4.forward(&xs)?)?;
        let xs = self.prelu5.forward(&self.dense5.forward(&flatten_nwhc(&xs)?)?)?;
        let prob = candle_nn::ops::softmax(&self.dense6_1.forward(&xs)?, D::Minus1)?;
        let reg = self.dense6_2.forward(&xs)?;
        let landmarks = self.dense6_3.forward(&xs)?;
        Ok((reg, landmarks, prob))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ceil_mode_pool_keeps_the_partial_window() {
        // 1x1x3x3 input 0..9, kernel 2 stride 2, ceil mode: output 2x2 = [[4,5],[7,8]].
        let xs = Tensor::arange(0f32, 9., &Device::Cpu).unwrap().reshape((1, 1, 3, 3)).unwrap();
        let out = max_pool_ceil(&xs, 2, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(out, vec![4., 5., 7., 8.]);
        // Negative values must not be lifted by the padding.
        let neg = (xs.neg().unwrap() - 1.).unwrap();
        let out = max_pool_ceil(&neg, 2, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(out, vec![-1., -3., -7., -9.]);
    }
}
