//! FaceNet 20180408-102900: Inception-ResNet-v1 (davidsandberg/facenet, CASIA-WebFace, 512-d).
//!
//! Loaded with a `VarBuilder` from the safetensors that `weights::graphdef::convert_facenet`
//! writes (see its module doc for the tensor names). Inside, activations are NHWC (see `conv`).
//!
//! Speed on the CPU (`cargo bench --bench embed`): nearly all time is in the matrix products.
//! What made the difference against a port on candle's NCHW `conv2d`: kernels re-laid out once
//! at load; on the CPU (`cpu`) no im2col for 1×1 convs nor for the large stride-1 stem maps
//! (windows read in place), branch outputs written straight into the concatenation, the
//! residual accumulated by the up-projection's product; and a batch split by face across the
//! cores instead of every layer split across them.

pub mod conv;
pub(crate) mod cpu;
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
/// The bias of the head (see `BOTTLENECK_WEIGHT`).
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

impl ResidualBlock {
    /// The CPU fast path: each branch's last conv writes straight into its columns of the
    /// concatenation, and the up-projection accumulates onto a copy of the input.
    fn forward_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let rows = n * h * w;
        let mixed_channels = self.up.weight_rows();
        let mut mixed = vec![0f32; rows * mixed_channels];
        write_branches(&self.branches, x, &mut mixed, mixed_channels)?;
        let mut out = cpu::with_slice(x, |data| Ok(data.to_vec()))?;
        self.up.accumulate_into(&mixed, rows, &mut out, self.relu)?;
        Tensor::from_vec(out, (n, h, w, c), x.device())
    }
}

/// Runs each branch on `x`, its last conv writing into the next columns of `dst` (`cols` wide).
/// Returns the first column left free.
fn write_branches(branches: &[Vec<Conv>], x: &Tensor, dst: &mut [f32], cols: usize) -> Result<usize> {
    let mut offset = 0;
    for branch in branches {
        let Some((last, first)) = branch.split_last() else { continue };
        let y = run_branch(first, x)?;
        last.forward_into(&y, &mut cpu::Dst { data: &mut *dst, row_stride: cols, offset })?;
        offset += last.out_channels();
    }
    Ok(offset)
}

impl Module for ResidualBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.up.takes_fast_path(x) {
            return self.forward_cpu(x);
        }
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

impl Reduction {
    /// The CPU fast path: branches and the max-pool write into their columns of one output.
    fn forward_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let (_, out_h, out_w, _) = self.branches[0].last().map_or((0, 0, 0, 0), |conv| conv.output_dims((n, h, w)));
        let cols = self.branches.iter().filter_map(|b| b.last()).map(Conv::out_channels).sum::<usize>() + c;
        let mut out = vec![0f32; n * out_h * out_w * cols];
        let offset = write_branches(&self.branches, x, &mut out, cols)?;
        cpu::with_slice(x, |data| {
            let mut dst = cpu::Dst { data: &mut out, row_stride: cols, offset };
            Ok(cpu::max_pool_3x3_s2(&cpu::View { data, dims: (n, h, w, c) }, &mut dst))
        })?;
        Tensor::from_vec(out, (n, out_h, out_w, cols), x.device())
    }
}

impl Module for Reduction {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.branches.iter().flatten().all(|conv| conv.takes_fast_path(x)) {
            return self.forward_cpu(x);
        }
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
    top: Top,
}

impl InceptionResnetV1 {
    /// Loads the network from safetensors under fdb's tensor names (`weights::graphdef`).
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
            top: Top::load(vb.clone(), Cut::REDUCTION_B)?,
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
        self.top.features_from(Cut::REDUCTION_B, &self.forward_to(Cut::REDUCTION_B, x)?)
    }

    /// The network up to `cut`: `[N, 160, 160, 3]` → `[N, 3, 3, 1792]` activations (NHWC).
    /// `forward_from(cut, forward_to(cut, x))` is `forward_nhwc(x)`.
    pub fn forward_to(&self, cut: Cut, x: &Tensor) -> Result<Tensor> {
        let x = self.reduction_b(x)?;
        self.top.blocks[..cut.first_block()].iter().try_fold(x, |x, b| b.forward(&x))
    }

    /// The network from `cut` on: `[N, 3, 3, 1792]` activations → `[N, 512]` unit embeddings.
    pub fn forward_from(&self, cut: Cut, activations: &Tensor) -> Result<Tensor> {
        self.head(&self.top.features_from(cut, activations)?)
    }

    /// The stem, Block35s, Reduction-A, Block17s and Reduction-B: → `[N, 3, 3, 1792]`.
    fn reduction_b(&self, x: &Tensor) -> Result<Tensor> {
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
        self.mixed_7a.forward(&x) // → 3×3×1792
    }

    /// The bottleneck and L2 normalisation: `[N, 1792]` → `[N, 512]` unit vectors.
    pub fn head(&self, features: &Tensor) -> Result<Tensor> {
        self.top.head(features)
    }
}

/// Block8s in the network: the 5 of `repeat_2` and the final `block8` (scale 1, no ReLU).
pub const BLOCK8_COUNT: usize = 6;
/// The shape of one face's activations at any cut: 3×3×1792 (NHWC).
pub const CUT_SHAPE: (usize, usize, usize) = (3, 3, TRUNK_DIM);

/// A point between Reduction-B and the final Block8 where the network can be cut: the input of
/// the last `top_blocks` Block8s (1..=6, the final Block8 counted). The activations there are
/// always 3×3×1792.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cut {
    top_blocks: usize,
}

impl Cut {
    /// Right after Reduction-B (`mixed_7a`): all six Block8s lie above.
    pub const REDUCTION_B: Cut = Cut { top_blocks: BLOCK8_COUNT };

    /// The cut below the last `n` Block8s; `None` unless `1 <= n <= 6`.
    pub fn below_top(n: usize) -> Option<Cut> {
        (1..=BLOCK8_COUNT).contains(&n).then_some(Cut { top_blocks: n })
    }

    /// Block8s above the cut (trained by `--layers top:N`).
    pub fn top_blocks(self) -> usize {
        self.top_blocks
    }

    /// Index (0..6, in the order the network runs them) of the first Block8 above the cut.
    pub fn first_block(self) -> usize {
        BLOCK8_COUNT - self.top_blocks
    }

    /// The layer whose output the cut is, as named in the model file: `mixed_7a`, or
    /// `repeat_2.I` (I = 0..=4).
    pub fn name(self) -> String {
        match self.first_block() {
            0 => "mixed_7a".into(),
            i => format!("repeat_2.{}", i - 1),
        }
    }

    /// The cut of a name given by `name`.
    pub fn from_name(name: &str) -> Option<Cut> {
        (1..=BLOCK8_COUNT).filter_map(Cut::below_top).find(|c| c.name() == name)
    }

    /// Whether the model file's tensor `name` belongs to the layers above the cut (the last
    /// `top_blocks` Block8s and the bottleneck).
    pub fn is_above(self, name: &str) -> bool {
        (self.first_block()..BLOCK8_COUNT).any(|i| name.starts_with(&format!("{}.", block8_prefix(i))))
            || name.starts_with("bottleneck.")
    }
}

/// The model file's name of Block8 `i` (0..6).
fn block8_prefix(i: usize) -> String {
    if i + 1 == BLOCK8_COUNT {
        "block8".into()
    } else {
        format!("repeat_2.{i}")
    }
}

/// The layers above a cut: the last Block8s, the average pool and the bottleneck. Loaded alone
/// (`Top::load`), it is what `--layers top:N` trains; the whole network holds the top of
/// `Cut::REDUCTION_B` and runs it from any cut.
#[derive(Debug, Clone)]
pub struct Top {
    cut: Cut,
    blocks: Vec<ResidualBlock>,
    bottleneck: Linear,
}

impl Top {
    /// Loads the Block8s above `cut` and the bottleneck, under the model file's names.
    pub fn load(vb: VarBuilder, cut: Cut) -> Result<Self> {
        let blocks = (cut.first_block()..BLOCK8_COUNT)
            .map(|i| {
                let last = i + 1 == BLOCK8_COUNT;
                let (scale, relu) = if last { (FINAL_BLOCK8_SCALE, false) } else { (BLOCK8_SCALE, true) };
                ResidualBlock::block8(vb.pp(block8_prefix(i)), scale, relu)
            })
            .collect::<Result<Vec<_>>>()?;
        let bottleneck = candle_nn::linear(TRUNK_DIM, EMBEDDING_DIM, vb.pp("bottleneck"))?;
        Ok(Self { cut, blocks, bottleneck })
    }

    /// The cut this top starts at.
    pub fn cut(&self) -> Cut {
        self.cut
    }

    /// `[N, 3, 3, 1792]` activations at the top's cut → `[N, 512]` unit embeddings.
    pub fn forward(&self, activations: &Tensor) -> Result<Tensor> {
        self.head(&self.features_from(self.cut, activations)?)
    }

    /// Activations at `cut` (this top's cut or a later one) through the Block8s above it and
    /// the average pool: `[N, 1792]` trunk features.
    pub fn features_from(&self, cut: Cut, activations: &Tensor) -> Result<Tensor> {
        let skip = cut.first_block().checked_sub(self.cut.first_block()).ok_or_else(|| {
            candle_core::Error::Msg(format!("a top from {} cannot start at {}", self.cut.name(), cut.name()))
        })?;
        let x = self.blocks[skip..].iter().try_fold(activations.clone(), |x, b| b.forward(&x))?;
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
    use std::collections::HashMap;

    use candle_core::{DType, Device, Module, Result, Tensor};
    use candle_nn::VarBuilder;

    use super::{Reduction, ResidualBlock};
    use crate::test_tensors::{assert_close, seeded};

    #[test]
    fn l2_normalize_by_hand() {
        let x = Tensor::new(&[[3f32, 4.], [0., 0.]], &Device::Cpu).unwrap();
        let y = super::l2_normalize(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, [[0.6, 0.8], [0., 0.]]);
    }

    /// Loads a block twice from the same random weights: once as plain tensors (the CPU fast
    /// path) and once as autodiff variables (candle's ops, the path of the GPU and of training).
    fn both_paths<B>(load: impl Fn(VarBuilder) -> Result<B>) -> (B, B) {
        let varmap = candle_nn::VarMap::new();
        // The first load creates the variables; layers copy their weights at load time, so the
        // tracked block is loaded again once they hold random values.
        load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        let mut plain = HashMap::new();
        {
            let data = varmap.data().lock().unwrap();
            // Sorted, so that each variable gets the same seed on every run.
            let mut vars: Vec<_> = data.iter().collect();
            vars.sort_by(|a, b| a.0.cmp(b.0));
            for (seed, (name, var)) in vars.into_iter().enumerate() {
                let scale = if name.ends_with("bias") { 0.1 } else { 0.05 };
                var.set(&seeded(seed as u64, var.shape(), scale)).unwrap();
                plain.insert(name.clone(), var.as_tensor().detach());
            }
        }
        let tracked = load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        (load(VarBuilder::from_tensors(plain, DType::F32, &Device::Cpu)).unwrap(), tracked)
    }

    fn assert_paths_agree(fast: &Tensor, portable: &Tensor) {
        assert_close(fast, portable, 1e-5, "fast path against candle's ops");
    }

    #[test]
    fn residual_blocks_agree_on_both_paths() {
        for (load, shape) in [
            (ResidualBlock::block35 as fn(VarBuilder) -> Result<ResidualBlock>, (2, 17, 17, 256)),
            (ResidualBlock::block17, (2, 8, 8, 896)),
            (|vb| ResidualBlock::block8(vb, 1.0, false), (2, 3, 3, 1792)),
        ] {
            let (fast, portable) = both_paths(load);
            let x = seeded(100, shape, 1.0);
            assert_paths_agree(&fast.forward(&x).unwrap(), &portable.forward(&x).unwrap());
        }
    }

    #[test]
    fn reductions_agree_on_both_paths() {
        for (load, shape) in [
            (Reduction::mixed_6a as fn(VarBuilder) -> Result<Reduction>, (2, 17, 17, 256)),
            (Reduction::mixed_7a, (2, 8, 8, 896)),
        ] {
            let (fast, portable) = both_paths(load);
            let x = seeded(100, shape, 1.0);
            assert_paths_agree(&fast.forward(&x).unwrap(), &portable.forward(&x).unwrap());
        }
    }
}
