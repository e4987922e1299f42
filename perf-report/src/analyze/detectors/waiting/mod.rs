//! Waiting, not working: a span that exists far longer than it is entered,
//! with enough idle time to matter to the run.
//!
//! When its caller awaits it several times a call, one after another (an
//! N+1: a list fetched item by item), the fix is in the caller, and the
//! finding names it. Read from the call edges, no timeline needed: a
//! caller that makes `k >= min_calls_per_caller` calls a call, whose
//! calls' wall time adds up to about the caller's own wall time
//! (`sequential_fill`, 80% to 105%), ran them one after another: `k`
//! waits side by side would add up to about `k` times it. Whether they
//! could overlap the figures do not say (a connection's loop reading one
//! frame after another cannot): the fix says when it applies. A caller
//! that already awaits them side by side (their wall time `k` times its
//! own) is said too, and overlapping is no longer the first fix. Between
//! the two (more than its wall time, under `k` times it), a caller whose
//! p50 and whose calls' tail are both twice their p50 awaits them side by
//! side and lasts as long as the slowest (`Slowest`): finding the slow
//! calls is the first fix.
//!
//! Tasks wait side by side: eight clients each looping on `handle` wait
//! eight times the run's wall time between them. A wait's share is of the
//! lanes it waits in, the run's wall time times the calls of its outermost
//! caller open at once (`Lanes`), so a pool wait that is 78% of each
//! client's time and a lock wait that is 20% are told apart, where both
//! used to exceed the run and tie at the idle cores' cap.
//!
//! A span that paces a loop is not a wait the run depends on: a metrics
//! flush or heartbeat waking on a timer, its calls one after another with
//! nothing between them, each waiting about the same time, while the rest
//! of the program works beside it (`paces_a_loop`). Waiting less would
//! make the loop turn faster, not the program finish sooner; it is said in
//! the notes, not found. The same shape is a loop paced by work it hands
//! elsewhere and awaits, each item the same (a consumer awaiting a
//! `spawn_blocking` computation, a producer awaiting a bounded channel's
//! room): that work's spans have its findings, and the note says either.
//! A loop of fetches whose results the program waits for does work
//! between its calls, or its waits vary.

use perf_layer::dump::CallsiteStats;
use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::holders;

mod rare;
mod stalls;
pub(crate) mod turns;

use rare::{RARE, RARE_SHARE, RareWaits, rare_waits};
use stalls::{StallSources, WorkerStalls};
use turns::{ONE_AT_A_TIME, Turns};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is waiting, not working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Idle time is at least this share of its wall time... (default 0.5)
    pub min_idle_ratio: f64,
    /// ...and at least this share of the run's wall time (0.05).
    pub min_share: f64,
    /// The share of the idle time overlapping or unblocking gives back (0.5).
    pub recoverable: f64,
    /// Confidence is the idle ratio x `calls / (calls + this)` (2).
    pub half_confidence_calls: f64,
    /// A caller that makes at least this many calls of the span per call
    /// of its own (2)...
    pub min_calls_per_caller: f64,
    /// ...whose calls' wall time adds up to between this share of the
    /// caller's wall time and 105% of it (0.8), awaits them one after
    /// another: the finding names it, and overlapping comes first.
    pub sequential_fill: f64,
    /// A span idle at least this share of its wall time (0.95)...
    pub pacing_idle_ratio: f64,
    /// ...whose calls' wall time p99 is at most this multiple of its p50
    /// (1.25: each waits about the same time), that follow each other
    /// (their wall time fills at least 90% of the window its spans were
    /// live in, and at most 105%: one at a time), in at least five calls,
    /// while other spans did work beside its waits worth at least 5% of
    /// that window, paces a loop: a note, not a finding.
    pub pacing_spread: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_idle_ratio: 0.5,
            min_share: 0.05,
            recoverable: 0.5,
            half_confidence_calls: 2.0,
            min_calls_per_caller: 2.0,
            sequential_fill: 0.8,
            pacing_idle_ratio: 0.95,
            pacing_spread: 1.25,
        }
    }
}

pub(crate) struct Waiting;

static INFO: Info = Info {
    title: "waiting, not working",
    // A span awaiting a waiting child is idle whenever the child is: its
    // own idle time leaves its children's out (`OwnIdle`), so a parent
    // is found for its own waits only, beside its child.
    innermost: false,
    supersedes: &[],
};

impl Detector for Waiting {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.waiting;
        let occupancy = workers_occupancy(cx);
        let own = OwnIdle::of(cx, s);
        let paced_by = driver(cx, &own, s);
        let stages = crate::analyze::stage::Stages::of(cx);
        let mut readings = holder_readings(cx, &own, s);
        // Read once; at most `MAX_READS` waiters tied to them.
        let stall_sources = StallSources::of(cx);
        let mut stall_reads = 0;
        for (i, cs, row) in cx.callsites() {
            // Beside a pipeline's slowest stage, its calls in step with the
            // stage's, it waits for what the stage lets through.
            let stage = stages.beside(cx, cs, true).map(|(j, _)| j);
            let paced_by = paced_by.clone().or_else(|| stage.map(|j| cx.rows[j].location.label.clone()));
            // A task's wait gives back time only where a runtime worker is
            // free to run it: the workers' occupancy (computing, blocked or
            // preempted inside polls) where the span closed on them and
            // that is the larger.
            let on_workers = cs.runtime_worker_calls.is_some_and(|n| n > 0);
            let (utilization, of_workers) = match occupancy {
                Some(o) if on_workers && o > cx.totals.utilization => (o, true),
                _ => (cx.totals.utilization, false),
            };
            let idle_ns = own.ns(i);
            let idle_ratio = stats::share(idle_ns, cs.wall_ns.sum as f64);
            let wait_share = stats::share(idle_ns, cx.run_wall_ns);
            if !idle_enough(cx, cs, idle_ns, s)
                || paces_a_loop(cx, cs, idle_ratio, s).is_some()
                || Detached::of(cx, cs).is_some()
            {
                continue;
            }
            // Concurrent tasks wait at the same time, and a wait overlapped
            // by other work is not on the critical path: waiting can give
            // back at most the wall time in which the process left its
            // threads' cores idle (utilisation from the process's CPU), and
            // never more than the part of the run its spans were live in
            // (a phase of the run, however many tasks waited in it).
            let live_share = cs
                .active
                .map(|a| stats::share(a.len_ns() as f64, cx.run_wall_ns).min(1.0));
            let chain = sequential_caller(cx, cs, s);
            // Tasks that wait side by side each wait their own share: the
            // idle time over the wall time of the lanes it waits in (and
            // calls its caller already overlaps count once).
            let lanes = lanes(cx, cs);
            let overlap = chain.as_ref().filter(|c| c.side_by_side).map_or(1.0, |c| c.fill);
            let lane_share = stats::ratio(
                idle_ns,
                cx.run_wall_ns * lanes.as_ref().map_or(1.0, |l| l.open_at_once) * overlap,
            )
            .min(1.0);
            let wait_cost = lane_share
                .min(1.0 - utilization)
                .min(live_share.unwrap_or(1.0));
            // Which bound decided the cost: the phase its spans were live
            // in, the lanes' share (the cost is then of the lanes' wall
            // time, not the run's), or the idle cores.
            let phase_bound =
                live_share.filter(|&live| live < 1.0 - utilization && live < lane_share);
            let of_lanes = lanes
                .as_ref()
                .filter(|_| phase_bound.is_none() && lane_share < 1.0 - utilization);
            let phase = match (phase_bound, of_lanes) {
                (Some(live), _) => format!(
                    "; its spans were live in only {} of the run's wall time, so waiting can give back at most that",
                    units::pct(live)
                ),
                (_, Some(l)) => format!(
                    "; `{}` ran {:.1} at a time, and its waits are {} of their wall time",
                    l.root,
                    l.open_at_once,
                    units::pct(lane_share)
                ),
                _ if of_workers => format!(
                    "; the runtime's workers were occupied {} of their wall time (computing, or blocked inside polls), so its tasks queue for them and waiting can give back at most {} of the run's wall time",
                    units::pct(utilization),
                    units::pct(wait_cost)
                ),
                _ => format!(
                    "; the process kept {} of its threads' cores busy over the run's wall time, so waiting can give back at most {} of it",
                    units::pct(utilization),
                    units::pct(wait_cost)
                ),
            };
            let chained = chain.as_ref().map_or(String::new(), |c| {
                if c.side_by_side {
                    let slowest = c.slowest.map_or(String::new(), |w| {
                        format!(
                            " and lasts as long as the slowest of them: their wall time p50 {}, {} {}, `{}`'s p50 {}; the slow calls set its time",
                            units::ns(w.p50_ns as f64),
                            w.tail,
                            units::ns(w.tail_ns as f64),
                            c.caller,
                            units::ns(w.caller_p50_ns as f64)
                        )
                    });
                    format!(
                        "; `{}` already awaits it {:.1} times a call side by side (their wall time is {:.1} times `{}`'s){slowest}",
                        c.caller, c.per_call, c.fill, c.caller
                    )
                } else {
                    format!(
                        "; `{}` awaits it {:.1} times a call, one after another (their wall time is {} of `{}`'s)",
                        c.caller,
                        c.per_call,
                        units::pct(c.fill),
                        c.caller
                    )
                }
            });
            // The span whose spans held what these waited for, when the
            // order their long spans closed in says so (for the first
            // `holders::MAX_READS` waiting spans: a bound for a hostile
            // dump's thousands).
            let mut holder = readings.remove(&i);
            // Spans that stall the runtime's workers, which its slow waits
            // queued behind (a task on the workers; no holder read, unless
            // the holder is such a span: what it held may have been the
            // worker).
            let stalled = stall_sources
                .as_ref()
                .filter(|st| {
                    holder
                        .as_ref()
                        .is_none_or(|h| st.stalls(h.index) || st.stalls(h.tied_on))
                        && stall_reads < holders::MAX_READS
                })
                .and_then(|st| {
                    stall_reads += 1;
                    st.of_waiter(cx, i, cs)
                })
                .filter(|w| match &holder {
                    None => true,
                    // The stalls (the holder's among them) tie more of the
                    // waits than the holder alone: a worker held, not a
                    // lock. A holder that alone stalls and holds a lock
                    // ties as many, and stays (its fix names both).
                    Some(h) => w.tied() > h.tied,
                });
            if stalled.is_some() {
                holder = None;
            }
            let held = holder.as_ref().map_or(String::new(), |h| h.clause(cx));
            let stalls = stalled.as_ref().map_or(String::new(), |w| w.clause(cx));
            // A child run one at a time while many of it wait: turns on
            // one thing (a holder read says who holds it instead).
            // Turns make every call wait for its turn: a span whose own
            // waits are in a few of its calls is no crowd taking turns,
            // whatever its averages. A fresh retry's `fetch_user` (eight
            // tasks, one call in twenty backing off 40 ms) read "they
            // take turns on 3 places" one run in five, its child
            // `call_backend` (a 1 ms timer) 3.02 at a time by chance.
            let rare_own = rare_waits(cx, cs, idle_ns);
            let turns = (holder.is_none() && rare_own.is_none())
                .then(|| Turns::of(cx, cs, idle_ns))
                .flatten();
            let taking_turns = turns.as_ref().map_or(String::new(), |t| t.clause(cx));
            // A holder read explains the slow calls better.
            let rare = rare_own.filter(|_| holder.is_none() && stalled.is_none());
            let rarely = rare.as_ref().map_or(String::new(), RareWaits::clause);
            let draft = Draft {
                class: Class::Waiting,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::WallTime,
                cost_share: wait_cost,
                recoverable: s.recoverable,
                // Beside a span that paces the run, a wait shortens the
                // calls it is in; the run only where they hold the pacer
                // back, which the figures cannot tell.
                // A wait some calls take and others do not is not
                // working however much of its wall time its children's
                // waits fill: its own idle ratio alone made a fresh
                // `fetch_user` (60% of its wall time in a retry's backoff
                // one call in twenty, 39% in its child's upstream call)
                // rank after the child's smaller wait. A wait in every
                // call (the call's own upstream) keeps its own ratio.
                confidence: if rare.is_some() {
                    stats::share(cs.idle_ns.sum as f64, cs.wall_ns.sum as f64).max(idle_ratio)
                } else {
                    idle_ratio
                } * stats::sample_confidence(cs.calls, s.half_confidence_calls)
                    * if paced_by.is_some() { PACED_CONFIDENCE } else { 1.0 },
                summary: format!(
                    "idle {} of its wall time ({}){rarely}{stalls}{taking_turns}{chained}{held}{phase}",
                    units::pct(idle_ratio),
                    idle_in_total(cs, idle_ns),
                ),
                evidence: vec![
                    Evidence::new(
                        "idle / wall",
                        idle_ratio,
                        Unit::Share,
                        Some(s.min_idle_ratio),
                    ),
                    Evidence::new(
                        "idle share of the run",
                        wait_share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                    Evidence::new(
                        if of_workers {
                            "occupancy of the runtime's workers"
                        } else {
                            "utilisation of the threads' cores"
                        },
                        utilization,
                        Unit::Share,
                        None,
                    ),
                    Evidence::new("busy time", cs.busy_ns.sum as f64, Unit::Ns, None),
                ]
                .into_iter()
                .chain(live_share.map(|live| {
                    Evidence::new("live share of the run's wall time", live, Unit::Share, None)
                }))
                .chain([
                    Evidence::new("idle time", idle_ns, Unit::Ns, None),
                ])
                .chain(lanes.as_ref().map(|l| {
                    Evidence::new(
                        &format!("`{}` open at once", l.root),
                        l.open_at_once,
                        Unit::Number,
                        None,
                    )
                }))
                .chain(chain.as_ref().into_iter().flat_map(|c| {
                    [
                        Evidence::new(
                            "calls per caller's call",
                            c.per_call,
                            Unit::Number,
                            Some(s.min_calls_per_caller),
                        ),
                        if c.side_by_side {
                            Evidence::new(
                                "their wall time over the caller's",
                                c.fill,
                                Unit::Ratio,
                                None,
                            )
                        } else {
                            Evidence::new(
                                "their wall time over the caller's",
                                c.fill,
                                Unit::Share,
                                Some(s.sequential_fill),
                            )
                        },
                    ]
                }))
                .chain(holder.as_ref().map(holders::Holder::evidence))
                .chain(stalled.as_ref().map(WorkerStalls::evidence))
                .chain(turns.as_ref().map(|t| {
                    Evidence::new(
                        "its child's spans open at once",
                        t.child_at_once,
                        Unit::Number,
                        Some(t.places + (ONE_AT_A_TIME - 1.0)),
                    )
                }))
                .chain(rare.as_ref().map(|r| {
                    Evidence::new(
                        "own idle in its slow calls",
                        r.share,
                        Unit::Share,
                        Some(RARE_SHARE),
                    )
                }))
                .collect(),
            };
            let tasks = lanes.as_ref().filter(|l| l.open_at_once >= TASKS_SIDE_BY_SIDE);
            let whole = of_lanes.map_or_else(
                || "the run's wall time".to_owned(),
                |l| format!("the wall time of the `{}` calls it waits in, {:.1} at a time", l.root, l.open_at_once),
            );
            let woken_loop = WokenLoop::of(cx, cs);
            let mut finding = cx.score(draft, |f| {
                let mut advice = advice(f, chain.as_ref(), tasks, &whole, paced_by.as_deref());
                if on_workers
                    && idle_ns >= 0.99 * cs.idle_ns.sum as f64
                    && cx.child_edges(cs.id).next().is_some()
                {
                    advice.prerequisites[0].push_str(SPAWNED);
                }
                if let Some(h) = &holder {
                    held_by(&mut advice, cx, h, &f.subject().in_prose());
                }
                if rare.is_some() {
                    advice.fixes.insert(0, RARE.to_owned());
                }
                if let Some(l) = &woken_loop {
                    advice.fixes.insert(0, l.fix());
                }
                if let Some(w) = &stalled {
                    advice.fixes.insert(0, w.fix(cx));
                }
                if let Some(t) = &turns {
                    advice.fixes.insert(0, t.fix(cx));
                }
                if let Some(j) = stage {
                    advice.fixes.insert(0, format!(
                        "It waits for `{}`, which ran one at a time, back to back, through most of the run: the slowest stage of a pipeline, which paces what feeds it and what it feeds; run it side by side (several consumers, the items sharded by key) or make it shorter, and this wait shrinks with it",
                        cx.rows[j].location.label
                    ));
                }
                advice
            });
            finding.paced_by.clone_from(&paced_by);
            found.push(finding);
        }
    }

}

/// The span whose spans held what each waiting callsite's waits waited
/// for, when the order their long spans closed in says so (for the first
/// `holders::MAX_READS` waiting callsites: a bound for a hostile dump's
/// thousands), by the waiter's index. A holder whose spans each released
/// several waits of one waiter holds what they share (a lock); for another
/// waiter whose waits it ends one a span, it holds the same, not hands
/// something over ([`holders::Holder::queued_on`]); a holder that waits
/// itself behind another holder names it ([`holders::Holder::behind`]).
fn holder_readings(
    cx: &Context<'_>,
    own: &OwnIdle,
    s: &Settings,
) -> std::collections::BTreeMap<usize, holders::Holder> {
    let mut readings: std::collections::BTreeMap<usize, holders::Holder> = cx
        .callsites()
        .filter(|&(i, cs, _)| {
            let idle_ns = own.ns(i);
            let idle_ratio = stats::share(idle_ns, cs.wall_ns.sum as f64);
            idle_enough(cx, cs, idle_ns, s) && paces_a_loop(cx, cs, idle_ratio, s).is_none()
        })
        .take(holders::MAX_READS)
        .filter_map(|(i, _, _)| holders::of(cx, i).map(|h| (i, h)))
        .collect();
    let shared: Vec<(usize, holders::Holder)> = readings
        .iter()
        .filter(|(_, h)| h.shared())
        .map(|(&w, h)| (w, h.clone()))
        .collect();
    for (&waiter, h) in readings.iter_mut() {
        for (other_waiter, other) in &shared {
            h.queued_on(other, *other_waiter, waiter);
        }
    }
    // A holder that waits too, behind what another holds: the queue's
    // first holder is the fix.
    let as_waiters = readings.clone();
    for (&waiter, h) in readings.iter_mut() {
        if let Some(of_holder) = as_waiters.get(&h.index) {
            h.behind(of_holder, waiter);
        }
    }
    readings
}

/// Whether callsite `cs` is idle enough to be a waiting finding: idle
/// `min_idle_ratio` of its wall time and `min_share` of the run's, beyond
/// its instrumentation. A span's creation and close, and its enter and
/// exit outside their timestamps, are in its wall time and not its busy
/// time: a fresh pipeline's `tokenize_word`, 52 ns of work inside 2.7
/// million spans, was "idle 64% of its wall time" for 93 ns a call of the
/// layer's and tracing's own callbacks. `idle_ns` is the part of its idle
/// time read (its own: [`OwnIdle`]).
///
/// A span entered once off an async runtime has no wait of its own to
/// find ([`entered_once_off_a_runtime`]).
pub(crate) fn idle_enough(cx: &Context<'_>, cs: &CallsiteStats, idle_ns: f64, s: &Settings) -> bool {
    !entered_once_off_a_runtime(cs) && idle_past_thresholds(cx, cs, idle_ns, s)
}

/// Whether `cs`, entered once off an async runtime, is open and not entered
/// long enough to be a waiting finding, were it async: the note says why
/// it is none.
pub(crate) fn lingers(cx: &Context<'_>, cs: &CallsiteStats, idle_ns: f64, s: &Settings) -> bool {
    entered_once_off_a_runtime(cs) && idle_past_thresholds(cx, cs, idle_ns, s)
}

/// [`idle_enough`]'s thresholds alone.
fn idle_past_thresholds(cx: &Context<'_>, cs: &CallsiteStats, idle_ns: f64, s: &Settings) -> bool {
    let instrumentation = cx.instrumentation_per_span_of(cs) * cs.calls as f64;
    let idle = (idle_ns - instrumentation).max(0.0);
    stats::share(idle, cs.wall_ns.sum as f64) >= s.min_idle_ratio
        && stats::share(idle, cx.run_wall_ns) >= s.min_share
}

/// Whether every span of `cs` was entered at most once, none on an async
/// runtime's worker: synchronous code, whose waits are blocking, inside
/// the span (`blocked`). Its idle time, open and not entered, is before its
/// work began (a job queued for a thread) or after it ended (a span kept
/// alive past its work: a `while let`'s scrutinee lives through the loop's
/// body, a span bound to a variable outlives its `in_scope`), the thread
/// doing other work meanwhile: no wait that overlapping or unblocking
/// could shorten. A fresh three-stage pipeline's
/// `while let Some(v) = info_span!("next_record").in_scope(|| rx.recv().ok())`
/// read "waiting, not working", critical, "shortens the run by 25%": its
/// span lived through the loop's `transform`. Not read without `intervals`
/// (older dumps).
pub(crate) fn entered_once_off_a_runtime(cs: &CallsiteStats) -> bool {
    cs.calls > 0
        && cs.intervals.is_some_and(|n| n <= cs.calls)
        && cs.runtime_worker_calls.unwrap_or(0) == 0
}

/// Each callsite's own idle time: its idle time less that of its
/// children idle enough to be found themselves. A span awaiting a child
/// is idle whenever the child is, so such a child's wait is the child's
/// finding; what is left is what the span itself awaited (a lock, a
/// channel, a call no span covers, children too small to be found alone).
/// Each child's idle time is shared among its callers by their calls, and
/// children awaited side by side can explain all of it, never more. A
/// fresh async service held a `tokio::sync::Mutex` across a 2 ms
/// `persist`: `update` waited 8.4 s of its 9.9 s idle for the lock, 70% of
/// its eight clients' wall time, and was no finding because its child
/// `persist` was one. One pass over the call edges.
pub(crate) struct OwnIdle(Vec<f64>);

impl OwnIdle {
    pub(crate) fn of(cx: &Context<'_>, s: &Settings) -> Self {
        let callsites = &cx.dump.callsites;
        let mut ns: Vec<f64> = callsites.iter().map(|c| c.idle_ns.sum as f64).collect();
        for e in cx.dump.edges.iter().filter(|e| e.parent != e.child) {
            let (Some(parent), Some(child)) = (cx.index_of(e.parent), cx.index_of(e.child)) else {
                continue;
            };
            let child = &callsites[child];
            let idle = child.idle_ns.sum as f64;
            if idle_enough(cx, child, idle, s) {
                // A child that outlived its parent waited after it ended.
                let awaited = e.calls.saturating_sub(e.outlived);
                let share = stats::ratio(awaited.min(child.calls) as f64, child.calls as f64);
                ns[parent] -= idle * share;
            }
        }
        Self(ns.into_iter().map(|n| n.max(0.0)).collect())
    }

    /// The own idle time of the callsite at `index` in the dump, ns.
    pub(crate) fn ns(&self, index: usize) -> f64 {
        self.0.get(index).copied().unwrap_or(0.0)
    }
}

/// A callsite whose spans mostly outlived the span they were opened in
/// ([`perf_layer::dump::CallEdge::outlived`]): a task spawned inside a
/// request, with the request's span as its parent, and not awaited. Its
/// waits hold back nothing that awaits it. A fresh service spawned a
/// `watch_session` task in each request that slept 200 ms and ended;
/// the request's span stayed open until it did, which read as the request
/// awaiting it: "`watch_session` waiting, shortens the run by 44.9%",
/// critical, where nothing waited for it.
pub(crate) struct Detached {
    /// The parent callsite most of them outlived, by its index in the dump.
    pub(crate) parent: usize,
    /// How many of its spans outlived their parent.
    pub(crate) outlived: u64,
}

impl Detached {
    /// `cs`'s reading, when at least half its spans outlived their parent.
    pub(crate) fn of(cx: &Context<'_>, cs: &CallsiteStats) -> Option<Self> {
        let mut outlived = 0u64;
        let mut most: Option<(u64, usize)> = None;
        for e in cx.dump.edges.iter().filter(|e| e.child == cs.id && e.outlived > 0) {
            outlived = outlived.saturating_add(e.outlived);
            if let Some(parent) = cx.index_of(e.parent) {
                if most.is_none_or(|(n, _)| e.outlived > n) {
                    most = Some((e.outlived, parent));
                }
            }
        }
        let (_, parent) = most?;
        (outlived.saturating_mul(2) >= cs.calls && cs.calls > 0).then_some(Self { parent, outlived })
    }
}

/// "N idle in total", or, when its children waited in part of it, its
/// own and theirs.
fn idle_in_total(cs: &CallsiteStats, own_ns: f64) -> String {
    let all = cs.idle_ns.sum as f64;
    if own_ns < 0.99 * all {
        format!(
            "{} idle of its own; {} more while its children waited",
            units::ns(own_ns),
            units::ns(all - own_ns)
        )
    } else {
        format!("{} idle in total", units::ns(all))
    }
}

/// How a span paces a loop (see the module): the wall time of its usual
/// call, and the span work other callsites did beside its waits.
pub(crate) struct Pacing {
    pub(crate) call_ns: f64,
    pub(crate) beside_ns: f64,
    /// Fewer calls than a loop's, open through nearly the whole run.
    pub(crate) drives: bool,
    /// Its calls spaced by idle gaps ([`periodic`]), not back to back.
    pub(crate) periodic: bool,
    /// The outermost span open beside it through its window, by label, and
    /// how many of its calls were open at once ([`lane_beside`]).
    pub(crate) lane: Option<(String, f64)>,
}

/// Whether callsite `cs` (idle `idle_ratio` of its wall time) paces a
/// loop beside the rest of the program (`Settings::pacing_spread`). A
/// span of fewer calls, open through nearly the whole run, one at a time,
/// drives it: a producer ticking on a timer or a server's accept loop,
/// waiting while the work it hands off runs beside it. Its wait is the
/// pace or the work's, never its own cause. A fresh service whose
/// producer sent a request every 500 µs to sixteen handlers (the run 1.51
/// s for the producer's 1.5 s) read "`producer` waiting, 42.9% of the
/// run's wall time to gain", high.
pub(crate) fn paces_a_loop(
    cx: &Context<'_>,
    cs: &CallsiteStats,
    idle_ratio: f64,
    s: &Settings,
) -> Option<Pacing> {
    const MIN_CALLS: u64 = 5;
    const BACK_TO_BACK: f64 = 0.9;
    const ONE_AT_A_TIME: f64 = 1.05;
    /// A driver's window is at least this share of the run.
    const DRIVES: f64 = 0.9;
    let window = cs.active?.len_ns() as f64;
    let drives = window >= DRIVES * cx.run_wall_ns;
    let wall = &cs.wall_ns;
    let fill = wall.sum as f64 / window.max(1.0);
    let others_ns = cx.totals.self_ns.saturating_sub(cs.self_ns.sum) as f64;
    let gaps = (window - wall.sum as f64).max(0.0);
    // Other spans' work that does not fit in the gaps between its calls
    // ran while it waited.
    let beside_ns = others_ns - gaps;
    let alike = (cs.calls >= MIN_CALLS || drives)
        && idle_ratio >= s.pacing_idle_ratio
        && wall.p50 > 0
        && wall.p99 as f64 <= s.pacing_spread * wall.p50 as f64;
    if alike && (BACK_TO_BACK..=ONE_AT_A_TIME).contains(&fill) && beside_ns >= MIN_BESIDE * window {
        return Some(Pacing {
            call_ns: wall.p50 as f64,
            beside_ns,
            drives: cs.calls < MIN_CALLS,
            periodic: false,
            lane: None,
        });
    }
    if !(alike && cs.calls >= MIN_CALLS && fill < BACK_TO_BACK) {
        return None;
    }
    // Work beside it: the other spans' self time, or another task's spans
    // open through its window, however little they computed.
    let lane = (others_ns < MIN_BESIDE * window)
        .then(|| lane_beside(cx, cs))
        .flatten();
    let beside = if lane.is_some() { window } else { others_ns };
    periodic(cx, cs, gaps, beside, window).then_some(Pacing {
        call_ns: wall.p50 as f64,
        beside_ns: others_ns,
        drives: false,
        periodic: true,
        lane,
    })
}

/// A share of a window (0.9): another outermost span open beside a
/// periodic task covers at least this much of its window, and its calls
/// are open this much of their own ([`lane_beside`]).
const THROUGH: f64 = 0.9;

/// The outermost span, not `cs`'s own, whose calls were open beside `cs`
/// through its window ([`THROUGH`]), with how many were open at once (the
/// most): another task's loop going on beside it, computing or waiting.
/// A fresh program's six clients each took one of two permits and waited
/// 2 ms under it, 30 µs of work a call (0.03 cores in all), while a
/// background loop uploaded a report (a 25 ms wait) every 36 ms holding no
/// permit; the upload read "shortens the run by 27.9%", critical, where
/// nothing waited for it, as the clients' spans had done too little work
/// beside it to count.
fn lane_beside(cx: &Context<'_>, cs: &CallsiteStats) -> Option<(String, f64)> {
    let window = cs.active?;
    let at = cx.index_of(cs.id)?;
    let own_root = cx.outermost(at);
    cx.callsites()
        .filter(|&(i, _, _)| i != at && i != own_root && cx.callers.get(i) == Some(&None))
        .filter_map(|(_, other, row)| {
            let theirs = other.active?;
            let overlap = theirs
                .last_close_ns
                .min(window.last_close_ns)
                .saturating_sub(theirs.first_open_ns.max(window.first_open_ns));
            let open_at_once = stats::ratio(other.wall_ns.sum as f64, theirs.len_ns() as f64);
            (overlap as f64 >= THROUGH * window.len_ns() as f64 && open_at_once >= THROUGH)
                .then(|| (row.location.label.clone(), open_at_once))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Other spans' work beside a loop's waits, at least this share of its
/// window, for something else to pace it ([`paces_a_loop`], [`periodic`]).
const MIN_BESIDE: f64 = 0.05;

/// The process's CPU outside every span, over the gaps between a
/// periodic task's calls, at most this (0.25): the gaps were idle, not
/// untraced work between its waits.
const IDLE_GAPS: f64 = 0.25;

/// Whether `cs`, its calls alike and spaced by `gaps` ns in its `window`,
/// is a periodic task beside the work: a refresher waiting 20 ms a call
/// every 50 ms, sleeping between its calls outside every span, while
/// sixteen clients worked beside it. Its wait shortens the run only if
/// the rest waits for it (a lock it holds across the wait: then the
/// waiters are found). A fresh service's refresher, fixed to fetch before
/// it takes the write lock, read "shortens the run by 20.1%", high, where
/// nothing waited for it. Not so when the gaps held untraced work (the
/// process's CPU outside every span, over [`IDLE_GAPS`] of them), or when
/// a callsite in step with it ([`stats::in_step`]) did work worth half the gaps
/// (a loop alternating its wait with traced work), or when nothing went on
/// beside it: the other spans did no work worth 5% of its window
/// (`beside_ns`, at most all their self time) and no other task's spans
/// were open through it ([`lane_beside`]).
fn periodic(cx: &Context<'_>, cs: &CallsiteStats, gaps: f64, beside_ns: f64, window: f64) -> bool {
    let in_step = |other: &CallsiteStats| {
        other.id != cs.id && stats::in_step(other.calls, cs.calls) && other.busy_ns.sum as f64 >= 0.5 * gaps
    };
    gaps > 0.0
        && beside_ns >= MIN_BESIDE * window
        && cx.cpu_outside_spans_ns().is_some_and(|(outside, _)| outside <= IDLE_GAPS * gaps)
        && !cx.callsites().any(|(_, other, _)| in_step(other))
}

/// A wait's confidence beside a span that paces the run ([`driver`]).
const PACED_CONFIDENCE: f64 = 0.5;

/// The span that drives the run, paced by a timer or by the work it hands
/// off ([`paces_a_loop`]), by its label: waits elsewhere shorten the calls
/// they are in, and the run only where those hold it back. The healthy
/// service of `paces_a_loop`'s docs read "`upstream` waiting, shortens
/// the run by 42.9%", critical, where nothing shortens it.
fn driver(cx: &Context<'_>, own: &OwnIdle, s: &Settings) -> Option<String> {
    cx.callsites().find_map(|(i, cs, row)| {
        let own = stats::share(own.ns(i), cs.wall_ns.sum as f64);
        paces_a_loop(cx, cs, own, s)
            .filter(|p| p.drives)
            .map(|_| row.location.label.clone())
    })
}

/// From this many calls of its outermost caller open at once, a span's
/// waits already overlap across tasks: overlapping is no longer its first
/// fix.
const TASKS_SIDE_BY_SIDE: f64 = 2.0;

/// The span's outermost caller, with the number of its calls open at once
/// on average over its live window: the tasks (or threads) a wait is
/// shared between.
/// Tells each of the reported waits that share their lanes (the same
/// outermost caller, several of its calls open at once) of the others:
/// waits one after another in a task are in series, and each gain is
/// reckoned as if the others were gone. A fresh service's clients waited
/// for a pool of two, then behind a lock: a larger pool alone gave 10%
/// more requests where its step said 38.6% shorter, as the lock became the
/// bound; both fixes together gave 2.6 times as many. Run on the findings
/// as reported (after parents and symptoms were dropped).
pub(crate) fn in_series(cx: &Context<'_>, findings: &mut [Finding]) {
    let rooted: Vec<(usize, String, String)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.class == Class::Waiting)
        .filter_map(|(i, f)| {
            let cs = &cx.dump.callsites[cx.index_of(f.callsite_id?)?];
            let root = lanes(cx, cs)?.root;
            let name = f.location.as_ref()?.label.clone();
            (root != name).then_some((i, root, name))
        })
        .collect();
    for (at, root, name) in &rooted {
        let others: Vec<String> = rooted
            .iter()
            .filter(|(i, r, _)| r == root && i != at)
            .map(|(_, _, other)| format!("`{other}`"))
            .collect();
        if !others.is_empty() {
            findings[*at].summary.push_str(&format!(
                "; `{root}` also waits in {}: where they come one after another in a call, fixing `{name}` gives back its share only as far as the next wait allows (each gain is as if the others were gone)",
                others.join(", ")
            ));
        }
    }
}

struct Lanes {
    root: String,
    open_at_once: f64,
}

/// The lanes `cs` waits in: its outermost caller, reached through each
/// span's most frequent caller, when more than one of its calls were open
/// at once on average (`None` for one at a time, or a dump without live
/// windows: every wait then counts over the run's wall time).
fn lanes(cx: &Context<'_>, cs: &CallsiteStats) -> Option<Lanes> {
    let at = cx.outermost(cx.index_of(cs.id)?);
    let root = &cx.dump.callsites[at];
    let open_at_once = stats::ratio(root.wall_ns.sum as f64, root.active?.len_ns() as f64);
    (open_at_once > 1.05).then(|| Lanes {
        root: cx.rows[at].location.label.clone(),
        open_at_once,
    })
}

/// A caller that awaits a waiting span several times a call, one after
/// another, or already side by side.
pub(crate) struct Chain {
    pub(crate) caller: String,
    /// The span's calls per call of the caller.
    pub(crate) per_call: f64,
    /// The span's wall time under this caller over the caller's wall time.
    fill: f64,
    /// The calls overlap already: their wall time is at least
    /// `sequential_fill` x `per_call` times the caller's, or more than it
    /// where a few slow ones set the caller's time (`slowest`).
    pub(crate) side_by_side: bool,
    /// Where the caller lasts as long as its slowest calls ([`Slowest`]).
    slowest: Option<Slowest>,
}

/// A caller that awaits several calls side by side lasts as long as the
/// slowest; where a few are much slower than the rest (one shard, replica
/// or key), they set its time, and shortening the usual ones gives back
/// nothing. A fresh service's `handle_request` spawned eight `fetch_shard`
/// tasks and joined them, one shard answering in 6 ms where the others
/// took 1 ms: their wall time over the caller's was 3.1, under the 6.4 that
/// read as side by side, and the finding's fixes began with making it
/// answer sooner and ended with overlapping them; a fast shard gave 2.6
/// times the requests.
#[derive(Debug, Clone, Copy)]
struct Slowest {
    /// The span's wall time, its p50...
    p50_ns: u64,
    /// ...and its quantile near the slowest of `per_call` ([`slowest_of`]),
    /// with its name.
    tail_ns: u64,
    tail: &'static str,
    /// The caller's wall time, p50.
    caller_p50_ns: u64,
}

/// The slow calls set the caller's time where both its p50 and the span's
/// tail are at least this many times the span's p50 (2).
const SLOW_SETS: f64 = 2.0;

/// The quantile of `cs`'s wall time near the slowest of `per_call` calls
/// (the median of the slowest of k is about its `0.5^(1/k)` quantile:
/// p90 for up to 16, p99 past that), with its name.
fn slowest_of(cs: &CallsiteStats, per_call: f64) -> (u64, &'static str) {
    if per_call <= 16.0 {
        (cs.wall_ns.p90, "p90")
    } else {
        (cs.wall_ns.p99, "p99")
    }
}

/// The caller of `cs` that awaits it several times a call, one after
/// another or side by side (or side by side and as long as the slowest:
/// see the module), the one with the most of its calls; `None` when none
/// does.
pub(crate) fn sequential_caller(cx: &Context<'_>, cs: &CallsiteStats, s: &Settings) -> Option<Chain> {
    cx.edges_into(cs.id)
        .filter(|_| cs.calls > 0)
        .filter_map(|e| {
            let at = cx.index_of(e.parent)?;
            let caller = &cx.dump.callsites[at];
            let per_call = e.calls as f64 / caller.calls.max(1) as f64;
            // The span's wall time under this caller: its share of the calls.
            let wall = cs.wall_ns.sum as f64 * e.calls as f64 / cs.calls as f64;
            let fill = wall / (caller.wall_ns.sum as f64).max(1.0);
            let one_after_another = (s.sequential_fill..=1.05).contains(&fill);
            let (tail_ns, tail) = slowest_of(cs, per_call);
            let p50 = cs.wall_ns.p50 as f64;
            let slowest = (fill > 1.05
                && p50 > 0.0
                && tail_ns as f64 >= SLOW_SETS * p50
                && caller.wall_ns.p50 as f64 >= SLOW_SETS * p50)
                .then_some(Slowest {
                    p50_ns: cs.wall_ns.p50,
                    tail_ns,
                    tail,
                    caller_p50_ns: caller.wall_ns.p50,
                });
            let side_by_side =
                fill > 1.05 && (fill >= s.sequential_fill * per_call || slowest.is_some());
            (per_call >= s.min_calls_per_caller && (one_after_another || side_by_side))
                .then(|| {
                    (e.calls, Chain {
                        caller: cx.rows[at].location.label.clone(),
                        per_call,
                        fill,
                        side_by_side,
                        slowest,
                    })
                })
        })
        .max_by_key(|(calls, _)| *calls)
        .map(|(_, chain)| chain)
}

/// How occupied an async runtime's workers were: the self time of the
/// spans closed on them (each entered interval holds a worker, computing,
/// blocked or preempted), over the workers' wall time (the recording
/// threads at most one per core, [`Context::off_cpu_whole`]); `None` where
/// no span closed on one. Sixteen tasks on two workers, each request 250 µs
/// of computing and, one in ten, a 2 ms blocking call: 82% occupied at 47%
/// of the cores' CPU; halving their 2 ms upstream wait gave 12.5% shorter
/// requests, where the cores' idle time allowed 26.6%.
fn workers_occupancy(cx: &Context<'_>) -> Option<f64> {
    let mut busy = 0.0;
    let mut any = false;
    for cs in &cx.dump.callsites {
        if let Some(on) = cs.runtime_worker_calls.filter(|&n| n > 0 && cs.calls > 0) {
            busy += cs.self_ns.sum as f64 * (on.min(cs.calls) as f64 / cs.calls as f64);
            any = true;
        }
    }
    let (whole, _) = cx.off_cpu_whole(true);
    (any && whole > 0.0).then(|| stats::share(busy, whole))
}

/// Where a holder's spans account for the waits, releasing what it holds
/// (or having what it hands over sooner) is the first fix, and finding
/// it the first step; the general lock fix goes where it holds what its
/// waiters share, as the first fix says the same.
fn held_by(advice: &mut Advice, cx: &Context<'_>, holder: &holders::Holder, name: &str) {
    if holder.shared() {
        advice.fixes.retain(|f| f != LOCKS);
    }
    advice.fixes.insert(0, holder.fix(cx));
    advice.prerequisites = vec![holder.prerequisite(cx, name)];
}

/// Said where an async span with children has a wait all its own (no
/// waiting child explains it). A fresh service's `handle_request` spawned eight
/// `#[instrument]`ed `fetch_shard` tasks into a `JoinSet` and awaited
/// them: the shards' spans were no children of it, and it read as a wait
/// of its own, its first step to add child spans around its awaits.
const SPAWNED: &str = "; if it awaits tasks it spawns (`tokio::spawn`, a `JoinSet`), their spans are its children only where each spawned future carries its span (`.in_current_span()`): `#[instrument]` on an async fn opens its span at the first poll, in the new task";

const LOCKS: &str = "Shorten lock hold times: never hold a lock's guard (a `tokio::sync::Mutex` included) across `.await` or I/O, or every task that needs the lock waits out the holder's wait; copy what you need and drop the guard first";

/// A waiting span of one call through at least half the run (a loop, a
/// dispatcher, a worker task), woken at least [`LOOP_WAKES`] times: if it
/// wakes on a timer to look for work that others hand it, each item waits
/// up to that period. A fresh service's dispatcher slept 2 ms, then
/// drained a queue its sixteen clients filled, awaiting each answer:
/// `submit` waited first, the dispatcher second, with "overlap independent
/// waits" first among its fixes; a `Notify` in place of the sleep made 8.8
/// times the jobs.
struct WokenLoop {
    wakes: u64,
    every_ns: f64,
}

/// See [`WokenLoop`].
const LOOP_WAKES: u64 = 16;

impl WokenLoop {
    fn of(cx: &Context<'_>, cs: &CallsiteStats) -> Option<Self> {
        let run = cx.dump.run.duration_ns as f64;
        let wakes = cs.intervals?.checked_sub(1)?;
        (cs.calls == 1 && cs.wall_ns.sum as f64 >= 0.5 * run && wakes >= LOOP_WAKES).then(|| Self {
            wakes,
            every_ns: cs.idle_ns.sum as f64 / wakes as f64,
        })
    }

    fn fix(&self) -> String {
        format!(
            "It is one span through the run, woken {} times (idle {} between polls on average): if it wakes on a timer to look for work others hand it (`tokio::time::sleep` or `interval` in a loop), each item waits up to that period to be seen, so wake it when work arrives (`tokio::sync::Notify`, a channel's `recv`); if it waits for its input, what feeds it sets its pace",
            units::count(self.wakes as f64),
            units::ns(self.every_ns)
        )
    }
}

/// The plan step's advice for one of its findings; `chain`, the caller
/// that awaits it one after another; `tasks`, the lanes it already waits
/// in side by side; `whole`, what its cost is a share of.
fn advice(
    f: &Finding,
    chain: Option<&Chain>,
    tasks: Option<&Lanes>,
    whole: &str,
    paced_by: Option<&str>,
) -> Advice {
    const OVERLAP: &str = "Overlap independent waits: `tokio::join!` or `futures::future::join_all` instead of awaiting one after another";
    const QUEUE: &str = "Bound the queue it waits on (a bounded `tokio::sync::mpsc::channel`) and size pools and semaphores so producers and consumers keep pace";
    const SOONER: &str = "Make what it waits on answer sooner: cache the answers, batch the requests, reuse connections from a pool";
    const IN_FLIGHT: &str = "Its calls already overlap in its caller: when what it waits on has room, keep more of its callers in flight (a larger `buffer_unordered(n)` bound, more semaphore permits, a larger pool)";
    const WORKER: &str = "When it waits for a free runtime worker (another task blocks the runtime: a `blocked` finding on an async span), fix that first: `tokio::task::spawn_blocking` or the async API there";
    let name = f.subject().in_prose();
    // Idle time is time the span exists without being entered: an await,
    // a queue, a hand-off; a call that blocks its thread keeps its span
    // entered (busy: `blocked`'s). So the runtime advice comes last, for
    // waits that are a blocked worker's symptom.
    let fixes = match chain {
        // Its caller overlaps its calls already (said in the summary): what
        // is left is each wait, and how many callers run at once.
        Some(c) if c.side_by_side => c
            .slowest
            .map(|w| format!(
                "Its slow calls set its caller's time ({} of them: {} {}, against {} at p50): find what makes them slow, one shard, replica or key (`PerfLayer::builder().group_by([...])` with the field that names it gives each its row), hedge them (a second request once one runs past the usual {}), or answer without the slowest (a quorum, a partial result); shortening the usual calls gives back little",
                if w.tail == "p90" { "one in ten" } else { "one in a hundred" },
                w.tail,
                units::ns(w.tail_ns as f64),
                units::ns(w.p50_ns as f64),
                w.tail,
            ))
            .into_iter()
            .chain(lines(&[SOONER, IN_FLIGHT, LOCKS, QUEUE, WORKER]))
            .collect(),
        // The caller is named in the summary (escaped by every renderer),
        // not here: fixes are the report's own text.
        Some(c) => std::iter::once(format!(
            "Overlap the calls in its caller when they are independent (items fetched one by one): it awaits {name} {:.0} times a call, one after another; start them together (`futures::future::join_all`, a `JoinSet`, or `buffer_unordered(n)` to bound them), or fetch the items in one batched call. Calls that each need the last one's result (frames read from one stream) cannot overlap",
            c.per_call
        ))
        .chain(lines(&[OVERLAP, LOCKS, QUEUE, SOONER, WORKER]))
        .collect(),
        // Its tasks wait side by side already (`crawl_one` ten at a time):
        // each wait, and how many run at once, before more overlap.
        None if tasks.is_some() => std::iter::once(SOONER.to_owned())
            .chain(tasks.map(|t| format!(
                "Its waits already overlap across tasks (`{}` {:.1} at a time): when what it waits on has room, keep more in flight (a larger `buffer_unordered(n)` bound, more semaphore permits, a larger pool); when it has none, that limit is what to raise",
                t.root, t.open_at_once
            )))
            .chain(lines(&[LOCKS, QUEUE, OVERLAP, WORKER]))
            .collect(),
        None => lines(&[OVERLAP, LOCKS, QUEUE, SOONER, WORKER]),
    };
    Advice {
        statement: match paced_by {
            None => format!(
                "overlapping or unblocking {} of {name}'s waiting ({} of {whole}) shortens the run by {}",
                units::pct(f.recoverable),
                units::pct(f.cost_share),
                units::pct(f.expected_gain())
            ),
            Some(pacer) => format!(
                "overlapping or unblocking {} of {name}'s waiting ({} of {whole}) gives back {} of it in the calls it waits in; the run shortens only as far as they hold back `{pacer}`, which paces it (a timer, the work it hands off, or the slowest stage of a pipeline)",
                units::pct(f.recoverable),
                units::pct(f.cost_share),
                units::pct(f.expected_gain())
            ),
        },
        fixes,
        prerequisites: vec![format!(
            "Know what {name} waits on: add child spans around each `.await`, lock and I/O call"
        )],
        check: format!("{name}'s idle share of wall time must fall"),
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence, hist};

    /// `wait` is idle 90% of its wall time, 9% of the run; `near` is idle
    /// 49% of its wall time (960 µs of 1.96 ms), 9.6% of the run.
    #[test]
    fn finds_a_span_idle_most_of_its_life_and_not_one_idle_just_under_half() {
        let found = detect(
            Class::Waiting,
            dump(
                1_000 * MS,
                &[
                    Span::new("wait", &[(MS, 10)]).idle(9 * MS),
                    Span::new("near", &[(MS, 100)]).idle(960 * US),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "wait").unwrap();
        assert_near(evidence(f, "idle / wall"), 0.9, 1e-9);
        // 90 ms idle of the run's 1 s; 110 ms busy of it leaves 89% idle.
        assert_near(f.cost_share, 0.09, 1e-9);
        assert_near(f.confidence, 0.9 * 10.0 / 12.0, 1e-9);
    }

    /// A dispatcher: one span through a 3 s run, busy 400 ms, woken 842
    /// times: its first fix says what a loop woken on a timer costs the
    /// work it waits for. Woken 10 times (a few long waits), not.
    #[test]
    fn a_loop_through_the_run_woken_often_is_told_a_timer_may_pace_it() {
        let with_wakes = |wakes: u64| {
            let mut d = dump(3_000 * MS, &[Span::new("dispatcher", &[(400 * MS, 1)]).idle(2_600 * MS)]);
            d.callsites[0].intervals = Some(wakes + 1);
            detect(Class::Waiting, d)
        };
        let found = with_wakes(842);
        let f = about(&found, "dispatcher").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("It is one span through the run, woken 842 times (idle 3.09 ms between polls on average)"),
            "{:?}",
            f.advice.fixes
        );
        let found = with_wakes(10);
        let f = about(&found, "dispatcher").unwrap();
        assert!(!f.advice.fixes[0].starts_with("It is one span"), "{:?}", f.advice.fixes);
    }

    /// `fetch_user` (1,000 calls, 30 µs busy) awaits `call_backend` (1.2
    /// ms idle a call) and waits 1.94 s of its own: one call in twenty
    /// backs off 40 ms, a wait its slow calls take and its child's do not.
    /// That is said, with its fix first, and it ranks before the child's
    /// smaller wait; the same idle time spread over every call is its
    /// own upstream, said as before and ranked by its own idle ratio.
    #[test]
    fn own_waits_in_few_calls_are_said_and_ranked_as_not_working() {
        let with = |rare: bool| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("fetch_user", &[(30 * US, 1_000)]).idle(3_200 * US),
                    Span::new("call_backend", &[(30 * US, 1_050)]).idle(1_200 * US),
                ],
            );
            if rare {
                let cs = &mut d.callsites[0];
                cs.idle_ns = hist(&[(1_200 * US, 950), (41_200 * US, 50)]);
                cs.wall_ns = hist(&[(1_230 * US, 950), (41_230 * US, 50)]);
            }
            detect(Class::Waiting, d)
        };
        let found = with(true);
        let parent = about(&found, "fetch_user").unwrap();
        let child = about(&found, "call_backend").unwrap();
        assert!(
            parent.summary.contains("100.0% of its own waiting is in its slow calls (idle a call p50 1.20 ms, p99 41.4 ms)"),
            "{}",
            parent.summary
        );
        assert!(parent.advice.fixes[0].starts_with("Its own waits come in few long ones"));
        assert!(parent.score > child.score, "{} against {}", parent.score, child.score);
        assert!(!child.summary.contains("slow calls"), "{}", child.summary);

        let found = with(false);
        let parent = about(&found, "fetch_user").unwrap();
        assert!(!parent.summary.contains("slow calls"), "{}", parent.summary);
        let own = 3.2e9 - 1.26e9;
        assert_near(evidence(parent, "idle / wall"), own / 3.23e9, 1e-6);
        assert_near(parent.confidence, own / 3.23e9 * 1_000.0 / 1_002.0, 1e-6);
    }

    /// Eight tasks' `fetch_user` (2,000 calls in 1 s, 6.5 open at once)
    /// awaiting `call_backend` (1.43 ms a call, 3.0 open at once) and
    /// waiting 3.46 s of its own: spread over every call, that is a crowd
    /// taking turns on three places; held in one call in twenty (a retry's
    /// 40 ms backoff), it is a rare wait, and no turns.
    #[test]
    fn a_rare_own_wait_is_no_crowd_taking_turns() {
        let with = |rare: bool| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("fetch_user", &[(30 * US, 2_000)]).idle(3_200 * US),
                    Span::new("call_backend", &[(30 * US, 2_100)]).idle(1_400 * US),
                ],
            );
            for cs in &mut d.callsites {
                cs.active = Some(perf_layer::dump::ActiveWindow {
                    first_open_ns: 0,
                    last_close_ns: 1_000 * MS,
                });
            }
            if rare {
                let cs = &mut d.callsites[0];
                cs.idle_ns = hist(&[(1_200 * US, 1_900), (41_200 * US, 100)]);
                cs.wall_ns = hist(&[(1_230 * US, 1_900), (41_230 * US, 100)]);
            }
            detect(Class::Waiting, d)
        };
        let found = with(false);
        let spread = about(&found, "fetch_user").unwrap();
        assert!(spread.summary.contains("take turns on 3 places"), "{}", spread.summary);
        let found = with(true);
        let rare = about(&found, "fetch_user").unwrap();
        assert!(!rare.summary.contains("take turns"), "{}", rare.summary);
        assert!(rare.summary.contains("of its own waiting is in its slow calls"), "{}", rare.summary);
    }

    /// Producers' `send_event` (60,000 calls, 350 µs idle each) awaiting
    /// room in a bounded channel while one consumer's `apply_event`, in
    /// step with it, computes one at a time through 84% of the run: paced
    /// by that stage, its fix first. Out of step (600 calls of 4.2 ms
    /// filling the same), it is not.
    #[test]
    fn a_wait_beside_a_pipeline_s_slowest_stage_is_paced_by_it() {
        let with = |stage_calls: u64, stage_ns: u64| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("run", &[(MS, 1)]),
                    Span::new("apply_event", &[(stage_ns, stage_calls)]).on_cpu(stage_ns * stage_calls, 0, 0, 0),
                    Span::new("send_event", &[(2 * US, 60_000)]).idle(350 * US),
                ],
            );
            d.run.span_threads = Some(2);
            detect(Class::Waiting, d)
        };
        let found = with(60_000, 42 * US);
        let f = about(&found, "send_event").unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!(f.paced_by.as_deref(), Some("apply_event"));
        assert!(f.advice.fixes[0].starts_with("It waits for `apply_event`, which ran one at a time, back to back"), "{:?}", f.advice.fixes);
        assert!(f.advice.statement.contains("hold back `apply_event`, which paces it"), "{}", f.advice.statement);
        let found = with(600, 4_200 * US);
        let f = about(&found, "send_event").unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!(f.paced_by, None);
        assert!(!f.advice.fixes[0].starts_with("It waits for"), "{:?}", f.advice.fixes);
    }

    /// Sixteen tasks' `call_upstream` (1,000 calls of 48 ms, 47.7 ms of it
    /// idle) each hold a one-permit semaphore across a 2 ms `upstream`:
    /// `upstream` runs back to back, one at a time through the 3 s, while
    /// `call_upstream` is open 16 at a time: they take turns, said with its
    /// fix first. With `upstream` two at a time (two permits), turns on two
    /// places; but where most of `call_upstream`'s waits are its
    /// children's (a 25 ms `slow_call` beside it: the two at a time a
    /// coincidence), or
    /// with `call_upstream` one at a time, no turns are said.
    #[test]
    fn a_child_run_one_at_a_time_while_many_wait_is_turns_on_one_thing() {
        let with_beside = |upstream_ms: u64, calls: u64, beside_ms: u64, min_idle_ratio: f64| {
            let window = 3_000 * MS;
            let mut spans = vec![
                Span::new("call_upstream", &[(300 * US, calls)]).idle(47_700 * US),
                Span::new("upstream", &[(100 * US, 1_500)]).idle(upstream_ms * MS - 100 * US),
            ];
            if beside_ms > 0 {
                spans.push(Span::new("slow_call", &[(100 * US, calls)]).idle(beside_ms * MS));
            }
            let mut d = dump(window, &spans);
            let all = perf_layer::dump::ActiveWindow {
                first_open_ns: 0,
                last_close_ns: window,
            };
            for cs in &mut d.callsites {
                cs.active = Some(all);
            }
            let mut config = crate::Config::default();
            config.classes.waiting.min_idle_ratio = min_idle_ratio;
            crate::analyze::test_dump::detect_with(Class::Waiting, d, &config)
        };
        let with = |upstream_ms: u64, calls: u64| with_beside(upstream_ms, calls, 0, 0.5);
        let found = with(2, 1_000);
        let f = about(&found, "call_upstream").unwrap();
        assert!(
            f.summary.contains("its child `upstream` ran one at a time, back to back (1.00 at a time over its window), while it was open 16.0 at a time"),
            "{}",
            f.summary
        );
        assert!(
            f.advice.fixes[0].starts_with("They take turns on one thing held while `upstream` runs: where `call_upstream` holds a lock's guard across it"),
            "{:?}",
            f.advice.fixes
        );
        let two = with(4, 1_000);
        let f = about(&two, "call_upstream").unwrap();
        assert!(
            f.summary.contains("its child `upstream` ran 2 at a time, back to back (2.00 at a time over its window), while it was open 16.0 at a time and waited outside its children"),
            "{}",
            f.summary
        );
        assert!(
            f.advice.fixes[0].starts_with("They take turns on 2 places held while `upstream` runs, 16.0 `call_upstream`s open at once"),
            "{:?}",
            f.advice.fixes
        );
        // A finding at 35% of its own idle only where a user asks for it.
        let coincidence = with_beside(4, 1_000, 25, 0.3);
        let f = about(&coincidence, "call_upstream").unwrap_or_else(|| panic!("{coincidence:#?}"));
        assert!(!f.summary.contains("turns"), "{}", f.summary);
        let alone = with(2, 60);
        assert!(about(&alone, "call_upstream").is_none_or(|f| !f.summary.contains("turns")));
    }

    /// `next` is open 9 ms a call while not entered, each span entered
    /// once and none on a runtime's worker: synchronous, open before or
    /// past its work (a fresh pipeline's span in a `while let`'s
    /// scrutinee), no wait, and a note says why. Polled twice a call, or
    /// closed on a runtime's workers, it is a task's wait.
    #[test]
    fn a_synchronous_span_open_past_its_work_is_no_wait() {
        let with = |intervals_per_call: u64, on_workers: bool| {
            let mut d = dump(1_000 * MS, &[Span::new("next", &[(MS, 10)]).idle(9 * MS)]);
            let cs = &mut d.callsites[0];
            cs.intervals = Some(cs.calls * intervals_per_call);
            cs.runtime_worker_calls = Some(if on_workers { cs.calls } else { 0 });
            let report = crate::analyze::analyze(&d.into(), &Default::default());
            let found = report.findings.iter().any(|f| {
                f.class == Class::Waiting && f.location.as_ref().is_some_and(|l| l.name == "next")
            });
            let noted = report
                .notes
                .iter()
                .any(|n| n.starts_with("`next` is open 90.0 ms while not entered (90.0% of its wall time)"));
            (found, noted)
        };
        assert_eq!(with(1, false), (false, true));
        assert_eq!(with(2, false), (true, false));
        assert_eq!(with(1, true), (true, false));
    }

    /// `handle` (1,000 calls, 1 ms idle each) spawned `watcher` in every
    /// call, which slept 200 ms and ended after `handle` had: the dump's
    /// edge says each outlived its parent. `watcher`'s wait holds back
    /// nothing and a note says why; `handle`'s own 1 ms is its own wait,
    /// not its child's. Awaited (nothing outlived), `watcher` is the
    /// finding and `handle`'s idle time is its child's.
    #[test]
    fn a_child_that_outlived_its_parent_is_no_wait_and_not_the_parent_s() {
        let with = |outlived: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("handle", &[(40 * US, 1_000)]).idle(if outlived > 0 { MS } else { 201 * MS }),
                    Span::new("watcher", &[(10 * US, 1_000)]).idle(200 * MS),
                ],
            );
            d.edges[0].outlived = outlived;
            let report = crate::analyze::analyze(&d.into(), &Default::default());
            let waits: Vec<&str> = report
                .findings
                .iter()
                .filter(|f| f.class == Class::Waiting)
                .filter_map(|f| f.location.as_ref().map(|l| l.name.as_str()))
                .collect();
            let noted = report.notes.iter().any(|n| {
                n.starts_with("`watcher` outlived the span it was opened in, `handle`, in 1,000 of its 1,000 calls")
            });
            (waits.join(","), noted)
        };
        assert_eq!(with(1_000), ("handle".to_string(), true));
        assert_eq!(with(0), ("watcher".to_string(), false));
        // A few that outlived do not make the rest detached.
        assert_eq!(with(100), ("watcher".to_string(), false));
    }

    /// `update` waits 9 ms a call, 2 ms of them in its child `persist`:
    /// the other 7 ms are its own (a lock held across `persist` by the
    /// task before it), and both are found, `update` for its own 700 ms.
    /// `handler`, whose every wait is its child `query`'s, is not: the
    /// child is where the cause is.
    #[test]
    fn a_parent_is_found_for_its_own_waits_beside_its_waiting_child() {
        // A parent and its child, 100 calls each, idle so long a call.
        let pair = |(parent, parent_idle): (&'static str, u64), (child, child_idle): (&'static str, u64)| {
            detect(
                Class::Waiting,
                dump(
                    1_000 * MS,
                    &[
                        Span::new(parent, &[(10 * US, 100)]).idle(parent_idle),
                        Span::new(child, &[(5 * US, 100)]).idle(child_idle),
                    ],
                ),
            )
        };
        let found = pair(("update", 9 * MS), ("persist", 2 * MS));
        let update = about(&found, "update").expect("its own waits");
        assert_near(evidence(update, "idle time"), 700.0 * MS as f64, 1e-6);
        assert!(
            update.summary.contains("700 ms idle of its own; 200 ms more while its children waited"),
            "{}",
            update.summary
        );
        assert!(about(&found, "persist").is_some());
        let found = pair(("handler", 2 * MS), ("query", 2 * MS));
        assert!(about(&found, "handler").is_none(), "{found:?}");
        assert!(about(&found, "query").is_some());
    }

    /// A task's `query` waits 6 s of a 10 s run on 2 runtime workers,
    /// beside `decode` computing 8 s and `audit` blocking 8 s inside the
    /// same polls: the cores are 40% busy (8 s of CPU over 2 cores' 10 s),
    /// but the workers are 80% occupied, so the wait can give back at most
    /// 20% of the run, not 60%. Off the workers (a thread's own wait) the
    /// cores' figure stands.
    #[test]
    fn a_tasks_wait_gives_back_no_more_than_the_workers_free_time() {
        let with_workers = |on_workers: bool| {
            let mut d = dump(
                10_000 * MS,
                &[
                    Span::new("query", &[(US, 1_000)]).idle(6 * MS),
                    Span::new("decode", &[(8 * MS, 1_000)]),
                    Span::new("audit", &[(80 * MS, 100)]),
                ],
            );
            d.run.span_threads = Some(2);
            d.run.cores = Some(2);
            d.run.cpu_ns = Some(8_000 * MS);
            if on_workers {
                for cs in &mut d.callsites {
                    cs.runtime_worker_calls = Some(cs.calls);
                }
            }
            let found = detect(Class::Waiting, d);
            about(&found, "query").unwrap().clone()
        };
        let task = with_workers(true);
        assert_near(evidence(&task, "occupancy of the runtime's workers"), 0.8, 0.01);
        assert_near(task.cost_share, 0.2, 0.01);
        assert!(task.summary.contains("the runtime's workers were occupied 80.0%"), "{}", task.summary);
        let thread = with_workers(false);
        assert_near(evidence(&thread, "utilisation of the threads' cores"), 0.4, 0.01);
        assert_near(thread.cost_share, 0.6, 0.01);
    }

    /// `list` makes 10 calls of `fetch` a call; each `fetch` waits 1 ms and
    /// each `list` lives 10 ms: their wall time adds up to `list`'s, so it
    /// awaited them one after another, and the finding on `fetch` names
    /// `list` and puts overlapping them there first. The same calls waiting
    /// 10 ms each, side by side (10 times `list`'s wall time), are no chain.
    #[test]
    fn a_caller_awaiting_the_waits_one_after_another_is_named() {
        let with = |fetch_idle: u64| {
            detect(
                Class::Waiting,
                dump(
                    2_000 * MS,
                    &[
                        Span::new("list", &[(20 * US, 100)]).idle(10 * MS - 20 * US),
                        Span::new("fetch", &[(US, 1_000)]).idle(fetch_idle),
                    ],
                ),
            )
        };
        let found = with(MS - US);
        let f = about(&found, "fetch").unwrap();
        assert_near(evidence(f, "calls per caller's call"), 10.0, 1e-9);
        assert_near(evidence(f, "their wall time over the caller's"), 1.0, 1e-9);
        assert!(
            f.summary.contains("`list` awaits it 10.0 times a call, one after another"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("Overlap the calls in its caller"), "{:?}", f.advice.fixes);
        let side_by_side = with(10 * MS - US);
        let f = about(&side_by_side, "fetch").unwrap();
        assert!(!f.summary.contains("one after another"), "{}", f.summary);
        assert!(
            f.summary.contains("`list` already awaits it 10.0 times a call side by side"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("Make what it waits on answer sooner"), "{:?}", f.advice.fixes);
        assert!(!f.advice.fixes.iter().any(|x| x.starts_with("Overlap")), "{:?}", f.advice.fixes);
        // Five calls a call, each as long as `list`: neither one after
        // another nor all side by side; the generic advice.
        let between = with(5 * MS - US);
        let f = about(&between, "fetch").unwrap();
        assert!(!f.summary.contains("a call"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Overlap independent waits"), "{:?}", f.advice.fixes);
    }

    /// `handle_request` awaits 8 `fetch_shard` calls side by side, each
    /// waiting 2 ms at p50; one in eight takes 6.6 ms (its p90), and
    /// `handle_request` lives 7.5 ms: their wall time is 2.1 times the
    /// caller's, under the 6.4 of eight equal calls side by side. The slow
    /// calls set the caller's time: said, and finding them is the first
    /// fix. With the calls alike (p90 at p50), the same fill is a partial
    /// overlap: the generic advice.
    #[test]
    fn a_caller_that_lasts_as_long_as_its_slowest_calls_says_so() {
        let with = |p90: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("handle_request", &[(20 * US, 100)]).idle(7_500 * US),
                    Span::new("fetch_shard", &[(US, 800)]).idle(2 * MS),
                ],
            );
            d.callsites[1].wall_ns.p90 = p90;
            detect(Class::Waiting, d)
        };
        let found = with(6_600 * US);
        let f = about(&found, "fetch_shard").unwrap();
        assert!(
            f.summary.contains("`handle_request` already awaits it 8.0 times a call side by side (their wall time is 2.1 times `handle_request`'s) and lasts as long as the slowest of them: their wall time p50"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("p90 6.60 ms"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Its slow calls set its caller's time (one in ten of them"), "{:?}", f.advice.fixes);
        let alike = with(2_100 * US);
        let f = about(&alike, "fetch_shard").unwrap();
        assert!(!f.summary.contains("side by side"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Overlap independent waits"), "{:?}", f.advice.fixes);
    }

    /// An async `handle_request` whose wait no waiting child explains,
    /// with a child that computes (`merge`): its first step says that
    /// tasks it spawns are its children only when their futures carry its
    /// span. The same on no runtime (a thread's span entered several
    /// times), or as a leaf on one: not said.
    #[test]
    fn an_async_parent_waiting_on_its_own_is_told_of_spawned_tasks() {
        let with = |on_runtime: bool, child: bool| {
            let mut spans = vec![Span::new("handle_request", &[(20 * US, 100)]).idle(7_500 * US)];
            if child {
                spans.push(Span::new("merge", &[(10 * US, 100)]));
            }
            let mut d = dump(2_000 * MS, &spans);
            for cs in &mut d.callsites {
                cs.intervals = Some(cs.calls * 4);
                cs.runtime_worker_calls = Some(if on_runtime { cs.calls } else { 0 });
            }
            let found = detect(Class::Waiting, d);
            about(&found, "handle_request").unwrap().advice.prerequisites[0].contains(".in_current_span()")
        };
        assert!(with(true, true));
        assert!(!with(false, true));
        assert!(!with(true, false));
    }

    /// A fresh request service: eight clients each loop on `handle` (8.0
    /// open at once over the 3 s run), whose `query_db` waits 7.2 ms a call
    /// for a pool of two and whose `update_cache` (one call in four) waits
    /// 7.2 ms behind a lock. Summed, both waits exceed the run (18.7 s and
    /// 4.7 s of a 3 s run), so with the run's wall time as the whole both
    /// were capped at the idle cores and tied; over the wall time of the
    /// eight lanes they wait in they are 78% and 20%. Fixing the pool and
    /// the lock gave that service 2.6 times the requests; the lock alone
    /// nothing (the pool was the bound). Without live windows (an older
    /// dump) nothing says how many ran at once: the run's wall time again.
    /// The service below: eight clients on `handle`, whose `query_db` and
    /// `update_cache` wait; with live windows or without (an older dump).
    fn clients(windows: bool) -> perf_layer::dump::Dump {
        use perf_layer::dump::ActiveWindow;
        let mut d = dump(
            3_000 * MS,
            &[
                Span::new("handle", &[(170 * US, 2_600)]).idle(9_050 * US),
                Span::new("query_db", &[(11 * US, 2_600)]).idle(7_200 * US),
                Span::new("update_cache", &[(US, 650)]).idle(7_200 * US),
                Span::new("render", &[(150 * US, 2_600)]),
            ],
        );
        if windows {
            for cs in &mut d.callsites {
                cs.active = Some(ActiveWindow { first_open_ns: 0, last_close_ns: 3_000 * MS });
            }
        }
        // 13% of the one recording thread's core: waiting could give
        // back 87% of the run, more than either wait.
        d.run.cpu_ns = Some(400 * MS);
        d
    }

    /// A producer, one span through the whole 1.5 s run, ticking on a
    /// timer, and the requests it hands to handlers beside it: `upstream`
    /// waits 1 ms of each. The producer is no finding (a note says it
    /// paces the run); `upstream` is, its gain in the calls it waits in
    /// and the run only as far as they hold the producer back. Without the
    /// producer's span, `upstream` shortens the run.
    fn paced(with_producer: bool) -> perf_layer::dump::Dump {
        use perf_layer::dump::ActiveWindow;
        let run = 1_500 * MS;
        let mut spans = vec![
            Span::new("handle", &[(60 * US, 3_000)]).idle(1_000 * US),
            Span::new("upstream", &[(2 * US, 3_000)]).idle(1_000 * US),
        ];
        if with_producer {
            spans.insert(0, Span::new("producer", &[(6 * MS, 1)]).idle(run - 6 * MS));
        }
        let mut d = dump(run, &spans);
        // The handlers' spans are no children of the producer's.
        d.edges.retain(|e| d.callsites[e.parent as usize].name == "handle");
        d.edges.iter_mut().for_each(|e| e.calls = 3_000);
        for cs in &mut d.callsites {
            cs.active = Some(ActiveWindow { first_open_ns: 0, last_close_ns: run });
        }
        d.run.cpu_ns = Some(200 * MS);
        d
    }

    #[test]
    fn a_span_that_drives_the_run_is_no_wait_and_waits_beside_it_shorten_their_calls() {
        let found = detect(Class::Waiting, paced(true));
        assert!(about(&found, "producer").is_none(), "{found:?}");
        let upstream = about(&found, "upstream").expect("its wait is most of each request");
        assert!(
            upstream.advice.statement.contains("the run shortens only as far as they hold back `producer`, which paces it"),
            "{}",
            upstream.advice.statement
        );
        let alone = detect(Class::Waiting, paced(false));
        let upstream_alone = about(&alone, "upstream").unwrap();
        assert!(upstream_alone.advice.statement.contains("shortens the run by"), "{}", upstream_alone.advice.statement);
        assert_near(upstream.confidence, 0.5 * upstream_alone.confidence, 1e-9);
        // The plan's total of the run's wall time leaves the paced wait out
        // and says so; without the producer, it counts.
        let total = |d| {
            let analysis =
                crate::analyze::analyze(&crate::LoadedDump::from(d), &crate::config::Config::default());
            crate::plan::plan(&analysis).total_wall_gain
        };
        assert_eq!(total(paced(true)), 0.0);
        assert!(total(paced(false)) > 0.1);
    }

    /// A refresher's `fetch_config`, 20 calls of 20 ms in a 1 s run, one
    /// at a time, sleeping between them outside every span (the process's
    /// CPU outside spans 12 ms against 600 ms of gaps), while clients'
    /// `request` and `handle` work beside it: a periodic task, a note, no
    /// finding. With 600 ms of CPU outside every span (untraced work in the
    /// gaps), or a traced `apply` in step with it doing 600 ms of work (a
    /// loop alternating the wait with work), its wait may hold the run up:
    /// a finding.
    fn refresher(outside_ms: u64, alternating: bool) -> perf_layer::dump::Dump {
        use perf_layer::dump::ActiveWindow;
        let mut spans = vec![
            Span::new("request", &[(60 * US, 4_800)]).idle(MS),
            Span::new("handle", &[(50 * US, 4_800)]),
            Span::new("fetch_config", &[(5 * US, 20)]).idle(20 * MS),
        ];
        if alternating {
            spans.push(Span::new("apply", &[(30 * MS, 20)]));
        }
        let mut d = dump(1_000 * MS, &spans);
        d.edges.retain(|e| {
            d.callsites[e.parent as usize].name == "request" && d.callsites[e.child as usize].name == "handle"
        });
        for cs in &mut d.callsites {
            cs.active = Some(ActiveWindow { first_open_ns: 0, last_close_ns: 1_000 * MS });
        }
        let in_spans = 4_800 * 60 * US + if alternating { 600 * MS } else { 0 };
        d.run.cpu_ns = Some(in_spans + outside_ms * MS);
        d
    }

    #[test]
    fn a_periodic_task_sleeping_between_its_waits_beside_the_work_is_no_finding() {
        let found = detect(Class::Waiting, refresher(12, false));
        assert!(about(&found, "fetch_config").is_none(), "{found:#?}");
        let analysis = crate::analyze::analyze(
            &crate::LoadedDump::from(refresher(12, false)),
            &crate::config::Config::default(),
        );
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`fetch_config` waits about") && n.contains("its calls spaced by gaps")),
            "{:#?}",
            analysis.notes
        );
        for (outside_ms, alternating) in [(600, false), (12, true)] {
            let found = detect(Class::Waiting, refresher(outside_ms, alternating));
            assert!(about(&found, "fetch_config").is_some(), "{outside_ms} {alternating}: {found:#?}");
        }
    }

    /// Six clients' `query`, 1,800 calls of 10 ms open through a 3 s run
    /// (six at a time) that compute 30 µs each (54 ms in all, under 5% of
    /// the window), beside a background `export_report` whose `upload`
    /// waits 26 ms every 36 ms, holding nothing the clients wait for: a
    /// periodic task beside another task's loop, a note. With the clients
    /// open only through the first half of the run, nothing goes on beside
    /// the uploads in the rest: a finding.
    fn uploads(clients_through_ms: u64) -> perf_layer::dump::Dump {
        use perf_layer::dump::ActiveWindow;
        let run = 3_000 * MS;
        let mut d = dump(
            run,
            &[
                Span::new("query", &[(30 * US, 1_800)]).idle(10 * MS),
                Span::new("export_report", &[(10 * US, 80)]).idle(26 * MS),
                Span::new("upload", &[(2 * US, 80)]).idle(26 * MS),
            ],
        );
        d.edges.retain(|e| d.callsites[e.child as usize].name == "upload");
        d.edges.iter_mut().for_each(|e| e.parent = 1);
        for cs in &mut d.callsites {
            let end = if cs.name == "query" { clients_through_ms * MS } else { run };
            cs.active = Some(ActiveWindow { first_open_ns: 0, last_close_ns: end });
        }
        d.run.cpu_ns = Some(64 * MS);
        d
    }

    #[test]
    fn a_periodic_task_beside_another_tasks_waiting_loop_is_no_finding() {
        let found = detect(Class::Waiting, uploads(3_000));
        assert!(about(&found, "upload").is_none(), "{found:#?}");
        assert!(about(&found, "query").is_some(), "{found:#?}");
        let analysis =
            crate::analyze::analyze(&crate::LoadedDump::from(uploads(3_000)), &crate::config::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`upload` waits about")
                && n.contains("while `query` was open beside it through its window (6.0 at a time)")),
            "{:#?}",
            analysis.notes
        );
        let half = detect(Class::Waiting, uploads(1_500));
        assert!(about(&half, "upload").is_some(), "{half:#?}");
    }

    #[test]
    fn waits_in_tasks_side_by_side_are_shares_of_their_lanes() {
        let with = |windows: bool| detect(Class::Waiting, clients(windows));
        let lanes = with(true);
        let open_at_once = 2_600.0 * 9_220.0 / 3_000_000.0;
        let (db, cache) = (about(&lanes, "query_db").unwrap(), about(&lanes, "update_cache").unwrap());
        assert_near(evidence(db, "`handle` open at once"), open_at_once, 1e-9);
        assert_near(db.cost_share, 2_600.0 * 7.2 / (3_000.0 * open_at_once), 1e-9);
        assert_near(cache.cost_share, 650.0 * 7.2 / (3_000.0 * open_at_once), 1e-9);
        assert!(db.score > 3.0 * cache.score, "{} vs {}", db.score, cache.score);
        assert!(db.summary.contains("`handle` ran 8.0 at a time, and its waits are 78.1% of their wall time"), "{}", db.summary);
        // Its cost is a share of the clients' time; the gain, of the run.
        assert!(
            db.advice.statement.contains("(78.1% of the wall time of the `handle` calls it waits in, 8.0 at a time) shortens the run by 39.0%"),
            "{}",
            db.advice.statement
        );
        // Eight tasks wait side by side already: answering sooner and more
        // in flight (the pool's size) come before overlapping.
        assert!(db.advice.fixes[0].starts_with("Make what it waits on answer sooner"), "{:?}", db.advice.fixes);
        assert!(db.advice.fixes[1].starts_with("Its waits already overlap across tasks (`handle` 8.0 at a time)"), "{:?}", db.advice.fixes);
        let older = with(false);
        let (db, cache) = (about(&older, "query_db").unwrap(), about(&older, "update_cache").unwrap());
        assert_eq!(db.cost_share, cache.cost_share);
        assert!(db.advice.fixes[0].starts_with("Overlap independent waits"), "{:?}", db.advice.fixes);
        assert!(db.advice.statement.contains("of the run's wall time) shortens the run by"), "{}", db.advice.statement);
        assert!(db.evidence.iter().all(|e| !e.metric.contains("open at once")));
    }

    /// The same service as reported: its two waits are in the same
    /// `handle` calls, one after another, and each is told of the other
    /// (`in_series`); without live windows nothing says they share lanes.
    #[test]
    fn waits_in_the_same_tasks_are_told_of_each_other() {
        let report = |windows: bool| {
            crate::analyze::analyze(&clients(windows).into(), &crate::config::Config::default())
        };
        let a = report(true);
        let (db, cache) = (about(&a.findings, "query_db").unwrap(), about(&a.findings, "update_cache").unwrap());
        assert!(db.summary.contains("`handle` also waits in `update_cache`: where they come one after another"), "{}", db.summary);
        assert!(cache.summary.contains("`handle` also waits in `query_db`"), "{}", cache.summary);
        let a = report(false);
        assert!(a.findings.iter().all(|f| !f.summary.contains("also waits in")), "{:#?}", a.findings);
    }

    /// A callsite's long spans: `spans` (all of them from the run's
    /// start) and its `longest_waits`.
    fn long_spans(
        spans: Vec<perf_layer::dump::LongSpan>,
        waits: Vec<perf_layer::dump::LongSpan>,
    ) -> Option<perf_layer::dump::LongSpans> {
        Some(perf_layer::dump::LongSpans { threshold_ns: MS, complete_after_ns: 0, spans, longest_waits: waits })
    }

    /// A span in round `k` of rounds 46 ms apart, from `opened` to
    /// `closed` into it, busy `busy` of that.
    fn in_round(k: u64, opened: u64, closed: u64, busy: u64) -> perf_layer::dump::LongSpan {
        perf_layer::dump::LongSpan {
            opened_ns: k * 46 * MS + opened,
            closed_ns: k * 46 * MS + closed,
            idle_ns: closed - opened - busy,
        }
    }

    /// The three callsites of the holder tests below, `export` at index
    /// `export_at` (1 or 2) and `update` at the other.
    fn queue(export_at: usize) -> perf_layer::dump::Dump {
        let mut spans = vec![
            Span::new("lookup", &[(50 * US, 100)]).idle(8 * MS),
            Span::new("update", &[(20 * US, 20)]).idle(6 * MS),
        ];
        spans.insert(export_at, Span::new("export", &[(10 * US, 20)]).idle(6 * MS));
        let mut d = dump(1_000 * MS, &spans);
        d.edges.clear();
        d
    }

    /// A holder `export` whose every span ends two of `lookup`'s waits
    /// holds what they share; `update`'s waits, one a span (one writer
    /// task), end after the same spans: it holds what `update` waits for
    /// too. Without `lookup`'s waits in the dump, one a span reads as a
    /// hand-off.
    #[test]
    fn a_holder_of_what_others_share_holds_for_a_single_waiter_too() {
        let found = |with_lookups: bool| {
            let mut d = queue(2);
            let waits = |began: &[u64]| -> Vec<_> {
                (0..20)
                    .flat_map(|k| began.iter().map(move |&b| in_round(k, b, 6 * MS + 500 * US, 50 * US)))
                    .collect()
            };
            d.callsites[2].long_spans =
                long_spans((0..20).map(|k| in_round(k, 0, 6 * MS, 10 * US)).collect(), Vec::new());
            if with_lookups {
                d.callsites[0].long_spans = long_spans(Vec::new(), waits(&[MS, 2 * MS]));
            }
            d.callsites[1].long_spans = long_spans(Vec::new(), waits(&[1_500 * US]));
            detect(Class::Waiting, d)
        };
        let both = found(true);
        let update = about(&both, "update").expect("a waiting finding");
        assert!(
            update.summary.contains("one a span (chance would tie") && update.summary.contains("as it ends 2.0 of `lookup`'s a span: `export` holds what they wait for"),
            "{}",
            update.summary
        );
        assert!(update.advice.fixes[0].starts_with("Release what `export` holds"), "{:?}", update.advice.fixes);
        let alone = found(false);
        let update = about(&alone, "update").expect("a waiting finding");
        assert!(update.summary.contains("it waits for what `export` hands over as it ends"), "{}", update.summary);
    }

    /// Readers (`lookup`, two waits a span) queued behind a writer
    /// (`update`, one task) queued behind `export`, which holds the lock
    /// across its wait: the readers' waits end after the writer's spans,
    /// the writer's after the export's. The readers name the writer and,
    /// behind it, the export, whose release is their fix; the writer holds
    /// what the readers wait for, so its one wait a span is its place in
    /// the queue, not a hand-off.
    #[test]
    fn readers_behind_a_queued_writer_name_what_the_queue_waits_for() {
        let mut d = queue(1);
        d.callsites[1].long_spans =
            long_spans((0..20).map(|k| in_round(k, 0, 6 * MS, 10 * US)).collect(), Vec::new());
        let writes: Vec<_> = (0..20).map(|k| in_round(k, 1_500 * US, 7_500 * US, 20 * US)).collect();
        d.callsites[2].long_spans = long_spans(writes.clone(), writes);
        d.callsites[0].long_spans = long_spans(
            Vec::new(),
            (0..20)
                .flat_map(|k| [2 * MS, 3 * MS].map(|b| in_round(k, b, 7_800 * US, 50 * US)))
                .collect(),
        );
        let found = detect(Class::Waiting, d);
        let lookup = about(&found, "lookup").expect("a waiting finding");
        assert!(
            lookup.summary.contains("`update` holds what they wait for, and waits itself for what `export` holds"),
            "{}",
            lookup.summary
        );
        assert!(lookup.advice.fixes[0].starts_with("Release what `export` holds"), "{:?}", lookup.advice.fixes);
        let update = about(&found, "update").expect("a waiting finding");
        assert!(
            update.summary.contains("where it holds what `lookup` waits for itself, so it waits to take it: `export` holds what they wait for"),
            "{}",
            update.summary
        );
    }

    /// A waiter whose every long wait began inside a `rebuild` span and
    /// ended 0.5 ms after it closed names `rebuild` as the holder; the
    /// first fix is to release it before its wait where `rebuild` is idle,
    /// and to do its work outside the guard where it computes.
    #[test]
    fn a_holder_is_named_and_its_fix_follows_what_it_does_while_holding() {
        use perf_layer::dump::{LongSpan, LongSpans};
        let found = |rebuild_idle: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("query", &[(50 * US, 100)]).idle(8 * MS),
                    Span::new("rebuild", &[(6 * MS - rebuild_idle, 20)]).idle(rebuild_idle),
                ],
            );
            let long = |spans: Vec<LongSpan>| {
                Some(LongSpans {
                    threshold_ns: MS,
                    complete_after_ns: 0,
                    spans: Vec::new(),
                    longest_waits: spans,
                })
            };
            let holds = (0..20).map(|k| LongSpan {
                opened_ns: k * 46 * MS,
                closed_ns: k * 46 * MS + 6 * MS,
                idle_ns: rebuild_idle,
            });
            d.callsites[1].long_spans = long(Vec::new());
            if let Some(l) = d.callsites[1].long_spans.as_mut() {
                l.spans = holds.collect();
            }
            d.callsites[0].long_spans = long(
                (0..20)
                    .flat_map(|k| {
                        [MS, 2 * MS].map(|began| LongSpan {
                            opened_ns: k * 46 * MS + began,
                            closed_ns: k * 46 * MS + 6 * MS + 500 * US,
                            idle_ns: 6 * MS + 500 * US - began - 50 * US,
                        })
                    })
                    .collect(),
            );
            detect(Class::Waiting, d)
        };
        let idle = found(6 * MS - 10 * US);
        let query = about(&idle, "query").expect("a waiting finding");
        assert!(query.summary.contains("`rebuild` holds what they wait for"), "{}", query.summary);
        assert!(query.advice.fixes[0].starts_with("Release what `rebuild` holds"), "{:?}", query.advice.fixes);
        let busy = found(0);
        let query = about(&busy, "query").expect("a waiting finding");
        assert!(query.advice.fixes[0].starts_with("Do `rebuild`'s work outside what it holds"), "{:?}", query.advice.fixes);
        assert!(query.advice.prerequisites[0].starts_with("Find what `rebuild` holds"), "{:?}", query.advice.prerequisites);
    }

    /// A task `handle` on a runtime's workers, and two background spans
    /// that compute inside their polls, `rebuild_index` 20 ms then
    /// `compact` 18 ms each 46 ms round. Three of `handle`'s four waits a
    /// round end after `rebuild_index` closes, enough for a holder reading
    /// on their own; the fourth after `compact`. Both stalls together tie
    /// all four: the worker was held, not a lock (a fresh service's test,
    /// `tests/truth_worker_stall.rs`, read the holder in one run of about
    /// fifty). With `compact` gone, the stall ties no more than the holder,
    /// which stays: a span that stalls a worker and holds a lock is both.
    #[test]
    fn a_holder_that_stalls_the_workers_is_read_as_a_stall_when_the_stalls_tie_more() {
        let found = |with_compact: bool| {
            let mut spans = vec![
                Span::new("handle", &[(50 * US, 80)]).idle(12 * MS),
                Span::new("rebuild_index", &[(20 * MS, 20)]),
            ];
            if with_compact {
                spans.push(Span::new("compact", &[(18 * MS, 20)]));
            }
            let mut d = dump(1_000 * MS, &spans);
            d.edges.clear();
            for cs in &mut d.callsites {
                cs.runtime_worker_calls = Some(cs.calls);
            }
            d.callsites[1].long_spans =
                long_spans((0..20).map(|k| in_round(k, 0, 20 * MS, 20 * MS)).collect(), Vec::new());
            let mut waits: Vec<_> = (0..20)
                .flat_map(|k| [MS, 2 * MS, 3 * MS].map(|b| in_round(k, b, 20 * MS + 300 * US, 50 * US)))
                .collect();
            if with_compact {
                d.callsites[2].long_spans =
                    long_spans((0..20).map(|k| in_round(k, 22 * MS, 40 * MS, 18 * MS)).collect(), Vec::new());
                waits.extend((0..20).map(|k| in_round(k, 23 * MS, 40 * MS + 300 * US, 50 * US)));
            }
            d.callsites[0].long_spans = long_spans(Vec::new(), waits);
            detect(Class::Waiting, d)
        };
        let both = found(true);
        let handle = about(&both, "handle").expect("a waiting finding");
        assert!(
            handle.summary.contains("stalled a runtime worker through them (`rebuild_index` 20.0 ms, `compact` 18.0 ms"),
            "{}",
            handle.summary
        );
        assert!(!handle.summary.contains("holds what they wait for"), "{}", handle.summary);
        assert!(handle.advice.fixes[0].starts_with("Free the runtime's workers"), "{:?}", handle.advice.fixes);
        let alone = found(false);
        let handle = about(&alone, "handle").expect("a waiting finding");
        assert!(handle.summary.contains("`rebuild_index` holds what they wait for"), "{}", handle.summary);
    }
}
