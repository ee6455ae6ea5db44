//! A compact encoding of hnsw_rs' graph dump, for the index snapshot.
//!
//! hnsw_rs writes every neighbour as (face id u64, layer u8, rank i32, distance f32) = 17 bytes
//! and every point with a neighbour count (u64) for each of its 16 possible layers, most of them
//! empty: ~600 bytes a face at M = 24. Positions make most of that redundant: points are dumped
//! layer by layer in rank order, so a point's position gives its layer and rank, and a neighbour
//! is fully named by its position. The distances are redundant too, given the vectors.
//!
//! Format 3 (`encode`) stores each point's id as a varint delta from the previous point's, and
//! each list as its positions sorted, in varint deltas: neighbours are mostly faces of the same
//! person, enrolled together, so the deltas are small. `Skeleton::into_dump` recomputes the
//! distances and rebuilds hnsw_rs' bytes exactly (lists nearest first, as hnsw_rs keeps them),
//! so hnsw_rs still loads the graph itself. Format 2 (`decode_v2`, snapshots written on 2026-11-29 before format 3) kept
//! (position u32, distance f32) per neighbour.

use hnsw_rs::hnswio::{load_description, Description};
use std::collections::HashMap;
use std::io::Cursor;

/// hnsw_rs' markers (hnswio.rs, 0.3.5) in front of each layer and each point of a graph dump.
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const CODEC_MAGIC_V2: &[u8; 4] = b"fdbg";
const CODEC_MAGIC: &[u8; 4] = b"fdg3";

/// A graph dump as hnsw_rs wrote it, with the face ids of its points in dump order (which is
/// also the order of its data file).
pub(crate) struct Dump {
    pub(crate) bytes: Vec<u8>,
    pub(crate) order: Vec<u64>,
}

struct Point {
    id: u64,
    /// Per layer: (neighbour position, distance).
    layers: Vec<Vec<(u32, f32)>>,
}

/// A dump read apart: its points in dump order with their lists as (position, distance).
struct Parsed<'a> {
    description: &'a [u8],
    layer_sizes: Vec<u32>,
    neighbour_layers: u8,
    points: Vec<Point>,
    entry: u32,
}

/// Reads hnsw_rs' dump; `Err` names what in it was not as expected.
fn parse(dump: &[u8]) -> Result<Parsed<'_>, String> {
    let mut cursor = Cursor::new(dump);
    let description = read_description(&mut cursor)?;
    if description.dumpmode != 1 {
        return Err("graph dump is not a full dump".into());
    }
    let description_len = cursor.position() as usize;
    let mut r = Reader { bytes: dump, at: description_len };
    let layer_count = r.u8()?;
    let mut layer_sizes = Vec::with_capacity(layer_count as usize);
    let mut raw = Vec::new(); // (id, per layer: (neighbour id, neighbour layer, neighbour rank, distance))
    for layer in 0..layer_count {
        r.expect_u32(MAGIC_LAYER, "layer marker")?;
        let size = r.u64()? as usize;
        layer_sizes.push(size as u32);
        for rank in 0..size {
            r.expect_u32(MAGIC_POINT, "point marker")?;
            let id = r.u64()?;
            if (r.u8()?, r.i32()?) != (layer, rank as i32) {
                return Err(format!("point {id} is not at its layer and rank"));
            }
            let mut layers = Vec::with_capacity(description.nb_layer as usize);
            for _ in 0..description.nb_layer {
                let count = r.u64()? as usize;
                let mut ns = Vec::with_capacity(count);
                for _ in 0..count {
                    ns.push((r.u64()?, r.u8()?, r.i32()?, r.f32()?));
                }
                layers.push(ns);
            }
            raw.push((id, layers));
        }
    }
    let (entry_id, entry_layer, entry_rank) = (r.u64()?, r.u8()?, r.i32()?);
    if r.at != dump.len() {
        return Err("graph dump has trailing bytes".into());
    }

    let layer_start = starts(&layer_sizes);
    let position_of: HashMap<u64, u32> = raw.iter().enumerate().map(|(i, (id, _))| (*id, i as u32)).collect();
    let place = |layer: u8, rank: i32| -> Option<u32> {
        layer_start.get(layer as usize).map(|s| s + rank as u32)
    };
    let position = |id: u64, layer: u8, rank: i32| -> Result<u32, String> {
        match position_of.get(&id) {
            Some(&p) if Some(p) == place(layer, rank) => Ok(p),
            _ => Err(format!("neighbour {id} is not where its layer and rank say")),
        }
    };
    let mut points = Vec::with_capacity(raw.len());
    for (id, layers) in raw {
        let layers = layers
            .into_iter()
            .map(|ns| ns.into_iter().map(|(n, l, rank, d)| Ok((position(n, l, rank)?, d))).collect::<Result<Vec<_>, String>>())
            .collect::<Result<Vec<_>, String>>()?;
        points.push(Point { id, layers });
    }
    let entry = position(entry_id, entry_layer, entry_rank)?;
    Ok(Parsed { description: &dump[..description_len], layer_sizes, neighbour_layers: description.nb_layer, points, entry })
}

impl Parsed<'_> {
    /// The start of an encoding: magic, hnsw_rs' description, layer count and sizes.
    fn header(&self, magic: &[u8; 4], capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(magic);
        out.extend_from_slice(&(self.description.len() as u32).to_le_bytes());
        out.extend_from_slice(self.description);
        out.push(self.layer_sizes.len() as u8);
        out.push(self.neighbour_layers);
        self.layer_sizes.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        out
    }
}

/// hnsw_rs' description of a graph; it unwraps a name that is not UTF-8, so a panic is an `Err`.
fn read_description(cursor: &mut Cursor<&[u8]>) -> Result<Description, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_description(cursor))) {
        Ok(Ok(description)) => Ok(description),
        Ok(Err(e)) => Err(format!("graph description: {e}")),
        Err(_) => Err("graph description: not readable".into()),
    }
}

/// The most a stored description may claim (hnsw_rs allocates by these fields when it loads).
const MAX_DIMENSION: usize = 1 << 16;
const MAX_EF: usize = 1 << 20;

/// A stored description must agree with the encoding around it before hnsw_rs is given it: its
/// loader trusts the description's layer count to walk the lists, so a disagreement (damage
/// under a matching checksum, or a bug) would read neighbour counts out of other bytes and
/// allocate by them.
fn check_description(bytes: &[u8], neighbour_layers: usize, points: u64) -> Result<(), String> {
    let mut cursor = Cursor::new(bytes);
    let d = read_description(&mut cursor)?;
    let sane = d.dumpmode == 1
        && d.nb_layer as usize == neighbour_layers
        && d.nb_layer <= NB_LAYER_MAX
        && d.max_nb_connection > 0
        && d.level_scale.is_finite()
        && d.level_scale > 0.0
        && d.ef <= MAX_EF
        && (1..=MAX_DIMENSION).contains(&d.dimension)
        && d.nb_point as u64 == points
        && cursor.position() as usize == bytes.len();
    if !sane {
        return Err("graph description disagrees with the encoding".into());
    }
    Ok(())
}

/// Encodes a dump in format 3.
pub(crate) fn encode(dump: &[u8]) -> Result<Vec<u8>, String> {
    let parsed = parse(dump)?;
    let mut out = parsed.header(CODEC_MAGIC, dump.len() / 8);
    let mut previous_id = 0u64;
    for p in &parsed.points {
        put_varint(&mut out, zigzag(p.id.wrapping_sub(previous_id) as i64));
        previous_id = p.id;
        let used = p.layers.iter().rposition(|ns| !ns.is_empty()).map_or(0, |l| l + 1);
        out.push(used as u8);
        for ns in &p.layers[..used] {
            let mut positions: Vec<u32> = ns.iter().map(|&(n, _)| n).collect();
            positions.sort_unstable();
            put_varint(&mut out, positions.len() as u64);
            let mut previous = 0u32;
            for n in positions {
                put_varint(&mut out, (n - previous) as u64);
                previous = n;
            }
        }
    }
    out.extend_from_slice(&parsed.entry.to_le_bytes());
    Ok(out)
}

/// A graph without its distances, as format 3 stores it.
pub(crate) struct Skeleton {
    description: Vec<u8>,
    layer_sizes: Vec<u32>,
    neighbour_layers: usize,
    /// Face id of each position (the order of hnsw_rs' data file).
    pub(crate) ids: Vec<u64>,
    /// Per position, per layer: neighbour positions, ascending.
    lists: Vec<Vec<Vec<u32>>>,
    entry: u32,
}

/// Reads a format-3 encoding.
pub(crate) fn decode(bytes: &[u8]) -> Result<Skeleton, String> {
    let mut r = Reader { bytes, at: 0 };
    let (description, layer_sizes, neighbour_layers) = r.header(CODEC_MAGIC, "format 3")?;
    let description = description.to_vec();
    let total = layer_sizes.iter().map(|&s| s as u64).sum::<u64>();
    // Each point takes at least two bytes, which bounds what a damaged size can allocate.
    if total > bytes.len() as u64 / 2 {
        return Err("graph encoding is shorter than its layer sizes say".into());
    }
    let mut ids = Vec::with_capacity(total as usize);
    let mut lists = Vec::with_capacity(total as usize);
    let mut id = 0u64;
    for _ in 0..total {
        id = id.wrapping_add(unzigzag(r.varint()?) as u64);
        ids.push(id);
        let used = r.u8()? as usize;
        if used > neighbour_layers {
            return Err("a point has more layers than the graph".into());
        }
        let mut layers = Vec::with_capacity(used);
        for _ in 0..used {
            let count = r.varint()?;
            if count > (bytes.len() - r.at) as u64 {
                return Err("a neighbour list is longer than the bytes left".into());
            }
            let mut ns = Vec::with_capacity(count as usize);
            let mut n = 0u64;
            for _ in 0..count {
                n += r.varint()?;
                if n >= total {
                    return Err(format!("neighbour position {n} is past the last point"));
                }
                ns.push(n as u32);
            }
            layers.push(ns);
        }
        lists.push(layers);
    }
    let entry = r.u32()?;
    if r.at != bytes.len() {
        return Err("graph encoding has trailing bytes".into());
    }
    if entry as u64 >= total.max(1) {
        return Err(format!("entry point position {entry} is past the last point"));
    }
    Ok(Skeleton { description, layer_sizes, neighbour_layers, ids, lists, entry })
}

impl Skeleton {
    /// hnsw_rs' dump of the graph, `distance(p, n)` giving the distance between the points at
    /// positions p and n; lists are ordered nearest first, as hnsw_rs keeps them.
    pub(crate) fn into_dump(self, distance: impl Fn(u32, u32) -> f32 + Sync) -> Result<Dump, String> {
        let with_distances = |p: usize, layers: &[Vec<u32>]| -> Vec<Vec<(u32, f32)>> {
            layers
                .iter()
                .map(|ns| {
                    let mut ns: Vec<(u32, f32)> = ns.iter().map(|&n| (n, distance(p as u32, n))).collect();
                    ns.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    ns
                })
                .collect()
        };
        // A million points take ~40M distances: spread them over the cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let step = self.lists.len().div_ceil(threads).max(1);
        let mut points: Vec<Point> = self.ids.iter().map(|&id| Point { id, layers: Vec::new() }).collect();
        std::thread::scope(|scope| {
            for (c, (out, lists)) in points.chunks_mut(step).zip(self.lists.chunks(step)).enumerate() {
                let with_distances = &with_distances;
                scope.spawn(move || {
                    for (i, (point, layers)) in out.iter_mut().zip(lists).enumerate() {
                        point.layers = with_distances(c * step + i, layers);
                    }
                });
            }
        });
        write_dump(&self.description, &self.layer_sizes, &points, self.neighbour_layers, self.entry)
    }
}

/// Encodes a dump in format 2, as fdb stored it before format 3 (for the tests of loading those).
#[cfg(test)]
pub(crate) fn encode_v2(dump: &[u8]) -> Result<Vec<u8>, String> {
    let parsed = parse(dump)?;
    let mut out = parsed.header(CODEC_MAGIC_V2, dump.len() / 2);
    for p in &parsed.points {
        out.extend_from_slice(&p.id.to_le_bytes());
        let used = p.layers.iter().rposition(|ns| !ns.is_empty()).map_or(0, |l| l + 1);
        out.push(used as u8);
        for ns in &p.layers[..used] {
            let count = u16::try_from(ns.len()).map_err(|_| "a point has over 65,535 neighbours".to_string())?;
            out.extend_from_slice(&count.to_le_bytes());
            for (n, d) in ns {
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&parsed.entry.to_le_bytes());
    Ok(out)
}

/// Rebuilds the dump a format-2 encoding was made from.
pub(crate) fn decode_v2(bytes: &[u8]) -> Result<Dump, String> {
    let mut r = Reader { bytes, at: 0 };
    let (description, layer_sizes, neighbour_layers) = r.header(CODEC_MAGIC_V2, "format 2")?;
    let total = layer_sizes.iter().map(|&s| s as usize).sum::<usize>();
    // Neighbours name positions that may come later, so points are read before any is written.
    let mut points = Vec::with_capacity(total);
    for _ in 0..total {
        let id = r.u64()?;
        let used = r.u8()? as usize;
        if used > neighbour_layers {
            return Err("a point has more layers than the graph".into());
        }
        let mut layers = Vec::with_capacity(used);
        for _ in 0..used {
            let count = r.u16()? as usize;
            layers.push((0..count).map(|_| Ok((r.u32()?, r.f32()?))).collect::<Result<Vec<_>, String>>()?);
        }
        points.push(Point { id, layers });
    }
    let entry = r.u32()?;
    if r.at != bytes.len() {
        return Err("graph encoding has trailing bytes".into());
    }
    write_dump(description, &layer_sizes, &points, neighbour_layers, entry)
}

/// hnsw_rs' layers (`NB_LAYER_MAX`): it dumps lists for every one of them.
const NB_LAYER_MAX: u8 = 16;
/// hnsw_rs' fourth description format, the one it writes: the only one with a level scale.
const MAGIC_DESCRIPTION_4: u32 = 0x002a_6779;
/// Where that description keeps its level scale (f64, after the magic, dump mode and M).
const LEVEL_SCALE_AT: std::ops::Range<usize> = 6..14;
/// The level scale factor hnsw_rs' loader is given.
const DEFAULT_LEVEL_SCALE_FACTOR: f64 = 1.0;

/// A dump as hnsw_rs' loader must be given it, in pieces to write one after the other.
/// hnsw_rs 0.3.5 dumps its level scale (1/ln M by default) but loads the field as a factor on
/// 1/ln M (`LayerGenerator::new_with_scale`), so each load would square it: points inserted after
/// a reopen would almost never reach an upper layer (at M = 24, 1 in 25,000 instead of 1 in 24).
/// Its loader is given the factor 1 instead.
pub(crate) fn for_hnsw_load(dump: &[u8]) -> [&[u8]; 3] {
    const FACTOR: [u8; 8] = DEFAULT_LEVEL_SCALE_FACTOR.to_ne_bytes();
    match dump.get(..4) {
        Some(magic) if magic == MAGIC_DESCRIPTION_4.to_ne_bytes() && dump.len() >= LEVEL_SCALE_AT.end => {
            [&dump[..LEVEL_SCALE_AT.start], &FACTOR, &dump[LEVEL_SCALE_AT.end..]]
        }
        _ => [dump, &[], &[]],
    }
}

/// hnsw_rs' description of a full graph dump (hnsw_rs' hnswio.rs, 0.3.5): what its loader checks the
/// graph against. `M` on upper layers, `ef` of construction, distance and value type names.
pub(crate) fn hnsw_description<D>(m: u8, level_scale: f64, ef: usize, points: usize, dim: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC_DESCRIPTION_4.to_ne_bytes());
    out.push(1); // full dump
    out.push(m);
    out.extend_from_slice(&level_scale.to_ne_bytes());
    out.push(NB_LAYER_MAX);
    for field in [ef, points, dim] {
        out.extend_from_slice(&field.to_ne_bytes());
    }
    for name in [std::any::type_name::<D>(), std::any::type_name::<f32>()] {
        out.extend_from_slice(&name.len().to_ne_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out
}

/// A graph's points in dump order (layer by layer, by rank), each with its neighbour lists as
/// (position, distance): written out as hnsw_rs' own dump.
pub(crate) struct Lists {
    pub(crate) layer_sizes: Vec<u32>,
    /// Per point: its face id and, per layer, (neighbour position, distance).
    pub(crate) points: Vec<(u64, Vec<Vec<(u32, f32)>>)>,
    pub(crate) entry: u32,
}

/// The hnsw_rs dump of `lists`, under `description` (see `hnsw_description`).
pub(crate) fn dump_of_lists(description: &[u8], lists: Lists) -> Result<Dump, String> {
    let neighbour_layers = read_description(&mut Cursor::new(description))?.nb_layer as usize;
    let points: Vec<Point> = lists.points.into_iter().map(|(id, layers)| Point { id, layers }).collect();
    write_dump(description, &lists.layer_sizes, &points, neighbour_layers, lists.entry)
}

fn write_dump(description: &[u8], layer_sizes: &[u32], points: &[Point], neighbour_layers: usize, entry: u32) -> Result<Dump, String> {
    if points.len() != layer_sizes.iter().map(|&s| s as usize).sum::<usize>() {
        return Err("the layer sizes do not add up to the points".into());
    }
    // hnsw_rs' loader keeps only the layers a dump lists, and an insert drawn above them then
    // indexes past its layers (a panic): list all of them, empty ones too, as its own dumps do.
    if layer_sizes.len() > NB_LAYER_MAX as usize {
        return Err(format!("{} layers, hnsw_rs has {NB_LAYER_MAX}", layer_sizes.len()));
    }
    let mut layer_sizes = layer_sizes.to_vec();
    layer_sizes.resize(NB_LAYER_MAX as usize, 0);
    let layer_sizes = layer_sizes.as_slice();
    let layer_start = starts(layer_sizes);
    // Position → (layer, rank): layers are contiguous runs of positions.
    let place = |p: u32| -> Result<(u8, i32, u64), String> {
        let layer = layer_start.partition_point(|&s| s <= p).checked_sub(1).ok_or("bad position")?;
        let id = points.get(p as usize).ok_or_else(|| format!("position {p} is past the last point"))?.id;
        Ok((layer as u8, (p - layer_start[layer]) as i32, id))
    };
    let mut out = Vec::with_capacity(description.len() + points.len() * (40 + 8 * 17 * neighbour_layers));
    out.extend_from_slice(description);
    out.push(layer_sizes.len() as u8);
    let mut at = 0u32;
    for (layer, &size) in layer_sizes.iter().enumerate() {
        out.extend_from_slice(&MAGIC_LAYER.to_ne_bytes());
        out.extend_from_slice(&(size as u64).to_ne_bytes());
        for rank in 0..size {
            let p = &points[at as usize];
            at += 1;
            out.extend_from_slice(&MAGIC_POINT.to_ne_bytes());
            out.extend_from_slice(&p.id.to_ne_bytes());
            out.push(layer as u8);
            out.extend_from_slice(&(rank as i32).to_ne_bytes());
            for l in 0..neighbour_layers {
                let ns = p.layers.get(l).map_or(&[][..], |ns| ns.as_slice());
                out.extend_from_slice(&(ns.len() as u64).to_ne_bytes());
                for &(n, d) in ns {
                    let (n_layer, n_rank, n_id) = place(n)?;
                    out.extend_from_slice(&n_id.to_ne_bytes());
                    out.push(n_layer);
                    out.extend_from_slice(&n_rank.to_ne_bytes());
                    out.extend_from_slice(&d.to_ne_bytes());
                }
            }
        }
    }
    let (entry_layer, entry_rank, entry_id) = place(entry)?;
    out.extend_from_slice(&entry_id.to_ne_bytes());
    out.push(entry_layer);
    out.extend_from_slice(&entry_rank.to_ne_bytes());
    Ok(Dump { bytes: out, order: points.iter().map(|p| p.id).collect() })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// First position of each layer.
fn starts(sizes: &[u32]) -> Vec<u32> {
    sizes.iter().scan(0u32, |next, &s| Some(std::mem::replace(next, *next + s))).collect()
}

/// Reads fixed-size fields. hnsw_rs writes native-endian; fdb's own fields are little-endian,
/// and both are the same on the machines fdb runs on (x86-64, aarch64).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let field = self.bytes.get(self.at..self.at + n).ok_or("graph bytes end early")?;
        self.at += n;
        Ok(field)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// What `Parsed::header` wrote: (hnsw_rs' description, layer sizes, neighbour layers).
    fn header(&mut self, magic: &[u8; 4], format: &str) -> Result<(&'a [u8], Vec<u32>, usize), String> {
        if self.take(4)? != magic {
            return Err(format!("not an fdb graph encoding ({format})"));
        }
        let description_len = self.u32()? as usize;
        let description = self.take(description_len)?;
        let (layer_count, neighbour_layers) = (self.u8()?, self.u8()? as usize);
        let layer_sizes: Vec<u32> = (0..layer_count).map(|_| self.u32()).collect::<Result<_, _>>()?;
        check_description(description, neighbour_layers, layer_sizes.iter().map(|&s| s as u64).sum())?;
        Ok((description, layer_sizes, neighbour_layers))
    }

    /// LEB128, at most ten bytes.
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err("a varint overflows 64 bits".into());
            }
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("a varint is longer than ten bytes".into())
    }

    fn expect_u32(&mut self, value: u32, what: &str) -> Result<(), String> {
        match self.u32()? {
            v if v == value => Ok(()),
            v => Err(format!("{what}: found {v:#x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::UnitSquaredL2;
    use crate::test_vectors::unit_vectors;
    use hnsw_rs::prelude::{AnnT, Distance, Hnsw};

    fn dump_of(n: usize, seed: u64) -> Vec<u8> {
        let hnsw = Hnsw::<f32, UnitSquaredL2>::new(8, n, 16, 40, UnitSquaredL2);
        for (i, v) in unit_vectors(n, 8, seed).iter().enumerate() {
            hnsw.insert_slice((v, 1000 + 7 * i));
        }
        let dir = tempfile::tempdir().unwrap();
        let name = hnsw.file_dump(dir.path(), "t").unwrap();
        std::fs::read(dir.path().join(format!("{name}.hnsw.graph"))).unwrap()
    }

    /// The distance hnsw_rs computed, between the points dumped at positions p and n.
    fn distance_of(skeleton: &Skeleton, seed: u64) -> impl Fn(u32, u32) -> f32 + Sync + '_ {
        let vectors = unit_vectors(skeleton.ids.len(), 8, seed);
        move |p, n| {
            let v = |pos: u32| &vectors[((skeleton.ids[pos as usize] - 1000) / 7) as usize];
            UnitSquaredL2.eval(v(p), v(n))
        }
    }

    #[test]
    fn decoding_gives_back_hnsw_rs_bytes_exactly_in_a_sixth_of_the_space() {
        for (n, seed) in [(1, 1), (2, 2), (500, 3), (3000, 4)] {
            let dump = dump_of(n, seed);
            let compact = encode(&dump).unwrap();
            let skeleton = decode(&compact).unwrap();
            let distance = distance_of(&skeleton, seed);
            let back = decode(&compact).unwrap().into_dump(distance).unwrap();
            assert!(back.bytes == dump, "{n} points: the round trip changed the dump");
            let mut order = back.order.clone();
            order.sort();
            assert_eq!(order, (0..n as u64).map(|i| 1000 + 7 * i).collect::<Vec<_>>());
            if n >= 500 {
                assert!(compact.len() * 6 < dump.len(), "{} bytes for a dump of {}", compact.len(), dump.len());
            }
        }
    }

    #[test]
    fn format_2_still_decodes_to_hnsw_rs_bytes() {
        let dump = dump_of(500, 3);
        let v2 = encode_v2(&dump).unwrap();
        assert!(decode_v2(&v2).unwrap().bytes == dump);
        assert!(decode(&v2).is_err() && decode_v2(&encode(&dump).unwrap()).is_err(), "the formats are told apart");
    }

    #[test]
    fn fdb_writes_the_description_hnsw_rs_writes() {
        let dump = dump_of(37, 5);
        let mut cursor = Cursor::new(&dump[..]);
        load_description(&mut cursor).unwrap();
        let theirs = &dump[..cursor.position() as usize];
        let level_scale = 1.0 / (8f64).ln(); // hnsw_rs' scale for M = 8
        assert_eq!(hnsw_description::<UnitSquaredL2>(8, level_scale, 40, 37, 8), theirs);
    }

    #[test]
    fn damaged_encodings_are_errors_not_panics() {
        let compact = encode(&dump_of(200, 4)).unwrap();
        for cut in [0, 3, 10, compact.len() / 2, compact.len() - 1] {
            assert!(decode(&compact[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = compact.clone();
        let at = bad.len() - 4; // the entry point's position
        bad[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bad).is_err());
        assert!(encode(&compact).is_err(), "an encoding is not a dump");
        // Every byte flipped in turn: an error or some graph, never a panic.
        for at in 0..compact.len() {
            let mut bad = compact.clone();
            bad[at] ^= 0x5a;
            if let Ok(skeleton) = decode(&bad) {
                let _ = skeleton.into_dump(|_, _| 0.5);
            }
        }
    }

    #[test]
    fn a_description_that_disagrees_with_its_encoding_is_refused() {
        let compact = encode(&dump_of(50, 6)).unwrap();
        assert!(decode(&compact).is_ok());
        // magic (4), description length (4), then hnsw_rs' description: its layer count sits
        // after its magic (4), dump mode, M and the level scale (8).
        let nb_layer_at = 8 + 4 + 1 + 1 + 8;
        let mut fewer_layers = compact.clone();
        fewer_layers[nb_layer_at] -= 1;
        let why = decode(&fewer_layers).err().unwrap();
        assert!(why.contains("disagrees"), "{why}");
        // The point count after it (and ef): 1 more point than the layers hold.
        let nb_point_at = nb_layer_at + 1 + 8;
        let mut more_points = compact.clone();
        more_points[nb_point_at] += 1;
        assert!(decode(&more_points).err().unwrap().contains("disagrees"));
    }
}
