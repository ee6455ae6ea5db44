//! Enrolment that settles "whose" and "already stored?" under the writer lock: people are found
//! or created by name, and a face whose source is already stored (or earlier in the batch) is a
//! duplicate, not an error. Writers that enrol the same new person, or the same photo, at the
//! same time therefore never fail; each face is stored once.

use std::collections::HashMap;

use crate::faces::Units;
use crate::error::Result;
use crate::store::Store;
use crate::types::{FaceId, NewFace, NewPerson, PersonId};

/// Whose face a face given to [`Store::enrol_faces`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owner {
    /// An existing person (a missing one fails the batch with `NotFound`).
    Id(PersonId),
    /// The person with this name, created together with their first face if there is none.
    Name(String),
}

/// What [`Store::enrol_faces`] did with one face.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enrolled {
    /// Stored.
    Added {
        /// The new face's id.
        face: FaceId,
        /// Whose face it is.
        person: PersonId,
    },
    /// A face with the same `source_sha256` is stored already (by an earlier enrolment, or as
    /// an earlier face of this batch): nothing was written for this one.
    Duplicate {
        /// The stored face.
        face: FaceId,
    },
}

impl Enrolled {
    /// The face that holds this source now: the new one, or the one stored before.
    pub fn face(self) -> FaceId {
        match self {
            Enrolled::Added { face, .. } | Enrolled::Duplicate { face } => face,
        }
    }
}

impl Store {
    /// Stores faces, each under its [`Owner`], in one transaction (all or none), and says per
    /// face whether it was added or a duplicate. The owner and duplicate checks run under the
    /// writer lock, so concurrent callers see each other's people and faces: two writers that
    /// create the same person end with one person, and one photo enrolled twice is one face.
    /// Each face's `person` field is replaced by its owner's id.
    pub fn enrol_faces(&self, faces: Vec<(Owner, NewFace)>) -> Result<Vec<Enrolled>> {
        let w = self.writer.lock();
        let mut outcomes: Vec<Option<Enrolled>> = vec![None; faces.len()];
        let mut first_of: HashMap<[u8; 32], usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut by_name: HashMap<String, PersonId> = HashMap::new();
        let mut new_people: Vec<NewPerson> = Vec::new();
        let mut slots: Vec<(usize, PersonId)> = Vec::new();
        let mut to_store: Vec<NewFace> = Vec::new();
        for (i, (owner, mut face)) in faces.into_iter().enumerate() {
            if let Some(stored) = self.face_by_sha256(&face.source_sha256)? {
                outcomes[i] = Some(Enrolled::Duplicate { face: stored });
                continue;
            }
            if let Some(&first) = first_of.get(&face.source_sha256) {
                repeats.push((i, first)); // settled once the first copy is
                continue;
            }
            first_of.insert(face.source_sha256, i);
            let person = match owner {
                Owner::Id(id) => id,
                Owner::Name(name) => match by_name.get(&name) {
                    Some(&id) => id,
                    None => {
                        let id = match self.person_by_name(&name)? {
                            Some(p) => p.id,
                            None => {
                                let id = self.new_person_id()?;
                                new_people.push(NewPerson { id, name: name.clone(), meta: Default::default() });
                                id
                            }
                        };
                        by_name.insert(name, id);
                        id
                    }
                },
            };
            face.person = person;
            slots.push((i, person));
            to_store.push(face);
        }
        let (ids, active, to_index) = self.store_faces_locked(&new_people, to_store, Units::Normalise, &w)?;
        self.index_new_locked(&active, to_index, &w)?;
        for ((i, person), face) in slots.into_iter().zip(ids) {
            outcomes[i] = Some(Enrolled::Added { face, person });
        }
        for (repeat, first) in repeats {
            let face = outcomes[first].expect("the first copy is settled").face();
            outcomes[repeat] = Some(Enrolled::Duplicate { face });
        }
        Ok(outcomes.into_iter().map(|o| o.expect("every face is settled")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StoreOptions;

    fn face(sha: u8, x: f32) -> NewFace {
        NewFace {
            person: PersonId(0),
            source_name: format!("{sha}.jpg"),
            source_sha256: [sha; 32],
            bbox: [0.0; 4],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
            quality: Some(0.5),
            model_id: "m".into(),
            crop: vec![sha],
            embedding: vec![1.0, x, 0.0],
        }
    }

    #[test]
    fn people_are_found_or_created_and_repeats_are_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let bob = store.add_person("bob", Default::default()).unwrap();
        let (ann, bob_name) = (Owner::Name("ann".into()), Owner::Name("bob".into()));
        let out = store
            .enrol_faces(vec![
                (ann.clone(), face(1, 0.1)),
                (bob_name.clone(), face(2, 0.2)),
                (ann.clone(), face(3, 0.3)),
                (bob_name, face(1, 0.1)), // the same source as the first: a duplicate of it
            ])
            .unwrap();
        let Enrolled::Added { face: f1, person: ann_id } = out[0] else { panic!("{out:?}") };
        assert_eq!(out[1], Enrolled::Added { face: out[1].face(), person: bob });
        assert_eq!(out[2], Enrolled::Added { face: out[2].face(), person: ann_id });
        assert_eq!(out[3], Enrolled::Duplicate { face: f1 });
        assert_eq!(store.person_by_name("ann").unwrap().unwrap().id, ann_id);
        assert_eq!((store.person_count(), store.face_count()), (2, 3));
        // Again: stored sources are duplicates, a new one joins the existing person by id.
        let again = store.enrol_faces(vec![(ann, face(2, 0.2)), (Owner::Id(ann_id), face(4, 0.4))]).unwrap();
        assert_eq!(again[0], Enrolled::Duplicate { face: out[1].face() });
        assert_eq!(again[1], Enrolled::Added { face: again[1].face(), person: ann_id });
        assert_eq!(store.face(again[1].face()).unwrap().unwrap().person, ann_id);
        assert_eq!((store.person_count(), store.face_count()), (2, 4));
        // A missing person by id fails the whole batch; nothing is written.
        let err = store.enrol_faces(vec![(Owner::Name("cy".into()), face(5, 0.5)), (Owner::Id(PersonId(999)), face(6, 0.6))]);
        assert!(err.is_err());
        assert_eq!((store.person_count(), store.face_count()), (2, 4));
        assert!(store.person_by_name("cy").unwrap().is_none());
    }
}
