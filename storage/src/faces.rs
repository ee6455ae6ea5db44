//! Faces: enrolment (single and atomic batches), lookups, removal, and search.

use crate::ann::{AnnIndex, IndexPoint};
use crate::codec::{self, id_key, pair_key};
use crate::error::{Result, StoreError};
use crate::store::{check_model_id, meta_dim_key, tx, Store, WriterGuard, META_ACTIVE_MODEL};
use crate::txn::{abort, TxResult};
use sled::Transactional;
use crate::types::{Face, FaceId, Hit, NewFace, NewPerson, PersonId};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;
use std::collections::HashSet;

/// Batches at least this large are inserted into the index on all cores.
const PARALLEL_INSERT_MIN: usize = 64;

/// A face record as stored since schema 3: schema 2's fields, then the quality score.
#[derive(Serialize, Deserialize)]
struct FaceRecord {
    person: u64,
    source_name: String,
    source_sha256: [u8; 32],
    bbox: [f32; 4],
    landmarks: [[f32; 2]; 5],
    score: f32,
    model_id: String,
    created_ms: u64,
    quality: Option<f32>,
}

/// A face record written by schema 2 (and 1): no quality score. Records are never rewritten,
/// so a database keeps both kinds and each is read by its length.
#[derive(Serialize, Deserialize)]
struct FaceRecordV2 {
    person: u64,
    source_name: String,
    source_sha256: [u8; 32],
    bbox: [f32; 4],
    landmarks: [[f32; 2]; 5],
    score: f32,
    model_id: String,
    created_ms: u64,
}

impl From<FaceRecordV2> for FaceRecord {
    fn from(r: FaceRecordV2) -> Self {
        let FaceRecordV2 { person, source_name, source_sha256, bbox, landmarks, score, model_id, created_ms } = r;
        FaceRecord { person, source_name, source_sha256, bbox, landmarks, score, model_id, created_ms, quality: None }
    }
}

pub(crate) fn decode_face(id: u64, bytes: &[u8]) -> Result<Face> {
    let what = format!("face {id}");
    // A schema-2 record is a strict prefix of a current one, so it cannot decode as current
    // (it ends before the quality); a current record cannot decode as schema 2 (trailing bytes).
    let r: FaceRecord = match codec::decode::<FaceRecord>(bytes, &what) {
        Ok(r) => r,
        Err(current) => codec::decode::<FaceRecordV2>(bytes, &what).map(Into::into).map_err(|_| current)?,
    };
    Ok(Face {
        id: FaceId(id),
        person: PersonId(r.person),
        source_name: r.source_name,
        source_sha256: r.source_sha256,
        bbox: r.bbox,
        landmarks: r.landmarks,
        score: r.score,
        quality: r.quality,
        model_id: r.model_id,
        created_ms: r.created_ms,
    })
}

/// How `store_faces_locked` takes the embeddings it is given.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    /// Any length: L2-normalised before they are written (every add).
    Normalise,
    /// Vectors a store wrote (an archive's): already unit length, written bit for bit.
    Exact,
}

/// A validated face ready to write: its id, record bytes and unit embedding.
struct Prepared<'a> {
    id: u64,
    face: &'a NewFace,
    record: Vec<u8>,
    unit: Vec<f32>,
}

impl Store {
    /// Adds one face (a batch of one, see `add_faces`) and returns its id.
    pub fn add_face(&self, face: NewFace) -> Result<FaceId> {
        Ok(self.add_faces(vec![face])?[0])
    }

    /// Adds faces atomically: either all are stored or none (one sled transaction). Every face
    /// must be embedded by the active model; the first face ever added makes its model the
    /// active one.
    pub fn add_faces(&self, faces: Vec<NewFace>) -> Result<Vec<FaceId>> {
        self.add_faces_with_people(Vec::new(), faces)
    }

    /// `add_faces`, creating `people` in the same transaction (their ids from
    /// `new_person_id`): a person never exists without their first face, also when the
    /// process is killed half-way.
    pub fn add_faces_with_people(&self, people: Vec<NewPerson>, faces: Vec<NewFace>) -> Result<Vec<FaceId>> {
        let w = self.writer.lock();
        let (ids, active, to_index) = self.store_faces_locked(&people, faces, Units::Normalise, &w)?;
        self.index_new_locked(&active, to_index, &w)?;
        Ok(ids)
    }

    /// Adds many faces, each batch atomically as `add_faces` does, then builds the index once
    /// over every stored face instead of inserting them one by one: the way to load a large
    /// gallery (fdb's graph build is several times faster than hnsw_rs' inserts, and builds a
    /// better graph). Searches meanwhile see the faces stored before the import. On an error the
    /// batches stored before it are kept and indexed, and the error is returned.
    pub fn import_faces(&self, batches: impl IntoIterator<Item = Vec<NewFace>>) -> Result<Vec<FaceId>> {
        let w = self.writer.lock();
        let mut ids = Vec::new();
        let mut failed = None;
        for batch in batches {
            match self.store_faces_locked(&[], batch, Units::Normalise, &w) {
                Ok((stored, _, _)) => ids.extend(stored),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if !ids.is_empty() {
            self.rebuild_index_locked()?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(ids),
        }
    }

    /// Stores faces in one transaction; returns their ids, the active model, and the points to
    /// index.
    pub(crate) fn store_faces_locked(
        &self,
        people: &[NewPerson],
        faces: Vec<NewFace>,
        units: Units,
        _w: &WriterGuard,
    ) -> Result<(Vec<FaceId>, String, Vec<IndexPoint>)> {
        if faces.is_empty() {
            return Ok((Vec::new(), String::new(), Vec::new()));
        }
        let model = self.model_of_new_faces(&faces)?;
        let mut seen = HashSet::new();
        for f in &faces {
            if !seen.insert(f.source_sha256) {
                return Err(StoreError::Duplicate(codec::hex(&f.source_sha256)));
            }
        }
        let now = codec::now_ms();
        let mut prepared = Vec::with_capacity(faces.len());
        for face in &faces {
            let record = FaceRecord {
                person: face.person.0,
                source_name: face.source_name.clone(),
                source_sha256: face.source_sha256,
                bbox: face.bbox,
                landmarks: face.landmarks,
                score: face.score,
                model_id: face.model_id.clone(),
                created_ms: now,
                quality: face.quality,
            };
            let unit = match units {
                Units::Normalise => codec::normalized(&face.embedding)?,
                Units::Exact => codec::checked_unit(&face.embedding)?,
            };
            prepared.push(Prepared { id: self.db.generate_id()?, face, record: codec::encode(&record), unit });
        }
        // The vectors are durable before the records that name them (see `vector_file`).
        let rows: Vec<(u64, &[f32])> = prepared.iter().map(|p| (p.id, p.unit.as_slice())).collect();
        let appended = self.vectors.append(&model, rows[0].1.len(), &rows)?;
        let trees = self.tx_trees();
        let committed = trees.as_slice().transaction(|t| -> TxResult<()> {
            if t[tx::META].get(META_ACTIVE_MODEL)?.is_none() {
                t[tx::META].insert(META_ACTIVE_MODEL, model.as_bytes())?;
            }
            for person in people {
                self.tx_add_person(t, person)?;
            }
            for p in &prepared {
                write_face(t, p)?;
            }
            Ok(())
        });
        if let Err(e) = committed {
            self.vectors.take_back(appended)?;
            return Err(e.into());
        }
        let ids: Vec<FaceId> = prepared.iter().map(|p| FaceId(p.id)).collect();
        let to_index: Vec<IndexPoint> =
            prepared.into_iter().map(|p| IndexPoint { face: p.id, person: p.face.person.0, unit: p.unit }).collect();
        Ok((ids, model, to_index))
    }

    /// The one model new faces may be embedded by: the active one, or any while there is none
    /// (the first add makes its model the active one). A face by another model could never be
    /// searched; `switch_model` moves every face to a new model.
    fn model_of_new_faces(&self, faces: &[NewFace]) -> Result<String> {
        let active = self.active_model()?;
        let model = active.clone().unwrap_or_else(|| faces[0].model_id.clone());
        check_model_id(&model)?;
        match faces.iter().find(|f| f.model_id != model) {
            None => Ok(model),
            Some(f) => Err(StoreError::InvalidArgument(match active {
                Some(active) => format!(
                    "{}: embedded by model {:?}, but the database's model is {active:?} (switch_model re-embeds every face)",
                    f.source_name, f.model_id
                ),
                None => format!("{}: embedded by model {:?}, the rest of the batch by {model:?}", f.source_name, f.model_id),
            })),
        }
    }

    pub(crate) fn index_new_locked(
        &self,
        model: &str,
        vectors: Vec<IndexPoint>,
        _writer: &WriterGuard,
    ) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        if self.index.read().is_none() {
            let dim = vectors[0].unit.len();
            *self.index.write() = Some(AnnIndex::new(&self.opts.index, model, dim, vectors.len()));
        }
        let index = self.index.read();
        let index = index.as_ref().expect("index was just created");
        if vectors.len() >= PARALLEL_INSERT_MIN {
            index.insert_batch(&vectors);
        } else {
            vectors.iter().for_each(|p| index.insert(p));
        }
        Ok(())
    }

    /// A stored face's record, or `None` if there is no face with this id.
    pub fn face(&self, id: FaceId) -> Result<Option<Face>> {
        self.t.faces.get(id_key(id.0))?.map(|b| decode_face(id.0, &b)).transpose()
    }

    /// A person's faces, in id order.
    pub fn faces_of(&self, person: PersonId) -> Result<Vec<Face>> {
        self.face_ids_of(person)?
            .into_iter()
            .map(|id| self.face(id)?.ok_or_else(|| StoreError::Corrupt(format!("face index lists missing face {}", id.0))))
            .collect()
    }

    /// The face enrolled from a file with these bytes (sha256), if any: enrolment is idempotent by content.
    pub fn face_by_sha256(&self, sha256: &[u8; 32]) -> Result<Option<FaceId>> {
        match self.t.sha.get(sha256)? {
            None => Ok(None),
            Some(v) => Ok(Some(FaceId(codec::key_id(&v, "faces by sha256")?))),
        }
    }

    /// How many faces are stored (live faces; tombstoned ones are gone from the `faces` tree).
    pub fn face_count(&self) -> usize {
        self.t.faces.len()
    }

    /// A face's aligned crop, as it was encoded at enrolment (PNG or JPEG).
    pub fn face_crop(&self, id: FaceId) -> Result<Vec<u8>> {
        self.crops()
            .get(id_key(id.0))?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::NotFound(format!("no crop for face {}", id.0)))
    }

    /// The stored (unit-length) embedding of a face by a model (`None` for a removed face).
    pub fn embedding(&self, id: FaceId, model: &str) -> Result<Option<Vec<f32>>> {
        if !self.t.faces.contains_key(id_key(id.0))? {
            return Ok(None);
        }
        self.vectors.get(model, id.0)
    }

    /// Removes a face: its records go in one transaction, and searches stop returning it before that commits.
    pub fn remove_face(&self, id: FaceId) -> Result<()> {
        let w = self.writer.lock();
        let active = self.active_model()?;
        let trees = self.tx_trees();
        self.remove_faces_locked(&[id], &w, || {
            Ok(trees.as_slice().transaction(|t| -> TxResult<()> {
                if t[tx::FACES].get(id_key(id.0))?.is_none() {
                    return abort(StoreError::NotFound(format!("no face {}", id.0)));
                }
                self.tx_remove_face(t, id, active.as_deref())
            })?)
        })
    }

    /// Removes a face's records inside a transaction. A face with a vector by the active model
    /// becomes a tombstone: the index graph still holds the point, and reloading the graph reads
    /// its vector, which stays in the file until a rebuild.
    pub(crate) fn tx_remove_face(&self, t: &[TransactionalTree], id: FaceId, active: Option<&str>) -> TxResult<()> {
        let key = id_key(id.0);
        let Some(bytes) = t[tx::FACES].remove(&key)? else {
            return Ok(());
        };
        let face = decode_face(id.0, &bytes).or_else(abort)?;
        t[tx::SHA].remove(&face.source_sha256)?;
        t[tx::BY_PERSON].remove(&pair_key(face.person.0, id.0))?;
        t[tx::CROPS].remove(&key)?;
        if active.is_some_and(|m| self.vectors.contains(m, id.0)) {
            t[tx::TOMBSTONES].insert(&key, &[])?;
        }
        Ok(())
    }

    /// The `k` nearest live faces of the active model, nearest first. `ef` widens the search
    /// (more recall, more time); `None` uses the store's default.
    pub fn search(&self, query: &[f32], k: usize, ef: Option<usize>) -> Result<Vec<Hit>> {
        let unit = codec::normalized(query)?;
        let guard = self.index.read();
        let Some(index) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        if unit.len() != index.dim {
            return Err(StoreError::InvalidEmbedding(format!(
                "query has {} dimensions, model {:?} has {}",
                unit.len(),
                index.model,
                index.dim
            )));
        }
        Ok(index.search(&unit, k, ef.unwrap_or(self.opts.index.ef_search)))
    }
}

/// Writes one face into the transaction, refusing unknown people and already-enrolled images.
fn write_face(t: &[TransactionalTree], p: &Prepared) -> TxResult<()> {
    let f = p.face;
    if t[tx::PEOPLE].get(id_key(f.person.0))?.is_none() {
        return abort(StoreError::NotFound(format!("no person with id {}", f.person.0)));
    }
    if t[tx::SHA].get(f.source_sha256)?.is_some() {
        return abort(StoreError::Duplicate(codec::hex(&f.source_sha256)));
    }
    let dim_key = meta_dim_key(&f.model_id);
    match t[tx::META].get(&dim_key)? {
        None => {
            t[tx::META].insert(dim_key, &(p.unit.len() as u64).to_be_bytes())?;
        }
        Some(d) => {
            let dim = codec::key_id(&d, "model dimension").or_else(abort)? as usize;
            if dim != p.unit.len() {
                return abort(StoreError::InvalidEmbedding(format!(
                    "model {:?} embeddings have {dim} dimensions, this one has {}",
                    f.model_id,
                    p.unit.len()
                )));
            }
        }
    }
    let key = id_key(p.id);
    t[tx::FACES].insert(&key, p.record.as_slice())?;
    t[tx::SHA].insert(&f.source_sha256, &key)?;
    t[tx::BY_PERSON].insert(&pair_key(f.person.0, p.id), &[])?;
    t[tx::CROPS].insert(&key, f.crop.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(score: f32) -> FaceRecordV2 {
        FaceRecordV2 {
            person: 7,
            source_name: "a.jpg".into(),
            source_sha256: [3; 32],
            bbox: [1.0, 2.0, 3.0, 4.0],
            landmarks: [[5.0, 6.0]; 5],
            score,
            model_id: "m".into(),
            created_ms: 42,
        }
    }

    #[test]
    fn schema_2_records_read_with_unknown_quality() {
        let face = decode_face(9, &codec::encode(&v2(0.9))).unwrap();
        assert_eq!((face.id, face.person, face.score, face.quality, face.created_ms), (FaceId(9), PersonId(7), 0.9, None, 42));
    }

    #[test]
    fn current_records_keep_their_quality_and_garbage_is_still_corrupt() {
        let mut record: FaceRecord = v2(0.8).into();
        record.quality = Some(0.25);
        let bytes = codec::encode(&record);
        assert_eq!(decode_face(1, &bytes).unwrap().quality, Some(0.25));
        // Cut inside the schema-2 fields: neither layout reads it, and the error names the face.
        let err = decode_face(1, &bytes[..10]).unwrap_err();
        assert!(err.to_string().contains("face 1"), "{err}");
    }
}
