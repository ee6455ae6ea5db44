//! facenet's `calculate_roc` / `calculate_val` (src/facenet.py) on per-fold
//! distances, plus the AUC and EER that `validate_on_lfw.py` derives from the
//! mean ROC curve.

use std::ops::Range;

use super::folds::train_indices;

/// `np.arange(0, stop, step)`: numpy fills element i as `start + i*delta`, so
/// computing `i*step` (not repeated addition) gives the same floats.
pub fn arange(stop: f64, step: f64) -> Vec<f64> {
    let len = (stop / step).ceil() as usize;
    (0..len).map(|i| i as f64 * step).collect()
}

/// Thresholds of the accuracy ROC: 0.00..3.99 step 0.01.
pub fn accuracy_thresholds() -> Vec<f64> {
    arange(4.0, 0.01)
}

/// Thresholds of the VAL@FAR search: 0.000..3.999 step 0.001.
pub fn val_thresholds() -> Vec<f64> {
    arange(4.0, 0.001)
}

/// Distances of one subset split by label and sorted, so that the confusion
/// counts at any threshold are two binary searches ("same if dist < t").
struct SortedSplit {
    same: Vec<f64>,
    diff: Vec<f64>,
    n_same: usize,
    n_diff: usize,
}

impl SortedSplit {
    fn new(indices: impl Iterator<Item = usize>, dist: &[f64], issame: &[bool]) -> Self {
        let (mut same, mut diff, mut n_same, mut n_diff) = (Vec::new(), Vec::new(), 0, 0);
        for i in indices {
            let bucket = if issame[i] {
                n_same += 1;
                &mut same
            } else {
                n_diff += 1;
                &mut diff
            };
            // NaN is never below a threshold: it only counts in the totals.
            if !dist[i].is_nan() {
                bucket.push(dist[i]);
            }
        }
        same.sort_by(f64::total_cmp);
        diff.sort_by(f64::total_cmp);
        SortedSplit {
            same,
            diff,
            n_same,
            n_diff,
        }
    }

    /// (true accepts, false accepts) at `threshold`.
    fn accepts(&self, threshold: f64) -> (usize, usize) {
        let below = |v: &Vec<f64>| v.partition_point(|d| *d < threshold);
        (below(&self.same), below(&self.diff))
    }

    fn n(&self) -> usize {
        self.n_same + self.n_diff
    }

    /// facenet `calculate_accuracy`: (tpr, fpr, accuracy), rates 0 when undefined.
    fn rates(&self, threshold: f64) -> (f64, f64, f64) {
        let (tp, fp) = self.accepts(threshold);
        let tn = self.n_diff - fp;
        (
            ratio(tp, self.n_same),
            ratio(fp, self.n_diff),
            ratio(tp + tn, self.n()),
        )
    }

    /// facenet `calculate_val_far`: (val, far). facenet divides by zero on a
    /// subset without same (or different) pairs; we report 0 instead.
    fn val_far(&self, threshold: f64) -> (f64, f64) {
        let (ta, fa) = self.accepts(threshold);
        (ratio(ta, self.n_same), ratio(fa, self.n_diff))
    }

    /// Number of correct decisions; comparing counts avoids float ties.
    fn correct(&self, threshold: f64) -> usize {
        let (tp, fp) = self.accepts(threshold);
        tp + self.n_diff - fp
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Distances and labels of all pairs, with one distance vector per fold
/// (they differ only when the training-fold mean is subtracted).
pub struct FoldedDistances<'a> {
    /// Each fold's range of pair indices.
    pub folds: &'a [Range<usize>],
    /// Per fold, the distance of every pair (as that fold's training mean left them).
    pub per_fold: &'a [Vec<f64>],
    /// Per pair, true for a same-person pair.
    pub issame: &'a [bool],
}

impl FoldedDistances<'_> {
    fn splits(&self, fold: usize) -> (SortedSplit, SortedSplit) {
        let (dist, test) = (&self.per_fold[fold], &self.folds[fold]);
        let train = SortedSplit::new(train_indices(self.issame.len(), test), dist, self.issame);
        let held_out = SortedSplit::new(test.clone(), dist, self.issame);
        (train, held_out)
    }
}

/// Output of [`calculate_roc`].
#[derive(Clone, Debug)]
pub struct Roc {
    /// The thresholds tried (0 to 4, step 0.01, as facenet).
    pub thresholds: Vec<f64>,
    /// Mean over folds of the held-out TPR / FPR at each threshold.
    pub tpr: Vec<f64>,
    /// Mean over folds of the held-out FPR at each threshold.
    pub fpr: Vec<f64>,
    /// Held-out accuracy per fold at that fold's best training threshold.
    pub accuracy: Vec<f64>,
    /// Each fold's best training threshold.
    pub best_thresholds: Vec<f64>,
    /// Held-out (tpr, fpr) per fold at the best threshold: the operating point.
    pub operating: Vec<(f64, f64)>,
}

/// facenet `calculate_roc`: per fold, the first threshold with the best
/// training accuracy, scored on the held-out fold.
pub fn calculate_roc(thresholds: &[f64], data: &FoldedDistances) -> Roc {
    let k = data.folds.len();
    let (mut tpr, mut fpr) = (vec![0.0; thresholds.len()], vec![0.0; thresholds.len()]);
    let (mut accuracy, mut best_thresholds, mut operating) = (vec![], vec![], vec![]);
    for fold in 0..k {
        let (train, test) = data.splits(fold);
        // np.argmax: the first maximum wins, hence the strict comparison.
        let mut best = 0;
        let mut best_correct = train.correct(thresholds[0]);
        for (i, t) in thresholds.iter().enumerate().skip(1) {
            let c = train.correct(*t);
            if c > best_correct {
                (best, best_correct) = (i, c);
            }
        }
        for (i, t) in thresholds.iter().enumerate() {
            let (tp, fp, _) = test.rates(*t);
            tpr[i] += tp / k as f64;
            fpr[i] += fp / k as f64;
        }
        let (op_tpr, op_fpr, acc) = test.rates(thresholds[best]);
        accuracy.push(acc);
        best_thresholds.push(thresholds[best]);
        operating.push((op_tpr, op_fpr));
    }
    Roc {
        thresholds: thresholds.to_vec(),
        tpr,
        fpr,
        accuracy,
        best_thresholds,
        operating,
    }
}

/// Output of [`calculate_val`].
#[derive(Clone, Debug)]
pub struct ValFar {
    /// Per fold: held-out VAL, held-out FAR, and the training threshold for the target FAR.
    pub val: Vec<f64>,
    /// Per fold, the held-out FAR.
    pub far: Vec<f64>,
    /// Per fold, the training threshold for the target FAR.
    pub thresholds: Vec<f64>,
}

/// facenet `calculate_val`: per fold, the threshold where the training FAR
/// equals `far_target` (interp1d 'slinear' of threshold against FAR; 0 when
/// FAR never reaches the target), then VAL and FAR on the held-out fold.
pub fn calculate_val(thresholds: &[f64], data: &FoldedDistances, far_target: f64) -> ValFar {
    let mut out = ValFar {
        val: vec![],
        far: vec![],
        thresholds: vec![],
    };
    for fold in 0..data.folds.len() {
        let (train, test) = data.splits(fold);
        let far_train: Vec<f64> = thresholds.iter().map(|t| train.val_far(*t).1).collect();
        let max_far = far_train.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let threshold = if max_far >= far_target {
            slinear_interp(&far_train, thresholds, far_target)
        } else {
            0.0
        };
        let (val, far) = test.val_far(threshold);
        out.val.push(val);
        out.far.push(far);
        out.thresholds.push(threshold);
    }
    out
}

/// `scipy.interpolate.interp1d(x, y, kind='slinear')(xv)` for non-decreasing
/// `x` (repeats allowed) and `x[0] <= xv <= x[last]`. scipy evaluates a degree-1
/// B-spline with knots `[x0, x..., xlast]`: the interval is the last one whose
/// left knot is <= xv, and a zero-length interval evaluates to 0 (de Boor with
/// coincident knots). Reproduced with scipy's operation order.
pub fn slinear_interp(x: &[f64], y: &[f64], xv: f64) -> f64 {
    let n = x.len();
    if n < 2 {
        return y.first().copied().unwrap_or(0.0);
    }
    // First index in 1..n with x > xv, else the last index.
    let hi = (1..n).find(|&i| x[i] > xv).unwrap_or(n - 1);
    let lo = hi - 1;
    let (xa, xb) = (x[lo], x[hi]);
    if xa == xb {
        return 0.0;
    }
    let w = 1.0 / (xb - xa);
    y[lo] * (w * (xb - xv)) + y[hi] * (w * (xv - xa))
}

/// `np.interp(xv, xp, fp)` for non-decreasing `xp` (what scipy's linear
/// interp1d delegates to), clamped to the end values outside the range where
/// interp1d would raise.
pub fn np_interp(xp: &[f64], fp: &[f64], xv: f64) -> f64 {
    let last = xp.len() - 1;
    if xv < xp[0] {
        return fp[0];
    }
    if xv >= xp[last] {
        return fp[last];
    }
    // Largest j with xp[j] <= xv; xp[j+1] > xv so the slope is finite.
    let j = xp.partition_point(|v| *v <= xv) - 1;
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    slope * (xv - xp[j]) + fp[j]
}

/// `sklearn.metrics.auc(fpr, tpr)`: trapezoid rule (fpr is non-decreasing here).
pub fn auc(fpr: &[f64], tpr: &[f64]) -> f64 {
    fpr.windows(2)
        .zip(tpr.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
        .sum()
}

/// Equal error rate: the root in [0, 1] of `1 - x - tpr(x)` with tpr linearly
/// interpolated over the mean ROC curve (facenet uses scipy brentq). The
/// function is strictly decreasing, so bisection finds the same root.
pub fn eer(fpr: &[f64], tpr: &[f64]) -> f64 {
    let f = |x: f64| 1.0 - x - np_interp(fpr, tpr, x);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    if f(lo) <= 0.0 {
        return lo;
    }
    if f(hi) >= 0.0 {
        return hi;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean and population standard deviation (numpy's default ddof=0).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}
