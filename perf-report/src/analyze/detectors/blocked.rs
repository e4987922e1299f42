//! Blocked: a span whose self time is mostly off the CPU by its own doing
//! (voluntary context switches: a sleep, blocking I/O, a contended lock).
//!
//! Read from the layer's on-CPU figures, so only for spans it timed on the
//! CPU (long enough ones, on Linux). Off-CPU time that involuntary switches
//! explain is preemption, not blocking: `cpu_contention` reports it. An
//! async span that blocks does so inside a poll, which stalls the runtime
//! worker running it and every task queued behind it; so does a
//! synchronous span called inside an async span's polls (a `std` sleep or
//! a blocking read in a plain function an `async fn` calls).
//!
//! It is the diagnosis of a span that mostly blocks: not a hot spot (it
//! does not compute), and its tail is its blocking's (a sleep or a read that
//! sometimes takes longer), so it supersedes both for that span.
//!
//! A span blocked for another thread that was itself waiting is not the
//! wait to fix (`waits_on_a_wait`): a consumer blocked on a channel while
//! its producer sleeps on a timer, a caller blocked on a lock whose holder
//! writes to disk. The layer's watch sees the first blocked in a futex,
//! the rest of the process idle, and another thread waiting in a span of
//! its own outside a futex at the same moments; that span is the wait,
//! and has the finding. A fresh two-thread shipper (a producer on a 2 ms
//! timer, a consumer encoding and uploading each batch) read its
//! consumer's `recv` critical, 20% of the threads' wall time, beside the
//! producer's `tick` it waited for: the plan counted the one wait twice.
//! It is a note now.

use perf_layer::dump::CallsiteStats;
use serde::{Deserialize, Serialize};

use super::serialization::Crowd;
use super::waiting::turns::places_back_to_back;
use super::{Class, Detector, InPoll, Info, in_poll};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::busy_cores::BusyCores;
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::logging::{self, Logging};
use crate::analyze::round_trips::{self, RoundTrips};
use crate::analyze::rows::CallsiteRow;
use crate::analyze::stage;
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is blocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Blocked (off-CPU, not preempted) time is at least this share of its
    /// self time (default 0.5): the span mostly does not compute.
    pub min_blocked_share: f64,
    /// At least this many voluntary context switches per span (0.05): it
    /// gave up the CPU itself, in one call in twenty or more. A `std` lock
    /// that another thread holds now and then blocks a caller in one call
    /// in five to eleven, for as long as the holder keeps it: a fresh
    /// service's session lock, at 0.09 to 0.22 switches a call, was 10 to
    /// 16% of its runtime workers' wall time, and at 0.5 it was no finding.
    /// Rarer blocks are a blocking tail (`tail_latency`).
    pub min_voluntary_per_call: f64,
    /// Its blocked time is at least this share of the recording threads'
    /// wall time (0.05).
    pub min_share: f64,
    /// An async span: more than this many entered intervals (polls) per
    /// span on average (1.5).
    pub async_polls_per_call: f64,
    /// The share of the blocked time a fix gives back (0.5).
    pub recoverable: f64,
    /// Confidence is the blocked share x `timed calls / (timed calls +
    /// this)` (4).
    pub half_confidence_calls: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_blocked_share: 0.5,
            min_voluntary_per_call: 0.05,
            min_share: 0.05,
            async_polls_per_call: 1.5,
            recoverable: 0.5,
            half_confidence_calls: 4.0,
        }
    }
}

pub(crate) struct Blocked;

static INFO: Info = Info {
    title: "blocked, off the CPU",
    innermost: false,
    supersedes: &[Class::HotSpot, Class::TailLatency],
};

impl Detector for Blocked {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.blocked;
        let stages = stage::Stages::of(cx);
        for (i, cs, row) in cx.callsites() {
            let Some(b) = blocking(cx, cs, row) else {
                continue;
            };
            let Some(c) = &row.cpu else { continue };
            if unfound(cx, &stages, cs, row, &b).is_some() {
                continue;
            }
            let Blocking {
                poll,
                share,
                whole_name,
                waited_by,
                places,
            } = b;
            let timer = Timer::of(cs, c.self_blocked_share);
            let asleep = asleep_share(cs);
            // Threads each waiting out a timer (a fixed delay, or found
            // asleep: a retry's back-off) wait for neither work nor each
            // other, however many are inside at once.
            let crowd = Crowd::of(cx, cs, row)
                .filter(|crowd| crowd.waits_for_a_source(&cx.config.classes.serialization))
                .filter(|_| timer.is_none() && asleep.is_none());
            // Much of the CPU ran where no span was: a thread's span may be
            // waiting for work it handed to a pool (a `par_iter`). Several
            // threads wait for one pool at once, so their blocked time is
            // not comparable to the pool's CPU: said as an if.
            // A span the watch found asleep on a timer waits for no pool.
            let pool = cx
                .outside_cpu_ns()
                .filter(|_| poll.is_none() && asleep.is_none())
                .map(|(outside, cpu)| outside / cpu);
            let for_workers = waits_for_computing_threads(cs);
            // Entered once a call, yet it gave up the CPU many times a
            // call: it blocked again and again within each.
            let wakes = (poll.is_none()
                && asleep.is_none()
                && c.intervals_per_call <= s.async_polls_per_call
                && c.voluntary_per_call >= MANY_WAKES)
                .then_some(c.voluntary_per_call);
            // Waits give back wall time only where the cores would idle.
            let busy = cx.busy_cores(cs, share, s.recoverable);
            let trips = RoundTrips::of(cx, cs, row, c.self_on_cpu_ns);
            if trips.is_some() && busy.is_some_and(|b| round_trips::left_to_the_hot_spot(cx, i, cs, share, &b)) {
                continue;
            }
            let mut draft = Draft {
                class: Class::Blocked,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::WallTime,
                cost_share: share,
                recoverable: busy.map_or(s.recoverable, |b| b.recoverable(share)),
                confidence: c.self_blocked_share
                    * stats::sample_confidence(c.timed_calls, s.half_confidence_calls),
                summary: format!(
                    "off the CPU {} of its self time ({} in all, {:.1} voluntary switches per call): it blocks, it does not compute{}{}{}{}{}{}{}{}",
                    units::pct(c.self_blocked_share),
                    units::ns(c.self_blocked_ns),
                    c.voluntary_per_call,
                    timer.as_ref().map_or(String::new(), Timer::clause),
                    match &poll {
                        Some(InPoll::Own) => format!(
                            "; async ({:.1} polls per span), so it blocks inside a poll and stalls a runtime worker",
                            c.intervals_per_call
                        ),
                        Some(poll @ (InPoll::Caller(_) | InPoll::Worker)) => format!(
                            "; called inside {}, so it stalls a runtime worker",
                            poll.whose()
                        ),
                        None => String::new(),
                    },
                    match crowd {
                        Some(crowd) => format!(
                            "; {:.1} threads inside at once and none moving: they wait together, for work (a job queue, a channel: what feeds them sets the pace) or for one another (a lock held across I/O: shorten what is done under it)",
                            crowd.inside
                        ),
                        None => String::new(),
                    },
                    pool.map_or(String::new(), |share| format!(
                        "; {} of the process's CPU ran outside every span: if it waits for work it hands to a pool (rayon's `par_iter`, worker threads), that work is its blocked time",
                        units::pct(share)
                    )),
                    for_workers.map_or(String::new(), |cores| format!(
                        "; it waits for other threads while they compute ({cores:.2} of a core busy beside its watched waits, blocked in a futex): a barrier or a join waiting for a straggler, or a lock whose holder computes, so its wait is their work"
                    )),
                    wakes.map_or(String::new(), |n| format!(
                        "; entered once a call, it gave up the CPU {n:.1} times a call: it blocked again and again within each"
                    )),
                    asleep.map_or(String::new(), |share| format!(
                        "; the watch found it asleep on a timer (`std::thread::sleep`) through {} of its watched waits",
                        units::pct(share)
                    )),
                    waited_by.map_or(String::new(), |i| if places > 1.0 {
                        format!(
                            "; other threads wait for it (`{}` is blocked while it waits) and its spans ran {places} at a time, back to back ({:.2} at a time over its window): they take turns on {places} places held while it runs (a pool of {places} connections, a semaphore of {places} permits, {places} threads that produce), so its waits hold the run up on each, and are of the run's wall time on each place",
                            cx.rows[i].location.label,
                            row.busy_total_ns as f64 / cx.live_window_ns(cs),
                        )
                    } else {
                        format!(
                            "; other threads wait for it (`{}` is blocked while it waits) and its spans ran one at a time: its waits hold the run up, and are of the run's wall time",
                            cx.rows[i].location.label
                        )
                    }),
                ),
                evidence: vec![
                    Evidence::new(
                        "blocked share of self time",
                        c.self_blocked_share,
                        Unit::Share,
                        Some(s.min_blocked_share),
                    ),
                    Evidence::new(
                        "voluntary switches per span",
                        c.voluntary_per_call,
                        Unit::Number,
                        Some(s.min_voluntary_per_call),
                    ),
                    Evidence::new(&format!("share of {whole_name}"), share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                    Evidence::new("blocked time", c.self_blocked_ns, Unit::Ns, None),
                    Evidence::new("self time on the CPU", c.self_on_cpu_ns, Unit::Ns, None),
                    Evidence::new(
                        "entered intervals per span",
                        c.intervals_per_call,
                        Unit::Number,
                        Some(s.async_polls_per_call),
                    ),
                    Evidence::new("timed calls", c.timed_calls as f64, Unit::Count, None),
                ],
            };
            if let Some(b) = &busy {
                draft.summary.push_str(&b.summary());
                draft.evidence.push(b.evidence());
            }
            if let Some(t) = &trips {
                draft.summary.push_str(&t.clause());
                draft.evidence.extend(t.evidence());
            }
            let logs = logging::of(cs);
            if let Some(lg) = logs {
                draft.summary.push_str(&format!(
                    "; {}: a writer that blocks (a full pipe a slow reader drains, a slow disk, the lock of a stdout other threads write to)",
                    lg.clause()
                ));
                draft.evidence.push(lg.evidence());
            }
            found.push(cx.score(draft, |f| {
                let beside_work = busy.is_some_and(|b| b.waits_beside_work());
                let carried = super::carried_off_workers(cx, cs.id);
                let mut advice = advice(
                    f,
                    Causes {
                        in_poll: poll.is_some(),
                        carried,
                        for_workers: for_workers.is_some(),
                        pool: pool.is_some() || beside_work,
                        logs,
                    },
                    whole_name,
                    busy,
                );
                // After the fixes of a cause the figures name (a stalled
                // worker, a pool, a log writer), before the general ones.
                let before_general = |advice: &Advice| {
                    advice
                        .fixes
                        .iter()
                        .position(|f| f.starts_with(FIND_WHAT))
                        .unwrap_or(0)
                };
                if let Some(t) = &timer {
                    let at = before_general(&advice);
                    advice.fixes.insert(at, t.fix());
                }
                if let Some(n) = wakes {
                    let herd = crowd.map(|c| c.inside);
                    let at = if herd.is_some() { 0 } else { before_general(&advice) };
                    advice.fixes.insert(at, woken(n, herd));
                }
                if asleep.is_some() {
                    // Who waits while it sleeps: a wait in series, or one
                    // for what it holds across its sleep.
                    let waiter = waited_by.or_else(|| waits_for_its_hold(cx, i));
                    let at = before_general(&advice);
                    advice.fixes.insert(at, sleeps(waiter.map(|j| cx.rows[j].location.label.as_str())));
                }
                if let Some(t) = &trips {
                    let at = before_general(&advice);
                    advice.fixes.insert(at, t.fix());
                }
                if let Some(j) = waited_by.filter(|_| places > 1.0) {
                    advice.fixes.insert(
                        0,
                        format!(
                            "Give it more places: its spans ran {places} at a time, back to back, while `{}` waited for one (a connection of a pool of {places}, a permit of a semaphore of {places}, an item from {places} producing threads); where what it calls can serve more at once (a database's connections, an upstream's capacity), raise the limit; else make it shorter, as each waiter waits for it",
                            cx.rows[j].location.label
                        ),
                    );
                }
                advice
            }));
        }
    }

}

/// A span entered once a call (not async) that gives up the CPU at least
/// this many times a call blocks again and again within each call.
const MANY_WAKES: f64 = 4.0;

/// What to do about a span that blocks `per_call` times a call, entered
/// once; `herd`, the threads inside at once where they wait together for
/// a source. Eight workers taking jobs from one `Condvar` queue whose
/// producer woke them all for each job (`notify_all`) blocked 8.6 times a
/// `next_job`, 7.5 threads inside at once, and its first fix suspected a
/// pool; `notify_one` made 1.4 times the jobs.
fn woken(per_call: f64, herd: Option<f64>) -> String {
    match herd {
        Some(inside) => format!(
            "It blocks {per_call:.1} times a call with {inside:.1} threads waiting together: where they wait on one `Condvar` that wakes them all for each item (`notify_all`: a thundering herd, all but one woken for nothing, each wake-up a switch and a turn on the lock), wake one per item (`notify_one`) or hand items over a channel, which wakes one receiver; where each call makes many blocking calls (reads in small pieces, a lock taken in a loop), make fewer"
        ),
        None => format!(
            "It blocks {per_call:.1} times a call: many blocking calls in each (reads or writes in small pieces, a lock taken in a loop, round trips) or a wait woken for nothing and resumed (a `Condvar`'s `notify_all`); make fewer, larger calls (a `BufReader` or `BufWriter`, one lock for the loop, one request for the items), or wake a waiter only when there is work for it"
        ),
    }
}

/// What to do about a span that waits asleep on a timer; `waiter`, the
/// callsite whose waits are its sleep's, where one is.
fn sleeps(waiter: Option<&str>) -> String {
    let held = waiter.map_or(String::new(), |w| {
        format!(
            "; `{w}` waits while it sleeps: if it holds what they need across the sleep (a lock, a connection), let go of it first"
        )
    });
    format!(
        "It sleeps (`std::thread::sleep`): a loop that sleeps between looks at a queue, a flag or a file (polling) makes each item wait up to the sleep's length before it is seen, so block on the source instead (a channel's `recv`, a `Condvar`, `thread::park` with an `unpark` where the work is handed over); a sleep that paces retries or a rate limit is the wait itself: shorten it, or do other work meanwhile{held}"
    )
}

/// At least this share of a span's watched waits asleep on a timer says
/// it sleeps.
const ASLEEP_SHARE: f64 = 0.5;

/// The share of `cs`'s watched waits (at least [`MIN_WATCHED`] of them)
/// spent asleep on a timer, where it is at least [`ASLEEP_SHARE`]. A
/// worker that slept 2 ms whenever it found its job queue empty was
/// blocked first, rightly, with "find what it blocks on" its first fix; a
/// `Condvar` in place of the sleep made 3.5 times the jobs.
///
/// [`MIN_WATCHED`]: crate::analyze::busy_cores::MIN_WATCHED
fn asleep_share(cs: &CallsiteStats) -> Option<f64> {
    let w = enough_watched(cs)?;
    let share = stats::share(w.asleep_ns? as f64, w.wait_ns as f64);
    (share >= ASLEEP_SHARE).then_some(share)
}

const FIND_WHAT: &str = "Find what it blocks on: add child spans around its file and network I/O, lock acquisitions and sleeps; the child that is off the CPU is the cause";

/// A blocked span whose every call waits about as long: a fixed delay (a
/// timer, a fixed round trip), not a queue or a load, which vary
/// ([`Timer::of`]).
struct Timer {
    p50_ns: u64,
    p99_ns: u64,
}

/// A timer's wait is at least this long a call...
const TIMER_MIN_NS: u64 = 1_000_000;
/// ...its calls' busy time p99 at most this many times their p50, and
/// at least [`TIMER_NEAR`] of them at least this share of it...
const TIMER_SPREAD: f64 = 1.25;
const TIMER_FLOOR: f64 = 0.75;
const TIMER_NEAR: f64 = 0.95;
/// ...blocked at least this share of it, over at least this many calls.
const TIMER_BLOCKED: f64 = 0.9;
const TIMER_MIN_CALLS: u64 = 20;
/// Linux's delayed ACK holds an acknowledgement at least 40 ms: waits a
/// little over it, in this range, are said to perhaps be one.
const DELAYED_ACK_NS: std::ops::RangeInclusive<u64> = 38_000_000..=48_000_000;

impl Timer {
    /// Whether callsite `cs`, blocked `blocked_share` of its self time,
    /// waits a fixed delay each call: at least [`TIMER_MIN_CALLS`]
    /// calls blocked at least [`TIMER_BLOCKED`] of it, their busy time
    /// p50 at least [`TIMER_MIN_NS`], p99 at most [`TIMER_SPREAD`] times
    /// it and [`TIMER_NEAR`] of them at least [`TIMER_FLOOR`] of it. A fresh
    /// thread-per-connection server writing each answer in two small
    /// writes under Nagle's algorithm: its four clients' `request` and its
    /// `serve_one` blocked 44.0 ms at p50 and 44.6 at p99 (280 requests in
    /// 3 s; `set_nodelay(true)`, 657,318).
    fn of(cs: &CallsiteStats, blocked_share: f64) -> Option<Self> {
        let b = &cs.busy_ns;
        let p50 = b.p50 as f64;
        if cs.calls < TIMER_MIN_CALLS
            || blocked_share < TIMER_BLOCKED
            || b.p50 < TIMER_MIN_NS
            || b.p99 as f64 > TIMER_SPREAD * p50
        {
            return None;
        }
        // The first or last call of a loop (a connection's, before its
        // peer's first answer or after its last) may wait less.
        let h = b.decode().ok()?;
        let near: u64 = h
            .iter_recorded()
            .filter(|v| v.value_iterated_to() as f64 >= TIMER_FLOOR * p50)
            .map(|v| v.count_at_value())
            .sum();
        (stats::share(near as f64, h.len() as f64) >= TIMER_NEAR).then_some(Timer {
            p50_ns: b.p50,
            p99_ns: b.p99,
        })
    }

    fn delayed_ack(&self) -> bool {
        DELAYED_ACK_NS.contains(&self.p50_ns)
    }

    fn clause(&self) -> String {
        format!(
            "; every call waits about as long (p50 {}, p99 {}): a fixed delay, not a queue's or a load's, which vary (a sleep, a poll interval, a timeout, a fixed round trip{})",
            units::ns(self.p50_ns as f64),
            units::ns(self.p99_ns as f64),
            if self.delayed_ack() {
                ", or a delayed ACK: about 40 ms on Linux, where a peer writes a small message in two writes under Nagle's algorithm"
            } else {
                ""
            }
        )
    }

    fn fix(&self) -> String {
        format!(
            "Find the fixed delay it waits out ({} a call): a sleep or a poll interval to shorten or to replace by waking on the event, a timeout that fires, a round trip to batch or to bring closer{}",
            units::ns(self.p50_ns as f64),
            if self.delayed_ack() {
                "; on a socket, set `TCP_NODELAY` (`TcpStream::set_nodelay(true)`) on both ends or write each message in one write (a `BufWriter` flushed once), so a small write does not wait for the peer's delayed ACK"
            } else {
                ""
            }
        )
    }
}

/// A span blocked past the finding's bars: where it blocks, and its
/// blocked time's share of the whole it is reckoned in.
pub(crate) struct Blocking<'c> {
    /// Whose poll it blocks inside, if any.
    pub(crate) poll: Option<InPoll<'c>>,
    /// Its blocked self time over the whole.
    pub(crate) share: f64,
    /// The whole, in words.
    pub(crate) whole_name: &'static str,
    /// A callsite (its row index) whose waits are this one's, when its
    /// spans ran one at a time, or back to back on a few places: its waits
    /// hold the run up.
    pub(crate) waited_by: Option<usize>,
    /// The places its spans ran on, back to back, where waited by: 1, or
    /// 2 to 8 ([`places_back_to_back`]: a pool of that many connections, a semaphore
    /// of that many permits).
    pub(crate) places: f64,
}

/// Whether `cs` (its row `row`) blocks enough to be found: blocked at
/// least `min_blocked_share` of its self time, `min_voluntary_per_call`
/// switches a span, and `min_share` of the recording threads' wall time
/// (inside a task's poll, of the runtime workers': blocking there stalls a
/// worker, at most one per core, not a blocking pool's threads that also
/// record spans). The detector's bars, and the note's of a span whose
/// wait is another's.
pub(crate) fn blocking<'c>(
    cx: &'c Context<'_>,
    cs: &CallsiteStats,
    row: &CallsiteRow,
) -> Option<Blocking<'c>> {
    let s = &cx.config.classes.blocked;
    let c = row.cpu.as_ref()?;
    let poll = in_poll(cx, cs.id, row, s.async_polls_per_call);
    let waited = waited_for(cx, cs, row).filter(|_| poll.is_none());
    let (waited_by, places) = (waited.map(|w| w.0), waited.map_or(1.0, |w| w.1));
    let (whole, whole_name) = match waited {
        Some((_, places)) if places > 1.0 => (cx.run_wall_ns * places, "the run's wall time on each of its places"),
        Some(_) => (cx.run_wall_ns, "the run's wall time"),
        None => cx.off_cpu_whole(poll.is_some()),
    };
    let share = stats::share(c.self_blocked_ns, whole);
    (c.self_blocked_share >= s.min_blocked_share
        && c.voluntary_per_call >= s.min_voluntary_per_call
        && share >= s.min_share)
        .then_some(Blocking {
            poll,
            share,
            whole_name,
            waited_by,
            places,
        })
}

/// A blocked span whose watched waits were mostly in a futex
/// ([`waits_for_a_thread`]) while the rest of the process kept at least
/// this much of a core busy on average waits for threads that compute.
const COMPUTING_BESIDE_CORES: f64 = 0.75;

/// The cores the rest of the process kept busy while `cs` waited, when it
/// waited for another thread ([`waits_for_a_thread`]) beside at least
/// [`COMPUTING_BESIDE_CORES`]: a barrier or a join waiting for a straggler,
/// a lock whose holder computes. Two workers meeting at a `Barrier` after
/// chunks of 1 and 2 ms read "it blocks, it does not compute", advice for
/// I/O and locks; balancing the chunks made the run 26% shorter.
fn waits_for_computing_threads(cs: &CallsiteStats) -> Option<f64> {
    let cores = waits_for_a_thread(cs)?.others_cores()?;
    (cores >= COMPUTING_BESIDE_CORES).then_some(cores)
}

/// `cs`'s watched waits when there are [`MIN_WATCHED`] of them and at
/// least [`FOR_A_THREAD_SHARE`] of their time was in a futex: waiting for
/// another thread (a channel, a lock, a join). `None` in older dumps.
///
/// [`MIN_WATCHED`]: crate::analyze::busy_cores::MIN_WATCHED
pub(crate) fn waits_for_a_thread(cs: &CallsiteStats) -> Option<&perf_layer::dump::WatchedWaits> {
    let w = enough_watched(cs)?;
    (w.for_a_thread_ns? as f64 >= FOR_A_THREAD_SHARE * w.wait_ns as f64).then_some(w)
}

/// `cs`'s watched waits, where there are [`MIN_WATCHED`] of them, with
/// time in them.
///
/// [`MIN_WATCHED`]: crate::analyze::busy_cores::MIN_WATCHED
fn enough_watched(cs: &CallsiteStats) -> Option<&perf_layer::dump::WatchedWaits> {
    cs.watched_waits
        .as_ref()
        .filter(|w| w.intervals >= crate::analyze::busy_cores::MIN_WATCHED && w.wait_ns > 0)
}

/// At least this many glances ([`WatchedWaits::glances`]) tell where a
/// callsite's short waits block.
///
/// [`WatchedWaits::glances`]: perf_layer::dump::WatchedWaits::glances
const MIN_GLANCES: u64 = 8;

/// The share of `cs`'s glances that found its thread blocked in a futex
/// (waiting for another thread of the process), where the watch glanced at
/// least [`MIN_GLANCES`] times; `None` otherwise and in older dumps.
pub(crate) fn glanced_in_futex(cs: &CallsiteStats) -> Option<f64> {
    let w = cs.watched_waits.as_ref()?;
    let glances = w.glances.filter(|&n| n >= MIN_GLANCES)?;
    Some(w.glances_in_futex? as f64 / glances as f64)
}

/// At most this many threads inside a span at once on average, for its
/// waits to be one thread's, in series ([`waited_for`]).
pub(crate) const ONE_AT_A_TIME: f64 = 1.2;

/// Whether other threads' waits are `cs`'s ([`waits_on_a_wait`] of
/// another callsite names it) and its spans ran one at a time: its waits
/// hold the others up, so they are of the run's wall time, not spread over
/// every recording thread's. A fresh worker pool's producer (`read_item`,
/// a 1 ms read an item, four workers waiting on it) bounded the run: its
/// waits were 82% of the run's wall time, and read as 16% of the five
/// recording threads', medium.
///
/// Or ran back to back on a few places: inside a whole number of times
/// at once, two to eight ([`places_back_to_back`]: a pool of two connections, a semaphore
/// of two permits): its waits hold the others up on each place. Eight
/// threads checking a connection out of a pool of two (a `Mutex<Vec>` and
/// a `Condvar`) for a 1 ms `query`: `checkout` waited 74% of the threads'
/// wall time beside `query`'s sleeps, its wait "counted there", and
/// `query` read high, "23.6% of the recording threads' wall time", where
/// it ran 1.93 at a time and a pool of eight served four times the
/// requests. Returns the waiting callsite (its row index) and the places.
fn waited_for(cx: &Context<'_>, cs: &CallsiteStats, row: &CallsiteRow) -> Option<(usize, f64)> {
    let me = cx.index_of(cs.id)?;
    let at_once = row.busy_total_ns as f64 / cx.live_window_ns(cs);
    let places = if at_once <= ONE_AT_A_TIME {
        1.0
    } else {
        places_back_to_back(at_once)?
    };
    cx.callsites()
        .filter(|(_, other, _)| other.id != cs.id)
        .find(|(_, other, _)| waits_on_a_wait(cx, other).is_some_and(|(i, _)| i == me))
        .map(|(i, _, _)| (i, places))
}

/// A blocked span whose watched waits were, at least this share of their
/// time, in a futex: waiting for another thread...
const FOR_A_THREAD_SHARE: f64 = 0.5;
/// ...while the rest of the process kept under this many cores busy: the
/// thread it waited for was waiting too...
const IDLE_BESIDE_CORES: f64 = 0.25;
/// ...and one other callsite was waiting outside a futex (a sleep, a read)
/// through at least this share of those futex waits, in a number of calls
/// in step with its own ([`stats::in_step`]). A thread that sleeps beside
/// it through the run in a few long calls (a heartbeat) is no cause: the
/// thread it waits for may record no span.
const BESIDE_SHARE: f64 = 0.5;

/// The wait `cs`'s blocking is part of: the callsite (its row index) that
/// another thread waited in, outside a futex, through most of the time
/// `cs`'s spans were blocked in one with the rest of the process idle, and
/// that share. `None` without [`MIN_WATCHED`] watched waits, in older
/// dumps, or where no one wait explains it.
///
/// [`MIN_WATCHED`]: crate::analyze::busy_cores::MIN_WATCHED
pub(crate) fn waits_on_a_wait(cx: &Context<'_>, cs: &CallsiteStats) -> Option<(usize, f64)> {
    if waits_for_a_thread(cs)?.others_cores()? >= IDLE_BESIDE_CORES {
        return None;
    }
    let (other, share) = most_beside(cx, cs)?;
    if share < BESIDE_SHARE || !stats::in_step(cx.dump.callsites[other].calls, cs.calls) {
        return None;
    }
    Some((other, share))
}

/// A callsite beside whose futex waits another thread waited outside a
/// futex in one callsite at least this many times as often as that
/// callsite's spans wait so waits for what it holds ([`held_across`]).
const HOLDER_LIFT: f64 = 1.5;

/// The callsite (its row index) whose spans hold what `cs`'s futex waits
/// wait for across a wait of their own (a sleep, a read), and the share of
/// those futex waits it was waiting beside: at least [`BESIDE_SHARE`] of
/// them, and [`HOLDER_LIFT`] times the share of the run its spans wait so
/// (their busy time over the run, times their blocked share, less what
/// its own watched waits spent in a futex): a heartbeat sleeping through
/// the run is beside every wait and holds nothing. Unlike
/// [`waits_on_a_wait`], the rest of the process may compute meanwhile and
/// the calls need not go in step: three threads reading a config under
/// the lock a `refresh` thread held across a 1 ms sleep read a blocking
/// tail, "find what the slow calls share", with `refresh` a low blocked
/// finding; it was beside 80% of their futex waits, waiting so 37% of the
/// run, and sleeping before taking the lock made 1.55 times the reads.
///
/// Returns the callsite, the share and how many times what chance gives
/// it is.
pub(crate) fn held_across(cx: &Context<'_>, cs: &CallsiteStats) -> Option<(usize, f64, f64)> {
    let (other, share) = most_beside(cx, cs)?;
    let row = &cx.rows[other];
    let blocked = row.cpu.as_ref().map_or(1.0, |c| c.self_blocked_share);
    let in_futex = cx.dump.callsites[other]
        .watched_waits
        .as_ref()
        .and_then(|o| Some(stats::share(o.for_a_thread_ns? as f64, o.wait_ns as f64)))
        .unwrap_or(0.0);
    let live = row.busy_total_ns as f64 / cx.run_wall_ns.max(1.0);
    let waiting = (live * blocked * (1.0 - in_futex)).min(1.0);
    let lift = stats::ratio(share, waiting);
    (share >= BESIDE_SHARE && lift >= HOLDER_LIFT).then_some((other, share, lift))
}

/// A pause: a span asleep on a timer through at least [`PAUSE_ASLEEP`] of
/// its watched waits, in calls of at least [`PAUSE_NS`] at p50, one at a
/// time, that nothing was seen waiting for (no other span's waits are its,
/// in series or held across its sleep): a thread's own pacing (a
/// heartbeat, a periodic flush on a thread of its own) costs nothing. A
/// `heartbeat` sleeping 500 ms a call beside four request threads was a
/// medium blocked finding, "gives back 10.0%" of the threads' wall time.
/// Its asleep share, or `None`; `waited_by`, [`Blocking::waited_by`].
pub(crate) fn pause(cx: &Context<'_>, cs: &CallsiteStats, row: &CallsiteRow, waited_by: Option<usize>) -> Option<f64> {
    let asleep = asleep_share(cs).filter(|&a| a >= PAUSE_ASLEEP)?;
    let one_at_a_time = row.busy_total_ns as f64 <= ONE_AT_A_TIME * cx.live_window_ns(cs);
    let waited_on = waited_by.is_some() || waits_for_its_hold(cx, cx.index_of(cs.id)?).is_some();
    (cs.busy_ns.p50 >= PAUSE_NS && one_at_a_time && !waited_on).then_some(asleep)
}

/// Why a span that blocks enough ([`blocking`]) is no blocked finding:
/// its wait is another's, or costs nothing. The detector skips it and the
/// report says why in a note, the first reason that holds, in this order.
pub(crate) enum Unfound {
    /// Its wait is another thread's wait outside a futex
    /// ([`waits_on_a_wait`]): that callsite (its row index), through this
    /// share of its futex waits.
    WaitsOnAWait { other: usize, share: f64 },
    /// A pause of its own thread ([`pause`]), asleep this share of its
    /// watched waits.
    Pause { asleep: f64 },
    /// Threads waiting for work from outside every span ([`idle_pool`]).
    IdlePool(IdlePool),
    /// Paced by a pipeline's slowest stage ([`paced_by_a_stage`]): the
    /// stage (its row index) and the share of the run it fills.
    PacedByAStage { stage: usize, fill: f64 },
}

/// See [`Unfound`]; `b`, what [`blocking`] read of `cs`.
pub(crate) fn unfound(
    cx: &Context<'_>,
    stages: &stage::Stages,
    cs: &CallsiteStats,
    row: &CallsiteRow,
    b: &Blocking<'_>,
) -> Option<Unfound> {
    if let Some((other, share)) = waits_on_a_wait(cx, cs) {
        return Some(Unfound::WaitsOnAWait { other, share });
    }
    if let Some(asleep) = pause(cx, cs, row, b.waited_by) {
        return Some(Unfound::Pause { asleep });
    }
    if let Some(pool) = idle_pool(cx, cs, row, b.poll.is_some(), b.waited_by) {
        return Some(Unfound::IdlePool(pool));
    }
    b.poll
        .is_none()
        .then(|| paced_by_a_stage(cx, stages, cs))
        .flatten()
        .map(|(stage, fill)| Unfound::PacedByAStage { stage, fill })
}

/// A span waiting for another thread (in a futex through at least
/// [`FOR_A_THREAD_SHARE`] of its watched waits, or of the watch's glances
/// at its short waits; short of enough of either, its calls in step with
/// the stage's) beside a pipeline's slowest stage ([`stage::Stages`]):
/// its wait is the stage's. Halved, `transform` was still the slowest
/// stage, the process keeping 77% of its two cores busy, and its
/// neighbours' waits were still its. Returns the stage (its row index)
/// and the share of the run its calls fill.
pub(crate) fn paced_by_a_stage(
    cx: &Context<'_>,
    stages: &stage::Stages,
    cs: &CallsiteStats,
) -> Option<(usize, f64)> {
    // What the watch saw of its waits, where it saw enough: in a futex or
    // not. Short of that (a 3 s run's few glances), its calls in step with
    // the stage's (the same items through both) say it.
    let seen = match (enough_watched(cs), glanced_in_futex(cs)) {
        (Some(_), _) => Some(waits_for_a_thread(cs).is_some()),
        (None, Some(g)) => Some(g >= FOR_A_THREAD_SHARE),
        (None, None) => None,
    };
    if seen == Some(false) {
        return None;
    }
    stages.beside(cx, cs, seen.is_none())
}

/// Waiting for work from outside every span: the threads of a pool inside
/// a span, at least [`IDLE_POOL_INSIDE`] at once and none moving
/// ([`Crowd::none_moving`]), blocked in a futex
/// through at least [`IDLE_POOL_IN_FUTEX`] of their watched waits (waiting
/// for another thread) while the rest of the process kept less than
/// [`COMPUTING_BESIDE_CORES`] busy, with no span seen holding up what
/// they wait for ([`held_across`]), none waiting for it in series, not
/// inside a poll and not on a timer. They wait for work that comes from
/// outside every span (requests, a producer that sleeps or reads), and
/// their waits are idle capacity, not a cost. Eight workers taking jobs
/// from a `Condvar` queue a producer filled every 200 µs, sleeping
/// between (nothing wrong; 0.29 of two cores busy), read a critical
/// blocked `next_job`, "gives back 43.7%" of the threads' wall time. A
/// crowd beside a thread that computes (a straggler at a barrier, a
/// producer that is the bottleneck) stays a finding. Two workers read the
/// same (`min_concurrency`, 2, was asked for first): two workers taking
/// connections from a channel an acceptor thread outside every span fed,
/// 1,600 requests a second at 0.3 of two cores busy, 1.9 inside at once,
/// read a critical blocked `next_conn`, "gives back 41.9%". One thread
/// stays a finding: an idle one cannot be told from one whose feeder or
/// lock holder is slow outside every span.
pub(crate) fn idle_pool(
    cx: &Context<'_>,
    cs: &CallsiteStats,
    row: &CallsiteRow,
    in_poll: bool,
    waited_by: Option<usize>,
) -> Option<IdlePool> {
    let c = row.cpu.as_ref()?;
    if in_poll || waited_by.is_some() || Timer::of(cs, c.self_blocked_share).is_some() || asleep_share(cs).is_some() {
        return None;
    }
    let crowd = Crowd::of(cx, cs, row)
        .filter(|crowd| crowd.inside >= IDLE_POOL_INSIDE && crowd.none_moving(&cx.config.classes.serialization))?;
    // Its waits as the watch timed them; waits shorter than a probe (a
    // job every 200 µs) only glanced at: in a futex by the glances, and
    // the rest of the process's cores by its CPU over the run less this
    // span's own.
    let (in_futex, others_cores, over_the_run) = match enough_watched(cs) {
        Some(w) => (
            stats::share(w.for_a_thread_ns? as f64, w.wait_ns as f64),
            w.others_cores()?,
            false,
        ),
        None => {
            let cpu = cx.totals.cpu_ns.filter(|_| cx.run_wall_ns > 0.0)? as f64;
            let others = ((cpu - c.self_on_cpu_ns) / cx.run_wall_ns).max(0.0);
            (glanced_in_futex(cs)?, others, true)
        }
    };
    (in_futex >= IDLE_POOL_IN_FUTEX && others_cores < COMPUTING_BESIDE_CORES && held_across(cx, cs).is_none())
        .then_some(IdlePool {
            inside: crowd.inside,
            in_futex,
            others_cores,
            over_the_run,
        })
}

/// See [`idle_pool`].
const IDLE_POOL_IN_FUTEX: f64 = 0.9;

/// See [`idle_pool`]: two threads inside at once half the time. One
/// thread waiting for another may wait for a feeder that is the run's
/// bottleneck (a lock an unspanned thread holds across a sleep, a producer
/// reading a disk), and its finding points there; of two or more waiting
/// at once, the others are capacity nothing uses.
const IDLE_POOL_INSIDE: f64 = 1.5;

/// Threads waiting for work from outside every span ([`idle_pool`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdlePool {
    /// Threads inside at once on average.
    pub(crate) inside: f64,
    /// The share of its watched waits in a futex (of the watch's glances,
    /// `over_the_run`).
    pub(crate) in_futex: f64,
    /// The cores the rest of the process kept busy meanwhile (over the
    /// run, `over_the_run`).
    pub(crate) others_cores: f64,
    /// Its waits were too short for the watch to time: the glances and
    /// the run's CPU tell them.
    pub(crate) over_the_run: bool,
}

/// The first other callsite (its row index) that waits for what callsite
/// `i` holds across its waits ([`held_across`] names `i`).
fn waits_for_its_hold(cx: &Context<'_>, i: usize) -> Option<usize> {
    cx.callsites()
        .filter(|&(j, _, _)| j != i)
        .find(|(_, o, _)| held_across(cx, o).is_some_and(|(h, ..)| h == i))
        .map(|(j, ..)| j)
}

/// See [`pause`].
const PAUSE_ASLEEP: f64 = 0.9;
const PAUSE_NS: u64 = 50_000_000;

/// The other callsite (its row index) whose waits outside a futex went on
/// beside most of `cs`'s futex waits, and the share of them, where `cs`
/// waits for a thread ([`waits_for_a_thread`]).
fn most_beside(cx: &Context<'_>, cs: &CallsiteStats) -> Option<(usize, f64)> {
    let w = waits_for_a_thread(cs)?;
    let for_a_thread = w.for_a_thread_ns? as f64;
    let top = w.beside.iter().filter(|b| b.callsite != cs.id).max_by_key(|b| b.ns)?;
    Some((cx.index_of(top.callsite)?, (top.ns as f64 / for_a_thread).min(1.0)))
}

/// What a blocked span's waits were found to be, each with its own fix.
struct Causes {
    /// It blocks inside a runtime's poll.
    in_poll: bool,
    /// It already runs off the runtime's workers (a blocking pool's
    /// closure).
    carried: bool,
    /// It waits for other threads while they compute.
    for_workers: bool,
    /// It may wait for work it hands to a pool.
    pool: bool,
    /// Its events' handling is a large part of it.
    logs: Option<Logging>,
}

/// The plan step's advice for one of its findings, of a span that blocks
/// for the `causes` found; its blocked time is a share of `whole`; `busy`,
/// when the process's busy cores bound its gain.
fn advice(f: &Finding, causes: Causes, whole: &str, busy: Option<BusyCores>) -> Advice {
    let Causes {
        in_poll,
        carried,
        for_workers,
        pool,
        logs,
    } = causes;
    let name = f.subject().in_prose();
    let mut fixes = Vec::new();
    if let Some(lg) = logs {
        fixes.push(format!(
            "Log without blocking, and less: its {} events a call took {} of its self time in the subscriber, waiting on the writer; write through `tracing_appender::non_blocking` (a background thread writes the lines, and a full buffer drops them rather than stall the caller), make what reads the process's output keep up (a pipe to a slow reader blocks every writer), and log once a call rather than once an item",
            units::count(lg.per_call),
            units::pct(lg.part)
        ));
    }
    if for_workers {
        fixes.push(format!(
            "It waits for threads that are computing: if they meet at a barrier or a join, balance the work between them (smaller pieces, handed out as threads free up: rayon's work stealing, a shared queue) so none waits for a straggler; if it waits for a lock, shorten the holder's work under it. Halving {name}'s wait means halving the straggler's extra work, not the wait itself"
        ));
    }
    if pool {
        fixes.push(
            "If it hands work to a pool and waits for it (rayon's `par_iter` or `join`, a channel to worker threads), its blocked time is that work: put a span on the work the pool runs (`#[instrument]` on the function each item calls) to see it in the report, and make that work cheaper or give the pool more cores".to_owned(),
        );
    }
    if in_poll {
        fixes.push(
            "It blocks inside a poll, stalling a runtime worker and every task queued on it: move the blocking call into `tokio::task::spawn_blocking` (on another executor, its blocking pool: `blocking::unblock` for smol and async-std, or a thread of its own), or use the async API (`tokio::time::sleep`, `tokio::fs`, an async client); hold an async mutex (`tokio::sync::Mutex`), not a `std` one, across `.await`".to_owned(),
        );
    }
    fixes.extend(lines(&[
        FIND_WHAT,
        "Batch or cache the blocking calls: one query or request for many items, reuse connections, read a file once",
        "Shorten lock hold times or shard contended state (`dashmap`, per-thread state) when it waits for a lock",
        "Overlap independent blocking calls (`std::thread::scope`, or async with `join!`) instead of making them one after another",
    ]));
    if carried {
        fixes.push(
            "It already runs off the runtime's workers (its async caller's spans closed on them, its own did not: a blocking pool's closure): the pool's size bounds how many such calls wait at once, so a larger pool (`max_blocking_threads`, 512 by default) or an async client lets more proceed".to_owned(),
        );
    } else if !in_poll {
        fixes.push(
            "On an async runtime, run it with `tokio::task::spawn_blocking` so it does not stall a worker".to_owned(),
        );
    }
    Advice {
        statement: match busy {
            Some(b) => format!(
                "removing {} of {name}'s blocked time ({} of {whole}) gives back {} of {}{}",
                units::pct(b.fix),
                units::pct(f.cost_share),
                units::pct(f.expected_gain()),
                f.share_of,
                b.gain_clause()
            ),
            None => format!(
                "removing {} of {name}'s blocked time ({} of {whole}) gives back {} of it",
                units::pct(f.recoverable),
                units::pct(f.cost_share),
                units::pct(f.expected_gain())
            ),
        },
        fixes,
        prerequisites: vec![format!(
            "Know what {name} waits for: a child span around each blocking call, or `strace -f -T` on a run"
        )],
        check: format!(
            "{name}'s blocked share of self time must fall and its busy time with it"
        ),
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence, timeline};

    /// Both spans: 100 calls of 10 ms, one voluntary switch each, in a 2 s
    /// run. `sleeps` is on the CPU 10% of its self time (90% blocked);
    /// `computes` 51% (49% blocked, just under half).
    #[test]
    fn finds_a_span_off_the_cpu_most_of_its_time_and_not_one_just_under_half() {
        let found = detect(
            Class::Blocked,
            dump(
                2_000 * MS,
                &[
                    Span::new("sleeps", &[(10 * MS, 100)]).on_cpu(100 * MS, 0, 100, 0),
                    Span::new("computes", &[(10 * MS, 100)]).on_cpu(510 * MS, 0, 100, 0),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "sleeps").unwrap();
        assert_near(evidence(f, "blocked share of self time"), 0.9, 1e-9);
        // 900 ms blocked of the one recording thread's 2 s.
        assert_near(f.cost_share, 0.45, 1e-9);
        assert_near(f.confidence, 0.9 * 100.0 / 104.0, 1e-9);
        // Every call 10 ms, 9 of them blocked: a fixed delay's fix comes
        // before the general ones. One interval a call: not async, so the
        // runtime advice comes last.
        assert!(f.advice.fixes[0].starts_with("Find the fixed delay it waits out (10.0 ms a call)"));
        assert!(f.advice.fixes[1].starts_with("Find what it blocks on"));
        assert!(f.advice.fixes[5].contains("spawn_blocking"));
    }

    /// A `heartbeat` sleeping 500 ms a call on a thread of its own, the
    /// watch finding it asleep, nothing waiting for it: a pause, no
    /// finding, and the analysis says why in a note. The same sleeps in
    /// calls of 5 ms (a back-off, a poll) stay a finding.
    #[test]
    fn a_thread_s_own_long_sleeps_nothing_waits_for_are_a_pause() {
        let with_calls = |ns: u64, calls: u64| {
            let mut d = dump(3_000 * MS, &[Span::new("heartbeat", &[(ns, calls)]).on_cpu(MS, 0, calls, 0)]);
            d.run.span_threads = Some(5);
            d.callsites[0].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 100,
                wait_ns: 2_500 * MS,
                asleep_ns: Some(2_500 * MS),
                for_a_thread_ns: Some(0),
                ..Default::default()
            });
            d
        };
        let d = with_calls(500 * MS, 5);
        assert!(detect(Class::Blocked, d.clone()).is_empty());
        let analysis = crate::analyze::analyze(&d.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`heartbeat` slept through 100.0% of its watched waits in calls of 501 ms")),
            "{:?}",
            analysis.notes
        );
        assert!(about(&detect(Class::Blocked, with_calls(5 * MS, 500)), "heartbeat").is_some());
    }

    /// A worker polling a job queue, sleeping 2 ms when it is empty, with
    /// clients blocked in a futex beside its sleeps (`submit` waits for
    /// its answers): its fix says they wait while it sleeps, and to let go
    /// of what they need first.
    #[test]
    fn a_sleeper_others_wait_for_is_told_to_let_go_before_it_sleeps() {
        let mut d = dump(
            3_000 * MS,
            &[
                Span::new("main", &[(3_000 * MS, 1)]),
                Span::new("next_job", &[(100 * US, 4_000), (2 * MS, 1_000)]).on_cpu(30 * MS, 0, 1_000, 0),
                Span::new("submit", &[(2 * MS, 5_000)]).on_cpu(30 * MS, 0, 5_000, 0),
            ],
        );
        let next_job = d.callsites[1].id;
        d.callsites[1].watched_waits = Some(perf_layer::dump::WatchedWaits {
            intervals: 120,
            wait_ns: 40 * MS,
            asleep_ns: Some(39 * MS),
            for_a_thread_ns: Some(0),
            ..Default::default()
        });
        d.callsites[2].watched_waits = Some(perf_layer::dump::WatchedWaits {
            intervals: 300,
            wait_ns: 100 * MS,
            others_cpu_ns: 5 * MS,
            for_a_thread_ns: Some(95 * MS),
            beside: vec![perf_layer::dump::WaitedBeside { callsite: next_job, ns: 90 * MS }],
            ..Default::default()
        });
        let found = detect(Class::Blocked, d);
        let f = about(&found, "next_job").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("It sleeps")
                && f.advice.fixes[0].ends_with("; `submit` waits while it sleeps: if it holds what they need across the sleep (a lock, a connection), let go of it first"),
            "{:?}",
            f.advice.fixes
        );
    }

    /// A span on four threads polling a job queue, sleeping 2 ms when it
    /// is empty: the watch found it asleep on a timer through 98% of its
    /// watched waits, so the summary says so, blocking on the source is
    /// its first fix (before the general ones), and its threads are not
    /// said to wait together for a source. Waiting in a read instead,
    /// neither.
    #[test]
    fn a_span_the_watch_found_asleep_is_told_to_block_on_its_source() {
        let with_asleep = |asleep_ns: u64| {
            let mut d = dump(
                3_000 * MS,
                &[Span::new("next_job", &[(100 * US, 4_000), (2 * MS, 4_000)]).on_cpu(30 * MS, 0, 1_000, 0)],
            );
            d.run.span_threads = Some(4);
            d.callsites[0].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 120,
                wait_ns: 40 * MS,
                asleep_ns: Some(asleep_ns),
                for_a_thread_ns: Some(0),
                ..Default::default()
            });
            detect(Class::Blocked, d)
        };
        let found = with_asleep(39 * MS);
        let f = about(&found, "next_job").unwrap();
        // Four threads each asleep inside it wait on their own timers, not
        // together for a source.
        assert!(!f.summary.contains("none moving"), "{}", f.summary);
        assert!(
            f.summary.contains("the watch found it asleep on a timer (`std::thread::sleep`) through 97.5% of its watched waits"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("It sleeps"), "{:?}", f.advice.fixes);
        assert!(f.advice.fixes[1].starts_with("Find what it blocks on"), "{:?}", f.advice.fixes);
        assert!(!f.advice.fixes[0].contains("waits while it sleeps"), "{:?}", f.advice.fixes);
        let found = with_asleep(MS);
        let f = about(&found, "next_job").unwrap();
        assert!(!f.summary.contains("asleep"), "{}", f.summary);
        assert!(f.advice.fixes.iter().all(|x| !x.starts_with("It sleeps")), "{:?}", f.advice.fixes);
    }

    /// `load` fetches 40 items a call over a blocking socket, one round
    /// trip each, one after another: `fetch` is blocked 95% of its 100 µs
    /// a call on 5 µs of CPU. Batching is its first fix.
    #[test]
    fn a_blocked_span_its_caller_calls_one_round_trip_at_a_time_is_batched_first() {
        let d = dump(
            10_000 * MS,
            &[
                Span::new("load", &[(4 * MS, 1_000)]),
                Span::new("fetch", &[(100 * US, 40_000)]).on_cpu(200 * MS, 0, 40_000, 0),
            ],
        );
        let found = detect(Class::Blocked, d);
        let f = about(&found, "fetch").unwrap();
        assert!(f.summary.contains("`load` calls it 40 times a call, one after another, each mostly waiting (95.0% of its wall time off its CPU) beside 5.00 µs of its own CPU"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Make fewer calls: `load` makes 40 a call"), "{:?}", f.advice.fixes);
    }

    /// The same round trips, 40 µs of CPU in each 100 µs call, four
    /// threads on two cores: beside other work keeping the cores busy, the
    /// waits give nothing back but the calls' CPU (16% of the process's)
    /// does, and the hot spot reads it; with the cores idle, the waits are
    /// the gain, and this finding stands.
    #[test]
    fn round_trips_on_busy_cores_are_left_to_the_hot_spot() {
        let with = |cpu_percent: f64| {
            let mut d = dump(
                10_000 * MS,
                &[
                    Span::new("load", &[(4 * MS, 1_000)]),
                    Span::new("fetch", &[(100 * US, 40_000)]).on_cpu(1_600 * MS, 0, 40_000, 0),
                ],
            );
            d.run.span_threads = Some(4);
            d.run.cores = Some(2);
            timeline(&mut d, &[(1 << 20, cpu_percent); 11]);
            let blocked = detect(Class::Blocked, d.clone());
            let hot = detect(Class::HotSpot, d);
            (about(&blocked, "fetch").cloned(), about(&hot, "fetch").cloned())
        };
        let (blocked, hot) = with(199.0);
        assert!(blocked.is_none(), "{blocked:#?}");
        let hot = hot.expect("a hot spot");
        assert!(hot.summary.contains("`load` calls it 40 times a call, one after another"), "{}", hot.summary);
        assert!(hot.advice.fixes[0].starts_with("Make fewer calls"), "{:?}", hot.advice.fixes);
        let (blocked, _) = with(40.0);
        let blocked = blocked.expect("a blocked finding");
        assert!(blocked.advice.fixes[0].starts_with("Make fewer calls"), "{:?}", blocked.advice.fixes);
    }

    /// Four threads logging five lines a job to a stdout a slow reader
    /// drained: `handle` blocked, its events' handling all of its self
    /// time. Logging without blocking is said, and the first fix; the same
    /// span whose events took a tenth of it is told to find its blocking
    /// call first.
    #[test]
    fn a_span_blocked_in_its_logging_is_told_to_log_without_blocking() {
        let with = |events_ms: u64| {
            let mut d = dump(
                2_000 * MS,
                // Calls that vary, as a blocking call's do (all alike is a
                // fixed delay's reading).
                &[Span::new("handle", &[(5 * MS, 50), (15 * MS, 50)]).on_cpu(50 * MS, 0, 100, 0)],
            );
            d.callsites[0].events.info = 500;
            d.callsites[0].events.ns = events_ms * MS;
            detect(Class::Blocked, d)
        };
        let logs = with(950);
        let f = about(&logs, "handle").unwrap();
        assert!(f.summary.contains("its events (5 a call) are 95.0% of its self time"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Log without blocking, and less: its 5 events a call"), "{:?}", f.advice.fixes);
        let other = with(100);
        let f = about(&other, "handle").unwrap();
        assert!(!f.summary.contains("events"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Find what it blocks on"), "{:?}", f.advice.fixes);
    }

    /// `audit` (a plain function, one interval a span) blocks 90% of its
    /// self time under `handle`: async, four polls a span, so `audit`
    /// blocks inside its polls and stalls the worker; the same parent
    /// entered once a span is a plain function, and so is `audit`.
    #[test]
    fn a_plain_function_blocking_inside_an_async_span_s_polls_stalls_a_worker() {
        let with_polls = |intervals: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("handle", &[(10 * MS, 100)]).on_cpu(900 * MS, 0, 0, 0),
                    Span::new("audit", &[(5 * MS, 50), (15 * MS, 50)]).on_cpu(100 * MS, 0, 100, 0),
                ],
            );
            d.callsites[0].cpu.as_mut().unwrap().intervals = intervals;
            detect(Class::Blocked, d)
        };
        let found = with_polls(400);
        let f = about(&found, "audit").unwrap();
        assert!(
            f.summary.contains("called inside the polls of async `handle`"),
            "{}",
            f.summary
        );
        // It stalls a runtime worker: its share is of the workers' wall
        // time, at most one per core, not of a blocking pool's threads
        // that also record spans.
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("handle", &[(10 * MS, 100)]).on_cpu(900 * MS, 0, 0, 0),
                Span::new("audit", &[(5 * MS, 50), (15 * MS, 50)]).on_cpu(100 * MS, 0, 100, 0),
            ],
        );
        d.callsites[0].cpu.as_mut().unwrap().intervals = 400;
        (d.run.span_threads, d.run.cores) = (Some(10), Some(2));
        let found = detect(Class::Blocked, d);
        let f = about(&found, "audit").unwrap();
        assert_near(evidence(f, "share of the runtime workers' wall time"), 0.9 / 4.0, 0.01);
        assert!(f.advice.statement.contains("of the runtime workers' wall time"), "{}", f.advice.statement);
        assert!(f.advice.fixes[0].contains("spawn_blocking"));
        let found = with_polls(100);
        let f = about(&found, "audit").unwrap();
        assert!(!f.summary.contains("async"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Find what it blocks on"));
    }

    /// Two workers meeting at a barrier, one computing 1 ms a phase and the
    /// other 2 ms: `sync_phase` blocks 1 ms a phase in a futex while the
    /// other computes (0.94 of a core beside its watched waits). It waits
    /// for a straggler: said, and balancing the work is its first fix. The
    /// same wait in a sleep (no futex) is not.
    #[test]
    fn a_wait_beside_computing_threads_is_said_to_wait_for_their_work() {
        let with_futex = |for_a_thread_ns: u64| {
            let mut d = dump(
                800 * MS,
                &[Span::new("sync_phase", &[(MS, 400), (60 * US, 400)])
                    .on_cpu(9 * MS, 0, 400, 0)],
            );
            d.callsites[0].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 32,
                wait_ns: 10_600 * US,
                others_cpu_ns: 10_000 * US,
                others_wanted_ns: Some(10_580 * US),
                for_a_thread_ns: Some(for_a_thread_ns),
                beside: Vec::new(),
                ..Default::default()
            });
            detect(Class::Blocked, d)
        };
        let found = with_futex(9_900 * US);
        let f = about(&found, "sync_phase").unwrap();
        assert!(f.summary.contains("waiting for a straggler"), "{}", f.summary);
        assert!(
            f.advice.fixes[0].starts_with("It waits for threads that are computing"),
            "{:#?}",
            f.advice.fixes
        );
        let found = with_futex(0);
        let f = about(&found, "sync_phase").unwrap();
        assert!(!f.summary.contains("straggler"), "{}", f.summary);
    }

    /// The same `audit`, its spans closed off the runtime's workers while
    /// `handle`'s closed on them: `handle` carried it into a blocking pool
    /// (`span.in_scope` in `spawn_blocking`). No stall, and no advice to
    /// move it into `spawn_blocking`; the pool's size is what bounds it.
    #[test]
    fn a_blocking_call_carried_into_a_pool_by_its_async_caller_stalls_no_worker() {
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("handle", &[(10 * MS, 100)]).on_cpu(900 * MS, 0, 0, 0),
                Span::new("audit", &[(5 * MS, 50), (15 * MS, 50)]).on_cpu(100 * MS, 0, 100, 0),
            ],
        );
        d.callsites[0].cpu.as_mut().unwrap().intervals = 400;
        d.callsites[0].runtime_worker_calls = Some(100);
        d.callsites[1].runtime_worker_calls = Some(0);
        let found = detect(Class::Blocked, d);
        let f = about(&found, "audit").unwrap();
        assert!(!f.summary.contains("stalls"), "{}", f.summary);
        assert!(
            f.advice.fixes.iter().all(|x| !x.contains("move the blocking call into")
                && !x.starts_with("On an async runtime")),
            "{:#?}",
            f.advice.fixes
        );
        assert!(
            f.advice.fixes.iter().any(|x| x.contains("`max_blocking_threads`")),
            "{:#?}",
            f.advice.fixes
        );
    }

    /// Four clients' `request`, 280 calls each blocked 44 ms (the first
    /// 300 µs): a fixed delay, in the delayed ACK's range, said with the
    /// socket's fix, and not as a crowd waiting together. At 5 ms the same
    /// without the socket; spread from 10 to 44 ms, neither.
    #[test]
    fn calls_that_each_wait_the_same_time_wait_out_a_fixed_delay() {
        let with = |busy: &[(u64, u64)]| {
            let calls: u64 = busy.iter().map(|p| p.1).sum();
            let total: u64 = busy.iter().map(|p| p.0 * p.1).sum();
            let mut d = dump(
                3_000 * MS,
                &[Span::new("request", busy).on_cpu(total / 200, 0, 2 * calls, 0)],
            );
            d.run.span_threads = Some(4);
            detect(Class::Blocked, d)
        };
        let found = with(&[(300 * US, 1), (44 * MS, 279)]);
        let f = about(&found, "request").unwrap();
        assert!(f.summary.contains("every call waits about as long (p50 44.0 ms"), "{}", f.summary);
        assert!(f.summary.contains("or a delayed ACK"), "{}", f.summary);
        assert!(!f.summary.contains("none moving"), "{}", f.summary);
        assert!(f.advice.fixes[0].contains("`TCP_NODELAY`"), "{:#?}", f.advice.fixes);

        let found = with(&[(5 * MS, 280)]);
        let f = about(&found, "request").unwrap();
        assert!(f.summary.contains("every call waits about as long (p50 5.0"), "{}", f.summary);
        assert!(!f.summary.contains("delayed ACK"), "{}", f.summary);

        let found = with(&[(10 * MS, 140), (44 * MS, 140)]);
        let f = about(&found, "request").unwrap();
        assert!(!f.summary.contains("about as long"), "{}", f.summary);
    }

    /// Workers on an empty job queue: three threads inside `wait_job` at
    /// once, 1% of it on the CPU, and its calls at their fastest (1 ms)
    /// end to end fill a tenth of the run. Blocked, and said to be perhaps
    /// waiting for what feeds them; `sleeps` alone is not a crowd.
    #[test]
    fn a_crowd_that_waits_together_is_said_to_wait_perhaps_for_its_source() {
        let mut d = dump(
            10_000 * MS,
            &[
                Span::new("sleeps", &[(100 * MS, 100)]).on_cpu(1_000 * MS, 0, 100, 0),
                Span::new("wait_job", &[(MS, 100), (33 * MS, 900)]).on_cpu(300 * MS, 0, 1_000, 0),
            ],
        );
        d.run.span_threads = Some(4);
        let found = detect(Class::Blocked, d);
        let f = about(&found, "wait_job").unwrap();
        assert!(f.summary.contains("3.0 threads inside at once and none moving"), "{}", f.summary);
        let f = about(&found, "sleeps").unwrap();
        assert!(!f.summary.contains("none moving"), "{}", f.summary);
    }

    /// A reader's `send_record` blocked on a full channel while one
    /// `transform` thread computes back to back through 80% of the run:
    /// the slowest stage paces it, a note and no finding, when the watch's
    /// glances found it in a futex, or, without glances, when its calls go
    /// in step with the stage's. Glanced mostly outside a futex (a read of
    /// its own), or out of step with no glances, it stays a finding.
    #[test]
    fn a_span_waiting_beside_a_pipeline_s_slowest_stage_is_paced_by_it() {
        let with = |stage: (u64, u64), glances: Option<(u64, u64)>| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("run", &[(MS, 1)]),
                    Span::new("transform", &[(stage.0, stage.1)]).on_cpu(2_400 * MS, 0, 0, 0),
                    Span::new("send_record", &[(80 * US, 30_000)]).on_cpu(240 * MS, 0, 30_000, 0),
                ],
            );
            d.run.span_threads = Some(3);
            if let Some((all, in_futex)) = glances {
                d.callsites[2].watched_waits = Some(perf_layer::dump::WatchedWaits {
                    glances: Some(all),
                    glances_in_futex: Some(in_futex),
                    ..Default::default()
                });
            }
            d
        };
        let in_step = (80 * US, 30_000);
        let paced = with(in_step, Some((40, 40)));
        assert!(about(&detect(Class::Blocked, paced.clone()), "send_record").is_none());
        let analysis = crate::analyze::analyze(&paced.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`send_record` is blocked 90.0% of its self time") && n.contains("while `transform` computed one at a time, back to back, through 80.0% of the run's wall time: the slowest stage of a pipeline")),
            "{:?}",
            analysis.notes
        );
        assert!(about(&detect(Class::Blocked, with(in_step, None)), "send_record").is_none());
        assert!(about(&detect(Class::Blocked, with(in_step, Some((40, 5)))), "send_record").is_some());
        let out_of_step = (8 * MS, 300);
        assert!(about(&detect(Class::Blocked, with(out_of_step, None)), "send_record").is_some());
        assert!(about(&detect(Class::Blocked, with(out_of_step, Some((40, 40)))), "send_record").is_none());
    }

    /// Three of four workers inside `wait_job` at once, none moving,
    /// waiting in a futex while the rest of the process kept 0.2 of a core
    /// busy: a pool larger than its supply, a note and no finding; two
    /// workers, the same note; one worker alone stays a finding (it may
    /// wait for a feeder that is slow outside every span). Beside a thread
    /// computing through their waits (0.9 of a core: a straggler, a
    /// feeder that is the bottleneck), or waiting outside a futex half the
    /// time (a read), it stays a finding.
    #[test]
    fn a_crowd_waiting_for_work_while_the_process_idles_is_a_pool_larger_than_its_supply() {
        let with_threads = |threads: u32, others_cpu_ns: u64, for_a_thread_ns: u64| {
            let mut d = dump(
                10_000 * MS,
                &[
                    Span::new("do_job", &[(30 * US, 10_000)]).on_cpu(300 * MS, 0, 0, 0),
                    Span::new("wait_job", &[(MS, 100), (33 * MS, 900)]).on_cpu(300 * MS, 0, 1_000, 0),
                ],
            );
            d.run.span_threads = Some(threads);
            d.run.cores = Some(2);
            d.callsites[1].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 300,
                wait_ns: 10_000 * MS,
                others_cpu_ns,
                for_a_thread_ns: Some(for_a_thread_ns),
                ..Default::default()
            });
            d
        };
        let with = |others_cpu_ns: u64, for_a_thread_ns: u64| with_threads(4, others_cpu_ns, for_a_thread_ns);
        let idle = with(2_000 * MS, 10_000 * MS);
        assert!(about(&detect(Class::Blocked, idle.clone()), "wait_job").is_none());
        let analysis = crate::analyze::analyze(&idle.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`wait_job`: 3.0 threads inside at once and none moving, blocked in a futex (waiting for another thread) through 100.0% of their watched waits while the rest of the process kept 0.20 of a core busy: a pool larger than its supply keeps busy, waiting for work")),
            "{:?}",
            analysis.notes
        );
        // Two workers: the same note.
        let two = with_threads(2, 2_000 * MS, 10_000 * MS);
        assert!(about(&detect(Class::Blocked, two.clone()), "wait_job").is_none());
        let analysis = crate::analyze::analyze(&two.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`wait_job`: 2.0 threads inside") && n.contains("waiting for work that comes from outside every span")),
            "{:?}",
            analysis.notes
        );
        assert!(about(&detect(Class::Blocked, with_threads(2, 9_000 * MS, 10_000 * MS)), "wait_job").is_some());
        // One worker: it may wait for a feeder that is the bottleneck.
        assert!(about(&detect(Class::Blocked, with_threads(1, 2_000 * MS, 10_000 * MS)), "wait_job").is_some());
        let straggler = detect(Class::Blocked, with(9_000 * MS, 10_000 * MS));
        assert!(about(&straggler, "wait_job").is_some());
        let reads = detect(Class::Blocked, with(2_000 * MS, 5_000 * MS));
        assert!(about(&reads, "wait_job").is_some());
    }

    /// Two workers whose waits for jobs (200 µs each) are shorter than the
    /// watch's probe: no watched wait, but every glance in a futex, and
    /// the process kept 0.25 of a core busy over the run (less the span's
    /// own 300 ms): waiting for work from outside every span, a note. With
    /// the process busy on 1.5 cores (a feeder that computes), a finding.
    #[test]
    fn a_worker_whose_waits_only_the_glances_saw_waits_for_work_when_the_process_idles() {
        let with = |cpu_ms: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("wait_job", &[(US, 200), (400 * US, 39_800)]).on_cpu(300 * MS, 0, 40_000, 0)],
            );
            d.run.span_threads = Some(2);
            d.run.cores = Some(2);
            d.run.cpu_ns = Some(cpu_ms * MS);
            d.callsites[0].watched_waits = Some(perf_layer::dump::WatchedWaits {
                glances: Some(100),
                glances_in_futex: Some(100),
                ..Default::default()
            });
            d
        };
        let idle = with(2_800);
        assert!(about(&detect(Class::Blocked, idle.clone()), "wait_job").is_none());
        let analysis = crate::analyze::analyze(&idle.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.contains("at 100.0% of the watch's glances while the rest of the process kept 0.25 of a core busy over the run")),
            "{:?}",
            analysis.notes
        );
        assert!(about(&detect(Class::Blocked, with(15_300)), "wait_job").is_some());
    }

    /// The same workers woken eight times a call (a `Condvar` whose
    /// producer calls `notify_all` for each job): the herd is named first;
    /// alone (not a crowd), many blocking calls a call come first among
    /// the general fixes; once a call, neither.
    #[test]
    fn a_span_blocking_many_times_a_call_is_told_it_is_woken_for_nothing() {
        let with = |threads: u32, voluntary: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("wait_job", &[(MS, 100), (33 * MS, 900)]).on_cpu(300 * MS, 0, voluntary, 0)],
            );
            d.run.span_threads = Some(threads);
            detect(Class::Blocked, d)
        };
        let found = with(4, 8_000);
        let f = about(&found, "wait_job").unwrap();
        assert!(f.summary.contains("entered once a call, it gave up the CPU 8.0 times a call"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("It blocks 8.0 times a call with 3.0 threads waiting together"), "{:?}", f.advice.fixes);
        let found = with(1, 8_000);
        let f = about(&found, "wait_job").unwrap();
        let at = f.advice.fixes.iter().position(|x| x.starts_with("It blocks 8.0 times a call: many blocking calls"));
        let general = f.advice.fixes.iter().position(|x| x.starts_with("Find what it blocks on"));
        assert!(at.is_some() && at < general, "{:?}", f.advice.fixes);
        let found = with(4, 1_000);
        let f = about(&found, "wait_job").unwrap();
        assert!(f.advice.fixes.iter().all(|x| !x.starts_with("It blocks")), "{:?}", f.advice.fixes);
    }

    /// A fresh job service's `score_batch` hands each batch to rayon and
    /// waits: 900 ms blocked, while the process's 1 s of CPU ran mostly on
    /// rayon's threads, which record no span (800 ms outside every span).
    /// The finding says the CPU went elsewhere and puts the pool first
    /// among its fixes; the same span in a process whose CPU its spans hold
    /// does not.
    #[test]
    fn a_span_blocked_while_the_cpu_ran_outside_every_span_names_the_pool() {
        let with = |cpu_ms: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("score_batch", &[(5 * MS, 50), (15 * MS, 50)]).on_cpu(100 * MS, 0, 100, 0),
                    Span::new("parse", &[(MS, 100)]).on_cpu(100 * MS, 0, 0, 0),
                ],
            );
            d.run.cpu_ns = Some(cpu_ms * MS);
            detect(Class::Blocked, d)
        };
        let pooled = with(1_000);
        let f = about(&pooled, "score_batch").unwrap();
        assert!(f.summary.contains("; 80.0% of the process's CPU ran outside every span: if it waits for work it hands to a pool"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("If it hands work to a pool"), "{:?}", f.advice.fixes);
        let held = with(210);
        let f = about(&held, "score_batch").unwrap();
        assert!(!f.summary.contains("outside every span"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Find what it blocks on"), "{:?}", f.advice.fixes);
    }
}
