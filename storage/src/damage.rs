//! Damage found at open, and putting back what fdb keeps twice.
//!
//! Every live face's embedding is in its model's vector file and its aligned crop in sled, so a
//! lost or damaged vector row can be computed again from the crop (by the caller, who has the
//! network: the store knows no images). Open finds such faces from what it reads anyway (the
//! rows whose crc holds, the faces' ids); searching without them would answer "unknown" for
//! people who are enrolled, so callers refuse to answer until `restore_vectors` puts them back.
//! A face whose crop is gone as well is lost: only its photo can bring it back.

use crate::codec::{self, id_key};
use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::FaceId;
use crate::vector_file;
use std::collections::HashMap;

/// What open found that the store cannot answer correctly without.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Damage {
    /// Live faces with no readable vector row by the active model (missing, cut off, or failing
    /// their checksum), in id order.
    pub missing_vectors: Vec<FaceId>,
    /// Vector files that could not be read at all (file name and why).
    pub unreadable_files: Vec<(String, String)>,
    /// Why the index snapshot could not be used, when it was damaged (the index was rebuilt
    /// from the vectors, so nothing is lost).
    pub snapshot: Option<String>,
}

impl Damage {
    /// True when searches would miss faces: `restore_vectors` is needed.
    pub fn needs_repair(&self) -> bool {
        !self.missing_vectors.is_empty()
    }
}

impl Store {
    /// What open found (see the module docs). An empty `Damage` is a healthy store.
    pub fn damage(&self) -> Damage {
        self.damage.lock().clone()
    }

    /// Faces of the active model without a readable vector, given each face's person.
    pub(crate) fn missing_vectors(&self, persons: &HashMap<u64, u64>) -> Result<Vec<FaceId>> {
        let Some(model) = self.active_model()? else {
            return Ok(Vec::new());
        };
        let mut missing: Vec<FaceId> =
            persons.keys().filter(|&&id| !self.vectors.contains(&model, id)).map(|&id| FaceId(id)).collect();
        missing.sort_unstable();
        Ok(missing)
    }

    /// Faces whose crop cannot be read (gone, or sled cannot read the value), in id order.
    /// Reads every crop: this is `fdb check`'s slow part.
    pub fn unreadable_crops(&self) -> Result<Vec<FaceId>> {
        let mut bad = Vec::new();
        for key in self.t.faces.iter().keys() {
            let id = codec::key_id(&key?, "faces")?;
            match self.crops().get(id_key(id)) {
                Ok(Some(bytes)) if !bytes.is_empty() => {}
                _ => bad.push(FaceId(id)),
            }
        }
        Ok(bad)
    }

    /// Copies every readable crop into a new crops tree and makes it the store's: sled cannot
    /// write into a tree that lost a page (a blob file gone), so enrolments into it fail.
    /// Returns how many crops could not be read; their faces keep no crop.
    pub fn rebuild_crops(&self) -> Result<usize> {
        let _w = self.writer.lock();
        let old_name = crate::store::crops_tree_name(&self.db)?;
        let generation = old_name.strip_prefix(b"crops.").and_then(|g| std::str::from_utf8(g).ok()?.parse::<u64>().ok()).unwrap_or(0);
        let new_name = format!("crops.{}", generation + 1).into_bytes();
        let _ = self.db.drop_tree(&new_name); // left by a rebuild that was cut short
        let new = self.db.open_tree(&new_name)?;
        let old = self.crops();
        let mut unreadable = 0;
        for key in self.t.faces.iter().keys() {
            let key = key?;
            match old.get(&key) {
                Ok(Some(crop)) => {
                    new.insert(&key, crop)?;
                }
                _ => unreadable += 1,
            }
        }
        new.flush()?;
        self.t.meta.insert(crate::store::META_CROPS_TREE, new_name)?;
        self.db.flush()?;
        *self.t.crops.write() = new;
        // The old tree's pages go with it, if sled can still free them.
        let _ = self.db.drop_tree(&old_name);
        self.db.flush()?;
        Ok(unreadable)
    }

    /// Puts back the active model's vectors of faces that lost theirs (computed again from
    /// their crops by the caller), then rebuilds the index over every live face.
    pub fn restore_vectors(&self, rows: Vec<(FaceId, Vec<f32>)>) -> Result<()> {
        let _w = self.writer.lock();
        let model = self.active_model()?.ok_or_else(|| StoreError::InvalidArgument("the store has no model yet".into()))?;
        let dim = self
            .dim_of(&model)?
            .ok_or_else(|| StoreError::Corrupt(format!("the store holds no dimension for model {model:?}")))?;
        let mut units = Vec::with_capacity(rows.len());
        for (face, v) in rows {
            if !self.t.faces.contains_key(id_key(face.0))? {
                return Err(StoreError::NotFound(format!("restore_vectors: no face {}", face.0)));
            }
            if v.len() != dim {
                return Err(StoreError::InvalidEmbedding(format!(
                    "face {}: {} dimensions, model {model:?} has {dim}",
                    face.0,
                    v.len()
                )));
            }
            units.push((face.0, codec::normalized(&v)?));
        }
        // A damaged header can give the file another dimension: every row failed then, and the
        // file starts again.
        if self.vectors.with(&model, |f| f.dim()).is_some_and(|d| d != dim) {
            self.vectors.recreate(&model, dim)?;
        }
        if !units.is_empty() {
            self.vectors.append(&model, dim, &vector_file::borrowed(&units))?;
        }
        self.rebuild_index_locked()?;
        self.db.flush()?;
        let persons = self.person_of_each_face()?;
        let mut damage = self.damage.lock();
        damage.missing_vectors = self.missing_vectors(&persons)?;
        damage.unreadable_files.clear();
        Ok(())
    }
}
