//! Span lifecycle cost with perf-layer's counting allocator as this binary's
//! global allocator: perf-layer's full configuration (timing plus allocation
//! counting, with and without the sampler, and with everything: the
//! sampler, the adaptive CPU-time reads and an idle Prometheus endpoint)
//! against the same baselines and peers as `lifecycle`. The baselines here also run on the counting
//! allocator, which costs almost nothing when no span reads its counters
//! (compare `floor_registry_noop_layer` across the two binaries).

mod support;

use support::Subject;

#[global_allocator]
static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();

fn benches(c: &mut criterion::Criterion<support::ThreadTime>) {
    let subjects = [
        Subject::no_subscriber(),
        Subject::floor(),
        Subject::perf_layer("perf_layer_timing_alloc"),
        Subject::perf_layer_sampler("perf_layer_timing_alloc_sampler"),
        Subject::perf_layer_prometheus("perf_layer_all_features"),
    ]
    .into_iter()
    .chain(Subject::peers())
    .collect::<Vec<_>>();
    support::lifecycle_groups(c, "lifecycle_alloc", &subjects);
}

criterion::criterion_group! {
    name = group;
    config = support::criterion_cpu();
    targets = benches
}
criterion::criterion_main!(group);
