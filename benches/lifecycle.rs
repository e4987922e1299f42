//! Span lifecycle cost with the system allocator: the baselines, perf-layer
//! timing only (no counting allocator in this binary), and the peers.
//! `lifecycle_alloc` is the same with the counting allocator installed.
//! `clock.one_read` times one read of the layer's clock.
//! `lifecycle.grouped_field` and `lifecycle.ungrouped_field` price
//! `group_by`: a span with the grouped field, and one without it.

mod support;

use support::Subject;

fn benches(c: &mut criterion::Criterion<support::ThreadTime>) {
    let subjects = [
        Subject::no_subscriber(),
        Subject::floor(),
        Subject::perf_layer("perf_layer_timing"),
    ]
    .into_iter()
    .chain(Subject::peers())
    .collect::<Vec<_>>();
    support::lifecycle_groups(c, "lifecycle", &subjects);
    // The cost of grouping (issue 23): a span whose callsite has the
    // grouped field (`uri`, eight values) and one whose callsite has not,
    // under perf-layer without and with `group_by(["uri"])`.
    let grouping = [
        Subject::floor(),
        Subject::perf_layer("perf_layer_timing"),
        Subject::perf_layer_grouped("perf_layer_group_by_uri"),
    ];
    support::workload_groups(
        c,
        "lifecycle",
        &grouping,
        &[
            ("grouped_field", support::span_with_uri),
            ("ungrouped_field", support::span_lifecycle),
        ],
    );
    // One read of the clock perf-layer times spans with, for the clock
    // budget: scripts/bench-report prints perf-layer's added cost with and
    // without its reads (4 per span: new, enter, exit, close).
    let clock = quanta::Clock::new();
    let mut g = c.benchmark_group("clock");
    g.bench_function("one_read", |b| b.iter(|| std::hint::black_box(clock.raw())));
    g.finish();
}

criterion::criterion_group! {
    name = group;
    config = support::criterion_cpu();
    targets = benches
}
criterion::criterion_main!(group);
