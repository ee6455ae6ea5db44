//! A face's quality: how much an answer about it can be trusted, in [0, 1], from what the
//! detector said and what the pixels show.
//!
//! `quality = detector · size · brightness · contrast · sharpness`, each term in [0, 1]:
//!
//! | term | from | 0 at | 1 from |
//! |---|---|---|---|
//! | detector | MTCNN's probability p | p ≤ 0.70 (its last-stage threshold) | p ≥ 0.95; a whole-image face (no detection) counts 0.5 |
//! | size | the face box's shorter side s, in photo pixels | s ≤ 20 (MTCNN's smallest face) | s ≥ 60 |
//! | brightness | mean luma μ of the face (the crop's central 60%) | μ ≤ 15 or μ ≥ 250 | 50 ≤ μ ≤ 200 |
//! | contrast | standard deviation σ of that luma | σ ≤ 6 | σ ≥ 24 |
//! | sharpness | variance of its Laplacian over its variance, r (independent of contrast) | r ≤ 0.005 | r ≥ 0.02 |
//!
//! A product, because any one bad factor is enough to make a face unreliable. The breakpoints
//! were set so that clean LFW crops score 1 on every term (of the first photo of 60 LFW people,
//! the 10th percentiles are p 1.0, s 85 px, μ 92, σ 24, r 0.023), while the hard-conditions
//! set's 40 px faces (r 0.008–0.015), darkened faces (μ from 26) and one-sided light (σ from 13)
//! lose on theirs (docs/benchmarks.md, Hard conditions).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::contrast::luma;

/// The score and the terms it is the product of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The product of the five terms, in [0, 1].
    pub score: f32,
    /// From the detector's probability (0.5 for a whole-image face).
    pub detector: f32,
    /// From the face box's shorter side.
    pub size: f32,
    /// From the face's mean luma.
    pub brightness: f32,
    /// From the standard deviation of the face's luma.
    pub contrast: f32,
    /// From the Laplacian's variance relative to the luma's.
    pub sharpness: f32,
}

/// The detector term of a face found without a detection (the whole image standing for it).
pub const WHOLE_IMAGE_DETECTOR_TERM: f32 = 0.5;

/// `prob`: the detector's probability, `None` for a whole-image face; `face_side`: the shorter
/// side of its box in photo pixels; `crop`: the aligned crop the embedder sees.
pub fn face_quality(prob: Option<f32>, face_side: f32, crop: &RgbImage) -> Quality {
    let detector = prob.map_or(WHOLE_IMAGE_DETECTOR_TERM, |p| ramp(p, 0.70, 0.95));
    let size = ramp(face_side, 20.0, 60.0);
    let stats = central_luma_stats(crop);
    let brightness = ramp(stats.mean, 15.0, 50.0).min(1.0 - ramp(stats.mean, 200.0, 250.0));
    let contrast = ramp(stats.std, 6.0, 24.0);
    let sharpness = if stats.std > 0.0 { ramp(stats.laplacian_var / (stats.std * stats.std), 0.005, 0.02) } else { 0.0 };
    Quality { score: detector * size * brightness * contrast * sharpness, detector, size, brightness, contrast, sharpness }
}

/// 0 at or below `zero`, 1 at or above `one`, linear between.
fn ramp(v: f32, zero: f32, one: f32) -> f32 {
    ((v - zero) / (one - zero)).clamp(0.0, 1.0)
}

/// Luma statistics of the central 60% of a crop (the face without its margin and background).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LumaStats {
    /// Mean luma, 0..255.
    pub mean: f32,
    /// Standard deviation of the luma.
    pub std: f32,
    /// Variance of the 4-neighbour Laplacian over the interior of the region.
    pub laplacian_var: f32,
}

/// The statistics of the quality terms, over the central 60% of `crop`.
pub fn central_luma_stats(crop: &RgbImage) -> LumaStats {
    let (w, h) = crop.dimensions();
    let (x0, y0) = (w / 5, h / 5);
    let (x1, y1) = ((w - w / 5).max(x0 + 1), (h - h / 5).max(y0 + 1));
    let y_at = |x: u32, y: u32| luma(*crop.get_pixel(x, y)) as f64;
    let (mut sum, mut sq, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let v = y_at(x, y);
            sum += v;
            sq += v * v;
            n += 1.0;
        }
    }
    let mean = sum / n;
    let var = (sq / n - mean * mean).max(0.0);
    let (mut lsum, mut lsq, mut ln) = (0.0f64, 0.0f64, 0.0f64);
    for y in (y0 + 1)..y1.saturating_sub(1) {
        for x in (x0 + 1)..x1.saturating_sub(1) {
            let l = y_at(x - 1, y) + y_at(x + 1, y) + y_at(x, y - 1) + y_at(x, y + 1) - 4.0 * y_at(x, y);
            lsum += l;
            lsq += l * l;
            ln += 1.0;
        }
    }
    let laplacian_var = if ln > 0.0 { (lsq / ln - (lsum / ln).powi(2)).max(0.0) } else { 0.0 };
    LumaStats { mean: mean as f32, std: var.sqrt() as f32, laplacian_var: laplacian_var as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A 10×10 crop; its central 60% is the 6×6 square from (2, 2).
    fn crop(f: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(10, 10, |x, y| {
            let v = f(x, y);
            Rgb([v, v, v])
        })
    }

    #[test]
    fn stats_by_hand() {
        // Columns alternate 100 / 140 inside: mean 120, σ 20. Laplacian at an interior pixel of a
        // 100 column: 140 + 140 + 100 + 100 − 400 = 80; of a 140 column: −80. Variance 6400.
        let stats = central_luma_stats(&crop(|x, _| if x % 2 == 0 { 100 } else { 140 }));
        assert_eq!((stats.mean, stats.std, stats.laplacian_var), (120.0, 20.0, 6400.0));
    }

    #[test]
    fn the_formula_by_hand() {
        // The same crop: brightness 1 (50 ≤ 120 ≤ 200), contrast (20 − 6) / 18 = 0.7778,
        // sharpness 6400 / 400 = 16 ≥ 0.02 → 1. Detector 0.90 → (0.90 − 0.70) / 0.25 = 0.8;
        // face side 40 → (40 − 20) / 40 = 0.5. Score 0.8 · 0.5 · 0.7778 = 0.3111.
        let q = face_quality(Some(0.90), 40.0, &crop(|x, _| if x % 2 == 0 { 100 } else { 140 }));
        assert!((q.detector - 0.8).abs() < 1e-6 && (q.size - 0.5).abs() < 1e-6, "{q:?}");
        assert_eq!((q.brightness, q.sharpness), (1.0, 1.0));
        assert!((q.contrast - 14.0 / 18.0).abs() < 1e-6);
        assert!((q.score - 0.8 * 0.5 * 14.0 / 18.0).abs() < 1e-6, "{}", q.score);
    }

    #[test]
    fn sharpness_by_hand() {
        // A smooth ramp 100 + 2x: σ² of x in 2..8 → 4 · 35/12 = 11.67 (σ 3.416); the Laplacian
        // of a linear ramp is 0 everywhere: r = 0 → sharpness 0, whatever the contrast.
        let stats = central_luma_stats(&crop(|x, _| 100 + 2 * x as u8));
        assert!((stats.std - 3.416).abs() < 1e-3 && stats.laplacian_var == 0.0, "{stats:?}");
        assert_eq!(face_quality(Some(0.99), 100.0, &crop(|x, _| 100 + 2 * x as u8)).sharpness, 0.0);
    }

    #[test]
    fn flat_dark_and_whole_image_faces_score_low() {
        // A flat crop has no contrast and no sharpness: 0.
        assert_eq!(face_quality(Some(0.99), 100.0, &crop(|_, _| 128)).score, 0.0);
        // Very dark (mean ≈ 11): brightness 0.
        let dark = face_quality(Some(0.99), 100.0, &crop(|x, _| if x % 2 == 0 { 2 } else { 20 }));
        assert_eq!(dark.brightness, 0.0);
        // A whole-image face: detector term 0.5, the rest from the pixels.
        let whole = face_quality(None, 100.0, &crop(|x, _| if x % 2 == 0 { 60 } else { 160 }));
        assert_eq!(whole.detector, WHOLE_IMAGE_DETECTOR_TERM);
        assert_eq!(whole.score, 0.5);
    }
}
