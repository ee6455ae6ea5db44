//! A small blocking HTTP/1.1 client for `fdb serve` (one connection per request), used by the
//! integration tests and `fdb bench serve`. Programs in other languages use any HTTP client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A server's address and token.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    token: Option<String>,
    timeout: Duration,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One part of a multipart form: a file (with a file name) or a text field.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The field's name.
    pub name: &'a str,
    /// The file's name; `None` for a text field.
    pub filename: Option<&'a str>,
    /// The content.
    pub bytes: &'a [u8],
}

/// A `multipart/form-data` body of `parts`: (content type, body).
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "fdb-form-boundary-7e1b0c9d";
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", part.name).as_bytes());
        match part.filename {
            Some(f) => body.extend_from_slice(format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes()),
            None => body.extend_from_slice(b"\r\n\r\n"),
        }
        body.extend_from_slice(part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A distinct photo of the same face as `encoded` (one pixel changed, re-encoded as PNG), so
/// that load tests and benches enrol as many new faces as they like from a few photos.
pub fn variant_png(encoded: &[u8], n: u32) -> image::ImageResult<Vec<u8>> {
    let mut img = image::load_from_memory(encoded)?.to_rgb8();
    let (w, h) = img.dimensions();
    let (x, y) = (n % w, (n / w) % h);
    let p = img.get_pixel_mut(x, y);
    p.0[0] = p.0[0].wrapping_add(1 + (n / (w * h)) as u8);
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

impl Client {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, token: None, timeout: Duration::from_secs(120) }
    }

    /// Sends `Authorization: Bearer token` with every request.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> std::io::Result<Response> {
        self.request("GET", path, None, &[])
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> std::io::Result<Response> {
        self.request("DELETE", path, None, &[])
    }

    /// `POST path` with a body of `content_type`.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> std::io::Result<Response> {
        self.request("POST", path, Some(content_type), body)
    }

    /// `POST path` with a multipart form.
    pub fn post_form(&self, path: &str, parts: &[Part<'_>]) -> std::io::Result<Response> {
        let (content_type, body) = multipart(parts);
        self.post(path, &content_type, &body)
    }

    /// Any request; the connection is closed after the answer.
    pub fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> std::io::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", self.addr, body.len());
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse(&raw)
    }
}

fn bad(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Ok(Response { status, headers, body })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("a chunk without its size"))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad("a chunk size is not text"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad("a bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(bad("a chunk ends early"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_plain_and_chunked() {
        let plain = parse(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.header("content-type"), plain.text().as_str()), (404, Some("application/json"), "{}"));
        let chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n").unwrap();
        assert_eq!(chunked.text(), "Wikipedia");
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort").is_err());
    }

    #[test]
    fn a_form_holds_its_files_and_fields() {
        let (content_type, body) = multipart(&[
            Part { name: "name", filename: None, bytes: b"ann" },
            Part { name: "photo", filename: Some("a.jpg"), bytes: b"\xff\xd8" },
        ]);
        let text = String::from_utf8_lossy(&body);
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        assert_eq!(text.matches(&format!("--{boundary}")).count(), 3);
        assert!(text.contains("name=\"name\"\r\n\r\nann\r\n"));
        assert!(text.contains("name=\"photo\"; filename=\"a.jpg\""));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
