//! The ROC of the last evaluation saved into a database (`fdb eval … --save-threshold`), so
//! that `fdb serve`'s page can draw the curve the database's threshold was chosen on.

use serde::{Deserialize, Serialize};

use super::EvalReport;
use fdb_storage::Store;

/// Meta key of the saved ROC (JSON [`SavedRoc`]).
const META_LAST_ROC: &str = "fdb.last_eval_roc";

/// An evaluation's mean ROC and headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRoc {
    /// The run's name (model and protocol).
    pub name: String,
    /// Pairs evaluated.
    pub pairs: usize,
    /// Mean held-out accuracy.
    pub accuracy: f64,
    /// Area under the curve.
    pub auc: f64,
    /// The accuracy-optimal threshold (squared L2).
    pub threshold: f64,
    /// When it was saved, milliseconds since the Unix epoch.
    pub saved_ms: u64,
    /// (false-accept rate, true-accept rate) along the curve.
    pub points: Vec<[f64; 2]>,
}

impl SavedRoc {
    /// The figures of `report`, named `name`, saved now.
    pub fn of(name: &str, report: &EvalReport) -> Self {
        let saved_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            name: name.to_string(),
            pairs: report.pairs,
            accuracy: report.accuracy_mean,
            auc: report.auc,
            threshold: report.threshold,
            saved_ms,
            points: report.roc.iter().map(|p| [p.fpr, p.tpr]).collect(),
        }
    }

    /// Stores it in the database (replacing the one before).
    pub fn save(&self, store: &Store) -> crate::Result<()> {
        store.meta_set(META_LAST_ROC, &serde_json::to_vec(self).expect("plain data"))?;
        Ok(())
    }

    /// The ROC saved in the database, if any.
    pub fn load(store: &Store) -> crate::Result<Option<Self>> {
        match store.meta_get(META_LAST_ROC)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| crate::FdbError::Invalid(format!("the saved ROC is unreadable: {e}"))),
        }
    }
}
