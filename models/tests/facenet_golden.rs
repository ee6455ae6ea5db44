//! FaceNet embeddings against the reference runtime (OpenCV dnn on the original frozen graph).
//!
//! The obama/biden check runs from `tests/fixtures/golden/` (in the repo); the exact-input and
//! LFW e2e checks need `../shared` (or `$FDB_SHARED`): skipped visibly without it, a failure
//! under `FDB_REQUIRE_DATA=1`. Weights come from the
//! install (`ensure_installed`), or from `$FDB_FACENET_WEIGHTS` (a converted safetensors file).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fdb_models::facenet::{preprocess, EmbedError, Embedder};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

#[path = "../../tests/common/data.rs"]
mod data;

use data::{missing, shared_with, workspace_root};

fn fixtures() -> PathBuf {
    workspace_root().join("tests/fixtures/golden")
}

fn embedder() -> Option<Embedder> {
    let weights = match std::env::var_os("FDB_FACENET_WEIGHTS") {
        Some(path) => PathBuf::from(path),
        None => match fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()) {
            Ok(installed) => installed.facenet,
            Err(e) => return missing(&format!("the FaceNet weights, which could not be installed ({e})")),
        },
    };
    Some(Embedder::load(&weights, &Device::Cpu).expect("installed weights load"))
}

fn load_png(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("a JSON array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

#[test]
fn obama_and_biden_match_the_reference_embeddings() {
    let Some(embedder) = embedder() else { return };
    let expected = read_json(&fixtures().join("facenet_expected.json"));
    let names = ["obama_160.png", "biden_160.png"];
    let got = embedder.embed(&names.map(|f| load_png(&fixtures().join(f)))).unwrap();
    for (name, embedding) in names.iter().zip(&got) {
        let diff = max_abs_diff(embedding, &floats(&expected[name]));
        assert!(diff <= TOLERANCE, "{name}: max abs diff {diff}");
    }
    let distance = l2(&got[0], &got[1]);
    let expected_distance = expected["l2_obama_vs_biden"].as_f64().unwrap() as f32;
    assert!((distance - expected_distance).abs() <= TOLERANCE, "L2 {distance} vs {expected_distance}");
}

#[test]
fn the_fixtures_are_the_shared_reference() {
    let Some(shared) = shared_with(&["golden/unit"]) else { return };
    let unit = shared.join("golden/unit");
    let reference = read_json(&unit.join("facenet_20180408_obama.json"));
    let fixture = read_json(&fixtures().join("facenet_expected.json"));
    assert_eq!(fixture["obama_160.png"], reference["embedding_fixed"]);
    assert_eq!(fixture["biden_160.png"], reference["biden_embedding_fixed"]);
    assert_eq!(fixture["l2_obama_vs_biden"], reference["l2_obama_vs_biden_fixed"]);
    for png in ["obama_160.png", "biden_160.png"] {
        assert_eq!(std::fs::read(fixtures().join(png)).unwrap(), std::fs::read(unit.join(png)).unwrap(), "{png}");
    }
}

#[test]
fn preprocessing_gives_the_exact_reference_input() {
    let Some(shared) = shared_with(&["golden/unit"]) else { return };
    let unit = shared.join("golden/unit");
    let expected = Tensor::read_npy(unit.join("obama_160_input_fixed_nhwc.npy")).unwrap();
    let got = preprocess(&[load_png(&unit.join("obama_160.png"))], &Device::Cpu).unwrap();
    assert_eq!(got.dims(), [1, 3, 160, 160]);
    let got = got.permute((0, 2, 3, 1)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let expected = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(max_abs_diff(&got, &expected), 0.0);
}

#[test]
fn lfw_crops_match_the_e2e_reference() {
    let Some(shared) = shared_with(&["golden/e2e"]) else { return };
    let Some(embedder) = embedder() else { return };
    let e2e = shared.join("golden/e2e");
    let golden = read_json(&e2e.join("golden_e2e.json"));
    let images = golden["images"].as_array().unwrap();
    assert_eq!(images.len(), 24);
    let crops: Vec<_> = images.iter().map(|im| load_png(&e2e.join(im["crop_png"].as_str().unwrap()))).collect();
    let got = embedder.with_max_batch(8).embed(&crops).unwrap();
    for (image, embedding) in images.iter().zip(&got) {
        let diff = max_abs_diff(embedding, &floats(&image["embedding"]));
        assert!(diff < TOLERANCE, "{}: max abs diff {diff}", image["crop_png"]);
    }
}

#[test]
fn a_face_embeds_the_same_alone_and_in_a_batch() {
    let Some(embedder) = embedder() else { return };
    let obama = load_png(&fixtures().join("obama_160.png"));
    let biden = load_png(&fixtures().join("biden_160.png"));
    let alone = embedder.embed(std::slice::from_ref(&biden)).unwrap();
    let batch = embedder.with_max_batch(2).embed(&[obama.clone(), biden, obama]).unwrap();
    assert_eq!(batch.len(), 3);
    assert!(max_abs_diff(&alone[0], &batch[1]) < 1e-5);
    assert!(max_abs_diff(&batch[0], &batch[2]) < 1e-5);
    let norm: f32 = batch[1].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn a_face_of_the_wrong_size_is_refused_with_its_index() {
    let Some(embedder) = embedder() else { return };
    let good = load_png(&fixtures().join("obama_160.png"));
    let err = embedder.embed(&[good, image::RgbImage::new(100, 120)]).unwrap_err();
    assert!(matches!(err, EmbedError::WrongSize { index: 1, width: 100, height: 120 }), "{err}");
    assert!(err.to_string().contains("face 1 is 100×120"), "{err}");
}
