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
    /// Its share of all allocations made in spans, by count (0 to 1): small
    /// allocations cost by their number, not their bytes.
    pub allocs_share: f64,
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
/// its intervals on the CPU, on Linux).
///
/// The layer times every entered interval of a callsite whose intervals
/// are long on average, and one in 512 of the short ones (a uniform
/// sample; a long-lived async span's polls are short). The figures here are
/// over every call: the sampled intervals' shares are applied to the busy
/// and self time that was not timed, the rest of the timed intervals count
/// for themselves. Without a sample of at least 8 intervals,
/// a callsite whose busy time was mostly not timed has no row: too few to
/// stand for its calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuRow {
    /// Spans timed on the CPU (at least one of their intervals).
    pub timed_calls: u64,
    /// Share of the callsite's busy time that was timed (0 to 1): below 1
    /// the rest is estimated from the sample.
    pub measured_share: f64,
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
    /// Voluntary context switches per span.
    pub voluntary_per_call: f64,
    /// Involuntary context switches per span.
    pub involuntary_per_call: f64,
    /// Entered intervals per timed span: above 1 for an async span polled
    /// several times.
    pub intervals_per_call: f64,
}

/// Fewest sampled intervals whose shares stand for the untimed time.
const MIN_SAMPLE: u64 = 8;

/// Of a callsite's busy time, at least this share timed stands for the
/// rest without a sample (a callsite timed from its first call whose few
/// last calls were short, say).
const MEASURED_ENOUGH: f64 = 0.5;

impl CpuRow {
    pub(crate) fn of(cs: &perf_layer::dump::CallsiteStats) -> Option<Self> {
        let c = cs
            .cpu
            .as_ref()
            .filter(|c| c.busy_ns > 0 && c.timed_calls > 0)?;
        let busy_all = (cs.busy_ns.sum as f64).max(c.busy_ns as f64);
        let self_all = (cs.self_ns.sum as f64).max(c.self_ns as f64);
        let measured_share = stats::share(c.busy_ns as f64, busy_all);
        // What was not timed, and the shares that stand for it: the
        // sample's when there is one, else those of every timed interval.
        let untimed_busy = busy_all - c.busy_ns as f64;
        let untimed_self = self_all - c.self_ns as f64;
        // The preempted share of self time, where the dump measured it.
        let self_preempted_rate =
            |ns: Option<u64>, self_ns: u64| ns.map(|ns| stats::share(ns as f64, self_ns as f64));
        let (on_rate, self_on_rate, preempted_rate, self_preempted_of) = match &c.sampled {
            Some(s) if s.intervals >= MIN_SAMPLE && s.busy_ns > 0 => (
                stats::share(s.on_cpu_ns as f64, s.busy_ns as f64),
                stats::share(s.self_on_cpu_ns as f64, s.self_ns as f64),
                stats::share(s.preempted_ns as f64, s.busy_ns as f64),
                self_preempted_rate(s.self_preempted_ns, s.self_ns),
            ),
            _ if measured_share >= MEASURED_ENOUGH => (
                stats::share(c.on_cpu_ns.sum as f64, c.busy_ns as f64),
                stats::share(c.self_on_cpu_ns as f64, c.self_ns as f64),
                stats::share(c.preempted_ns.sum as f64, c.busy_ns as f64),
                self_preempted_rate(c.self_preempted_ns, c.self_ns),
            ),
            _ => return None,
        };
        let on_cpu = c.on_cpu_ns.sum as f64 + on_rate * untimed_busy;
        let self_on_cpu = (c.self_on_cpu_ns as f64 + self_on_rate * untimed_self).min(self_all);
        let preempted = c.preempted_ns.sum as f64 + preempted_rate * untimed_busy;
        let self_on_cpu_share = stats::share(self_on_cpu, self_all);
        let self_off = 1.0 - self_on_cpu_share;
        // The span's self time off the CPU splits into preempted and
        // blocked by the switches while it was innermost, as the layer
        // measured it; in older dumps, in the same proportion as over its
        // whole interval (children's switches included).
        let self_preempted_share = match (c.self_preempted_ns, self_preempted_of) {
            (Some(ns), Some(rate)) => {
                stats::share(ns as f64 + rate * untimed_self, self_all).min(self_off)
            }
            _ => self_off * stats::share(preempted, busy_all - on_cpu.min(busy_all)),
        };
        let self_blocked_share = self_off - self_preempted_share;
        let timed = c.timed_calls as f64;
        // Switches per timed interval, times the intervals of a span.
        let timed_intervals = c.intervals.saturating_sub(c.untimed_intervals).max(1) as f64;
        let intervals_per_call = c.intervals as f64 / timed;
        let per_call = |n: u64| n as f64 / timed_intervals * intervals_per_call;
        Some(Self {
            timed_calls: c.timed_calls,
            measured_share,
            on_cpu_share: stats::share(on_cpu, busy_all),
            self_on_cpu_share,
            self_blocked_share,
            self_preempted_share,
            self_on_cpu_ns: self_on_cpu,
            self_blocked_ns: self_blocked_share * self_all,
            self_preempted_ns: self_preempted_share * self_all,
            preempted_ns: preempted,
            voluntary_per_call: per_call(c.voluntary_switches),
            involuntary_per_call: per_call(c.involuntary_switches),
            intervals_per_call,
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
