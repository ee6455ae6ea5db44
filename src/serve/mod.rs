//! `fdb serve`: the database behind an HTTP/JSON API and a web page, so that any number of
//! programs and processes share one database (which one process holds open).
//!
//! Safety by default: it binds loopback; a bearer token (`--token-file`) is required for every
//! request on any other address, and for writes when given; bodies are limited in size and
//! photos by the library's decode limits (checked before decoding); each request has a
//! timeout; detection and embedding run on a bounded pool whose full queue answers 503 with
//! Retry-After; SIGTERM or Ctrl-C stops taking requests, lets the running ones finish and
//! closes the database. An enrolment is answered only once its faces are flushed to disk.
//!
//! The modules: [`routes`] (the endpoints), [`errors`] (JSON errors and their HTTP codes),
//! [`pool`] (the bounded detection pool), [`batch`] (searches sharing detector and embedder batches), [`metrics`] (`/metrics`), [`uploads`] (images from
//! raw bodies and multipart forms), [`auth`] (the token), [`page`] (the web page),
//! [`openapi`] (`/v1/openapi.json`), [`client`] (a small blocking client, for tests and
//! `fdb bench serve`).

pub mod auth;
pub mod batch;
pub mod client;
pub mod errors;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod pool;
pub mod routes;
pub mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{FdbError, Result};
use crate::facedb::FaceDb;

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8640";

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (port 0: any free port; the bound address is reported).
    pub listen: SocketAddr,
    /// The bearer token, if any: required for writes, and for everything on a non-loopback address.
    pub token: Option<String>,
    /// Detection and embedding jobs that run at once.
    pub workers: usize,
    /// Requests that may wait for a worker before the server answers 503.
    pub queue: usize,
    /// The largest request body, bytes.
    pub max_body: usize,
    /// How long a request may take before it is answered 504.
    pub timeout: Duration,
    /// Searches that may share one detector and embedder batch (1, the default: each runs
    /// alone; on two CPU cores sharing gained nothing measurable, see the README).
    pub batch: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            listen: DEFAULT_LISTEN.parse().expect("a socket address"),
            token: None,
            workers: cores.min(4),
            queue: 32,
            max_body: 32 << 20,
            timeout: Duration::from_secs(60),
            batch: 1,
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub db: Arc<FaceDb>,
    pub pool: Arc<pool::Pool>,
    pub batcher: batch::Batcher,
    pub metrics: metrics::Metrics,
    pub auth: auth::Auth,
    pub options: ServeOptions,
    /// The address actually bound.
    pub bound: SocketAddr,
    /// Requests in flight, all routes together.
    pub in_flight: std::sync::atomic::AtomicUsize,
}

/// Serves `db` until SIGTERM or Ctrl-C, then closes it (every write flushed). `listening` is
/// told the bound address once requests are taken. The networks are loaded before that, so
/// the first request does not pay for them.
pub fn serve(db: FaceDb, options: ServeOptions, listening: impl FnOnce(SocketAddr)) -> Result<()> {
    let auth = auth::Auth::new(options.token.clone(), &options.listen)?;
    db.engine()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(options.workers.max(1) + 16)
        .enable_all()
        .build()
        .map_err(|e| FdbError::Invalid(format!("starting the server's runtime: {e}")))?;
    let db = Arc::new(db);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| FdbError::Invalid(format!("--listen {}: {e}", options.listen)))?;
        let bound = listener.local_addr().map_err(|e| FdbError::Invalid(format!("--listen {}: {e}", options.listen)))?;
        let pool = Arc::new(pool::Pool::new(options.workers, options.queue));
        let state = Arc::new(AppState {
            db: db.clone(),
            batcher: batch::Batcher::start(db.clone(), pool.clone(), options.batch),
            pool,
            metrics: metrics::Metrics::default(),
            auth,
            options: options.clone(),
            bound,
            in_flight: Default::default(),
        });
        listening(bound);
        axum::serve(listener, routes::router(state.clone()))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|e| FdbError::Invalid(format!("the server failed: {e}")))?;
        // Jobs that outlived their requests (timed out) finish before the database closes.
        state.pool.drain().await;
        Ok::<_, FdbError>(())
    })?;
    drop(runtime); // waits for the blocking threads, which hold the database's handle
    match Arc::try_unwrap(db) {
        Ok(db) => db.close(),
        Err(db) => Ok(db.store().flush()?),
    }
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
