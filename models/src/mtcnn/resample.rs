//! Image preparation for the networks: planar float pixels and PyTorch's
//! `interpolate(mode="area")` (adaptive average pooling), which facenet-pytorch uses for the
//! pyramid and for every candidate crop.

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
    fn area_resize_averages_windows() {
        // One 4x2 image, red = x + 4y, downsampled to 2x1: means of {0,1,4,5} and {2,3,6,7}.
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(x + 4 * y) as u8, 0, 255]));
        let mut out = Vec::new();
        area_resize_into(&Planar::from_rgb(&img), (0, 0, 4, 2), (2, 1), &mut out);
        let px = |v: f32| (v - 127.5) * 0.0078125;
        assert_eq!(out, vec![px(2.5), px(4.5), px(0.), px(0.), px(255.), px(255.)]);
    }
}
