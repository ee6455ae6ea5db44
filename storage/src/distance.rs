//! The index metric: squared L2 between unit vectors, computed as `2 - 2·dot`.
//!
//! On the unit sphere this orders exactly like cosine and L2, costs one multiply-add per
//! dimension, and is the scale in which FaceNet thresholds are stated, so hits need no conversion.

use hnsw_rs::prelude::Distance;

/// hnsw_rs' distance for fdb's metric: squared L2 between unit vectors (`2 − 2·dot`, 0..=4).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitSquaredL2;

impl Distance<f32> for UnitSquaredL2 {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        // Rounding can push 2 - 2·dot of near-identical vectors a hair below zero.
        (2.0 - 2.0 * dot(a, b)).max(0.0)
    }
}

/// Dot product of f32 vectors: the 16-lane loop compiled a second time with AVX2, used when the
/// CPU has it (the check is a cached flag).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// Sixteen independent accumulators let the compiler vectorise without reassociating floats.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_hand_computed_case_with_a_tail() {
        let a: Vec<f32> = (1..=19).map(|i| i as f32).collect();
        let b: Vec<f32> = vec![1.0; 19];
        assert_eq!(dot(&a, &b), 190.0);
        assert_eq!(dot_lanes(&a, &b), 190.0);
    }

    #[test]
    fn squared_l2_of_unit_vectors() {
        let x = [1.0f32, 0.0, 0.0];
        let y = [0.0f32, 1.0, 0.0];
        let d = UnitSquaredL2;
        assert_eq!(d.eval(&x, &x), 0.0);
        assert!((d.eval(&x, &y) - 2.0).abs() < 1e-6);
        assert!((d.eval(&x, &[-1.0, 0.0, 0.0]) - 4.0).abs() < 1e-6);
    }
}
