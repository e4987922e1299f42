//! Scaling: nanoseconds per span per thread when two threads, each pinned to
//! its own core, close spans of the same callsite or of different callsites,
//! against one thread doing the same. The counting allocator is installed,
//! so perf-layer runs in its full configuration.

mod support;

use std::hint::black_box;

use support::Subject;

#[global_allocator]
static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();

fn benches(c: &mut criterion::Criterion) {
    let subjects = [
        Subject::floor(),
        Subject::perf_layer("perf_layer_timing_alloc"),
    ];
    for subject in &subjects {
        let mut group = c.benchmark_group(format!("threads.{}", subject.name));
        let cases: [(&str, usize, bool); 3] = [
            ("one_thread", 1, true),
            ("two_threads_same_callsite", 2, true),
            ("two_threads_distinct_callsites", 2, false),
        ];
        for (case, threads, same) in cases {
            group.bench_function(case, |b| {
                // Each thread closes `iters` spans; the wall time of the
                // parallel section over `iters` is ns per span per thread.
                b.iter_custom(|iters| {
                    support::run_threads(threads, &subject.dispatch, move |index| {
                        let callsite = if same { 0 } else { index };
                        for _ in 0..iters {
                            support::span_of_callsite(black_box(callsite));
                        }
                    })
                });
            });
        }
        group.finish();
    }
}

criterion::criterion_group! {
    name = group;
    config = support::criterion();
    targets = benches
}
criterion::criterion_main!(group);
