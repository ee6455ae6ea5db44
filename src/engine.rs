//! The networks behind the facade: decode → detect → align → embed.

use std::path::{Path, PathBuf};


use candle_core::Device;
use fdb_models::align;
use fdb_models::detect_size;
use fdb_models::facenet::Embedder;
use fdb_models::imageio;
use fdb_models::mtcnn::{Contrast, Detection, FaceSource, Mtcnn};
use fdb_models::quality::{face_quality, Quality};
use fdb_models::weights::Installed;
use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{FdbError, Result};
use crate::recipe::Recipe;

/// Which faces of a photo to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaceChoice {
    /// The one facenet's alignment would take (largest and most central); fail with several faces if `strict`.
    One {
        /// Fail a photo with several faces instead of taking the central one.
        strict: bool,
    },
    /// Every face found.
    All,
}

/// How a face is cut out for the embedder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Alignment {
    /// facenet's align_dataset_mtcnn: box + 32 px margin, bilinear to 160×160.
    #[default]
    Crop,
    /// 5-point similarity warp.
    Warp,
}

/// A decoded photo and where it came from.
pub struct Photo {
    /// The file it was read from; for a photo given from memory, a description in angle
    /// brackets (`ImageInput::label`).
    pub path: PathBuf,
    /// The sha256 of the file's (or encoded image's) bytes, or of decoded pixels as
    /// `image_input::pixel_sha256` hashes them: enrolment is idempotent by content.
    pub bytes_sha256: [u8; 32],
    /// The decoded pixels, 8-bit RGB, EXIF orientation applied.
    pub image: RgbImage,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("path", &self.path)
            .field("width", &self.image.width())
            .field("height", &self.image.height())
            .finish_non_exhaustive()
    }
}

/// One face found in a photo, cut out for the embedder.
#[derive(Clone)]
pub struct FoundFace {
    /// Where the detector found the face (box, probability, landmarks).
    pub detection: Detection,
    /// The aligned 160×160 crop.
    pub crop: RgbImage,
    /// How it was found: by the detector (on the photo, a contrast-normalised or a padded copy),
    /// or the whole (tight) image standing for it because the caller allowed that.
    pub source: FaceSource,
    /// How far an answer about this face can be trusted (see `fdb_models::quality`).
    pub quality: Quality,
}

impl FoundFace {
    /// No face was found and the whole image stands for one.
    pub fn whole_image(&self) -> bool {
        self.source == FaceSource::WholeImage
    }
}

/// When a photo in which the detector finds no face may stand for its face whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WholeImage {
    /// Never: such a photo has no face.
    Never,
    /// When it looks like a face crop already: square or portrait, and no side longer than
    /// [`FACE_CROP_MAX_SIDE`] (ID photos, crops from another detector, face datasets).
    #[default]
    FaceCrops,
    /// Whenever it is square or portrait (`enroll --allow-whole-image`).
    Always,
}

/// The longest side of a photo that [`WholeImage::FaceCrops`] takes for a face crop.
pub const FACE_CROP_MAX_SIDE: u32 = 400;

impl WholeImage {
    /// Whether `image` may stand for its face (the detector also checks its shape).
    pub fn allows(self, image: &RgbImage) -> bool {
        match self {
            WholeImage::Never => false,
            WholeImage::FaceCrops => image.width().max(image.height()) <= FACE_CROP_MAX_SIDE,
            WholeImage::Always => true,
        }
    }
}

/// The networks behind the facade: the detector and the embedder on one device, and the embedder's model id.
pub struct Engine {
    device: Device,
    detector: Mtcnn,
    embedder: Embedder,
    model_id: String,
    light: Light,
    /// The model's centre for the centred recipe, when it has one.
    centre: Option<Vec<f32>>,
}

/// Photometric normalisation of each aligned crop's luminance before the embedder. An
/// evaluation setting (`fdb eval lfw|hard --light`), measured in docs/benchmarks.md; never a
/// database's, because vectors made under two settings cannot be compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Light {
    /// The crop as aligned.
    #[default]
    Off,
    /// Global histogram equalisation of luma.
    Equalise,
    /// CLAHE of luma on a 4×4 grid, clip 2.
    Clahe,
    /// Global equalisation only of dark or flat crops (the face's mean luma under 50 or its
    /// standard deviation under 16, see `fdb_models::quality`), the rest as aligned.
    Auto,
}

impl Light {
    /// The setting's name, as `--light` spells it.
    pub fn tag(self) -> &'static str {
        match self {
            Light::Off => "off",
            Light::Equalise => "equalise",
            Light::Clahe => "clahe",
            Light::Auto => "auto",
        }
    }

    /// The crop the embedder sees.
    pub fn apply(self, crop: &RgbImage) -> RgbImage {
        match self {
            Light::Off => crop.clone(),
            Light::Equalise => fdb_models::contrast::equalize_luma(crop),
            Light::Clahe => fdb_models::contrast::clahe_luma(crop, 4, 2.0),
            Light::Auto => {
                let stats = fdb_models::quality::central_luma_stats(crop);
                if stats.mean < 50.0 || stats.std < 16.0 {
                    fdb_models::contrast::equalize_luma(crop)
                } else {
                    crop.clone()
                }
            }
        }
    }
}

impl std::str::FromStr for Light {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [Light::Off, Light::Equalise, Light::Clahe, Light::Auto]
            .into_iter()
            .find(|l| l.tag() == s)
            .ok_or_else(|| format!("unknown light normalisation {s:?}: use off, equalise, clahe or auto"))
    }
}

/// Faces per forward pass on a GPU; on the CPU the embedder's own default (where its bench peaks).
pub const GPU_EMBED_BATCH: usize = 128;

impl Engine {
    /// Load the detector and the embedder `model_id` from the installed models dir.
    pub fn load(models: &Installed, model_id: &str, device: Device) -> Result<Self> {
        // Both files are checked against the manifest's sha256 first: damaged weights give
        // confident wrong answers, not errors.
        let embedder_file = models.verified_file(model_id)?;
        let detector = Mtcnn::from_file(&models.verified_file(fdb_models::weights::MTCNN_MODEL_ID)?, &device)?;
        let batch = if device.is_cpu() { fdb_models::facenet::DEFAULT_MAX_BATCH } else { GPU_EMBED_BATCH };
        let embedder = Embedder::load(&embedder_file, &device)?.with_max_batch(batch);
        let centre = crate::recipe::model_centre(&models.manifest, model_id);
        // A hand-edited or damaged manifest must be refused by name, not met by a panic when a
        // vector is centred.
        if let Some(c) = centre.as_ref().filter(|c| c.len() != fdb_models::facenet::EMBEDDING_DIM) {
            return Err(FdbError::Corrupt {
                path: models.dir.join(fdb_models::weights::Manifest::FILE),
                reason: format!("model {model_id}'s centre has {} numbers, not {}", c.len(), fdb_models::facenet::EMBEDDING_DIM),
            });
        }
        Ok(Self { device, detector, embedder, model_id: model_id.into(), light: Light::Off, centre })
    }

    /// The same networks, normalising each crop's light before embedding it.
    pub fn with_light(mut self, light: Light) -> Self {
        self.light = light;
        self
    }

    /// The photometric normalisation applied before embedding.
    pub fn light(&self) -> Light {
        self.light
    }

    /// The device the networks run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The id of the embedder's model (base or a retrained version).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Names how faces are found (decoder and detector flavour), so that caches of crops or
    /// embeddings made under other detector settings are not reused.
    pub fn detection_id(&self) -> String {
        // r3: libjpeg-turbo's JPEG decoding and ipazc's inclusive NMS areas changed detections.
        format!("mtcnn-{:?}-r3", self.detector.config.flavour).to_lowercase()
    }

    /// Read and decode files on all cores; each result is the photo or the reason it is unusable.
    pub fn decode_files(paths: &[PathBuf]) -> Vec<Result<Photo>> {
        paths.par_iter().map(|path| decode_file(path)).collect()
    }

    /// Detect faces in several photos at once and cut out the chosen ones. A photo where the
    /// batched pass finds nothing is retried alone on a contrast-normalised copy (a dark
    /// photo), a padded copy (a tight crop) and both, and may stand for its face whole where
    /// `whole_image` allows.
    pub fn find_faces(
        &self,
        photos: &[&Photo],
        choice: FaceChoice,
        alignment: Alignment,
        whole_image: WholeImage,
    ) -> Result<Vec<Result<Vec<FoundFace>>>> {
        // The detector sees a copy of at most DETECT_MAX_SIDE a side (bounded memory and time
        // on huge photos); its boxes are mapped back and the faces cut from the full pixels.
        let factors: Vec<u32> = photos
            .iter()
            .map(|p| detect_size::reduction_factor(p.image.width(), p.image.height(), detect_size::DETECT_MAX_SIDE))
            .collect();
        let images: Vec<RgbImage> = photos.iter().zip(&factors).map(|(p, &f)| detect_size::shrink(&p.image, f)).collect();
        let detections = self.detector.detect_many(&images)?;
        photos
            .iter()
            .zip(images.iter().zip(&factors))
            .zip(detections)
            .map(|((photo, (seen, &factor)), found)| {
                let (found, source) = if found.is_empty() {
                    // The retries (contrast, padding, whole image) run on the same bounded copy;
                    // whether the photo may stand for its face whole is judged on the photo.
                    let retry = self.detector.retry(seen, Contrast::DEFAULT, whole_image.allows(&photo.image))?;
                    (retry.faces, retry.source)
                } else {
                    (found, FaceSource::Detected)
                };
                let found = found.iter().map(|d| detect_size::scale_up(d, factor)).collect();
                Ok(choose(photo, found, source, choice, alignment))
            })
            .collect()
    }

    /// The trunk's 1792-d features (before the bottleneck) of aligned crops, for retraining the head.
    pub fn trunk_features(&self, crops: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embedder.trunk_features(crops)?)
    }

    /// The network's activations at `cut` (flattened `3·3·1792`) of aligned crops, for
    /// training the layers above it (`--layers top:N`).
    pub fn activations(&self, crops: &[RgbImage], cut: fdb_models::facenet::Cut) -> Result<Vec<Vec<f32>>> {
        Ok(self.embedder.activations(crops, cut)?)
    }

    /// L2-normalised embeddings of aligned 160×160 crops, in batches.
    pub fn embed(&self, crops: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if self.light == Light::Off {
            return Ok(self.embedder.embed(crops)?);
        }
        let normalised: Vec<RgbImage> = crops.iter().map(|c| self.light.apply(c)).collect();
        Ok(self.embedder.embed(&normalised)?)
    }

    /// The vectors a database stores for `crops` under `recipe`: with a mirror, the crops and
    /// their mirrors go through the network in one run (twice the cost of `embed`).
    pub fn embed_recipe(&self, crops: &[RgbImage], recipe: Recipe) -> Result<Vec<Vec<f32>>> {
        if !recipe.needs_mirror() {
            return self.embed(crops);
        }
        let centre = self.recipe_centre(recipe)?;
        let mut views: Vec<RgbImage> = crops.to_vec();
        views.extend(crops.iter().map(image::imageops::flip_horizontal));
        let embedded = self.embed(&views)?;
        let (plain, mirrored) = embedded.split_at(crops.len());
        Ok(plain.iter().zip(mirrored).map(|(p, m)| recipe.fuse(p, Some(m), centre)).collect())
    }

    /// The centre `recipe` needs (None for recipes that need none); a model without one cannot
    /// make centred vectors.
    pub fn recipe_centre(&self, recipe: Recipe) -> Result<Option<&[f32]>> {
        match (recipe.needs_centre(), self.centre.as_deref()) {
            (false, _) => Ok(None),
            (true, Some(c)) => Ok(Some(c)),
            (true, None) => Err(FdbError::Invalid(format!("model {} has no centre for the centred recipe", self.model_id))),
        }
    }
}

/// Reads and decodes a photo, keeping the sha256 of its bytes; errors name the file.
pub fn decode_file(path: &Path) -> Result<Photo> {
    let bytes = std::fs::read(path)
        .map_err(|source| imageio::ImageError::Io { file: path.display().to_string(), source })?;
    let bytes_sha256 = sha256(&bytes);
    let image = imageio::decode_image(&bytes, &path.display().to_string())?;
    Ok(Photo { path: path.to_path_buf(), bytes_sha256, image })
}

/// The sha256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn choose(
    photo: &Photo,
    mut found: Vec<Detection>,
    source: FaceSource,
    choice: FaceChoice,
    alignment: Alignment,
) -> Result<Vec<FoundFace>> {
    let (w, h) = photo.image.dimensions();
    if found.is_empty() {
        return Err(FdbError::NoFace { path: photo.path.clone() });
    }
    if let FaceChoice::One { strict } = choice {
        if strict && found.len() > 1 {
            return Err(FdbError::SeveralFaces { path: photo.path.clone(), count: found.len() });
        }
        let best = align::choose_face(&found, w, h).unwrap_or(0);
        found = vec![found.swap_remove(best)];
    }
    Ok(found
        .into_iter()
        .map(|detection| {
            let crop = cut(&photo.image, &detection, alignment);
            let [x1, y1, x2, y2] = detection.bbox;
            let prob = (source != FaceSource::WholeImage).then_some(detection.prob);
            let quality = face_quality(prob, (x2 - x1).min(y2 - y1), &crop);
            FoundFace { crop, detection, source, quality }
        })
        .collect())
}

fn cut(image: &RgbImage, detection: &Detection, alignment: Alignment) -> RgbImage {
    match alignment {
        Alignment::Crop => align::crop_facenet(image, detection, 160, 32),
        Alignment::Warp => align::warp_5pt(image, detection, 160),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A 10×10 grey crop whose columns alternate `a` and `b`.
    fn stripes(a: u8, b: u8) -> RgbImage {
        RgbImage::from_fn(10, 10, |x, _| {
            let v = if x % 2 == 0 { a } else { b };
            Rgb([v, v, v])
        })
    }

    #[test]
    fn auto_light_equalises_only_dark_or_flat_crops() {
        // Mean 120, σ 40 in the centre: neither dark nor flat, so untouched.
        let lit = stripes(80, 160);
        assert_eq!(Light::Auto.apply(&lit), lit);
        // Mean 25 (dark): equalised. Two levels, half each: cdf_min = 50 of 100 pixels, so
        // 20 ↦ 0 and 30 ↦ round(255 · 50/50) = 255.
        let dark = Light::Auto.apply(&stripes(20, 30));
        assert_eq!((dark.get_pixel(0, 0).0[0], dark.get_pixel(1, 0).0[0]), (0, 255));
        // Mean 120 but σ 5 (flat): equalised the same way.
        let flat = Light::Auto.apply(&stripes(115, 125));
        assert_eq!((flat.get_pixel(0, 0).0[0], flat.get_pixel(1, 0).0[0]), (0, 255));
        assert_eq!(Light::Off.apply(&stripes(20, 30)), stripes(20, 30));
        assert_eq!("auto".parse::<Light>(), Ok(Light::Auto));
        assert!("sideways".parse::<Light>().unwrap_err().contains("sideways"));
    }
}
