//! `fdb serve`'s web page in a real headless Chromium: a fixture photo is handed to the page
//! (its `?search=` hook takes a data: URL and goes the way a dropped file goes), and the page
//! shows the matched name; the screenshot is kept for the record.

mod common;

use std::path::Path;

use common::serve::{enroll_raw, photo, Server};
use fdb::eval::saved_roc::SavedRoc;

/// Chromium on `url`, given real time for the page's requests (virtual time waits for them).
fn page(url: &str, extra: &[&str], profile: &Path) -> std::process::Output {
    let mut args = vec!["--virtual-time-budget=60000"];
    args.extend_from_slice(extra);
    common::headless(url, &args, profile)
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[test]
fn the_page_searches_a_dropped_photo_and_shows_the_match() {
    if common::chromium().is_none() {
        return common::missing::<()>("Chromium (apt-get install chromium)").unwrap_or(());
    }
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    // A saved evaluation, as `fdb eval … --save-threshold` leaves one, for the page's ROC.
    let fdb = fdb::FaceDb::open(&db).unwrap();
    let points = vec![[0.0, 0.0], [1e-4, 0.5], [1e-3, 0.8], [1e-2, 0.95], [0.1, 0.99], [1.0, 1.0]];
    let roc = SavedRoc { name: "a test curve".into(), pairs: 600, accuracy: 0.99, auc: 0.995, threshold: 1.1, saved_ms: 0, points };
    roc.save(fdb.store()).unwrap();
    fdb.close().unwrap();
    let server = Server::start(&db, &[]);
    let c = server.client();
    for (name, i) in [("Tony_Blair", 1), ("Tony_Blair", 2), ("Colin_Powell", 1), ("Colin_Powell", 2)] {
        let r = enroll_raw(&c, name, &photo(&format!("people/{name}/{name}_000{i}.jpg")));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let probe = photo("people/Tony_Blair/Tony_Blair_0004.jpg");
    // Percent-encoded: in a query, a bare '+' would read as a space.
    let data = base64(&probe).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let url = format!("http://{}/?search=data:image/jpeg;base64,{data}", server.addr);
    let profile = tmp.path().join("chromium-profile");

    let dom = page(&url, &["--dump-dom"], &profile);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("data-done=\"true\""), "the search did not finish on the page:\n{dom}");
    assert!(dom.contains("data-identity=\"Tony_Blair\""), "the page does not name the match:\n{dom}");
    assert!(!dom.contains("data-identity=\"Colin_Powell\""), "the page names the wrong person:\n{dom}");
    assert!(dom.contains("id=\"roc-plot\"") && dom.contains("a test curve: 600 pairs"), "no ROC drawn:\n{dom}");
    // The people list and their crops are on the page too.
    assert!(dom.contains(">Colin_Powell<") && dom.contains("src=\"/v1/faces/"), "no people listed:\n{dom}");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve_page.png");
    let _ = std::fs::remove_file(&shot);
    let run = page(&url, &[&format!("--screenshot={}", shot.display()), "--window-size=1200,1000"], &profile);
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&run.stderr));
    eprintln!("screenshot: {}", shot.display());
    // The match is drawn in the page's "identified" green (#00a05a): the name's badge and the box.
    let img = image::open(&shot).unwrap().to_rgb8();
    let green = img.pixels().filter(|p| p.0.iter().zip([0u8, 160, 90]).all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= 8)).count();
    assert!(green > 500, "the identified badge is not on the screenshot ({green} green pixels)");
    let blue = img.pixels().filter(|p| p.0.iter().zip([0x2du8, 0x6c, 0xdf]).all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= 8)).count();
    assert!(blue > 200, "the ROC curve is not on the screenshot ({blue} curve pixels)");
}

#[test]
fn an_evaluation_saved_with_its_threshold_saves_its_roc() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let people = common::fixtures().join("people");
    let args = ["eval", "pairs", "--dir", people.to_str().unwrap(), "--random-pairs", "24", "--same-ratio", "0.5", "--seed", "3", "--cache", "none", "--flip", "sum", "--centre", "--save-threshold"];
    let (code, json) = common::fdb_json(&db, &args);
    assert_eq!(code, Some(0), "{json}");
    let fdb = fdb::FaceDb::open(&db).unwrap();
    let roc = SavedRoc::load(fdb.store()).unwrap().expect("a saved ROC");
    assert_eq!(roc.pairs, 24);
    assert_eq!(roc.accuracy, json["report"]["accuracy_mean"].as_f64().unwrap());
    assert_eq!(roc.points.len(), json["report"]["roc"].as_array().unwrap().len());
}
