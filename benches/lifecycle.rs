//! Span lifecycle cost with the system allocator: the baselines, perf-layer
//! timing only (no counting allocator in this binary), and the peers.
//! `lifecycle_alloc` is the same with the counting allocator installed.

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
}

criterion::criterion_group! {
    name = group;
    config = support::criterion_cpu();
    targets = benches
}
criterion::criterion_main!(group);
