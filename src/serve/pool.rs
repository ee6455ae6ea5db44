//! The bounded pool that detection and embedding run on: `workers` jobs at a time on tokio's
//! blocking threads, at most `queue` more waiting. A request is admitted (given a [`Ticket`])
//! before its body is read, so that a full queue costs the server no memory: it answers 503
//! with Retry-After at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::errors::{ApiError, ApiResult};

/// Runs blocking jobs, `workers` at once, with a bounded queue.
pub struct Pool {
    permits: Arc<Semaphore>,
    workers: usize,
    queue: usize,
    /// Admitted requests not yet running: reading their body, or waiting for a worker.
    waiting: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

/// A place in the queue; dropping it (a finished, failed or timed-out request) gives it back.
pub struct Ticket {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

impl Pool {
    /// A pool of `workers` (at least 1) with room for `queue` waiting requests.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            queue,
            waiting: Arc::default(),
            running: Arc::default(),
        }
    }

    /// A place in the queue, or 503 `busy` when it is full.
    pub fn admit(&self) -> ApiResult<Ticket> {
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        if before >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::busy(self.queue));
        }
        Ok(Ticket { permits: self.permits.clone(), waiting: self.waiting.clone(), running: self.running.clone() })
    }

    /// Requests waiting (admitted, not yet running).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// How many jobs run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many requests may wait.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Waits until no job runs (at shutdown, before the database is closed).
    pub async fn drain(&self) {
        let all = u32::try_from(self.workers).unwrap_or(u32::MAX);
        if let Ok(permits) = self.permits.acquire_many(all).await {
            drop(permits);
        }
    }
}

/// A free worker, held until its job ends.
pub struct Worker {
    permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
}

impl Pool {
    /// Waits for a free worker (the search batches take one for all their requests).
    pub async fn worker(&self) -> ApiResult<Worker> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| shutting_down())?;
        Ok(Worker { permit, running: self.running.clone() })
    }
}

impl Worker {
    /// Runs `job` on a blocking thread. A job that started runs to its end and holds its
    /// worker until then, even when its request timed out, so no more than `workers` ever run.
    pub async fn run<T: Send + 'static>(self, job: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let Worker { permit, running } = self;
        let running = Running::start(running);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = running;
            job()
        })
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("the job failed: {e}")))
    }
}

impl Ticket {
    /// Runs `job` on a blocking thread once a worker is free (see [`Worker::run`]).
    pub async fn run<T: Send + 'static>(self, job: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| shutting_down())?;
        let worker = Worker { permit, running: self.running.clone() };
        drop(self); // no longer waiting
        worker.run(job).await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a running job until it ends.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_and_places_come_back() {
        let pool = Pool::new(1, 2);
        let a = pool.admit().unwrap();
        let b = pool.admit().unwrap();
        let full = pool.admit().err().expect("the third request finds the queue full");
        assert_eq!((full.status.as_u16(), full.kind, full.retry_after), (503, "busy", Some(1)));
        assert_eq!(pool.waiting(), 2);
        drop(a);
        assert_eq!(pool.waiting(), 1);
        assert_eq!(b.run(|| 6 * 7).await.unwrap(), 42);
        assert_eq!((pool.waiting(), pool.running()), (0, 0));
        pool.admit().expect("room again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_workers_run_at_once() {
        let pool = Arc::new(Pool::new(2, 16));
        let peak = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (ticket, peak, now) = (pool.admit().unwrap(), peak.clone(), now.clone());
                tokio::spawn(ticket.run(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        pool.drain().await;
    }
}
