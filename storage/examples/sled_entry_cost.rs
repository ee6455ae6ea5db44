//! What sled 0.34 keeps on disk per entry, for entries shaped like fdb's (docs/benchmarks.md,
//! "Vector files and snapshot format 3"): each kind of entry alone in a fresh database, written in transactions as an
//! import writes them. `SEG=bytes` sets sled's segment size, `SMALL=1` skips the large values.
//!
//! cargo run --release -p fdb-storage --example sled_entry_cost
fn measure(name: &str, n: usize, batch: usize, kv: impl Fn(usize) -> (Vec<u8>, Vec<u8>)) {
    let seg: usize = std::env::var("SEG").ok().map(|s| s.parse().unwrap()).unwrap_or(512*1024);
    let dir = std::env::temp_dir().join(format!("fdb-sled-entry-cost-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).segment_size(seg).open().unwrap();
    let t = db.open_tree("t").unwrap();
    let mut live = 0;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let kvs: Vec<_> = (i..end).map(&kv).collect();
        live += kvs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        t.transaction(|tx| { for (k, v) in &kvs { tx.insert(k.as_slice(), v.as_slice())?; } Ok::<_, sled::transaction::ConflictableTransactionError<()>>(()) }).unwrap();
        i = end;
    }
    db.flush().unwrap();
    let s = db.size_on_disk().unwrap();
    drop(t); drop(db);
        println!("{name:12} n={n} live={live} ({:.0}/entry) on disk={s} ({:.0}/entry, {:.2}x)", live as f64 / n as f64, s as f64 / n as f64, s as f64 / live as f64);
    let _ = std::fs::remove_dir_all(&dir);
}
fn main() {
    let n = 100_000;
    let rnd = |i: usize, len: usize| -> Vec<u8> { let mut x = (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15); (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect() };
    let id = |i: usize| ((i as u64) * 7 + 1000).to_be_bytes().to_vec();
    measure("faces", n, 2000, |i| (id(i), rnd(i, 127)));
    measure("sha", n, 2000, |i| (rnd(i, 32), id(i)));
    measure("by_person", n, 2000, |i| ([((i / 20) as u64).to_be_bytes(), (i as u64).to_be_bytes()].concat(), vec![]));
    measure("crops0", n, 2000, |i| (id(i), vec![]));
    if std::env::var("SMALL").is_ok() { return; }
    measure("emb2048", n, 2000, |i| (id(i), rnd(i, 2048)));
    measure("faces1", 20000, 1, |i| (id(i), rnd(i, 127)));
    measure("snap64k", 600, 50, |i| ((i as u64).to_be_bytes().to_vec(), rnd(i, 65536)));
    measure("snap1m", 40, 5, |i| ((i as u64).to_be_bytes().to_vec(), rnd(i, 1 << 20)));
}
