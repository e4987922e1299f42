//! Waits behind a stalled worker: the spans that stall a runtime's
//! workers, and a waiting task whose longest waits ended as they did.

use perf_layer::dump::{CallsiteStats, LongSpans};

use crate::analyze::context::Context;
use crate::analyze::finding::Evidence;
use crate::analyze::holders;
use crate::stats;
use crate::units::{self, Unit};

/// Spans that stall a runtime's workers (computing or blocking at least
/// the hot spot's `poll_stall_ns` at a time inside a task's poll), by index, and how a
/// waiting task's longest waits ended against them ([`StallSources::of_waiter`]).
pub(super) struct WorkerStalls {
    /// `(index, stall ns at a time)`, the longest stall first.
    stalls: Vec<(usize, f64)>,
    waits: usize,
    tied: usize,
    by_chance: f64,
}

impl WorkerStalls {
    /// The longest stalls, by name, at most [`NAMED_STALLS`] of them.
    fn names(&self, cx: &Context<'_>) -> String {
        let mut names = self
            .stalls
            .iter()
            .take(NAMED_STALLS)
            .map(|&(i, ns)| format!("`{}` {}", cx.rows[i].location.label, units::ns(ns)))
            .collect::<Vec<_>>()
            .join(", ");
        if self.stalls.len() > NAMED_STALLS {
            names.push_str(&format!(" and {} more", self.stalls.len() - NAMED_STALLS));
        }
        names
    }

    /// Its waits that ended as a stall did.
    pub(super) fn tied(&self) -> usize {
        self.tied
    }

    pub(super) fn evidence(&self) -> Evidence {
        Evidence::new(
            "longest waits ended as a worker's stall did",
            stats::share(self.tied as f64, self.waits as f64),
            Unit::Share,
            None,
        )
    }

    pub(super) fn clause(&self, cx: &Context<'_>) -> String {
        format!(
            "; {} of its {} longest waits ended just after a span closed that stalled a runtime worker through them ({} at a time inside a task's poll; chance would tie {:.1}): its tasks queue for a worker those spans hold",
            self.tied,
            self.waits,
            self.names(cx),
            self.by_chance
        )
    }

    pub(super) fn fix(&self, cx: &Context<'_>) -> String {
        format!(
            "Free the runtime's workers of what stalls them ({}): run it in `tokio::task::spawn_blocking` or a rayon pool and await the result, or yield between chunks (`tokio::task::yield_now().await`); the tasks queued behind it then run on time",
            self.names(cx)
        )
    }
}

/// The spans that stall a runtime's workers: the callsites that hold a
/// worker at least the hot spot's `poll_stall_ns` at a time inside a
/// task's poll (a stall it names too; their time
/// on the CPU or blocked a call), the longest stalls first, at most
/// [`MAX_STALL_SOURCES`] (a bound for a hostile dump), and their long
/// spans read as one ([`holders::merged`]).
pub(super) struct StallSources {
    stalls: Vec<(usize, f64)>,
    held: LongSpans,
}

/// Stalling callsites named in a finding, at most.
const NAMED_STALLS: usize = 3;

/// Stalling callsites read, at most.
const MAX_STALL_SOURCES: usize = 64;

impl StallSources {
    pub(super) fn of(cx: &Context<'_>) -> Option<Self> {
        let polls = cx.config.classes.blocked.async_polls_per_call;
        let stall_ns = cx.config.classes.hot_spot.poll_stall_ns;
        let mut stalls: Vec<(usize, f64)> = cx
            .callsites()
            .filter(|(_, c, _)| c.long_spans.is_some())
            .filter_map(|(i, c, row)| {
                let busy = row.cpu.as_ref().map_or(row.busy_total_ns as f64, |cpu| {
                    cpu.self_on_cpu_ns + cpu.self_blocked_ns
                });
                let stall = super::super::in_poll(cx, c.id, row, polls)?
                    .stall(row, busy / row.calls.max(1) as f64);
                (stall.ns >= stall_ns).then_some((i, stall.ns))
            })
            .collect();
        stalls.sort_by(|a, b| b.1.total_cmp(&a.1));
        stalls.truncate(MAX_STALL_SOURCES);
        let sources: Vec<usize> = stalls.iter().map(|&(i, _)| i).collect();
        let held = holders::merged(cx, &sources)?;
        Some(Self { stalls, held })
    }

    /// Whether callsite `i` is one of the stalling spans.
    pub(super) fn stalls(&self, i: usize) -> bool {
        self.stalls.iter().any(|&(s, _)| s == i)
    }

    /// Whether the waits of callsite `cs` (at `waiter`), a task on a
    /// runtime's workers, queued behind these stalls: its longest waits
    /// ended as a holder's ties would have them ([`holders::tied_late`]).
    /// A fresh service whose background tasks computed 40 ms and 30 ms
    /// inline every 100 and 150 ms: `handle`'s wait (a 1 ms upstream) read
    /// as its own, p99 19.7 ms; moved into `spawn_blocking`, p99 2.8 ms
    /// and 14% more requests.
    pub(super) fn of_waiter(&self, cx: &Context<'_>, waiter: usize, cs: &CallsiteStats) -> Option<WorkerStalls> {
        if cs.runtime_worker_calls.is_none_or(|n| n == 0) {
            return None;
        }
        let (waits, tied, by_chance) = if self.stalls(waiter) {
            // Its own spans would tie its own waits.
            let others: Vec<usize> = self
                .stalls
                .iter()
                .map(|&(i, _)| i)
                .filter(|&i| i != waiter)
                .collect();
            holders::tied_late(cx, waiter, &holders::merged(cx, &others)?)?
        } else {
            holders::tied_late(cx, waiter, &self.held)?
        };
        Some(WorkerStalls {
            stalls: self.stalls.iter().copied().filter(|&(i, _)| i != waiter).collect(),
            waits,
            tied,
            by_chance,
        })
    }
}
