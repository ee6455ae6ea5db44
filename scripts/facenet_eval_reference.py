#!/usr/bin/env python3
"""Dev tool: reference figures for tests/eval_reference.rs.

Re-implements the semantics of davidsandberg/facenet's `lfw.evaluate`
(`calculate_roc`, `calculate_val`, `distance`) and validate_on_lfw's AUC/EER
with numpy, scipy and sklearn, on embeddings from a small integer LCG that the
Rust test reproduces bit for bit. Needs: pip install numpy scipy scikit-learn.
"""
import json
import math

import numpy as np
from scipy import interpolate
from scipy.optimize import brentq
from sklearn import metrics
from sklearn.model_selection import KFold


class Lcg:
    """glibc-style LCG; values k/12 are exact enough (same f64 on both sides) in f32 and f64."""

    def __init__(self, seed):
        self.state = seed

    def next_int(self, n):
        self.state = (self.state * 1103515245 + 12345) % (1 << 31)
        return (self.state >> 16) % n


def synthetic_pairs(n_pairs, dim, seed):
    rng = Lcg(seed)
    e1, e2, same = [], [], []
    for _ in range(n_pairs):
        left = [(rng.next_int(9) - 4) / 12 for _ in range(dim)]
        is_same = rng.next_int(2) == 0
        if is_same:
            right = [v + (rng.next_int(7) - 3) / 12 for v in left]
        else:
            right = [(rng.next_int(9) - 4) / 12 for _ in range(dim)]
        e1.append(left)
        e2.append(right)
        same.append(is_same)
    # Embeddings are float32 (as a network gives them), evaluated in float64 as facenet does.
    as_f32 = lambda rows: np.array(rows, dtype=np.float32).astype(np.float64)
    return as_f32(e1), as_f32(e2), np.array(same)


def distance(a, b, metric):
    if metric == 0:
        return np.sum(np.square(a - b), 1)
    dot = np.sum(a * b, axis=1)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.arccos(dot / norm) / math.pi


def rates(threshold, dist, issame):
    pred = np.less(dist, threshold)
    tp = np.sum(pred & issame)
    fp = np.sum(pred & ~issame)
    tn = np.sum(~pred & ~issame)
    fn = np.sum(~pred & issame)
    tpr = 0 if tp + fn == 0 else tp / (tp + fn)
    fpr = 0 if fp + tn == 0 else fp / (fp + tn)
    return tpr, fpr, (tp + tn) / dist.size


def val_far(threshold, dist, issame):
    pred = np.less(dist, threshold)
    return np.sum(pred & issame) / np.sum(issame), np.sum(pred & ~issame) / np.sum(~issame)


def fold_distances(e1, e2, train, metric, subtract_mean):
    mean = np.mean(np.concatenate([e1[train], e2[train]]), axis=0) if subtract_mean else 0.0
    return distance(e1 - mean, e2 - mean, metric)


def evaluate(e1, e2, issame, metric, subtract_mean, far_target, folds=10):
    kfold = KFold(n_splits=folds, shuffle=False)
    thresholds = np.arange(0, 4, 0.01)
    tprs = np.zeros((folds, len(thresholds)))
    fprs = np.zeros((folds, len(thresholds)))
    acc, best = np.zeros(folds), np.zeros(folds)
    for f, (train, test) in enumerate(kfold.split(np.arange(len(issame)))):
        dist = fold_distances(e1, e2, train, metric, subtract_mean)
        train_acc = [rates(t, dist[train], issame[train])[2] for t in thresholds]
        b = int(np.argmax(train_acc))
        for i, t in enumerate(thresholds):
            tprs[f, i], fprs[f, i], _ = rates(t, dist[test], issame[test])
        acc[f] = rates(thresholds[b], dist[test], issame[test])[2]
        best[f] = thresholds[b]
    tpr, fpr = np.mean(tprs, 0), np.mean(fprs, 0)

    vthresholds = np.arange(0, 4, 0.001)
    val, far, vthr = np.zeros(folds), np.zeros(folds), np.zeros(folds)
    for f, (train, test) in enumerate(kfold.split(np.arange(len(issame)))):
        dist = fold_distances(e1, e2, train, metric, subtract_mean)
        far_train = np.array([val_far(t, dist[train], issame[train])[1] for t in vthresholds])
        if np.max(far_train) >= far_target:
            threshold = slinear(far_train, vthresholds, far_target)
        else:
            threshold = 0.0
        val[f], far[f] = val_far(threshold, dist[test], issame[test])
        vthr[f] = threshold
    return {
        "accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
        "fold_thresholds": best.tolist(),
        "val_mean": float(np.mean(val)), "val_std": float(np.std(val)), "far_mean": float(np.mean(far)),
        "fold_far_thresholds": vthr.tolist(),
        "auc": float(metrics.auc(fpr, tpr)),
        "eer": float(brentq(lambda x: 1.0 - x - interpolate.interp1d(fpr, tpr)(x), 0.0, 1.0)),
    }


def slinear(x, y, v):
    """interp1d(x, y, kind='slinear')(v) as scipy < 1.13 computed it for x with
    repeats (facenet's FAR curves always have them); newer scipy refuses
    repeated x. Old make_interp_spline(k=1) built exactly this B-spline."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    try:
        return float(interpolate.interp1d(x, y, kind="slinear")(v))
    except ValueError as e:
        if "duplicates" not in str(e):
            raise
    if not x[0] <= v <= x[-1]:
        raise ValueError("out of range")
    return float(interpolate.BSpline.construct_fast(np.r_[x[0], x, x[-1]], y, 1)(v))


def scipy_edge_cases():
    f = lambda x, y, v: slinear(x, y, v)
    return {
        "rising": f([0, 0, .5, .5, 1], [0, 1, 2, 3, 4], .25),
        "plateau": f([0, 0, .5, .5, 1], [0, 1, 2, 3, 4], .5),
        "top": f([0, 0, .5, .5, 1], [0, 1, 2, 3, 4], 1.0),
        "flat_end": f([0, 1, 1], [0, 1, 2], 1.0),
        "arange_399": bool(np.arange(0, 4, 0.01)[399] == 399 * 0.01),
        "arange_len": [len(np.arange(0, 4, 0.01)), len(np.arange(0, 4, 0.001))],
        "arange_exact": bool(np.all(np.arange(0, 4, 0.001) == np.arange(4000) * 0.001)),
    }


if __name__ == "__main__":
    e1, e2, same = synthetic_pairs(600, 8, 2024)
    out = {"same_pairs": int(same.sum()), "first_distance": float(distance(e1[:1], e2[:1], 0)[0]), "scipy": scipy_edge_cases()}
    for name, metric, sub, far in [("l2", 0, False, 1e-3), ("cosine_mean", 1, True, 1e-3), ("l2_far5", 0, False, 0.05)]:
        out[name] = evaluate(e1, e2, same, metric, sub, far)
    print(json.dumps(out, indent=1))
