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
    let mut logs = Vec::new();
    for epoch in 0..cfg.epochs {
        let mut tally = EpochTally::default();
        for batch in 0..cfg.batches_per_epoch {
            let progress = (epoch * cfg.batches_per_epoch + batch) as f64 / total_steps as f64;
            let picks = sample_batch(&people, &views_of, cfg, &mut rng);
            tally.add(&step(trainee, &picks, cosine_rate(cfg.learning_rate, progress), &mut rng)?)?;
        }
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

/// P people × up to K faces each, and a random view of each face (of `views_of(face)`).
pub fn sample_batch(
    people: &[Vec<usize>],
    views_of: impl Fn(usize) -> usize,
    cfg: &TrainConfig,
    rng: &mut impl Rng,
) -> Vec<(usize, usize)> {
    let mut picks = Vec::new();
    for faces in people.choose_multiple(rng, cfg.people_per_batch.min(people.len())) {
        for &face in faces.choose_multiple(rng, cfg.faces_per_person.min(faces.len())) {
            picks.push((face, rng.gen_range(0..views_of(face).max(1))));
        }
    }
    picks
}
