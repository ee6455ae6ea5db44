//! Each MTCNN network against the numpy reference outputs in golden/unit (max abs diff 1e-4),
//! and the legacy torch reader against the wheel's files.

mod mtcnn_support;

use candle_core::{Device, Tensor};
use mtcnn_support::{mtcnn, shared_or_skip, wheel_state_dicts};

const TOLERANCE: f32 = 1e-4;

fn npy(shared: &std::path::Path, name: &str) -> Tensor {
    Tensor::read_npy(shared.join("golden/unit").join(name)).expect(name).to_device(&Device::Cpu).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what} shape");
    let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    println!("{what}: max abs diff {diff:e}");
    assert!(diff < TOLERANCE, "{what}: max abs diff {diff}");
}

#[test]
fn pnet_matches_reference() {
    let (Some(shared), Some(m)) = (shared_or_skip("P-Net goldens"), mtcnn()) else { return };
    let (reg, prob) = m.pnet().forward(&npy(&shared, "mtcnn_pnet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy(&shared, "mtcnn_pnet_out0.npy"), "pnet regression");
    assert_close(&prob, &npy(&shared, "mtcnn_pnet_out1.npy"), "pnet probability");
}

#[test]
fn rnet_matches_reference() {
    let (Some(shared), Some(m)) = (shared_or_skip("R-Net goldens"), mtcnn()) else { return };
    let (reg, prob) = m.rnet().forward(&npy(&shared, "mtcnn_rnet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy(&shared, "mtcnn_rnet_out0.npy"), "rnet regression");
    assert_close(&prob, &npy(&shared, "mtcnn_rnet_out1.npy"), "rnet probability");
}

#[test]
fn onet_matches_reference() {
    let (Some(shared), Some(m)) = (shared_or_skip("O-Net goldens"), mtcnn()) else { return };
    let (reg, marks, prob) = m.onet().forward(&npy(&shared, "mtcnn_onet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy(&shared, "mtcnn_onet_out0.npy"), "onet regression");
    assert_close(&marks, &npy(&shared, "mtcnn_onet_out1.npy"), "onet landmarks");
    assert_close(&prob, &npy(&shared, "mtcnn_onet_out2.npy"), "onet probability");
}

#[test]
fn legacy_reader_keeps_keys_and_shapes() {
    let Some(dicts) = wheel_state_dicts() else {
        println!("skipping: facenet-pytorch wheel not found (set FDB_WHEELS)");
        return;
    };
    let (name, pnet) = &dicts[0];
    assert_eq!(*name, "pnet");
    let keys: Vec<&str> = pnet.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        keys,
        [
            "conv1.weight", "conv1.bias", "prelu1.weight", "conv2.weight", "conv2.bias", "prelu2.weight",
            "conv3.weight", "conv3.bias", "prelu3.weight", "conv4_1.weight", "conv4_1.bias", "conv4_2.weight",
            "conv4_2.bias"
        ]
    );
    assert_eq!(pnet[0].shape, vec![10, 3, 3, 3]);
    let onet = &dicts[2].1;
    let dense5 = onet.iter().find(|t| t.name == "dense5.weight").expect("onet dense5");
    assert_eq!(dense5.shape, vec![256, 1152]);
    // Every tensor is fully populated from its storage and finite.
    for (_, dict) in &dicts {
        for t in dict {
            assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "{}", t.name);
            assert!(t.data.iter().all(|v| v.is_finite()), "{}", t.name);
        }
    }
}
