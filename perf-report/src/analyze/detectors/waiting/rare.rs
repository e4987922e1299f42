//! Own waits in few calls: a wait some calls take and others do not.

use perf_layer::dump::CallsiteStats;

use crate::analyze::context::Context;
use crate::stats;
use crate::units;

/// The first fix of a span whose own waits are rare ones ([`rare_waits`]).
pub(super) const RARE: &str = "Its own waits come in few long ones, not in every call: find the await its slow calls take (a child span around each, or a field naming the branch); a lock's guard released before a slow call, a retry's backoff shorter or jittered, a timeout lower, a cache warmed or a slow path avoided gives back most of it";

/// At least this share of a span's own idle time in its slow calls makes
/// its waits rare ones ([`rare_waits`])...
pub(super) const RARE_SHARE: f64 = 0.5;
/// ...over at least this many calls (a p99 that means something).
const RARE_MIN_CALLS: u64 = 20;

/// A span's own waits held in its slow calls: the share of its own idle
/// time in its idle tail beyond p90, less what its children's tails hold
/// there ([`rare_waits`]), and its idle a call at p50 and p99.
pub(super) struct RareWaits {
    pub(super) share: f64,
    p50_ns: u64,
    p99_ns: u64,
}

impl RareWaits {
    pub(super) fn clause(&self) -> String {
        format!(
            "; {} of its own waiting is in its slow calls (idle a call p50 {}, p99 {}), beyond what its children's slow calls hold: a wait some calls take and others do not (a lock held across a slow call, a retry's backoff, a timeout, a miss)",
            units::pct(self.share),
            units::ns(self.p50_ns as f64),
            units::ns(self.p99_ns as f64)
        )
    }
}

/// Whether callsite `cs`'s own waits (`own_ns` of idle time) are in a few
/// of its calls: the idle time of its tail beyond its p90
/// ([`stats::tail_excess`] over its idle histogram), less its children's
/// beyond theirs (by the share of their calls it opened), is at least
/// [`RARE_SHARE`] of its own idle, over at least [`RARE_MIN_CALLS`] calls.
/// A fresh `fetch_user` backing off 40 ms one call in twenty: all of its
/// own waiting. None: a `request` whose slow calls are its child's waits
/// on a lock and whose own wait is a 1 ms upstream call in every call; a
/// lock's waiters, four in ten of them behind its holder; a service's
/// request span, a third of whose calls await an upstream route.
pub(super) fn rare_waits(cx: &Context<'_>, cs: &CallsiteStats, own_ns: f64) -> Option<RareWaits> {
    if cs.calls < RARE_MIN_CALLS || own_ns <= 0.0 {
        return None;
    }
    let beyond_usual = |c: &CallsiteStats| {
        c.idle_ns
            .decode()
            .ok()
            .map_or(0.0, |h| stats::tail_excess(&h, c.idle_ns.p90))
    };
    let children: f64 = cx
        .child_edges(cs.id)
        .filter_map(|e| {
            let child = &cx.dump.callsites[cx.index_of(e.child)?];
            Some(beyond_usual(child) * stats::share(e.calls as f64, child.calls as f64))
        })
        .sum();
    let share = ((beyond_usual(cs) - children) / own_ns).min(1.0);
    (share >= RARE_SHARE).then_some(RareWaits {
        share,
        p50_ns: cs.idle_ns.p50,
        p99_ns: cs.idle_ns.p99,
    })
}
