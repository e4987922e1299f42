//! hotpath (crates.io), the closest Rust peer (issue 25): its own
//! `#[hotpath::measure]` attribute times a function call, with no `tracing`
//! in between. The comparable figure is what each adds to the code it
//! measures: hotpath over the bare function, perf-layer over the floor
//! (`registry()` with a no-op layer, the `tracing` cost a team has before
//! it adds any layer), and perf-layer over the bare function too, `tracing`
//! included. Three workloads, as in `lifecycle`: a function call, three
//! nested calls, an async function polled four times.
//!
//! hotpath keeps one profiler per process, so it has a binary of its own;
//! its guard is built once, without its metrics server, and reports to a
//! temporary file at the end. `scripts/bench-report peer_hotpath` prints
//! the added costs.

mod support;

use std::hint::black_box;
use std::task::{Context, Waker};

use support::{Subject, YieldTimes};

#[inline(never)]
fn bare(n: u64) -> u64 {
    black_box(n)
}

#[inline(never)]
#[hotpath::measure]
fn measured(n: u64) -> u64 {
    black_box(n)
}

#[inline(never)]
fn bare_nested() {
    fn inner() {
        black_box(());
    }
    #[inline(never)]
    fn middle() {
        inner();
    }
    middle();
}

#[inline(never)]
#[hotpath::measure]
fn measured_inner() {
    black_box(());
}

#[inline(never)]
#[hotpath::measure]
fn measured_middle() {
    measured_inner();
}

#[inline(never)]
#[hotpath::measure]
fn measured_outer() {
    measured_middle();
}

async fn bare_async() {
    YieldTimes(support::ASYNC_POLLS).await;
}

#[hotpath::measure]
async fn measured_async() {
    YieldTimes(support::ASYNC_POLLS).await;
}

/// Polls `future` to completion with a no-op waker, no runtime.
fn poll_to_end(future: impl Future<Output = ()>) {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    while future.as_mut().poll(&mut cx).is_pending() {}
}

fn benches(c: &mut criterion::Criterion<support::ThreadTime>) {
    // SAFETY: set before any thread of this process starts.
    unsafe { std::env::set_var("HOTPATH_METRICS_SERVER_OFF", "1") };
    let report = std::env::temp_dir().join(format!("peer_hotpath-{}.json", std::process::id()));
    let _guard = hotpath::HotpathGuardBuilder::new("peer_hotpath")
        .format(hotpath::Format::Json)
        .output_path(&report)
        .build();
    let floor = Subject::floor();
    let perf = Subject::perf_layer("perf_layer_timing");
    type Workload = (&'static str, fn(), fn(), fn());
    let workloads: [Workload; 3] = [
        (
            "call",
            || {
                black_box(bare(black_box(7)));
            },
            || {
                black_box(measured(black_box(7)));
            },
            || {
                black_box(support::instrumented(black_box(7)));
            },
        ),
        ("nested_3", bare_nested, measured_outer, support::nested_3),
        (
            "async_4_polls",
            || poll_to_end(bare_async()),
            || poll_to_end(measured_async()),
            support::async_span,
        ),
    ];
    for (name, plain, hot, traced) in workloads {
        let mut g = c.benchmark_group(format!("peer_hotpath.{name}"));
        g.bench_function("bare", |b| b.iter(plain));
        g.bench_function("peer_hotpath", |b| b.iter(hot));
        for subject in [&floor, &perf] {
            g.bench_function(subject.name, |b| {
                tracing::dispatcher::with_default(&subject.dispatch, || b.iter(traced));
            });
        }
        g.finish();
    }
    drop(_guard);
    let _ = std::fs::remove_file(&report);
}

criterion::criterion_group! {
    name = group;
    config = support::criterion_cpu();
    targets = benches
}
criterion::criterion_main!(group);
