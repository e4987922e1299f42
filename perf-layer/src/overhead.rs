//! Measuring the layer's own per-span cost, in the process, on this machine.
//!
//! The dump's overhead estimate is this cost times the number of spans. It
//! is calibrated once per handle, on the thread that takes the first
//! snapshot, by timing span lifecycles through a private subscriber with a
//! copy of the layer and through one with a no-op layer (the floor), and
//! taking the best of several rounds of each (the least disturbed by other
//! work). The difference is what the layer adds to every span.

use std::time::Instant;

use tracing::Level;
use tracing_subscriber::layer::{Layer, SubscriberExt as _};

use crate::alloc::PauseCounting;
use crate::builder::{Config, PerfLayerBuilder};

const ROUNDS: usize = 7;
const SPANS_PER_ROUND: u32 = 2_000;

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
        .build()
    else {
        return 0.0;
    };
    let with_layer = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut best_floor = f64::MAX;
    let mut best_layer = f64::MAX;
    for _ in 0..ROUNDS {
        best_floor = best_floor.min(time_spans(&floor));
        best_layer = best_layer.min(time_spans(&with_layer));
    }
    (best_layer - best_floor).max(0.0)
}

/// Nanoseconds per span lifecycle (new, enter, exit, close) under `dispatch`.
fn time_spans(dispatch: &tracing::Dispatch) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let start = Instant::now();
        for _ in 0..SPANS_PER_ROUND {
            let span =
                tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration");
            let _entered = span.enter();
        }
        start.elapsed().as_nanos() as f64 / f64::from(SPANS_PER_ROUND)
    })
}
