//! The JSON endpoints.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::writer::Refused;
use super::{ServeOptions, Shared};
use crate::history::{HistoryError, Label, RunFilter, Store, parse_label, trend};
use crate::load::{LoadOptions, load_slice};
use crate::render::{Format, RenderOptions, ReportKind, render};
use crate::{LoadedDump, Report};

/// An error as the API answers it: a status and `{"error": "..."}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        let status = match &e {
            HistoryError::NoSuchRun { .. } => StatusCode::NOT_FOUND,
            HistoryError::Label(_) | HistoryError::BadLabel { .. } => StatusCode::BAD_REQUEST,
            // The database cannot be used as it is now (locked, deleted,
            // replaced, read-only, full, failing): the server is fine and
            // serves again once the file is; nothing was written.
            HistoryError::Locked { .. }
            | HistoryError::Missing { .. }
            | HistoryError::NotHistory { .. }
            | HistoryError::NewerSchema { .. }
            | HistoryError::ReadOnly { .. }
            | HistoryError::Full { .. }
            | HistoryError::Io { .. }
            | HistoryError::Open { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs `f` on a blocking thread with the database open.
async fn with_store<T: Send + 'static>(
    opts: &ServeOptions,
    f: impl FnOnce(&mut Store) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let db = opts.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = Store::open_existing(&db)?;
        f(&mut store)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The query's pairs, in order (`label` may repeat).
fn pairs(query: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query: {e}")))
}

fn labels_of(pairs: &[(String, String)]) -> ApiResult<Vec<Label>> {
    pairs
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| parse_label(v).map_err(ApiError::from))
        .collect()
}

/// `program`, `label` (repeatable) and `limit` as a filter.
fn filter_of(pairs: &[(String, String)]) -> ApiResult<RunFilter> {
    let mut filter = RunFilter::default().labels(&labels_of(pairs)?);
    for (k, v) in pairs {
        match k.as_str() {
            "program" => filter = filter.program(v),
            "limit" => {
                let n = v.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("limit {v:?} is not a number"),
                    )
                })?;
                filter = filter.newest(n);
            }
            "label" => {}
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {other:?} (program, label, limit)"),
                ));
            }
        }
    }
    Ok(filter)
}

pub(super) async fn status(State(opts): State<Arc<Shared>>) -> ApiResult<Json<Value>> {
    let db = opts.db.display().to_string();
    with_store(&opts, move |store| {
        Ok(Json(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "db": db,
            "schema_version": store.schema_version()?,
            "runs": store.run_count()?,
        })))
    })
    .await
}

pub(super) async fn runs(
    State(opts): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let filter = filter_of(&pairs(query)?)?;
    with_store(&opts, move |store| Ok(Json(json!(store.runs(&filter)?)))).await
}

pub(super) async fn run(
    State(opts): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let id = run_id(&param(id)?)?;
    with_store(&opts, move |store| {
        Ok(Json(
            json!({ "run": store.run(id)?, "spans": store.spans(id)? }),
        ))
    })
    .await
}

/// The path's parameter, or the rejection as a JSON error (a parameter
/// that does not percent-decode to UTF-8, say).
fn param(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::new(e.status(), format!("bad path: {}", e.body_text())))
}

fn run_id(raw: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no run {raw:?}: ids are numbers"),
        )
    })
}

/// The stored run's dump, ready for analysis.
fn loaded(store: &Store, id: i64) -> ApiResult<LoadedDump> {
    let dump = store.dump(id)?;
    Ok(LoadedDump::from(dump))
}

pub(super) async fn report(
    State(opts): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let options = RenderOptions::default().with_top(0);
    rendered(
        &opts,
        &param(id)?,
        Format::Json,
        options,
        "application/json",
    )
    .await
}

pub(super) async fn report_html(
    State(opts): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let options = RenderOptions::default();
    rendered(
        &opts,
        &param(id)?,
        Format::Html,
        options,
        "text/html; charset=utf-8",
    )
    .await
}

/// Run `id`'s full report in `format`, served as `content_type`.
async fn rendered(
    opts: &Arc<Shared>,
    id: &str,
    format: Format,
    options: RenderOptions,
    content_type: &'static str,
) -> ApiResult<Response> {
    let id = run_id(id)?;
    let body = with_store(opts, move |store| {
        let dump = loaded(store, id)?;
        let report = Report::build(&dump, &crate::Config::default());
        Ok(render(&report, format, ReportKind::Full, &options))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

pub(super) async fn flamegraph(
    State(opts): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let id = run_id(&param(id)?)?;
    let svg = with_store(&opts, move |store| {
        let dump = store.dump(id)?;
        let mut out = Vec::new();
        crate::flamegraph::flamegraph_svg(&dump, &mut out).map_err(|e| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("run {id} has no flamegraph: {e}"),
            )
        })?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

pub(super) async fn trend(
    State(opts): State<Arc<Shared>>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let name = param(name)?;
    let filter = filter_of(&pairs(query)?)?;
    with_store(&opts, move |store| {
        let trends = trend::trends(store, &name, &filter)?;
        if trends.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no stored run has a span {name:?}"),
            ));
        }
        Ok(Json(json!(trends)))
    })
    .await
}

pub(super) async fn record(
    State(opts): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the dump is larger than the server's limit of {} bytes",
                opts.max_body
            )
        } else {
            e.body_text()
        };
        ApiError::new(status, message)
    })?;
    let pairs = pairs(query)?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k != "label") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {k:?} (label)"),
        ));
    }
    let labels = labels_of(&pairs)?;
    let load = LoadOptions::default().with_max_bytes(opts.max_body);
    let dump = load_slice(&body, "the request body", &load)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let outcome = match opts.writer.submit(dump.into_dump(), labels) {
        Ok(outcome) => outcome,
        Err(Refused::Full { capacity }) => {
            let message = format!(
                "{capacity} uploads are already waiting to be stored; retry in a second (nothing was stored)"
            );
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(json!({ "error": message })),
            )
                .into_response());
        }
        Err(Refused::Stopped) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server's writer has stopped; restart perf-report serve (nothing was stored)",
            ));
        }
    };
    let outcome = outcome
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server's writer stopped before answering; the run may not be stored",
            )
        })?
        .map_err(ApiError::from)?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(outcome))).into_response())
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see `perf-report serve --help` for the routes",
    )
}

pub(super) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not served here: the API reads with GET, and POST /api/runs records a dump"
        ),
    )
}
