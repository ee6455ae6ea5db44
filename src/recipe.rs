//! How a face crop becomes the vector a database stores and compares: the embedding recipe.
//!
//! `Plain` is the network's unit embedding of the crop. `Flip` also embeds the crop's mirror
//! and stores the normalised sum of the two (InsightFace's test-time flip): 512 dimensions, so
//! the index is unchanged, at twice the embedding cost. Distances under one recipe mean nothing
//! under another, so the recipe is part of what names a database's vectors (`vectors_id`): a
//! database enrolled with plain embeddings keeps being searched with plain probes until it is
//! re-embedded from its stored crops (`fdb models use MODEL`).
//!
//! `Centred` is `Flip` with the model's centre taken away and the result normalised again: the
//! centre is the mean flip vector of a reference set of faces, fixed per model and kept in its
//! manifest entry (for the base model: LFW photos of the 1,468 people outside `pairs.txt`,
//! `fdb eval centre`). Every face shares the component along the centre; without it, the
//! angles between different people widen, as facenet's per-fold mean subtraction does on LFW.

use std::fmt;

use fdb_models::weights::Manifest;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
/// How a face crop becomes a stored vector.
#[non_exhaustive]
pub enum Recipe {
    /// The crop's embedding alone (every database made before recipes existed).
    Plain,
    /// The crop's and its mirror's embeddings, summed and normalised.
    Flip,
    /// `Flip` less the model's centre, normalised again.
    Centred,
}

/// What new databases use, and what `fdb models use` re-embeds to (measured: docs/benchmarks.md,
/// "Decisions and calibration").
pub const DEFAULT_RECIPE: Recipe = Recipe::Centred;

/// Separates a model id from a recipe tag in a vectors id ("facenet-20180408-102900#flip").
const TAG_SEPARATOR: char = '#';

impl Recipe {
    /// Every recipe.
    pub const ALL: [Recipe; 3] = [Recipe::Plain, Recipe::Flip, Recipe::Centred];

    /// The recipe's name (`plain`, `flip`), as the CLI and the vectors id spell it.
    pub fn tag(self) -> &'static str {
        match self {
            Recipe::Plain => "plain",
            Recipe::Flip => "flip",
            Recipe::Centred => "centred",
        }
    }

    /// Whether the crop's mirror is embedded too.
    pub fn needs_mirror(self) -> bool {
        self != Recipe::Plain
    }

    /// Whether the model's centre is taken away.
    pub fn needs_centre(self) -> bool {
        self == Recipe::Centred
    }

    /// The name the store files `model`'s vectors under with this recipe. Plain keeps the bare
    /// model id, so a database written before recipes existed reads as plain.
    pub fn vectors_id(self, model: &str) -> String {
        match self {
            Recipe::Plain => model.to_string(),
            other => format!("{model}{TAG_SEPARATOR}{}", other.tag()),
        }
    }

    /// (model, recipe) of a vectors id; an unknown tag is an error naming it.
    pub fn parse_vectors_id(id: &str) -> Result<(String, Recipe), String> {
        match id.rsplit_once(TAG_SEPARATOR) {
            None => Ok((id.to_string(), Recipe::Plain)),
            Some((model, tag)) => {
                let recipe = tag.parse().map_err(|e| format!("the database's vectors {id:?}: {e}"))?;
                Ok((model.to_string(), recipe))
            }
        }
    }

    /// The stored vector of one face from its crop's embedding and (`Flip`, `Centred`) its
    /// mirror's; `centre` is the model's, needed by `Centred` only. The callers resolve both
    /// when they load a model, so a missing one is a bug here, not a user's error.
    pub fn fuse(self, crop: &[f32], mirror: Option<&[f32]>, centre: Option<&[f32]>) -> Vec<f32> {
        let summed = || {
            let mirror = mirror.expect("the flip recipes need the mirror's embedding");
            normalised(crop.iter().zip(mirror).map(|(a, b)| a + b).collect())
        };
        match self {
            Recipe::Plain => crop.to_vec(),
            Recipe::Flip => summed(),
            Recipe::Centred => centred(summed(), centre.expect("the centred recipe needs the model's centre")),
        }
    }
}

/// The centre of `model` for the centred recipe: its own or its nearest ancestor's in the
/// manifest (an install keeps the base model's figures up to date with this build's).
pub fn model_centre(manifest: &Manifest, model: &str) -> Option<Vec<f32>> {
    manifest
        .recipe_figures(model, Recipe::Centred.tag())
        .filter(|f| !f.centre.is_empty())
        .map(|f| f.centre.clone())
}

/// `v` less `centre`, normalised again: a flip vector as the centred recipe stores it.
pub fn centred(v: Vec<f32>, centre: &[f32]) -> Vec<f32> {
    assert_eq!(v.len(), centre.len(), "a centre of another dimension");
    normalised(v.iter().zip(centre).map(|(x, c)| x - c).collect())
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for Recipe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Recipe::ALL
            .into_iter()
            .find(|r| r.tag() == s)
            .ok_or_else(|| format!("unknown embedding recipe {s:?}: use plain, flip or centred"))
    }
}

/// `v / |v|`; a zero vector (a crop and a mirror with opposite embeddings) stays zero.
fn normalised(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v
    } else {
        v.into_iter().map(|x| x / norm).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_ids_name_the_recipe_and_plain_reads_as_before() {
        assert_eq!(Recipe::Plain.vectors_id("facenet-x"), "facenet-x");
        assert_eq!(Recipe::Flip.vectors_id("facenet-x+ft1"), "facenet-x+ft1#flip");
        assert_eq!(Recipe::parse_vectors_id("facenet-x").unwrap(), ("facenet-x".into(), Recipe::Plain));
        assert_eq!(Recipe::parse_vectors_id("facenet-x+ft1#flip").unwrap(), ("facenet-x+ft1".into(), Recipe::Flip));
        let err = Recipe::parse_vectors_id("facenet-x#sideways").unwrap_err();
        assert!(err.contains("sideways") && err.contains("facenet-x#sideways"), "{err}");
    }

    #[test]
    fn flip_is_the_normalised_sum() {
        // (0.6, 0.8) + (0.8, 0.6) = (1.4, 1.4) → (1/√2, 1/√2).
        let fused = Recipe::Flip.fuse(&[0.6, 0.8], Some(&[0.8, 0.6]), None);
        assert!(fused.iter().all(|v| (v - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6), "{fused:?}");
        assert_eq!(Recipe::Plain.fuse(&[0.6, 0.8], Some(&[0.8, 0.6]), None), vec![0.6, 0.8]);
        assert_eq!(Recipe::Flip.fuse(&[1.0, 0.0], Some(&[-1.0, 0.0]), None), vec![0.0, 0.0]);
    }

    #[test]
    fn centred_takes_the_centre_from_the_flip_vector_and_normalises() {
        // Flip of (0.6, 0.8) and (0.8, 0.6) is (1/√2, 1/√2); less (1/√2, 0) it is (0, 1/√2) → (0, 1).
        let centre = [std::f32::consts::FRAC_1_SQRT_2, 0.0];
        let v = Recipe::Centred.fuse(&[0.6, 0.8], Some(&[0.8, 0.6]), Some(&centre));
        assert!(v[0].abs() < 1e-6 && (v[1] - 1.0).abs() < 1e-6, "{v:?}");
        assert_eq!(Recipe::Centred.vectors_id("facenet-x"), "facenet-x#centred");
        assert_eq!("centred".parse::<Recipe>().unwrap(), Recipe::Centred);
    }
}
