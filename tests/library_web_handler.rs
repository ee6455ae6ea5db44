//! `examples/web_handler.rs` answers real HTTP requests: a POSTed JPEG is searched and named,
//! a photo enrolled by request is found by the next search, and bad photos get the status
//! their typed error calls for.

mod common;

#[path = "../examples/web_handler.rs"]
#[allow(dead_code)]
mod web_handler;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use common::fixtures;
use fdb::{FaceDb, OpenOptions};
use serde_json::Value;

fn photo(person: &str, i: usize) -> Vec<u8> {
    std::fs::read(fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))).unwrap()
}

/// One request over a fresh connection: the status and the parsed JSON body.
fn request(address: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {response:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

#[test]
fn the_web_handler_answers_posted_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let db = FaceDb::open_with(tmp.path().join("db"), OpenOptions::new().device("cpu").install_models(true)).unwrap();
    for person in ["Colin_Powell", "Tony_Blair"] {
        let photos: Vec<Vec<u8>> = (1..=2).map(|i| photo(person, i)).collect();
        db.enroll(person, &photos).unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let db = Arc::new(db);
    std::thread::spawn(move || web_handler::serve(listener, db));

    let (status, answer) = request(address, "POST", "/search?k=2", &photo("Tony_Blair", 4));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["identity"], "Tony_Blair", "{answer}");
    assert_eq!(answer["matches"].as_array().unwrap().len(), 2);

    // Serena is a stranger until a request enrols her (a name with an escaped space).
    let (_, answer) = request(address, "POST", "/search", &photo("Serena_Williams", 3));
    assert!(answer["identity"].is_null(), "{answer}");
    let (status, report) = request(address, "POST", "/enroll?name=Serena%20Williams", &photo("Serena_Williams", 1));
    assert_eq!((status, report["status"].as_str()), (200, Some("enrolled")), "{report}");
    let (_, answer) = request(address, "POST", "/search", &photo("Serena_Williams", 3));
    assert_eq!(answer["identity"], "Serena Williams", "{answer}");
    let (status, people) = request(address, "GET", "/people", b"");
    assert_eq!((status, people.as_array().map(Vec::len)), (200, Some(3)));

    // Bytes that are no image: 400 with the typed error's kind; a photo without a face: 422.
    let (status, error) = request(address, "POST", "/search", b"not a jpeg at all");
    assert_eq!((status, error["kind"].as_str()), (400, Some("image")), "{error}");
    let no_face = std::fs::read(fixtures().join("no_face_shapes.png")).unwrap();
    let (status, error) = request(address, "POST", "/enroll?name=Nobody", &no_face);
    assert_eq!((status, error["kind"].as_str()), (422, Some("no_face")), "{error}");
    let (status, _) = request(address, "DELETE", "/people", b"");
    assert_eq!(status, 404);
}
