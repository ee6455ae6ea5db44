//! FaceNet embedding throughput on the CPU at batch 1, 8 and 32.
//!
//! `cargo bench --bench embed` (weights from the install, or `$FDB_FACENET_WEIGHTS`).
//! Criterion's "thrpt" line is faces per second.

use std::path::PathBuf;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fdb_models::facenet::Embedder;

fn weights() -> PathBuf {
    match std::env::var_os("FDB_FACENET_WEIGHTS") {
        Some(path) => PathBuf::from(path),
        None => fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir())
            .expect("FaceNet weights: run `fdb models install` or set FDB_FACENET_WEIGHTS")
            .facenet,
    }
}

/// A face-like 160×160 crop; the network's cost does not depend on the pixels.
fn face() -> image::RgbImage {
    image::RgbImage::from_fn(160, 160, |x, y| image::Rgb([(x * 3 % 256) as u8, (y * 5 % 256) as u8, ((x + y) % 256) as u8]))
}

fn embed(c: &mut Criterion) {
    let embedder = Embedder::load(&weights(), &Device::Cpu).expect("load FaceNet");
    let mut group = c.benchmark_group("facenet_embed_cpu");
    group.sample_size(10);
    for batch in [1usize, 8, 32] {
        let faces = vec![face(); batch];
        let embedder = embedder.clone().with_max_batch(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &faces, |b, faces| {
            b.iter(|| embedder.embed(faces).expect("embed"))
        });
    }
    group.finish();
}

criterion_group!(benches, embed);
criterion_main!(benches);
