//! Mutation fuzzing for tests: valid files, mutated with a seeded generator, fed to a parser that
//! must end in a value or an error, never a panic, and within `LIMIT`. Shared by the storage
//! crate's unit tests and the workspace's `tests/fuzz_parsers.rs` (included there by path), so
//! every parser is fuzzed by the same mutations. `FDB_FUZZ_CASES=N` runs N cases a parser
//! instead of a test's default; `FDB_FUZZ_TRACE=1` prints each case before it runs, which names
//! the case that aborts a process (a failed allocation is not a panic that can be caught).
#![allow(dead_code)] // each including crate uses its own part

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The longest a case may take.
pub const LIMIT: Duration = Duration::from_secs(5);

/// `FDB_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("FDB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One mutation of `valid`: bits flipped, a cut, bytes inserted, a chunk repeated, or a run
/// overwritten with 0xFF or 0x00 (the values that break length fields and markers).
pub fn mutate(valid: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut b = valid.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        if b.is_empty() {
            b.push(rng.gen());
        }
        let at = rng.gen_range(0..b.len());
        match rng.gen_range(0..5) {
            0 => {
                for _ in 0..rng.gen_range(1..=16) {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => b.truncate(at),
            2 => {
                let extra: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
                b.splice(at..at, extra);
            }
            3 => {
                let end = (at + rng.gen_range(1..256)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            _ => {
                let fill = if rng.gen() { 0xFF } else { 0x00 };
                let end = (at + rng.gen_range(1..8)).min(b.len());
                b[at..end].fill(fill);
            }
        }
    }
    b
}

/// What a run of `fuzz` saw.
#[derive(Debug)]
pub struct Run {
    /// Cases run.
    pub cases: usize,
    /// Cases the parser accepted (`parse` returned true).
    pub accepted: usize,
    /// The slowest case.
    pub slowest: Duration,
}

/// Runs `parse` on `n` mutations of the valid inputs (in turn); a panic or a case slower than
/// `LIMIT` fails with the case's number and the seed, which replay it. `parse` says whether
/// the mutated input was accepted.
pub fn fuzz(name: &str, inputs: &[Vec<u8>], n: usize, seed: u64, mut parse: impl FnMut(&[u8]) -> bool) -> Run {
    assert!(!inputs.is_empty(), "{name}: no valid inputs to mutate");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = Run { cases: 0, accepted: 0, slowest: Duration::ZERO };
    for case in 0..n {
        let mutated = mutate(&inputs[case % inputs.len()], &mut rng);
        if std::env::var_os("FDB_FUZZ_TRACE").is_some() {
            eprintln!("{name} case {case}");
        }
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&mutated)));
        let took = started.elapsed();
        match outcome {
            Ok(accepted) => run.accepted += accepted as usize,
            Err(_) => panic!("{name}: case {case} (seed {seed}) panicked"),
        }
        assert!(took < LIMIT, "{name}: case {case} (seed {seed}) took {took:?}");
        run.slowest = run.slowest.max(took);
        run.cases += 1;
    }
    eprintln!("{name}: {} mutated cases, {} accepted, no panic, slowest {:?}", run.cases, run.accepted, run.slowest);
    run
}
