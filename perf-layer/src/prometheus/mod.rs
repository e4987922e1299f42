//! The Prometheus endpoint (cargo feature `prometheus`): a thread of its own
//! serving `GET /metrics` over HTTP/1.1 ([`tiny_http`]) on the address the
//! builder or `PERF_LAYER_PROMETHEUS` gives, 127.0.0.1 unless another
//! address is asked for.
//!
//! It also serves `GET /snapshot.json`, the recorder's current snapshot as
//! a dump (the format of `dump.json`), for `perf-report live`. A snapshot is
//! taken at most every [`SNAPSHOT_EVERY`]: asked more often, the endpoint
//! answers the last one again, so a client polling in a loop costs the
//! process at most four snapshots a second. Its size is the dump's, bounded
//! by the layer's own bounds (`max_callsites`, `max_groups`, the heap
//! timeline's cap).
//!
//! A scrape reads the recorder the way a snapshot does but lighter: each
//! callsite's histograms are summed into the fixed buckets of
//! [`exposition`] in place, each thread's table locked for one callsite at
//! a time, so a span waits at most one callsite's reading and nothing is
//! copied. Nothing on the span path changes when the endpoint is on; idle,
//! the thread waits in `accept`. It holds only a weak reference to the
//! layer and exits within a quarter of a second of the layer and every
//! handle being dropped.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::background::overhead;
use crate::profiler::Profiler;

pub(crate) mod exposition;

/// How often the thread looks whether the layer is gone.
const POLL: Duration = Duration::from_millis(250);

/// The least time between two snapshots `/snapshot.json` takes.
pub(crate) const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bound listener, before its thread starts.
pub(crate) struct Endpoint {
    server: tiny_http::Server,
    addr: SocketAddr,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Endpoint {
    /// Binds `addr` (port 0 picks a free port).
    pub(crate) fn bind(addr: SocketAddr) -> Result<Self, String> {
        let server = tiny_http::Server::http(addr).map_err(|e| e.to_string())?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "the listener has no IP address".to_owned())?;
        Ok(Self { server, addr })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves scrapes of `profiler` on a thread of its own.
    pub(crate) fn start(self, profiler: &Arc<Profiler>) -> Result<(), String> {
        let weak = Arc::downgrade(profiler);
        std::thread::Builder::new()
            .name("perf-layer-prometheus".to_owned())
            .spawn(move || serve(&self.server, &weak))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn serve(server: &tiny_http::Server, weak: &Weak<Profiler>) {
    // The layer's cost per span, measured once before the first scrape
    // needs it (as the first snapshot would), off every span's path.
    if let Some(p) = weak.upgrade() {
        if p.config.calibrate_overhead {
            p.calibration.get_or_init(|| overhead::calibrate(&p.config));
        }
    }
    let mut last_snapshot: Option<(std::time::Instant, Vec<u8>)> = None;
    loop {
        let request = match server.recv_timeout(POLL) {
            Ok(request) => request,
            Err(_) => return,
        };
        let Some(profiler) = weak.upgrade() else {
            return;
        };
        if profiler.stopping.load(Ordering::Acquire) {
            return;
        }
        let Some(request) = request else { continue };
        let path = request.url().split('?').next().unwrap_or("");
        let response = match (request.method(), path) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                // Not gzipped even when asked: on loopback, compressing
                // the text costs more time than sending it.
                text(200, exposition::render(&profiler), CONTENT_TYPE)
            }
            (tiny_http::Method::Get | tiny_http::Method::Head, "/snapshot.json") => {
                let fresh = last_snapshot
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() < SNAPSHOT_EVERY);
                if !fresh {
                    let json = serde_json::to_vec(&profiler.snapshot()).unwrap_or_default();
                    last_snapshot = Some((std::time::Instant::now(), json));
                }
                let body = last_snapshot.as_ref().map_or(Vec::new(), |(_, b)| b.clone());
                bytes(200, body, "application/json")
            }
            (_, "/metrics" | "/snapshot.json") => text(
                405,
                "only GET /metrics and GET /snapshot.json\n".to_owned(),
                "text/plain",
            ),
            _ => text(
                404,
                "perf-layer serves Prometheus metrics at /metrics and its snapshot at /snapshot.json\n"
                    .to_owned(),
                "text/plain",
            ),
        };
        drop(profiler);
        // A client that went away is no error of ours.
        let _ = request.respond(response);
    }
}

fn text(status: u16, body: String, kind: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    bytes(status, body.into_bytes(), kind)
}

fn bytes(status: u16, body: Vec<u8>, kind: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", kind) {
        response.add_header(header);
    }
    response
}
