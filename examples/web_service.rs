//! A web service as a team writes one, profiled: axum 0.8 behind
//! tower-http's `TraceLayer` (one `request` span for every route), with
//! perf-layer grouping that span by its `uri` (numbers in paths become
//! `{}`) and serving its endpoint for `perf-report live`.
//!
//! Routes: `GET /users/{id}` (a map lookup), `GET /export` (4,000 orders as
//! gzipped JSON: the slow one), `POST /orders` (parses and keeps an order).
//! A built-in client drives them from two threads for `--seconds` (5), then
//! the dump is written to `web-service.json` (`--out PATH`). The endpoint is
//! on 127.0.0.1:9464 unless `PERF_LAYER_PROMETHEUS` names another address.
//!
//! ```text
//! cargo run --release --example web_service                    # 5 s, then a dump
//! perf-report web-service.json                                 # the report: a row per route
//! cargo run --release --example web_service -- --seconds 60 &  # in one terminal...
//! perf-report live 127.0.0.1:9464                              # ...watch it in another
//! cargo run --release --example web_service -- --no-group      # one `request` row for every route
//! ```

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use perf_layer::PerfLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

type Orders = Arc<Mutex<Vec<serde_json::Value>>>;

/// The export's own work: a JSON document of `orders` orders, gzipped.
#[tracing::instrument(skip_all)]
fn compress_json(orders: usize) -> Vec<u8> {
    let document: Vec<serde_json::Value> = (0..orders)
        .map(|i| serde_json::json!({"id": i, "customer": format!("c{}", i % 97), "total": i as f64 * 1.5}))
        .collect();
    let text = serde_json::to_vec(&document).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = gz.write_all(&text);
    gz.finish().unwrap_or_default()
}

async fn export() -> Vec<u8> {
    compress_json(4_000)
}

#[tracing::instrument(skip_all)]
fn lookup(users: &HashMap<u64, String>, id: u64) -> String {
    users.get(&(id % 1_000)).cloned().unwrap_or_default()
}

async fn user(
    Path(id): Path<u64>,
    State((users, _)): State<(Arc<HashMap<u64, String>>, Orders)>,
) -> String {
    lookup(&users, id)
}

async fn order(
    State((_, orders)): State<(Arc<HashMap<u64, String>>, Orders)>,
    Json(body): Json<serde_json::Value>,
) -> &'static str {
    // The newest thousand orders (an unbounded list here is a leak, and
    // the report says so).
    if let Ok(mut o) = orders.lock() {
        if o.len() >= 1_000 {
            o.remove(0);
        }
        o.push(body);
    }
    "stored"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(5.0), |s| s.parse())?;
    let group = !args.iter().any(|a| a == "--no-group");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or("web-service.json", String::as_str);
    let endpoint =
        std::env::var("PERF_LAYER_PROMETHEUS").unwrap_or_else(|_| "127.0.0.1:9464".to_owned());

    let mut builder = PerfLayer::builder()
        .output_path(out)
        .prometheus(endpoint.parse()?);
    if group {
        builder = builder.group_by(["uri"]).normalize_group_paths();
    }
    let (layer, handle) = builder.build()?;
    tracing_subscriber::registry().with(layer).init();
    if let Some(addr) = handle.prometheus_addr() {
        eprintln!(
            "web_service: perf-layer's endpoint is http://{addr} (watch it: perf-report live {addr})"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let users: Arc<HashMap<u64, String>> =
        Arc::new((0..1_000).map(|i| (i, format!("user {i}"))).collect());
    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/export", get(export))
        .route("/orders", post(order))
        .with_state((users, Orders::default()))
        .layer(TraceLayer::new_for_http());
    runtime.spawn(async move { axum::serve(listener, app).await });

    // Two clients for `seconds`: mostly lookups, an order in ten, an export
    // in fifty.
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let clients: Vec<_> = (0..2)
        .map(|c| {
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut i = c;
                while Instant::now() < deadline {
                    let _ = match i % 50 {
                        0 => agent.get(&format!("http://{addr}/export")).call(),
                        k if k % 10 == 1 => agent
                            .post(&format!("http://{addr}/orders"))
                            .header("content-type", "application/json")
                            .send(format!("{{\"id\": {i}, \"items\": [1, 2, 3]}}")),
                        _ => agent.get(&format!("http://{addr}/users/{i}")).call(),
                    };
                    i += 2;
                }
            })
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
    let path = handle.write_dump()?;
    eprintln!(
        "web_service: wrote {} (perf-report {} for the report)",
        path.display(),
        path.display()
    );
    Ok(())
}
