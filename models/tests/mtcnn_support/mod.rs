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
    let dir = weights::default_models_dir();
    if let Ok(found) = weights::installed(&dir) {
        return Some(Mtcnn::from_file(&found.mtcnn, &Device::Cpu).expect("installed mtcnn.safetensors loads"));
    }
    // A downloaded wheel converts in memory, without touching the models dir.
    if let Some(wheel) = local_wheel() {
        return Some(from_wheel(&wheel));
    }
    let found = weights::ensure_installed(&dir).ok()?;
    Some(Mtcnn::from_file(&found.mtcnn, &Device::Cpu).expect("installed mtcnn.safetensors loads"))
}

fn local_wheel() -> Option<PathBuf> {
    let dir = std::env::var_os("FDB_WHEELS").map(PathBuf::from).unwrap_or_else(|| "/tmp/wheels".into());
    Some(dir.join("facenet_pytorch-2.6.0-py3-none-any.whl")).filter(|p| p.is_file())
}

/// The three networks' state dicts, read from the wheel with fdb's legacy torch reader.
pub fn wheel_state_dicts() -> Option<Vec<(&'static str, Vec<weights::NamedTensor>)>> {
    let wheel = local_wheel()?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel).ok()?).ok()?;
    let mut out = Vec::new();
    for net in ["pnet", "rnet", "onet"] {
        let mut entry = zip.by_name(&format!("facenet_pytorch/data/{net}.pt")).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).ok()?;
        out.push((net, weights::torch_legacy::read_state_dict(&bytes).expect("legacy .pt parses")));
    }
    Some(out)
}

fn from_wheel(_wheel: &Path) -> Mtcnn {
    let tensors = wheel_state_dicts()
        .expect("wheel readable")
        .into_iter()
        .flat_map(|(net, dict)| dict.into_iter().map(move |t| weights::NamedTensor { name: format!("{net}.{}", t.name), ..t }))
        .collect();
    Mtcnn::from_tensors(tensors, &Device::Cpu).expect("networks load")
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
            }
        })
        .collect()
}
