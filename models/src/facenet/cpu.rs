//! The CPU fast path of the network: NHWC activations as plain `f32` slices, every conv one or a
//! few direct `gemm` calls that read their input in place and write their output where it is
//! finally needed (a branch's columns of the concatenation, the residual sum).
//!
//! Why not candle's ops: for this network the time outside the matrix products (im2col copies
//! 9× the size of the input, `cat` of branch outputs, a separate residual add) was a fifth of the
//! whole, and the large stem maps ran the matrix products at half speed on the im2col buffers.
//! The candle path in `conv.rs` stays the reference (and the GPU and training path); tests hold
//! the two equal.

use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::Window;

/// An NHWC activation map on the CPU, borrowed.
pub struct View<'a> {
    pub data: &'a [f32],
    pub dims: (usize, usize, usize, usize),
}

/// Runs `f` on the contiguous f32 data of a CPU tensor, without copying it.
pub fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) => f(&data[start..end]),
        _ => candle_core::bail!("expected a contiguous f32 CPU tensor, got {:?} {:?}", t.dtype(), t.device()),
    }
}

/// Whether `t` can take the fast path: f32 on the CPU, and not part of an autodiff graph (the
/// fast path records no ops, so training must go through candle's).
pub fn eligible(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op()
}

thread_local! {
    static ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every kernel on the calling thread. A batch split across threads by image runs
/// each part this way: no hand-offs and no spinning inside each of the ~130 layers, which cost
/// more than the layers' own parallelism gains at these sizes.
pub fn on_this_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = ONE_THREAD.with(|flag| flag.replace(true));
    let out = f();
    ONE_THREAD.with(|flag| flag.set(before));
    out
}

fn threads() -> usize {
    if ONE_THREAD.with(|flag| flag.get()) {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// `f` on each `chunk`-sized piece of `data` with its index: in parallel unless on one thread.
pub(crate) fn for_each_chunk(data: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if threads() == 1 {
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Where a conv writes: columns `offset..offset + c_out` of rows `row_stride` floats apart.
pub struct Dst<'a> {
    pub data: &'a mut [f32],
    pub row_stride: usize,
    pub offset: usize,
}

impl<'a> Dst<'a> {
    pub fn whole(data: &'a mut [f32], cols: usize) -> Self {
        Self { data, row_stride: cols, offset: 0 }
    }
}

/// `dst[r][0..n] (+)= lhs[r][0..k] · rhs` for `m` rows. Rows of `dst` are `dst_rs` apart and
/// rows of `lhs` are `lhs_rs` apart; `lhs` rows may overlap, which is how a k×k conv reads its
/// windows in place. `rhs` is `[k, n]`, contiguous.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows(m: usize, k: usize, n: usize, dst: &mut [f32], dst_rs: usize, accumulate: bool, lhs: &[f32], lhs_rs: usize, rhs: &[f32]) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "gemm: dst too short");
    assert!(lhs.len() >= (m - 1) * lhs_rs + k, "gemm: lhs too short");
    assert!(rhs.len() >= k * n, "gemm: rhs too short");
    let threads = threads();
    // Below this many multiply-adds a thread hand-off costs more than it saves.
    let parallelism = if threads > 1 && m * n * k > 1 << 16 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the asserts above bound every element gemm touches: row r < m, column < n (or
    // depth < k) at offsets r·rs + col, and rhs at depth·n + col.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `row[offset..offset + bias.len()] = act(row + bias)` for every row of `dst`.
pub fn add_bias_relu(dst: &mut Dst, rows: usize, bias: &[f32], relu: bool) {
    let (rs, off, n) = (dst.row_stride, dst.offset, bias.len());
    let used = if rows == 0 { 0 } else { (rows - 1) * rs + off + n };
    for_each_chunk(&mut dst.data[..used], rs * 64, |_, block| {
        for row in block.chunks_mut(rs) {
            for (v, b) in row[off..off + n].iter_mut().zip(bias) {
                let s = *v + b;
                *v = if relu { s.max(0.0) } else { s };
            }
        }
    });
}

/// The weights of one conv in the layout the fast path reads: `[kh·kw·C_in, C_out]`.
pub struct ConvWeights<'w> {
    pub weight: &'w [f32],
    pub bias: &'w [f32],
    pub window: Window,
    pub relu: bool,
}

/// Largest im2col buffer built at once, so that it stays in cache and the allocator reuses it.
const IM2COL_CHUNK_FLOATS: usize = 2 << 20;

/// A stride-1 conv reads its windows in place from a padded copy of the input when the map is
/// this large; below it the im2col copy is cheap and a single matrix product is faster.
const IN_PLACE_MIN_PIXELS: usize = 24 * 24;

/// `x` through one conv (bias, optional ReLU) into `dst`; returns the output's `(h, w)`.
pub fn conv(cw: &ConvWeights, x: &View, dst: &mut Dst) -> (usize, usize) {
    let (n, h, w, c) = x.dims;
    let c_out = cw.bias.len();
    let (out_h, pad_top, out_w, pad_left) = cw.window.geometry(h, w);
    let rows = n * out_h * out_w;
    let win = cw.window;
    if win.kernel == (1, 1) && win.stride == 1 {
        gemm_rows(rows, c, c_out, &mut dst.data[dst.offset..], dst.row_stride, false, x.data, c, cw.weight);
    } else if win.stride == 1 && out_h * out_w >= IN_PLACE_MIN_PIXELS {
        conv_in_place(cw, x, (out_h, pad_top, out_w, pad_left), dst);
        return (out_h, out_w); // bias and ReLU are applied while compacting
    } else {
        let row_len = win.kernel.0 * win.kernel.1 * c;
        let images_per_chunk = (IM2COL_CHUNK_FLOATS / (out_h * out_w * row_len).max(1)).clamp(1, n.max(1));
        let mut cols = Vec::new();
        for first in (0..n).step_by(images_per_chunk) {
            let images = images_per_chunk.min(n - first);
            im2col(x, first, images, win, &mut cols);
            let out_rows = images * out_h * out_w;
            let start = first * out_h * out_w * dst.row_stride + dst.offset;
            gemm_rows(out_rows, row_len, c_out, &mut dst.data[start..], dst.row_stride, false, &cols, row_len, cw.weight);
        }
    }
    add_bias_relu(dst, rows, cw.bias, cw.relu);
    (out_h, out_w)
}

/// A stride-1 k×k conv with no im2col: over a zero-padded copy of the input, output pixel `q` of
/// a "wide" map (padded width, garbage in the extra columns) reads tap row `dy` as the `kw·C`
/// floats at `(q + dy·Wp)·C`, so each tap row is one product with rows `C` floats apart. The
/// wide result is compacted into `dst` with bias and ReLU.
fn conv_in_place(cw: &ConvWeights, x: &View, (out_h, pad_top, out_w, pad_left): (usize, usize, usize, usize), dst: &mut Dst) {
    let (n, h, w, c) = x.dims;
    let (kh, kw) = cw.window.kernel;
    let c_out = cw.bias.len();
    let (hp, wp) = (out_h + kh - 1, out_w + kw - 1);
    let padded;
    let input: &[f32] = if (hp, wp) == (h, w) {
        x.data
    } else {
        padded = pad(x, hp, wp, pad_top, pad_left);
        &padded
    };
    // The wide map of one image: out_h rows of Wp pixels, the last row cut at out_w.
    let wide_rows = (out_h - 1) * wp + out_w;
    let mut wide = vec![0f32; wide_rows * c_out];
    for b in 0..n {
        let image = &input[b * hp * wp * c..(b + 1) * hp * wp * c];
        for dy in 0..kh {
            let taps = &cw.weight[dy * kw * c * c_out..(dy + 1) * kw * c * c_out];
            gemm_rows(wide_rows, kw * c, c_out, &mut wide, c_out, dy > 0, &image[dy * wp * c..], c, taps);
        }
        let out_image = b * out_h * out_w;
        let (rs, off) = (dst.row_stride, dst.offset);
        let image_dst = &mut dst.data[out_image * rs..];
        let used = (out_h - 1) * out_w * rs + (out_w - 1) * rs + off + c_out;
        for_each_chunk(&mut image_dst[..used], out_w * rs, |oy, out_row| {
            for ox in 0..out_w {
                let from = &wide[(oy * wp + ox) * c_out..][..c_out];
                let to = &mut out_row[ox * rs + off..][..c_out];
                for ((t, f), b) in to.iter_mut().zip(from).zip(cw.bias) {
                    let s = f + b;
                    *t = if cw.relu { s.max(0.0) } else { s };
                }
            }
        });
    }
}

/// `x` placed at `(top, left)` in zeroed `[N, hp, wp, C]`.
fn pad(x: &View, hp: usize, wp: usize, top: usize, left: usize) -> Vec<f32> {
    let (n, h, w, c) = x.dims;
    let mut out = vec![0f32; n * hp * wp * c];
    for_each_chunk(&mut out, hp * wp * c, |b, image| {
        for y in 0..h {
            let from = &x.data[((b * h + y) * w) * c..][..w * c];
            image[((y + top) * wp + left) * c..][..w * c].copy_from_slice(from);
        }
    });
    out
}

/// Rows `[images · out_h · out_w, kh·kw·C]` of the windows of images `first..first + images`,
/// columns ordered `(dy, dx, c)`, padding read as zero (the layout of `conv::im2col`).
pub fn im2col(x: &View, first: usize, images: usize, win: Window, cols: &mut Vec<f32>) {
    let (_, h, w, c) = x.dims;
    let (out_h, pad_top, out_w, pad_left) = win.geometry(h, w);
    let (kh, kw) = win.kernel;
    let s = win.stride;
    let row_len = kh * kw * c;
    cols.clear();
    cols.resize(images * out_h * out_w * row_len, 0.0);
    let src = &x.data[first * h * w * c..(first + images) * h * w * c];
    for_each_chunk(cols, out_w * row_len, |task, out_row| {
        let (b, oy) = (task / out_h, task % out_h);
        let image = &src[b * h * w * c..(b + 1) * h * w * c];
        for (ox, row) in out_row.chunks_mut(row_len).enumerate() {
            for dy in 0..kh {
                let Some(iy) = (oy * s + dy).checked_sub(pad_top).filter(|&iy| iy < h) else { continue };
                let x0 = (ox * s) as isize - pad_left as isize;
                let first = (-x0).max(0) as usize;
                let last = ((w as isize - x0).min(kw as isize)).max(0) as usize;
                if first < last {
                    let from = (iy * w + (x0 + first as isize) as usize) * c;
                    let to = (dy * kw + first) * c;
                    row[to..to + (last - first) * c].copy_from_slice(&image[from..from + (last - first) * c]);
                }
            }
        }
    });
}

/// 3×3 max-pool, stride 2, VALID, into `dst`'s columns; returns the output's `(h, w)`.
pub fn max_pool_3x3_s2(x: &View, dst: &mut Dst) -> (usize, usize) {
    let (n, h, w, c) = x.dims;
    let (out_h, out_w) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1);
    let (rs, off) = (dst.row_stride, dst.offset);
    let used = (n * out_h - 1) * out_w * rs + (out_w - 1) * rs + off + c;
    for_each_chunk(&mut dst.data[..used], out_w * rs, |task, out_row| {
        let (b, oy) = (task / out_h, task % out_h);
        for ox in 0..out_w {
            let to = &mut out_row[ox * rs + off..][..c];
            to.fill(f32::NEG_INFINITY);
            for dy in 0..3 {
                for dx in 0..3 {
                    let from = &x.data[((b * h + oy * 2 + dy) * w + ox * 2 + dx) * c..][..c];
                    for (t, f) in to.iter_mut().zip(from) {
                        *t = t.max(*f);
                    }
                }
            }
        }
    });
    (out_h, out_w)
}
