//! A model switch killed at random moments: the database reopens, passes `verify_integrity`,
//! and is wholly on one model — the old one unless the switch committed — with every face
//! findable by that model's vector.
//!
//! The child is this test binary run again with `FDB_SWITCH_CHILD` set; it switches between
//! models "m1" and "m2" slowly enough that kills land inside the switch.

use fdb_storage::{FaceId, NewFace, Store, StoreOptions};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FACES: u64 = 120;
const DIM: usize = 32;
const TRIALS: usize = 20;

/// The vector of face number `n` under `model`: the two models place faces differently.
fn vector(n: u64, model: &str) -> Vec<f32> {
    let salt = if model == "m1" { 0x1234_5678 } else { 0x8765_4321 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(n ^ salt);
    (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn other(model: &str) -> &'static str {
    if model == "m1" {
        "m2"
    } else {
        "m1"
    }
}

/// The face ids in enrolment order (face number n is at index n).
fn face_ids(store: &Store) -> Vec<FaceId> {
    let person = store.person_by_name("p").unwrap().expect("the person");
    let mut faces = store.faces_of(person.id).unwrap();
    faces.sort_by_key(|f| f.id);
    faces.into_iter().map(|f| f.id).collect()
}

#[test]
fn switch_child() {
    let Some(db) = std::env::var_os("FDB_SWITCH_CHILD") else { return };
    let store = Store::open(Path::new(&db), StoreOptions::default()).unwrap();
    let from = store.active_model().unwrap().unwrap();
    let to = other(&from);
    let ids = face_ids(&store);
    println!("switching");
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    let slow = ids.into_iter().enumerate().map(|(n, id)| {
        std::thread::sleep(Duration::from_millis(10));
        (id, vector(n as u64, to))
    });
    store.switch_model(to, slow).unwrap();
    println!("switched");
}

#[test]
fn a_switch_killed_at_any_moment_leaves_one_whole_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let store = Store::open(&db, StoreOptions::default()).unwrap();
        store.set_active_model("m1").unwrap();
        let person = store.add_person("p", Default::default()).unwrap();
        let faces = (0..FACES)
            .map(|n| {
                let mut sha = [0u8; 32];
                sha[..8].copy_from_slice(&n.to_be_bytes());
                NewFace {
                    person,
                    source_name: format!("face{n}"),
                    source_sha256: sha,
                    bbox: [0.0; 4],
                    landmarks: [[0.0; 2]; 5],
                    score: 1.0,
                    quality: None,
                    model_id: "m1".into(),
                    crop: vec![],
                    embedding: vector(n, "m1"),
                }
            })
            .collect();
        store.add_faces(faces).unwrap();
        store.flush().unwrap();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut committed, mut interrupted) = (0, 0);
    let mut model = "m1".to_string();
    for trial in 0..TRIALS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "switch_child", "--nocapture", "--test-threads=1"])
            .env("FDB_SWITCH_CHILD", &db)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).collect::<Vec<_>>());
        // The switch itself takes about FACES × 10 ms; kill somewhere in or around it.
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..2500)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let said = lines.join().unwrap();
        let done = said.iter().any(|l| l == "switched");
        // libtest prints "test switch_child ... " on the same line before the child's first words.
        let started = said.iter().any(|l| l.ends_with("switching"));
        // A child that ended by itself (a panic, say) before the kill is no crash test.
        assert!(done || status.code().is_none(), "trial {trial}: the child exited by itself: {status}, said {said:?}");

        let store = Store::open(&db, StoreOptions::default()).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        store.verify_integrity().unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        let active = store.active_model().unwrap().unwrap();
        let target = other(&model);
        // Exactly the old model or the new one; the new one once the switch said it committed.
        // (Killed between the commit and its "switched" line, the new one is also right.)
        assert!(active == model || active == target, "trial {trial}: active model {active:?}, was {model:?}");
        if done {
            assert_eq!(active, target, "trial {trial}: the switch committed, yet the store is on {active}");
        }
        let ids = face_ids(&store);
        assert_eq!(ids.len() as u64, FACES, "trial {trial}: faces lost");
        for (n, id) in ids.iter().enumerate() {
            let stored = store.embedding(*id, &active).unwrap().unwrap_or_else(|| panic!("trial {trial}: face {n} has no {active} vector"));
            let want = unit(&vector(n as u64, &active));
            let off = stored.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(off < 1e-5, "trial {trial}: face {n}'s stored vector is not its {active} vector (max diff {off})");
            let hits = store.search(&vector(n as u64, &active), 1, Some(100)).unwrap();
            assert_eq!(hits[0].face, *id, "trial {trial}: face {n} not found by its {active} vector");
            assert!(hits[0].distance < 1e-4);
        }
        if done {
            committed += 1;
        } else if started {
            interrupted += 1;
        }
        model = active;
    }
    println!("{TRIALS} kills: {committed} after the commit, {interrupted} during the switch");
    assert!(interrupted >= 3, "too few kills landed inside a switch ({interrupted})");
    assert!(committed >= 1, "no switch committed in {TRIALS} trials, so the new model was never checked");
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}
