//! What every detector reads, built once per analysis: run-wide totals, one
//! row per callsite (with its live-heap growth), the process summary and
//! its RSS fit.

use perf_layer::dump::Dump;
use serde::Serialize;

use super::finding::{Draft, Finding, Resource};
use super::process::ProcessSummary;
use crate::LoadedDump;
use crate::callsite::Location;
use crate::config::Config;
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
}

/// Run-wide totals the shares are computed against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Run duration, ns (the sum of the parts' durations for merged dumps).
    pub duration_ns: u64,
    /// Sum of every callsite's self time, ns: all instrumented work.
    pub self_ns: u64,
    /// CPU time the process used over the run, ns (every thread), when the
    /// dump records it.
    pub cpu_ns: Option<u64>,
    /// The whole that `time` shares are of, ns: the process's CPU time, or
    /// all self time in spans when that is larger or the CPU time unknown.
    pub time_whole_ns: u64,
    /// CPU time over wall time: the cores the process kept busy on average
    /// (1 when the CPU time is unknown).
    pub cpu_utilization: f64,
    /// Spans closed.
    pub calls: u64,
    /// Sum of every callsite's self-allocated bytes, `None` when not tracked.
    pub self_alloc_bytes: Option<u64>,
    /// The layer's estimate of its own share of the run (0 to 1).
    pub overhead_share: f64,
    /// Threads that recorded spans, estimated from the layer's overhead
    /// figures (1 when unknown).
    pub recording_threads: f64,
    /// Self time over duration x recording threads (0 to 1): how busy the
    /// instrumented threads were.
    pub utilization: f64,
}

/// The points of a callsite's live-bytes timeline after warm-up, as
/// `(seconds, bytes)`: the first `warmup_share` of the run's points left
/// out. Empty when the dump has no timeline.
pub(crate) fn after_warmup(
    dump: &Dump,
    heap: &perf_layer::dump::HeapStats,
    config: &Config,
) -> Vec<(f64, f64)> {
    let Some(summary) = &dump.heap else {
        return Vec::new();
    };
    let t = &summary.timeline_t_ms;
    let n = t.len().min(heap.live_timeline_bytes.len());
    let skip = (n as f64 * config.classes.leak_suspect.warmup_share).ceil() as usize;
    (skip.min(n)..n)
        .map(|i| (t[i] as f64 / 1e3, heap.live_timeline_bytes[i] as f64))
        .collect()
}

/// The least-squares growth of live bytes after warm-up, when there are at
/// least `min_points` points.
fn live_growth(
    dump: &Dump,
    heap: &perf_layer::dump::HeapStats,
    config: &Config,
) -> Option<stats::LinearFit> {
    let points = after_warmup(dump, heap, config);
    if points.len() < config.classes.leak_suspect.min_points {
        return None;
    }
    stats::least_squares(&points)
}

impl Totals {
    /// The whole a resource's shares are of, in words: `the process's CPU
    /// time` (or `all self time in spans`), `the run's wall time`, `all bytes
    /// allocated`, `peak memory`.
    pub fn share_of(&self, resource: Resource) -> &'static str {
        match resource {
            Resource::Time if self.cpu_ns.is_some_and(|cpu| cpu >= self.self_ns) => {
                "the process's CPU time"
            }
            Resource::Time => "all self time in spans",
            Resource::WallTime => "the run's wall time",
            Resource::Allocation => "all bytes allocated",
            Resource::Memory => "peak memory",
        }
    }
}

/// Everything the detectors read, built once.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) dump: &'a Dump,
    pub(crate) config: &'a Config,
    pub(crate) totals: Totals,
    /// One per callsite, in the dump's order (index-aligned with
    /// `dump.callsites`).
    pub(crate) rows: Vec<CallsiteRow>,
    /// The time each callsite's calls above p90 spent beyond it, ns.
    pub(crate) tail_excess_ns: Vec<f64>,
    pub(crate) process: ProcessSummary,
    /// The dump's duration, or the longest span's wall time without one.
    pub(crate) run_wall_ns: f64,
    /// The layer's measured cost per span, ns (0 when unknown).
    pub(crate) per_span_ns: f64,
    /// Whether every callsite carries allocation figures.
    pub(crate) alloc_tracked: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(input: &'a LoadedDump, config: &'a Config) -> Self {
        let dump = input.dump();
        let total_self: u128 = dump
            .callsites
            .iter()
            .map(|c| u128::from(c.self_ns.sum))
            .sum();
        let total_self_f = total_self as f64;
        let total_calls: u128 = dump.callsites.iter().map(|c| u128::from(c.calls)).sum();
        let alloc_tracked =
            dump.allocations_tracked && dump.callsites.iter().all(|c| c.alloc.is_some());
        let total_self_alloc: u128 = dump
            .callsites
            .iter()
            .filter_map(|c| c.alloc.map(|a| u128::from(a.self_alloc_bytes)))
            .sum();
        let run_wall_ns = if dump.run.duration_ns > 0 {
            dump.run.duration_ns as f64
        } else {
            dump.callsites
                .iter()
                .map(|c| c.wall_ns.sum as f64)
                .fold(0.0, f64::max)
        };

        // Threads that recorded spans, from the layer's overhead estimate
        // (fraction = estimated / (duration x threads)); 1 when unknown,
        // which overstates utilisation and so understates what waiting can
        // give back.
        let o = &dump.overhead;
        let recording_threads = if o.fraction_of_run.is_finite()
            && o.fraction_of_run > 0.0
            && o.estimated_ns > 0
            && run_wall_ns > 0.0
        {
            (o.estimated_ns as f64 / o.fraction_of_run / run_wall_ns).clamp(1.0, 1e6)
        } else {
            1.0
        };
        let utilization = stats::share(total_self_f, run_wall_ns * recording_threads);

        let mut rows = Vec::with_capacity(dump.callsites.len());
        let mut tail_excess_ns = Vec::with_capacity(dump.callsites.len());
        for (cs, busy) in dump.callsites.iter().zip(input.busy_summaries()) {
            let [p50, p90, p99, p999, max] = busy.quantiles;
            tail_excess_ns.push(busy.tail_excess);
            let calls_f = cs.calls as f64;
            let alloc = cs.alloc.filter(|_| alloc_tracked).map(|a| AllocRow {
                self_bytes_per_call: stats::ratio(a.self_alloc_bytes as f64, calls_f),
                self_allocs_per_call: stats::ratio(a.self_allocs as f64, calls_f),
                self_alloc_bytes: a.self_alloc_bytes,
                alloc_share: stats::share(a.self_alloc_bytes as f64, total_self_alloc as f64),
                net_retained_bytes: a.net_bytes,
                calls_retaining: a.calls_retaining,
            });
            rows.push(CallsiteRow {
                location: Location::of(cs),
                level: cs.level.clone(),
                calls: cs.calls,
                busy_total_ns: cs.busy_ns.sum,
                self_total_ns: cs.self_ns.sum,
                self_share: stats::share(cs.self_ns.sum as f64, total_self_f),
                wall_total_ns: cs.wall_ns.sum,
                idle_total_ns: cs.idle_ns.sum,
                idle_share: stats::share(cs.idle_ns.sum as f64, cs.wall_ns.sum as f64),
                busy_mean_ns: stats::ratio(cs.busy_ns.sum as f64, cs.busy_ns.count as f64),
                busy_p50_ns: p50,
                busy_p90_ns: p90,
                busy_p99_ns: p99,
                busy_p999_ns: p999,
                busy_max_ns: max,
                alloc,
                rss_delta_bytes: cs.rss_delta.map(|d| d.sum_bytes),
                rss_delta_per_call_bytes: cs
                    .rss_delta
                    .map(|d| stats::ratio(d.sum_bytes as f64, calls_f)),
                rss_delta_max_bytes: cs.rss_delta.map(|d| d.max_bytes),
                heap: cs.heap.as_ref().filter(|_| alloc_tracked).map(|h| {
                    let fit = live_growth(dump, h, config);
                    HeapRow {
                        live_bytes: h.live_bytes,
                        peak_live_bytes: h.peak_live_bytes,
                        allocated_bytes: h.allocated_bytes,
                        growth_bytes_per_s: fit.map(|f| f.slope),
                        growth_r2: fit.map(|f| f.r2),
                    }
                }),
            });
        }

        crate::callsite::qualify(rows.iter_mut().map(|r| &mut r.location));

        let overhead_share = if o.fraction_of_run.is_finite() {
            o.fraction_of_run.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let cpu_ns = dump.run.cpu_ns.filter(|&ns| ns > 0);
        let self_ns = u64::try_from(total_self).unwrap_or(u64::MAX);
        let cpu_utilization = match cpu_ns {
            Some(cpu) if run_wall_ns > 0.0 => cpu as f64 / run_wall_ns,
            _ => 1.0,
        };
        let per_span_ns = if o.per_span_ns.is_finite() {
            o.per_span_ns.max(0.0)
        } else {
            0.0
        };
        Self {
            dump,
            config,
            totals: Totals {
                duration_ns: dump.run.duration_ns,
                self_ns,
                cpu_ns,
                time_whole_ns: cpu_ns.map_or(self_ns, |cpu| cpu.max(self_ns)),
                cpu_utilization,
                calls: u64::try_from(total_calls).unwrap_or(u64::MAX),
                self_alloc_bytes: alloc_tracked
                    .then(|| u64::try_from(total_self_alloc).unwrap_or(u64::MAX)),
                overhead_share,
                recording_threads,
                utilization,
            },
            rows,
            tail_excess_ns,
            process: ProcessSummary::of(dump, config),
            run_wall_ns,
            per_span_ns,
            alloc_tracked,
        }
    }

    /// Every callsite with its row, in the dump's order.
    pub(crate) fn callsites(
        &self,
    ) -> impl Iterator<Item = (usize, &'a perf_layer::dump::CallsiteStats, &CallsiteRow)> {
        self.dump
            .callsites
            .iter()
            .zip(&self.rows)
            .enumerate()
            .map(|(i, (cs, row))| (i, cs, row))
    }

    /// `ns` of CPU work as a share of the whole of every `time` share
    /// ([`Totals::time_whole_ns`]).
    pub(crate) fn time_share(&self, ns: f64) -> f64 {
        stats::share(ns, self.totals.time_whole_ns as f64)
    }

    /// The whole a resource's shares are of, in words.
    pub(crate) fn share_of(&self, resource: Resource) -> &'static str {
        self.totals.share_of(resource)
    }

    /// The first and last timeline samples' distance, in seconds.
    pub(crate) fn timeline_span_s(&self) -> f64 {
        let s = &self.dump.timeline.samples;
        match (s.first(), s.last()) {
            (Some(a), Some(b)) => b.t_ms.saturating_sub(a.t_ms) as f64 / 1e3,
            _ => 0.0,
        }
    }

    /// Scores a detector's draft with the configured weights and bands.
    pub(crate) fn score(&self, draft: Draft) -> Finding {
        let resource = draft.resource;
        let weight = self
            .config
            .scoring
            .weight(resource, self.totals.cpu_utilization);
        draft.score(weight, self.share_of(resource), &self.config.bands)
    }
}
