//! People: add, get, list, rename, remove (which removes their faces too).

use crate::codec::{self, id_key};
use crate::error::{Result, StoreError};
use crate::store::{tx, Store};
use crate::txn::{abort, TxResult};
use sled::Transactional;
use crate::types::{FaceId, NewPerson, Person, PersonId};
use sled::transaction::TransactionalTree;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
struct PersonRecord {
    name: String,
    created_ms: u64,
    meta: BTreeMap<String, String>,
}

pub(crate) fn decode_person(id: u64, bytes: &[u8]) -> Result<Person> {
    let r: PersonRecord = codec::decode(bytes, &format!("person {id}"))?;
    Ok(Person { id: PersonId(id), name: r.name, created_ms: r.created_ms, meta: r.meta })
}

fn encode_person(p: &Person) -> Vec<u8> {
    codec::encode(&PersonRecord { name: p.name.clone(), created_ms: p.created_ms, meta: p.meta.clone() })
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(StoreError::InvalidArgument("a person's name cannot be empty".into()));
    }
    Ok(())
}

impl Store {
    /// Adds a person; names are unique and case-sensitive. A person with no faces is what a
    /// crash between this and `add_faces` leaves; `add_faces_with_people` creates a person
    /// with their first face instead.
    pub fn add_person(&self, name: &str, meta: BTreeMap<String, String>) -> Result<PersonId> {
        check_name(name)?;
        let _w = self.writer.lock();
        let person = NewPerson { id: self.new_person_id()?, name: name.to_string(), meta };
        let trees = self.tx_trees();
        trees.as_slice().transaction(|t| self.tx_add_person(t, &person))?;
        Ok(person.id)
    }

    /// An id for a person that `add_faces_with_people` will create.
    pub fn new_person_id(&self) -> Result<PersonId> {
        Ok(PersonId(self.db.generate_id()?))
    }

    /// Creates a person inside a transaction, refusing a name that is taken.
    pub(crate) fn tx_add_person(&self, t: &[TransactionalTree], person: &NewPerson) -> TxResult<()> {
        check_name(&person.name).or_else(abort)?;
        let name = person.name.as_bytes();
        if t[tx::NAMES].get(name)?.is_some() {
            return abort(StoreError::NameTaken(person.name.clone()));
        }
        let record = Person { id: person.id, name: person.name.clone(), created_ms: codec::now_ms(), meta: person.meta.clone() };
        t[tx::NAMES].insert(name, &id_key(person.id.0))?;
        t[tx::PEOPLE].insert(&id_key(person.id.0), encode_person(&record))?;
        Ok(())
    }

    /// People with no face: what an older fdb left when it was killed between creating a person
    /// and storing their first face.
    pub fn empty_people(&self) -> Result<Vec<Person>> {
        let mut with_faces = std::collections::HashSet::new();
        for key in self.t.by_person.iter().keys() {
            with_faces.insert(codec::key_pair(&key?, "faces by person")?.0);
        }
        Ok(self.people()?.into_iter().filter(|p| !with_faces.contains(&p.id.0)).collect())
    }

    /// Removes a person who has no faces (and nothing if they have one by now).
    pub fn remove_empty_person(&self, id: PersonId) -> Result<bool> {
        let _w = self.writer.lock();
        if self.t.by_person.scan_prefix(id_key(id.0)).next().is_some() {
            return Ok(false);
        }
        let trees = self.tx_trees();
        Ok(trees.as_slice().transaction(|t| -> TxResult<bool> {
            let Some(bytes) = t[tx::PEOPLE].remove(&id_key(id.0))? else {
                return Ok(false);
            };
            let person = decode_person(id.0, &bytes).or_else(abort)?;
            if t[tx::NAMES].get(person.name.as_bytes())?.as_deref() == Some(&id_key(id.0)[..]) {
                t[tx::NAMES].remove(person.name.as_bytes())?;
            }
            Ok(true)
        })?)
    }

    /// A person by id, or `None`.
    pub fn person(&self, id: PersonId) -> Result<Option<Person>> {
        self.t.people.get(id_key(id.0))?.map(|b| decode_person(id.0, &b)).transpose()
    }

    /// A person by name (names are unique and case-sensitive), or `None`.
    pub fn person_by_name(&self, name: &str) -> Result<Option<Person>> {
        match self.t.names.get(name.as_bytes())? {
            None => Ok(None),
            Some(id) => self.person(PersonId(codec::key_id(&id, "person name index")?)),
        }
    }

    /// Everyone, in id (creation) order.
    pub fn people(&self) -> Result<Vec<Person>> {
        self.t
            .people
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode_person(codec::key_id(&k, "people")?, &v)
            })
            .collect()
    }

    /// How many people are stored.
    pub fn person_count(&self) -> usize {
        self.t.people.len()
    }

    /// Renames a person; fails with `NotFound` if `old` does not exist and `NameTaken` if `new` does.
    pub fn rename_person(&self, old: &str, new: &str) -> Result<()> {
        check_name(new)?;
        let _w = self.writer.lock();
        let trees = self.tx_trees();
        trees.as_slice().transaction(|t| -> TxResult<()> {
            let Some(id) = t[tx::NAMES].get(old.as_bytes())? else {
                return abort(StoreError::NotFound(format!("no person named {old:?}")));
            };
            if old == new {
                return Ok(());
            }
            if t[tx::NAMES].get(new.as_bytes())?.is_some() {
                return abort(StoreError::NameTaken(new.to_string()));
            }
            let pid = codec::key_id(&id, "person name index").or_else(abort)?;
            let Some(bytes) = t[tx::PEOPLE].get(id_key(pid))? else {
                return abort(StoreError::Corrupt(format!("name {old:?} points to missing person {pid}")));
            };
            let mut person = decode_person(pid, &bytes).or_else(abort)?;
            person.name = new.to_string();
            t[tx::NAMES].remove(old.as_bytes())?;
            t[tx::NAMES].insert(new.as_bytes(), &id_key(pid))?;
            t[tx::PEOPLE].insert(&id_key(pid), encode_person(&person))?;
            Ok(())
        })?;
        Ok(())
    }

    /// Removes a person and all their faces, atomically; returns how many faces went.
    pub fn remove_person(&self, name: &str) -> Result<usize> {
        let w = self.writer.lock();
        let person = self
            .person_by_name(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no person named {name:?}")))?;
        let faces = self.face_ids_of(person.id)?;
        let active = self.active_model()?;
        let trees = self.tx_trees();
        self.remove_faces_locked(&faces, &w, || {
            Ok(trees.as_slice().transaction(|t| -> TxResult<()> {
                for face in &faces {
                    self.tx_remove_face(t, *face, active.as_deref())?;
                }
                t[tx::NAMES].remove(name.as_bytes())?;
                t[tx::PEOPLE].remove(&id_key(person.id.0))?;
                Ok(())
            })?)
        })?;
        Ok(faces.len())
    }

    pub(crate) fn face_ids_of(&self, person: PersonId) -> Result<Vec<FaceId>> {
        self.t
            .by_person
            .scan_prefix(id_key(person.0))
            .keys()
            .map(|k| Ok(FaceId(codec::key_pair(&k?, "faces by person")?.1)))
            .collect()
    }
}
