//! `fdb eval lfw|pairs|identify`: the evaluator wired to the real pipeline.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use fdb::engine::{Engine, Light};
use fdb::eval::{self, EmbedRun, EmbeddingCache, EvalOptions, EvalReport, FlipMode, ImagePair, Metric};
use fdb::eval::report_dir::{self as eval_report, NamedReport};
use fdb::eval::EngineSource;
use fdb::facedb::{EnrollOptions, FaceDb, OpenOptions};
use fdb::decision::LowerTail;
use fdb::recipe::Recipe;
use fdb::{Alignment, FdbError, Result};
use serde_json::json;

use super::args::{AlignArg, WholeImageArg};
use super::{emit, progress_bar};

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// facenet's 10-fold LFW protocol on pairs.txt.
    #[command(after_help = "Examples:\n  fdb eval lfw --dir lfw/images --pairs lfw/pairs.txt\n  fdb eval lfw --dir lfw/images --pairs lfw/pairs.txt --metric cosine --flip concat --subtract-mean\n  fdb eval lfw --dir lfw/images --pairs lfw/pairs.txt --save-threshold")]
    Lfw {
        #[command(flatten)]
        common: PairsEval,
        /// pairs.txt (View 2) or a View 1 file [default: DIR/../pairs.txt].
        #[arg(long)]
        pairs: Option<PathBuf>,
    },
    /// Random pairs from any folder-per-person dataset, evaluated the same way.
    #[command(after_help = "Example:\n  fdb eval pairs --dir faces/ --random-pairs 10000 --same-ratio 0.33 --seed 7")]
    Pairs {
        #[command(flatten)]
        common: PairsEval,
        #[arg(long, default_value_t = 10_000)]
        random_pairs: usize,
        #[arg(long, default_value_t = 0.33)]
        same_ratio: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Enrol N images per person into a scratch database, probe with the rest: rank-1 and rank-5.
    #[command(after_help = "Example:\n  fdb eval identify --dir yaleb/ --gallery 5")]
    Identify {
        /// A folder per person.
        #[arg(long)]
        dir: PathBuf,
        /// Images per person enrolled; the rest are probes.
        #[arg(long, default_value_t = 1)]
        gallery: usize,
        #[arg(long, value_enum, default_value_t = AlignArg::Crop)]
        align: AlignArg,
        /// Write an HTML report in DIR with the probes matched to the wrong person, as faces.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// How many wrong matches the report shows (the nearest first).
        #[arg(long, default_value_t = 12, value_name = "N")]
        worst: usize,
    },
    /// LFW made hard (tight crops, grayscale, dark, one-sided light, low resolution), enrolled
    /// and searched through a scratch database: faces found, rank-1, right/wrong accepts, strangers.
    #[command(after_help = "Examples:\n  fdb eval hard --lfw lfw/images --split tune --seed 16\n  fdb eval hard --lfw lfw/images --split holdout --out hard-run/")]
    Hard(HardArgs),
    /// The centre of a model for the centred recipe: the mean flip vector of every photo of the
    /// people under DIR who appear in none of the --exclude pair lists (so that it is estimated
    /// on faces the evaluation never sees). Prints it as JSON.
    #[command(after_help = "Example:\n  fdb eval centre --dir lfw/images --exclude lfw/pairs.txt --json > centre.json")]
    Centre {
        /// A folder per person.
        #[arg(long)]
        dir: PathBuf,
        /// Pair lists whose people are left out.
        #[arg(long, value_name = "PAIRS")]
        exclude: Vec<PathBuf>,
        /// The embedder [default: the base model].
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct HardArgs {
    /// LFW's images, as DIR/name/name_NNNN.jpg.
    #[arg(long)]
    lfw: PathBuf,
    /// The pairs whose photos the set leaves out [default: DIR/../pairs.txt].
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// tune: choose defaults on it; holdout: measure once, at the end.
    #[arg(long, value_enum, default_value_t = eval::hard::Split::Tune)]
    split: eval::hard::Split,
    /// Draws the people, photos and alterations (the split itself never moves).
    #[arg(long, default_value_t = 16)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    people: usize,
    #[arg(long, default_value_t = 10)]
    probes_per_person: usize,
    #[arg(long, default_value_t = 100)]
    strangers: usize,
    /// Keep the altered photos, outcomes.csv and report.json here (a temporary directory otherwise).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The searches' whole-image policy (as `fdb search --whole-image`).
    #[arg(long, value_enum, default_value_t = WholeImageArg::FaceCrops)]
    whole_image: WholeImageArg,
    /// The searches' quality floor (as `fdb search --quality-floor`).
    #[arg(long, value_name = "Q", default_value_t = fdb::facedb::DEFAULT_QUALITY_FLOOR)]
    quality_floor: f32,
    /// Normalise each aligned crop's light before embedding it, gallery and probes alike (a
    /// measurement, as `fdb eval lfw --light`).
    #[arg(long, default_value = "off", value_name = "off|equalise|clahe|auto")]
    light: Light,
}

#[derive(Args, Debug)]
pub struct PairsEval {
    /// Images as DIR/name/name_NNNN.jpg.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Metric::SquaredL2)]
    metric: Metric,
    /// Add the mirrored crop's embedding: concat (facenet) or sum (InsightFace).
    #[arg(long, value_enum, default_value_t = FlipMode::None, num_args = 0..=1, default_missing_value = "concat")]
    flip: FlipMode,
    /// Subtract the training folds' mean embedding per fold.
    #[arg(long)]
    subtract_mean: bool,
    /// Take the model's fixed centre away from each vector and normalise again: with `--flip
    /// sum`, the distances of the centred recipe's databases.
    #[arg(long)]
    centre: bool,
    #[arg(long, value_enum, default_value_t = AlignArg::Crop)]
    align: AlignArg,
    /// Normalise each aligned crop's light before embedding it: off, equalise, clahe or auto (a
    /// measurement; databases always embed crops as aligned).
    #[arg(long, default_value = "off", value_name = "off|equalise|clahe|auto")]
    light: Light,
    /// FAR target of VAL@FAR (and of the saved threshold with --save-threshold).
    #[arg(long)]
    far: Option<f64>,
    /// Write the mean ROC curve as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the ROC curve as a PNG: log-scale FAR axis, TAR at FAR 1e-4/1e-3/1e-2 marked.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write an HTML report in DIR: ROC, distance histograms with the thresholds, metrics,
    /// and the worst false accepts and false rejects as faces.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// How many of the worst false accepts (and false rejects) the report shows.
    #[arg(long, default_value_t = 8, value_name = "N")]
    worst: usize,
    /// Also evaluate this model (e.g. a retrained version) and draw both curves.
    #[arg(long, value_name = "ID")]
    compare_model: Option<String>,
    /// Also evaluate the plain protocol (squared L2, no flip, no mean) on the same pairs and
    /// draw it beside this run's curve.
    #[arg(long)]
    compare_plain: bool,
    /// Embedding cache [default: ~/.cache/fdb/eval-embeddings.bin]; `--cache none` disables it.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Store the tuned threshold in the database: accuracy-optimal, or the --far one.
    #[arg(long)]
    save_threshold: bool,
    /// The embedder to evaluate, e.g. a retrained version from `fdb models list` [default: the base model].
    #[arg(long)]
    model: Option<String>,
    /// Also measure the lower tail of the distances between every two photos of different
    /// people (not only the listed pairs): what the 1:N threshold is read from.
    #[arg(long)]
    impostor_tail: bool,
}

fn alignment(a: AlignArg) -> Alignment {
    match a {
        AlignArg::Crop => Alignment::Crop,
        AlignArg::Warp => Alignment::Warp,
    }
}

fn eval_err(e: eval::EvalError) -> FdbError {
    FdbError::Invalid(e.to_string())
}

pub fn run(command: EvalCommand, options: &OpenOptions, db_path: &Path, json: bool) -> Result<u8> {
    match command {
        EvalCommand::Lfw { common, pairs } => {
            let pairs_file = pairs.unwrap_or_else(|| common.dir.join("..").join("pairs.txt"));
            let file = eval::read_pairs(&pairs_file).map_err(eval_err)?;
            let pairs = eval::resolve_lfw_pairs(&common.dir, &file.fold_order()).map_err(eval_err)?;
            evaluate_pairs(&pairs, &common, options, db_path, json)
        }
        EvalCommand::Hard(a) => hard(a, options, json),
        EvalCommand::Centre { dir, exclude, model } => centre(&dir, &exclude, model.as_deref(), options, json),
        EvalCommand::Pairs { common, random_pairs, same_ratio, seed } => {
            let pairs = eval::random_pairs(&common.dir, random_pairs, same_ratio, seed).map_err(eval_err)?;
            evaluate_pairs(&pairs, &common, options, db_path, json)
        }
        EvalCommand::Identify { dir, gallery, align, report, worst } => {
            identify(&dir, gallery, alignment(align), report.as_deref().map(|d| (d, worst)), options, json)
        }
    }
}

fn engine(options: &OpenOptions) -> Result<Engine> {
    super::engine(options)
}

fn evaluate_pairs(pairs: &[ImagePair], c: &PairsEval, options: &OpenOptions, db_path: &Path, json: bool) -> Result<u8> {
    // The embedding cache keys by the engine's model id, so versions never mix.
    let engine = match &c.model {
        Some(model) => super::engine_of(options, model)?,
        None => engine(options)?,
    }
    .with_light(c.light);
    let eval_options = EvalOptions {
        metric: c.metric,
        subtract_mean: c.subtract_mean,
        far_target: c.far.unwrap_or(1e-3),
        flip: c.flip,
        centred: c.centre,
        ..EvalOptions::default()
    };
    let cache_path = c.cache.clone().unwrap_or_else(|| default_cache_path(options));
    let mut cache = if cache_path.as_os_str() == "none" {
        None
    } else {
        Some(EmbeddingCache::open(&cache_path).map_err(eval_err)?)
    };
    let (embeddings, fallbacks) = embed_with(&engine, pairs, c.flip, c.align, cache.as_mut(), json)?;
    let embeddings = centre_if(c.centre, &engine, embeddings)?;
    let report = eval::evaluate(&embeddings, &eval_options).map_err(eval_err)?;
    let mut compared = Vec::new();
    if let Some(model) = &c.compare_model {
        let other = super::engine_of(options, model)?.with_light(c.light);
        let (e, _) = embed_with(&other, pairs, c.flip, c.align, cache.as_mut(), json)?;
        let e = centre_if(c.centre, &other, e)?;
        compared.push((format!("{model} ({})", protocol_name(&eval_options)), eval::evaluate(&e, &eval_options).map_err(eval_err)?));
    }
    if c.compare_plain {
        let plain = EvalOptions::default();
        let (e, _) = embed_with(&engine, pairs, plain.flip, c.align, cache.as_mut(), json)?;
        compared.push((format!("{} ({})", engine.model_id(), protocol_name(&plain)), eval::evaluate(&e, &plain).map_err(eval_err)?));
    }
    if let Some(cache) = cache.as_mut() {
        cache.save().map_err(eval_err)?;
    }
    if let Some(path) = &c.csv {
        eval::report::write_roc_csv(&report, path).map_err(eval_err)?;
    }
    let mut runs = vec![NamedReport { name: format!("{} ({})", engine.model_id(), protocol_name(&eval_options)), report: &report }];
    runs.extend(compared.iter().map(|(name, other)| NamedReport { name: name.clone(), report: other }));
    let title = format!("ROC, {} pairs", report.pairs);
    if let Some(path) = &c.plot {
        eval_report::write_roc(path, &title, &runs)?;
    }
    let page = match &c.report {
        Some(dir) => {
            let product = product_thresholds(options, db_path)?;
            Some(eval_report::write_report(dir, &engine, alignment(c.align), pairs, &runs, product, c.worst)?)
        }
        None => None,
    };
    let tail = (c.impostor_tail || c.save_threshold).then(|| eval::impostor_tail(pairs, &embeddings));
    let saved = match &tail {
        Some(tail) if c.save_threshold => Some(save_threshold(&runs[0].name, &report, c.far.is_some(), tail, options, db_path)?),
        _ => None,
    };
    let tar: Vec<_> = fdb::plot::roc::MARKED_FARS.iter().map(|f| report.split_distances().tar_at_far(*f)).collect();
    let compared_json: Vec<_> = compared.iter().map(|(name, r)| json!({ "name": name, "report": r })).collect();
    emit(json, &json!({ "report": report, "tar_at_far": tar, "impostor_tail": tail, "no_face_fallbacks": fallbacks, "saved_threshold": saved, "compared": compared_json, "report_page": page }), || {
        println!("{report}");
        for t in &tar {
            let note = if t.resolvable { String::new() } else { " (too few impostor pairs: TAR at FAR 0)".into() };
            println!("TAR @ FAR={:<7} {:.5} (threshold {:.4}, FAR hit {:.5}){note}", t.far, t.tar, t.threshold, t.far_hit);
        }
        if let Some(tail) = &tail {
            println!("impostor squared-L2 distances, all {} different-person photo pairs:", tail.pairs);
            for p in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7] {
                println!("  {:>7.0e} of them below {:.4}", p, tail.quantile(p));
            }
        }
        for (name, other) in &compared {
            println!("\ncompared with {name}:\n{other}");
        }
        for path in &fallbacks {
            println!("no face found, central region used: {}", path.display());
        }
        if let Some(t) = saved {
            println!("saved verify threshold {t:.3} in {}", db_path.display());
        }
        if let Some(page) = &page {
            println!("report: {}", page.display());
        }
    });
    Ok(0)
}

/// Embeds the pairs with one engine (through the cache); returns the embeddings and the photos
/// whose central region stood in for an undetected face.
fn embed_with(
    engine: &Engine,
    pairs: &[ImagePair],
    flip: FlipMode,
    align: AlignArg,
    cache: Option<&mut EmbeddingCache>,
    json: bool,
) -> Result<(eval::PairEmbeddings, Vec<PathBuf>)> {
    let mut source = EngineSource::new(engine, alignment(align));
    let bar = progress_bar(pairs.len(), json);
    let mut run = EmbedRun::new(flip).with_progress(|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    if let Some(cache) = cache {
        run = run.with_cache(cache);
    }
    let embeddings = eval::embed_pairs(pairs, &mut source, run).map_err(eval_err)?;
    bar.finish_and_clear();
    Ok((embeddings, source.fallbacks))
}

fn centre(dir: &Path, exclude: &[PathBuf], model: Option<&str>, options: &OpenOptions, json: bool) -> Result<u8> {
    let mut excluded = std::collections::HashSet::new();
    for file in exclude {
        for pair in eval::read_pairs(file).map_err(eval_err)?.pairs {
            excluded.extend([pair.left.name, pair.right.name]);
        }
    }
    let people: Vec<_> = eval::list_people(dir).map_err(eval_err)?.into_iter().filter(|p| !excluded.contains(&p.name)).collect();
    let paths: Vec<PathBuf> = people.iter().flat_map(|p| p.images.iter().cloned()).collect();
    if paths.is_empty() {
        return Err(FdbError::Invalid(format!("{}: no photos of people outside the excluded pair lists", dir.display())));
    }
    let engine = match model {
        Some(model) => super::engine_of(options, model)?,
        None => engine(options)?,
    };
    let mut cache = EmbeddingCache::open(&default_cache_path(options)).map_err(eval_err)?;
    let mut source = EngineSource::new(&engine, Alignment::Crop);
    let bar = progress_bar(paths.len(), json);
    let run = EmbedRun::new(FlipMode::Sum).with_cache(&mut cache).with_progress(|done, _| bar.set_position(done as u64));
    let vectors = eval::embed_paths(&paths, &mut source, run).map_err(eval_err)?;
    bar.finish_and_clear();
    let dim = vectors[0].len();
    let centre: Vec<f32> = eval::mean_embedding(vectors.iter().map(Vec::as_slice), dim).into_iter().map(|x| x as f32).collect();
    let norm = centre.iter().map(|x| x * x).sum::<f32>().sqrt();
    emit(json, &json!({ "model": engine.model_id(), "people": people.len(), "photos": paths.len(), "norm": norm, "centre": centre }), || {
        println!("{}: the mean flip vector of {} photos of {} people (norm {norm:.4})", engine.model_id(), paths.len(), people.len());
        println!("{}", serde_json::to_string(&centre).expect("numbers"));
    });
    Ok(0)
}

/// With `centre`, every vector less the engine model's centre, normalised again.
fn centre_if(centre: bool, engine: &Engine, mut e: eval::PairEmbeddings) -> Result<eval::PairEmbeddings> {
    if centre {
        let c = engine.recipe_centre(Recipe::Centred)?.expect("the centred recipe has a centre");
        centre_all(e.left.iter_mut().chain(e.right.iter_mut()), c);
    }
    Ok(e)
}

/// Each vector less `centre`, normalised again (`recipe::centred` in place).
fn centre_all<'v>(vectors: impl Iterator<Item = &'v mut Vec<f32>>, centre: &[f32]) {
    for v in vectors {
        *v = fdb::recipe::centred(std::mem::take(v), centre);
    }
}

/// Where the evaluator keeps its embeddings unless told otherwise.
fn default_cache_path(options: &OpenOptions) -> PathBuf {
    options.models_dir.join("..").join("eval-embeddings.bin")
}

fn protocol_name(o: &EvalOptions) -> String {
    let metric = o.metric.describe();
    let flip = if o.flip == FlipMode::None { "" } else { ", flip" };
    let centred = if o.centred { ", centred" } else { "" };
    let mean = if o.subtract_mean { ", mean subtracted" } else { "" };
    format!("{metric}{flip}{centred}{mean}")
}

/// The thresholds of the database at `db_path`, if there is one (a report never creates one).
fn product_thresholds(options: &OpenOptions, db_path: &Path) -> Result<Option<eval_report::ProductThresholds>> {
    if !db_path.join("db").exists() {
        return Ok(None);
    }
    let db = FaceDb::open_with(db_path, options.clone())?;
    let faces = db.info()?.faces;
    let search = if faces > 0 { Some((db.thresholds().search()?, faces)) } else { None };
    Ok(Some(eval_report::ProductThresholds { verify: db.thresholds().verify()?, search }))
}

/// Store the evaluation's threshold and impostor tail in the database
/// (`ThresholdSettings::save_evaluation`), and its ROC for `fdb serve`'s page.
fn save_threshold(name: &str, report: &EvalReport, at_far: bool, tail: &LowerTail, options: &OpenOptions, db_path: &Path) -> Result<f64> {
    let db = FaceDb::open_with(db_path, options.clone())?;
    let t = db.thresholds().save_evaluation(report, at_far, tail)?;
    eval::saved_roc::SavedRoc::of(name, report).save(db.store())?;
    db.store().flush()?;
    Ok(t)
}

fn identify(
    dir: &Path,
    gallery: usize,
    alignment: Alignment,
    page: Option<(&Path, usize)>,
    options: &OpenOptions,
    json: bool,
) -> Result<u8> {
    let people = eval::list_people(dir).map_err(eval_err)?;
    let split = eval::split_gallery(&people, gallery);
    let scratch = tempfile::tempdir().map_err(|e| FdbError::Invalid(format!("a scratch database: {e}")))?;
    let db = FaceDb::open_with(scratch.path().join("db"), options.clone())?;
    let items: Vec<(String, PathBuf)> = split.gallery.iter().map(|(l, p)| (split.names[*l].clone(), p.clone())).collect();
    let bar = progress_bar(items.len() + split.probes.len(), json);
    let mut enroll_options = EnrollOptions::default();
    enroll_options.allow_whole_image = true;
    let advance = |e: fdb::ProgressEvent| bar.set_position(e.done as u64);
    let enrolled = db.enroll_many(&items, &enroll_options, &fdb::Progress::new().on_event(&advance))?;
    let failed_enrol = enrolled.iter().filter(|r| matches!(r.status, fdb::EnrollStatus::Failed { .. })).count();
    let engine = db.engine()?;
    let mut source = EngineSource::new(&engine, alignment);
    let probe_paths: Vec<PathBuf> = split.probes.iter().map(|(_, p)| p.clone()).collect();
    // Probes are embedded the way the database embedded its gallery.
    let recipe = db.models().recipe()?;
    let flip = if recipe.needs_mirror() { FlipMode::Sum } else { FlipMode::None };
    let mut probes = eval::embed_paths(&probe_paths, &mut source, EmbedRun::new(flip)).map_err(eval_err)?;
    if let Some(centre) = engine.recipe_centre(recipe)? {
        centre_all(probes.iter_mut(), centre);
    }
    bar.inc(probe_paths.len() as u64);
    let labels: Vec<usize> = split.probes.iter().map(|(l, _)| *l).collect();
    let index: std::collections::HashMap<&str, usize> = split.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut failure = None;
    let mut wrong = Vec::new();
    let report = eval::identification_accuracy(&labels, |i| match db.search_embedding(&probes[i], 5).map(|answer| answer.matches) {
        Ok(matches) => {
            if let Some(best) = matches.first().filter(|m| m.person != split.names[labels[i]]) {
                wrong.push((i, best.clone()));
            }
            matches.iter().filter_map(|m| index.get(m.person.as_str()).copied()).collect()
        }
        Err(e) => {
            failure = Some(e);
            Vec::new()
        }
    });
    bar.finish_and_clear();
    drop(db);
    if let Some(e) = failure {
        return Err(e);
    }
    let page = match page {
        Some((out, worst)) => {
            // Each wrong match as (probe, its person, the gallery photo matched, that person).
            let photo_of: std::collections::HashMap<fdb::FaceId, &Path> = enrolled
                .iter()
                .filter_map(|r| match r.status {
                    fdb::EnrollStatus::Enrolled { face, .. } => Some((face, r.path.as_path())),
                    _ => None,
                })
                .collect();
            wrong.sort_by(|a, b| a.1.distance.total_cmp(&b.1.distance));
            let mistakes: Vec<eval_report::WrongMatch> = wrong
                .iter()
                .take(worst)
                .filter_map(|(i, m)| {
                    Some(eval_report::WrongMatch {
                        probe: probe_paths[*i].clone(),
                        truth: split.names[labels[*i]].clone(),
                        matched: photo_of.get(&m.face)?.to_path_buf(),
                        matched_person: m.person.clone(),
                        distance: m.distance,
                    })
                })
                .collect();
            let title = format!("fdb identification: {} people, {} probes", split.names.len(), report.probes);
            Some(eval_report::write_identify_report(out, &engine, alignment, &title, &report, wrong.len(), &mistakes)?)
        }
        None => None,
    };
    emit(json, &json!({ "report": report, "people": split.names.len(), "gallery_images": items.len(), "gallery_failed": failed_enrol, "wrong_rank1": wrong.len(), "report_page": page }), || {
        println!(
            "{} people, {} gallery images ({} failed to enrol), {} probes: rank-1 {:.4}, rank-5 {:.4}",
            split.names.len(),
            items.len(),
            failed_enrol,
            report.probes,
            report.rank1,
            report.rank5
        );
    });
    Ok(0)
}


fn hard(a: HardArgs, options: &OpenOptions, json: bool) -> Result<u8> {
    use eval::hard::{plan, run_hard, HardRunOptions, Sizes};
    let pairs = a.pairs.unwrap_or_else(|| a.lfw.join("..").join("pairs.txt"));
    let sizes = Sizes { people: a.people, probes_per_person: a.probes_per_person, strangers: a.strangers, ..Sizes::default() };
    let plan = plan(&a.lfw, &pairs, a.split, a.seed, sizes).map_err(eval_err)?;
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).map_err(|e| FdbError::Invalid(format!("{}: {e}", out.display())))?;
    }
    let total = plan.people.iter().map(|p| p.gallery.len()).sum::<usize>() + 2 * (plan.probes.len() + plan.strangers.len());
    let bar = progress_bar(total, json);
    let mut open = options.clone().whole_image(a.whole_image.into()).quality_floor(a.quality_floor);
    open.light = a.light;
    let run_options = HardRunOptions { open, out: a.out.clone() };
    let (report, _) = run_hard(&plan, &run_options, |n, _| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if let Some(out) = &a.out {
        let path = out.join("report.json");
        let text = serde_json::to_string_pretty(&json!({ "report": report, "plan": plan })).expect("plain data");
        std::fs::write(&path, text).map_err(|e| FdbError::Invalid(format!("{}: {e}", path.display())))?;
    }
    emit(json, &report, || print!("{report}"));
    Ok(0)
}
