//! The embedding recipe through the real binary: the flip vector is the normalised sum of the
//! crop's and its mirror's embeddings (checked on the golden crop), and a database enrolled with
//! plain embeddings is searched with plain probes until `fdb models use` migrates it.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const MODEL: &str = "facenet-20180408-102900";

fn vector(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn embed(db: &Path, recipe: &str, paths: &[&Path]) -> Vec<Vec<f64>> {
    let mut args = vec!["embed", "--recipe", recipe];
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let (code, rows) = fdb_json(db, &args);
    assert_eq!(code, Some(0), "{}", rows.as_array().into_iter().flatten().filter_map(|r| r.get("error")).map(|e| e.to_string()).collect::<Vec<_>>().join(", "));
    rows.as_array().unwrap().iter().map(|r| vector(&r["embedding"])).collect()
}

fn squared_l2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[test]
fn the_flip_vector_is_the_normalised_sum_of_the_golden_crop_and_its_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let crop = fixtures().join("golden/obama_160.png");
    let mirror = tmp.path().join("obama_160_mirror.png");
    image::imageops::flip_horizontal(&image::open(&crop).unwrap().to_rgb8()).save(&mirror).unwrap();
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden/facenet_expected.json")).unwrap()).unwrap();
    let golden = vector(&golden["obama_160.png"]);

    let db = tmp.path().join("db");
    let mut args = vec!["embed", "--aligned"];
    let (c, m) = (crop.display().to_string(), mirror.display().to_string());
    args.extend([c.as_str(), m.as_str()]);
    let (code, plain) = fdb_json(&db, &args);
    assert_eq!(code, Some(0), "{plain}");
    let (crop_e, mirror_e) = (vector(&plain[0]["embedding"]), vector(&plain[1]["embedding"]));
    // The plain path is the golden one (OpenCV's embedding of the same crop).
    assert!(squared_l2(&crop_e, &golden) < 1e-6, "{}", squared_l2(&crop_e, &golden));
    assert!(squared_l2(&crop_e, &mirror_e) > 0.01, "the mirror is a different picture to the network");

    let (code, flip) = fdb_json(&db, &["embed", "--aligned", "--recipe", "flip", c.as_str()]);
    assert_eq!(code, Some(0), "{flip}");
    let flip = vector(&flip[0]["embedding"]);
    // By hand: golden + mirror, divided by its length.
    let sum: Vec<f64> = golden.iter().zip(&mirror_e).map(|(a, b)| a + b).collect();
    let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt();
    let by_hand: Vec<f64> = sum.iter().map(|v| v / norm).collect();
    let worst = flip.iter().zip(&by_hand).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4, "flip vector differs from the hand-built sum by {worst}");

    // Centred: the same sum less the model's centre, divided by its length.
    let (code, centred) = fdb_json(&db, &["embed", "--aligned", "--recipe", "centred", c.as_str()]);
    assert_eq!(code, Some(0), "{centred}");
    let centred = vector(&centred[0]["embedding"]);
    let figures = fdb_models::weights::base_figures::facenet_recipes();
    let centre = &figures.iter().find(|f| f.recipe == "centred").expect("the base model has a centre").centre;
    assert_eq!(centre.len(), 512);
    let less: Vec<f64> = by_hand.iter().zip(centre).map(|(v, c)| v - f64::from(*c)).collect();
    let norm = less.iter().map(|v| v * v).sum::<f64>().sqrt();
    let worst = centred.iter().zip(less.iter().map(|v| v / norm)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4, "centred vector differs from the hand-built one by {worst}");
    assert!(squared_l2(&centred, &flip) > 1e-3, "the centre moved the vector");
}

#[test]
fn a_plain_database_answers_with_plain_probes_until_it_is_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let person = |name: &str, i: usize| fixtures().join("people").join(name).join(format!("{name}_{i:04}.jpg"));
    let mut photos = Vec::new();
    for name in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        photos.extend((1..=3).map(|i| person(name, i).display().to_string()));
    }
    let mut args = vec!["enroll"];
    args.extend(photos.iter().map(String::as_str));
    assert_eq!(fdb_json(&db, &args).0, Some(0));
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!(info["stats"]["recipe"], "centred", "a new database takes the default recipe");

    // Back to plain: the vectors are filed under the bare model id, exactly as a database
    // written before recipes existed.
    let (code, out) = fdb_json(&db, &["models", "use", MODEL, "--recipe", "plain"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!(info["stats"]["vectors"], MODEL, "{info}");
    // A threshold set by hand under plain is the database's own while it stays plain.
    assert_eq!(fdb_json(&db, &["threshold", "1.1"]).0, Some(0));
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!((info["stats"]["recipe"].as_str(), info["stats"]["verify_source"].as_str()), (Some("plain"), Some("database")));

    let (a, b, c) = (person("Tony_Blair", 4), person("Tony_Blair", 1), person("Colin_Powell", 4));
    let check = |recipe: &str| {
        let e = embed(&db, recipe, &[&a, &b, &c]);
        for (x, y, ex, ey) in [(&a, &b, &e[0], &e[1]), (&a, &c, &e[0], &e[2])] {
            let (_, v) = fdb_json(&db, &["verify", x.to_str().unwrap(), y.to_str().unwrap()]);
            let d = v["distance"].as_f64().unwrap();
            assert!((d - squared_l2(ex, ey)).abs() < 1e-4, "{recipe}: verify {d} vs embeddings {}", squared_l2(ex, ey));
        }
        let (_, rows) = fdb_json(&db, &["search", a.to_str().unwrap()]);
        let best = &rows[0]["faces"][0]["matches"][0];
        assert_eq!(best["person"], "Tony_Blair", "{recipe}: {rows}");
        best["distance"].as_f64().unwrap()
    };
    // Plain database: probes are embedded plain (verify's distance is the plain embeddings').
    let plain_distance = check("plain");

    // Migrate to the default recipe by naming the database's own model: every stored crop is
    // re-embedded, and probes follow.
    let (code, out) = fdb_json(&db, &["models", "use", MODEL]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["recipe"], "centred");
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!(info["stats"]["vectors"], format!("{MODEL}#centred"), "{info}");
    let centred_distance = check("centred");
    assert!((plain_distance - centred_distance).abs() > 1e-4, "the stored vectors changed with the recipe");
    // And to flip, the recipe before centred, by name.
    let (code, out) = fdb_json(&db, &["models", "use", MODEL, "--recipe", "flip"]);
    assert_eq!((code, out["recipe"].as_str()), (Some(0), Some("flip")), "{out}");
    let flip_distance = check("flip");
    assert!((flip_distance - centred_distance).abs() > 1e-4, "the centre changed the distances");
    // The threshold set under plain means nothing in flip distances: the model's applies again.
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!(info["stats"]["verify_source"], "lfw", "{info}");
    assert_ne!(info["stats"]["verify_threshold"].as_f64(), Some(1.1f32 as f64));

    // Migrating again is refused by name.
    let out = fdb(&db, &["models", "use", MODEL, "--recipe", "flip"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds"), "{}", String::from_utf8_lossy(&out.stderr));
}
