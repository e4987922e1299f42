//! Measuring the layer's own per-span cost, in the process, on this machine.
//!
//! The dump's overhead estimate is this cost times the number of spans, plus
//! what reading the thread's CPU time adds to each interval timed on the CPU
//! (the adaptive reads on long spans, and every callsite's first calls)
//! times the number of such intervals. Both are
//! calibrated once per handle, on the thread that takes the first
//! snapshot, by timing span lifecycles through a private subscriber with a
//! copy of the layer, through one that times every span on the CPU, and
//! through one with a no-op layer (the floor), side by side in each of
//! several rounds. The median over rounds of the differences is what the
//! layer adds to every span, and to every timed interval.
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

/// What the layer adds, measured in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Calibration {
    /// To one span lifecycle, not timed on the CPU, in nanoseconds.
    pub(crate) per_span_ns: f64,
    /// To one more enter and exit of an open span (an async span's next
    /// poll), in nanoseconds.
    pub(crate) per_interval_ns: f64,
    /// To one entered interval timed on the CPU, on top of `per_span_ns`;
    /// zero when the layer does not time spans on the CPU.
    pub(crate) per_timed_interval_ns: f64,
}

impl Calibration {
    /// What the layer added to `spans` spans, `intervals` entered intervals
    /// (one per span is in the span's cost; the rest are further polls) and
    /// `timed_intervals` intervals timed on the CPU, ns.
    pub(crate) fn estimate_ns(&self, spans: u64, intervals: u64, timed_intervals: u64) -> f64 {
        self.per_span_ns * spans as f64
            + self.per_interval_ns * intervals.saturating_sub(spans) as f64
            + self.per_timed_interval_ns * timed_intervals as f64
    }
}

pub(crate) fn calibrate(config: &Config) -> Calibration {
    // The calibration's own allocations belong to no user span.
    let _pause = PauseCounting::new();
    let floor = tracing::Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    let copy = |timed: bool| {
        let builder = PerfLayerBuilder::new()
            .histogram_sigfig(config.histogram_sigfig)
            .histogram_max(std::time::Duration::from_nanos(config.histogram_max_ns))
            .without_sampler()
            .without_overhead_calibration()
            .internal();
        let builder = if timed {
            // Every interval timed: a threshold no mean is below.
            builder.cpu_time_threshold(std::time::Duration::ZERO)
        } else {
            builder.without_cpu_time()
        };
        let (layer, handle) = builder.build().ok()?;
        Some((
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
            handle,
        ))
    };
    let Some((untimed, _untimed_handle)) = copy(false) else {
        return Calibration::default();
    };
    let timed = if config.cpu_time_threshold_ns.is_some() && crate::record::cpu::available() {
        copy(true)
    } else {
        None
    };
    let mut scratch = vec![0u8; EVICT_BYTES];
    // Each round times the three side by side; the differences within a
    // round see the same machine, and their median over rounds is the cost
    // (the best of each alone came out at half the end-to-end loss: the
    // least disturbed round is also the one with the warmest caches).
    let mut untimed_over_floor = Vec::with_capacity(ROUNDS);
    let mut poll_over_floor = Vec::with_capacity(ROUNDS);
    let mut timed_over_untimed = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let floor_ns = time_spans(&floor, &mut scratch);
        let untimed_ns = time_spans(&untimed, &mut scratch);
        untimed_over_floor.push(untimed_ns - floor_ns);
        poll_over_floor.push(time_polls(&untimed, &mut scratch) - time_polls(&floor, &mut scratch));
        if let Some((timed, _)) = &timed {
            timed_over_untimed.push(time_spans(timed, &mut scratch) - untimed_ns);
        }
    }
    Calibration {
        per_span_ns: median(&mut untimed_over_floor).max(0.0),
        per_interval_ns: median(&mut poll_over_floor).max(0.0),
        per_timed_interval_ns: if timed.is_some() {
            median(&mut timed_over_untimed).max(0.0)
        } else {
            0.0
        },
    }
}

/// Nanoseconds per enter and exit of one open span under `dispatch`, as
/// an async span is polled again: a parent span entered twice after each
/// eviction, inside which the child opens (so the stack and the shard are
/// as a poll finds them).
fn time_polls(dispatch: &tracing::Dispatch, scratch: &mut [u8]) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let task =
            tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration_task");
        let mut spent = std::time::Duration::ZERO;
        for round in 0..PAIRS_PER_ROUND {
            for line in scratch.iter_mut().step_by(LINE) {
                *line = line.wrapping_add(round as u8);
            }
            std::hint::black_box(&mut *scratch);
            let start = Instant::now();
            drop(task.enter());
            drop(task.enter());
            spent += start.elapsed();
        }
        spent.as_nanos() as f64 / f64::from(2 * PAIRS_PER_ROUND)
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
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
