//! Issue 3's acceptance run, through the real binary on LFW photos:
//! enrol 40 people (first 4 images each), search their other images, search 500 strangers,
//! verify 100 same and 100 different pairs of `pairs.txt`, then remove a person and reopen.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// What `fdb search --json` answered for one probe row.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A face was found and searched: the identity decided (None = unknown) and the nearest person.
    Face { identity: Option<String>, nearest: Option<String> },
    /// The row is an error (unreadable file, no face, ...), with its message.
    Error(String),
}

fn answer(row: &Value) -> Answer {
    if let Some(e) = row.get("error") {
        return Answer::Error(e.as_str().unwrap_or_default().to_string());
    }
    let faces = row["faces"].as_array().unwrap_or_else(|| panic!("a row with neither faces nor an error: {row}"));
    assert_eq!(faces.len(), 1, "a search without --all-faces answers for one face: {row}");
    let face = &faces[0];
    Answer::Face {
        identity: face["identity"].as_str().map(String::from),
        nearest: face["matches"][0]["person"].as_str().map(String::from),
    }
}

#[test]
fn enrol_search_verify_and_remove_on_lfw() {
    let Some(images) = lfw_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let people = lfw_people(&images);

    // 40 people with 6–12 images, spread over the alphabet.
    let gallery: Vec<(String, usize)> =
        people.iter().filter(|(_, n)| (6..=12).contains(n)).step_by(4).take(40).cloned().collect();
    assert_eq!(gallery.len(), 40);
    let enrol: Vec<String> = gallery
        .iter()
        .flat_map(|(name, _)| (1..=4).map(|i| lfw_image(&images, name, i).display().to_string()))
        .collect();
    let mut args = vec!["enroll"];
    args.extend(enrol.iter().map(String::as_str));
    let (code, summary) = fdb_json(&db, &args);
    assert_eq!(summary["enrolled"].as_u64(), Some(160), "{summary}");
    assert_eq!(code, Some(0));
    // Enrolling again stores nothing new.
    let (code, again) = fdb_json(&db, &args[..5]);
    assert_eq!(again["duplicates"].as_u64(), Some(4), "{again}");
    assert_eq!(code, Some(0));

    // Genuine probes: every other image of the gallery people.
    let probes: Vec<(String, PathBuf)> = gallery
        .iter()
        .flat_map(|(name, n)| (5..=*n).map(move |i| (name.clone(), i)))
        .map(|(name, i)| (name.clone(), lfw_image(&images, &name, i)))
        .collect();
    let probe_args: Vec<String> = probes.iter().map(|(_, p)| p.display().to_string()).collect();
    let (code, rows) = search_rows(&db, &[], &probe_args);
    assert_eq!(probes.len(), 172);
    let (mut nearest_right, mut accepted_right, mut wrong_accept) = (0, 0, 0);
    for ((name, path), row) in probes.iter().zip(&rows) {
        let Answer::Face { identity, nearest } = answer(row) else {
            panic!("{}: LFW photos all have a face, yet: {row}", path.display())
        };
        nearest_right += usize::from(nearest.as_deref() == Some(name.as_str()));
        accepted_right += usize::from(identity.as_deref() == Some(name.as_str()));
        wrong_accept += usize::from(identity.is_some() && identity.as_deref() != Some(name.as_str()));
    }
    // 0 when every probe was identified, 1 when some came back "unknown"; never 2 (an error).
    let expected = if accepted_right + wrong_accept == probes.len() { 0 } else { 1 };
    assert_eq!(code, Some(expected), "every probe answered");
    let n = probes.len() as f64;
    eprintln!(
        "genuine probes: {} — nearest right {:.4}, accepted right {:.4}, accepted wrong {}",
        probes.len(),
        nearest_right as f64 / n,
        accepted_right as f64 / n,
        wrong_accept
    );
    assert!(nearest_right as f64 / n >= 0.97, "rank-1 {nearest_right}/{n}");
    assert!(accepted_right as f64 / n >= 0.90, "accepted {accepted_right}/{n}");
    // The README: a probe is accepted as the right person or comes back unknown, never as someone else.
    assert_eq!(wrong_accept, 0, "{wrong_accept} probes were accepted as someone else");

    // Strangers: 500 people with a single image, never enrolled (every 8th of LFW's 4,069; 100
    // would put 1% and 2% one stranger apart).
    let strangers: Vec<String> = people
        .iter()
        .filter(|(_, n)| *n == 1)
        .step_by(8)
        .take(500)
        .map(|(name, _)| lfw_image(&images, name, 1).display().to_string())
        .collect();
    assert_eq!(strangers.len(), 500);
    let (code, rows) = search_rows(&db, &[], &strangers);
    // Only answered searches count: an error or a photo without a face is not an "unknown".
    let answers: Vec<Answer> = rows.iter().map(answer).collect();
    let errors: Vec<&Answer> = answers.iter().filter(|a| matches!(a, Answer::Error(_))).collect();
    assert!(errors.is_empty(), "strangers' photos failed: {errors:?}");
    let accepted = answers.iter().filter(|a| matches!(a, Answer::Face { identity: Some(_), .. })).count();
    let calibration = rows[0]["faces"][0]["calibration"].as_str().unwrap_or_default().to_string();
    eprintln!("strangers: {accepted} of {} answered searches accepted at the 1% target (calibration: {calibration})", answers.len());
    // 40 people with 4 faces each calibrate on their own galleries, but their tail is looser than
    // LFW's here, so LFW's sets the 1:N threshold (the gallery only ever tightens it).
    assert_eq!(calibration, "lfw", "the stricter tail answers");
    // The target is at most 1.5% (7 of 500). On 2026-12-03 this set let 2 in (0.4%); the gallery's
    // own tail, when it could loosen the threshold, let 12 in, and the Gaussian fit 3 of 100.
    assert!(accepted <= 7, "{accepted}/500 strangers were accepted at a 1% target");
    // Strangers answered "unknown" exit 1 (the exit-code table), never 2 (an error).
    assert_eq!(code, Some(if accepted == answers.len() { 0 } else { 1 }), "unknowns exit 1");

    // Verify: 10 same and 10 different pairs from each fold of pairs.txt.
    let pairs = std::fs::read_to_string(images.join("../pairs.txt")).unwrap();
    let lines: Vec<&str> = pairs.lines().skip(1).collect();
    let mut correct = 0;
    let mut total = 0;
    for fold in 0..10 {
        for (offset, same) in [(0, true), (300, false)] {
            for line in &lines[fold * 600 + offset..fold * 600 + offset + 10] {
                let f: Vec<&str> = line.split_whitespace().collect();
                let (a, b) = if same {
                    (lfw_image(&images, f[0], f[1].parse().unwrap()), lfw_image(&images, f[0], f[2].parse().unwrap()))
                } else {
                    (lfw_image(&images, f[0], f[1].parse().unwrap()), lfw_image(&images, f[2], f[3].parse().unwrap()))
                };
                let out = fdb(&db, &["verify", a.to_str().unwrap(), b.to_str().unwrap()]);
                let code = out.status.code();
                assert!(code == Some(0) || code == Some(1), "verify failed: {}", String::from_utf8_lossy(&out.stderr));
                correct += usize::from((code == Some(0)) == same);
                total += 1;
            }
        }
    }
    eprintln!("verify: {correct}/{total} correct");
    assert_eq!(total, 200);
    assert!(correct >= 190, "verify {correct}/200");

    // Remove one person; after a reopen they are gone from every answer and the rest are unchanged.
    let removed = &gallery[0].0;
    let kept_probe = probes.iter().find(|(name, _)| name != removed).unwrap().1.display().to_string();
    let removed_probe = probes.iter().find(|(name, _)| name == removed).unwrap().1.display().to_string();
    let (code, before) = fdb_json(&db, &["search", "-k", "40", &kept_probe]);
    assert_eq!(code, Some(if before[0]["faces"][0]["identity"].is_null() { 1 } else { 0 }), "{before}");
    assert_eq!(before[0]["faces"][0]["matches"].as_array().map(Vec::len), Some(40), "{before}");
    let out = fdb(&db, &["remove", removed]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, list) = fdb_json(&db, &["list"]);
    assert_eq!(code, Some(0));
    let names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names.len(), 39);
    assert!(!names.contains(&removed.as_str()));
    let (code, after) = fdb_json(&db, &["search", "-k", "40", &kept_probe]);
    assert_eq!(code, Some(if after[0]["faces"][0]["identity"].is_null() { 1 } else { 0 }), "{after}");
    let without = |v: &Value| -> Vec<Value> {
        v[0]["faces"][0]["matches"].as_array().unwrap().iter().filter(|m| m["person"] != removed.as_str()).cloned().collect()
    };
    assert_eq!(without(&before), without(&after), "the other people's answers changed");
    let (code, gone) = fdb_json(&db, &["search", "-k", "40", &removed_probe]);
    // The removed person's photo: "unknown" (exit 1), or accepted as someone (0), never an error.
    assert_eq!(code, Some(if gone[0]["faces"][0]["identity"].is_null() { 1 } else { 0 }), "{gone}");
    let matches = gone[0]["faces"][0]["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 39, "all 39 people remain, {removed} not among them: {gone}");
    assert!(matches.iter().all(|m| m["person"] != removed.as_str()));
}
