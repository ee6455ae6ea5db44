//! Cutting the network between its Block8s: on the fixture crops (`tests/fixtures/golden`, in
//! the repo), the network up to any cut and then from it is the whole network, through the
//! flattened activations a cache stores; and the trainable top above a cut, loaded from the
//! model file and not yet updated (its vars send the convs down candle's differentiable ops),
//! gives the model file's embeddings. Both to 1e-5. Weights come from the install.

#[path = "../../tests/common/data.rs"]
mod data;

use candle_core::{Device, Tensor};
use fdb_models::facenet::{Cut, Embedder, BLOCK8_COUNT, CUT_SHAPE};
use fdb_models::train::top::TopTrainer;
use fdb_models::train::TrainConfig;

const TOLERANCE: f32 = 1e-5;

fn weights() -> Option<std::path::PathBuf> {
    match fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()) {
        Ok(installed) => Some(installed.facenet),
        Err(e) => data::missing(&format!("the FaceNet weights, which could not be installed ({e})")),
    }
}

fn crops() -> Vec<image::RgbImage> {
    ["biden_160.png", "obama_160.png"]
        .iter()
        .map(|f| image::open(data::workspace_root().join("tests/fixtures/golden").join(f)).unwrap().to_rgb8())
        .collect()
}

fn worst(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Flattened activations (as cached) back to `[N, 3, 3, 1792]`.
fn as_tensor(rows: &[Vec<f32>]) -> Tensor {
    let (h, w, c) = CUT_SHAPE;
    Tensor::from_vec(rows.concat(), (rows.len(), h, w, c), &Device::Cpu).unwrap()
}

#[test]
fn forward_from_a_cut_after_forward_to_it_is_the_whole_network() {
    let Some(weights) = weights() else { return };
    let embedder = Embedder::load(&weights, &Device::Cpu).unwrap();
    let crops = crops();
    let full = embedder.embed(&crops).unwrap();
    for n in 1..=BLOCK8_COUNT {
        let cut = Cut::below_top(n).unwrap();
        assert_eq!(Cut::from_name(&cut.name()), Some(cut));
        let activations = embedder.activations(&crops, cut).unwrap();
        assert_eq!(activations[0].len(), 3 * 3 * 1792);
        let joined = embedder.model().forward_from(cut, &as_tensor(&activations)).unwrap().to_vec2::<f32>().unwrap();
        let diff = worst(&joined, &full);
        assert!(diff < TOLERANCE, "top:{n} ({}): {diff}", cut.name());
    }
    assert_eq!(Cut::below_top(0), None);
    assert_eq!(Cut::below_top(7), None);
    assert_eq!(Cut::REDUCTION_B.name(), "mixed_7a");
    assert!(Cut::below_top(1).unwrap().is_above("block8.conv2d.weight"));
    assert!(!Cut::below_top(1).unwrap().is_above("repeat_2.4.conv2d.weight"));
    assert!(Cut::below_top(2).unwrap().is_above("repeat_2.4.branch_1.2.bias"));
    assert!(Cut::below_top(2).unwrap().is_above("bottleneck.weight"));
    assert!(!Cut::REDUCTION_B.is_above("mixed_7a.branch_0.0.weight"));
}

#[test]
fn the_trainable_top_before_any_update_gives_the_model_files_embeddings() {
    let Some(weights) = weights() else { return };
    let embedder = Embedder::load(&weights, &Device::Cpu).unwrap();
    let crops = crops();
    let full = embedder.embed(&crops).unwrap();
    for n in [1, 2, BLOCK8_COUNT] {
        let cut = Cut::below_top(n).unwrap();
        let trainer = TopTrainer::load(&weights, cut, &TrainConfig::default(), &Device::Cpu).unwrap();
        let names: Vec<String> = trainer.tensors().into_iter().map(|(name, _)| name).collect();
        assert!(names.iter().all(|name| cut.is_above(name)), "{names:?}");
        // Block8: 1 + 3 branch convs and the up-projection, weight and bias each; the bottleneck's two.
        assert_eq!(names.len(), n * 10 + 2);
        let activations = as_tensor(&embedder.activations(&crops, cut).unwrap());
        let tracked = trainer.embed(&activations).unwrap();
        assert!(tracked.track_op(), "the top's output carries gradients");
        let diff = worst(&tracked.to_vec2::<f32>().unwrap(), &full);
        assert!(diff < TOLERANCE, "top:{n}, trainable: {diff}");
        let frozen = trainer.frozen().unwrap().forward(&activations).unwrap().to_vec2::<f32>().unwrap();
        let diff = worst(&frozen, &full);
        assert!(diff < TOLERANCE, "top:{n}, frozen copy: {diff}");
    }
}
