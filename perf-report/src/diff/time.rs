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
    let (hb, hn) = (decode(b), decode(n));
    let (axis, shift) = judge(
        (hb.as_ref(), hn.as_ref()),
        Change::of(mean(b), mean(n)),
        b.busy_ns.count.min(n.busy_ns.count),
        opts,
    );
    let figures = TimeFigures {
        busy_mean_ns: shift.mean,
        busy_p50_ns: Change::of(q(hb.as_ref(), 0.5), q(hn.as_ref(), 0.5)),
        busy_p99_ns: Change::of(q(hb.as_ref(), 0.99), q(hn.as_ref(), 0.99)),
        busy_max_ns: Change::of(max(hb.as_ref()), max(hn.as_ref())),
        ks_statistic: shift.ks_statistic,
        ks_critical: shift.ks_critical,
        quantiles_moved: shift.quantiles_moved,
    };
    (axis, figures)
}

/// How a distribution moved between two dumps, beside its verdict.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shift {
    pub(super) mean: Change,
    pub(super) ks_statistic: f64,
    pub(super) ks_critical: f64,
    pub(super) quantiles_moved: usize,
}

/// The verdict on a per-call distribution (busy time, or idle time for the
/// wait axis), the base's and the new's histograms `h`, by the rule of the
/// module docs: the mean's change `mean` beyond the threshold, confirmed
/// by the one-sided KS statistic or two quantiles moving its way, with at
/// least `opts.min_calls` calls on the side with fewer (`fewest_calls`).
pub(super) fn judge(
    (hb, hn): (Option<&Histogram<u64>>, Option<&Histogram<u64>>),
    mean: Change,
    fewest_calls: u64,
    opts: &DiffOptions,
) -> (AxisVerdict, Shift) {
    let t = opts.threshold.max(0.0);
    let delta = mean.relative.unwrap_or(0.0);
    // The one-sided statistic in the direction of the mean's change: a mean
    // pushed up by a few outliers while the bulk got faster is no regression.
    let (ks, crit) = match (hb, hn) {
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
            let c = Change::of(q(hb, quantile), q(hn, quantile));
            match c.relative {
                Some(r) if delta > 0.0 => r > t,
                Some(r) if delta < 0.0 => r < -t,
                _ => false,
            }
        })
        .count();
    let enough = fewest_calls >= opts.min_calls;
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
    let shift = Shift {
        mean,
        ks_statistic: ks,
        ks_critical: crit,
        quantiles_moved: moved,
    };
    (axis, shift)
}
