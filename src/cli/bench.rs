//! `fdb bench embed`: embedder throughput per batch size on the chosen device (hidden; used by
//! scripts/gpu-check.sh, where the criterion benches cannot be carried). `fdb bench serve`:
//! searches per second and their latency against a running `fdb serve`, optionally while
//! another client enrols (the README's figures).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::DType;
use clap::{Args, Subcommand, ValueEnum};
use fdb::Result;
use fdb_models::facenet::{Embedder, INPUT_SIZE};
use fdb_models::weights;
use image::RgbImage;
use serde_json::json;

use fdb::facedb::OpenOptions;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Faces per second of the embedder at each batch size.
    Embed(EmbedBench),
    /// Searches per second and latency percentiles against a running `fdb serve`.
    Serve(ServeBench),
}

#[derive(Args, Debug)]
pub struct ServeBench {
    /// The server's address (as `fdb serve` prints it: host:port).
    #[arg(long, default_value = fdb::serve::DEFAULT_LISTEN)]
    url: std::net::SocketAddr,
    /// Clients searching at once, each one request after another.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long to measure (after one warm-up search per client).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Meanwhile, one more client enrols new variants of this photo (one pixel changed each)
    /// as NAME: `NAME=PHOTO`.
    #[arg(long, value_name = "NAME=PHOTO")]
    enrol: Option<String>,
    /// The token, if the server has one (needed with --enrol).
    #[arg(long)]
    token: Option<String>,
    /// Probe photos, searched in turn.
    #[arg(required = true)]
    probes: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EmbedBench {
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,128,512")]
    batch: Vec<usize>,
    /// Time spent measuring each batch size (after one warm-up pass).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The type the network computes in.
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    dtype: DTypeArg,
    /// Aligned 160x160 crops to embed in both f32 and --dtype: reports the lowest cosine between them.
    #[arg(long, num_args = 1..)]
    agreement: Vec<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum DTypeArg {
    F32,
    F16,
    Bf16,
}

impl DTypeArg {
    fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }
}

pub fn run(command: BenchCommand, options: &OpenOptions, json: bool) -> Result<u8> {
    let a = match command {
        BenchCommand::Embed(a) => a,
        BenchCommand::Serve(a) => return serve(a, json),
    };
    let models = weights::ensure_installed(&options.models_dir)?;
    let file = models.verified_file(weights::FACENET_MODEL_ID)?;
    let device = fdb::device::select_device(options.device.as_deref())?;
    super::announce_device(&device, options.device.as_deref());
    let embedder = Embedder::load_as(&file, &device, a.dtype.dtype())?;
    let min_cosine = if a.agreement.is_empty() {
        None
    } else {
        let crops = a.agreement.iter().map(|p| super::aligned_crop(p)).collect::<Result<Vec<_>>>()?;
        let reference = Embedder::load(&file, &device)?.with_max_batch(crops.len()).embed(&crops)?;
        let ours = embedder.clone().with_max_batch(crops.len()).embed(&crops)?;
        Some(reference.iter().zip(&ours).map(|(r, o)| cosine(r, o)).fold(f64::INFINITY, f64::min))
    };
    let mut rows = Vec::new();
    for &batch in &a.batch {
        let faces = vec![test_face(); batch.max(1)];
        let embedder = embedder.clone().with_max_batch(faces.len());
        embedder.embed(&faces)?; // warm-up: kernels load, buffers are allocated
        let (mut passes, start) = (0u32, Instant::now());
        while passes == 0 || start.elapsed() < Duration::from_secs_f64(a.seconds) {
            embedder.embed(&faces)?;
            passes += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let faces_per_s = (passes as usize * faces.len()) as f64 / secs;
        let row = json!({
            "device": fdb::device::device_name(&device), "dtype": format!("{:?}", a.dtype).to_lowercase(),
            "batch": faces.len(), "passes": passes, "ms_per_batch": secs * 1e3 / passes as f64,
            "faces_per_s": faces_per_s, "min_cosine_vs_f32": min_cosine,
        });
        if !json {
            println!("batch {:>4}: {:>9.1} faces/s ({:.2} ms a batch)", faces.len(), faces_per_s, secs * 1e3 / passes as f64);
        }
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("plain data"));
    }
    Ok(0)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum::<f64>();
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

/// A smooth synthetic face-sized image: speed does not depend on the pixels.
fn test_face() -> RgbImage {
    let n = INPUT_SIZE as u32;
    RgbImage::from_fn(n, n, |x, y| image::Rgb([(x * 255 / n) as u8, (y * 255 / n) as u8, ((x + y) % 256) as u8]))
}

/// Latency percentiles, milliseconds, of `times` (seconds).
fn percentiles(times: &mut [f64]) -> serde_json::Value {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).map(|s| s * 1e3);
    json!({ "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": times.last().map(|s| s * 1e3) })
}

fn serve(a: ServeBench, json: bool) -> Result<u8> {
    use fdb::serve::client::{variant_png, Client};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let io = |path: &std::path::Path, e: std::io::Error| fdb::FdbError::Invalid(format!("{}: {e}", path.display()));
    let probes: Vec<Vec<u8>> = a.probes.iter().map(|p| std::fs::read(p).map_err(|e| io(p, e))).collect::<Result<_>>()?;
    let mut client = Client::new(a.url);
    if let Some(t) = &a.token {
        client = client.with_token(t);
    }
    let failed = |what: &str, e: String| fdb::FdbError::Invalid(format!("{what} at {}: {e}", a.url));
    for probe in &probes {
        let r = client.post("/v1/search", "application/octet-stream", probe).map_err(|e| failed("search", e.to_string()))?;
        if r.status != 200 {
            return Err(failed("search", format!("{} {}", r.status, r.text())));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let enroller = match &a.enrol {
        None => None,
        Some(spec) => {
            let (name, photo) = spec.split_once('=').ok_or_else(|| fdb::FdbError::Invalid(format!("--enrol {spec:?}: give NAME=PHOTO")))?;
            let photo = PathBuf::from(photo);
            let bytes = std::fs::read(&photo).map_err(|e| io(&photo, e))?;
            let (client, stop, name) = (client.clone(), stop.clone(), name.to_string());
            // Variants are made before the clock starts, so that encoding them costs no time measured.
            let start = (std::process::id() % 1000) * 100_000;
            let variants: Vec<Vec<u8>> = (0..2000).map(|n| variant_png(&bytes, start + n)).collect::<std::result::Result<_, _>>()
                .map_err(|e| fdb::FdbError::Invalid(format!("{}: {e}", photo.display())))?;
            Some(std::thread::spawn(move || {
                let (mut times, mut errors) = (Vec::new(), 0usize);
                for v in &variants {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let t = Instant::now();
                    match client.post(&format!("/v1/enroll?name={name}"), "image/png", v) {
                        Ok(r) if r.status == 200 => times.push(t.elapsed().as_secs_f64()),
                        _ => errors += 1,
                    }
                }
                (times, errors)
            }))
        }
    };
    let probes = Arc::new(probes);
    let started = Instant::now();
    let searchers: Vec<_> = (0..a.clients.max(1))
        .map(|c| {
            let (client, stop, probes) = (client.clone(), stop.clone(), probes.clone());
            std::thread::spawn(move || {
                let (mut times, mut errors, mut busy) = (Vec::new(), 0usize, 0usize);
                let mut i = c;
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    match client.post("/v1/search", "application/octet-stream", &probes[i % probes.len()]) {
                        Ok(r) if r.status == 200 => times.push(t.elapsed().as_secs_f64()),
                        Ok(r) if r.status == 503 => busy += 1,
                        _ => errors += 1,
                    }
                    i += 1;
                }
                (times, errors, busy)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    stop.store(true, Ordering::SeqCst);
    let (mut times, mut errors, mut busy) = (Vec::new(), 0, 0);
    for s in searchers {
        let (t, e, b) = s.join().expect("a client thread");
        times.extend(t);
        errors += e;
        busy += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let enrolments = enroller.map(|h| {
        let (mut t, e) = h.join().expect("the enrolling thread");
        json!({ "enrolled": t.len(), "errors": e, "per_s": t.len() as f64 / elapsed, "latency": percentiles(&mut t) })
    });
    let searches = times.len();
    let row = json!({
        "clients": a.clients, "seconds": elapsed, "searches": searches, "errors": errors, "busy_503": busy,
        "searches_per_s": searches as f64 / elapsed, "latency": percentiles(&mut times), "enrolments": enrolments,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&row).expect("plain data"));
    } else {
        let l = &row["latency"];
        println!(
            "{} clients, {:.1} s: {searches} searches ({:.2}/s), p50 {:.0} ms, p99 {:.0} ms, {errors} errors, {busy} busy",
            a.clients, elapsed, searches as f64 / elapsed, l["p50_ms"].as_f64().unwrap_or(f64::NAN), l["p99_ms"].as_f64().unwrap_or(f64::NAN)
        );
        if let Some(e) = &row["enrolments"].as_object() {
            println!("meanwhile {} enrolments ({:.2}/s), p50 {:.0} ms, {} errors", e["enrolled"], e["per_s"].as_f64().unwrap_or(0.0), e["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN), e["errors"]);
        }
    }
    Ok(if errors == 0 { 0 } else { 1 })
}
