//! Training the whole network: on a tiny batch of real aligned crops (the shared golden e2e
//! crops), the triplet loss's gradients reach the first conv, and two steps lower the loss.
//! Needs `../shared` (or `$FDB_SHARED`) and the installed weights; skips without them.

use std::path::{Path, PathBuf};

use candle_core::Device;
use fdb_models::train::network::NetworkTrainer;
use fdb_models::train::Mining;
use rand::SeedableRng;

fn shared() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("models/ sits in the workspace");
    let dir = std::env::var_os("FDB_SHARED").map(PathBuf::from).unwrap_or_else(|| root.join("../shared"));
    let crops = dir.join("golden/e2e/crops");
    if crops.is_dir() {
        Some(crops)
    } else {
        println!("skipping: no golden crops at {} (set FDB_SHARED)", crops.display());
        None
    }
}

#[test]
fn gradients_reach_the_first_conv_and_two_steps_lower_the_triplet_loss() {
    let Some(crops) = shared() else { return };
    let weights = match fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()) {
        Ok(installed) => installed.facenet,
        Err(e) => return println!("skipping: FaceNet weights are not installed: {e}"),
    };
    // Three people, two crops each (the files come in same-person pairs).
    let mut files: Vec<PathBuf> = std::fs::read_dir(&crops).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let faces: Vec<image::RgbImage> = files[..6].iter().map(|p| image::open(p).unwrap().to_rgb8()).collect();
    let labels = [0, 0, 1, 1, 2, 2];
    // A wide margin keeps every triplet active, so the loss has room to fall.
    let alpha = 1.5;

    let mut trainer = NetworkTrainer::load(&weights, 1e-5, 0.0, &Device::Cpu).unwrap();
    let rng = || rand::rngs::StdRng::seed_from_u64(1);
    let (before, grads) = trainer.loss_and_gradients(&faces, &labels, alpha, Mining::Hard, &mut rng()).unwrap();
    let grads = grads.expect("the batch has triplets");
    let first_conv = trainer.var("conv2d_1a.weight").expect("the first conv is trainable");
    let g = grads.get(first_conv.as_tensor()).expect("the loss's gradient reaches the first conv");
    let g_norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(g_norm > 0.0 && g_norm.is_finite(), "{g_norm}");
    let before_weights = first_conv.as_tensor().detach().flatten_all().unwrap().to_vec1::<f32>().unwrap();

    trainer.apply(&grads).unwrap();
    trainer.step(&faces, &labels, alpha, Mining::Hard, &mut rng()).unwrap();
    let (after, _) = trainer.loss_and_gradients(&faces, &labels, alpha, Mining::Hard, &mut rng()).unwrap();
    let (before, after) = (scalar(&before.loss), scalar(&after.loss));
    assert!(after < before, "the triplet loss went from {before} to {after}");
    let now = first_conv.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_ne!(now, before_weights, "the first conv was updated");
}

fn scalar(loss: &Option<candle_core::Tensor>) -> f32 {
    loss.as_ref().expect("a loss").to_scalar::<f32>().unwrap()
}
