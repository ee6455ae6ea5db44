//! A read-only copy of hnsw_rs' graph laid out for fast search.
//!
//! hnsw_rs builds and persists the graph, but its search walks `Arc<Point>`s behind per-point
//! locks and allocates on every step; a profile showed that bookkeeping costing more than the
//! distances. This view copies the graph once into dense arrays (vectors contiguous, layer-0
//! neighbours as u32 offsets) and searches it with a reusable visited table, so a query does
//! little more than its dot products. The walk ranks by int8 codes of the vectors (a quarter of
//! the memory traffic); the `ef` points it keeps are re-ranked with the exact f32 distance.

use crate::distance::{dot, dot_i8};
use hnsw_rs::prelude::{Distance, Hnsw};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

pub(crate) struct GraphView {
    dim: usize,
    /// Dense index → face id.
    ids: Vec<u64>,
    /// Unit vectors, row `i` at `i * dim`.
    vectors: Vec<f32>,
    /// The same rows as int8 codes, `round(x * code_scale)`.
    codes: Vec<i8>,
    code_scale: f32,
    /// Layer-0 neighbours of point `i`: `neighbours[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
    /// Neighbours on layers 1.. of the few points that reach them: `upper[&i][layer - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: u32,
    top_layer: usize,
}

/// Heap key of the walk: `CODE_KEY_BIAS - code dot product`, smaller is nearer.
type Key = u32;

/// Above any int8 dot product of up to 1024 dimensions (127² · 1024 < 2^24).
const CODE_KEY_BIAS: i32 = 1 << 24;

impl GraphView {
    pub(crate) fn empty(dim: usize) -> Self {
        GraphView { dim, ids: Vec::new(), vectors: Vec::new(), codes: Vec::new(), code_scale: 1.0, offsets: vec![0], neighbours: Vec::new(), upper: HashMap::new(), entry: 0, top_layer: 0 }
    }

    pub(crate) fn from_hnsw<D: Distance<f32> + Send + Sync>(hnsw: &Hnsw<'static, f32, D>, dim: usize) -> Self {
        if hnsw.get_nb_point() == 0 {
            return Self::empty(dim);
        }
        let points: Vec<_> = hnsw.get_point_indexation().into_iter().collect();
        let dense: HashMap<usize, u32> = points.iter().enumerate().map(|(i, p)| (p.get_origin_id(), i as u32)).collect();
        let mut view = Self::empty(dim);
        view.ids.reserve(points.len());
        view.vectors.reserve(points.len() * dim);
        for (i, p) in points.iter().enumerate() {
            view.ids.push(p.get_origin_id() as u64);
            view.vectors.extend_from_slice(&p.get_v()[..dim]);
            let level = p.get_point_id().0 as usize;
            let layers = p.get_neighborhood_id();
            let ids_on = |layer: usize| -> Vec<u32> {
                layers.get(layer).map_or(Vec::new(), |ns| ns.iter().filter_map(|n| dense.get(&n.d_id).copied()).collect())
            };
            view.neighbours.extend(ids_on(0));
            view.offsets.push(view.neighbours.len() as u32);
            if level > 0 {
                view.upper.insert(i as u32, (1..=level).map(ids_on).collect());
            }
            if level > view.top_layer || i == 0 {
                view.top_layer = level;
                view.entry = i as u32;
            }
        }
        view.encode_all();
        view
    }

    /// One scale for all rows, so that code dot products compare across points.
    fn encode_all(&mut self) {
        let max_abs = self.vectors.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        self.code_scale = if max_abs > 0.0 { 127.0 / max_abs } else { 1.0 };
        self.codes = self.encode(&self.vectors);
    }

    fn encode(&self, v: &[f32]) -> Vec<i8> {
        v.iter().map(|x| (x * self.code_scale).round().clamp(-127.0, 127.0) as i8).collect()
    }

    /// Approximate rank key: a larger code dot product means nearer, so smaller keys are nearer.
    fn code_key(&self, q: &[i8], i: u32) -> Key {
        (CODE_KEY_BIAS - dot_i8(q, self.code_row(i))) as Key
    }

    fn code_row(&self, i: u32) -> &[i8] {
        let at = i as usize * self.dim;
        &self.codes[at..at + self.dim]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn distance(&self, q: &[f32], i: u32) -> f32 {
        let at = i as usize * self.dim;
        2.0 - 2.0 * dot(q, &self.vectors[at..at + self.dim])
    }

    /// The `k` nearest points not `deleted`, as (face id, squared L2), nearest first. Deleted
    /// points are still walked through, as they keep the graph connected.
    pub(crate) fn search(&self, q: &[f32], k: usize, ef: usize, deleted: impl Fn(u64) -> bool) -> Vec<(u64, f32)> {
        if self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let mut at = self.entry;
        let mut at_d = self.distance(q, at);
        for layer in (1..=self.top_layer).rev() {
            // Greedy descent: move to a closer neighbour until none is closer.
            let mut moved = true;
            while moved {
                moved = false;
                let Some(ns) = self.upper.get(&at).and_then(|l| l.get(layer - 1)) else { break };
                for &n in ns {
                    let d = self.distance(q, n);
                    if d < at_d {
                        (at, at_d, moved) = (n, d, true);
                    }
                }
            }
        }
        let q_codes = self.encode(q);
        let kept = VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            visited.start(self.ids.len());
            self.beam_search(&q_codes, at, ef, &deleted, &mut visited)
        });
        let mut exact: Vec<(u64, f32)> = kept.into_iter().map(|i| (self.ids[i as usize], self.distance(q, i).max(0.0))).collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        exact.truncate(k);
        exact
    }

    /// Best-first search of layer 0 by code distance, returning the `ef` best live points found.
    fn beam_search(&self, q: &[i8], start: u32, ef: usize, deleted: &impl Fn(u64) -> bool, visited: &mut Visited) -> Vec<u32> {
        let start_key = self.code_key(q, start);
        let mut candidates: BinaryHeap<Reverse<(Key, u32)>> = BinaryHeap::with_capacity(ef * 4);
        let mut best: BinaryHeap<(Key, u32)> = BinaryHeap::with_capacity(ef + 1);
        visited.mark(start);
        candidates.push(Reverse((start_key, start)));
        if !deleted(self.ids[start as usize]) {
            best.push((start_key, start));
        }
        while let Some(Reverse((d, at))) = candidates.pop() {
            if best.len() >= ef && d > best.peek().map_or(Key::MAX, |b| b.0) {
                break;
            }
            let (from, to) = (self.offsets[at as usize] as usize, self.offsets[at as usize + 1] as usize);
            let neighbours = &self.neighbours[from..to];
            // The codes lie scattered in memory: start loading all of them before the first
            // dot product, so their cache misses overlap instead of following one another.
            for &n in neighbours.iter().filter(|&&n| !visited.is_marked(n)) {
                prefetch(self.code_row(n));
            }
            for &n in neighbours {
                if !visited.mark(n) {
                    continue;
                }
                let dn = self.code_key(q, n);
                let worst = best.peek().map_or(Key::MAX, |b| b.0);
                if best.len() < ef || dn < worst {
                    candidates.push(Reverse((dn, n)));
                    if !deleted(self.ids[n as usize]) {
                        best.push((dn, n));
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            }
        }
        best.into_iter().map(|(_, i)| i).collect()
    }
}

/// A visited table reused across queries of one thread: a point is visited when its stamp equals
/// the current query's, so starting a query costs nothing instead of clearing n flags.
struct Visited {
    stamps: Vec<u32>,
    current: u32,
}

impl Visited {
    fn start(&mut self, n: usize) {
        if self.stamps.len() < n {
            self.stamps.resize(n, 0);
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.current = 1;
        }
    }

    fn is_marked(&self, i: u32) -> bool {
        self.stamps[i as usize] == self.current
    }

    /// Marks `i`; false when it was already marked in this query.
    fn mark(&mut self, i: u32) -> bool {
        let s = &mut self.stamps[i as usize];
        let fresh = *s != self.current;
        *s = self.current;
        fresh
    }
}

/// A hint to load `row` into the cache; it never faults and changes no result.
#[inline]
fn prefetch(row: &[i8]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(64) {
        // SAFETY: a prefetch only hints the cache; any address is allowed.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { stamps: Vec::new(), current: 0 }) };
}
