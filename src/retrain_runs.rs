//! The learning curves of a database's retraining runs, kept in the database so that
//! `fdb retrain --plot` can draw the new run beside the earlier ones.

use fdb_models::train::EpochLog;
use serde::{Deserialize, Serialize};

use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;

/// Meta key of the stored runs.
const META_RUNS: &str = "fdb.retrain.runs";
/// The most runs kept (the oldest leave first): each is a few hundred bytes an epoch.
pub const MAX_RUNS: usize = 50;

/// One run of `fdb retrain`, as its learning curve needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainRun {
    /// The version the run made.
    pub model: String,
    /// The version it started from.
    pub parent: String,
    /// Held-out verification accuracy of the parent, before training.
    pub before: f64,
    /// Whether the database switched to the new version.
    pub switched: bool,
    /// One log per epoch.
    pub epochs: Vec<EpochLog>,
}

impl FaceDb {
    /// The retraining runs on this database, oldest first (at most `MAX_RUNS`).
    pub(crate) fn retrain_runs(&self) -> Result<Vec<RetrainRun>> {
        match self.store().meta_get(META_RUNS)? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| FdbError::Corrupt { path: self.path().to_path_buf(), reason: format!("the retraining history is unreadable: {e}") }),
        }
    }

    /// Add a run to the history.
    pub(crate) fn record_retrain_run(&self, run: RetrainRun) -> Result<()> {
        let mut runs = self.retrain_runs()?;
        runs.push(run);
        let excess = runs.len().saturating_sub(MAX_RUNS);
        runs.drain(..excess);
        let bytes = serde_json::to_vec(&runs).expect("plain data");
        self.store().meta_set(META_RUNS, &bytes)?;
        Ok(self.store().flush()?)
    }
}
