//! Test helpers: seeded random tensors, and a closeness check scaled to the values compared.
//!
//! Two correct implementations of a convolution sum in different orders, so in f32 they differ
//! by rounding that grows with the size of the sums; an absolute tolerance on unseeded inputs
//! fails now and then (CI saw 1.3e-5 against 1e-5 on outputs near 28). A check relative to the
//! largest reference value still catches a wrong tap or padding, which is off by O(1).

use candle_core::{Device, Shape, Tensor};
use rand::{Rng, SeedableRng};

/// Values spread like N(0, std²) (sum of four uniforms), the same for the same seed.
pub fn seeded(seed: u64, shape: impl Into<Shape>, std: f32) -> Tensor {
    let shape = shape.into();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Four U(-1, 1) summed have variance 4/3.
    let scale = std / (4.0f32 / 3.0).sqrt();
    let values: Vec<f32> = (0..shape.elem_count())
        .map(|_| scale * (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>())
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

pub fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a - b).unwrap())
}

/// Panics unless every element of `ours` is within `rel` × (largest |reference|) of `reference`.
pub fn assert_close(ours: &Tensor, reference: &Tensor, rel: f32, what: &str) {
    let diff = max_abs_diff(ours, reference);
    let scale = max_abs(reference).max(1e-12);
    assert!(diff <= rel * scale, "{what}: differs by {diff}, {} of the largest value {scale}", diff / scale);
}
