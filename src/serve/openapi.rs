//! `/v1/openapi.json`: the API described for clients and code generators (kept beside the
//! routes; `tests/serve_api.rs` checks that each path it lists is served and each route listed).

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3.0 document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_with_paths() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        assert!(doc["paths"].as_object().is_some_and(|p| p.len() >= 10));
    }
}
