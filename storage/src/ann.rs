//! The in-memory HNSW index (hnsw_rs) over unit vectors of one model, with tombstones for deletes.
//!
//! hnsw_rs cannot remove points, so a deleted face stays in the graph (its vector still guides
//! the walk) and is filtered out of answers until the next rebuild.

use crate::distance::UnitSquaredL2;
use crate::types::IndexParams;
use hnsw_rs::prelude::{FilterT, Hnsw};
use parking_lot::RwLock;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// hnsw_rs caps layers at 16; its level sampling uses fewer in practice.
const MAX_LAYERS: usize = 16;

pub(crate) struct AnnIndex {
    pub(crate) hnsw: Hnsw<'static, f32, UnitSquaredL2>,
    pub(crate) model: String,
    pub(crate) dim: usize,
    /// Highest face id inserted: every stored face of `model` up to it is in the graph.
    covered_upto: AtomicU64,
    /// Points inserted since the last snapshot was written.
    unsaved: AtomicUsize,
    tombstones: RwLock<HashSet<u64>>,
}

struct NotDeleted<'a>(&'a HashSet<u64>);

impl FilterT for NotDeleted<'_> {
    fn hnsw_filter(&self, id: &usize) -> bool {
        !self.0.contains(&(*id as u64))
    }
}

impl AnnIndex {
    pub(crate) fn new(params: &IndexParams, model: &str, dim: usize, capacity: usize) -> Self {
        let hnsw = Hnsw::new(params.m, capacity.max(1024), MAX_LAYERS, params.ef_construction, UnitSquaredL2);
        Self::from_hnsw(hnsw, model, dim, 0, HashSet::new())
    }

    pub(crate) fn from_hnsw(
        hnsw: Hnsw<'static, f32, UnitSquaredL2>,
        model: &str,
        dim: usize,
        covered_upto: u64,
        tombstones: HashSet<u64>,
    ) -> Self {
        AnnIndex {
            hnsw,
            model: model.to_string(),
            dim,
            covered_upto: AtomicU64::new(covered_upto),
            unsaved: AtomicUsize::new(0),
            tombstones: RwLock::new(tombstones),
        }
    }

    /// Inserts one unit vector. Callers serialise inserts (the store's writer lock),
    /// so ids arrive in increasing order.
    pub(crate) fn insert(&self, face: u64, unit: &[f32]) {
        self.hnsw.insert_slice((unit, face as usize));
        self.covered_upto.fetch_max(face, Ordering::SeqCst);
        self.unsaved.fetch_add(1, Ordering::SeqCst);
    }

    /// Inserts many vectors using all cores (hnsw_rs' rayon insert).
    pub(crate) fn insert_batch(&self, batch: &[(u64, Vec<f32>)]) {
        let items: Vec<(&[f32], usize)> = batch.iter().map(|(id, v)| (v.as_slice(), *id as usize)).collect();
        self.hnsw.parallel_insert_slice(&items);
        if let Some(max) = batch.iter().map(|(id, _)| *id).max() {
            self.covered_upto.fetch_max(max, Ordering::SeqCst);
        }
        self.unsaved.fetch_add(batch.len(), Ordering::SeqCst);
    }

    /// The `k` nearest live points as (face id, squared L2), nearest first.
    pub(crate) fn search(&self, unit_query: &[f32], k: usize, ef: usize) -> Vec<(u64, f32)> {
        let tombstones = self.tombstones.read();
        let found = if tombstones.is_empty() {
            self.hnsw.search(unit_query, k, ef.max(k))
        } else {
            let filter = NotDeleted(&tombstones);
            self.hnsw.search_filter(unit_query, k, ef.max(k), Some(&filter))
        };
        found
            .into_iter()
            .filter(|n| !tombstones.contains(&(n.d_id as u64)))
            .map(|n| (n.d_id as u64, n.distance))
            .collect()
    }

    pub(crate) fn add_tombstone(&self, face: u64) {
        self.tombstones.write().insert(face);
    }

    pub(crate) fn tombstone_count(&self) -> usize {
        self.tombstones.read().len()
    }

    pub(crate) fn tombstones(&self) -> HashSet<u64> {
        self.tombstones.read().clone()
    }

    pub(crate) fn points(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    pub(crate) fn covered_upto(&self) -> u64 {
        self.covered_upto.load(Ordering::SeqCst)
    }

    pub(crate) fn unsaved(&self) -> usize {
        self.unsaved.load(Ordering::SeqCst)
    }

    pub(crate) fn mark_saved(&self) {
        self.unsaved.store(0, Ordering::SeqCst);
    }

    /// Ids of every point in the graph, tombstones included.
    pub(crate) fn point_ids(&self) -> Vec<u64> {
        if self.points() == 0 {
            return Vec::new(); // hnsw_rs' iterator needs an entry point
        }
        let indexation = self.hnsw.get_point_indexation();
        indexation.into_iter().map(|p| p.get_origin_id() as u64).collect()
    }
}
