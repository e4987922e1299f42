//! Causes over symptoms in async code: a task that is ready is not polled
//! while its runtime's workers are blocked, so a span that waits in the
//! phase in which another span blocked the workers is that blocker's
//! symptom, not a finding of its own.
//!
//! First, an async span with a `blocked` finding does not also get a
//! `waiting` one: between its polls it queues behind the tasks its own
//! blocking stalled (`examples/pipeline.rs`'s `audit`), and the note says
//! so. Then, a `blocked` finding that stalls a runtime worker (an async
//! span blocking inside its polls, or a plain function blocking inside its
//! async caller's, or on a runtime's worker) that held at least [`MIN_THREADS_HELD`] of
//! the threads that record spans on average over the part of the run its
//! spans were live in (its blocked time over that window) supersedes every
//! `waiting` finding whose spans lived mostly ([`MIN_OVERLAP`]) inside the
//! same window. The waiting span is named in a note, with its blocker.
//! With fewer held, a ready task finds a free worker most of the time and
//! its waiting is its own (examples/pipeline.rs: `audit` holds 0.8 of 2
//! workers, and `fetch_order` really awaits its database). Without the
//! dump's `active` windows (older dumps, merges of several processes),
//! this second rule does nothing. A fresh current-thread service (2,000
//! requests, 50 at a time, awaiting a 5 ms timer; one in ten calling a
//! plain `audit` that sleeps 2 ms) read `fetch` waiting first, "shortens
//! the run by 46.5%", its tasks queued behind `audit`, which held the
//! runtime's thread 59% of the run: only async blockers counted then.

use perf_layer::dump::ActiveWindow;

use super::context::Context;
use super::detectors::{Class, in_poll, polls_per_span};
use super::finding::Finding;
use crate::units;

/// The share of the recording threads a blocker held on average over its
/// window, at least.
const MIN_THREADS_HELD: f64 = 0.5;
/// The share of a waiting span's window inside the blocker's, at least.
const MIN_OVERLAP: f64 = 0.5;

/// Drops the waiting findings that are a blocker's symptom; returns a note
/// for each.
pub(crate) fn attribute(cx: &Context<'_>, findings: &mut Vec<Finding>) -> Vec<String> {
    let polls = cx.config.classes.blocked.async_polls_per_call;
    let mut notes = own_blocking(cx, findings, polls);
    let window = |id: u32| -> Option<(usize, ActiveWindow)> {
        let i = cx.index_of(id)?;
        Some((i, cx.dump.callsites[i].active?))
    };
    // Each async blocker: its index, window and workers held on average.
    let blockers: Vec<(usize, ActiveWindow, f64)> = findings
        .iter()
        .filter(|f| f.class == Class::Blocked)
        .filter_map(|f| window(f.callsite_id?))
        .filter_map(|(i, w)| {
            let row = &cx.rows[i];
            let c = row.cpu.as_ref()?;
            let held = c.self_blocked_ns / w.len_ns().max(1) as f64;
            let share = held / cx.totals.recording_threads.max(1.0);
            let stalls = in_poll(cx, cx.dump.callsites[i].id, row, polls).is_some();
            (stalls && share >= MIN_THREADS_HELD).then_some((i, w, held))
        })
        .collect();
    if blockers.is_empty() {
        return notes;
    }
    findings.retain(|f| {
        if f.class != Class::Waiting {
            return true;
        }
        let Some((i, w)) = f.callsite_id.and_then(window) else {
            return true;
        };
        let cause = blockers
            .iter()
            .filter(|&&(b, bw, _)| b != i && overlap(&w, &bw) >= MIN_OVERLAP * w.len_ns() as f64)
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let Some(&(b, bw, held)) = cause else {
            return true;
        };
        notes.push(format!(
            "`{}` waited {} in all while `{}` blocked the runtime's workers in the same part of the run ({:.1} workers held on average over its {}): a ready task is not polled while its workers are blocked, so that waiting is a symptom; fix `{}` first, then look again",
            cx.rows[i].location.label,
            units::ns(cx.dump.callsites[i].idle_ns.sum as f64),
            cx.rows[b].location.label,
            held,
            units::ns(bw.len_ns() as f64),
            cx.rows[b].location.label,
        ));
        false
    });
    notes
}

/// An async span that blocks inside its polls and also waits between them
/// queues behind the tasks its blocking stalled: its waiting goes with its
/// blocking, which has the finding. Drops such waiting findings; a note for
/// each.
fn own_blocking(cx: &Context<'_>, findings: &mut Vec<Finding>, polls: f64) -> Vec<String> {
    let blockers: Vec<u32> = findings
        .iter()
        .filter(|f| f.class == Class::Blocked)
        .filter_map(|f| f.callsite_id)
        .filter(|&id| {
            cx.index_of(id)
                .and_then(|i| polls_per_span(cx, i))
                .is_some_and(|n| n > polls)
        })
        .collect();
    let mut notes = Vec::new();
    findings.retain(|f| {
        let Some(id) = f.callsite_id.filter(|id| f.class == Class::Waiting && blockers.contains(id))
        else {
            return true;
        };
        let Some(i) = cx.index_of(id) else { return true };
        notes.push(format!(
            "`{}` also waits between its polls ({} idle in all): a task that blocks its worker queues behind the tasks its blocking stalled, so that waiting goes with the blocking; fix the blocking first",
            cx.rows[i].location.label,
            units::ns(cx.dump.callsites[i].idle_ns.sum as f64),
        ));
        false
    });
    notes
}

/// The length of the part two windows share, ns.
fn overlap(a: &ActiveWindow, b: &ActiveWindow) -> f64 {
    let start = a.first_open_ns.max(b.first_open_ns);
    let end = a.last_close_ns.min(b.last_close_ns);
    end.saturating_sub(start) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_the_shared_part_or_nothing() {
        let w = |a, b| ActiveWindow {
            first_open_ns: a,
            last_close_ns: b,
        };
        assert_eq!(overlap(&w(0, 10), &w(5, 20)), 5.0);
        assert_eq!(overlap(&w(0, 10), &w(10, 20)), 0.0);
        assert_eq!(overlap(&w(30, 40), &w(0, 20)), 0.0);
        assert_eq!(overlap(&w(2, 3), &w(0, 20)), 1.0);
    }
}
