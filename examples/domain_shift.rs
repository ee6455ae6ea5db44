//! The domain-shift experiment of the README's "Retraining" section: does `fdb retrain` win
//! back what a camera's domain costs the base model?
//!
//! LFW's View 1 splits people in two: `pairsDevTrain.txt` and `pairsDevTest.txt` name disjoint
//! people. Every photo they name is detected and aligned once, on the clean photo (so that the
//! detector's misses are no part of the measure); the shifted domain is each aligned crop put
//! through a seeded camera (`shift`: grayscale, one-sided light, γ darkening, low resolution,
//! JPEG), the same alterations `--augment` and the hard-conditions set use.
//!
//! - `--measure 0.5,1,2`: the base model's DevTest accuracy, clean and shifted at each strength
//!   (to choose the strength: the only thing chosen on DevTest).
//! - otherwise: the shifted crops of the DevTrain people with two or more photos in
//!   `pairsDevTrain.txt` are enrolled (`FaceDb::embed_aligned`) into `OUT/base.db`, `fdb
//!   retrain` runs on a copy of it for each `--layers` option, and every model is scored on
//!   the shifted and the clean `pairsDevTest.txt` with the evaluator (10-fold cross-validated
//!   threshold, squared L2, no flip: `fdb eval lfw`'s protocol). Writes `OUT/domain-shift.md`,
//!   `OUT/domain-shift.json` and each option's learning curve `OUT/curve-<option>.png`.
//!
//! ```sh
//! cargo run --release --example domain_shift -- --lfw ../shared/datasets/lfw --out shift/ --measure 0.5,1,2
//! cargo run --release --example domain_shift -- --lfw ../shared/datasets/lfw --out shift/ --strength 1 --layers head,top:2
//! ```
//! DevTest embeddings are computed once, at the deepest cut of the options: every model's
//! layers below it are the base's, so each model's embeddings are its top on those activations.
//!
//! A run fills each option's cache in its copy of `OUT/base.db`; copying a copy's
//! `trunk-features/` and `trunk-activations/` into `OUT/base.db` lets later runs (another
//! learning rate, more steps: `--tag` keeps their results apart) skip that work. The
//! README's later runs were made that way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use clap::Parser;
use fdb::clean_lfw::{self, PairSet};
use fdb::engine::Engine;
use fdb::retrain::{Layers, RetrainOptions, RetrainReport};
use fdb::{FaceDb, OpenOptions};
use fdb_models::facenet::Cut;
use fdb_models::photometric::{self, Ramp};
use fdb_models::train::TrainConfig;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser, Debug)]
struct Args {
    /// LFW: images/, pairsDevTrain.txt and pairsDevTest.txt.
    #[arg(long)]
    lfw: PathBuf,
    /// Aligned crops (kept for later runs), databases, models and results.
    #[arg(long)]
    out: PathBuf,
    /// Only measure the base model's DevTest accuracy at these shift strengths.
    #[arg(long, value_delimiter = ',')]
    measure: Option<Vec<f32>>,
    /// The shift's strength (see `shift`).
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// Seeds the shift of every photo.
    #[arg(long, default_value_t = 18)]
    shift_seed: u64,
    /// The retrain runs, each `LAYERS[/AUGMENT]` (`head`, `top:2`, `head/light`: --augment light --jitter 1).
    #[arg(long, value_delimiter = ',', default_value = "head,top:2")]
    layers: Vec<String>,
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 25)]
    batches: usize,
    #[arg(long, default_value_t = 40)]
    people: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// --l2-to-base: the pull of the trained weights towards the base's.
    #[arg(long, default_value_t = 0.0)]
    l2_to_base: f64,
    /// Appended to the names of this run's databases and results, to keep several runs.
    #[arg(long, default_value = "")]
    tag: String,
    /// --people-sampling: uniform, hard or hard:FLOOR.
    #[arg(long, default_value = "uniform")]
    people_sampling: String,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let images = args.lfw.join("images");
    let dev_train = PairSet::read(&args.lfw.join("pairsDevTrain.txt"), &images)?;
    let dev_test = PairSet::read(&args.lfw.join("pairsDevTest.txt"), &images)?;
    let people = |set: &PairSet| -> BTreeSet<String> { set.photos.iter().map(|p| person(p)).collect() };
    let shared = people(&dev_train).intersection(&people(&dev_test)).count();
    anyhow::ensure!(shared == 0, "DevTrain and DevTest share {shared} people");

    let models_dir = scratch_models(&args.out)?;
    let open = OpenOptions::new().models_dir(models_dir.clone()).device("cpu").install_models(false);
    let installed = fdb_models::weights::installed(&models_dir)?;
    let base = fdb_models::weights::FACENET_MODEL_ID.to_string();
    let engine = Engine::load(&installed, &base, Device::Cpu)?;

    let test_paths = &dev_test.photos;
    let started = Instant::now();
    let clean = crops(&engine, test_paths, &args)?;
    eprintln!("DevTest crops: {} ({:.0} s)", clean.len(), started.elapsed().as_secs_f64());

    let runs: Vec<(String, Layers)> = args.layers.iter().map(|o| Ok((o.clone(), o.split('/').next().unwrap().parse().map_err(anyhow::Error::msg)?))).collect::<anyhow::Result<_>>()?;
    let cut = deepest_cut(runs.iter().map(|(_, l)| *l));
    let activations = |crops: &[RgbImage]| clean_lfw::activations(&engine, crops, cut);
    let started = Instant::now();
    let clean_acts = activations(&clean)?;
    eprintln!("DevTest clean activations ({:.0} s)", started.elapsed().as_secs_f64());
    let base_file = installed.facenet.clone();
    let score = |file: &Path, acts: &[Vec<f32>]| dev_test.accuracy(&clean_lfw::top_embeddings(file, cut, acts)?);
    let clean_base = score(&base_file, &clean_acts)?;

    if let Some(strengths) = &args.measure {
        println!("base {base} on pairsDevTest.txt: clean {clean_base:.4}");
        for &s in strengths {
            let shifted: Vec<RgbImage> = test_paths.iter().zip(&clean).map(|(p, c)| shift(c, &key(p), args.shift_seed, s)).collect();
            let acc = score(&base_file, &activations(&shifted)?)?;
            println!("strength {s}: shifted {acc:.4} (drop {:.1} pt)", 100.0 * (clean_base - acc));
        }
        return Ok(());
    }

    let shifted_of = |paths: &[PathBuf], crops: &[RgbImage]| -> Vec<RgbImage> {
        paths.iter().zip(crops).map(|(p, c)| shift(c, &key(p), args.shift_seed, args.strength)).collect()
    };
    let shifted_acts = activations(&shifted_of(test_paths, &clean))?;
    let shifted_base = score(&base_file, &shifted_acts)?;
    eprintln!("base: clean {clean_base:.4}, shifted {shifted_base:.4}");

    // The gallery: DevTrain people with two or more photos in the pairs file, shifted.
    let base_db = args.out.join("base.db");
    if !base_db.exists() {
        let mut by_person: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for path in &dev_train.photos {
            by_person.entry(person(path)).or_default().push(path.clone());
        }
        let gallery: Vec<PathBuf> = by_person.into_values().filter(|v| v.len() >= 2).flatten().collect();
        let started = Instant::now();
        let train_crops = shifted_of(&gallery, &crops(&engine, &gallery, &args)?);
        let building = args.out.join("base.db.part");
        let _ = std::fs::remove_dir_all(&building);
        let db = FaceDb::open_with(&building, open.clone())?;
        for (paths, crops) in gallery.chunks(64).zip(train_crops.chunks(64)) {
            let named: Vec<(String, RgbImage)> = paths.iter().map(|p| p.display().to_string()).zip(crops.iter().cloned()).collect();
            for (path, face) in paths.iter().zip(db.embed_aligned(&named)?) {
                db.add_face(person(path).as_str(), &face)?;
            }
        }
        db.close()?;
        std::fs::rename(&building, &base_db)?;
        eprintln!("enrolled {} shifted DevTrain faces ({:.0} s)", gallery.len(), started.elapsed().as_secs_f64());
    }

    let mut rows = vec![Row {
        option: format!("base {base}"),
        shifted: shifted_base,
        clean: clean_base,
        report: None,
        cache_bytes: 0,
    }];
    for (option, layers) in &runs {
        let name = format!("{}{}", option.replace([':', '/'], "-"), args.tag);
        let dir = args.out.join(format!("{name}.db"));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&base_db, &dir)?;
        let db = FaceDb::open_with(&dir, open.clone())?;
        let augment = option.split('/').nth(1).unwrap_or("geometric").parse().map_err(anyhow::Error::msg)?;
        let mut options = RetrainOptions::default();
        options.train = TrainConfig {
            epochs: args.epochs,
            batches_per_epoch: args.batches,
            people_per_batch: args.people,
            learning_rate: args.lr,
            seed: args.seed,
            l2_to_base: args.l2_to_base,
            people: args.people_sampling.parse().map_err(anyhow::Error::msg)?,
            ..TrainConfig::default()
        };
        options.jitter = usize::from(augment != fdb_models::train::augment::Augment::Geometric);
        options.augment = augment;
        options.layers = *layers;
        let report = db.retrainer().run(&options, |_| {})?;
        eprintln!("{option}: held-out {:.4} -> {:.4}, training {:.0} s", report.before.verification_accuracy, report.after.verification_accuracy, report.seconds.training);
        let runs = [fdb::plot::learning::Run { name: option.clone(), epochs: &report.epochs, before: report.before.verification_accuracy, switched: report.switched }];
        fdb::plot::learning::write_png(&args.out.join(format!("curve-{name}.png")), &runs).map_err(anyhow::Error::msg)?;
        let file = models_dir.join(&fdb_models::weights::installed(&models_dir)?.manifest.get(&report.model).unwrap().file);
        rows.push(Row {
            option: option.clone(),
            shifted: score(&file, &shifted_acts)?,
            clean: score(&file, &clean_acts)?,
            cache_bytes: cache_bytes(&dir, *layers),
            report: Some(report),
        });
        db.close()?;
    }
    let table = table(&rows, &args);
    print!("{table}");
    std::fs::write(args.out.join(format!("domain-shift{}.md", args.tag)), &table)?;
    let json: Vec<_> = rows.iter().map(|r| serde_json::json!({ "option": r.option, "shifted": r.shifted, "clean": r.clean, "cache_bytes": r.cache_bytes, "report": r.report })).collect();
    std::fs::write(args.out.join(format!("domain-shift{}.json", args.tag)), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// The seeded camera of the shifted domain, at `strength` s (0: none), on an aligned crop:
/// grayscale; light from one side falling to a floor of 5–50% (lower with s); γ darkening of
/// 1 + s/2 … 1 + s; the face shrunk to 96/(1 + s) px (±25%) and enlarged back; JPEG quality
/// 60/(1 + s) (±25%). Each photo draws its own values from (seed, its file name).
fn shift(crop: &RgbImage, key: &str, seed: u64, strength: f32) -> RgbImage {
    if strength <= 0.0 {
        return crop.clone();
    }
    let mut rng = StdRng::seed_from_u64(seed ^ fnv1a(key));
    let s = strength;
    let jitter = |rng: &mut StdRng, v: f32| v * rng.gen_range(0.75..=1.25);
    let gray = photometric::grayscale(crop);
    let lit = photometric::ramp(&gray, Ramp::random(&mut rng), rng.gen_range(0.05..=0.5 / (1.0 + s) + 0.05));
    let dark = photometric::gamma(&lit, rng.gen_range(1.0 + s / 2.0..=1.0 + s));
    let small = photometric::low_res(&dark, crop.width() as f32, jitter(&mut rng, 96.0 / (1.0 + s)));
    photometric::jpeg_quality(&small, jitter(&mut rng, 60.0 / (1.0 + s)).round().clamp(2.0, 95.0) as u8)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A photo's name without its folder: the shift does not depend on where LFW lies.
fn key(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn person(path: &Path) -> String {
    path.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The aligned crop of each photo as `fdb eval lfw` cuts it (`clean_lfw::aligned_crops`),
/// kept as PNG under OUT/crops for later runs.
fn crops(engine: &Engine, paths: &[PathBuf], args: &Args) -> anyhow::Result<Vec<RgbImage>> {
    let saved = |p: &Path| args.out.join("crops").join(person(p)).join(key(p)).with_extension("png");
    let missing: Vec<PathBuf> = paths.iter().filter(|p| !saved(p).is_file()).cloned().collect();
    for (path, crop) in missing.iter().zip(clean_lfw::aligned_crops(engine, &missing)?) {
        std::fs::create_dir_all(saved(path).parent().unwrap())?;
        crop.save(saved(path))?;
    }
    Ok(paths.iter().map(|p| image::open(saved(p)).map(|i| i.to_rgb8())).collect::<Result<_, _>>()?)
}

/// The cut every option's trained layers lie above (the base's own top:1 when only `head` runs).
fn deepest_cut(layers: impl Iterator<Item = Layers>) -> Cut {
    layers
        .filter_map(|l| match l {
            Layers::Top(cut) => Some(cut),
            _ => None,
        })
        .min_by_key(|c| c.first_block())
        .unwrap_or_else(|| Cut::below_top(1).expect("top:1 is a cut"))
}

/// A models folder of our own under `out` (links to the installed weights), so that the
/// versions the runs write stay out of the user's.
fn scratch_models(out: &Path) -> anyhow::Result<PathBuf> {
    use fdb_models::weights;
    let dir = out.join("models");
    if dir.join(weights::Manifest::FILE).is_file() {
        return Ok(dir);
    }
    let installed = weights::ensure_installed(&weights::default_models_dir())?;
    std::fs::create_dir_all(&dir)?;
    for file in [&installed.facenet, &installed.mtcnn] {
        std::os::unix::fs::symlink(file, dir.join(file.file_name().unwrap()))?;
    }
    installed.manifest.write(&dir)?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Bytes of the cache a retrain with `layers` reads beside a database: the trunk features of
/// the head, the activations of a top.
fn cache_bytes(db: &Path, layers: Layers) -> u64 {
    let dir = match layers {
        Layers::Top(_) => "trunk-activations",
        _ => "trunk-features",
    };
    std::fs::read_dir(db.join(dir))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

struct Row {
    option: String,
    shifted: f64,
    clean: f64,
    report: Option<RetrainReport>,
    cache_bytes: u64,
}

fn table(rows: &[Row], args: &Args) -> String {
    let (x, c) = (rows[0].shifted, rows[0].clean);
    let mut t = format!(
        "shift strength {} (seed {}), {} epochs × {} batches, P = {}, lr {}, l2-to-base {}, people {}, seed {}; target: shifted ≥ {:.4} (X + (C − X)/2), clean ≥ {:.4}\n\n",
        args.strength, args.shift_seed, args.epochs, args.batches, args.people, args.lr, args.l2_to_base, args.people_sampling, args.seed, x + (c - x) / 2.0, c - 0.005
    );
    t += "| model | shifted DevTest | clean DevTest | held-out verification before → after | switched | training | cache |\n|---|---|---|---|---|---|---|\n";
    for r in rows {
        let (held, switched, training) = match &r.report {
            Some(rep) => (
                format!("{:.4} → {:.4}", rep.before.verification_accuracy, rep.after.verification_accuracy),
                if rep.switched { "yes" } else { "no" }.to_string(),
                format!("{:.0} s", rep.seconds.training),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let cache = if r.cache_bytes > 0 { format!("{:.1} MB", r.cache_bytes as f64 / 1e6) } else { "–".into() };
        t += &format!("| {} | {:.4} | {:.4} | {held} | {switched} | {training} | {cache} |\n", r.option, r.shifted, r.clean);
    }
    t
}
