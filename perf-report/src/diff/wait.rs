//! The wait axis: mean idle time per call (the time a span was open but not
//! entered: an `.await` on a pool, a lock, an upstream call), confirmed by
//! the idle-time distribution like the time axis's busy time. Judged only
//! for a span that waits: idle at least [`DiffOptions::min_wait_share`] of
//! its wall time in one of the dumps, and a change of at least
//! [`DiffOptions::min_wait_ns_per_call`]. A fix to a wait (a larger pool) shows
//! here, where busy time does not move.

use perf_layer::dump::CallsiteStats;

use super::time::judge;
use super::{Axis, AxisVerdict, Change, DiffOptions};
use crate::stats;
use crate::units;

/// Mean idle time per call, the figure this axis compares
/// (`crate::figures`).
pub(super) fn mean(cs: &CallsiteStats) -> f64 {
    Axis::Wait.of(cs).unwrap_or(0.0)
}

/// Whether a callsite waits: idle at least `opts.min_wait_share` of its
/// wall time.
pub(super) fn waits(cs: &CallsiteStats, opts: &DiffOptions) -> bool {
    stats::share(cs.idle_ns.sum as f64, cs.wall_ns.sum as f64) >= opts.min_wait_share
}

/// The wait verdict of `b` against `n`; `None` for a span that waits in
/// neither dump.
pub(super) fn compare(
    b: &CallsiteStats,
    n: &CallsiteStats,
    opts: &DiffOptions,
) -> Option<AxisVerdict> {
    if !waits(b, opts) && !waits(n, opts) {
        return None;
    }
    let (hb, hn) = (b.idle_ns.decode().ok(), n.idle_ns.decode().ok());
    let change = Change::of(mean(b), mean(n));
    let (axis, _) = judge(
        (hb.as_ref(), hn.as_ref()),
        (change, "mean"),
        b.idle_ns.count.min(n.idle_ns.count),
        opts,
    );
    let by = (change.new - change.base).abs();
    if axis.verdict.is_change() && by < opts.min_wait_ns_per_call {
        return Some(AxisVerdict::unchanged(&format!(
            "mean {} a call, under {}",
            units::ns(by),
            units::ns(opts.min_wait_ns_per_call)
        )));
    }
    Some(axis)
}
