//! Child process of the crash test (tests/crash.rs): enrols synthetic faces in a loop, removes
//! some, flushes, and after each flush prints `acked N`, meaning every face numbered up to N is
//! durable in its final state. The test SIGKILLs it at random moments.
//!
//! Usage: fdb-storage-crash-writer DB_DIR
//! Face n has embedding `crash_vector(n)`; faces with n % 7 == 3 are removed after being added.

use fdb_storage::{NewFace, Store, StoreOptions};
use std::collections::BTreeMap;
use std::io::Write;

const DIM: usize = 64;
const BATCH: u64 = 4;
const DONE_KEY: &str = "crash-test.done";

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: fdb-storage-crash-writer DB_DIR");
        std::process::exit(2);
    };
    let opts = StoreOptions { snapshot_after: 40, compact_fraction: 0.1, ..StoreOptions::default() };
    let store = match Store::open(std::path::Path::new(&dir), opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut stdout = std::io::stdout();
    // Resume after the last batch a previous run completed, so removed faces stay removed.
    let done = store.meta_get(DONE_KEY).unwrap().map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
    for first in (done + 1..).step_by(BATCH as usize) {
        let last = first + BATCH - 1;
        let person = person_for(&store, first);
        let new: Vec<NewFace> = (first..=last)
            .filter(|n| store.face_by_sha256(&crash_sha(*n)).unwrap().is_none() && !is_removed(*n))
            .map(|n| crash_face(person, n))
            .collect();
        store.add_faces(new).unwrap();
        for n in (first..=last).filter(|n| is_removed(*n)) {
            // Added then removed, so the tombstone path runs under the kill too.
            if store.face_by_sha256(&crash_sha(n)).unwrap().is_none() {
                store.add_face(crash_face(person, n)).unwrap();
            }
            let id = store.face_by_sha256(&crash_sha(n)).unwrap().unwrap();
            store.remove_face(id).unwrap();
        }
        store.meta_set(DONE_KEY, &last.to_be_bytes()).unwrap();
        store.flush().unwrap();
        writeln!(stdout, "acked {last}").unwrap();
        stdout.flush().unwrap();
    }
}

fn is_removed(n: u64) -> bool {
    n % 7 == 3
}

fn person_for(store: &Store, n: u64) -> fdb_storage::PersonId {
    let name = format!("person {}", n / 20);
    match store.person_by_name(&name).unwrap() {
        Some(p) => p.id,
        None => store.add_person(&name, BTreeMap::new()).unwrap(),
    }
}

fn crash_sha(n: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_be_bytes());
    s
}

fn crash_face(person: fdb_storage::PersonId, n: u64) -> NewFace {
    NewFace {
        person,
        source_name: format!("{n}.jpg"),
        source_sha256: crash_sha(n),
        bbox: [0.0, 0.0, 10.0, 10.0],
        landmarks: [[1.0, 1.0]; 5],
        score: 1.0,
        quality: None,
        model_id: "crash-model".into(),
        crop: vec![n as u8; 16],
        embedding: crash_vector(n),
    }
}

/// A cheap deterministic vector (splitmix64), duplicated in tests/crash.rs on purpose: the
/// test must not trust the child's code to tell it what was written.
fn crash_vector(n: u64) -> Vec<f32> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}
