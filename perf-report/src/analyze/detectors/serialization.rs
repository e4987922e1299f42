//! Serialization: several threads inside a span at once, but at most about
//! one making progress: they queue behind each other (a lock convoy, a
//! single connection, a `Mutex` held across I/O).
//!
//! Read from per-callsite figures, no timeline needed, over the part of
//! the run the callsite's spans were live in (its `active` window, from its
//! first span's opening to its last one's closing; the whole run without
//! one): a convoy in one phase of a program is as dense in that phase
//! whatever the phases around it.
//!
//! * **threads inside at once**, `c = busy time summed over threads / the
//!   window`: how many threads were inside the span on average;
//! * **threads on the CPU inside**, `c x on-CPU share of busy time`, and
//!   **runnable inside**, those on the CPU and those preempted (ready to
//!   run, waiting for a core): a queue has one runnable thread, its head,
//!   and the rest blocked behind it; threads preempted inside a span wait
//!   for the cores, not for each other (four threads computing on two
//!   cores are two inside at once and two on the CPU at most, with no lock
//!   between them);
//! * **threads making progress**, `p = calls x the fastest call's busy time
//!   / the run's wall time`: the fastest call is about what a call costs
//!   when it waits for no one, so `p` is how many calls would have had to
//!   run side by side to fit the window. Threads blocked each on their own
//!   (four threads each sleeping 100 µs) have `p ≈ c`; threads queued
//!   behind each other have `p ≈ 1` however many are inside.
//!
//! Serialized when `c` is at least `min_concurrency`, at most
//! `max_on_cpu_threads` of them are runnable or at least
//! `min_blocked_threads` blocked (a queue's waiters, where other load
//! preempts its head and the threads it passes to), `p` is at most
//! `max_progressing_threads`, and about one thread does make progress:
//! `p`, or the threads on the CPU, at least `min_progressing_threads`. A
//! queue has a head that moves: a lock's holder computing, or doing its
//! own I/O at its usual pace. Threads that all wait for something outside
//! the span (workers on an empty job queue, a producer too slow for them)
//! have neither: nobody inside moves, and letting them in side by side
//! would give nothing back (they are `blocked`, and the cause is the
//! source they wait for). Removing the serialization lets the `c`
//! threads proceed side by side: of the part of the run's wall time the
//! queue took, `1 - 1/s` comes back (Amdahl with a speed-up of `s`), where
//! `s` is `c`, but no more than the cores the process may use can carry
//! when the work under the lock is on the CPU: with `f` the on-CPU share
//! of the queue's head (threads on the CPU over threads making progress,
//! at most 1), `s = min(c, cores / f)`. Four threads queued on a lock
//! whose holder computes run at most two at a time on two cores. The
//! queue ran whenever a thread was inside; with `n` threads recording spans
//! and `c` inside on average, that is at least `c / n` of the window (and
//! at least `p`, the fastest calls end to end), so the cost is the
//! window's share of the run times `min(1, max(c / n, p))`.
//!
//! Without per-thread timelines the fastest call stands for a call's own
//! work: a span whose calls vary widely in their own work (one 10 µs, most
//! 1 ms) reads as fewer threads making progress than there were; off the
//! CPU (a lock held across I/O of widely varying length) such a queue is
//! not told from threads waiting for a source, and is not reported.
//!
//! **A queue several callsites share** (one connection that a query and an
//! insert both lock, each in a span of its own): each span alone may hold
//! under two threads, or its fastest call may not fill the window, and the
//! waiters read as `blocked` one callsite at a time, the waiter first
//! where it waits most. Callsites whose watched waits were mostly in a
//! futex (waiting for another thread of the process, not for I/O), none
//! the parent of another, their spans live together, are read as one
//! crowd (`shared_queue`): the same bars over their summed figures, and
//! at least two of them holding a share of it. The finding is the head's,
//! the callsite whose calls end to end fill most of the queue (the
//! fastest insert's 600 µs sync against the fastest query's 17 µs), and
//! it supersedes the others' `blocked`: their waits are its queue. A fresh
//! SQLite service (four threads, one `Mutex<Connection>`, 70% indexed
//! queries and 30% inserts each syncing the journal) read `query_orders`
//! blocked first ("gives back 21.9%") and `insert_order` second (20.8%);
//! without the syncs the run took 85% less. Threads that wait in a futex
//! for something else beside such a queue (a consumer on an empty
//! channel) are summed in too: the figures do not say which thread a wait
//! is for.

use perf_layer::dump::CallsiteStats;
use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::busy_cores::BusyCores;
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::rows::{CallsiteRow, measured_as_a_whole};
use crate::analyze::round_trips::{self, RoundTrips};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// At least this many threads inside at once on average over the run
    /// (default 2): one thread cannot queue behind itself.
    pub min_concurrency: f64,
    /// At most this many of them runnable on average, on the CPU or
    /// preempted (1.5: the one holding the lock, a little of the others'
    /// time entering and leaving, and the waiter the lock passes to, ready
    /// a moment before a core frees: in a fresh program's convoy, four
    /// threads computing 200 µs under one lock on two cores beside a
    /// channel's consumer, 1.01 on the CPU and 0.33 ready, where 1.25 read
    /// it as `blocked` only. Threads computing side by side on too few
    /// cores are all runnable: as many as are inside).
    pub max_on_cpu_threads: f64,
    /// ...unless at least this many are blocked inside, neither on the CPU
    /// nor preempted (1.0): threads waiting for the cores, not each other,
    /// block nowhere, and a queue's waiters do. A fresh convoy (four
    /// threads computing 200 µs under one lock on two cores) beside a shell
    /// loop had its holder preempted: 1.68 runnable and 1.53 blocked of
    /// 3.2 inside, read as threads waiting for cores, a hot spot.
    pub min_blocked_threads: f64,
    /// ...or unless its threads stay runnable while they wait: their time
    /// preempted inside it, per unit of time on the CPU, at least this many
    /// times that of the spans beside it (4.0), and at least half as long
    /// as on the CPU. Waiters that spin or yield (`parking_lot`'s mutex
    /// yields before it parks; a spin lock) are never blocked: a yield's
    /// switch counts as involuntary, a preemption. Threads waiting only for
    /// the cores are preempted alike in every span they run. A fresh
    /// program's four threads on two cores, each computing 3 µs under one
    /// `parking_lot::Mutex` and 1 µs outside it, had 3.6 threads inside
    /// the lock's span, 3.2 runnable, 1.2 times as long preempted as on
    /// the CPU against 0.04 beside: read as CPU contention ("more cores")
    /// where fewer threads ran no faster and half the hold time ran 2.4
    /// times as many.
    pub min_preempted_over_beside: f64,
    /// At most this many calls making progress at once, at the fastest
    /// call's time each (1.5: about one).
    pub max_progressing_threads: f64,
    /// At least this many making progress, by that count or by the threads
    /// on the CPU (0.5): a queue's head moves; threads that all wait for
    /// something outside the span do not queue behind each other.
    pub min_progressing_threads: f64,
    /// Its cost is at least this share of the run's wall time (0.05).
    pub min_share: f64,
    /// Confidence is the off-CPU share of its busy time x `calls / (calls +
    /// this)` (20).
    pub half_confidence_calls: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_concurrency: 2.0,
            max_on_cpu_threads: 1.5,
            min_blocked_threads: 1.0,
            min_preempted_over_beside: 4.0,
            max_progressing_threads: 1.5,
            min_progressing_threads: 0.5,
            min_share: 0.05,
            half_confidence_calls: 20.0,
        }
    }
}

pub(crate) struct Serialization;

static INFO: Info = Info {
    title: "serialization",
    // Its figures are busy times, which a parent inherits: a connection's
    // span whose `audit` child queues on the log's lock is as crowded as
    // `audit` (a fresh thread-per-connection server read as two queues,
    // the parent first, 90% of the run's wall time between them). The
    // child is where the lock is; a parent that holds one around a child
    // has the child alone inside, never two.
    innermost: true,
    // Its threads' time off the CPU is the queue's: `blocked` for the same
    // span would say it again, less exactly ("it does not compute", of a
    // convoy whose holder computes), and count the same wall time twice.
    supersedes: &[Class::Blocked],
};

/// How many threads were inside a callsite at once on average, how many of
/// them on the CPU, and how many calls made progress at once at the
/// fastest call's time each (`c`, `c x on-CPU share`, `p` above); `None`
/// without CPU figures or a run's wall time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crowd {
    pub(crate) inside: f64,
    pub(crate) on_cpu: f64,
    /// On the CPU or preempted: ready to run.
    pub(crate) runnable: f64,
    pub(crate) progressing: f64,
    /// The window the figures are over, as a share of the run's wall time
    /// (1 without an `active` window).
    pub(crate) window_share: f64,
}

/// How much faster the queued threads would go side by side (`s` above),
/// and whether the cores are what bounds it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Speedup {
    factor: f64,
    core_bound: Option<f64>,
}

impl Crowd {
    pub(crate) fn of(cx: &Context<'_>, cs: &CallsiteStats, row: &CallsiteRow) -> Option<Self> {
        let c = row.cpu.as_ref().filter(|_| cx.run_wall_ns > 0.0)?;
        let window = cx.live_window_ns(cs);
        let inside = (row.busy_total_ns as f64 / window).min(cx.totals.recording_threads);
        let preempted_share = stats::share(c.preempted_ns, row.busy_total_ns as f64);
        Some(Self {
            inside,
            on_cpu: inside * c.on_cpu_share,
            runnable: inside * (c.on_cpu_share + preempted_share).min(1.0),
            progressing: cs.calls as f64 * cs.busy_ns.min as f64 / window,
            window_share: window / cx.run_wall_ns,
        })
    }

    /// Several threads inside (`min_concurrency`) and none moving
    /// (`min_progressing_threads`): they all wait for something outside the
    /// span, not for each other.
    pub(crate) fn waits_for_a_source(&self, s: &Settings) -> bool {
        self.inside >= s.min_concurrency && self.none_moving(s)
    }

    /// No thread inside moving (`min_progressing_threads`): those inside,
    /// however many, wait.
    pub(crate) fn none_moving(&self, s: &Settings) -> bool {
        self.progressing.max(self.on_cpu) < s.min_progressing_threads
    }

    /// Whether the crowd is a queue by the bars above; `yielding`, when its
    /// waiters stay runnable ([`queue_of_runnable_waiters`]).
    fn queues(&self, s: &Settings, yielding: bool) -> bool {
        let blocked = self.inside - self.runnable;
        self.inside >= s.min_concurrency
            && (self.runnable <= s.max_on_cpu_threads || blocked >= s.min_blocked_threads || yielding)
            && self.progressing <= s.max_progressing_threads
            && !self.waits_for_a_source(s)
    }

    /// `s = min(c, cores / f)`: the threads inside side by side, as far as
    /// the cores carry the on-CPU part of the queue's head (`cores` unknown:
    /// `c`).
    fn speedup(&self, cores: Option<u32>) -> Speedup {
        let head_on_cpu = if self.progressing > 0.0 {
            (self.on_cpu / self.progressing).min(1.0)
        } else {
            1.0
        };
        let core_bound = cores
            .filter(|&n| n > 0)
            .map(|n| f64::from(n) / head_on_cpu.max(f64::MIN_POSITIVE))
            .filter(|&bound| bound < self.inside);
        Speedup {
            factor: core_bound.unwrap_or(self.inside),
            core_bound,
        }
    }
}

/// A crowd's waiters that stay runnable ([`Settings::min_preempted_over_beside`]):
/// the span's self time preempted per unit on the CPU, and the same of the
/// spans live beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Yielding {
    pub(crate) own: f64,
    pub(crate) beside: f64,
}

/// Of the spans beside a crowd, at least this share of its own time on the
/// CPU must be on the CPU too, for their preemption to stand for the
/// cores'.
const BESIDE_MIN_ON_CPU: f64 = 0.1;

/// A callsite's windows overlap when at least this share of its own is in
/// the other's.
const BESIDE_OVERLAP: f64 = 0.5;

/// How long `a`'s and `b`'s spans were live together, with each one's
/// live window, ns; `None` where either has no window.
fn live_together(a: &CallsiteStats, b: &CallsiteStats) -> Option<(f64, f64, f64)> {
    let (x, y) = (a.active?, b.active?);
    let from = x.first_open_ns.max(y.first_open_ns);
    let to = x.last_close_ns.min(y.last_close_ns);
    Some((to.saturating_sub(from) as f64, x.len_ns() as f64, y.len_ns() as f64))
}

/// A span beside a crowd stands for the cores' preemption where its timed
/// time on the CPU would have met at least this many preemptions at the
/// crowd's own rate (3: none met, where three were due, comes by chance
/// one time in twenty): preemptions are rare events, and a sample of 21
/// intervals of 40 µs (under a millisecond on the CPU, half a preemption
/// to one expected where four threads shared two cores) read a fifth of
/// the crowd's rate, and four threads computing with no lock read as a
/// queue of runnable waiters. At 8, the `parking_lot` queue of
/// `tests/truth_spinning_queue.rs` lost its reading in runs whose
/// `prepare` was timed for 6 to 8 expected, none seen.
const MIN_EXPECTED_PREEMPTIONS: f64 = 3.0;

/// A queue of runnable waiters making at least this many voluntary
/// switches a call (0.5) blocks in the kernel too: its waiters are woken
/// as the lock passes and wait for a core, preempting its holder, not
/// spinning. A debug build's four threads computing 200 µs under a
/// `std::sync::Mutex` on two cores read "spinning or yielding for it (a
/// `parking_lot` or spin lock)".
const BLOCKING_WAITERS: f64 = 0.5;

/// Waiters that stay runnable are preempted at least half as long as the
/// span is on the CPU ([`Settings::min_preempted_over_beside`]).
const MIN_PREEMPTED_OVER_ON_CPU: f64 = 0.5;

impl Yielding {
    /// `cs`'s self time preempted over its self time on the CPU, and the
    /// same summed over the other callsites whose spans were live through
    /// at least half of its window, those whose figures stand for their
    /// calls as a whole ([`measured_as_a_whole`]) and were timed long
    /// enough on the CPU to have met preemptions at its rate
    /// ([`MIN_EXPECTED_PREEMPTIONS`]); `None` without CPU figures, or with
    /// too little on the CPU beside it to compare.
    pub(crate) fn of(cx: &Context<'_>, cs: &CallsiteStats, row: &CallsiteRow) -> Option<Self> {
        let c = row.cpu.as_ref().filter(|c| c.self_on_cpu_ns > 0.0)?;
        let overlaps = |other: &CallsiteStats| {
            live_together(cs, other).is_none_or(|(both, a, _)| both >= BESIDE_OVERLAP * a)
        };
        // Its preemptions per nanosecond on the CPU, as timed.
        let rate = cs.cpu.as_ref().map_or(0.0, |own| {
            own.involuntary_switches as f64 / (own.self_on_cpu_ns as f64).max(1.0)
        });
        let enough = |other: &CallsiteStats| {
            other
                .cpu
                .as_ref()
                .is_some_and(|o| o.self_on_cpu_ns as f64 * rate >= MIN_EXPECTED_PREEMPTIONS)
        };
        let (preempted, on_cpu) = cx
            .callsites()
            .filter(|(_, other, _)| other.id != cs.id && overlaps(other) && enough(other))
            .filter_map(|(_, other, r)| r.cpu.as_ref().filter(|c| measured_as_a_whole(other, c)))
            .fold((0.0, 0.0), |(p, o), r| (p + r.self_preempted_ns, o + r.self_on_cpu_ns));
        (on_cpu >= BESIDE_MIN_ON_CPU * c.self_on_cpu_ns).then(|| Self {
            own: c.self_preempted_ns / c.self_on_cpu_ns,
            beside: preempted / on_cpu,
        })
    }

    fn stays_runnable(&self, s: &Settings) -> bool {
        self.own >= MIN_PREEMPTED_OVER_ON_CPU && self.own >= s.min_preempted_over_beside * self.beside
    }
}

/// A queue whose waiters stay runnable ([`queue_of_runnable_waiters`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunnableQueue {
    pub(crate) yielding: Yielding,
    /// Threads on the CPU inside beyond those making progress: waiters
    /// spinning, in cores.
    pub(crate) spinning_cores: f64,
    /// Of its time on the CPU, the share its head's work holds (0 to 1);
    /// the rest is its waiters spinning.
    pub(crate) head_share: f64,
}

/// A queue's waiters spin in its self time: at least this share of the
/// waiters' share of its busy time (0.5).
const SPIN_IN_SELF: f64 = 0.5;

/// Whether `cs` is a queue whose waiters stay runnable, spinning or
/// yielding, all or some of them ([`Settings::min_preempted_over_beside`];
/// `parking_lot`'s waiters on a longer hold yield, then park): its
/// preempted time is the queue's, not the cores', and so is its time on
/// the CPU beyond its head's.
pub(crate) fn queue_of_runnable_waiters(
    cx: &Context<'_>,
    cs: &CallsiteStats,
    row: &CallsiteRow,
) -> Option<RunnableQueue> {
    let s = &cx.config.classes.serialization;
    let crowd = Crowd::of(cx, cs, row)?;
    if crowd.inside < s.min_concurrency
        || crowd.progressing > s.max_progressing_threads
        || crowd.waits_for_a_source(s)
    {
        return None;
    }
    // Its waiters spin in its own code (a lock taken in the span, not in a
    // child span, which would be the queue): its self time holds at least
    // [`SPIN_IN_SELF`] of the waiters' share of its busy time. A fresh
    // program's `handle` (three threads computing in its children
    // `validate` and `lookup` on two cores, no lock) read "its waiters
    // stay runnable, spinning or yielding for it", a high queue: its self
    // time was 1% of its busy time, the moments between its children,
    // where their CPU-time reads' system calls are where the scheduler
    // preempts.
    let waiters = stats::share(crowd.inside - crowd.progressing, crowd.inside).clamp(0.0, 1.0);
    let in_self = stats::share(row.self_total_ns as f64, row.busy_total_ns as f64);
    if in_self < SPIN_IN_SELF * waiters {
        return None;
    }
    let yielding = Yielding::of(cx, cs, row).filter(|y| y.stays_runnable(s))?;
    // Waiters that block wake to run, not to spin: their time on the CPU
    // beyond the head's is their own work, which no fix frees. A fresh
    // thread-per-connection server on two saturated cores (four
    // `serve_one` threads, each woken by its own client, 0.96 voluntary
    // switches a call) read "30.1% of them its own waiters spinning,
    // which the fix frees", a critical queue where nothing was shared.
    let blocks = row
        .cpu
        .as_ref()
        .is_some_and(|c| c.voluntary_per_call >= BLOCKING_WAITERS);
    Some(RunnableQueue {
        yielding,
        spinning_cores: if blocks {
            0.0
        } else {
            (crowd.on_cpu - crowd.progressing).max(0.0)
        },
        head_share: if crowd.on_cpu > 0.0 {
            (crowd.progressing / crowd.on_cpu).min(1.0)
        } else {
            1.0
        },
    })
}

/// A queue several callsites share ([`shared_queue`]).
#[derive(Debug, Clone)]
struct SharedQueue {
    /// Its head (a row index): the member whose calls end to end fill most
    /// of the queue.
    head: usize,
    /// The other members (row indices).
    others: Vec<usize>,
    /// The members' figures summed, over the head's window.
    crowd: Crowd,
    /// The members' calls.
    calls: u64,
    /// The head's share of the queue's pace (`calls x fastest call`).
    head_pace: f64,
}

/// A member of a shared queue holds at least this many of its threads
/// inside at once on average (0.25)...
const MIN_MEMBER_INSIDE: f64 = 0.25;
/// ...and at least this share of the crowd beyond the head's own (0.1).
const MIN_MEMBERS_SHARE: f64 = 0.1;
/// A member's mean wait a call (mean busy time less its fastest call) is
/// within this factor of the head's (4).
const MEMBER_WAIT_WITHIN: f64 = 4.0;

/// Callsites that queue on one thing together (a module doc paragraph):
/// those whose watched waits were mostly in a futex, each holding at least
/// [`MIN_MEMBER_INSIDE`] threads inside at once, none the parent of
/// another (the parent goes), their spans live through at least half of
/// each other's windows, each waiting about as long a call as the head
/// ([`MEMBER_WAIT_WITHIN`]), whose summed figures over the head's window
/// pass the queue's bars, with the members beyond the head holding at
/// least [`MIN_MEMBERS_SHARE`] of its crowd. It stands for the one
/// member's own queue, if one queues alone; two that do are two queues.
/// `None` with fewer than two.
fn shared_queue(cx: &Context<'_>, s: &Settings) -> Option<SharedQueue> {
    let candidates: Vec<(usize, &CallsiteStats, &CallsiteRow, Crowd)> = cx
        .callsites()
        .filter(|(_, cs, _)| super::blocked::waits_for_a_thread(cs).is_some())
        .filter_map(|(i, cs, row)| Some((i, cs, row, Crowd::of(cx, cs, row)?)))
        .filter(|(_, _, _, crowd)| crowd.inside >= MIN_MEMBER_INSIDE)
        .collect();
    let ids: Vec<u32> = candidates.iter().map(|(_, cs, _, _)| cs.id).collect();
    let parent_of_another = |id: u32| cx.child_edges(id).any(|e| ids.contains(&e.child));
    let candidates: Vec<_> = candidates
        .into_iter()
        .filter(|(_, cs, _, _)| !parent_of_another(cs.id))
        .collect();
    let pace = |cs: &CallsiteStats| cs.calls as f64 * cs.busy_ns.min as f64;
    let &(head, head_cs, _, _) = candidates
        .iter()
        .max_by(|a, b| pace(a.1).total_cmp(&pace(b.1)))?;
    let together = |a: &CallsiteStats, b: &CallsiteStats| {
        live_together(a, b)
            .is_none_or(|(both, x, y)| both >= BESIDE_OVERLAP * x && both >= BESIDE_OVERLAP * y)
    };
    // Waiting in one queue, each member waits about as long a call beyond
    // its own work (its fastest call) as the head does: a consumer beside
    // it waiting for a channel fed every 10 ms waits for something else.
    let wait = |cs: &CallsiteStats| (cs.busy_ns.mean - cs.busy_ns.min as f64).max(0.0);
    let head_wait = wait(head_cs);
    let members: Vec<_> = candidates
        .iter()
        .filter(|(_, cs, _, _)| {
            let w = wait(cs);
            together(head_cs, cs)
                && w * MEMBER_WAIT_WITHIN >= head_wait
                && w <= MEMBER_WAIT_WITHIN * head_wait
        })
        .collect();
    // Two members that each queue alone are two queues (two locks), each
    // its own finding: summed, their paces would read as one.
    if members.len() < 2 || members.iter().filter(|m| m.3.queues(s, false)).count() > 1 {
        return None;
    }
    let window = cx.live_window_ns(head_cs);
    let (mut busy, mut on_cpu, mut runnable, mut paced, mut calls) = (0.0, 0.0, 0.0, 0.0, 0);
    for (_, cs, row, _) in &members {
        let c = row.cpu.as_ref()?;
        let b = row.busy_total_ns as f64;
        busy += b;
        on_cpu += b * c.on_cpu_share;
        runnable += b * (c.on_cpu_share + stats::share(c.preempted_ns, b)).min(1.0);
        paced += pace(cs);
        calls += cs.calls;
    }
    let inside = (busy / window).min(cx.totals.recording_threads);
    let scale = if busy > 0.0 { inside / (busy / window) } else { 0.0 };
    let crowd = Crowd {
        inside,
        on_cpu: on_cpu / window * scale,
        runnable: runnable / window * scale,
        progressing: paced / window,
        window_share: window / cx.run_wall_ns,
    };
    let head_inside = members.iter().find(|m| m.0 == head).map_or(0.0, |m| m.3.inside);
    if !crowd.queues(s, false) || head_inside > (1.0 - MIN_MEMBERS_SHARE) * inside {
        return None;
    }
    Some(SharedQueue {
        head,
        others: members.iter().map(|m| m.0).filter(|&i| i != head).collect(),
        crowd,
        calls,
        head_pace: stats::share(pace(head_cs), paced),
    })
}

/// The most calls making progress at once, at the fastest call's time
/// each, that a queue shows without the watch's word that its blocked
/// threads wait for a thread (1.0: one).
const STRICT_PACE: f64 = 1.0;

/// Under this share of a callsite's glances in a futex (0.25), its blocked
/// threads wait elsewhere (a socket, a file), each on its own: no queue. A
/// lock held across I/O has its waiters in a futex and its holder in the
/// I/O: one in four of four threads.
const GLANCED_IN_FUTEX: f64 = 0.25;

/// Whether `cs`'s waiters wait for one wait outside its spans: the watch
/// found another thread waiting outside a futex (a sleep, a read) through
/// most of their futex waits ([`super::blocked::waits_on_a_wait`]), in a
/// callsite that does not run inside `cs`. A queue's head is inside the
/// span (a lock held across a write, in the span or a child of it); these
/// threads wait for a source, not for each other. Four clients handing
/// jobs to one worker that slept 2 ms whenever it found the queue empty
/// read as a critical queue on `submit` ("they ran one at a time, queued
/// behind each other"), beside the worker's sleeps found blocked: a
/// `Condvar` in place of the sleep made 3.5 times the jobs.
fn waits_outside(cx: &Context<'_>, cs: &CallsiteStats) -> bool {
    super::blocked::waits_on_a_wait(cx, cs)
        .is_some_and(|(other, _)| !cx.descends_from(cx.dump.callsites[other].id, cs.id))
}

/// Where `cs`'s own glances do not say, the share in a futex of its
/// child's that holds at least half of its busy time: threads blocked
/// inside a span's child block where the child does. A fresh service's
/// `request` carried its span into `spawn_blocking` for a 3 ms blocking
/// call (`legacy_fetch`, 30 glances, none in a futex): 2.4 threads inside
/// `request` at once, 1.8 of them blocked in that call, read as a critical
/// queue.
fn glanced_below(cx: &Context<'_>, cs: &CallsiteStats) -> Option<f64> {
    super::blocked::glanced_in_futex(&cx.dump.callsites[holding_child(cx, cs)?])
}

/// The index of `cs`'s child that holds at least half of its busy time,
/// where one does: its threads' waits inside `cs` are that child's.
fn holding_child(cx: &Context<'_>, cs: &CallsiteStats) -> Option<usize> {
    let edge = cx
        .child_edges(cs.id)
        .max_by_key(|e| e.child_busy_ns)
        .filter(|e| e.child_busy_ns > 0 && e.child_busy_ns >= cs.busy_ns.sum / 2)?;
    cx.index_of(edge.child)
}

/// A queue's cost (a share of the run's wall time), its speed-up side by
/// side, the share of the cost that gives back, and the bound the busy
/// cores set on that, of `crowd` in `cs` (`yielding`: its waiters stay
/// runnable).
fn queue_cost(
    cx: &Context<'_>,
    cs: &CallsiteStats,
    crowd: &Crowd,
    yielding: Option<RunnableQueue>,
) -> (f64, Speedup, f64, Option<BusyCores>) {
    let cost = crowd.window_share
        * (crowd.inside / cx.totals.recording_threads)
            .max(crowd.progressing)
            .min(1.0);
    let speedup = crowd.speedup(cx.dump.run.cores);
    // The queue's threads wait; that gives back wall time only where the
    // cores would idle.
    let recoverable = 1.0 - 1.0 / speedup.factor;
    // A queue's waiters spinning on the CPU keep its cores busy
    // themselves: the fix frees what they burn beyond the head's.
    let busy = cx.busy_cores(cs, cost, recoverable).and_then(|b| match yielding {
        Some(q) => b.less_spinning(q.spinning_cores),
        None => Some(b),
    });
    (cost, speedup, recoverable, busy)
}

/// Whether the crowd in the callsite at index `i` (its own, not a shared
/// queue's) is round trips left to the hot spot, as `detect` reads them
/// ([`round_trips_on_busy_cores`]): then it is no queue whose head's CPU
/// the hot spot should count alone.
pub(crate) fn round_trips_no_queue(cx: &Context<'_>, i: usize) -> bool {
    let (cs, row) = (&cx.dump.callsites[i], &cx.rows[i]);
    let Some(crowd) = Crowd::of(cx, cs, row) else {
        return false;
    };
    let yielding = queue_of_runnable_waiters(cx, cs, row);
    let (cost, _, _, busy) = queue_cost(cx, cs, &crowd, yielding);
    busy.is_some_and(|b| round_trips_on_busy_cores(cx, i, cost, &b))
}

/// Whether the crowd in the callsite at index `i` is round trips its
/// threads make one after another, each on its own (a reply channel's
/// futex wait, and the peer it wakes preempting it, read as a queue),
/// whose gain on busy cores is their CPU
/// ([`round_trips::left_to_the_hot_spot`]): its own calls', or those of
/// the child holding its busy time. A fresh cart pricer's three threads,
/// each asking a pricer thread of its own for 30 quotes a cart one at a
/// time, read a low queue in `quote` (and then in `price_cart`) whose
/// fixes were a lock's; one request for the 30 made 2.4 times the carts.
fn round_trips_on_busy_cores(cx: &Context<'_>, i: usize, cost: f64, busy: &BusyCores) -> bool {
    let trips = |j: usize| {
        let (cs, row) = (&cx.dump.callsites[j], &cx.rows[j]);
        row.cpu.as_ref().is_some_and(|c| RoundTrips::of(cx, cs, row, c.self_on_cpu_ns).is_some())
            && round_trips::left_to_the_hot_spot(cx, j, cs, cost, busy)
    };
    trips(i) || holding_child(cx, &cx.dump.callsites[i]).is_some_and(trips)
}

impl Detector for Serialization {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.serialization;
        let shared = shared_queue(cx, s);
        for (i, cs, row) in cx.callsites() {
            let (Some(own_crowd), Some(c)) = (Crowd::of(cx, cs, row), &row.cpu) else {
                continue;
            };
            // A member of a shared queue is read with it, on its head.
            let crowd = match &shared {
                Some(q) if q.head == i => q.crowd,
                Some(q) if q.others.contains(&i) => continue,
                _ => own_crowd,
            };
            let Crowd { inside, on_cpu, runnable, progressing, window_share } = crowd;
            // Blocked inside: neither on the CPU nor preempted.
            let blocked = inside - runnable;
            let yielding = queue_of_runnable_waiters(cx, cs, row);
            if !crowd.queues(s, yielding.is_some()) {
                continue;
            }
            // Waiters that block wait for a thread of the process, in a
            // futex. Threads each waiting on a socket of their own do not:
            // a fresh program's four threads fetching items one round trip
            // each from a database (a connection each, 10.5 µs the
            // fastest, 30 µs the mean) read a critical queue ("do not hold
            // a lock across I/O"). Where the watch glanced at its short
            // waits and found them mostly elsewhere (a socket, a file), no
            // queue. And a queue's head moves one call at a time, so its
            // calls at their fastest fit the window end to end: the slack
            // the bar allows past that (work in the span outside the
            // queue) needs the watch's word that they wait in a futex.
            if yielding.is_none() && shared.as_ref().is_none_or(|q| q.head != i) {
                let watched = super::blocked::waits_for_a_thread(cs).is_some();
                let glanced = super::blocked::glanced_in_futex(cs).or_else(|| glanced_below(cx, cs));
                let elsewhere = !watched && glanced.is_some_and(|g| g < GLANCED_IN_FUTEX);
                let in_futex = watched || glanced.is_some_and(|g| g >= GLANCED_IN_FUTEX);
                if elsewhere || (progressing > STRICT_PACE && !in_futex) {
                    continue;
                }
                if waits_outside(cx, cs) {
                    continue;
                }
            }
            let (cost, speedup, recoverable, busy) = queue_cost(cx, cs, &crowd, yielding);
            let over = if window_share < 1.0 {
                format!(
                    "the {} of the run's wall time its spans were live in",
                    units::pct(window_share)
                )
            } else {
                "the run's wall time".to_owned()
            };
            if cost < s.min_share {
                continue;
            }
            let side_by_side = match (speedup.core_bound, cx.dump.run.cores) {
                (Some(_), Some(cores)) => format!(
                    "; side by side its work on the CPU would run on at most the process's {cores} cores, {:.1} threads' worth",
                    speedup.factor
                ),
                _ => String::new(),
            };
            if shared.is_none() && busy.is_some_and(|b| round_trips_on_busy_cores(cx, i, cost, &b)) {
                continue;
            }
            let members = shared.as_ref().filter(|q| q.head == i);
            let summary = match members {
                Some(q) => format!(
                    "`{}` and {} take turns on one thing they each wait for in a futex (a lock or a connection they all take): {inside:.1} threads inside them at once on average over {over}, {on_cpu:.2} of them on the CPU; at their fastest calls' times (`{}`'s {} each) their {} calls end to end fill {} of it: they ran one at a time, queued behind each other, for {} of the run's wall time; `{}`'s calls are {} of the queue's pace at those times: its work on what they share is what the others wait for{side_by_side}",
                    row.location.label,
                    in_backticks(q.others.iter().map(|&o| cx.rows[o].location.label.as_str())),
                    row.location.label,
                    units::ns(cs.busy_ns.min as f64),
                    units::count(q.calls as f64),
                    units::pct(progressing),
                    units::pct(cost),
                    row.location.label,
                    units::pct(q.head_pace),
                ),
                None => format!(
                    "{inside:.1} threads inside at once on average over {over}, {on_cpu:.2} of them on the CPU; at its fastest call's {} each, its {} calls end to end fill {} of it: they ran one at a time, queued behind each other, for {} of the run's wall time{side_by_side}",
                    units::ns(cs.busy_ns.min as f64),
                    units::count(cs.calls as f64),
                    units::pct(progressing),
                    units::pct(cost)
                ),
            };
            let mut draft = Draft {
                class: Class::Serialization,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::WallTime,
                cost_share: cost,
                recoverable: busy.map_or(recoverable, |b| b.recoverable(cost)),
                confidence: (1.0 - c.on_cpu_share)
                    * stats::sample_confidence(cs.calls, s.half_confidence_calls),
                summary,
                evidence: vec![
                    Evidence::new(
                        "threads inside at once (busy time over the wall time its spans were live in)",
                        inside,
                        Unit::Number,
                        Some(s.min_concurrency),
                    ),
                    Evidence::new("of them on the CPU", on_cpu, Unit::Number, None),
                    Evidence::new(
                        "of them runnable (on the CPU or preempted)",
                        runnable,
                        Unit::Number,
                        Some(s.max_on_cpu_threads),
                    ),
                    Evidence::new(
                        "of them blocked (neither on the CPU nor preempted)",
                        blocked,
                        Unit::Number,
                        (runnable > s.max_on_cpu_threads).then_some(s.min_blocked_threads),
                    ),
                    Evidence::new(
                        "calls x fastest call over the wall time its spans were live in",
                        progressing,
                        Unit::Number,
                        Some(s.max_progressing_threads),
                    ),
                    Evidence::new("fastest call", cs.busy_ns.min as f64, Unit::Ns, None),
                    Evidence::new("calls", cs.calls as f64, Unit::Count, None),
                    Evidence::new(
                        "live share of the run's wall time",
                        window_share,
                        Unit::Share,
                        None,
                    ),
                    Evidence::new(
                        "speed-up side by side (threads inside, as far as the cores carry them)",
                        speedup.factor,
                        Unit::Number,
                        None,
                    ),
                ],
            };
            if let Some(RunnableQueue { yielding: y, .. }) = yielding {
                let how = if c.voluntary_per_call >= BLOCKING_WAITERS {
                    format!(
                        "woken as it passes (they block too, {:.2} voluntary switches a call), they wait for a core and put its holder off one",
                        c.voluntary_per_call
                    )
                } else {
                    "spinning or yielding for it (a `parking_lot` or spin lock)".to_string()
                };
                draft.summary.push_str(&format!(
                    "; its waiters stay runnable, {how}: preempted {:.2} times as long as on the CPU, the spans beside it {:.2}",
                    y.own, y.beside
                ));
                draft.evidence.push(Evidence::new(
                    "self time preempted over self time on the CPU",
                    y.own,
                    Unit::Number,
                    Some(s.min_preempted_over_beside * y.beside),
                ));
                draft.evidence.push(Evidence::new(
                    "the same, of the spans beside it",
                    y.beside,
                    Unit::Number,
                    None,
                ));
            }
            if let Some(b) = &busy {
                draft.summary.push_str(&b.summary());
                draft.evidence.push(b.evidence());
            }
            if let Some(q) = members {
                draft.evidence.push(Evidence::new(
                    "its calls' share of the queue's pace (calls x fastest call)",
                    q.head_pace,
                    Unit::Share,
                    None,
                ));
            }
            let others: Vec<&str> = members.map_or_else(Vec::new, |q| {
                q.others.iter().map(|&o| cx.rows[o].location.label.as_str()).collect()
            });
            // One thread inside on the CPU, the rest waiting: the head
            // computes while it holds what they wait for.
            let head_computes =
                (others.is_empty() && (HEAD_COMPUTES..=1.0 + (1.0 - HEAD_COMPUTES)).contains(&on_cpu)).then_some((on_cpu, inside));
            // What it computes may be the kernel's: a write to a shared
            // file a line at a time under the lock.
            let in_kernel = head_computes
                .and_then(|_| crate::analyze::small_io::kernel_at_most(cx, cs, row.self_cpu_ns))
                .filter(|&k| k >= HEAD_IN_THE_KERNEL);
            if let Some(k) = in_kernel {
                draft.evidence.push(Evidence::new(
                    "the process's time in the kernel while it was live, share of its CPU (at most its system calls')",
                    k,
                    Unit::Share,
                    Some(HEAD_IN_THE_KERNEL),
                ));
            }
            let mut finding = cx.score(draft, |f| advice(f, busy, &others, head_computes, in_kernel));
            if let Some(q) = members {
                finding.queued_with = q.others.iter().map(|&o| cx.dump.callsites[o].id).collect();
            }
            found.push(finding);
        }
    }

}

/// Span names in backticks, joined by "and".
fn in_backticks<'n>(names: impl Iterator<Item = &'n str>) -> String {
    names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
}

/// Of the threads inside a queue, about one on the CPU (this many to two
/// less this many): the head computes while it holds what the others
/// wait for. Four threads digesting a sample for 80 µs under a global
/// `parking_lot::Mutex` (0.92 of 3.8 inside on the CPU) read a critical
/// queue with "do not hold a lock across I/O" first; digesting before
/// locking made 2.0 times the samples.
const HEAD_COMPUTES: f64 = 0.75;

/// Where the process's time in the kernel while such a queue's spans
/// were live is at least this share of their CPU (0.5), what the head
/// does may be system calls: four threads appending a line each to a
/// `Mutex<File>` with one `write_all` (unbuffered) read "do it before
/// taking the guard" first, where a `BufWriter` inside the lock served
/// 1.85 times the requests.
const HEAD_IN_THE_KERNEL: f64 = 0.5;

/// The plan step's advice for one of its findings; `busy`, when the
/// process's busy cores bound its gain.
///
/// `others`: the callsites that share the queue with it (its waiters'
/// spans), when it heads one [`shared_queue`]. `head_computes`: the
/// threads inside on the CPU and inside, where about one computes
/// ([`HEAD_COMPUTES`]); `in_kernel`, the most of its CPU system calls can
/// be, where that is at least [`HEAD_IN_THE_KERNEL`].
fn advice(
    f: &Finding,
    busy: Option<BusyCores>,
    others: &[&str],
    head_computes: Option<(f64, f64)>,
    in_kernel: Option<f64>,
) -> Advice {
    let name = f.subject().in_prose();
    let mut fixes = Vec::new();
    if let (Some((on_cpu, inside)), Some(k)) = (head_computes, in_kernel) {
        fixes.push(format!(
            "The thread at the head of the queue works in the kernel: {on_cpu:.2} of the {inside:.1} threads inside were on the CPU, and the process's time in the kernel while they were was {} of their CPU: a system call made while holding the lock (a write to a shared file, socket or stdout a line at a time) is what the others wait out; buffer what it writes (a `BufWriter` inside the lock, flushed now and then) or hand the lines to one writer thread over a channel, and keep the guard only to queue them",
            units::pct(k)
        ));
    } else if let Some((on_cpu, inside)) = head_computes {
        fixes.push(format!(
            "The thread at the head of the queue computes: {on_cpu:.2} of the {inside:.1} threads inside were on the CPU, so what it computes while holding the lock (a digest, an encoding, a sort, a search) is what the others wait out; do it before taking the guard or after dropping it, and keep the guard only to read or write the shared state"
        ));
    }
    if !others.is_empty() {
        fixes.push(format!(
            "{name} and {} wait for one thing, and {name}'s calls hold it longest: shorten what {name} does while holding it (a sync or a write: batch them, one transaction for many; a computation: do it before taking the lock), or give each thread its own instance (a connection each, from a pool) so the others need not wait for it",
            in_backticks(others.iter().copied())
        ));
    }
    fixes.extend(lines(&[
            "Do not hold a lock across I/O, a sleep or an `.await`: copy what you need out of the guard, drop it, then do the slow part",
            "Shrink what the lock guards: shard the state (`dashmap`, one `Mutex` per shard or per key), or keep per-thread state and merge it at the end",
            "Use a read-write lock (`RwLock`, `parking_lot::RwLock`) or an atomic or lock-free structure when most accesses read",
            "Give each thread its own instance of a single shared resource (a connection pool instead of one connection, a pool of buffers)",
        ]));
    Advice {
        statement: format!(
            "letting the threads inside {name}{} proceed side by side instead of one at a time ({} of the run's wall time went to its queue) gives back {} of the run's wall time{}",
            if others.is_empty() {
                String::new()
            } else {
                format!(" and {}", in_backticks(others.iter().copied()))
            },
            units::pct(f.cost_share),
            units::pct(f.expected_gain()),
            busy.map_or_else(String::new, |b| b.gain_clause())
        ),
        fixes,
        prerequisites: vec![format!(
            "Find what {name} queues on: a child span around each lock acquisition and each call to a shared resource; the one whose busy time grows with the number of threads is it"
        )],
        check: format!(
            "{name}'s threads inside at once must fall towards the threads on the CPU, and the run's wall time with them"
        ),
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{
        MIB, MS, Span, US, about, assert_near, detect, dump, evidence, hist, timeline,
    };

    /// A 10 s run on 4 recording threads. `queue`'s 100 calls add up to
    /// 28.6 s of busy time (2.86 threads inside at once), 10% of it on the
    /// CPU, and its fastest calls take 100 ms (100 of them end to end fill
    /// the run): they queued behind a head that moved. `pair` has 19.9 s
    /// (1.99 threads), just under two.
    #[test]
    fn finds_threads_queued_in_a_span_and_not_fewer_than_two() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let pair = [(100 * MS, 10), (210 * MS, 90)];
        let mut d = dump(
            10_000 * MS,
            &[
                Span::new("queue", &queue).on_cpu(2_863 * MS, 0, 100, 0),
                Span::new("pair", &pair).on_cpu(1_990 * MS, 0, 100, 0),
            ],
        );
        d.run.span_threads = Some(4);
        let found = detect(Class::Serialization, d);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "queue").unwrap();
        let inside = evidence(
            f,
            "threads inside at once (busy time over the wall time its spans were live in)",
        );
        assert_near(inside, 2.863, 1e-9);
        assert_near(evidence(f, "of them on the CPU"), 0.2863, 1e-9);
        // HDR's lowest value of the 100 ms bucket: within 1%.
        assert_near(
            evidence(f, "calls x fastest call over the wall time its spans were live in"),
            1.0,
            0.01,
        );
        // The queue ran whenever one of the 4 threads was inside: at least
        // 2.863 / 4, and its fastest calls end to end fill about the run.
        assert_near(f.cost_share, 1.0, 0.01);
        assert_near(f.recoverable, 1.0 - 1.0 / 2.863, 1e-9);
        assert_near(f.confidence, 0.9 * 100.0 / 120.0, 1e-9);
    }

    /// The same queue with 0.92 of its 2.86 threads on the CPU: the head
    /// computes under what they wait for, said first in the fix; at 0.29
    /// (a head that writes, sleeps or syncs), not.
    #[test]
    fn a_queue_whose_head_computes_says_to_compute_before_taking_the_lock() {
        let with = |on_cpu_ms: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("queue", &[(100 * MS, 10), (307 * MS, 90)]).on_cpu(on_cpu_ms * MS, 0, 100, 0)],
            );
            d.run.span_threads = Some(4);
            detect(Class::Serialization, d)
        };
        let found = with(9_200);
        let f = about(&found, "queue").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("The thread at the head of the queue computes: 0.92 of the 2.9 threads inside"),
            "{:?}",
            f.advice.fixes
        );
        let found = with(2_863);
        let f = about(&found, "queue").unwrap();
        assert!(f.advice.fixes[0].starts_with("Do not hold a lock across I/O"), "{:?}", f.advice.fixes);
    }

    /// The same head on the CPU, with the process's time in the kernel
    /// while the queue was live at 7.6 s of its 9.2 s of CPU: the head's
    /// work may be system calls (a line written to a shared file under the
    /// lock), and buffering them is said first; with the kernel at 2.2 s,
    /// the head computes.
    #[test]
    fn a_queue_whose_head_works_in_the_kernel_says_to_buffer_what_it_writes() {
        let with = |kernel_percent: f64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("queue", &[(100 * MS, 10), (307 * MS, 90)]).on_cpu(9_200 * MS, 0, 100, 0)],
            );
            d.run.span_threads = Some(4);
            crate::analyze::test_dump::kernel_timeline(&mut d, 0, 11, 100.0, kernel_percent, 10_000 * MS);
            detect(Class::Serialization, d)
        };
        let found = with(76.0);
        let f = about(&found, "queue").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("The thread at the head of the queue works in the kernel: 0.92 of the 2.9 threads inside"),
            "{:?}",
            f.advice.fixes
        );
        assert!(f.advice.fixes[0].contains("82.6% of their CPU"), "{:?}", f.advice.fixes);
        let found = with(22.0);
        let f = about(&found, "queue").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("The thread at the head of the queue computes"),
            "{:?}",
            f.advice.fixes
        );
    }

    /// Workers on an empty job queue: three threads inside `wait_job` on
    /// average, 1% of it on the CPU, and its 1,000 calls at their fastest
    /// (1 ms: a job was there) fill a tenth of the run. Nobody inside
    /// moves; they wait for the producer. With a fifth of its busy time on
    /// the CPU (0.6 threads: a holder computing) the same span is a queue.
    #[test]
    fn threads_that_all_wait_for_a_source_are_not_a_queue() {
        let calls = [(MS, 100), (33 * MS, 900)];
        let with_cpu = |on_cpu_ns: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("wait_job", &calls).on_cpu(on_cpu_ns, 0, 1_000, 0)],
            );
            d.run.span_threads = Some(4);
            detect(Class::Serialization, d)
        };
        assert!(with_cpu(300 * MS).is_empty(), "{:?}", with_cpu(300 * MS));
        let found = with_cpu(6_000 * MS);
        let f = about(&found, "wait_job").unwrap();
        assert_near(evidence(f, "of them on the CPU"), 0.6, 1e-9);
    }

    /// The same convoy as above in one phase of a 20 s run: over the whole
    /// run it is 1.43 threads inside at once and no queue; over the 10 s its
    /// spans were live in, 2.86 threads with the fastest calls filling it,
    /// and the queue ran for half the run.
    #[test]
    fn a_convoy_in_one_phase_is_read_over_that_phase() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let with_window = |window: Option<u64>| {
            let mut d = dump(
                20_000 * MS,
                &[Span::new("queue", &queue).on_cpu(2_863 * MS, 0, 100, 0)],
            );
            d.run.span_threads = Some(4);
            d.callsites[0].active = window.map(|len| perf_layer::dump::ActiveWindow {
                first_open_ns: 0,
                last_close_ns: len,
            });
            detect(Class::Serialization, d)
        };
        assert!(with_window(None).is_empty(), "{:?}", with_window(None));
        let found = with_window(Some(10_000 * MS));
        let f = about(&found, "queue").unwrap();
        assert_near(
            evidence(
                f,
                "threads inside at once (busy time over the wall time its spans were live in)",
            ),
            2.863,
            1e-9,
        );
        assert_near(evidence(f, "live share of the run's wall time"), 0.5, 1e-9);
        assert_near(f.cost_share, 0.5, 0.01);
        assert!(f.summary.contains("over the 50.0% of the run's wall time its spans were live in"), "{}", f.summary);
    }

    /// Four threads computing on two cores (a fresh indexer's `score`):
    /// two inside at once, 1.1 on the CPU, and the calls at their fastest
    /// fill the window, as a queue's would; but the other 0.9 are
    /// preempted, waiting for a core, not blocked behind each other. With
    /// that time blocked instead, the same figures are a queue.
    #[test]
    fn threads_preempted_inside_wait_for_the_cores_not_each_other() {
        let calls = [(100 * MS, 10), (215 * MS, 90)];
        let with_preempted = |preempted_ns: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("score", &calls).on_cpu(11_000 * MS, preempted_ns, 0, 100)],
            );
            d.run.span_threads = Some(4);
            d.run.cores = Some(2);
            detect(Class::Serialization, d)
        };
        let preempted = with_preempted(9_000 * MS);
        assert!(preempted.is_empty(), "{preempted:?}");
        let blocked = with_preempted(0);
        let f = about(&blocked, "score").unwrap();
        assert_near(evidence(f, "of them on the CPU"), 1.1, 0.01);
        assert_near(evidence(f, "of them runnable (on the CPU or preempted)"), 1.1, 0.01);
    }

    /// A connection's span whose child queues on a lock: the parent's busy
    /// time is the child's, so both read as the same queue. Only the child
    /// is reported, where the lock is.
    #[test]
    fn a_parent_crowded_by_its_childs_queue_is_not_a_second_queue() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let mut d = dump(
            10_000 * MS,
            &[
                Span::new("handle_conn", &queue).on_cpu(2_863 * MS, 0, 100, 0),
                Span::new("audit", &queue).on_cpu(2_863 * MS, 0, 100, 0),
            ],
        );
        d.run.span_threads = Some(4);
        assert_eq!(detect(Class::Serialization, d.clone()).len(), 2);
        let analysis = crate::analyze::analyze(&d.into(), &crate::Config::default());
        let queues: Vec<_> = analysis
            .findings
            .iter()
            .filter(|f| f.class == Class::Serialization)
            .collect();
        assert_eq!(queues.len(), 1, "{queues:?}");
        assert_eq!(queues[0].location.as_ref().unwrap().name, "audit");
    }

    /// The first test's queue with other load beside it: its holder and
    /// the waiters it wakes preempted, 1.6 runnable of 2.86 inside, but
    /// 1.26 blocked, waiting for each other, not for cores: a queue still.
    /// With nothing blocked (all of them waiting for cores), not one.
    #[test]
    fn a_queue_whose_head_is_preempted_is_told_by_its_blocked_waiters() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let with_preempted = |on_cpu_ns: u64, preempted_ns: u64| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("queue", &queue).on_cpu(on_cpu_ns, preempted_ns, 100, 100)],
            );
            d.run.span_threads = Some(4);
            detect(Class::Serialization, d)
        };
        let found = with_preempted(8_000 * MS, 8_000 * MS);
        let f = about(&found, "queue").unwrap();
        assert_near(evidence(f, "of them runnable (on the CPU or preempted)"), 1.6, 1e-9);
        assert_near(
            evidence(f, "of them blocked (neither on the CPU nor preempted)"),
            1.263,
            1e-9,
        );
        assert!(with_preempted(14_000 * MS, 14_630 * MS).is_empty());
    }

    /// Four threads each fetching items one round trip at a time from a
    /// database process, a connection each: 3.8 inside at once, 0.6 on
    /// the CPU, and their fastest calls (13 µs) end to end fill 1.3 times
    /// the run, more than one queue's head can. Not a queue unless the
    /// watch saw them wait for a thread of the process (a futex).
    #[test]
    fn threads_each_waiting_on_their_own_socket_are_not_a_queue_without_a_futex() {
        let with = |watched: bool| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("fetch", &[(13 * US, 10_000), (40_800 * US / 1_000, 90_000)])
                    .on_cpu(600 * MS, 100 * MS, 100_000, 1_000)],
            );
            d.run.span_threads = Some(4);
            if watched {
                d.callsites[0].watched_waits = Some(futex(100 * MS));
            }
            detect(Class::Serialization, d)
        };
        assert!(with(false).is_empty(), "{:#?}", with(false));
        let found = with(true);
        let f = about(&found, "fetch").unwrap();
        assert_near(evidence(f, "calls x fastest call over the wall time its spans were live in"), 1.3, 0.01);
    }

    /// The same threads on a busier machine: their round trips run long
    /// and their fastest calls end to end fill 0.65 of the run, as a
    /// queue's would. The watch's glances at their short waits found them
    /// on their sockets, not in a futex: no queue. Found in a futex (three
    /// waiters and a holder on its I/O), a queue.
    #[test]
    fn threads_glanced_waiting_outside_a_futex_are_not_a_queue() {
        let with = |glances: u64, in_futex: u64| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("fetch", &[(6_500, 10_000), (41_500, 90_000)])
                    .on_cpu(600 * MS, 100 * MS, 100_000, 1_000)],
            );
            d.run.span_threads = Some(4);
            d.callsites[0].watched_waits = Some(perf_layer::dump::WatchedWaits {
                glances: Some(glances),
                glances_in_futex: Some(in_futex),
                ..Default::default()
            });
            detect(Class::Serialization, d)
        };
        assert!(with(40, 0).is_empty(), "{:#?}", with(40, 0));
        let found = with(40, 30);
        let f = about(&found, "fetch").unwrap();
        assert_near(evidence(f, "calls x fastest call over the wall time its spans were live in"), 0.65, 0.01);
        // Too few glances to say: as before, a queue.
        assert!(!with(4, 0).is_empty());
    }

    /// The same crowd, its blocked time in a child (a blocking call the
    /// span carries into `spawn_blocking`), which the watch glanced at and
    /// `fetch` itself too seldom: the child's glances say where they wait.
    #[test]
    fn threads_blocked_in_a_child_wait_where_the_child_does() {
        let with = |in_futex: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("fetch", &[(6_500, 10_000), (41_500, 90_000)])
                        .on_cpu(600 * MS, 100 * MS, 100_000, 1_000),
                    Span::new("legacy_call", &[(30_000, 100_000)]),
                ],
            );
            d.run.span_threads = Some(4);
            d.edges.push(perf_layer::dump::CallEdge {
                parent: d.callsites[0].id,
                child: d.callsites[1].id,
                calls: 100_000,
                child_busy_ns: 3_000 * MS,
                outlived: 0,
            });
            d.callsites[1].watched_waits = Some(perf_layer::dump::WatchedWaits {
                glances: Some(40),
                glances_in_futex: Some(in_futex),
                ..Default::default()
            });
            detect(Class::Serialization, d)
        };
        assert!(about(&with(0), "fetch").is_none(), "{:#?}", with(0));
        assert!(about(&with(30), "fetch").is_some(), "{:#?}", with(30));
    }

    /// The convoy of the first test with its holder computing (one thread
    /// on the CPU inside, as many as make progress): side by side, 2.86
    /// threads' work on the CPU needs 2.86 cores. On two cores, at most two
    /// run at once and half the queue's time comes back, not 65%; on four
    /// cores, all of them.
    #[test]
    fn the_cores_bound_what_a_computing_queue_gives_back() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let with_cores = |cores: Option<u32>| {
            let mut d = dump(
                10_000 * MS,
                &[Span::new("queue", &queue).on_cpu(10_000 * MS, 0, 100, 0)],
            );
            d.run.span_threads = Some(4);
            d.run.cores = cores;
            let found = detect(Class::Serialization, d);
            about(&found, "queue").unwrap().clone()
        };
        let on_two = with_cores(Some(2));
        assert_near(evidence(&on_two, "of them on the CPU"), 1.0, 1e-9);
        assert_near(on_two.recoverable, 0.5, 1e-9);
        assert!(on_two.summary.contains("at most the process's 2 cores, 2.0 threads' worth"), "{}", on_two.summary);
        for free in [with_cores(Some(4)), with_cores(None)] {
            assert_near(free.recoverable, 1.0 - 1.0 / 2.863, 1e-9);
            assert!(!free.summary.contains("cores"), "{}", free.summary);
        }
    }

    /// Four threads on two cores over 2 s: `update` (400,000 calls, a
    /// fastest of 3 µs, 6.3 s of busy time: 3.15 threads inside) holds a
    /// lock whose waiters spin and yield: 2.9 s on the CPU, 3.4 s preempted,
    /// none blocked, 0.6 threads making progress; `prepare` beside it is
    /// hardly preempted. A queue, whose preemption is its own, not CPU
    /// contention, and whose CPU beyond its head's is its waiters'. With
    /// `prepare` preempted alike (threads waiting for the cores), no queue.
    #[test]
    fn a_queue_whose_waiters_spin_or_yield_is_found_and_is_not_cpu_contention() {
        let run = |prepare_preempted_ns: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("update", &[(3 * US, 100_000), (20 * US, 300_000)])
                        .on_cpu(2_900 * MS, 3_400 * MS, 0, 400_000),
                    Span::new("prepare", &[(US, 400_000)])
                        .on_cpu(400 * MS - prepare_preempted_ns, prepare_preempted_ns, 0, 10),
                ],
            );
            d.run.span_threads = Some(4);
            d.run.cores = Some(2);
            d
        };
        let found = detect(Class::Serialization, run(10 * MS));
        let f = about(&found, "update").expect("a queue of runnable waiters");
        assert!(f.summary.contains("spinning or yielding"), "{}", f.summary);
        // Its waiters blocking in the kernel too (a `std` mutex): woken as
        // the lock passes, not spinning.
        let mut blocking = run(10 * MS);
        blocking.callsites[0].cpu.as_mut().unwrap().voluntary_switches = 400_000;
        let found = detect(Class::Serialization, blocking);
        let f = about(&found, "update").expect("a queue of runnable waiters");
        assert!(
            f.summary.contains("its waiters stay runnable, woken as it passes (they block too, 1.00 voluntary switches a call)"),
            "{}",
            f.summary
        );
        assert_near(
            evidence(f, "self time preempted over self time on the CPU"),
            3_400.0 / 2_900.0,
            1e-9,
        );
        assert!(
            detect(Class::CpuContention, run(10 * MS)).is_empty(),
            "its preemption is the queue's"
        );
        // The hot spot is its head's work: 0.6 of the 1.45 threads on the
        // CPU inside it.
        let hot = detect(Class::HotSpot, run(10 * MS));
        let h = about(&hot, "update").unwrap();
        assert!(h.summary.contains("its head"), "{}", h.summary);

        // Its busy time in its children, its self time a hundredth of it
        // (the moments between them): waiters spin in a span's own code,
        // so nothing spins in it, and the queue would be a child's.
        let mut in_children = run(10 * MS);
        in_children.callsites[0].self_ns = hist(&[(US / 10, 100_000), (US / 5, 300_000)]);
        assert!(
            about(&detect(Class::Serialization, in_children), "update").is_none(),
            "a parent's self time between its children is no queue"
        );

        let alike = run(220 * MS);
        assert!(detect(Class::Serialization, alike.clone()).is_empty());
        assert!(!detect(Class::CpuContention, alike).is_empty());

        // On two saturated cores, the spinning waiters' CPU is what the fix
        // frees; blocking waiters' is their own work, freed by nothing.
        let saturated = |voluntary: u64| {
            let mut d = run(10 * MS);
            d.run.cpu_ns = Some(3_990 * MS);
            timeline(&mut d, &[(100 * MIB, 199.5); 4]);
            for (i, x) in d.timeline.samples.iter_mut().enumerate() {
                x.t_ms = 400 * (i as u64 + 1);
            }
            d.callsites[0].cpu.as_mut().unwrap().voluntary_switches = voluntary;
            let found = detect(Class::Serialization, d);
            about(&found, "update").unwrap().clone()
        };
        let (spins, blocks) = (saturated(0), saturated(400_000));
        assert!(
            blocks.summary.contains("the process kept 99.8% of its 2 cores busy while"),
            "{}",
            blocks.summary
        );
        assert!(!blocks.summary.contains("spinning"), "{}", blocks.summary);
        assert!(blocks.expected_gain() < spins.expected_gain() / 4.0, "{} against {}", blocks.expected_gain(), spins.expected_gain());
    }

    /// 40 watched waits of `wait_ns` in all, 90% of it in a futex, beside
    /// a quarter of a core.
    fn futex(wait_ns: u64) -> perf_layer::dump::WatchedWaits {
        perf_layer::dump::WatchedWaits {
            intervals: 40,
            wait_ns,
            others_cpu_ns: wait_ns / 4,
            others_wanted_ns: Some(wait_ns / 4),
            for_a_thread_ns: Some(wait_ns * 9 / 10),
            beside: Vec::new(),
            ..Default::default()
        }
    }

    /// The first test's queue, its waiters in a futex while the rest of
    /// the process idles and one other thread waits outside a futex in
    /// `next_job` (sleeping between looks at a job queue) through 90% of
    /// those waits: they wait for that sleep, not for each other, and it
    /// is no queue. The same wait in a child of the span (a holder's write
    /// under the lock) is the queue's head, and the queue stands.
    #[test]
    fn threads_waiting_for_a_wait_outside_the_span_are_not_a_queue() {
        let queue = [(100 * MS, 10), (307 * MS, 90)];
        let with_child = |child: bool| {
            let mut d = dump(
                10_000 * MS,
                &[
                    // The dump's first span is the others' parent.
                    Span::new("main", &[(10_000 * MS, 1)]),
                    Span::new("submit", &queue).on_cpu(2_863 * MS, 0, 100, 0),
                    Span::new("next_job", &[(20 * MS, 100)]).on_cpu(MS, 0, 100, 0),
                ],
            );
            d.run.span_threads = Some(4);
            let (submit, next_job) = (d.callsites[1].id, d.callsites[2].id);
            let mut waits = futex(10_000 * MS);
            waits.others_cpu_ns = waits.wait_ns / 10;
            waits.beside = vec![perf_layer::dump::WaitedBeside {
                callsite: next_job,
                ns: waits.for_a_thread_ns.unwrap() * 9 / 10,
            }];
            d.callsites[1].watched_waits = Some(waits);
            if child {
                d.edges.retain(|e| e.child != next_job);
                d.edges.push(perf_layer::dump::CallEdge {
                    parent: submit,
                    child: next_job,
                    calls: 100,
                    child_busy_ns: 2_000 * MS,
                    outlived: 0,
                });
            }
            detect(Class::Serialization, d)
        };
        let found = with_child(false);
        assert!(about(&found, "submit").is_none(), "{found:#?}");
        let found = with_child(true);
        assert!(about(&found, "submit").is_some(), "{found:#?}");
    }

    /// A 1 s run on 4 threads: `insert` (1,000 calls, the fastest 600 µs)
    /// and `query` (2,000, the fastest 20 µs) each hold 1.8 threads inside
    /// at once, under the two a queue takes, both waiting in a futex. Read
    /// together: 3.6 threads inside, their fastest calls end to end filling
    /// 64% of the run, one queue headed by `insert`. `next_job` beside them,
    /// waiting 10 ms a call in a futex (a consumer on a quiet channel), is
    /// waiting for something else and stays out. Without the watched waits
    /// there is no queue.
    #[test]
    fn callsites_waiting_in_a_futex_that_together_queue_are_one_queue_on_its_head() {
        let with_waits = |watched: bool| {
            let mut d = dump(
                1_000 * MS,
                &[
                    // The dump's first span is the others' parent.
                    Span::new("worker", &[(1_000 * MS, 4)]),
                    Span::new("insert", &[(600 * US, 500), (3 * MS, 500)]).on_cpu(200 * MS, 0, 5_000, 0),
                    Span::new("query", &[(20 * US, 1_000), (1_780 * US, 1_000)]).on_cpu(40 * MS, 0, 1_000, 0),
                    Span::new("next_job", &[(10 * US, 50), (20 * MS, 50)]).on_cpu(MS, 0, 100, 0),
                ],
            );
            d.run.span_threads = Some(4);
            if watched {
                for cs in d.callsites.iter_mut().skip(1) {
                    cs.watched_waits = Some(futex(10 * MS));
                }
            }
            detect(Class::Serialization, d)
        };
        assert!(with_waits(false).is_empty(), "{:#?}", with_waits(false));
        let found = with_waits(true);
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = about(&found, "insert").unwrap();
        assert!(f.summary.starts_with("`insert` and `query` take turns"), "{}", f.summary);
        assert_near(
            evidence(f, "threads inside at once (busy time over the wall time its spans were live in)"),
            3.6,
            0.05,
        );
        assert_near(
            evidence(f, "calls x fastest call over the wall time its spans were live in"),
            0.64,
            0.02,
        );
        assert_near(evidence(f, "its calls' share of the queue's pace (calls x fastest call)"), 0.6 / 0.64, 0.02);
        let query = f.queued_with.clone();
        assert_eq!(query.len(), 1, "{query:?}");
        assert!(f.advice.statement.contains("`insert` and `query`"), "{}", f.advice.statement);
        assert!(f.advice.fixes[0].contains("hold it longest"), "{:#?}", f.advice.fixes);
    }

    /// Two locks, each with its own queue: `debit` and `credit` each hold
    /// 2.4 threads inside a 1 s run on 6 threads, their fastest calls end
    /// to end filling 60% of it. Summed they would read as one queue
    /// (1.2 making progress); each is its own finding.
    #[test]
    fn two_callsites_that_each_queue_alone_are_two_queues() {
        let calls = [(600 * US, 500), (4_200 * US, 500)];
        let mut d = dump(
            1_000 * MS,
            &[
                Span::new("worker", &[(1_000 * MS, 6)]),
                Span::new("debit", &calls).on_cpu(200 * MS, 0, 5_000, 0),
                Span::new("credit", &calls).on_cpu(200 * MS, 0, 5_000, 0),
            ],
        );
        d.run.span_threads = Some(6);
        for cs in d.callsites.iter_mut().skip(1) {
            cs.watched_waits = Some(futex(10 * MS));
        }
        let found = detect(Class::Serialization, d);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|f| f.queued_with.is_empty() && !f.summary.contains("take turns")));
    }
}
