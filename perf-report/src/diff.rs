//! Comparing two dumps callsite by callsite.
//!
//! # The significance rule
//!
//! A callsite's **time** verdict uses the whole busy-time HDR distributions
//! `B` (base) and `N` (new), with `n` and `m` calls and noise threshold `T`
//! ([`DiffOptions::threshold`], default 10%):
//!
//! 1. both sides have at least [`DiffOptions::min_calls`] calls;
//! 2. the relative change of the exact mean busy time per call,
//!    `Δ = mean_N / mean_B - 1`, is beyond the threshold: `|Δ| > T`;
//! 3. the distribution moved the same way, shown by either
//!    * the one-sided two-sample Kolmogorov-Smirnov statistic in the
//!      direction of `Δ` (`D+ = sup (F_B - F_N)` for a slow-down,
//!      `D- = sup (F_N - F_B)` for a speed-up), computed on the histograms,
//!      above its critical value `c(α) sqrt((n + m) / (n m))`,
//!      `c(α) = sqrt(-ln(α) / 2)`, α = [`DiffOptions::alpha`] (default 0.01), or
//!    * at least two of p50, p90, p99, p99.9 changing by more than `T` in
//!      the direction of `Δ` (a shift of the tail, which KS is blind to).
//!
//! Then it is regressed when `Δ > 0`, improved when `Δ < 0`. The
//! **allocation** verdict compares exact bytes per call: regressed (improved)
//! when it grows (shrinks) by more than `T` and by at least
//! [`DiffOptions::min_alloc_bytes_per_call`]. A callsite is regressed if
//! either verdict is, improved if either is and neither regressed, unchanged
//! otherwise. Call counts are reported but do not decide: they follow the
//! workload, not the code.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use perf_layer::dump::{CallsiteStats, Dump};
use serde::Serialize;

use crate::callsite::{Identity, Location, identities, qualify};
use crate::label::labelled;
use crate::stats;

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
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            threshold: 0.10,
            alpha: 0.01,
            min_calls: 5,
            min_alloc_bytes_per_call: 16.0,
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
    /// What happened to a callsite between the two dumps.
    pub enum Verdict {
        /// Significantly slower, or allocating more per call.
        Regressed = "regressed",
        /// Significantly faster, or allocating less per call.
        Improved = "improved",
        /// Within the noise threshold, or not significant.
        Unchanged = "unchanged",
        /// Only in the new dump.
        Added = "added",
        /// Only in the base dump.
        Removed = "removed",
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

impl Change {
    fn of(base: f64, new: f64) -> Self {
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
    /// The overall verdict.
    pub verdict: Verdict,
    /// The time verdict alone.
    pub time_verdict: Verdict,
    /// The allocation verdict alone (unchanged when not tracked).
    pub alloc_verdict: Verdict,
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
    /// Self-allocated bytes per call, when both dumps tracked allocation.
    pub alloc_bytes_per_call: Option<Change>,
    /// The one-sided Kolmogorov-Smirnov statistic of the busy distributions
    /// in the direction of the mean's change (`D+` when slower, `D-` when faster).
    pub ks_statistic: f64,
    /// Its one-sided critical value at the configured α.
    pub ks_critical: f64,
    /// How many of p50, p90, p99, p99.9 moved beyond the threshold in the
    /// direction of the mean.
    pub quantiles_moved: usize,
    /// The largest significant worsening, as a fraction (0 when not regressed).
    pub regression: f64,
    /// Why the verdict is what it is, for people.
    pub reason: String,
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

    /// The largest significant regression, as a fraction (0 when none).
    pub fn worst_regression(&self) -> f64 {
        self.callsites
            .iter()
            .map(|c| c.regression)
            .fold(0.0, f64::max)
    }
}

fn decode(cs: &CallsiteStats) -> Option<Histogram<u64>> {
    cs.busy_ns.decode().ok()
}

fn q(h: Option<&Histogram<u64>>, quantile: f64) -> f64 {
    match h {
        Some(h) if !h.is_empty() => h.value_at_quantile(quantile) as f64,
        _ => 0.0,
    }
}

fn alloc_per_call(cs: &CallsiteStats) -> Option<f64> {
    cs.alloc
        .map(|a| stats::ratio(a.self_alloc_bytes as f64, cs.calls as f64))
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
            Some(n) => out.push(compare(Location::of(n), b, Some(n), opts)),
            None => out.push(compare(Location::of(b), b, None, opts)),
        }
    }
    for (n, id) in new.callsites.iter().zip(identities(&new.callsites)) {
        if seen.insert(id) {
            out.push(one_sided(Location::of(n), n, Verdict::Added));
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

fn one_sided(location: Location, cs: &CallsiteStats, verdict: Verdict) -> CallsiteDiff {
    let h = decode(cs);
    let side = |v: f64| {
        if verdict == Verdict::Added {
            Change::of(0.0, v)
        } else {
            Change::of(v, 0.0)
        }
    };
    CallsiteDiff {
        location,
        verdict,
        time_verdict: verdict,
        alloc_verdict: verdict,
        calls: side(cs.calls as f64),
        busy_total_ns: side(cs.busy_ns.sum as f64),
        self_total_ns: side(cs.self_ns.sum as f64),
        busy_mean_ns: side(stats::ratio(cs.busy_ns.sum as f64, cs.busy_ns.count as f64)),
        busy_p50_ns: side(q(h.as_ref(), 0.5)),
        busy_p99_ns: side(q(h.as_ref(), 0.99)),
        busy_max_ns: side(h.as_ref().map_or(0.0, |h| h.max() as f64)),
        alloc_bytes_per_call: alloc_per_call(cs).map(side),
        ks_statistic: 0.0,
        ks_critical: f64::INFINITY,
        quantiles_moved: 0,
        regression: 0.0,
        reason: format!(
            "only in the {} dump",
            if verdict == Verdict::Added {
                "new"
            } else {
                "base"
            }
        ),
    }
}

fn compare(
    location: Location,
    b: &CallsiteStats,
    n: Option<&&CallsiteStats>,
    opts: &DiffOptions,
) -> CallsiteDiff {
    let Some(n) = n else {
        return one_sided(location, b, Verdict::Removed);
    };
    let t = opts.threshold.max(0.0);
    let (hb, hn) = (decode(b), decode(n));
    let mean = |cs: &CallsiteStats| stats::ratio(cs.busy_ns.sum as f64, cs.busy_ns.count as f64);
    let busy_mean = Change::of(mean(b), mean(n));
    let delta = busy_mean.relative.unwrap_or(0.0);
    // The one-sided statistic in the direction of the mean's change: a mean
    // pushed up by a few outliers while the bulk got faster is no regression.
    let (ks, crit) = match (&hb, &hn) {
        (Some(x), Some(y)) => {
            let (slower, faster) = stats::ks_one_sided(x, y);
            (
                if delta >= 0.0 { slower } else { faster },
                stats::ks_critical_one_sided(x.len(), y.len(), opts.alpha),
            )
        }
        _ => (0.0, f64::INFINITY),
    };
    let moved = [0.5, 0.9, 0.99, 0.999]
        .iter()
        .filter(|&&quantile| {
            let c = Change::of(q(hb.as_ref(), quantile), q(hn.as_ref(), quantile));
            match c.relative {
                Some(r) if delta > 0.0 => r > t,
                Some(r) if delta < 0.0 => r < -t,
                _ => false,
            }
        })
        .count();
    let enough = b.busy_ns.count >= opts.min_calls && n.busy_ns.count >= opts.min_calls;
    let shifted = ks > crit || moved >= 2;
    let (time_verdict, time_reason) = if !enough {
        (
            Verdict::Unchanged,
            format!("fewer than {} calls on a side", opts.min_calls),
        )
    } else if delta.abs() <= t {
        (
            Verdict::Unchanged,
            format!(
                "mean {} is within the ±{:.0}% noise threshold",
                crate::units::change(delta),
                t * 100.0
            ),
        )
    } else if !shifted {
        (
            Verdict::Unchanged,
            format!(
                "mean {} but the distribution did not move (KS D {:.3} ≤ {:.3}, {} of 4 quantiles moved)",
                crate::units::change(delta),
                ks,
                crit,
                moved
            ),
        )
    } else {
        (
            if delta > 0.0 {
                Verdict::Regressed
            } else {
                Verdict::Improved
            },
            format!(
                "mean {} with the distribution moved (KS D {:.3} vs {:.3}, {} of 4 quantiles moved)",
                crate::units::change(delta),
                ks,
                if crit.is_finite() { crit } else { 1.0 },
                moved
            ),
        )
    };

    let alloc = match (alloc_per_call(b), alloc_per_call(n)) {
        (Some(x), Some(y)) => Some(Change::of(x, y)),
        _ => None,
    };
    let (alloc_verdict, alloc_delta) = match alloc {
        Some(c) if (c.new - c.base).abs() >= opts.min_alloc_bytes_per_call => {
            let r = c.relative.unwrap_or(f64::INFINITY);
            if r > t {
                (Verdict::Regressed, r)
            } else if r < -t {
                (Verdict::Improved, r)
            } else {
                (Verdict::Unchanged, r)
            }
        }
        _ => (Verdict::Unchanged, 0.0),
    };

    let verdict = if time_verdict == Verdict::Regressed || alloc_verdict == Verdict::Regressed {
        Verdict::Regressed
    } else if time_verdict == Verdict::Improved || alloc_verdict == Verdict::Improved {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    let mut regression: f64 = 0.0;
    if time_verdict == Verdict::Regressed {
        regression = regression.max(delta);
    }
    if alloc_verdict == Verdict::Regressed {
        regression = regression.max(if alloc_delta.is_finite() {
            alloc_delta
        } else {
            1.0
        });
    }
    let mut reason = format!("time: {time_reason}");
    if let Some(c) = alloc {
        reason.push_str(&format!(
            "; allocation: {} per call ({})",
            crate::units::change(c.relative.unwrap_or(f64::INFINITY)),
            alloc_verdict
        ));
    }

    CallsiteDiff {
        location,
        verdict,
        time_verdict,
        alloc_verdict,
        calls: Change::of(b.calls as f64, n.calls as f64),
        busy_total_ns: Change::of(b.busy_ns.sum as f64, n.busy_ns.sum as f64),
        self_total_ns: Change::of(b.self_ns.sum as f64, n.self_ns.sum as f64),
        busy_mean_ns: busy_mean,
        busy_p50_ns: Change::of(q(hb.as_ref(), 0.5), q(hn.as_ref(), 0.5)),
        busy_p99_ns: Change::of(q(hb.as_ref(), 0.99), q(hn.as_ref(), 0.99)),
        busy_max_ns: Change::of(
            hb.as_ref().map_or(0.0, |h| h.max() as f64),
            hn.as_ref().map_or(0.0, |h| h.max() as f64),
        ),
        alloc_bytes_per_call: alloc,
        ks_statistic: ks,
        ks_critical: crit,
        quantiles_moved: moved,
        regression,
        reason,
    }
}
