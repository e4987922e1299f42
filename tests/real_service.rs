//! A real web service from crates.io crates under the layer, as a user
//! writes one: axum 0.8 behind tower-http's `TraceLayer`, a cheap health
//! route and an export route that gzips a JSON document. tower-http makes
//! one `request` span for every route; grouped by `uri`, the report splits
//! it, and its first finding is the export's compression, the work to fix,
//! not the `request` span that wraps every route. Alone in its binary: the
//! runtime's workers need the global subscriber.

#![cfg(target_os = "linux")]

use std::io::Write as _;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use perf_layer::PerfLayer;
use perf_report::analyze::{Class, analyze};
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

/// The export's own work: a JSON document of 4,000 orders, gzipped.
#[tracing::instrument(skip_all)]
fn compress_json(orders: usize) -> Vec<u8> {
    let document: Vec<serde_json::Value> = (0..orders)
        .map(|i| serde_json::json!({"id": i, "customer": format!("c{}", i % 97), "total": i as f64 * 1.5}))
        .collect();
    let text = serde_json::to_vec(&document).expect("JSON");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&text).expect("in memory");
    gz.finish().expect("in memory")
}

async fn export() -> Vec<u8> {
    compress_json(4_000)
}

async fn health() -> &'static str {
    "ok"
}

#[test]
fn grouped_by_uri_the_report_names_the_export_s_compression_first() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, handle) = PerfLayer::builder()
        .output_path(dir.path().join("dump.json"))
        .without_overhead_calibration()
        .sampler_interval(Duration::from_millis(50))
        .group_by(["uri"])
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the only subscriber of this binary");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/health", get(health))
        .route("/export", get(export))
        .layer(TraceLayer::new_for_http());
    runtime.spawn(async move { axum::serve(listener, app).await });

    // 380 health checks and 20 exports, from a client thread.
    let agent = ureq::Agent::new_with_defaults();
    for i in 0..400 {
        let path = if i % 20 == 19 { "/export" } else { "/health" };
        let status = agent
            .get(&format!("http://{addr}{path}"))
            .call()
            .expect("the service answers")
            .status();
        assert_eq!(status, 200);
    }
    // Written as a user would, and read back.
    let path = handle.write_dump().unwrap();
    drop(runtime);
    let dump = perf_layer::dump::Dump::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(dump.format_version, perf_layer::dump::FORMAT_VERSION);

    let a = analyze(&dump.into(), &Default::default());
    let calls = |label: &str| {
        a.callsites
            .iter()
            .find(|c| c.location.label == label)
            .map_or(0, |c| c.calls)
    };
    // One row per route.
    assert_eq!(calls("request{uri=/export}"), 20, "{:#?}", a.callsites);
    assert_eq!(calls("request{uri=/health}"), 380);
    // The first span finding is the compression, by its own self time: the
    // `request` spans wrap it, and their time is its time. (A process-wide
    // finding may come first on a loaded machine: CPU contention is true
    // there.)
    let first = a
        .findings
        .iter()
        .find(|f| f.location.is_some())
        .expect("a span finding");
    assert_eq!(
        (
            first.class,
            first.location.as_ref().map(|l| l.label.as_str())
        ),
        (Class::HotSpot, Some("compress_json")),
        "{:#?}",
        a.findings
    );
}
