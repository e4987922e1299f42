//! Scaling: nanoseconds per span per thread when two threads, each pinned to
//! its own core, close spans of the same callsite or of different callsites,
//! against one thread doing the same, in CPU time per thread (`threads.*`)
//! and in wall time (`threads_wall.*`). The counting allocator is installed,
//! so perf-layer runs in its full configuration.
//!
//! Thread churn (`thread_churn.*`): wall time per thread started, entering
//! one span and joined, one after another. With the sampler on, a thread
//! that recorded a span reads its wait for a core as it exits
//! (`/proc/thread-self/schedstat`, three system calls): `perf_layer_sampler`
//! against `perf_layer` is that read.

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
    let cases: [(&str, usize, bool); 3] = [
        ("one_thread", 1, true),
        ("two_threads_same_callsite", 2, true),
        ("two_threads_distinct_callsites", 2, false),
    ];
    // Two clocks: CPU time per thread is what contention between the
    // threads costs (a bounced cache line stalls the core and is counted);
    // wall time adds whatever else the machine ran on those cores. Neither
    // perf-layer nor the registry blocks on a lock on this path, so CPU time
    // hides no waiting.
    for (clock, cpu) in [("threads", true), ("threads_wall", false)] {
        for subject in &subjects {
            let mut group = c.benchmark_group(format!("{clock}.{}", subject.name));
            for (case, threads, same) in cases {
                group.bench_function(case, |b| {
                    // Each thread closes `iters` spans; the parallel section
                    // over `iters` is ns per span per thread.
                    b.iter_custom(|iters| {
                        let took = support::run_threads(threads, &subject.dispatch, move |index| {
                            let callsite = if same { 0 } else { index };
                            for _ in 0..iters {
                                support::span_of_callsite(black_box(callsite));
                            }
                        });
                        if cpu { took.max_cpu } else { took.wall }
                    });
                });
            }
            group.finish();
        }
    }
}

/// A thread per span, started and joined one after another.
fn churn(c: &mut criterion::Criterion) {
    let subjects = [
        Subject::floor(),
        Subject::perf_layer("perf_layer"),
        Subject::perf_layer_sampler("perf_layer_sampler"),
    ];
    let mut group = c.benchmark_group("thread_churn");
    for subject in &subjects {
        group.bench_function(subject.name, |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let dispatch = subject.dispatch.clone();
                    std::thread::spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            support::span_of_callsite(black_box(0));
                        })
                    })
                    .join()
                    .expect("benchmark thread panicked");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion::criterion_group! {
    name = group;
    config = support::criterion();
    targets = benches, churn
}
criterion::criterion_main!(group);
