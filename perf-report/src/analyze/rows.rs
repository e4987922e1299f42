//! The per-callsite rows of the analysis: what the callsite table shows and
//! the detectors read, one row per callsite of the dump.

use serde::Serialize;

use crate::callsite::Location;
use crate::stats;

/// Allocation figures of one callsite (only when the dump tracked them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocRow {
    /// Bytes allocated while the span was innermost, per call.
    pub self_bytes_per_call: f64,
    /// Allocations made while the span was innermost, per call.
    pub self_allocs_per_call: f64,
    /// Bytes allocated while innermost, in total.
    pub self_alloc_bytes: u64,
    /// This callsite's share of all self-allocated bytes (0 to 1).
    pub alloc_share: f64,
    /// Inclusive bytes allocated minus freed: what the spans kept.
    pub net_retained_bytes: i64,
    /// Spans that closed holding more than they freed.
    pub calls_retaining: u64,
}

/// What the callsite's spans made that is still allocated, from the counting
/// allocator's tags (only when the dump has them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeapRow {
    /// Bytes still allocated at the end of the run.
    pub live_bytes: u64,
    /// The most bytes live at once (sampled).
    pub peak_live_bytes: u64,
    /// Bytes the callsite's spans allocated in all.
    pub allocated_bytes: u64,
    /// The least-squares growth of its live bytes after warm-up, bytes per
    /// second, when the timeline has enough points
    /// (`classes.leak_suspect.warmup_share`, `min_points`).
    pub growth_bytes_per_s: Option<f64>,
    /// How well a line fits that growth (R², 0 to 1).
    pub growth_r2: Option<f64>,
}

/// On-CPU and off-CPU figures of one callsite (only when the layer timed
/// its spans on the CPU: long enough spans, on Linux).
///
/// Shares are of the timed spans; the `_ns` figures scale them to every
/// call (the first spans of a callsite, before its mean busy time was
/// known, are not timed). A callsite timed for fewer than half its calls
/// (its mean busy time fell under the layer's threshold after a slow start)
/// has none: so small and early a sample does not stand for its calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuRow {
    /// Spans timed on the CPU.
    pub timed_calls: u64,
    /// On-CPU time over busy time (0 to 1).
    pub on_cpu_share: f64,
    /// On-CPU time while innermost over self time (0 to 1).
    pub self_on_cpu_share: f64,
    /// Self time off the CPU by the span's own doing (voluntary switches:
    /// sleep, blocking I/O, a contended lock), over self time.
    pub self_blocked_share: f64,
    /// Self time off the CPU because the thread was preempted, over self
    /// time.
    pub self_preempted_share: f64,
    /// Estimated on-CPU self time over every call, ns.
    pub self_on_cpu_ns: f64,
    /// Estimated blocked self time over every call, ns.
    pub self_blocked_ns: f64,
    /// Estimated self time lost to preemption over every call, ns.
    pub self_preempted_ns: f64,
    /// Estimated busy time lost to preemption over every call (inclusive of
    /// children, like the busy histogram), ns.
    pub preempted_ns: f64,
    /// Voluntary context switches per timed span.
    pub voluntary_per_call: f64,
    /// Involuntary context switches per timed span.
    pub involuntary_per_call: f64,
    /// Entered intervals per timed span: above 1 for an async span polled
    /// several times.
    pub intervals_per_call: f64,
}

impl CpuRow {
    pub(crate) fn of(cs: &perf_layer::dump::CallsiteStats) -> Option<Self> {
        let c = cs
            .cpu
            .as_ref()
            .filter(|c| c.busy_ns > 0 && c.timed_calls > 0 && c.timed_calls >= cs.calls / 2)?;
        let timed = c.timed_calls as f64;
        let self_on_cpu_share = stats::share(c.self_on_cpu_ns as f64, c.self_ns as f64);
        let self_off = 1.0 - self_on_cpu_share;
        // The span's off-CPU time splits into blocked and preempted in the
        // same proportion while it is innermost as over its whole interval.
        let preempted_of_off = stats::share(c.preempted_ns.sum as f64, c.off_cpu_ns as f64);
        let self_scale = stats::ratio(cs.self_ns.sum as f64, c.self_ns as f64).max(1.0);
        let busy_scale = stats::ratio(cs.busy_ns.sum as f64, c.busy_ns as f64).max(1.0);
        let self_blocked_share = self_off * (1.0 - preempted_of_off);
        Some(Self {
            timed_calls: c.timed_calls,
            on_cpu_share: stats::share(c.on_cpu_ns.sum as f64, c.busy_ns as f64),
            self_on_cpu_share,
            self_blocked_share,
            self_preempted_share: self_off * preempted_of_off,
            self_on_cpu_ns: c.self_on_cpu_ns as f64 * self_scale,
            self_blocked_ns: self_blocked_share * c.self_ns as f64 * self_scale,
            self_preempted_ns: self_off * preempted_of_off * c.self_ns as f64 * self_scale,
            preempted_ns: c.preempted_ns.sum as f64 * busy_scale,
            voluntary_per_call: c.voluntary_switches as f64 / timed,
            involuntary_per_call: c.involuntary_switches as f64 / timed,
            intervals_per_call: c.intervals as f64 / timed,
        })
    }
}

/// One row of the per-callsite table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CallsiteRow {
    /// Where the span is.
    pub location: Location,
    /// Its level.
    pub level: String,
    /// Spans closed.
    pub calls: u64,
    /// Sum of busy time (inclusive of children), ns.
    pub busy_total_ns: u64,
    /// Sum of self time (exclusive of children), ns.
    pub self_total_ns: u64,
    /// Share of all self time in the run (0 to 1).
    pub self_share: f64,
    /// Self time on the CPU, ns: estimated from the on-CPU figures where
    /// the layer timed the spans, else the self time (short spans compute).
    pub self_cpu_ns: f64,
    /// Sum of wall time, ns.
    pub wall_total_ns: u64,
    /// Sum of idle time, ns.
    pub idle_total_ns: u64,
    /// Idle time over wall time (0 to 1).
    pub idle_share: f64,
    /// Mean busy time per call, ns.
    pub busy_mean_ns: f64,
    /// Busy-time median, ns.
    pub busy_p50_ns: u64,
    /// Busy-time 90th percentile, ns.
    pub busy_p90_ns: u64,
    /// Busy-time 99th percentile, ns.
    pub busy_p99_ns: u64,
    /// Busy-time 99.9th percentile, ns.
    pub busy_p999_ns: u64,
    /// Busy-time maximum, ns.
    pub busy_max_ns: u64,
    /// Allocation figures, `None` when the dump did not track allocation.
    pub alloc: Option<AllocRow>,
    /// Sum over the spans of process RSS at close minus at open, `None`
    /// without a sampler. Concurrent spans each count the same growth, so
    /// the sum can exceed what the process ever held: read the per-call
    /// figures.
    pub rss_delta_bytes: Option<i64>,
    /// Process RSS at close minus at open, mean per call. Coarse: as the
    /// sampler saw it (its interval), for the whole process.
    pub rss_delta_per_call_bytes: Option<f64>,
    /// The largest growth of process RSS over one call.
    pub rss_delta_max_bytes: Option<i64>,
    /// Live heap figures, `None` when the dump has none.
    pub heap: Option<HeapRow>,
    /// On-CPU figures, `None` when the layer did not time the spans on the
    /// CPU.
    pub cpu: Option<CpuRow>,
}
