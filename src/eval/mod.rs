//! The verification evaluator: facenet's 10-fold LFW protocol (`src/lfw.py`,
//! `calculate_roc` / `calculate_val` in `src/facenet.py`), random pairs from any
//! folder-per-person dataset, and a rank-k identification protocol.
//!
//! Its measuring is independent of the networks: embeddings come from an [`EmbedSource`]
//! (`source`); [`EngineSource`] (`engine_source`) is the one that runs fdb's pipeline. With
//! the `plots` feature, `report_dir` writes an evaluation's pictures and page; `saved` keeps
//! an evaluation's threshold in a database.

pub mod cache;
pub mod dataset;
pub mod distance;
pub mod engine_source;
pub mod folds;
pub mod hard;
pub mod identify;
pub mod pairs;
pub mod mistakes;
pub mod page;
pub mod report;
#[cfg(feature = "plots")]
pub mod report_dir;
pub mod roc;
pub mod saved_roc;
pub mod saved;
pub mod source;
pub mod tar;

use std::path::PathBuf;

pub use cache::EmbeddingCache;
pub use engine_source::EngineSource;
pub use dataset::{list_people, random_pairs, PersonImages};
pub use distance::{combine_flip, mean_embedding, FlipMode, Metric};
pub use identify::{
    identification_accuracy, identify_exhaustive, split_gallery, GallerySplit, IdentifyReport,
};
pub use pairs::{read_pairs, resolve_lfw_pairs, ImagePair, PairsFile};
pub use report::{evaluate, write_roc_csv, EvalOptions, EvalReport, RocPoint};
pub use saved::impostor_tail;
pub use source::{
    embed_pairs, embed_paths, EmbedRun, EmbedSource, FnSource, PairEmbeddings, SourceId,
};

/// Embeds the pairs (flip mode from `options`) and evaluates them: the whole
/// `fdb eval lfw` / `fdb eval pairs` computation.
pub fn evaluate_pairs(
    pairs: &[ImagePair],
    source: &mut dyn EmbedSource,
    run: EmbedRun,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let embeddings = embed_pairs(
        pairs,
        source,
        EmbedRun {
            flip: options.flip,
            ..run
        },
    )?;
    evaluate(&embeddings, options)
}

/// Everything that can go wrong in an evaluation; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A line of a pairs file is malformed.
    #[error("{path}:{line}: {reason}")]
    PairsSyntax {
        /// The pairs file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Images named by the pairs file are not in the dataset.
    #[error("{count} image(s) of the pairs are missing under {dir}: {}", list_paths(.missing))]
    MissingImages {
        /// The dataset folder.
        dir: PathBuf,
        /// How many are missing.
        count: usize,
        /// The first of them.
        missing: Vec<PathBuf>,
    },
    /// Photos could not be embedded.
    #[error("embedding failed for {} image(s): {}", .failures.len(), list_failures(.failures))]
    Embedding {
        /// Each photo and why.
        failures: Vec<(PathBuf, String)>,
    },
    /// The embedding cache could not be read or written.
    #[error("embedding cache {path}: {reason}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The dataset folder cannot be used.
    #[error("dataset {dir}: {reason}")]
    Dataset {
        /// The folder.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// Options that do not fit together, or an empty input.
    #[error("invalid evaluation input: {0}")]
    Invalid(String),
    /// The plot could not be drawn or written.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The image file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// At most this many names in a message; the count says how many there are.
const LISTED: usize = 20;

fn list_paths(paths: &[PathBuf]) -> String {
    let mut s: Vec<String> = paths
        .iter()
        .take(LISTED)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > LISTED {
        s.push(format!("... and {} more", paths.len() - LISTED));
    }
    s.join(", ")
}

fn list_failures(failures: &[(PathBuf, String)]) -> String {
    let mut s: Vec<String> = failures
        .iter()
        .take(LISTED)
        .map(|(p, why)| format!("{} ({why})", p.display()))
        .collect();
    if failures.len() > LISTED {
        s.push(format!("... and {} more", failures.len() - LISTED));
    }
    s.join(", ")
}
