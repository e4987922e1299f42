//! The latest long spans of a callsite: when each opened and closed, and
//! how long it was idle.
//!
//! The histograms say how long a callsite's spans waited, not when. Which
//! other span a long wait ended beside is what ties an async task's wait
//! to the span that held what it waited for: a `tokio::sync::Mutex` guard
//! held across an `.await` makes every task that needs the lock wait out
//! the holder, and each waiter's wait ends just after the holder's span
//! closes. perf-report reads that order from these records.
//!
//! A span is long from [`LONG_SPAN_NS`] of wall time: the close compares
//! once, and only long spans, at most a thousand a second a thread for a
//! 1 ms span, are written. Each thread keeps the latest [`KEPT`] of a
//! callsite in a ring made at its first long span; a ring that overwrote
//! an entry says from when it holds every long span
//! ([`LongSpans::complete_after`]), so a reader never takes a span it lost
//! for one that did not happen.

use super::alloc::PauseCounting;

/// A span is long from this wall time, ns (1 ms).
pub(crate) const LONG_SPAN_NS: u64 = 1_000_000;

/// Long spans a thread keeps per callsite.
const KEPT: usize = 64;

/// Long spans a merge keeps per callsite (the latest).
const MERGED_KEPT: usize = 256;

/// One long span, in raw clock readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongSpan {
    pub(crate) opened: u64,
    pub(crate) closed: u64,
    pub(crate) idle_ns: u64,
}

/// The latest long spans of a callsite on a thread, or merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct LongSpans {
    /// A thread's ring (at most [`KEPT`], the next write at `next`), or a
    /// merge's spans (by closing time).
    spans: Vec<LongSpan>,
    next: usize,
    /// Every long span that closed after this reading is in `spans`; 0
    /// while none was lost.
    complete_after: u64,
}

impl LongSpans {
    /// A ring holding its first span; out of line, as the ring is the
    /// layer's allocation, made once per callsite and thread.
    #[cold]
    #[inline(never)]
    pub(crate) fn first(span: LongSpan) -> Box<Self> {
        let _pause = PauseCounting::new();
        let mut spans = Vec::with_capacity(KEPT);
        spans.push(span);
        Box::new(Self {
            spans,
            next: 1,
            complete_after: 0,
        })
    }

    /// Keeps a span that closed on this thread, overwriting the oldest
    /// when the ring is full. No allocation after [`first`](Self::first).
    #[inline]
    pub(crate) fn keep(&mut self, span: LongSpan) {
        if self.spans.len() < KEPT {
            self.spans.push(span);
        } else {
            let slot = self.next % KEPT;
            // A thread closes its spans in clock order: the slot holds the
            // oldest, and every span that closed after it is still kept.
            self.complete_after = self.complete_after.max(self.spans[slot].closed);
            self.spans[slot] = span;
        }
        self.next = (self.next + 1) % KEPT;
    }

    /// Adds another thread's (or merge's) long spans: the spans both hold
    /// whole, that is after the later of their `complete_after`, the
    /// latest [`MERGED_KEPT`] of them.
    pub(crate) fn merge(&mut self, other: &LongSpans) {
        let _pause = PauseCounting::new();
        let after = self.complete_after.max(other.complete_after);
        let mut spans: Vec<LongSpan> = self
            .spans
            .iter()
            .chain(&other.spans)
            .filter(|s| s.closed > after)
            .copied()
            .collect();
        spans.sort_unstable_by_key(|s| s.closed);
        let mut complete_after = after;
        if spans.len() > MERGED_KEPT {
            let dropped = spans.len() - MERGED_KEPT;
            complete_after = complete_after.max(spans[dropped - 1].closed);
            spans.drain(..dropped);
        }
        self.spans = spans;
        self.next = 0;
        self.complete_after = complete_after;
    }

    /// The spans kept, in no particular order for a thread's ring.
    pub(crate) fn spans(&self) -> &[LongSpan] {
        &self.spans
    }

    /// Every long span that closed after this raw reading is kept; 0 when
    /// none was lost.
    pub(crate) fn complete_after(&self) -> u64 {
        self.complete_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(closed: u64) -> LongSpan {
        LongSpan {
            opened: closed.saturating_sub(5),
            closed,
            idle_ns: 1,
        }
    }

    #[test]
    fn a_full_ring_keeps_the_latest_and_says_from_when_it_holds_every_span() {
        let mut ring = LongSpans::first(span(1));
        for closed in 2..=100 {
            ring.keep(span(closed));
        }
        let mut kept: Vec<u64> = ring.spans().iter().map(|s| s.closed).collect();
        kept.sort_unstable();
        assert_eq!(kept, (37..=100).collect::<Vec<_>>());
        // Span 36 was the last one overwritten: every span after it is kept.
        assert_eq!(ring.complete_after(), 36);
    }

    #[test]
    fn a_merge_keeps_only_what_both_threads_hold_whole() {
        // Thread a lost its spans up to 36; thread b lost none.
        let mut a = LongSpans::first(span(1));
        for closed in 2..=100 {
            a.keep(span(closed));
        }
        let mut b = LongSpans::first(span(10));
        b.keep(span(50));
        b.merge(&a);
        let kept: Vec<u64> = b.spans().iter().map(|s| s.closed).collect();
        // b's span at 10 is dropped: a's spans near it are lost, so a
        // reader would read a gap there that was not one.
        assert_eq!(kept.first(), Some(&37));
        assert!(kept.contains(&50));
        assert_eq!(kept.len(), 65);
        assert_eq!(b.complete_after(), 36);
    }

    #[test]
    fn a_merge_past_its_cap_keeps_the_latest() {
        let mut all = LongSpans::default();
        for thread in 0..8_u64 {
            let mut ring = LongSpans::first(span(thread * 1_000 + 1));
            for i in 2..=40 {
                ring.keep(span(thread * 1_000 + i));
            }
            all.merge(&ring);
        }
        assert_eq!(all.spans().len(), MERGED_KEPT);
        let first_kept = all.spans()[0].closed;
        assert!(all.complete_after() < first_kept);
        assert!(all.spans().windows(2).all(|w| w[0].closed <= w[1].closed));
        assert_eq!(all.spans().last().map(|s| s.closed), Some(7_040));
    }
}
