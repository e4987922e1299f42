//! What the async truth tests share: a fresh layer installed as the default
//! while a workload runs, and the runtime they run it on.

#![allow(dead_code)] // each test binary uses a part

use perf_layer::PerfLayer;
use perf_layer::dump::Dump;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Runs `workload` with a fresh perf-layer as the default subscriber (its
/// dispatch handed in, for tasks that need it) and returns what it returned
/// with the layer's snapshot after it.
pub fn traced<R>(workload: impl FnOnce(&Dispatch) -> R) -> (R, Dump) {
    let (layer, handle) = PerfLayer::builder().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let out = tracing::dispatcher::with_default(&dispatch, || workload(&dispatch));
    (out, handle.snapshot())
}

/// A multi-thread tokio runtime with two workers and timers: the machine's
/// two cores.
pub fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Computes for `d` on this thread (a busy loop, not a sleep).
pub fn compute(d: std::time::Duration) {
    let end = std::time::Instant::now() + d;
    let mut x = 1u64;
    while std::time::Instant::now() < end {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
}
