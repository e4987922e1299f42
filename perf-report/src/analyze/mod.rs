//! From a loaded dump to a per-callsite table, scored findings, the
//! session-weight view and a process summary.
//!
//! - [`context`]: what every detector reads, built once (totals, one row per
//!   callsite with its live-heap growth, the process summary);
//! - [`detectors`]: one file per finding class, registered in one list;
//! - [`finding`]: the finding, its evidence and its impact score;
//! - [`pictures`]: what the HTML report's charts draw, taken from the dump
//!   once so that no renderer reads it;
//! - `misnested`: spans whose guards did not nest (held across an
//!   `.await`), whose figures are not theirs: a note, no findings;
//! - `starvation`: waiting that a span blocking the runtime's workers
//!   caused, said as that span's symptom;
//! - `advice`: what a plan step says, written by each class's detector.
//!
//! Every finding carries an impact score 0 to 100 ([`impact_score`]); the
//! triggers of each class are its `Settings` in [`Config::classes`] and
//! `docs/report-format.md`.

use std::collections::HashSet;

use serde::Serialize;

use crate::LoadedDump;
use crate::config::Config;

pub(crate) mod advice;
pub(crate) mod busy_cores;
pub mod context;
pub mod detectors;
pub mod finding;
pub(crate) mod holders;
pub(crate) mod logging;
mod misnested;
pub(crate) mod open_spans;
pub mod pictures;
pub mod process;
pub(crate) mod round_trips;
pub mod rows;
pub(crate) mod small_io;
pub(crate) mod stage;
mod starvation;
#[cfg(test)]
pub(crate) mod test_dump;
pub mod weights;

pub use advice::Effort;
pub use context::Totals;
pub use detectors::{Class, ClassSettings};
pub use finding::{Evidence, Finding, Resource, Severity, impact_score};
pub use pictures::Pictures;
pub use process::ProcessSummary;
pub use rows::{AllocRow, CallsiteRow, CpuRow, HeapRow};
pub use weights::WeightRow;

/// Everything the analysis found in one dump.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Analysis {
    /// The program that ran.
    pub program: String,
    /// Run-wide totals.
    pub totals: Totals,
    /// Per-callsite table, by self time, largest first.
    pub callsites: Vec<CallsiteRow>,
    /// Findings, by impact score, highest first.
    pub findings: Vec<Finding>,
    /// The session-weight view, heaviest first.
    pub weights: Vec<WeightRow>,
    /// The process as the sampler saw it.
    pub process: ProcessSummary,
    /// Caveats about the data (dropped spans, untracked allocation...).
    pub notes: Vec<String>,
    /// What the HTML report draws, taken from the dump here so that no
    /// renderer reads it. Not in the JSON report.
    #[serde(skip)]
    pub pictures: Pictures,
}

impl Analysis {
    /// The most severe finding, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Analyzes a loaded dump.
///
/// Never fails: figures that cannot be computed (no timeline, allocation not
/// tracked, an empty run) leave their findings out and add a note.
///
/// ```
/// use perf_layer::dump::Dump;
/// let dump = perf_report::LoadedDump::from(Dump::empty("demo"));
/// let analysis = perf_report::analyze::analyze(&dump, &perf_report::Config::default());
/// assert!(analysis.findings.is_empty());
/// ```
pub fn analyze(input: &LoadedDump, config: &Config) -> Analysis {
    let cx = context::Context::new(input, config, config.classes.measures());
    let mut findings = Vec::new();
    for class in Class::ALL {
        class.detector().detect(&cx, &mut findings);
    }
    let misnested = misnested::set_aside(&cx, &mut findings);
    drop_superseded(&mut findings);
    keep_innermost(&cx, &mut findings);
    one_cpu_bound_process(&mut findings);
    one_queue_tail(&mut findings);
    let symptoms = starvation::attribute(&cx, &mut findings);
    // A finding that gives nothing back (all of it instrumentation, or a
    // process figure with no excess) is noise, not advice.
    findings.retain(|f| f.score >= config.scoring.min_score);
    detectors::waiting::in_series(&cx, &mut findings);
    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.class.cmp(&b.class))
            .then_with(|| a.location.cmp(&b.location))
    });
    name_groups(input.dump(), &mut findings);

    let weights = weights::session_weights(
        &cx.rows,
        &config.weights,
        cx.alloc_tracked,
        cx.totals.calls as f64,
    );
    // First: they say which figures not to read.
    let mut notes = misnested;
    notes.extend(notes_of(&cx));
    notes.extend(symptoms);
    let context::Context {
        rows,
        totals,
        process,
        ..
    } = cx;
    let by_self_time = order_by(&rows, |a, b| {
        b.self_total_ns
            .cmp(&a.self_total_ns)
            .then_with(|| a.location.cmp(&b.location))
    });
    let pictures = Pictures::of(input.dump(), &rows, &by_self_time);
    let rows = in_order(rows, by_self_time);
    Analysis {
        program: input.dump().run.program.clone(),
        totals,
        callsites: rows,
        findings,
        weights,
        process,
        notes,
        pictures,
    }
}

/// Says under which group (a route, `request{uri=/export}`) a finding's
/// span runs, when its calls come from one: the span whose busy time most
/// of its own comes from, followed up to four levels, is a group of a
/// grouped callsite. A user of a web service fixes a route.
fn name_groups(dump: &perf_layer::dump::Dump, findings: &mut [Finding]) {
    use crate::callsite::Location;
    if !dump.callsites.iter().any(|c| c.name.contains('{')) {
        return;
    }
    // The caller most of a callsite's busy time comes from, if it is most.
    let main_caller = |child: u32| -> Option<u32> {
        let mut total = 0u64;
        let mut best: Option<(u32, u64)> = None;
        for e in dump.edges.iter().filter(|e| e.child == child) {
            total = total.saturating_add(e.child_busy_ns);
            if best.is_none_or(|(_, b)| e.child_busy_ns > b) {
                best = Some((e.parent, e.child_busy_ns));
            }
        }
        best.filter(|&(_, b)| total > 0 && b as f64 >= 0.8 * total as f64)
            .map(|(p, _)| p)
    };
    for f in findings.iter_mut() {
        let Some(loc) = &f.location else { continue };
        if loc.label.contains('{') {
            continue;
        }
        let Some(cs) = dump.callsites.iter().find(|c| Location::of(c) == *loc) else {
            continue;
        };
        let mut at = cs.id;
        for _ in 0..4 {
            let Some(parent) = main_caller(at) else { break };
            let Some(p) = dump.callsites.iter().find(|c| c.id == parent) else {
                break;
            };
            if p.name.contains('{') {
                f.summary
                    .push_str(&format!("; it runs under `{}`", Location::of(p).label));
                break;
            }
            at = parent;
        }
    }
}

/// `items` in the order a stable sort by `compare` gives, moving each item
/// twice rather than the sort's many times: rows are hundreds of bytes, and
/// sorting 10,000 of them in place was mostly `memmove` (docs/benchmarks.md).
pub(crate) fn sorted_by<T>(
    items: Vec<T>,
    compare: impl FnMut(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let order = order_by(&items, compare);
    in_order(items, order)
}

/// The indices of `items` in the order a stable sort by `compare` gives.
fn order_by<T>(items: &[T], mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| compare(&items[a], &items[b]));
    order
}

/// `items` in `order` (a permutation of their indices).
fn in_order<T>(items: Vec<T>, order: Vec<usize>) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A class that is the more specific diagnosis of another, for the same
/// callsite, replaces it ([`detectors::Info::supersedes`]), and so on the
/// other callsites of a queue it heads (`Finding::queued_with`).
fn drop_superseded(findings: &mut Vec<Finding>) {
    let replaced: HashSet<(Class, u32)> = findings
        .iter()
        .flat_map(|f| {
            let general = f.class.info().supersedes;
            f.callsite_id
                .into_iter()
                .chain(f.queued_with.iter().copied())
                .flat_map(move |id| general.iter().map(move |&class| (class, id)))
        })
        .collect();
    findings.retain(|f| {
        !f.callsite_id
            .is_some_and(|id| replaced.contains(&(f.class, id)))
    });
}

/// A process whose own threads preempt each other is CPU-bound: CPU
/// contention that blames them says what process CPU saturation says (the
/// process wants more cores than it has), with the time the spans lost
/// measured where saturation assumes a share, and the same first fixes
/// (its CPU findings, more cores). Both in one plan counted the same wall
/// time twice: a batch job on four rayon threads over two cores read 45%
/// of its wall time to gain, 24.4% of it from each. Saturation goes.
fn one_cpu_bound_process(findings: &mut Vec<Finding>) {
    if findings
        .iter()
        .any(detectors::cpu_contention::blames_own_threads)
    {
        findings.retain(|f| f.class != Class::ProcessCpu);
    }
}

/// A queue's waits are its spans' slowest calls: a span read as
/// serialized whose tail is spent off the CPU (a blocking tail, costed
/// over the threads' wall time) has the queue for its tail, and the queue's
/// finding says what to fix (shard the lock, shrink what it guards) where
/// the tail's says to find what the slow calls share, which is only their
/// place in the queue. Both in one plan counted the same waits twice: a
/// fresh convoy (four threads, 20 lookups a request under one global
/// `Mutex`) read `lookup`'s tail first (32.5% of the run's wall time) and
/// its queue second (34.2%); sharding the map made 1.54 times the
/// requests. A tail on the CPU (a holder's rare long computation) is the
/// span's own and stays.
fn one_queue_tail(findings: &mut Vec<Finding>) {
    let queued: HashSet<u32> = findings
        .iter()
        .filter(|f| f.class == Class::Serialization)
        .flat_map(|f| {
            f.callsite_id
                .into_iter()
                .chain(f.queued_with.iter().copied())
        })
        .collect();
    findings.retain(|f| {
        !(f.class == Class::TailLatency
            && f.resource == Resource::WallTime
            && f.callsite_id.is_some_and(|id| queued.contains(&id)))
    });
}

/// Innermost rule ([`detectors::Info::innermost`]): a parent's busy time
/// holds its child's queue. Report the child, where the cause is; a pair
/// of mutually recursive spans keeps both. (Waiting reads each span's own
/// idle time instead, and live bytes belong to the span that made them.)
fn keep_innermost(cx: &context::Context<'_>, findings: &mut Vec<Finding>) {
    let found: HashSet<(Class, u32)> = findings
        .iter()
        .filter(|f| f.class.info().innermost)
        .filter_map(|f| Some((f.class, f.callsite_id?)))
        .collect();
    let edges: HashSet<(u32, u32)> = cx.dump.edges.iter().map(|e| (e.parent, e.child)).collect();
    let mut dropped: HashSet<(Class, u32)> = HashSet::new();
    for e in &cx.dump.edges {
        if e.parent == e.child || edges.contains(&(e.child, e.parent)) {
            continue;
        }
        for &(class, child) in &found {
            if child == e.child && found.contains(&(class, e.parent)) {
                dropped.insert((class, e.parent));
            }
        }
    }
    findings.retain(|f| {
        !f.callsite_id
            .is_some_and(|id| dropped.contains(&(f.class, id)))
    });
}

/// A callsite with at least this many calls...
const MIXED_MIN_CALLS: u64 = 100;
/// ...whose busy p99 is at least this many times its p50...
const MIXED_P99_OVER_P50: f64 = 20.0;
/// ...and whose busy time (its children's included: a `request` span's
/// time is mostly the handler spans inside it) is at least this share of
/// all self time is worth splitting by a field (`group_by`).
const MIXED_MIN_SELF_SHARE: f64 = 0.05;

fn notes_of(cx: &context::Context<'_>) -> Vec<String> {
    let dump = cx.dump;
    let mut notes = Vec::new();
    if dump.callsites_dropped_spans > 0 {
        notes.push(format!(
            "{} spans were not recorded because the callsite limit was reached; raise max_callsites",
            dump.callsites_dropped_spans
        ));
    }
    // Spans opened through the run and never closed: in no figure.
    let piled = notes.len();
    open_spans::notes(cx, &mut notes);
    let piled = notes.len() > piled;
    // A run that waited outside every span: what it waited for no span
    // shows, and the findings are about the little time inside them.
    if let Some((busy, cores, open)) = cx.idle_outside_spans() {
        notes.push(format!(
            "the process idled through most of the run: it kept {busy:.2} of its {cores} cores busy, and its spans that closed were open for at most {} of the time of the threads that recorded them (spans still open when the dump was written are not counted). What it waited for is outside every span: work arriving (clients, a queue, a timer), the network, or calls made between spans. If the run took longer than its work, a span around what those threads do between spans (a receive or accept loop, a client call) shows where that time went; the findings are about the time inside spans",
            crate::units::pct(open),
        ));
    }
    if !cx.alloc_tracked {
        notes.push(
            "allocation was not tracked: install perf-layer's counting allocator for allocation and leak findings"
                .to_owned(),
        );
    }
    if cx.process.samples == 0 {
        notes.push(
            "no process timeline: enable the sampler for RSS trends and CPU findings".to_owned(),
        );
    }
    // One callsite for very different calls (tower-http's `request` for
    // every route): say it once, for the one that matters most, and how to
    // split it.
    if dump.config.group_by.is_empty() {
        // A span that calls itself spreads over its levels (a recursive
        // walk's root call is its whole tree), which no field splits.
        let recursive = |id: u32| {
            dump.edges
                .iter()
                .any(|e| e.parent == id && e.child == id && e.calls > 0)
        };
        let mixed = cx
            .callsites()
            .filter(|(_, cs, _)| !recursive(cs.id))
            .map(|(_, _, r)| r)
            .filter(|r| {
                // Spread made of its own time off the CPU (a lock queue, a
                // disk) is one kind of call waiting more or less, which
                // the blocked and serialization findings read; no field
                // tells those calls apart.
                let waits = r.cpu.as_ref().is_some_and(|c| c.on_cpu_share < 0.5);
                !waits
                    && r.calls >= MIXED_MIN_CALLS
                    && r.busy_p99_ns as f64 >= MIXED_P99_OVER_P50 * r.busy_p50_ns.max(1) as f64
                    && r.busy_total_ns as f64
                        >= MIXED_MIN_SELF_SHARE * cx.totals.self_ns.max(1) as f64
            })
            .max_by_key(|r| r.busy_total_ns);
        if let Some(r) = mixed {
            // tower-http's default span records the `uri`, not a route.
            let how = if r.location.target.starts_with("tower_http") {
                "`PerfLayer::builder().group_by([\"uri\"]).normalize_group_paths()` gives each route its own row (ids in paths become `{}`)"
            } else {
                "`PerfLayer::builder().group_by([\"http.route\"])` gives each value its own row"
            };
            notes.push(format!(
                "`{}` mixes calls of very different lengths (p50 {}, p99 {}): if its spans carry a field that tells them apart (a route, a method, a kind), {how}",
                r.location.label,
                crate::units::ns(r.busy_p50_ns as f64),
                crate::units::ns(r.busy_p99_ns as f64),
            ));
        }
    }
    // A tail that is the children's: said once per callsite, naming the
    // descendants that hold it (the findings, if any, are theirs).
    for (i, holders) in detectors::tail_latency::children_s_tail(cx)
        .into_iter()
        .take(3)
    {
        let row = &cx.rows[i];
        let label = |j: &usize| format!("`{}`", cx.rows[*j].location.label);
        let Some((child, below)) = holders.split_first() else {
            continue;
        };
        let within: String = below
            .iter()
            .enumerate()
            .map(|(k, j)| match k {
                0 => format!("; within it, {}", label(j)),
                _ => format!(", within that {}", label(j)),
            })
            .collect();
        notes.push(format!(
            "`{}`'s slow calls (p99 {} against p50 {}) are time in its children, not its own; the child whose calls hold them is {}{within}",
            row.location.label,
            crate::units::ns(row.busy_p99_ns as f64),
            crate::units::ns(row.busy_p50_ns as f64),
            label(child),
        ));
    }
    // Live heap growing steadily under the leak finding's bars: a short
    // run of a leak, or a cache still filling; the three fastest.
    let min_live = cx.config.classes.leak_suspect.min_live_bytes as f64;
    let mut growing: Vec<(usize, detectors::leak_suspect::SmallGrowth)> = cx
        .callsites()
        .filter_map(|(i, cs, row)| {
            Some((i, detectors::leak_suspect::SmallGrowth::of(cx, cs, row)?))
        })
        .collect();
    growing.sort_by(|a, b| b.1.slope.total_cmp(&a.1.slope));
    for (i, g) in growing.into_iter().take(3) {
        notes.push(format!(
            "`{}`'s live heap grew steadily through the run, {}/s (R² {:.2}), to {} at the end: under the {} a leak finding needs, but at that rate {} an hour. A longer run tells a cache that levels off from a leak that keeps growing",
            cx.rows[i].location.label,
            crate::units::bytes(g.slope),
            g.r2,
            crate::units::bytes(g.live),
            crate::units::bytes(min_live),
            crate::units::bytes(g.slope * 3_600.0),
        ));
    }
    // CPU no span holds: threads that record none (a rayon pool) or code
    // between spans. No finding can name it, and a span that waits for it
    // reads as blocked.
    if let (Some(outside), Some(cpu)) = (cx.totals.outside_spans_cpu_ns, cx.totals.cpu_ns) {
        let (outside, cpu) = (outside as f64, cpu as f64);
        let open = if piled {
            ", or in spans still open when the dump was written (above)"
        } else {
            ""
        };
        // Threads started with a span: their starts and ends run outside
        // every span (`thread_per_call` charges them their share).
        let started: u64 = cx.dump.callsites.iter().map(|c| c.thread_starts).sum();
        let starts = match cx.callsites().max_by_key(|(_, cs, _)| cs.thread_starts) {
            Some((_, cs, row))
                if started >= cx.config.classes.thread_per_call.min_threads
                    && cs.thread_starts > 0 =>
            {
                format!(
                    ", or in starting and ending threads: {} threads started with a span, {} of them with `{}`'s. Beside the threads' starts, no finding can name it",
                    crate::units::count(started as f64),
                    crate::units::count(cs.thread_starts as f64),
                    row.location.label,
                )
            }
            _ => ". No finding can name it".to_owned(),
        };
        notes.push(format!(
            "{} of the process's CPU time ({}) ran outside every span: on threads that record none (a rayon pool, a runtime's blocking pool, a library's own threads) or in code between spans{open}{starts}; a span there shows where it goes, and a span that waits for that work (a `par_iter` from a traced thread) reads as blocked",
            crate::units::pct(outside / cpu),
            crate::units::ns(outside),
        ));
    }
    // A span that blocks enough and is no blocked finding: why.
    let stages = stage::Stages::of(cx);
    for (_, cs, row) in cx.callsites() {
        let (Some(b), Some(c)) = (detectors::blocked::blocking(cx, cs, row), &row.cpu) else {
            continue;
        };
        let Some(why) = detectors::blocked::unfound(cx, &stages, cs, row, &b) else {
            continue;
        };
        let (name, blocked, share) = (
            &row.location.label,
            crate::units::pct(c.self_blocked_share),
            crate::units::pct(b.share),
        );
        let whole = b.whole_name;
        notes.push(match why {
            detectors::blocked::Unfound::WaitsOnAWait { other, share: beside } => format!(
                "`{name}` is blocked {blocked} of its self time ({share} of {whole}), waiting for another thread (a channel, a lock, a join) while the rest of the process idled; through {} of it another thread waited in `{}` (a sleep, a read; {} calls to its {}): its wait is that one's, counted there, so it is no blocked finding",
                crate::units::pct(beside),
                cx.rows[other].location.label,
                crate::units::count(cx.dump.callsites[other].calls as f64),
                crate::units::count(cs.calls as f64),
            ),
            detectors::blocked::Unfound::Pause { asleep } => format!(
                "`{name}` slept through {} of its watched waits in calls of {} at p50 ({share} of {whole}), and nothing was seen waiting for it: a pause of its own thread (a heartbeat, a periodic flush), which costs nothing, so it is no blocked finding. If the run waits for it (a main thread's pause between batches), its sleeps lengthen the run",
                crate::units::pct(asleep),
                crate::units::ns(cs.busy_ns.p50 as f64),
            ),
            detectors::blocked::Unfound::IdlePool(pool) => format!(
                "`{name}`: {:.1} threads inside at once and none moving, blocked in a futex (waiting for another thread) {} while the rest of the process kept {:.2} of a core busy{}: {}waiting for work that comes from outside every span (requests, a producer that sleeps or reads). Its waits ({share} of {whole}) are idle capacity, not a cost, so it is no blocked finding; if the work comes too slowly (a producer reading a slow disk), time what feeds it with a span",
                pool.inside,
                if pool.over_the_run {
                    format!("at {} of the watch's glances", crate::units::pct(pool.in_futex))
                } else {
                    format!("through {} of their watched waits", crate::units::pct(pool.in_futex))
                },
                pool.others_cores,
                if pool.over_the_run { " over the run (its waits too short for the watch to time)" } else { "" },
                if pool.inside >= cx.config.classes.serialization.min_concurrency {
                    "a pool larger than its supply keeps busy, "
                } else {
                    ""
                },
            ),
            detectors::blocked::Unfound::PacedByAStage { stage, fill } => format!(
                "`{name}` is blocked {blocked} of its self time ({share} of {whole}), waiting for another thread (a channel, a lock), while `{}` computed one at a time, back to back, through {} of the run's wall time: the slowest stage of a pipeline paces the threads that feed it and those it feeds, so this wait is that stage's, counted in its hot spot, and no blocked finding",
                cx.rows[stage].location.label,
                crate::units::pct(fill),
            ),
        });
    }
    // A loop something else paces, beside the work, or a synchronous span
    // open past its work: why it is no waiting finding.
    let waiting = &cx.config.classes.waiting;
    let own_idle = detectors::waiting::OwnIdle::of(cx, waiting);
    for (i, cs, row) in cx.callsites() {
        if detectors::waiting::lingers(cx, cs, own_idle.ns(i), waiting) {
            notes.push(format!(
                "`{}` is open {} while not entered ({} of its wall time), each of its spans entered once and none on an async runtime: time before its work began (a job queued for a thread) or after it ended (a span kept alive past its work: a `while let`'s scrutinee lives through the loop's body, a span bound to a variable outlives its `in_scope`), its thread doing other work meanwhile. No waiting finding: close the span where its work ends to make its wall time its own",
                row.location.label,
                crate::units::ns(own_idle.ns(i)),
                crate::units::pct(crate::stats::share(own_idle.ns(i), cs.wall_ns.sum as f64)),
            ));
            continue;
        }
        if !detectors::waiting::idle_enough(cx, cs, own_idle.ns(i), waiting) {
            continue;
        }
        if let Some(d) = detectors::waiting::Detached::of(cx, cs) {
            let parent = &cx.rows[d.parent].location.label;
            notes.push(format!(
                "`{}` outlived the span it was opened in, `{parent}`, in {} of its {} calls: a task spawned inside it and not awaited (its span the parent, or `.in_current_span()`), which kept `{parent}`'s span open until it ended. Its waits ({} of its wall time idle) hold back nothing that awaits it, so it is no waiting finding; `{parent}`'s wall time ends at its own task's last exit. Where `{parent}`'s span was handed to that task after its spawner entered it (`in_scope`, then `.instrument`), it is the task's work and these waits are its: enter it first in the task",
                row.location.label,
                crate::units::count(d.outlived as f64),
                crate::units::count(cs.calls as f64),
                crate::units::pct(crate::stats::share(own_idle.ns(i), cs.wall_ns.sum as f64)),
            ));
            continue;
        }
        let own = crate::stats::share(own_idle.ns(i), cs.wall_ns.sum as f64);
        if let Some(p) = detectors::waiting::paces_a_loop(cx, cs, own, waiting) {
            let shape = if p.drives {
                format!(
                    "is open through the run, {} a call, and waits nearly all of it",
                    crate::units::ns(p.call_ns)
                )
            } else if p.periodic {
                format!(
                    "waits about {} a call, its calls spaced by gaps in which the process did little outside every span (a periodic task sleeping between them)",
                    crate::units::ns(p.call_ns)
                )
            } else {
                format!(
                    "waits about {} a call, one call after another",
                    crate::units::ns(p.call_ns)
                )
            };
            let unless = if p.periodic {
                "; its wait shortens the run only if the rest waits for it (a lock it holds across the wait: then their waits are found) or the run ends with its loop (a fixed number of rounds, where the rest stops when it is done)"
            } else {
                ""
            };
            let beside = match &p.lane {
                Some((root, at_once)) => format!(
                    "while `{root}` was open beside it through its window ({at_once:.1} at a time)"
                ),
                None => format!(
                    "while other spans did {} of work beside it",
                    crate::units::ns(p.beside_ns)
                ),
            };
            notes.push(format!(
                "`{}` {shape}, {beside}: something else paces it, a timer or interval (a flush, a heartbeat, a producer's tick) or work it waits for elsewhere (a blocking pool, a channel's other end), whose own spans show that work, so it is no waiting finding{unless}",
                row.location.label,
            ));
        }
    }
    // A callsite shown as its groups: its totals, once, for the three with
    // the most self time.
    let mut grouped: Vec<&crate::loaded::GroupedCallsite> = cx.grouped.iter().collect();
    grouped.sort_by_key(|g| std::cmp::Reverse(g.self_ns));
    for g in grouped.iter().take(3) {
        let fields: Vec<String> = g.fields.iter().map(|f| format!("`{f}`")).collect();
        // Allocations are tagged by callsite: which group keeps what is
        // not known, only which allocated.
        let heap = match &g.heap {
            Some(h) if h.live_bytes > 0 => format!(
                "; its live heap ({} at the end) is one for all of them, shown on `{}{{{}}}`, which allocated {} of its bytes",
                crate::units::bytes(h.live_bytes as f64),
                g.name,
                h.shown_on,
                crate::units::pct(h.alloc_share),
            ),
            _ => String::new(),
        };
        notes.push(format!(
            "`{}` is shown as {} rows, one per {}; together they are {} calls, busy p50 {}, p99 {}, and {} of self time ({} of all self time){heap}",
            g.name,
            g.groups,
            fields.join(" and "),
            crate::units::count(g.calls as f64),
            crate::units::ns(g.busy_p50_ns as f64),
            crate::units::ns(g.busy_p99_ns as f64),
            crate::units::ns(g.self_ns as f64),
            crate::units::pct(g.self_ns as f64 / cx.totals.self_ns.max(1) as f64),
        ));
    }
    if cx.totals.overhead_share >= 0.05 {
        notes.push(overhead_note(cx));
    }
    notes
}

/// What the layer's own cost was, of which whole: the layer divides its
/// estimate by the process's CPU time when it could read it, else by the
/// wall time of the threads that recorded spans (`Overhead::fraction_of_run`).
fn overhead_note(cx: &context::Context<'_>) -> String {
    let o = &cx.dump.overhead;
    let share = cx.totals.overhead_share;
    let of_cpu = cx.dump.run.cpu_ns.is_some_and(|cpu| {
        let cpu_share = o.estimated_ns as f64 / cpu.max(1) as f64;
        (cpu_share.min(1.0) - share).abs() <= share * 0.01
    });
    let whole = if of_cpu {
        "of the process's CPU time (about what a CPU-bound program loses in throughput; one with idle cores loses less)"
    } else {
        "of the wall time of the threads that recorded spans"
    };
    let mut note = format!(
        "perf-layer itself took an estimated {} {whole}: treat shares of very cheap spans with care",
        crate::units::pct(share)
    );
    if let Some(most) = overhead_by_callsite(cx) {
        note.push_str(&most);
    }
    note
}

/// Where the layer's cost went: by the callbacks it timed as they ran, split
/// by the callsite each served, where the dump has them for every callsite
/// (and enough samples); else by its calibrated costs of a span, of each
/// entered interval past a span's first (an async span's polls) and of a
/// timed one, which leave out events and what crossing workers costs. The
/// callsites that took at least a tenth of it, most first (at most three),
/// as the rest of the note; `None` when none did or the figures are
/// unknown.
fn overhead_by_callsite(cx: &context::Context<'_>) -> Option<String> {
    let o = &cx.dump.overhead;
    let measured = o.measured_callbacks_ns().is_some()
        && cx
            .dump
            .callsites
            .iter()
            .all(|cs| cs.calls == 0 || cs.layer.is_some());
    let per_timed = if o.timed_intervals > 0 {
        let called = o.called_intervals.min(o.timed_intervals);
        ((o.timed_intervals - called) as f64 * o.per_timed_interval_ns
            + called as f64 * o.per_called_interval_ns)
            / o.timed_intervals as f64
    } else {
        0.0
    };
    if !measured && o.per_span_ns <= 0.0 {
        return None;
    }
    // (cost, label, spans, intervals)
    let mut costs: Vec<(f64, &str, u64, u64)> = cx
        .callsites()
        .map(|(_, cs, row)| {
            let intervals = cs.intervals.unwrap_or(cs.calls);
            let cost = match cs.layer {
                // Less each sample's own clock read, as the estimate does.
                Some(l) if measured => {
                    (l.ns as f64 - o.per_clock_read_ns * l.callbacks as f64).max(0.0)
                }
                _ => {
                    let timed = cs
                        .cpu
                        .as_ref()
                        .map_or(0, |c| c.intervals.saturating_sub(c.untimed_intervals));
                    cs.calls as f64 * o.per_span_ns
                        + intervals.saturating_sub(cs.calls) as f64 * o.per_interval_ns
                        + timed as f64 * per_timed
                }
            };
            (cost, row.location.label.as_str(), cs.calls, intervals)
        })
        .collect();
    let total: f64 = costs.iter().map(|c| c.0).sum();
    // Absurd calibrations (a hostile or broken dump) name nothing.
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let named: Vec<String> = costs
        .iter()
        .take(3)
        .take_while(|c| c.0 >= 0.1 * total)
        .map(|&(cost, label, spans, intervals)| {
            let polls = if spans > 0 && intervals >= spans.saturating_mul(2) {
                format!(", {:.0} polls each", intervals as f64 / spans as f64)
            } else if spans < 100 && intervals > spans.max(1).saturating_mul(100) {
                format!(", {} polls", crate::units::count(intervals as f64))
            } else {
                String::new()
            };
            format!(
                "`{label}` ({} of it: {} spans{polls})",
                crate::units::pct(cost / total),
                crate::units::count(spans as f64),
            )
        })
        .collect();
    if named.is_empty() {
        return None;
    }
    let by = if measured {
        "By its callbacks as it timed them"
    } else {
        "By its cost per span, per poll and per CPU-time read"
    };
    Some(format!(
        ". {by}, most went to measuring {}; leaving a span out of the layer (a per-layer filter, `layer.with_filter(...)`) removes its part",
        named.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::analyze;
    use super::test_dump::{MS, Span, US, dump};
    use crate::config::Config;

    /// The layer's own cost names its whole: the process's CPU time when
    /// the layer divided by it, else the recording threads' wall time.
    #[test]
    fn the_layers_own_cost_names_its_whole() {
        let note_with = |cpu_ns: Option<u64>, estimated_ns: u64, share: f64| {
            let mut d = dump(2_000 * MS, &[Span::new("work", &[(500 * US, 1_000)])]);
            d.run.cpu_ns = cpu_ns;
            d.overhead.estimated_ns = estimated_ns;
            d.overhead.fraction_of_run = share;
            analyze(&d.into(), &Config::default())
                .notes
                .into_iter()
                .find(|n| n.starts_with("perf-layer itself took"))
        };
        // 80 ms of 1 s of CPU.
        let of_cpu = note_with(Some(1_000 * MS), 80 * MS, 0.08).unwrap();
        assert!(
            of_cpu.contains("8.0% of the process's CPU time"),
            "{of_cpu}"
        );
        // No CPU time read: 160 ms of the 2 s wall time of its one thread.
        let of_wall = note_with(None, 160 * MS, 0.08).unwrap();
        assert!(
            of_wall.contains("8.0% of the wall time of the threads that recorded spans"),
            "{of_wall}"
        );
        // A CPU time too short for the layer to divide by (it fell back).
        let short = note_with(Some(100 * MS), 160 * MS, 0.08).unwrap();
        assert!(short.contains("of the wall time"), "{short}");
        // Under 5%: no note.
        assert_eq!(note_with(Some(1_000 * MS), 10 * MS, 0.01), None);
    }

    /// A server whose clients waited on the network (Nagle's algorithm
    /// against delayed acknowledgements, 43 ms a request): its four
    /// workers' `handle` spans were open under 1% of their time, the
    /// process at 0.06 of its 2 cores.
    #[test]
    fn a_run_idle_outside_every_span_is_said() {
        let with = |calls: u64, cpu_ms: u64| {
            let mut d = dump(
                4_000 * MS,
                &[
                    Span::new("handle", &[(100 * US, calls)]),
                    Span::new("render", &[(20 * US, calls)]),
                ],
            );
            d.run.cpu_ns = Some(cpu_ms * MS);
            d.run.cores = Some(2);
            d.run.span_threads_active_ns = Some(16_000 * MS);
            analyze(&d.into(), &Config::default())
                .notes
                .into_iter()
                .find(|n| n.starts_with("the process idled"))
        };
        // 500 calls of 100 µs, 50 ms open of 16 s (the child not counted).
        let idle = with(500, 120).expect("a note");
        assert!(
            idle.contains("0.03 of its 2 cores busy") && idle.contains("at most 0.3% of the time"),
            "{idle}"
        );
        // Open 62% of the threads' time (a service waiting inside them).
        assert_eq!(with(100_000, 120), None);
        // The cores kept busy (0.75 of 2).
        assert_eq!(with(500, 3_000), None);
    }

    /// A dump of `spans` whose layer took 8% of its 1 s of CPU, at a
    /// calibrated 200 ns a span and 50 ns a poll.
    fn costly(spans: &[Span]) -> perf_layer::dump::Dump {
        let mut d = dump(2_000 * MS, spans);
        d.run.cpu_ns = Some(1_000 * MS);
        d.overhead.estimated_ns = 80 * MS;
        d.overhead.fraction_of_run = 0.08;
        d.overhead.per_span_ns = 200.0;
        d.overhead.per_interval_ns = 50.0;
        d
    }

    /// The note on the layer's own cost.
    fn layer_note(d: perf_layer::dump::Dump) -> String {
        analyze(&d.into(), &Config::default())
            .notes
            .into_iter()
            .find(|n| n.starts_with("perf-layer itself took"))
            .unwrap()
    }

    /// The note on the layer's own cost names the callsites it went to, by
    /// the calibrated cost of a span, of each poll past its first and of a
    /// CPU-time read.
    #[test]
    fn the_layers_own_cost_is_shared_out_over_its_callsites() {
        let mut d = costly(&[
            Span::new("poller", &[(500 * US, 1_000)]),
            Span::new("leaf", &[(400 * US, 1_000)]),
            Span::new("rare", &[(300 * US, 10)]),
        ]);
        for (cs, intervals) in d.callsites.iter_mut().zip([10_000, 1_000, 10]) {
            cs.intervals = Some(intervals);
        }
        let note = layer_note(d);
        // poller: 1,000 × 200 + 9,000 × 50 = 650 µs; leaf: 200 µs; rare:
        // 2 µs, under a tenth of the whole: not named.
        assert!(
            note.contains("`poller` (76.3% of it: 1,000 spans, 10 polls each), `leaf` (23.5% of it: 1,000 spans)"),
            "{note}"
        );
        assert!(!note.contains("rare"), "{note}");
    }

    /// Where the dump splits the callbacks the layer timed by callsite, the
    /// note's shares are those, less each sample's own clock read, not the
    /// calibrated model's.
    #[test]
    fn the_layers_own_cost_is_shared_out_as_it_was_timed() {
        use perf_layer::dump::LayerTime;
        let mut d = costly(&[
            Span::new("poller", &[(500 * US, 1_000)]),
            Span::new("leaf", &[(400 * US, 1_000)]),
        ]);
        (d.overhead.callbacks_ns, d.overhead.callbacks) = (1_000_000, 10_000);
        (d.overhead.callbacks_sampled, d.overhead.per_clock_read_ns) = (160, 10.0);
        // The model would say poller 76%; as timed, leaf took more: 700 µs
        // less 2,000 clock reads of 10 ns against 300 µs less 20 µs.
        let timed = [(300_000, 2_000), (700_000, 2_000)];
        for (cs, (ns, callbacks)) in d.callsites.iter_mut().zip(timed) {
            cs.intervals = Some(if cs.name == "poller" { 10_000 } else { 1_000 });
            cs.layer = Some(LayerTime { ns, callbacks });
        }
        let note = layer_note(d);
        assert!(
            note.contains("By its callbacks as it timed them, most went to measuring `leaf` (70.8% of it: 1,000 spans), `poller` (29.2% of it: 1,000 spans, 10 polls each)"),
            "{note}"
        );
    }

    /// `lookup`'s 200 calls take 50 µs, a tenth of them 10 ms: a spread
    /// that a field may tell apart, said in a note, while they compute.
    /// Off the CPU four fifths of the time, the spread is their waiting
    /// (a lock queue, a disk), one kind of call: no note.
    #[test]
    fn a_spread_of_waiting_is_not_mixed_calls() {
        let with_on_cpu = |on_cpu_ns: u64| {
            let d = dump(
                2_000 * MS,
                &[Span::new("lookup", &[(50 * US, 180), (10 * MS, 20)])
                    .on_cpu(on_cpu_ns, 0, 200, 0)],
            );
            analyze(&d.into(), &Config::default()).notes
        };
        let busy_ns = 180 * 50 * US + 20 * 10 * MS;
        let computing = with_on_cpu(busy_ns * 9 / 10);
        assert!(
            computing
                .iter()
                .any(|n| n.starts_with("`lookup` mixes calls")),
            "{computing:?}"
        );
        let waiting = with_on_cpu(busy_ns / 5);
        assert!(
            !waiting.iter().any(|n| n.contains("mixes calls")),
            "{waiting:?}"
        );
    }

    /// `tick` wakes every 50 ms for 2 µs, twenty calls back to back over
    /// the 1 s run, while `work` computes 500 ms beside it: a timer pacing
    /// a loop, said in a note and not found. The same ticks with nothing
    /// else working (a loop of fetches the program waits for), or with
    /// gaps between them the work fits in (it ran between the waits), are
    /// a waiting finding.
    #[test]
    fn a_timer_pacing_a_loop_beside_the_work_is_a_note_not_a_finding() {
        use crate::analyze::Class;
        let run = |tick_wall: u64, work: bool| {
            let mut spans = vec![Span::new("tick", &[(2 * US, 20)]).idle(tick_wall - 2 * US)];
            if work {
                spans.push(Span::new("work", &[(500 * US, 1_000)]));
            }
            let mut d = dump(1_000 * MS, &spans);
            d.callsites[0].active = Some(perf_layer::dump::ActiveWindow {
                first_open_ns: 0,
                last_close_ns: 1_000 * MS,
            });
            let report = analyze(&d.into(), &Config::default());
            let found = report
                .findings
                .iter()
                .any(|f| f.class == Class::Waiting && f.subject().in_prose() == "`tick`");
            let noted = report.notes.iter().any(|n| {
                n.starts_with("`tick` waits about 50.1 ms a call")
                    && n.contains("500 ms of work beside it")
                    // The shape is a timer's or a hand-off's: both said.
                    && n.contains("a timer or interval")
                    && n.contains("work it waits for elsewhere")
            });
            (found, noted)
        };
        assert_eq!(run(50 * MS, true), (false, true));
        assert_eq!(run(50 * MS, false), (true, false));
        assert_eq!(run(25 * MS, true), (true, false));
    }

    /// `score` takes 1 s of which 100 ms on the CPU, in a run whose process
    /// used 1.2 s of CPU: 1.1 s ran outside every span (a pool that records
    /// none), said in a note. With the process at 150 ms, nothing is.
    #[test]
    fn cpu_outside_every_span_is_said() {
        let with = |cpu_ms: u64| {
            let mut d = dump(
                2_000 * MS,
                &[Span::new("score", &[(10 * MS, 100)]).on_cpu(100 * MS, 0, 100, 0)],
            );
            d.run.cpu_ns = Some(cpu_ms * MS);
            analyze(&d.into(), &Config::default()).notes
        };
        let notes = with(1_200);
        assert!(
            notes.iter().any(|n| n
                .starts_with("91.7% of the process's CPU time (1.10 s) ran outside every span")),
            "{notes:?}"
        );
        let notes = with(150);
        assert!(
            !notes.iter().any(|n| n.contains("outside every span")),
            "{notes:?}"
        );
    }
}
