//! The alterations of the hard-conditions set, each a pure function of the photo (and of the
//! face box the detector found in the clean photo, for crops and resolution).

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Condition;

/// The darkest end of a one-sided lighting ramp (the lit end is 1.0).
pub const RAMP_FLOOR: f32 = 0.05;
/// γ of a darkening is drawn uniformly from this range.
pub const GAMMA_RANGE: std::ops::RangeInclusive<f32> = 2.0..=4.0;
/// The face width of the low-resolution condition, in pixels, before upscaling back.
pub const LOW_RES_FACE: f32 = 40.0;
/// How far inside the detector box the tighter crop cuts, per side, as a fraction of the box.
pub const INSIDE_FRACTION: f32 = 0.10;

/// Which way the light falls off: from the lit side or corner to the opposite one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ramp {
    /// Lit from the left, dark on the right.
    LeftToRight,
    /// Lit from the right, dark on the left.
    RightToLeft,
    /// From the top-left corner to the bottom-right one.
    Diagonal {
        /// Start from the right instead of the left.
        flip_x: bool,
        /// Start from the bottom instead of the top.
        flip_y: bool,
    },
}

/// Applies `condition` to `photo`, whose face the clean detector boxed at `bbox`; `seed` draws
/// the condition's own parameters (γ, ramp).
pub fn alter(photo: &RgbImage, bbox: [f32; 4], condition: Condition, seed: u64) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(seed);
    match condition {
        Condition::TightBox => crop_to(photo, bbox),
        Condition::TightInside => crop_to(photo, shrink(bbox, INSIDE_FRACTION)),
        Condition::Grayscale => grayscale(photo),
        Condition::GammaDark => gamma(photo, rng.gen_range(GAMMA_RANGE)),
        Condition::OneSidedLight => ramp(photo, random_ramp(&mut rng)),
        Condition::LowRes => low_res(photo, bbox[2] - bbox[0], LOW_RES_FACE),
        Condition::TightDarkGray => {
            let crop = grayscale(&crop_to(photo, bbox));
            let lit = ramp(&crop, random_ramp(&mut rng));
            gamma(&lit, rng.gen_range(GAMMA_RANGE))
        }
    }
}

fn random_ramp(rng: &mut StdRng) -> Ramp {
    match rng.gen_range(0..4) {
        0 => Ramp::LeftToRight,
        1 => Ramp::RightToLeft,
        _ => Ramp::Diagonal { flip_x: rng.gen_bool(0.5), flip_y: rng.gen_bool(0.5) },
    }
}

/// `b` moved `fraction` of its width and height inwards on every side.
pub fn shrink(b: [f32; 4], fraction: f32) -> [f32; 4] {
    let (dx, dy) = ((b[2] - b[0]) * fraction, (b[3] - b[1]) * fraction);
    [b[0] + dx, b[1] + dy, b[2] - dx, b[3] - dy]
}

/// The pixels inside `b` (rounded, clipped to the photo; at least one pixel).
pub fn crop_to(photo: &RgbImage, b: [f32; 4]) -> RgbImage {
    let (w, h) = photo.dimensions();
    let clip = |v: f32, max: u32| (v.round().max(0.0) as u32).min(max);
    let (x1, y1) = (clip(b[0], w - 1), clip(b[1], h - 1));
    let (x2, y2) = (clip(b[2], w).max(x1 + 1), clip(b[3], h).max(y1 + 1));
    imageops::crop_imm(photo, x1, y1, x2 - x1, y2 - y1).to_image()
}

/// Rec. 601 luma in all three channels.
pub fn grayscale(photo: &RgbImage) -> RgbImage {
    map_pixels(photo, |_, _, Rgb([r, g, b])| {
        let y = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round().clamp(0.0, 255.0) as u8;
        Rgb([y, y, y])
    })
}

/// Each channel v ↦ 255 · (v / 255)^γ: γ > 1 darkens, the shadows most.
pub fn gamma(photo: &RgbImage, g: f32) -> RgbImage {
    let table: Vec<u8> = (0..256).map(|v| (255.0 * (v as f32 / 255.0).powf(g)).round() as u8).collect();
    map_pixels(photo, |_, _, Rgb(c)| Rgb(c.map(|v| table[v as usize])))
}

/// Multiplies by a linear ramp from 1.0 on the lit side to [`RAMP_FLOOR`] on the other.
pub fn ramp(photo: &RgbImage, direction: Ramp) -> RgbImage {
    let (w, h) = photo.dimensions();
    let (fw, fh) = ((w.max(2) - 1) as f32, (h.max(2) - 1) as f32);
    map_pixels(photo, |x, y, Rgb(c)| {
        let (u, v) = (x as f32 / fw, y as f32 / fh);
        let t = match direction {
            Ramp::LeftToRight => u,
            Ramp::RightToLeft => 1.0 - u,
            Ramp::Diagonal { flip_x, flip_y } => {
                let u = if flip_x { 1.0 - u } else { u };
                let v = if flip_y { 1.0 - v } else { v };
                (u + v) / 2.0
            }
        };
        let factor = 1.0 - (1.0 - RAMP_FLOOR) * t;
        Rgb(c.map(|v| (v as f32 * factor).round() as u8))
    })
}

/// The photo shrunk so that a face `face_width` wide becomes `target` pixels, then scaled back
/// up to its size: what a distant face looks like after an app enlarges it.
pub fn low_res(photo: &RgbImage, face_width: f32, target: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let scale = (target / face_width.max(1.0)).min(1.0);
    let (sw, sh) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
    let small = imageops::resize(photo, sw, sh, FilterType::Triangle);
    imageops::resize(&small, w, h, FilterType::Triangle)
}

fn map_pixels(photo: &RgbImage, f: impl Fn(u32, u32, Rgb<u8>) -> Rgb<u8>) -> RgbImage {
    let mut out = photo.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        *p = f(x, y, *p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_by_hand() {
        let img = RgbImage::from_pixel(1, 1, Rgb([255, 128, 0]));
        // 255·(128/255)² = 64.25 → 64.
        assert_eq!(gamma(&img, 2.0).get_pixel(0, 0), &Rgb([255, 64, 0]));
    }

    #[test]
    fn ramp_goes_from_full_to_the_floor() {
        let img = RgbImage::from_pixel(11, 3, Rgb([200, 200, 200]));
        let out = ramp(&img, Ramp::LeftToRight);
        assert_eq!(out.get_pixel(0, 1), &Rgb([200, 200, 200]));
        assert_eq!(out.get_pixel(10, 1), &Rgb([10, 10, 10])); // 200 · 0.05
        assert_eq!(out.get_pixel(5, 1), &Rgb([105, 105, 105])); // 200 · 0.525
        let diag = ramp(&img, Ramp::Diagonal { flip_x: true, flip_y: false });
        assert_eq!(diag.get_pixel(10, 0), &Rgb([200, 200, 200]));
        assert_eq!(diag.get_pixel(0, 2), &Rgb([10, 10, 10]));
    }

    #[test]
    fn grayscale_uses_rec601_luma() {
        let img = RgbImage::from_pixel(1, 1, Rgb([100, 150, 200]));
        // 29.9 + 88.05 + 22.8 = 140.75 → 141.
        assert_eq!(grayscale(&img).get_pixel(0, 0), &Rgb([141, 141, 141]));
    }

    #[test]
    fn crops_at_and_inside_the_box() {
        let img = RgbImage::from_fn(100, 80, |x, y| Rgb([x as u8, y as u8, 0]));
        let c = crop_to(&img, [10.0, 20.0, 60.0, 70.0]);
        assert_eq!(c.dimensions(), (50, 50));
        assert_eq!(c.get_pixel(0, 0), &Rgb([10, 20, 0]));
        assert_eq!(crop_to(&img, shrink([10.0, 20.0, 60.0, 70.0], 0.1)).dimensions(), (40, 40));
        // A box past the frame is clipped to it.
        assert_eq!(crop_to(&img, [-5.0, -5.0, 200.0, 200.0]).dimensions(), (100, 80));
    }

    #[test]
    fn low_res_keeps_the_size_and_loses_detail() {
        let img = RgbImage::from_fn(200, 200, |x, _| if x % 2 == 0 { Rgb([255, 255, 255]) } else { Rgb([0, 0, 0]) });
        let out = low_res(&img, 100.0, 40.0);
        assert_eq!(out.dimensions(), (200, 200));
        // One-pixel stripes cannot survive a 2.5× reduction: the middle is near grey.
        let v = out.get_pixel(100, 100)[0];
        assert!((90..=165).contains(&v), "{v}");
    }
}
