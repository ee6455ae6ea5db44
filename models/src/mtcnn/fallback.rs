//! Finding a face in photos that are dark, unevenly lit, or already cropped tightly to it (ID
//! photos, face datasets, earlier fdb crops). When the plain pass finds nothing, the detector
//! looks again at a contrast-normalised copy (a dark face has too little contrast for P-Net),
//! then at a copy padded with a flat border (MTCNN needs some context around a face), then at
//! the padded normalised copy; as a last resort, and only when the caller allows it, the whole
//! image is taken as the face. Boxes found on a normalised copy are boxes in the photo itself:
//! the face is cut from the original pixels.

use super::{Detection, Mtcnn};
use crate::align::TEMPLATE_112;
use crate::contrast;
use candle_core::Result;
use image::{Rgb, RgbImage};

/// Border added on every side for the retry, as a fraction of the longer side.
const PAD_FRACTION: f32 = 0.25;
/// Flat mid-grey: a mirrored border would add half faces for the detector to find.
const PAD_COLOUR: Rgb<u8> = Rgb([127, 127, 127]);
/// Aspect ratios (width / height) that a tight face crop plausibly has: square or portrait.
const FACE_CROP_ASPECT: std::ops::RangeInclusive<f32> = 0.6..=1.1;

/// How the faces in a [`FoundFaces`] were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSource {
    /// The detector found them in the image as given.
    Detected,
    /// The detector found them in a contrast-normalised copy (a dark or unevenly lit photo).
    DetectedAfterContrast,
    /// The detector found them after the image was padded (a tight crop).
    DetectedAfterPadding,
    /// The detector found them in the padded, contrast-normalised copy (a tight, dark crop).
    DetectedAfterContrastAndPadding,
    /// Nothing was detected; the whole image stands in for the face (caller allowed it).
    WholeImage,
    /// No face: `faces` is empty.
    NotFound,
}

impl FaceSource {
    /// The name answers carry (`"source": "…"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaceSource::Detected => "detected",
            FaceSource::DetectedAfterContrast => "detected_after_contrast",
            FaceSource::DetectedAfterPadding => "detected_after_padding",
            FaceSource::DetectedAfterContrastAndPadding => "detected_after_contrast_and_padding",
            FaceSource::WholeImage => "whole_image",
            FaceSource::NotFound => "not_found",
        }
    }
}

/// How the detector's retry normalises contrast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    /// Global histogram equalisation of luminance.
    Equalize,
    /// CLAHE on an 8 × 8 grid, clip limit 2.
    Clahe,
    /// A γ that brings the mean luminance to mid-grey.
    GammaLift,
}

impl Contrast {
    /// The retry's normaliser (chosen on the hard-conditions tuning split, see docs/benchmarks.md).
    pub const DEFAULT: Contrast = Contrast::Equalize;

    /// The normalised copy of `img`.
    pub fn apply(self, img: &RgbImage) -> RgbImage {
        match self {
            Contrast::Equalize => contrast::equalize_luma(img),
            Contrast::Clahe => contrast::clahe_luma(img, 8, 2.0),
            Contrast::GammaLift => contrast::gamma_lift(img),
        }
    }
}

/// The faces of a photo and how they were found.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundFaces {
    /// Empty (with `NotFound`) when nothing was detected and the whole-image fallback was not
    /// allowed or the image is not shaped like a face crop.
    pub faces: Vec<Detection>,
    /// Found as given, on the padded copy, as the whole image, or not at all.
    pub source: FaceSource,
}

impl Mtcnn {
    /// Detects faces, retrying on a contrast-normalised copy, a padded copy and a padded
    /// normalised copy when none is found; with `allow_whole_image` a face-crop-shaped image
    /// with no detection yields one whole-image face.
    pub fn detect_with_fallback(&self, img: &RgbImage, allow_whole_image: bool) -> Result<FoundFaces> {
        let faces = self.detect(img)?;
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::Detected });
        }
        self.retry(img, Contrast::DEFAULT, allow_whole_image)
    }

    /// The retries of [`Mtcnn::detect_with_fallback`] for a photo whose plain pass found nothing.
    pub fn retry(&self, img: &RgbImage, contrast: Contrast, allow_whole_image: bool) -> Result<FoundFaces> {
        let normalised = contrast.apply(img);
        let faces = self.detect(&normalised)?;
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::DetectedAfterContrast });
        }
        let (padded, pad) = pad_image(img);
        let faces = unpad(self.detect(&padded)?, pad, img.width(), img.height());
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::DetectedAfterPadding });
        }
        let (padded, pad) = pad_image(&normalised);
        let faces = unpad(self.detect(&padded)?, pad, img.width(), img.height());
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::DetectedAfterContrastAndPadding });
        }
        Ok(if allow_whole_image && is_face_crop_shaped(img) {
            FoundFaces { faces: vec![whole_image_face(img.width(), img.height())], source: FaceSource::WholeImage }
        } else {
            FoundFaces { faces: Vec::new(), source: FaceSource::NotFound }
        })
    }
}

/// Square or portrait, as a photo that is already a face crop is.
pub fn is_face_crop_shaped(img: &RgbImage) -> bool {
    FACE_CROP_ASPECT.contains(&(img.width() as f32 / img.height().max(1) as f32))
}

/// The image centred on a flat border; returns the border width.
pub fn pad_image(img: &RgbImage) -> (RgbImage, u32) {
    let pad = (img.width().max(img.height()) as f32 * PAD_FRACTION).round() as u32;
    let mut out = RgbImage::from_pixel(img.width() + 2 * pad, img.height() + 2 * pad, PAD_COLOUR);
    image::imageops::replace(&mut out, img, pad as i64, pad as i64);
    (out, pad)
}

/// Moves detections back to the unpadded image, dropping those centred in the border.
fn unpad(faces: Vec<Detection>, pad: u32, width: u32, height: u32) -> Vec<Detection> {
    let p = pad as f32;
    faces
        .into_iter()
        .map(|d| Detection {
            bbox: [d.bbox[0] - p, d.bbox[1] - p, d.bbox[2] - p, d.bbox[3] - p],
            landmarks: d.landmarks.map(|[x, y]| [x - p, y - p]),
            ..d
        })
        .filter(|d| {
            let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
            (0.0..width as f32).contains(&cx) && (0.0..height as f32).contains(&cy)
        })
        .collect()
}

/// The whole frame as a face of probability 0, landmarks where a centred face would have them.
fn whole_image_face(width: u32, height: u32) -> Detection {
    let (w, h) = (width as f32, height as f32);
    Detection {
        bbox: [0.0, 0.0, w, h],
        prob: 0.0,
        landmarks: TEMPLATE_112.map(|[x, y]| [x / 112.0 * w, y / 112.0 * h]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpad_shifts_back_and_drops_border_faces() {
        let face = |x: f32| Detection { bbox: [x, 30.0, x + 20.0, 50.0], prob: 0.9, landmarks: [[x + 5.0, 35.0]; 5] };
        // After unpadding one is centred at (25, 15), inside; the other at x = -15, outside.
        let kept = unpad(vec![face(40.0), face(0.0)], 25, 100, 100);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].bbox, [15.0, 5.0, 35.0, 25.0]);
        assert_eq!(kept[0].landmarks[0], [20.0, 10.0]);
    }

    #[test]
    fn pad_image_centres_the_original() {
        let img = RgbImage::from_pixel(8, 4, Rgb([1, 2, 3]));
        let (out, pad) = pad_image(&img);
        assert_eq!(pad, 2);
        assert_eq!(out.dimensions(), (12, 8));
        assert_eq!(out.get_pixel(2, 2), &Rgb([1, 2, 3]));
        assert_eq!(out.get_pixel(1, 2), &PAD_COLOUR);
    }
}
