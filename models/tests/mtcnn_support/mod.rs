//! Shared helpers of the mtcnn_* tests: finding ../shared, the fixtures, the weights and the wheel.
#![allow(dead_code)]

use candle_core::Device;
use fdb_models::mtcnn::Mtcnn;
use fdb_models::weights;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[path = "../../../tests/common/data.rs"]
mod data;
#[allow(unused_imports)]
pub use data::{missing, shared, shared_with, workspace_root};

pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(name)
}

/// The installed models, installing them with pip when they are missing; a failure under
/// `FDB_REQUIRE_DATA=1`, else a visible skip, when that is impossible here.
pub fn installed_models() -> Option<&'static weights::Installed> {
    static MODELS: OnceLock<Result<weights::Installed, String>> = OnceLock::new();
    let found = MODELS.get_or_init(|| weights::ensure_installed(&weights::default_models_dir()).map_err(|e| e.to_string()));
    match found {
        Ok(found) => Some(found),
        Err(e) => missing(&format!("the installed weights ({e})")),
    }
}

/// The detector, loaded once per test binary from the installed weights.
pub fn mtcnn() -> Option<&'static Mtcnn> {
    static MODEL: OnceLock<Mtcnn> = OnceLock::new();
    let found = installed_models()?;
    Some(MODEL.get_or_init(|| Mtcnn::from_file(&found.mtcnn, &Device::Cpu).expect("installed mtcnn.safetensors loads")))
}

/// The facenet-pytorch wheel: `$FDB_WHEELS/<wheel>` when that is set, else the copy
/// `fdb models install` keeps in the models dir (an install made before it kept one gets it
/// now, with pip).
pub fn local_wheel() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FDB_WHEELS") {
        let wheel = PathBuf::from(dir).join("facenet_pytorch-2.6.0-py3-none-any.whl");
        return if wheel.is_file() { Some(wheel) } else { missing(&wheel.display().to_string()) };
    }
    let dir = &installed_models()?.dir;
    match weights::keep_mtcnn_wheel(dir, &weights::WheelOrigin::Pip) {
        Ok(wheel) => Some(wheel),
        Err(e) => missing(&format!("the facenet-pytorch wheel in {} ({e})", dir.join("wheels").display())),
    }
}

/// `../shared` with the e2e goldens and the LFW photos they were made from.
pub fn e2e_shared() -> Option<PathBuf> {
    shared_with(&["golden/e2e/golden_e2e.json", "datasets/lfw/images"])
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
