//! The alterations of the hard-conditions set, each a pure function of the photo (and of the
//! face box the detector found in the clean photo, for crops and resolution).

use fdb_models::photometric::{gamma, grayscale, low_res, ramp, Ramp};
use image::imageops;
use image::RgbImage;
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

/// Applies `condition` to `photo`, whose face the clean detector boxed at `bbox`; `seed` draws
/// the condition's own parameters (γ, ramp).
pub fn alter(photo: &RgbImage, bbox: [f32; 4], condition: Condition, seed: u64) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(seed);
    match condition {
        Condition::TightBox => crop_to(photo, bbox),
        Condition::TightInside => crop_to(photo, shrink(bbox, INSIDE_FRACTION)),
        Condition::Grayscale => grayscale(photo),
        Condition::GammaDark => gamma(photo, rng.gen_range(GAMMA_RANGE)),
        Condition::OneSidedLight => ramp(photo, Ramp::random(&mut rng), RAMP_FLOOR),
        Condition::LowRes => low_res(photo, bbox[2] - bbox[0], LOW_RES_FACE),
        Condition::TightDarkGray => {
            let crop = grayscale(&crop_to(photo, bbox));
            let lit = ramp(&crop, Ramp::random(&mut rng), RAMP_FLOOR);
            gamma(&lit, rng.gen_range(GAMMA_RANGE))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

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
}
