//! Test helper: seeded random unit vectors, the shape of what the index stores.

use rand::{Rng, SeedableRng};

/// `n` unit vectors of `dim` dimensions, uniform in the cube before normalising; the same for
/// the same seed.
pub(crate) fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            crate::codec::normalized(&v).expect("a random vector is finite and non-zero")
        })
        .collect()
}
