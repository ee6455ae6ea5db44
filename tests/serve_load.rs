//! `fdb serve` under load and under `kill -9`: eight clients searching while one enrols, with
//! no errors and exact counts afterwards (the searches sharing batches, `--batch 8`); and a server killed during enrolments keeps every
//! face it acknowledged (an enrolment is answered only once its faces are on disk).
//! Throughput and latency are measured by `fdb bench serve`, not here.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::{enroll_raw, listed_faces, photo, search_raw, variant, Client, Server};

/// Who each probe is; none of them is enrolled as it is.
const PROBES: [(&str, &str); 3] = [
    ("Tony_Blair", "people/Tony_Blair/Tony_Blair_0004.jpg"),
    ("Colin_Powell", "people/Colin_Powell/Colin_Powell_0004.jpg"),
    ("Serena_Williams", "people/Serena_Williams/Serena_Williams_0004.jpg"),
];

fn enrol_gallery(c: &Client) -> usize {
    let mut faces = 0;
    for (name, _) in PROBES {
        for i in 1..=2 {
            let r = enroll_raw(c, name, &photo(&format!("people/{name}/{name}_000{i}.jpg")));
            assert_eq!(r.json()["results"][0]["status"], "enrolled", "{}", r.text());
            faces += 1;
        }
    }
    faces
}

/// Enrols new variants of a photo of `name` until `stop`, pushing the acknowledged face ids;
/// returns the answers that were errors, and the requests that got no answer.
fn enroller(c: Client, name: &'static str, stop: Arc<AtomicBool>, acknowledged: Arc<Mutex<Vec<u64>>>) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut unanswered) = (Vec::new(), Vec::new());
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let bytes = variant(&format!("people/{name}/{name}_0003.jpg"), n);
        match c.post(&format!("/v1/enroll?name={name}"), "image/png", &bytes) {
            Ok(r) if r.status == 200 && r.json()["results"][0]["status"] == "enrolled" => {
                acknowledged.lock().unwrap().push(r.json()["results"][0]["face"].as_u64().unwrap());
            }
            Ok(r) => errors.push(format!("enrol {n}: {} {}", r.status, r.text())),
            // A killed server drops the connection: that enrolment was never acknowledged.
            Err(e) => unanswered.push(format!("enrol {n}: {e}")),
        }
    }
    (errors, unanswered)
}

#[test]
fn eight_searchers_and_one_enroller_see_no_errors_and_lose_no_face() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let server = Server::start(&db, &["--batch", "8"]);
    let base = enrol_gallery(&server.client());
    // Each probe's answer alone; under load the searches share batches and must answer the same.
    let probes: Vec<(&str, Vec<u8>, u64, f64)> = PROBES
        .iter()
        .map(|(name, p)| {
            let bytes = photo(p);
            let alone = search_raw(&server.client(), &bytes).json()["results"][0]["matches"][0].clone();
            (*name, bytes, alone["face"].as_u64().unwrap(), alone["distance"].as_f64().unwrap())
        })
        .collect();
    let probes = Arc::new(probes);

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let enrolling = {
        let (c, stop, acknowledged) = (server.client(), stop.clone(), acknowledged.clone());
        std::thread::spawn(move || enroller(c, "Tony_Blair", stop, acknowledged))
    };
    let searchers: Vec<_> = (0..8)
        .map(|t| {
            let (c, stop, probes) = (server.client(), stop.clone(), probes.clone());
            std::thread::spawn(move || {
                let (mut done, mut errors) = (0usize, Vec::new());
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    let (name, bytes, face, distance) = &probes[i % probes.len()];
                    i += 1;
                    let r = search_raw(&c, bytes);
                    let answer = &r.json()["results"][0];
                    let best = &answer["matches"][0];
                    // Never a wrong name; the nearest face is the one found alone, at its distance
                    // (the batched networks agree with the single ones to float rounding).
                    let same = best["person"] == *name
                        && best["face"].as_u64() == Some(*face)
                        && best["distance"].as_f64().is_some_and(|d| (d - distance).abs() < 1e-3);
                    if r.status != 200 || !same || !(answer["identity"] == *name || answer["identity"].is_null()) {
                        errors.push(format!("{name}: {} {}", r.status, r.text()));
                    }
                    done += 1;
                }
                (done, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let (enrol_errors, unanswered) = enrolling.join().unwrap();
    let mut searches = 0;
    for s in searchers {
        let (done, errors) = s.join().unwrap();
        assert!(errors.is_empty(), "search errors: {errors:?}");
        searches += done;
    }
    assert!(enrol_errors.is_empty() && unanswered.is_empty(), "enrol errors: {enrol_errors:?} {unanswered:?}");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(searches >= 8 && !acknowledged.is_empty(), "{searches} searches, {} enrolments", acknowledged.len());
    eprintln!("{searches} searches and {} enrolments in 5 s", acknowledged.len());

    // Exact counts: every acknowledged face is listed, and nothing else was added.
    let c = server.client();
    let people: BTreeMap<String, Vec<u64>> = listed_faces(&c).into_iter().collect();
    assert_eq!(people.len(), 3);
    assert_eq!(people["Tony_Blair"].len(), 2 + acknowledged.len());
    assert!(acknowledged.iter().all(|f| people["Tony_Blair"].contains(f)));
    let total = base + acknowledged.len();
    let info = c.get("/v1/info").unwrap().json();
    assert_eq!(info["stats"]["faces"].as_u64(), Some(total as u64), "{info}");
    let metrics = c.get("/metrics").unwrap().text();
    assert!(metrics.lines().any(|l| l == format!("fdb_faces {total}")), "{metrics}");
    assert!(metrics.lines().any(|l| l == "fdb_queue_depth 0"), "{metrics}");
    // Eight clients on two workers: searches waited together and shared batches.
    let counter = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap();
    let (batches, batched) = (counter("fdb_search_batches_total "), counter("fdb_search_batched_total "));
    eprintln!("{batched} searches in {batches} batches");
    assert!(batched > batches, "no search shared a batch: {batched} searches in {batches} batches");
    assert!(server.stop().success());
    let (code, list) = common::fdb_json(&db, &["list", "Tony_Blair"]);
    assert_eq!((code, list.as_array().map(Vec::len)), (Some(0), Some(2 + acknowledged.len())), "{list}");
}

#[test]
fn a_server_killed_during_enrolments_keeps_every_acknowledged_face() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let mut acknowledged_all = Vec::new();
    for (round, wait_ms) in [(0u32, 1500u64), (1, 2300)] {
        let server = Server::start(&db, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let enrolling = {
            let (c, stop, acknowledged) = (server.client(), stop.clone(), acknowledged.clone());
            let name = if round == 0 { "Serena_Williams" } else { "Colin_Powell" };
            std::thread::spawn(move || enroller(c, name, stop, acknowledged))
        };
        let started = Instant::now();
        while acknowledged.lock().unwrap().len() < 2 {
            assert!(started.elapsed() < Duration::from_secs(60), "no enrolment acknowledged: {}", server.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(wait_ms));
        server.kill(); // mid-enrolment, most likely: the enroller never pauses
        stop.store(true, Ordering::SeqCst);
        let (errors, _cut_by_the_kill) = enrolling.join().unwrap();
        assert!(errors.is_empty(), "enrolments answered with an error: {errors:?}");
        acknowledged_all.extend(acknowledged.lock().unwrap().iter().copied());

        // Reopened: every acknowledged face is there, the database is healthy.
        let server = Server::start(&db, &[]);
        let listed: Vec<u64> = listed_faces(&server.client()).into_iter().flat_map(|(_, f)| f).collect();
        let lost: Vec<&u64> = acknowledged_all.iter().filter(|f| !listed.contains(f)).collect();
        assert!(lost.is_empty(), "faces acknowledged and lost: {lost:?} (listed {listed:?})");
        // At most the one enrolment in flight at the kill is stored without an acknowledgement.
        assert!(listed.len() <= acknowledged_all.len() + 1, "{} listed, {} acknowledged", listed.len(), acknowledged_all.len());
        drop(server);
        let (code, check) = common::fdb_json(&db, &["check"]);
        assert_eq!(code, Some(0), "the database needs a repair after kill -9: {check}");
    }
}
