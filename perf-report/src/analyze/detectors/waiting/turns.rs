//! Turns on one thing: a waiting span's child run one at a time while
//! many of it wait; or on *k* places, a child that waits run *k* at a time
//! (a semaphore of *k* permits).

use perf_layer::dump::CallsiteStats;

use crate::analyze::context::Context;
use crate::stats;

/// A child of a waiting span that ran one at a time through its window
/// while the waiting span's calls were open several at once: they take
/// turns on one thing the child's spans hold ([`Turns::of`]).
pub(super) struct Turns {
    /// The child's index.
    child: usize,
    /// The waiting span's.
    waiting: usize,
    /// The child's spans open at once over its window.
    pub(super) child_at_once: f64,
    /// The waiting span's.
    waiting_at_once: f64,
    /// How many of the child run at once: the places taken in turns (one:
    /// a lock, a semaphore of one permit; more: a semaphore's permits, a
    /// pool's connections).
    pub(super) places: f64,
}

/// A child open at most this many at once, on average over its window,
/// runs one at a time...
pub(super) const ONE_AT_A_TIME: f64 = 1.05;
/// ...and at least this many, back to back: always one of it.
const BACK_TO_BACK: f64 = 0.9;
/// The waiting span's calls open at least this many at once.
const MANY_WAITING: f64 = 2.0;
/// The child's window at least this share of the waiting span's, over at
/// least this many of its calls.
const TURNS_WINDOW: f64 = 0.5;
const TURNS_MIN_CALLS: u64 = 20;
/// Places taken in turns beyond one: at most this many...
const MAX_PLACES: f64 = 8.0;
/// ...where the waiting span waited outside its children at least this
/// share of its wall time (for its turn: a coincidence, sixteen callers
/// awaiting a 1 ms child beside a 7 ms one, also opens the first two at a
/// time, and their waits are the children's; a waiting finding asks as
/// much by default, `min_idle_ratio`, and a user may ask less)...
const OWN_WAIT_SHARE: f64 = 0.5;
/// ...and the child itself waited: busy at most this share of its wall
/// time (a child computing as many at a time as the runtime has workers
/// is bound by the workers).
const WAITING_CHILD_BUSY: f64 = 0.5;

/// The places a span inside `at_once` times at once on average ran back
/// to back on: a whole number k of 2 to [`MAX_PLACES`], `at_once` within
/// [`BACK_TO_BACK`] times k and k plus what [`ONE_AT_A_TIME`] allows over
/// one (a semaphore of k permits, a pool of k connections). `None`
/// otherwise. `blocked` reads a pool of threads' connections by it too.
pub(crate) fn places_back_to_back(at_once: f64) -> Option<f64> {
    let k = at_once.round();
    ((2.0..=MAX_PLACES).contains(&k) && (k * BACK_TO_BACK..=k + (ONE_AT_A_TIME - 1.0)).contains(&at_once)).then_some(k)
}

impl Turns {
    /// Whether a child of callsite `cs` (by call edge) ran back to back one
    /// at a time (its wall time over its window between [`BACK_TO_BACK`]
    /// and [`ONE_AT_A_TIME`]) through at least [`TURNS_WINDOW`] of `cs`'s
    /// window, while `cs`'s calls were open at least [`MANY_WAITING`] at
    /// once. Sixteen tasks' `call_upstream` taking a permit of a one-permit
    /// `Semaphore` and holding it across a 2 ms `upstream`: `upstream` 1.00
    /// at a time, `call_upstream` 15.9, read as a plain wait with more
    /// permits the second of six fixes; sixteen permits served 15 times the
    /// requests. Sixteen tasks' `get_user` holding a `tokio::sync::Mutex`'s
    /// guard across a 1 ms `fetch_upstream` on a cache miss read the same
    /// (0.95 and 15.9 at a time); dropping the guard before the fetch
    /// served 19 times the requests, so the guard comes first in the fix.
    ///
    /// Or a child that waits, run back to back a whole number of spans at
    /// a time, two to [`MAX_PLACES`], while the waiting span was open at
    /// least [`MANY_WAITING`] times that many at once and waited outside
    /// its children [`OWN_WAIT_SHARE`] of its wall time or more
    /// (`own_idle_ns`): sixteen tasks' `handle` taking a permit of a
    /// two-permit `Semaphore` around `call_upstream` (a 1 ms timer) read
    /// `call_upstream` 1.97 at a time (2.95 and 3.94 with three and four
    /// permits) and `handle` 16.0, waiting 87% of its wall time of its own,
    /// with more permits the second of six fixes; sixteen permits served
    /// 6.1 times the requests.
    pub(super) fn of(cx: &Context<'_>, cs: &CallsiteStats, own_idle_ns: f64) -> Option<Self> {
        let window = cs.active?.len_ns() as f64;
        let waiting_at_once = stats::ratio(cs.wall_ns.sum as f64, window);
        if waiting_at_once < MANY_WAITING {
            return None;
        }
        let waiting = cx.index_of(cs.id)?;
        let own_share = stats::share(own_idle_ns, cs.wall_ns.sum as f64);
        cx.child_edges(cs.id)
            .filter_map(|e| {
                let i = cx.index_of(e.child)?;
                let child = &cx.dump.callsites[i];
                let theirs = child.active?.len_ns() as f64;
                let child_at_once = stats::ratio(child.wall_ns.sum as f64, theirs);
                let places = child_at_once.round().max(1.0);
                let in_turns = if places <= 1.0 {
                    (BACK_TO_BACK..=ONE_AT_A_TIME).contains(&child_at_once)
                } else {
                    let busy = stats::share(child.busy_ns.sum as f64, child.wall_ns.sum as f64);
                    places_back_to_back(child_at_once).is_some()
                        && waiting_at_once >= MANY_WAITING * places
                        && own_share >= OWN_WAIT_SHARE
                        && busy <= WAITING_CHILD_BUSY
                };
                (child.calls >= TURNS_MIN_CALLS && theirs >= TURNS_WINDOW * window && in_turns).then_some(
                    Turns {
                        child: i,
                        waiting,
                        child_at_once,
                        waiting_at_once,
                        places,
                    },
                )
            })
            .max_by(|a, b| a.child_at_once.total_cmp(&b.child_at_once))
    }

    pub(super) fn clause(&self, cx: &Context<'_>) -> String {
        if self.places > 1.0 {
            return format!(
                "; its child `{0}` ran {1} at a time, back to back ({2:.2} at a time over its window), while it was open {3:.1} at a time and waited outside its children: they take turns on {1} places held while `{0}` runs (a semaphore of {1} permits, a pool of {1} connections)",
                cx.rows[self.child].location.label,
                self.places,
                self.child_at_once,
                self.waiting_at_once,
            );
        }
        format!(
            "; its child `{}` ran one at a time, back to back ({:.2} at a time over its window), while it was open {:.1} at a time: they take turns on one thing held while `{}` runs (a lock whose guard is held across it, a semaphore of one permit, a single connection)",
            cx.rows[self.child].location.label,
            self.child_at_once,
            self.waiting_at_once,
            cx.rows[self.child].location.label,
        )
    }

    pub(super) fn fix(&self, cx: &Context<'_>) -> String {
        if self.places > 1.0 {
            return format!(
                "They take turns on {2} places held while `{0}` runs, {3:.1} `{1}`s open at once: where `{1}` takes a permit of a semaphore of {2} (or a connection of a pool of {2}) around `{0}` and what `{0}` calls can serve more at once, raise the limit; else make `{0}` shorter, as each turn waits for it",
                cx.rows[self.child].location.label,
                cx.rows[self.waiting].location.label,
                self.places,
                self.waiting_at_once,
            );
        }
        format!(
            "They take turns on one thing held while `{0}` runs: where `{1}` holds a lock's guard across it (a `tokio::sync::Mutex` or `RwLock` locked before `{0}` is awaited), drop the guard before awaiting `{0}` and lock again to store what it returns; where what `{0}` calls can serve more at once, give it room (more semaphore permits, a connection pool, a lock per key); else make `{0}` shorter, as each turn waits for it",
            cx.rows[self.child].location.label,
            cx.rows[self.waiting].location.label,
        )
    }
}
