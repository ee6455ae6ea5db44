//! Shared helpers for the storage tests: deterministic synthetic faces.
#![allow(dead_code)]

use fdb_storage::{NewFace, PersonId};
use rand::{Rng, SeedableRng};

/// A deterministic random vector (not normalised: the store must do that).
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

pub fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A stand-in for the sha256 of image number `n`.
pub fn sha(n: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_be_bytes());
    s[31] = 0xfd;
    s
}

pub fn face(person: PersonId, n: u64, model: &str, embedding: Vec<f32>) -> NewFace {
    NewFace {
        person,
        source_name: format!("img_{n:05}.jpg"),
        source_sha256: sha(n),
        bbox: [1.0, 2.0, 101.0, 122.0],
        landmarks: [[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]],
        score: 0.99,
        quality: None,
        model_id: model.to_string(),
        crop: format!("crop-bytes-{n}").into_bytes(),
        embedding,
    }
}

/// Exact top-k by squared L2 over unit vectors: the ground truth the index is checked against.
pub fn exact_top_k(query: &[f32], items: &[(u64, Vec<f32>)], k: usize) -> Vec<u64> {
    let q = unit(query);
    let mut scored: Vec<(f32, u64)> = items.iter().map(|(id, v)| (squared_l2(&q, &unit(v)), *id)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}
