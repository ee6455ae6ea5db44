//! The bearer token: required for every request (but `/healthz` and the page itself) on a
//! non-loopback address, and for writes when one is given on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::AppState;
use crate::error::{FdbError, Result};

/// Who may do what.
#[derive(Debug, Clone)]
pub struct Auth {
    token: Option<String>,
    /// Reads need the token too (a non-loopback address).
    reads_need_token: bool,
}

impl Auth {
    /// The policy for `token` on `listen`; a non-loopback address without a token is refused.
    pub fn new(token: Option<String>, listen: &SocketAddr) -> Result<Self> {
        let loopback = listen.ip().is_loopback();
        if let Some(t) = &token {
            if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(FdbError::Invalid("--token-file: the token must be one word of visible characters".into()));
            }
        }
        if !loopback && token.is_none() {
            return Err(FdbError::Invalid(format!(
                "--listen {listen} is not a loopback address: give --token-file FILE, so that only clients holding the token reach the faces"
            )));
        }
        Ok(Self { reads_need_token: !loopback, token })
    }

    /// Whether a request of `method` to `path` needs the token.
    pub fn needs_token(&self, method: &Method, path: &str) -> bool {
        if self.token.is_none() || path == "/healthz" || path == "/" {
            return false;
        }
        // search, verify and embed are POSTs that change nothing.
        let write = matches!(*method, Method::PUT | Method::PATCH | Method::DELETE) || (*method == Method::POST && path == "/v1/enroll");
        write || self.reads_need_token
    }

    /// Whether `authorization` (the header) carries the token.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(token) = &self.token else { return true };
        let given = authorization.and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        // Compared in constant time, so the answer's timing does not tell a prefix.
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Whether a token was given.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// The middleware: 401 with `WWW-Authenticate: Bearer` where the token is needed and missing.
pub(crate) async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let auth = &state.auth;
    if auth.needs_token(request.method(), request.uri().path()) && !auth.accepts(request.headers().get(header::AUTHORIZATION)) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request needs the server's token: send the header `Authorization: Bearer TOKEN`",
        )
        .into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_guards_writes_and_other_addresses_guard_everything() {
        let local: SocketAddr = "127.0.0.1:8640".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:8640".parse().unwrap();
        assert!(Auth::new(None, &public).unwrap_err().to_string().contains("--token-file"));
        let open = Auth::new(None, &local).unwrap();
        assert!(!open.needs_token(&Method::POST, "/v1/enroll"));
        let t = Some("s3cret".to_string());
        let guarded = Auth::new(t.clone(), &local).unwrap();
        assert!(guarded.needs_token(&Method::POST, "/v1/enroll"));
        assert!(guarded.needs_token(&Method::DELETE, "/v1/faces/3"));
        assert!(!guarded.needs_token(&Method::GET, "/v1/people"));
        assert!(!guarded.needs_token(&Method::POST, "/v1/search"));
        let everything = Auth::new(t, &public).unwrap();
        assert!(everything.needs_token(&Method::GET, "/v1/people"));
        assert!(everything.needs_token(&Method::POST, "/v1/search"));
        assert!(!everything.needs_token(&Method::GET, "/healthz"));
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(everything.accepts(Some(&header("Bearer s3cret"))));
        assert!(!everything.accepts(Some(&header("Bearer s3cre"))));
        assert!(!everything.accepts(Some(&header("s3cret"))));
        assert!(!everything.accepts(None));
        assert!(Auth::new(Some("two words".into()), &local).is_err());
    }
}
