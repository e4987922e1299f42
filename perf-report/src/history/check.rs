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
//! noise; for time at least 0.5% of `m`, so a history of identical runs does
//! not make every nanosecond significant). The new value `v` **regresses**
//! when all of these hold:
//!
//! 1. the effect is over the bar: `v / m − 1 > bar`;
//! 2. it is outside the spread the history shows between runs:
//!    `(v − m) / s > z`, where `z` is the normal quantile of `1 − α / k`
//!    for `k` tests in all (Bonferroni: testing a hundred spans at α = 0.01
//!    each would flag one by chance in every run);
//! 3. for time, the distribution really moved: a one-sided two-sample
//!    Kolmogorov-Smirnov test of the new busy-time histogram against the
//!    history's pooled histograms rejects at `α / k`.
//!
//! It **improves** when the mirror image holds. Allocation counts are
//! nearly deterministic, so their bar is tight and their spread is often
//! zero: then any change over the bar is outside it. Time is noisy, so its
//! bar is loose and its spread is what the machine showed.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use perf_layer::dump::{Dump, HistogramDump};
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
    /// The history's spread (1.4826 × MAD, floored for time).
    pub history_spread: f64,
    /// Runs of the history that have the span.
    pub history_runs: usize,
    /// The new run's value.
    pub value: f64,
    /// `value / history_median − 1`.
    pub change: f64,
    /// `(value − median) / spread`.
    pub z: f64,
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
    /// The `z` each had to exceed.
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
    let z_critical = normal_quantile(1.0 - per_test);
    let history_ids: Vec<i64> = history.iter().map(|r| r.id).collect();
    let mut checks = Vec::with_capacity(tests);
    for (cs, key, metric, v, values) in candidates {
        let m = stats::median(&values);
        let mad = stats::median(&values.iter().map(|x| (x - m).abs()).collect::<Vec<_>>());
        let floor = if metric.is_time() { 0.005 * m } else { 0.0 };
        let spread = (1.4826 * mad).max(floor);
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
        let direction = if change > bar && z > z_critical {
            Some(Verdict::Regressed)
        } else if change < -bar && z < -z_critical {
            Some(Verdict::Improved)
        } else {
            None
        };
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

fn format_value(metric: Metric, v: f64) -> String {
    metric.figure().unit.format(v)
}

/// The standard normal quantile `Φ⁻¹(p)`, by Acklam's rational
/// approximation (relative error below 1.2e-9), for `0 < p < 1`.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::normal_quantile;

    #[test]
    fn normal_quantiles_match_the_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_964),
            (0.99, 2.326_348),
            (0.999_9, 3.719_016),
        ] {
            assert!(
                (normal_quantile(p) - z).abs() < 1e-5,
                "{p}: {}",
                normal_quantile(p)
            );
            assert!((normal_quantile(1.0 - p) + z).abs() < 1e-5);
        }
    }
}
