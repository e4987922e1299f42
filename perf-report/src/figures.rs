//! The per-span figures perf-report follows from dump to dump and from run
//! to run, each stated once in [`FIGURES`], in the spirit of ripgrep's
//! `FLAGS`: its name (the history's column, the trend series and the JSON
//! field), its unit, how a span gives it, whether `check` judges it and
//! against which bar, whether `history --span` draws its trend, and which
//! diff axis compares it. The check's metrics, the trend's series and the
//! diff axes' look-ups are derived from the list; a test below holds the
//! two ways of reading a figure together.
//!
//! [`SpanSummary`] is what a figure is read from: one span of one run, as
//! the history stores it ([`summarize`] makes it from a dump's callsite).

// Without the history, only the diff reads the list.
#![cfg_attr(not(feature = "history"), allow(dead_code, unreachable_pub))]

use perf_layer::dump::CallsiteStats;
use serde::Serialize;

use crate::diff::Axis;
use crate::label::labelled;
use crate::stats;
use crate::units::Unit;

/// One per-span figure.
#[derive(Debug)]
pub(crate) struct Figure {
    /// Its name wherever it is stored or written: `busy_p50_ns`.
    pub(crate) name: &'static str,
    /// What it counts, and so how it is shown.
    pub(crate) unit: Unit,
    /// How a span of a run gives it; `None` where the run did not measure
    /// it (allocation without the counting allocator).
    pub(crate) of: fn(&SpanSummary) -> Option<f64>,
    /// How one callsite of a dump gives it, where that needs nothing else
    /// of the run (a share of the run's self time does): the same value as
    /// [`of`](Self::of) of its summary when the run tracked allocation.
    pub(crate) of_callsite: Option<fn(&CallsiteStats) -> Option<f64>>,
    /// Whether `check` judges it, and how.
    pub(crate) check: Option<Check>,
    /// Whether `history --span` draws its trend.
    pub(crate) trend: Drawn,
    /// The diff axis that compares it, if any.
    pub(crate) axis: Option<Axis>,
}

/// How `check` judges a figure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    /// Its name in the check's outputs.
    pub(crate) metric: Metric,
    /// The bar it must clear.
    pub(crate) bar: Bar,
}

/// The bar a checked figure must clear to count as a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bar {
    /// The time bar (`--fail-on-regression`), with the history's spread
    /// at least 0.5% of its median, and a change confirmed by the busy-time
    /// distribution.
    Time,
    /// The allocation bar (`--fail-on-alloc-regression`): allocation is
    /// nearly deterministic, so the spread has no floor.
    Allocation,
}

/// When a figure's trend is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drawn {
    /// Never.
    Never,
    /// Always.
    Always,
    /// When some run has it.
    WhenMeasured,
}

labelled! {
    /// A metric [`check`](crate::history::check::check) judges, named as
    /// its outputs name it; the figure it reads, its unit and its bar are
    /// stated once beside it (`figures.rs`).
    pub enum Metric {
        /// Busy-time median.
        BusyP50 = "busy_p50",
        /// Busy-time 99th percentile.
        BusyP99 = "busy_p99",
        /// Bytes allocated while innermost, per call.
        AllocBytesPerCall = "alloc_bytes_per_call",
        /// Allocations made while innermost, per call.
        AllocsPerCall = "allocs_per_call",
    }
}

/// Every per-span figure, in the order the outputs list them (the check's
/// metrics and the trend's series keep this order).
pub(crate) const FIGURES: &[Figure] = &[
    Figure {
        name: "busy_p50_ns",
        unit: Unit::Ns,
        of: |s| Some(s.busy_p50_ns as f64),
        of_callsite: Some(|c| Some(c.busy_ns.p50 as f64)),
        check: Some(Check {
            metric: Metric::BusyP50,
            bar: Bar::Time,
        }),
        trend: Drawn::Always,
        axis: None,
    },
    Figure {
        name: "busy_p99_ns",
        unit: Unit::Ns,
        of: |s| Some(s.busy_p99_ns as f64),
        of_callsite: Some(|c| Some(c.busy_ns.p99 as f64)),
        check: Some(Check {
            metric: Metric::BusyP99,
            bar: Bar::Time,
        }),
        trend: Drawn::Always,
        axis: None,
    },
    Figure {
        name: "busy_mean_ns",
        unit: Unit::Ns,
        of: |s| Some(s.busy_mean_ns),
        of_callsite: Some(|c| Some(stats::ratio(c.busy_ns.sum as f64, c.busy_ns.count as f64))),
        check: None,
        trend: Drawn::Never,
        axis: Some(Axis::Time),
    },
    Figure {
        name: "idle_mean_ns",
        unit: Unit::Ns,
        of: |s| s.idle_mean_ns,
        of_callsite: Some(|c| Some(stats::ratio(c.idle_ns.sum as f64, c.idle_ns.count as f64))),
        check: None,
        trend: Drawn::Never,
        axis: Some(Axis::Wait),
    },
    Figure {
        name: "self_share",
        unit: Unit::Share,
        of: |s| Some(s.self_share),
        of_callsite: None,
        check: None,
        trend: Drawn::Always,
        axis: None,
    },
    Figure {
        name: "alloc_bytes_per_call",
        unit: Unit::Bytes,
        of: |s| s.alloc_bytes_per_call,
        of_callsite: Some(|c| {
            c.alloc
                .map(|a| stats::ratio(a.self_alloc_bytes as f64, c.calls as f64))
        }),
        check: Some(Check {
            metric: Metric::AllocBytesPerCall,
            bar: Bar::Allocation,
        }),
        trend: Drawn::Never,
        axis: Some(Axis::Allocation),
    },
    Figure {
        name: "allocs_per_call",
        unit: Unit::Number,
        of: |s| s.allocs_per_call,
        of_callsite: Some(|c| {
            c.alloc
                .map(|a| stats::ratio(a.self_allocs as f64, c.calls as f64))
        }),
        check: Some(Check {
            metric: Metric::AllocsPerCall,
            bar: Bar::Allocation,
        }),
        trend: Drawn::Never,
        axis: None,
    },
    Figure {
        name: "live_bytes",
        unit: Unit::Bytes,
        of: |s| s.live_bytes.map(|b| b as f64),
        of_callsite: Some(|c| c.heap.as_ref().map(|h| h.live_bytes as f64)),
        check: None,
        trend: Drawn::WhenMeasured,
        axis: Some(Axis::Memory),
    },
];

impl Metric {
    /// The figure it judges.
    pub(crate) fn figure(self) -> &'static Figure {
        FIGURES
            .iter()
            .find(|f| f.check.is_some_and(|c| c.metric == self))
            .expect("every metric is a figure's check (tested)")
    }

    /// The bar it must clear.
    pub(crate) fn bar(self) -> Bar {
        // Always `Some`: the figure was found by its check.
        self.figure().check.map_or(Bar::Time, |c| c.bar)
    }
}

impl Axis {
    /// The figure this axis compares.
    pub(crate) fn figure(self) -> &'static Figure {
        FIGURES
            .iter()
            .find(|f| f.axis == Some(self))
            .expect("every axis compares a figure (tested)")
    }

    /// Its figure, as callsite `cs` gives it.
    pub(crate) fn of(self, cs: &CallsiteStats) -> Option<f64> {
        self.figure().of_callsite.and_then(|of| of(cs))
    }
}

/// One span of one stored run: the figures the history keeps of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanSummary {
    /// The identity across runs ([`crate::callsite::Identity::key`]).
    pub identity: String,
    /// The span name.
    pub name: String,
    /// Its target.
    pub target: String,
    /// Spans closed.
    pub calls: u64,
    /// Busy-time median, ns.
    pub busy_p50_ns: u64,
    /// Busy-time 99th percentile, ns.
    pub busy_p99_ns: u64,
    /// Mean busy time, ns.
    pub busy_mean_ns: f64,
    /// Mean idle time (open but not entered: waiting), ns; `None` for runs
    /// stored before the history kept it (schema 2).
    pub idle_mean_ns: Option<f64>,
    /// Self time, ns.
    pub self_ns: u64,
    /// Its share of all self time of the run.
    pub self_share: f64,
    /// Bytes allocated while innermost, per call, where tracked.
    pub alloc_bytes_per_call: Option<f64>,
    /// Allocations made while innermost, per call, where tracked.
    pub allocs_per_call: Option<f64>,
    /// Live bytes at the end, where the live heap was recorded.
    pub live_bytes: Option<u64>,
}

/// The figures of one callsite the history keeps, under identity `key`;
/// `total_self_ns` is the run's self time in spans.
pub(crate) fn summarize(
    cs: &CallsiteStats,
    key: &str,
    total_self_ns: f64,
    allocations_tracked: bool,
) -> SpanSummary {
    let calls = cs.calls as f64;
    let alloc = cs.alloc.filter(|_| allocations_tracked);
    SpanSummary {
        identity: key.to_owned(),
        name: cs.name.clone(),
        target: cs.target.clone(),
        calls: cs.calls,
        busy_p50_ns: cs.busy_ns.p50,
        busy_p99_ns: cs.busy_ns.p99,
        busy_mean_ns: stats::ratio(cs.busy_ns.sum as f64, cs.busy_ns.count as f64),
        idle_mean_ns: Some(stats::ratio(cs.idle_ns.sum as f64, cs.idle_ns.count as f64)),
        self_ns: cs.self_ns.sum,
        self_share: stats::share(cs.self_ns.sum as f64, total_self_ns),
        alloc_bytes_per_call: alloc.map(|a| stats::ratio(a.self_alloc_bytes as f64, calls)),
        allocs_per_call: alloc.map(|a| stats::ratio(a.self_allocs as f64, calls)),
        live_bytes: cs.heap.as_ref().map(|h| h.live_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_metric_and_axis_has_one_figure() {
        for (i, f) in FIGURES.iter().enumerate() {
            assert!(
                FIGURES[..i].iter().all(|g| g.name != f.name),
                "{} twice",
                f.name
            );
        }
        let checked: Vec<Metric> = FIGURES
            .iter()
            .filter_map(|f| f.check.map(|c| c.metric))
            .collect();
        assert_eq!(checked, Metric::ALL, "the metrics in the figures' order");
        for &m in Metric::ALL {
            let n = FIGURES
                .iter()
                .filter(|f| f.check.is_some_and(|c| c.metric == m))
                .count();
            assert_eq!(n, 1, "{m}");
        }
        for &a in Axis::ALL {
            let n = FIGURES.iter().filter(|f| f.axis == Some(a)).count();
            assert_eq!(n, 1, "{a}");
            assert!(a.figure().of_callsite.is_some(), "{a}");
        }
    }

    #[test]
    fn a_callsite_gives_what_its_summary_gives() {
        use crate::analyze::test_dump::{MIB, Span, dump};
        let d = dump(
            1_000_000_000,
            &[
                Span::new("plain", &[(1_000, 9), (90_000, 1)]),
                Span::new("allocating", &[(5_000, 3)]).alloc(4_096, 7, 0, 0),
                Span::new("holding", &[(2_000, 4)])
                    .alloc(MIB, 1, MIB as i64, 4)
                    .live(vec![0, MIB]),
            ],
        );
        for cs in &d.callsites {
            let s = summarize(cs, "k", 1.0, true);
            for f in FIGURES {
                if let Some(of_callsite) = f.of_callsite {
                    let (a, b) = ((f.of)(&s), of_callsite(cs));
                    assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{}", f.name);
                }
            }
        }
    }
}
