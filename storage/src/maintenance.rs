//! Keeping the index and the store in step: load at open, snapshot, rebuild, compaction,
//! model switch, flush and stats.

use crate::ann::{AnnIndex, IndexPoint};
use crate::codec::{self, id_key};
use crate::error::{Result, StoreError};
use crate::snapshot;
use crate::vector_file;
use crate::store::{check_model_id, meta_dim_key, Store, WriterGuard, META_ACTIVE_MODEL};
use crate::types::{FaceId, IndexLoad, Stats};
use std::collections::{HashMap, HashSet};

/// Vectors read per step when catching up after a snapshot.
const REBUILD_CHUNK: usize = 20_000;
/// Embeddings written per sled batch during a model switch.
const SWITCH_BATCH: usize = 5_000;

impl Store {
    /// At open: the snapshot plus the faces stored after it, or a rebuild when the snapshot
    /// is missing, corrupt or for another model.
    pub(crate) fn load_index(&self) -> Result<()> {
        let _w = self.writer.lock();
        let Some(model) = self.active_model()? else {
            return Ok(());
        };
        let tombstones = self.stored_tombstones()?;
        let vector = |id: u64| self.vectors.get(&model, id);
        let persons = self.person_of_each_face()?;
        {
            let mut damage = self.damage.lock();
            damage.missing_vectors = self.missing_vectors(&persons)?;
            damage.unreadable_files = self.vectors.unreadable();
        }
        match snapshot::load(&self.t.snapshot, &model, &self.scratch_dir(), vector, tombstones, persons)? {
            Ok(index) => {
                // Live faces of the model stored after the snapshot. The index took every face's
                // person, those stored after the snapshot too; a row without one is garbage.
                let covered = index.covered_upto();
                let mut after: Vec<u64> = self
                    .vectors
                    .with(&model, |f| f.ids().filter(|&id| id > covered && index.person_of(id).is_some()).collect())
                    .unwrap_or_default();
                after.sort_unstable();
                let added = after.len();
                for ids in after.chunks(REBUILD_CHUNK) {
                    let chunk = ids
                        .iter()
                        .map(|&face| {
                            let unit = self.vectors.get(&model, face)?.ok_or_else(|| {
                                StoreError::Corrupt(format!("the vector of face {face} vanished while loading"))
                            })?;
                            Ok(IndexPoint { face, person: index.person_of(face).expect("filtered above"), unit })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    index.insert_batch(&chunk);
                }
                *self.index.write() = Some(index);
                *self.index_load.lock() = IndexLoad::Snapshot { added };
            }
            Err(why) => {
                if snapshot::is_damage(&why) {
                    self.damage.lock().snapshot = Some(why);
                }
                self.rebuild_index_locked()?;
                *self.index_load.lock() = IndexLoad::Rebuilt;
            }
        }
        Ok(())
    }

    fn stored_tombstones(&self) -> Result<HashSet<u64>> {
        self.t.tombstones.iter().keys().map(|k| codec::key_id(&k?, "tombstones")).collect()
    }

    /// FaceId → PersonId of every stored face, from the keys of the by-person tree alone.
    pub(crate) fn person_of_each_face(&self) -> Result<HashMap<u64, u64>> {
        let mut persons = HashMap::with_capacity(self.t.by_person.len());
        for key in self.t.by_person.iter().keys() {
            let (person, face) = codec::key_pair(&key?, "faces by person")?;
            persons.insert(face, person);
        }
        Ok(persons)
    }

    /// Builds the index afresh from the active model's embeddings (no tombstones), stores its
    /// snapshot, forgets the tombstones it made obsolete, and then drops their vectors.
    pub(crate) fn rebuild_index_locked(&self) -> Result<()> {
        let Some(model) = self.active_model()? else {
            *self.index.write() = None;
            return Ok(());
        };
        let persons = self.person_of_each_face()?;
        let mut points = Vec::new();
        if let Some(read) = self.vectors.with(&model, |f| {
            f.for_each(|face, unit| {
                // Rows without a live face are tombstones and garbage.
                if let Some(&person) = persons.get(&face) {
                    points.push(IndexPoint { face, person, unit });
                }
                Ok(())
            })
        }) {
            read?;
        }
        points.sort_unstable_by_key(|p| p.face);
        let index = match self.dim_of(&model)? {
            Some(dim) if !points.is_empty() => {
                Some(AnnIndex::build(&self.opts.index, &model, dim, points, &self.scratch_dir())?)
            }
            _ => None, // no embeddings of this model yet
        };
        if let Some(index) = &index {
            snapshot::write(&self.t.snapshot, index, &self.scratch_dir())?;
            index.mark_saved();
        } else {
            self.t.snapshot.clear()?;
        }
        *self.index.write() = index;
        self.t.tombstones.clear()?;
        // Dropping rows must wait until no durable record can name them.
        self.db.flush()?;
        self.vectors.retain(&model, |face| persons.contains_key(&face))?;
        Ok(())
    }

    /// Runs a removal's transaction with its faces already hidden from searches: a search no
    /// longer reads the store, so hiding them only after the commit would let one that started
    /// after the faces were gone still return them. Faces this call hid are shown again if the
    /// transaction fails.
    pub(crate) fn remove_faces_locked<T>(&self, faces: &[FaceId], w: &WriterGuard, commit: impl FnOnce() -> Result<T>) -> Result<T> {
        let hidden: Vec<FaceId> = match self.index.read().as_ref() {
            Some(index) => faces.iter().copied().filter(|f| index.add_tombstone(f.0)).collect(),
            None => Vec::new(),
        };
        match commit() {
            Ok(value) => {
                self.after_removal_locked(faces, w)?;
                Ok(value)
            }
            Err(e) => {
                if let Some(index) = self.index.read().as_ref() {
                    hidden.iter().for_each(|f| index.remove_tombstone(f.0));
                }
                Err(e)
            }
        }
    }

    /// Marks removed faces in the index, and compacts once tombstones pass the threshold.
    fn after_removal_locked(&self, faces: &[FaceId], _w: &WriterGuard) -> Result<()> {
        let needs_compaction = match self.index.read().as_ref() {
            None => false,
            Some(index) => {
                for f in faces {
                    index.add_tombstone(f.0);
                }
                index.tombstone_count() as f32 > self.opts.compact_fraction * index.points() as f32
            }
        };
        if needs_compaction {
            self.rebuild_index_locked()?;
        }
        Ok(())
    }

    /// Makes every acknowledged write durable. Also stores a new index snapshot once enough
    /// faces were indexed since the last one, so that open stays fast.
    pub fn flush(&self) -> Result<()> {
        let _w = self.writer.lock();
        self.snapshot_if_due_locked(self.opts.snapshot_after.max(1))?;
        self.db.flush()?;
        Ok(())
    }

    /// Closes the database as a drop does (the index graph saved, everything flushed, the lock
    /// given back), but reports what failed: a drop can only swallow it.
    pub fn close(self) -> Result<()> {
        {
            let _w = self.writer.lock();
            self.snapshot_if_due_locked(1)?;
            self.db.flush()?;
        }
        crate::dir::make_private(&self.path)?;
        Ok(()) // the drop that follows finds nothing left to save
    }

    fn snapshot_if_due_locked(&self, min_unsaved: usize) -> Result<()> {
        if let Some(index) = self.index.read().as_ref() {
            if index.unsaved() >= min_unsaved && index.points() > 0 {
                snapshot::write(&self.t.snapshot, index, &self.scratch_dir())?;
                index.mark_saved();
            }
        }
        Ok(())
    }

    /// Rebuilds the index without tombstones, drops the vectors of removed faces by every
    /// model, and flushes.
    pub fn compact(&self) -> Result<()> {
        let _w = self.writer.lock();
        self.rebuild_index_locked()?;
        self.db.flush()?;
        let live = self.person_of_each_face()?;
        for model in self.vectors.models() {
            self.vectors.retain(&model, |face| live.contains_key(&face))?;
        }
        Ok(())
    }

    /// Stores every face's embedding by `new_model`, then makes it the active model in one
    /// atomic step, then rebuilds the index. A crash before the flip leaves the old model
    /// active and whole; every live face must receive an embedding.
    pub fn switch_model<I>(&self, new_model: &str, embeddings: I) -> Result<()>
    where
        I: IntoIterator<Item = (FaceId, Vec<f32>)>,
    {
        check_model_id(new_model)?;
        let _w = self.writer.lock();
        if self.active_model()?.as_deref() == Some(new_model) {
            return Err(StoreError::InvalidArgument(format!("model {new_model:?} is already active")));
        }
        let mut dim = None;
        let mut covered = HashSet::new();
        let mut batch: Vec<(u64, Vec<f32>)> = Vec::new();
        let append = |batch: &mut Vec<(u64, Vec<f32>)>, dim: usize| -> Result<()> {
            self.vectors.append(new_model, dim, &vector_file::borrowed(batch))?;
            batch.clear();
            Ok(())
        };
        for (face, vector) in embeddings {
            if !self.t.faces.contains_key(id_key(face.0))? {
                return Err(StoreError::NotFound(format!("switch_model: no face {}", face.0)));
            }
            let unit = codec::normalized(&vector)?;
            if *dim.get_or_insert(unit.len()) != unit.len() {
                return Err(StoreError::InvalidEmbedding(format!(
                    "switch_model: face {} has {} dimensions, others {}",
                    face.0,
                    unit.len(),
                    dim.unwrap_or(0)
                )));
            }
            if covered.is_empty() {
                // Leftovers of an interrupted switch, or vectors by this model added earlier.
                self.vectors.recreate(new_model, unit.len())?;
            }
            covered.insert(face.0);
            batch.push((face.0, unit));
            if batch.len() == SWITCH_BATCH {
                append(&mut batch, dim.unwrap_or(0))?;
            }
        }
        if let Some(dim) = dim {
            append(&mut batch, dim)?;
        }
        let missing = self.t.faces.len().saturating_sub(covered.len());
        if missing > 0 {
            return Err(StoreError::InvalidArgument(format!(
                "switch_model: {missing} faces got no embedding by {new_model:?}; the active model is unchanged"
            )));
        }
        // The appends were synced, so the flip can never point at missing vectors.
        let mut flip = sled::Batch::default();
        flip.insert(META_ACTIVE_MODEL, new_model.as_bytes());
        if let Some(dim) = dim {
            flip.insert(meta_dim_key(new_model), &(dim as u64).to_be_bytes());
        }
        self.t.meta.apply_batch(flip)?;
        self.db.flush()?;
        self.rebuild_index_locked()?;
        self.db.flush()?;
        Ok(())
    }

    /// Live faces a search compares a query with (the index's points less its tombstones);
    /// constant time, unlike counting the `faces` tree.
    pub fn searchable_faces(&self) -> usize {
        self.index.read().as_ref().map_or(0, |i| i.points().saturating_sub(i.tombstone_count()))
    }

    /// Counts, the active model and bytes on disk (the snapshot and the vector files as parts of the total).
    pub fn stats(&self) -> Result<Stats> {
        let (tombstones, index_points) = match self.index.read().as_ref() {
            Some(i) => (i.tombstone_count(), i.points()),
            None => (0, 0),
        };
        Ok(Stats {
            people: self.t.people.len(),
            faces: self.t.faces.len(),
            tombstones,
            index_points,
            active_model: self.active_model()?,
            disk_bytes: disk_bytes(&self.path),
            snapshot_bytes: snapshot::stored_bytes(&self.t.snapshot)?,
            vector_bytes: self.vectors.bytes(),
        })
    }
}

impl Drop for Store {
    /// Saves the index graph on a clean close, so the next open inserts nothing.
    fn drop(&mut self) {
        let _w = self.writer.lock();
        let _ = self.snapshot_if_due_locked(1);
        let _ = self.db.flush();
        // Files sled made since the open (blobs, snapshots) are private too.
        let _ = crate::dir::make_private(&self.path);
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Bytes of all files under a database directory (sled's own `size_on_disk` misses some).
pub fn disk_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
