//! A copy of hnsw_rs' graph laid out for fast search, kept up to date as points are inserted.
//!
//! hnsw_rs builds and persists the graph, but its search walks `Arc<Point>`s behind per-point
//! locks and allocates on every step; a profile showed that bookkeeping costing more than the
//! distances. This view copies the graph into dense arrays (vectors contiguous, layer-0
//! neighbours as u32 rows in fixed slots) and searches it with a reusable visited table, so a
//! query does little more than its dot products. The walk ranks by 4-bit codes of the vectors (an
//! eighth of the memory traffic, see `nibble_codes`); the `ef` points it keeps are re-ranked with
//! the exact f32 distance. Inserts reach the view as `ViewChanges`: the new points plus the lists
//! they changed, so keeping up costs in proportion to the inserts, not to the graph.

use crate::distance::dot;
use crate::nibble_codes::{self, NibbleCodes, QueryWeights};
use hnsw_rs::prelude::{Distance, Hnsw, Neighbour, Point};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

// The build fills the view's arrays directly, so it is a child module (its own file).
#[path = "graph_build.rs"]
mod graph_build;

pub(crate) struct GraphView {
    dim: usize,
    /// Row → face id.
    ids: Vec<u64>,
    /// Unit vectors, row `i` at `i * dim`.
    vectors: Vec<f32>,
    codes: CodeRows,
    coder: NibbleCodes,
    /// Rows the coder was fitted to: the codes are refitted once the view has doubled since.
    fitted_rows: usize,
    /// Layer-0 neighbours, one slot of `1 + max_degree` words per row: the count, then the rows.
    /// Fixed slots let an insert rewrite the lists it changed in place.
    neighbours: Vec<u32>,
    max_degree: usize,
    /// Neighbours on layers 1.. of the few rows that reach them: `upper[&i][layer - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: u32,
    top_layer: usize,
    /// `rows_of_layer[l][r]` is the row of hnsw_rs' point `PointId(l, r)`: hnsw_rs appends each
    /// point to the layer of its level, so the points a view lacks are the tails of those lists.
    rows_of_layer: Vec<Vec<u32>>,
    /// hnsw_rs' points by row, to re-read the neighbour lists that later inserts change.
    points: Vec<Arc<Point<'static, f32>>>,
}

/// What a graph holds that its view does not yet: the points inserted since, and the neighbour
/// lists (as rows of the view) of those points and of the older points whose lists they changed.
/// Gathered while searches still read the view, then applied in a moment under its write lock.
pub(crate) struct ViewChanges {
    fresh: Vec<Arc<Point<'static, f32>>>,
    lists: Vec<(u32, Vec<Vec<u32>>)>,
}

/// Rank key of the walk: `CODE_KEY_BIAS - code score`, smaller is nearer.
type Key = u32;

/// Above any code score of up to 500,000 dimensions (|score| ≤ 127 · 15 · dim < 2^30).
const CODE_KEY_BIAS: i32 = 1 << 30;

/// Rows whose loads are started ahead of the one being scored: enough to overlap their memory
/// round trips, few enough not to overflow the core's queue of outstanding misses.
const PREFETCH_AHEAD: usize = 8;

impl GraphView {
    /// An empty view for a graph whose points keep at most `max_degree` layer-0 neighbours.
    fn empty(dim: usize, max_degree: usize) -> Self {
        GraphView {
            dim,
            ids: Vec::new(),
            vectors: Vec::new(),
            codes: CodeRows::default(),
            coder: NibbleCodes::fit(&[], dim),
            fitted_rows: 0,
            neighbours: Vec::new(),
            max_degree,
            upper: HashMap::new(),
            entry: 0,
            top_layer: 0,
            rows_of_layer: Vec::new(),
            points: Vec::new(),
        }
    }

    pub(crate) fn from_hnsw<D: Distance<f32> + Send + Sync>(hnsw: &Hnsw<'static, f32, D>, dim: usize) -> Self {
        // hnsw_rs keeps up to twice its M on layer 0.
        let mut view = Self::empty(dim, 2 * hnsw.get_max_nb_connection() as usize);
        let changes = view.changes_in(hnsw);
        view.apply(changes);
        view
    }

    /// The points of `hnsw` this view lacks, and every neighbour list their inserts changed:
    /// theirs, and those of their neighbours (hnsw_rs links a new point back from each).
    /// Reads the graph only; the caller keeps inserts out until the changes are applied.
    pub(crate) fn changes_in<D: Distance<f32> + Send + Sync>(&self, hnsw: &Hnsw<'static, f32, D>) -> ViewChanges {
        let indexation = hnsw.get_point_indexation();
        let mut fresh = Vec::new();
        // Row of the first fresh point of each layer; fresh rows follow the view's, layer by layer.
        let mut first_fresh_row = Vec::new();
        if hnsw.get_nb_point() > 0 {
            for layer in 0..=hnsw.get_max_level_observed() as usize {
                let known = self.rows_of_layer.get(layer).map_or(0, Vec::len);
                first_fresh_row.push((self.ids.len() + fresh.len()) as u32);
                if indexation.get_layer_nb_point(layer) > known {
                    fresh.extend(indexation.get_layer_iterator(layer).skip(known));
                }
            }
        }
        let row_of = |n: &Neighbour| -> Option<u32> {
            let (layer, rank) = (n.p_id.0 as usize, usize::try_from(n.p_id.1).ok()?);
            let known = self.rows_of_layer.get(layer).map_or(0, Vec::len);
            if rank < known {
                Some(self.rows_of_layer[layer][rank])
            } else {
                // A point inserted after `fresh` was read has no row yet; the next changes add it.
                let row = *first_fresh_row.get(layer)? + (rank - known) as u32;
                ((row as usize) < self.ids.len() + fresh.len()).then_some(row)
            }
        };
        let lists_of = |p: &Point<'static, f32>| -> Vec<Vec<u32>> {
            let mut layers = p.get_neighborhood_id();
            layers.truncate(p.get_point_id().0 as usize + 1);
            layers.iter().map(|ns| ns.iter().filter_map(&row_of).collect()).collect()
        };
        let mut lists: Vec<(u32, Vec<Vec<u32>>)> =
            fresh.iter().enumerate().map(|(j, p)| ((self.ids.len() + j) as u32, lists_of(p))).collect();
        let old_neighbours: BTreeSet<u32> =
            lists.iter().flat_map(|(_, layers)| layers.iter().flatten()).copied().filter(|&row| (row as usize) < self.ids.len()).collect();
        lists.extend(old_neighbours.into_iter().map(|row| (row, lists_of(&self.points[row as usize]))));
        ViewChanges { fresh, lists }
    }

    /// Adds the fresh points as rows and rewrites the changed lists.
    pub(crate) fn apply(&mut self, changes: ViewChanges) {
        let ViewChanges { fresh, lists } = changes;
        let slot = 1 + self.max_degree;
        reserve_huge(&mut self.ids, fresh.len());
        reserve_huge(&mut self.vectors, fresh.len() * self.dim);
        reserve_huge(&mut self.neighbours, fresh.len() * slot);
        for p in fresh {
            let row = self.ids.len() as u32;
            let level = p.get_point_id().0 as usize;
            self.ids.push(p.get_origin_id() as u64);
            self.vectors.extend_from_slice(&p.get_v()[..self.dim]);
            self.neighbours.resize(self.neighbours.len() + slot, 0);
            if self.rows_of_layer.len() <= level {
                self.rows_of_layer.resize_with(level + 1, Vec::new);
            }
            self.rows_of_layer[level].push(row);
            if level > self.top_layer || row == 0 {
                (self.top_layer, self.entry) = (level, row);
            }
            self.points.push(p);
        }
        for (row, mut layers) in lists {
            self.set_layer0(row, layers.first().map_or(&[][..], Vec::as_slice));
            if layers.len() > 1 {
                self.upper.insert(row, layers.split_off(1));
            }
        }
        self.encode_new_rows();
    }

    /// Codes the rows added since the last call, refitting all codes once the view has doubled
    /// since their fit (the doubling keeps the total coding work linear in the rows).
    fn encode_new_rows(&mut self) {
        if self.ids.len() >= 2 * self.fitted_rows {
            self.coder = NibbleCodes::fit(&self.vectors, self.dim);
            self.fitted_rows = self.ids.len();
            self.codes = CodeRows::new(self.coder.row_bytes());
        }
        let coded = self.codes.len();
        self.codes.reserve(self.ids.len() - coded);
        for row in self.vectors[coded * self.dim..].chunks_exact(self.dim) {
            self.codes.push_with(|out| self.coder.encode_into(row, out));
        }
    }

    /// Approximate rank key: a larger code score means nearer, so smaller keys are nearer.
    fn code_key(&self, q: &QueryWeights, i: u32) -> Key {
        (CODE_KEY_BIAS - nibble_codes::score(q, self.code_row(i))) as Key
    }

    fn code_row(&self, i: u32) -> &[u8] {
        self.codes.row(i as usize)
    }

    /// Rewrites row `i`'s layer-0 slot with `rows` (at most `max_degree` of them are kept).
    fn set_layer0(&mut self, i: u32, rows: &[u32]) {
        let base = i as usize * (1 + self.max_degree);
        let count = rows.len().min(self.max_degree);
        self.neighbours[base] = count as u32;
        self.neighbours[base + 1..base + 1 + count].copy_from_slice(&rows[..count]);
    }

    /// Layer-0 neighbours of row `i`.
    fn neighbours_of(&self, i: u32) -> &[u32] {
        let base = i as usize * (1 + self.max_degree);
        let count = self.neighbours[base] as usize;
        &self.neighbours[base + 1..base + 1 + count]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The entry face, and each face's vector and neighbour faces on every layer: what two views
    /// of one graph agree on, whatever the order of their rows.
    #[cfg(test)]
    pub(crate) fn by_face(&self) -> (u64, std::collections::BTreeMap<u64, (Vec<f32>, Vec<Vec<u64>>)>) {
        let faces = |rows: &[u32]| rows.iter().map(|&r| self.ids[r as usize]).collect::<Vec<_>>();
        let rows = (0..self.ids.len() as u32).map(|i| {
            let mut layers = vec![faces(self.neighbours_of(i))];
            layers.extend(self.upper.get(&i).into_iter().flatten().map(|l| faces(l)));
            (self.ids[i as usize], (self.vector_row(i).to_vec(), layers))
        });
        (self.ids.get(self.entry as usize).copied().unwrap_or(0), rows.collect())
    }

    /// The unit vector of row `i`.
    pub(crate) fn vector_row(&self, i: u32) -> &[f32] {
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
        let start = self.greedy_descent(&q_codes, 1);
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

    /// From the entry point, moves to a nearer neighbour on each layer down to `lowest` while
    /// one is nearer (by code).
    fn greedy_descent(&self, q: &QueryWeights, lowest: usize) -> u32 {
        let mut at = self.entry;
        let mut at_key: Key = self.code_key(q, at);
        for layer in (lowest.max(1)..=self.top_layer).rev() {
            let mut moved = true;
            while moved {
                moved = false;
                for &n in self.list(at, layer) {
                    let key = self.code_key(q, n);
                    if key < at_key {
                        (at, at_key, moved) = (n, key, true);
                    }
                }
            }
        }
        at
    }

    /// Row `i`'s neighbours on `layer`.
    fn list(&self, i: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            self.neighbours_of(i)
        } else {
            self.upper.get(&i).and_then(|l| l.get(layer - 1)).map_or(&[], Vec::as_slice)
        }
    }

    /// Best-first search of layer 0 by code distance, returning the `ef` best live points found.
    fn beam_search(&self, q: &QueryWeights, start: u32, ef: usize, deleted: &HashSet<u64>, visited: &mut Visited) -> Vec<u32> {
        // Most offers are refused on their key, so the face id (a cache miss) is read only for
        // the points that enter the pool, and only when something is deleted at all.
        let is_deleted = |i: u32| !deleted.is_empty() && deleted.contains(&self.ids[i as usize]);
        self.walk(q, &[start], ef, |i| self.neighbours_of(i), is_deleted, visited)
    }

    /// Best-first search by code distance from `starts` over the lists `neighbours` gives,
    /// returning the `ef` best live points found. Leaves the visited marks for the caller to clear.
    fn walk<'s>(
        &'s self,
        q: &QueryWeights,
        starts: &[u32],
        ef: usize,
        neighbours: impl Fn(u32) -> &'s [u32],
        is_deleted: impl Fn(u32) -> bool + Copy,
        visited: &mut Visited,
    ) -> Vec<u32> {
        let mut pool = Pool::new(ef);
        let mut fresh = Vec::new();
        for &start in starts {
            if visited.mark(start) {
                pool.offer(self.code_key(q, start), start, is_deleted);
            }
        }
        while let Some(at) = pool.next_to_expand() {
            fresh.clear();
            fresh.extend(neighbours(at).iter().copied().filter(|&n| visited.mark(n)));
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

/// Makes room for `additional` more items. When full, moves to a huge-page allocation of twice
/// the size, so appends stay amortised O(1) and the arrays stay on huge pages. A quarter more is
/// reserved on top, so the first inserts after an open do not move the arrays; pages never
/// touched cost no memory.
fn reserve_huge<T: Copy>(v: &mut Vec<T>, additional: usize) {
    let needed = v.len() + additional;
    if needed > v.capacity() {
        let mut grown = with_huge_pages((needed + needed / 4).max(2 * v.len()));
        grown.extend_from_slice(v);
        *v = grown;
    }
}

/// Code rows from a 64-byte aligned start, so that a row spans the fewest cache lines.
#[derive(Default)]
struct CodeRows {
    bytes: Vec<u8>,
    start: usize,
    row_bytes: usize,
}

impl CodeRows {
    fn new(row_bytes: usize) -> Self {
        CodeRows { bytes: Vec::new(), start: 0, row_bytes }
    }

    fn len(&self) -> usize {
        (self.bytes.len() - self.start).checked_div(self.row_bytes).unwrap_or(0)
    }

    fn row(&self, i: usize) -> &[u8] {
        let at = self.start + i * self.row_bytes;
        &self.bytes[at..at + self.row_bytes]
    }

    /// Makes room for `rows` more rows; a move to a larger allocation re-aligns the start.
    fn reserve(&mut self, rows: usize) {
        let held = self.bytes.len() - self.start;
        if self.bytes.len() + rows * self.row_bytes <= self.bytes.capacity() {
            return;
        }
        let needed = held + rows * self.row_bytes;
        let mut bytes = with_huge_pages((needed + needed / 4).max(2 * held) + 64);
        let start = (64 - bytes.as_ptr() as usize % 64) % 64;
        bytes.resize(start, 0);
        bytes.extend_from_slice(&self.bytes[self.start..]);
        (self.bytes, self.start) = (bytes, start);
    }

    /// Appends the row that `encode` writes.
    fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.bytes);
    }
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
