//! The index snapshot, kept inside sled so that the database stays one directory and one
//! atomic unit.
//!
//! hnsw_rs dumps a graph file and a data file. The graph is stored in fdb's compact encoding
//! (`graph_codec`, format 3: ~1/8 of hnsw_rs' bytes) in chunks with a crc; the data file is only
//! a copy of vectors the store already holds, so instead of storing it again it is regenerated
//! from the embeddings on load, in the order of the graph's points, and so are the distances.
//!
//! Chunks are 64 KB. hnsw_rs-sized 8 MB chunks were each written as a sled blob file and again
//! inside the consolidated leaf blob, storing the graph twice; 4 KB chunks stayed in sled's log
//! but were rewritten there with every leaf consolidation (3x the graph). Measured at 20k faces,
//! M = 24 (`fdb-storage-bench --n 20000`): 5,532 bytes/face with 8 MB chunks of hnsw_rs' bytes,
//! 5,658 with 4 KB compact chunks, 5,195 with 64 KB compact chunks.
//!
//! Formats 1 (fdb 0.1.0: hnsw_rs' own graph bytes plus a separate point order) and
//! 2 (an early 0.2.0 format: positions and distances) still load, and are rewritten as format 3 at the
//! next snapshot.

use crate::ann::AnnIndex;
use crate::codec;
use crate::graph_codec::{self, Dump};
use crate::distance::UnitSquaredL2;
use crate::error::{Result, StoreError};
use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const HEADER_KEY: &[u8] = b"header";
const CHUNK_BYTES: usize = 64 << 10;
const BASENAME: &str = "fdb";
/// hnsw_rs' marker in front of every point of its data file.
const HNSW_DATA_MAGIC: u32 = 0xa67f_0000;
const FORMAT: u32 = 3;
const FORMAT_WITH_DISTANCES: u32 = 2;
const FORMAT_HNSW_BYTES: u32 = 1;

#[derive(Serialize, Deserialize, Debug)]
struct Header {
    format: u32,
    model: String,
    dim: u64,
    covered_upto: u64,
    points: u64,
    graph: BlobInfo,
    /// Format 1 only: the face ids of the data file, in order (later formats encode them in the graph).
    order: BlobInfo,
}

#[derive(Serialize, Deserialize, Debug)]
struct BlobInfo {
    len: u64,
    chunks: u32,
    crc: u32,
}

/// Dumps `index` with hnsw_rs into `scratch` and stores it in `tree`, replacing the previous
/// snapshot in one atomic batch.
pub(crate) fn write(tree: &sled::Tree, index: &AnnIndex, scratch: &Path) -> Result<()> {
    let graph = with_scratch(scratch, |dir| {
        let basename = index
            .hnsw
            .file_dump(dir, BASENAME)
            .map_err(|e| StoreError::Corrupt(format!("hnsw_rs could not dump the index: {e}")))?;
        read_file(&dir.join(format!("{basename}.hnsw.graph")))
    })?;
    let graph = graph_codec::encode(&graph)
        .map_err(|why| StoreError::Corrupt(format!("hnsw_rs wrote a graph fdb cannot encode: {why}")))?;
    let mut batch = sled::Batch::default();
    for key in tree.iter().keys() {
        batch.remove(key?);
    }
    let header = Header {
        format: FORMAT,
        model: index.model.clone(),
        dim: index.dim as u64,
        covered_upto: index.covered_upto(),
        points: index.points() as u64,
        graph: put_blob(&mut batch, "graph", &graph),
        order: put_blob(&mut batch, "order", &[]),
    };
    batch.insert(HEADER_KEY, codec::encode(&header));
    tree.apply_batch(batch)?;
    Ok(())
}

/// Bytes of the stored snapshot's blobs (0 when there is none or its header is unreadable).
pub(crate) fn stored_bytes(tree: &sled::Tree) -> Result<u64> {
    let header = tree.get(HEADER_KEY)?.and_then(|b| codec::decode::<Header>(&b, "index snapshot header").ok());
    Ok(header.map_or(0, |h| h.graph.len + h.order.len))
}

/// Reasons `load` gives for a snapshot that is absent or stale rather than damaged.
const NO_SNAPSHOT: &str = "no snapshot";
const OTHER_MODEL: &str = "snapshot is for model";
/// Its vectors are missing: the damage is theirs (`Damage::missing_vectors`), not the graph's.
const MISSING_VECTOR: &str = "has no stored vector";

/// True when `load`'s reason means the stored snapshot itself is damaged.
pub(crate) fn is_damage(why: &str) -> bool {
    !(why == NO_SNAPSHOT || why.starts_with(OTHER_MODEL) || why.contains(MISSING_VECTOR))
}

/// Loads the snapshot for `model`. `Err(reason)` means it cannot be used and the index must
/// be rebuilt (missing, corrupt, or for another model); only storage failures are `Ok(Err)`-free
/// hard errors.
pub(crate) fn load(
    tree: &sled::Tree,
    model: &str,
    scratch: &Path,
    vector: impl Fn(u64) -> Result<Option<Vec<f32>>>,
    tombstones: HashSet<u64>,
    persons: HashMap<u64, u64>,
) -> Result<std::result::Result<AnnIndex, String>> {
    let Some(header_bytes) = tree.get(HEADER_KEY)? else {
        return Ok(Err(NO_SNAPSHOT.into()));
    };
    let header: Header = match codec::decode(&header_bytes, "index snapshot header") {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if ![FORMAT, FORMAT_WITH_DISTANCES, FORMAT_HNSW_BYTES].contains(&header.format) {
        return Ok(Err(format!("snapshot format {} is not {FORMAT}", header.format)));
    }
    if header.model != model {
        return Ok(Err(format!("{OTHER_MODEL} {:?}, active is {model:?}", header.model)));
    }
    let graph = match get_blob(tree, "graph", &header.graph)? {
        Ok(g) => g,
        Err(why) => return Ok(Err(why)),
    };
    let dim = header.dim as usize;
    let hnsw = match header.format {
        FORMAT => {
            let skeleton = match graph_codec::decode(&graph) {
                Ok(s) => s,
                Err(why) => return Ok(Err(format!("snapshot graph: {why}"))),
            };
            if skeleton.ids.len() as u64 != header.points {
                return Ok(Err("snapshot point order has the wrong length".into()));
            }
            // Every vector once, in the graph's order: for the distances and hnsw_rs' data file.
            // Allocated once the first vector has confirmed the header's dimension.
            let mut vectors = Vec::new();
            for (i, &id) in skeleton.ids.iter().enumerate() {
                if i == 1 {
                    vectors.reserve_exact(skeleton.ids.len() * dim - dim);
                }
                match checked_vector(&vector, id, dim)? {
                    Ok(v) => vectors.extend_from_slice(&v),
                    Err(why) => return Ok(Err(why)),
                }
            }
            let row = |p: u32| &vectors[p as usize * dim..][..dim];
            let dump = match skeleton.into_dump(|p, n| UnitSquaredL2.eval(row(p), row(n))) {
                Ok(d) => d,
                Err(why) => return Ok(Err(format!("snapshot graph: {why}"))),
            };
            match hnsw_of_dump(scratch, &dump, dim, |p, _| Ok(Some(row(p as u32).to_vec())))? {
                Ok(h) => h,
                Err(why) => return Ok(Err(why)),
            }
        }
        _ => {
            let dump = if header.format == FORMAT_HNSW_BYTES {
                match get_blob(tree, "order", &header.order)? {
                    Ok(order) => Dump { bytes: graph, order: order.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect() },
                    Err(why) => return Ok(Err(why)),
                }
            } else {
                match graph_codec::decode_v2(&graph) {
                    Ok(dump) => dump,
                    Err(why) => return Ok(Err(format!("snapshot graph: {why}"))),
                }
            };
            if dump.order.len() as u64 != header.points {
                return Ok(Err("snapshot point order has the wrong length".into()));
            }
            match hnsw_of_dump(scratch, &dump, dim, |_, id| vector(id))? {
                Ok(h) => h,
                Err(why) => return Ok(Err(why)),
            }
        }
    };
    if hnsw.get_nb_point() as u64 != header.points {
        return Ok(Err("snapshot graph and point order disagree".into()));
    }
    let index = AnnIndex::from_hnsw(hnsw, model, dim, header.covered_upto, tombstones, persons);
    if header.format != FORMAT {
        index.count_unsaved(index.points()); // so the next snapshot rewrites it in this format
    }
    Ok(Ok(index))
}

/// hnsw_rs' graph from a dump, its vectors taken from `vector(position, face id)`; `Err(why)`
/// when the dump or a vector is not as it should be.
pub(crate) fn hnsw_of_dump(
    scratch: &Path,
    dump: &Dump,
    dim: usize,
    vector: impl Fn(usize, u64) -> Result<Option<Vec<f32>>>,
) -> Result<std::result::Result<Hnsw<'static, f32, UnitSquaredL2>, String>> {
    with_scratch(scratch, |dir| {
        let path = dir.join(format!("{BASENAME}.hnsw.graph"));
        let io_err = |e| StoreError::io(format!("{}: writing the index graph", path.display()), e);
        let mut out = BufWriter::new(std::fs::File::create(&path).map_err(io_err)?);
        for piece in graph_codec::for_hnsw_load(&dump.bytes) {
            out.write_all(piece).map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
        drop(out);
        if let Err(why) = write_data_file(&dir.join(format!("{BASENAME}.hnsw.data")), &dump.order, dim, &vector)? {
            return Ok(Err(why));
        }
        Ok(load_dump(dir))
    })
}

/// Reloads an hnsw_rs dump. hnsw_rs asserts on malformed input, so a panic is caught and
/// reported as corruption (the crc makes that unlikely).
fn load_dump(dir: &Path) -> std::result::Result<Hnsw<'static, f32, UnitSquaredL2>, String> {
    // The loaded graph borrows from its HnswIo (for mmap); we load into memory, so leaking
    // this small struct once per open is what gives the index a 'static lifetime.
    let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let io = io; // moved, not reborrowed, so the result may keep its 'static borrow
        load_leaked(io)
    })) {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(format!("hnsw_rs could not load the snapshot: {e}")),
        Err(_) => Err("hnsw_rs panicked while loading the snapshot".into()),
    }
}

fn load_leaked(io: &'static mut HnswIo) -> anyhow::Result<Hnsw<'static, f32, UnitSquaredL2>> {
    io.load_hnsw::<f32, UnitSquaredL2>()
}

fn put_blob(batch: &mut sled::Batch, name: &str, bytes: &[u8]) -> BlobInfo {
    let chunks = bytes.chunks(CHUNK_BYTES);
    let count = chunks.len() as u32;
    for (i, chunk) in chunks.enumerate() {
        batch.insert(format!("{name}/{i:08}").as_bytes(), chunk);
    }
    BlobInfo { len: bytes.len() as u64, chunks: count, crc: crc32fast::hash(bytes) }
}

fn get_blob(tree: &sled::Tree, name: &str, info: &BlobInfo) -> Result<std::result::Result<Vec<u8>, String>> {
    // The header has no checksum of its own: its length must fit its chunk count before it
    // sizes an allocation.
    if info.len.div_ceil(CHUNK_BYTES as u64) != info.chunks as u64 {
        return Ok(Err(format!("snapshot {name}: {} bytes in {} chunks", info.len, info.chunks)));
    }
    if info.chunks > 0 && tree.get(format!("{name}/{:08}", info.chunks - 1).as_bytes())?.is_none() {
        return Ok(Err(format!("snapshot {name} chunk {} is missing", info.chunks - 1)));
    }
    let mut bytes = Vec::with_capacity(info.len as usize);
    for i in 0..info.chunks {
        match tree.get(format!("{name}/{i:08}").as_bytes())? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => return Ok(Err(format!("snapshot {name} chunk {i} is missing"))),
        }
    }
    if bytes.len() as u64 != info.len || crc32fast::hash(&bytes) != info.crc {
        return Ok(Err(format!("snapshot {name} fails its checksum")));
    }
    Ok(Ok(bytes))
}

/// A point's vector, or why the snapshot cannot use it.
fn checked_vector(
    vector: &impl Fn(u64) -> Result<Option<Vec<f32>>>,
    id: u64,
    dim: usize,
) -> Result<std::result::Result<Vec<f32>, String>> {
    Ok(match vector(id)? {
        None => Err(format!("snapshot point {id} {MISSING_VECTOR}")),
        Some(v) if v.len() != dim => Err(format!("snapshot point {id} has {} dimensions, expected {dim}", v.len())),
        Some(v) => Ok(v),
    })
}

/// Writes an hnsw_rs data file for the points of `order`, taking vectors from `vector`.
fn write_data_file(
    path: &Path,
    order: &[u64],
    dim: usize,
    vector: &impl Fn(usize, u64) -> Result<Option<Vec<f32>>>,
) -> Result<std::result::Result<(), String>> {
    let io_err = |e| StoreError::io(format!("{}: writing the index data", path.display()), e);
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io_err)?);
    out.write_all(&HNSW_DATA_MAGIC.to_ne_bytes()).map_err(io_err)?;
    out.write_all(&dim.to_ne_bytes()).map_err(io_err)?;
    for (position, &id) in order.iter().enumerate() {
        let v = match checked_vector(&|id| vector(position, id), id, dim)? {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        out.write_all(&HNSW_DATA_MAGIC.to_ne_bytes()).map_err(io_err)?;
        out.write_all(&id.to_ne_bytes()).map_err(io_err)?;
        out.write_all(&((dim * 4) as u64).to_ne_bytes()).map_err(io_err)?;
        for x in &v {
            out.write_all(&x.to_ne_bytes()).map_err(io_err)?;
        }
    }
    out.flush().map_err(io_err)?;
    Ok(Ok(()))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StoreError::io(format!("{}: reading the index dump", path.display()), e))?;
    Ok(bytes)
}

/// Runs `f` in a fresh scratch directory and removes it afterwards, whatever happens.
fn with_scratch<T>(dir: &Path, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(format!("{}: creating scratch dir", dir.display()), e))?;
    let result = f(dir);
    let _ = std::fs::remove_dir_all(dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::IndexPoint;
    use crate::test_vectors::unit_vectors;
    use crate::types::IndexParams;

    const DIM: usize = 8;

    fn index_of(n: usize) -> (AnnIndex, HashMap<u64, Vec<f32>>) {
        let params = IndexParams { m: 8, ef_construction: 40, ef_search: 32 };
        let index = AnnIndex::new(&params, "m", DIM, n);
        let points: Vec<IndexPoint> = (1..=n as u64)
            .zip(unit_vectors(n, DIM, 9))
            .map(|(face, unit)| IndexPoint { face, person: face % 7, unit })
            .collect();
        index.insert_batch(&points);
        (index, points.into_iter().map(|p| (p.face, p.unit)).collect())
    }

    /// A snapshot tree in a fresh database, and a scratch directory beside it.
    fn scratch_db() -> (tempfile::TempDir, sled::Tree, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::Config::new().path(dir.path().join("db")).open().unwrap().open_tree("snapshot").unwrap();
        let scratch = dir.path().join("scratch");
        (dir, tree, scratch)
    }

    /// Stores `index` in an older format: 1 as fdb 0.1.0 did (hnsw_rs' graph bytes plus the
    /// point order), 2 as the early 0.2.0 code did (positions and distances).
    fn write_old_format(tree: &sled::Tree, index: &AnnIndex, scratch: &Path, format: u32) {
        let graph = with_scratch(scratch, |dir| {
            let name = index.hnsw.file_dump(dir, BASENAME).unwrap();
            read_file(&dir.join(format!("{name}.hnsw.graph")))
        })
        .unwrap();
        let (graph, order) = match format {
            FORMAT_HNSW_BYTES => {
                let ids = graph_codec::decode(&graph_codec::encode(&graph).unwrap()).unwrap().ids;
                (graph, ids.iter().flat_map(|id| id.to_le_bytes()).collect())
            }
            _ => (graph_codec::encode_v2(&graph).unwrap(), Vec::new()),
        };
        let mut batch = sled::Batch::default();
        let header = Header {
            format,
            model: "m".into(),
            dim: DIM as u64,
            covered_upto: index.covered_upto(),
            points: index.points() as u64,
            graph: put_blob(&mut batch, "graph", &graph),
            order: put_blob(&mut batch, "order", &order),
        };
        batch.insert(HEADER_KEY, codec::encode(&header));
        tree.apply_batch(batch).unwrap();
    }

    #[test]
    fn snapshots_of_formats_1_and_2_load_and_are_rewritten_in_format_3() {
        for format in [FORMAT_HNSW_BYTES, FORMAT_WITH_DISTANCES] {
            let (_dir, tree, scratch) = scratch_db();
            let (index, vectors) = index_of(300);
            write_old_format(&tree, &index, &scratch, format);
            let vector = |id: u64| Ok(vectors.get(&id).cloned());
            let persons: HashMap<u64, u64> = vectors.keys().map(|&f| (f, f % 7)).collect();

            let old = load(&tree, "m", &scratch, vector, HashSet::new(), persons.clone()).unwrap().unwrap();
            assert_eq!((old.points(), old.covered_upto()), (300, 300));
            assert_eq!(old.unsaved(), 300, "format {format}: the snapshot is due to be rewritten");
            let hit = &old.search(&vectors[&42], 1, 32)[0];
            assert_eq!((hit.face.0, hit.person.0), (42, 0));

            write(&tree, &old, &scratch).unwrap();
            let header: Header = codec::decode(&tree.get(HEADER_KEY).unwrap().unwrap(), "header").unwrap();
            assert_eq!((header.format, header.order.len), (FORMAT, 0));
            let new = load(&tree, "m", &scratch, vector, HashSet::new(), persons).unwrap().unwrap();
            assert_eq!((new.points(), new.unsaved()), (300, 0));
            assert_eq!(new.search(&vectors[&42], 1, 32)[0].face.0, 42);
            // The same graph through the old format and format 3: hnsw_rs dumps the same lists
            // (its description differs: a loaded hnsw_rs reports its own level scale).
            let lists = |index: &AnnIndex| {
                let bytes = with_scratch(&scratch, |dir| {
                    let name = index.hnsw.file_dump(dir, BASENAME).unwrap();
                    read_file(&dir.join(format!("{name}.hnsw.graph")))
                })
                .unwrap();
                let mut cursor = std::io::Cursor::new(&bytes[..]);
                hnsw_rs::hnswio::load_description(&mut cursor).unwrap();
                bytes[cursor.position() as usize..].to_vec()
            };
            assert!(lists(&new) == lists(&old), "format {format}: the graph changed on the way");
        }
    }

    #[test]
    fn reloaded_indexes_keep_hnsw_rs_level_scale_so_later_inserts_reach_upper_layers() {
        let (_dir, tree, scratch) = scratch_db();
        let (mut index, vectors) = index_of(300);
        let default = index.hnsw.get_point_indexation().get_level_scale();
        assert!((default - 1.0 / 8f64.ln()).abs() < 1e-12, "M = 8");
        let vector = |id: u64| Ok(vectors.get(&id).cloned());
        for reload in 0..3 {
            write(&tree, &index, &scratch).unwrap();
            index = load(&tree, "m", &scratch, vector, HashSet::new(), HashMap::new()).unwrap().unwrap();
            // hnsw_rs would square it at each load: (1/ln 8)^2 = 0.23 after the first.
            assert_eq!(index.hnsw.get_point_indexation().get_level_scale(), default, "reload {reload}");
        }
        // At M = 8 one point in eight goes above layer 0: ~250 of 2,000 inserts.
        let upper = |index: &AnnIndex| index.hnsw.get_nb_point() - index.hnsw.get_point_indexation().get_layer_nb_point(0);
        let before = upper(&index);
        let more: Vec<IndexPoint> = (1001..=3000u64)
            .zip(unit_vectors(2000, DIM, 11))
            .map(|(face, unit)| IndexPoint { face, person: 0, unit })
            .collect();
        index.insert_batch(&more);
        let gained = upper(&index) - before;
        assert!((150..=350).contains(&gained), "{gained} of 2,000 inserts above layer 0");
    }

    #[test]
    fn a_damaged_graph_chunk_means_a_rebuild_not_an_error() {
        let (_dir, tree, scratch) = scratch_db();
        let (index, vectors) = index_of(300);
        write(&tree, &index, &scratch).unwrap();
        let key = b"graph/00000000";
        let mut chunk = tree.get(key).unwrap().unwrap().to_vec();
        chunk[100] ^= 0xff;
        tree.insert(key, chunk).unwrap();
        let vector = |id: u64| Ok(vectors.get(&id).cloned());
        let why = load(&tree, "m", &scratch, vector, HashSet::new(), HashMap::new()).unwrap().err().unwrap();
        assert!(why.contains("checksum"), "{why}");
    }

    #[test]
    fn a_point_without_its_vector_means_a_rebuild() {
        let (_dir, tree, scratch) = scratch_db();
        let (index, vectors) = index_of(300);
        write(&tree, &index, &scratch).unwrap();
        let mut partial = vectors.clone();
        partial.remove(&7);
        let vector = |id: u64| Ok(partial.get(&id).cloned());
        let why = load(&tree, "m", &scratch, vector, HashSet::new(), HashMap::new()).unwrap().err().unwrap();
        assert_eq!(why, "snapshot point 7 has no stored vector");

        let vector = |id: u64| Ok(vectors.get(&id).cloned());
        let loaded = load(&tree, "m", &scratch, vector, HashSet::new(), HashMap::new()).unwrap().unwrap();
        assert_eq!(loaded.points(), 300);
    }

    /// The graph blob and the header, mutated and stored back with a valid checksum (so the
    /// graph codec itself is reached): load gives an index or a reason to rebuild, never a panic.
    #[test]
    fn a_mutated_snapshot_loads_or_asks_for_a_rebuild() {
        use crate::test_mutations::{cases, fuzz};
        let (_dir, tree, scratch) = scratch_db();
        let (index, vectors) = index_of(300);
        write(&tree, &index, &scratch).unwrap();
        let header: Header = codec::decode(&tree.get(HEADER_KEY).unwrap().unwrap(), "header").unwrap();
        let graph = get_blob(&tree, "graph", &header.graph).unwrap().unwrap();
        let header_bytes = tree.get(HEADER_KEY).unwrap().unwrap().to_vec();
        let vector = |id: u64| Ok(vectors.get(&id).cloned());
        let store_graph = |graph: &[u8]| {
            let mut batch = sled::Batch::default();
            for key in tree.iter().keys() {
                batch.remove(key.unwrap());
            }
            let header = Header { graph: put_blob(&mut batch, "graph", graph), order: put_blob(&mut batch, "order", &[]), ..codec::decode(&header_bytes, "header").unwrap() };
            batch.insert(HEADER_KEY, codec::encode(&header));
            tree.apply_batch(batch).unwrap();
        };
        let load_and_search = || match load(&tree, "m", &scratch, vector, HashSet::new(), HashMap::new()).unwrap() {
            Ok(index) => {
                let _ = index.search(&vectors[&42], 5, 32);
                true
            }
            Err(_) => false,
        };
        store_graph(&graph);
        assert!(load_and_search(), "the unmutated snapshot loads");

        let graphs = fuzz("snapshot graph", &[graph.clone()], cases(400), 20, |mutated| {
            store_graph(mutated);
            load_and_search()
        });
        store_graph(&graph);
        let headers = fuzz("snapshot header", &[header_bytes.clone()], cases(400), 21, |mutated| {
            tree.insert(HEADER_KEY, mutated).unwrap();
            load_and_search()
        });
        assert!(graphs.accepted < graphs.cases && headers.accepted < headers.cases, "mutations are noticed");
    }
}
