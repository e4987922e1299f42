//! The overhead estimate's arithmetic: the layer's calibrated costs
//! ([`Calibration`], measured by [`super::overhead`]) and what it did in a
//! run ([`Counts`]), and the estimate from the two. Plain data, so the
//! profiler that keeps the calibration needs nothing else of the
//! background thread.

use crate::dump::Overhead;
use crate::record::shards::{CallbackTime, ExitCounts};

/// What the layer adds, measured in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Calibration {
    /// To one span lifecycle, not timed on the CPU, in nanoseconds.
    pub(crate) per_span_ns: f64,
    /// To one more enter and exit of an open span (an async span's next
    /// poll), in nanoseconds.
    pub(crate) per_interval_ns: f64,
    /// To one entered interval timed on the CPU, on top of `per_span_ns`;
    /// zero when the layer does not time spans on the CPU. As this thread
    /// measured it: on the task clock once it opened.
    pub(crate) per_timed_interval_ns: f64,
    /// To one entered interval timed with system calls only (the task clock
    /// not open, or the thread switched out), on top of `per_span_ns`.
    pub(crate) per_called_interval_ns: f64,
    /// The counting allocator's cost per allocation and its free, against
    /// the system allocator; zero when it is not installed.
    pub(crate) per_allocation_ns: f64,
    /// One read of the layer's clock: what timing a sampled callback adds
    /// to its own measured time.
    pub(crate) per_clock_read_ns: f64,
    /// One span lifecycle through the floor alone (a registry and a no-op
    /// layer), spans back to back as a loop makes them: tracing's own part
    /// of such a span's cost, which perf-layer does not add but a span in a
    /// loop pays too.
    pub(crate) floor_per_span_ns: f64,
    /// What the layer adds to such a span in a loop, not timed on the CPU:
    /// `per_span_ns` with warm caches.
    pub(crate) loop_per_span_ns: f64,
}

/// What the layer did in a run, which its costs are multiplied by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) spans: u64,
    pub(crate) exits: ExitCounts,
    /// Allocations the counting allocator served (0 without it).
    pub(crate) allocations: u64,
    /// The callbacks' own time, sampled as they ran.
    pub(crate) callbacks: CallbackTime,
    /// The background thread's CPU time, ns.
    pub(crate) background_ns: u64,
}

impl Calibration {
    /// What the layer added to its callbacks, ns: as they were timed while
    /// they ran, when enough were; else from the calibrated costs of spans
    /// (one entered interval per span is in the span's cost; the rest are
    /// further polls; the timed ones by how they were read).
    pub(crate) fn callbacks_ns(&self, counts: &Counts) -> f64 {
        let measured = Overhead {
            callbacks_ns: counts.callbacks.ns,
            callbacks: counts.callbacks.callbacks,
            callbacks_sampled: counts.callbacks.sampled,
            per_clock_read_ns: self.per_clock_read_ns,
            ..Overhead::default()
        };
        if let Some(ns) = measured.measured_callbacks_ns() {
            return ns;
        }
        let exits = &counts.exits;
        let called = exits.called.min(exits.timed);
        self.per_span_ns * counts.spans as f64
            + self.per_interval_ns * exits.intervals.saturating_sub(counts.spans) as f64
            + self.per_timed_interval_ns * (exits.timed - called) as f64
            + self.per_called_interval_ns * called as f64
    }

    /// What the layer added to the run, ns: its callbacks, the counting
    /// allocator's cost on every allocation, and its background thread.
    pub(crate) fn estimate_ns(&self, counts: &Counts) -> f64 {
        self.callbacks_ns(counts)
            + self.per_allocation_ns * counts.allocations as f64
            + counts.background_ns as f64
    }
}
