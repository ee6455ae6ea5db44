//! Everything the suite reads from outside the repository, checked in one place: under
//! `FDB_REQUIRE_DATA=1` (CI) this test fails listing every missing piece; without it, it
//! names them on the terminal, so a local run says which tests skipped what.

mod common;

use common::{data_required, shared_root, REQUIRE_DATA};
use fdb_models::weights;

/// What the tests read from `../shared`.
const SHARED: [&str; 7] = [
    "golden/unit/facenet_20180408_obama.json",
    "golden/unit/obama_160_input_fixed_nhwc.npy",
    "golden/e2e/golden_e2e.json",
    "golden/e2e/crops",
    "datasets/lfw/images",
    "datasets/lfw/pairs.txt",
    "datasets/lfw/lfw-names.txt",
];

#[test]
fn the_data_the_tests_need_is_here() {
    let root = shared_root();
    let mut missing: Vec<String> =
        SHARED.iter().map(|rel| root.join(rel)).filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    let models = weights::default_models_dir();
    if let Err(e) = weights::installed(&models) {
        missing.push(format!("the installed weights: {e}"));
    } else if std::env::var_os("FDB_WHEELS").is_none() {
        // Installs made before the wheel was kept get it now, as the legacy reader's test does.
        if let Err(e) = weights::keep_mtcnn_wheel(&models, &weights::WheelOrigin::Pip) {
            missing.push(format!("the facenet-pytorch wheel in {}: {e}", models.join("wheels").display()));
        }
    }
    if missing.is_empty() {
        return;
    }
    let list = missing.join("\n  ");
    assert!(!data_required(), "{REQUIRE_DATA}=1 and the tests' data is missing:\n  {list}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED (set {REQUIRE_DATA}=1 to fail instead): tests that need\n  {list}");
}
