//! `perf-report serve`: a REST API and a dashboard over the run history.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the dashboard (HTML): the runs, the top spans' trends with change points, each run's report |
//! | `GET /live` | the live view of `--live ADDR`'s process (404 without `--live`) |
//! | `GET /api/live` | the window since the previous snapshot of that process, as JSON |
//! | `GET /api/status` | `{version, db, schema_version, runs}` |
//! | `GET /api/runs?program=&label=k=v&limit=N` | the runs, oldest first (`limit`: the newest N) |
//! | `GET /api/runs/{id}` | `{run, spans}` |
//! | `GET /api/runs/{id}/report` | the JSON report (docs/report-format.md) |
//! | `GET /api/runs/{id}/report.html` | the HTML report |
//! | `GET /api/runs/{id}/flamegraph.svg` | the flamegraph |
//! | `GET /api/spans/{name}/trend?program=&label=k=v` | the span's trends with change points |
//! | `POST /api/runs?label=k=v` | records the dump in the body: 201 `{id, created: true}`, or 200 `{id, created: false}` when it was stored already |
//!
//! Errors are JSON, `{"error": "..."}`: 404 for an unknown run or route,
//! 400 for a body that is not a valid dump or a bad query, 413 for a body
//! over the size limit (`--max-size`, checked before it is read whole),
//! 503 when the queue is full or another process held the database past
//! the wait, 500 otherwise. The dump in a POST is
//! checked exactly as the command line checks a file.
//!
//! The server binds 127.0.0.1 unless given another address, and stops
//! cleanly on Ctrl-C or SIGTERM: it stops accepting, finishes the requests
//! in flight, and returns. Each request opens the database for itself on a
//! blocking thread (SQLite connections are not shared across threads).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

mod api;
mod dashboard;
mod live;
mod writer;

use crate::history::{HistoryError, Store};

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The history database.
    pub db: PathBuf,
    /// The largest body `POST /api/runs` accepts, bytes (256 MiB).
    pub max_body: u64,
    /// How many uploads may wait for the writer (256); one more gets 503.
    /// Each waiting upload holds its parsed dump, so memory is bounded by
    /// this times the largest dump.
    pub queue: usize,
    /// The live view's process: perf-layer's endpoint (`/live`).
    pub live: Option<String>,
}

impl ServeOptions {
    /// Serving the database at `db`.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            max_body: 256 << 20,
            queue: 256,
            live: None,
        }
    }

    /// With a live view of the process whose perf-layer endpoint is `addr`.
    pub fn with_live(mut self, addr: impl Into<String>) -> Self {
        self.live = Some(addr.into());
        self
    }

    /// With a queue of `uploads` waiting for the writer.
    pub fn with_queue(mut self, uploads: usize) -> Self {
        self.queue = uploads;
        self
    }

    /// With a body limit of `bytes`.
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
}

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick another --addr (a free port, or 127.0.0.1:0 for any)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened or created.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The runtime or the server failed.
    #[error("the server stopped: {0}")]
    Server(std::io::Error),
}

/// What every handler shares: the options and the one writer.
#[derive(Debug)]
pub(crate) struct Shared {
    opts: ServeOptions,
    writer: writer::Writer,
    live: Option<live::Live>,
}

impl std::ops::Deref for Shared {
    type Target = ServeOptions;

    fn deref(&self) -> &ServeOptions {
        &self.opts
    }
}

/// The routes over `opts`: reads open the database per request, uploads go
/// to one writer thread (started here; it ends when the router is dropped).
pub fn router(opts: ServeOptions) -> Result<Router, ServeError> {
    let limit = usize::try_from(opts.max_body).unwrap_or(usize::MAX);
    let writer = writer::Writer::start(opts.db.clone(), opts.queue).map_err(ServeError::Server)?;
    let live = opts.live.clone().map(live::Live::new);
    let state = Arc::new(Shared { opts, writer, live });
    Ok(Router::new()
        .route("/", get(dashboard::page))
        .route("/live", get(live::page))
        .route("/api/live", get(live::api))
        .route("/api/status", get(api::status))
        .route("/api/runs", get(api::runs).post(api::record))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/report", get(api::report))
        .route("/api/runs/{id}/report.html", get(api::report_html))
        .route("/api/runs/{id}/flamegraph.svg", get(api::flamegraph))
        .route("/api/spans/{name}/trend", get(api::trend))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state))
}

/// Serves on `addr` until `shutdown` completes; `on_ready` is told the
/// address bound (the port, when asked for port 0). The database is
/// created (or migrated) before the first request.
pub async fn serve(
    addr: SocketAddr,
    opts: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = opts.db.clone();
    tokio::task::spawn_blocking(move || Store::open(&db).map(drop))
        .await
        .map_err(|e| ServeError::Server(std::io::Error::other(e)))??;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_ready(bound);
    axum::serve(listener, router(opts)?)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Server)
}

/// [`serve`] on a runtime of its own, until Ctrl-C or SIGTERM.
pub fn run_blocking(
    addr: SocketAddr,
    opts: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Server)?;
    runtime.block_on(serve(addr, opts, on_ready, stop_signal()))
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
