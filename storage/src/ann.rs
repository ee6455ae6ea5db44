//! The in-memory HNSW index (hnsw_rs) over unit vectors of one model, with tombstones for deletes.
//!
//! hnsw_rs cannot remove points, so a deleted face stays in the graph (its vector still guides
//! the walk) and is filtered out of answers until the next rebuild.

use crate::distance::UnitSquaredL2;
use crate::graph_view::GraphView;
use crate::types::{FaceId, Hit, IndexParams, PersonId};
use hnsw_rs::prelude::{Distance, Hnsw};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// hnsw_rs caps layers at 16; its level sampling uses fewer in practice.
const MAX_LAYERS: usize = 16;

/// Points inserted since the search view was copied are scanned exactly; past this many, the
/// next search re-copies the graph (a scan of 1024 costs about as much as a graph search).
const TAIL_MAX: usize = 1024;

/// A face as the index holds it.
pub(crate) struct IndexPoint {
    pub(crate) face: u64,
    pub(crate) person: u64,
    pub(crate) unit: Vec<f32>,
}

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
    /// The person of every face in the graph, so that a search names people without reading
    /// the store (a sled read per hit cost more than the graph search itself). A face never
    /// changes person, so entries only come and go with the points.
    persons: RwLock<HashMap<u64, u64>>,
    search_state: RwLock<SearchState>,
    /// Held by inserts and by the view refresh, so a refresh never misses a point being inserted.
    insert_lock: Mutex<()>,
}

impl AnnIndex {
    pub(crate) fn new(params: &IndexParams, model: &str, dim: usize, capacity: usize) -> Self {
        let hnsw = Hnsw::new(params.m, capacity.max(1024), MAX_LAYERS, params.ef_construction, UnitSquaredL2);
        Self::from_hnsw(hnsw, model, dim, 0, HashSet::new(), HashMap::new())
    }

    pub(crate) fn from_hnsw(
        hnsw: Hnsw<'static, f32, UnitSquaredL2>,
        model: &str,
        dim: usize,
        covered_upto: u64,
        tombstones: HashSet<u64>,
        persons: HashMap<u64, u64>,
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
            persons: RwLock::new(persons),
        }
    }

    /// Inserts one unit vector. Callers serialise inserts (the store's writer lock),
    /// so ids arrive in increasing order.
    pub(crate) fn insert(&self, p: &IndexPoint) {
        let _inserting = self.insert_lock.lock();
        self.hnsw.insert_slice((&p.unit, p.face as usize));
        self.persons.write().insert(p.face, p.person);
        self.search_state.write().tail.push((p.face, p.unit.clone()));
        self.covered_upto.fetch_max(p.face, Ordering::SeqCst);
        self.unsaved.fetch_add(1, Ordering::SeqCst);
    }

    /// Inserts many vectors using all cores (hnsw_rs' rayon insert).
    pub(crate) fn insert_batch(&self, batch: &[IndexPoint]) {
        let items: Vec<(&[f32], usize)> = batch.iter().map(|p| (p.unit.as_slice(), p.face as usize)).collect();
        let _inserting = self.insert_lock.lock();
        self.hnsw.parallel_insert_slice(&items);
        self.persons.write().extend(batch.iter().map(|p| (p.face, p.person)));
        self.search_state.write().tail.extend(batch.iter().map(|p| (p.face, p.unit.clone())));
        if let Some(max) = batch.iter().map(|p| p.face).max() {
            self.covered_upto.fetch_max(max, Ordering::SeqCst);
        }
        self.unsaved.fetch_add(batch.len(), Ordering::SeqCst);
    }

    /// The `k` nearest live faces, nearest first: a search of the graph view merged with an
    /// exact scan of the points inserted after it.
    pub(crate) fn search(&self, unit_query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
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
        let persons = self.persons.read();
        let hit = |(face, distance): (u64, f32)| Some(Hit { face: FaceId(face), person: PersonId(*persons.get(&face)?), distance });
        found.into_iter().filter_map(hit).collect()
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

    /// Hides a face from searches; false when it already was.
    pub(crate) fn add_tombstone(&self, face: u64) -> bool {
        self.tombstones.write().insert(face)
    }

    pub(crate) fn remove_tombstone(&self, face: u64) {
        self.tombstones.write().remove(&face);
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

    pub(crate) fn count_unsaved(&self, points: usize) {
        self.unsaved.fetch_add(points, Ordering::SeqCst);
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

    fn exact_top(points: &[IndexPoint], q: &[f32], k: usize, skip: &HashSet<u64>) -> Vec<u64> {
        let mut all: Vec<(f32, u64)> =
            points.iter().filter(|p| !skip.contains(&p.face)).map(|p| (UnitSquaredL2.eval(q, &p.unit), p.face)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    /// Faces 1.., face `f` of person `f / 10`.
    fn points_of(vectors: Vec<Vec<f32>>) -> Vec<IndexPoint> {
        vectors.into_iter().enumerate().map(|(i, unit)| IndexPoint { face: i as u64 + 1, person: (i as u64 + 1) / 10, unit }).collect()
    }

    fn index_of(points: &[IndexPoint]) -> AnnIndex {
        let params = IndexParams { m: 12, ef_construction: 100, ef_search: 64 };
        let index = AnnIndex::new(&params, "m", DIM, points.len());
        index.insert_batch(points);
        index
    }

    #[test]
    fn graph_view_search_finds_the_exact_neighbours_and_skips_tombstones() {
        let points = points_of(unit_vectors(3000, 1));
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
            assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance), "hits are nearest first");
            assert!(hits.iter().all(|h| h.person.0 == h.face.0 / 10), "each hit names its face's person");
            let truth = exact_top(&points, q, 10, &none);
            found += hits.iter().filter(|h| truth.contains(&h.face.0)).count();
        }
        assert!(found as f64 / 500.0 >= 0.95, "recall@10 {}", found as f64 / 500.0);

        // The true nearest of each query, deleted, never comes back; the rest still fill k.
        let deleted: HashSet<u64> = queries.iter().map(|q| exact_top(&points, q, 1, &none)[0]).collect();
        deleted.iter().for_each(|&id| {
            index.add_tombstone(id);
        });
        for q in &queries {
            let hits = index.search(q, 10, 64);
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !deleted.contains(&h.face.0)));
        }
    }

    #[test]
    fn points_inserted_after_the_view_are_found_by_the_exact_tail_scan() {
        let points = points_of(unit_vectors(1500, 3));
        let index = index_of(&points[..1200]);
        index.search(&points[0].unit, 1, 16); // copies the graph: the tail is empty
        for p in &points[1200..] {
            index.insert(p);
        }
        assert_eq!(index.search_state.read().tail.len(), 300);
        for p in &points[1200..] {
            let hits = index.search(&p.unit, 1, 32);
            assert_eq!((hits[0].face.0, hits[0].person.0), (p.face, p.person), "a point is its own nearest neighbour");
            assert!(hits[0].distance < 1e-5);
        }
    }
}
