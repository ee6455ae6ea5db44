//! `fdb eval hard` through the real binary on LFW (skipped visibly without ../shared, a failure
//! under `FDB_REQUIRE_DATA=1`): a small run of each split, checked for what the protocol promises.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::lfw_images;

fn run(split: &str, out: &std::path::Path) -> serde_json::Value {
    let images = lfw_images().expect("checked by the caller");
    let status = Command::new(env!("CARGO_BIN_EXE_fdb"))
        .args(["--json", "eval", "hard", "--lfw"])
        .arg(&images)
        .args(["--split", split, "--seed", "3", "--people", "3", "--probes-per-person", "3", "--strangers", "7", "--out"])
        .arg(out)
        .output()
        .expect("fdb runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn small_runs_of_both_splits_follow_the_protocol() {
    if lfw_images().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tune = run("tune", &dir.path().join("tune"));
    let holdout = run("holdout", &dir.path().join("holdout"));

    let names = |v: &serde_json::Value, key: &str| -> HashSet<String> {
        v["plan"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.get("name").or_else(|| p.get("source")).unwrap().as_str().unwrap().to_string())
            .collect()
    };
    assert!(names(&tune, "people").is_disjoint(&names(&holdout, "people")), "the splits share people");
    assert!(names(&tune, "strangers").is_disjoint(&names(&holdout, "strangers")), "the splits share strangers");
    let pairs = std::fs::read_to_string(lfw_images().unwrap().join("../pairs.txt")).unwrap();
    let in_pairs: HashSet<&str> = pairs.lines().skip(1).flat_map(|l| l.split_whitespace().filter(|w| w.parse::<u32>().is_err())).collect();

    for report in [&tune, &holdout] {
        let r = &report["report"];
        assert_eq!(r["people"], 3);
        assert_eq!(r["gallery_images"], 15, "5 clean photos per person");
        let overall = &r["overall"];
        assert_eq!(overall["probes"].as_u64().unwrap() + r["skipped_no_clean_face"].as_u64().unwrap(), 9);
        assert_eq!(r["strangers"]["strangers"], 7);
        for key in ["found", "rank1", "right_accepts"] {
            assert!(overall[key].as_u64().unwrap() <= overall["probes"].as_u64().unwrap(), "{key}");
        }
        // Per-condition counts add up to the overall ones.
        let sum: u64 = r["per_condition"].as_object().unwrap().values().map(|t| t["probes"].as_u64().unwrap()).sum();
        assert_eq!(sum, overall["probes"].as_u64().unwrap());
        // Strangers never appear in pairs.txt; an enrolled person's photos never do either.
        for s in report["plan"]["strangers"].as_array().unwrap() {
            assert!(s["person"].is_null());
            let path = s["source"].as_str().unwrap();
            let name = std::path::Path::new(path).parent().unwrap().file_name().unwrap().to_str().unwrap();
            assert!(!in_pairs.contains(name), "stranger {name} is in pairs.txt");
        }
        for p in report["plan"]["probes"].as_array().unwrap() {
            let path = std::path::Path::new(p["source"].as_str().unwrap());
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let (name, number) = stem.rsplit_once('_').unwrap();
            let number: u32 = number.parse().unwrap();
            let listed = pairs.lines().skip(1).any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.len() {
                    3 => w[0] == name && (w[1].parse() == Ok(number) || w[2].parse() == Ok(number)),
                    4 => (w[0] == name && w[1].parse() == Ok(number)) || (w[2] == name && w[3].parse() == Ok(number)),
                    _ => false,
                }
            });
            assert!(!listed, "{stem} is in pairs.txt");
        }
        // The altered photos are where the outcomes say.
        let csv = std::fs::read_to_string(dir.path().join(if report == &tune { "tune" } else { "holdout" }).join("outcomes.csv")).unwrap();
        assert_eq!(csv.lines().count() as u64, 1 + overall["probes"].as_u64().unwrap() + 7);
    }
}
