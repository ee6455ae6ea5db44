//! Photometric alterations of a picture: what a dark room, light from one side, a cheap camera
//! or a distant face do to pixels. The hard-conditions evaluation set makes its probes with them
//! (`fdb::eval::hard`), and retraining makes augmented views with them (`train::augment`), so
//! the domain a model is trained for and the one it is measured on are made the same way.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::Rng;

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

impl Ramp {
    /// A direction drawn from `rng`: each side half as often as a diagonal.
    pub fn random(rng: &mut impl Rng) -> Self {
        match rng.gen_range(0..4) {
            0 => Self::LeftToRight,
            1 => Self::RightToLeft,
            _ => Self::Diagonal { flip_x: rng.gen_bool(0.5), flip_y: rng.gen_bool(0.5) },
        }
    }
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

/// Multiplies by a linear ramp from 1.0 on the lit side to `floor` on the other.
pub fn ramp(photo: &RgbImage, direction: Ramp, floor: f32) -> RgbImage {
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
        let factor = 1.0 - (1.0 - floor) * t;
        Rgb(c.map(|v| (v as f32 * factor).round() as u8))
    })
}

/// Contrast scaled by `factor` around the picture's mean level (< 1 flattens: haze, a dim screen).
pub fn contrast(photo: &RgbImage, factor: f32) -> RgbImage {
    let count = (photo.width() * photo.height() * 3).max(1) as f32;
    let mean = photo.as_raw().iter().map(|&v| v as f32).sum::<f32>() / count;
    map_pixels(photo, |_, _, Rgb(c)| Rgb(c.map(|v| (mean + (v as f32 - mean) * factor).round().clamp(0.0, 255.0) as u8)))
}

/// A Gaussian blur of standard deviation `sigma` pixels (focus, motion, a cheap lens).
pub fn blur(photo: &RgbImage, sigma: f32) -> RgbImage {
    imageops::blur(photo, sigma)
}

/// The picture saved as a JPEG of `quality` (1–100) and read back: blocks and ringing.
pub fn jpeg_quality(photo: &RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    let encoded = JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100)).encode_image(photo);
    // Encoding a plain RGB buffer into memory does not fail; should it, the picture stays as it was.
    match encoded.ok().and_then(|_| image::load_from_memory(&bytes).ok()) {
        Some(decoded) => decoded.to_rgb8(),
        None => photo.clone(),
    }
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
        let out = ramp(&img, Ramp::LeftToRight, 0.05);
        assert_eq!(out.get_pixel(0, 1), &Rgb([200, 200, 200]));
        assert_eq!(out.get_pixel(10, 1), &Rgb([10, 10, 10])); // 200 · 0.05
        assert_eq!(out.get_pixel(5, 1), &Rgb([105, 105, 105])); // 200 · 0.525
        let diag = ramp(&img, Ramp::Diagonal { flip_x: true, flip_y: false }, 0.05);
        assert_eq!(diag.get_pixel(10, 0), &Rgb([200, 200, 200]));
        assert_eq!(diag.get_pixel(0, 2), &Rgb([10, 10, 10]));
        assert_eq!(ramp(&img, Ramp::RightToLeft, 0.5).get_pixel(0, 0), &Rgb([100, 100, 100]));
    }

    #[test]
    fn grayscale_uses_rec601_luma() {
        let img = RgbImage::from_pixel(1, 1, Rgb([100, 150, 200]));
        // 29.9 + 88.05 + 22.8 = 140.75 → 141.
        assert_eq!(grayscale(&img).get_pixel(0, 0), &Rgb([141, 141, 141]));
    }

    #[test]
    fn contrast_scales_around_the_mean() {
        // Mean of {100, 200} × 3 channels = 150; halving the contrast gives 125 and 175.
        let img = RgbImage::from_fn(2, 1, |x, _| if x == 0 { Rgb([100; 3]) } else { Rgb([200; 3]) });
        let out = contrast(&img, 0.5);
        assert_eq!((out.get_pixel(0, 0), out.get_pixel(1, 0)), (&Rgb([125; 3]), &Rgb([175; 3])));
    }

    #[test]
    fn blur_and_jpeg_keep_the_size_and_lose_detail() {
        let stripes = RgbImage::from_fn(64, 64, |x, _| if x % 2 == 0 { Rgb([255; 3]) } else { Rgb([0; 3]) });
        // Away from the borders, which a blur pads.
        let spread = |img: &RgbImage| {
            let v: Vec<i32> = (16..48).flat_map(|y| (16..48).map(move |x| (x, y))).map(|(x, y)| img.get_pixel(x, y)[0] as i32).collect();
            v.iter().max().unwrap() - v.iter().min().unwrap()
        };
        let blurred = blur(&stripes, 2.0);
        assert_eq!(blurred.dimensions(), (64, 64));
        assert!(spread(&blurred) < 60, "{}", spread(&blurred));
        // Quality 10 keeps the level of a smooth picture with noise on it, not its pixels.
        let noisy = RgbImage::from_fn(64, 64, |x, y| Rgb([(2 * x + (x * 7 + y * 13) % 17) as u8, (3 * y) as u8, 90]));
        let jpeg = jpeg_quality(&noisy, 10);
        assert_eq!(jpeg.dimensions(), (64, 64));
        let changed = noisy.pixels().zip(jpeg.pixels()).filter(|(a, b)| a != b).count();
        assert!(changed > 64 * 64 / 2, "{changed} pixels changed");
        let mean = |img: &RgbImage| img.as_raw().iter().map(|&v| v as f32).sum::<f32>() / img.as_raw().len() as f32;
        assert!((mean(&jpeg) - mean(&noisy)).abs() < 3.0);
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
