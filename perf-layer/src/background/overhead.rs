//! Measuring the layer's own per-span cost, in the process, on this machine.
//!
//! The dump's overhead estimate is this cost times the number of spans. It
//! is calibrated once per handle, on the thread that takes the first
//! snapshot, by timing span lifecycles through a private subscriber with a
//! copy of the layer and through one with a no-op layer (the floor), and
//! taking the best of several rounds of each (the least disturbed by other
//! work). The difference is what the layer adds to every span.
//!
//! The spans are timed as real code runs them, not in a hot loop: nested
//! (a child inside a parent, so parent resolution and self time are paid
//! for), with the CPU's caches flushed by other work (see `EVICT_BYTES`)
//! before each pair. In a hot loop the layer's histograms, shard and stack stay in L1
//! and the layer looks several times cheaper than it is beside real work:
//! measured on the end-to-end bench (docs/benchmarks.md), the hot-loop
//! figure came out at an eighth to under half of the throughput loss.

use std::time::Instant;

use tracing::Level;
use tracing_subscriber::layer::{Layer, SubscriberExt as _};

use crate::builder::{Config, PerfLayerBuilder};
use crate::record::alloc::PauseCounting;

const ROUNDS: usize = 7;
/// Parent-and-child pairs per round.
const PAIRS_PER_ROUND: u32 = 100;
/// Bytes walked before each pair: twice a typical 512 KiB L2 cache, so the
/// layer's data comes from L3 as it does beside real work. On the loaded
/// machine of docs/benchmarks.md, the estimate over the run's CPU time came
/// out at 0.58 of the end-to-end loss with 256 KiB, 0.78 to 0.84 with 1 MiB.
const EVICT_BYTES: usize = 1024 * 1024;
/// Bytes per cache line, the stride of the walk.
const LINE: usize = 64;

struct NoopLayer;
impl<S: tracing_core::Subscriber> Layer<S> for NoopLayer {}

pub(crate) fn calibrate(config: &Config) -> f64 {
    // The calibration's own allocations belong to no user span.
    let _pause = PauseCounting::new();
    let floor = tracing::Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    let Ok((layer, _handle)) = PerfLayerBuilder::new()
        .histogram_sigfig(config.histogram_sigfig)
        .histogram_max(std::time::Duration::from_nanos(config.histogram_max_ns))
        .without_sampler()
        .without_overhead_calibration()
        .without_cpu_time()
        .internal()
        .build()
    else {
        return 0.0;
    };
    let with_layer = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut scratch = vec![0u8; EVICT_BYTES];
    let mut best_floor = f64::MAX;
    let mut best_layer = f64::MAX;
    for _ in 0..ROUNDS {
        best_floor = best_floor.min(time_spans(&floor, &mut scratch));
        best_layer = best_layer.min(time_spans(&with_layer, &mut scratch));
    }
    (best_layer - best_floor).max(0.0)
}

/// Nanoseconds per span lifecycle (new, enter, exit, close) under
/// `dispatch`, for spans nested two deep, each pair after `scratch` evicted
/// the cache. Only the spans are timed: the eviction walk takes far longer
/// than a pair of spans, and its jitter would drown the layer's cost.
fn time_spans(dispatch: &tracing::Dispatch, scratch: &mut [u8]) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let mut spent = std::time::Duration::ZERO;
        for round in 0..PAIRS_PER_ROUND {
            for line in scratch.iter_mut().step_by(LINE) {
                *line = line.wrapping_add(round as u8);
            }
            std::hint::black_box(&mut *scratch);
            let start = Instant::now();
            {
                let parent =
                    tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration");
                let _parent = parent.enter();
                let child = tracing::span!(
                    target: "perf_layer::calibration",
                    Level::ERROR,
                    "calibration_child"
                );
                let _child = child.enter();
            }
            spent += start.elapsed();
        }
        spent.as_nanos() as f64 / f64::from(2 * PAIRS_PER_ROUND)
    })
}
