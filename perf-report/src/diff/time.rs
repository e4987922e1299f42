//! The time axis: mean busy time per call, confirmed by the shape of the
//! busy-time distribution (see the module docs of [`super`]).

use hdrhistogram::Histogram;
use perf_layer::dump::CallsiteStats;

use super::{Axis, AxisVerdict, Change, DiffOptions, Verdict};
use crate::stats;
use crate::units;

/// What the time comparison measured, beside its verdict.
#[derive(Debug, Clone)]
pub(super) struct TimeFigures {
    pub(super) busy_mean_ns: Change,
    pub(super) busy_p50_ns: Change,
    pub(super) busy_p99_ns: Change,
    pub(super) busy_max_ns: Change,
    pub(super) ks_statistic: f64,
    pub(super) ks_critical: f64,
    pub(super) quantiles_moved: usize,
}

pub(super) fn decode(cs: &CallsiteStats) -> Option<Histogram<u64>> {
    cs.busy_ns.decode().ok()
}

pub(super) fn q(h: Option<&Histogram<u64>>, quantile: f64) -> f64 {
    match h {
        Some(h) if !h.is_empty() => h.value_at_quantile(quantile) as f64,
        _ => 0.0,
    }
}

pub(super) fn max(h: Option<&Histogram<u64>>) -> f64 {
    h.map_or(0.0, |h| h.max() as f64)
}

/// Mean busy time per call, the figure this axis compares
/// (`crate::figures`).
pub(super) fn mean(cs: &CallsiteStats) -> f64 {
    Axis::Time.of(cs).unwrap_or(0.0)
}

/// The time verdict of `b` against `n`.
pub(super) fn compare(
    b: &CallsiteStats,
    n: &CallsiteStats,
    opts: &DiffOptions,
) -> (AxisVerdict, TimeFigures) {
    let t = opts.threshold.max(0.0);
    let (hb, hn) = (decode(b), decode(n));
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
    let (verdict, reason) = if !enough {
        (
            Verdict::Unchanged,
            format!("fewer than {} calls on a side", opts.min_calls),
        )
    } else if delta.abs() <= t {
        (
            Verdict::Unchanged,
            format!(
                "mean {} is within the ±{:.0}% noise threshold",
                units::change(delta),
                t * 100.0
            ),
        )
    } else if !shifted {
        (
            Verdict::Unchanged,
            format!(
                "mean {} but the distribution did not move (KS D {:.3} ≤ {:.3}, {} of 4 quantiles moved)",
                units::change(delta),
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
            if ks > crit {
                format!(
                    "mean {} with the distribution moved (KS D {:.3} vs {:.3}, {} of 4 quantiles moved)",
                    units::change(delta),
                    ks,
                    crit,
                    moved
                )
            } else {
                // The quantiles decided: a shift of the tail, which KS, read
                // over the whole distribution, does not see.
                format!(
                    "mean {} with its tail moved ({} of 4 quantiles moved; KS D {:.3} ≤ {:.3} over the whole distribution)",
                    units::change(delta),
                    moved,
                    ks,
                    if crit.is_finite() { crit } else { 1.0 }
                )
            },
        )
    };
    let axis = AxisVerdict {
        verdict,
        change: if verdict == Verdict::Unchanged {
            0.0
        } else {
            delta
        },
        reason,
    };
    let figures = TimeFigures {
        busy_mean_ns: busy_mean,
        busy_p50_ns: Change::of(q(hb.as_ref(), 0.5), q(hn.as_ref(), 0.5)),
        busy_p99_ns: Change::of(q(hb.as_ref(), 0.99), q(hn.as_ref(), 0.99)),
        busy_max_ns: Change::of(max(hb.as_ref()), max(hn.as_ref())),
        ks_statistic: ks,
        ks_critical: crit,
        quantiles_moved: moved,
    };
    (axis, figures)
}
