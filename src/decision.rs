//! How a distance becomes an answer.
//!
//! 1:1 (`verify`) compares one pair against the verification threshold, tuned on LFW for the
//! best accuracy. 1:N (`search`) is different: a stranger is compared with every enrolled
//! face, so the chance that *some* face falls under the threshold grows with the gallery.
//! With a per-comparison false-accept rate `p` and `N` faces, a stranger is accepted with
//! probability `1 − (1 − p)^N`. fdb fixes that probability (the 1:N false-accept target, 1% by
//! default), solves for `p`, and reads the threshold for `p` off the lower tail of impostor
//! distances (`LowerTail`): the database's own (sampled from its galleries, see `calibration`)
//! once it has enough people, else the model's, measured on LFW. The gallery's tail only
//! tightens the search threshold, never loosens it (`gallery_search_threshold`). The search
//! threshold is never looser than the 1:1 threshold. N counts enrolled faces, not people: a person with K photos
//! gives a stranger K chances.
//!
//! The tail is empirical where the sample has enough points below the threshold, and an
//! exponential fit of the lowest distances (peaks over a threshold with ξ = 0) beyond that.
//! A Gaussian fitted to all impostor distances, used before, decays far faster than the real
//! lower tail and so under-counted strangers (3 of 100 accepted at a 1% target on LFW).

use serde::{Deserialize, Serialize};

/// A 1:1 threshold fdb accepts: a finite squared L2 distance between unit vectors, 0..4.
/// Anything else decides every pair one way (inf: all "same"; NaN: all "different").
pub fn check_verify_threshold(value: f32) -> Result<f32, String> {
    if value.is_finite() && (0.0..=4.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("threshold {value} is outside 0..4 (squared L2 between unit vectors)"))
    }
}

/// The default chance that a stranger's search is accepted as somebody.
pub const DEFAULT_FAR_1N: f64 = 0.01;

/// The per-comparison false-accept rate that makes a stranger's acceptance by any of
/// `comparisons` equal `far_1n`.
pub fn per_comparison_far(far_1n: f64, comparisons: usize) -> f64 {
    let n = comparisons.max(1) as f64;
    // 1 − (1 − far)^(1/n), written to stay exact for tiny rates.
    -((-far_1n).ln_1p() / n).exp_m1()
}

/// Order statistics kept exactly at the bottom of a tail: the exponential fit beyond the
/// sample uses the lowest `TAIL_FIT` distances.
pub const TAIL_FIT: usize = 25;
/// Above `TAIL_FIT`, order statistics are kept at ranks growing by this factor.
const RANK_STEP: f64 = 1.333_521_432_163_324; // 10^(1/8)
/// The highest quantile a tail keeps (a 1:1 FAR is far below it).
const TAIL_TOP: f64 = 0.5;

/// The lower tail of a sample of impostor distances: `points` are (p, distance) with p the
/// fraction of the `pairs` distances at or below it, ascending; the first `TAIL_FIT` are the
/// sample's smallest distances, one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LowerTail {
    /// How many distances the tail was taken from.
    pub pairs: u64,
    /// (fraction of the distances at or below, distance), ascending.
    pub points: Vec<(f64, f32)>,
}

impl LowerTail {
    /// The tail of `distances` (any order).
    pub fn from_distances(mut distances: Vec<f32>) -> Self {
        distances.retain(|d| d.is_finite());
        let m = distances.len();
        if m == 0 {
            return Self { pairs: 0, points: Vec::new() };
        }
        let top = ((m as f64 * TAIL_TOP).ceil() as usize).clamp(1, m);
        // Only the lowest `top` matter: partition them off, then sort them.
        if top < m {
            distances.select_nth_unstable_by(top - 1, f32::total_cmp);
            distances.truncate(top);
        }
        distances.sort_unstable_by(f32::total_cmp);
        let mut ranks: Vec<usize> = (1..=TAIL_FIT.min(top)).collect();
        let mut r = TAIL_FIT as f64;
        while (r * RANK_STEP) < top as f64 {
            r *= RANK_STEP;
            ranks.push(r.round() as usize);
        }
        if *ranks.last().expect("at least rank 1") < top {
            ranks.push(top);
        }
        ranks.dedup();
        let points = ranks.into_iter().map(|rank| (rank as f64 / m as f64, distances[rank - 1])).collect();
        Self { pairs: m as u64, points }
    }

    /// (u, σ, p_u) of the exponential fit below the `TAIL_FIT`-th distance: F(t) = p_u·e^{−(u−t)/σ}
    /// for t ≤ u, σ the mean excess of the distances below u (its maximum-likelihood value).
    fn exponential_fit(&self) -> Option<(f64, f64, f64)> {
        let k = self.points.len().min(TAIL_FIT);
        if k == 0 {
            return None;
        }
        let (p_u, u) = self.points[k - 1];
        let u = f64::from(u);
        let below = &self.points[..k - 1];
        let sigma = if below.is_empty() { 0.0 } else { below.iter().map(|(_, d)| u - f64::from(*d)).sum::<f64>() / below.len() as f64 };
        Some((u, sigma, p_u))
    }

    /// The distance below which a fraction `p` of impostor pairs lie.
    pub fn quantile(&self, p: f64) -> f64 {
        let Some((u, sigma, p_u)) = self.exponential_fit() else { return 0.0 };
        if p <= p_u {
            return (u - sigma * (p_u / p.max(f64::MIN_POSITIVE)).ln()).max(0.0);
        }
        // Between kept points, linear in log p.
        for w in self.points.windows(2) {
            let ((p0, d0), (p1, d1)) = (w[0], w[1]);
            if p <= p1 {
                let f = if p1 > p0 { (p.ln() - p0.ln()) / (p1.ln() - p0.ln()) } else { 1.0 };
                return f64::from(d0) + f * (f64::from(d1) - f64::from(d0));
            }
        }
        f64::from(self.points.last().map_or(0.0, |p| p.1))
    }

    /// The fraction of impostor pairs closer than `t` (the per-comparison false-accept rate of
    /// threshold `t`); the inverse of `quantile`.
    pub fn cdf(&self, t: f64) -> f64 {
        let Some((u, sigma, p_u)) = self.exponential_fit() else { return 0.0 };
        if t <= u {
            if sigma == 0.0 {
                return if t < u { 0.0 } else { p_u };
            }
            return p_u * (-(u - t) / sigma).exp();
        }
        for w in self.points.windows(2) {
            let ((p0, d0), (p1, d1)) = (w[0], w[1]);
            let (d0, d1) = (f64::from(d0), f64::from(d1));
            if t <= d1 {
                let f = if d1 > d0 { (t - d0) / (d1 - d0) } else { 1.0 };
                return (p0.ln() + f * (p1.ln() - p0.ln())).exp();
            }
        }
        self.points.last().map_or(0.0, |p| p.0)
    }
}

/// The search threshold for a gallery of `faces` under `tail`, never looser than `verify`.
pub fn search_threshold_from_tail(verify: f32, tail: &LowerTail, far_1n: f64, faces: usize) -> f32 {
    let p = per_comparison_far(far_1n.clamp(1e-12, 0.5), faces);
    (tail.quantile(p) as f32).min(verify)
}

/// The chance that a stranger is accepted by some of `faces` faces at threshold `t`.
pub fn expected_far_1n(tail: &LowerTail, t: f32, faces: usize) -> f64 {
    let p = tail.cdf(f64::from(t)).clamp(0.0, 1.0);
    -((faces.max(1) as f64) * (-p).ln_1p()).exp_m1()
}

/// Under the gallery calibration, the search threshold is the stricter of the gallery's and
/// the model's (LFW's): the gallery tightens 1:N in a domain where different people lie
/// closer, and never loosens it, because tens of people cannot measure a 1-in-100 stranger
/// rate as well as LFW's millions of pairs. Returns the threshold, whether LFW's set it, and
/// the stranger-accept rate expected at it (the larger of the two tails' estimates).
pub fn gallery_search_threshold(verify: f32, own: &LowerTail, lfw: &LowerTail, far_1n: f64, faces: usize) -> (f32, bool, f64) {
    let own_t = search_threshold_from_tail(verify, own, far_1n, faces);
    let lfw_t = search_threshold_from_tail(verify, lfw, far_1n, faces);
    let (t, from_lfw) = if lfw_t < own_t { (lfw_t, true) } else { (own_t, false) };
    (t, from_lfw, expected_far_1n(own, t, faces).max(expected_far_1n(lfw, t, faces)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_comparison_rate_compounds_back_to_the_target() {
        for n in [1usize, 40, 1000, 100_000] {
            let p = per_comparison_far(0.01, n);
            let back = 1.0 - (1.0 - p).powi(n as i32);
            assert!((back - 0.01).abs() < 1e-9, "n={n}: {back}");
        }
        assert!((per_comparison_far(0.01, 1) - 0.01).abs() < 1e-12);
    }

    /// 100 distances 0.01, 0.02, …, 1.00: the tail's points are exact order statistics.
    fn hundredths() -> LowerTail {
        LowerTail::from_distances((1..=100).rev().map(|i| i as f32 / 100.0).collect())
    }

    #[test]
    fn a_tail_keeps_the_smallest_distances_one_by_one_then_log_spaced_ranks() {
        let tail = hundredths();
        assert_eq!(tail.pairs, 100);
        // Ranks 1..=25 one by one, then 25·10^(k/8) rounded (33, 44) up to half the sample (50).
        let ranks: Vec<usize> = tail.points.iter().map(|(p, _)| (p * 100.0).round() as usize).collect();
        assert_eq!(ranks, [(1..=25).collect::<Vec<_>>(), vec![33, 44, 50]].concat());
        for (p, d) in &tail.points {
            assert!((f64::from(*d) - p).abs() < 1e-6, "rank {p}: {d}");
        }
    }

    #[test]
    fn quantiles_inside_the_sample_interpolate_in_log_p() {
        let tail = hundredths();
        // Exactly on kept points.
        assert!((tail.quantile(0.25) - 0.25).abs() < 1e-6);
        assert!((tail.quantile(0.33) - 0.33).abs() < 1e-6);
        // Between 0.25 and 0.33: f = ln(0.3/0.25)/ln(0.33/0.25) = 0.18232/0.27763 = 0.65670,
        // d = 0.25 + 0.65670 · 0.08 = 0.30254.
        assert!((tail.quantile(0.30) - 0.302_536).abs() < 1e-5, "{}", tail.quantile(0.30));
        // cdf inverts it.
        assert!((tail.cdf(0.302_536) - 0.30).abs() < 1e-5, "{}", tail.cdf(0.302_536));
        // Above the kept half: the largest kept distance.
        assert!((tail.quantile(0.9) - 0.50).abs() < 1e-6);
    }

    #[test]
    fn below_the_25th_distance_the_tail_is_exponential() {
        let tail = hundredths();
        // u = 0.25 (rank 25, p_u = 0.25); the 24 distances below it exceed it by
        // 0.24, 0.23, …, 0.01: mean σ = 0.125.
        // p = 0.01: t = u − σ·ln(p_u / p) = 0.25 − 0.125 · ln 25 = 0.25 − 0.40236 < 0 → 0.
        assert_eq!(tail.quantile(0.01), 0.0);
        // p = 0.2: t = 0.25 − 0.125 · ln(1.25) = 0.25 − 0.027893 = 0.222107.
        assert!((tail.quantile(0.2) - 0.222_107).abs() < 1e-5, "{}", tail.quantile(0.2));
        // cdf(0.15) = 0.25 · e^{−0.10/0.125} = 0.25 · 0.449329 = 0.112332.
        assert!((tail.cdf(0.15) - 0.112_332).abs() < 1e-5, "{}", tail.cdf(0.15));
        assert!((tail.quantile(0.112_332) - 0.15).abs() < 1e-5);
    }

    #[test]
    fn the_exponential_tail_counts_strangers_beyond_the_sample_minimum() {
        // A sample with an exactly exponential lower tail, F(t) = e^{(t−1)/0.02}: the i-th of
        // 10,000 is 1 + 0.02·ln(i/10⁴), the smallest 0.8158.
        let d: Vec<f32> = (1..=10_000).map(|i| 1.0 + 0.02 * (i as f32 / 10_000.0).ln()).collect();
        let tail = LowerTail::from_distances(d);
        let min = f64::from(tail.points[0].1);
        // u = 1 + 0.02·ln(0.0025) = 0.88018; σ = 0.02·(ln 25 − ln(24!)/24) = 0.018724.
        // At 1e-3 (rank 10): 0.88018 − 0.018724·ln 2.5 = 0.86302 (the truth: 0.86184).
        assert!((tail.quantile(1e-3) - 0.863_02).abs() < 1e-4, "{}", tail.quantile(1e-3));
        // At 1e-6, a hundred times below the sample: 0.88018 − 0.018724·ln 2500 = 0.73368, far
        // under the minimum (the truth: 0.72369); a quantile stuck at the sample would say 0.8158.
        assert!((tail.quantile(1e-6) - 0.733_68).abs() < 1e-4, "{}", tail.quantile(1e-6));
        assert!(tail.quantile(1e-6) < min - 0.08);
    }

    #[test]
    fn the_gallery_tightens_the_search_threshold_and_never_loosens_it() {
        let tail = hundredths();
        // The same distances shifted by +0.1: a domain where different people lie further apart.
        let far_apart = LowerTail::from_distances((1..=100).map(|i| i as f32 / 100.0 + 0.1).collect());
        // One face, FAR 25%: LFW's 0.25 quantile is 0.25, the far-apart gallery's 0.35.
        let (t, from_lfw, expected) = gallery_search_threshold(1.0, &far_apart, &tail, 0.25, 1);
        assert!((t - 0.25).abs() < 1e-6 && from_lfw, "{t} {from_lfw}");
        assert!((expected - 0.25).abs() < 1e-6, "{expected}");
        // A gallery whose strangers lie closer than LFW's (LFW shifted instead) sets it itself,
        // and the expected rate is the gallery's own.
        let (t, from_lfw, expected) = gallery_search_threshold(1.0, &tail, &far_apart, 0.25, 1);
        assert!((t - 0.25).abs() < 1e-6 && !from_lfw, "{t} {from_lfw}");
        assert!((expected - 0.25).abs() < 1e-6, "{expected}");
    }

    #[test]
    fn the_search_threshold_tightens_with_the_gallery_and_never_exceeds_verify() {
        let tail = hundredths();
        // One face, FAR 25%: the 0.25 quantile, tighter than a verify threshold of 0.3.
        assert!((search_threshold_from_tail(0.3, &tail, 0.25, 1) - 0.25).abs() < 1e-6);
        // A verify threshold of 0.2 caps it.
        assert_eq!(search_threshold_from_tail(0.2, &tail, 0.25, 1), 0.2);
        // Two faces: p = 1 − √0.75 = 0.133975 → 0.25 − 0.125·ln(0.25/0.133975) = 0.17203.
        let t2 = search_threshold_from_tail(0.3, &tail, 0.25, 2);
        assert!((t2 - 0.172_03).abs() < 1e-4, "{t2}");
        // And the expected 1:N rate at that threshold is the target again.
        assert!((expected_far_1n(&tail, t2, 2) - 0.25).abs() < 1e-4);
        assert!(search_threshold_from_tail(0.3, &tail, 0.25, 10) < t2);
    }
}
