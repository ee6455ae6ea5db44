//! Online triplet mining inside one batch.
//!
//! For every anchor–positive pair (two faces of one person) a negative is chosen:
//! - `SemiHard`: the nearest negative that is still farther than the positive. It is
//!   semi-hard when it lies inside the margin, ‖a−p‖² < ‖a−n‖² < ‖a−p‖² + α. When no negative
//!   lies inside, the same rule gives the hardest negative beyond the margin (counted as a
//!   fallback); when every negative is nearer than the positive, the farthest of them
//!   (also a fallback).
//! - `Hard`: the nearest negative of all.
//! - `Random`: any negative, uniformly.

use rand::Rng;

/// How the negative of an anchor–positive pair is chosen (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mining {
    /// The nearest negative still farther than the positive (FaceNet's choice).
    #[default]
    SemiHard,
    /// The nearest negative of all.
    Hard,
    /// Any negative, uniformly.
    Random,
}

impl std::str::FromStr for Mining {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "semi-hard" | "semihard" => Ok(Self::SemiHard),
            "hard" => Ok(Self::Hard),
            "random" => Ok(Self::Random),
            other => Err(format!("unknown mining strategy {other:?}: use semi-hard, hard or random")),
        }
    }
}

/// Three faces of a batch, by index: two of one person and one of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triplet {
    /// The face the others are compared with.
    pub anchor: usize,
    /// Another face of the anchor's person.
    pub positive: usize,
    /// A face of another person.
    pub negative: usize,
}

/// What mining found in a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MiningStats {
    /// Anchor–positive pairs seen.
    pub pairs: usize,
    /// Pairs whose negative was semi-hard.
    pub semi_hard: usize,
    /// Pairs with no semi-hard negative, which fell back.
    pub fallback: usize,
}

impl std::ops::AddAssign for MiningStats {
    fn add_assign(&mut self, o: Self) {
        self.pairs += o.pairs;
        self.semi_hard += o.semi_hard;
        self.fallback += o.fallback;
    }
}

/// Squared L2 distances between all rows, row-major `n × n`.
pub fn squared_distances(rows: &[Vec<f32>]) -> Vec<f32> {
    let n = rows.len();
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let v: f32 = rows[i].iter().zip(&rows[j]).map(|(a, b)| (a - b) * (a - b)).sum();
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    d
}

/// Choose a triplet for every anchor–positive pair of the batch, given the `n × n` squared
/// distances and each face's label.
pub fn mine(dist: &[f32], labels: &[usize], alpha: f32, strategy: Mining, rng: &mut impl Rng) -> (Vec<Triplet>, MiningStats) {
    let n = labels.len();
    assert_eq!(dist.len(), n * n, "distance matrix and labels disagree");
    let mut triplets = Vec::new();
    let mut stats = MiningStats::default();
    for a in 0..n {
        let negatives: Vec<usize> = (0..n).filter(|&j| labels[j] != labels[a]).collect();
        if negatives.is_empty() {
            continue;
        }
        for p in (0..n).filter(|&p| p != a && labels[p] == labels[a]) {
            stats.pairs += 1;
            let d_ap = dist[a * n + p];
            let d = |j: usize| dist[a * n + j];
            let negative = match strategy {
                Mining::Hard => min_by_distance(negatives.iter().copied(), d),
                Mining::Random => Some(negatives[rng.gen_range(0..negatives.len())]),
                Mining::SemiHard => {
                    let farther = min_by_distance(negatives.iter().copied().filter(|&j| d(j) > d_ap), d);
                    match farther {
                        Some(j) if d(j) < d_ap + alpha => {
                            stats.semi_hard += 1;
                            Some(j)
                        }
                        Some(j) => {
                            stats.fallback += 1;
                            Some(j)
                        }
                        None => {
                            stats.fallback += 1;
                            negatives.iter().copied().max_by(|&x, &y| d(x).total_cmp(&d(y)))
                        }
                    }
                }
            };
            if let Some(negative) = negative {
                triplets.push(Triplet { anchor: a, positive: p, negative });
            }
        }
    }
    (triplets, stats)
}

fn min_by_distance(candidates: impl Iterator<Item = usize>, d: impl Fn(usize) -> f32) -> Option<usize> {
    candidates.min_by(|&x, &y| d(x).total_cmp(&d(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Faces 0,1 are person A, 2 is person B, 3 is person C; α = 0.2.
    /// From anchor 0: d(0,1) = 0.5; negatives d(0,2) = 0.6 (semi-hard: 0.5 < 0.6 < 0.7), d(0,3) = 0.4 (hard).
    /// From anchor 1: d(1,0) = 0.5; negatives d(1,2) = 1.5 (beyond the margin), d(1,3) = 0.9 (beyond, nearer).
    fn matrix() -> (Vec<f32>, Vec<usize>) {
        #[rustfmt::skip]
        let d = vec![
            0.0, 0.5, 0.6, 0.4,
            0.5, 0.0, 1.5, 0.9,
            0.6, 1.5, 0.0, 1.0,
            0.4, 0.9, 1.0, 0.0,
        ];
        (d, vec![0, 0, 1, 2])
    }

    #[test]
    fn semi_hard_picks_the_negative_inside_the_margin_and_counts_fallbacks() {
        let (d, labels) = matrix();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (t, stats) = mine(&d, &labels, 0.2, Mining::SemiHard, &mut rng);
        assert_eq!(
            t,
            vec![Triplet { anchor: 0, positive: 1, negative: 2 }, Triplet { anchor: 1, positive: 0, negative: 3 }]
        );
        assert_eq!(stats, MiningStats { pairs: 2, semi_hard: 1, fallback: 1 });
    }

    #[test]
    fn hard_picks_the_nearest_negative() {
        let (d, labels) = matrix();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (t, _) = mine(&d, &labels, 0.2, Mining::Hard, &mut rng);
        assert_eq!(t.iter().map(|t| t.negative).collect::<Vec<_>>(), vec![3, 3]);
    }

    #[test]
    fn when_every_negative_is_nearer_than_the_positive_the_farthest_is_taken() {
        #[rustfmt::skip]
        let d = vec![
            0.0, 1.0, 0.3, 0.2,
            1.0, 0.0, 0.9, 0.95,
            0.3, 0.9, 0.0, 1.0,
            0.2, 0.95, 1.0, 0.0,
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (t, stats) = mine(&d, &[0, 0, 1, 2], 0.2, Mining::SemiHard, &mut rng);
        assert_eq!(t[0], Triplet { anchor: 0, positive: 1, negative: 2 });
        assert_eq!(t[1], Triplet { anchor: 1, positive: 0, negative: 3 });
        assert_eq!(stats.fallback, 2);
    }

    #[test]
    fn random_only_ever_picks_negatives() {
        let (d, labels) = matrix();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let (t, _) = mine(&d, &labels, 0.2, Mining::Random, &mut rng);
            assert!(t.iter().all(|t| labels[t.negative] != labels[t.anchor]));
        }
    }

    #[test]
    fn distances_are_symmetric_squared_l2() {
        let d = squared_distances(&[vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0, 1.0]]);
        assert_eq!(d, vec![0.0, 25.0, 1.0, 25.0, 0.0, 18.0, 1.0, 18.0, 0.0]);
    }
}
