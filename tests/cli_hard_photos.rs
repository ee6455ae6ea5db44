//! Hard photos through the real binary: a tight, dark, grayscale crop found after contrast
//! normalisation, a face-crop-shaped photo with no face standing for it whole, the quality floor
//! answering "unknown (low quality)", `enroll --min-quality` refusing, and a database written
//! before quality scores (schema 2) still answering.
//!
//! The hard photos are made here from the fixture photos with the hard-conditions set's own
//! alterations (`fdb::eval::hard::alter`), at the box `fdb detect` finds in the clean photo.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, fdb, fdb_json, fixtures};
use fdb::eval::hard::alter::{crop_to, RAMP_FLOOR};
use fdb_models::photometric::{gamma, grayscale, ramp, Ramp};
use image::RgbImage;

fn person(name: &str, i: usize) -> PathBuf {
    fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg"))
}

fn load(path: &Path) -> RgbImage {
    image::open(path).unwrap().to_rgb8()
}

/// The box `fdb detect` finds in a clean photo.
fn face_box(db: &Path, photo: &Path) -> [f32; 4] {
    let (code, v) = fdb_json(db, &["detect", photo.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
    let b = &v[0]["faces"][0]["box"];
    [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap() as f32)
}

/// Enrols the three fixture people from their first two photos.
fn enrol_people(db: &Path) {
    let photos: Vec<String> = ["Colin_Powell", "Serena_Williams", "Tony_Blair"]
        .iter()
        .flat_map(|n| [1, 2].map(|i| person(n, i).display().to_string()))
        .collect();
    let mut args = vec!["enroll"];
    args.extend(photos.iter().map(String::as_str));
    let (code, v) = fdb_json(db, &args);
    assert_eq!((code, v["enrolled"].as_u64()), (Some(0), Some(6)), "{v}");
}

fn search(db: &Path, photo: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["search", photo.to_str().unwrap()];
    args.extend_from_slice(extra);
    fdb_json(db, &args)
}

#[test]
fn a_tight_dark_grayscale_crop_is_found_after_contrast_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    enrol_people(&db);
    let clean = person("Tony_Blair", 3);
    // Tight at the detector's box, grayscale, lit from the left only, darkened with γ 3.
    let crop = gamma(&ramp(&grayscale(&crop_to(&load(&clean), face_box(&db, &clean))), Ramp::LeftToRight, RAMP_FLOOR), 3.0);
    let probe = dir.path().join("tight_dark_gray.png");
    crop.save(&probe).unwrap();

    let (code, v) = search(&db, &probe, &[]);
    // Named: exit 0; "unknown" (this crop's quality may be below the floor): exit 1; never 2.
    assert_eq!(code, Some(if v[0]["faces"][0]["identity"].is_null() { 1 } else { 0 }), "{v}");
    let face = &v[0]["faces"][0];
    let source = face["source"].as_str().unwrap();
    assert!(source.starts_with("detected_after_contrast"), "found as {source}: {face}");
    assert!((0.0..=1.0).contains(&face["quality"].as_f64().unwrap()));
    // Under the centred default this crop (quality 0) ranks Tony Blair second of three, 0.04
    // behind Serena Williams: the rank-1 the centre costs on the hardest crops (held-out hard
    // set: 335 of 396 against 339 with flip, docs/benchmarks.md). It names nobody.
    assert!(face["identity"].is_null() || face["identity"] == "Tony_Blair", "a wrong name: {face}");
    let ranked: Vec<&str> = face["matches"].as_array().unwrap().iter().map(|m| m["person"].as_str().unwrap()).collect();
    assert!(ranked[..2].contains(&"Tony_Blair"), "{face}");

    // People read the flag too.
    let out = fdb(&db, &["search", probe.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[detected after contrast"), "{}", String::from_utf8_lossy(&out.stdout));

    // With the flip recipe the same crop's nearest person is the right one.
    let (code, out) = fdb_json(&db, &["models", "use", "facenet-20180408-102900", "--recipe", "flip"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, v) = search(&db, &probe, &[]);
    assert_eq!(v[0]["faces"][0]["matches"][0]["person"], "Tony_Blair", "{v}");
}

#[test]
fn a_face_crop_shaped_photo_without_a_face_stands_for_it_whole_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    enrol_people(&db);
    // The centre of the no-face fixture, cut to a 150×180 portrait: shaped like a face crop.
    let shapes = load(&fixtures().join("no_face_shapes.png"));
    let portrait = image::imageops::crop_imm(&shapes, 45, 0, 150, 180).to_image();
    let probe = dir.path().join("portrait_without_face.png");
    portrait.save(&probe).unwrap();

    let (code, v) = search(&db, &probe, &[]);
    assert_eq!(code, Some(1), "an answered search that names no one exits 1: {v}");
    let face = &v[0]["faces"][0];
    assert_eq!(face["source"], "whole_image", "{face}");
    assert_eq!(face["bbox"], serde_json::json!([0.0, 0.0, 150.0, 180.0]));
    assert!(face["identity"].is_null(), "a photo of shapes was named: {face}");

    let (code, v) = search(&db, &probe, &["--whole-image", "never"]);
    assert_eq!(code, Some(1), "{v}");
    assert!(v[0]["error"].as_str().unwrap().contains("no face"), "{v}");

    // verify flags it the same way.
    let (code, v) = fdb_json(&db, &["verify", probe.to_str().unwrap(), person("Tony_Blair", 1).to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["sources"], serde_json::json!(["whole_image", "detected"]));
}

/// The photo lit from the left only and darkened with γ 4.
fn very_dark(photo: &Path) -> RgbImage {
    gamma(&ramp(&load(photo), Ramp::LeftToRight, RAMP_FLOOR), 4.0)
}

/// A very dark photo: found after contrast normalisation, but its face quality is below the
/// floor, so the answer is "unknown (low quality)" (with the floor at 0, the distance decides).
#[test]
fn a_probe_below_the_quality_floor_answers_unknown_low_quality() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    enrol_people(&db);
    let probe = dir.path().join("dark.png");
    very_dark(&person("Tony_Blair", 4)).save(&probe).unwrap();

    let (code, v) = search(&db, &probe, &[]);
    assert_eq!(code, Some(1), "\"unknown (low quality)\" exits 1: {v}");
    let face = &v[0]["faces"][0];
    let quality = face["quality"].as_f64().unwrap();
    assert!(quality < fdb::facedb::DEFAULT_QUALITY_FLOOR as f64, "quality {quality}: {face}");
    assert_eq!((face["low_quality"].as_bool(), face["identity"].is_null()), (Some(true), true), "{face}");
    // The search still ranks people (here the nearest is the wrong one: the floor is why
    // such a probe is not named), and each match carries its gallery face's quality.
    assert!(face["matches"][0]["quality"].as_f64().unwrap() > 0.5, "{face}");

    let out = fdb(&db, &["search", probe.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown (low quality"), "{}", String::from_utf8_lossy(&out.stdout));

    let (_, v) = search(&db, &probe, &["--quality-floor", "0"]);
    let face = &v[0]["faces"][0];
    assert_eq!(face["low_quality"], false, "{face}");
    assert!(face["identity"].is_null() || face["identity"] == "Tony_Blair", "{face}");
    let (code, _) = search(&db, &probe, &["--quality-floor", "1.5"]);
    assert_eq!(code, Some(2), "a floor outside 0..1 is an error");

    // verify: a face below the floor is never "same".
    let (code, v) = fdb_json(&db, &["verify", probe.to_str().unwrap(), person("Tony_Blair", 1).to_str().unwrap()]);
    assert_eq!((code, v["same"].as_bool(), v["low_quality"].as_bool()), (Some(1), Some(false), Some(true)), "{v}");
}

#[test]
fn enroll_warns_about_low_quality_and_min_quality_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let dark = dir.path().join("Tony_Blair_dark.png");
    very_dark(&person("Tony_Blair", 4)).save(&dark).unwrap();
    let clean = person("Tony_Blair", 1);

    let (code, v) = fdb_json(&db, &["enroll", "--name", "Tony_Blair", "--min-quality", "0.5", dark.to_str().unwrap(), clean.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!((v["enrolled"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)), "{v}");
    let reason = v["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Tony_Blair_dark.png") && reason.contains("below --min-quality 0.50"), "{reason}");

    // Without --min-quality it is enrolled, with a warning that names it.
    let out = fdb(&db, &["enroll", "--name", "Tony_Blair", dark.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning") && stderr.contains("Tony_Blair_dark.png") && stderr.contains("low face quality"), "{stderr}");
}

/// `tests/fixtures/db_without_quality` was written by fdb 0.2.0 (schema 2, commit c7c0b31's
/// storage): Colin_Powell_0001/0002 and Tony_Blair_0001/0002, no quality scores.
#[test]
fn a_database_without_quality_scores_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    copy_dir(&fixtures().join("db_without_quality"), &db);

    let (code, v) = search(&db, &person("Colin_Powell", 3), &[]);
    assert_eq!(code, Some(0), "{v}");
    let face = &v[0]["faces"][0];
    assert_eq!(face["identity"], "Colin_Powell", "{face}");
    assert!(face["matches"][0]["quality"].is_null(), "an old face has unknown quality: {face}");

    // New faces get a score beside the old ones, and both kinds read back after reopening.
    let (code, v) = fdb_json(&db, &["enroll", person("Colin_Powell", 4).to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
    let (_, v) = search(&db, &person("Colin_Powell", 4), &[]);
    assert!(v[0]["faces"][0]["matches"][0]["quality"].as_f64().is_some(), "{v}");
    let (code, v) = fdb_json(&db, &["list", "Colin_Powell"]);
    assert_eq!(code, Some(0));
    let qualities: Vec<Option<f64>> = v.as_array().unwrap().iter().map(|f| f["quality"].as_f64()).collect();
    assert_eq!(qualities.len(), 3);
    assert_eq!(qualities.iter().filter(|q| q.is_none()).count(), 2, "{v}");
    let (code, v) = search(&db, &person("Tony_Blair", 3), &[]);
    assert_eq!((code, &v[0]["faces"][0]["identity"]), (Some(0), &serde_json::json!("Tony_Blair")), "{v}");
}
