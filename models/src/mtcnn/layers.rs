//! The two MTCNN layers candle lacks, over NHWC maps: per-channel PReLU and PyTorch's
//! ceil-mode max pooling. On the CPU each is one pass over the data (as tensor ops they were
//! most of the detector's time); elsewhere they fall back to plain tensor ops.

use crate::facenet::conv::im2col;
use crate::facenet::cpu::for_each_chunk;
use crate::facenet::{Padding, Window};
use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;

/// The f32 data of a contiguous CPU tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("expected a contiguous f32 tensor"),
    }
}

/// Pixels whose slopes are laid out one after another in `Prelu::slope_tiled`.
const TILE_PIXELS: usize = 64;

/// PReLU with one slope per channel, the last axis.
pub struct Prelu {
    slope: Tensor,
    /// The slopes repeated for `TILE_PIXELS` pixels, so the CPU loop runs over long rows
    /// (channel counts of 10–64 are too short a loop to vectorise well).
    slope_tiled: Vec<f32>,
}

impl Prelu {
    pub fn load(channels: usize, vb: VarBuilder) -> Result<Self> {
        Self::from_slope(vb.get(channels, "weight")?)
    }

    fn from_slope(slope: Tensor) -> Result<Self> {
        let slope_tiled = slope.to_vec1::<f32>()?.repeat(TILE_PIXELS);
        Ok(Self { slope, slope_tiled })
    }
}

impl Module for Prelu {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.device().is_cpu() {
            return xs.contiguous()?.apply_op1_no_bwd(self);
        }
        let zeros = xs.zeros_like()?;
        xs.maximum(&zeros)? + xs.minimum(&zeros)?.broadcast_mul(&self.slope)?
    }
}

impl CustomOp1 for Prelu {
    fn name(&self) -> &'static str {
        "nhwc-prelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout)?;
        let mut dst = src.to_vec();
        // Chunks of whole tiles, so every tile starts at channel 0; max/min instead of a
        // branch (which the compiler kept scalar), so it vectorises. Exact: one term is 0.
        let tile = self.slope_tiled.len();
        for_each_chunk(&mut dst, tile * 64, |_, chunk| {
            for part in chunk.chunks_mut(tile) {
                for (v, slope) in part.iter_mut().zip(&self.slope_tiled) {
                    *v = v.max(0.0) + slope * v.min(0.0);
                }
            }
        });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Output length of a ceil-mode pooling axis.
fn ceil_out(len: usize, kernel: usize, stride: usize) -> usize {
    len.saturating_sub(kernel).div_ceil(stride) + 1
}

/// Max pooling with PyTorch's `ceil_mode=True` over NHWC: the last window may hang over the
/// bottom/right edge and takes the maximum of the pixels it does cover.
pub fn max_pool_ceil(xs: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    if xs.device().is_cpu() {
        return xs.contiguous()?.apply_op1_no_bwd(&MaxPoolCeil { kernel, stride });
    }
    let (_, h, w, c) = xs.dims4()?;
    let overhang = |len: usize| (ceil_out(len, kernel, stride) - 1) * stride + kernel - len;
    let xs = pad_neg_inf(xs, 1, overhang(h))?;
    let xs = pad_neg_inf(&xs, 2, overhang(w))?;
    let cols = im2col(&xs, Window::new((kernel, kernel), stride, Padding::Valid))?;
    let (n, oh, ow, _) = cols.dims4()?;
    cols.reshape((n, oh, ow, kernel * kernel, c))?.max(3)
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

struct MaxPoolCeil {
    kernel: usize,
    stride: usize,
}

impl CustomOp1 for MaxPoolCeil {
    fn name(&self) -> &'static str {
        "nhwc-max-pool-ceil"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, h, w, c) = layout.shape().dims4()?;
        let src = contiguous_f32(storage, layout)?;
        let (k, s) = (self.kernel, self.stride);
        let (oh, ow) = (ceil_out(h, k, s), ceil_out(w, k, s));
        let mut dst = vec![f32::NEG_INFINITY; n * oh * ow * c];
        // One output row per task; windows are clipped to the image, as −inf padding would do.
        for_each_chunk(&mut dst, ow * c, |task, out_row| {
            let (b, oy) = (task / oh, task % oh);
            for iy in oy * s..(oy * s + k).min(h) {
                let row = &src[((b * h + iy) * w) * c..((b * h + iy) * w + w) * c];
                for (ox, out) in out_row.chunks_mut(c).enumerate() {
                    for ix in ox * s..(ox * s + k).min(w) {
                        for (o, v) in out.iter_mut().zip(&row[ix * c..(ix + 1) * c]) {
                            *o = o.max(*v);
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(dst), Shape::from((n, oh, ow, c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ceil_mode_pool_keeps_the_partial_window() {
        // One 3x3 single-channel NHWC map 0..9, kernel 2 stride 2, ceil mode: [[4,5],[7,8]].
        let xs = Tensor::arange(0f32, 9., &Device::Cpu).unwrap().reshape((1, 3, 3, 1)).unwrap();
        let out = max_pool_ceil(&xs, 2, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(out, vec![4., 5., 7., 8.]);
        // Negative values must not be lifted by the overhang.
        let neg = (xs.neg().unwrap() - 1.).unwrap();
        let out = max_pool_ceil(&neg, 2, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(out, vec![-1., -3., -7., -9.]);
    }

    #[test]
    fn cpu_pool_and_prelu_equal_the_tensor_op_versions() {
        let xs = crate::test_tensors::seeded(1, (2, 11, 9, 3), 1.0);
        for (k, s) in [(2, 2), (3, 2)] {
            let fast = max_pool_ceil(&xs, k, s).unwrap();
            let (_, h, w, c) = xs.dims4().unwrap();
            let overhang = |len: usize| (ceil_out(len, k, s) - 1) * s + k - len;
            let padded = pad_neg_inf(&pad_neg_inf(&xs, 1, overhang(h)).unwrap(), 2, overhang(w)).unwrap();
            let cols = im2col(&padded, Window::new((k, k), s, Padding::Valid)).unwrap();
            let (n, oh, ow, _) = cols.dims4().unwrap();
            let slow = cols.reshape((n, oh, ow, k * k, c)).unwrap().max(3).unwrap();
            assert_eq!(fast.flatten_all().unwrap().to_vec1::<f32>().unwrap(), slow.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        let slope = Tensor::new(&[0.25f32, -0.5, 2.0], &Device::Cpu).unwrap();
        let prelu = Prelu::from_slope(slope.clone()).unwrap();
        let fast = prelu.forward(&xs).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let zeros = xs.zeros_like().unwrap();
        let slow = (xs.maximum(&zeros).unwrap() + xs.minimum(&zeros).unwrap().broadcast_mul(&slope).unwrap()).unwrap();
        assert_eq!(fast, slow.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
