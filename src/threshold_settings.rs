//! `FaceDb::thresholds()`: the thresholds a database decides by, and their settings.
//!
//! ```no_run
//! let db = fdb::FaceDb::open("faces.db")?;
//! let t = db.thresholds().current()?; // 1:1 and 1:N thresholds, calibration, expected FAR
//! println!("verify {} ({}), search {}", t.verify_threshold, t.verify_source, t.search_threshold);
//! db.thresholds().set_far_1n(1e-4)?;  // a stricter stranger-accept target for searches
//! # Ok::<(), fdb::FdbError>(())
//! ```

use std::sync::Arc;

use crate::calibration::{GalleryDistances, MIN_PEOPLE};
use crate::decision::{self, LowerTail, DEFAULT_FAR_1N};
use crate::error::{FdbError, Result};
use crate::eval::EvalReport;
use crate::facedb::{lfw_figures, Calibration, FaceDb, GallerySummary, Thresholds};
use crate::recipe::Recipe;

/// Meta key of the 1:N false-accept target.
const META_FAR_1N: &str = "fdb.far_1n";
/// Meta key of the impostor tail measured by `fdb eval … --save-threshold` (JSON `LowerTail`).
const META_IMPOSTOR_TAIL: &str = "fdb.impostor_tail";
/// Meta key of the recipe whose distances the database's own threshold and tail are in; absent:
/// plain (they were set before recipes existed).
const META_THRESHOLD_RECIPE: &str = "fdb.threshold_recipe";

/// The thresholds of one database, read and set. Borrowed from [`FaceDb::thresholds`]; every
/// read is from the database and its models dir as opened, never a download.
#[derive(Clone, Copy)]
pub struct ThresholdSettings<'db> {
    db: &'db FaceDb,
}

impl<'db> ThresholdSettings<'db> {
    pub(crate) fn new(db: &'db FaceDb) -> Self {
        Self { db }
    }

    /// The thresholds in force, which calibration they come from, and what they are expected
    /// to let through (see `decision` and `calibration`).
    pub fn current(&self) -> Result<Thresholds> {
        self.db.current_thresholds()
    }

    /// The 1:1 threshold in force (squared L2).
    pub fn verify(&self) -> Result<f32> {
        Ok(self.current()?.verify_threshold)
    }

    /// The 1:N threshold for the gallery as it is now (squared L2).
    pub fn search(&self) -> Result<f32> {
        Ok(self.current()?.search_threshold)
    }

    /// The chance that a stranger's search is accepted as somebody, that the 1:N threshold
    /// is set for.
    pub fn far_1n(&self) -> Result<f64> {
        self.db.far_1n()
    }

    /// Sets the database's own 1:1 threshold (in the distances of its current recipe).
    pub fn set_verify(&self, value: f32) -> Result<()> {
        self.db.set_verify_threshold(value)
    }

    /// Sets the 1:N target (between 0 and 1).
    pub fn set_far_1n(&self, far: f64) -> Result<()> {
        self.db.set_far_1n(far)
    }

    /// Saves an impostor tail (in the current recipe's distances) as the database's calibration.
    pub fn set_impostor_tail(&self, tail: &LowerTail) -> Result<()> {
        self.db.set_impostor_tail(tail)
    }

    /// Saves an evaluation's threshold and impostor tail: see `FaceDb::save_evaluation`'s rules
    /// (`eval::saved`).
    pub fn save_evaluation(&self, report: &EvalReport, at_far: bool, tail: &LowerTail) -> Result<f64> {
        self.db.save_evaluation(report, at_far, tail)
    }

    /// The calibration sample's distances (computed once per change of the gallery).
    pub fn gallery_distances(&self) -> Result<Arc<GalleryDistances>> {
        self.db.gallery_distances()
    }
}

/// Where the thresholds come from: the database's own settings (the 1:1 value in the store, the
/// rest under the meta keys above), the gallery's calibration sample, and the model's LFW figures.
impl FaceDb {
    /// Set the database's own 1:1 threshold (in the distances of its current recipe).
    pub(crate) fn set_verify_threshold(&self, value: f32) -> Result<()> {
        self.writable("set_verify_threshold")?;
        decision::check_verify_threshold(value).map_err(FdbError::Invalid)?;
        self.store().set_threshold(value)?;
        self.store().meta_set(META_THRESHOLD_RECIPE, self.recipe()?.tag().as_bytes())?;
        Ok(self.store().flush()?)
    }

    /// The chance that a stranger's search is accepted as somebody.
    pub(crate) fn far_1n(&self) -> Result<f64> {
        Ok(match self.store().meta_get(META_FAR_1N)? {
            Some(bytes) if bytes.len() == 8 => f64::from_le_bytes(bytes.try_into().expect("8 bytes")),
            _ => DEFAULT_FAR_1N,
        })
    }

    /// Set the 1:N target, the chance that a stranger's search is accepted as somebody (between 0 and 1).
    pub(crate) fn set_far_1n(&self, far: f64) -> Result<()> {
        self.writable("set_far_1n")?;
        if !(far > 0.0 && far < 1.0) {
            return Err(FdbError::Invalid(format!("false-accept target {far} must be between 0 and 1")));
        }
        self.store().meta_set(META_FAR_1N, &far.to_le_bytes())?;
        Ok(self.store().flush()?)
    }

    /// The thresholds in force, which calibration they come from and what they are expected to
    /// let through (see `decision` and `calibration`).
    pub(crate) fn current_thresholds(&self) -> Result<Thresholds> {
        Ok(self.thresholds_and_tail()?.0)
    }

    pub(crate) fn thresholds_and_tail(&self) -> Result<(Thresholds, LowerTail)> {
        let recipe = self.recipe()?;
        let (lfw_threshold, lfw_tail) = self.lfw_figures(recipe);
        let gallery = self.gallery_distances()?;
        let (calibration, tail) = if gallery.is_enough() {
            (Calibration::Gallery, gallery.impostor.clone())
        } else if let Some(saved) = self.saved_tail(recipe)? {
            (Calibration::Evaluation, saved)
        } else {
            (Calibration::Lfw, lfw_tail.clone())
        };
        let (verify, verify_source) = match self.own_threshold(recipe)? {
            Some(t) => (t, "database"),
            // LFW's 1:1 false-accept rate, held on this gallery's impostors; never looser than LFW's.
            None if calibration == Calibration::Gallery => {
                let far = lfw_tail.cdf(f64::from(lfw_threshold));
                ((tail.quantile(far) as f32).min(lfw_threshold), "gallery")
            }
            None => (lfw_threshold, "lfw"),
        };
        let faces = self.store().searchable_faces();
        let far_1n = self.far_1n()?;
        let (search, search_calibration, expected_far_1n) = if calibration == Calibration::Gallery {
            let (t, from_lfw, expected) = decision::gallery_search_threshold(verify, &tail, &lfw_tail, far_1n, faces);
            (t, if from_lfw { Calibration::Lfw } else { Calibration::Gallery }, expected)
        } else {
            let t = decision::search_threshold_from_tail(verify, &tail, far_1n, faces);
            (t, calibration, decision::expected_far_1n(&tail, t, faces))
        };
        let thresholds = Thresholds {
            verify_threshold: verify,
            verify_source,
            search_threshold: search,
            search_calibration,
            far_1n,
            calibration,
            expected_far_1n,
            expected_far_1v1: tail.cdf(f64::from(verify)),
            gallery: GallerySummary {
                sampled_faces: gallery.faces,
                people_with_two_faces: gallery.people_with_two,
                needed_people: MIN_PEOPLE,
                impostor_pairs: gallery.impostor.pairs,
                genuine_pairs: gallery.genuine.len(),
                genuine_accept_verify: gallery.genuine_accept(verify),
                genuine_accept_search: gallery.genuine_accept(search),
            },
        };
        Ok((thresholds, tail))
    }

    /// The model's LFW threshold and impostor tail for `recipe`: its own (or its nearest
    /// ancestor's) from the manifest read at open, else the base model's.
    fn lfw_figures(&self, recipe: Recipe) -> (f32, LowerTail) {
        let models = self.installed_models().ok();
        let model = self.model_id().ok();
        lfw_figures(models.as_deref().zip(model.as_deref()), recipe)
    }

    /// The recipe the database's own threshold and tail were set under (plain before recipes).
    fn threshold_recipe(&self) -> Result<Recipe> {
        match self.store().meta_get(META_THRESHOLD_RECIPE)? {
            None => Ok(Recipe::Plain),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map_err(FdbError::Invalid),
        }
    }

    /// The database's own 1:1 threshold, if it was set under `recipe` (a threshold in another
    /// recipe's distances means nothing now).
    fn own_threshold(&self, recipe: Recipe) -> Result<Option<f32>> {
        Ok(self.store().threshold()?.filter(|_| self.threshold_recipe().ok() == Some(recipe)))
    }

    /// The impostor tail saved by the evaluator, if it was measured under `recipe`.
    fn saved_tail(&self, recipe: Recipe) -> Result<Option<LowerTail>> {
        if self.threshold_recipe()? != recipe {
            return Ok(None);
        }
        match self.store().meta_get(META_IMPOSTOR_TAIL)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| FdbError::Corrupt { path: self.path().to_path_buf(), reason: format!("the saved impostor tail is unreadable: {e}") }),
        }
    }

    /// Save the impostor tail measured by the evaluator (in the current recipe's distances).
    pub(crate) fn set_impostor_tail(&self, tail: &LowerTail) -> Result<()> {
        self.writable("set_impostor_tail")?;
        self.store().meta_set(META_IMPOSTOR_TAIL, &serde_json::to_vec(tail).expect("plain data"))?;
        self.store().meta_set(META_THRESHOLD_RECIPE, self.recipe()?.tag().as_bytes())?;
        Ok(self.store().flush()?)
    }

}
