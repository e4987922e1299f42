//! A span whose time is its logging: a handler that computes a little and
//! logs an `info!` a row through a real `fmt` layer writing to a file
//! (written fresh, 2026-12-06: an axum service's `build_report`, 300
//! events a call, spent 85 to 90% of its self time in the subscriber's
//! handling of them, and its fixes read "Memoize"; one event a call made
//! its requests 63% faster). perf-layer, the outermost layer, times the
//! other layers' work on a sample of the events; the report makes logging
//! less the first fix there, and not on a span that computes beside it.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::Duration;

use perf_layer::PerfLayer;
use perf_report::analyze::{Class, analyze};
use tracing::info_span;
use tracing_subscriber::prelude::*;

mod cpu_support;

use cpu_support::{calibrate, fixed_work};

fn run() -> perf_layer::dump::Dump {
    let (layer, handle) = PerfLayer::builder()
        .sampler_interval(Duration::from_millis(20))
        .without_overhead_calibration()
        .build()
        .unwrap();
    let log = tempfile::tempfile().unwrap();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(Arc::new(log))
        .with_ansi(false);
    // perf-layer last: asked first about an event, told last.
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt).with(layer));
    let rounds = calibrate(Duration::from_micros(200));
    tracing::dispatcher::with_default(&dispatch, || {
        for call in 0..400 {
            info_span!("score").in_scope(|| std::hint::black_box(fixed_work(rounds)));
            info_span!("build_report").in_scope(|| {
                let mut out = String::new();
                for row in 0..200 {
                    out.push_str(&format!("{row},{}\n", row * 7));
                    tracing::info!(call, row, "report row");
                }
                std::hint::black_box(out);
            });
        }
    });
    handle.snapshot()
}

#[test]
fn a_span_whose_time_is_its_logging_is_told_to_log_less() {
    let dump = run();
    let report = dump
        .callsites
        .iter()
        .find(|c| c.name == "build_report")
        .unwrap();
    assert_eq!(report.events.info, 80_000);
    let part = report.events.ns as f64 / report.self_ns.sum as f64;
    // A `fmt` line to a file is a microsecond or more; the row's own
    // `format!` a tenth of that.
    assert!(
        part > 0.5,
        "events {} of self {}",
        report.events.ns,
        report.self_ns.sum
    );
    let score = dump.callsites.iter().find(|c| c.name == "score").unwrap();
    assert_eq!(score.events.ns, 0);

    let analysis = analyze(&dump.clone().into(), &Default::default());
    let plan = perf_report::plan::plan(&analysis);
    let step = |name: &str| {
        plan.steps
            .iter()
            .find(|s| {
                s.class == Class::HotSpot && s.location.as_ref().is_some_and(|l| l.name == name)
            })
            .cloned()
    };
    let logs = step("build_report").expect("build_report is a hot spot");
    assert!(
        logs.fixes[0].starts_with("Log less inside it: its 200 events a call"),
        "{:?}",
        logs.fixes
    );
    if let Some(computes) = step("score") {
        assert!(
            !computes.fixes[0].starts_with("Log less"),
            "{:?}",
            computes.fixes
        );
    }
}
