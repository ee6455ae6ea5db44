//! `fdb check` and `fdb repair`: damage the store found, put back from what fdb keeps.
//!
//! Each face is kept twice: its embedding in the vector file and its aligned crop in sled. A
//! face whose embedding is lost is embedded again from its crop the way the database embeds
//! every face: by its model and with its recipe (`recipe`; with `flip`, the crop's and its
//! mirror's embeddings summed), so the restored row is the row enrolment wrote. Only the
//! database's own vectors (model and recipe) are checked: vectors of other models are not
//! searched. A
//! face whose crop is lost too cannot be brought back from the database; repair removes it and
//! names it (person and photo), so the photo can be enrolled again.

use serde::Serialize;

use fdb_storage::FaceId;

use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;

/// A face, as a person reads it in a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct FaceRef {
    /// The face's id.
    pub face: u64,
    /// Whose face it is.
    pub person: String,
    /// The photo it was enrolled from.
    pub source: String,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// Faces in the database.
    pub faces: usize,
    /// Faces with no readable embedding: searches would miss them.
    pub missing_vectors: Vec<FaceRef>,
    /// Faces whose crop cannot be read: searchable, but no repair or model switch can embed
    /// them again.
    pub unreadable_crops: Vec<FaceRef>,
    /// Faces with neither: lost.
    pub lost: Vec<FaceRef>,
    /// Vector files that could not be read (file, why).
    pub unreadable_files: Vec<(String, String)>,
    /// The index snapshot was damaged (why); the index was rebuilt from the embeddings.
    pub snapshot_rebuilt: Option<String>,
    /// What the store's cross-check of its trees and index found wrong, if anything.
    pub inconsistencies: Option<String>,
}

impl CheckReport {
    /// Damage that changes answers or loses data (a rebuilt snapshot does neither).
    pub fn healthy(&self) -> bool {
        self.missing_vectors.is_empty() && self.unreadable_crops.is_empty() && self.lost.is_empty() && self.inconsistencies.is_none()
    }
}

/// What `repair` did.
#[derive(Debug, Clone, Serialize, Default)]
#[non_exhaustive]
pub struct RepairReport {
    /// Faces embedded again from their crops.
    pub restored: Vec<FaceRef>,
    /// Faces whose embedding and crop were both unreadable, now removed: enrol their photos again.
    pub lost: Vec<FaceRef>,
    /// Faces that are searchable but whose crop is unreadable (a model switch cannot move them).
    pub crops_missing: Vec<FaceRef>,
    /// The index snapshot was damaged (why); the index was rebuilt.
    pub snapshot_rebuilt: Option<String>,
}

impl FaceDb {
    /// Reads every face's crop and cross-checks the store; the embeddings were checked at open.
    pub fn check(&self) -> Result<CheckReport> {
        let damage = self.store().damage();
        let crops = self.store().unreadable_crops()?;
        let (lost, missing): (Vec<FaceId>, Vec<FaceId>) =
            damage.missing_vectors.iter().partition(|id| crops.contains(id));
        let unreadable_crops: Vec<FaceId> = crops.iter().copied().filter(|id| !lost.contains(id)).collect();
        // The cross-check repeats what the lists above say about embeddings and crops.
        let inconsistencies = match self.store().verify_integrity() {
            Ok(()) => None,
            Err(_) if !damage.missing_vectors.is_empty() || !crops.is_empty() => None,
            Err(e) => Some(e.to_string()),
        };
        Ok(CheckReport {
            faces: self.store().face_count(),
            missing_vectors: self.face_refs(&missing)?,
            unreadable_crops: self.face_refs(&unreadable_crops)?,
            lost: self.face_refs(&lost)?,
            unreadable_files: damage.unreadable_files,
            snapshot_rebuilt: damage.snapshot,
            inconsistencies,
        })
    }

    /// Embeds every face that lost its embedding again from its crop, removes the faces that
    /// lost both (naming them), and rebuilds the index.
    pub fn repair(&self) -> Result<RepairReport> {
        self.writable("repair")?;
        let damage = self.store().damage();
        // sled cannot write into a tree that lost a page: the readable crops move to a new one.
        if !self.store().unreadable_crops()?.is_empty() {
            self.store().rebuild_crops()?;
        }
        let crops: Vec<Vec<u8>> =
            damage.missing_vectors.iter().map(|&id| self.store().face_crop(id).unwrap_or_default()).collect();
        let labelled: Vec<(String, &[u8])> = damage
            .missing_vectors
            .iter()
            .zip(&crops)
            .map(|(id, crop)| (format!("stored crop of face {}", id.0), crop.as_slice()))
            .collect();
        // The database's recipe, as enrolment used it: a plain embedding of a crop enrolled
        // with `flip` would sit far from its own face's probes.
        let embedded = self.embed_stored_crops(&labelled)?;
        let mut restored_ids = Vec::new();
        let mut vectors = Vec::new();
        let mut lost_ids = Vec::new();
        for (&id, vector) in damage.missing_vectors.iter().zip(embedded) {
            match vector {
                Ok(v) => {
                    restored_ids.push(id);
                    vectors.push(v);
                }
                Err(_) => lost_ids.push(id),
            }
        }
        let lost = self.face_refs(&lost_ids)?;
        let restored = self.face_refs(&restored_ids)?;
        for id in &lost_ids {
            self.store().remove_face(*id)?;
        }
        self.store().restore_vectors(restored_ids.into_iter().zip(vectors).collect())?;
        // Calibration distances are computed afresh from the restored vectors; the sample is
        // drawn again without the lost faces.
        if lost_ids.is_empty() {
            self.forget_gallery_distances();
        } else {
            self.note_removed()?;
        }
        let crops_missing = self.face_refs(&self.store().unreadable_crops()?)?;
        self.store().flush()?;
        Ok(RepairReport { restored, lost, crops_missing, snapshot_rebuilt: damage.snapshot })
    }

    /// Embeds stored crops (encoded PNG or JPEG, each with words naming it) again the way the
    /// database embeds every face: by its model and with its recipe. A crop that cannot be
    /// decoded gets its error instead; the networks load only when some crop can be.
    pub(crate) fn embed_stored_crops(&self, crops: &[(String, &[u8])]) -> Result<Vec<Result<Vec<f32>>>> {
        let decoded: Vec<Result<image::RgbImage>> = crops
            .iter()
            .map(|(what, bytes)| Ok(fdb_models::imageio::decode_image(bytes, what)?))
            .collect();
        let images: Vec<image::RgbImage> = decoded.iter().filter_map(|d| d.as_ref().ok().cloned()).collect();
        let mut vectors =
            if images.is_empty() { Vec::new() } else { self.engine()?.embed_recipe(&images, self.recipe()?)? }.into_iter();
        Ok(decoded.into_iter().map(|d| d.map(|_| vectors.next().expect("one embedding per decoded crop"))).collect())
    }

    /// Names faces for a report (a face whose record is unreadable is named by its id alone).
    fn face_refs(&self, ids: &[FaceId]) -> Result<Vec<FaceRef>> {
        ids.iter()
            .map(|&id| {
                let face = self.store().face(id).ok().flatten();
                let person = match &face {
                    Some(f) => self.store().person(f.person)?.map(|p| p.name).unwrap_or_default(),
                    None => String::new(),
                };
                Ok(FaceRef { face: id.0, person, source: face.map(|f| f.source_name).unwrap_or_default() })
            })
            .collect()
    }
}

/// The error a read-only command gives for a store whose searches would miss faces.
pub fn needs_repair(path: &std::path::Path, damage: &fdb_storage::Damage) -> FdbError {
    let files = if damage.unreadable_files.is_empty() {
        String::new()
    } else {
        format!(" (unreadable: {})", damage.unreadable_files.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", "))
    };
    FdbError::NeedsRepair {
        path: path.to_path_buf(),
        reason: format!("{} faces have no readable embedding{files}", damage.missing_vectors.len()),
    }
}
