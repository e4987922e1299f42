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
    recorded(builder, || {
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
    })
}

/// What `work` records under a layer built from `builder`. One at a time:
/// the workloads spin, and two at once on a small machine preempt each
/// other (a CPU contention finding of their own making).
fn recorded(builder: perf_layer::PerfLayerBuilder, work: impl FnOnce()) -> perf_layer::dump::Dump {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (layer, handle) = builder
        .without_overhead_calibration()
        .without_sampler()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

#[test]
fn grouped_by_route_the_first_finding_names_the_slow_route() {
    let dump = service(PerfLayer::builder().group_by(["route"]));
    let analysis = analyze(&dump.into(), &Default::default());
    // The first finding on a span (the machine may add a process-level
    // one, CPU contention, ahead of it).
    let first = analysis
        .findings
        .iter()
        .find(|f| f.location.is_some())
        .expect("a finding on a span");
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
    // The callsite's totals are still there, once, in a note.
    let totals: Vec<&String> = analysis
        .notes
        .iter()
        .filter(|n| n.starts_with("`request` is shown as 2 rows, one per `route`"))
        .collect();
    assert_eq!(totals.len(), 1, "{:?}", analysis.notes);
    assert!(
        totals[0].contains("together they are 420 calls"),
        "{}",
        totals[0]
    );
}

#[test]
fn without_groups_the_finding_is_the_shared_callsite() {
    let dump = service(PerfLayer::builder());
    let analysis = analyze(&dump.into(), &Default::default());
    // The first finding on a span (the machine may add a process-level
    // one, CPU contention, ahead of it).
    let first = analysis
        .findings
        .iter()
        .find(|f| f.location.is_some())
        .expect("a finding on a span");
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

/// Two routes of one `request` callsite: `/export` (40 calls of 3 ms of its
/// own work) and `/users` (400 calls, each a 150 µs `lookup`). Most of the
/// callsite's time is the export's, but `lookup` runs only under `/users`.
fn two_routes() -> perf_layer::dump::Dump {
    recorded(PerfLayer::builder().group_by(["route"]), || {
        for i in 0..440 {
            let route = if i % 11 == 10 { "/export" } else { "/users" };
            info_span!("request", route).in_scope(|| {
                if route == "/export" {
                    compute(Duration::from_millis(3));
                } else {
                    info_span!("lookup").in_scope(|| compute(Duration::from_micros(150)));
                }
            });
        }
    })
}

#[test]
fn a_child_is_placed_under_the_route_it_ran_under_not_the_busiest() {
    let dump = two_routes();
    // The dump says which group each child ran under.
    let id = |name: &str| dump.callsites.iter().find(|c| c.name == name).unwrap().id;
    let request = dump.callsites.iter().find(|c| c.name == "request").unwrap();
    let users = request
        .groups
        .iter()
        .position(|g| g.label() == "route=/users")
        .unwrap() as u32;
    let to_lookup: Vec<_> = dump
        .group_edges
        .iter()
        .filter(|e| e.child == id("lookup"))
        .collect();
    assert_eq!(to_lookup.len(), 1, "{:?}", dump.group_edges);
    assert_eq!(to_lookup[0].parent, id("request"));
    assert_eq!(to_lookup[0].parent_group, Some(users));
    assert_eq!(to_lookup[0].calls, 400);

    // The report: `lookup`'s finding names `/users`, and the flame graph
    // has it under `/users` alone, though `/export` has most of the time.
    let analysis = analyze(&dump.clone().into(), &Default::default());
    let lookup = analysis
        .findings
        .iter()
        .find(|f| f.location.as_ref().is_some_and(|l| l.label == "lookup"))
        .expect("a finding on lookup");
    assert!(
        lookup
            .summary
            .ends_with("it runs under `request{route=/users}`"),
        "{}",
        lookup.summary
    );
    let stacks = perf_report::flamegraph::folded_stacks(&perf_report::groups::expand(dump));
    let with_lookup: Vec<&String> = stacks.iter().filter(|s| s.contains("lookup")).collect();
    assert_eq!(with_lookup.len(), 1, "{stacks:?}");
    assert!(
        with_lookup[0].starts_with("request{route=/users};lookup "),
        "{stacks:?}"
    );
}

#[test]
fn merged_runs_keep_which_route_a_child_ran_under() {
    let merged = perf_report::merge::merge(vec![two_routes(), two_routes()]).unwrap();
    let id = |name: &str| merged.callsites.iter().find(|c| c.name == name).unwrap().id;
    let request = merged
        .callsites
        .iter()
        .find(|c| c.name == "request")
        .unwrap();
    let to_lookup: Vec<_> = merged
        .group_edges
        .iter()
        .filter(|e| e.child == id("lookup"))
        .collect();
    assert_eq!(to_lookup.len(), 1, "{:?}", merged.group_edges);
    let group = to_lookup[0].parent_group.expect("a group") as usize;
    assert_eq!(request.groups[group].label(), "route=/users");
    assert_eq!(to_lookup[0].calls, 800);
}
