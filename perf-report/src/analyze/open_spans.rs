//! Spans still open when the dump was written ([`CallsiteStats::open`]),
//! which no other figure counts: a span's figures are recorded when it
//! closes. Spans opened steadily through the run and never closed pile up:
//! tasks that never end (a spawned loop with no way out), requests stuck in
//! an await. A fresh service spawned a `watch_session` task in each request
//! that looped forever: the report's first line was a leak on
//! `new_session`, right about the memory, with no word of the tasks, and
//! 92.9% of the process's CPU "outside every span", as the requests' spans,
//! kept open by their tasks, never closed.
//!
//! A few spans open at the end (connections, requests in flight, a `main`
//! span) are no pile: a pile is at least [`MIN_SPANS`] spans, the oldest
//! opened in the run's first half and the rest spread after it (their mean
//! age between a quarter and three quarters of the oldest's).

use perf_layer::dump::CallsiteStats;

use super::context::Context;
use crate::units;

/// The fewest spans open at the dump that can be a pile (100).
pub(crate) const MIN_SPANS: u64 = 100;

/// Spans of one callsite open at the dump, opened steadily through the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piled {
    pub(crate) spans: u64,
    /// How long before the dump the oldest opened, and they did on average,
    /// ns.
    pub(crate) oldest_ns: f64,
    pub(crate) mean_age_ns: f64,
    /// The callsite most of them opened under, by its index in the dump.
    pub(crate) parent: Option<usize>,
}

impl Piled {
    /// `cs`'s open spans, when they pile up.
    pub(crate) fn of(cx: &Context<'_>, cs: &CallsiteStats) -> Option<Self> {
        let open = cs.open?;
        let run = cx.run_wall_ns;
        let oldest_ns = (run - open.first_opened_ns as f64).max(0.0);
        let mean_age_ns = (run - open.mean_opened_ns as f64).max(0.0);
        let spread = mean_age_ns >= 0.25 * oldest_ns && mean_age_ns <= 0.75 * oldest_ns;
        (open.spans >= MIN_SPANS && run > 0.0 && oldest_ns >= 0.5 * run && spread).then(|| Self {
            spans: open.spans,
            oldest_ns,
            mean_age_ns,
            parent: open.parent.and_then(|id| cx.index_of(id)),
        })
    }

    /// "10,351 spans still open when the dump was written, opened through
    /// the run (the oldest 2.99 s before it, on average 1.50 s)".
    pub(crate) fn clause(&self) -> String {
        format!(
            "{} spans still open when the dump was written, opened through the run (the oldest {} before it, on average {})",
            units::count(self.spans as f64),
            units::ns(self.oldest_ns),
            units::ns(self.mean_age_ns)
        )
    }
}

/// The pile of spans open under callsite `parent` (by its index) that
/// keeps its spans open: a child callsite that piled up, most of its
/// spans under it, with the child's index.
pub(crate) fn kept_open_under(cx: &Context<'_>, parent: usize) -> Option<(usize, Piled)> {
    cx.dump
        .callsites
        .iter()
        .enumerate()
        .filter_map(|(i, cs)| Some((i, Piled::of(cx, cs)?)))
        .filter(|(_, p)| p.parent == Some(parent))
        .max_by_key(|(_, p)| p.spans)
}

/// A clause for a leak whose memory callsite `parent`'s spans hold, where
/// a pile of children kept them open: "`watch_session`: 10,351 spans still
/// open ..., under it: tasks that never end hold what they were given".
pub(crate) fn tasks_clause(cx: &Context<'_>, parent: usize) -> Option<String> {
    let (child, piled) = kept_open_under(cx, parent)?;
    Some(format!(
        "; `{}` has {} under `{}`, which they keep open: tasks that never end hold what they were given",
        cx.rows[child].location.label,
        piled.clause(),
        cx.rows[parent].location.label,
    ))
}

/// Every pile of open spans, by callsite index, but those of parents a
/// pile under them keeps open (said with it).
fn piles(cx: &Context<'_>) -> Vec<(usize, Piled)> {
    let all: Vec<(usize, Piled)> = cx
        .dump
        .callsites
        .iter()
        .enumerate()
        .filter_map(|(i, cs)| Some((i, Piled::of(cx, cs)?)))
        .collect();
    all.iter()
        .filter(|(i, _)| !all.iter().any(|(_, p)| p.parent == Some(*i)))
        .copied()
        .collect()
}

/// The largest pile of open spans ([`piles`]).
pub(crate) fn largest_pile(cx: &Context<'_>) -> Option<(usize, Piled)> {
    piles(cx).into_iter().max_by_key(|(_, p)| p.spans)
}

/// The notes on piles of open spans, one per pile whose parent did not
/// pile up too (the parent's is said in its child's).
pub(crate) fn notes(cx: &Context<'_>, notes: &mut Vec<String>) {
    for (i, piled) in &piles(cx) {
        let cs = &cx.dump.callsites[*i];
        let closed = if cs.calls == 0 {
            "none closed".to_owned()
        } else {
            format!("{} closed", units::count(cs.calls as f64))
        };
        let parent = piled
            .parent
            .and_then(|p| Some((p, Piled::of(cx, &cx.dump.callsites[p])?)))
            .map_or(String::new(), |(p, parent)| {
                format!(
                    ", and keeps its parent `{}`'s {} open with it",
                    cx.rows[p].location.label,
                    units::count(parent.spans as f64)
                )
            });
        notes.push(format!(
            "`{}` has {}, {closed}{parent}: tasks, threads or requests that never end pile up (a spawned loop with no way out, a thread blocked on a channel nobody closes, an await that never completes), holding what they were given. A span's figures are recorded when it closes: these count in no figure, and their CPU reads as outside every span",
            cx.rows[*i].location.label,
            piled.clause(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use perf_layer::dump::OpenAtDump;

    use crate::analyze::test_dump::{MS, Span, US, dump};

    /// `handle` spawned `watch_session` in each of 10,000 calls over 3 s,
    /// and neither ever closed: one note names the tasks and the parent
    /// they keep open. 700 watchers open, the oldest 200 ms old (each ends
    /// after 200 ms), are no pile; nor are 8 connections open since the
    /// start, nor 1,000 all opened at the start.
    #[test]
    fn spans_opened_through_the_run_and_never_closed_pile_up() {
        let with = |open: &[(u64, u64, u64)]| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("handle", &[]),
                    Span::new("watch_session", &[(10 * US, 5)]),
                ],
            );
            for (cs, &(spans, first, mean)) in d.callsites.iter_mut().zip(open) {
                cs.open = (spans > 0).then_some(OpenAtDump {
                    spans,
                    first_opened_ns: first,
                    mean_opened_ns: mean,
                    parent: (cs.id == 1).then_some(0),
                });
            }
            let a = crate::analyze::analyze(&d.into(), &Default::default());
            a.notes
                .into_iter()
                .filter(|n| n.contains("spans still open"))
                .collect::<Vec<_>>()
        };
        let notes = with(&[(10_000, MS, 1_500 * MS), (10_000, MS, 1_500 * MS)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("`watch_session` has 10,000 spans still open when the dump was written, opened through the run (the oldest 3.00 s before it, on average 1.50 s), 5 closed, and keeps its parent `handle`'s 10,000 open with it"),
            "{}",
            notes[0]
        );
        assert!(with(&[(0, 0, 0), (700, 2_800 * MS, 2_900 * MS)]).is_empty());
        assert!(with(&[(8, 0, 0), (0, 0, 0)]).is_empty());
        assert!(with(&[(1_000, MS, 2 * MS), (0, 0, 0)]).is_empty());
        // Too few to be a pile.
        assert!(with(&[(0, 0, 0), (99, MS, 1_500 * MS)]).is_empty());
    }
}
