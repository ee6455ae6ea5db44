//! `verify_integrity`: the trees agree with each other and with the index.

use crate::codec::{self, id_key, pair_key};
use crate::error::{Result, StoreError};
use crate::faces::decode_face;
use crate::people::decode_person;
use crate::store::Store;
use std::collections::HashSet;

/// Problems listed in the error before the rest are summarised as a count.
const MAX_REPORTED: usize = 20;

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, p: String) {
        self.0.push(p);
    }
}

impl Store {
    /// Checks that every reference resolves (names, sha256 and person indexes, crops,
    /// embeddings), that every vector a face or tombstone needs reads back with its checksum,
    /// and that the index holds exactly the live faces of the active model, plus tombstones.
    /// Returns `Corrupt` listing what is wrong.
    pub fn verify_integrity(&self) -> Result<()> {
        let _w = self.writer.lock();
        let mut p = Problems::default();
        let people = self.check_people(&mut p)?;
        let faces = self.check_faces(&people, &mut p)?;
        self.check_secondary_indexes(&faces, &mut p)?;
        self.check_index(&faces, &mut p)?;
        if p.0.is_empty() {
            return Ok(());
        }
        let more = p.0.len().saturating_sub(MAX_REPORTED);
        let mut msg = p.0.into_iter().take(MAX_REPORTED).collect::<Vec<_>>().join("; ");
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        Err(StoreError::Corrupt(msg))
    }

    fn check_people(&self, p: &mut Problems) -> Result<HashSet<u64>> {
        let mut ids = HashSet::new();
        for kv in self.t.people.iter() {
            let (k, v) = kv?;
            let id = codec::key_id(&k, "people")?;
            let person = decode_person(id, &v)?;
            match self.t.names.get(person.name.as_bytes())? {
                Some(n) if n.as_ref() == id_key(id) => {}
                _ => p.add(format!("person {id} ({:?}) is missing from the name index", person.name)),
            }
            ids.insert(id);
        }
        for kv in self.t.names.iter() {
            let (name, id) = kv?;
            let id = codec::key_id(&id, "people by name")?;
            if !ids.contains(&id) {
                p.add(format!("name {:?} points to missing person {id}", String::from_utf8_lossy(&name)));
            }
        }
        Ok(ids)
    }

    fn check_faces(&self, people: &HashSet<u64>, p: &mut Problems) -> Result<HashSet<u64>> {
        let active = self.active_model()?;
        let dim = active.as_deref().map(|m| self.dim_of(m)).transpose()?.flatten();
        if let Some(model) = active.as_deref() {
            match self.vectors.with(model, |f| f.dim()) {
                Some(file_dim) if Some(file_dim) != dim => {
                    p.add(format!("the vector file of {model:?} holds {file_dim} dimensions, the store {dim:?}"))
                }
                _ => {}
            }
        }
        let mut ids = HashSet::new();
        for kv in self.t.faces.iter() {
            let (k, v) = kv?;
            let id = codec::key_id(&k, "faces")?;
            let face = decode_face(id, &v)?;
            if !people.contains(&face.person.0) {
                p.add(format!("face {id} belongs to missing person {}", face.person.0));
            }
            if self.t.sha.get(face.source_sha256)?.as_deref() != Some(&id_key(id)[..]) {
                p.add(format!("face {id} is missing from the sha256 index"));
            }
            if !self.t.by_person.contains_key(pair_key(face.person.0, id))? {
                p.add(format!("face {id} is missing from its person's face list"));
            }
            if !self.t.crops.contains_key(k.as_ref())? {
                p.add(format!("face {id} has no crop"));
            }
            if let Some(model) = active.as_deref() {
                if !self.vectors.contains(model, id) {
                    p.add(format!("face {id} has no embedding by the active model"));
                }
            }
            ids.insert(id);
        }
        Ok(ids)
    }

    fn check_secondary_indexes(&self, faces: &HashSet<u64>, p: &mut Problems) -> Result<()> {
        for kv in self.t.sha.iter() {
            let (_, id) = kv?;
            let id = codec::key_id(&id, "faces by sha256")?;
            if !faces.contains(&id) {
                p.add(format!("sha256 index points to missing face {id}"));
            }
        }
        for k in self.t.by_person.iter().keys() {
            let k = k?;
            let id = codec::key_id(k.get(8..).unwrap_or(&[]), "faces by person")?;
            if !faces.contains(&id) {
                p.add(format!("a person's face list names missing face {id}"));
            }
        }
        for k in self.t.crops.iter().keys() {
            let id = codec::key_id(&k?, "crops")?;
            if !faces.contains(&id) {
                p.add(format!("crop of missing face {id}"));
            }
        }
        // Vectors of removed faces are garbage until a rebuild, so only tombstones are checked.
        let active = self.active_model()?;
        for k in self.t.tombstones.iter().keys() {
            let id = codec::key_id(&k?, "tombstones")?;
            if faces.contains(&id) {
                p.add(format!("live face {id} is also a tombstone"));
            }
            if !active.as_deref().is_some_and(|m| self.vectors.contains(m, id)) {
                p.add(format!("tombstone {id} has no vector by the active model"));
            }
        }
        for model in self.models() {
            let read = self.vectors.with(&model, |f| f.for_each(|_, _| Ok(())));
            if let Some(Err(e)) = read {
                p.add(format!("vectors by {model:?}: {e}"));
            }
        }
        Ok(())
    }

    /// The index must hold every live face of the active model, and everything else it holds
    /// must be a tombstone (so it can never be returned).
    fn check_index(&self, faces: &HashSet<u64>, p: &mut Problems) -> Result<()> {
        let index = self.index.read();
        let Some(index) = index.as_ref() else {
            if self.active_model()?.is_some() && !faces.is_empty() {
                p.add("faces exist but there is no index".into());
            }
            return Ok(());
        };
        if Some(&index.model) != self.active_model()?.as_ref() {
            p.add(format!("index is for model {:?}, not the active one", index.model));
        }
        let points: HashSet<u64> = index.point_ids().into_iter().collect();
        let tombstones = index.tombstones();
        for id in faces {
            if !points.contains(id) {
                p.add(format!("face {id} is not in the index"));
            }
        }
        for id in &points {
            if !faces.contains(id) && !tombstones.contains(id) {
                p.add(format!("index point {id} is neither a live face nor a tombstone"));
            }
        }
        Ok(())
    }
}
