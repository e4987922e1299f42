//! The run history and its server against their budgets (docs/benchmarks.md):
//!
//! - `history.record_large_dump`: `Store::record` of the 10,000-callsite
//!   dump into a new database (budget 2 s);
//! - `history.check_30_runs`: `check` of a 200-callsite run against 30
//!   stored runs (budget 1 s);
//! - `history.api_runs_1000`: `GET /api/runs` over HTTP on 127.0.0.1 with
//!   1,000 runs stored (budget 50 ms);
//! - and the size of the HTML report of the large dump (budget 5 MB),
//!   written to `<criterion home>/history.html_size/size.json`.

mod support;

#[path = "support/large_dump.rs"]
mod large_dump;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use perf_layer::dump::Dump;
use perf_report::history::Store;
use perf_report::history::check::{CheckOptions, check};
use perf_report::render::{Format, RenderOptions, ReportKind, render};
use perf_report::{Config, LoadedDump, Report};

/// The synthetic dump of `callsites`, as run `i` (its own start and pid, so
/// each is a distinct run).
fn dump(callsites: u32, i: u64) -> Dump {
    let mut d: Dump = serde_json::from_value(large_dump::large_dump(callsites))
        .expect("the synthetic dump is a dump");
    d.run.started_at_unix_ms += i * 60_000;
    d.run.pid = 1 + i as u32;
    d
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");

    let large = dump(10_000, 0);
    let mut g = c.benchmark_group("history");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    let mut fresh = 0u64;
    g.bench_function("record_large_dump", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                Store::open(dir.path().join(format!("record-{fresh}.db"))).expect("a new store")
            },
            |mut store| black_box(store.record(&large, &[]).expect("recorded")),
            BatchSize::PerIteration,
        )
    });

    let mut store = Store::open(dir.path().join("check.db")).expect("a store");
    for i in 0..30 {
        store.record(&dump(200, i), &[]).expect("recorded");
    }
    let new = dump(200, 100);
    g.bench_function("check_30_runs", |b| {
        b.iter(|| black_box(check(&store, &new, &CheckOptions::default()).expect("checked")))
    });

    let db = dir.path().join("api.db");
    let mut api = Store::open(&db).expect("a store");
    for i in 0..1_000 {
        api.record(&dump(5, i), &[("branch".into(), "main".into())])
            .expect("recorded");
    }
    drop(api);
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime
            .block_on(perf_report::serve::serve(
                "127.0.0.1:0".parse().expect("an address"),
                perf_report::serve::ServeOptions::new(db),
                |addr| {
                    let _ = tx.send(addr);
                },
                async {
                    let _ = stopped.await;
                },
            ))
            .expect("served");
    });
    let addr = rx.recv().expect("the server started");
    let url = format!("http://{addr}/api/runs");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    g.bench_function("api_runs_1000", |b| {
        b.iter(|| {
            let mut r = agent.get(&url).call().expect("200");
            black_box(r.body_mut().read_to_vec().expect("a body").len())
        })
    });
    g.finish();
    let _ = stop.send(());
    server.join().expect("the server stopped");

    let report = Report::build(&LoadedDump::from(large), &Config::default());
    let html = render(
        &report,
        Format::Html,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    eprintln!(
        "history.html_size: the HTML report of the 10,000-callsite dump is {:.2} MB",
        html.len() as f64 / 1e6
    );
    support::write_result(
        "history.html_size",
        "size.json",
        &serde_json::json!({ "bytes": html.len() }),
    );
}

criterion::criterion_group! {
    name = group;
    config = support::criterion();
    targets = benches
}
criterion::criterion_main!(group);
