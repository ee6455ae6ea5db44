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
            if !self.crops().contains_key(k.as_ref())? {
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
        for k in self.crops().iter().keys() {
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
        for model in self.vector_ids() {
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

#[cfg(test)]
mod tests {
    //! `verify_integrity` is the oracle of the crash, migration and API tests: here it is shown
    //! to report each kind of damage it claims to find.
    use crate::codec::{id_key, pair_key};
    use crate::test_vectors::unit_vectors;
    use crate::{FaceId, NewFace, Store, StoreError, StoreOptions};
    use std::path::Path;

    const DIM: usize = 16;

    /// Two people of three faces each, on model "m1"; the face ids in order.
    fn store(dir: &Path) -> (Store, Vec<FaceId>) {
        let store = Store::open(&dir.join("db"), StoreOptions::default()).unwrap();
        store.set_active_model("m1").unwrap();
        let vectors = unit_vectors(6, DIM, 3);
        let mut ids = Vec::new();
        for p in 0..2 {
            let person = store.add_person(&format!("p{p}"), Default::default()).unwrap();
            let faces = (0..3).map(|i| {
                let n = p * 3 + i;
                let mut sha = [0u8; 32];
                sha[0] = n as u8 + 1;
                NewFace {
                    person,
                    source_name: format!("{n}.jpg"),
                    source_sha256: sha,
                    bbox: [0.0; 4],
                    landmarks: [[0.0; 2]; 5],
                    score: 1.0,
                    quality: None,
                    model_id: "m1".into(),
                    crop: vec![n as u8],
                    embedding: vectors[n].clone(),
                }
            });
            ids.extend(store.add_faces(faces.collect()).unwrap());
        }
        store.verify_integrity().expect("the undamaged store passes");
        (store, ids)
    }

    fn corrupt_message(store: &Store) -> String {
        match store.verify_integrity() {
            Err(StoreError::Corrupt(msg)) => msg,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_row_of_each_secondary_tree_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store(dir.path());
        let (a, b, c) = (ids[1].0, ids[2].0, ids[4].0);
        let face_a = store.face(ids[1]).unwrap().unwrap();
        store.t.by_person.remove(pair_key(face_a.person.0, a)).unwrap().expect("the row was there");
        store.crops().remove(id_key(b)).unwrap().expect("the crop was there");
        let face_c = store.face(ids[4]).unwrap().unwrap();
        store.t.sha.remove(face_c.source_sha256).unwrap().expect("the sha row was there");
        store.t.names.remove("p0".as_bytes()).unwrap().expect("the name was there");
        let msg = corrupt_message(&store);
        for want in [
            format!("face {a} is missing from its person's face list"),
            format!("face {b} has no crop"),
            format!("face {c} is missing from the sha256 index"),
            "(\"p0\") is missing from the name index".to_string(),
        ] {
            assert!(msg.contains(&want), "{want:?} not in: {msg}");
        }
    }

    #[test]
    fn a_vector_row_failing_its_crc_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store(dir.path());
        let victim = ids[3].0;
        store.flush().unwrap();
        drop(store);
        // Rows follow a 16-byte header: id (8), crc32 (4), zero (4), then the floats. Flip a bit
        // of the victim's first float.
        let file = dir.path().join("db/vectors").join(format!("{}.f32", crate::codec::hex(b"m1")));
        let mut bytes = std::fs::read(&file).unwrap();
        let row_len = 16 + 4 * DIM;
        let row = (0..(bytes.len() - 16) / row_len)
            .find(|r| bytes[16 + r * row_len..][..8] == victim.to_le_bytes())
            .expect("the victim's row");
        bytes[16 + row * row_len + 16] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();

        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let msg = corrupt_message(&store);
        assert!(msg.contains(&format!("face {victim} has no embedding by the active model")), "{msg}");
        // The other faces are intact, and named nowhere.
        for id in ids.iter().filter(|id| id.0 != victim) {
            assert!(!msg.contains(&format!("face {} ", id.0)), "face {} reported: {msg}", id.0);
        }
    }

    #[test]
    fn an_index_point_the_store_does_not_hold_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store(dir.path());
        // Take face 5 out of every sled tree behind the index's back: the trees agree with
        // each other, the index still holds the point.
        let id = ids[5].0;
        let face = store.face(ids[5]).unwrap().unwrap();
        store.t.faces.remove(id_key(id)).unwrap().unwrap();
        store.crops().remove(id_key(id)).unwrap().unwrap();
        store.t.sha.remove(face.source_sha256).unwrap().unwrap();
        store.t.by_person.remove(pair_key(face.person.0, id)).unwrap().unwrap();
        let msg = corrupt_message(&store);
        assert_eq!(msg, format!("index point {id} is neither a live face nor a tombstone"));
    }

    #[test]
    fn an_index_of_another_model_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store(dir.path());
        // The active model changed in sled alone, as a torn switch would leave it.
        store.t.meta.insert(crate::store::META_ACTIVE_MODEL, "m2".as_bytes()).unwrap();
        let msg = corrupt_message(&store);
        assert!(msg.contains("index is for model \"m1\", not the active one"), "{msg}");
    }
}
