//! The evaluator's embeddings from the real pipeline: decode → detect → align → embed.
//!
//! As in facenet's LFW protocol, a photo with no detectable face is not dropped (that would
//! shift the folds): its central region stands in, the way `align_dataset_mtcnn` falls back.

use std::collections::HashMap;
use std::path::PathBuf;

use image::RgbImage;

use crate::engine::{Alignment, Engine, FaceChoice, Light, Photo, WholeImage};
use crate::eval::{EmbedSource, SourceId};

/// The evaluator's embeddings from the real pipeline (decode, detect, align, embed), with facenet's central-region fallback.
pub struct EngineSource<'a> {
    engine: &'a Engine,
    alignment: Alignment,
    /// Crops of the last pass, so the mirrored pass does not detect again.
    crops: HashMap<PathBuf, RgbImage>,
    /// Photos where the central region stood in for an undetected face.
    pub fallbacks: Vec<PathBuf>,
}

impl<'a> EngineSource<'a> {
    /// A source that runs `engine` and aligns with `alignment`.
    pub fn new(engine: &'a Engine, alignment: Alignment) -> Self {
        Self { engine, alignment, crops: HashMap::new(), fallbacks: Vec::new() }
    }

    /// The aligned crop of each photo (kept for the next call): the central face, or the
    /// central region where none is found (listed in `fallbacks`); an error names why a photo
    /// could not be read.
    pub fn crops(&mut self, paths: &[PathBuf]) -> Vec<Result<RgbImage, String>> {
        let missing: Vec<PathBuf> = paths.iter().filter(|p| !self.crops.contains_key(*p)).cloned().collect();
        let decoded = Engine::decode_files(&missing);
        let photos: Vec<&Photo> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let found = match self.engine.find_faces(&photos, FaceChoice::One { strict: false }, self.alignment, WholeImage::Never) {
            Ok(found) => found,
            Err(e) => return paths.iter().map(|_| Err(e.to_string())).collect(),
        };
        let mut errors: HashMap<PathBuf, String> = HashMap::new();
        let mut found = found.into_iter();
        for (path, photo) in missing.iter().zip(&decoded) {
            match photo {
                Err(e) => {
                    errors.insert(path.clone(), e.to_string());
                }
                Ok(photo) => {
                    let crop = match found.next().expect("one result per decoded photo") {
                        Ok(mut faces) => faces.remove(0).crop,
                        Err(_) => {
                            self.fallbacks.push(path.clone());
                            central_region(&photo.image)
                        }
                    };
                    self.crops.insert(path.clone(), crop);
                }
            }
        }
        paths
            .iter()
            .map(|p| self.crops.get(p).cloned().ok_or_else(|| errors.remove(p).unwrap_or_else(|| "not decoded".into())))
            .collect()
    }
}

impl EmbedSource for EngineSource<'_> {
    fn id(&self) -> SourceId {
        let align = match self.alignment {
            Alignment::Crop => "crop",
            Alignment::Warp => "warp",
        };
        let light = match self.engine.light() {
            Light::Off => String::new(),
            other => format!("/light-{}", other.tag()),
        };
        SourceId { model: self.engine.model_id().to_string(), align: format!("{align}/{}{light}", self.engine.detection_id()) }
    }

    fn embed(&mut self, paths: &[PathBuf], mirrored: bool) -> Vec<Result<Vec<f32>, String>> {
        let crops = self.crops(paths);
        let ok: Vec<RgbImage> = crops
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|c| if mirrored { image::imageops::flip_horizontal(c) } else { c.clone() })
            .collect();
        let embedded = match self.engine.embed(&ok) {
            Ok(e) => e,
            Err(e) => return paths.iter().map(|_| Err(e.to_string())).collect(),
        };
        let mut embedded = embedded.into_iter();
        crops.into_iter().map(|c| c.map(|_| embedded.next().expect("one embedding per crop"))).collect()
    }
}

/// The central 64% of the shorter side, resized to 160×160: for LFW's 250×250 photos exactly
/// facenet's fallback crop `img[45:205, 45:205]`.
pub fn central_region(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let side = ((w.min(h) as f32) * 0.64).round().max(1.0) as u32;
    let region = image::imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side).to_image();
    fdb_models::align::resize_linear(&region, 160, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_of_a_250_pixel_photo_is_facenets_centre_crop() {
        let image = RgbImage::from_fn(250, 250, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let crop = central_region(&image);
        assert_eq!(crop.dimensions(), (160, 160));
        assert_eq!(crop.get_pixel(0, 0), &image::Rgb([45, 45, 0]));
        assert_eq!(crop.get_pixel(159, 159), &image::Rgb([204, 204, 0]));
    }
}
