//! From a dump to a per-callsite table, scored findings, the session-weight
//! view and a process summary.
//!
//! Every finding carries an impact score 0 to 100, documented in
//! [`crate::score`]; the triggers of each class are in [`crate::config::Thresholds`]
//! and `docs/report-format.md`.

use std::collections::HashMap;
use std::fmt;

use perf_layer::dump::{AlertKind, CallsiteStats, Dump, HistogramDump};
use serde::Serialize;

use crate::config::Config;
use crate::par;
use crate::score::finding;
pub use crate::score::{Class, Evidence, Finding, Resource, Severity, impact_score};
use crate::stats::{self, LinearFit};
use crate::units::Unit;

/// Where a callsite lives in the code: its identity across dumps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// Span target (usually the module path).
    pub target: String,
    /// Span name.
    pub name: String,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
}

impl Location {
    /// The location of a dump's callsite.
    pub fn of(cs: &CallsiteStats) -> Self {
        Self {
            target: cs.target.clone(),
            name: cs.name.clone(),
            file: cs.file.clone(),
            line: cs.line,
        }
    }

    /// `file:line`, `file`, or `target` when the file is unknown.
    pub fn source(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => self.target.clone(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.source())
    }
}

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
    /// Sum of RSS deltas between open and close, `None` without a sampler.
    pub rss_delta_bytes: Option<i64>,
}

/// One span in the session-weight view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightRow {
    /// The span.
    pub location: Location,
    /// Its share of all self time.
    pub cpu_share: f64,
    /// Its share of all self-allocated bytes, `None` when not tracked.
    pub memory_share: Option<f64>,
    /// Its share of all calls.
    pub frequency_share: f64,
    /// The weighted mix, 0 to 100.
    pub weight: f64,
}

/// The process as the sampler saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessSummary {
    /// Timeline samples.
    pub samples: usize,
    /// RSS at the first sample, bytes.
    pub rss_first_bytes: u64,
    /// RSS at the last sample, bytes.
    pub rss_last_bytes: u64,
    /// Median RSS, bytes.
    pub rss_median_bytes: u64,
    /// Peak RSS, bytes.
    pub rss_peak_bytes: u64,
    /// Least-squares fit of RSS (bytes) over time (seconds), when there are
    /// at least two samples at distinct times.
    pub rss_trend: Option<LinearFit>,
    /// Mean CPU, percent of one core.
    pub cpu_mean_percent: f64,
    /// Peak CPU, percent of one core.
    pub cpu_max_percent: f64,
    /// Share of samples at or above the saturation threshold.
    pub cpu_saturated_share: f64,
    /// CPU alerts raised.
    pub cpu_alerts: usize,
    /// RSS alerts raised.
    pub rss_alerts: usize,
}

/// Run-wide totals the shares are computed against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Run duration, ns (the sum of the parts' durations for merged dumps).
    pub duration_ns: u64,
    /// Sum of every callsite's self time, ns: all instrumented work.
    pub self_ns: u64,
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

/// Everything the analysis found in one dump.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Analysis {
    /// The program that ran.
    pub program: String,
    /// Run-wide totals.
    pub totals: Totals,
    /// Per-callsite table, by self time, largest first.
    pub callsites: Vec<CallsiteRow>,
    /// Findings, by impact score, highest first.
    pub findings: Vec<Finding>,
    /// The session-weight view, heaviest first.
    pub weights: Vec<WeightRow>,
    /// The process as the sampler saw it.
    pub process: ProcessSummary,
    /// Caveats about the data (dropped spans, untracked allocation...).
    pub notes: Vec<String>,
}

impl Analysis {
    /// The most severe finding, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// What the analysis takes from a callsite's busy-time histogram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BusySummary {
    /// p50, p90, p99, p99.9 and max.
    quantiles: [u64; 5],
    /// The time calls above p90 spent beyond it.
    tail_excess: f64,
}

impl BusySummary {
    /// Everything the analysis needs from a decoded busy-time histogram, in
    /// one walk of its recorded values.
    #[cfg(test)]
    pub(crate) fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        Self::of_recorded(
            &h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>(),
        )
    }

    /// [`of`](Self::of) from the histogram's recorded buckets,
    /// `(value_iterated_to, count)` in order, as
    /// `HistogramDump::recorded_buckets` reads them without building the
    /// histogram. Its maximum is the last bucket's value, as `max()` is.
    pub(crate) fn of_recorded(recorded: &[(u64, u64)]) -> Self {
        let Some(&(max, _)) = recorded.last() else {
            return Self {
                quantiles: [0; 5],
                // The empty sum, as `stats::excess_above` gives it (-0.0).
                tail_excess: stats::excess_above_recorded(&[], 0),
            };
        };
        // `Histogram::value_at_quantile` over the recorded buckets only (the
        // running count does not move at empty ones): the first bucket whose
        // running count reaches ceil(q x total), at least 1. The counts add
        // up without overflow: decoding refuses histograms whose do not.
        let total = recorded
            .iter()
            .fold(0u64, |total, &(_, count)| total.saturating_add(count));
        let at = |quantile: f64| {
            let wanted = ((quantile * total as f64).ceil() as u64).max(1);
            let mut running = 0u64;
            for &(value, count) in recorded {
                running = running.saturating_add(count);
                if running >= wanted {
                    return value;
                }
            }
            0
        };
        let p90 = at(0.9);
        Self {
            quantiles: [at(0.5), p90, at(0.99), at(0.999), max],
            tail_excess: stats::excess_above_recorded(recorded, p90),
        }
    }

    /// From the load's validation when it saw this encoding, else decoded
    /// here; the stored summary (and no tail excess) when it does not decode.
    fn for_stored(stored: &HistogramDump) -> Self {
        if let Some(known) = busy_cache::get(&stored.encoded) {
            return known;
        }
        match stored.recorded_buckets() {
            Ok(recorded) => Self::of_recorded(&recorded),
            Err(_) => Self {
                quantiles: [stored.p50, stored.p90, stored.p99, stored.p999, stored.max],
                tail_excess: 0.0,
            },
        }
    }
}

/// Busy-time summaries that [`crate::load`] computed while validating each
/// histogram, so that the analysis of a freshly loaded dump decodes none of
/// them again. Keyed by the whole encoding (a summary is a function of it
/// alone), so a dump edited or merged since its load simply misses.
pub(crate) mod busy_cache {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};

    use super::BusySummary;

    /// The most encoding bytes kept; past it the cache starts over.
    const MAX_KEY_BYTES: usize = 32 << 20;

    #[derive(Default)]
    struct Cache {
        entries: HashMap<Box<str>, BusySummary>,
        key_bytes: usize,
    }

    static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

    /// Remembers the summaries of one load's busy-time histograms.
    pub(crate) fn insert_all<'a>(summaries: impl Iterator<Item = (&'a str, BusySummary)>) {
        let mut guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = guard.get_or_insert_with(Cache::default);
        for (encoded, summary) in summaries {
            if cache.key_bytes + encoded.len() > MAX_KEY_BYTES {
                *cache = Cache::default();
            }
            if encoded.len() > MAX_KEY_BYTES {
                continue;
            }
            if cache.entries.insert(encoded.into(), summary).is_none() {
                cache.key_bytes += encoded.len();
            }
        }
    }

    pub(super) fn get(encoded: &str) -> Option<BusySummary> {
        let guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref()?.entries.get(encoded).copied()
    }
}

/// Analyzes a dump.
///
/// Never fails: figures that cannot be computed (no timeline, allocation not
/// tracked, an empty run) leave their findings out and add a note.
///
/// ```
/// use perf_layer::dump::Dump;
/// let analysis = perf_report::analyze::analyze(&Dump::empty("demo"), &perf_report::Config::default());
/// assert!(analysis.findings.is_empty());
/// ```
pub fn analyze(dump: &Dump, config: &Config) -> Analysis {
    let t = &config.thresholds;
    let g = &config.gains;

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
    // (fraction = estimated / (duration x threads)); 1 when unknown, which
    // overstates utilisation and so understates what waiting can give back.
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

    let process = process_summary(dump, config);

    let mut rows = Vec::with_capacity(dump.callsites.len());
    // The time calls above p90 spent beyond it, per callsite. Histograms are
    // decoded one at a time and dropped: a hostile dump may hold many large ones.
    let mut tail_excess = Vec::with_capacity(dump.callsites.len());
    let busy = par::map(&dump.callsites, |cs| BusySummary::for_stored(&cs.busy_ns));
    for (cs, busy) in dump.callsites.iter().zip(busy) {
        let [p50, p90, p99, p999, max] = busy.quantiles;
        tail_excess.push(busy.tail_excess);
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
        });
    }

    let mut findings = Vec::new();
    let per_span_ns = if dump.overhead.per_span_ns.is_finite() {
        dump.overhead.per_span_ns.max(0.0)
    } else {
        0.0
    };

    // A significant RSS trend, shared by callsite and process leak findings.
    let leak_trend = process.rss_trend.filter(|fit| {
        let span_s = timeline_span_s(dump);
        let growth = fit.slope * span_s;
        fit.n >= t.leak_min_samples
            && fit.r2 >= t.leak_min_r2
            && fit.slope > 0.0
            && growth >= t.leak_min_growth_bytes as f64
            && growth >= t.leak_min_growth_share * process.rss_first_bytes as f64
    });

    // Parent callsites of each callsite, from the call edges.
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for e in &dump.edges {
        if e.parent != e.child {
            parents.entry(e.child).or_default().push(e.parent);
        }
    }
    let net_of: HashMap<u32, i64> = dump
        .callsites
        .iter()
        .filter_map(|c| {
            c.alloc
                .filter(|_| alloc_tracked)
                .map(|a| (c.id, a.net_bytes))
        })
        .collect();
    // Memory a span keeps is a hand-off, not a leak, when a caller frees it:
    // every ancestor must still hold at least half of it.
    let kept_by_ancestors = |id: u32, net: i64| {
        let mut seen = std::collections::HashSet::from([id]);
        let mut todo: Vec<u32> = parents.get(&id).cloned().unwrap_or_default();
        while let Some(p) = todo.pop() {
            if !seen.insert(p) {
                continue;
            }
            if let Some(&pn) = net_of.get(&p) {
                if (pn as f64) < 0.5 * net as f64 {
                    return false;
                }
            }
            todo.extend(parents.get(&p).into_iter().flatten().copied());
        }
        true
    };
    // (class, callsite id) -> index in `findings`, for the innermost rule.
    let mut nested: HashMap<(Class, u32), usize> = HashMap::new();
    for (i, (cs, row)) in dump.callsites.iter().zip(&rows).enumerate() {
        let loc = &row.location;
        let calls_f = cs.calls as f64;
        let mean_self = stats::ratio(cs.self_ns.sum as f64, calls_f);

        // Hot loop first: when it fires it is the more specific diagnosis of
        // the same self time, so the hot spot finding is left out.
        let is_hot_loop = cs.calls >= t.hot_loop_min_calls
            && mean_self <= t.hot_loop_max_mean_self_ns
            && row.self_share >= t.hot_loop_min_share;
        if is_hot_loop {
            let instr = stats::share(per_span_ns, mean_self + per_span_ns);
            let mut evidence = vec![
                Evidence::new(
                    "calls",
                    calls_f,
                    Unit::Count,
                    Some(t.hot_loop_min_calls as f64),
                ),
                Evidence::new(
                    "mean self time per call",
                    mean_self,
                    Unit::Ns,
                    Some(t.hot_loop_max_mean_self_ns),
                ),
                Evidence::new(
                    "self time share",
                    row.self_share,
                    Unit::Share,
                    Some(t.hot_loop_min_share),
                ),
            ];
            if per_span_ns > 0.0 {
                evidence.push(Evidence::new(
                    "instrumentation share of each call",
                    instr,
                    Unit::Share,
                    None,
                ));
            }
            findings.push(finding(
                Class::HotLoop,
                Some(loc.clone()),
                Resource::Time,
                row.self_share,
                g.hot_loop,
                0.9,
                format!(
                    "{} calls at {} each add up to {} of self time",
                    crate::units::count(calls_f),
                    crate::units::ns(mean_self),
                    crate::units::pct(row.self_share)
                ),
                evidence,
                config,
            ));
        } else if row.self_share >= t.hot_spot_min_share {
            // Instrumentation inflates the measured self time; discount by it.
            let instr = stats::share(per_span_ns * calls_f, cs.self_ns.sum as f64);
            findings.push(finding(
                Class::HotSpot,
                Some(loc.clone()),
                Resource::Time,
                row.self_share,
                g.hot_spot,
                0.95 * (1.0 - instr),
                format!(
                    "{} of all self time ({} over {} calls)",
                    crate::units::pct(row.self_share),
                    crate::units::ns(cs.self_ns.sum as f64),
                    crate::units::count(calls_f)
                ),
                vec![
                    Evidence::new(
                        "self time share",
                        row.self_share,
                        Unit::Share,
                        Some(t.hot_spot_min_share),
                    ),
                    Evidence::new("self time", cs.self_ns.sum as f64, Unit::Ns, None),
                    Evidence::new("calls", calls_f, Unit::Count, None),
                ],
                config,
            ));
        }

        // Tail latency, on the whole busy-time distribution.
        if cs.calls >= t.tail_min_calls && row.busy_p50_ns > 0 {
            let p50 = row.busy_p50_ns as f64;
            let p99_ratio = row.busy_p99_ns as f64 / p50;
            let max_ratio = row.busy_max_ns as f64 / p50;
            if p99_ratio >= t.tail_p99_over_p50 || max_ratio >= t.tail_max_over_p50 {
                let excess = tail_excess[i];
                let cost = stats::share(excess, total_self_f);
                if cost >= t.tail_min_share {
                    nested.insert((Class::TailLatency, cs.id), findings.len());
                    findings.push(finding(
                        Class::TailLatency,
                        Some(loc.clone()),
                        Resource::Time,
                        cost,
                        g.tail_latency,
                        stats::sample_confidence(cs.calls, 50.0),
                        format!(
                            "p99 {} and max {} against p50 {}; calls above p90 spend {} beyond it",
                            crate::units::ns(row.busy_p99_ns as f64),
                            crate::units::ns(row.busy_max_ns as f64),
                            crate::units::ns(p50),
                            crate::units::ns(excess)
                        ),
                        vec![
                            Evidence::new(
                                "p99 / p50",
                                p99_ratio,
                                Unit::Ratio,
                                Some(t.tail_p99_over_p50),
                            ),
                            Evidence::new(
                                "max / p50",
                                max_ratio,
                                Unit::Ratio,
                                Some(t.tail_max_over_p50),
                            ),
                            Evidence::new("p50", p50, Unit::Ns, None),
                            Evidence::new("p99", row.busy_p99_ns as f64, Unit::Ns, None),
                            Evidence::new(
                                "tail excess share",
                                cost,
                                Unit::Share,
                                Some(t.tail_min_share),
                            ),
                        ],
                        config,
                    ));
                }
            }
        }

        if let Some(a) = &row.alloc {
            let per_call = a.self_bytes_per_call >= t.alloc_min_bytes_per_call
                || a.self_allocs_per_call >= t.alloc_min_allocs_per_call;
            if (per_call && a.alloc_share >= t.alloc_min_share)
                || a.alloc_share >= t.alloc_dominant_share
            {
                findings.push(finding(
                    Class::AllocationHeavy,
                    Some(loc.clone()),
                    Resource::Allocation,
                    a.alloc_share,
                    g.allocation_heavy,
                    0.9,
                    format!(
                        "{} and {} allocations per call; {} of all bytes allocated",
                        crate::units::bytes(a.self_bytes_per_call),
                        crate::units::count(a.self_allocs_per_call.round()),
                        crate::units::pct(a.alloc_share)
                    ),
                    vec![
                        Evidence::new(
                            "bytes per call",
                            a.self_bytes_per_call,
                            Unit::Bytes,
                            Some(t.alloc_min_bytes_per_call),
                        ),
                        Evidence::new(
                            "allocations per call",
                            a.self_allocs_per_call,
                            Unit::Count,
                            Some(t.alloc_min_allocs_per_call),
                        ),
                        Evidence::new(
                            "allocation share",
                            a.alloc_share,
                            Unit::Share,
                            Some(t.alloc_min_share),
                        ),
                    ],
                    config,
                ));
            }

            let retaining = stats::share(a.calls_retaining as f64, calls_f);
            if a.net_retained_bytes > 0
                && a.net_retained_bytes as u64 >= t.leak_min_net_bytes
                && retaining >= t.leak_min_retaining_ratio
                && kept_by_ancestors(cs.id, a.net_retained_bytes)
            {
                nested.insert((Class::LeakSuspect, cs.id), findings.len());
                let base = if process.rss_peak_bytes > 0 {
                    process.rss_peak_bytes as f64
                } else {
                    total_self_alloc as f64
                };
                let cost = stats::share(a.net_retained_bytes as f64, base);
                let mut evidence = vec![
                    Evidence::new(
                        "net retained",
                        a.net_retained_bytes as f64,
                        Unit::Bytes,
                        Some(t.leak_min_net_bytes as f64),
                    ),
                    Evidence::new(
                        "calls retaining",
                        retaining,
                        Unit::Share,
                        Some(t.leak_min_retaining_ratio),
                    ),
                    Evidence::new(
                        "retained per call",
                        stats::ratio(a.net_retained_bytes as f64, calls_f),
                        Unit::Bytes,
                        None,
                    ),
                ];
                if let Some(fit) = &leak_trend {
                    evidence.extend(trend_evidence(fit, t.leak_min_r2));
                }
                let confidence = retaining * if leak_trend.is_some() { 1.0 } else { 0.7 };
                findings.push(finding(
                    Class::LeakSuspect,
                    Some(loc.clone()),
                    Resource::Memory,
                    cost,
                    g.leak_suspect,
                    confidence,
                    format!(
                        "kept {} ({} per call) and {} of its calls closed holding memory{}",
                        crate::units::bytes(a.net_retained_bytes as f64),
                        crate::units::bytes(stats::ratio(a.net_retained_bytes as f64, calls_f)),
                        crate::units::pct(retaining),
                        match &leak_trend {
                            Some(fit) => format!(
                                "; process RSS grows {}/s (R² {:.2})",
                                crate::units::bytes(fit.slope),
                                fit.r2
                            ),
                            None => String::new(),
                        }
                    ),
                    evidence,
                    config,
                ));
            }
        }

        let idle_ratio = row.idle_share;
        let wait_share = stats::share(cs.idle_ns.sum as f64, run_wall_ns);
        // Concurrent tasks wait at the same time, and a wait overlapped by
        // other work is not on the critical path: waiting can give back at
        // most the wall time in which the recording threads were not busy.
        let wait_cost = wait_share.min(1.0 - utilization);
        if idle_ratio >= t.wait_min_idle_ratio && wait_share >= t.wait_min_share {
            nested.insert((Class::Waiting, cs.id), findings.len());
            findings.push(finding(
                Class::Waiting,
                Some(loc.clone()),
                Resource::WallTime,
                wait_cost,
                g.waiting,
                idle_ratio * stats::sample_confidence(cs.calls, 2.0),
                format!(
                    "idle {} of its wall time ({} idle in total); the threads were busy {} of the run, so waiting can give back at most {}",
                    crate::units::pct(idle_ratio),
                    crate::units::ns(cs.idle_ns.sum as f64),
                    crate::units::pct(utilization),
                    crate::units::pct(wait_cost)
                ),
                vec![
                    Evidence::new(
                        "idle / wall",
                        idle_ratio,
                        Unit::Share,
                        Some(t.wait_min_idle_ratio),
                    ),
                    Evidence::new(
                        "idle share of the run",
                        wait_share,
                        Unit::Share,
                        Some(t.wait_min_share),
                    ),
                    Evidence::new("thread utilisation", utilization, Unit::Share, None),
                    Evidence::new("busy time", cs.busy_ns.sum as f64, Unit::Ns, None),
                    Evidence::new("idle time", cs.idle_ns.sum as f64, Unit::Ns, None),
                ],
                config,
            ));
        }
    }

    // Innermost rule: a parent waits whenever its child waits, has the
    // child's slow calls in its own tail, and holds what its child keeps.
    // Report the child, where the cause is; a pair of mutually recursive
    // spans keeps both.
    let edge_set: std::collections::HashSet<(u32, u32)> =
        dump.edges.iter().map(|e| (e.parent, e.child)).collect();
    let mut drop_idx: Vec<usize> = Vec::new();
    for e in &dump.edges {
        if e.parent == e.child || edge_set.contains(&(e.child, e.parent)) {
            continue;
        }
        for class in [Class::Waiting, Class::TailLatency, Class::LeakSuspect] {
            if nested.contains_key(&(class, e.child)) {
                if let Some(&i) = nested.get(&(class, e.parent)) {
                    drop_idx.push(i);
                }
            }
        }
    }
    drop_idx.sort_unstable();
    drop_idx.dedup();
    for i in drop_idx.into_iter().rev() {
        findings.remove(i);
    }

    let has_callsite_leak = findings.iter().any(|f| f.class == Class::LeakSuspect);
    if let (Some(fit), false) = (&leak_trend, has_callsite_leak) {
        let growth = fit.slope * timeline_span_s(dump);
        findings.push(finding(
            Class::LeakSuspect,
            None,
            Resource::Memory,
            stats::share(growth, process.rss_peak_bytes as f64),
            g.leak_suspect,
            fit.r2 * stats::sample_confidence(fit.n as u64, 4.0),
            format!(
                "process RSS grows {}/s over the run (R² {:.2}, {} samples) and no span holds it",
                crate::units::bytes(fit.slope),
                fit.r2,
                fit.n
            ),
            trend_evidence(fit, t.leak_min_r2),
            config,
        ));
    }

    process_findings(dump, config, &process, &mut findings);
    // A finding that gives nothing back (all of it instrumentation, or a
    // process figure with no excess) is noise, not advice.
    findings.retain(|f| f.score >= 0.1);

    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.class.cmp(&b.class))
            .then_with(|| a.location.cmp(&b.location))
    });

    let weights = session_weights(&rows, config, alloc_tracked, total_calls as f64);

    rows.sort_by(|a, b| {
        b.self_total_ns
            .cmp(&a.self_total_ns)
            .then_with(|| a.location.cmp(&b.location))
    });

    let mut notes = Vec::new();
    if dump.callsites_dropped_spans > 0 {
        notes.push(format!(
            "{} spans were not recorded because the callsite limit was reached; raise max_callsites",
            dump.callsites_dropped_spans
        ));
    }
    if !alloc_tracked {
        notes.push(
            "allocation was not tracked: install perf-layer's counting allocator for allocation and leak findings"
                .to_owned(),
        );
    }
    if process.samples == 0 {
        notes.push(
            "no process timeline: enable the sampler for RSS trends and CPU findings".to_owned(),
        );
    }
    let overhead_share = if dump.overhead.fraction_of_run.is_finite() {
        dump.overhead.fraction_of_run.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if overhead_share >= 0.05 {
        notes.push(format!(
            "instrumentation costs an estimated {} of the run: treat shares of very cheap spans with care",
            crate::units::pct(overhead_share)
        ));
    }

    Analysis {
        program: dump.run.program.clone(),
        totals: Totals {
            duration_ns: dump.run.duration_ns,
            self_ns: u64::try_from(total_self).unwrap_or(u64::MAX),
            calls: u64::try_from(total_calls).unwrap_or(u64::MAX),
            self_alloc_bytes: alloc_tracked
                .then(|| u64::try_from(total_self_alloc).unwrap_or(u64::MAX)),
            overhead_share,
            recording_threads,
            utilization,
        },
        callsites: rows,
        findings,
        weights,
        process,
        notes,
    }
}

fn trend_evidence(fit: &LinearFit, min_r2: f64) -> Vec<Evidence> {
    vec![
        Evidence::new("RSS slope", fit.slope, Unit::BytesPerSec, None),
        Evidence::new("RSS fit R²", fit.r2, Unit::Number, Some(min_r2)),
        Evidence::new("timeline samples", fit.n as f64, Unit::Count, None),
    ]
}

fn timeline_span_s(dump: &Dump) -> f64 {
    let s = &dump.timeline.samples;
    match (s.first(), s.last()) {
        (Some(a), Some(b)) => b.t_ms.saturating_sub(a.t_ms) as f64 / 1e3,
        _ => 0.0,
    }
}

fn process_summary(dump: &Dump, config: &Config) -> ProcessSummary {
    let samples = &dump.timeline.samples;
    let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_bytes).collect();
    rss.sort_unstable();
    let points: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t_ms as f64 / 1e3, s.rss_bytes as f64))
        .collect();
    let cpu: Vec<f64> = samples
        .iter()
        .map(|s| s.cpu_percent)
        .filter(|c| c.is_finite())
        .collect();
    let saturated = cpu
        .iter()
        .filter(|&&c| c >= config.thresholds.cpu_saturated_percent)
        .count();
    ProcessSummary {
        samples: samples.len(),
        rss_first_bytes: samples.first().map_or(0, |s| s.rss_bytes),
        rss_last_bytes: samples.last().map_or(0, |s| s.rss_bytes),
        rss_median_bytes: rss.get(rss.len() / 2).copied().unwrap_or(0),
        rss_peak_bytes: rss.last().copied().unwrap_or(0),
        rss_trend: stats::least_squares(&points),
        cpu_mean_percent: if cpu.is_empty() {
            0.0
        } else {
            cpu.iter().sum::<f64>() / cpu.len() as f64
        },
        cpu_max_percent: cpu.iter().copied().fold(0.0, f64::max),
        cpu_saturated_share: stats::share(saturated as f64, cpu.len() as f64),
        cpu_alerts: dump
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Cpu)
            .count(),
        rss_alerts: dump
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Rss)
            .count(),
    }
}

fn process_findings(dump: &Dump, config: &Config, p: &ProcessSummary, out: &mut Vec<Finding>) {
    let t = &config.thresholds;
    let g = &config.gains;
    let duration_ms = dump.run.duration_ns as f64 / 1e6;
    let interval_ms = dump.timeline.interval_ms as f64;

    // CPU: the share of samples at saturation; alerts alone count one
    // sampler interval each.
    let (cpu_share, cpu_conf) = if p.samples >= 2 {
        let conf = stats::sample_confidence(p.samples as u64, 4.0);
        (
            p.cpu_saturated_share,
            if p.cpu_alerts > 0 {
                conf.max(0.9)
            } else {
                conf
            },
        )
    } else if p.cpu_alerts > 0 {
        (
            stats::share(p.cpu_alerts as f64 * interval_ms, duration_ms),
            0.9,
        )
    } else {
        (0.0, 0.0)
    };
    if (p.samples >= 2 && cpu_share >= t.cpu_min_saturated_share)
        || (p.cpu_alerts > 0 && cpu_share > 0.0)
    {
        out.push(finding(
            Class::ProcessCpu,
            None,
            Resource::WallTime,
            cpu_share,
            g.process,
            cpu_conf,
            format!(
                "CPU at or above {}% of a core in {} of the samples (peak {:.0}%, {} CPU alerts)",
                t.cpu_saturated_percent,
                crate::units::pct(cpu_share),
                p.cpu_max_percent,
                p.cpu_alerts
            ),
            vec![
                Evidence::new(
                    "saturated share of samples",
                    cpu_share,
                    Unit::Share,
                    Some(t.cpu_min_saturated_share),
                ),
                Evidence::new("peak CPU", p.cpu_max_percent, Unit::CpuPercent, None),
                Evidence::new("mean CPU", p.cpu_mean_percent, Unit::CpuPercent, None),
                Evidence::new("CPU alerts", p.cpu_alerts as f64, Unit::Count, None),
            ],
            config,
        ));
    }

    let spike = p.rss_peak_bytes.saturating_sub(p.rss_median_bytes);
    let spiking = p.samples >= 2
        && p.rss_peak_bytes as f64 >= t.rss_spike_over_median * p.rss_median_bytes as f64
        && spike >= t.rss_spike_min_bytes;
    if spiking || p.rss_alerts > 0 {
        let conf = if p.rss_alerts > 0 {
            0.9
        } else {
            stats::sample_confidence(p.samples as u64, 4.0)
        };
        // The part of peak memory above the usual level, or above the
        // threshold the user set for alerts, whichever is larger.
        let peak = dump
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Rss && a.value.is_finite())
            .map(|a| a.value)
            .fold(p.rss_peak_bytes as f64, f64::max);
        let over_threshold = dump
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Rss && a.threshold.is_finite())
            .map(|a| stats::share(peak - a.threshold, peak))
            .fold(0.0, f64::max);
        let cost = stats::share(spike as f64, peak).max(over_threshold);
        out.push(finding(
            Class::ProcessMemory,
            None,
            Resource::Memory,
            cost,
            g.process,
            conf,
            format!(
                "RSS peaked at {} against a median of {}{}",
                crate::units::bytes(peak),
                crate::units::bytes(p.rss_median_bytes as f64),
                match dump.config.rss_alert_bytes {
                    Some(limit) if p.rss_alerts > 0 => format!(
                        "; {} RSS alerts above the {} threshold",
                        p.rss_alerts,
                        crate::units::bytes(limit as f64)
                    ),
                    _ => String::new(),
                }
            ),
            vec![
                Evidence::new("peak RSS", p.rss_peak_bytes as f64, Unit::Bytes, None),
                Evidence::new("median RSS", p.rss_median_bytes as f64, Unit::Bytes, None),
                Evidence::new(
                    "peak / median",
                    stats::ratio(p.rss_peak_bytes as f64, p.rss_median_bytes as f64),
                    Unit::Ratio,
                    Some(t.rss_spike_over_median),
                ),
                Evidence::new("RSS alerts", p.rss_alerts as f64, Unit::Count, None),
            ],
            config,
        ));
    }
}

fn session_weights(
    rows: &[CallsiteRow],
    config: &Config,
    alloc_tracked: bool,
    total_calls: f64,
) -> Vec<WeightRow> {
    let w = &config.weights;
    // Without allocation data the memory weight is shared out between CPU
    // and frequency in proportion, so weights still span 0 to 100.
    let (cpu_w, mem_w, freq_w) = if alloc_tracked {
        (w.cpu, w.memory, w.frequency)
    } else {
        let rest = w.cpu + w.frequency;
        if rest > 0.0 {
            (
                w.cpu / rest * (rest + w.memory),
                0.0,
                w.frequency / rest * (rest + w.memory),
            )
        } else {
            (0.0, 0.0, 0.0)
        }
    };
    let mut out: Vec<WeightRow> = rows
        .iter()
        .map(|r| {
            let memory_share = r.alloc.as_ref().map(|a| a.alloc_share);
            let frequency_share = stats::share(r.calls as f64, total_calls);
            let raw = cpu_w * r.self_share
                + mem_w * memory_share.unwrap_or(0.0)
                + freq_w * frequency_share;
            WeightRow {
                location: r.location.clone(),
                cpu_share: r.self_share,
                memory_share,
                frequency_share,
                weight: ((100.0 * raw).clamp(0.0, 100.0) * 10.0).round() / 10.0,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.location.cmp(&b.location))
    });
    out
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    #[test]
    fn busy_summary_matches_the_histogram_functions() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for values in [0usize, 1, 2, 3, 10, 999, 5_000] {
            let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
            for _ in 0..values {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                h.record((1 + seed % 1_000) << (seed % 30)).unwrap();
            }
            let s = BusySummary::of(&h);
            let q = |quantile| {
                if h.is_empty() {
                    0
                } else {
                    h.value_at_quantile(quantile)
                }
            };
            let max = if h.is_empty() { 0 } else { h.max() };
            assert_eq!(s.quantiles, [q(0.5), q(0.9), q(0.99), q(0.999), max]);
            assert_eq!(
                s.tail_excess.to_bits(),
                stats::excess_above(&h, q(0.9)).to_bits()
            );
        }
    }
}
