//! Image preparation for the networks: planar float pixels and two area resamplers:
//! PyTorch's `interpolate(mode="area")` (adaptive average pooling), which facenet-pytorch uses
//! for the pyramid and every candidate crop, and OpenCV's `INTER_AREA`, which ipazc/mtcnn (the
//! e2e reference) uses.

use image::RgbImage;

/// An RGB image as three planes of f32 in 0..=255.
pub struct Planar {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Planar {
    pub fn from_rgb(img: &RgbImage) -> Self {
        let (width, height) = (img.width() as usize, img.height() as usize);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px[c] as f32;
            }
        }
        Self { width, height, data }
    }
}

impl Planar {
    /// The `w × h` window at `(x0, y0)` (which may hang outside the image), zeros outside, as
    /// ipazc/mtcnn pads candidates that cross the border.
    pub fn zero_padded(&self, (x0, y0): (i64, i64), (w, h): (usize, usize)) -> Planar {
        let mut data = vec![0f32; 3 * w * h];
        let (plane, out_plane) = (self.width * self.height, w * h);
        for y in 0..h {
            let sy = y0 + y as i64;
            if sy < 0 || sy >= self.height as i64 {
                continue;
            }
            for x in 0..w {
                let sx = x0 + x as i64;
                if sx < 0 || sx >= self.width as i64 {
                    continue;
                }
                for c in 0..3 {
                    data[c * out_plane + y * w + x] = self.data[c * plane + sy as usize * self.width + sx as usize];
                }
            }
        }
        Planar { width: w, height: h, data }
    }
}

/// Source ranges [start, end) that adaptive average pooling averages for each output index.
fn pool_ranges(input: usize, output: usize) -> Vec<(usize, usize)> {
    (0..output)
        .map(|i| ((i * input) / output, ((i + 1) * input).div_ceil(output)))
        .collect()
}

/// Resamples the region `x0..x1, y0..y1` of `src` to `out_w × out_h` by area averaging and
/// appends it, scaled to the networks' input range ((v − 127.5) / 128), to `dst` as CHW.
pub fn area_resize_into(
    src: &Planar,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
    (out_w, out_h): (usize, usize),
    dst: &mut Vec<f32>,
) {
    let (in_w, in_h) = (x1 - x0, y1 - y0);
    let xr = pool_ranges(in_w, out_w);
    let yr = pool_ranges(in_h, out_h);
    let plane = src.width * src.height;
    // Horizontal pass keeps per-window sums; the division happens once per output pixel.
    let mut rows = vec![0f32; in_h * out_w];
    dst.reserve(3 * out_w * out_h);
    for c in 0..3 {
        let chan = &src.data[c * plane..(c + 1) * plane];
        for y in 0..in_h {
            let row = &chan[(y0 + y) * src.width + x0..(y0 + y) * src.width + x1];
            for (ox, &(s, e)) in xr.iter().enumerate() {
                rows[y * out_w + ox] = row[s..e].iter().sum();
            }
        }
        for &(ys, ye) in &yr {
            for (ox, &(xs, xe)) in xr.iter().enumerate() {
                let sum: f32 = (ys..ye).map(|y| rows[y * out_w + ox]).sum();
                let mean = sum / ((ye - ys) * (xe - xs)) as f32;
                dst.push((mean - 127.5) * 0.0078125);
            }
        }
    }
}

/// OpenCV `INTER_AREA` taps for shrinking `input` to `output` samples: each output averages
/// the source interval [d·s, (d+1)·s) (s = input/output), border pixels weighted by the part
/// of them it covers.
fn opencv_area_taps(input: usize, output: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|d| {
            let (f1, f2) = (d as f64 * scale, (d + 1) as f64 * scale);
            let cell = scale.min(input as f64 - f1);
            let s2 = (f2.floor() as usize).min(input - 1);
            let s1 = (f1.ceil() as usize).min(s2);
            let mut taps = Vec::new();
            if s1 as f64 - f1 > 1e-3 {
                taps.push((s1 - 1, ((s1 as f64 - f1) / cell) as f32));
            }
            taps.extend((s1..s2).map(|j| (j, (1.0 / cell) as f32)));
            if f2 - s2 as f64 > 1e-3 {
                taps.push((s2, ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
            }
            taps
        })
        .collect()
}

/// Like [`area_resize_into`] but with OpenCV's `INTER_AREA` over the whole of `src`, rounding
/// to 8 bits first when `round_u8` (OpenCV resizing a uint8 image). OpenCV only area-averages
/// when shrinking; enlarging falls back to torch's area resize (OpenCV would interpolate).
pub fn opencv_area_resize_into(src: &Planar, (out_w, out_h): (usize, usize), round_u8: bool, dst: &mut Vec<f32>) {
    if out_w > src.width || out_h > src.height {
        return area_resize_into(src, (0, 0, src.width, src.height), (out_w, out_h), dst);
    }
    let xt = opencv_area_taps(src.width, out_w);
    let yt = opencv_area_taps(src.height, out_h);
    let plane = src.width * src.height;
    let mut rows = vec![0f32; src.height * out_w];
    dst.reserve(3 * out_w * out_h);
    for c in 0..3 {
        let chan = &src.data[c * plane..(c + 1) * plane];
        for y in 0..src.height {
            let row = &chan[y * src.width..(y + 1) * src.width];
            for (ox, taps) in xt.iter().enumerate() {
                rows[y * out_w + ox] = taps.iter().map(|&(j, a)| row[j] * a).sum();
            }
        }
        for taps in &yt {
            for ox in 0..out_w {
                let v: f32 = taps.iter().map(|&(j, a)| rows[j * out_w + ox] * a).sum();
                let v = if round_u8 { v.round().clamp(0.0, 255.0) } else { v };
                dst.push((v - 127.5) * 0.0078125);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ranges_match_adaptive_avg_pool() {
        // torch: 5 -> 3 windows are [0,2), [1,4), [3,5).
        assert_eq!(pool_ranges(5, 3), vec![(0, 2), (1, 4), (3, 5)]);
        // Upsampling repeats pixels: 2 -> 4 gives [0,1),[0,1),[1,2),[1,2).
        assert_eq!(pool_ranges(2, 4), vec![(0, 1), (0, 1), (1, 2), (1, 2)]);
    }

    #[test]
    fn opencv_area_taps_cover_fractional_pixels() {
        // 5 -> 2: scale 2.5, outputs average [0, 2.5) and [2.5, 5).
        let t = opencv_area_taps(5, 2);
        assert_eq!(t[0], vec![(0, 0.4), (1, 0.4), (2, 0.2)]);
        assert_eq!(t[1], vec![(2, 0.2), (3, 0.4), (4, 0.4)]);
        // An integer factor is plain block averaging.
        assert_eq!(opencv_area_taps(4, 2), vec![vec![(0, 0.5), (1, 0.5)], vec![(2, 0.5), (3, 0.5)]]);
    }

    #[test]
    fn area_resize_averages_windows() {
        // One 4x2 image, red = x + 4y, downsampled to 2x1: means of {0,1,4,5} and {2,3,6,7}.
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(x + 4 * y) as u8, 0, 255]));
        let mut out = Vec::new();
        area_resize_into(&Planar::from_rgb(&img), (0, 0, 4, 2), (2, 1), &mut out);
        let px = |v: f32| (v - 127.5) * 0.0078125;
        assert_eq!(out, vec![px(2.5), px(4.5), px(0.), px(0.), px(255.), px(255.)]);
    }
}
