//! The index snapshot, kept inside sled so that the database stays one directory and one
//! atomic unit.
//!
//! hnsw_rs dumps a graph file and a data file. The graph is stored (in chunks, with a crc);
//! the data file is only a copy of vectors sled already holds, so instead of storing it again
//! we keep the order of its points and regenerate it from the embeddings on load. That halves
//! the bytes per face on disk.

use crate::ann::AnnIndex;
use crate::codec;
use crate::distance::UnitSquaredL2;
use crate::error::{Result, StoreError};
use hnsw_rs::prelude::{AnnT, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const HEADER_KEY: &[u8] = b"header";
const CHUNK_BYTES: usize = 8 << 20;
const BASENAME: &str = "fdb";
/// hnsw_rs' marker in front of every point of its data file.
const HNSW_DATA_MAGIC: u32 = 0xa67f_0000;
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize, Debug)]
struct Header {
    format: u32,
    model: String,
    dim: u64,
    covered_upto: u64,
    points: u64,
    graph: BlobInfo,
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
    let (graph, order) = with_scratch(scratch, |dir| {
        let basename = index
            .hnsw
            .file_dump(dir, BASENAME)
            .map_err(|e| StoreError::Corrupt(format!("hnsw_rs could not dump the index: {e}")))?;
        let graph = read_file(&dir.join(format!("{basename}.hnsw.graph")))?;
        let data = read_file(&dir.join(format!("{basename}.hnsw.data")))?;
        Ok((graph, data_file_order(&data)?))
    })?;
    let mut batch = sled::Batch::default();
    for key in tree.iter().keys() {
        batch.remove(key?);
    }
    let header = Header {
        format: FORMAT,
        model: index.model.clone(),
        dim: index.dim as u64,
        covered_upto: index.covered_upto(),
        points: (order.len() / 8) as u64,
        graph: put_blob(&mut batch, "graph", &graph),
        order: put_blob(&mut batch, "order", &order),
    };
    batch.insert(HEADER_KEY, codec::encode(&header));
    tree.apply_batch(batch)?;
    Ok(())
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
        return Ok(Err("no snapshot".into()));
    };
    let header: Header = match codec::decode(&header_bytes, "index snapshot header") {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if header.format != FORMAT {
        return Ok(Err(format!("snapshot format {} is not {FORMAT}", header.format)));
    }
    if header.model != model {
        return Ok(Err(format!("snapshot is for model {:?}, active is {model:?}", header.model)));
    }
    let graph = match get_blob(tree, "graph", &header.graph)? {
        Ok(g) => g,
        Err(why) => return Ok(Err(why)),
    };
    let order = match get_blob(tree, "order", &header.order)? {
        Ok(o) if o.len() as u64 == header.points * 8 => o,
        Ok(_) => return Ok(Err("snapshot point order has the wrong length".into())),
        Err(why) => return Ok(Err(why)),
    };
    let dim = header.dim as usize;
    let loaded = with_scratch(scratch, |dir| {
        std::fs::write(dir.join(format!("{BASENAME}.hnsw.graph")), &graph)
            .map_err(|e| StoreError::io(format!("{}: writing the index graph", dir.display()), e))?;
        if let Err(why) = write_data_file(&dir.join(format!("{BASENAME}.hnsw.data")), &order, dim, &vector)? {
            return Ok(Err(why));
        }
        Ok(load_dump(dir))
    })?;
    let hnsw = match loaded {
        Ok(h) => h,
        Err(why) => return Ok(Err(why)),
    };
    if hnsw.get_nb_point() as u64 != header.points {
        return Ok(Err("snapshot graph and point order disagree".into()));
    }
    Ok(Ok(AnnIndex::from_hnsw(hnsw, model, dim, header.covered_upto, tombstones, persons)))
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

/// The face ids of an hnsw_rs data file, in file order, as little-endian u64s.
fn data_file_order(data: &[u8]) -> Result<Vec<u8>> {
    let bad = || StoreError::Corrupt("hnsw_rs wrote a data file we cannot parse".into());
    let mut pos = 4 + 8; // magic, dimension
    let mut order = Vec::new();
    while pos < data.len() {
        let field = |at: usize, n: usize| data.get(at..at + n).ok_or_else(bad);
        if u32::from_ne_bytes(field(pos, 4)?.try_into().unwrap()) != HNSW_DATA_MAGIC {
            return Err(bad());
        }
        let id = u64::from_ne_bytes(field(pos + 4, 8)?.try_into().unwrap());
        let len = u64::from_ne_bytes(field(pos + 12, 8)?.try_into().unwrap()) as usize;
        order.extend_from_slice(&id.to_le_bytes());
        pos += 20 + len;
    }
    Ok(order)
}

/// Writes an hnsw_rs data file for the points of `order`, taking vectors from the store.
fn write_data_file(
    path: &Path,
    order: &[u8],
    dim: usize,
    vector: &impl Fn(u64) -> Result<Option<Vec<f32>>>,
) -> Result<std::result::Result<(), String>> {
    let io_err = |e| StoreError::io(format!("{}: writing the index data", path.display()), e);
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io_err)?);
    out.write_all(&HNSW_DATA_MAGIC.to_ne_bytes()).map_err(io_err)?;
    out.write_all(&dim.to_ne_bytes()).map_err(io_err)?;
    for id_bytes in order.chunks_exact(8) {
        let id = u64::from_le_bytes(id_bytes.try_into().unwrap());
        let Some(v) = vector(id)? else {
            return Ok(Err(format!("snapshot point {id} has no stored vector")));
        };
        if v.len() != dim {
            return Ok(Err(format!("snapshot point {id} has {} dimensions, expected {dim}", v.len())));
        }
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
