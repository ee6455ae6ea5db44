//! Training the whole network: on a tiny batch of real aligned crops (the shared golden e2e
//! crops), the triplet loss's gradients agree with finite differences on a few weights of the
//! first conv and of the bottleneck, and two steps lower the loss.
//! Needs `../shared` (or `$FDB_SHARED`) and the installed weights: skipped visibly without
//! them, a failure under `FDB_REQUIRE_DATA=1`.

#[path = "../../tests/common/data.rs"]
mod data;

use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use fdb_models::train::network::NetworkTrainer;
use fdb_models::train::{mined_loss, Mining};
use rand::SeedableRng;

/// A wide margin keeps every triplet active, so the loss has room to fall and is smooth.
const ALPHA: f32 = 1.5;
const LABELS: [usize; 6] = [0, 0, 1, 1, 2, 2];

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(1)
}

/// The batch's triplet loss, forward only.
fn loss(trainer: &NetworkTrainer, faces: &[image::RgbImage]) -> f32 {
    let embeddings = trainer.embed(faces).unwrap().detach();
    scalar(&mined_loss(&embeddings, &LABELS, ALPHA, Mining::Hard, &mut rng()).unwrap().loss)
}

fn set_element(var: &Var, values: &[f32], index: usize, value: f32) {
    let mut changed = values.to_vec();
    changed[index] = value;
    var.set(&Tensor::from_vec(changed, var.as_tensor().dims(), &Device::Cpu).unwrap()).unwrap();
}

/// The central difference of the loss in each of the `count` largest-gradient elements of
/// `name`, against the gradient backprop gave. Hard mining is fixed by the seed, and with the
/// wide margin no triplet crosses it at these step sizes, so the loss is smooth there.
fn check_against_finite_differences(
    trainer: &NetworkTrainer,
    faces: &[image::RgbImage],
    grads: &candle_core::backprop::GradStore,
    name: &str,
    count: usize,
) {
    let var = trainer.var(name).unwrap_or_else(|| panic!("{name} is trainable"));
    let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("the loss's gradient reaches {name}"));
    let grad = grad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let values = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut order: Vec<usize> = (0..grad.len()).collect();
    order.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
    for &i in &order[..count] {
        // A step of 1% of the weight's size (at least 1e-3): large enough to rise above f32
        // rounding of the loss, small enough for the curvature to stay negligible.
        let h = (values[i].abs() * 0.01).max(1e-3);
        set_element(&var, &values, i, values[i] + h);
        let up = loss(trainer, faces);
        set_element(&var, &values, i, values[i] - h);
        let down = loss(trainer, faces);
        set_element(&var, &values, i, values[i]);
        let numeric = (up - down) / (2.0 * h);
        let relative = (numeric - grad[i]).abs() / grad[i].abs();
        println!("{name}[{i}]: backprop {:.6e}, finite difference {numeric:.6e} (relative error {relative:.3})", grad[i]);
        assert!(relative < 0.05, "{name}[{i}]: backprop {} vs finite difference {numeric}", grad[i]);
    }
}

#[test]
fn gradients_match_finite_differences_and_two_steps_lower_the_triplet_loss() {
    let Some(crops) = data::shared("golden/e2e/crops") else {
        return;
    };
    let weights = match fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir()) {
        Ok(installed) => installed.facenet,
        Err(e) => return data::missing(&format!("the FaceNet weights ({e})")).unwrap_or(()),
    };
    // Three people, two crops each (the files come in same-person pairs).
    let mut files: Vec<PathBuf> = std::fs::read_dir(&crops).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let faces: Vec<image::RgbImage> = files[..6].iter().map(|p| image::open(p).unwrap().to_rgb8()).collect();

    let mut trainer = NetworkTrainer::load(&weights, 1e-5, 0.0, &Device::Cpu).unwrap();
    let (before, grads) = trainer.loss_and_gradients(&faces, &LABELS, ALPHA, Mining::Hard, &mut rng()).unwrap();
    let grads = grads.expect("the batch has triplets");
    check_against_finite_differences(&trainer, &faces, &grads, "conv2d_1a.weight", 2);
    check_against_finite_differences(&trainer, &faces, &grads, "bottleneck.weight", 2);
    let restored = loss(&trainer, &faces);
    assert!((restored - scalar(&before.loss)).abs() < 1e-5, "the weights were put back: {restored}");

    let first_conv = trainer.var("conv2d_1a.weight").unwrap();
    let before_weights = first_conv.as_tensor().detach().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    trainer.apply(&grads).unwrap();
    trainer.step(&faces, &LABELS, ALPHA, Mining::Hard, &mut rng()).unwrap();
    let (before, after) = (scalar(&before.loss), loss(&trainer, &faces));
    assert!(after < before, "the triplet loss went from {before} to {after}");
    let now = first_conv.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_ne!(now, before_weights, "the first conv was updated");
}

fn scalar(loss: &Option<Tensor>) -> f32 {
    loss.as_ref().expect("a loss").to_scalar::<f32>().unwrap()
}
