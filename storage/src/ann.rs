//! The in-memory HNSW index (hnsw_rs) over unit vectors of one model, with tombstones for deletes.
//!
//! hnsw_rs cannot remove points, so a deleted face stays in the graph (its vector still guides
//! the walk) and is filtered out of answers until the next rebuild.

use crate::distance::UnitSquaredL2;
use crate::graph_view::GraphView;
use crate::types::IndexParams;
use hnsw_rs::prelude::{Distance, Hnsw};
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// hnsw_rs caps layers at 16; its level sampling uses fewer in practice.
const MAX_LAYERS: usize = 16;

/// Points inserted since the search view was copied are scanned exactly; past this many, the
/// next search re-copies the graph (a scan of 1024 costs about as much as a graph search).
const TAIL_MAX: usize = 1024;

/// What a search reads: the graph copy plus the points inserted after it.
struct SearchState {
    view: Arc<GraphView>,
    tail: Vec<(u64, Vec<f32>)>,
}

pub(crate) struct AnnIndex {
    pub(crate) hnsw: Hnsw<'static, f32, UnitSquaredL2>,
    pub(crate) model: String,
    pub(crate) dim: usize,
    /// Highest face id inserted: every stored face of `model` up to it is in the graph.
    covered_upto: AtomicU64,
    /// Points inserted since the last snapshot was written.
    unsaved: AtomicUsize,
    tombstones: RwLock<HashSet<u64>>,
    search_state: RwLock<SearchState>,
    /// Held by inserts and by the view refresh, so a refresh never misses a point being inserted.
    insert_lock: Mutex<()>,
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
        let view = Arc::new(GraphView::from_hnsw(&hnsw, dim));
        AnnIndex {
            search_state: RwLock::new(SearchState { view, tail: Vec::new() }),
            insert_lock: Mutex::new(()),
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
        let _inserting = self.insert_lock.lock();
        self.hnsw.insert_slice((unit, face as usize));
        self.search_state.write().tail.push((face, unit.to_vec()));
        self.covered_upto.fetch_max(face, Ordering::SeqCst);
        self.unsaved.fetch_add(1, Ordering::SeqCst);
    }

    /// Inserts many vectors using all cores (hnsw_rs' rayon insert).
    pub(crate) fn insert_batch(&self, batch: &[(u64, Vec<f32>)]) {
        let items: Vec<(&[f32], usize)> = batch.iter().map(|(id, v)| (v.as_slice(), *id as usize)).collect();
        let _inserting = self.insert_lock.lock();
        self.hnsw.parallel_insert_slice(&items);
        self.search_state.write().tail.extend(batch.iter().cloned());
        if let Some(max) = batch.iter().map(|(id, _)| *id).max() {
            self.covered_upto.fetch_max(max, Ordering::SeqCst);
        }
        self.unsaved.fetch_add(batch.len(), Ordering::SeqCst);
    }

    /// The `k` nearest live points as (face id, squared L2), nearest first: a search of the graph
    /// view merged with an exact scan of the points inserted after it.
    pub(crate) fn search(&self, unit_query: &[f32], k: usize, ef: usize) -> Vec<(u64, f32)> {
        if self.search_state.read().tail.len() > TAIL_MAX {
            self.refresh_view();
        }
        let tombstones = self.tombstones.read();
        let state = self.search_state.read();
        let mut found = state.view.search(unit_query, k, ef, &tombstones);
        for (id, v) in state.tail.iter().filter(|(id, _)| !tombstones.contains(id)) {
            found.push((*id, UnitSquaredL2.eval(unit_query, v)));
        }
        if !state.tail.is_empty() {
            found.sort_by(|a, b| a.1.total_cmp(&b.1));
            found.truncate(k);
        }
        found
    }

    /// Re-copies the graph so that the exact-scan tail is empty again.
    fn refresh_view(&self) {
        let _inserting = self.insert_lock.lock();
        if self.search_state.read().tail.len() <= TAIL_MAX {
            return; // another search refreshed it meanwhile
        }
        let view = Arc::new(GraphView::from_hnsw(&self.hnsw, self.dim));
        *self.search_state.write() = SearchState { view, tail: Vec::new() };
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const DIM: usize = 16;

    fn unit_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn exact_top(points: &[(u64, Vec<f32>)], q: &[f32], k: usize, skip: &HashSet<u64>) -> Vec<u64> {
        let mut all: Vec<(f32, u64)> =
            points.iter().filter(|(id, _)| !skip.contains(id)).map(|(id, v)| (UnitSquaredL2.eval(q, v), *id)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    fn index_of(points: &[(u64, Vec<f32>)]) -> AnnIndex {
        let params = IndexParams { m: 12, ef_construction: 100, ef_search: 64 };
        let index = AnnIndex::new(&params, "m", DIM, points.len());
        index.insert_batch(points);
        index
    }

    #[test]
    fn graph_view_search_finds_the_exact_neighbours_and_skips_tombstones() {
        let points: Vec<(u64, Vec<f32>)> = unit_vectors(3000, 1).into_iter().enumerate().map(|(i, v)| (i as u64 + 1, v)).collect();
        let index = index_of(&points);
        assert!(index.search_state.read().tail.len() > TAIL_MAX);
        let queries = unit_vectors(50, 2);
        index.search(&queries[0], 10, 64); // the first search copies the graph
        assert!(index.search_state.read().tail.is_empty());
        assert_eq!(index.search_state.read().view.len(), 3000);

        let none = HashSet::new();
        let mut found = 0;
        for q in &queries {
            let hits = index.search(q, 10, 64);
            assert!(hits.windows(2).all(|w| w[0].1 <= w[1].1), "hits are nearest first");
            let truth = exact_top(&points, q, 10, &none);
            found += hits.iter().filter(|h| truth.contains(&h.0)).count();
        }
        assert!(found as f64 / 500.0 >= 0.95, "recall@10 {}", found as f64 / 500.0);

        // The true nearest of each query, deleted, never comes back; the rest still fill k.
        let deleted: HashSet<u64> = queries.iter().map(|q| exact_top(&points, q, 1, &none)[0]).collect();
        deleted.iter().for_each(|&id| index.add_tombstone(id));
        for q in &queries {
            let hits = index.search(q, 10, 64);
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !deleted.contains(&h.0)));
        }
    }

    #[test]
    fn points_inserted_after_the_view_are_found_by_the_exact_tail_scan() {
        let points: Vec<(u64, Vec<f32>)> = unit_vectors(1500, 3).into_iter().enumerate().map(|(i, v)| (i as u64 + 1, v)).collect();
        let index = index_of(&points[..1200]);
        index.search(&points[0].1, 1, 16); // copies the graph: the tail is empty
        for (id, v) in &points[1200..] {
            index.insert(*id, v);
        }
        assert_eq!(index.search_state.read().tail.len(), 300);
        for (id, v) in &points[1200..] {
            let hits = index.search(v, 1, 32);
            assert_eq!(hits[0].0, *id, "a point is its own nearest neighbour");
            assert!(hits[0].1 < 1e-5);
        }
    }
}
