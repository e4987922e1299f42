//! Instructions per span, counted by callgrind: the one measure of the span
//! path that a shared 2-vCPU guest does not move (its timings drift by more
//! than most changes to the path). `scripts/instructions` builds this
//! binary and runs it under `valgrind --tool=callgrind`, collecting only
//! inside [`spans`], [`polls`] and [`events`], once per subject, and prints the counts
//! per span and their ratio to the floor's.
//!
//! Run by hand: `instructions <subject> <spans|polls|events> [n]`, subject one of
//! `floor` (`registry()` and a no-op layer), `clock_only`
//! ([`support::ClockOnlyLayer`]) and `perf_layer` (timing, without the
//! sampler, CPU time and overhead calibration: under valgrind every
//! interval lasts about 50 times longer, which would move the CPU-time
//! decisions; the system allocator). Without arguments (as `cargo bench`
//! runs every bench) it says so and does nothing.

mod support;

use std::hint::black_box;

use tracing_subscriber::layer::SubscriberExt as _;

/// `n` spans, each created, entered once, exited and closed.
#[inline(never)]
fn spans(n: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..n {
        let span = tracing::info_span!("work");
        let _entered = span.enter();
        x = black_box(x.wrapping_add(i));
    }
    x
}

/// `n` spans, each created, entered and exited five times (an async span's
/// polls), and closed.
#[inline(never)]
fn polls(n: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..n {
        let span = tracing::info_span!("task");
        for _ in 0..5 {
            let _entered = span.enter();
            x = black_box(x.wrapping_add(i));
        }
    }
    x
}

/// `n` spans, each entered once with four `info!` events inside (a
/// handler logging as it goes), with no layer writing them: what the layer
/// adds to an event inside a span.
#[inline(never)]
fn events(n: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..n {
        let span = tracing::info_span!("handler");
        let _entered = span.enter();
        for k in 0..4u64 {
            tracing::info!(k, "step");
            x = black_box(x.wrapping_add(i));
        }
    }
    x
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(subject), Some(workload)) = (args.first(), args.get(1)) else {
        println!("instructions: run by scripts/instructions (under callgrind); nothing to do");
        return;
    };
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let (dispatch, _handle) = match subject.as_str() {
        "floor" => (support::Subject::floor().dispatch, None),
        "clock_only" => (support::Subject::clock_only().dispatch, None),
        "perf_layer" => {
            let (layer, handle) = perf_layer::PerfLayer::builder()
                .without_sampler()
                .without_cpu_time()
                .without_overhead_calibration()
                .build()
                .expect("a valid configuration");
            (
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
                Some(handle),
            )
        }
        other => {
            eprintln!("instructions: no subject {other:?} (floor, clock_only, perf_layer)");
            std::process::exit(2);
        }
    };
    let run: fn(u64) -> u64 = match workload.as_str() {
        "spans" => spans,
        "polls" => polls,
        "events" => events,
        other => {
            eprintln!("instructions: no workload {other:?} (spans, polls, events)");
            std::process::exit(2);
        }
    };
    tracing::dispatcher::with_default(&dispatch, || {
        // A first round (counted too: `scripts/instructions` divides by
        // `n + 1000`): callsites registered, the thread's stack and shard
        // made.
        black_box(run(1_000));
        black_box(run(n));
    });
    if let Some(handle) = _handle {
        // Written, so the layer does not warn of a run without a dump.
        let path = std::env::temp_dir().join(format!("instructions-{}.json", std::process::id()));
        handle.write_dump_to(&path).expect("the dump is written");
        let _ = std::fs::remove_file(path);
    }
}
