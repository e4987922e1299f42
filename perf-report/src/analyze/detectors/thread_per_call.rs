//! Thread per call: a callsite whose spans are each the first span of a
//! thread started for it (`std::thread::spawn` or a scoped thread per
//! request, per chunk of work), where starting and ending those threads
//! costs a share of the process's CPU that a pool, or running the work
//! inline, gives back.
//!
//! The layer counts a thread's start at the first span it opens
//! (`thread_starts` in the dump). What a start costs runs outside every
//! span (the kernel's `clone`, the new stack's mapping, the thread's exit
//! and its join): the process's CPU outside every span, shared among the
//! callsites by their threads started, and at most `max_cost_per_thread_ns`
//! a thread, so that a pool's threads (a start each, for a run) or a
//! program whose work runs outside spans for another reason is not blamed
//! on them. A fresh program splitting each request into four 20 µs chunks,
//! each on a new scoped thread, read `process_chunk` a medium hot spot
//! first, with 58.6% of the process's CPU outside every span; the chunks
//! run inline served 6.5 times the requests.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite's calls each start a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// At least this many threads started with one of its spans... (100)
    pub min_threads: u64,
    /// ...at least this share of its calls (0.5: a thread for most calls;
    /// a pool's threads start once each for many calls)...
    pub min_threads_per_call: f64,
    /// ...costing, of the process's CPU outside every span, at least this
    /// share of the process's CPU (0.05).
    pub min_share: f64,
    /// The most CPU time a thread's start and end are taken to cost, ns:
    /// the process's CPU outside every span is blamed on the threads
    /// started up to this much a thread (100,000: 100 µs; the program of
    /// this module's doc spent about 60 µs outside every span a thread on
    /// the developers' 2-core guest, nothing else running outside spans).
    pub max_cost_per_thread_ns: f64,
    /// The share of that cost a pool or inline work gives back (0.9: a
    /// pool's hand-off costs a little).
    pub recoverable: f64,
    /// How sure the finding is (0.8: the starts are counted; their cost is
    /// the CPU outside every span, which other unspanned work shares).
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_threads: 100,
            min_threads_per_call: 0.5,
            min_share: 0.05,
            max_cost_per_thread_ns: 100_000.0,
            recoverable: 0.9,
            confidence: 0.8,
        }
    }
}

pub(crate) struct ThreadPerCall;

static INFO: Info = Info {
    title: "thread per call",
    innermost: false,
    supersedes: &[],
};

impl Detector for ThreadPerCall {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.thread_per_call;
        let started: u64 = cx.dump.callsites.iter().map(|c| c.thread_starts).sum();
        if started < s.min_threads {
            return;
        }
        // Only the process's CPU tells what the starts cost.
        let Some((outside, _)) = cx.cpu_outside_spans_ns() else {
            return;
        };
        let share_of = cx.share_of(Resource::Time);
        for (_, cs, row) in cx.callsites() {
            let threads = cs.thread_starts as f64;
            let per_call = stats::share(threads, cs.calls as f64);
            if cs.thread_starts < s.min_threads || per_call < s.min_threads_per_call {
                continue;
            }
            let cost_ns =
                (outside * threads / started as f64).min(threads * s.max_cost_per_thread_ns);
            let share = cx.time_share(cost_ns).min(1.0);
            if share < s.min_share {
                continue;
            }
            let per_thread = cost_ns / threads;
            let busy_per_call = stats::ratio(cs.busy_ns.sum as f64, cs.calls as f64);
            let starter = cx
                .edges_into(cs.id)
                .max_by_key(|e| e.calls)
                .and_then(|e| cx.index_of(e.parent))
                .map(|i| cx.rows[i].location.label.clone());
            let evidence = vec![
                Evidence::new(
                    "threads started",
                    threads,
                    Unit::Count,
                    Some(s.min_threads as f64),
                ),
                Evidence::new(
                    "threads started per call",
                    per_call,
                    Unit::Share,
                    Some(s.min_threads_per_call),
                ),
                Evidence::new(
                    "CPU outside every span per thread",
                    per_thread,
                    Unit::Ns,
                    Some(s.max_cost_per_thread_ns),
                ),
                Evidence::new("busy time per call", busy_per_call, Unit::Ns, None),
                Evidence::new(
                    &format!("share of {share_of}"),
                    share,
                    Unit::Share,
                    Some(s.min_share),
                ),
            ];
            let draft = Draft {
                class: Class::ThreadPerCall,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable: s.recoverable.clamp(0.0, 1.0),
                confidence: s.confidence,
                summary: format!(
                    "{} threads started with one of its spans ({} of its calls{}): their starts and ends, about {} of CPU outside every span a thread against {} of busy time a call, add up to {} of {share_of}",
                    units::count(threads),
                    units::pct(per_call.min(1.0)),
                    starter.map_or_else(String::new, |p| format!(", under `{p}`")),
                    units::ns(per_thread),
                    units::ns(busy_per_call),
                    units::pct(share)
                ),
                evidence,
            };
            found.push(cx.score(draft, advice));
        }
    }
}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding) -> Advice {
    let name = f.subject().in_prose();
    let of = &f.share_of;
    Advice {
        statement: format!(
            "starting a thread for each of {name}'s calls costs {} of {of}: running them on threads kept for the run, or inline, gives back about {} of {of}",
            units::pct(f.cost_share),
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Run the calls on threads that live for the run: a pool (`rayon::scope` or `par_iter`, a fixed set of workers fed by a channel), `tokio::task::spawn_blocking` inside a runtime, instead of `std::thread::spawn` or `thread::scope` for each call",
            "Run small pieces inline: a piece of tens of microseconds costs less than the thread that runs it; split across threads only work of a millisecond or more",
        ]),
        prerequisites: vec![format!(
            "Check what {name}'s threads hold for their lifetime (a thread-local cache, a connection): on a pool it lives for the run"
        )],
        check: format!(
            "{name}'s `thread_starts` in the dump must fall to a pool's size, and the share of the process's CPU outside every span with it"
        ),
        complexity: Effort::Medium,
        risk: Effort::Low,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence};

    /// A run of 1 s whose process used `cpu_ms` of CPU, with `chunk`
    /// called `calls` times at 20 µs, `starts` of them on a thread of
    /// their own, beside 100 ms of `handle`.
    fn run(cpu_ms: u64, calls: u64, starts: u64) -> perf_layer::dump::Dump {
        let mut d = dump(
            1_000 * MS,
            &[
                Span::new("handle", &[(100 * MS, 1)]),
                Span::new("chunk", &[(20 * US, calls)]),
            ],
        );
        d.run.cpu_ns = Some(cpu_ms * MS);
        d.callsites[1].thread_starts = starts;
        d
    }

    /// 10,000 chunks of 20 µs (200 ms), each on a thread of its own, in a
    /// process that used 900 ms of CPU: the 600 ms outside every span are
    /// the threads' (60 µs a thread, under the 100 µs cap), two thirds of
    /// the process's CPU, and 90% of it comes back. With a thread for a
    /// chunk in ten (a pool), or 100 µs outside every span a thread to
    /// spare beyond the cap, the cap keeps the share honest.
    #[test]
    fn finds_threads_started_for_each_call_and_charges_them_the_cpu_outside_spans() {
        let found = detect(Class::ThreadPerCall, run(900, 10_000, 10_000));
        let f = about(&found, "chunk").expect("chunk");
        assert_eq!(evidence(f, "threads started"), 10_000.0);
        assert_near(evidence(f, "CPU outside every span per thread"), 60.0 * US as f64, 1.0);
        assert_near(f.cost_share, 600.0 / 900.0, 1e-6);
        assert_near(f.recoverable, 0.9, 1e-9);
        assert!(f.summary.contains("under `handle`"), "{}", f.summary);
        assert!(f.advice.fixes[0].contains("pool"), "{:?}", f.advice.fixes);
        // 2.7 s outside every span: 100 µs a thread at most is blamed.
        let f = detect(Class::ThreadPerCall, run(3_000, 10_000, 10_000));
        let f = about(&f, "chunk").expect("chunk");
        assert_near(f.cost_share, 1_000.0 / 3_000.0, 1e-6);
        // A pool: a thread for a tenth of the calls.
        assert!(detect(Class::ThreadPerCall, run(900, 10_000, 1_000)).is_empty());
    }

    /// Threads started for each call whose starts cost little beside the
    /// process's work (3 ms outside every span of 1.2 s of CPU), or whose
    /// process's CPU is not in the dump, or too few of them: no finding.
    #[test]
    fn cheap_or_unmeasured_or_few_starts_are_no_finding() {
        assert!(detect(Class::ThreadPerCall, run(303, 10_000, 10_000)).is_empty());
        let mut d = run(900, 10_000, 10_000);
        d.run.cpu_ns = None;
        assert!(detect(Class::ThreadPerCall, d).is_empty());
        assert!(detect(Class::ThreadPerCall, run(900, 99, 99)).is_empty());
    }
}
