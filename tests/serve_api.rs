//! `fdb serve`'s endpoints on loopback: happy paths, bad input with its HTTP code and kind,
//! the token, backpressure, timeouts, the OpenAPI document against the routes, and SIGTERM
//! closing the database.

mod common;

use std::collections::BTreeSet;

use common::serve::{enroll_raw, listed_faces, photo, search_raw, Client, Part, Server};
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";

fn kind(r: &common::serve::Response) -> String {
    r.json()["kind"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_api_enrols_searches_verifies_and_manages_people() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = Server::start(&db, &["--token-file", token_file.to_str().unwrap(), "--max-body", "1"]);
    let anon = server.client();
    let c = server.client().with_token(TOKEN);

    assert_eq!(anon.get("/healthz").unwrap().json()["status"], "ok");

    // Writes need the token; reads on loopback do not.
    let tony = |i: u32| photo(&format!("people/Tony_Blair/Tony_Blair_000{i}.jpg"));
    let refused = enroll_raw(&anon, "Tony_Blair", &tony(1));
    assert_eq!((refused.status, kind(&refused).as_str()), (401, "unauthorized"), "{}", refused.text());
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let wrong = enroll_raw(&Client::new(server.addr).with_token("not-it"), "Tony_Blair", &tony(1));
    assert_eq!(wrong.status, 401);

    // Enrolment: a form with three files, then raw bodies; answered per photo.
    let (t1, t2, t3) = (tony(1), tony(2), tony(3));
    let r = c
        .post_form(
            "/v1/enroll",
            &[
                Part { name: "name", filename: None, bytes: b"Tony_Blair" },
                Part { name: "photo", filename: Some("t1.jpg"), bytes: &t1 },
                Part { name: "photo", filename: Some("t2.jpg"), bytes: &t2 },
                Part { name: "photo", filename: Some("t3.jpg"), bytes: &t3 },
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    let paths: Vec<&str> = results.iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["t1.jpg", "t2.jpg", "t3.jpg"]);
    assert!(results.iter().all(|x| x["status"] == "enrolled" && x["person"] == "Tony_Blair"), "{results:?}");
    let tony_faces: Vec<u64> = results.iter().map(|x| x["face"].as_u64().unwrap()).collect();
    for i in 1..=2 {
        let r = enroll_raw(&c, "Colin_Powell", &photo(&format!("people/Colin_Powell/Colin_Powell_000{i}.jpg")));
        assert_eq!((r.status, r.json()["results"][0]["status"].as_str()), (200, Some("enrolled")), "{}", r.text());
    }
    let again = enroll_raw(&c, "Someone_Else", &t1);
    assert_eq!(again.json()["results"][0]["status"], "duplicate");
    assert_eq!(again.json()["results"][0]["person"], "Tony_Blair", "a duplicate is whoever the photo is enrolled as");
    let nobody = enroll_raw(&c, "Nobody", &photo("no_face_shapes.png"));
    assert_eq!((nobody.status, kind(&nobody).as_str()), (422, "no_face"), "{}", nobody.text());
    assert_eq!(enroll_raw(&c, "", &t1).status, 400);

    // Search: the right person, matched to one of their faces.
    let found = search_raw(&anon, &tony(4));
    assert_eq!(found.status, 200, "{}", found.text());
    let answer = &found.json()["results"][0];
    assert_eq!(answer["identity"], "Tony_Blair", "{answer}");
    assert!(tony_faces.contains(&answer["matches"][0]["face"].as_u64().unwrap()));
    let k1 = anon.post("/v1/search?k=1&all_faces=true", "image/jpeg", &tony(4)).unwrap();
    assert_eq!(k1.json()["results"][0]["matches"].as_array().unwrap().len(), 1);
    let group = anon.post("/v1/search?all_faces=true", "image/jpeg", &photo("group_simon_cowell_0001.jpg")).unwrap();
    assert!(group.json()["results"].as_array().unwrap().len() >= 2, "{}", group.text());

    // Bad input: the code, the kind, and the upload named with the reason.
    let mut damaged = tony(4);
    damaged.truncate(damaged.len() / 3);
    let r = anon.post_form("/v1/search", &[Part { name: "photo", filename: Some("broken.jpg"), bytes: &damaged }]).unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (422, "image"), "{}", r.text());
    let message = r.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("broken.jpg") && (message.contains("truncated") || message.contains("corrupt")), "{message}");
    let r = search_raw(&anon, b"plain text, not a photo");
    assert_eq!((r.status, kind(&r).as_str()), (422, "image"));
    assert!(r.json()["error"].as_str().unwrap().contains("not an image"), "{}", r.text());
    let r = search_raw(&anon, &photo("no_face_shapes.png"));
    assert_eq!((r.status, kind(&r).as_str()), (422, "no_face"), "{}", r.text());
    let r = search_raw(&anon, &photo("bomb_100000x100000.png"));
    assert_eq!((r.status, kind(&r).as_str()), (413, "image"), "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("100000x100000"), "{}", r.text());
    let r = anon.post("/v1/search?k=0", "image/jpeg", &tony(4)).unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (400, "bad_request"));
    let r = search_raw(&anon, b"");
    assert_eq!((r.status, kind(&r).as_str()), (400, "bad_request"));
    let r = search_raw(&anon, &vec![0xff; 1_500_000]); // over --max-body 1 (MiB)
    assert_eq!((r.status, kind(&r).as_str()), (413, "too_large"), "{}", r.text());

    // Verify: two files.
    let verify = |a: &[u8], b: &[u8]| {
        let r = anon.post_form("/v1/verify", &[Part { name: "a", filename: Some("a.jpg"), bytes: a }, Part { name: "b", filename: Some("b.jpg"), bytes: b }]).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["verification"]["same"].as_bool().unwrap()
    };
    assert!(verify(&tony(1), &tony(4)));
    assert!(!verify(&tony(1), &photo("people/Colin_Powell/Colin_Powell_0003.jpg")));
    let r = anon.post_form("/v1/verify", &[Part { name: "a", filename: Some("a.jpg"), bytes: &t1 }]).unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (400, "bad_request"));
    let r = anon.post_form("/v1/verify", &[Part { name: "a", filename: Some("a.jpg"), bytes: &t1 }, Part { name: "b", filename: Some("bad.png"), bytes: b"\x89PNG\r\n\x1a\nrubbish" }]).unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("bad.png"), "{}", r.text());

    // Embed: the primary face first, with the database's vector.
    let r = anon.post("/v1/embed", "image/jpeg", &tony(4)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let face = &r.json()["faces"][0];
    assert_eq!((face["primary"].as_bool(), face["vector"].as_array().map(Vec::len)), (Some(true), Some(512)));

    // People and faces.
    let people = listed_faces(&anon);
    assert_eq!(people.iter().map(|(n, f)| (n.as_str(), f.len())).collect::<Vec<_>>(), [("Tony_Blair", 3), ("Colin_Powell", 2)]);
    let r = anon.get("/v1/people/Tony_Blair").unwrap();
    let ids: Vec<u64> = r.json()["faces"].as_array().unwrap().iter().map(|f| f["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, tony_faces);
    let crop = anon.get(&format!("/v1/faces/{}", tony_faces[0])).unwrap();
    assert_eq!((crop.status, crop.header("content-type")), (200, Some("image/png")));
    assert_eq!(image::load_from_memory(&crop.body).unwrap().to_rgb8().dimensions(), (160, 160));
    let r = anon.get("/v1/faces/999999").unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (404, "not_found"));
    assert_eq!(anon.get("/v1/faces/abc").unwrap().status, 400);
    assert_eq!(c.delete("/v1/faces/999999").unwrap().status, 404);
    let r = anon.get("/v1/people/Nobody_At_All").unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (404, "unknown_person"));

    assert_eq!(anon.request("PATCH", "/v1/people/Colin_Powell", Some("application/json"), br#"{"name":"Colin"}"#).unwrap().status, 401);
    let r = c.request("PATCH", "/v1/people/Colin_Powell", Some("application/json"), br#"{"name":"Colin"}"#).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.request("PATCH", "/v1/people/Colin", Some("application/json"), br#"{"name":"Tony_Blair"}"#).unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (409, "name_taken"), "{}", r.text());
    assert_eq!(c.delete(&format!("/v1/faces/{}", tony_faces[2])).unwrap().status, 200);
    let r = c.delete("/v1/people/Colin").unwrap();
    assert_eq!((r.status, r.json()["faces"].as_u64()), (200, Some(2)), "{}", r.text());
    assert_eq!(listed_faces(&anon), [("Tony_Blair".to_string(), tony_faces[..2].to_vec())]);

    // A client that goes away in the middle of its upload leaves no place taken behind it.
    {
        use std::io::Write;
        let mut half = std::net::TcpStream::connect(server.addr).unwrap();
        half.write_all(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let metrics = anon.get("/metrics").unwrap().text();
        assert!(metrics.lines().any(|l| l == "fdb_queue_depth 1"), "the upload holds a place while it lasts:\n{metrics}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let metrics = anon.get("/metrics").unwrap().text();
    assert!(metrics.lines().any(|l| l == "fdb_queue_depth 0"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "fdb_requests_in_flight 1"), "only the metrics request is in flight:\n{metrics}");

    let info = anon.get("/v1/info").unwrap().json();
    assert_eq!((info["stats"]["people"].as_u64(), info["stats"]["faces"].as_u64()), (Some(1), Some(2)), "{info}");
    let metrics = anon.get("/metrics").unwrap().text();
    assert!(metrics.lines().any(|l| l == "fdb_faces 2"), "{metrics}");
    assert!(metrics.contains("fdb_http_requests_total{method=\"POST\",route=\"/v1/search\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("fdb_http_requests_total{method=\"POST\",route=\"/v1/enroll\",status=\"401\"}"), "{metrics}");
    let r = anon.get("/v1/eval/roc").unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (404, "not_found"));
    let r = anon.get("/v1/no/such/thing").unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (404, "no_route"));
    let page = anon.get("/").unwrap();
    assert!(page.header("content-type").unwrap().starts_with("text/html") && page.text().contains("id=\"search-drop\""));

    openapi_lists_every_route(&c);

    // SIGTERM: the server stops and the database is closed, with everything in it.
    let status = server.stop();
    assert!(status.success(), "{status}");
    let (code, list) = common::fdb_json(&db, &["list", "Tony_Blair"]);
    assert_eq!(code, Some(0), "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
}

/// Every path and method the OpenAPI document lists is routed, and every routed endpoint is
/// listed.
fn openapi_lists_every_route(c: &Client) {
    let doc = c.get("/v1/openapi.json").unwrap().json();
    let mut listed = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys().filter(|m| *m != "parameters") {
            listed.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = [
        ("GET", "/"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/openapi.json"), ("GET", "/v1/info"),
        ("POST", "/v1/enroll"), ("POST", "/v1/search"), ("POST", "/v1/verify"), ("POST", "/v1/embed"),
        ("GET", "/v1/people"), ("GET", "/v1/people/{name}"), ("PATCH", "/v1/people/{name}"), ("DELETE", "/v1/people/{name}"),
        ("GET", "/v1/faces/{id}"), ("DELETE", "/v1/faces/{id}"), ("GET", "/v1/eval/roc"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(listed, routed, "the OpenAPI document and the routes differ");
    for (method, path) in &listed {
        let concrete = path.replace("{name}", "Nobody_At_All").replace("{id}", "999999");
        let r = c.request(method, &concrete, Some("application/json"), b"{}").unwrap();
        let body: Value = r.json();
        assert!(r.status != 405 && body["kind"] != "no_route", "{method} {path} is listed but not served: {} {}", r.status, r.text());
    }
}

#[test]
fn other_addresses_need_a_token_and_a_full_queue_answers_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let refused = Server::try_start(&db, &["--listen", "0.0.0.0:0"]).err().expect("no token, no public address");
    assert!(refused.contains("--token-file"), "{refused}");

    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let server = Server::start(&db, &["--listen", "0.0.0.0:0", "--token-file", token_file.to_str().unwrap(), "--queue", "0"]);
    let port = server.addr.port();
    let anon = Client::new(([127, 0, 0, 1], port).into());
    let c = anon.clone().with_token(TOKEN);
    let r = anon.get("/v1/people").unwrap();
    assert_eq!((r.status, kind(&r).as_str()), (401, "unauthorized"), "reads need the token off loopback");
    assert_eq!(anon.get("/healthz").unwrap().status, 200);
    assert_eq!(c.get("/v1/people").unwrap().status, 200);
    // No room in the queue: 503 with Retry-After, before the body is even read.
    let r = search_raw(&c, &photo("people/Tony_Blair/Tony_Blair_0001.jpg"));
    assert_eq!((r.status, kind(&r).as_str(), r.header("retry-after")), (503, "busy", Some("1")), "{}", r.text());
    drop(server);

    let server = Server::start(&db, &["--timeout", "0.001"]);
    let r = search_raw(&server.client(), &photo("people/Tony_Blair/Tony_Blair_0001.jpg"));
    assert_eq!((r.status, kind(&r).as_str()), (504, "timeout"), "{}", r.text());
}
