//! How much disk sled 0.34 uses for fixed-size values under increasing keys: the pattern of the
//! `emb/<model>` tree. Measures the space amplification behind fdb's bytes-per-face figure.
//!
//! cargo run --release -p fdb-storage --example sled_space -- DIR [N] [BATCH] [VALUE_BYTES] [flush|noflush] [SEGMENT_BYTES]
//!
//! Writes N values (random bytes, 8-byte big-endian keys 1..=N) in `apply_batch`es of BATCH,
//! optionally flushing after each, closes the database and reports its allocated size.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn allocated_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => allocated_bytes(&e.path()),
                    Ok(m) => m.blocks() * 512,
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().ok_or("usage: sled_space DIR [N] [BATCH] [VALUE_BYTES] [flush|noflush] [SEGMENT_BYTES]")?;
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |s| s.parse::<usize>());
    let (n, batch, value_bytes) = (arg(1, 100_000)?, arg(2, 2_000)?.max(1), arg(3, 2_048)?);
    let flush_each = args.get(4).map_or(true, |s| s == "flush");
    let segment = arg(5, 512 * 1024)?;
    let path = Path::new(dir);
    if path.exists() {
        return Err(format!("{dir} exists; give a path that does not").into());
    }
    let db = sled::Config::new().path(path).segment_size(segment).open()?;
    let tree = db.open_tree("values")?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut value = vec![0u8; value_bytes];
    for start in (0..n).step_by(batch) {
        let mut b = sled::Batch::default();
        for key in start + 1..=(start + batch).min(n) {
            // xorshift: incompressible bytes, like f32 mantissas
            for chunk in value.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            b.insert(&(key as u64).to_be_bytes(), value.as_slice());
        }
        tree.apply_batch(b)?;
        if flush_each {
            db.flush()?;
        }
    }
    db.flush()?;
    drop(tree);
    drop(db);
    let on_disk = allocated_bytes(path) as f64;
    let payload = (n * (value_bytes + 8)) as f64;
    println!(
        "{n} values of {value_bytes} B in batches of {batch} ({}), segments of {segment} B: {:.0} B a value on disk, {:.2}x the payload",
        if flush_each { "flushed after each" } else { "no flushes" },
        on_disk / n as f64,
        on_disk / payload
    );
    Ok(())
}
