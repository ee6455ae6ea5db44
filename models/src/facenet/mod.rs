//! FaceNet 20180408-102900: Inception-ResNet-v1 (davidsandberg/facenet, CASIA-WebFace, 512-d).
//!
//! Loaded with a `VarBuilder` from the safetensors that `weights::graphdef::convert_facenet`
//! writes (see its module doc for the tensor names). Inside, activations are NHWC (see `conv`).
//!
//! Speed on the CPU (`cargo bench --bench embed`): nearly all time is in gemm. What made the
//! difference against a port on candle's NCHW `conv2d`: no per-call kernel re-layout, one
//! im2col copy per k×k conv and none for 1×1 convs, bias/residual + ReLU fused in place (candle's
//! elementwise ops fan out to a spinning thread pool), and im2col buffers bounded in size.

pub mod conv;
mod embedder;

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

pub use conv::{Conv, Padding, Window};
pub use embedder::{device_from_name, preprocess, EmbedError, Embedder, DEFAULT_MAX_BATCH};

use crate::weights::graphdef::{BLOCK17_SCALE, BLOCK35_SCALE, BLOCK8_SCALE, FINAL_BLOCK8_SCALE};
use conv::{add_then_relu, max_pool_3x3_s2};

/// Side of the square face crop the network takes.
pub const INPUT_SIZE: usize = 160;
/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 512;
/// The trunk's pooled features, the bottleneck's input.
pub const TRUNK_DIM: usize = 1792;
/// The head's tensors in the safetensors file, the part `fdb retrain` replaces.
pub const BOTTLENECK_WEIGHT: &str = "bottleneck.weight";
pub const BOTTLENECK_BIAS: &str = "bottleneck.bias";

fn same(k: (usize, usize)) -> Window {
    Window::new(k, 1, Padding::Same)
}

fn valid(k: (usize, usize), stride: usize) -> Window {
    Window::new(k, stride, Padding::Valid)
}

/// A chain of convs with ReLU, as one branch of an Inception block: `(c_out, window)` per conv.
fn branch(vb: VarBuilder, c_in: usize, convs: &[(usize, Window)]) -> Result<Vec<Conv>> {
    let mut c = c_in;
    let mut layers = Vec::with_capacity(convs.len());
    for (i, &(c_out, window)) in convs.iter().enumerate() {
        layers.push(Conv::load(vb.pp(i), c, c_out, window, true, 1.0)?);
        c = c_out;
    }
    Ok(layers)
}

fn run_branch(convs: &[Conv], x: &Tensor) -> Result<Tensor> {
    convs.iter().try_fold(x.clone(), |x, conv| conv.forward(&x))
}

/// Block35/17/8: branches, concatenated, projected back up (scaled), added to the input.
#[derive(Debug, Clone)]
struct ResidualBlock {
    branches: Vec<Vec<Conv>>,
    up: Conv,
    relu: bool,
}

impl ResidualBlock {
    fn load(vb: VarBuilder, c: usize, branches: &[&[(usize, Window)]], scale: f32, relu: bool) -> Result<Self> {
        let branches = branches
            .iter()
            .enumerate()
            .map(|(b, convs)| branch(vb.pp(format!("branch_{b}")), c, convs))
            .collect::<Result<Vec<_>>>()?;
        let mixed: usize = branches.iter().map(|b| b.last().map_or(0, Conv::out_channels)).sum();
        let up = Conv::load(vb.pp("conv2d"), mixed, c, same((1, 1)), false, scale as f64)?;
        Ok(Self { branches, up, relu })
    }

    /// 5 × Block35 on 17×17×256.
    fn block35(vb: VarBuilder) -> Result<Self> {
        let b0: &[_] = &[(32, same((1, 1)))];
        let b1: &[_] = &[(32, same((1, 1))), (32, same((3, 3)))];
        let b2: &[_] = &[(32, same((1, 1))), (32, same((3, 3))), (32, same((3, 3)))];
        Self::load(vb, 256, &[b0, b1, b2], BLOCK35_SCALE, true)
    }

    /// 10 × Block17 on 8×8×896.
    fn block17(vb: VarBuilder) -> Result<Self> {
        let b0: &[_] = &[(128, same((1, 1)))];
        let b1: &[_] = &[(128, same((1, 1))), (128, same((1, 7))), (128, same((7, 1)))];
        Self::load(vb, 896, &[b0, b1], BLOCK17_SCALE, true)
    }

    /// 5 × Block8 on 3×3×1792, then one more with scale 1 and no ReLU.
    fn block8(vb: VarBuilder, scale: f32, relu: bool) -> Result<Self> {
        let b0: &[_] = &[(192, same((1, 1)))];
        let b1: &[_] = &[(192, same((1, 1))), (192, same((1, 3))), (192, same((3, 1)))];
        Self::load(vb, 1792, &[b0, b1], scale, relu)
    }
}

impl Module for ResidualBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mixed = self.branches.iter().map(|b| run_branch(b, x)).collect::<Result<Vec<_>>>()?;
        let up = self.up.forward(&Tensor::cat(&mixed, D::Minus1)?)?;
        add_then_relu(up, x, self.relu)
    }
}

/// Mixed_6a/7a: stride-2 conv branches beside a max-pool, concatenated.
#[derive(Debug, Clone)]
struct Reduction {
    branches: Vec<Vec<Conv>>,
}

impl Reduction {
    fn load(vb: VarBuilder, c: usize, branches: &[&[(usize, Window)]]) -> Result<Self> {
        let branches = branches
            .iter()
            .enumerate()
            .map(|(b, convs)| branch(vb.pp(format!("branch_{b}")), c, convs))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { branches })
    }

    /// 17×17×256 → 8×8×896.
    fn mixed_6a(vb: VarBuilder) -> Result<Self> {
        let b0: &[_] = &[(384, valid((3, 3), 2))];
        let b1: &[_] = &[(192, same((1, 1))), (192, same((3, 3))), (256, valid((3, 3), 2))];
        Self::load(vb, 256, &[b0, b1])
    }

    /// 8×8×896 → 3×3×1792.
    fn mixed_7a(vb: VarBuilder) -> Result<Self> {
        let b0: &[_] = &[(256, same((1, 1))), (384, valid((3, 3), 2))];
        let b1: &[_] = &[(256, same((1, 1))), (256, valid((3, 3), 2))];
        let b2: &[_] = &[(256, same((1, 1))), (256, same((3, 3))), (256, valid((3, 3), 2))];
        Self::load(vb, 896, &[b0, b1, b2])
    }
}

impl Module for Reduction {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut outs = self.branches.iter().map(|b| run_branch(b, x)).collect::<Result<Vec<_>>>()?;
        outs.push(max_pool_3x3_s2(x)?);
        Tensor::cat(&outs, D::Minus1)
    }
}

/// Inception-ResNet-v1 as in FaceNet 20180408-102900.
#[derive(Debug, Clone)]
pub struct InceptionResnetV1 {
    conv2d_1a: Conv,
    conv2d_2a: Conv,
    conv2d_2b: Conv,
    conv2d_3b: Conv,
    conv2d_4a: Conv,
    conv2d_4b: Conv,
    repeat: Vec<ResidualBlock>,
    mixed_6a: Reduction,
    repeat_1: Vec<ResidualBlock>,
    mixed_7a: Reduction,
    repeat_2: Vec<ResidualBlock>,
    block8: ResidualBlock,
    bottleneck: Linear,
}

impl InceptionResnetV1 {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let conv = |name: &str, c_in, c_out, window| Conv::load(vb.pp(name), c_in, c_out, window, true, 1.0);
        let blocks = |name: &str, n: usize, load: &dyn Fn(VarBuilder) -> Result<ResidualBlock>| {
            (0..n).map(|i| load(vb.pp(name).pp(i))).collect::<Result<Vec<_>>>()
        };
        Ok(Self {
            conv2d_1a: conv("conv2d_1a", 3, 32, valid((3, 3), 2))?,
            conv2d_2a: conv("conv2d_2a", 32, 32, valid((3, 3), 1))?,
            conv2d_2b: conv("conv2d_2b", 32, 64, same((3, 3)))?,
            conv2d_3b: conv("conv2d_3b", 64, 80, valid((1, 1), 1))?,
            conv2d_4a: conv("conv2d_4a", 80, 192, valid((3, 3), 1))?,
            conv2d_4b: conv("conv2d_4b", 192, 256, valid((3, 3), 2))?,
            repeat: blocks("repeat", 5, &ResidualBlock::block35)?,
            mixed_6a: Reduction::mixed_6a(vb.pp("mixed_6a"))?,
            repeat_1: blocks("repeat_1", 10, &ResidualBlock::block17)?,
            mixed_7a: Reduction::mixed_7a(vb.pp("mixed_7a"))?,
            repeat_2: blocks("repeat_2", 5, &|vb| ResidualBlock::block8(vb, BLOCK8_SCALE, true))?,
            block8: ResidualBlock::block8(vb.pp("block8"), FINAL_BLOCK8_SCALE, false)?,
            bottleneck: candle_nn::linear(TRUNK_DIM, EMBEDDING_DIM, vb.pp("bottleneck"))?,
        })
    }

    /// `[N, 3, 160, 160]` standardised RGB → `[N, 512]` L2-normalised embeddings.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_nhwc(&x.permute((0, 2, 3, 1))?.contiguous()?)
    }

    /// The same from `[N, 160, 160, 3]`, the layout images come in (saves a transpose).
    pub fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        self.head(&self.trunk_nhwc(x)?)
    }

    /// Everything before the bottleneck: `[N, 160, 160, 3]` → `[N, 1792]` pooled features.
    /// Retraining keeps this frozen and trains the head on its output.
    pub fn trunk_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv2d_1a.forward(x)?; // 160 → 79
        let x = self.conv2d_2a.forward(&x)?; // → 77
        let x = self.conv2d_2b.forward(&x)?;
        let x = max_pool_3x3_s2(&x)?; // MaxPool_3a: → 38
        let x = self.conv2d_3b.forward(&x)?;
        let x = self.conv2d_4a.forward(&x)?; // → 36
        let x = self.conv2d_4b.forward(&x)?; // → 17×17×256
        let x = self.repeat.iter().try_fold(x, |x, b| b.forward(&x))?;
        let x = self.mixed_6a.forward(&x)?; // → 8×8×896
        let x = self.repeat_1.iter().try_fold(x, |x, b| b.forward(&x))?;
        let x = self.mixed_7a.forward(&x)?; // → 3×3×1792
        let x = self.repeat_2.iter().try_fold(x, |x, b| b.forward(&x))?;
        let x = self.block8.forward(&x)?;
        // AvgPool_1a_8x8 covers the whole 3×3 map: a mean over H and W.
        x.mean((1, 2))
    }

    /// The bottleneck and L2 normalisation: `[N, 1792]` → `[N, 512]` unit vectors.
    pub fn head(&self, features: &Tensor) -> Result<Tensor> {
        l2_normalize(&self.bottleneck.forward(features)?)
    }
}

/// `x / sqrt(max(Σx², 1e-10))` per row, as the graph's `embeddings` node computes it.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.maximum(1e-10)?.sqrt()?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    #[test]
    fn l2_normalize_by_hand() {
        let x = Tensor::new(&[[3f32, 4.], [0., 0.]], &Device::Cpu).unwrap();
        let y = super::l2_normalize(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, [[0.6, 0.8], [0., 0.]]);
    }
}
