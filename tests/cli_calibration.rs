//! The database calibrates its thresholds on its own galleries once it holds enough people
//! with two or more faces (`calibration::MIN_PEOPLE`, 20), through the real binary: below the
//! switch-over the model's LFW tail decides, at it the gallery's; a removal takes it back.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// Every fixture person with their photos: the 18 of `calibration/`, then the three of `people/`
/// (the first three photos each).
fn gallery() -> Vec<(String, Vec<PathBuf>)> {
    let mut people = Vec::new();
    for dir in ["calibration", "people"] {
        let mut names: Vec<PathBuf> =
            std::fs::read_dir(fixtures().join(dir)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        names.sort();
        for person in names {
            let mut photos: Vec<PathBuf> = std::fs::read_dir(&person).unwrap().map(|e| e.unwrap().path()).collect();
            photos.sort();
            photos.truncate(3);
            people.push((person.file_name().unwrap().to_string_lossy().into_owned(), photos));
        }
    }
    people
}

fn enrol(db: &std::path::Path, photos: &[PathBuf]) {
    let mut args = vec!["enroll".to_string()];
    args.extend(photos.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, summary) = fdb_json(db, &args);
    assert_eq!(code, Some(0), "{summary}");
}

fn info(db: &std::path::Path) -> Value {
    let (code, info) = fdb_json(db, &["info"]);
    assert_eq!(code, Some(0), "{info}");
    info["stats"].clone()
}

#[test]
fn thresholds_switch_to_the_gallery_calibration_at_twenty_people() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let people = gallery();
    assert_eq!(people.len(), 21);
    let probe = fixtures().join("people/Tony_Blair/Tony_Blair_0004.jpg");

    // 19 people with two or more faces: LFW's tail decides.
    let (first, rest) = people.split_at(19);
    enrol(&db, &first.iter().flat_map(|(_, p)| p.clone()).collect::<Vec<_>>());
    let below = info(&db);
    assert_eq!(below["calibration"], "lfw", "{below}");
    assert_eq!(below["gallery"]["people_with_two_faces"], 19);
    assert_eq!(below["gallery"]["needed_people"], 20);
    assert_eq!(below["verify_source"], "lfw");

    // A person with a single face does not count.
    enrol(&db, &[fixtures().join("strangers/AJ_Cook_0001.jpg")]);
    assert_eq!(info(&db)["calibration"], "lfw");

    // The 20th person with two faces: the gallery's own tail decides, for search and verify.
    enrol(&db, &rest[0].1);
    let at = info(&db);
    assert_eq!(at["calibration"], "gallery", "{at}");
    assert_eq!(at["verify_source"], "gallery");
    let g = &at["gallery"];
    assert_eq!(g["people_with_two_faces"], 20);
    // Every face is sampled (far fewer than 1000): all pairs, the same-person ones genuine.
    let faces: usize = first.iter().chain(&rest[..1]).map(|(_, p)| p.len()).sum::<usize>() + 1;
    let genuine: usize = first.iter().chain(&rest[..1]).map(|(_, p)| p.len() * (p.len() - 1) / 2).sum();
    assert_eq!(g["sampled_faces"].as_u64(), Some(faces as u64));
    assert_eq!(g["genuine_pairs"].as_u64(), Some(genuine as u64));
    assert_eq!(g["impostor_pairs"].as_u64(), Some((faces * (faces - 1) / 2 - genuine) as u64));
    // The 1:N threshold meets its target by the gallery's own tail, and is never looser than 1:1.
    let (search, verify) = (at["search_threshold"].as_f64().unwrap(), at["verify_threshold"].as_f64().unwrap());
    assert!(search <= verify, "{at}");
    let expected = at["expected_far_1n"].as_f64().unwrap();
    assert!(expected <= 0.01 + 1e-6, "{at}");
    assert!(verify <= below["verify_threshold"].as_f64().unwrap() + 1e-6, "the gallery never loosens 1:1");

    // Each answer names its calibration and the false-accept rate it expects.
    let (_, rows) = fdb_json(&db, &["search", probe.to_str().unwrap()]);
    let face = &rows[0]["faces"][0];
    // The gallery tightens the 1:N threshold, never loosens it: the answer names whose tail set it.
    assert!(["gallery", "lfw"].contains(&at["search_calibration"].as_str().unwrap()), "{at}");
    assert_eq!(face["calibration"], at["search_calibration"], "{rows}");
    assert!((face["threshold"].as_f64().unwrap() - search).abs() < 1e-6);
    assert!((face["expected_far"].as_f64().unwrap() - expected).abs() < 1e-9);
    let a = fixtures().join("people/Tony_Blair/Tony_Blair_0001.jpg");
    let (_, v) = fdb_json(&db, &["verify", a.to_str().unwrap(), probe.to_str().unwrap()]);
    assert_eq!(v["calibration"], "gallery", "{v}");
    assert!((v["threshold"].as_f64().unwrap() - verify).abs() < 1e-6);

    // `fdb threshold --far P` still sets the 1:N target, now read off the gallery's tail.
    let (code, t) = fdb_json(&db, &["threshold", "--far", "0.001"]);
    assert_eq!(code, Some(0), "{t}");
    assert_eq!(t["calibration"], "gallery");
    assert!(t["search_threshold"].as_f64().unwrap() < search, "{t}");
    assert!(t["expected_far_1n"].as_f64().unwrap() <= 0.001 + 1e-7, "{t}");

    // Removing a person takes the gallery below the switch-over again.
    let out = fdb(&db, &["remove", &rest[0].0]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = info(&db);
    assert_eq!(after["calibration"], "lfw", "{after}");
    assert_eq!(after["gallery"]["people_with_two_faces"], 19);
}
