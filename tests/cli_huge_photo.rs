//! A huge photo through the real binary: the detector sees a copy of at most 2048 px a side, the
//! box comes back in the photo's coordinates, and the face is cut from the full-resolution
//! pixels (the same person as the small original, at a small distance). Memory and time are
//! measured in docs/benchmarks.md ("Huge photos"), not here.

mod common;

use common::*;

#[test]
fn a_huge_photo_is_detected_on_a_bounded_copy_and_cut_at_full_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let original = fixtures().join("people/Colin_Powell/Colin_Powell_0001.jpg");
    let small = fdb_models::imageio::load_image(&original).unwrap();
    // 24× the 250 px original: 6000 × 6000 (36 MP), shrunk by 3 for the detector.
    let scale = 24u32;
    let big = image::imageops::resize(&small, 250 * scale, 250 * scale, image::imageops::FilterType::Triangle);
    let huge = tmp.path().join("huge.jpg");
    big.save(&huge).unwrap();
    drop(big);
    let db = tmp.path().join("db");

    let (code, small_rows) = fdb_json(&db, &["detect", original.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{small_rows}");
    let (code, huge_rows) = fdb_json(&db, &["detect", huge.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{huge_rows}");
    let small_box: Vec<f64> = serde_json::from_value(small_rows[0]["faces"][0]["box"].clone()).unwrap();
    let huge_box: Vec<f64> = serde_json::from_value(huge_rows[0]["faces"][0]["box"].clone()).unwrap();
    for (s, h) in small_box.iter().zip(&huge_box) {
        // The same face, in the huge photo's pixels (within 4 px of the original's scale).
        assert!((h / scale as f64 - s).abs() < 4.0, "{small_box:?} × {scale} vs {huge_box:?}");
    }

    let out = fdb(&db, &["--json", "verify", huge.to_str().unwrap(), original.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["distance"].as_f64().unwrap() < 0.3, "{v}");
}
