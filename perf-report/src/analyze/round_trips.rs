//! Calls that are round trips, made one after another: a caller that
//! fetches a list item by item (an N+1), each call mostly waiting on a few
//! microseconds of its own CPU. What each costs is paid per call (its
//! system calls and wake-ups, and the far side's work per request), so
//! batching the calls into one request is the fix, where overlapping them
//! removes only the waits. The hot spot and blocked findings read it:
//! computing or waiting, the calls are the cost.
//!
//! A fresh tokio service's `load_order` fetched its 40 items one request
//! each from a database process over loopback: `fetch_item` a critical hot
//! spot, 82.7% of the spans' CPU at about 11 µs a call, with "Memoize" its
//! first fix. The same with four threads and blocking sockets: `fetch_item`
//! blocked, critical, its first fix to find what it blocks on. One request
//! for the 40 made 3.6 and 2.3 times the orders.
//!
//! Where the process kept its cores busy while they waited, their waits
//! give little back but their CPU does: the waiting findings leave them to
//! the hot spot ([`left_to_the_hot_spot`]), whose gain, where their CPU is
//! system calls, is all but one call's ([`RoundTrips::batched_share`]).

use perf_layer::dump::CallsiteStats;

use crate::analyze::busy_cores::BusyCores;
use crate::analyze::context::Context;
use crate::analyze::detectors::hot_spot;
use crate::analyze::detectors::waiting::{Settings, sequential_caller};
use crate::analyze::finding::Evidence;
use crate::analyze::rows::CallsiteRow;
use crate::stats;
use crate::units::{self, Unit};

/// A caller makes at least this many of the calls a call, one after
/// another (as `waiting` reads a chain of calls: their wall time about the
/// caller's)...
const PER_CALL: f64 = 4.0;

/// ...each call off its CPU at least this share of its wall time (0.5:
/// idle between polls, or blocked)...
const WAITING: f64 = 0.5;

/// ...on at most this much of its own CPU a call (50 µs): more is work per
/// item, which batching does not remove.
const MAX_CPU_NS: f64 = 50_000.0;

/// ...filling at least this share of the caller's wall time (0.5; or the
/// waiting finding's bar for a chain its caller waits out,
/// `sequential_fill`, where that is lower).
const MIN_FILL: f64 = 0.5;

/// The most of their CPU a batched request is said to remove (0.9): the
/// batch still pays one round trip, and each item's own work.
const MAX_BATCHED: f64 = 0.9;

/// A callsite's calls made one after another by their caller, each a round
/// trip.
#[derive(Debug, Clone)]
pub(crate) struct RoundTrips {
    caller: String,
    per_call: f64,
    /// Its wall time off its CPU (idle, or its own time off the CPU), share.
    waiting: f64,
    cpu_per_call_ns: f64,
}

impl RoundTrips {
    /// `cs`'s calls as round trips, where they are; `on_cpu`, its self
    /// time on the CPU as the finding counts it.
    pub(crate) fn of(
        cx: &Context<'_>,
        cs: &CallsiteStats,
        row: &CallsiteRow,
        on_cpu: f64,
    ) -> Option<Self> {
        // The calls need not fill the caller (as a chain the caller waits
        // out does): a fresh cart pricer's 30 quotes a cart, each a round
        // trip to a pricer thread, filled 79% of `price_cart` beside its
        // discounts; one request for the 30 made 2.4 times the carts.
        let waiting = &cx.config.classes.waiting;
        let settings = Settings {
            sequential_fill: waiting.sequential_fill.min(MIN_FILL),
            ..waiting.clone()
        };
        let chain = sequential_caller(cx, cs, &settings)?;
        if chain.side_by_side || chain.per_call < PER_CALL {
            return None;
        }
        let wall = cs.wall_ns.sum as f64;
        let off = cs.idle_ns.sum as f64 + (cs.self_ns.sum as f64 - row.self_cpu_ns).max(0.0);
        let waiting = stats::share(off, wall);
        let cpu_per_call_ns = on_cpu / cs.calls.max(1) as f64;
        (waiting >= WAITING && cpu_per_call_ns <= MAX_CPU_NS).then_some(Self {
            caller: chain.caller,
            per_call: chain.per_call,
            waiting,
            cpu_per_call_ns,
        })
    }

    /// The share of the calls' self time on the CPU that one batched
    /// request for a caller's calls removes, where that CPU is their system
    /// calls (the hot spot's kernel reading): all but one call's a caller's
    /// call, at most [`MAX_BATCHED`]. A fresh client's 40 fetches an order
    /// over loopback, 69% of the CPU in the kernel while they ran, batched:
    /// 2.3 times the orders.
    pub(crate) fn batched_share(&self) -> f64 {
        (1.0 - 1.0 / self.per_call).clamp(0.0, MAX_BATCHED)
    }

    /// The plan step's gain, for a finding of cost `cost` (its share of
    /// `of`) that gives back `gain`; `name`, the span in prose.
    pub(crate) fn statement(&self, name: &str, cost: f64, gain: f64, of: &str) -> String {
        format!(
            "batching the {:.0} calls `{}` makes a call into one request removes about {} of {name}'s self time on the CPU, its system calls ({} of {of}), and saves {} of {of}",
            self.per_call,
            self.caller,
            units::pct(self.batched_share()),
            units::pct(cost),
            units::pct(gain)
        )
    }

    /// The figures it was read from.
    pub(crate) fn evidence(&self) -> [Evidence; 3] {
        [
            Evidence::new(
                "calls per caller's call, one after another",
                self.per_call,
                Unit::Count,
                Some(PER_CALL),
            ),
            Evidence::new(
                "share of its wall time off its CPU",
                self.waiting,
                Unit::Share,
                Some(WAITING),
            ),
            Evidence::new(
                "on the CPU a call",
                self.cpu_per_call_ns,
                Unit::Ns,
                Some(MAX_CPU_NS),
            ),
        ]
    }

    /// The finding's summary's clause.
    pub(crate) fn clause(&self) -> String {
        format!(
            "; `{}` calls it {:.0} times a call, one after another, each mostly waiting ({} of its wall time off its CPU) beside {} of its own CPU: a round trip's cost (its system calls and wake-ups), paid per call",
            self.caller,
            self.per_call,
            units::pct(self.waiting),
            units::ns(self.cpu_per_call_ns)
        )
    }

    /// The first fix.
    pub(crate) fn fix(&self) -> String {
        format!(
            "Make fewer calls: `{}` makes {:.0} a call, one after another, each a round trip; fetch the items in one batched call (every key in one request: `MGET`, `WHERE id IN (...)`, a bulk endpoint), which removes most of their CPU with the waits, where overlapping the calls (`join_all`, threads) removes only the waits",
            self.caller, self.per_call
        )
    }
}

/// Whether round trips that wait, with a cost of `cost` (a share of the
/// waiting finding's whole) whose gain the busy cores bound (`busy`), are
/// better read as a hot spot: their waits cannot come back, the process's
/// cores busy while they waited, but their CPU can, as batching removes
/// their system calls and wake-ups (and the far side's work, where it is
/// in the process) with the waits. Where their own CPU (of the callsite at
/// index `i`) is a hot spot of a larger gain of the process's CPU than the
/// waits' of the wall time, the waiting finding (`blocked`,
/// `serialization`) leaves them to it, which `blocked` would supersede. A
/// fresh client's four threads fetching items one round trip each from a
/// database's threads in the same process, the two cores busy: `blocked`
/// gave back 0.6% of the run's wall time, and nothing where the cores were
/// busier (a run in four), where the calls were 49% of the process's CPU
/// and one request for the 40 made 2.3 times the orders.
pub(crate) fn left_to_the_hot_spot(
    cx: &Context<'_>,
    i: usize,
    cs: &CallsiteStats,
    cost: f64,
    busy: &BusyCores,
) -> bool {
    let hot = &cx.config.classes.hot_spot;
    let cpu = cx.time_share(hot_spot::own_cpu_ns(
        cx,
        i,
        cx.children_instrumentation_ns(cs.id),
    ));
    cpu >= hot.min_share && cpu * hot.recoverable > cost * busy.recoverable(cost)
}
