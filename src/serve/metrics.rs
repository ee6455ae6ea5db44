//! `/metrics` in the Prometheus text format: requests and their latencies per route and
//! status, the faces in the database, and the detection queue.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

/// Latency buckets' upper bounds, seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Counts and latency histograms per (method, route, status).
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The gauges read when `/metrics` is asked for.
pub struct Gauges {
    /// Faces in the database.
    pub faces: usize,
    /// People in the database.
    pub people: usize,
    /// Requests admitted and waiting for a detection worker.
    pub queue_depth: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// Detection jobs running.
    pub running: usize,
    /// Detection workers.
    pub workers: usize,
    /// Search batches run so far, and the searches in them.
    pub batches: (u64, u64),
    /// Requests in flight, all routes (this one included).
    pub in_flight: usize,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut routes = self.routes.lock();
        let h = routes.entry((method.to_string(), route.to_string(), status)).or_default();
        h.count += 1;
        h.sum += seconds;
        for (bucket, bound) in h.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The exposition text.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().clone();
        out.push_str("# HELP fdb_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE fdb_http_requests_total counter\n");
        for ((method, route, status), h) in &routes {
            let _ = writeln!(out, "fdb_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}", h.count);
        }
        out.push_str("# HELP fdb_http_request_duration_seconds Time from request to answer, by method and route.\n");
        out.push_str("# TYPE fdb_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(&str, &str), Histogram> = BTreeMap::new();
        for ((method, route, _), h) in &routes {
            let sum = by_route.entry((method, route)).or_default();
            sum.count += h.count;
            sum.sum += h.sum;
            sum.buckets.iter_mut().zip(h.buckets).for_each(|(a, b)| *a += b);
        }
        for ((method, route), h) in &by_route {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(out, "fdb_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "fdb_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "fdb_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "fdb_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        let gauges = [
            ("fdb_faces", "Faces in the database.", g.faces),
            ("fdb_people", "People in the database.", g.people),
            ("fdb_queue_depth", "Requests waiting for a detection worker.", g.queue_depth),
            ("fdb_queue_capacity", "Requests that may wait before the server answers 503.", g.queue_capacity),
            ("fdb_jobs_running", "Detection and embedding jobs running.", g.running),
            ("fdb_workers", "Detection and embedding jobs that run at once.", g.workers),
            ("fdb_requests_in_flight", "Requests being answered, all routes (this one included).", g.in_flight),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let counters = [
            ("fdb_search_batches_total", "Detector and embedder batches run for searches.", g.batches.0),
            ("fdb_search_batched_total", "Searches answered in those batches (divided by the batches: the mean batch).", g.batches.1),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_add_up() {
        let m = Metrics::default();
        m.record("POST", "/v1/search", 200, Duration::from_millis(30));
        m.record("POST", "/v1/search", 200, Duration::from_millis(700));
        m.record("POST", "/v1/search", 422, Duration::from_millis(3));
        let g = Gauges { faces: 12, people: 3, queue_depth: 1, queue_capacity: 32, running: 2, workers: 2, batches: (4, 10), in_flight: 1 };
        let text = m.render(&g);
        let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} missing:\n{text}")).to_string();
        assert!(line("fdb_http_requests_total{method=\"POST\",route=\"/v1/search\",status=\"200\"}").ends_with(" 2"));
        assert!(line("fdb_http_requests_total{method=\"POST\",route=\"/v1/search\",status=\"422\"}").ends_with(" 1"));
        // 3 ms and 30 ms are under 0.05 s; 700 ms is not (cumulative buckets).
        assert!(line("fdb_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/search\",le=\"0.05\"}").ends_with(" 2"));
        assert!(line("fdb_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/search\",le=\"1\"}").ends_with(" 3"));
        assert!(line("fdb_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/search\"}").ends_with(" 3"));
        assert_eq!(line("fdb_faces "), "fdb_faces 12");
        assert_eq!(line("fdb_queue_depth "), "fdb_queue_depth 1");
        assert_eq!(line("fdb_search_batched_total "), "fdb_search_batched_total 10");
    }
}
