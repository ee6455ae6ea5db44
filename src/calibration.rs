//! Thresholds calibrated on the database's own galleries.
//!
//! LFW's impostor distances do not transfer to every domain: in dark, uniformly lit photos
//! different people lie much closer. So the database keeps a bounded sample of its own
//! galleries: whole people, chosen by a hash of their id (the people with the smallest hashes,
//! up to `SAMPLE_FACES` faces), stored in the database and updated on enrolment and removal.
//! The distances between the sampled faces of different people (impostor) and of the same
//! person (genuine) are computed from their stored vectors when a decision first needs them
//! (≤ 500k distances, a fraction of a second) and kept until the gallery changes.
//!
//! Once the sample holds `MIN_PEOPLE` people with two or more faces, decisions read the
//! impostor tail from it instead of LFW's (`decision`).

use std::collections::BTreeMap;

use fdb_storage::{FaceId, PersonId, Store};
use serde::{Deserialize, Serialize};

use crate::decision::LowerTail;
use crate::error::{FdbError, Result};

/// Meta key of the stored sample.
const META_SAMPLE: &str = "fdb.calibration.sample";
/// The most faces the sample holds: up to ~500k impostor distances.
pub const SAMPLE_FACES: usize = 1000;
/// People with ≥ 2 faces the sample needs before its own tail replaces LFW's.
pub const MIN_PEOPLE: usize = 20;

/// The sampled people (by id) with their hash and faces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GallerySample {
    people: BTreeMap<u64, Vec<u64>>,
}

/// A person's place in the sampling order (splitmix64 of the id: fixed, well spread).
pub fn person_hash(person: PersonId) -> u64 {
    let mut z = person.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl GallerySample {
    /// The stored sample, or one drawn afresh from the whole gallery (not saved) when there is none.
    pub fn peek(store: &Store) -> Result<Self> {
        match store.meta_get(META_SAMPLE)? {
            Some(_) => Self::load(store),
            None => Self::draw(store),
        }
    }

    /// The stored sample, or one drawn afresh from the whole gallery when there is none (a
    /// database written before calibration existed).
    pub fn load(store: &Store) -> Result<Self> {
        match store.meta_get(META_SAMPLE)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| FdbError::Corrupt { path: store.path().to_path_buf(), reason: format!("the calibration sample is unreadable: {e}") }),
            None => {
                let sample = Self::draw(store)?;
                sample.save(store)?;
                Ok(sample)
            }
        }
    }

    /// Store the sample in the database.
    pub fn save(&self, store: &Store) -> Result<()> {
        let bytes = serde_json::to_vec(self).expect("the sample is plain data");
        Ok(store.meta_set(META_SAMPLE, &bytes)?)
    }

    /// Draw the sample from every person in the store: people in hash order while they fit.
    pub fn draw(store: &Store) -> Result<Self> {
        let mut people: Vec<PersonId> = store.people()?.into_iter().map(|p| p.id).collect();
        people.sort_by_key(|p| person_hash(*p));
        let mut sample = Self::default();
        for person in people {
            let faces: Vec<u64> = store.faces_of(person)?.into_iter().map(|f| f.id.0).collect();
            if faces.is_empty() {
                continue;
            }
            if sample.faces() + faces.len() > SAMPLE_FACES && !sample.people.is_empty() {
                break;
            }
            sample.people.insert(person.0, faces);
            sample.trim();
        }
        Ok(sample)
    }

    /// How many faces the sample holds.
    pub fn faces(&self) -> usize {
        self.people.values().map(Vec::len).sum()
    }

    /// Take newly enrolled faces into account: a sampled person's face joins; a person who
    /// hashes below the sample's largest hash (or finds room) joins with all their faces; the
    /// largest hashes leave while the sample is over its size. Returns whether it changed.
    pub fn add(&mut self, store: &Store, added: &[(PersonId, FaceId)]) -> Result<bool> {
        let mut changed = false;
        for &(person, face) in added {
            if let Some(faces) = self.people.get_mut(&person.0) {
                if !faces.contains(&face.0) {
                    faces.push(face.0);
                    changed = true;
                }
                continue;
            }
            let largest = self.people.keys().map(|p| person_hash(PersonId(*p))).max();
            let joins = self.faces() < SAMPLE_FACES || largest.is_some_and(|h| person_hash(person) < h);
            if joins {
                let faces = store.faces_of(person)?.into_iter().map(|f| f.id.0).collect();
                self.people.insert(person.0, faces);
                changed = true;
            }
        }
        self.trim();
        Ok(changed)
    }

    /// Drop people with the largest hashes while over size (one person always stays, cut to size).
    fn trim(&mut self) {
        while self.faces() > SAMPLE_FACES && self.people.len() > 1 {
            let last = *self.people.keys().max_by_key(|p| person_hash(PersonId(**p))).expect("non-empty");
            self.people.remove(&last);
        }
        if let Some(faces) = self.people.values_mut().next() {
            faces.truncate(SAMPLE_FACES);
        }
    }

    /// The distances between the sampled faces' vectors (`vectors` names them in the store).
    /// Faces whose vectors are missing (removed since) are skipped.
    pub fn distances(&self, store: &Store, vectors: &str) -> Result<GalleryDistances> {
        let mut rows: Vec<(u64, Vec<f32>)> = Vec::with_capacity(self.faces());
        for (&person, faces) in &self.people {
            for &face in faces {
                if let Some(v) = store.embedding(FaceId(face), vectors)? {
                    rows.push((person, v));
                }
            }
        }
        let mut impostor = Vec::with_capacity(rows.len() * rows.len().saturating_sub(1) / 2);
        let mut genuine = Vec::new();
        for (i, (pa, a)) in rows.iter().enumerate() {
            for (pb, b) in &rows[i + 1..] {
                let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                if pa == pb {
                    genuine.push(d);
                } else {
                    impostor.push(d);
                }
            }
        }
        let mut per_person: BTreeMap<u64, usize> = BTreeMap::new();
        for (p, _) in &rows {
            *per_person.entry(*p).or_default() += 1;
        }
        genuine.sort_unstable_by(f32::total_cmp);
        Ok(GalleryDistances {
            faces: rows.len(),
            people_with_two: per_person.values().filter(|n| **n >= 2).count(),
            impostor: LowerTail::from_distances(impostor),
            genuine,
        })
    }
}

/// What the sample says about the gallery.
#[derive(Debug, Clone)]
pub struct GalleryDistances {
    /// Sampled faces whose vectors were read.
    pub faces: usize,
    /// Sampled people with two or more faces.
    pub people_with_two: usize,
    /// The lower tail of the distances between sampled faces of different people.
    pub impostor: LowerTail,
    /// Same-person distances, ascending.
    pub genuine: Vec<f32>,
}

impl GalleryDistances {
    /// Enough of the gallery for its own tail to replace LFW's.
    pub fn is_enough(&self) -> bool {
        self.people_with_two >= MIN_PEOPLE
    }

    /// The fraction of same-person pairs closer than `t` (how many genuine pairs a threshold keeps).
    pub fn genuine_accept(&self, t: f32) -> Option<f64> {
        if self.genuine.is_empty() {
            return None;
        }
        Some(self.genuine.partition_point(|d| *d < t) as f64 / self.genuine.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_person_hash_spreads_consecutive_ids() {
        let hashes: Vec<u64> = (1..=4).map(|i| person_hash(PersonId(i))).collect();
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        assert_ne!(hashes, sorted, "consecutive ids should not hash in order");
        assert_eq!(person_hash(PersonId(7)), person_hash(PersonId(7)));
    }
}
