//! A callsite's latest long spans, and those idle the longest: when each
//! opened and closed, and how long it was idle.
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
//! an entry says from when it holds every long span ([`LongSpans::latest`]),
//! so a reader never takes a span it lost for one that did not happen.
//! Apart, it keeps the [`LONGEST`] idle the longest over the run.

use super::alloc::PauseCounting;

/// A span is long from this wall time, ns (1 ms).
pub(crate) const LONG_SPAN_NS: u64 = 1_000_000;

/// Long spans a thread keeps per callsite.
const KEPT: usize = 64;

/// Long spans a merge keeps per callsite (the latest).
const MERGED_KEPT: usize = 256;

/// Spans idle the longest a thread keeps per callsite.
const LONGEST: usize = 16;

/// Spans idle the longest a merge keeps per callsite.
const MERGED_LONGEST: usize = 64;

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
    /// The spans idle the longest over the whole run, at most
    /// [`LONGEST`] (a merge's [`MERGED_LONGEST`]): a callsite whose spans
    /// are all long (a request behind a 1 ms timer) fills its ring in a
    /// few milliseconds, and its longest waits would be lost.
    longest: Vec<LongSpan>,
    /// The least idle time in `longest` once full.
    longest_floor: u64,
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
        let mut longest = Vec::with_capacity(LONGEST);
        longest.push(span);
        Box::new(Self {
            spans,
            next: 1,
            complete_after: 0,
            longest,
            longest_floor: 0,
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
        if self.longest.len() < LONGEST {
            self.longest.push(span);
            if self.longest.len() == LONGEST {
                self.longest_floor = least_idle(&self.longest);
            }
        } else if span.idle_ns > self.longest_floor {
            self.replace_least_idle(span);
        }
    }

    /// Puts `span` in the place of the least idle of the full `longest`.
    #[cold]
    #[inline(never)]
    fn replace_least_idle(&mut self, span: LongSpan) {
        if let Some(least) = self.longest.iter_mut().min_by_key(|s| s.idle_ns) {
            *least = span;
        }
        self.longest_floor = least_idle(&self.longest);
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
        self.complete_after = keep_latest(&mut spans, after, MERGED_KEPT);
        self.spans = spans;
        self.next = 0;
        let mut longest: Vec<LongSpan> =
            self.longest.iter().chain(&other.longest).copied().collect();
        longest.sort_unstable_by_key(|s| std::cmp::Reverse(s.idle_ns));
        longest.truncate(MERGED_LONGEST);
        self.longest_floor = least_idle(&longest);
        self.longest = longest;
    }

    /// The spans kept, in no particular order for a thread's ring.
    #[cfg(test)]
    fn spans(&self) -> &[LongSpan] {
        &self.spans
    }

    /// The latest `n` spans, by closing time, and the reading after which
    /// every long span is among them (0 when none was left out).
    pub(crate) fn latest(&self, n: usize) -> (Vec<LongSpan>, u64) {
        let mut spans = self.spans.clone();
        let complete_after = keep_latest(&mut spans, self.complete_after, n);
        (spans, complete_after)
    }

    /// The spans idle the longest, in no particular order.
    pub(crate) fn longest(&self) -> &[LongSpan] {
        &self.longest
    }
}

/// The least idle time among `spans` (0 for none).
fn least_idle(spans: &[LongSpan]) -> u64 {
    spans.iter().map(|s| s.idle_ns).min().unwrap_or(0)
}

/// Sorts `spans` by closing time and keeps the latest `n`; returns the
/// reading after which every long span is kept: `complete_after`, or the
/// last one dropped.
fn keep_latest(spans: &mut Vec<LongSpan>, complete_after: u64, n: usize) -> u64 {
    spans.sort_unstable_by_key(|s| s.closed);
    let Some(dropped) = spans.len().checked_sub(n).filter(|&d| d > 0) else {
        return complete_after;
    };
    let after = complete_after.max(spans[dropped - 1].closed);
    spans.drain(..dropped);
    after
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
        assert_eq!(ring.latest(usize::MAX).1, 36);
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
        assert_eq!(b.latest(usize::MAX).1, 36);
    }

    #[test]
    fn the_longest_waits_are_kept_whenever_they_were() {
        let idle = |closed: u64, idle_ns: u64| LongSpan {
            opened: closed - 10,
            closed,
            idle_ns,
        };
        // An early long wait among hundreds of short ones: the ring loses
        // it, the longest keep it.
        let mut ring = LongSpans::first(idle(10, 5));
        ring.keep(idle(20, 9_000));
        for closed in 30..500 {
            ring.keep(idle(closed, closed % 7));
        }
        assert!(ring.spans().iter().all(|s| s.closed != 20));
        assert!(ring.longest().iter().any(|s| s.closed == 20));
        assert_eq!(ring.longest().len(), LONGEST);
        // A span no more idle than the least kept does not take its place.
        let mut equal = LongSpans::first(idle(11, 7));
        for closed in 12..=50 {
            equal.keep(idle(closed, 7));
        }
        assert!(equal.longest().iter().any(|s| s.closed == 11));
        let mut merged = LongSpans::default();
        merged.merge(&ring);
        assert_eq!(merged.longest()[0].idle_ns, 9_000);
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
        assert!(all.latest(usize::MAX).1 < first_kept);
        assert!(all.spans().windows(2).all(|w| w[0].closed <= w[1].closed));
        assert_eq!(all.spans().last().map(|s| s.closed), Some(7_040));
    }
}
