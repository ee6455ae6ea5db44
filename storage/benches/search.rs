//! Criterion benchmarks on 10k synthetic face-like 512-d vectors (identities of 5-50 faces).
//! Large sizes (100k, 1M) use the bench binary: src/bin/fdb-storage-bench.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fdb_storage::{NewFace, PersonId, Store, StoreOptions};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;

const DIM: usize = 512;
const N: usize = 10_000;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Identity centres plus per-face noise, so neighbours cluster like faces of one person.
fn face_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let centre: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        for _ in 0..rng.gen_range(5..=50) {
            out.push(unit(centre.iter().map(|c| c + rng.gen_range(-0.8f32..0.8)).collect()));
        }
    }
    out.truncate(n);
    out
}

fn new_face(person: PersonId, i: usize, v: Vec<f32>) -> NewFace {
    let mut sha = [0u8; 32];
    sha[..8].copy_from_slice(&(i as u64).to_be_bytes());
    NewFace {
        person,
        source_name: format!("{i}.jpg"),
        source_sha256: sha,
        bbox: [0.0; 4],
        landmarks: [[0.0; 2]; 5],
        score: 1.0,
        quality: None,
        model_id: "bench".into(),
        crop: Vec::new(),
        embedding: v,
    }
}

fn filled_store(dir: &std::path::Path, vectors: &[Vec<f32>]) -> Store {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let p = store.add_person("bench", BTreeMap::new()).unwrap();
    for (start, chunk) in vectors.chunks(1000).enumerate() {
        let faces = chunk.iter().enumerate().map(|(i, v)| new_face(p, start * 1000 + i, v.clone())).collect();
        store.add_faces(faces).unwrap();
    }
    store
}

fn bench_search(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vectors = face_vectors(N, 1);
    let store = filled_store(&dir.path().join("db"), &vectors);
    let queries = face_vectors(200, 2);
    for ef in [16, 64] {
        let mut q = queries.iter().cycle();
        c.bench_function(&format!("search 10k k=10 ef={ef}"), |b| {
            b.iter(|| store.search(q.next().unwrap(), 10, Some(ef)).unwrap())
        });
    }
}

fn bench_insert(c: &mut Criterion) {
    let vectors = face_vectors(1000, 3);
    c.bench_function("add_faces 1000 into an empty store", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
                let p = store.add_person("bench", BTreeMap::new()).unwrap();
                let faces = vectors.iter().enumerate().map(|(i, v)| new_face(p, i, v.clone())).collect();
                store.add_faces(faces).unwrap();
                drop(store); // close before the directory goes
                drop(dir);
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_search, bench_insert
}
criterion_main!(benches);
