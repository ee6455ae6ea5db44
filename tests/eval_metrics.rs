//! The metric core on small synthetic distance sets worked out by hand.

use fdb::eval::folds::kfold_ranges;
use fdb::eval::roc::{
    accuracy_thresholds, arange, auc, calculate_roc, calculate_val, eer, mean_std, slinear_interp,
    val_thresholds, FoldedDistances,
};

const EPS: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < EPS
}

/// Two folds of four pairs. Distances end in 5 at the 4th decimal so none sits
/// on a 0.01 or 0.001 threshold.
///   fold A (pairs 0..4): same 0.1055, 0.3055; different 0.2055, 0.5055
///   fold B (pairs 4..8): same 0.0555, 0.6055; different 0.7055, 0.9055
fn two_folds() -> (Vec<std::ops::Range<usize>>, Vec<Vec<f64>>, Vec<bool>) {
    let dist = vec![
        0.1055, 0.2055, 0.3055, 0.5055, 0.0555, 0.7055, 0.6055, 0.9055,
    ];
    let same = vec![true, false, true, false, true, false, true, false];
    (kfold_ranges(8, 2), vec![dist.clone(), dist], same)
}

#[test]
fn threshold_grids_match_numpy_arange() {
    let t = accuracy_thresholds();
    assert_eq!(t.len(), 400);
    assert_eq!(t[0], 0.0);
    // np.arange(0, 4, 0.01)[-1] == 3.99 and [3] == 0.03 (i*0.01, not repeated addition).
    assert_eq!(t[399], 399.0 * 0.01);
    assert_eq!(t[3], 0.03);
    assert_eq!(val_thresholds().len(), 4000);
    assert_eq!(arange(1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75]);
}

#[test]
fn roc_accuracy_best_threshold_auc_eer_by_hand() {
    let (folds, per_fold, same) = two_folds();
    let data = FoldedDistances {
        folds: &folds,
        per_fold: &per_fold,
        issame: &same,
    };
    let roc = calculate_roc(&accuracy_thresholds(), &data);
    // Fold 0 trains on B: correct = 2 for t <= .0555, 3 up to .6055, 4 in (.6055, .7055]:
    //   first max at t = 0.61. On A at 0.61 every pair is "same": TP 2, FP 2 -> acc 0.5.
    // Fold 1 trains on A: correct = 2 (t <= .1055), 3 in (.1055, .2055], 2, 3 in (.3055, .5055], 2:
    //   first max at t = 0.11. On B at 0.11: TP 1 (0.0555), TN 2 -> acc 0.75.
    assert_eq!(roc.best_thresholds, vec![61.0 * 0.01, 11.0 * 0.01]);
    assert_eq!(roc.accuracy, vec![0.5, 0.75]);
    let (mean, std) = mean_std(&roc.accuracy);
    assert!(close(mean, 0.625) && close(std, 0.125));
    // Operating point per fold: (tpr, fpr) = (1, 1) and (0.5, 0).
    assert_eq!(roc.operating, vec![(1.0, 1.0), (0.5, 0.0)]);
    // Mean curve visits (0,0) (0,.25) (0,.5) (.25,.5) (.25,.75) (.5,.75) (.5,1) (.75,1) (1,1):
    // at t = 0.31: A has tpr 1, fpr .5 (0.2055 accepted); B has tpr .5, fpr 0 -> mean (.25, .75).
    assert!(close(roc.tpr[31], 0.75) && close(roc.fpr[31], 0.25));
    // AUC = .25*.5 + .25*.75 + .25*1 + .25*1 = 0.8125.
    assert!(close(auc(&roc.fpr, &roc.tpr), 0.8125));
    // EER: tpr(x) = .5 on (0,.25), .75 on [.25,.5): 1 - x - tpr(x) changes sign at x = 0.25.
    assert!(close(eer(&roc.fpr, &roc.tpr), 0.25));
}

#[test]
fn val_at_far_by_hand() {
    let (folds, per_fold, same) = two_folds();
    let data = FoldedDistances {
        folds: &folds,
        per_fold: &per_fold,
        issame: &same,
    };
    // FAR target 0.25, fold 0 trains on B: FAR 0 up to t = 0.705, 0.5 from t = 0.706;
    //   interpolation: 0.705 + (0.25 - 0)/(0.5 - 0) * 0.001 = 0.7055. On A at 0.7055: VAL 1, FAR 1.
    // Fold 1 trains on A: FAR 0 up to 0.205, 0.5 from 0.206 -> threshold 0.2055.
    //   On B: VAL 1/2 (0.0555 only), FAR 0.
    let v = calculate_val(&val_thresholds(), &data, 0.25);
    assert!(
        close(v.thresholds[0], 0.7055) && close(v.thresholds[1], 0.2055),
        "{:?}",
        v.thresholds
    );
    assert_eq!(
        (v.val.clone(), v.far.clone()),
        (vec![1.0, 0.5], vec![1.0, 0.0])
    );
    // FAR target 0.5 is reached exactly on a plateau: scipy takes its last threshold,
    // 0.905 (fold 0: FAR .5 on 0.706..0.905) and 0.505 (fold 1). On B at 0.505: VAL .5, FAR 0.
    let v = calculate_val(&val_thresholds(), &data, 0.5);
    assert!(
        close(v.thresholds[0], 0.905) && close(v.thresholds[1], 0.505),
        "{:?}",
        v.thresholds
    );
    let (val, val_std) = mean_std(&v.val);
    assert!(close(val, 0.75) && close(val_std, 0.25) && close(mean_std(&v.far).0, 0.5));
}

#[test]
fn val_threshold_is_zero_when_far_never_reaches_target() {
    // Different pairs at distance 5 are never accepted below 3.999: max FAR 0 < 1e-3 -> threshold 0,
    // and "same if dist < 0" accepts nothing: VAL 0, FAR 0.
    let dist = vec![0.5, 5.0, 0.5, 5.0];
    let same = vec![true, false, true, false];
    let folds = kfold_ranges(4, 2);
    let per_fold = vec![dist.clone(), dist];
    let v = calculate_val(
        &val_thresholds(),
        &FoldedDistances {
            folds: &folds,
            per_fold: &per_fold,
            issame: &same,
        },
        1e-3,
    );
    assert_eq!(v.thresholds, vec![0.0, 0.0]);
    assert_eq!((v.val, v.far), (vec![0.0, 0.0], vec![0.0, 0.0]));
}

#[test]
fn slinear_interp_matches_scipy_edge_cases() {
    let x = [0.0, 0.0, 0.5, 0.5, 1.0];
    let y = [0.0, 1.0, 2.0, 3.0, 4.0];
    // Inside a rising segment: between (0, 1) and (0.5, 2).
    assert!(close(slinear_interp(&x, &y, 0.25), 1.5));
    // On a plateau value: the segment starting at its last point, (0.5, 3) -> 3.
    assert!(close(slinear_interp(&x, &y, 0.5), 3.0));
    // At the top end: last segment (0.5, 3)-(1, 4) evaluated at 1 -> 4.
    assert!(close(slinear_interp(&x, &y, 1.0), 4.0));
    // A flat final segment hit exactly is degenerate in scipy's B-spline: 0.
    assert_eq!(slinear_interp(&[0.0, 1.0, 1.0], &[0.0, 1.0, 2.0], 1.0), 0.0);
}
