//! Faces as vectors: embed a photo's faces once, keep or send the vectors, and store, search or
//! compare them later, with the same decisions as the calls that take photos.
//!
//! ```
//! use fdb::{FaceDb, OpenOptions};
//!
//! let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
//! let dir = tempfile::tempdir()?;
//! let db = FaceDb::open_with(dir.path().join("db"), OpenOptions::new().install_models(true))?;
//! // Every face: box, landmarks, quality, crop, vector; the primary face first.
//! let faces = db.embed(fixtures.join("group_simon_cowell_0001.jpg"))?;
//! assert!(faces.len() > 1 && faces[0].primary);
//! db.add_face("Simon", &faces[0])?; // stored with its crop, as an enrolment stores it
//! let answer = db.search_embedding(&faces[0].vector, 5)?; // the same decision as `search`
//! assert_eq!(answer.identity.as_deref(), Some("Simon"));
//! let probe = db.embed(fixtures.join("people/Tony_Blair/Tony_Blair_0001.jpg"))?.remove(0);
//! assert_eq!(db.search_face(&probe, 1)?.identity, None); // a stranger to this gallery
//! assert!(!db.verify_embeddings(&faces[0], &probe)?.same);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use fdb_models::align;
use fdb_models::mtcnn::{Detection, FaceSource};
use fdb_storage::{FaceId, NewFace, Owner, PersonId};
use image::RgbImage;

use crate::engine::{sha256, Alignment, FaceChoice, FoundFace, Photo};
use crate::error::{FdbError, Result};
use crate::facedb::{check_k, encode_png, enroll_status, EnrollStatus, FaceDb, Probe, SearchResult, Verification};
use crate::image_input::ImageInput;
use crate::names;

/// One face of a photo, found, aligned and embedded as the database embeds faces.
#[derive(Clone)]
#[non_exhaustive]
pub struct FaceEmbedding {
    /// x1, y1, x2, y2 in the photo's pixels.
    pub bbox: [f32; 4],
    /// Five landmarks (eyes, nose, mouth corners) as (x, y) in the photo's pixels.
    pub landmarks: [[f32; 2]; 5],
    /// The detector's probability for the face.
    pub detector_score: f32,
    /// The face's quality score, in [0, 1] (see `fdb_models::quality`).
    pub quality: f32,
    /// How the face was found: by the detector (on the photo, or on a contrast-normalised or
    /// padded copy), or the whole (tight) image standing for it.
    pub source: FaceSource,
    /// The face that enrolment and `search` take from this photo (the largest, most central);
    /// `FaceDb::embed` returns it first.
    pub primary: bool,
    /// The aligned 160×160 crop the vector was computed from.
    pub crop: RgbImage,
    /// The unit vector the database stores and compares (its recipe, see `recipe`).
    pub vector: Vec<f32>,
    /// The embedder and recipe that made `vector` (`FaceDb::vectors_id`); another database's
    /// vectors cannot be compared with this one's.
    pub vectors_id: String,
    /// The photo: its file, or for a photo from memory its `ImageInput::label`.
    pub source_name: String,
    /// What `add_face` dedupes by: for the primary face, the photo's sha256, the one enrolment
    /// uses (so a photo enrolled and then added by embedding is one face); for another face of
    /// the photo, the sha256 of the photo's sha256 followed by the face's box (4 × f32 LE).
    pub source_sha256: [u8; 32],
}

impl FaceEmbedding {
    /// A found face of `photo` and its vector.
    pub(crate) fn new(face: FoundFace, vector: Vec<f32>, vectors_id: &str, photo: &Photo, primary: bool) -> Self {
        let Detection { bbox, prob, landmarks } = face.detection;
        let source_sha256 = if primary { photo.bytes_sha256 } else { face_sha256(&photo.bytes_sha256, bbox) };
        Self {
            bbox,
            landmarks,
            detector_score: prob,
            quality: face.quality.score,
            source: face.source,
            primary,
            crop: face.crop,
            vector,
            vectors_id: vectors_id.to_string(),
            source_name: photo.path.display().to_string(),
            source_sha256,
        }
    }

    /// No face was detected and the whole image stands for one.
    pub fn whole_image(&self) -> bool {
        self.source == FaceSource::WholeImage
    }

    /// The record the store keeps (its person is set by `Store::enrol_faces`).
    pub(crate) fn to_new_face(&self) -> Result<NewFace> {
        Ok(NewFace {
            person: PersonId(0),
            source_name: self.source_name.clone(),
            source_sha256: self.source_sha256,
            bbox: self.bbox,
            landmarks: self.landmarks,
            score: self.detector_score,
            quality: Some(self.quality),
            model_id: self.vectors_id.clone(),
            crop: encode_png(&self.crop)?,
            embedding: self.vector.clone(),
        })
    }
}

impl std::fmt::Debug for FaceEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEmbedding")
            .field("bbox", &self.bbox)
            .field("quality", &self.quality)
            .field("source", &self.source)
            .field("primary", &self.primary)
            .field("dimensions", &self.vector.len())
            .field("vectors_id", &self.vectors_id)
            .field("source_name", &self.source_name)
            .finish_non_exhaustive()
    }
}

fn face_sha256(photo: &[u8; 32], bbox: [f32; 4]) -> [u8; 32] {
    let mut bytes = photo.to_vec();
    bytes.extend(bbox.iter().flat_map(|v| v.to_le_bytes()));
    sha256(&bytes)
}

/// Whose face `FaceDb::add_face` stores: a person by name (created with their first face) or
/// an existing person by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersonRef<'a> {
    /// The person of this name (normalised as enrolment normalises names); created if new.
    Name(&'a str),
    /// An existing person (`fdb_storage::Person::id`).
    Id(PersonId),
}

impl<'a> From<&'a str> for PersonRef<'a> {
    fn from(name: &'a str) -> Self {
        PersonRef::Name(name)
    }
}

impl<'a> From<&'a String> for PersonRef<'a> {
    fn from(name: &'a String) -> Self {
        PersonRef::Name(name)
    }
}

impl From<PersonId> for PersonRef<'_> {
    fn from(id: PersonId) -> Self {
        PersonRef::Id(id)
    }
}

/// A stored face: its record, its person, its crop and its vector.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredFace {
    /// The record: id, person id, source name and sha256, box, landmarks, detector score,
    /// quality, model, creation time.
    pub record: fdb_storage::Face,
    /// The person's name.
    pub person: String,
    /// The aligned crop stored at enrolment.
    pub crop: RgbImage,
    /// The face's vector by the database's current model and recipe; `None` where it is
    /// missing (`fdb check` lists such faces, `fdb repair` re-embeds them).
    pub vector: Option<Vec<f32>>,
}

impl FaceDb {
    /// Every face in `image`, found (where the database's `whole_image` option allows, a tight
    /// crop stands for its face), aligned and embedded as this database embeds faces: the
    /// primary face (the one enrolment and `search` take) first, then the others in the
    /// detector's order. A photo without a face gives an empty list.
    pub fn embed<'i>(&self, image: impl Into<ImageInput<'i>>) -> Result<Vec<FaceEmbedding>> {
        let engine = self.engine()?;
        let photo = image.into().decode()?;
        let whole_image = self.options().whole_image;
        let mut found = match engine.find_faces(&[&photo], FaceChoice::All, Alignment::Crop, whole_image)?.remove(0) {
            Ok(found) => found,
            Err(FdbError::NoFace { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let detections: Vec<Detection> = found.iter().map(|f| f.detection.clone()).collect();
        let primary = align::choose_face(&detections, photo.image.width(), photo.image.height()).unwrap_or(0);
        let first = found.remove(primary);
        found.insert(0, first);
        let crops: Vec<RgbImage> = found.iter().map(|f| f.crop.clone()).collect();
        let vectors = engine.embed_recipe(&crops, self.recipe()?)?;
        let vectors_id = self.vectors_id()?;
        Ok(found
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (face, vector))| FaceEmbedding::new(face, vector, &vectors_id, &photo, i == 0))
            .collect())
    }

    /// Faces already aligned by the caller (160×160 crops, each with the name of its source),
    /// embedded as this database embeds faces, without detection: for a pipeline with its own
    /// detector, or crops altered after alignment (`examples/domain_shift.rs`). Each face is
    /// the whole crop (`FaceSource::WholeImage`, its box the crop's frame, no landmarks), its
    /// quality judged from the crop alone, and it dedupes by the crop's pixels; `add_face`
    /// stores it.
    pub fn embed_aligned(&self, crops: &[(String, RgbImage)]) -> Result<Vec<FaceEmbedding>> {
        let side = fdb_models::facenet::INPUT_SIZE as u32;
        if let Some((name, crop)) = crops.iter().find(|(_, c)| c.dimensions() != (side, side)) {
            let (w, h) = crop.dimensions();
            return Err(FdbError::Invalid(format!("{name}: an aligned face is a {side}x{side} crop, this is {w}x{h}")));
        }
        let images: Vec<RgbImage> = crops.iter().map(|(_, c)| c.clone()).collect();
        let vectors = self.engine()?.embed_recipe(&images, self.recipe()?)?;
        let vectors_id = self.vectors_id()?;
        Ok(crops
            .iter()
            .zip(vectors)
            .map(|((name, crop), vector)| FaceEmbedding {
                bbox: [0.0, 0.0, side as f32, side as f32],
                landmarks: [[0.0; 2]; 5],
                detector_score: 0.0,
                quality: fdb_models::quality::face_quality(None, side as f32, crop).score,
                source: FaceSource::WholeImage,
                primary: true,
                crop: crop.clone(),
                vector,
                vectors_id: vectors_id.clone(),
                source_name: name.clone(),
                source_sha256: crate::image_input::pixel_sha256(crop),
            })
            .collect())
    }

    /// Stores `face` as `person`'s, with its crop (so `fdb repair` and a model switch can
    /// re-embed it), exactly as enrolment stores a face: `Enrolled`, or `Duplicate` when its
    /// `source_sha256` is stored already. A person given by name is created with their first
    /// face; one given by id must exist (`UnknownPerson`).
    pub fn add_face<'p>(&self, person: impl Into<PersonRef<'p>>, face: &FaceEmbedding) -> Result<EnrollStatus> {
        self.writable("add_face")?;
        self.check_vectors(&face.vectors_id)?;
        let owner = match person.into() {
            PersonRef::Name(name) => Owner::Name(names::normalise(name)?),
            PersonRef::Id(id) => match self.store().person(id)? {
                Some(_) => Owner::Id(id),
                None => return Err(FdbError::UnknownPerson(format!("#{}", id.0))),
            },
        };
        if self.store().active_model()?.is_none() {
            self.store().set_active_model(&face.vectors_id)?;
        }
        let outcome = self.store_faces(vec![(owner, face.to_new_face()?)])?.remove(0);
        self.store().flush()?;
        Ok(enroll_status(face.source, face.quality, outcome))
    }

    /// Who is this vector? The same ranking and 1:N threshold as `search` (its calibration,
    /// "unknown" as `identity: None`), for a vector of this database's model and recipe
    /// (`FaceEmbedding::vector`).
    ///
    /// **No quality floor applies**: a bare vector carries no quality, so a blurred or tiny
    /// face can be named here where `search` would answer "unknown (low quality)". Keep the
    /// [`FaceEmbedding`] and call [`FaceDb::search_face`] to have the floor applied. The
    /// answer's `bbox` is zeros, its `source` is `"embedding"`, its `quality` NaN and its
    /// `low_quality` false.
    pub fn search_embedding(&self, vector: &[f32], k: usize) -> Result<SearchResult> {
        check_k(k)?;
        let probe = Probe { bbox: [0.0; 4], source: "embedding", quality: f32::NAN };
        self.answer(&probe, vector, k, None, &self.current_thresholds()?)
    }

    /// `search` for a face embedded earlier: the same answer, quality floor included.
    pub fn search_face(&self, face: &FaceEmbedding, k: usize) -> Result<SearchResult> {
        check_k(k)?;
        self.check_vectors(&face.vectors_id)?;
        let probe = Probe { bbox: face.bbox, source: face.source.as_str(), quality: face.quality };
        self.answer(&probe, &face.vector, k, None, &self.current_thresholds()?)
    }

    /// 1:1 on two faces embedded earlier: the same verdict as `verify` on their photos.
    pub fn verify_embeddings(&self, a: &FaceEmbedding, b: &FaceEmbedding) -> Result<Verification> {
        self.check_vectors(&a.vectors_id)?;
        self.check_vectors(&b.vectors_id)?;
        if a.vector.len() != b.vector.len() {
            return Err(FdbError::Invalid(format!("vectors of {} and {} dimensions", a.vector.len(), b.vector.len())));
        }
        let distance = a.vector.iter().zip(&b.vector).map(|(x, y)| (x - y) * (x - y)).sum();
        self.verdict(&[(a.source, a.quality), (b.source, b.quality)], distance, None)
    }

    /// A stored face by id (`Match::face`, `EnrollStatus::Enrolled`'s `face`): its record,
    /// person, crop and vector; `None` when there is no such face.
    pub fn face(&self, id: FaceId) -> Result<Option<StoredFace>> {
        let store = self.store();
        let Some(record) = store.face(id)? else { return Ok(None) };
        let person = store.person(record.person)?.map(|p| p.name).unwrap_or_default();
        let bytes = store.face_crop(id)?;
        let crop = fdb_models::imageio::decode_image(&bytes, &format!("face {}'s crop", id.0))?;
        let vector = store.embedding(id, &self.vectors_id()?)?;
        Ok(Some(StoredFace { record, person, crop, vector }))
    }

    /// Vectors by another model or recipe cannot be compared with this database's.
    fn check_vectors(&self, vectors_id: &str) -> Result<()> {
        let ours = self.vectors_id()?;
        if vectors_id != ours {
            return Err(FdbError::ModelMismatch { expected: ours, found: vectors_id.to_string() });
        }
        Ok(())
    }
}
