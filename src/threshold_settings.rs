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

use crate::calibration::GalleryDistances;
use crate::decision::LowerTail;
use crate::error::Result;
use crate::eval::EvalReport;
use crate::facedb::{FaceDb, Thresholds};

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
