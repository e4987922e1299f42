//! Spans of one callsite split by named fields (`group_by`): a row per
//! route, values recorded after creation, the cap and its `other` group,
//! normalised paths, and hostile values kept bounded and printable.

use perf_layer::PerfLayer;
use perf_layer::dump::{CallsiteGroup, Dump, FORMAT_VERSION, FORMAT_VERSION_UNGROUPED};
use tracing::info_span;
use tracing_subscriber::prelude::*;

fn run(builder: perf_layer::PerfLayerBuilder, work: impl FnOnce()) -> Dump {
    let (layer, handle) = builder
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

fn group<'a>(dump: &'a Dump, name: &str, label: &str) -> &'a CallsiteGroup {
    let cs = dump.callsites.iter().find(|c| c.name == name).unwrap();
    cs.groups
        .iter()
        .find(|g| g.label() == label)
        .unwrap_or_else(|| {
            let labels: Vec<String> = cs.groups.iter().map(CallsiteGroup::label).collect();
            panic!("no group {label}: {labels:?}")
        })
}

#[test]
fn a_callsite_splits_into_a_group_per_route_and_method() {
    let dump = run(PerfLayer::builder().group_by(["route", "method"]), || {
        for i in 0..30 {
            let (route, method) = if i % 3 == 0 {
                ("/export", "POST")
            } else {
                ("/health", "GET")
            };
            info_span!("request", route, method, other = i).in_scope(|| {
                if route == "/export" {
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            });
        }
        // A span of another callsite without the fields is not grouped.
        info_span!("startup").in_scope(|| ());
    });
    assert_eq!(dump.format_version, FORMAT_VERSION);
    assert_eq!(dump.config.group_by, ["route", "method"]);
    let request = dump.callsites.iter().find(|c| c.name == "request").unwrap();
    assert_eq!(request.calls, 30, "the callsite keeps its totals");
    assert_eq!(request.groups.len(), 2);
    let export = group(&dump, "request", "route=/export,method=POST");
    let health = group(&dump, "request", "route=/health,method=GET");
    assert_eq!((export.stats.calls, health.stats.calls), (10, 20));
    // The slow route is the slow group.
    assert!(export.stats.busy_ns.p50 > 10 * health.stats.busy_ns.p50.max(1));
    // Only the named fields are read: `other` is in no label.
    assert!(!serde_json::to_string(&dump).unwrap().contains("\"other=\""));
    let startup = dump.callsites.iter().find(|c| c.name == "startup").unwrap();
    assert!(startup.groups.is_empty());
}

#[test]
fn a_value_recorded_after_the_span_opened_names_its_group() {
    // axum's matched route is known only once routing ran.
    let dump = run(PerfLayer::builder().group_by(["http.route"]), || {
        for route in ["/a", "/b", "/a"] {
            let span = info_span!("request", http.route = tracing::field::Empty);
            span.record("http.route", route);
            span.in_scope(|| ());
        }
    });
    assert_eq!(group(&dump, "request", "http.route=/a").stats.calls, 2);
    assert_eq!(group(&dump, "request", "http.route=/b").stats.calls, 1);
}

#[test]
fn past_the_cap_spans_go_to_one_other_group_and_memory_stays_bounded() {
    let dump = run(PerfLayer::builder().group_by(["uri"]).max_groups(4), || {
        for i in 0..20_000u32 {
            // A huge value with control characters, all distinct.
            let uri = format!("/item/{i}\u{1b}[31m{}", "x".repeat(1_000));
            info_span!("request", uri = uri.as_str()).in_scope(|| ());
        }
    });
    let request = dump.callsites.iter().find(|c| c.name == "request").unwrap();
    assert_eq!(request.groups.len(), 5, "four groups and `other`");
    let other = request.groups.iter().find(|g| g.other).unwrap();
    assert_eq!(other.stats.calls, 20_000 - 4);
    assert_eq!(other.label(), "other");
    for g in request.groups.iter().filter(|g| !g.other) {
        let value = &g.fields[0].value;
        assert!(value.len() <= 256, "cut: {} bytes", value.len());
        assert!(!value.chars().any(char::is_control), "{value:?}");
    }
}

/// Resident memory of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_million_distinct_values_cost_bounded_memory() {
    let before = rss_bytes();
    let dump = run(PerfLayer::builder().group_by(["uri"]), || {
        for i in 0..1_000_000u64 {
            info_span!("request", uri = i).in_scope(|| ());
        }
    });
    let grown = rss_bytes().saturating_sub(before);
    let request = dump.callsites.iter().find(|c| c.name == "request").unwrap();
    // 32 groups by default, then `other`.
    assert_eq!(request.groups.len(), 33);
    let other = request.groups.iter().find(|g| g.other).unwrap();
    assert_eq!(other.stats.calls, 1_000_000 - 32);
    // A text and a group per value would take well over 64 MiB here; the
    // layer keeps at most 16,384 texts and 32 groups per callsite.
    assert!(grown < 32 << 20, "resident memory grew {grown} bytes");
}

#[test]
fn paths_are_normalised_on_request() {
    let dump = run(
        PerfLayer::builder()
            .group_by(["uri"])
            .normalize_group_paths(),
        || {
            for i in 0..50 {
                let uri = format!("/users/{i}/orders?page={i}");
                info_span!("request", uri = uri.as_str()).in_scope(|| ());
            }
        },
    );
    assert_eq!(
        group(&dump, "request", "uri=/users/{}/orders").stats.calls,
        50
    );
}

#[test]
fn without_groups_the_dump_stays_at_the_version_older_readers_read() {
    let dump = run(PerfLayer::builder(), || {
        info_span!("request", route = "/a").in_scope(|| ());
    });
    assert_eq!(dump.format_version, FORMAT_VERSION_UNGROUPED);
    assert!(dump.callsites.iter().all(|c| c.groups.is_empty()));
    // Grouping by a field no span has changes nothing either.
    let dump = run(PerfLayer::builder().group_by(["tenant"]), || {
        info_span!("request", route = "/a").in_scope(|| ());
    });
    assert_eq!(dump.format_version, FORMAT_VERSION_UNGROUPED);
}
