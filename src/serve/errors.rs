//! Errors as the server answers them: JSON `{"error": message, "kind": kind}` with an HTTP
//! status. The kinds are the library's (`FdbError`'s variants in snake case) plus the server's
//! own (`unauthorized`, `not_found`, `too_large`, `busy`, `timeout`, `bad_request`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fdb_storage::StoreError;

use crate::error::FdbError;

/// An error answer: status, kind and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, as a stable word for programs.
    pub kind: &'static str,
    /// What went wrong, for people (names the upload and the reason).
    pub message: String,
    /// Seconds a client should wait before trying again (503 only).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), retry_after: None }
    }

    /// 400: the request itself is malformed (a missing name, a bad parameter, no image part).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: no such person, face or page.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503 with Retry-After: the detection queue is full.
    pub fn busy(queue: usize) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("the server is busy: {queue} requests are queued for detection already; try again shortly"),
        );
        e.retry_after = Some(1);
        e
    }
}

impl From<FdbError> for ApiError {
    fn from(e: FdbError) -> Self {
        let message = e.to_string();
        let (status, kind) = classify(&e);
        Self::new(status, kind, message)
    }
}

/// The status and kind of a library error: what the caller sent is wrong (4xx), or the server
/// cannot answer (5xx).
fn classify(e: &FdbError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    let status = match e {
        FdbError::Image(fdb_models::imageio::ImageError::TooLarge { .. }) => S::PAYLOAD_TOO_LARGE,
        FdbError::Image(_) | FdbError::Frame(_) | FdbError::NoFace { .. } | FdbError::SeveralFaces { .. } => S::UNPROCESSABLE_ENTITY,
        FdbError::LowQuality { .. } => S::UNPROCESSABLE_ENTITY,
        FdbError::UnknownPerson(_) | FdbError::NotFound { .. } => S::NOT_FOUND,
        FdbError::Storage(StoreError::NotFound(_)) => return (S::NOT_FOUND, "not_found"),
        FdbError::Storage(StoreError::NameTaken(_)) => return (S::CONFLICT, "name_taken"),
        FdbError::Storage(StoreError::InvalidArgument(_)) => return (S::BAD_REQUEST, "invalid"),
        FdbError::Invalid(_) | FdbError::ModelMismatch { .. } => S::BAD_REQUEST,
        FdbError::ReadOnly { .. } => S::FORBIDDEN,
        FdbError::NeedsRepair { .. } | FdbError::Locked { .. } | FdbError::Cancelled { .. } => S::SERVICE_UNAVAILABLE,
        _ => S::INTERNAL_SERVER_ERROR,
    };
    (status, e.kind())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "kind": self.kind });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
