//! Augmented views of a stored 160×160 crop, for training a head on a frozen trunk.
//!
//! A view is a pure function of (crop, face seed, view index), so the trunk's features of
//! every view can be computed once and cached. Views come in pairs, a picture and its mirror:
//! 0 the crop, 1 its mirror, then for each jitter k = 0, 1, …: 2 + 2k a seeded shifted and
//! scaled crop, 3 + 2k its mirror.

use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::{Rng, SeedableRng};

/// The smallest side of a jittered crop, as a fraction of the original: small enough to move
/// the face by a few pixels, large enough to keep the whole face (MTCNN's margin is 32 px).
const MIN_SCALE: f32 = 0.88;

/// How many views a face has with `jitter` jittered crops.
pub fn view_count(jitter: usize) -> usize {
    2 + 2 * jitter
}

/// View `view` of `crop`; `face_seed` makes each face's jitter its own and repeatable.
pub fn render_view(crop: &RgbImage, face_seed: u64, view: usize) -> RgbImage {
    let picture = match view / 2 {
        0 => crop.clone(),
        k => jittered(crop, face_seed, k - 1),
    };
    if view % 2 == 1 {
        imageops::flip_horizontal(&picture)
    } else {
        picture
    }
}

/// A random square of 88–100% of the side at a random offset, resized back to the crop's size.
fn jittered(crop: &RgbImage, face_seed: u64, k: usize) -> RgbImage {
    let mut rng = rand::rngs::StdRng::seed_from_u64(face_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64);
    let (w, h) = crop.dimensions();
    let side_of = |full: u32, scale: f32| ((full as f32 * scale).round() as u32).clamp(1, full);
    let scale = rng.gen_range(MIN_SCALE..=1.0);
    let (cw, ch) = (side_of(w, scale), side_of(h, scale));
    let x = rng.gen_range(0..=w - cw);
    let y = rng.gen_range(0..=h - ch);
    let cut = imageops::crop_imm(crop, x, y, cw, ch).to_image();
    imageops::resize(&cut, w, h, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> RgbImage {
        RgbImage::from_fn(160, 160, |x, y| image::Rgb([x as u8, y as u8, 7]))
    }

    #[test]
    fn views_are_the_crop_its_mirror_and_repeatable_jitters() {
        let crop = gradient();
        assert_eq!(view_count(0), 2);
        assert_eq!(view_count(2), 6);
        assert_eq!(render_view(&crop, 1, 0), crop);
        assert_eq!(render_view(&crop, 1, 1), imageops::flip_horizontal(&crop));
        let jitter = render_view(&crop, 1, 2);
        assert_eq!(jitter.dimensions(), (160, 160));
        assert_ne!(jitter, crop);
        assert_eq!(render_view(&crop, 1, 2), jitter, "a view is a pure function of its inputs");
        assert_eq!(render_view(&crop, 1, 3), imageops::flip_horizontal(&jitter));
        assert_ne!(render_view(&crop, 2, 2), jitter, "each face jitters its own way");
        assert_ne!(render_view(&crop, 1, 4), jitter, "each jitter differs");
    }

    #[test]
    fn a_jitter_stays_close_to_the_crop() {
        // On a gradient, shifting and scaling by at most 12% moves a pixel's value by at most
        // 12% of the range (about 20 levels) plus rounding.
        let crop = gradient();
        let jitter = render_view(&crop, 9, 2);
        let worst = crop.pixels().zip(jitter.pixels()).map(|(a, b)| (a[0] as i32 - b[0] as i32).abs()).max().unwrap();
        assert!(worst <= 21, "{worst}");
    }
}
