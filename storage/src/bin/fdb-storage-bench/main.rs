//! Bench binary for large sizes: insert rate, snapshot and open time, bytes on disk per face,
//! memory, and recall@10 / p50 / p99 latency at one query thread for several `ef`.
//!
//! fdb-storage-bench --base base.npy --queries query.npy --gt groundtruth.ivecs --db DIR
//!                   [--n N] [--m 24] [--efc 200] [--ef 16,32,64,128] [--exact 200] [--reuse 1]
//!                   [--enrol N] [--import 1] [--runs K]
//! Vectors may be .npy or .fvecs, ground truth .npy or .ivecs (exact top-k row numbers).
//! `--enrol N` then adds N faces one at a time, each followed by a search, the way a service
//! enrols into a large gallery while it answers; they are removed again at the end.
//! `--import 1` builds with `Store::import_faces` (store everything, then fdb's own graph build)
//! instead of `add_faces` batches inserted into hnsw_rs. `--runs K` adds the faces in K
//! runs, closing and reopening the database between them, as K runs of `fdb enroll` would.

mod vecio;

use fdb_storage::{disk_bytes, distance::dot, FaceId, IndexLoad, IndexParams, NewFace, PersonId, Store, StoreOptions};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

const K: usize = 10;
const INSERT_BATCH: usize = 2_000;
const FACES_PER_PERSON: usize = 20;

struct Args {
    base: PathBuf,
    queries: PathBuf,
    gt: PathBuf,
    db: PathBuf,
    n: Option<usize>,
    params: IndexParams,
    efs: Vec<usize>,
    exact_queries: usize,
    /// Measure an existing database built by an earlier run instead of building one.
    reuse: bool,
    /// Faces to enrol one at a time after the searches.
    enrol: usize,
    /// Build with `import_faces` instead of `add_faces`.
    import: bool,
    /// Runs the `add_faces` build is split into (closed and reopened in between).
    runs: usize,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\nusage: fdb-storage-bench --base FILE --queries FILE --gt FILE --db DIR [--n N] [--m 24] [--efc 200] [--ef 16,32,64] [--exact 200] [--reuse 1] [--enrol N]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), String> {
    let base = vecio::read_f32(&a.base)?;
    let queries = vecio::read_f32(&a.queries)?;
    let gt = vecio::read_i32(&a.gt)?;
    let n = a.n.unwrap_or(base.rows).min(base.rows);
    if n < base.rows && a.n.is_some() {
        println!("note: using the first {n} of {} base vectors; the ground truth is only valid for all of them", base.rows);
    }
    if a.reuse {
        println!("data: {n} x {} base, {} queries; reusing {} as built", base.cols, queries.rows, a.db.display());
    } else {
        println!("data: {n} x {} base, {} queries, M={} efC={}", base.cols, queries.rows, a.params.m, a.params.ef_construction);
    }

    let opts = StoreOptions { index: a.params, ..StoreOptions::default() };
    let mut ids = Vec::new();
    if !a.reuse {
        let _ = std::fs::remove_dir_all(&a.db);
        let mut store = Store::open(&a.db, opts.clone()).map_err(|e| e.to_string())?;
        let t = Instant::now();
        if a.import {
            ids = import_all(&store, &base, n)?;
        } else {
            let per_run = n.div_ceil(a.runs);
            for run in 0..a.runs {
                if run > 0 {
                    drop(store);
                    store = Store::open(&a.db, opts.clone()).map_err(|e| e.to_string())?;
                }
                let rows = run * per_run..((run + 1) * per_run).min(n);
                ids.extend(insert_rows(&store, &base, rows)?);
            }
        }
        let insert_s = t.elapsed().as_secs_f64();
        println!("insert: {n} faces in {insert_s:.1} s = {:.0} faces/s", n as f64 / insert_s);
        let t = Instant::now();
        drop(store); // a clean close writes the index snapshot
        println!("close (snapshot + flush): {:.2} s", t.elapsed().as_secs_f64());
    }
    let disk = disk_bytes(&a.db);
    println!("disk: {:.1} MB = {:.0} bytes/face (crops are empty here)", disk as f64 / 1e6, disk as f64 / n as f64);

    let rss_before = rss_kb();
    let t = Instant::now();
    let store = Store::open(&a.db, opts).map_err(|e| e.to_string())?;
    println!("open: {:.2} s ({:?}), RSS +{} MB, peak RSS {} MB, {} MB in huge pages", t.elapsed().as_secs_f64(), store.index_load(),
        (rss_kb().saturating_sub(rss_before)) / 1024, peak_rss_kb() / 1024, huge_pages_kb() / 1024);
    let stats = store.stats().map_err(|e| e.to_string())?;
    println!("index snapshot: {:.1} MB = {:.0} bytes/face", stats.snapshot_bytes as f64 / 1e6, stats.snapshot_bytes as f64 / n as f64);
    println!("vector files: {:.1} MB = {:.0} bytes/face", stats.vector_bytes as f64 / 1e6, stats.vector_bytes as f64 / n as f64);
    if store.index_load() == IndexLoad::Rebuilt {
        return Err("open rebuilt the index instead of loading the snapshot".into());
    }

    let row_of: HashMap<u64, usize> = if a.reuse {
        rows_by_source_name(&store)?
    } else {
        ids.iter().enumerate().map(|(row, id)| (id.0, row)).collect()
    };
    println!("| ef | recall@{K} | p50 ms | p99 ms | mean ms |");
    println!("|---|---|---|---|---|");
    for &ef in &a.efs {
        let mut lat = Vec::with_capacity(queries.rows);
        let mut found = 0usize;
        for q in 0..queries.rows {
            let t = Instant::now();
            let hits = store.search(queries.row(q), K, Some(ef)).map_err(|e| e.to_string())?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            let truth: HashSet<i32> = gt.row(q)[..K].iter().copied().collect();
            found += hits.iter().filter(|h| truth.contains(&(row_of[&h.face.0] as i32))).count();
        }
        let (p50, p99, mean) = percentiles(&mut lat);
        println!("| {ef} | {:.4} | {p50:.3} | {p99:.3} | {mean:.3} |", found as f64 / (K * queries.rows) as f64);
    }
    if a.exact_queries > 0 {
        let mut lat = Vec::new();
        for q in 0..a.exact_queries.min(queries.rows) {
            let t = Instant::now();
            std::hint::black_box(exact_top_k(&base, n, queries.row(q)));
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (p50, p99, _) = percentiles(&mut lat);
        println!("exact scan ({} queries): p50 {p50:.2} ms, p99 {p99:.2} ms", lat.len());
    }
    if a.enrol > 0 {
        enrol_while_searching(&store, &queries, base.rows, a.enrol)?;
    }
    Ok(())
}

/// Adds `count` faces (the query vectors, as new faces) one at a time, each followed by one
/// search, and reports both latencies, the worst included: a stall shows only there.
fn enrol_while_searching(store: &Store, queries: &vecio::Matrix<f32>, first_row: usize, count: usize) -> Result<(), String> {
    let person = store.add_person("bench enrol", BTreeMap::new()).map_err(|e| e.to_string())?;
    let (mut add, mut search) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for i in 0..count {
        let face = bench_face(person, first_row + i, queries.row(i % queries.rows));
        let t = Instant::now();
        store.add_face(face).map_err(|e| e.to_string())?;
        add.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(store.search(queries.row((i + 1) % queries.rows), K, None).map_err(|e| e.to_string())?);
        search.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (what, lat) in [("add_face", &mut add), ("search", &mut search)] {
        let worst = lat.iter().copied().fold(0.0, f64::max);
        let (p50, p99, mean) = percentiles(lat);
        println!("enrol {count} one at a time, {what}: p50 {p50:.3} ms, p99 {p99:.3} ms, max {worst:.1} ms, mean {mean:.3} ms");
    }
    store.remove_person("bench enrol").map_err(|e| e.to_string())?;
    Ok(())
}

/// Adds base rows `rows` through `add_faces` in batches of INSERT_BATCH, FACES_PER_PERSON a person.
fn insert_rows(store: &Store, base: &vecio::Matrix<f32>, rows: std::ops::Range<usize>) -> Result<Vec<FaceId>, String> {
    let mut ids = Vec::with_capacity(rows.len());
    // A run may start inside a person's faces: that person was added by the run before.
    let first = rows.start - rows.start % FACES_PER_PERSON;
    let mut person = match store.person_by_name(&format!("person {first}")).map_err(|e| e.to_string())? {
        Some(p) => p.id,
        None => PersonId(0), // set by the first row, which starts a person
    };
    for start in rows.clone().step_by(INSERT_BATCH) {
        let mut batch = Vec::with_capacity(INSERT_BATCH);
        for row in start..(start + INSERT_BATCH).min(rows.end) {
            if row % FACES_PER_PERSON == 0 {
                person = store.add_person(&format!("person {row}"), BTreeMap::new()).map_err(|e| e.to_string())?;
            }
            batch.push(bench_face(person, row, base.row(row)));
        }
        ids.extend(store.add_faces(batch).map_err(|e| e.to_string())?);
        if ids.len() % 20_000 == 0 {
            eprintln!("  inserted {}", ids.len());
        }
    }
    Ok(ids)
}

/// The same faces as `insert_rows` over all rows, stored by one `import_faces` (one graph build at the end).
fn import_all(store: &Store, base: &vecio::Matrix<f32>, n: usize) -> Result<Vec<FaceId>, String> {
    let persons = (0..n)
        .step_by(FACES_PER_PERSON)
        .map(|row| store.add_person(&format!("person {row}"), BTreeMap::new()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, String>>()?;
    let batches = (0..n)
        .step_by(INSERT_BATCH)
        .map(|start| (start..(start + INSERT_BATCH).min(n)).map(|row| bench_face(persons[row / FACES_PER_PERSON], row, base.row(row))).collect());
    store.import_faces(batches).map_err(|e| e.to_string())
}

/// Face id → base row of a reused database, from the `face_NNNNNNN.jpg` names `bench_face` gave.
fn rows_by_source_name(store: &Store) -> Result<HashMap<u64, usize>, String> {
    let mut rows = HashMap::new();
    for person in store.people().map_err(|e| e.to_string())? {
        for face in store.faces_of(person.id).map_err(|e| e.to_string())? {
            let row = face.source_name.strip_prefix("face_").and_then(|s| s.strip_suffix(".jpg")).and_then(|s| s.parse().ok());
            rows.insert(face.id.0, row.ok_or_else(|| format!("face {} was not made by this bench", face.source_name))?);
        }
    }
    Ok(rows)
}

fn bench_face(person: PersonId, row: usize, v: &[f32]) -> NewFace {
    let mut sha = [0u8; 32];
    sha[..8].copy_from_slice(&(row as u64).to_be_bytes());
    NewFace {
        person,
        source_name: format!("face_{row:07}.jpg"),
        source_sha256: sha,
        bbox: [10.0, 12.0, 110.0, 140.0],
        landmarks: [[40.0, 50.0], [80.0, 50.0], [60.0, 75.0], [45.0, 100.0], [75.0, 100.0]],
        score: 0.999,
        quality: None,
        model_id: "bench".into(),
        crop: Vec::new(),
        embedding: v.to_vec(),
    }
}

/// The baseline: every base vector scored against the query, best 10 kept.
fn exact_top_k(base: &vecio::Matrix<f32>, n: usize, q: &[f32]) -> Vec<usize> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(K + 1);
    for row in 0..n {
        let d = 2.0 - 2.0 * dot(q, base.row(row));
        if best.len() < K || d < best[K - 1].0 {
            let at = best.partition_point(|(bd, _)| *bd <= d);
            best.insert(at, (d, row));
            best.truncate(K);
        }
    }
    best.into_iter().map(|(_, r)| r).collect()
}

fn percentiles(lat: &mut [f64]) -> (f64, f64, f64) {
    lat.sort_by(f64::total_cmp);
    let at = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    (at(0.50), at(0.99), lat.iter().sum::<f64>() / lat.len() as f64)
}

/// A "Field: N kB" line of a /proc/self file.
fn proc_kb(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/self/{file}"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Anonymous memory backed by transparent huge pages.
fn huge_pages_kb() -> u64 {
    proc_kb("smaps_rollup", "AnonHugePages:")
}

fn rss_kb() -> u64 {
    proc_kb("status", "VmRSS:")
}

fn peak_rss_kb() -> u64 {
    proc_kb("status", "VmHWM:")
}

fn parse_args() -> Result<Args, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let name = key.strip_prefix("--").ok_or_else(|| format!("unexpected argument {key:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_string(), value);
    }
    let path = |k: &str| map.get(k).map(PathBuf::from).ok_or_else(|| format!("--{k} is required"));
    let num = |k: &str, default: usize| -> Result<usize, String> {
        map.get(k).map_or(Ok(default), |v| v.parse().map_err(|_| format!("--{k}: {v:?} is not a number")))
    };
    let defaults = IndexParams::default();
    let efs = map
        .get("ef")
        .map_or("16,24,32,48,64,96,128", |s| s.as_str())
        .split(',')
        .map(|s| s.trim().parse().map_err(|_| format!("--ef: {s:?} is not a number")))
        .collect::<Result<Vec<usize>, String>>()?;
    Ok(Args {
        base: path("base")?,
        queries: path("queries")?,
        gt: path("gt")?,
        db: path("db")?,
        n: map.get("n").map(|v| v.parse().map_err(|_| format!("--n: {v:?} is not a number"))).transpose()?,
        params: IndexParams { m: num("m", defaults.m)?, ef_construction: num("efc", defaults.ef_construction)?, ..defaults },
        efs,
        exact_queries: num("exact", 200)?,
        reuse: num("reuse", 0)? != 0,
        enrol: num("enrol", 0)?,
        import: num("import", 0)? != 0,
        runs: num("runs", 1)?.max(1),
    })
}
