//! What an evaluation leaves in a database (`fdb eval … --save-threshold`): its 1:1 threshold
//! and the impostor tail that calibrates the false-accept rates, saved only when the evaluation
//! measured the distance the database's searches use.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use rayon::prelude::*;

use super::{EvalReport, FlipMode, ImagePair, Metric, PairEmbeddings};
use crate::decision::LowerTail;
use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;

/// The lower tail of the squared-L2 distances between every two distinct photos of different
/// people (the person is the photo's folder): ~30 million pairs for LFW's 7,701 photos.
pub fn impostor_tail(pairs: &[ImagePair], e: &PairEmbeddings) -> LowerTail {
    let mut photos: BTreeMap<&Path, &[f32]> = BTreeMap::new();
    for (p, (l, r)) in pairs.iter().zip(e.left.iter().zip(&e.right)) {
        photos.insert(&p.left, l);
        photos.insert(&p.right, r);
    }
    let rows: Vec<(Option<&OsStr>, &[f32])> = photos.into_iter().map(|(path, v)| (path.parent().and_then(Path::file_name), v)).collect();
    let distances: Vec<f32> = (0..rows.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let (person, a) = rows[i];
            rows[i + 1..]
                .iter()
                .filter(move |(other, _)| *other != person)
                .map(move |(_, b)| a.iter().zip(*b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>())
        })
        .collect();
    LowerTail::from_distances(distances)
}

impl FaceDb {
    /// Saves an evaluation's 1:1 threshold (at its FAR target with `at_far`, else its best
    /// accuracy's) and impostor tail as the database's own, and returns the threshold. Only an
    /// evaluation of the distance this database's searches use can be saved: squared L2
    /// between its recipe's vectors (flip `sum` for a mirrored recipe, `--centre` for the
    /// centred one), no mean subtraction; any other is `FdbError::Invalid`, and nothing is
    /// written.
    pub(crate) fn save_evaluation(&self, report: &EvalReport, at_far: bool, tail: &LowerTail) -> Result<f64> {
        let recipe = self.recipe()?;
        let flip = if recipe.needs_mirror() { FlipMode::Sum } else { FlipMode::None };
        let o = &report.options;
        if o.metric != Metric::SquaredL2 || o.flip != flip || o.centred != recipe.needs_centre() || o.subtract_mean {
            return Err(FdbError::Invalid(format!(
                "--save-threshold needs the distance this database's searches use: --metric l2 --flip {}{} without --subtract-mean ({recipe} embeddings)",
                if flip == FlipMode::Sum { "sum" } else { "none" },
                if recipe.needs_centre() { " --centre" } else { "" }
            )));
        }
        let t = if at_far { report.far_threshold } else { report.threshold };
        self.set_verify_threshold(t as f32)?;
        self.set_impostor_tail(tail)?;
        Ok(t)
    }
}
