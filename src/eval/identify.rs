//! Closed-set identification: each person's first N images form the gallery,
//! the rest are probes; a probe is correct at rank k when its identity is
//! among the k nearest distinct gallery identities.

use serde::{Deserialize, Serialize};

use super::dataset::PersonImages;
use super::source::{embed_paths, EmbedRun, EmbedSource};
use super::EvalError;
use std::path::PathBuf;

/// Images labelled by the index of their person in `names`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GallerySplit {
    /// The people, in label order.
    pub names: Vec<String>,
    /// Gallery images with their person's label.
    pub gallery: Vec<(usize, PathBuf)>,
    /// Probe images with their person's label.
    pub probes: Vec<(usize, PathBuf)>,
}

/// First `n_gallery` images (sorted) of each person to the gallery, the rest
/// to probes; people with no more than `n_gallery` images only enrol.
pub fn split_gallery(people: &[PersonImages], n_gallery: usize) -> GallerySplit {
    let mut split = GallerySplit {
        names: vec![],
        gallery: vec![],
        probes: vec![],
    };
    for (label, person) in people.iter().enumerate() {
        split.names.push(person.name.clone());
        for (i, image) in person.images.iter().enumerate() {
            let side = if i < n_gallery {
                &mut split.gallery
            } else {
                &mut split.probes
            };
            side.push((label, image.clone()));
        }
    }
    split
}

/// Closed-set identification figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentifyReport {
    /// Probes scored.
    pub probes: usize,
    /// Fraction of probes whose nearest person is right.
    pub rank1: f64,
    /// Fraction of probes whose person is among the 5 nearest.
    pub rank5: f64,
}

/// Rank-1 and rank-5 accuracy. `ranked(i)` returns the gallery labels nearest
/// to probe `i` first (repeats allowed: only the first of each label counts).
pub fn identification_accuracy(
    probe_labels: &[usize],
    mut ranked: impl FnMut(usize) -> Vec<usize>,
) -> IdentifyReport {
    let (mut hits1, mut hits5) = (0usize, 0usize);
    for (i, truth) in probe_labels.iter().enumerate() {
        let mut distinct: Vec<usize> = Vec::with_capacity(5);
        for label in ranked(i) {
            if !distinct.contains(&label) {
                distinct.push(label);
                if distinct.len() == 5 {
                    break;
                }
            }
        }
        let position = distinct.iter().position(|l| l == truth);
        hits1 += usize::from(position == Some(0));
        hits5 += usize::from(position.is_some());
    }
    let n = probe_labels.len();
    let rate = |hits: usize| if n == 0 { 0.0 } else { hits as f64 / n as f64 };
    IdentifyReport {
        probes: n,
        rank1: rate(hits1),
        rank5: rate(hits5),
    }
}

/// Gallery labels ordered by distance to `query` (exhaustive search), for use
/// as `ranked` without a database.
pub fn brute_force_ranking(
    gallery: &[(usize, Vec<f32>)],
    query: &[f32],
    metric: super::Metric,
) -> Vec<usize> {
    let q: Vec<f64> = query.iter().map(|v| f64::from(*v)).collect();
    let mut scored: Vec<(f64, usize)> = gallery
        .iter()
        .map(|(label, e)| {
            let e: Vec<f64> = e.iter().map(|v| f64::from(*v)).collect();
            (super::distance::distance(&q, &e, metric), *label)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().map(|(_, label)| label).collect()
}

/// The protocol without a database: embeds gallery and probes through
/// `source` (cache and flip as in `run`) and ranks by exhaustive search.
pub fn identify_exhaustive(
    split: &GallerySplit,
    source: &mut dyn EmbedSource,
    run: EmbedRun,
    metric: super::Metric,
) -> Result<IdentifyReport, EvalError> {
    let paths: Vec<PathBuf> = split
        .gallery
        .iter()
        .chain(&split.probes)
        .map(|(_, p)| p.clone())
        .collect();
    let mut embeddings = embed_paths(&paths, source, run)?;
    let probes = embeddings.split_off(split.gallery.len());
    let gallery: Vec<(usize, Vec<f32>)> = split
        .gallery
        .iter()
        .map(|(l, _)| *l)
        .zip(embeddings)
        .collect();
    let labels: Vec<usize> = split.probes.iter().map(|(l, _)| *l).collect();
    Ok(identification_accuracy(&labels, |i| {
        brute_force_ranking(&gallery, &probes[i], metric)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Metric;

    #[test]
    fn split_keeps_first_n_in_gallery() {
        let person = |name: &str, n: usize| PersonImages {
            name: name.into(),
            images: (0..n)
                .map(|i| PathBuf::from(format!("{name}/{i}")))
                .collect(),
        };
        let split = split_gallery(&[person("A", 3), person("B", 1)], 1);
        assert_eq!(
            split.gallery,
            vec![(0, PathBuf::from("A/0")), (1, PathBuf::from("B/0"))]
        );
        assert_eq!(
            split.probes,
            vec![(0, PathBuf::from("A/1")), (0, PathBuf::from("A/2"))]
        );
    }

    #[test]
    fn rank1_and_rank5_by_hand() {
        // Gallery on a line: label 0 at x=0 (twice), label 1..=6 at x=1..=6.
        let mut gallery = vec![(0, vec![0.0f32]), (0, vec![0.1f32])];
        gallery.extend((1..=6).map(|l| (l, vec![l as f32])));
        // Probe at 0.2 with truth 0: nearest is label 0 -> rank-1 hit.
        // Probe at 3.1 with truth 1: distinct order 3,4,2,5,1 -> rank-5 hit only (5th).
        // Probe at 6.0 with truth 0: order 6,5,4,3,2 -> miss.
        let probes = [(0usize, vec![0.2f32]), (1, vec![3.1]), (0, vec![6.0])];
        let labels: Vec<usize> = probes.iter().map(|p| p.0).collect();
        let report = identification_accuracy(&labels, |i| {
            brute_force_ranking(&gallery, &probes[i].1, Metric::SquaredL2)
        });
        assert_eq!(
            report,
            IdentifyReport {
                probes: 3,
                rank1: 1.0 / 3.0,
                rank5: 2.0 / 3.0
            }
        );
    }
}
