//! Hot spot: a callsite holding a large share of the process's CPU time
//! while innermost. Where the layer timed the spans on the CPU, that is
//! their self time on the CPU: a span that sleeps is not a hot spot
//! (`blocked` is its class).
//!
//! A hot spot that computes inside a runtime's poll (an async span's own
//! polls, or a plain function its async caller runs inside its polls, as
//! `blocked` tells them) for at least `poll_stall_ns` at a time also
//! stalls that worker and every task queued on it: the finding says so,
//! and moving the work off the runtime is among its fixes. Such a span is
//! a hot spot from `min_stall_share` of the CPU, under `min_share`: a
//! background task computing 15 ms every 100 ms (7% of a service's CPU)
//! adds up to 15 ms to every request queued on its worker.

use serde::{Deserialize, Serialize};

use super::blocked::ONE_AT_A_TIME;
use super::{Class, Detector, Info, Stall, in_poll};
use crate::analyze::advice::{Advice, Effort, lines, speedup_phrase};
use crate::analyze::context::Context;
use crate::analyze::logging::{self, Logging};
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::rows::CallsiteRow;
use crate::analyze::round_trips::RoundTrips;
use crate::analyze::small_io::{self, SmallIo, kernel_at_most, kernel_over_window};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is a hot spot. Its cost is its self time on the CPU
/// (where the spans were not timed on the CPU, its self time less its
/// tail's excess, which the tail latency finding has); shares are of
/// the process's CPU time (of all self time in spans when the dump does not
/// record it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The callsite's self time on the CPU is at least this share of the
    /// process's CPU time (default 0.10).
    pub min_share: f64,
    /// The share of its self time a fix gives back (0.5: halving it).
    pub recoverable: f64,
    /// How sure the finding is before the instrumentation discount (0.95):
    /// the confidence is this times one minus the share of the callsite's
    /// self time that is the layer's own cost (its cost per span, measured
    /// from its callbacks where the dump has them, else
    /// `overhead.per_span_ns`, times the calls).
    pub confidence: f64,
    /// On the CPU this long at a time inside a poll (1 ms, ten times the
    /// most tokio's guide allows between two `.await`s), a hot spot also
    /// stalls its runtime worker.
    pub poll_stall_ns: f64,
    /// A span that stalls a worker so is a hot spot from this share of the
    /// process's CPU time (0.02), below `min_share`.
    pub min_stall_share: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_share: 0.10,
            recoverable: 0.5,
            confidence: 0.95,
            poll_stall_ns: 1_000_000.0,
            min_stall_share: 0.02,
        }
    }
}

pub(crate) struct HotSpot;

/// The usual calls' self time on the CPU of the callsite at index `i`,
/// less its children's instrumentation (`children_instr`,
/// [`Context::children_instrumentation_ns`]): what the hot spot reads of a
/// span timed on the CPU.
pub(crate) fn own_cpu_ns(cx: &Context<'_>, i: usize, children_instr: f64) -> f64 {
    (cx.usual_cpu_ns(i) - children_instr).max(0.0)
}

/// Round trips whose CPU is system calls (the kernel reading): a batch
/// removes all but one call's ([`RoundTrips::batched_share`]). Elsewhere
/// their CPU may be each item's own work, which a batch keeps (a lock
/// taken 20 times a request for 4 µs of work under it).
fn batched(trips: Option<&RoundTrips>, kernel: Option<f64>) -> Option<&RoundTrips> {
    trips.filter(|_| kernel.is_some())
}

static INFO: Info = Info {
    title: "hot spot",
    innermost: false,
    supersedes: &[],
};

impl Detector for HotSpot {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.hot_spot;
        let share_of = cx.share_of(Resource::Time);
        for (i, cs, row) in cx.callsites() {
            // A child span's creation, close, and its enter and exit up to
            // and from their timestamps run while the parent is innermost:
            // the instrumentation of its children is in its self time. A
            // fresh pipeline's `process_file`, a loop over 200
            // `tokenize_word` spans, was a hot spot of 11.9% of the CPU
            // that was their instrumentation (the hot loop finding has it).
            // The subscriber's other layers' work on those children (an
            // OpenTelemetry exporter) runs there too: a `handle` opening 50
            // `lookup` spans a call beside `tracing-opentelemetry` read a
            // critical hot spot of 43% of the CPU, whose own loop was a
            // few percent of it.
            let children_instr = cx.children_instrumentation_ns(cs.id);
            let mut on_cpu = own_cpu_ns(cx, i, children_instr);
            // Not timed on the CPU: its self time was there at most as far
            // as the process's CPU time the timed spans left can hold, and
            // at more than twice that, at least half of it was not (a
            // route of a grouped `request` span blocking 2 ms a call, 1.05 s
            // of self time in a process of 0.32 s of CPU, read "on the CPU
            // at a time inside a poll").
            if row.cpu.is_none() {
                if let Some(rate) = few_timed_off_the_cpu(cs) {
                    on_cpu = on_cpu.min(rate * cs.self_ns.sum as f64);
                }
                if let Some(room) = cx.cpu_left_by_timed_spans() {
                    if on_cpu > 2.0 * room {
                        continue;
                    }
                    on_cpu = on_cpu.min(room);
                }
            }
            // A queue whose waiters spin or yield inside it burns CPU
            // there that is the queue's, beyond its head's work: the
            // serialization finding has it. A fresh `parking_lot` convoy's
            // span read 85% of the process's CPU, first, where its holder's
            // work was under half of that.
            // Round trips a thread makes one after another, each waiting
            // for its own reply, are no queue, though the peer each wakes
            // preempts it as a queue's waiters are (a fresh cart pricer's
            // `quote`, a reply channel each): where `serialization` leaves
            // them to the hot spot, all of their CPU is theirs. Where it
            // reads a queue (a lock taken 20 times a request, its waiters
            // spinning before they sleep), only its head's is.
            let trips = RoundTrips::of(cx, cs, row, on_cpu);
            let spinning = super::serialization::queue_of_runnable_waiters(cx, cs, row)
                .filter(|_| trips.is_none() || !super::serialization::round_trips_no_queue(cx, i));
            if let Some(q) = spinning {
                on_cpu *= q.head_share;
            }
            let share = cx.time_share(on_cpu);
            if share < s.min_share.min(s.min_stall_share) {
                continue;
            }
            let stall = poll_stall(cx, cs.id, row, on_cpu).filter(|st| st.ns >= s.poll_stall_ns);
            if share < s.min_share && stall.is_none() {
                continue;
            }
            let calls_f = cs.calls as f64;
            // Instrumentation inflates the measured self time; discount by it.
            let instr = stats::share(cx.per_span_ns * calls_f, on_cpu);
            let mut evidence = vec![
                Evidence::new(
                    &format!("share of {share_of}"),
                    share,
                    Unit::Share,
                    // The bar it cleared: a stall's lower one only when
                    // it is under the usual.
                    Some(if share < s.min_share {
                        s.min_stall_share
                    } else {
                        s.min_share
                    }),
                ),
                Evidence::new("self time", cs.self_ns.sum as f64, Unit::Ns, None),
            ];
            let what = match &row.cpu {
                Some(c) => {
                    evidence.push(Evidence::new(
                        "self time on the CPU",
                        c.self_on_cpu_share,
                        Unit::Share,
                        None,
                    ));
                    match spinning {
                        Some(q) => {
                            evidence.push(Evidence::new(
                                "its queue's head's share of that (the rest its waiters spinning)",
                                q.head_share,
                                Unit::Share,
                                None,
                            ));
                            format!(
                                "{} on the CPU in its head, the one thread its queue lets work, of {} on the CPU, {} of its self time; its waiters spun the rest (its serialization finding)",
                                units::ns(on_cpu),
                                units::ns(c.self_on_cpu_ns),
                                units::pct(c.self_on_cpu_share)
                            )
                        }
                        None => format!(
                            "{} on the CPU, {} of its self time",
                            units::ns(on_cpu),
                            units::pct(c.self_on_cpu_share)
                        ),
                    }
                }
                None if on_cpu < 0.9 * row.self_cpu_ns => format!(
                    "{} of self time beside its tail",
                    units::ns(on_cpu)
                ),
                None => format!("{} of self time", units::ns(on_cpu)),
            };
            evidence.push(Evidence::new("calls", calls_f, Unit::Count, None));
            if children_instr > 0.0 {
                evidence.push(Evidence::new(
                    "its children's instrumentation (the layers'), not counted",
                    children_instr,
                    Unit::Ns,
                    None,
                ));
            }
            if let Some(st) = &stall {
                evidence.push(Evidence::new(
                    "on the CPU at a time inside a poll",
                    st.ns,
                    Unit::Ns,
                    Some(s.poll_stall_ns),
                ));
            }
            let stalls = stall.as_ref().map_or(String::new(), |st| {
                format!(
                    "; {}{} at a time inside {}, so it stalls a runtime worker and every task queued on it",
                    units::ns(st.ns),
                    if st.at_least { " or more" } else { "" },
                    st.whose
                )
            });
            // Its allocations, where they are a large part of it: big
            // blocks mapped fresh each call cost their page faults here.
            let allocating = row.alloc.as_ref().and_then(|r| {
                let settings = &cx.config.classes.allocation_heavy;
                let ns = super::allocation_heavy::allocator_time_inside_ns(settings, r, row.self_cpu_ns);
                let part = stats::share(ns, row.self_cpu_ns);
                (part >= MIN_ALLOCATING_SHARE).then_some(Allocating {
                    part,
                    bytes_per_call: r.self_bytes_per_call,
                    allocs_per_call: r.self_allocs_per_call,
                    frees_per_call: stats::ratio(r.self_frees as f64, row.calls as f64),
                    huge: super::allocation_heavy::huge_blocks(settings, r.self_allocs, r.self_alloc_bytes),
                })
            });
            let allocates = allocating.map_or(String::new(), |al| {
                evidence.push(Evidence::new(
                    "its estimated allocator time, share of its self time on the CPU",
                    al.part,
                    Unit::Share,
                    Some(MIN_ALLOCATING_SHARE),
                ));
                if al.drops() {
                    format!(
                        "; the blocks it frees ({} a call, allocated in other spans: what it drops) are an estimated {} of that",
                        units::count(al.frees_per_call),
                        units::pct(al.part)
                    )
                } else {
                    format!(
                        "; its allocations ({} and {} a call) are an estimated {} of that",
                        units::bytes(al.bytes_per_call),
                        units::count(al.allocs_per_call),
                        units::pct(al.part)
                    )
                }
            });
            let logging = logging::of(cs);
            let logs = logging.map_or(String::new(), |lg| {
                evidence.push(lg.evidence());
                format!(
                    "; {} (a `fmt` layer formatting and writing each line)",
                    lg.clause()
                )
            });
            let kernel = in_the_kernel(cx, cs, on_cpu);
            let in_kernel = kernel.map_or(String::new(), |k| {
                evidence.push(Evidence::new(
                    "the kernel's share of the process's CPU while its spans were live",
                    k,
                    Unit::Share,
                    Some(MIN_KERNEL_SHARE),
                ));
                format!(
                    "; while its spans were live, {} of the process's CPU was in the kernel (system calls, page faults), and most of that CPU was its",
                    units::pct(k)
                )
            });
            let small_io = small_io::of(cs, kernel_at_most(cx, cs, on_cpu));
            let small = small_io.map_or(String::new(), |io| {
                evidence.extend(io.evidence());
                format!("; {}", io.clause(row.self_cpu_ns / cs.calls.max(1) as f64))
            });
            let tripping = trips.as_ref().map_or(String::new(), |t| {
                evidence.extend(t.evidence());
                t.clause()
            });
            let handed = HandedOut::of(cx, cs);
            let handing = handed.as_ref().map_or(String::new(), |h| {
                evidence.push(Evidence::new(
                    "polls a call over its children's calls a call",
                    h.polls_per_call / h.per_call,
                    Unit::Ratio,
                    Some(HANDED_POLLS),
                ));
                h.clause(cx)
            });
            let serial = one_at_a_time(cx, cs, row);
            let serially = serial.map_or(String::new(), |fill| {
                evidence.push(Evidence::new(
                    "its calls end to end over the run's wall time, one at a time",
                    fill,
                    Unit::Share,
                    Some(MIN_SERIAL_FILL),
                ));
                format!(
                    "; its calls ran one at a time and fill {} of the run's wall time, while the process left {} of its threads' cores idle: if the rest of the program waits for it (one task or thread serving the others: an actor, a single consumer), it bounds the run, and halving it shortens the run by up to {}",
                    units::pct(fill),
                    units::pct(1.0 - cx.totals.utilization),
                    units::pct(fill * s.recoverable)
                )
            });
            let draft = Draft {
                class: Class::HotSpot,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable: batched(trips.as_ref(), kernel)
                    .map_or(s.recoverable, |t| t.batched_share().max(s.recoverable))
                    .max(small_io.map_or(0.0, |io| io.buffered_share())),
                confidence: s.confidence * (1.0 - instr),
                summary: format!(
                    "{} of {share_of} ({what} over {}){logs}{allocates}{in_kernel}{small}{tripping}{handing}{stalls}{serially}",
                    units::pct(share),
                    units::calls(cs.calls)
                ),
                evidence,
            };
            // One call through most of the run is a loop (an actor, a
            // worker task, a batch's whole run), not start-up work: a
            // fresh service's `rates_actor`, one span polled for the whole
            // run, read "It ran once: ... `LazyLock`".
            let once = (cs.calls == 1).then_some(
                if (cs.wall_ns.sum as f64) < LOOP_FILL * cx.dump.run.duration_ns as f64 {
                    Once::StartUp
                } else {
                    Once::Loop
                },
            );
            found.push(cx.score(draft, |f| {
                advice(
                    f,
                    stall.is_some(),
                    once,
                    serial.is_some(),
                    Costs {
                        logging,
                        allocating,
                        kernel,
                        small_io,
                        trips,
                        handed,
                        library: cs.file.as_deref().and_then(crate::callsite::dependency),
                    },
                )
            }));
        }
    }

}

/// A hot spot whose calls ran one at a time (at most `blocked`'s
/// [`ONE_AT_A_TIME`] inside at once on average over its window, as it
/// reads a wait one thread's), filling at least this share of the run's
/// wall time (0.5)...
const MIN_SERIAL_FILL: f64 = 0.5;
/// ...in a process with more than one recording thread (at least this
/// many on average: 1.5; two runtime workers recording from their first
/// span to their last are 1.995)...
const MIN_RECORDING_THREADS: f64 = 1.5;
/// ...that left at least this share of their cores idle (0.25) may bound
/// the run.
const MIN_IDLE_BESIDE: f64 = 0.25;

/// The share of the run's wall time `cs`'s calls fill end to end when they
/// ran one at a time ([`ONE_AT_A_TIME`], [`MIN_SERIAL_FILL`]) beside idle
/// cores ([`MIN_IDLE_BESIDE`]): one task or thread doing the work for the
/// others. A fresh tokio program's 32 clients asked one actor task, which
/// computed 150 µs a command: the hot spot read "69.6% of the process's
/// CPU time, halving it saves 34.8% of it", where halving it made the run
/// 47% shorter and a second actor 41%.
fn one_at_a_time(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, row: &CallsiteRow) -> Option<f64> {
    serial_fill(cx, cs, row).filter(|_| 1.0 - cx.totals.utilization >= MIN_IDLE_BESIDE)
}

/// The share of the run's wall time `cs`'s calls fill end to end when they
/// ran one at a time ([`ONE_AT_A_TIME`], [`MIN_SERIAL_FILL`]) in a process
/// of several recording threads, idle cores beside or not: one task or
/// thread doing the work for the others, or a pipeline's slowest stage.
pub(crate) fn serial_fill(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, row: &CallsiteRow) -> Option<f64> {
    let busy = row.busy_total_ns as f64;
    let fill = stats::share(busy, cx.run_wall_ns);
    let window = cx.live_window_ns(cs);
    // One at a time in wall time too: one task or thread serving the
    // others opens its calls one after another. Calls that wait side by
    // side and compute a little each (a fresh axum service's round trips,
    // four requests at once, 14 µs on the CPU a call) are not its.
    (cs.calls > 1
        && cx.totals.recording_threads >= MIN_RECORDING_THREADS
        && busy / window <= ONE_AT_A_TIME
        && cs.wall_ns.sum as f64 / window <= ONE_AT_A_TIME
        && fill >= MIN_SERIAL_FILL)
        .then_some(fill.min(1.0))
}

/// Fewest timed intervals that say how a span without CPU figures spends
/// its self time...
const FEW_TIMED: u64 = 3;

/// ...when they were off the CPU more than on it, a voluntary switch in at
/// least half of them: the on-CPU share of their self time, at which the
/// rest is read. Under a sample worth the name (the row has no CPU
/// figures), but evidence that the span blocks: a fresh 55 ms pipeline's
/// `send_record`, a channel send blocking on a full channel 16 µs a call,
/// had six intervals timed, all switched out, and was read as computing,
/// the plan's first step, "32.8% of all self time in spans".
fn few_timed_off_the_cpu(cs: &perf_layer::dump::CallsiteStats) -> Option<f64> {
    let c = cs.cpu.as_ref()?;
    let timed = c.intervals.saturating_sub(c.untimed_intervals);
    let rate = stats::share(c.self_on_cpu_ns as f64, c.self_ns as f64);
    (timed >= FEW_TIMED && c.self_ns > 0 && c.voluntary_switches.saturating_mul(2) >= timed && rate < 0.5)
        .then_some(rate)
}

/// A hot spot's time on the CPU at a time inside a poll, when it runs in
/// one: its own polls (an async span), or its async caller's (see
/// [`super::async_caller`]); `None` otherwise.
fn poll_stall(cx: &Context<'_>, id: u32, row: &CallsiteRow, on_cpu: f64) -> Option<Stall> {
    let polls = cx.config.classes.blocked.async_polls_per_call;
    let per_call = on_cpu / row.calls.max(1) as f64;
    Some(in_poll(cx, id, row, polls)?.stall(row, per_call))
}

/// At least this share of the process's CPU in the kernel while a hot
/// spot's spans were live makes fewer system calls its first fix...
const MIN_KERNEL_SHARE: f64 = 0.5;

/// ...where its own time on the CPU was at least this share of the
/// process's CPU then, so the split is mostly its own.
const MIN_OWN_SHARE_FOR_KERNEL: f64 = 0.5;

/// The kernel's share of the process's CPU over `cs`'s `active` window
/// (the timeline samples whose intervals lie inside it, weighted by their
/// CPU), where the hot spot's `on_cpu` time was at least
/// [`MIN_OWN_SHARE_FOR_KERNEL`] of the process's CPU in those samples and
/// the share is at least [`MIN_KERNEL_SHARE`]. A batch's `write_results`
/// wrote a file a line at a time, 300,000 `write` calls: a hot spot whose
/// first fixes were to run it side by side and to memoize, where a
/// `BufWriter` made the run 63% shorter.
fn in_the_kernel(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, on_cpu: f64) -> Option<f64> {
    let (cpu_ns, kernel_ns, samples) = kernel_over_window(cx, cs)?;
    let share = stats::share(kernel_ns, cpu_ns);
    (samples >= 2 && on_cpu >= MIN_OWN_SHARE_FOR_KERNEL * cpu_ns && share >= MIN_KERNEL_SHARE)
        .then_some(share)
}

/// At least this share of a hot spot's self time on the CPU estimated as
/// its allocator's makes allocating less its first fix.
const MIN_ALLOCATING_SHARE: f64 = 0.25;

/// A hot spot's allocations, where they are at least
/// [`MIN_ALLOCATING_SHARE`] of its self time on the CPU.
#[derive(Debug, Clone, Copy)]
struct Allocating {
    /// Their estimated share of its self time on the CPU.
    part: f64,
    bytes_per_call: f64,
    allocs_per_call: f64,
    /// Blocks freed while it was innermost, a call.
    frees_per_call: f64,
    /// Blocks of `huge_block_bytes` on average, mapped fresh each time.
    huge: bool,
}

impl Allocating {
    /// Whether its allocator time is mostly freeing what other spans
    /// allocated: a handler dropping the `serde_json::Value` its parser
    /// built, 1,610 blocks a call and none of its own.
    fn drops(&self) -> bool {
        self.frees_per_call > 2.0 * self.allocs_per_call
    }

    /// Whether it builds a structure of many blocks and drops it before it
    /// returns, every call.
    fn builds_and_drops(&self) -> bool {
        super::allocation_heavy::builds_and_drops(self.allocs_per_call, self.bytes_per_call, self.frees_per_call)
    }
}

/// What a hot spot's CPU went to, where one thing is a large part of it:
/// each makes its own fix the first.
#[derive(Debug, Clone)]
struct Costs {
    logging: Option<Logging>,
    allocating: Option<Allocating>,
    /// The kernel's share of the process's CPU while it ran.
    kernel: Option<f64>,
    /// Its own small reads or writes, one every few microseconds of its
    /// CPU.
    small_io: Option<SmallIo>,
    /// Its calls are round trips made one after another.
    trips: Option<RoundTrips>,
    /// It hands out tiny items one at a time to other tasks.
    handed: Option<HandedOut>,
    /// It is a span a dependency makes (its crate's name): its self time
    /// is what ran in it outside the program's own spans.
    library: Option<String>,
}

/// A parent that hands each of its children's calls to a task (or a
/// pool) of its own and wakes for each: at least [`HANDED_CHILDREN`]
/// calls of one child callsite a call, that child entered once a call
/// (no awaits of its own) and at most [`HANDED_CHILD_NS`] of busy time a
/// call, and the parent polled at least [`HANDED_POLLS`] times a call
/// per child call. A child run inline adds no poll to its parent. Eight
/// tokio clients whose `handle_batch` spawned a task for each of 256
/// `process_item`s of 341 ns (polled 738 times a call) read a hot loop
/// and a hot spot with "Memoize" first; one task for the 256 made 2.07
/// times the batches.
#[derive(Debug, Clone)]
struct HandedOut {
    child: usize,
    per_call: f64,
    polls_per_call: f64,
    child_ns: f64,
}

/// See [`HandedOut`].
const HANDED_CHILDREN: f64 = 16.0;
const HANDED_CHILD_NS: f64 = 20_000.0;
const HANDED_POLLS: f64 = 0.5;

impl HandedOut {
    fn of(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats) -> Option<Self> {
        let calls = cs.calls.max(1) as f64;
        let polls_per_call = cs.intervals? as f64 / calls;
        cx.child_edges(cs.id)
            .filter_map(|e| {
                let child = cx.index_of(e.child)?;
                let c = &cx.dump.callsites[child];
                let per_call = e.calls as f64 / calls;
                let child_ns = stats::ratio(e.child_busy_ns as f64, e.calls as f64);
                let entered_once = c.intervals.is_some_and(|n| n as f64 <= 1.5 * c.calls.max(1) as f64);
                (per_call >= HANDED_CHILDREN
                    && entered_once
                    && child_ns <= HANDED_CHILD_NS
                    && polls_per_call >= HANDED_POLLS * per_call)
                    .then_some(Self { child, per_call, polls_per_call, child_ns })
            })
            .max_by(|a, b| a.per_call.total_cmp(&b.per_call))
    }

    fn clause(&self, cx: &Context<'_>) -> String {
        format!(
            "; it was polled {} times a call for its {} `{}` calls of {} each: it hands each item to a task (or a pool) of its own and wakes for each, the spawn, the wake-ups and the join costing more than the work",
            units::count(self.polls_per_call.round()),
            units::count(self.per_call.round()),
            cx.rows[self.child].location.label,
            units::ns(self.child_ns)
        )
    }

    fn fix(&self) -> String {
        format!(
            "Hand work out in chunks, not an item at a time: one task (or `spawn_blocking` call, or rayon job) for a chunk of items, or items this small ({} each) inline in the caller; a task per item pays its spawn, its wake-ups and its join each time",
            units::ns(self.child_ns)
        )
    }
}

/// A span of one call that lives at least this share of the run's wall
/// time (0.5) is a loop, not a one-off.
const LOOP_FILL: f64 = 0.5;

/// What a hot spot of one call is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Once {
    /// Short beside the run: start-up or one-off work.
    StartUp,
    /// Live through most of the run: a loop (an actor, a worker task).
    Loop,
}

/// The plan step's advice for one of its findings; `stalls`, when it
/// computes inside a poll long enough to stall a runtime worker; `once`,
/// when it ran in one call (start-up work: nothing to memoize); `serial`,
/// when its calls ran one at a time beside idle cores ([`one_at_a_time`]).
/// `costs`, what its CPU went to where one thing is a large part of it.
fn advice(f: &Finding, stalls: bool, once: Option<Once>, serial: bool, costs: Costs) -> Advice {
    let Costs {
        logging,
        allocating,
        kernel,
        small_io,
        trips,
        handed,
        library,
    } = costs;
    let name = f.subject().in_prose();
    let of = &f.share_of;
    let cost = units::pct(f.cost_share);
    let gain = f.expected_gain();
    let mut fixes = lines(&[
        match once {
            Some(Once::StartUp) => "It ran once: if it is start-up work, do it on first use (`std::sync::LazyLock`), off the start-up path (a background thread), or ahead of time (at build time, or loaded from a file written once); a one-off costs a long-running process less than its share of this run",
            Some(Once::Loop) => "It is one span through the run (a loop, an actor, a worker task): its work per item is what to shrink; a span around each item's work inside it (`#[instrument]` on the function each message or job calls) shows where that goes",
            None => "Memoize repeated work: cache results by input (a `HashMap`, or `moka`/`cached`) when it is called with the same arguments",
        },
        "Use a better algorithm or data structure: replace linear searches (`Vec::contains`, `iter().find`) with a `HashSet`/`HashMap` or a sorted `binary_search`, remove nested loops and repeated sorting",
        "Parallelise independent items with `rayon` (`par_iter`) when the work per item is independent",
        "Cut needless copies in the hot path: borrow (`&str`, `&[T]`, `Cow`) instead of `clone()`/`to_string()`",
    ]);
    if serial {
        fixes.insert(
            0,
            "Run it side by side: its calls ran one at a time beside idle cores, so if one task or thread does it for the others (an actor, a single consumer, a lock around it), give it company: several actors or consumers sharded by key, or the work split so that each caller does its own part".to_owned(),
        );
    }
    // Its own system calls, where read, say more than the process's
    // kernel share: their fix stands in for the general one.
    if let Some(k) = kernel.filter(|_| small_io.is_none()) {
        fixes.insert(
            0,
            format!(
                "Make fewer system calls: {} of the CPU was the kernel's while it ran, so buffer its I/O (`BufWriter`/`BufReader` around a file or socket written or read in small pieces), read and write in larger blocks, batch small operations (one query, one `write_all`), and reuse memory rather than mapping fresh pages; `strace -c -f` on a run counts the calls, and where they are few and large (a copy of big blocks) the kernel's work is the work itself",
                units::pct(k)
            ),
        );
    }
    if let Some(al) = allocating.filter(|al| al.drops()) {
        fixes.insert(
            0,
            format!(
                "Free less: it frees {} blocks a call that other spans allocated, an estimated {} of its CPU; a structure of many small blocks (a `serde_json::Value`, a tree, a map of `String`s) pays a free for each of its blocks when dropped, so build fewer (deserialize into a typed struct, borrow `&str` from the input, an arena such as `bumpalo` freed at once), or drop it off the hot path (hand it to a thread that drops it)",
                units::count(al.frees_per_call),
                units::pct(al.part)
            ),
        );
    } else if let Some(al) = allocating.filter(|al| al.builds_and_drops()) {
        fixes.insert(
            0,
            format!(
                "{}: {} blocks a call ({}), an estimated {} of its CPU",
                super::allocation_heavy::BUILT_AND_DROPPED,
                units::count(al.allocs_per_call),
                units::bytes(al.bytes_per_call),
                units::pct(al.part)
            ),
        );
    } else if let Some(al) = allocating {
        fixes.insert(
            0,
            format!(
                "Allocate less: reuse its buffers across calls (keep one per thread or pass one in, `clear()` it) instead of allocating {} a call; its allocations are an estimated {} of its CPU{}",
                units::bytes(al.bytes_per_call),
                units::pct(al.part),
                if al.huge {
                    ", blocks this large being mapped fresh each time, their pages faulted in and zeroed as first written"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(io) = &small_io {
        fixes.insert(0, io.fix());
    }
    if let Some(lg) = logging {
        fixes.insert(
            0,
            format!(
                "Log less inside it: its {} events a call took {} of its self time in the subscriber (formatting and writing each line); log once a call with a count or a summary instead of once an item, lower the per-item event below the level the service runs at (`debug!`, `trace!`), or filter its target out; where every line must stay, write through `tracing_appender::non_blocking` so a background thread writes them",
                units::count(lg.per_call),
                units::pct(lg.part)
            ),
        );
    }
    if let Some(krate) = &library {
        fixes.insert(
            0,
            format!(
                "{name} is a span `{krate}` makes around the code it calls: its self time is what ran inside it outside your own spans, your code that has no span of its own and `{krate}`'s work (for a web framework's request span, the routing, the extraction and the response's encoding: axum's `Json(...)` serializes after the handler returns). Put `#[instrument]` on the handler and on what builds the response to tell them apart; a large response that changes seldom can be encoded once and its bytes kept (`Bytes`)"
            ),
        );
    }
    if let Some(t) = &trips {
        fixes.insert(0, t.fix());
    }
    if let Some(h) = &handed {
        fixes.insert(0, h.fix());
    }
    if stalls {
        fixes.insert(
            1,
            format!(
                "Keep the runtime's workers free while it computes: run it in `tokio::task::spawn_blocking` or a rayon pool (awaiting the result), or `tokio::task::yield_now().await` between chunks; this moves {name}'s CPU time off the workers, it does not remove it"
            ),
        );
    }
    // The gain is buffering's where that is the most a fix gives back.
    let buffering = small_io.filter(|io| io.buffered_share() >= f.recoverable);
    let statement = match (buffering, batched(trips.as_ref(), kernel)) {
        (Some(io), _) => io.statement(&name, f.cost_share, gain, of),
        (None, Some(t)) => t.statement(&name, f.cost_share, gain, of),
        (None, None) => format!(
            "{} {name}'s self time ({cost} of {of}) saves {} of {of}",
            speedup_phrase(f.recoverable),
            units::pct(gain)
        ),
    };
    Advice {
        statement,
        fixes,
        prerequisites: vec![format!(
            "Add a criterion benchmark of {name} with a representative input, so the speed-up is measured rather than assumed"
        )],
        check: format!(
            "{name}'s self time must fall from {cost} of {of} towards {}",
            units::pct(f.cost_share - gain)
        ),
        // Logging less is a line or a filter changed, and the work stays.
        complexity: if logging.is_some() { Effort::Low } else { Effort::Medium },
        risk: if logging.is_some() { Effort::Low } else { Effort::Medium },
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::advice::Effort;
    use crate::analyze::test_dump::{MIB, MS, Span, US, about, assert_near, detect, dump, evidence, kernel_timeline};
    use perf_layer::dump::LayerTime;

    /// Of 1 s of self time, `hot` has 900 ms (90%) and `warm` 99 ms, just
    /// under the 10% it takes.
    #[test]
    fn finds_the_span_with_a_tenth_of_the_time_and_not_one_just_under() {
        let found = detect(
            Class::HotSpot,
            dump(
                2_000 * MS,
                &[
                    Span::new("hot", &[(MS, 900)]),
                    Span::new("warm", &[(MS, 99)]),
                    Span::new("cold", &[(MS, 1)]),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "hot").unwrap();
        assert_near(f.cost_share, 0.9, 1e-9);
        assert_eq!((f.recoverable, f.confidence), (0.5, 0.95));
        // 100 x 0.9 x 0.5 x 0.95, the process's CPU time unknown (weight 1).
        assert_eq!(f.score, 42.8);
        assert_eq!(
            f.advice.statement,
            "halving `hot`'s self time (90.0% of all self time in spans) saves 45.0% of all self time in spans"
        );
    }

    /// `search`, not timed on the CPU, has 1.05 s of self time in a
    /// process of 320 ms of CPU: at least two thirds of it was off the
    /// CPU, so it is no hot spot. With 2 s of CPU it is one, at its self
    /// time; with 600 ms, at what the CPU could hold.
    /// A hot spot in a span a dependency makes (tower-http's `request`,
    /// whose self time held axum's encoding of a 2,000-item `Json`
    /// response in a fresh service: encoded once, 1.76 times the
    /// requests) says first that its self time is the code in it outside
    /// the program's spans; one in the program's own file does not.
    #[test]
    fn a_dependency_s_span_says_its_self_time_is_what_runs_in_it_outside_your_spans() {
        let with = |file: &str| {
            let mut d = dump(2_000 * MS, &[Span::new("request", &[(MS, 900)])]);
            d.callsites[0].file = Some(file.to_owned());
            detect(Class::HotSpot, d)
        };
        let found = with("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-http-0.7.1/src/trace/make_span.rs");
        let f = about(&found, "request").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("`request` is a span `tower-http` makes around the code it calls"),
            "{:?}",
            f.advice.fixes
        );
        let found = with("src/server.rs");
        let f = about(&found, "request").unwrap();
        assert!(f.advice.fixes.iter().all(|x| !x.contains("is a span")), "{:?}", f.advice.fixes);
    }

    #[test]
    fn a_span_not_timed_on_the_cpu_is_a_hot_spot_only_as_far_as_the_cpu_holds() {
        let with = |cpu_ms: u64| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("search", &[(2_100 * US, 500)]),
                    Span::new("health", &[(2 * US, 1_000)]),
                ],
            );
            d.run.cpu_ns = Some(cpu_ms * MS);
            detect(Class::HotSpot, d)
        };
        assert!(about(&with(320), "search").is_none());
        let f = about(&with(2_000), "search").map(|f| f.cost_share);
        assert_near(f.unwrap(), 1_050.0 / 2_000.0, 1e-3);
        // 600 ms of 1.05 s (the share's whole is the larger of the two):
        // not all of its self time.
        let f = about(&with(600), "search").map(|f| f.cost_share);
        assert_near(f.unwrap(), 600.0 / 1_052.0, 1e-3);
    }

    /// `send`, 3,000 calls of 16 µs, has six intervals timed (under a
    /// sample worth the name: no CPU figures), each switched out and 1 µs
    /// of it on the CPU: it blocks, and is no hot spot (3 ms of the CPU's
    /// 60 ms at that rate). The same six
    /// intervals on the CPU, or switched out in two of six, tell nothing
    /// against its self time, and it is one.
    #[test]
    fn a_span_whose_few_timed_intervals_blocked_is_no_hot_spot() {
        let with = |on_cpu_ns: u64, voluntary: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("send", &[(16 * US, 3_000)]),
                    Span::new("work", &[(5 * US, 1_000)]),
                ],
            );
            d.run.cpu_ns = Some(60 * MS);
            let timed = Span::new("send", &[(16 * US, 6)]).on_cpu(on_cpu_ns, 0, voluntary, 0);
            d.callsites[0].cpu = timed.callsite(0).cpu;
            about(&detect(Class::HotSpot, d), "send").is_some()
        };
        assert!(!with(6 * US, 6));
        assert!(with(90 * US, 6));
        assert!(with(6 * US, 2));
    }

    /// `render` computes 2 ms a call (on the CPU) under `handle`, an async
    /// span polled four times a span: it runs inside `handle`'s polls for
    /// 2 ms at a time, so it stalls the worker; moving it off the runtime is
    /// its second fix. Under a `handle` entered once a span (a plain
    /// function), or at 0.5 ms a call, nothing is said of polls.
    #[test]
    fn a_hot_spot_computing_inside_an_async_caller_s_polls_stalls_a_worker() {
        let with = |render_ns: u64, intervals: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("handle", &[(render_ns + 10 * US, 100)]).on_cpu(MS, 0, 0, 0),
                    Span::new("render", &[(render_ns, 100)]).on_cpu(100 * render_ns, 0, 0, 0),
                ],
            );
            d.callsites[0].cpu.as_mut().unwrap().intervals = intervals;
            detect(Class::HotSpot, d)
        };
        let found = with(2 * MS, 400);
        let f = about(&found, "render").unwrap();
        assert!(
            f.summary
                .contains("2.00 ms at a time inside the polls of async `handle`, so it stalls a runtime worker"),
            "{}",
            f.summary
        );
        assert_near(evidence(f, "on the CPU at a time inside a poll"), 2e6, 1e-9);
        assert!(f.advice.fixes[1].contains("spawn_blocking"), "{:?}", f.advice.fixes);
        for (render_ns, intervals) in [(2 * MS, 100), (MS / 2, 400)] {
            let found = with(render_ns, intervals);
            let f = about(&found, "render").unwrap();
            assert!(!f.summary.contains("polls"), "{}", f.summary);
            assert!(
                f.advice.fixes.iter().all(|x| !x.contains("spawn_blocking")),
                "{:?}",
                f.advice.fixes
            );
        }
    }

    /// `rebuild` computes 15 ms a call, 34 calls (5% of the CPU, under the
    /// 10% a hot spot takes), on a runtime's worker threads: each call
    /// stalls a worker for 15 ms, a hot spot from 2%. The same calls on
    /// other threads, or in a dump that does not count workers, are not.
    #[test]
    fn a_span_stalling_a_worker_is_a_hot_spot_from_two_percent() {
        let with = |on_workers: Option<u64>| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 9_690)]),
                    Span::new("rebuild", &[(15 * MS, 34)]).on_cpu(34 * 15 * MS, 0, 0, 0),
                ],
            );
            d.callsites[1].runtime_worker_calls = on_workers;
            detect(Class::HotSpot, d)
        };
        let found = with(Some(34));
        let f = about(&found, "rebuild").expect("a 15 ms stall at 5% of the CPU");
        assert!(
            f.summary.contains(
                "15.0 ms at a time inside a task's poll on a runtime worker thread, so it stalls a runtime worker"
            ),
            "{}",
            f.summary
        );
        assert_near(evidence(f, "share of all self time in spans"), 0.05, 0.01);
        for elsewhere in [Some(0), None] {
            let found = with(elsewhere);
            assert!(about(&found, "rebuild").is_none(), "{found:?}");
        }
    }

    /// A fresh tokio service's `rates_actor`: one span, polled through the
    /// whole run, computing each command it receives. A loop, not
    /// start-up work: its first fix is about its work per item.
    #[test]
    fn a_hot_spot_in_one_call_through_the_run_is_a_loop() {
        let found = detect(
            Class::HotSpot,
            dump(1_000 * MS, &[Span::new("rates_actor", &[(900 * MS, 1)])]),
        );
        let f = about(&found, "rates_actor").unwrap();
        assert!(f.advice.fixes[0].starts_with("It is one span through the run"), "{:?}", f.advice.fixes);
    }

    /// A fresh request service's `warm_up`: 150 ms of CPU in one call at
    /// start, a fifth of a short run's CPU. There is no repeated work to
    /// memoize: its first fix is about start-up work, and its summary says
    /// "1 call".
    #[test]
    fn a_hot_spot_in_one_call_is_start_up_work() {
        let found = detect(
            Class::HotSpot,
            dump(
                1_000 * MS,
                &[
                    Span::new("warm_up", &[(150 * MS, 1)]),
                    Span::new("render", &[(150 * US, 3_000)]),
                ],
            ),
        );
        let f = about(&found, "warm_up").unwrap();
        assert!(f.summary.ends_with("over 1 call)"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("It ran once"), "{:?}", f.advice.fixes);
        let f = about(&found, "render").unwrap();
        assert!(f.summary.ends_with("over 3,000 calls)"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Memoize"), "{:?}", f.advice.fixes);
    }

    /// Four threads loading whole 48 MiB blobs: `load_blob`'s 15.8 ms a
    /// call on the CPU was its blocks' page faults (a reused buffer made 56
    /// times as many jobs), and its first fix was to memoize. Its
    /// allocations are said, and allocating less is first; a span that
    /// computes 10 ms beside a 1 MiB buffer a call is not told so.
    #[test]
    fn a_hot_spot_whose_cpu_is_its_allocations_says_so() {
        let with = |busy_ns: u64, bytes: u64| {
            let d = dump(
                1_000 * MS,
                &[Span::new("load_blob", &[(busy_ns, 60)]).alloc(60 * bytes, 60, 0, 0)],
            );
            detect(Class::HotSpot, d)
        };
        let blobs = with(16 * MS, 48 * MIB);
        let f = about(&blobs, "load_blob").unwrap();
        // 48 MiB at 0.3 ns a byte and 50 ns: 15.1 ms of 16.
        assert!(f.summary.contains("its allocations (48.0 MiB and 1 a call) are an estimated 94.4% of that"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Allocate less") && f.advice.fixes[0].contains("mapped fresh"), "{:?}", f.advice.fixes);
        let compute = with(10 * MS, MIB);
        let f = about(&compute, "load_blob").unwrap();
        assert!(!f.summary.contains("allocations"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Memoize"), "{:?}", f.advice.fixes);
    }

    /// `handle_batch` spawns a task for each of its 256 `process_item`
    /// calls (341 ns each, entered once) and is polled 738 times a call:
    /// it hands its items out one at a time, and chunks are its first
    /// fix. The same children run inline (one poll a call) are not.
    #[test]
    fn a_parent_polled_for_each_tiny_child_it_hands_out_is_told_to_chunk() {
        let with_polls = |polls: u64| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("handle_batch", &[(150 * US, 20_000)]).on_cpu(1_600 * MS, 0, 0, 0),
                    Span::new("process_item", &[(341, 5_120_000)]),
                ],
            );
            d.callsites[0].intervals = Some(polls * 20_000);
            d.callsites[1].intervals = Some(5_120_000);
            d.edges[0].child_busy_ns = 341 * 5_120_000;
            detect(Class::HotSpot, d)
        };
        let found = with_polls(738);
        let f = about(&found, "handle_batch").unwrap();
        assert!(
            f.summary.contains("it was polled 738 times a call for its 256 `process_item` calls of 341 ns each"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("Hand work out in chunks"), "{:?}", f.advice.fixes);
        let found = with_polls(1);
        let f = about(&found, "handle_batch").unwrap();
        assert!(!f.summary.contains("polled"), "{}", f.summary);
    }

    /// A span that builds a structure of 276 blocks and drops it in every
    /// call (a `Regex` compiled per call): its first fix says what such
    /// blocks may be, a structure to build once among them. The same
    /// blocks kept (returned to the caller) are no such thing.
    #[test]
    fn a_hot_spot_that_builds_and_drops_many_blocks_a_call_is_told_so() {
        let with_frees = |frees: u64| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("validate", &[(40 * US, 10_000)]).alloc(10_000 * 48_000, 2_760_000, 0, 0)],
            );
            d.callsites[0].alloc.as_mut().unwrap().frees = frees;
            detect(Class::HotSpot, d)
        };
        let found = with_frees(2_760_000);
        let f = about(&found, "validate").unwrap();
        assert!(
            f.advice.fixes[0].starts_with("Allocate less: each call builds and drops")
                && f.advice.fixes[0].ends_with(": 276 blocks a call (46.9 KiB), an estimated 46.5% of its CPU"),
            "{:?}",
            f.advice.fixes
        );
        let found = with_frees(0);
        let f = about(&found, "validate").unwrap();
        assert!(f.advice.fixes[0].starts_with("Allocate less"), "{:?}", f.advice.fixes);
    }

    /// `handle` drops what its child `parse` built, 1,600 small blocks a
    /// call: the frees are `handle`'s own time, and `parse` pays only the
    /// allocations' part of each pair (a fresh service parsing JSON into a
    /// `serde_json::Value`).
    #[test]
    fn a_span_that_drops_what_its_child_built_spends_its_time_freeing() {
        let mut d = dump(
            1_000 * MS,
            &[
                Span::new("handle", &[(25 * US, 1_000)]).alloc(0, 0, 0, 0),
                Span::new("parse", &[(100 * US, 1_000)]).alloc(1_000 * 16_000, 1_600_000, 0, 0),
            ],
        );
        d.callsites[0].alloc = Some(perf_layer::dump::AllocStats {
            alloc_bytes: 1_000 * 16_000,
            allocs: 1_600_000,
            freed_bytes: 1_000 * 16_000,
            frees: 1_610_000,
            ..Default::default()
        });
        d.callsites[1].alloc.as_mut().unwrap().frees = 10_000;
        let found = detect(Class::HotSpot, d);
        let handle = about(&found, "handle").unwrap();
        assert!(
            handle.summary.contains("the blocks it frees (1,600 a call, allocated in other spans: what it drops) are an estimated 100.0% of that"),
            "{}",
            handle.summary
        );
        assert!(handle.advice.fixes[0].starts_with("Free less: it frees 1,600 blocks a call"), "{:?}", handle.advice.fixes);
        // 1.6 million allocations at 30 ns, 10,000 frees at 20, 16 MB at
        // 0.1 ns a byte: 49.8 of its 100 ms (the whole pairs: 81.6 ms).
        let parse = about(&found, "parse").unwrap();
        assert_near(evidence(parse, "its estimated allocator time, share of its self time on the CPU"), 0.498, 0.002);
        assert!(parse.advice.fixes[0].starts_with("Allocate less"), "{:?}", parse.advice.fixes);
    }

    /// `load` fetches 40 items a call, one request each, one after another:
    /// `fetch` is 10 µs on the CPU and 90 µs idle a call, its calls' wall
    /// time the caller's. Batching is the first fix; the same calls made
    /// side by side, or computing 100 µs a call, are no round trips.
    #[test]
    fn calls_made_one_after_another_each_a_round_trip_are_batched_first() {
        let with = |idle: u64, busy: u64, caller_idle: u64| {
            let d = dump(
                10_000 * MS,
                &[
                    Span::new("load", &[(10 * US, 1_000)]).idle(caller_idle),
                    Span::new("fetch", &[(busy, 40_000)]).idle(idle),
                ],
            );
            detect(Class::HotSpot, d)
        };
        let found = with(90 * US, 10 * US, 3_990 * US);
        let f = about(&found, "fetch").unwrap();
        assert!(
            f.summary.contains("`load` calls it 40 times a call, one after another, each mostly waiting (90.0% of its wall time off its CPU) beside 10.0 µs of its own CPU"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("Make fewer calls: `load` makes 40 a call, one after another"), "{:?}", f.advice.fixes);
        // Side by side: the 40 calls' wall time is 40 times the caller's.
        let found = with(90 * US, 10 * US, 90 * US);
        let f = about(&found, "fetch").unwrap();
        assert!(!f.summary.contains("round trip"), "{}", f.summary);
        // 100 µs of computing a call is work per item, not a round trip's.
        let found = with(900 * US, 100 * US, 39_990 * US);
        let f = about(&found, "fetch").unwrap();
        assert!(!f.summary.contains("round trip"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Memoize"), "{:?}", f.advice.fixes);
    }


    /// The same round trips with the kernel holding 70% of the process's
    /// CPU while they ran: their CPU is system calls, paid per call, and
    /// one request for a caller's 40 removes all but one call's (at most
    /// 90%); with the kernel at 20%, their CPU may be each item's own
    /// work, which a batch keeps: halving, as for any hot spot.
    #[test]
    fn round_trips_whose_cpu_is_system_calls_give_back_most_of_it_batched() {
        let with = |kernel_percent: f64| {
            let mut d = dump(
                10_000 * MS,
                &[
                    Span::new("load", &[(10 * US, 1_000)]).idle(3_990 * US),
                    Span::new("fetch", &[(10 * US, 40_000)]).idle(90 * US),
                ],
            );
            kernel_timeline(&mut d, 1, 11, 5.0, kernel_percent, 500 * MS);
            detect(Class::HotSpot, d)
        };
        let syscalls = with(70.0);
        let f = about(&syscalls, "fetch").unwrap();
        assert_near(f.recoverable, 0.9, 1e-9);
        assert!(
            f.advice.statement.starts_with("batching the 40 calls `load` makes a call into one request removes about 90.0% of `fetch`'s self time on the CPU"),
            "{}",
            f.advice.statement
        );
        let user = with(20.0);
        let f = about(&user, "fetch").unwrap();
        assert!(f.summary.contains("one after another"), "{}", f.summary);
        assert_near(f.recoverable, 0.5, 1e-9);
        assert!(f.advice.statement.starts_with("halving"), "{}", f.advice.statement);
    }

    /// `handle` opens 50 `lookup` spans a call, each idling 15.1 µs at its
    /// edges while the subscriber's other layers work on it (an exporter):
    /// 750 ms of `handle`'s 1 s of self time is theirs (with 5 ms of the
    /// layer's own instrumentation), so its share is of the rest.
    #[test]
    fn a_parent_s_self_time_leaves_other_layers_work_on_its_children_out() {
        let with = |idle_ns: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("handle", &[(MS, 1_000)]),
                    Span::new("lookup", &[(US, 50_000)]).idle(idle_ns),
                ],
            );
            d.callsites[1].intervals = Some(50_000);
            d.overhead.loop_per_span_ns = 100.0;
            d.overhead.floor_per_span_ns = 0.0;
            detect(Class::HotSpot, d)
        };
        let f = about(&with(15_100), "handle").unwrap().clone();
        // Of all self time in spans (1.05 s): 1 s less 750 and 5 ms.
        assert_near(f.cost_share, 245.0 / 1_050.0, 1e-6);
        let f = about(&with(0), "handle").unwrap().clone();
        assert_near(f.cost_share, 995.0 / 1_050.0, 1e-6);
    }

    /// `handle` opens 50 `lookup` spans a call, calibrated at 100 ns of
    /// instrumentation each; the run's timed callbacks of `lookup` say 10
    /// µs a span (a loaded machine): 500 ms of `handle`'s 1 s of self time
    /// is theirs, so its share is of the rest. Callbacks cheaper than the
    /// calibration, or too few timed, leave the calibrated 5 ms.
    #[test]
    fn a_parent_s_self_time_leaves_its_children_s_instrumentation_out_at_the_run_s_price() {
        let with = |layer: Option<(u64, u64)>| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("handle", &[(MS, 1_000)]), Span::new("lookup", &[(US, 50_000)])],
            );
            d.callsites[1].intervals = Some(50_000);
            d.callsites[1].layer = layer.map(|(ns, callbacks)| LayerTime { ns, callbacks });
            d.overhead.loop_per_span_ns = 100.0;
            d.overhead.floor_per_span_ns = 0.0;
            d.overhead.per_clock_read_ns = 0.0;
            detect(Class::HotSpot, d)
        };
        let dearer = with(Some((500 * MS, 200_000)));
        assert_near(about(&dearer, "handle").unwrap().cost_share, 500.0 / 1_050.0, 1e-6);
        for calibrated in [None, Some((MS, 200_000)), Some((500 * MS, 1_000))] {
            let f = with(calibrated);
            assert_near(about(&f, "handle").unwrap().cost_share, 995.0 / 1_050.0, 1e-6);
        }
    }

    /// A service's `build_report` logging an event a row, 300 a call, 90%
    /// of its self time in the subscriber's handling of them: said, with
    /// logging less first and low effort. The same span whose events took a
    /// tenth of its self time (a filter dropping them early), or with too
    /// few events to read the sample of their time, is not told so.
    #[test]
    fn a_hot_spot_whose_time_is_its_events_says_so() {
        let with_events = |events: u64, events_ms: u64| {
            let mut d = dump(1_000 * MS, &[Span::new("build_report", &[(400 * US, 2_000)])]);
            d.callsites[0].events.info = events;
            d.callsites[0].events.ns = events_ms * MS;
            detect(Class::HotSpot, d)
        };
        let with = |events_ms: u64| with_events(600_000, events_ms);
        let logs = with(720);
        let f = about(&logs, "build_report").unwrap();
        assert!(f.summary.contains("its events (300 a call) are 90.0% of its self time"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Log less inside it: its 300 events a call"), "{:?}", f.advice.fixes);
        assert_eq!((f.advice.complexity, f.advice.risk), (Effort::Low, Effort::Low));
        let filtered = with(80);
        let f = about(&filtered, "build_report").unwrap();
        assert!(!f.summary.contains("events"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Memoize"), "{:?}", f.advice.fixes);
        assert_eq!(f.advice.complexity, Effort::Medium);
        // Under 256 events the sample (one in 16) is too thin to read.
        let few = with_events(200, 720);
        let f = about(&few, "build_report").unwrap();
        assert!(!f.summary.contains("events"), "{}", f.summary);
    }

    /// A batch's `write_results`, one call writing a file a line at a time:
    /// 85% of the process's CPU in the kernel while it ran, and most of
    /// that CPU its own. Fewer system calls is its first fix; not where the
    /// kernel's share is low, nor where the CPU then was mostly others'.
    #[test]
    fn a_hot_spot_whose_cpu_is_the_kernel_s_says_so() {
        let with = |kernel_percent: f64, own_ms: u64| {
            let mut d = dump(
                4_000 * MS,
                &[Span::new("write_results", &[(own_ms * MS, 1)]).on_cpu(own_ms * MS, 0, 0, 0)],
            );
            kernel_timeline(&mut d, 0, 5, 100.0, kernel_percent, 4_000 * MS);
            detect(Class::HotSpot, d)
        };
        let writes = with(85.0, 3_000);
        let f = about(&writes, "write_results").unwrap();
        assert!(f.summary.contains("85.0% of the process's CPU was in the kernel"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Make fewer system calls"), "{:?}", f.advice.fixes);
        // A phase of one call is not said to run its calls one at a time.
        assert!(!f.summary.contains("one at a time"), "{}", f.summary);
        for (kernel, own) in [(20.0, 3_000), (85.0, 1_000)] {
            let found = with(kernel, own);
            let f = about(&found, "write_results").unwrap();
            assert!(!f.summary.contains("kernel"), "{}", f.summary);
        }
    }

    /// One actor computing for two threads' clients: `handle_command`'s
    /// 1,000 calls of 900 µs fill 90% of a 1 s run, one at a time, beside
    /// a core the process left mostly idle: it may bound the run, said,
    /// with running it side by side first. The same calls four at a time
    /// (the work spread over threads), or in a program with one recording
    /// thread, are not said to.
    #[test]
    fn a_hot_spot_one_at_a_time_beside_idle_cores_may_bound_the_run() {
        let with = |busy_ns: u64, threads: u32| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("handle_command", &[(busy_ns, 1_000)]).on_cpu(busy_ns * 1_000, 0, 0, 0)],
            );
            d.run.span_threads = Some(threads);
            detect(Class::HotSpot, d)
        };
        let found = with(900 * US, 2);
        let f = about(&found, "handle_command").unwrap();
        assert!(f.summary.contains("its calls ran one at a time and fill 90.0% of the run's wall time"), "{}", f.summary);
        assert!(f.summary.contains("shortens the run by up to 45.0%"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Run it side by side"), "{:#?}", f.advice.fixes);
        let spread = with(3_600 * US, 8);
        let f = about(&spread, "handle_command").unwrap();
        assert!(!f.summary.contains("one at a time"), "{}", f.summary);
        let alone = with(900 * US, 1);
        let f = about(&alone, "handle_command").unwrap();
        assert!(!f.summary.contains("one at a time"), "{}", f.summary);
        // Calls open four at a time, each waiting 2.7 ms beside its 900 µs
        // of computing (requests side by side, not one actor's): not said.
        let mut d = dump(
            1_000 * MS,
            &[Span::new("handle_command", &[(900 * US, 1_000)])
                .idle(2_700 * US)
                .on_cpu(900 * MS, 0, 0, 0)],
        );
        d.run.span_threads = Some(2);
        let found = detect(Class::HotSpot, d);
        let f = about(&found, "handle_command").unwrap();
        assert!(!f.summary.contains("one at a time"), "{}", f.summary);
    }
}
