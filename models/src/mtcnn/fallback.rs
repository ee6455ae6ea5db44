//! Finding a face in photos that are already cropped tightly to it (ID photos, face datasets,
//! earlier fdb crops). MTCNN needs some context around a face, so when the plain pass finds
//! nothing the image is padded with a flat border and searched again; as a last resort, and
//! only when the caller allows it, the whole image is taken as the face.

use super::{Detection, Mtcnn};
use crate::align::TEMPLATE_112;
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
    /// The detector found them after the image was padded (a tight crop).
    DetectedAfterPadding,
    /// Nothing was detected; the whole image stands in for the face (caller allowed it).
    WholeImage,
    /// No face: `faces` is empty.
    NotFound,
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
    /// Detects faces, retrying on a padded copy when none is found; with `allow_whole_image`
    /// a face-crop-shaped image with no detection yields one whole-image face.
    pub fn detect_with_fallback(&self, img: &RgbImage, allow_whole_image: bool) -> Result<FoundFaces> {
        let faces = self.detect(img)?;
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::Detected });
        }
        let (padded, pad) = pad_image(img);
        let faces = unpad(self.detect(&padded)?, pad, img.width(), img.height());
        if !faces.is_empty() {
            return Ok(FoundFaces { faces, source: FaceSource::DetectedAfterPadding });
        }
        let aspect = img.width() as f32 / img.height().max(1) as f32;
        Ok(if allow_whole_image && FACE_CROP_ASPECT.contains(&aspect) {
            FoundFaces { faces: vec![whole_image_face(img.width(), img.height())], source: FaceSource::WholeImage }
        } else {
            FoundFaces { faces: Vec::new(), source: FaceSource::NotFound }
        })
    }
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
