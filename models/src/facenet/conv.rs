//! Convolutions over NHWC activations, as TensorFlow computes them.
//!
//! Activations stay NHWC and contiguous through the whole network, so a 1×1 conv is one matmul
//! over `[N·H·W, C]` with no copy, a k×k conv is one im2col copy plus one matmul, and the
//! branch concatenations are along the last, contiguous axis. Kernels are re-laid out once at
//! load time from OIHW to `[kh·kw·C_in, C_out]`, matching the im2col column order `(dy, dx, c)`.
//!
//! The CPU fast path (`cpu`, and the custom im2col) records no backward. When a
//! tensor carries gradients (training the whole network, `train::network`), the same layers
//! take candle's differentiable tensor ops instead; inference never does.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor, D};
use candle_nn::VarBuilder;

use super::cpu;

/// TensorFlow padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Output `ceil(in / stride)`; the odd padding pixel goes at the end (bottom/right).
    Same,
    /// No padding: output `(in − k) / stride + 1`.
    Valid,
}

/// Output size and padding before the first pixel along one axis, with TensorFlow's rules.
pub fn out_size_and_pad(input: usize, kernel: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Valid => ((input.saturating_sub(kernel)) / stride + 1, 0),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            (out, total / 2)
        }
    }
}

/// A sliding window over an NHWC map: kernel, stride and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Step between windows, in both directions.
    pub stride: usize,
    /// TensorFlow's SAME or VALID padding.
    pub padding: Padding,
}

impl Window {
    /// A window of this kernel, stride and padding.
    pub fn new(kernel: (usize, usize), stride: usize, padding: Padding) -> Self {
        Self { kernel, stride, padding }
    }

    /// `(out_h, pad_top, out_w, pad_left)` for an `h × w` input.
    pub(crate) fn geometry(&self, h: usize, w: usize) -> (usize, usize, usize, usize) {
        let (out_h, pad_top) = out_size_and_pad(h, self.kernel.0, self.stride, self.padding);
        let (out_w, pad_left) = out_size_and_pad(w, self.kernel.1, self.stride, self.padding);
        (out_h, pad_top, out_w, pad_left)
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == 1
    }
}

/// Gathers every window of `x: [N, H, W, C]` into a row: `[N, out_h, out_w, kh·kw·C]`, columns
/// ordered `(dy, dx, c)`; pixels in the padding read as zero.
pub fn im2col(x: &Tensor, window: Window) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && !x.track_op() {
        x.apply_op1_no_bwd(&Im2Col(window))
    } else {
        im2col_with_tensor_ops(x, window)
    }
}

/// The device-independent, differentiable im2col (used off the CPU and in training): pad, pick
/// rows and columns, concatenate.
pub fn im2col_with_tensor_ops(x: &Tensor, window: Window) -> Result<Tensor> {
    let (_, h, w, _) = x.dims4()?;
    let (out_h, pad_top, out_w, pad_left) = window.geometry(h, w);
    let (kh, kw) = window.kernel;
    let s = window.stride;
    let pad_bottom = ((out_h - 1) * s + kh).saturating_sub(h + pad_top);
    let pad_right = ((out_w - 1) * s + kw).saturating_sub(w + pad_left);
    let x = x.pad_with_zeros(1, pad_top, pad_bottom)?.pad_with_zeros(2, pad_left, pad_right)?;
    let taps = |offset: usize, n: usize| {
        let ids: Vec<u32> = (0..n).map(|i| (offset + i * s) as u32).collect();
        Tensor::new(ids, x.device())
    };
    let mut cols = Vec::with_capacity(kh * kw);
    for dy in 0..kh {
        let rows = x.index_select(&taps(dy, out_h)?, 1)?;
        for dx in 0..kw {
            cols.push(rows.index_select(&taps(dx, out_w)?, 2)?);
        }
    }
    Tensor::cat(&cols, D::Minus1)
}

/// im2col on the CPU in one pass: each output pixel's row is `kh` runs of `kw·C` floats, copied
/// straight from the input (no padded copy, no per-tap tensors).
struct Im2Col(Window);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "nhwc-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims4()?;
        let data = match (storage, layout.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((start, end))) => &data[start..end],
            _ => candle_core::bail!("im2col expects a contiguous f32 tensor"),
        };
        let (n, h, w, c) = dims;
        let (out_h, _, out_w, _) = self.0.geometry(h, w);
        let mut cols = Vec::new();
        cpu::im2col(&cpu::View { data, dims }, 0, n, self.0, &mut cols);
        Ok((CpuStorage::F32(cols), Shape::from((n, out_h, out_w, self.0.kernel.0 * self.0.kernel.1 * c))))
    }
}

/// A conv layer with TensorFlow padding, bias and optional ReLU, over NHWC maps.
#[derive(Debug, Clone)]
pub struct Conv {
    /// `[kh·kw·C_in, C_out]`.
    weight: Tensor,
    bias: Tensor,
    window: Window,
    relu: bool,
}

impl Conv {
    /// Loads `weight` (OIHW) and `bias`, multiplying both by `scale` (a residual block's scale
    /// folded into its up-projection saves a pass over the activations).
    pub fn load(vb: VarBuilder, c_in: usize, c_out: usize, window: Window, relu: bool, scale: f64) -> Result<Self> {
        let (kh, kw) = window.kernel;
        let oihw = vb.get((c_out, c_in, kh, kw), "weight")?;
        let weight = (oihw.permute((2, 3, 1, 0))?.contiguous()?.reshape((kh * kw * c_in, c_out))? * scale)?;
        let bias = (vb.get(c_out, "bias")? * scale)?;
        Ok(Self { weight, bias, window, relu })
    }

    /// Output channels of the convolution.
    pub fn out_channels(&self) -> usize {
        self.bias.dims1().unwrap_or(0)
    }

    /// Whether `x` through this conv can take the CPU fast path (see `cpu`).
    pub(crate) fn takes_fast_path(&self, x: &Tensor) -> bool {
        cpu::eligible(x) && cpu::eligible(&self.weight)
    }

    /// The CPU fast path: `x` through the conv into `dst`'s columns; returns the output's `(h, w)`.
    pub(crate) fn forward_into(&self, x: &Tensor, dst: &mut cpu::Dst) -> Result<(usize, usize)> {
        let dims = x.dims4()?;
        cpu::with_slice(x, |data| {
            cpu::with_slice(&self.weight, |weight| {
                cpu::with_slice(&self.bias, |bias| {
                    let cw = cpu::ConvWeights { weight, bias, window: self.window, relu: self.relu };
                    Ok(cpu::conv(&cw, &cpu::View { data, dims }, dst))
                })
            })
        })
    }

    /// Rows of the weight matrix: `kh·kw·C_in`.
    pub(crate) fn weight_rows(&self) -> usize {
        self.weight.dims().first().copied().unwrap_or(0)
    }

    /// The CPU fast path of a 1×1 conv onto a residual: `out = act(out + input·W + bias)` with
    /// `input` `[rows, weight_rows]` and `out` `[rows, C_out]`; `relu` replaces the conv's own.
    pub(crate) fn accumulate_into(&self, input: &[f32], rows: usize, out: &mut [f32], relu: bool) -> Result<()> {
        cpu::with_slice(&self.weight, |weight| {
            cpu::with_slice(&self.bias, |bias| {
                let (k, n) = (self.weight_rows(), bias.len());
                cpu::gemm_rows(rows, k, n, out, n, true, input, k, weight);
                cpu::add_bias_relu(&mut cpu::Dst::whole(out, n), rows, bias, relu);
                Ok(())
            })
        })
    }

    /// The output shape for an input of shape `[n, h, w, _]`.
    pub(crate) fn output_dims(&self, (n, h, w): (usize, usize, usize)) -> (usize, usize, usize, usize) {
        let (out_h, _, out_w, _) = self.window.geometry(h, w);
        (n, out_h, out_w, self.out_channels())
    }
}

/// Largest im2col buffer the portable path builds at once: bigger batches are split by image,
/// which bounds the memory a large batch takes on a GPU.
const IM2COL_CHUNK_BYTES: usize = 8 << 20;

impl Conv {
    /// `[n·h·w, c]` rows through the matmul, bias and ReLU.
    fn project(&self, rows: &Tensor) -> Result<Tensor> {
        add_then_relu(rows.matmul(&self.weight)?, &self.bias, self.relu)
    }
}

impl Module for Conv {
    /// `[N, H, W, C_in]` → `[N, H', W', C_out]`: the CPU fast path when it applies, else candle's
    /// ops (the GPU, and training, which needs them for autodiff).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        if self.takes_fast_path(x) {
            let dims = self.output_dims((n, h, w));
            let mut out = vec![0f32; dims.0 * dims.1 * dims.2 * dims.3];
            self.forward_into(x, &mut cpu::Dst::whole(&mut out, dims.3))?;
            return Tensor::from_vec(out, dims, x.device());
        }
        if self.window.is_pointwise() {
            return self.project(&x.reshape((n * h * w, c))?)?.reshape((n, h, w, self.out_channels()));
        }
        let (out_h, _, out_w, _) = self.window.geometry(h, w);
        let (kh, kw) = self.window.kernel;
        let image_bytes = out_h * out_w * kh * kw * c * std::mem::size_of::<f32>();
        let images_per_chunk = (IM2COL_CHUNK_BYTES / image_bytes).clamp(1, n.max(1));
        let mut outs = Vec::with_capacity(n.div_ceil(images_per_chunk));
        for start in (0..n).step_by(images_per_chunk) {
            let images = images_per_chunk.min(n - start);
            let cols = im2col(&x.narrow(0, start, images)?, self.window)?;
            outs.push(self.project(&cols.reshape((images * out_h * out_w, kh * kw * c))?)?);
        }
        Tensor::cat(&outs, 0)?.reshape((n, out_h, out_w, self.out_channels()))
    }
}

/// `relu(y + rhs)` (or just `y + rhs`), where `rhs` is a bias repeated along `y`'s rows or a
/// residual of `y`'s shape: the portable path's epilogue (the CPU fast path fuses it, see
/// `cpu::add_bias_relu`).
pub fn add_then_relu(y: Tensor, rhs: &Tensor, relu: bool) -> Result<Tensor> {
    let y = y.broadcast_add(rhs)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// 3×3 max-pool, stride 2, VALID, over NHWC: the max over each im2col window.
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    if cpu::eligible(x) {
        let (out_h, out_w) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1);
        let mut out = vec![0f32; n * out_h * out_w * c];
        cpu::with_slice(x, |data| Ok(cpu::max_pool_3x3_s2(&cpu::View { data, dims: (n, h, w, c) }, &mut cpu::Dst::whole(&mut out, c))))?;
        return Tensor::from_vec(out, (n, out_h, out_w, c), x.device());
    }
    let cols = im2col(x, Window::new((3, 3), 2, Padding::Valid))?;
    let (n, h, w, _) = cols.dims4()?;
    cols.reshape((n, h, w, 9, c))?.max(3)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;

    use crate::test_tensors::{assert_close, max_abs_diff, seeded};

    #[test]
    fn tensorflow_output_sizes_and_padding() {
        assert_eq!(out_size_and_pad(160, 3, 2, Padding::Valid), (79, 0));
        assert_eq!(out_size_and_pad(17, 3, 2, Padding::Valid), (8, 0));
        assert_eq!(out_size_and_pad(17, 3, 1, Padding::Same), (17, 1));
        assert_eq!(out_size_and_pad(8, 7, 1, Padding::Same), (8, 3));
        // Stride 2 SAME on an even size: one pixel of padding in all, and TF puts it at the end.
        assert_eq!(out_size_and_pad(8, 3, 2, Padding::Same), (4, 0));
        assert_eq!(out_size_and_pad(9, 3, 2, Padding::Same), (5, 1));
    }

    #[test]
    fn im2col_of_a_3x3_image_by_hand() {
        let x = Tensor::arange(1f32, 10., &Device::Cpu).unwrap().reshape((1, 3, 3, 1)).unwrap();
        let cols = im2col(&x, Window::new((3, 3), 1, Padding::Same)).unwrap();
        let rows = cols.reshape((9, 9)).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], [0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        assert_eq!(rows[4], [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        assert_eq!(rows[8], [5., 6., 0., 8., 9., 0., 0., 0., 0.]);
    }

    #[test]
    fn cpu_im2col_equals_the_tensor_op_im2col() {
        let x = seeded(1, (2, 9, 8, 5), 1.0);
        for window in [
            Window::new((3, 3), 2, Padding::Valid),
            Window::new((3, 3), 2, Padding::Same),
            Window::new((1, 7), 1, Padding::Same),
            Window::new((7, 1), 1, Padding::Same),
            Window::new((3, 1), 1, Padding::Same),
            Window::new((3, 3), 1, Padding::Same),
        ] {
            let fast = im2col(&x, window).unwrap();
            let generic = im2col_with_tensor_ops(&x, window).unwrap();
            assert_eq!(max_abs_diff(&fast, &generic), 0.0, "{window:?}");
        }
    }

    fn conv_from(weight_oihw: &Tensor, bias: &Tensor, window: Window, relu: bool) -> Conv {
        let (c_out, c_in, ..) = weight_oihw.dims4().unwrap();
        let tensors = HashMap::from([("weight".to_string(), weight_oihw.clone()), ("bias".to_string(), bias.clone())]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        Conv::load(vb, c_in, c_out, window, relu, 1.0).unwrap()
    }

    /// Checks the NHWC conv against candle's own NCHW conv2d on an explicitly padded input.
    fn check_against_candle(kernel: (usize, usize), stride: usize, padding: Padding, pads: [usize; 4]) {
        let x = seeded(2, (2, 9, 10, 4), 1.0);
        let w = seeded(3, (6, 4, kernel.0, kernel.1), 1.0);
        let b = Tensor::new(&[0.1f32, -0.2, 0.3, -0.4, 0.5, -0.6], &Device::Cpu).unwrap();
        let ours = conv_from(&w, &b, Window::new(kernel, stride, padding), true).forward(&x).unwrap();
        let [top, bottom, left, right] = pads;
        let nchw = x.permute((0, 3, 1, 2)).unwrap();
        let padded = nchw.pad_with_zeros(2, top, bottom).unwrap().pad_with_zeros(3, left, right).unwrap();
        let theirs = padded.conv2d(&w, 0, stride, 1, 1).unwrap();
        let theirs = theirs.broadcast_add(&b.reshape((1, 6, 1, 1)).unwrap()).unwrap().relu().unwrap();
        let theirs = theirs.permute((0, 2, 3, 1)).unwrap();
        assert_close(&ours, &theirs, 5e-6, &format!("{kernel:?} s{stride} {padding:?}"));
    }

    #[test]
    fn conv_matches_candle_conv2d_with_tensorflow_padding() {
        check_against_candle((3, 3), 1, Padding::Same, [1, 1, 1, 1]);
        check_against_candle((1, 7), 1, Padding::Same, [0, 0, 3, 3]);
        check_against_candle((3, 1), 1, Padding::Same, [1, 1, 0, 0]);
        check_against_candle((3, 3), 2, Padding::Valid, [0, 0, 0, 0]);
        // 9×10 at stride 2 SAME → 5×5: 2 rows of padding split 1/1; 1 column, which TF puts
        // at the right.
        check_against_candle((3, 3), 2, Padding::Same, [1, 1, 0, 1]);
        check_against_candle((1, 1), 1, Padding::Same, [0, 0, 0, 0]);
    }

    /// Large enough maps read their windows in place from a padded copy instead of im2col.
    #[test]
    fn in_place_conv_matches_candle_conv2d() {
        for (kernel, padding, pads) in [
            ((3, 3), Padding::Same, [1, 1, 1, 1]),
            ((3, 3), Padding::Valid, [0, 0, 0, 0]),
            ((1, 7), Padding::Same, [0, 0, 3, 3]),
            ((7, 1), Padding::Same, [3, 3, 0, 0]),
        ] {
            let x = seeded(4, (2, 30, 29, 5), 1.0);
            let w = seeded(5, (6, 5, kernel.0, kernel.1), 1.0);
            let b = Tensor::new(&[0.1f32, -0.2, 0.3, -0.4, 0.5, -0.6], &Device::Cpu).unwrap();
            let ours = conv_from(&w, &b, Window::new(kernel, 1, padding), false).forward(&x).unwrap();
            let [top, bottom, left, right] = pads;
            let nchw = x.permute((0, 3, 1, 2)).unwrap();
            let padded = nchw.pad_with_zeros(2, top, bottom).unwrap().pad_with_zeros(3, left, right).unwrap();
            let theirs = padded.conv2d(&w, 0, 1, 1, 1).unwrap().broadcast_add(&b.reshape((1, 6, 1, 1)).unwrap()).unwrap();
            assert_close(&ours, &theirs.permute((0, 2, 3, 1)).unwrap(), 5e-6, &format!("{kernel:?} {padding:?}"));
        }
    }

    #[test]
    fn max_pool_matches_candle() {
        let x = seeded(6, (2, 11, 9, 3), 1.0);
        let ours = max_pool_3x3_s2(&x).unwrap();
        let theirs = x.permute((0, 3, 1, 2)).unwrap().max_pool2d_with_stride(3, 2).unwrap();
        assert_eq!(max_abs_diff(&ours, &theirs.permute((0, 2, 3, 1)).unwrap()), 0.0);
    }

    #[test]
    fn a_conv_carrying_gradients_computes_the_same_and_passes_them_back() {
        let x = candle_core::Var::from_tensor(&seeded(7, (1, 7, 6, 3), 1.0)).unwrap();
        let w = seeded(8, (4, 3, 3, 3), 1.0);
        let b = Tensor::new(&[0.1f32, -0.2, 0.3, -0.4], &Device::Cpu).unwrap();
        let conv = conv_from(&w, &b, Window::new((3, 3), 2, Padding::Same), true);
        let fast = conv.forward(&x.as_tensor().detach()).unwrap();
        let tracked = conv.forward(x.as_tensor()).unwrap();
        assert_close(&fast, &tracked, 5e-6, "tracked conv");
        let pooled = max_pool_3x3_s2(&(x.as_tensor() * 1.0).unwrap()).unwrap();
        let loss = (tracked.sum_all().unwrap() + pooled.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(x.as_tensor()).expect("the input gets a gradient");
        assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    }

    #[test]
    fn add_then_relu_by_hand() {
        let y = Tensor::new(&[[1f32, -2.], [3., -4.]], &Device::Cpu).unwrap();
        let bias = Tensor::new(&[1f32, 1.], &Device::Cpu).unwrap();
        let out = add_then_relu(y, &bias, true).unwrap();
        assert_eq!(out.to_vec2::<f32>().unwrap(), [[2., 0.], [4., 0.]]);
        let y = Tensor::new(&[[1f32, -2.]], &Device::Cpu).unwrap();
        let residual = Tensor::new(&[[0.5f32, 0.5]], &Device::Cpu).unwrap();
        assert_eq!(add_then_relu(y, &residual, false).unwrap().to_vec2::<f32>().unwrap(), [[1.5, -1.5]]);
    }
}
