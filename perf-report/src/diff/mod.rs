//! Comparing two dumps callsite by callsite, on four axes, each with its
//! own verdict: time, wait, allocation and memory.
//!
//! # The significance rule
//!
//! A callsite's **time** verdict (`time.rs`) uses the whole busy-time HDR
//! distributions `B` (base) and `N` (new), with `n` and `m` calls and noise
//! threshold `T` ([`DiffOptions::threshold`], default 10%):
//!
//! 1. both sides have at least [`DiffOptions::min_calls`] calls;
//! 2. the relative change of the exact mean busy time per call,
//!    `Δ = mean_N / mean_B - 1`, is beyond the threshold: `|Δ| > T`; with
//!    both sides timed on the CPU, each mean less its preempted share (the
//!    time another thread or process had the core is not the span's code);
//! 3. the distribution moved the same way, shown by either
//!    * the one-sided two-sample Kolmogorov-Smirnov statistic in the
//!      direction of `Δ` (`D+ = sup (F_B - F_N)` for a slow-down,
//!      `D- = sup (F_N - F_B)` for a speed-up), computed on the histograms,
//!      above its critical value `c(α) sqrt((n + m) / (n m))`,
//!      `c(α) = sqrt(-ln(α) / 2)`, α = [`DiffOptions::alpha`] (default 0.01), or
//!    * at least two of p50, p90, p99, p99.9 changing by more than `T` in
//!      the direction of `Δ` (a shift of the tail, which KS is blind to).
//!
//! Then it is regressed when `Δ > 0`, improved when `Δ < 0`. The **wait**
//! verdict (`wait.rs`) applies the same rule to the idle-time distributions
//! (the time a span was open but not entered: its `.await`s), for a span
//! idle at least [`DiffOptions::min_wait_share`] of its wall time in one
//! of the dumps: a larger pool that halves a query's wait shows there, where
//! its busy time does not move (a change under
//! [`DiffOptions::min_wait_ns_per_call`] is unchanged). The **allocation**
//! verdict (`alloc.rs`) compares exact bytes per call:
//! regressed (improved) when it grows (shrinks) by more than `T` and by at
//! least [`DiffOptions::min_alloc_bytes_per_call`]. The **memory** verdict
//! (`memory.rs`) compares the bytes the callsite made that are still live at
//! the end (the counting allocator's tags): regressed (improved) when they
//! grow (shrink) by more than `T` and by at least
//! [`DiffOptions::min_live_bytes`]; the growth after warm-up is shown beside.
//!
//! The overall verdict is `regressed` when some axis regressed and none
//! improved, `improved` the other way round, `mixed` when one axis got
//! better and another worse (a span much faster that now allocates more is
//! mixed, never regressed), and `unchanged` otherwise. Call counts are
//! reported but do not decide: they follow the workload, not the code.
//!
//! Over 400 lines: the public diff types and their documentation, the
//! pairing of callsites and the overall verdict; each axis's rule is in its
//! own file (`time.rs`, `wait.rs`, `alloc.rs`, `memory.rs`).

use std::collections::HashMap;

use perf_layer::dump::{CallsiteStats, Dump};
use serde::Serialize;

use crate::analyze::pictures::Distribution;
use crate::callsite::{Identity, Location, identities, qualify};
use crate::label::labelled;

mod alloc;
mod memory;
mod time;
mod wait;

/// How two dumps are compared.
///
/// # Default values
///
/// | field | default |
/// |---|---|
/// | `threshold` | 0.10 (10%) |
/// | `alpha` | 0.01 |
/// | `min_calls` | 5 |
/// | `min_alloc_bytes_per_call` | 16 |
/// | `min_live_bytes` | 1 MiB |
/// | `min_wait_share` | 0.10 (10%) |
/// | `min_wait_ns_per_call` | 5 µs |
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DiffOptions {
    /// The noise threshold: relative changes at or below it are unchanged.
    pub threshold: f64,
    /// The significance level of the Kolmogorov-Smirnov test.
    pub alpha: f64,
    /// Fewer calls than this on either side: no time verdict.
    pub min_calls: u64,
    /// Smaller absolute changes in bytes per call are unchanged.
    pub min_alloc_bytes_per_call: f64,
    /// Smaller absolute changes in live bytes at the end are unchanged.
    pub min_live_bytes: u64,
    /// A span idle less than this share of its wall time in both dumps
    /// does not wait: no wait verdict (a synchronous span's few
    /// nanoseconds between its creation and its entry are not a wait).
    pub min_wait_share: f64,
    /// Smaller absolute changes in the mean wait per call are unchanged: a
    /// task's wake-up alone moves by microseconds.
    pub min_wait_ns_per_call: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            threshold: 0.10,
            alpha: 0.01,
            min_calls: 5,
            min_alloc_bytes_per_call: 16.0,
            min_live_bytes: 1024 * 1024,
            min_wait_share: 0.10,
            min_wait_ns_per_call: 5_000.0,
        }
    }
}

impl DiffOptions {
    /// Sets [`DiffOptions::threshold`] (a fraction: 0.05 is 5%).
    #[must_use]
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }
}

labelled! {
    /// What happened to a callsite between two dumps, on one axis or
    /// overall; and to one metric of a span between its run history and a
    /// new run (`history::check`, which gives only regressed, improved or
    /// unchanged).
    pub enum Verdict {
        /// Significantly worse: slower, allocating more per call, or holding
        /// more at the end (overall: some axis worse, none better).
        Regressed = "regressed",
        /// Some axis better and another worse, e.g. faster but allocating
        /// more (overall only).
        Mixed = "mixed",
        /// Significantly better (overall: some axis better, none worse).
        Improved = "improved",
        /// Within the noise threshold, or not significant.
        Unchanged = "unchanged",
        /// Only in the new dump.
        Added = "added",
        /// Only in the base dump.
        Removed = "removed",
    }
}

impl Verdict {
    /// Whether the callsite changed significantly: regressed, mixed or
    /// improved (not unchanged, nor only in one dump).
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Verdict::Regressed | Verdict::Mixed | Verdict::Improved
        )
    }
}

/// One figure before and after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// In the base dump.
    pub base: f64,
    /// In the new dump.
    pub new: f64,
    /// `new / base - 1`; `None` when `base` is 0 (and `new` is not).
    pub relative: Option<f64>,
}

labelled! {
    /// What a diff compares.
    pub enum Axis {
        /// Mean busy time per call, confirmed by the distribution.
        Time = "time",
        /// Mean idle time per call (waiting), confirmed by the distribution.
        Wait = "wait",
        /// Self-allocated bytes per call.
        Allocation = "allocation",
        /// Live bytes at the end (the counting allocator's tags).
        Memory = "memory",
    }
}

/// One axis's verdict on a callsite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AxisVerdict {
    /// Regressed, improved or unchanged.
    pub verdict: Verdict,
    /// The significant change, as a fraction (positive worse); 0 when
    /// unchanged.
    pub change: f64,
    /// Why, for people.
    pub reason: String,
}

impl AxisVerdict {
    /// A verdict on a relative change `relative` of a figure that is worse
    /// higher: the change is 0 when unchanged, and 100% where the base was
    /// zero (a callsite that did not allocate or hold memory before).
    fn of_relative(verdict: Verdict, relative: f64, reason: String) -> Self {
        Self {
            verdict,
            change: match verdict {
                Verdict::Unchanged => 0.0,
                _ if relative.is_finite() => relative,
                _ => 1.0,
            },
            reason,
        }
    }

    fn unchanged(reason: &str) -> Self {
        Self {
            verdict: Verdict::Unchanged,
            change: 0.0,
            reason: reason.to_owned(),
        }
    }

    /// How far it regressed, as a fraction; 0 unless regressed.
    pub fn regression(&self) -> f64 {
        if self.verdict == Verdict::Regressed {
            self.change.max(0.0)
        } else {
            0.0
        }
    }
}

impl Change {
    pub(crate) fn of(base: f64, new: f64) -> Self {
        let relative = if base > 0.0 {
            Some(new / base - 1.0)
        } else if new == 0.0 {
            Some(0.0)
        } else {
            None
        };
        Self {
            base,
            new,
            relative,
        }
    }
}

/// The comparison of one callsite.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CallsiteDiff {
    /// The callsite.
    pub location: Location,
    /// The overall verdict (see the module docs).
    pub verdict: Verdict,
    /// The time verdict alone.
    pub time_verdict: Verdict,
    /// The wait verdict alone (unchanged for a span that does not wait).
    pub wait_verdict: Verdict,
    /// The allocation verdict alone (unchanged when not tracked).
    pub alloc_verdict: Verdict,
    /// The memory verdict alone (unchanged without live heap on both sides).
    pub memory_verdict: Verdict,
    /// Each axis's verdict, change and reason.
    pub time: AxisVerdict,
    /// See `time`.
    pub wait: AxisVerdict,
    /// See `time`.
    pub allocation: AxisVerdict,
    /// See `time`.
    pub memory: AxisVerdict,
    /// Spans closed.
    pub calls: Change,
    /// Total busy time, ns.
    pub busy_total_ns: Change,
    /// Total self time, ns.
    pub self_total_ns: Change,
    /// Mean busy time per call, ns.
    pub busy_mean_ns: Change,
    /// Busy p50, ns.
    pub busy_p50_ns: Change,
    /// Busy p99, ns.
    pub busy_p99_ns: Change,
    /// Busy max, ns.
    pub busy_max_ns: Change,
    /// Mean idle time per call (open but not entered: waiting), ns, for a
    /// span that waits ([`DiffOptions::min_wait_share`]).
    pub idle_mean_ns: Option<Change>,
    /// Self-allocated bytes per call, when both dumps tracked allocation.
    pub alloc_bytes_per_call: Option<Change>,
    /// Bytes the callsite made still live at the end, when both dumps have
    /// the live heap.
    pub live_bytes: Option<Change>,
    /// Growth of those live bytes after warm-up, bytes per second, when both
    /// timelines are long enough.
    pub growth_bytes_per_s: Option<Change>,
    /// The one-sided Kolmogorov-Smirnov statistic of the busy distributions
    /// in the direction of the mean's change (`D+` when slower, `D-` when faster).
    pub ks_statistic: f64,
    /// Its one-sided critical value at the configured α.
    pub ks_critical: f64,
    /// How many of p50, p90, p99, p99.9 moved beyond the threshold in the
    /// direction of the mean.
    pub quantiles_moved: usize,
    /// The largest significant worsening on any axis, as a fraction (0
    /// when none regressed).
    pub regression: f64,
    /// Why the verdict is what it is, for people: each axis's reason.
    pub reason: String,
    /// The base dump's busy-time distribution, read at the points a chart
    /// draws, of a changed callsite in both dumps (`None` for the others):
    /// what the HTML diff draws. Not in the JSON report, whose figures are
    /// above.
    #[serde(skip)]
    pub base_busy_ns: Option<Distribution>,
    /// The new dump's, alike. Not in the JSON report.
    #[serde(skip)]
    pub new_busy_ns: Option<Distribution>,
}

impl CallsiteDiff {
    /// One axis's verdict.
    pub fn axis(&self, axis: Axis) -> &AxisVerdict {
        match axis {
            Axis::Time => &self.time,
            Axis::Wait => &self.wait,
            Axis::Allocation => &self.allocation,
            Axis::Memory => &self.memory,
        }
    }
}

/// The comparison of two dumps.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Diff {
    /// The base dump's program.
    pub base_program: String,
    /// The new dump's program.
    pub new_program: String,
    /// The options used.
    pub options: DiffOptions,
    /// Total self time of the whole run.
    pub total_self_ns: Change,
    /// Per callsite: regressed first (largest first), then improved, then
    /// the rest, by base self time.
    pub callsites: Vec<CallsiteDiff>,
}

impl Diff {
    /// Callsites with this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.callsites
            .iter()
            .filter(|c| c.verdict == verdict)
            .count()
    }

    /// The largest significant regression on any axis, as a fraction (0
    /// when none).
    pub fn worst_regression(&self) -> f64 {
        self.callsites
            .iter()
            .map(|c| c.regression)
            .fold(0.0, f64::max)
    }

    /// The time callsite `c`'s change adds to the new run, as a share of
    /// all self time in spans of the new run: its self time per call's
    /// change times its calls now (negative when it got faster). Self time,
    /// so a parent slowed by its child does not count the child's time
    /// again.
    pub fn added_time_share(&self, c: &CallsiteDiff) -> f64 {
        let per_call = |total: f64, calls: f64| if calls > 0.0 { total / calls } else { 0.0 };
        let added = (per_call(c.self_total_ns.new, c.calls.new)
            - per_call(c.self_total_ns.base, c.calls.base))
            * c.calls.new;
        if self.total_self_ns.new > 0.0 {
            added / self.total_self_ns.new
        } else {
            0.0
        }
    }

    /// The callsites that regressed on `axis` by at least `fraction`, with
    /// how much: what a CI gate on that axis trips on.
    pub fn regressions(&self, axis: Axis, fraction: f64) -> Vec<(&CallsiteDiff, f64)> {
        self.callsites
            .iter()
            .map(|c| (c, c.axis(axis).regression()))
            .filter(|&(_, r)| r > 0.0 && r >= fraction)
            .collect()
    }
}

/// Compares `new` against `base`, callsite by callsite (matched by
/// identity, [`crate::callsite::Identity`]: module path and name, so a
/// line added above a function changes nothing).
///
/// ```
/// use perf_layer::dump::Dump;
/// use perf_report::diff::{diff, DiffOptions};
/// let d = diff(&Dump::empty("a"), &Dump::empty("a"), &DiffOptions::default());
/// assert!(d.callsites.is_empty());
/// assert_eq!(d.worst_regression(), 0.0);
/// ```
pub fn diff(base: &Dump, new: &Dump, opts: &DiffOptions) -> Diff {
    let mut new_by_key: HashMap<Identity, &CallsiteStats> = HashMap::new();
    for (cs, id) in new.callsites.iter().zip(identities(&new.callsites)) {
        new_by_key.entry(id).or_insert(cs);
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (b, id) in base.callsites.iter().zip(identities(&base.callsites)) {
        if !seen.insert(id.clone()) {
            continue;
        }
        match new_by_key.get(&id) {
            // Shown where the new dump has it: lines may have moved.
            Some(n) => out.push(compare(Location::of(n), (base, b), (new, n), opts)),
            None => out.push(one_sided(Location::of(b), b, Verdict::Removed, opts)),
        }
    }
    for (n, id) in new.callsites.iter().zip(identities(&new.callsites)) {
        if seen.insert(id) {
            out.push(one_sided(Location::of(n), n, Verdict::Added, opts));
        }
    }
    qualify(out.iter_mut().map(|c| &mut c.location));
    out.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then(b.regression.total_cmp(&a.regression))
            .then(b.self_total_ns.base.total_cmp(&a.self_total_ns.base))
            .then(b.self_total_ns.new.total_cmp(&a.self_total_ns.new))
            .then_with(|| a.location.cmp(&b.location))
    });
    let total = |d: &Dump| {
        d.callsites
            .iter()
            .map(|c| c.self_ns.sum as f64)
            .sum::<f64>()
    };
    Diff {
        base_program: base.run.program.clone(),
        new_program: new.run.program.clone(),
        options: opts.clone(),
        total_self_ns: Change::of(total(base), total(new)),
        callsites: out,
    }
}

fn one_sided(
    location: Location,
    cs: &CallsiteStats,
    verdict: Verdict,
    opts: &DiffOptions,
) -> CallsiteDiff {
    let h = time::decode(cs);
    let side = |v: f64| {
        if verdict == Verdict::Added {
            Change::of(0.0, v)
        } else {
            Change::of(v, 0.0)
        }
    };
    let reason = format!(
        "only in the {} dump",
        if verdict == Verdict::Added {
            "new"
        } else {
            "base"
        }
    );
    let axis = AxisVerdict {
        verdict,
        change: 0.0,
        reason: reason.clone(),
    };
    CallsiteDiff {
        location,
        verdict,
        time_verdict: verdict,
        wait_verdict: verdict,
        alloc_verdict: verdict,
        memory_verdict: verdict,
        time: axis.clone(),
        wait: axis.clone(),
        allocation: axis.clone(),
        memory: axis,
        calls: side(cs.calls as f64),
        busy_total_ns: side(cs.busy_ns.sum as f64),
        self_total_ns: side(cs.self_ns.sum as f64),
        busy_mean_ns: side(time::mean(cs)),
        busy_p50_ns: side(time::q(h.as_ref(), 0.5)),
        busy_p99_ns: side(time::q(h.as_ref(), 0.99)),
        busy_max_ns: side(time::max(h.as_ref())),
        idle_mean_ns: wait::waits(cs, opts).then(|| side(wait::mean(cs))),
        alloc_bytes_per_call: alloc::per_call(cs).map(side),
        live_bytes: cs.heap.as_ref().map(|h| side(h.live_bytes as f64)),
        growth_bytes_per_s: None,
        ks_statistic: 0.0,
        ks_critical: f64::INFINITY,
        quantiles_moved: 0,
        regression: 0.0,
        reason,
        base_busy_ns: None,
        new_busy_ns: None,
    }
}

/// The overall verdict of the axes (see the module docs).
fn overall(axes: [&AxisVerdict; 4]) -> Verdict {
    let worse = axes.iter().any(|a| a.verdict == Verdict::Regressed);
    let better = axes.iter().any(|a| a.verdict == Verdict::Improved);
    match (worse, better) {
        (true, true) => Verdict::Mixed,
        (true, false) => Verdict::Regressed,
        (false, true) => Verdict::Improved,
        (false, false) => Verdict::Unchanged,
    }
}

fn compare(
    location: Location,
    (base, b): (&Dump, &CallsiteStats),
    (new, n): (&Dump, &CallsiteStats),
    opts: &DiffOptions,
) -> CallsiteDiff {
    let (time, figures) = time::compare(b, n, opts);
    let waits = wait::compare(b, n, opts);
    let waited = waits.is_some();
    let wait = waits.unwrap_or_else(|| AxisVerdict::unchanged("it does not wait"));
    let (allocation, alloc_per_call) = match alloc::compare(b, n, opts) {
        Some((axis, change)) => (axis, Some(change)),
        None => (AxisVerdict::unchanged("not tracked on both sides"), None),
    };
    let (memory, live) = match memory::compare((base, b), (new, n), opts) {
        Some((axis, live)) => (axis, Some(live)),
        None => (AxisVerdict::unchanged("no live heap on both sides"), None),
    };
    let verdict = overall([&time, &wait, &allocation, &memory]);
    let regression = [&time, &wait, &allocation, &memory]
        .iter()
        .map(|a| a.regression())
        .fold(0.0, f64::max);
    let mut reason = format!("time: {}", time.reason);
    if waited {
        reason.push_str(&format!("; wait: {} ({})", wait.reason, wait.verdict));
    }
    if alloc_per_call.is_some() {
        reason.push_str(&format!(
            "; allocation: {} ({})",
            allocation.reason, allocation.verdict
        ));
    }
    if live.is_some() {
        reason.push_str(&format!("; memory: {} ({})", memory.reason, memory.verdict));
    }
    CallsiteDiff {
        location,
        verdict,
        time_verdict: time.verdict,
        wait_verdict: wait.verdict,
        alloc_verdict: allocation.verdict,
        memory_verdict: memory.verdict,
        calls: Change::of(b.calls as f64, n.calls as f64),
        busy_total_ns: Change::of(b.busy_ns.sum as f64, n.busy_ns.sum as f64),
        self_total_ns: Change::of(b.self_ns.sum as f64, n.self_ns.sum as f64),
        busy_mean_ns: figures.busy_mean_ns,
        busy_p50_ns: figures.busy_p50_ns,
        busy_p99_ns: figures.busy_p99_ns,
        busy_max_ns: figures.busy_max_ns,
        idle_mean_ns: waited.then(|| Change::of(wait::mean(b), wait::mean(n))),
        alloc_bytes_per_call: alloc_per_call,
        live_bytes: live.as_ref().map(|l| l.live_bytes),
        growth_bytes_per_s: live.and_then(|l| l.growth_bytes_per_s),
        ks_statistic: figures.ks_statistic,
        ks_critical: figures.ks_critical,
        quantiles_moved: figures.quantiles_moved,
        regression,
        reason,
        time,
        wait,
        allocation,
        memory,
        // Read only for the changed, which are all that is drawn.
        base_busy_ns: verdict
            .is_change()
            .then(|| Distribution::of(&b.busy_ns))
            .flatten(),
        new_busy_ns: verdict
            .is_change()
            .then(|| Distribution::of(&n.busy_ns))
            .flatten(),
    }
}
