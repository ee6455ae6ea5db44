//! Verification rates read straight off the pairs' distances, without folds: the true-accept
//! rate at a false-accept rate (TAR@FAR, the figure a door or a payment is set by) and the
//! curve at every impostor distance, which a log-scale FAR axis needs. A pair is accepted as
//! the same person when its distance is below the threshold, as in facenet's protocol.

use serde::{Deserialize, Serialize};

/// Distances split into genuine (same person) and impostor pairs, each sorted ascending.
#[derive(Debug, Clone, Default)]
pub struct SplitDistances {
    /// Same-person distances.
    pub genuine: Vec<f64>,
    /// Different-person distances.
    pub impostor: Vec<f64>,
}

impl SplitDistances {
    /// NaN distances are left out (they are never accepted).
    pub fn new(distances: &[f64], same: &[bool]) -> Self {
        let mut split = SplitDistances::default();
        for (d, s) in distances.iter().zip(same) {
            if d.is_nan() {
                continue;
            }
            if *s { split.genuine.push(*d) } else { split.impostor.push(*d) }
        }
        split.genuine.sort_by(f64::total_cmp);
        split.impostor.sort_by(f64::total_cmp);
        split
    }

    fn below(sorted: &[f64], t: f64) -> usize {
        sorted.partition_point(|d| *d < t)
    }

    /// (FAR, TAR) accepting every distance below `t`.
    pub fn rates_at(&self, t: f64) -> (f64, f64) {
        let rate = |v: &[f64]| if v.is_empty() { 0.0 } else { Self::below(v, t) as f64 / v.len() as f64 };
        (rate(&self.impostor), rate(&self.genuine))
    }

    /// The curve's corners: after each distinct impostor distance is let in, the FAR and the
    /// best TAR at that FAR (every genuine pair below the next impostor). Drawn as steps, this
    /// is the ROC on which every `tar_at_far` and `rates_at` point lies. FAR 0 is left out (a
    /// log axis cannot show it).
    pub fn curve(&self) -> Vec<(f64, f64)> {
        let (m, n) = (self.impostor.len() as f64, self.genuine.len().max(1) as f64);
        let mut points = Vec::new();
        for (i, v) in self.impostor.iter().enumerate() {
            let next = self.impostor.get(i + 1);
            if next == Some(v) {
                continue; // ties: one corner after the last of them
            }
            let genuine = next.map_or(self.genuine.len(), |t| Self::below(&self.genuine, *t));
            points.push(((i + 1) as f64 / m, genuine as f64 / n));
        }
        points
    }

    /// TAR at the loosest threshold whose FAR does not exceed `far`.
    pub fn tar_at_far(&self, far: f64) -> TarAtFar {
        let m = self.impostor.len();
        let k = (far * m as f64 + 1e-9).floor() as usize;
        // Accepting d < impostor[k] lets at most k impostors in.
        let threshold = self.impostor.get(k).copied().unwrap_or(f64::INFINITY);
        let (far_hit, tar) = self.rates_at(threshold);
        TarAtFar { far, tar, threshold, far_hit, resolvable: far * m as f64 >= 1.0 }
    }

    /// The equal-error point: the threshold where FAR and FRR (1 − TAR) cross, and that rate.
    pub fn equal_error(&self) -> (f64, f64) {
        let mut all: Vec<f64> = self.genuine.iter().chain(&self.impostor).copied().collect();
        all.sort_by(f64::total_cmp);
        all.push(f64::INFINITY);
        let mut best = (f64::INFINITY, 0.0, 1.0);
        for t in all {
            let (far, tar) = self.rates_at(t);
            let gap = (far - (1.0 - tar)).abs();
            if gap < best.0 {
                best = (gap, t, 0.5 * (far + 1.0 - tar));
            }
        }
        (best.1, best.2)
    }
}

/// One TAR@FAR figure. `resolvable` is false when the impostor pairs are too few for the
/// target (fewer than one impostor at that rate): the figure is then TAR at FAR 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TarAtFar {
    /// The FAR asked for.
    pub far: f64,
    /// The true-accept rate there.
    pub tar: f64,
    /// The threshold that gives it (accept below).
    pub threshold: f64,
    /// The FAR actually reached (≤ `far`).
    pub far_hit: f64,
    /// Whether the impostor pairs are enough to measure `far`.
    pub resolvable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> SplitDistances {
        // Impostors 0.5, 1.0, 1.5, 2.0; genuine 0.2, 0.6, 1.2, 1.8 (interleaved in the input).
        let d = [0.5, 0.2, 1.0, 0.6, 1.5, 1.2, 2.0, 1.8, f64::NAN];
        let same = [false, true, false, true, false, true, false, true, true];
        SplitDistances::new(&d, &same)
    }

    #[test]
    fn tar_at_far_is_counted_by_hand() {
        let s = example();
        // FAR 0.25 of 4 impostors: one may pass. Threshold 1.0 accepts 0.5 (FAR 1/4) and the
        // genuine 0.2 and 0.6 (TAR 2/4).
        let t = s.tar_at_far(0.25);
        assert_eq!((t.threshold, t.far_hit, t.tar, t.resolvable), (1.0, 0.25, 0.5, true));
        // FAR 0.1 is below one impostor in four: threshold 0.5, only the genuine 0.2.
        let t = s.tar_at_far(0.1);
        assert_eq!((t.threshold, t.far_hit, t.tar, t.resolvable), (0.5, 0.0, 0.25, false));
        // FAR 1: everything.
        let t = s.tar_at_far(1.0);
        assert_eq!((t.far_hit, t.tar), (1.0, 1.0));
    }

    #[test]
    fn the_curve_has_a_corner_per_impostor_and_the_eer_where_the_rates_cross() {
        let s = example();
        // After 0.5: FAR 1/4, genuine below 1.0 (0.2, 0.6); after 1.0: FAR 2/4, below 1.5: 3/4 …
        assert_eq!(s.curve(), vec![(0.25, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.0)]);
        // Every TAR@FAR lies on it.
        assert_eq!(s.tar_at_far(0.25).tar, 0.5);
        assert_eq!(s.tar_at_far(0.5).tar, 0.75);
        let tied = SplitDistances::new(&[1.0, 1.0, 0.5], &[false, false, true]);
        assert_eq!(tied.curve(), vec![(1.0, 1.0)]);
        // Threshold 0.6 (accept d < 0.6): FAR 1/4, TAR 1/4 → FRR 3/4; threshold 1.0: FAR 1/4,
        // TAR 1/2, FRR 1/2; threshold 1.2: FAR 2/4, FRR 2/4 — equal, at rate 0.5.
        let (t, rate) = s.equal_error();
        assert_eq!((t, rate), (1.2, 0.5));
    }
}
