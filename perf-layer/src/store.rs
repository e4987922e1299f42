//! Per-callsite statistics and the state of open spans: the only state
//! shared between threads.
//!
//! Every thread records into its own shard, so two threads closing spans of
//! the same callsite never touch the same memory. A shard sits behind a spin
//! lock that only its own thread takes on the span path (uncontended, one
//! atomic operation); a snapshot takes each shard's lock briefly to copy it.
//!
//! A shard also holds the state of the spans its thread opened, keyed by
//! span id. This is the layer's per-span storage instead of the registry's
//! extensions: an extension costs a boxed allocation, a type-map insert and
//! removal, and a registry look-up at every exit and close, where the shard
//! costs one hash-map operation under a lock the thread takes anyway. A span
//! that moved to another thread is found by searching the other shards (see
//! [`Store::with_open`]): slower, but only for spans that migrate. The
//! `DashMap` is the registry of callsites, visited once per callsite per
//! thread, which is where the callsite cap is enforced.
//!
//! Shards live in a [`ThreadLocal`] owned by the store, so a thread's data
//! outlives the thread: a thread that exits leaves its shard behind (a later
//! thread may reuse it and keep adding to it), and snapshots still see it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;
use tracing_core::{Level, Metadata};

use crate::alloc::PauseCounting;
use crate::dump::{AllocStats, EventCounts, RssDelta};
use crate::flat_hist::{FlatHist, Layout};
use crate::span_state::SpanState;

/// A callsite's key: the address of its `'static` metadata, unique per
/// callsite. Building it never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallsiteKey(usize);

impl CallsiteKey {
    pub(crate) fn of(meta: &'static Metadata<'static>) -> Self {
        CallsiteKey(meta as *const Metadata<'static> as usize)
    }
}

/// What a closed span contributes to its callsite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClosedSpan {
    pub(crate) wall_ns: u64,
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) events: EventCounts,
    pub(crate) alloc: Option<AllocStats>,
    pub(crate) rss_delta: Option<i64>,
}

/// Everything recorded for one callsite on one thread (or merged).
#[derive(Debug, Clone)]
pub(crate) struct CallsiteAcc {
    pub(crate) meta: &'static Metadata<'static>,
    pub(crate) calls: u64,
    pub(crate) layout: Layout,
    pub(crate) wall: FlatHist,
    pub(crate) busy: FlatHist,
    pub(crate) idle: FlatHist,
    pub(crate) self_time: FlatHist,
    pub(crate) events: EventCounts,
    pub(crate) alloc: AllocStats,
    pub(crate) rss: Option<RssDelta>,
}

impl CallsiteAcc {
    pub(crate) fn empty(meta: &'static Metadata<'static>, layout: Layout) -> Self {
        Self {
            meta,
            calls: 0,
            layout,
            wall: FlatHist::new(&layout),
            busy: FlatHist::new(&layout),
            idle: FlatHist::new(&layout),
            self_time: FlatHist::new(&layout),
            events: EventCounts::default(),
            alloc: AllocStats::default(),
            rss: None,
        }
    }

    #[inline]
    fn record(&mut self, span: &ClosedSpan) {
        self.calls += 1;
        // A copy: the counts are written through pointers the compiler cannot
        // tell apart from `self.layout`, so a reference would be re-read
        // after every increment.
        let layout = self.layout;
        self.wall.record(&layout, span.wall_ns);
        self.busy.record(&layout, span.busy_ns);
        self.idle.record(&layout, span.wall_ns - span.busy_ns);
        self.self_time.record(&layout, span.self_ns);
        self.events.add(&span.events);
        if let Some(alloc) = &span.alloc {
            self.alloc.add(alloc);
        }
        if let Some(delta) = span.rss_delta {
            let rss = self.rss.get_or_insert(RssDelta {
                sum_bytes: 0,
                max_bytes: delta,
                min_bytes: delta,
            });
            rss.add(&RssDelta {
                sum_bytes: delta,
                max_bytes: delta,
                min_bytes: delta,
            });
        }
    }

    pub(crate) fn merge(&mut self, other: &CallsiteAcc) {
        self.calls += other.calls;
        self.wall.merge(&other.wall);
        self.busy.merge(&other.busy);
        self.idle.merge(&other.idle);
        self.self_time.merge(&other.self_time);
        self.events.add(&other.events);
        self.alloc.add(&other.alloc);
        match (&mut self.rss, &other.rss) {
            (Some(mine), Some(theirs)) => mine.add(theirs),
            (None, Some(theirs)) => self.rss = Some(*theirs),
            _ => {}
        }
    }
}

/// Child spans closed under one parent callsite.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EdgeAcc {
    pub(crate) parent: Option<&'static Metadata<'static>>,
    pub(crate) calls: u64,
    pub(crate) child_busy_ns: u64,
}

/// One thread's statistics, and the spans it opened that are still open.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) callsites: FxHashMap<CallsiteKey, CallsiteAcc>,
    pub(crate) edges: FxHashMap<(CallsiteKey, CallsiteKey), EdgeAcc>,
    /// Open spans by span id. Ids are unique among a registry's live spans,
    /// and one layer serves one registry.
    pub(crate) open: OpenSpans,
}

/// The spans one thread opened that are still open. States sit in a slab
/// (a closed span's slot is reused) found by span id through a map of slot
/// numbers, so no state is moved when the map grows or a span closes: moving
/// a state out of a hash map on every close cost a store-forwarding stall
/// (docs/benchmarks.md). Grows to the most spans the thread had open at
/// once, and no further.
///
/// The last span inserted or looked up keeps its slot beside the map, so
/// the exits of a span just created, or polled again and again, skip the
/// map; and a span inserted is put in the map only when the next one is,
/// so a span that closes before another opens on its thread (a leaf, or a
/// root span) never touches the map at all.
#[derive(Debug, Default)]
pub(crate) struct OpenSpans {
    slot_of: FxHashMap<u64, u32>,
    slots: Vec<SpanState>,
    free: Vec<u32>,
    last: Option<Last>,
}

/// [`OpenSpans`]'s last span. Invariant: when `in_map`, `slot_of[id] ==
/// slot`; otherwise `id` is not in `slot_of`, and is the only such span.
#[derive(Debug, Clone, Copy)]
struct Last {
    id: u64,
    slot: u32,
    in_map: bool,
}

impl OpenSpans {
    pub(crate) fn get(&self, id: u64) -> Option<&SpanState> {
        let slot = match self.last {
            Some(last) if last.id == id => last.slot,
            _ => *self.slot_of.get(&id)?,
        };
        self.slots.get(slot as usize)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut SpanState> {
        let slot = match self.last {
            Some(last) if last.id == id => last.slot,
            last => {
                let slot = *self.slot_of.get(&id)?;
                // A span not yet in the map stays the last one: replacing
                // it would mean inserting it here.
                if !matches!(last, Some(Last { in_map: false, .. })) {
                    self.last = Some(Last {
                        id,
                        slot,
                        in_map: true,
                    });
                }
                slot
            }
        };
        self.slots.get_mut(slot as usize)
    }

    /// Adds span `id`. Growing is the layer's allocation, not the span's.
    #[inline]
    pub(crate) fn insert(&mut self, id: u64, state: SpanState) {
        // At most one map insert below: the previous span's.
        if self.slot_of.len() == self.slot_of.capacity()
            || (self.free.is_empty() && self.slots.len() == self.slots.capacity())
        {
            self.grow();
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = state;
                slot
            }
            None => {
                self.slots.push(state);
                // More than u32::MAX spans open on one thread cannot happen
                // before memory runs out; saturate rather than wrap.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(Last {
            id: previous,
            slot: its_slot,
            in_map: false,
        }) = self.last
        {
            self.slot_of.insert(previous, its_slot);
        }
        self.last = Some(Last {
            id,
            slot,
            in_map: false,
        });
    }

    /// Makes room for one more span, out of line: growing is the layer's
    /// allocation, not the span's.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let _pause = PauseCounting::new();
        self.slot_of.reserve(1);
        self.slots.reserve(1);
        // Every slot can be free at once: `remove` never allocates.
        self.free
            .reserve(self.slots.capacity().saturating_sub(self.free.len()));
    }

    /// Removes span `id`, returning its state. The slot is free for the next
    /// span; the returned reference lives until then.
    #[inline]
    pub(crate) fn remove(&mut self, id: u64) -> Option<&SpanState> {
        let slot = match self.last {
            Some(last) if last.id == id => {
                self.last = None;
                if last.in_map {
                    self.slot_of.remove(&id);
                }
                last.slot
            }
            _ => self.slot_of.remove(&id)?,
        };
        self.free.push(slot);
        self.slots.get(slot as usize)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slot_of.len() + usize::from(matches!(self.last, Some(Last { in_map: false, .. })))
    }
}

/// A shard's lock. Only its own thread takes it on the span path, so it is
/// almost never contended; a spin lock costs one atomic read-modify-write
/// to take and a plain store to release, where `parking_lot`'s mutex costs
/// two (about 2 ns less per lock, three locks per span; docs/benchmarks.md).
/// The rare waiter (a snapshot copying the shard, or a thread looking for a
/// span that moved) yields its time slice while it waits.
pub(crate) type ShardLock = spin::mutex::SpinMutex<Shard, spin::relax::Yield>;

/// A shard on cache lines of its own. `ThreadLocal` keeps neighbouring
/// threads' values side by side, and every span writes its thread's lock
/// word and open-span map: unpadded, two threads would write one line.
/// 128 bytes, as adjacent-line prefetching pairs 64-byte lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedShard(ShardLock);

/// All shards plus the callsite registry and the caps.
#[derive(Debug)]
pub(crate) struct Store {
    shards: ThreadLocal<PaddedShard>,
    /// Every callsite admitted under the cap.
    registry: DashMap<CallsiteKey, &'static Metadata<'static>>,
    edges_admitted: AtomicUsize,
    callsites_admitted: AtomicUsize,
    pub(crate) dropped_spans: AtomicU64,
    pub(crate) dropped_edges: AtomicU64,
    layout: Layout,
    max_callsites: usize,
    max_edges: usize,
}

impl Store {
    pub(crate) fn new(sigfig: u8, max_ns: u64, max_callsites: usize, max_edges: usize) -> Self {
        Self {
            shards: ThreadLocal::new(),
            registry: DashMap::new(),
            edges_admitted: AtomicUsize::new(0),
            callsites_admitted: AtomicUsize::new(0),
            dropped_spans: AtomicU64::new(0),
            dropped_edges: AtomicU64::new(0),
            layout: Layout::new(sigfig, max_ns),
            max_callsites,
            max_edges,
        }
    }

    /// The histogram layout every callsite records into.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// This thread's shard.
    #[inline]
    pub(crate) fn local(&self) -> &ShardLock {
        match self.shards.get() {
            Some(shard) => &shard.0,
            None => self.first_local(),
        }
    }

    /// Creates this thread's shard: the layer's allocation, not a span's.
    #[cold]
    fn first_local(&self) -> &ShardLock {
        let _pause = PauseCounting::new();
        &self.shards.get_or_default().0
    }

    /// Runs `f` on the state of open span `id`, wherever it was opened: this
    /// thread's shard first (one lock), then the others, each locked only
    /// while it is searched. `None` when no shard holds the span.
    #[inline]
    pub(crate) fn with_open<R>(&self, id: u64, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
        let local = self.local();
        {
            let mut shard = local.lock();
            if let Some(state) = shard.open.get_mut(id) {
                return Some(f(state));
            }
        }
        self.with_foreign(local, id, f)
    }

    #[cold]
    fn with_foreign<R>(
        &self,
        local: &ShardLock,
        id: u64,
        f: impl FnOnce(&mut SpanState) -> R,
    ) -> Option<R> {
        for PaddedShard(shard) in self.shards.iter() {
            if std::ptr::eq(shard, local) {
                continue;
            }
            let mut shard = shard.lock();
            if let Some(state) = shard.open.get_mut(id) {
                return Some(f(state));
            }
        }
        None
    }

    /// Takes open span `id` out of whichever shard holds it. Not this
    /// thread's, which the caller has searched already under its own lock.
    #[cold]
    pub(crate) fn take_foreign(&self, id: u64) -> Option<SpanState> {
        let local = self.local();
        for PaddedShard(shard) in self.shards.iter() {
            if std::ptr::eq(shard, local) {
                continue;
            }
            if let Some(state) = shard.lock().open.remove(id) {
                return Some(*state);
            }
        }
        None
    }

    /// Records a closed span (and its edge from `parent`) in `shard`, this
    /// thread's, which the caller holds locked.
    pub(crate) fn record(
        &self,
        shard: &mut Shard,
        meta: &'static Metadata<'static>,
        parent: Option<&'static Metadata<'static>>,
        span: &ClosedSpan,
    ) {
        let key = CallsiteKey::of(meta);
        match shard.callsites.get_mut(&key) {
            Some(acc) => acc.record(span),
            None => self.record_first(shard, key, meta, span),
        }
        if let Some(parent) = parent {
            let edge_key = (CallsiteKey::of(parent), key);
            match shard.edges.get_mut(&edge_key) {
                Some(edge) => {
                    edge.calls += 1;
                    edge.child_busy_ns = edge.child_busy_ns.saturating_add(span.busy_ns);
                }
                None => self.first_edge(shard, edge_key, parent, span),
            }
        }
    }

    /// A callsite's first span on this thread, out of line: the histograms
    /// are the layer's allocation, not the span's.
    #[cold]
    #[inline(never)]
    fn record_first(
        &self,
        shard: &mut Shard,
        key: CallsiteKey,
        meta: &'static Metadata<'static>,
        span: &ClosedSpan,
    ) {
        let _pause = PauseCounting::new();
        if !self.admit_callsite(key, meta) {
            self.dropped_spans.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shard
            .callsites
            .entry(key)
            .or_insert_with(|| CallsiteAcc::empty(meta, self.layout))
            .record(span);
    }

    /// An edge's first child on this thread, out of line, under the cap.
    #[cold]
    #[inline(never)]
    fn first_edge(
        &self,
        shard: &mut Shard,
        edge_key: (CallsiteKey, CallsiteKey),
        parent: &'static Metadata<'static>,
        span: &ClosedSpan,
    ) {
        let _pause = PauseCounting::new();
        if self.edges_admitted.fetch_add(1, Ordering::Relaxed) < self.max_edges {
            shard.edges.insert(
                edge_key,
                EdgeAcc {
                    parent: Some(parent),
                    calls: 1,
                    child_busy_ns: span.busy_ns,
                },
            );
        } else {
            self.edges_admitted.fetch_sub(1, Ordering::Relaxed);
            self.dropped_edges.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Admits a callsite under the cap; visited once per callsite per thread.
    fn admit_callsite(&self, key: CallsiteKey, meta: &'static Metadata<'static>) -> bool {
        if self.registry.contains_key(&key) {
            return true;
        }
        match self.registry.entry(key) {
            dashmap::mapref::entry::Entry::Occupied(_) => true,
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                // The vacant entry holds its shard's lock, so one key reserves
                // one place; the reservation itself is atomic, so threads
                // admitting different keys at once cannot overshoot the cap.
                let reserved = self.callsites_admitted.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |n| (n < self.max_callsites).then_some(n + 1),
                );
                if reserved.is_err() {
                    return false;
                }
                slot.insert(meta);
                true
            }
        }
    }

    /// Merges every shard, each locked only while it is copied.
    pub(crate) fn merged(&self) -> Shard {
        let mut total = Shard::default();
        for PaddedShard(shard) in self.shards.iter() {
            let copy = {
                let shard = shard.lock();
                (shard.callsites.clone(), shard.edges.clone())
            };
            for (key, acc) in copy.0 {
                match total.callsites.get_mut(&key) {
                    Some(mine) => mine.merge(&acc),
                    None => {
                        total.callsites.insert(key, acc);
                    }
                }
            }
            for (key, edge) in copy.1 {
                let mine = total.edges.entry(key).or_default();
                mine.parent = edge.parent;
                mine.calls += edge.calls;
                mine.child_busy_ns = mine.child_busy_ns.saturating_add(edge.child_busy_ns);
            }
        }
        total
    }

    /// Number of threads that have recorded at least one span.
    pub(crate) fn threads(&self) -> usize {
        self.shards
            .iter()
            .filter(|PaddedShard(shard)| !shard.lock().callsites.is_empty())
            .count()
    }
}

/// The level's index into [`EventCounts`] order (trace..error).
#[inline]
pub(crate) fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        _ => 4,
    }
}

/// Per-level counts as a small array (cheap to add on the hot path).
pub(crate) fn events_from_array(counts: &[u32; 5]) -> EventCounts {
    EventCounts {
        trace: u64::from(counts[0]),
        debug: u64::from(counts[1]),
        info: u64::from(counts[2]),
        warn: u64::from(counts[3]),
        error: u64::from(counts[4]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static META: tracing_core::Metadata<'static> = tracing_core::metadata! {
        name: "open",
        target: "perf_layer",
        level: Level::INFO,
        fields: &[],
        callsite: &CALLSITE,
        kind: tracing_core::metadata::Kind::SPAN,
    };
    struct Callsite;
    static CALLSITE: Callsite = Callsite;
    impl tracing_core::Callsite for Callsite {
        fn set_interest(&self, _: tracing_core::Interest) {}
        fn metadata(&self) -> &tracing_core::Metadata<'_> {
            &META
        }
    }

    #[test]
    fn open_spans_reuse_closed_slots_and_keep_each_state() {
        let mut open = OpenSpans::default();
        for id in 1..=3 {
            open.insert(id, SpanState::new(&META, None, id * 10, None));
        }
        assert_eq!(open.remove(2).map(|s| s.created), Some(20));
        assert!(open.remove(2).is_none());
        open.insert(4, SpanState::new(&META, None, 40, None));
        // Span 4 took span 2's slot: three slots for four spans.
        assert_eq!((open.len(), open.slots.len()), (3, 3));
        let created: Vec<_> = [1, 3, 4].map(|id| open.get(id).map(|s| s.created)).to_vec();
        assert_eq!(created, [Some(10), Some(30), Some(40)]);
        open.get_mut(3).unwrap().busy_ns = 7;
        assert_eq!(open.remove(3).map(|s| s.busy_ns), Some(7));
    }

    #[test]
    fn open_spans_agree_with_a_plain_map_over_random_operations() {
        use std::collections::HashMap;
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut open = OpenSpans::default();
        // Span id -> (created, busy_ns), the reference.
        let mut model: HashMap<u64, (u64, u64)> = HashMap::new();
        // Live ids in insertion order, so that picks are reproducible.
        let mut live: Vec<u64> = Vec::new();
        let mut next_id = 1;
        for step in 0..20_000 {
            // The newest live span, any live span, or an id closed or never
            // seen.
            let id = match (rng.below(4), live.len() as u64) {
                (0, n) if n > 0 => live[n as usize - 1],
                (1 | 2, n) if n > 0 => live[rng.below(n) as usize],
                _ => 1 + rng.below(next_id + 2),
            };
            match rng.below(5) {
                0 if model.len() < 64 => {
                    let created = rng.next();
                    open.insert(next_id, SpanState::new(&META, None, created, None));
                    model.insert(next_id, (created, 0));
                    live.push(next_id);
                    next_id += 1;
                }
                2 => {
                    let add = rng.below(100);
                    let ours = open.get_mut(id).map(|s| {
                        s.busy_ns += add;
                        (s.created, s.busy_ns)
                    });
                    let theirs = model.get_mut(&id).map(|m| {
                        m.1 += add;
                        *m
                    });
                    assert_eq!(ours, theirs, "step {step}: get_mut({id})");
                }
                1 | 3 => {
                    let ours = open.remove(id).map(|s| (s.created, s.busy_ns));
                    assert_eq!(ours, model.remove(&id), "step {step}: remove({id})");
                    live.retain(|&l| l != id);
                }
                _ => {
                    let ours = open.get(id).map(|s| (s.created, s.busy_ns));
                    assert_eq!(ours, model.get(&id).copied(), "step {step}: get({id})");
                }
            }
            assert_eq!(open.len(), model.len(), "step {step}");
        }
        // The slab never held more states than were open at once.
        assert!(open.slots.len() <= 64, "{} slots", open.slots.len());
    }

    #[test]
    fn the_last_span_looked_up_is_forgotten_when_it_closes() {
        let mut open = OpenSpans::default();
        open.insert(1, SpanState::new(&META, None, 10, None));
        open.insert(2, SpanState::new(&META, None, 20, None));
        // Span 1 is the last looked up; it closes, and span 3 takes its slot.
        open.get_mut(1).unwrap().busy_ns = 5;
        assert_eq!(open.remove(1).map(|s| s.busy_ns), Some(5));
        assert!(open.get_mut(1).is_none(), "a closed span is not found");
        open.insert(3, SpanState::new(&META, None, 30, None));
        assert!(open.get_mut(1).is_none());
        // Alternating look-ups each find their own state.
        for (id, busy) in [(2, 1), (3, 2), (2, 3), (2, 4), (3, 5)] {
            open.get_mut(id).unwrap().busy_ns += busy;
        }
        assert_eq!(open.get(2).map(|s| s.busy_ns), Some(8));
        assert_eq!(open.get(3).map(|s| s.busy_ns), Some(7));
        assert_eq!(open.remove(3).map(|s| s.created), Some(30));
        assert!(open.get_mut(3).is_none());
        assert_eq!(open.get_mut(2).map(|s| s.created), Some(20));
    }
}
