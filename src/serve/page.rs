//! The web page at `/`: plain HTML and JavaScript in the binary (no build step, nothing
//! fetched from elsewhere). Drop a photo to search it, drop photos with a name to enrol them,
//! browse and remove people and faces, and see the ROC of the evaluation saved in the database.

use axum::http::header;
use axum::response::IntoResponse;

/// The page.
pub const INDEX_HTML: &str = include_str!("page.html");

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything is served from here; nothing else may run on the page.
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' blob: data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' data:"),
        ],
        INDEX_HTML,
    )
}
