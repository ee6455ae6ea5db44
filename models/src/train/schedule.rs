//! The schedule both trainers follow (`head` on cached features, `network` end to end):
//! seeded batches of P people × K faces, a cosine learning-rate decay, and a score on the
//! held-out people after every epoch.

use std::ops::ControlFlow;

use candle_core::Result;
use rand::seq::SliceRandom;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::head::{EpochLog, MinedLoss, TrainConfig};
use super::mining::MiningStats;

/// Runs `cfg.epochs` × `cfg.batches_per_epoch` steps on `trainee` (what both callbacks
/// change or read). `step` gets a batch's (face, view) picks, the learning rate for it and the
/// shared rng, and returns its mined loss; `score` gives the held-out (verification accuracy,
/// rank-1) after each epoch. `on_epoch` hears each epoch's log and may stop the run after it
/// (`ControlFlow::Break`): the logs so far are returned, and `trainee` holds that epoch's state.
pub fn run_epochs<T>(
    trainee: &mut T,
    cfg: &TrainConfig,
    labels: &[usize],
    views_of: impl Fn(usize) -> usize,
    mut step: impl FnMut(&mut T, &[(usize, usize)], f64, &mut StdRng) -> Result<MinedLoss>,
    mut score: impl FnMut(&mut T) -> Result<(f64, f64)>,
    mut on_epoch: impl FnMut(&EpochLog) -> ControlFlow<()>,
) -> Result<Vec<EpochLog>> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let people = people_with_two_faces(labels);
    if people.len() < 2 {
        candle_core::bail!("retraining needs at least two people with two or more faces each");
    }
    let total_steps = (cfg.epochs * cfg.batches_per_epoch).max(1);
    let person_of: std::collections::HashMap<usize, usize> =
        people.iter().enumerate().flat_map(|(p, faces)| faces.iter().map(move |&f| (f, p))).collect();
    let mut lessons = Lessons::new(people.len());
    let mut logs = Vec::new();
    for epoch in 0..cfg.epochs {
        let mut tally = EpochTally::default();
        let weights = match cfg.people {
            PeopleSampling::Uniform => None,
            PeopleSampling::Hard { floor } => Some(lessons.weights(floor)),
        };
        for batch in 0..cfg.batches_per_epoch {
            let progress = (epoch * cfg.batches_per_epoch + batch) as f64 / total_steps as f64;
            let picks = sample_batch(&people, weights.as_deref(), &views_of, cfg, &mut rng);
            let mined = step(trainee, &picks, cosine_rate(cfg.learning_rate, progress), &mut rng)?;
            for &(anchor, active) in &mined.anchors {
                lessons.count(person_of[&picks[anchor].0], active);
            }
            tally.add(&mined)?;
        }
        lessons.end_epoch();
        let log = tally.finish(epoch + 1, cfg.batches_per_epoch, score(trainee)?);
        let flow = on_epoch(&log);
        logs.push(log);
        if flow.is_break() {
            break;
        }
    }
    Ok(logs)
}

/// The learning rate at `progress` (0..1) through training: cosine decay to 1% of `initial`.
pub fn cosine_rate(initial: f64, progress: f64) -> f64 {
    initial * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

/// Sums over an epoch's batches, for its `EpochLog`.
#[derive(Default)]
pub struct EpochTally {
    loss_sum: f64,
    active: usize,
    triplets: usize,
    mining: MiningStats,
}

impl EpochTally {
    /// Counts one batch's loss, triplets and mining figures into the epoch's tally.
    pub fn add(&mut self, batch: &MinedLoss) -> Result<()> {
        self.mining += batch.mining;
        if let Some(loss) = &batch.loss {
            self.loss_sum += loss.to_scalar::<f32>()? as f64;
        }
        self.active += batch.active;
        self.triplets += batch.triplets;
        Ok(())
    }

    /// The log of epoch `epoch` (from 1) of `batches` batches, with held-out (accuracy, rank-1).
    pub fn finish(&self, epoch: usize, batches: usize, (val_accuracy, val_rank1): (f64, f64)) -> EpochLog {
        EpochLog {
            epoch,
            loss: self.loss_sum / batches.max(1) as f64,
            active_fraction: self.active as f64 / self.triplets.max(1) as f64,
            fallback_fraction: self.mining.fallback as f64 / self.mining.pairs.max(1) as f64,
            val_accuracy,
            val_rank1,
        }
    }
}

/// Face indices grouped by label, for the labels with two or more faces.
pub fn people_with_two_faces(labels: &[usize]) -> Vec<Vec<usize>> {
    let mut by_person: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        by_person.entry(l).or_default().push(i);
    }
    by_person.into_values().filter(|faces| faces.len() >= 2).collect()
}

/// How each batch's people are drawn (`fdb retrain --people-sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum PeopleSampling {
    /// Every person alike (the default).
    #[default]
    Uniform,
    /// Hard people first: a person is drawn in proportion to the share of their triplets that
    /// were active (loss > 0) the last epoch they were drawn in, except that `floor` of the
    /// draws is spread evenly over everyone (so that people who teach nothing now are still
    /// seen). The first epoch is uniform.
    Hard {
        /// The evenly spread share of the draws, in (0, 1].
        floor: f64,
    },
}

/// The floor of `hard` without one.
pub const DEFAULT_PEOPLE_FLOOR: f64 = 0.25;

impl std::str::FromStr for PeopleSampling {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("unknown --people-sampling {s:?}: use uniform, hard or hard:FLOOR (a share in (0, 1], e.g. hard:0.25)");
        match s {
            "uniform" => Ok(Self::Uniform),
            "hard" => Ok(Self::Hard { floor: DEFAULT_PEOPLE_FLOOR }),
            other => match other.strip_prefix("hard:").map(str::parse::<f64>) {
                Some(Ok(floor)) if floor > 0.0 && floor <= 1.0 => Ok(Self::Hard { floor }),
                _ => Err(bad()),
            },
        }
    }
}

/// What each person taught: their triplets and active triplets in the running epoch, and their
/// active share the last epoch they were drawn in.
struct Lessons {
    running: Vec<(usize, usize)>,
    share: Vec<Option<f64>>,
}

impl Lessons {
    fn new(people: usize) -> Self {
        Self { running: vec![(0, 0); people], share: vec![None; people] }
    }

    fn count(&mut self, person: usize, active: bool) {
        self.running[person].0 += 1;
        self.running[person].1 += usize::from(active);
    }

    fn end_epoch(&mut self) {
        for (share, running) in self.share.iter_mut().zip(&mut self.running) {
            if running.0 > 0 {
                *share = Some(running.1 as f64 / running.0 as f64);
            }
            *running = (0, 0);
        }
    }

    /// Each person's chance weight: `floor` / N + (1 − `floor`) · share / Σ shares, a person
    /// not yet measured counting with the mean share. Even when nothing was measured, or
    /// nobody taught anything.
    fn weights(&self, floor: f64) -> Vec<f64> {
        let n = self.share.len() as f64;
        let measured: Vec<f64> = self.share.iter().flatten().copied().collect();
        let mean = if measured.is_empty() { 1.0 } else { measured.iter().sum::<f64>() / measured.len() as f64 };
        let shares: Vec<f64> = self.share.iter().map(|s| s.unwrap_or(mean)).collect();
        let total: f64 = shares.iter().sum();
        if total <= 0.0 {
            return vec![1.0 / n; shares.len()];
        }
        shares.iter().map(|s| floor / n + (1.0 - floor) * s / total).collect()
    }
}

/// P people × up to K faces each, and a random view of each face (of `views_of(face)`). The
/// people are drawn uniformly, or by `weights` (one per person) without replacement.
pub fn sample_batch(
    people: &[Vec<usize>],
    weights: Option<&[f64]>,
    views_of: impl Fn(usize) -> usize,
    cfg: &TrainConfig,
    rng: &mut impl Rng,
) -> Vec<(usize, usize)> {
    let count = cfg.people_per_batch.min(people.len());
    let chosen: Vec<&Vec<usize>> = match weights {
        None => people.choose_multiple(rng, count).collect(),
        Some(w) => {
            let index: Vec<usize> = (0..people.len()).collect();
            match index.choose_multiple_weighted(rng, count, |&i| w[i]) {
                Ok(drawn) => drawn.map(|&i| &people[i]).collect(),
                // Weights are positive and finite by construction (the floor); should they not
                // be, the batch is drawn uniformly.
                Err(_) => people.choose_multiple(rng, count).collect(),
            }
        }
    };
    let mut picks = Vec::new();
    for faces in chosen {
        for &face in faces.choose_multiple(rng, cfg.faces_per_person.min(faces.len())) {
            picks.push((face, rng.gen_range(0..views_of(face).max(1))));
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hard_people_are_weighted_by_their_active_share_with_a_floor_for_the_rest() {
        let mut lessons = Lessons::new(4);
        assert_eq!(lessons.weights(0.2), vec![0.25; 4], "nothing measured: even");
        // Person 0: 3 of 4 triplets active; 1: 1 of 4; 2: none of 4; 3 was not drawn.
        for (person, active) in [(0, 3), (1, 1), (2, 0)] {
            for t in 0..4 {
                lessons.count(person, t < active);
            }
        }
        lessons.end_epoch();
        // Shares 0.75, 0.25, 0 and the mean 1/3 for person 3: total 4/3.
        // 0.05 + 0.8 · share / (4/3): 0.5, 0.2, 0.05, 0.25.
        let w = lessons.weights(0.2);
        for (got, want) in w.iter().zip([0.5, 0.2, 0.05, 0.25]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        // An epoch in which only person 2 is drawn, and teaches: the others keep their shares.
        lessons.count(2, true);
        lessons.end_epoch();
        assert_eq!(lessons.share, vec![Some(0.75), Some(0.25), Some(1.0), None]);
    }

    #[test]
    fn weighted_batches_draw_the_heavy_people_first_and_the_rest_sometimes() {
        let people: Vec<Vec<usize>> = (0..4).map(|p| vec![2 * p, 2 * p + 1]).collect();
        let cfg = TrainConfig { people_per_batch: 1, faces_per_person: 2, ..TrainConfig::default() };
        let weights = [0.85, 0.05, 0.05, 0.05];
        let mut rng = StdRng::seed_from_u64(3);
        let mut drawn = [0usize; 4];
        for _ in 0..2000 {
            let picks = sample_batch(&people, Some(&weights), |_| 1, &cfg, &mut rng);
            drawn[picks[0].0 / 2] += 1;
        }
        assert!((1550..1850).contains(&drawn[0]), "{drawn:?}");
        assert!(drawn[1..].iter().all(|&d| (50..200).contains(&d)), "{drawn:?}");
    }

    #[test]
    fn people_sampling_parses() {
        assert_eq!("uniform".parse::<PeopleSampling>(), Ok(PeopleSampling::Uniform));
        assert_eq!("hard".parse::<PeopleSampling>(), Ok(PeopleSampling::Hard { floor: DEFAULT_PEOPLE_FLOOR }));
        assert_eq!("hard:0.5".parse::<PeopleSampling>(), Ok(PeopleSampling::Hard { floor: 0.5 }));
        for bad in ["hard:0", "hard:1.5", "hard:x", "easy"] {
            assert!(bad.parse::<PeopleSampling>().unwrap_err().contains("uniform, hard or hard:FLOOR"), "{bad}");
        }
    }
}
