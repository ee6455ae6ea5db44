//! How a face crop becomes the vector a database stores and compares: the embedding recipe.
//!
//! `Plain` is the network's unit embedding of the crop. `Flip` also embeds the crop's mirror
//! and stores the normalised sum of the two (InsightFace's test-time flip): 512 dimensions, so
//! the index is unchanged, at twice the embedding cost. Distances under one recipe mean nothing
//! under another, so the recipe is part of what names a database's vectors (`vectors_id`): a
//! database enrolled with plain embeddings keeps being searched with plain probes until it is
//! re-embedded from its stored crops (`fdb models use MODEL`).

use std::fmt;

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
}

/// What new databases use, and what `fdb models use` re-embeds to (measured: docs/benchmarks.md,
/// "Decisions and calibration").
pub const DEFAULT_RECIPE: Recipe = Recipe::Flip;

/// Separates a model id from a recipe tag in a vectors id ("facenet-20180408-102900#flip").
const TAG_SEPARATOR: char = '#';

impl Recipe {
    /// Every recipe.
    pub const ALL: [Recipe; 2] = [Recipe::Plain, Recipe::Flip];

    /// The recipe's name (`plain`, `flip`), as the CLI and the vectors id spell it.
    pub fn tag(self) -> &'static str {
        match self {
            Recipe::Plain => "plain",
            Recipe::Flip => "flip",
        }
    }

    /// Whether the crop's mirror is embedded too.
    pub fn needs_mirror(self) -> bool {
        self == Recipe::Flip
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

    /// The stored vector of one face from its crop's embedding and (for `Flip`) its mirror's.
    pub fn fuse(self, crop: &[f32], mirror: Option<&[f32]>) -> Vec<f32> {
        match (self, mirror) {
            (Recipe::Flip, Some(mirror)) => normalised(crop.iter().zip(mirror).map(|(a, b)| a + b).collect()),
            (Recipe::Flip, None) => panic!("the flip recipe needs the mirror's embedding"),
            (Recipe::Plain, _) => crop.to_vec(),
        }
    }
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
            .ok_or_else(|| format!("unknown embedding recipe {s:?}: use plain or flip"))
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
        let fused = Recipe::Flip.fuse(&[0.6, 0.8], Some(&[0.8, 0.6]));
        assert!(fused.iter().all(|v| (v - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6), "{fused:?}");
        assert_eq!(Recipe::Plain.fuse(&[0.6, 0.8], Some(&[0.8, 0.6])), vec![0.6, 0.8]);
        assert_eq!(Recipe::Flip.fuse(&[1.0, 0.0], Some(&[-1.0, 0.0])), vec![0.0, 0.0]);
    }
}
