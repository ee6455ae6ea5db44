//! Crash safety: a child process enrols and flushes in a loop; we SIGKILL it at random moments,
//! then reopen and check that the database opens, passes `verify_integrity`, and holds every
//! face acknowledged before the kill in its final state.

use fdb_storage::{Store, StoreError, StoreOptions};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TRIALS: usize = 24;
const DIM: usize = 64;

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_face() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut acked_total = 0u64;
    let started = Instant::now();
    for trial in 0..TRIALS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fdb-storage-crash-writer"))
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let reader = {
            let acked = acked.clone();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(n) = line.strip_prefix("acked ") {
                        acked.fetch_max(n.parse().unwrap(), Ordering::SeqCst);
                    }
                }
            })
        };
        if trial == 0 {
            // While the child holds the database, another process is refused cleanly.
            let deadline = Instant::now() + Duration::from_secs(30);
            while acked.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let err = Store::open(&db, StoreOptions::default()).err().expect("open while the child holds the lock");
            assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..400)));
        // The writer loops until killed: an exit of its own is a failure (a panic, say).
        if let Some(status) = child.try_wait().unwrap() {
            panic!("trial {trial}: the writer exited before the kill: {status}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acked_total = acked_total.max(acked.load(Ordering::SeqCst));
        check_after_crash(&db, acked_total, trial);
    }
    println!("{TRIALS} kills, {acked_total} faces acknowledged, {:.1?}", started.elapsed());
    assert!(acked_total >= 40, "the child made too little progress to test anything ({acked_total})");
}

fn check_after_crash(db: &std::path::Path, acked: u64, trial: usize) {
    let store = Store::open(db, StoreOptions::default()).unwrap_or_else(|e| panic!("trial {trial}: reopen: {e}"));
    store.verify_integrity().unwrap_or_else(|e| panic!("trial {trial}: {e}"));
    for n in 1..=acked {
        let found = store.face_by_sha256(&sha(n)).unwrap();
        if n % 7 == 3 {
            assert!(found.is_none(), "trial {trial}: removed face {n} is back");
            let hits = store.search(&vector(n), 5, None).unwrap();
            assert!(hits.iter().all(|h| h.distance > 1e-4), "trial {trial}: search returned removed face {n}");
        } else {
            let id = found.unwrap_or_else(|| panic!("trial {trial}: acknowledged face {n} lost (acked {acked})"));
            if n % 5 == 0 {
                let hits = store.search(&vector(n), 1, Some(100)).unwrap();
                assert_eq!(hits[0].face, id, "trial {trial}: face {n} does not find itself");
            }
        }
    }
    // Dropped without Drop-time snapshot work being required: forget would also be valid,
    // but a clean close between trials is the common case.
}

fn sha(n: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_be_bytes());
    s
}

/// Same generator as the child's (splitmix64), written out independently.
fn vector(n: u64) -> Vec<f32> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(DIM);
    for _ in 0..DIM {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push((z >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
    }
    out
}
