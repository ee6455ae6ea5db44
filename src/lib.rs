//! fdb: an embedded face-match database. Photos go in, FaceNet embeddings are computed with
//! candle and stored in sled with an HNSW index; `search` answers who a face is (1:N) and
//! `verify` whether two faces are the same person (1:1).
//!
//! ```no_run
//! let db = fdb::FaceDb::open("faces.db")?;
//! db.enroll("alice", &["alice_1.jpg", "alice_2.jpg"])?;
//! let answer = db.search("probe.jpg", 5)?;
//! println!("{:?} (threshold {})", answer.identity, answer.threshold);
//! # Ok::<(), fdb::FdbError>(())
//! ```

pub mod decision;
pub mod device;
pub mod engine;
pub mod error;
pub mod eval;
pub mod eval_source;
pub mod facedb;
pub mod plot;
pub mod retrain;
pub mod trunk_cache;

pub use engine::{Alignment, FaceChoice};
pub use error::{FdbError, Result};
pub use facedb::{
    default_db_path, EnrollOptions, EnrollReport, EnrollStatus, FaceDb, Match, OpenOptions, SearchResult, Stats,
    Verification,
};
