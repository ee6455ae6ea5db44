//! How a distance becomes an answer.
//!
//! 1:1 (`verify`) compares one pair against the verification threshold, tuned on LFW for the
//! best accuracy. 1:N (`search`) is different: a stranger is compared with every enrolled
//! face, so the chance that *some* face falls under the threshold grows with the gallery.
//! With a per-comparison false-accept rate `p` and `N` faces, a stranger is accepted with
//! probability `1 − (1 − p)^N`. fdb fixes that probability (the 1:N false-accept target, 1% by
//! default), solves for `p`, and reads the threshold for `p` off a Gaussian fitted to the
//! model's impostor distances (measured on LFW's different-person pairs). The search threshold
//! is never looser than the 1:1 threshold. N counts enrolled faces, not people: a person with K
//! photos gives a stranger K chances.

use serde::{Deserialize, Serialize};

/// Squared-L2 distances between faces of different people, summarised as a Gaussian.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImpostorFit {
    /// Mean impostor distance.
    pub mean: f64,
    /// Standard deviation of the impostor distances.
    pub std: f64,
}

/// The base model's impostor fit, for a manifest written before fits were recorded.
pub const BASE_IMPOSTOR_FIT: ImpostorFit = ImpostorFit {
    mean: fdb_models::weights::install::FACENET_IMPOSTOR_FIT.0,
    std: fdb_models::weights::install::FACENET_IMPOSTOR_FIT.1,
};

/// The default chance that a stranger's search is accepted as somebody.
pub const DEFAULT_FAR_1N: f64 = 0.01;

/// The per-comparison false-accept rate that makes a stranger's acceptance by any of
/// `comparisons` equal `far_1n`.
pub fn per_comparison_far(far_1n: f64, comparisons: usize) -> f64 {
    let n = comparisons.max(1) as f64;
    // 1 − (1 − far)^(1/n), written to stay exact for tiny rates.
    -((-far_1n).ln_1p() / n).exp_m1()
}

/// The search threshold for a gallery of `faces`, never looser than the 1:1 `verify` threshold.
pub fn search_threshold(verify: f32, fit: &ImpostorFit, far_1n: f64, faces: usize) -> f32 {
    let p = per_comparison_far(far_1n.clamp(1e-12, 0.5), faces);
    let t = fit.mean + fit.std * normal_quantile(p);
    (t as f32).min(verify)
}

/// The inverse of the standard normal CDF, by bisection on `erfc` (accurate to ~1e-9 in p).
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function, fractional error < 1.2e-7 everywhere (Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_the_tables() {
        // Values from any standard normal table.
        for (p, z) in [(0.5, 0.0), (0.975, 1.959964), (0.01, -2.326348), (1e-4, -3.719016), (1e-6, -4.753424)] {
            assert!((normal_quantile(p) - z).abs() < 1e-4, "p={p}: {} vs {z}", normal_quantile(p));
        }
    }

    #[test]
    fn per_comparison_rate_compounds_back_to_the_target() {
        for n in [1usize, 40, 1000, 100_000] {
            let p = per_comparison_far(0.01, n);
            let back = 1.0 - (1.0 - p).powi(n as i32);
            assert!((back - 0.01).abs() < 1e-9, "n={n}: {back}");
        }
        assert!((per_comparison_far(0.01, 1) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn the_search_threshold_tightens_with_the_gallery_and_never_exceeds_verify() {
        let fit = ImpostorFit { mean: 1.9, std: 0.15 };
        // One face, FAR 1%: mean − 2.326·std = 1.551, looser than verify, so verify wins.
        assert_eq!(search_threshold(1.2, &fit, 0.01, 1), 1.2);
        // 10,000 faces: p ≈ 1.005e-6 → z ≈ −4.753 → 1.9 − 0.713 = 1.187.
        let t = search_threshold(1.2, &fit, 0.01, 10_000);
        assert!((t - 1.187).abs() < 2e-3, "{t}");
        assert!(search_threshold(1.2, &fit, 0.01, 100_000) < t);
    }
}
