//! Progress and cancellation of long calls: an enrolment of many photos
//! (`FaceDb::enroll_many`), a model switch (`Models::switch_to`) and an install
//! (`Models::install`). A retrain reports its own events (`retrain::RetrainEvent`) and is
//! cancelled by the token in its options (`RetrainOptions::cancel`).
//!
//! A call is told how far it got through a callback, and stops at the next item boundary once
//! its [`CancelToken`] is cancelled, with `FdbError::Cancelled`: what it finished stays
//! (an enrolment's committed batches), and nothing is half-written (a model switch commits all
//! its vectors at once, or none).
//!
//! ```no_run
//! use fdb::{CancelToken, EnrollOptions, FaceDb, Progress, ProgressEvent};
//!
//! let db = FaceDb::open("faces.db")?;
//! let photos: Vec<(String, std::path::PathBuf)> = vec![("alice".into(), "alice_1.jpg".into())];
//! let cancel = CancelToken::new(); // a clone of it can be cancelled from another thread
//! let show = |e: ProgressEvent| eprintln!("{:?}: {} of {}", e.stage, e.done, e.total);
//! let progress = Progress::new().on_event(&show).cancel_with(&cancel);
//! match db.enroll_many(&photos, &EnrollOptions::default(), &progress) {
//!     Err(fdb::FdbError::Cancelled { done, .. }) => eprintln!("stopped; {done} photos enrolled"),
//!     other => println!("{:?}", other?.len()),
//! }
//! # Ok::<(), fdb::FdbError>(())
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{FdbError, Result};

/// The long call a [`ProgressEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Photos enrolled (detected, embedded and stored).
    Enroll,
    /// Stored faces' trunk features computed or read from the cache (a model switch).
    Features,
    /// Model weights installed.
    Install,
}

/// How far a long call got: `done` of `total` items of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProgressEvent {
    /// What is being done.
    pub stage: Stage,
    /// Items finished.
    pub done: usize,
    /// Items in all (0 when unknown).
    pub total: usize,
}

/// Asks a long call to stop at its next item boundary. Clones share one flag, so a clone can be
/// cancelled from another thread (a UI's cancel button, a request's timeout).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every call holding this token (or a clone) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a long call reports to and is stopped by: a callback for [`ProgressEvent`]s and a
/// [`CancelToken`], both optional (`Progress::new()` has neither).
#[derive(Clone, Copy, Default)]
pub struct Progress<'a> {
    on_event: Option<&'a (dyn Fn(ProgressEvent) + Sync)>,
    cancel: Option<&'a CancelToken>,
}

impl<'a> Progress<'a> {
    /// No callback, no cancellation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` as the call advances.
    pub fn on_event(mut self, f: &'a (dyn Fn(ProgressEvent) + Sync)) -> Self {
        self.on_event = Some(f);
        self
    }

    /// Stops the call at its next item boundary once `token` is cancelled.
    pub fn cancel_with(mut self, token: &'a CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Tells the callback that `done` of `total` items of `stage` are finished.
    pub(crate) fn report(&self, stage: Stage, done: usize, total: usize) {
        if let Some(f) = self.on_event {
            f(ProgressEvent { stage, done, total });
        }
    }

    /// `Cancelled { done, total }` once the token is cancelled: called between items.
    pub(crate) fn check(&self, done: usize, total: usize) -> Result<()> {
        match self.cancel {
            Some(token) if token.is_cancelled() => Err(FdbError::Cancelled { done, total }),
            _ => Ok(()),
        }
    }

    /// True once the token is cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(CancelToken::is_cancelled)
    }
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("on_event", &self.on_event.is_some())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
