//! `fdb retrain`: fine-tune the embedder's head on the enrolled galleries with triplet loss,
//! store the result as a new model version, and switch the database to it if it is better.
//!
//! The trunk stays frozen (the CPU default), so each face's 1792-d trunk features are computed
//! once per view (the stored crop, its mirror, and optional jittered crops) and kept in the
//! trunk-feature cache beside the database (`trunk_cache`); the head trains on those. A switch
//! re-embeds from the same cache: an embedding is the head applied to the crop's features.
//!
//! `--layers top:N` trains the last N Block8s and the head instead, on the network's
//! activations at the cut below them, cached the same way (`trunk_cache`); the new version's
//! trunk features of the gallery's crops and mirrors are computed from that cache by the trained
//! top, so that the switch need not run the network for them.
//!
//! With `RetrainOptions::lfw`, the parent and the new version are also scored on LFW View 1's
//! clean DevTest pairs (`clean_lfw`), so that a version that gains in its own domain and loses
//! what the base knew is reported as such.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use fdb_models::facenet::{Cut, BOTTLENECK_BIAS, BOTTLENECK_WEIGHT, CUT_SHAPE, TRUNK_DIM};
use fdb_models::train::augment::{render_view, view_count, Augment};
use fdb_models::train::head::embed_features;
use fdb_models::train::network::{train_network, CropSet, NetworkTrainer};
use fdb_models::train::top::{train_top, ActivationSet, TopTrainer};
use fdb_models::train::{self, EpochLog, FeatureSet, HeadWeights, TrainConfig};
use fdb_models::weights::{self, install::write_model, ModelEntry, NamedTensor};
use fdb_storage::{FaceId, PersonId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::clean_lfw::{self, CleanLfw, PairSet};
use crate::engine::Engine;
use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;
use crate::progress::{CancelToken, Progress, Stage};
use crate::recipe::{Recipe, DEFAULT_RECIPE};
use crate::retrain_runs::RetrainRun;
use crate::trunk_cache::TrunkCache;

/// Faces whose missing trunk features are computed (and appended to the cache) together.
const FEATURE_CHUNK: usize = 32;
/// Rows per head pass when re-embedding from cached features.
const HEAD_CHUNK: usize = 1024;

/// The settings of `fdb retrain` (fields public to read and to set on a default).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetrainOptions {
    /// The training run's settings (epochs, batches, mining, optimiser, seed).
    pub train: TrainConfig,
    /// Fraction of people held out for validation.
    pub validation_fraction: f64,
    /// Switch to the new model even if it is not better on the held-out people.
    pub force: bool,
    /// Jittered crops per face (each with its mirror) besides the crop and its mirror. Each
    /// one adds two trunk passes per face the first time (then they are cached).
    pub jitter: usize,
    /// What each jittered view alters besides position and scale (light, camera, or both).
    pub augment: Augment,
    /// Train the head on cached trunk features, the top above a cut on cached activations, or
    /// the whole network.
    pub layers: Layers,
    /// Stops the run between feature chunks or epochs (`FdbError::Cancelled`); nothing is
    /// stored then, and the database keeps its model (features already computed stay cached).
    pub cancel: CancelToken,
    /// LFW's images folder (`DIR/name/name_NNNN.jpg`, View 1's `pairsDevTest.txt` in the folder
    /// above): when given, the parent and the new version are scored on those clean pairs and
    /// a loss of more than 0.5 pt is flagged (`clean_lfw`).
    pub lfw: Option<PathBuf>,
}

impl Default for RetrainOptions {
    fn default() -> Self {
        Self { train: TrainConfig::default(), validation_fraction: 0.2, force: false, jitter: 0, augment: Augment::Geometric, layers: Layers::Head, cancel: CancelToken::default(), lfw: None }
    }
}

/// What `retrain` reports while it works.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RetrainEvent<'a> {
    /// Trunk features: `done` of `total` faces ready (cached or computed).
    Features {
        /// Faces ready.
        done: usize,
        /// Faces in all.
        total: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochLog),
}

/// Wall-clock seconds of each stage.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[non_exhaustive]
pub struct StageSeconds {
    /// Computing (or reading) trunk features.
    pub features: f64,
    /// Training.
    pub training: f64,
    /// Switching the database to the new version (re-embedding every face).
    pub switch: f64,
}

/// What `fdb retrain` did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RetrainReport {
    /// The model trained from.
    pub parent: String,
    /// The new version's id.
    pub model: String,
    /// People trained on.
    pub train_people: usize,
    /// Their faces.
    pub train_faces: usize,
    /// People held out.
    pub validation_people: usize,
    /// Their faces.
    pub validation_faces: usize,
    /// The held-out scores of the parent model.
    pub before: Scores,
    /// The held-out scores of the new version.
    pub after: Scores,
    /// The learning curve, one entry per epoch.
    pub epochs: Vec<EpochLog>,
    /// The database now uses the new model.
    pub switched: bool,
    /// Network passes run for this retrain (views not yet in the cache): up to the trunk
    /// features, or up to the cut for `top:N`.
    pub features_computed: usize,
    /// Views taken from the cache.
    pub features_cached: usize,
    /// How long each stage took.
    pub seconds: StageSeconds,
    /// The parent's and the new version's accuracy on clean LFW pairs (`RetrainOptions::lfw`).
    pub clean_lfw: Option<CleanLfw>,
}

/// Held-out scores of a model.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct Scores {
    /// Verification accuracy over all held-out pairs.
    pub verification_accuracy: f64,
    /// Rank-1 identification among the held-out people.
    pub rank1: f64,
}

/// Retraining of one database's embedder on its own galleries. Borrowed from
/// [`FaceDb::retrainer`].
///
/// ```no_run
/// use fdb::retrain::RetrainOptions;
///
/// let db = fdb::FaceDb::open("faces.db")?;
/// let options = RetrainOptions::default(); // the head on cached trunk features; cancel with options.cancel
/// let report = db.retrainer().run(&options, |event| eprintln!("{event:?}"))?;
/// println!("{} → {}: switched {}", report.parent, report.model, report.switched);
/// # Ok::<(), fdb::FdbError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Retrainer<'db> {
    db: &'db FaceDb,
}

impl Retrainer<'_> {
    /// Trains a new version on the galleries (`options.layers`: the head, the top above a cut,
    /// or the whole network), stores it beside its parent in the models dir, and switches the
    /// database to it if it is better on the held-out people (or `options.force`). `on_event`
    /// hears the features' progress and each epoch; `options.cancel` stops the run between
    /// feature chunks or epochs with `FdbError::Cancelled`, nothing stored.
    pub fn run(&self, options: &RetrainOptions, on_event: impl FnMut(RetrainEvent<'_>)) -> Result<RetrainReport> {
        self.db.retrain(options, on_event)
    }

    /// The retraining runs on this database, oldest first.
    pub fn runs(&self) -> Result<Vec<RetrainRun>> {
        self.db.retrain_runs()
    }

    /// Trunk features of the first `views` views of each face, from the cache beside the
    /// database where present (the rest computed and appended): what a head retrain trains
    /// on. `progress(done, total)` after each chunk; an error from it stops the call. For
    /// fdb's tests: `Engine` is internal.
    #[doc(hidden)]
    pub fn trunk_features(
        &self,
        engine: &Engine,
        faces: &[FaceId],
        views: usize,
        augment: Augment,
        progress: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<TrunkFeatures> {
        self.db.trunk_features(engine, faces, views, augment, progress)
    }
}

impl FaceDb {
    /// Retraining: runs, their history and the trunk-feature cache.
    pub fn retrainer(&self) -> Retrainer<'_> {
        Retrainer { db: self }
    }

    /// Train a new head on the galleries, store it as a model version, and switch if it is better.
    pub(crate) fn retrain(&self, options: &RetrainOptions, mut on_event: impl FnMut(RetrainEvent<'_>)) -> Result<RetrainReport> {
        self.writable("retrain")?;
        let engine = self.engine()?;
        let models = self.installed_models()?;
        let parent = self.model_id()?;
        let parent_entry = models.manifest.get(&parent).cloned().ok_or_else(|| missing_model(&parent))?;

        if options.layers == Layers::All && options.train.l2_to_base > 0.0 {
            return Err(FdbError::Invalid("--l2-to-base pulls the cached trainers (head, top:N) towards the base; --layers all does not take it".into()));
        }
        // Read before training, so that a wrong path fails now rather than after it.
        let clean_set = match &options.lfw {
            Some(images) => {
                let file = clean_pairs_file(images);
                Some((PairSet::read(&file, images)?, file))
            }
            None => None,
        };
        let gallery = self.gallery_with_two_faces()?;
        let (train_people, val_people) = split_people(&gallery, options.validation_fraction, options.train.seed);
        if train_people.len() < 2 || val_people.is_empty() {
            return Err(FdbError::Invalid(format!(
                "retraining needs at least 3 people with 2 or more faces each; this database has {}",
                gallery.len()
            )));
        }
        let job = Job {
            engine: &engine,
            models: &models,
            parent: &parent_entry,
            split: Split { gallery: &gallery, train: &train_people, val: &val_people },
            options,
        };
        let trained = match options.layers {
            Layers::Head => self.train_head_on_features(&job, &mut on_event)?,
            Layers::Top(cut) => self.train_top_on_activations(&job, cut, &mut on_event)?,
            Layers::All => self.train_whole_network(&job, &mut on_event)?,
        };
        if options.cancel.is_cancelled() {
            return Err(FdbError::Cancelled { done: trained.epochs.len(), total: options.train.epochs });
        }

        let model = format!("{parent}+ft{}", unix_seconds());
        self.store_model_version(&models.dir, &parent_entry, &models.manifest.trunk_of(&parent), &model, &trained.weights)?;
        if !trained.new_features.is_empty() {
            // The new version's trunk features, computed from the cached activations, for the switch.
            let mut cache = TrunkCache::open(self.path(), &model, TRUNK_DIM)?;
            for ((face, view), features) in trained.new_features {
                cache.insert(face, view, features)?;
            }
            cache.flush()?;
        }
        let clean_lfw = match &clean_set {
            Some((set, file)) => Some(self.clean_check(&engine, &models, &parent_entry, &model, options.layers, set, file)?),
            None => None,
        };
        let (before, after) = (trained.before, trained.after);
        let better = after.verification_accuracy > before.verification_accuracy
            || (after.verification_accuracy == before.verification_accuracy && after.rank1 > before.rank1);
        let switched = better || options.force;
        let started = Instant::now();
        if switched {
            // The database keeps its recipe: a retrain changes the model, not how crops are embedded.
            self.switch_to_recipe(&model, self.recipe()?, &Progress::new())?;
        }
        self.record_retrain_run(RetrainRun {
            model: model.clone(),
            parent: parent.clone(),
            before: before.verification_accuracy,
            switched,
            epochs: trained.epochs.clone(),
        })?;
        Ok(RetrainReport {
            parent,
            model,
            train_people: train_people.len(),
            train_faces: train_people.iter().map(|p| gallery[p].len()).sum(),
            validation_people: val_people.len(),
            validation_faces: val_people.iter().map(|p| gallery[p].len()).sum(),
            before,
            after,
            epochs: trained.epochs,
            switched,
            features_computed: trained.features_computed,
            features_cached: trained.features_cached,
            seconds: StageSeconds { switch: started.elapsed().as_secs_f64(), ..trained.seconds },
            clean_lfw,
        })
    }

    /// The clean-LFW check of the stored version `model` against its parent (`clean_lfw`): the
    /// layers below the trained ones are shared, so both finish the same activations.
    #[allow(clippy::too_many_arguments)]
    fn clean_check(
        &self,
        engine: &Engine,
        models: &weights::Installed,
        parent: &ModelEntry,
        model: &str,
        layers: Layers,
        set: &PairSet,
        file: &std::path::Path,
    ) -> Result<CleanLfw> {
        let now = weights::installed(&models.dir)?;
        let cut = match layers {
            Layers::Head => Cut::below_top(1),
            Layers::Top(cut) => Some(cut),
            Layers::All => None,
        };
        let model_file = now.verified_file(model)?;
        let model_engine = || Engine::load(&now, model, engine.device().clone());
        clean_lfw::check(set, file, engine, &models.verified_file(&parent.id)?, &model_file, cut, model_engine)
    }

    /// The CPU default: the head alone, on the trunk's cached features of every view.
    fn train_head_on_features(&self, job: &Job<'_>, on_event: &mut impl FnMut(RetrainEvent<'_>)) -> Result<Trained> {
        let Job { engine, models, parent, split, options } = job;
        let started = Instant::now();
        let faces: Vec<FaceId> = split.train.iter().chain(split.val).flat_map(|p| split.gallery[p].iter().copied()).collect();
        let features = self.trunk_features(engine, &faces, view_count(options.jitter), options.augment, |done, total| {
            on_event(RetrainEvent::Features { done, total });
            stop_if_cancelled(&options.cancel, done, total)
        })?;
        let train_set = feature_set(split.gallery, split.train, &features.views, &faces);
        // Validation scores the plain crop (view 0) only, as the database will embed it.
        let val_set = feature_set(split.gallery, split.val, &features.views, &faces);
        let features_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let base = read_head(&models.verified_file(&parent.id)?)?;
        let device = Device::Cpu;
        let before = scores(&val_set, &base, &device)?;
        let (trained, epochs) =
            train::train_head(&train_set, &val_set, &base, &options.train, &device, |log| {
                on_event(RetrainEvent::Epoch(log));
                epoch_flow(&options.cancel)
            })?;
        let after = scores(&val_set, &trained, &device)?;
        Ok(Trained {
            weights: NewWeights::Head(trained),
            epochs,
            before,
            after,
            features_computed: features.computed,
            features_cached: features.cached,
            seconds: StageSeconds { features: features_seconds, training: started.elapsed().as_secs_f64(), switch: 0.0 },
            new_features: Vec::new(),
        })
    }

    /// `--layers all`: every weight, through the whole network, on the engine's device.
    fn train_whole_network(&self, job: &Job<'_>, on_event: &mut impl FnMut(RetrainEvent<'_>)) -> Result<Trained> {
        let Job { engine, models, parent, split, options } = job;
        let started = Instant::now();
        let crop_set = |people: &[PersonId]| -> Result<CropSet> {
            let mut set = CropSet::default();
            for (label, person) in people.iter().enumerate() {
                let faces = &split.gallery[person];
                set.crops.extend(self.crops(faces.iter().copied())?);
                set.labels.extend(std::iter::repeat(label).take(faces.len()));
                set.seeds.extend(faces.iter().map(|f| f.0));
            }
            set.augment = options.augment;
            Ok(set)
        };
        let (train_set, val_set) = (crop_set(split.train)?, crop_set(split.val)?);
        let features_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let cfg = &options.train;
        let mut trainer = NetworkTrainer::load(&models.verified_file(&parent.id)?, cfg.learning_rate, cfg.weight_decay, engine.device())?;
        let before = to_scores(trainer.evaluate(&val_set)?);
        let epochs = train_network(&mut trainer, &train_set, &val_set, view_count(options.jitter), cfg, |log| {
            on_event(RetrainEvent::Epoch(log));
            epoch_flow(&options.cancel)
        })?;
        let after = to_scores(trainer.evaluate(&val_set)?);
        Ok(Trained {
            weights: NewWeights::Network(trainer.tensors()),
            epochs,
            before,
            after,
            features_computed: 0,
            features_cached: 0,
            seconds: StageSeconds { features: features_seconds, training: started.elapsed().as_secs_f64(), switch: 0.0 },
            new_features: Vec::new(),
        })
    }

    /// `--layers top:N`: the Block8s above `cut` and the head, on the cached activations at the
    /// cut of every view (streamed from the cache file, batch by batch).
    fn train_top_on_activations(&self, job: &Job<'_>, cut: Cut, on_event: &mut impl FnMut(RetrainEvent<'_>)) -> Result<Trained> {
        let Job { engine, models, parent, split, options } = job;
        let started = Instant::now();
        let faces: Vec<FaceId> = split.train.iter().chain(split.val).flat_map(|p| split.gallery[p].iter().copied()).collect();
        let views = view_count(options.jitter);
        let trunk = models.manifest.trunk_of(engine.model_id());
        let (h, w, c) = CUT_SHAPE;
        let mut cache = TrunkCache::open_activations(self.path(), &cache_key(trunk, options.augment), &cut.name(), h * w * c)?;
        let (computed, cached) = self.fill_cache(&mut cache, &faces, views, options.augment, |images| engine.activations(images, cut), |done, total| {
            on_event(RetrainEvent::Features { done, total });
            stop_if_cancelled(&options.cancel, done, total)
        })?;
        let features_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let cache = &cache;
        let activation_set = |people: &[PersonId]| -> ActivationSet<'_> {
            let mut ids = Vec::new();
            let mut labels = Vec::new();
            for (label, person) in people.iter().enumerate() {
                ids.extend(split.gallery[person].iter().map(|f| f.0));
                labels.extend(std::iter::repeat_n(label, split.gallery[person].len()));
            }
            ActivationSet {
                views: vec![views; labels.len()],
                labels,
                read: Box::new(move |face, view| -> candle_core::Result<Vec<f32>> {
                    match cache.read(ids[face], view as u8) {
                        Ok(Some(floats)) => Ok(floats.into_owned()),
                        Ok(None) => candle_core::bail!("face {} view {view}: no cached activations", ids[face]),
                        Err(e) => Err(candle_core::Error::Msg(e.to_string())),
                    }
                }),
            }
        };
        let (train_set, val_set) = (activation_set(split.train), activation_set(split.val));
        let cfg = &options.train;
        let mut trainer = TopTrainer::load(&models.verified_file(&parent.id)?, cut, cfg, engine.device())?;
        let before = to_scores(trainer.evaluate(&val_set)?);
        let epochs = train_top(&mut trainer, &train_set, &val_set, cfg, |log| {
            on_event(RetrainEvent::Epoch(log));
            epoch_flow(&options.cancel)
        })?;
        let after = to_scores(trainer.evaluate(&val_set)?);

        // The crop's and the mirror's trunk features under the trained top, for the switch.
        let top = trainer.frozen()?;
        let mut new_features = Vec::with_capacity(faces.len() * 2);
        for chunk in faces.chunks(FEATURE_CHUNK) {
            let keys: Vec<(u64, u8)> = chunk.iter().flat_map(|f| [(f.0, 0u8), (f.0, 1u8)]).collect();
            let mut rows = Vec::with_capacity(keys.len() * h * w * c);
            for &(face, view) in &keys {
                let floats = cache.read(face, view)?.ok_or_else(|| FdbError::Invalid(format!("face {face}: no cached activations")))?;
                rows.extend_from_slice(&floats);
            }
            let x = Tensor::from_vec(rows, (keys.len(), h, w, c), engine.device())?;
            let features = top.features_from(cut, &x)?.to_vec2::<f32>()?;
            new_features.extend(keys.into_iter().zip(features));
        }
        Ok(Trained {
            weights: NewWeights::Top(trainer.tensors()),
            epochs,
            before,
            after,
            features_computed: computed,
            features_cached: cached,
            seconds: StageSeconds { features: features_seconds, training: started.elapsed().as_secs_f64(), switch: 0.0 },
            new_features,
        })
    }

    /// Re-embed every stored face with `model` under the default recipe and make it the
    /// active model: `fdb models use`, also the way a database enrolled under another recipe
    /// (plain, before flip became the default) is migrated. See `switch_to_recipe`.
    pub(crate) fn switch_to(&self, model: &str, progress: &Progress<'_>) -> Result<()> {
        self.switch_to_recipe(model, DEFAULT_RECIPE, progress)
    }

    /// Re-embed every stored face with `model` under `recipe` and make that the database's
    /// vectors. The embeddings come from the trunk-feature cache of the model's trunk
    /// (computing what is missing; the crop is view 0, its mirror view 1), run through the
    /// model's own head. The old vectors stay active until the store commits the switch, so a
    /// crash leaves them in place.
    ///
    /// `progress` hears `Stage::Features` per chunk of faces; a cancelled token stops the
    /// switch before the commit with `FdbError::Cancelled`, the database on its old vectors.
    pub(crate) fn switch_to_recipe(&self, model: &str, recipe: Recipe, progress: &Progress<'_>) -> Result<()> {
        self.writable("switch_to")?;
        let models = self.installed_models()?;
        let entry = models.manifest.get(model).ok_or_else(|| missing_model(model))?;
        let target = recipe.vectors_id(model);
        if self.vectors_id()? == target {
            return Err(FdbError::Invalid(format!("the database already holds {model}'s {recipe} embeddings")));
        }
        let device = crate::device::select_device(self.options().device.as_deref())?;
        let engine = Engine::load(&models, model, device)?;
        let centre = engine.recipe_centre(recipe)?;
        let faces = self.all_faces()?;
        let views = if recipe.needs_mirror() { 2 } else { 1 };
        let features = self.trunk_features(&engine, &faces, views, Augment::Geometric, |done, total| {
            progress.report(Stage::Features, done, total);
            progress.check(done, total)
        })?;
        progress.check(faces.len(), faces.len())?;
        let head = read_head(&models.verified_file(&entry.id)?)?;
        let mut embeddings: Vec<(FaceId, Vec<f32>)> = Vec::with_capacity(faces.len());
        for (ids, rows) in faces.chunks(HEAD_CHUNK).zip(features.views.chunks(HEAD_CHUNK)) {
            let view = |v: usize| -> Result<Vec<Vec<f32>>> {
                apply_head(&head, rows.iter().flat_map(|r| r[v].iter().copied()).collect(), ids.len())
            };
            let crops = view(0)?;
            let vectors: Vec<Vec<f32>> = if recipe.needs_mirror() {
                crops.iter().zip(view(1)?).map(|(c, m)| recipe.fuse(c, Some(&m), centre)).collect()
            } else {
                crops
            };
            embeddings.extend(ids.iter().copied().zip(vectors));
        }
        self.store().switch_model(&target, embeddings.into_iter())?;
        self.store().flush()?;
        self.reset_engine();
        Ok(())
    }

    /// Trunk features of the first `views` views of each face (see `augment`), from the cache
    /// of the engine model's trunk where present; the rest are computed and appended to it.
    /// Records of faces no longer in the database are dropped first. Each augmentation preset
    /// has a cache of its own: its jittered views are other pictures.
    pub(crate) fn trunk_features(
        &self,
        engine: &Engine,
        faces: &[FaceId],
        views: usize,
        augment: Augment,
        mut progress: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<TrunkFeatures> {
        let trunk = self.installed_models()?.manifest.trunk_of(engine.model_id());
        let mut cache = TrunkCache::open(self.path(), &cache_key(trunk, augment), TRUNK_DIM)?;
        let (computed, cached) = self.fill_cache(&mut cache, faces, views, augment, |images| engine.trunk_features(images), &mut progress)?;
        let views = faces
            .iter()
            .map(|f| (0..views as u8).map(|v| cache.get(f.0, v).expect("every view was just cached").to_vec()).collect())
            .collect();
        Ok(TrunkFeatures { views, computed, cached })
    }

    /// Makes `cache` hold the first `views` views of each face: records of faces no longer in
    /// the database are dropped first, the missing views computed by `compute` (rendered from
    /// the stored crops, `FEATURE_CHUNK` faces at a time) and appended. Returns the views
    /// (computed, found cached).
    fn fill_cache(
        &self,
        cache: &mut TrunkCache,
        faces: &[FaceId],
        views: usize,
        augment: Augment,
        compute: impl Fn(&[image::RgbImage]) -> Result<Vec<Vec<f32>>>,
        mut progress: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<(usize, usize)> {
        let live: HashSet<u64> = self.all_faces()?.iter().map(|f| f.0).collect();
        cache.retain_faces(&live)?;

        let missing_views = |cache: &TrunkCache, face: FaceId| -> Vec<u8> {
            (0..views as u8).filter(|&v| !cache.contains(face.0, v)).collect()
        };
        let todo: Vec<FaceId> = faces.iter().copied().filter(|&f| !missing_views(cache, f).is_empty()).collect();
        let mut computed = 0;
        for (done, chunk) in todo.chunks(FEATURE_CHUNK).enumerate() {
            let mut images = Vec::new();
            let mut keys = Vec::new();
            for (face, crop) in chunk.iter().zip(self.crops(chunk.iter().copied())?) {
                for view in missing_views(cache, *face) {
                    images.push(render_view(&crop, face.0, view as usize, augment));
                    keys.push((face.0, view));
                }
            }
            for ((face, view), features) in keys.into_iter().zip(compute(&images)?) {
                cache.insert(face, view, features)?;
            }
            computed += images.len();
            // Appending per chunk keeps an interrupted run's work.
            cache.flush()?;
            progress(faces.len() - todo.len() + (done * FEATURE_CHUNK + chunk.len()), faces.len())?;
        }
        if todo.is_empty() {
            progress(faces.len(), faces.len())?;
        }
        Ok((computed, faces.len() * views - computed))
    }

    fn all_faces(&self) -> Result<Vec<FaceId>> {
        let mut faces = Vec::new();
        for person in self.store().people()? {
            faces.extend(self.store().faces_of(person.id)?.into_iter().map(|f| f.id));
        }
        Ok(faces)
    }

    /// Each person with two or more faces, and their faces.
    fn gallery_with_two_faces(&self) -> Result<BTreeMap<PersonId, Vec<FaceId>>> {
        let mut gallery = BTreeMap::new();
        for person in self.store().people()? {
            let faces: Vec<FaceId> = self.store().faces_of(person.id)?.into_iter().map(|f| f.id).collect();
            if faces.len() >= 2 {
                gallery.insert(person.id, faces);
            }
        }
        Ok(gallery)
    }

    fn crops(&self, faces: impl Iterator<Item = FaceId>) -> Result<Vec<image::RgbImage>> {
        faces
            .map(|id| {
                let bytes = self.store().face_crop(id)?;
                Ok(fdb_models::imageio::decode_image(&bytes, &format!("stored crop of face {}", id.0))?)
            })
            .collect()
    }

    /// Write the parent's weights with the trained head as `model`, and list it in the manifest.
    /// A head-only version shares the parent's trunk (`trunk`); a whole-network one has its own.
    fn store_model_version(&self, dir: &std::path::Path, parent: &ModelEntry, trunk: &str, model: &str, new: &NewWeights) -> Result<()> {
        let base: Vec<(String, Tensor)> = match new {
            // Checked again: the parent's file was verified when the engine loaded, minutes of
            // training ago, and a damaged trunk must not be copied into the new version.
            NewWeights::Head(_) => {
                let file = fdb_models::weights::verify::verify_entry(dir, parent)?;
                candle_core::safetensors::load(file, &Device::Cpu)?.into_iter().collect()
            }
            NewWeights::Network(tensors) => tensors.clone(),
            NewWeights::Top(top) => {
                let file = fdb_models::weights::verify::verify_entry(dir, parent)?;
                let mut all: BTreeMap<String, Tensor> = candle_core::safetensors::load(file, &Device::Cpu)?.into_iter().collect();
                for (name, t) in top {
                    if all.insert(name.clone(), t.clone()).is_none() {
                        return Err(FdbError::Invalid(format!("the trained top has {name}, which the model file lacks")));
                    }
                }
                all.into_iter().collect()
            }
        };
        let mut tensors: Vec<NamedTensor> = Vec::with_capacity(base.len());
        for (name, t) in base {
            let data = match (new, name.as_str()) {
                (NewWeights::Head(head), BOTTLENECK_WEIGHT) => head.weight.clone(),
                (NewWeights::Head(head), BOTTLENECK_BIAS) => head.bias.clone(),
                _ => t.flatten_all()?.to_vec1::<f32>()?,
            };
            tensors.push(NamedTensor::new(name, t.dims().to_vec(), data));
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let file = format!("{}.safetensors", model.replace('+', "-"));
        let entry = ModelEntry {
            id: model.into(),
            kind: "embedder".into(),
            file: file.clone(),
            parent: Some(parent.id.clone()),
            embedding_dim: parent.embedding_dim,
            default_threshold: parent.default_threshold,
            impostor_fit: parent.impostor_fit,
            // Measured figures belong to the parent; `recipe_figures` falls back to them.
            recipes: Vec::new(),
            trunk: matches!(new, NewWeights::Head(_)).then(|| trunk.to_string()),
            ..ModelEntry::default()
        };
        let entry = write_model(dir, &file, &tensors, entry)?;
        let mut manifest = weights::installed(dir)?.manifest;
        manifest.upsert(entry);
        manifest.write(dir)?;
        // The manifest read at open lacks the new version.
        self.forget_installed_models();
        Ok(())
    }
}

/// Which layers `retrain` trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layers {
    /// The bottleneck on the frozen trunk's cached features: minutes on a CPU.
    #[default]
    Head,
    /// The Block8s above a cut (the last 1–6, the final one counted) and the bottleneck, on
    /// the network's cached activations at the cut: `top:N`, or the cut's name (`mixed_7a` is
    /// `top:6`, `repeat_2.I` is `top:(5−I)`).
    Top(Cut),
    /// The whole network, through every conv: meant for a GPU.
    All,
}

impl std::str::FromStr for Layers {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "head" => Ok(Self::Head),
            "all" => Ok(Self::All),
            other => other
                .strip_prefix("top:")
                .and_then(|n| n.parse().ok())
                .and_then(Cut::below_top)
                .or_else(|| Cut::from_name(other))
                .map(Self::Top)
                .ok_or_else(|| {
                    format!("unknown --layers {other:?}: use head, top:1 … top:6 (or a cut: mixed_7a, repeat_2.0 … repeat_2.4) or all")
                }),
        }
    }
}

/// The people of each side of the split, and their faces.
struct Split<'a> {
    gallery: &'a BTreeMap<PersonId, Vec<FaceId>>,
    train: &'a [PersonId],
    val: &'a [PersonId],
}

/// What either trainer starts from.
struct Job<'a> {
    engine: &'a Engine,
    models: &'a weights::Installed,
    parent: &'a ModelEntry,
    split: Split<'a>,
    options: &'a RetrainOptions,
}

enum NewWeights {
    Head(HeadWeights),
    /// The trained top's tensors, by name; the rest are the parent's.
    Top(Vec<(String, Tensor)>),
    /// Every tensor, by name.
    Network(Vec<(String, Tensor)>),
}

/// What a training stage hands back to `retrain`.
struct Trained {
    weights: NewWeights,
    epochs: Vec<EpochLog>,
    before: Scores,
    after: Scores,
    features_computed: usize,
    features_cached: usize,
    seconds: StageSeconds,
    /// The new version's trunk features by (face, view), when they could be computed cheaply.
    new_features: Vec<((u64, u8), Vec<f32>)>,
}

fn to_scores((verification_accuracy, rank1): (f64, f64)) -> Scores {
    Scores { verification_accuracy, rank1 }
}

/// Trunk features per face (in the order asked), one row per view.
pub struct TrunkFeatures {
    /// Per face, its views' features.
    pub views: Vec<Vec<Vec<f32>>>,
    /// Views computed by the trunk in this call.
    pub computed: usize,
    /// Views found in the cache.
    pub cached: usize,
}

/// The faces of `people` (labelled by their position there) with their views.
fn feature_set(
    gallery: &BTreeMap<PersonId, Vec<FaceId>>,
    people: &[PersonId],
    views: &[Vec<Vec<f32>>],
    order: &[FaceId],
) -> FeatureSet {
    let position: std::collections::HashMap<FaceId, usize> = order.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let mut set = FeatureSet::default();
    for (label, person) in people.iter().enumerate() {
        for face in &gallery[person] {
            set.views.push(views[position[face]].clone());
            set.labels.push(label);
        }
    }
    set
}

/// Unit embeddings of `n` rows of trunk features under `head`.
fn apply_head(head: &HeadWeights, rows: Vec<f32>, n: usize) -> Result<Vec<Vec<f32>>> {
    let device = Device::Cpu;
    let w = Tensor::from_slice(&head.weight, (head.out_dim, head.in_dim), &device)?;
    let b = Tensor::from_slice(&head.bias, head.out_dim, &device)?;
    let x = Tensor::from_vec(rows, (n, head.in_dim), &device)?;
    Ok(embed_features(&x, &w, &b)?.to_vec2()?)
}

/// `Cancelled` once `cancel` is: between feature chunks.
fn stop_if_cancelled(cancel: &CancelToken, done: usize, total: usize) -> Result<()> {
    if cancel.is_cancelled() {
        return Err(FdbError::Cancelled { done, total });
    }
    Ok(())
}

/// Training stops after the epoch in which `cancel` was cancelled.
fn epoch_flow(cancel: &CancelToken) -> std::ops::ControlFlow<()> {
    if cancel.is_cancelled() {
        std::ops::ControlFlow::Break(())
    } else {
        std::ops::ControlFlow::Continue(())
    }
}

/// View 1's `pairsDevTest.txt`, in the folder above LFW's images.
pub fn clean_pairs_file(images: &Path) -> PathBuf {
    images.join("..").join("pairsDevTest.txt")
}

fn missing_model(id: &str) -> FdbError {
    FdbError::ModelNotInstalled { model: id.to_string() }
}

fn scores(set: &FeatureSet, head: &HeadWeights, device: &Device) -> Result<Scores> {
    Ok(to_scores(train::evaluate(set, head, device)?))
}

/// Person-disjoint split: a seeded shuffle, the first `fraction` of people held out.
fn split_people(gallery: &BTreeMap<PersonId, Vec<FaceId>>, fraction: f64, seed: u64) -> (Vec<PersonId>, Vec<PersonId>) {
    let mut people: Vec<PersonId> = gallery.keys().copied().collect();
    people.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let held_out = ((people.len() as f64 * fraction).round() as usize).clamp(1, people.len().saturating_sub(1).max(1));
    let train = people.split_off(held_out.min(people.len()));
    (train, people)
}

fn read_head(file: &std::path::Path) -> Result<HeadWeights> {
    let tensors = candle_core::safetensors::load(file, &Device::Cpu)?;
    let get = |name: &str| -> Result<&Tensor> {
        tensors.get(name).ok_or_else(|| FdbError::Invalid(format!("{}: no tensor {name}", file.display())))
    };
    let (w, b) = (get(BOTTLENECK_WEIGHT)?, get(BOTTLENECK_BIAS)?);
    let (out_dim, in_dim) = w.dims2()?;
    Ok(HeadWeights { weight: w.flatten_all()?.to_vec1()?, bias: b.to_vec1()?, in_dim, out_dim })
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_person_disjoint_seeded_and_keeps_both_sides_non_empty() {
        let gallery: BTreeMap<PersonId, Vec<FaceId>> =
            (0..10).map(|i| (PersonId(i), vec![FaceId(2 * i), FaceId(2 * i + 1)])).collect();
        let (train, val) = split_people(&gallery, 0.2, 3);
        assert_eq!((train.len(), val.len()), (8, 2));
        assert!(val.iter().all(|p| !train.contains(p)));
        assert_eq!(split_people(&gallery, 0.2, 3), (train, val));
        let small: BTreeMap<_, _> = gallery.into_iter().take(2).collect();
        let (t, v) = split_people(&small, 0.2, 3);
        assert_eq!((t.len(), v.len()), (1, 1));
    }
}

/// The name a trunk's caches go by for an augmentation preset: the trunk's own for `geometric`
/// (what every cache was before the presets), `<trunk>+<preset>` for the others, whose jittered
/// views are other pictures.
fn cache_key(trunk: String, augment: Augment) -> String {
    match augment {
        Augment::Geometric => trunk,
        other => format!("{trunk}+{}", other.tag()),
    }
}
