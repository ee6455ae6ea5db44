//! Cost of the metric part of `fdb eval lfw` (everything after the embeddings):
//! 6000 pairs of 512-d unit vectors, as in LFW's pairs.txt.

use criterion::{criterion_group, criterion_main, Criterion};
use fdb::eval::{evaluate, EvalOptions, Metric, PairEmbeddings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Same pairs share most of their direction; blocks of 300 same / 300 different like pairs.txt.
fn lfw_like_pairs() -> PairEmbeddings {
    let mut rng = StdRng::seed_from_u64(1);
    let mut gauss = |n: usize| (0..n).map(|_| rng.gen::<f32>() - 0.5).collect::<Vec<f32>>();
    let mut out = PairEmbeddings::default();
    for i in 0..6000 {
        let same = (i / 300) % 2 == 0;
        let left = gauss(512);
        let right = if same {
            left.iter().zip(gauss(512)).map(|(a, b)| a + 0.8 * b).collect()
        } else {
            gauss(512)
        };
        out.left.push(unit(left));
        out.right.push(unit(right));
        out.same.push(same);
    }
    out
}

fn bench(c: &mut Criterion) {
    let pairs = lfw_like_pairs();
    let mut group = c.benchmark_group("evaluate_6000_pairs_512d");
    group.sample_size(10);
    group.bench_function("l2", |b| b.iter(|| evaluate(&pairs, &EvalOptions::default()).unwrap()));
    let cosine = EvalOptions { metric: Metric::Cosine, subtract_mean: true, ..EvalOptions::default() };
    group.bench_function("cosine_subtract_mean", |b| b.iter(|| evaluate(&pairs, &cosine).unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
