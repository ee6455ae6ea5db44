//! A read-only copy of hnsw_rs' graph laid out for fast search.
//!
//! hnsw_rs builds and persists the graph, but its search walks `Arc<Point>`s behind per-point
//! locks and allocates on every step; a profile showed that bookkeeping costing more than the
//! distances. This view copies the graph once into dense arrays (vectors contiguous, layer-0
//! neighbours as u32 offsets) and searches it with a reusable visited table, so a query does
//! little more than its dot products. The walk ranks by 4-bit codes of the vectors (an eighth of
//! the memory traffic, see `nibble_codes`); the `ef` points it keeps are re-ranked with the exact
//! f32 distance.

use crate::distance::dot;
use crate::nibble_codes::{self, NibbleCodes, QueryWeights};
use hnsw_rs::prelude::{Distance, Hnsw};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

pub(crate) struct GraphView {
    dim: usize,
    /// Dense index → face id.
    ids: Vec<u64>,
    /// Unit vectors, row `i` at `i * dim`.
    vectors: Vec<f32>,
    /// The same rows as 4-bit codes, row `i` at `code_start + i * code_bytes` (64-byte aligned,
    /// so a row spans the fewest cache lines).
    codes: Vec<u8>,
    code_start: usize,
    code_bytes: usize,
    coder: NibbleCodes,
    /// Layer-0 neighbours of point `i`: `neighbours[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
    /// Neighbours on layers 1.. of the few points that reach them: `upper[&i][layer - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: u32,
    top_layer: usize,
}

/// Rank key of the walk: `CODE_KEY_BIAS - code score`, smaller is nearer.
type Key = u32;

/// Above any code score of up to 500,000 dimensions (|score| ≤ 127 · 15 · dim < 2^30).
const CODE_KEY_BIAS: i32 = 1 << 30;

/// Rows whose loads are started ahead of the one being scored: enough to overlap their memory
/// round trips, few enough not to overflow the core's queue of outstanding misses.
const PREFETCH_AHEAD: usize = 8;

impl GraphView {
    pub(crate) fn empty(dim: usize) -> Self {
        GraphView { dim, ids: Vec::new(), vectors: Vec::new(), codes: Vec::new(), code_start: 0, code_bytes: 0, coder: NibbleCodes::fit(&[], dim), offsets: vec![0], neighbours: Vec::new(), upper: HashMap::new(), entry: 0, top_layer: 0 }
    }

    pub(crate) fn from_hnsw<D: Distance<f32> + Send + Sync>(hnsw: &Hnsw<'static, f32, D>, dim: usize) -> Self {
        if hnsw.get_nb_point() == 0 {
            return Self::empty(dim);
        }
        let points: Vec<_> = hnsw.get_point_indexation().into_iter().collect();
        let dense: HashMap<usize, u32> = points.iter().enumerate().map(|(i, p)| (p.get_origin_id(), i as u32)).collect();
        let mut view = Self::empty(dim);
        view.ids = with_huge_pages(points.len());
        view.vectors = with_huge_pages(points.len() * dim);
        view.offsets = with_huge_pages(points.len() + 1);
        view.offsets.push(0);
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
        view.neighbours = into_huge_pages(view.neighbours);
        view
    }

    fn encode_all(&mut self) {
        self.coder = NibbleCodes::fit(&self.vectors, self.dim);
        self.code_bytes = self.coder.row_bytes();
        let n = self.ids.len();
        let mut codes = with_huge_pages(n * self.code_bytes + 64);
        codes.resize((64 - codes.as_ptr() as usize % 64) % 64, 0);
        self.code_start = codes.len();
        for row in self.vectors.chunks_exact(self.dim) {
            self.coder.encode_into(row, &mut codes);
        }
        self.codes = codes;
    }

    /// Approximate rank key: a larger code score means nearer, so smaller keys are nearer.
    fn code_key(&self, q: &QueryWeights, i: u32) -> Key {
        (CODE_KEY_BIAS - nibble_codes::score(q, self.code_row(i))) as Key
    }

    fn code_row(&self, i: u32) -> &[u8] {
        let at = self.code_start + i as usize * self.code_bytes;
        &self.codes[at..at + self.code_bytes]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn vector_row(&self, i: u32) -> &[f32] {
        let at = i as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn distance(&self, q: &[f32], i: u32) -> f32 {
        2.0 - 2.0 * dot(q, self.vector_row(i))
    }

    /// The `k` nearest points whose face id is not in `deleted`, as (face id, squared L2),
    /// nearest first. Deleted points are still walked through, as they keep the graph connected.
    pub(crate) fn search(&self, q: &[f32], k: usize, ef: usize, deleted: &HashSet<u64>) -> Vec<(u64, f32)> {
        if self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let q_codes = self.coder.query(q);
        let start = self.descend(&q_codes);
        let kept = VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            let kept = self.beam_search(&q_codes, start, ef.max(k), deleted, &mut visited);
            visited.clear();
            kept
        });
        let mut exact: Vec<(u64, f32)> = Vec::with_capacity(kept.len());
        for (j, &i) in kept.iter().enumerate() {
            if let Some(&ahead) = kept.get(j + 1) {
                prefetch(self.vector_row(ahead));
            }
            exact.push((self.ids[i as usize], self.distance(q, i).max(0.0)));
        }
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        exact.truncate(k);
        exact
    }

    /// Greedy descent through the upper layers to the point where the layer-0 walk starts:
    /// on each layer, move to a closer neighbour until none is closer.
    fn descend(&self, q: &QueryWeights) -> u32 {
        let mut at = self.entry;
        let mut at_key = self.code_key(q, at);
        for layer in (1..=self.top_layer).rev() {
            let mut moved = true;
            while moved {
                moved = false;
                let Some(ns) = self.upper.get(&at).and_then(|l| l.get(layer - 1)) else { break };
                for &n in ns {
                    let key = self.code_key(q, n);
                    if key < at_key {
                        (at, at_key, moved) = (n, key, true);
                    }
                }
            }
        }
        at
    }

    /// Best-first search of layer 0 by code distance, returning the `ef` best live points found.
    fn beam_search(&self, q: &QueryWeights, start: u32, ef: usize, deleted: &HashSet<u64>, visited: &mut Visited) -> Vec<u32> {
        // Most offers are refused on their key, so the face id (a cache miss) is read only for
        // the points that enter the pool, and only when something is deleted at all.
        let is_deleted = |i: u32| !deleted.is_empty() && deleted.contains(&self.ids[i as usize]);
        let mut pool = Pool::new(ef);
        let mut fresh = Vec::new();
        visited.mark(start);
        pool.offer(self.code_key(q, start), start, is_deleted);
        while let Some(at) = pool.next_to_expand() {
            let (from, to) = (self.offsets[at as usize] as usize, self.offsets[at as usize + 1] as usize);
            let neighbours = &self.neighbours[from..to];
            fresh.clear();
            fresh.extend(neighbours.iter().copied().filter(|&n| visited.mark(n)));
            // The codes lie scattered in memory: keep a few loads in flight ahead of the row
            // being scored, so their round trips overlap instead of following one another.
            fresh.iter().take(PREFETCH_AHEAD).for_each(|&n| prefetch(self.code_row(n)));
            for (j, &n) in fresh.iter().enumerate() {
                if let Some(&ahead) = fresh.get(j + PREFETCH_AHEAD) {
                    prefetch(self.code_row(ahead));
                }
                pool.offer(self.code_key(q, n), n, is_deleted);
            }
        }
        pool.live_points()
    }
}

/// The walk's frontier and its result in one array sorted by key: the `ef` nearest live points
/// found so far, with the deleted points that rank among them (walked, never returned). The walk
/// expands the nearest unexpanded entry until every entry is expanded. A sorted array of ~ef
/// entries costs less to keep than the two binary heaps of the textbook version.
struct Pool {
    entries: Vec<PoolEntry>,
    ef: usize,
    live: usize,
    /// Entries before this index are all expanded.
    cursor: usize,
}

#[derive(Clone, Copy)]
struct PoolEntry {
    key: Key,
    point: u32,
    deleted: bool,
    expanded: bool,
}

impl Pool {
    fn new(ef: usize) -> Self {
        Pool { entries: Vec::with_capacity(ef * 2 + 1), ef, live: 0, cursor: 0 }
    }

    /// Adds a point unless the pool is full of nearer live points.
    fn offer(&mut self, key: Key, point: u32, is_deleted: impl Fn(u32) -> bool) {
        if self.live >= self.ef && self.entries.last().is_some_and(|worst| key >= worst.key) {
            return;
        }
        let deleted = is_deleted(point);
        let at = self.entries.partition_point(|e| e.key <= key);
        self.entries.insert(at, PoolEntry { key, point, deleted, expanded: false });
        self.cursor = self.cursor.min(at);
        if !deleted {
            self.live += 1;
        }
        if self.live > self.ef {
            // Drop the farthest live point, and the deleted ones behind the new farthest.
            while let Some(e) = self.entries.pop() {
                if !e.deleted {
                    self.live -= 1;
                    break;
                }
            }
        }
        if self.live >= self.ef {
            while self.entries.last().is_some_and(|e| e.deleted) {
                self.entries.pop();
            }
        }
    }

    fn next_to_expand(&mut self) -> Option<u32> {
        while self.cursor < self.entries.len() && self.entries[self.cursor].expanded {
            self.cursor += 1;
        }
        let e = self.entries.get_mut(self.cursor)?;
        e.expanded = true;
        Some(e.point)
    }

    fn live_points(&self) -> Vec<u32> {
        self.entries.iter().filter(|e| !e.deleted).map(|e| e.point).collect()
    }
}

/// The points a query has visited, as a bitset reused across the queries of one thread: 1 bit a
/// point keeps it in the nearest caches (a stamp per point did not), and only the words a query
/// touched are cleared after it.
#[derive(Default)]
struct Visited {
    bits: Vec<u64>,
    touched: Vec<u32>,
}

impl Visited {
    /// Marks `i`; false when it was already marked in this query.
    fn mark(&mut self, i: u32) -> bool {
        let word = i as usize / 64;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1 << (i % 64);
        if self.bits[word] & bit != 0 {
            return false;
        }
        self.bits[word] |= bit;
        self.touched.push(i);
        true
    }

    fn clear(&mut self) {
        for i in self.touched.drain(..) {
            self.bits[i as usize / 64] = 0;
        }
    }
}

/// A hint to load `row` into the cache; it never faults and changes no result.
#[inline]
fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in (row.as_ptr() as usize..row.as_ptr() as usize + std::mem::size_of_val(row)).step_by(64) {
        // SAFETY: a prefetch only hints the cache; any address is allowed.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// An empty vector with room for `capacity` items, in memory the kernel may back with 2 MB
/// pages: a search touches rows all over the arrays, and with 4 KB pages nearly every row would
/// also cost a TLB miss. Only the capacity is advised, so the vector must not grow past it.
fn with_huge_pages<T>(capacity: usize) -> Vec<T> {
    let v = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_ptr() as usize + capacity * std::mem::size_of::<T>()) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies inside `v`'s allocation; the advice changes no contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v
}

fn into_huge_pages<T: Copy>(v: Vec<T>) -> Vec<T> {
    let mut out = with_huge_pages(v.len());
    out.extend_from_slice(&v);
    out
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_ef_nearest_live_points_and_the_deleted_among_them() {
        let deleted = |p: u32| p >= 100;
        let mut pool = Pool::new(2);
        pool.offer(50, 1, deleted);
        pool.offer(30, 100, deleted); // deleted, nearest: kept to walk through
        pool.offer(40, 2, deleted);
        assert_eq!(pool.entries.iter().map(|e| e.point).collect::<Vec<_>>(), [100, 2, 1]);
        pool.offer(60, 3, deleted); // full of nearer live points: refused
        pool.offer(45, 101, deleted); // deleted, between the live ones: kept
        pool.offer(35, 4, deleted); // pushes out 1 (the farthest live point)
        assert_eq!(pool.entries.iter().map(|e| e.point).collect::<Vec<_>>(), [100, 4, 2]);
        // 101 went with 1: a deleted point behind the farthest live one is never needed.
        assert_eq!(pool.next_to_expand(), Some(100));
        assert_eq!(pool.next_to_expand(), Some(4));
        pool.offer(10, 5, deleted); // nearer than everything expanded: expanded next; 2 drops out
        assert_eq!(pool.next_to_expand(), Some(5));
        assert_eq!(pool.next_to_expand(), None);
        assert_eq!(pool.live_points(), [5, 4]);
    }

    #[test]
    fn visited_marks_once_per_query_and_clears_only_what_it_touched() {
        let mut v = Visited::default();
        assert!(v.mark(3));
        assert!(v.mark(700));
        assert!(!v.mark(3));
        v.clear();
        assert!(v.bits.iter().all(|&w| w == 0));
        assert!(v.mark(3), "a new query starts unvisited");
    }
}
