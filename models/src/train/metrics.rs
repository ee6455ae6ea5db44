//! Held-out figures for a retraining run: verification accuracy over all pairs and rank-1.

use super::mining::squared_distances;

/// Best accuracy over thresholds of "same if d < t", over every pair of `embeddings`
/// (same-person pairs are weighted like different-person pairs, so a skewed split does not
/// reward "always different"). Returns (balanced accuracy, threshold).
pub fn verification_accuracy(embeddings: &[Vec<f32>], labels: &[usize]) -> (f64, f32) {
    let n = labels.len();
    let d = squared_distances(embeddings);
    let mut pairs: Vec<(f32, bool)> = Vec::new();
    for i in 0..n {
        for j in (i + 1)..n {
            pairs.push((d[i * n + j], labels[i] == labels[j]));
        }
    }
    let same_total = pairs.iter().filter(|p| p.1).count().max(1) as f64;
    let diff_total = pairs.iter().filter(|p| !p.1).count().max(1) as f64;
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sweep the threshold upward: past each pair it counts as "same".
    let (mut same_below, mut diff_below) = (0usize, 0usize);
    let mut best = (0.5, 0.0f32);
    for (k, &(dist, same)) in pairs.iter().enumerate() {
        if same {
            same_below += 1;
        } else {
            diff_below += 1;
        }
        let next = pairs.get(k + 1).map_or(dist + 1e-3, |p| p.0);
        let acc = 0.5 * (same_below as f64 / same_total + (diff_total - diff_below as f64) / diff_total);
        if acc > best.0 {
            best = (acc, 0.5 * (dist + next));
        }
    }
    best
}

/// Leave-one-out rank-1: how often a face's nearest other face is of the same person
/// (faces whose person has no other face are not counted).
pub fn rank1(embeddings: &[Vec<f32>], labels: &[usize]) -> f64 {
    let n = labels.len();
    let d = squared_distances(embeddings);
    let (mut right, mut counted) = (0usize, 0usize);
    for i in 0..n {
        if !(0..n).any(|j| j != i && labels[j] == labels[i]) {
            continue;
        }
        counted += 1;
        let nearest = (0..n).filter(|&j| j != i).min_by(|&a, &b| d[i * n + a].total_cmp(&d[i * n + b]));
        if nearest.is_some_and(|j| labels[j] == labels[i]) {
            right += 1;
        }
    }
    right as f64 / counted.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_points_score_perfectly_and_a_swap_costs_rank1() {
        let e = vec![vec![0.0, 0.0], vec![0.1, 0.0], vec![5.0, 0.0], vec![5.1, 0.0]];
        let (acc, t) = verification_accuracy(&e, &[0, 0, 1, 1]);
        assert_eq!(acc, 1.0);
        assert!(t > 0.01 && t < 24.0, "{t}");
        assert_eq!(rank1(&e, &[0, 0, 1, 1]), 1.0);
        // Labels that cut across the geometry: every face's nearest is of the other person.
        assert_eq!(rank1(&e, &[0, 1, 0, 1]), 0.0);
    }
}
