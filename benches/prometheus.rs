//! The Prometheus endpoint against its budgets (docs/benchmarks.md):
//!
//! - `prometheus.scrape_1000_callsites`: one `GET /metrics` over HTTP on
//!   127.0.0.1 of a layer holding 1,000 callsites recorded on two threads
//!   (budget 20 ms);
//! - `prometheus.<workload>`: the span workloads under perf-layer with the
//!   sampler, with and without an idle endpoint, beside the floor (budget:
//!   the two perf-layer ratios equal within noise).
//!
//! The 1,000 callsites are made at run time: each a leaked `Callsite` and
//! `Metadata`, as the `span!` macro would make statically.

mod support;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::Criterion;
use support::{Subject, criterion, criterion_cpu, lifecycle_groups};
use tracing::callsite::{Callsite, Identifier};
use tracing::field::FieldSet;
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::prelude::*;

/// A callsite made at run time.
struct Made {
    meta: OnceLock<Metadata<'static>>,
}

impl Callsite for Made {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        self.meta.get().expect("set when made")
    }
}

/// `n` span callsites with distinct names, for ever.
fn callsites(n: u32) -> Vec<&'static Metadata<'static>> {
    (0..n)
        .map(|i| {
            let made: &'static Made = Box::leak(Box::new(Made {
                meta: OnceLock::new(),
            }));
            let name: &'static str = Box::leak(format!("callsite_{i}").into_boxed_str());
            let _ = made.meta.set(Metadata::new(
                name,
                "bench::scrape",
                Level::INFO,
                Some("benches/prometheus.rs"),
                Some(i),
                Some("bench::scrape"),
                FieldSet::new(&[], Identifier(made)),
                Kind::SPAN,
            ));
            made.meta.get().expect("just set")
        })
        .collect()
}

/// One scrape as a plain HTTP/1.0 client makes it (the server's cost, not
/// a client library's): the whole response.
fn get(addr: std::net::SocketAddr) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("the endpoint accepts");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .expect("the request is sent");
    let mut out = Vec::with_capacity(8 << 20);
    stream.read_to_end(&mut out).expect("the response is read");
    out
}

fn scrape(c: &mut Criterion) {
    let (layer, handle) = perf_layer::PerfLayer::builder()
        .sampler_interval(Duration::from_millis(100))
        .max_callsites(2_000)
        .prometheus(([127, 0, 0, 1], 0).into())
        .build()
        .expect("a free loopback port");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let metas = callsites(1_000);
    // Two threads, so a scrape reads two tables per callsite.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    for _ in 0..20 {
                        for meta in &metas {
                            let values: [(&tracing::field::Field, Option<&dyn tracing::Value>); 0] =
                                [];
                            let span = tracing::Span::new(meta, &meta.fields().value_set(&values));
                            let _in = span.enter();
                        }
                    }
                });
            });
        }
    });
    let addr = handle.prometheus_addr().expect("the endpoint listens");
    let body = get(addr);
    assert!(body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"));
    assert!(
        String::from_utf8_lossy(&body).contains("callsite_999"),
        "every callsite is exposed"
    );
    let mut g = c.benchmark_group("prometheus");
    g.sample_size(20);
    g.bench_function("scrape_1000_callsites", |b| {
        b.iter(|| black_box(get(addr).len()))
    });
    g.finish();
    drop(dispatch);
}

fn idle_endpoint() {
    let subjects = [
        Subject::floor(),
        Subject::perf_layer_sampler("perf_layer_sampler"),
        Subject::perf_layer_prometheus("perf_layer_sampler_prometheus_idle"),
    ];
    let mut c = criterion_cpu();
    lifecycle_groups(&mut c, "prometheus", &subjects);
}

fn main() {
    let mut c = criterion();
    scrape(&mut c);
    idle_endpoint();
    c.final_summary();
}
