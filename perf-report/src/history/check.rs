//! A new run judged against the history of comparable runs, not against one
//! base.
//!
//! # The rule
//!
//! The window is the newest [`CheckOptions::window`] stored runs of the
//! same program on the same kind of machine ([`super::fingerprint`]),
//! narrowed by `--against` labels (e.g. `branch=main`), the new run itself
//! left out. For every span of the new run found in at least
//! [`CheckOptions::min_runs`] of them, and every metric:
//!
//! | metric | kind | bar |
//! |---|---|---|
//! | busy p50, busy p99 | time | [`CheckOptions::time_threshold`] (10%) |
//! | bytes allocated per call, allocations per call | allocation | [`CheckOptions::alloc_threshold`] (1%) |
//!
//! the history gives the median `m` and the spread `s = 1.4826 × MAD` (the
//! median absolute deviation, scaled to a standard deviation for normal
//! noise). For time, `s` is at least the program's **pooled spread**: the
//! median, over every span judged, of that metric's spread relative to its
//! median (and at least 0.5%). A machine's run-to-run noise (clock speed,
//! neighbours, memory layout) moves every span of a program alike, and five
//! runs that happened to agree closely on one span do not show it; the
//! pooled figure does (the moderated variance of many-tests, few-replicates
//! statistics, in its simplest form). The new value `v` **regresses** when
//! all of these hold:
//!
//! 1. the effect is over the bar: `v / m − 1 > bar`;
//! 2. it is outside the spread the history shows between runs:
//!    `(v − m) / s > z`. `z` is the bound of a prediction interval for one
//!    new run beside `n` stored ones: Student's t quantile of `1 − α / k`
//!    with `n − 1` degrees of freedom, times `√(1 + 1/n)`, for `k` tests in
//!    all (Bonferroni: testing a hundred spans at α = 0.01 each would flag
//!    one by chance in every run). A spread measured on five runs is itself
//!    uncertain, so five runs need z > 9.4 for twenty tests, thirty runs
//!    z > 3.7: the normal quantile (3.3) took the spread as known and, on a
//!    fresh three-thread program checked unchanged against five runs,
//!    failed four runs of six;
//! 3. for time, the distribution really moved: a one-sided two-sample
//!    Kolmogorov-Smirnov test of the new busy-time histogram against the
//!    history's pooled histograms rejects at `α / k`;
//! 4. for the tail (busy p99), the value is beyond every stored run's. A
//!    microsecond span's p99 is set by the run's rare events (a burst of
//!    preemption, interrupts, a cold cache), and a quiet machine still
//!    shows an excursion of two or three times in one run of five or six:
//!    no spread fitted to the others predicts it. A value the history has
//!    already shown is not a change. The cost: one disturbed run in the
//!    window hides a tail regression smaller than its excursion until it
//!    leaves the window;
//! 5. for time, the excess is not all preemption: where the new run timed
//!    at least half of the span's calls on the CPU, the value less the
//!    preempted time at the same quantile is still over the bar (the
//!    stored runs' preemption is not kept, so this tests regressions
//!    only).
//!
//! It **improves** when the mirror image holds (of rules 1 to 4). Allocation counts are
//! nearly deterministic, so their bar is tight and their spread is often
//! zero: then any change over the bar is outside it. Time is noisy, so its
//! bar is loose and its spread is what the machine showed.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use perf_layer::dump::{CallsiteStats, Dump, HistogramDump};
use serde::Serialize;

use super::error::HistoryError;
use super::fingerprint;
use super::store::{Label, RunFilter, SpanSummary, Store};
use crate::callsite;
use crate::diff::Verdict;
use crate::figures::{Bar, FIGURES};
use crate::stats;

/// Settings of [`check`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The newest this many comparable runs form the history (30).
    pub window: usize,
    /// A span is judged only when at least this many of them have it (5).
    pub min_runs: usize,
    /// The bar for time metrics, as a fraction (0.10).
    pub time_threshold: f64,
    /// The bar for allocation metrics, as a fraction (0.01).
    pub alloc_threshold: f64,
    /// The family-wise significance level, split over every test (0.01).
    pub alpha: f64,
    /// Spans with fewer calls than this in the new run are not judged (20).
    pub min_calls: u64,
    /// Only runs carrying these labels form the history.
    pub against: Vec<Label>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            window: 30,
            min_runs: 5,
            time_threshold: 0.10,
            alloc_threshold: 0.01,
            alpha: 0.01,
            min_calls: 20,
            against: Vec::new(),
        }
    }
}

impl CheckOptions {
    /// With the time bar at `fraction` (0.2 for 20%).
    pub fn with_time_threshold(mut self, fraction: f64) -> Self {
        self.time_threshold = fraction;
        self
    }

    /// With the allocation bar at `fraction`.
    pub fn with_alloc_threshold(mut self, fraction: f64) -> Self {
        self.alloc_threshold = fraction;
        self
    }

    /// With the history narrowed to runs carrying `labels`.
    pub fn against(mut self, labels: &[Label]) -> Self {
        self.against = labels.to_vec();
        self
    }

    /// With a window of the newest `runs`.
    pub fn with_window(mut self, runs: usize) -> Self {
        self.window = runs;
        self
    }
}

pub use crate::figures::Metric;

impl Metric {
    fn is_time(self) -> bool {
        self.bar() == Bar::Time
    }

    fn of(self, s: &SpanSummary) -> Option<f64> {
        (self.figure().of)(s)
    }
}

/// What [`check`] concluded about one metric of one span: the diff's
/// [`Verdict`], one vocabulary for both. A check gives
/// [`Regressed`](Verdict::Regressed) (worse, past every test),
/// [`Improved`](Verdict::Improved) (better, past every test) or
/// [`Unchanged`](Verdict::Unchanged) (within the bar, the history's spread,
/// or a distribution that did not move).
pub type Judgement = Verdict;

/// One metric of one span against its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricCheck {
    /// The span's identity across runs.
    pub identity: String,
    /// Its name.
    pub name: String,
    /// The metric.
    pub metric: Metric,
    /// The verdict.
    pub judgement: Verdict,
    /// The history's median.
    pub history_median: f64,
    /// The history's spread (1.4826 × MAD; for time at least the
    /// program's pooled spread).
    pub history_spread: f64,
    /// Runs of the history that have the span.
    pub history_runs: usize,
    /// The new run's value.
    pub value: f64,
    /// `value / history_median − 1`.
    pub change: f64,
    /// `(value − median) / spread`.
    pub z: f64,
    /// The `z` it had to exceed, which depends on the runs it was found in.
    pub z_critical: f64,
    /// Why, for people.
    pub reason: String,
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The new run's program.
    pub program: String,
    /// Its machine fingerprint.
    pub machine: String,
    /// The ids of the runs that formed the history, oldest first.
    pub history: Vec<i64>,
    /// Tests made (span × metric).
    pub tests: usize,
    /// The `z` a span found in every run of the history had to exceed (one
    /// found in fewer had a higher bar: [`MetricCheck::z_critical`]).
    pub z_critical: f64,
    /// Spans of the new run with too little history (or too few calls) to
    /// be judged.
    pub not_judged: usize,
    /// Every test, regressions first.
    pub checks: Vec<MetricCheck>,
}

impl CheckReport {
    /// The regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &MetricCheck> {
        self.checks
            .iter()
            .filter(|c| c.judgement == Verdict::Regressed)
    }
}

/// Judges `dump` against the history in `store` (see the module docs).
pub fn check(store: &Store, dump: &Dump, opts: &CheckOptions) -> Result<CheckReport, HistoryError> {
    let machine = fingerprint::fingerprint(dump);
    let mut filter = RunFilter::default()
        .program(&dump.run.program)
        .machine(&machine)
        .labels(&opts.against)
        .newest(opts.window);
    // The new run itself, if it was recorded already, is not its own
    // history.
    let digest = super::store::digest(dump);
    if let Some(id) = store.run_id_of_digest(&digest)? {
        filter = filter.exclude(id);
    }
    let history = store.runs(&filter)?;
    let mut by_span: HashMap<String, Vec<SpanSummary>> = HashMap::new();
    for run in &history {
        for s in store.spans(run.id)? {
            by_span.entry(s.identity.clone()).or_default().push(s);
        }
    }
    let ids = callsite::identities(&dump.callsites);
    let total_self: f64 = dump.callsites.iter().map(|c| c.self_ns.sum as f64).sum();
    let mut candidates = Vec::new();
    let mut not_judged = 0;
    for (cs, id) in dump.callsites.iter().zip(&ids) {
        let key = id.key();
        let past = by_span.get(&key).map_or(&[][..], Vec::as_slice);
        if past.len() < opts.min_runs || cs.calls < opts.min_calls {
            not_judged += 1;
            continue;
        }
        let now = super::store::summarize(cs, &key, total_self, dump.allocations_tracked);
        for metric in FIGURES.iter().filter_map(|f| f.check.map(|c| c.metric)) {
            let (Some(v), values) = (
                metric.of(&now),
                past.iter()
                    .filter_map(|s| metric.of(s))
                    .collect::<Vec<f64>>(),
            ) else {
                continue;
            };
            if values.len() >= opts.min_runs {
                candidates.push((cs, key.clone(), metric, v, values));
            }
        }
    }
    let tests = candidates.len();
    let per_test = opts.alpha / tests.max(1) as f64;
    let z_critical = prediction_bound(history.len(), per_test);
    let history_ids: Vec<i64> = history.iter().map(|r| r.id).collect();
    let spreads: Vec<(f64, f64)> = candidates
        .iter()
        .map(|(.., values)| median_and_spread(values))
        .collect();
    let pooled = pooled_relative_spreads(&candidates, &spreads);
    let mut checks = Vec::with_capacity(tests);
    for ((cs, key, metric, v, values), (m, own)) in candidates.into_iter().zip(spreads) {
        let floor = if metric.is_time() {
            m * pooled
                .iter()
                .find(|(p, _)| *p == metric)
                .map_or(0.0, |&(_, r)| r)
                .max(0.005)
        } else {
            0.0
        };
        let spread = own.max(floor);
        let z_critical = prediction_bound(values.len(), per_test);
        let change = if m > 0.0 {
            v / m - 1.0
        } else if v > 0.0 {
            1.0
        } else {
            0.0
        };
        let z = if spread > 0.0 {
            (v - m) / spread
        } else if v > m {
            f64::INFINITY
        } else if v < m {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        let bar = if metric.is_time() {
            opts.time_threshold
        } else {
            opts.alloc_threshold
        };
        let tail = metric == Metric::BusyP99;
        let direction = if change > bar && z > z_critical {
            Some(Verdict::Regressed)
        } else if change < -bar && z < -z_critical {
            Some(Verdict::Improved)
        } else {
            None
        };
        let seen = match direction {
            Some(Verdict::Regressed) if tail => values.iter().any(|&x| x >= v),
            Some(Verdict::Improved) if tail => values.iter().any(|&x| x <= v),
            _ => false,
        };
        // A slowdown whose excess over the bar is all preemption in the
        // new run (another thread or process had its core) is the
        // machine's, not the code's.
        let preempted = match direction {
            Some(Verdict::Regressed) if !seen => {
                preempted_at(cs, metric).filter(|&p| v - p <= m * (1.0 + bar))
            }
            _ => None,
        };
        let direction = direction.filter(|_| !seen && preempted.is_none());
        let moved = match (direction, metric.is_time()) {
            (Some(j), true) => {
                distribution_moved(store, &history_ids, &key, &cs.busy_ns, j, per_test)?
            }
            (_, _) => true,
        };
        let (judgement, reason) = match direction {
            Some(j) if moved => (
                j,
                format!(
                    "{} {} against a history median of {} over {} runs (spread {}, z {:.1} > {:.1})",
                    metric,
                    crate::units::change(change),
                    format_value(metric, m),
                    values.len(),
                    format_value(metric, spread),
                    z.abs(),
                    z_critical
                ),
            ),
            Some(_) => (
                Verdict::Unchanged,
                format!(
                    "{metric} {} but the busy-time distribution did not move against the history's",
                    crate::units::change(change)
                ),
            ),
            None if preempted.is_some() => (
                Verdict::Unchanged,
                format!(
                    "{metric} {} but {} of it is time preempted (another thread or process had its core): without it, within the ±{:.0}% bar",
                    crate::units::change(change),
                    format_value(metric, preempted.unwrap_or(0.0)),
                    bar * 100.0
                ),
            ),
            None if seen => (
                Verdict::Unchanged,
                format!(
                    "{metric} {} but a run of the history already showed it (a tail's excursion)",
                    crate::units::change(change)
                ),
            ),
            None if change.abs() <= bar => (
                Verdict::Unchanged,
                format!(
                    "{metric} {} is within the ±{:.0}% bar",
                    crate::units::change(change),
                    bar * 100.0
                ),
            ),
            None => (
                Verdict::Unchanged,
                format!(
                    "{metric} {} is within the spread of the history (z {:.1} ≤ {:.1})",
                    crate::units::change(change),
                    z.abs(),
                    z_critical
                ),
            ),
        };
        checks.push(MetricCheck {
            identity: key,
            name: cs.name.clone(),
            metric,
            judgement,
            history_median: m,
            history_spread: spread,
            history_runs: values.len(),
            value: v,
            change,
            z,
            z_critical,
            reason,
        });
    }
    checks.sort_by(|a, b| {
        // A check gives no other verdict than these three.
        let rank = |v: Verdict| match v {
            Verdict::Regressed => 0,
            Verdict::Improved => 1,
            _ => 2,
        };
        rank(a.judgement)
            .cmp(&rank(b.judgement))
            .then(b.change.abs().total_cmp(&a.change.abs()))
            .then_with(|| a.identity.cmp(&b.identity))
    });
    Ok(CheckReport {
        program: dump.run.program.clone(),
        machine,
        history: history_ids,
        tests,
        z_critical,
        not_judged,
        checks,
    })
}

/// Whether the new busy-time histogram moved, in the direction `j`,
/// against the pooled histograms of the history (one-sided KS at `alpha`).
fn distribution_moved(
    store: &Store,
    history: &[i64],
    identity: &str,
    new: &HistogramDump,
    j: Verdict,
    alpha: f64,
) -> Result<bool, HistoryError> {
    let Ok(new) = new.decode() else {
        return Ok(true);
    };
    let mut pooled: Option<Histogram<u64>> = None;
    for (_, encoded) in store.busy_histograms(history, identity)? {
        let Ok(h) = HistogramDump::from_encoded(encoded).decode() else {
            continue;
        };
        match &mut pooled {
            None => {
                let mut first = h;
                first.auto(true);
                pooled = Some(first);
            }
            Some(p) => {
                let _ = p.add(&h);
            }
        }
    }
    let Some(pooled) = pooled else {
        return Ok(true);
    };
    let (slower, faster) = stats::ks_one_sided(&pooled, &new);
    let d = if j == Verdict::Regressed {
        slower
    } else {
        faster
    };
    Ok(d > stats::ks_critical_one_sided(pooled.len(), new.len(), alpha))
}

/// The preempted time at the quantile of a time `metric` in the new run
/// (busy p50 less the preempted p50 approximates the own time's p50: the
/// calls preempted longest are the slowest), where at least half of the
/// callsite's calls, and 100, were timed on the CPU. Checked beside a
/// CPU hog, unchanged code read busy p99 +122% and +152% on two computing
/// spans, all of it preemption.
fn preempted_at(cs: &CallsiteStats, metric: Metric) -> Option<f64> {
    const MIN_TIMED: u64 = 100;
    let cpu = cs.cpu.as_ref()?;
    if cpu.timed_calls < MIN_TIMED.max(cs.calls / 2) {
        return None;
    }
    match metric {
        Metric::BusyP50 => Some(cpu.preempted_ns.p50 as f64),
        Metric::BusyP99 => Some(cpu.preempted_ns.p99 as f64),
        _ => None,
    }
}

fn format_value(metric: Metric, v: f64) -> String {
    metric.figure().unit.format(v)
}

/// A history's median and spread (1.4826 × MAD).
fn median_and_spread(values: &[f64]) -> (f64, f64) {
    let m = stats::median(values);
    let mad = stats::median(&values.iter().map(|x| (x - m).abs()).collect::<Vec<_>>());
    (m, 1.4826 * mad)
}

/// For each time metric, the median over the spans judged of its spread
/// relative to its median: the program's run-to-run noise.
fn pooled_relative_spreads<C>(
    candidates: &[(C, String, Metric, f64, Vec<f64>)],
    spreads: &[(f64, f64)],
) -> Vec<(Metric, f64)> {
    let mut by_metric: Vec<(Metric, Vec<f64>)> = Vec::new();
    for ((_, _, metric, ..), &(m, s)) in candidates.iter().zip(spreads) {
        if !metric.is_time() || m.is_nan() || m <= 0.0 || !s.is_finite() {
            continue;
        }
        match by_metric.iter_mut().find(|(p, _)| p == metric) {
            Some((_, r)) => r.push(s / m),
            None => by_metric.push((*metric, vec![s / m])),
        }
    }
    by_metric
        .into_iter()
        .map(|(metric, r)| (metric, stats::median(&r)))
        .collect()
}

/// The bound `z` for one new run beside `runs` stored ones at the one-sided
/// level `alpha`: Student's t quantile with `runs − 1` degrees of freedom,
/// widened by `√(1 + 1/runs)` for the new run's own noise.
pub(crate) fn prediction_bound(runs: usize, alpha: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let runs = runs.max(2) as f64;
    let p = (1.0 - alpha).clamp(0.5, 1.0 - 1e-15);
    let t = StudentsT::new(0.0, 1.0, runs - 1.0).map_or(f64::INFINITY, |d| d.inverse_cdf(p));
    t * (1.0 + 1.0 / runs).sqrt()
}

#[cfg(test)]
mod tests {
    use super::prediction_bound;

    #[test]
    fn prediction_bounds_match_student_s_tables() {
        // t(0.975; 4) = 2.776, t(0.975; 29) = 2.045, t(0.995; 9) = 3.250.
        for (runs, alpha, t) in [
            (5, 0.025, 2.776_445),
            (30, 0.025, 2.045_230),
            (10, 0.005, 3.249_836),
        ] {
            let want = t * (1.0 + 1.0 / runs as f64).sqrt();
            let got = prediction_bound(runs, alpha);
            assert!(
                (got - want).abs() < 1e-4,
                "{runs} {alpha}: {got} against {want}"
            );
        }
        // Fewer runs, a wider bound; many runs, the normal quantile.
        assert!(prediction_bound(5, 0.0005) > 9.0);
        assert!((prediction_bound(100_000, 0.025) - 1.959_964).abs() < 1e-3);
    }
}
