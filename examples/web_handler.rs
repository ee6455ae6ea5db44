//! fdb behind a web handler: a small HTTP server on the standard library alone (no async
//! runtime), one thread per connection, every thread sharing one `FaceDb` (it is
//! `Send + Sync`). The photo is the request's body, in memory; fdb never sees a file.
//!
//! ```sh
//! cargo run --release --example web_handler -- DB_DIR [ADDRESS]   # default 127.0.0.1:8080
//! curl --data-binary @probe.jpg 'http://127.0.0.1:8080/search?k=3'
//! curl --data-binary @alice.jpg 'http://127.0.0.1:8080/enroll?name=Alice%20Smith'
//! curl http://127.0.0.1:8080/people
//! ```
//!
//! Answers are JSON. A photo fdb cannot read is 400, a photo without a usable face 422, a busy
//! database 503, each with `{"error": message, "kind": FdbError::kind}`: the typed error
//! decides the status, not the message's wording.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use fdb::{EnrollStatus, FaceDb, FdbError, OpenOptions, ReportedError};
use serde_json::{json, Value};

/// Bodies above this are refused (413) before they are read.
const MAX_BODY: usize = 32 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db_dir = args.next().ok_or("usage: web_handler DB_DIR [ADDRESS]")?;
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    // The weights are installed (with pip) if the models dir lacks them: asked for explicitly.
    let db = Arc::new(FaceDb::open_with(db_dir, OpenOptions::new().install_models(true))?);
    let listener = TcpListener::bind(&address)?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, db)?;
    Ok(())
}

/// Answers every connection on `listener` on a thread of its own.
pub fn serve(listener: TcpListener, db: Arc<FaceDb>) -> std::io::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        let db = db.clone();
        std::thread::spawn(move || {
            if let Err(e) = answer_connection(&db, stream) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// One request read, handled and answered; the connection is closed after it.
fn answer_connection(db: &FaceDb, mut stream: TcpStream) -> std::io::Result<()> {
    let (status, body) = match read_request(&mut stream) {
        Ok(request) => handle(db, &request),
        Err(RequestError::TooLarge) => (413, json!({ "error": format!("bodies are limited to {MAX_BODY} bytes") })),
        Err(RequestError::Malformed(why)) => (400, json!({ "error": why })),
        Err(RequestError::Io(e)) => return Err(e),
    };
    let text = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        reason(status),
        text.len()
    )?;
    stream.flush()
}

/// An HTTP request: method, path, query parameters (percent-decoded) and body.
pub struct Request {
    /// GET, POST, …
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query's parameters.
    pub query: HashMap<String, String>,
    /// The body (the photo).
    pub body: Vec<u8>,
}

/// Why a request could not be read.
enum RequestError {
    TooLarge,
    Malformed(String),
    Io(std::io::Error),
}

fn read_request(stream: &mut TcpStream) -> Result<Request, RequestError> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(RequestError::Io)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(RequestError::Malformed(format!("not an HTTP request line: {line:?}")));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_err(RequestError::Io)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| RequestError::Malformed(format!("Content-Length {value:?}")))?;
            }
        }
    }
    if length > MAX_BODY {
        return Err(RequestError::TooLarge);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(RequestError::Io)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Request { method, path: path.to_string(), query, body })
}

/// The handler: a status and a JSON body for each request.
pub fn handle(db: &FaceDb, request: &Request) -> (u16, Value) {
    let answer = match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/search") => search(db, request),
        ("POST", "/enroll") => enroll(db, request),
        ("GET", "/people") => people(db),
        _ => return (404, json!({ "error": format!("no {} {}: POST /search, POST /enroll?name=NAME, GET /people", request.method, request.path) })),
    };
    match answer {
        Ok(body) => (200, body),
        Err(e) => (status_of(&e), json!({ "error": e.to_string(), "kind": e.kind() })),
    }
}

/// A handler's failure: fdb's typed error, shared (an enrolment's report holds it so).
type Failure = ReportedError;

fn search(db: &FaceDb, request: &Request) -> Result<Value, Failure> {
    let k = match request.query.get("k") {
        Some(k) => k.parse().map_err(|_| FdbError::Invalid(format!("k={k} is not a count")))?,
        None => 1,
    };
    let answer = db.search(request.body.as_slice(), k)?;
    Ok(serde_json::to_value(answer).expect("plain data"))
}

fn enroll(db: &FaceDb, request: &Request) -> Result<Value, Failure> {
    let name = request.query.get("name").ok_or_else(|| FdbError::Invalid("enroll needs ?name=NAME".into()))?;
    let report = db.enroll(name, &[request.body.as_slice()])?.remove(0);
    match report.status {
        // One photo per request: the photo's failure is the request's, with its typed error.
        EnrollStatus::Failed { error } | EnrollStatus::NoFace { error } => Err(error),
        _ => Ok(serde_json::to_value(&report).expect("plain data")),
    }
}

fn people(db: &FaceDb) -> Result<Value, Failure> {
    let people: Vec<Value> = db.people()?.iter().map(|p| json!({ "id": p.id.0, "name": p.name })).collect();
    Ok(Value::Array(people))
}

/// The HTTP status of an error, by its kind.
fn status_of(e: &FdbError) -> u16 {
    match e {
        FdbError::Image(_) | FdbError::Frame(_) | FdbError::Invalid(_) => 400,
        FdbError::ReadOnly { .. } => 403,
        FdbError::UnknownPerson(_) | FdbError::NotFound { .. } => 404,
        e if e.is_negative() => 422,
        FdbError::Locked { .. } => 503,
        _ => 500,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// `%XX` escapes and `+` for space, as browsers and curl write query strings.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}
