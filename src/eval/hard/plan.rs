//! Which LFW photos make up the hard-conditions set, and what is done to each.
//!
//! LFW has too few people who are absent from `pairs.txt` to enrol (one person not in it has
//! more than five photos), so the rule is: **enrolled people** are those with at least
//! [`MIN_FREE_IMAGES`] photos that `pairs.txt` never references, and only those unreferenced
//! photos are used (the set is image-disjoint from the clean benchmark); **strangers** are
//! people who appear nowhere in `pairs.txt` (person-disjoint). Both pools are split by person
//! into a tuning half and a held-out half with a fixed seed, so the held-out people never
//! change whatever `--seed` a run uses; `--seed` draws the people, photos and alterations.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::Condition;
use crate::eval::dataset::list_people;
use crate::eval::pairs::{image_path, read_pairs};
use crate::eval::EvalError;

/// Photos a person needs outside `pairs.txt` to be enrolled (5 gallery + at least 3 probes).
pub const MIN_FREE_IMAGES: usize = 8;
/// The tuning/held-out split never moves: it is drawn with this seed, not the run's.
const SPLIT_SEED: u64 = 0x16_4a_12d;

/// Which half of LFW's people a run draws from; the halves never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Split {
    /// Look at it as often as you like while choosing defaults.
    Tune,
    /// Measure once, at the end.
    Holdout,
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// People enrolled.
    pub people: usize,
    /// Gallery photos enrolled per person.
    pub gallery_per_person: usize,
    /// Probes per person at most (one condition each).
    pub probes_per_person: usize,
    /// Strangers (people never enrolled) searched.
    pub strangers: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        // ~50 people (most have 3–5 probes left after the gallery) + 100 strangers: a few
        // minutes on 2 cores.
        Sizes { people: 50, gallery_per_person: 5, probes_per_person: 10, strangers: 100 }
    }
}

/// One altered photo to search for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The clean LFW photo the probe is made from.
    pub source: PathBuf,
    /// The person's name, or `None` for a stranger.
    pub person: Option<String>,
    /// What is done to the photo.
    pub condition: Condition,
    /// Seeds the alteration's own random draws (γ, ramp direction).
    pub seed: u64,
}

/// A person to enrol and their gallery photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    /// The person's name (their LFW folder).
    pub name: String,
    /// Their clean gallery photos.
    pub gallery: Vec<PathBuf>,
}

/// Everything a run does, drawn from a seed: who is enrolled, and which probes and strangers are searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardSetPlan {
    /// Which half of the people it draws from.
    pub split: Split,
    /// The seed of the draw.
    pub seed: u64,
    /// The people enrolled.
    pub people: Vec<Enrolled>,
    /// Altered photos of enrolled people.
    pub probes: Vec<Probe>,
    /// Altered photos of people never enrolled.
    pub strangers: Vec<Probe>,
}

/// The people of a dataset, by which photos `pairs.txt` leaves free.
struct Pools {
    /// (name, photos not in the pairs), enough of them to enrol.
    enrollable: Vec<(String, Vec<PathBuf>)>,
    /// People absent from the pairs (one photo each is used).
    strangers: Vec<(String, PathBuf)>,
}

fn pools(lfw_dir: &Path, pairs_file: &Path) -> Result<Pools, EvalError> {
    let pairs = read_pairs(pairs_file)?;
    let mut used: HashSet<PathBuf> = HashSet::new();
    let mut named: HashSet<String> = HashSet::new();
    for p in &pairs.pairs {
        for image in [&p.left, &p.right] {
            used.insert(image_path(lfw_dir, image));
            named.insert(image.name.clone());
        }
    }
    let mut enrollable = Vec::new();
    let mut strangers = Vec::new();
    for person in list_people(lfw_dir)? {
        let free: Vec<PathBuf> = person.images.iter().filter(|p| !used.contains(*p)).cloned().collect();
        if free.len() >= MIN_FREE_IMAGES {
            enrollable.push((person.name, free));
        } else if !named.contains(&person.name) {
            strangers.push((person.name, person.images[0].clone()));
        }
    }
    Ok(Pools { enrollable, strangers })
}

/// The half of `items` (sorted by the caller) that belongs to `split`, by the fixed split seed.
fn split_half<T: Clone>(items: &[T], split: Split) -> Vec<T> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(SPLIT_SEED));
    let half = items.len() / 2;
    let chosen = match split {
        Split::Tune => &order[..half],
        Split::Holdout => &order[half..],
    };
    let mut chosen = chosen.to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

/// Draws the run: `sizes.people` people of the split with their gallery and altered probes, and
/// `sizes.strangers` strangers. Conditions go round-robin over a shuffled order so each gets an
/// equal share of probes (and of strangers).
pub fn plan(lfw_dir: &Path, pairs_file: &Path, split: Split, seed: u64, sizes: Sizes) -> Result<HardSetPlan, EvalError> {
    let pools = pools(lfw_dir, pairs_file)?;
    let mut enrollable = split_half(&pools.enrollable, split);
    let mut strangers = split_half(&pools.strangers, split);
    let fail = |reason: String| EvalError::Dataset { dir: lfw_dir.to_path_buf(), reason };
    if enrollable.len() < sizes.people {
        return Err(fail(format!(
            "the {split:?} split has {} people with ≥ {MIN_FREE_IMAGES} photos outside {}, {} asked for",
            enrollable.len(),
            pairs_file.display(),
            sizes.people
        )));
    }
    if strangers.len() < sizes.strangers {
        return Err(fail(format!("the {split:?} split has {} strangers, {} asked for", strangers.len(), sizes.strangers)));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    enrollable.shuffle(&mut rng);
    enrollable.truncate(sizes.people);
    enrollable.sort();
    strangers.shuffle(&mut rng);
    strangers.truncate(sizes.strangers);
    strangers.sort();

    let mut people = Vec::new();
    let mut probes = Vec::new();
    for (name, mut photos) in enrollable {
        photos.shuffle(&mut rng);
        let gallery: Vec<PathBuf> = photos.drain(..sizes.gallery_per_person.min(photos.len())).collect();
        photos.truncate(sizes.probes_per_person);
        photos.sort();
        probes.extend(photos.into_iter().map(|source| Probe { source, person: Some(name.clone()), condition: Condition::ALL[0], seed: 0 }));
        people.push(Enrolled { name, gallery });
    }
    let mut strangers: Vec<Probe> =
        strangers.into_iter().map(|(_, source)| Probe { source, person: None, condition: Condition::ALL[0], seed: 0 }).collect();
    assign_conditions(&mut probes, &mut rng);
    assign_conditions(&mut strangers, &mut rng);
    Ok(HardSetPlan { split, seed, people, probes, strangers })
}

fn assign_conditions(probes: &mut [Probe], rng: &mut StdRng) {
    let mut order: Vec<usize> = (0..probes.len()).collect();
    order.shuffle(rng);
    for (k, i) in order.into_iter().enumerate() {
        probes[i].condition = Condition::ALL[k % Condition::ALL.len()];
        probes[i].seed = rng.gen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_halves_are_disjoint_fixed_and_cover_everything() {
        let items: Vec<u32> = (0..101).collect();
        let tune = split_half(&items, Split::Tune);
        let holdout = split_half(&items, Split::Holdout);
        assert_eq!(tune.len(), 50);
        assert_eq!(holdout.len(), 51);
        let mut all: Vec<u32> = tune.iter().chain(&holdout).copied().collect();
        all.sort();
        assert_eq!(all, items);
        assert_eq!(split_half(&items, Split::Tune), tune, "the split does not move between calls");
    }

    #[test]
    fn conditions_are_shared_out_evenly() {
        let mut probes: Vec<Probe> = (0..70)
            .map(|i| Probe { source: PathBuf::from(format!("{i}")), person: None, condition: Condition::ALL[0], seed: 0 })
            .collect();
        assign_conditions(&mut probes, &mut StdRng::seed_from_u64(1));
        for c in Condition::ALL {
            assert_eq!(probes.iter().filter(|p| p.condition == c).count(), 70 / Condition::ALL.len(), "{c:?}");
        }
    }
}
