//! The in-memory HNSW index (hnsw_rs) over unit vectors of one model, with tombstones for deletes.
//!
//! hnsw_rs cannot remove points, so a deleted face stays in the graph (its vector still guides
//! the walk) and is filtered out of answers until the next rebuild.

use crate::distance::UnitSquaredL2;
use crate::error::{Result, StoreError};
use crate::graph_codec;
use crate::graph_view::GraphView;
use crate::snapshot;
use crate::types::{FaceId, Hit, IndexParams, PersonId};
use hnsw_rs::prelude::{Distance, Hnsw};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// hnsw_rs caps layers at 16; its level sampling uses fewer in practice.
const MAX_LAYERS: usize = 16;

/// Points inserted since the search view caught up are scanned exactly; past this many, the
/// insert brings the view up to date. Catching up steps through all of hnsw_rs' points (it gives
/// no other way to the new ones: ~0.7 µs a point, 70 ms at 100k), so it waits for this many; a
/// scan of 1024 contiguous rows costs ~0.1 ms.
const TAIL_MAX: usize = 1024;

/// A face as the index holds it.
pub(crate) struct IndexPoint {
    pub(crate) face: u64,
    pub(crate) person: u64,
    pub(crate) unit: Vec<f32>,
}

/// What a search reads: the graph view plus the points inserted after it.
struct SearchState {
    view: GraphView,
    tail: Tail,
}

/// Points not yet in the view, as contiguous rows (a scan streams through them).
#[derive(Default)]
struct Tail {
    faces: Vec<u64>,
    vectors: Vec<f32>,
}

impl Tail {
    fn push(&mut self, p: &IndexPoint) {
        self.faces.push(p.face);
        self.vectors.extend_from_slice(&p.unit);
    }

    fn len(&self) -> usize {
        self.faces.len()
    }

    fn clear(&mut self) {
        self.faces.clear();
        self.vectors.clear();
    }

    /// (face, squared L2 to `q`) of every point not in `skip`.
    fn scan<'a>(&'a self, q: &'a [f32], skip: &'a HashSet<u64>) -> impl Iterator<Item = (u64, f32)> + 'a {
        let rows = self.vectors.chunks_exact(q.len().max(1));
        self.faces.iter().zip(rows).filter(|(face, _)| !skip.contains(face)).map(|(&face, v)| (face, UnitSquaredL2.eval(q, v)))
    }
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
    /// Held by inserts and while the view catches up, so that it never misses a point.
    insert_lock: Mutex<()>,
}

impl AnnIndex {
    pub(crate) fn new(params: &IndexParams, model: &str, dim: usize, capacity: usize) -> Self {
        let hnsw = Hnsw::new(params.m, capacity.max(1024), MAX_LAYERS, params.ef_construction, UnitSquaredL2);
        Self::from_hnsw(hnsw, model, dim, 0, HashSet::new(), HashMap::new())
    }

    /// An index over `points` (faces in increasing id order) built by fdb's own graph build,
    /// then loaded into hnsw_rs (through `scratch`), which takes the inserts that follow.
    pub(crate) fn build(params: &IndexParams, model: &str, dim: usize, points: Vec<IndexPoint>, scratch: &Path) -> Result<Self> {
        let Some(covered_upto) = points.iter().map(|p| p.face).max() else {
            return Ok(Self::new(params, model, dim, 0));
        };
        let m = u8::try_from(params.m).map_err(|_| StoreError::InvalidArgument(format!("M = {} is over 255", params.m)))?;
        // hnsw_rs' level scale for this M, so that the levels of later inserts match.
        let level_scale = Hnsw::<f32, UnitSquaredL2>::new(params.m, 1, MAX_LAYERS, 1, UnitSquaredL2).get_point_indexation().get_level_scale();
        let persons: HashMap<u64, u64> = points.iter().map(|p| (p.face, p.person)).collect();
        let row_of: HashMap<u64, usize> = points.iter().enumerate().map(|(row, p)| (p.face, row)).collect();
        let ids: Vec<u64> = points.iter().map(|p| p.face).collect();
        let mut vectors = Vec::with_capacity(ids.len() * dim);
        points.into_iter().for_each(|p| vectors.extend_from_slice(&p.unit));
        let graph = GraphView::build(vectors, ids, dim, params.m, params.ef_construction, level_scale);
        let description = graph_codec::hnsw_description::<UnitSquaredL2>(m, level_scale, params.ef_construction, row_of.len(), dim);
        let corrupt = |why: String| StoreError::Corrupt(format!("the index fdb built does not load into hnsw_rs: {why}"));
        let dump = graph_codec::dump_of_lists(&description, graph.lists()).map_err(corrupt)?;
        let vector = |_, face: u64| Ok(row_of.get(&face).map(|&row| graph.vector_row(row as u32).to_vec()));
        let hnsw = snapshot::hnsw_of_dump(scratch, &dump, dim, vector)?.map_err(corrupt)?;
        drop(graph);
        Ok(Self::from_hnsw(hnsw, model, dim, covered_upto, HashSet::new(), persons))
    }

    pub(crate) fn from_hnsw(
        hnsw: Hnsw<'static, f32, UnitSquaredL2>,
        model: &str,
        dim: usize,
        covered_upto: u64,
        tombstones: HashSet<u64>,
        persons: HashMap<u64, u64>,
    ) -> Self {
        let view = GraphView::from_hnsw(&hnsw, dim);
        AnnIndex {
            search_state: RwLock::new(SearchState { view, tail: Tail::default() }),
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
        self.inserted(std::slice::from_ref(p));
    }

    /// Inserts many vectors using all cores (hnsw_rs' rayon insert).
    pub(crate) fn insert_batch(&self, batch: &[IndexPoint]) {
        let mut items: Vec<(&[f32], usize)> = batch.iter().map(|p| (p.unit.as_slice(), p.face as usize)).collect();
        let _inserting = self.insert_lock.lock();
        // Into an empty graph, hnsw_rs' threads race for the first point, and the loser can be
        // left without a single link, so that no search ever finds it (seen in 2 of 1,500
        // builds of 120 points). The first point therefore goes in alone.
        if self.hnsw.get_nb_point() == 0 && !items.is_empty() {
            self.hnsw.insert_slice(items.remove(0));
        }
        self.hnsw.parallel_insert_slice(&items);
        self.inserted(batch);
    }

    /// Bookkeeping after points entered the graph; the caller holds the insert lock.
    fn inserted(&self, points: &[IndexPoint]) {
        self.persons.write().extend(points.iter().map(|p| (p.face, p.person)));
        let tail_len = {
            let mut state = self.search_state.write();
            points.iter().for_each(|p| state.tail.push(p));
            state.tail.len()
        };
        if let Some(max) = points.iter().map(|p| p.face).max() {
            self.covered_upto.fetch_max(max, Ordering::SeqCst);
        }
        self.unsaved.fetch_add(points.len(), Ordering::SeqCst);
        if tail_len > TAIL_MAX {
            self.catch_up_view();
        }
    }

    /// Brings the view up to date with the graph: the changes are gathered while searches go on,
    /// and applied under the write lock, which is held only to copy them in.
    fn catch_up_view(&self) {
        let changes = self.search_state.read().view.changes_in(&self.hnsw);
        let mut state = self.search_state.write();
        state.view.apply(changes);
        state.tail.clear();
    }

    /// The `k` nearest live faces, nearest first: a search of the graph view merged with an
    /// exact scan of the points inserted after it.
    pub(crate) fn search(&self, unit_query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        let tombstones = self.tombstones.read();
        let state = self.search_state.read();
        let mut found = state.view.search(unit_query, k, ef, &tombstones);
        found.extend(state.tail.scan(unit_query, &tombstones));
        if state.tail.len() > 0 {
            found.sort_by(|a, b| a.1.total_cmp(&b.1));
            found.truncate(k);
        }
        let persons = self.persons.read();
        let hit = |(face, distance): (u64, f32)| Some(Hit { face: FaceId(face), person: PersonId(*persons.get(&face)?), distance });
        found.into_iter().filter_map(hit).collect()
    }

    /// The person of a face in the graph.
    pub(crate) fn person_of(&self, face: u64) -> Option<u64> {
        self.persons.read().get(&face).copied()
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

    const DIM: usize = 16;

    fn unit_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
        crate::test_vectors::unit_vectors(n, DIM, seed)
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
        // A batch longer than the tail brings the view up to date at once.
        assert_eq!(index.search_state.read().tail.len(), 0);
        assert_eq!(index.search_state.read().view.len(), 3000);
        let queries = unit_vectors(50, 2);

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
    fn points_inserted_after_the_view_are_found_by_the_exact_tail_scan_and_then_in_the_view() {
        let points = points_of(unit_vectors(2300, 3));
        let index = index_of(&points[..1200]);
        for p in &points[1200..] {
            index.insert(p);
        }
        // The 1025th single insert brought the view up to date; the 75 after it wait in the tail.
        assert_eq!(index.search_state.read().view.len(), 1200 + TAIL_MAX + 1);
        assert_eq!(index.search_state.read().tail.len(), 1100 - TAIL_MAX - 1);
        for p in &points[1200..] {
            let hits = index.search(&p.unit, 1, 32);
            assert_eq!((hits[0].face.0, hits[0].person.0), (p.face, p.person), "a point is its own nearest neighbour");
            assert!(hits[0].distance < 1e-5);
        }
    }

    #[test]
    fn a_built_index_loads_into_hnsw_rs_as_built_finds_the_exact_neighbours_and_takes_inserts() {
        let points = points_of(unit_vectors(3000, 5));
        let params = IndexParams { m: 12, ef_construction: 100, ef_search: 64 };
        let scratch = tempfile::tempdir().unwrap();
        let index = AnnIndex::build(&params, "m", DIM, points[..2500].iter().map(clone_point).collect(), scratch.path()).unwrap();
        assert_eq!((index.points(), index.covered_upto()), (2500, 2500));

        // hnsw_rs holds the very graph fdb built: the same lists, layer by layer.
        let ids = (1..=2500).collect();
        let vectors = points[..2500].iter().flat_map(|p| p.unit.clone()).collect();
        let level_scale = 1.0 / (params.m as f64).ln();
        let built = GraphView::build(vectors, ids, DIM, params.m, params.ef_construction, level_scale);
        let sorted = |(entry, rows): (u64, std::collections::BTreeMap<u64, (Vec<f32>, Vec<Vec<u64>>)>)| {
            let rows: Vec<_> = rows.into_iter().map(|(f, (v, layers))| (f, v, layers.into_iter().map(|mut l| { l.sort(); l }).collect::<Vec<_>>())).collect();
            (entry, rows)
        };
        let (entry, rows) = sorted(built.by_face());
        assert!(rows.iter().all(|(_, _, layers)| layers[0].len() <= 2 * params.m && layers[1..].iter().all(|l| l.len() <= params.m)));
        assert!(rows.iter().any(|(_, _, layers)| layers.len() > 1), "no point above layer 0");
        assert!((entry, rows) == sorted(index.search_state.read().view.by_face()), "hnsw_rs holds another graph");

        let none = HashSet::new();
        let queries = unit_vectors(50, 6);
        let found: usize = queries
            .iter()
            .map(|q| {
                let truth = exact_top(&points[..2500], q, 10, &none);
                index.search(q, 10, 64).iter().filter(|h| truth.contains(&h.face.0)).count()
            })
            .sum();
        assert!(found as f64 / 500.0 >= 0.95, "recall@10 {}", found as f64 / 500.0);

        for p in &points[2500..] {
            index.insert(p);
        }
        for p in &points[2500..] {
            let hits = index.search(&p.unit, 1, 32);
            assert_eq!((hits[0].face.0, hits[0].person.0), (p.face, p.person), "an insert after the build is found");
        }
    }

    #[test]
    fn builds_of_one_two_and_three_points_load_find_each_point_and_take_inserts() {
        let points = points_of(unit_vectors(303, 7));
        let params = IndexParams { m: 12, ef_construction: 100, ef_search: 64 };
        for n in 1..=3 {
            let scratch = tempfile::tempdir().unwrap();
            let index = AnnIndex::build(&params, "m", DIM, points[..n].iter().map(clone_point).collect(), scratch.path()).unwrap();
            for p in &points[..n] {
                assert_eq!(index.search(&p.unit, 1, 16)[0].face.0, p.face, "{n} points");
            }
            // One insert in 12 is drawn above layer 0, where these graphs have nothing: hnsw_rs
            // must have all its layers (it panicked when the dump listed only the built ones).
            points[3..].iter().for_each(|p| index.insert(p));
            for p in &points[3..] {
                assert_eq!(index.search(&p.unit, 1, 64)[0].face.0, p.face, "{n} points built, then inserts");
            }
        }
    }

    fn clone_point(p: &IndexPoint) -> IndexPoint {
        IndexPoint { face: p.face, person: p.person, unit: p.unit.clone() }
    }

    #[test]
    fn a_view_kept_up_to_date_equals_a_fresh_copy_of_the_graph() {
        let points = points_of(unit_vectors(3600, 4));
        let index = index_of(&points[..500]);
        for p in &points[500..2600] {
            index.insert(p); // two catch-ups, and a tail
        }
        index.insert_batch(&points[2600..]);
        let (entry, rows) = index.search_state.read().view.by_face();
        let (fresh_entry, fresh_rows) = GraphView::from_hnsw(&index.hnsw, DIM).by_face();
        assert_eq!(rows.len(), 3600);
        assert_eq!(entry, fresh_entry);
        // Every list equal, including those of old points that later inserts linked back to.
        assert!(rows == fresh_rows, "the view differs from a fresh copy");
        let linked_back = rows.iter().filter(|(face, (_, layers))| **face <= 500 && layers[0].iter().any(|&n| n > 2600)).count();
        assert!(linked_back > 100, "only {linked_back} of the first 500 points gained a neighbour from the last batch");
    }
}
