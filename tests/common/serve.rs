//! `fdb serve` for the serve tests: started on an ephemeral loopback port, the bound address
//! read from its first line of output, stopped with SIGTERM or killed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use fdb::serve::client::{Client, Part, Response};

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stderr, for failure messages.
    pub log: PathBuf,
}

impl Server {
    /// `fdb --db DB serve --listen 127.0.0.1:0 EXTRA…`, once it takes requests.
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        Self::try_start(db, extra).unwrap_or_else(|log| panic!("fdb serve did not start:\n{log}"))
    }

    /// As `start`, or the server's stderr when it exits before listening.
    pub fn try_start(db: &Path, extra: &[&str]) -> Result<Server, String> {
        let log = db.with_extension("serve.log");
        let mut args = vec!["serve"];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_fdb"))
            .arg("--db")
            .arg(db)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the fdb binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(addr) = line.split("http://").nth(1).and_then(|a| a.trim().trim_end_matches('/').parse().ok()) else {
            let _ = child.wait();
            return Err(format!("first line {line:?}; stderr:\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
        };
        Ok(Server { child: Some(child), addr, log })
    }

    /// A client without a token.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// SIGTERM, then the exit status (within 60 s).
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let term = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(term.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "fdb serve did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// What it wrote on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fixture photo's bytes.
pub fn photo(relative: &str) -> Vec<u8> {
    std::fs::read(super::fixtures().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A new photo of the person in `relative` (a fixture), enrolled as a face of its own.
pub fn variant(relative: &str, n: u32) -> Vec<u8> {
    fdb::serve::client::variant_png(&photo(relative), n).unwrap()
}

/// `POST /v1/enroll?name=NAME` with the photo as the body: the answer.
pub fn enroll_raw(client: &Client, name: &str, bytes: &[u8]) -> Response {
    client.post(&format!("/v1/enroll?name={name}"), "application/octet-stream", bytes).unwrap()
}

/// `POST /v1/search` with the photo as the body.
pub fn search_raw(client: &Client, bytes: &[u8]) -> Response {
    client.post("/v1/search", "application/octet-stream", bytes).unwrap()
}

/// Every face id the server lists, by person.
pub fn listed_faces(client: &Client) -> Vec<(String, Vec<u64>)> {
    let r = client.get("/v1/people").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["faces"].as_array().unwrap().iter().map(|f| f.as_u64().unwrap()).collect()))
        .collect()
}
