//! Each MTCNN network against the numpy reference outputs of golden/unit (max abs diff 1e-4),
//! read from their copies in `tests/fixtures/golden` (checked against `../shared` when it is
//! there), and the legacy torch reader against the wheel `fdb models install` keeps.

mod mtcnn_support;

use candle_core::{Device, Tensor};
use fdb_models::mtcnn::read_facenet_pytorch_wheel;
use mtcnn_support::{fixture, local_wheel, mtcnn, shared};

const TOLERANCE: f32 = 1e-4;

fn npy(name: &str) -> Tensor {
    Tensor::read_npy(fixture("golden").join(name)).expect(name).to_device(&Device::Cpu).unwrap()
}

const GOLDENS: [&str; 10] = [
    "mtcnn_pnet_input_nchw.npy",
    "mtcnn_pnet_out0.npy",
    "mtcnn_pnet_out1.npy",
    "mtcnn_rnet_input_nchw.npy",
    "mtcnn_rnet_out0.npy",
    "mtcnn_rnet_out1.npy",
    "mtcnn_onet_input_nchw.npy",
    "mtcnn_onet_out0.npy",
    "mtcnn_onet_out1.npy",
    "mtcnn_onet_out2.npy",
];

#[test]
fn the_fixtures_are_the_shared_goldens() {
    let Some(unit) = shared("golden/unit") else { return };
    for name in GOLDENS {
        let copy = std::fs::read(fixture("golden").join(name)).expect(name);
        assert!(copy == std::fs::read(unit.join(name)).expect(name), "tests/fixtures/golden/{name} differs from ../shared");
    }
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what} shape");
    let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    println!("{what}: max abs diff {diff:e}");
    assert!(diff < TOLERANCE, "{what}: max abs diff {diff}");
}

#[test]
fn pnet_matches_reference() {
    let Some(m) = mtcnn() else { return };
    let (reg, prob) = m.pnet().forward(&npy("mtcnn_pnet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy("mtcnn_pnet_out0.npy"), "pnet regression");
    assert_close(&prob, &npy("mtcnn_pnet_out1.npy"), "pnet probability");
}

#[test]
fn rnet_matches_reference() {
    let Some(m) = mtcnn() else { return };
    let (reg, prob) = m.rnet().forward(&npy("mtcnn_rnet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy("mtcnn_rnet_out0.npy"), "rnet regression");
    assert_close(&prob, &npy("mtcnn_rnet_out1.npy"), "rnet probability");
}

#[test]
fn onet_matches_reference() {
    let Some(m) = mtcnn() else { return };
    let (reg, marks, prob) = m.onet().forward(&npy("mtcnn_onet_input_nchw.npy")).unwrap();
    assert_close(&reg, &npy("mtcnn_onet_out0.npy"), "onet regression");
    assert_close(&marks, &npy("mtcnn_onet_out1.npy"), "onet landmarks");
    assert_close(&prob, &npy("mtcnn_onet_out2.npy"), "onet probability");
}

#[test]
fn legacy_reader_keeps_keys_and_shapes() {
    let Some(wheel) = local_wheel() else { return };
    let tensors = read_facenet_pytorch_wheel(&wheel).unwrap();
    let pnet: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).filter(|n| n.starts_with("pnet.")).collect();
    assert_eq!(
        pnet,
        [
            "pnet.conv1.weight", "pnet.conv1.bias", "pnet.prelu1.weight", "pnet.conv2.weight", "pnet.conv2.bias",
            "pnet.prelu2.weight", "pnet.conv3.weight", "pnet.conv3.bias", "pnet.prelu3.weight", "pnet.conv4_1.weight",
            "pnet.conv4_1.bias", "pnet.conv4_2.weight", "pnet.conv4_2.bias"
        ]
    );
    let shape = |name: &str| tensors.iter().find(|t| t.name == name).map(|t| t.shape.clone());
    assert_eq!(shape("pnet.conv1.weight"), Some(vec![10, 3, 3, 3]));
    assert_eq!(shape("rnet.dense4.weight"), Some(vec![128, 576]));
    assert_eq!(shape("onet.dense5.weight"), Some(vec![256, 1152]));
    // 13 + 16 + 21 tensors, each fully populated from its storage and finite.
    assert_eq!(tensors.len(), 50);
    for t in &tensors {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "{}", t.name);
        assert!(t.data.iter().all(|v| v.is_finite()), "{}", t.name);
    }
}
