//! The evaluation itself (embeddings -> metrics) and its outputs: a terminal
//! table (`Display`), serde JSON, and the ROC curve as CSV.

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::distance::{mean_embedding, pair_distances, FlipMode, Metric};
use super::folds::{kfold_ranges, train_indices};
use super::roc::{
    accuracy_thresholds, auc, calculate_roc, calculate_val, eer, mean_std, val_thresholds,
    FoldedDistances,
};
use super::source::PairEmbeddings;
use super::tar::SplitDistances;
use super::EvalError;

/// Options of one evaluation (facenet `validate_on_lfw.py` flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// How pair distances are measured.
    pub metric: Metric,
    /// Subtract the mean of the training folds' embeddings before the distance.
    pub subtract_mean: bool,
    /// Target FAR of the VAL@FAR figure (facenet: 1e-3).
    pub far_target: f64,
    /// Number of folds (10 in facenet's protocol).
    pub folds: usize,
    /// Recorded for the report; the combination happens in [`super::embed_pairs`].
    pub flip: FlipMode,
    /// Recorded for the report: each vector had the model's fixed centre taken away and was
    /// normalised again (the centred recipe; [`crate::recipe::centred`]).
    #[serde(default)]
    pub centred: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            metric: Metric::SquaredL2,
            subtract_mean: false,
            far_target: 1e-3,
            folds: 10,
            flip: FlipMode::None,
            centred: false,
        }
    }
}

/// One point of the mean ROC curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// The distance threshold.
    pub threshold: f64,
    /// False-positive rate at it.
    pub fpr: f64,
    /// True-positive rate at it.
    pub tpr: f64,
}

/// Result of [`evaluate`]. `threshold` is what `--save-threshold` stores by
/// default; `far_threshold` is the one for `--far`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The options evaluated with.
    pub options: EvalOptions,
    /// Pairs evaluated.
    pub pairs: usize,
    /// Of which same-person pairs.
    pub same_pairs: usize,
    /// Pairs per fold.
    pub fold_sizes: Vec<usize>,
    /// Mean of the folds' held-out accuracies.
    pub accuracy_mean: f64,
    /// Standard deviation of the folds' held-out accuracies.
    pub accuracy_std: f64,
    /// Each fold's held-out accuracy.
    pub fold_accuracy: Vec<f64>,
    /// Best training threshold per fold, and their mean.
    pub fold_thresholds: Vec<f64>,
    /// The mean of `fold_thresholds`: the accuracy-optimal threshold.
    pub threshold: f64,
    /// Mean validation rate (true accepts) at the target FAR.
    pub val_mean: f64,
    /// Its standard deviation over the folds.
    pub val_std: f64,
    /// Mean held-out FAR actually hit at the per-fold FAR thresholds.
    pub far_mean: f64,
    /// Per fold, the threshold that meets the target FAR on the training folds.
    pub fold_far_thresholds: Vec<f64>,
    /// The mean of `fold_far_thresholds`.
    pub far_threshold: f64,
    /// Area under the mean ROC curve.
    pub auc: f64,
    /// Equal error rate of the mean ROC curve.
    pub eer: f64,
    /// Mean held-out (fpr, tpr) at the per-fold best thresholds; threshold = `threshold`.
    pub operating_point: RocPoint,
    /// The mean ROC curve over the thresholds.
    pub roc: Vec<RocPoint>,
    /// Each pair's distance as its test fold saw it (after that fold's mean, if subtracted);
    /// the pictures and the mistakes are drawn from these. Not in the JSON (one per pair).
    #[serde(skip)]
    pub distances: Vec<f64>,
    /// Each pair's label, in the same order.
    #[serde(skip)]
    pub same: Vec<bool>,
}

impl EvalReport {
    /// The held-out distances split into genuine and impostor pairs.
    pub fn split_distances(&self) -> SplitDistances {
        SplitDistances::new(&self.distances, &self.same)
    }
}

/// Runs facenet's `lfw.evaluate` (accuracy ROC, VAL@FAR) plus AUC and EER.
pub fn evaluate(emb: &PairEmbeddings, options: &EvalOptions) -> Result<EvalReport, EvalError> {
    validate(emb, options)?;
    let n = emb.same.len();
    let folds = kfold_ranges(n, options.folds);
    let dim = emb.left[0].len();
    let no_mean = vec![0.0; dim];
    let shared = (!options.subtract_mean)
        .then(|| pair_distances(&emb.left, &emb.right, &no_mean, options.metric));
    let per_fold: Vec<Vec<f64>> = folds
        .iter()
        .map(|test| match &shared {
            Some(d) => d.clone(),
            None => {
                let train = || train_indices(n, test);
                let rows = train()
                    .map(|i| emb.left[i].as_slice())
                    .chain(train().map(|i| emb.right[i].as_slice()));
                pair_distances(
                    &emb.left,
                    &emb.right,
                    &mean_embedding(rows, dim),
                    options.metric,
                )
            }
        })
        .collect();
    let data = FoldedDistances {
        folds: &folds,
        per_fold: &per_fold,
        issame: &emb.same,
    };

    let mut distances = vec![f64::NAN; n];
    for (test, d) in folds.iter().zip(&per_fold) {
        for i in test.clone() {
            distances[i] = d[i];
        }
    }
    let roc = calculate_roc(&accuracy_thresholds(), &data);
    let val = calculate_val(&val_thresholds(), &data, options.far_target);
    let (accuracy_mean, accuracy_std) = mean_std(&roc.accuracy);
    let (val_mean, val_std) = mean_std(&val.val);
    let threshold = mean_std(&roc.best_thresholds).0;
    let operating_point = RocPoint {
        threshold,
        tpr: mean_std(&roc.operating.iter().map(|o| o.0).collect::<Vec<_>>()).0,
        fpr: mean_std(&roc.operating.iter().map(|o| o.1).collect::<Vec<_>>()).0,
    };
    Ok(EvalReport {
        options: options.clone(),
        pairs: n,
        same_pairs: emb.same.iter().filter(|s| **s).count(),
        fold_sizes: folds.iter().map(|f| f.len()).collect(),
        accuracy_mean,
        accuracy_std,
        fold_accuracy: roc.accuracy.clone(),
        fold_thresholds: roc.best_thresholds.clone(),
        threshold,
        val_mean,
        val_std,
        far_mean: mean_std(&val.far).0,
        far_threshold: mean_std(&val.thresholds).0,
        fold_far_thresholds: val.thresholds,
        auc: auc(&roc.fpr, &roc.tpr),
        eer: eer(&roc.fpr, &roc.tpr),
        operating_point,
        roc: roc
            .thresholds
            .iter()
            .zip(&roc.fpr)
            .zip(&roc.tpr)
            .map(|((t, f), p)| RocPoint {
                threshold: *t,
                fpr: *f,
                tpr: *p,
            })
            .collect(),
        distances,
        same: emb.same.clone(),
    })
}

fn validate(emb: &PairEmbeddings, options: &EvalOptions) -> Result<(), EvalError> {
    let invalid = |m: String| Err(EvalError::Invalid(m));
    if emb.left.len() != emb.same.len() || emb.right.len() != emb.same.len() {
        return invalid(format!(
            "{} left, {} right embeddings for {} pairs",
            emb.left.len(),
            emb.right.len(),
            emb.same.len()
        ));
    }
    if options.folds < 2 || emb.same.len() < options.folds {
        return invalid(format!(
            "{} pairs cannot be split into {} folds (need at least 2 folds and one pair per fold)",
            emb.same.len(),
            options.folds
        ));
    }
    if !(options.far_target > 0.0 && options.far_target <= 1.0) {
        return invalid(format!(
            "FAR target {} is not in (0, 1]",
            options.far_target
        ));
    }
    let dim = emb.left[0].len();
    if dim == 0 || emb.left.iter().chain(&emb.right).any(|e| e.len() != dim) {
        return invalid(format!(
            "embeddings must all have the same non-zero dimension (first is {dim})"
        ));
    }
    Ok(())
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let metric = match o.metric {
            Metric::SquaredL2 => "squared L2",
            Metric::Cosine => "arccos(cos)/pi",
        };
        let flip = match o.flip {
            FlipMode::None => "none",
            FlipMode::Concat => "concat",
            FlipMode::Sum => "sum+normalise",
        };
        let (tmin, tmax) = self
            .fold_thresholds
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(*t), b.max(*t))
            });
        writeln!(
            f,
            "pairs            {} ({} same, {} different), {} folds",
            self.pairs,
            self.same_pairs,
            self.pairs - self.same_pairs,
            o.folds
        )?;
        writeln!(
            f,
            "options          metric {metric}, flip {flip}, centred {}, subtract mean {}",
            if o.centred { "yes" } else { "no" },
            if o.subtract_mean { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "accuracy         {:.5} ± {:.5}",
            self.accuracy_mean, self.accuracy_std
        )?;
        writeln!(
            f,
            "threshold        {:.4} (fold range {tmin:.2}–{tmax:.2})",
            self.threshold
        )?;
        writeln!(
            f,
            "VAL @ FAR={:<7}{:.5} ± {:.5} (mean FAR {:.5}, threshold {:.4})",
            o.far_target, self.val_mean, self.val_std, self.far_mean, self.far_threshold
        )?;
        writeln!(f, "AUC              {:.4}", self.auc)?;
        write!(f, "EER              {:.4}", self.eer)
    }
}

/// Writes the mean ROC curve as `threshold,fpr,tpr` lines.
pub fn write_roc_csv(report: &EvalReport, path: &Path) -> Result<(), EvalError> {
    let mut text = String::from("threshold,fpr,tpr\n");
    for p in &report.roc {
        text.push_str(&format!("{},{},{}\n", p.threshold, p.fpr, p.tpr));
    }
    std::fs::File::create(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| EvalError::io(path, e))
}
