//! Pair distances exactly as facenet's `distance()` computes them (in f64 on
//! the f32 embeddings), plus the two ways of folding in a mirrored crop.

use serde::{Deserialize, Serialize};

/// facenet's `distance_metric`: 0 = squared L2, 1 = arccos(cosine similarity)/π.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Metric {
    /// Squared L2 (facenet's `distance_metric 0`).
    #[default]
    #[cfg_attr(feature = "cli", value(name = "l2"))]
    SquaredL2,
    /// Angular distance, arccos of the cosine similarity over π (facenet's `distance_metric 1`).
    Cosine,
}

/// How the embedding of the mirrored crop is combined with the original.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FlipMode {
    /// Original crop only.
    #[default]
    None,
    /// facenet `validate_on_lfw --use_flipped_images`: `[emb, emb_flip]`, twice the dimension, not renormalised.
    Concat,
    /// InsightFace: `emb + emb_flip`, then L2-normalised: the database's default recipe (`recipe::Recipe::Flip`).
    Sum,
}

impl Metric {
    /// The metric in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Metric::SquaredL2 => "squared L2",
            Metric::Cosine => "cosine",
        }
    }
}

impl FlipMode {
    /// True when the mirrored crop must be embedded too.
    pub fn needs_mirror(self) -> bool {
        self != FlipMode::None
    }
}

/// Combines an embedding with the one of its mirrored crop according to `mode`.
pub fn combine_flip(original: &[f32], mirrored: &[f32], mode: FlipMode) -> Vec<f32> {
    match mode {
        FlipMode::None => original.to_vec(),
        FlipMode::Concat => original.iter().chain(mirrored).copied().collect(),
        // The database's flip recipe itself, so that `--flip sum` measures what verify and search compare.
        FlipMode::Sum => crate::recipe::Recipe::Flip.fuse(original, Some(mirrored), None),
    }
}

/// Distance of one pair. Cosine follows facenet literally, without clipping the
/// similarity to [-1, 1]: a rounding overshoot gives NaN, which never counts as
/// "same" (`NaN < t` is false), exactly as in numpy.
pub fn distance(a: &[f64], b: &[f64], metric: Metric) -> f64 {
    match metric {
        Metric::SquaredL2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::Cosine => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let norm = norm(a) * norm(b);
            (dot / norm).acos() / std::f64::consts::PI
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Mean of the given embeddings (facenet: `np.mean(concatenate([e1[train], e2[train]]), 0)`).
pub fn mean_embedding<'a>(rows: impl Iterator<Item = &'a [f32]>, dim: usize) -> Vec<f64> {
    let mut sum = vec![0.0f64; dim];
    let mut count = 0usize;
    for row in rows {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += f64::from(*v);
        }
        count += 1;
    }
    sum.iter().map(|s| s / count.max(1) as f64).collect()
}

/// Distances of all pairs after subtracting `mean` (zeros when no mean subtraction).
pub fn pair_distances(
    left: &[Vec<f32>],
    right: &[Vec<f32>],
    mean: &[f64],
    metric: Metric,
) -> Vec<f64> {
    let centred =
        |e: &[f32]| -> Vec<f64> { e.iter().zip(mean).map(|(v, m)| f64::from(*v) - m).collect() };
    left.iter()
        .zip(right)
        .map(|(a, b)| distance(&centred(a), &centred(b), metric))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_l2_and_cosine_by_hand() {
        // (1,0) vs (0,1): squared L2 = 1 + 1 = 2; angle 90° -> arccos(0)/π = 0.5.
        let (a, b) = ([1.0, 0.0], [0.0, 1.0]);
        assert_eq!(distance(&a, &b, Metric::SquaredL2), 2.0);
        assert!((distance(&a, &b, Metric::Cosine) - 0.5).abs() < 1e-15);
        // Cosine ignores scale: (2,0) vs (1,1) is 45° -> 0.25.
        assert!((distance(&[2.0, 0.0], &[1.0, 1.0], Metric::Cosine) - 0.25).abs() < 1e-15);
    }

    #[test]
    fn flip_combinations() {
        let (o, m) = ([0.6f32, 0.8], [0.8f32, 0.6]);
        assert_eq!(combine_flip(&o, &m, FlipMode::None), vec![0.6, 0.8]);
        assert_eq!(
            combine_flip(&o, &m, FlipMode::Concat),
            vec![0.6, 0.8, 0.8, 0.6]
        );
        // Sum (1.4, 1.4) normalised -> (1/√2, 1/√2).
        let s = combine_flip(&o, &m, FlipMode::Sum);
        assert!(s
            .iter()
            .all(|v| (v - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6));
        assert_eq!(
            combine_flip(&[1.0, 0.0], &[-1.0, 0.0], FlipMode::Sum),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn mean_subtraction_moves_distances() {
        // Mean of (1,0),(3,0) = (2,0); centred: (-1,0) and (1,0) -> cosine distance 1 (180°).
        let left = vec![vec![1.0f32, 0.0]];
        let right = vec![vec![3.0f32, 0.0]];
        let mean = mean_embedding(left.iter().chain(&right).map(|v| v.as_slice()), 2);
        assert_eq!(mean, vec![2.0, 0.0]);
        let d = pair_distances(&left, &right, &mean, Metric::Cosine);
        assert!((d[0] - 1.0).abs() < 1e-15);
        assert_eq!(
            pair_distances(&left, &right, &[0.0, 0.0], Metric::Cosine)[0],
            0.0
        );
    }
}
