//! What perf-layer costs a process that does nothing: the background
//! thread's CPU time (the sampler every 100 ms, the watch of waits), read
//! from the dump's own `background_cpu_ns` over windows of wall time.
//!
//! The process builds the layer as a user adds it (`PerfLayer::builder()`,
//! every feature of the layer on; the counting allocator is not installed,
//! and an idle process would not allocate), makes one span on each of ten
//! threads, as a pool's workers would, and then idles: no span is open
//! while it is measured.
//!
//! `cargo bench --bench idle` (about 7 s: a 1 s warm-up, then 6 windows of
//! 1 s); `scripts/bench-report` prints the result, which goes to
//! `<criterion home>/idle/idle.json`. Bounded: the threads end with the
//! bench.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt as _;

const THREADS: usize = 10;
const WINDOWS: usize = 6;
const WINDOW: Duration = Duration::from_secs(1);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // only checks that this builds and starts.
    let measure = std::env::args().any(|a| a == "--bench");
    let (layer, handle) = perf_layer::PerfLayer::builder()
        .output_path(
            std::env::temp_dir().join(format!("perf-suite-idle-{}.json", std::process::id())),
        )
        .build()
        .expect("a valid configuration");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::set_global_default(dispatch).expect("one global subscriber");
    let (stops, threads): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|i| {
            let (stop, stopped) = mpsc::channel::<()>();
            let thread = std::thread::spawn(move || {
                tracing::info_span!("work", i)
                    .in_scope(|| std::thread::sleep(Duration::from_millis(1)));
                let _ = stopped.recv_timeout(Duration::from_secs(60));
            });
            (stop, thread)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .unzip();
    let windows = if measure { WINDOWS } else { 1 };
    // The first snapshot calibrates the layer's cost, on this thread.
    let _ = handle.snapshot();
    std::thread::sleep(if measure {
        WINDOW
    } else {
        Duration::from_millis(100)
    });
    let mut per_second_ms = Vec::new();
    let mut last = (Instant::now(), handle.snapshot().overhead.background_cpu_ns);
    for _ in 0..windows {
        std::thread::sleep(if measure {
            WINDOW
        } else {
            Duration::from_millis(100)
        });
        let now = (Instant::now(), handle.snapshot().overhead.background_cpu_ns);
        let ms = now.1.saturating_sub(last.1) as f64 / 1e6;
        per_second_ms.push(ms / now.0.duration_since(last.0).as_secs_f64());
        last = now;
    }
    drop(stops);
    for t in threads {
        let _ = t.join();
    }
    let median = support::median(per_second_ms.clone());
    eprintln!(
        "idle: perf-layer's background thread took {median:.2} ms of CPU a second \
         (windows: {per_second_ms:.2?}), {:.2}% of one core",
        median / 10.0
    );
    if measure {
        support::write_result(
            "idle",
            "idle.json",
            &serde_json::json!({
                "threads": THREADS + 1,
                "window_ms": WINDOW.as_millis() as u64,
                "background_ms_per_s": per_second_ms,
                "median_ms_per_s": median,
            }),
        );
    }
}
