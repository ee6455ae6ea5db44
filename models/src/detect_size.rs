//! Bounded detection on huge photos: the detector looks at a copy whose longer side is at most
//! [`DETECT_MAX_SIDE`], and its boxes are mapped back to the photo, so that the face is cut from
//! the full-resolution pixels.
//!
//! MTCNN's first pyramid level is the photo at 12/20 of its size with 10 float channels: 1.2 GB
//! for a 48 MP photo before the second layer, and a 13000×13000 photo needed one 2.4 GB
//! allocation. On a copy of at most 2048 px a side the cascade needs ~100 MB; the price is that a
//! face must be at least 20 px in the copy, i.e. 20 × (longer side / 2048) px in the photo (80 px
//! in an 8000 px photo). docs/benchmarks.md ("Huge photos") gives the measurements behind the cap.

use image::RgbImage;
use rayon::prelude::*;

use crate::mtcnn::Detection;

/// The longest side the detector sees.
pub const DETECT_MAX_SIDE: u32 = 2048;

/// The integer factor by which `width × height` shrinks to fit in `max_side` (1: as it is).
pub fn reduction_factor(width: u32, height: u32, max_side: u32) -> u32 {
    width.max(height).div_ceil(max_side.max(1)).max(1)
}

/// The photo shrunk by an integer `factor`: each pixel the mean of a `factor × factor` block
/// (the last partial row and column of blocks are dropped), like OpenCV's `INTER_AREA` at an
/// integer scale. Pixel `i` of the copy covers `[i·factor, (i+1)·factor)` of the photo, so a
/// point scales back by `factor` exactly.
pub fn shrink(img: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return img.clone();
    }
    let (w, h) = (img.width() / factor, img.height() / factor);
    let (f, src_w) = (factor as usize, img.width() as usize);
    let src = img.as_raw();
    let area = (f * f) as u32;
    let mut out = vec![0u8; w as usize * h as usize * 3];
    out.par_chunks_mut(w as usize * 3).enumerate().for_each(|(y, row)| {
        let mut sums = vec![0u32; w as usize * 3];
        for sy in y * f..(y + 1) * f {
            let line = &src[sy * src_w * 3..][..w as usize * f * 3];
            for (x, block) in line.chunks_exact(f * 3).enumerate() {
                for px in block.chunks_exact(3) {
                    sums[x * 3] += px[0] as u32;
                    sums[x * 3 + 1] += px[1] as u32;
                    sums[x * 3 + 2] += px[2] as u32;
                }
            }
        }
        for (o, s) in row.iter_mut().zip(&sums) {
            *o = ((s + area / 2) / area) as u8;
        }
    });
    RgbImage::from_raw(w, h, out).expect("the buffer has w × h pixels")
}

/// A detection in a copy shrunk by `factor`, in the photo's coordinates.
pub fn scale_up(d: &Detection, factor: u32) -> Detection {
    let f = factor as f32;
    Detection {
        bbox: d.bbox.map(|v| v * f),
        prob: d.prob,
        landmarks: d.landmarks.map(|[x, y]| [x * f, y * f]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_keep_the_longer_side_within_the_cap() {
        assert_eq!(reduction_factor(250, 250, 2048), 1);
        assert_eq!(reduction_factor(2048, 1000, 2048), 1);
        assert_eq!(reduction_factor(2049, 1000, 2048), 2);
        assert_eq!(reduction_factor(8000, 6000, 2048), 4);
        assert_eq!(reduction_factor(6000, 13000, 2048), 7);
        for (w, h) in [(8000, 6000), (12000, 8000), (16384, 16384), (4000, 3000)] {
            let f = reduction_factor(w, h, 2048);
            assert!(w.max(h) / f <= 2048, "{w}x{h}: {f}");
            assert!(f == 1 || w.max(h) / (f - 1) > 2048, "{w}x{h}: {f} is not the smallest");
        }
    }

    #[test]
    fn shrinking_averages_blocks_and_points_scale_back_exactly() {
        // A 7×5 photo shrunk by 2: 3×2 blocks, the last column and row dropped.
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(10 * x + y) as u8, 100, (x * y) as u8]));
        let small = shrink(&img, 2);
        assert_eq!(small.dimensions(), (3, 2));
        // Block (1, 1) covers x 2..4, y 2..4: red 22, 23, 32, 33 → 27.5, rounded 28; blue 4, 6, 6, 9 → 6.25.
        assert_eq!(small.get_pixel(1, 1).0, [28, 100, 6]);
        let d = Detection { bbox: [1.0, 2.0, 3.5, 4.0], prob: 0.9, landmarks: [[1.5, 2.5]; 5] };
        let up = scale_up(&d, 4);
        assert_eq!((up.bbox, up.prob, up.landmarks[0]), ([4.0, 8.0, 14.0, 16.0], 0.9, [6.0, 10.0]));
        assert_eq!(shrink(&img, 1), img);
    }
}
