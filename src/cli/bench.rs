//! `fdb bench embed`: embedder throughput per batch size on the chosen device (hidden; used by
//! scripts/gpu-check.sh, where the criterion benches cannot be carried).

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
    let BenchCommand::Embed(a) = command;
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
