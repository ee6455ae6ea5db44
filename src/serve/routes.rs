//! The endpoints (the README's `fdb serve` section and `/v1/openapi.json` list them with their
//! HTTP codes). Detection and embedding go through the bounded pool; the other calls are
//! quick database reads and writes on tokio's blocking threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::errors::{ApiError, ApiResult};
use super::metrics::Gauges;
use super::uploads::Form;
use super::AppState;
use crate::facedb::{EnrollStatus, FaceDb};
use crate::{FaceEmbedding, FaceId};

type Shared = Arc<AppState>;
type Params = Query<HashMap<String, String>>;

/// Requests in flight at once, all routes together; past it the server answers 503 (each holds
/// at most a body, so memory stays bounded even when clients flood the cheap routes).
const MAX_IN_FLIGHT: usize = 512;

/// The application: routes, then (inside out) the token check, the timeout, and the metrics.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(super::page::index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(super::openapi::document))
        .route("/v1/info", get(info))
        .route("/v1/enroll", post(enroll))
        .route("/v1/search", post(search))
        .route("/v1/verify", post(verify))
        .route("/v1/embed", post(embed))
        .route("/v1/people", get(people))
        .route("/v1/people/{name}", get(person).patch(rename).delete(remove_person))
        .route("/v1/faces/{id}", get(face_crop).delete(remove_face))
        .route("/v1/eval/roc", get(eval_roc))
        .fallback(no_route)
        // The multipart parser's own limit (2 MB unless told): the same as the body's.
        .layer(axum::extract::DefaultBodyLimit::max(state.options.max_body))
        .layer(middleware::from_fn_with_state(state.clone(), super::auth::require_token))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

// ---- middleware ----

/// Counts and times every answer by route, and refuses past `MAX_IN_FLIGHT`.
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    // A guard, so that a request whose client went away (its future dropped) is no longer counted.
    let in_flight = InFlight::enter(&state.in_flight);
    let response = if in_flight.over {
        let mut busy = ApiError::busy(0);
        busy.message = format!("the server is busy: {MAX_IN_FLIGHT} requests are in flight; try again shortly");
        busy.into_response()
    } else {
        next.run(request).await
    };
    drop(in_flight);
    state.metrics.record(&method, &route, response.status().as_u16(), started.elapsed());
    response
}

/// One request in flight, counted until it is dropped.
struct InFlight<'a> {
    count: &'a AtomicUsize,
    over: bool,
}

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::SeqCst);
        Self { count, over: before >= MAX_IN_FLIGHT }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// 504 `timeout` past `--timeout`. A job already running finishes in the pool (so no more than
/// `--workers` run); an enrolment that times out may still be stored: list the person to see.
async fn timeout(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let limit = state.options.timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the request took over {} s (--timeout)", limit.as_secs_f64()),
        )
        .into_response(),
    }
}

async fn no_route(request: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", format!("no endpoint {} {} (see /v1/openapi.json)", request.method(), request.uri().path()))
}

// ---- helpers ----

/// Runs a quick database call on a blocking thread.
async fn blocking<T: Send + 'static>(state: &Shared, job: impl FnOnce(&FaceDb) -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || job(&db))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("the job failed: {e}")))?
}

/// A count parameter (`k`): a whole number of at least 1.
fn count_param(params: &HashMap<String, String>, name: &str, default: usize) -> ApiResult<usize> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => Err(ApiError::bad_request(format!("{name}=0 ranks no one: give 1 or more"))),
            Ok(n) if n <= 1000 => Ok(n),
            _ => Err(ApiError::bad_request(format!("{name}={text:?} is not a count from 1 to 1000"))),
        },
    }
}

/// A yes/no parameter: `true`/`1`/`yes` or `false`/`0`/`no`.
fn flag_param(params: &HashMap<String, String>, name: &str) -> ApiResult<bool> {
    match params.get(name).map(String::as_str) {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes" | "") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("{name}={other:?}: use true or false"))),
    }
}

fn face_id(text: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| ApiError::bad_request(format!("face id {text:?} is not a number")))
}

// ---- the plain routes ----

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(state): State<Shared>) -> ApiResult<Response> {
    let stats = blocking(&state, |db| Ok(db.store().stats().map_err(crate::FdbError::from)?)).await?;
    let gauges = Gauges {
        faces: stats.faces,
        people: stats.people,
        queue_depth: state.pool.waiting(),
        queue_capacity: state.pool.queue(),
        running: state.pool.running(),
        workers: state.pool.workers(),
        batches: state.batcher.counts(),
        in_flight: state.in_flight.load(Ordering::SeqCst),
    };
    let text = state.metrics.render(&gauges);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

async fn info(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let stats = blocking(&state, |db| Ok(db.info()?)).await?;
    let o = &state.options;
    Ok(Json(json!({
        "db": state.db.path(),
        "stats": stats,
        "server": {
            "version": env!("CARGO_PKG_VERSION"),
            "listen": state.bound.to_string(),
            "workers": o.workers,
            "queue": o.queue,
            "max_body": o.max_body,
            "timeout_s": o.timeout.as_secs_f64(),
            "batch": o.batch,
            "token": state.auth.has_token(),
        },
    })))
}

async fn eval_roc(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let roc = blocking(&state, |db| Ok(crate::eval::saved_roc::SavedRoc::load(db.store())?)).await?;
    let roc = roc.ok_or_else(|| ApiError::not_found("no evaluation is saved in this database (`fdb eval lfw … --save-threshold` saves one)"))?;
    Ok(Json(serde_json::to_value(roc).expect("plain data")))
}

// ---- photos: the pool ----

async fn enroll(State(state): State<Shared>, Query(params): Params, request: Request) -> ApiResult<Response> {
    let ticket = state.pool.admit()?;
    let form = Form::read(request, state.options.max_body).await?;
    let name = params.get("name").map(String::as_str).or(form.field("name")).map(str::to_string);
    let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| ApiError::bad_request("no name: give ?name=NAME, or a `name` field in the form"))?;
    if form.uploads.is_empty() {
        return Err(ApiError::bad_request("no image: send the image's bytes as the body, or files in a multipart form"));
    }
    let uploads = form.uploads;
    let db = state.db.clone();
    let job_uploads = uploads.clone();
    let reports = ticket
        .run(move || {
            let inputs: Vec<_> = job_uploads.iter().map(|u| u.input()).collect();
            db.enroll(&name, &inputs)
        })
        .await??;
    // The library names an image from memory by its size; the answer names the uploads.
    let results: Vec<Value> = reports
        .iter()
        .zip(&uploads)
        .map(|(report, upload)| {
            let mut row = serde_json::to_value(report).expect("plain data");
            row["path"] = json!(upload.name());
            row
        })
        .collect();
    let stored = reports.iter().any(|r| matches!(r.status, EnrollStatus::Enrolled { .. } | EnrollStatus::Duplicate { .. }));
    let status = if stored { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let mut body = json!({ "results": results });
    if !stored {
        let no_face = reports.iter().all(|r| matches!(r.status, EnrollStatus::NoFace { .. }));
        let reasons: Vec<String> = reports
            .iter()
            .zip(&uploads)
            .map(|(r, u)| match &r.status {
                EnrollStatus::NoFace { error } | EnrollStatus::Failed { error } => {
                    error.error().to_string().replacen(&u.input().label(), &u.name(), 1)
                }
                _ => String::new(),
            })
            .collect();
        body["error"] = json!(format!("nothing was enrolled: {}", reasons.join("; ")));
        body["kind"] = json!(if no_face { "no_face" } else { "image" });
    }
    Ok((status, Json(body)).into_response())
}

async fn search(State(state): State<Shared>, Query(params): Params, request: Request) -> ApiResult<Json<Value>> {
    let k = count_param(&params, "k", 5)?;
    let all_faces = flag_param(&params, "all_faces")?;
    let ticket = state.pool.admit()?;
    let upload = Form::read(request, state.options.max_body).await?.one_image()?;
    let name = upload.name();
    let results = state.batcher.search(ticket, upload, k, all_faces).await?;
    Ok(Json(json!({ "photo": name, "results": results })))
}

async fn verify(State(state): State<Shared>, request: Request) -> ApiResult<Json<Value>> {
    let ticket = state.pool.admit()?;
    let [a, b] = Form::read(request, state.options.max_body).await?.two_images()?;
    let db = state.db.clone();
    let (ja, jb) = (a.clone(), b.clone());
    // Each image is decoded and checked first, so that an error names the image at fault.
    let verdict = ticket
        .run(move || {
            let pa = ja.input().decode().map_err(|e| ja.error(e))?;
            let pb = jb.input().decode().map_err(|e| jb.error(e))?;
            db.verify(&pa.image, &pb.image).map_err(ApiError::from)
        })
        .await??;
    Ok(Json(json!({ "photos": [a.name(), b.name()], "verification": verdict })))
}

async fn embed(State(state): State<Shared>, request: Request) -> ApiResult<Json<Value>> {
    let ticket = state.pool.admit()?;
    let upload = Form::read(request, state.options.max_body).await?.one_image()?;
    let db = state.db.clone();
    let job_upload = upload.clone();
    let faces = ticket.run(move || db.embed(job_upload.input())).await?.map_err(|e| upload.error(e))?;
    let faces: Vec<Value> = faces.iter().map(embedding_json).collect();
    Ok(Json(json!({ "photo": upload.name(), "faces": faces })))
}

fn embedding_json(f: &FaceEmbedding) -> Value {
    json!({
        "bbox": f.bbox,
        "landmarks": f.landmarks,
        "detector_score": f.detector_score,
        "quality": f.quality,
        "source": f.source.as_str(),
        "primary": f.primary,
        "vectors_id": f.vectors_id,
        "vector": f.vector,
    })
}

// ---- people and faces ----

async fn people(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    blocking(&state, |db| {
        let people: Vec<Value> = db
            .people()?
            .into_iter()
            .map(|p| {
                let faces = db.faces(&p.name)?;
                Ok(json!({
                    "id": p.id.0,
                    "name": p.name,
                    "created_ms": p.created_ms,
                    "faces": faces.iter().map(|f| f.id.0).collect::<Vec<_>>(),
                }))
            })
            .collect::<crate::Result<_>>()?;
        Ok(Json(json!({ "people": people })))
    })
    .await
}

async fn person(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    blocking(&state, move |db| {
        let faces: Vec<Value> = db
            .faces(&name)?
            .into_iter()
            .map(|f| {
                json!({
                    "id": f.id.0,
                    "source_name": f.source_name,
                    "bbox": f.bbox,
                    "landmarks": f.landmarks,
                    "detector_score": f.score,
                    "quality": f.quality,
                    "model": f.model_id,
                    "created_ms": f.created_ms,
                })
            })
            .collect();
        Ok(Json(json!({ "name": name, "faces": faces })))
    })
    .await
}

async fn rename(State(state): State<Shared>, Path(name): Path<String>, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let new: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let new = new["name"].as_str().map(str::to_string).ok_or_else(|| ApiError::bad_request("send {\"name\": \"NEW NAME\"}"))?;
    blocking(&state, move |db| {
        db.rename(&name, &new)?;
        Ok(Json(json!({ "renamed": name, "to": new })))
    })
    .await
}

async fn remove_person(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    blocking(&state, move |db| {
        let faces = db.remove_person(&name)?;
        Ok(Json(json!({ "removed": name, "faces": faces })))
    })
    .await
}

async fn face_crop(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = face_id(&id)?;
    let png = blocking(&state, move |db| {
        let face = db.face(FaceId(id))?.ok_or_else(|| ApiError::not_found(format!("no face {id}")))?;
        Ok(crate::facedb::encode_png(&face.crop)?)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=3600")], png).into_response())
}

async fn remove_face(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = face_id(&id)?;
    blocking(&state, move |db| {
        let face = db.face(FaceId(id))?.ok_or_else(|| ApiError::not_found(format!("no face {id}")))?;
        db.remove_face(FaceId(id))?;
        Ok(Json(json!({ "removed": id, "person": face.person })))
    })
    .await
}
