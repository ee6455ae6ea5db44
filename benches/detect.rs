//! MTCNN speed on 250×250 LFW photos: milliseconds per image (one `detect` call each) and
//! images per second for a batch of 64 (`detect_many`). Compare with the reference figure in
//! ../shared/golden/e2e/README.md, measured on this machine type.
//!
//! `cargo bench --bench detect`; needs ../shared (or $FDB_SHARED) and the MTCNN weights
//! (installed models dir, or the facenet-pytorch wheel in $FDB_WHEELS, default /tmp/wheels).

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fdb_models::imageio::load_image;
use fdb_models::mtcnn::Mtcnn;
use fdb_models::weights;
use image::RgbImage;
use std::path::{Path, PathBuf};

fn detector() -> Option<Mtcnn> {
    if let Ok(found) = weights::installed(&weights::default_models_dir()) {
        return Mtcnn::from_file(&found.mtcnn, &Device::Cpu).ok();
    }
    let wheels = std::env::var_os("FDB_WHEELS").map(PathBuf::from).unwrap_or_else(|| "/tmp/wheels".into());
    Mtcnn::from_facenet_pytorch_wheel(&wheels.join("facenet_pytorch-2.6.0-py3-none-any.whl"), &Device::Cpu).ok()
}

/// The first image of each of the first `n` people of LFW, in name order.
fn lfw_images(n: usize) -> Option<Vec<RgbImage>> {
    let shared = std::env::var_os("FDB_SHARED")
        .map(PathBuf::from)
        .or_else(|| Some(Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("shared")))?;
    let mut people: Vec<_> = std::fs::read_dir(shared.join("datasets/lfw/images")).ok()?.flatten().map(|e| e.path()).collect();
    people.sort();
    let images = people
        .iter()
        .filter_map(|dir| {
            let mut files: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).collect();
            files.sort();
            load_image(files.first()?).ok()
        })
        .take(n)
        .collect();
    Some(images)
}

fn bench_detect(c: &mut Criterion) {
    let (Some(m), Some(images)) = (detector(), lfw_images(64)) else {
        println!("skipping: needs the MTCNN weights and ../shared/datasets/lfw");
        return;
    };
    let mut group = c.benchmark_group("mtcnn");
    group.sample_size(20);
    let mut next = 0;
    group.bench_function("detect one 250x250 LFW image", |b| {
        b.iter(|| {
            next = (next + 1) % images.len();
            m.detect(&images[next]).unwrap()
        })
    });
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(30));
    group.throughput(Throughput::Elements(images.len() as u64));
    group.bench_function("detect_many batch of 64", |b| b.iter(|| m.detect_many(&images).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_detect);
criterion_main!(benches);
