//! fdb's own bulk build of an HNSW graph, on the search view's arrays.
//!
//! hnsw_rs builds a graph by inserting points one at a time, each search walking `Arc<Point>`s
//! behind locks, and on a full neighbour list it keeps the nearest, which on identity clusters
//! drops the links between clusters. This build walks the view (4-bit codes, exact re-rank),
//! selects every list with the HNSW heuristic, the lists that gain a reverse link included, and
//! inserts in parallel batches. The result is handed to hnsw_rs as a dump of its own format, so
//! hnsw_rs still holds the graph and takes the inserts that follow.
//!
//! Measured with `fdb-storage-bench` (docs/benchmarks.md): at 1M faces, M=24, efC=100, a quarter
//! of hnsw_rs' build time for recall 0.962 against 0.934 at ef=256.

use super::{GraphView, Visited};
use crate::graph_codec::Lists;

/// Points are inserted one at a time until the graph has this many; then in batches.
const SEQUENTIAL_POINTS: usize = 2048;
/// Batches are this fraction of the graph so far, so that a batch's points, which do not find
/// each other through the graph, are few against those they do find.
const BATCH_FRACTION: usize = 64;
const MAX_BATCH: usize = 512;

impl GraphView {
    /// A graph over `vectors` (unit rows, `ids.len() × dim`), row `i` being face `ids[i]`, with
    /// `m` links a point on upper layers and `2m` on layer 0, levels drawn with `level_scale` (as
    /// hnsw_rs draws them), candidates from a walk of `ef_construction`. Deterministic.
    pub(crate) fn build(vectors: Vec<f32>, ids: Vec<u64>, dim: usize, m: usize, ef_construction: usize, level_scale: f64) -> Self {
        let n = ids.len();
        let mut g = Self::empty(dim, 2 * m);
        g.ids = ids;
        g.vectors = vectors;
        g.neighbours = vec![0; n * (1 + 2 * m)];
        g.encode_new_rows();
        let levels = draw_levels(n, level_scale);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let mut done = 0usize;
        while done < n {
            let size = if done < SEQUENTIAL_POINTS { 1 } else { (done / BATCH_FRACTION).min(MAX_BATCH) };
            let batch: Vec<u32> = (done as u32..(done + size).min(n) as u32).collect();
            let chosen = par_map(&batch, threads, |&u, visited| g.choose(u, &levels, batch[0], ef_construction, m, visited));
            for (&u, layers) in batch.iter().zip(&chosen) {
                let level = levels[u as usize] as usize;
                if level > 0 {
                    g.upper.insert(u, vec![Vec::new(); level]);
                }
                for (layer, list) in layers.iter().enumerate() {
                    g.set_list(u, layer, list);
                }
                if u == 0 || level > g.top_layer {
                    (g.top_layer, g.entry) = (level, u);
                }
            }
            // Reverse links, grouped by the list they change, so each list is re-selected once.
            let mut links: Vec<(u32, u8, u32)> = batch
                .iter()
                .zip(&chosen)
                .flat_map(|(&u, layers)| layers.iter().enumerate().flat_map(move |(l, list)| list.iter().map(move |&v| (v, l as u8, u))))
                .collect();
            links.sort_unstable();
            let groups: Vec<&[(u32, u8, u32)]> = links.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).collect();
            let relinked = par_map(&groups, threads, |group, _| {
                let (v, layer) = (group[0].0, group[0].1 as usize);
                g.with_links(v, layer, group.iter().map(|link| link.2), if layer == 0 { 2 * m } else { m })
            });
            for (group, list) in groups.iter().zip(relinked) {
                g.set_list(group[0].0, group[0].1 as usize, &list);
            }
            done += batch.len();
        }
        g
    }

    /// `u`'s neighbours on each of its layers: candidates from a walk of the graph (the rows
    /// before `batch_start`) plus the rows of its batch before it, selected by the heuristic.
    fn choose(&self, u: u32, levels: &[u8], batch_start: u32, ef: usize, m: usize, visited: &mut Visited) -> Vec<Vec<u32>> {
        let level = levels[u as usize] as usize;
        let uv = self.vector_row(u);
        let q = self.coder.query(uv);
        let peers: Vec<(f32, u32)> = (batch_start..u).map(|p| (self.distance(uv, p), p)).collect();
        let mut starts = if batch_start > 0 { vec![self.greedy_descent(&q, level + 1)] } else { Vec::new() };
        let mut out = vec![Vec::new(); level + 1];
        for layer in (0..=level).rev() {
            let found = if layer <= self.top_layer && !starts.is_empty() {
                let found = self.walk(&q, &starts, ef, |i| self.list(i, layer), |_| false, visited);
                visited.clear();
                found
            } else {
                Vec::new()
            };
            let mut candidates: Vec<(f32, u32)> = found.iter().map(|&c| (self.distance(uv, c), c)).collect();
            candidates.extend(peers.iter().filter(|&&(_, p)| levels[p as usize] as usize >= layer));
            candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
            out[layer] = self.select(&candidates, if layer == 0 { 2 * m } else { m });
            if !found.is_empty() {
                starts = found;
            }
        }
        out
    }

    /// The HNSW heuristic over candidates sorted nearest first: a candidate is kept when it is
    /// nearer to the point than to every candidate kept before it, so that the links spread in
    /// all directions instead of crowding into the nearest cluster.
    fn select(&self, sorted: &[(f32, u32)], cap: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(cap);
        for &(d, c) in sorted {
            if kept.len() == cap {
                break;
            }
            let cv = self.vector_row(c);
            if kept.iter().all(|&s| self.distance(cv, s) > d) {
                kept.push(c);
            }
        }
        kept
    }

    /// `v`'s list on `layer` with `new` rows added, re-selected by the heuristic when over `cap`.
    fn with_links(&self, v: u32, layer: usize, new: impl Iterator<Item = u32>, cap: usize) -> Vec<u32> {
        let mut list = self.list(v, layer).to_vec();
        for u in new {
            if !list.contains(&u) {
                list.push(u);
            }
        }
        if list.len() <= cap {
            return list;
        }
        let vv = self.vector_row(v);
        let mut candidates: Vec<(f32, u32)> = list.iter().map(|&c| (self.distance(vv, c), c)).collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.select(&candidates, cap)
    }

    fn set_list(&mut self, i: u32, layer: usize, rows: &[u32]) {
        if layer == 0 {
            self.set_layer0(i, rows);
        } else if let Some(layers) = self.upper.get_mut(&i) {
            layers[layer - 1] = rows.to_vec();
        }
    }

    /// The graph as hnsw_rs lays out a dump: points layer by layer (a point's layer is its
    /// level), in row order within a layer; lists nearest first, with their distances.
    pub(crate) fn lists(&self) -> Lists {
        let level = |row: u32| self.upper.get(&row).map_or(0, Vec::len);
        let mut order: Vec<u32> = (0..self.ids.len() as u32).collect();
        order.sort_by_key(|&row| level(row)); // stable: row order within a layer
        let mut position = vec![0u32; order.len()];
        for (p, &row) in order.iter().enumerate() {
            position[row as usize] = p as u32;
        }
        let mut layer_sizes = vec![0u32; self.top_layer + 1];
        order.iter().for_each(|&row| layer_sizes[level(row)] += 1);
        let points = order
            .iter()
            .map(|&row| {
                let v = self.vector_row(row);
                let layers = (0..=level(row))
                    .map(|layer| {
                        let mut ns: Vec<(u32, f32)> = self.list(row, layer).iter().map(|&n| (position[n as usize], self.distance(v, n).max(0.0))).collect();
                        ns.sort_by(|a, b| a.1.total_cmp(&b.1));
                        ns
                    })
                    .collect();
                (self.ids[row as usize], layers)
            })
            .collect();
        Lists { layer_sizes, points, entry: position.get(self.entry as usize).copied().unwrap_or(0) }
    }
}

/// Levels as HNSW draws them, `floor(-ln(U) · level_scale)`, capped at hnsw_rs' 15, from a
/// fixed seed so that a build is reproducible.
fn draw_levels(n: usize, level_scale: f64) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            // xorshift64: plenty for level draws, and no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            (-uniform.ln() * level_scale).floor().min(15.0) as u8
        })
        .collect()
}

/// `f` over `items` on up to `threads` threads, each with its own visited table; results in
/// order.
fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T, &mut Visited) -> R + Sync) -> Vec<R> {
    if threads < 2 || items.len() < 2 * threads {
        let mut visited = Visited::default();
        return items.iter().map(|x| f(x, &mut visited)).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                let f = &f;
                s.spawn(move || {
                    let mut visited = Visited::default();
                    chunk.iter().map(|x| f(x, &mut visited)).collect::<Vec<R>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a build thread panicked")).collect()
    })
}
