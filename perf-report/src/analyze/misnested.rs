//! Spans whose guards did not nest: their figures are not theirs.
//!
//! Nested guards exit in the reverse order of their enters on their
//! thread. A span whose exits did not (`misnested_exits` in the dump) was
//! entered by a guard held across an `.await` (`let _g = span.enter();`
//! then `.await`, the mistake tracing's documentation warns of): the task
//! yields with the span still entered, its worker polls other tasks inside
//! it or parks, and the guard drops on whichever thread polls the task
//! last. Its busy time then holds the worker's time between polls (read as
//! blocking), its allocations other tasks', and spans entered meanwhile on
//! that thread count as its children. No finding about such a span is
//! true, and its figures would mislead the process's (its bogus preemption
//! read as the process's threads preempting each other), so no detector
//! reads them ([`Context::callsites`] leaves them out); a note names the
//! span and the fix.

use perf_layer::dump::CallsiteStats;

use super::context::Context;
use super::finding::Finding;
use crate::units;

/// At least this many exits that did not nest...
const MIN_EXITS: u64 = 10;
/// ...and at least this share of its entered intervals (its calls in
/// dumps without them): a program that nests its guards has none, and a
/// few come from spans entered before the layer was added (a `reload`).
const MIN_SHARE: f64 = 0.01;

/// Whether `cs`'s figures are not its own: enough of its exits did not
/// nest.
pub(crate) fn misnested(cs: &CallsiteStats) -> bool {
    let intervals = cs.intervals.unwrap_or(cs.calls).max(1);
    cs.misnested_exits >= MIN_EXITS && cs.misnested_exits as f64 >= MIN_SHARE * intervals as f64
}

/// A note for each misnested callsite, most exits first. Its findings,
/// if a detector reading rows made one, are dropped.
pub(crate) fn set_aside(cx: &Context<'_>, findings: &mut Vec<Finding>) -> Vec<String> {
    let mut spans: Vec<(usize, &CallsiteStats)> = cx
        .dump
        .callsites
        .iter()
        .enumerate()
        .filter(|(_, cs)| misnested(cs))
        .collect();
    spans.sort_by_key(|(_, cs)| std::cmp::Reverse(cs.misnested_exits));
    findings.retain(|f| !spans.iter().any(|(_, cs)| f.callsite_id == Some(cs.id)));
    spans
        .into_iter()
        .map(|(i, cs)| {
            format!(
                "`{name}`: {exits} of its {intervals} exits did not nest (a span entered after it, or on another thread, exited first): a guard of `Span::enter` held across an `.await` keeps it entered while its worker polls other tasks or parks, so its time, allocations and children are other tasks' and the worker's. No finding reads its figures. Instrument the future instead: `#[instrument]` on the `async fn`, or `.instrument(span)` on the future",
                name = cx.rows[i].location.label,
                exits = units::count(cs.misnested_exits as f64),
                intervals = units::count(cs.intervals.unwrap_or(cs.calls) as f64),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, Span, dump};

    /// A span entered across an `.await`: its idle time between polls
    /// reads as blocking, a finding, until its exits say they did not nest.
    #[test]
    fn a_span_whose_exits_did_not_nest_gets_a_note_not_findings() {
        let calls = [(3 * MS, 1_000)];
        let with_misnested = |exits: u64| {
            let mut d = dump(
                4_000 * MS,
                &[Span::new("misused", &calls).on_cpu(300 * MS, 0, 1_500, 0)],
            );
            d.run.span_threads = Some(2);
            d.callsites[0].intervals = Some(3_000);
            d.callsites[0].misnested_exits = exits;
            crate::analyze::analyze(&d.into(), &crate::Config::default())
        };
        let nested = with_misnested(0);
        assert!(
            nested.findings.iter().any(|f| f.class == Class::Blocked),
            "{:?}",
            nested.findings
        );
        assert!(!nested.notes.iter().any(|n| n.contains("did not nest")));
        // A few, as a `reload` leaves: still its own figures.
        assert!(
            with_misnested(20)
                .findings
                .iter()
                .any(|f| f.class == Class::Blocked)
        );
        let misnested = with_misnested(900);
        assert!(misnested.findings.is_empty(), "{:?}", misnested.findings);
        let note = misnested
            .notes
            .iter()
            .find(|n| n.contains("did not nest"))
            .unwrap();
        assert!(
            note.starts_with("`misused`: 900 of its 3,000 exits"),
            "{note}"
        );
        assert!(note.contains("No finding reads its figures"), "{note}");
        assert!(note.contains("`.instrument(span)`"), "{note}");
    }
}
