//! A service's one `request` callsite, grouped by route: the report's first
//! finding names the slow route, not the callsite every route shares.

use std::time::{Duration, Instant};

use perf_layer::PerfLayer;
use perf_report::analyze::analyze;
use tracing::info_span;
use tracing_subscriber::prelude::*;

/// Spins for `d`: CPU work, as an export that compresses JSON does.
fn compute(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// 400 cheap health checks and 20 exports of 3 ms each, under one
/// `request` callsite as tower-http makes it.
fn service(builder: perf_layer::PerfLayerBuilder) -> perf_layer::dump::Dump {
    let (layer, handle) = builder
        .without_overhead_calibration()
        .without_sampler()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..420 {
            let route = if i % 21 == 20 { "/export" } else { "/health" };
            info_span!("request", route).in_scope(|| {
                if route == "/export" {
                    compute(Duration::from_millis(3));
                } else {
                    compute(Duration::from_micros(5));
                }
            });
        }
    });
    handle.snapshot()
}

#[test]
fn grouped_by_route_the_first_finding_names_the_slow_route() {
    let dump = service(PerfLayer::builder().group_by(["route"]));
    let analysis = analyze(&dump.into(), &Default::default());
    let first = analysis.findings.first().expect("a finding");
    let label = &first.location.as_ref().expect("a span").label;
    // The export route is 20 of 420 calls but most of the time: it is what
    // to fix, and the report says so by its route.
    assert_eq!(label, "request{route=/export}", "{:#?}", analysis.findings);
    // Each route is a row; their calls add up to the callsite's.
    let calls = |label: &str| {
        analysis
            .callsites
            .iter()
            .find(|c| c.location.label == label)
            .map_or(0, |c| c.calls)
    };
    assert_eq!(calls("request{route=/export}"), 20);
    assert_eq!(calls("request{route=/health}"), 400);
    assert_eq!(calls("request"), 0, "the callsite is its groups");
    assert!(!analysis.notes.iter().any(|n| n.contains("group_by")));
}

#[test]
fn without_groups_the_finding_is_the_shared_callsite() {
    let dump = service(PerfLayer::builder());
    let analysis = analyze(&dump.into(), &Default::default());
    let first = analysis.findings.first().expect("a finding");
    assert_eq!(first.location.as_ref().expect("a span").label, "request");
    // The report says, once, that `request` mixes very different calls,
    // and how to split them.
    let said: Vec<&String> = analysis
        .notes
        .iter()
        .filter(|n| n.contains("group_by"))
        .collect();
    assert_eq!(said.len(), 1, "{:?}", analysis.notes);
    assert!(said[0].starts_with("`request` mixes calls"), "{}", said[0]);
}
