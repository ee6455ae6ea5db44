//! `fdb::eval::evaluate` against facenet's own semantics computed with numpy,
//! scipy and sklearn. The expected figures were printed by
//! `scripts/facenet_eval_reference.py` (numpy 1.26.4 + scipy 1.10.1, and numpy 2 +
//! scipy 1.17.1 with its B-spline fallback: identical output) on the same
//! LCG-generated embeddings that `synthetic_pairs` below reproduces.

use fdb::eval::{evaluate, EvalOptions, Metric, PairEmbeddings};

struct Lcg(u64);

impl Lcg {
    fn next_int(&mut self, n: u64) -> i64 {
        self.0 = (self.0 * 1103515245 + 12345) % (1 << 31);
        ((self.0 >> 16) % n) as i64
    }
}

/// Same as the script: 600 pairs of 8-d f32 embeddings, values k/12.
fn synthetic_pairs() -> PairEmbeddings {
    let mut rng = Lcg(2024);
    let mut out = PairEmbeddings::default();
    for _ in 0..600 {
        let left: Vec<f64> = (0..8)
            .map(|_| (rng.next_int(9) - 4) as f64 / 12.0)
            .collect();
        let same = rng.next_int(2) == 0;
        let right: Vec<f64> = if same {
            left.iter()
                .map(|v| v + (rng.next_int(7) - 3) as f64 / 12.0)
                .collect()
        } else {
            (0..8)
                .map(|_| (rng.next_int(9) - 4) as f64 / 12.0)
                .collect()
        };
        out.left.push(left.iter().map(|v| *v as f32).collect());
        out.right.push(right.iter().map(|v| *v as f32).collect());
        out.same.push(same);
    }
    out
}

struct Expected {
    accuracy: (f64, f64),
    fold_thresholds: [f64; 10],
    val: (f64, f64),
    far: f64,
    far_thresholds: [f64; 10],
    auc: f64,
    eer: f64,
}

fn check(options: EvalOptions, e: Expected) {
    let r = evaluate(&synthetic_pairs(), &options).unwrap();
    let close =
        |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-9, "{what}: {a} vs reference {b}");
    close(r.accuracy_mean, e.accuracy.0, "accuracy");
    close(r.accuracy_std, e.accuracy.1, "accuracy std");
    for (a, b) in r.fold_thresholds.iter().zip(e.fold_thresholds) {
        close(*a, b, "best threshold");
    }
    close(r.val_mean, e.val.0, "VAL");
    close(r.val_std, e.val.1, "VAL std");
    close(r.far_mean, e.far, "FAR");
    for (a, b) in r.fold_far_thresholds.iter().zip(e.far_thresholds) {
        close(*a, b, "FAR threshold");
    }
    close(r.auc, e.auc, "AUC");
    // brentq stops within xtol = 2e-12 of the root.
    assert!((r.eer - e.eer).abs() < 1e-10, "EER {} vs {}", r.eer, e.eer);
}

#[test]
fn generator_matches_the_script() {
    let p = synthetic_pairs();
    assert_eq!(p.same.iter().filter(|s| **s).count(), 286);
    let d: f64 = p.left[0]
        .iter()
        .zip(&p.right[0])
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum();
    assert!((d - 0.7361111338767743).abs() < 1e-15);
}

// The accuracy ROC does not depend on the FAR target: shared by both squared-L2 cases.
const L2_ACCURACY: (f64, f64) = (0.9333333333333332, 0.03574601764921203);
const L2_FOLD_THRESHOLDS: [f64; 10] = [
    0.36,
    0.36,
    0.36,
    0.35000000000000003,
    0.36,
    0.36,
    0.36,
    0.36,
    0.36,
    0.36,
];
const L2_AUC_EER: (f64, f64) = (0.9697688522699518, 0.07262201373614262);

#[test]
fn squared_l2_matches_facenet() {
    check(
        EvalOptions::default(),
        Expected {
            accuracy: L2_ACCURACY,
            fold_thresholds: L2_FOLD_THRESHOLDS,
            val: (0.18476968391167176, 0.062008070071811444),
            far: 0.0030303030303030303,
            far_thresholds: [
                0.159283,
                0.159288,
                0.159279,
                0.159282,
                0.159282,
                0.159291,
                0.159279,
                0.159283,
                0.18014049999999998,
                0.15927800000000003,
            ],
            auc: L2_AUC_EER.0,
            eer: L2_AUC_EER.1,
        },
    );
}

#[test]
fn cosine_with_mean_subtraction_matches_facenet() {
    check(
        EvalOptions {
            metric: Metric::Cosine,
            subtract_mean: true,
            ..EvalOptions::default()
        },
        Expected {
            accuracy: (0.9366666666666665, 0.019436506316150994),
            fold_thresholds: [0.31, 0.31, 0.31, 0.31, 0.31, 0.32, 0.31, 0.34, 0.31, 0.33],
            val: (0.5078848637104215, 0.12224476997047856),
            far: 0.0030303030303030303,
            far_thresholds: [
                0.20028300000000002,
                0.201288,
                0.200279,
                0.20228200000000002,
                0.20328200000000002,
                0.202291,
                0.201279,
                0.20028300000000002,
                0.23628100000000002,
                0.20327800000000004,
            ],
            auc: 0.986053942917229,
            eer: 0.05947150024289419,
        },
    );
}

#[test]
fn other_far_target_matches_facenet() {
    check(
        EvalOptions {
            far_target: 0.05,
            ..EvalOptions::default()
        },
        Expected {
            accuracy: L2_ACCURACY,
            fold_thresholds: L2_FOLD_THRESHOLDS,
            val: (0.7815683398553581, 0.08099816280489974),
            far: 0.04603099185760476,
            far_thresholds: [
                0.270075,
                0.27070000000000005,
                0.270975,
                0.2841000000000001,
                0.27710000000000007,
                0.27027500000000004,
                0.25695,
                0.27715000000000006,
                0.27705,
                0.2779,
            ],
            auc: L2_AUC_EER.0,
            eer: L2_AUC_EER.1,
        },
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let mut p = synthetic_pairs();
    assert!(evaluate(
        &p,
        &EvalOptions {
            far_target: 0.0,
            ..EvalOptions::default()
        }
    )
    .is_err());
    assert!(evaluate(
        &p,
        &EvalOptions {
            folds: 1,
            ..EvalOptions::default()
        }
    )
    .is_err());
    p.right[3].push(0.0);
    let err = evaluate(&p, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("same non-zero dimension"), "{err}");
    assert!(evaluate(&PairEmbeddings::default(), &EvalOptions::default()).is_err());
}
