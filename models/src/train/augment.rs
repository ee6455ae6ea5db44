//! Augmented views of a stored 160×160 crop, for training a head on a frozen trunk.
//!
//! A view is a pure function of (crop, face seed, view index, augmentation), so the trunk's
//! features of every view can be computed once and cached. Views come in pairs, a picture and
//! its mirror: 0 the crop, 1 its mirror, then for each jitter k = 0, 1, …: 2 + 2k a seeded
//! shifted and scaled crop, 3 + 2k its mirror. An `Augment` other than `Geometric` also alters
//! each jittered crop's pixels (`crate::photometric`): that is how a small gallery of a dark
//! room or a cheap camera is given more of its domain.

use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::photometric::{self, Ramp};

/// What a jittered view changes besides where the crop sits (`fdb retrain --augment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Augment {
    /// Shift and scale only.
    #[default]
    Geometric,
    /// And light: 1–2 of γ darkening, one-sided light, flattened contrast, grayscale.
    Light,
    /// And camera: 1–2 of blur, JPEG artefacts, low resolution.
    Camera,
    /// And 1–3 of all of the above.
    All,
}

/// One photometric alteration, its strength drawn per view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alteration {
    Gamma,
    Ramp,
    Contrast,
    Grayscale,
    Blur,
    Jpeg,
    LowRes,
}

const LIGHT: &[Alteration] = &[Alteration::Gamma, Alteration::Ramp, Alteration::Contrast, Alteration::Grayscale];
const CAMERA: &[Alteration] = &[Alteration::Blur, Alteration::Jpeg, Alteration::LowRes];
const ALL: &[Alteration] = &[
    Alteration::Gamma,
    Alteration::Ramp,
    Alteration::Contrast,
    Alteration::Grayscale,
    Alteration::Blur,
    Alteration::Jpeg,
    Alteration::LowRes,
];

impl Augment {
    /// The preset's name, as `--augment` takes it and the trunk-feature cache is keyed by.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Geometric => "geometric",
            Self::Light => "light",
            Self::Camera => "camera",
            Self::All => "all",
        }
    }

    /// The alterations a view draws from, and at most how many it takes.
    fn alterations(self) -> (&'static [Alteration], usize) {
        match self {
            Self::Geometric => (&[], 0),
            Self::Light => (LIGHT, 2),
            Self::Camera => (CAMERA, 2),
            Self::All => (ALL, 3),
        }
    }
}

impl std::str::FromStr for Augment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Geometric, Self::Light, Self::Camera, Self::All]
            .into_iter()
            .find(|a| a.tag() == s)
            .ok_or_else(|| format!("unknown --augment {s:?}: use geometric, light, camera or all"))
    }
}

/// The smallest side of a jittered crop, as a fraction of the original: small enough to move
/// the face by a few pixels, large enough to keep the whole face (MTCNN's margin is 32 px).
const MIN_SCALE: f32 = 0.88;

/// How many views a face has with `jitter` jittered crops.
pub fn view_count(jitter: usize) -> usize {
    2 + 2 * jitter
}

/// View `view` of `crop`; `face_seed` makes each face's jitter its own and repeatable.
pub fn render_view(crop: &RgbImage, face_seed: u64, view: usize, augment: Augment) -> RgbImage {
    let picture = match view / 2 {
        0 => crop.clone(),
        k => altered(&jittered(crop, face_seed, k - 1), face_seed, k - 1, augment),
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

/// The jittered crop `k` of a face with its preset's alterations, drawn from a generator of
/// its own (so that `Geometric` views stay what they were, and the cache stays valid).
fn altered(picture: &RgbImage, face_seed: u64, k: usize, augment: Augment) -> RgbImage {
    let (choices, most) = augment.alterations();
    if most == 0 {
        return picture.clone();
    }
    let mut rng = StdRng::seed_from_u64(face_seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ ((k as u64) << 8) ^ augment as u64);
    let mut pool = choices.to_vec();
    let mut out = picture.clone();
    for _ in 0..rng.gen_range(1..=most) {
        let alteration = pool.swap_remove(rng.gen_range(0..pool.len()));
        out = match alteration {
            Alteration::Gamma => photometric::gamma(&out, rng.gen_range(1.5..=4.0)),
            Alteration::Ramp => photometric::ramp(&out, Ramp::random(&mut rng), rng.gen_range(0.05..=0.5)),
            Alteration::Contrast => photometric::contrast(&out, rng.gen_range(0.3..=0.8)),
            Alteration::Grayscale => photometric::grayscale(&out),
            Alteration::Blur => photometric::blur(&out, rng.gen_range(0.8..=2.5)),
            Alteration::Jpeg => photometric::jpeg_quality(&out, rng.gen_range(8..=40)),
            // The crop is the face with MTCNN's margin: 24–64 px for it is a 16–40 px face.
            Alteration::LowRes => photometric::low_res(&out, out.width() as f32, rng.gen_range(24.0..=64.0)),
        };
    }
    out
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
        assert_eq!(render_view(&crop, 1, 0, Augment::Geometric), crop);
        assert_eq!(render_view(&crop, 1, 1, Augment::Geometric), imageops::flip_horizontal(&crop));
        let jitter = render_view(&crop, 1, 2, Augment::Geometric);
        assert_eq!(jitter.dimensions(), (160, 160));
        assert_ne!(jitter, crop);
        assert_eq!(render_view(&crop, 1, 2, Augment::Geometric), jitter, "a view is a pure function of its inputs");
        assert_eq!(render_view(&crop, 1, 3, Augment::Geometric), imageops::flip_horizontal(&jitter));
        assert_ne!(render_view(&crop, 2, 2, Augment::Geometric), jitter, "each face jitters its own way");
        assert_ne!(render_view(&crop, 1, 4, Augment::Geometric), jitter, "each jitter differs");
    }

    #[test]
    fn a_jitter_stays_close_to_the_crop() {
        // On a gradient, shifting and scaling by at most 12% moves a pixel's value by at most
        // 12% of the range (about 20 levels) plus rounding.
        let crop = gradient();
        let jitter = render_view(&crop, 9, 2, Augment::Geometric);
        let worst = crop.pixels().zip(jitter.pixels()).map(|(a, b)| (a[0] as i32 - b[0] as i32).abs()).max().unwrap();
        assert!(worst <= 21, "{worst}");
    }

    /// A picture with shadows, mid-tones and colour, so that every alteration shows.
    fn face_like() -> RgbImage {
        RgbImage::from_fn(160, 160, |x, y| image::Rgb([(x + y / 2) as u8, (120 + x / 4) as u8, (200 - y / 2) as u8]))
    }

    fn mean(img: &RgbImage) -> f32 {
        img.as_raw().iter().map(|&v| v as f32).sum::<f32>() / img.as_raw().len() as f32
    }

    #[test]
    fn geometric_views_are_the_jitters_alone_and_other_presets_alter_them() {
        let crop = face_like();
        for preset in ["light", "camera", "all"] {
            let augment: Augment = preset.parse().unwrap();
            assert_eq!(augment.tag(), preset);
            // The crop and its mirror are never altered: they are what the database embeds.
            assert_eq!(render_view(&crop, 5, 0, augment), crop);
            assert_eq!(render_view(&crop, 5, 1, augment), imageops::flip_horizontal(&crop));
            for view in [2, 4, 6] {
                let plain = render_view(&crop, 5, view, Augment::Geometric);
                let altered = render_view(&crop, 5, view, augment);
                assert_ne!(altered, plain, "{preset} view {view}");
                assert_eq!(render_view(&crop, 5, view, augment), altered, "{preset}: a view is a pure function");
                assert_eq!(render_view(&crop, 5, view + 1, augment), imageops::flip_horizontal(&altered));
            }
        }
        assert!("dark".parse::<Augment>().unwrap_err().contains("geometric, light, camera or all"));
    }

    #[test]
    fn light_views_are_darker_flatter_or_grey_and_camera_views_keep_the_mean() {
        let crop = face_like();
        let grey = |img: &RgbImage| img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]);
        let spread = |img: &RgbImage| {
            let m = mean(img);
            img.as_raw().iter().map(|&v| (v as f32 - m).abs()).sum::<f32>() / img.as_raw().len() as f32
        };
        for seed in 0..20 {
            let plain = render_view(&crop, seed, 2, Augment::Geometric);
            let light = render_view(&crop, seed, 2, Augment::Light);
            // γ > 1 and a ramp darken, a contrast factor < 1 flattens, grayscale drops colour:
            // every light view shows at least one of them.
            assert!(
                mean(&light) < mean(&plain) - 3.0 || spread(&light) < 0.9 * spread(&plain) || grey(&light),
                "seed {seed}: mean {} → {}, spread {} → {}",
                mean(&plain),
                mean(&light),
                spread(&plain),
                spread(&light)
            );
            // Blur, JPEG and resolution move detail, not the level.
            let camera = render_view(&crop, seed, 2, Augment::Camera);
            assert!((mean(&camera) - mean(&plain)).abs() < 3.0, "seed {seed}: {} vs {}", mean(&camera), mean(&plain));
        }
    }
}
