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
//! costs one hash-map operation under a lock the thread takes anyway.
//!
//! A span that moved to another thread (an async task a work-stealing
//! runtime polls on any worker) keeps its state where it opened. The first
//! of its intervals to end on another thread starts a *visit* in that
//! thread's own shard: the sums of the span's intervals that end there
//! ([`Shard::visits`]), counted in a lock-free table by a hash of the span's
//! id. Its later intervals there add to the visit under that thread's own
//! lock, touching no memory another core wrote; its close, when the count
//! says it may have visits, looks for them and adds them up
//! ([`Shards::closing`]). Moving the state to the exiting thread instead
//! cost a search, another core's lock and two map operations at every
//! migration: about one a request on mini-redis's connection span, 16% of
//! its exits (docs/benchmarks.md); telling the state of each visit, where
//! it opened, cost that thread's lock at the first interval of every
//! request span a worker took over. The `DashMap`
//! holds the callsites admitted so far, visited once per callsite per
//! thread, which is where the callsite cap is enforced.
//!
//! Shards live in a [`ThreadLocal`] owned by [`Shards`], so a thread's data
//! outlives the thread: a thread that exits leaves its shard behind (a later
//! thread may reuse it and keep adding to it), and snapshots still see it.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;
use tracing_core::Metadata;

use super::alloc::PauseCounting;
use super::callsite::CallsiteKey;
use super::flat_hist::Layout;
use super::groups::{GroupKey, Groups};
use super::long_spans::LONG_SPAN_NS;
use super::open_spans::{FinishedFrame, OpenSpans, SpanState, Sums};
use super::totals::{CallsiteAcc, ClosedSpan, EdgeAcc};

/// The callsites a shard counts thread starts for: a thread starts with one
/// span, so a shard passed on to a few dozen threads holds a few.
const THREAD_START_CALLSITES: usize = 64;

/// One thread's statistics, and the spans it opened that are still open.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) callsites: FxHashMap<CallsiteKey, CallsiteAcc>,
    pub(crate) edges: FxHashMap<(CallsiteKey, CallsiteKey), EdgeAcc>,
    /// Open spans by span id. Ids are unique among a registry's live spans,
    /// and one layer serves one registry.
    pub(crate) open: OpenSpans,
    /// Threads whose first span (under this layer) this thread's callsites
    /// were, by callsite: its own start and those of the threads that had
    /// this shard before it ([`Shards::thread_started`]).
    pub(crate) thread_starts: FxHashMap<CallsiteKey, u64>,
    /// Visits: the sums of the intervals that ended on this thread of open
    /// spans other threads opened, by span id; each span's close takes its
    /// visits out. At most one per span open at once.
    pub(crate) visits: FxHashMap<u64, Sums>,
    /// Whether this thread is an async runtime's ([`super::runtime_worker`]):
    /// it bears the name of a runtime's threads (read once, when the shard
    /// is made), or an interval ended on it inside a tokio task
    /// ([`super::task`]: a current-thread runtime's `block_on` thread, a
    /// runtime whose threads have names of their own).
    pub(crate) runtime_thread: bool,
    /// Whether a span was entered on this thread more than once, or after
    /// another thread opened it: this thread polls tasks. With
    /// `runtime_thread`, a runtime's worker, not its blocking pool (whose
    /// threads tokio names alike and gives task ids, and which run
    /// closures, not tasks).
    pub(crate) polls_async: bool,
    /// Entered intervals that ended on this thread, and those of them timed
    /// on the CPU: of open spans too (a connection's polls), for the
    /// overhead estimate.
    pub(crate) exits: u64,
    pub(crate) timed_exits: u64,
    /// Of the timed ones, those read with system calls at exit.
    pub(crate) called_exits: u64,
    /// The clock's raw readings at the entry of the first interval that
    /// ended on this thread and at the exit of the last: the part of the
    /// run in which the thread recorded spans (`None` before its first).
    /// A thread that exits leaves its shard to the next thread that takes
    /// its slot, so a shard's window covers both and the time between.
    pub(crate) active: Option<(u64, u64)>,
    /// This thread's callbacks as [`super::self_time`] sampled them: the
    /// weighted time, the callbacks the samples stand for, the samples.
    pub(crate) callbacks_ns: u64,
    pub(crate) callbacks: u64,
    pub(crate) callbacks_sampled: u64,
    /// Callbacks whose sample was dropped, switched out while timed.
    pub(crate) callbacks_dropped: u64,
    /// The kept samples by the callsite their callback served (its tag):
    /// the weighted time and the callbacks they stand for.
    pub(crate) callbacks_by_tag: FxHashMap<u32, (u64, u64)>,
    /// Exits that were not of the innermost span entered on this thread
    /// (entered by a guard held across an `.await`), by callsite tag
    /// ([`super::stack::Stack::pop_then`]).
    pub(crate) misnested_by_tag: FxHashMap<u32, u64>,
    /// Closed spans by callsite and group ([`super::groups`]), when the
    /// layer groups by fields.
    pub(crate) groups: FxHashMap<(CallsiteKey, GroupKey), CallsiteAcc>,
    /// Edges with a grouped end, by the groups of both ends (folded,
    /// [`super::groups::fold`]; 0 for an end without a group).
    pub(crate) group_edges: FxHashMap<GroupEdgeKey, EdgeAcc>,
    /// The span this thread closed last (the next close replaces it): the
    /// registry closes a span whose last reference a child held right after
    /// that child, on its thread.
    pub(crate) last_closed: LastClosed,
}

/// A span just closed, as its parent's close may follow from it
/// ([`Shard::last_closed`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LastClosed {
    /// Its parent span's id (0: none).
    pub(crate) parent_id: u64,
    /// The clock's raw reading where it ended: its close, or its owner's
    /// last exit where it ended before (`crate::layer`'s `ended_before`).
    pub(crate) ended: u64,
    /// Its owner task, which ran its first interval ([`super::open_spans::Sums::task`]).
    pub(crate) task: u64,
    pub(crate) meta: Option<&'static Metadata<'static>>,
}

impl Shard {
    /// Whether a span closing now on this thread closes on an async
    /// runtime's worker ([`super::runtime_worker`]).
    #[inline]
    pub(crate) fn on_runtime_worker(&self) -> bool {
        self.runtime_thread && self.polls_async
    }
}

/// Entered intervals that ended, of open spans too, summed over threads:
/// what the overhead estimate multiplies its calibrated costs by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExitCounts {
    /// Every interval.
    pub(crate) intervals: u64,
    /// Those timed on the CPU.
    pub(crate) timed: u64,
    /// Of the timed ones, those whose CPU time was read with system calls
    /// at exit (no task clock, or the thread was switched out).
    pub(crate) called: u64,
}

/// The layer's time in its callbacks as every thread sampled it
/// ([`super::self_time`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallbackTime {
    /// The kept samples' time, each weighted by the callbacks it stands
    /// for, scaled to every callback, ns: the estimate of the time spent in
    /// every callback.
    pub(crate) ns: u64,
    /// Callbacks the samples stand for.
    pub(crate) callbacks: u64,
    /// Callbacks timed and kept.
    pub(crate) sampled: u64,
    /// Callbacks whose samples were dropped (switched out while timed).
    pub(crate) dropped: u64,
}

/// A group edge's key: the parent's callsite and folded group, the child's.
pub(crate) type GroupEdgeKey = (CallsiteKey, u64, CallsiteKey, u64);

/// Every thread's statistics added up, for a snapshot.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub(crate) callsites: FxHashMap<CallsiteKey, CallsiteAcc>,
    pub(crate) edges: FxHashMap<(CallsiteKey, CallsiteKey), EdgeAcc>,
    pub(crate) groups: FxHashMap<(CallsiteKey, GroupKey), CallsiteAcc>,
    pub(crate) group_edges: FxHashMap<GroupEdgeKey, EdgeAcc>,
    /// The spans still open, by callsite.
    pub(crate) open: FxHashMap<CallsiteKey, OpenAcc>,
    /// Threads whose first span each callsite's was.
    pub(crate) thread_starts: FxHashMap<CallsiteKey, u64>,
}

/// One callsite's spans still open at a snapshot, wherever they opened.
#[derive(Debug, Clone)]
pub(crate) struct OpenAcc {
    pub(crate) meta: &'static Metadata<'static>,
    pub(crate) spans: u64,
    /// The clock's raw reading when the first of them opened, and the sum
    /// of those readings (for their mean).
    pub(crate) first_created: u64,
    pub(crate) sum_created: u128,
    /// How many opened under each parent callsite.
    pub(crate) parents: FxHashMap<CallsiteKey, (&'static Metadata<'static>, u64)>,
}

impl OpenAcc {
    fn new(meta: &'static Metadata<'static>) -> Self {
        Self {
            meta,
            spans: 0,
            first_created: u64::MAX,
            sum_created: 0,
            parents: FxHashMap::default(),
        }
    }

    fn add(&mut self, state: &SpanState) {
        self.spans += 1;
        self.first_created = self.first_created.min(state.created);
        self.sum_created += u128::from(state.created);
        if let Some(parent) = state.parent {
            self.parents
                .entry(CallsiteKey::of(parent))
                .or_insert((parent, 0))
                .1 += 1;
        }
    }

    /// The clock's raw reading when they opened, on average.
    pub(crate) fn mean_created(&self) -> u64 {
        u64::try_from(self.sum_created / u128::from(self.spans.max(1))).unwrap_or(u64::MAX)
    }

    /// The parent callsite most of them opened under.
    pub(crate) fn parent(&self) -> Option<&'static Metadata<'static>> {
        self.parents
            .iter()
            .max_by_key(|(key, (_, n))| (*n, std::cmp::Reverse(**key)))
            .map(|(_, (meta, _))| *meta)
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

/// The visits open spans have ([`Shard::visits`]), counted in slots by a
/// hash of the span's id, without a lock: what a span's close reads to know
/// whether to look for its visits in the other threads' shards. A slot
/// counts every span hashed to it, so a count over 0 may be another span's
/// (the close then looks, and finds none); a count of 0 is never wrong.
#[derive(Debug)]
struct VisitCounts {
    slots: Box<[AtomicU32]>,
}

/// Slots in [`VisitCounts`]: spans with visits at once are a few per
/// worker (those that moved and are not closed yet); 4 KiB.
const VISIT_SLOTS: usize = 1024;

impl VisitCounts {
    fn new() -> Self {
        Self {
            slots: (0..VISIT_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    #[inline]
    fn slot(&self, id: u64) -> &AtomicU32 {
        let at = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - VISIT_SLOTS.trailing_zeros());
        &self.slots[at as usize]
    }

    /// A visit of span `id` was put in a shard. Release: a close that
    /// reads the count sees the visit in its shard.
    fn started(&self, id: u64) {
        self.slot(id).fetch_add(1, Ordering::Release);
    }

    /// A visit of span `id` was taken out of its shard.
    fn ended(&self, id: u64) {
        self.slot(id).fetch_sub(1, Ordering::Release);
    }

    /// Visits counted in span `id`'s slot, its own among them.
    #[inline]
    fn count(&self, id: u64) -> u32 {
        self.slot(id).load(Ordering::Acquire)
    }

    #[inline]
    fn may_have(&self, id: u64) -> bool {
        self.count(id) > 0
    }
}

/// The callsite tag of each open span as it opened, by a hash of its id,
/// without a lock: what a worker that did not open a span reads at its
/// first enter there, in place of a registry look-up (the slab slot's
/// reference count, two read-modify-writes on a line the other worker
/// writes). Each slot is one word: the tag and 51 bits of the id's hash,
/// so a slot another span took since is not read as this span's (the hash
/// is a bijection of the id: two ids share a slot and those bits only when
/// their hashes differ in the one bit left out), and a reader that finds
/// another span there asks the registry. Per layer, as span ids are
/// unique only within one subscriber.
#[derive(Debug)]
struct OpenTags {
    slots: Box<[AtomicU64]>,
}

/// Slots in [`OpenTags`]: spans open at once that a worker may take over;
/// 32 KiB.
const OPEN_TAG_SLOTS: usize = 4096;
/// Bits of a slot for the tag: every tag fits ([`super::heap::MAX_TAGS`]).
const OPEN_TAG_BITS: u32 = 13;
const OPEN_TAG_MASK: u64 = (1 << OPEN_TAG_BITS) - 1;
/// Bits of the hash kept beside the tag: the rest of the word.
const OPEN_TAG_CHECK: u64 = (1 << (64 - OPEN_TAG_BITS)) - 1;
const _: () = assert!(super::heap::MAX_TAGS as u64 - 1 <= OPEN_TAG_MASK);

impl OpenTags {
    fn new() -> Self {
        Self {
            slots: (0..OPEN_TAG_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The slot of span `id` and the word that says it is this span's.
    #[inline]
    fn slot(&self, id: u64) -> (&AtomicU64, u64) {
        // A bijection (an xor-shift, then an odd multiplier) that moves
        // the id's high bits into the low ones: a slab's ids of one slot
        // differ only in their high (generation) bits.
        let h = (id ^ (id >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let at = (h >> (64 - OPEN_TAG_SLOTS.trailing_zeros())) as usize;
        (&self.slots[at], (h & OPEN_TAG_CHECK) << OPEN_TAG_BITS)
    }

    #[inline]
    fn publish(&self, id: u64, tag: u32) {
        let (slot, check) = self.slot(id);
        slot.store(check | (u64::from(tag) & OPEN_TAG_MASK), Ordering::Relaxed);
    }

    #[inline]
    fn get(&self, id: u64) -> Option<u32> {
        let (slot, check) = self.slot(id);
        let word = slot.load(Ordering::Relaxed);
        (word != 0 && word & !OPEN_TAG_MASK == check).then_some((word & OPEN_TAG_MASK) as u32)
    }
}

/// All shards, the callsites admitted under the cap, and the caps.
#[derive(Debug)]
pub(crate) struct Shards {
    shards: ThreadLocal<PaddedShard>,
    /// Every callsite admitted under the cap.
    admitted: DashMap<CallsiteKey, &'static Metadata<'static>>,
    edges_admitted: AtomicUsize,
    group_edges_admitted: AtomicUsize,
    callsites_admitted: AtomicUsize,
    pub(crate) dropped_spans: AtomicU64,
    pub(crate) dropped_edges: AtomicU64,
    layout: Layout,
    max_callsites: usize,
    max_edges: usize,
    /// The interval from which spans are timed on the CPU
    /// ([`super::cpu`]); `None`: CPU time is off, or the platform cannot
    /// read it.
    cpu_threshold_ns: Option<u32>,
    /// The fields spans are grouped by; `None`: no grouping.
    pub(crate) groups: Option<Groups>,
    /// Each thread's innermost callsite, for the background thread.
    pub(crate) watched: super::watch::Watched,
    /// How many visits spans have, counted by a hash of their ids.
    visits: VisitCounts,
    /// Open spans' callsite tags, by a hash of their ids.
    open_tags: OpenTags,
}

impl Shards {
    pub(crate) fn new(
        sigfig: u8,
        max_ns: u64,
        max_callsites: usize,
        max_edges: usize,
        cpu_threshold_ns: Option<u64>,
        groups: Option<Groups>,
    ) -> Self {
        let cpu_threshold_ns = cpu_threshold_ns
            .filter(|_| super::cpu::available())
            .map(|ns| u32::try_from(ns).unwrap_or(u32::MAX - 1));
        Self {
            cpu_threshold_ns,
            groups,
            shards: ThreadLocal::new(),
            admitted: DashMap::new(),
            edges_admitted: AtomicUsize::new(0),
            group_edges_admitted: AtomicUsize::new(0),
            callsites_admitted: AtomicUsize::new(0),
            dropped_spans: AtomicU64::new(0),
            dropped_edges: AtomicU64::new(0),
            layout: Layout::new(sigfig, max_ns),
            max_callsites,
            max_edges,
            watched: super::watch::Watched::default(),
            visits: VisitCounts::new(),
            open_tags: OpenTags::new(),
        }
    }

    /// The same, its threads publishing their innermost callsite when
    /// `on` (something reads them: [`super::watch`]).
    pub(crate) fn watching(mut self, on: bool) -> Self {
        self.watched = super::watch::Watched::new(on);
        self
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
        &self
            .shards
            .get_or(|| {
                PaddedShard(ShardLock::new(Shard {
                    runtime_thread: super::runtime_worker::named_as_one(),
                    ..Shard::default()
                }))
            })
            .0
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

    /// Adds what an entered interval of open span `id` measured to its
    /// sums, as it exits on this thread (whose shard is `local`), and counts
    /// the interval: to its state when this thread opened it, else to this
    /// thread's visit of it, started at its first interval here
    /// ([`first_visit`](Self::first_visit)).
    #[inline]
    pub(crate) fn exited(&self, local: &ShardLock, id: u64, done: &FinishedFrame) {
        let task = super::task::current();
        let mut guard = local.lock();
        let shard = &mut *guard;
        shard.exits += 1;
        shard.runtime_thread |= task != 0;
        shard.timed_exits += u64::from(done.cpu.is_some());
        shard.called_exits += u64::from(done.by_calls);
        match &mut shard.active {
            Some((_, last)) => *last = done.ended_at,
            None => shard.active = Some((done.entered_at, done.ended_at)),
        }
        if let Some(state) = shard.open.get_mut(id) {
            state.sums.absorb(done, task);
            // Entered again: a span polled more than once.
            shard.polls_async |= state.sums.intervals > 1;
            return;
        }
        // A span another thread opened, entered here: a task that moved,
        // or a span carried into a blocking pool's closure (`in_scope` of
        // the caller's span in `spawn_blocking`, as tracing's docs show).
        // Only a second interval here tells a poll: a pool's closure enters
        // the span it carries once.
        match shard.visits.get_mut(&id) {
            Some(visit) => {
                visit.absorb(done, task);
                shard.polls_async = true;
            }
            None => self.first_visit(shard, id, done, task),
        }
    }

    /// The first interval of open span `id` to end on this thread (whose
    /// shard, locked, is `shard`) when another opened it: the visit starts
    /// here, and the span's slot in [`visits`](Self::visits) counts one
    /// more, so that its close looks for it. No other thread's shard is
    /// locked: telling the span's state itself, where it opened, took that
    /// thread's lock and cache lines off its own span path, at about every
    /// request a server's worker took over from the other (a fifth of the
    /// exits' time on mini-redis, docs/benchmarks.md). A span no shard
    /// holds (opened before this layer saw it) gets a visit too, which its
    /// close throws away.
    #[cold]
    #[inline(never)]
    fn first_visit(&self, shard: &mut Shard, id: u64, done: &FinishedFrame, task: u64) {
        let mut visit = Sums::default();
        visit.absorb(done, task);
        {
            // Growing the map is the layer's allocation, not the span's.
            let _pause = PauseCounting::new();
            shard.visits.insert(id, visit);
        }
        // After the visit is in the map; the close that reads the count
        // comes after this interval's exit.
        self.visits.started(id);
    }

    /// The state of span `id` as it closes on this thread (shard `local`,
    /// not held), with every visit's sums added: `found`, when this thread
    /// opened it, else taken from the thread that did. `None` when no shard
    /// holds the span; its visits, if any, are taken away all the same.
    #[cold]
    #[inline(never)]
    pub(crate) fn closing(
        &self,
        local: &ShardLock,
        id: u64,
        found: Option<SpanState>,
    ) -> Option<SpanState> {
        let state = match found {
            Some(state) => Some(state),
            None => self.take_foreign_from(local, id),
        };
        let visits = self.take_visits(local, id);
        let mut state = state?;
        if let Some(visits) = visits {
            state.sums.add(&visits);
        }
        Some(state)
    }

    /// Says that span `id`, opening on this thread, has callsite tag `tag`
    /// ([`published_tag`](Self::published_tag)).
    #[inline]
    pub(crate) fn publish_tag(&self, id: u64, tag: u32) {
        self.open_tags.publish(id, tag);
    }

    /// Span `id`'s callsite tag as its opening published it; `None` when
    /// its slot holds another span's since (ask the registry then).
    #[inline]
    pub(crate) fn published_tag(&self, id: u64) -> Option<u32> {
        self.open_tags.get(id)
    }

    /// Whether span `id` may have visits to add up at its close: `false`
    /// means it has none.
    #[inline]
    pub(crate) fn may_have_visits(&self, id: u64) -> bool {
        self.visits.may_have(id)
    }

    /// Takes span `id`'s visits out of every shard and adds them up: this
    /// thread's shard (`local`) first, where a span closing on a thread
    /// that took it over has its visit, then the others, until as many
    /// were found as its slot counts (every shard when other spans share
    /// the slot). `None` when it had none.
    fn take_visits(&self, local: &ShardLock, id: u64) -> Option<Sums> {
        let mut left = self.visits.count(id);
        if left == 0 {
            return None;
        }
        let mut total: Option<Sums> = None;
        let others = self
            .shards
            .iter()
            .map(|PaddedShard(shard)| shard)
            .filter(|shard| !std::ptr::eq(*shard, local));
        for shard in std::iter::once(local).chain(others) {
            if let Some(visit) = shard.lock().visits.remove(&id) {
                self.visits.ended(id);
                match &mut total {
                    Some(total) => total.add(&visit),
                    None => total = Some(visit),
                }
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        total
    }

    /// The time every thread recorded spans in, ns, summed over threads:
    /// from a shard's first interval (or `since`, the layer's start, a raw
    /// reading of `clock`) to its last, or to `now` while a span it opened
    /// is still open (a thread inside a long span, or whose tasks are
    /// open).
    pub(crate) fn threads_active_ns(&self, clock: &quanta::Clock, since: u64, now: u64) -> u64 {
        self.shards
            .iter()
            .filter_map(|PaddedShard(shard)| {
                let shard = shard.lock();
                let (first, last) = shard.active?;
                let end = if shard.open.is_empty() {
                    last
                } else {
                    now.max(last)
                };
                Some(clock.delta_as_nanos(first.max(since), end.max(since)))
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Entered intervals that ended on every thread, and how they were
    /// timed on the CPU.
    pub(crate) fn exit_counts(&self) -> ExitCounts {
        let mut counts = ExitCounts::default();
        for PaddedShard(shard) in self.shards.iter() {
            let shard = shard.lock();
            counts.intervals += shard.exits;
            counts.timed += shard.timed_exits;
            counts.called += shard.called_exits;
        }
        counts
    }

    /// The layer's time in its callbacks, as every thread sampled it: the
    /// kept samples' time scaled to the callbacks of the dropped ones too.
    pub(crate) fn callback_time(&self) -> CallbackTime {
        let (mut kept_ns, mut kept, mut dropped, mut sampled) = (0u64, 0u64, 0u64, 0u64);
        for PaddedShard(shard) in self.shards.iter() {
            let shard = shard.lock();
            kept_ns = kept_ns.saturating_add(shard.callbacks_ns);
            kept = kept.saturating_add(shard.callbacks);
            dropped = dropped.saturating_add(shard.callbacks_dropped);
            sampled = sampled.saturating_add(shard.callbacks_sampled);
        }
        let callbacks = kept.saturating_add(dropped);
        let ns = if kept > 0 {
            (kept_ns as f64 * callbacks as f64 / kept as f64) as u64
        } else {
            0
        };
        CallbackTime {
            ns,
            callbacks,
            sampled,
            dropped,
        }
    }

    /// The kept samples of every thread by callsite tag: the weighted time
    /// and the callbacks they stand for.
    pub(crate) fn callbacks_by_tag(&self) -> FxHashMap<u32, (u64, u64)> {
        let mut by_tag: FxHashMap<u32, (u64, u64)> = FxHashMap::default();
        for PaddedShard(shard) in self.shards.iter() {
            for (&tag, &(ns, callbacks)) in &shard.lock().callbacks_by_tag {
                let sum = by_tag.entry(tag).or_default();
                sum.0 = sum.0.saturating_add(ns);
                sum.1 = sum.1.saturating_add(callbacks);
            }
        }
        by_tag
    }

    /// Counts an exit of a span of callsite `tag` that was not the innermost
    /// entered on this thread (whose shard is `local`). Out of line: a
    /// program that nests its guards never comes here.
    #[cold]
    #[inline(never)]
    pub(crate) fn misnested_exit(&self, local: &ShardLock, tag: u32) {
        let _pause = PauseCounting::new();
        *local.lock().misnested_by_tag.entry(tag).or_default() += 1;
    }

    /// Every thread's misnested exits by callsite tag.
    pub(crate) fn misnested_by_tag(&self) -> FxHashMap<u32, u64> {
        let mut by_tag: FxHashMap<u32, u64> = FxHashMap::default();
        for PaddedShard(shard) in self.shards.iter() {
            for (&tag, &exits) in &shard.lock().misnested_by_tag {
                *by_tag.entry(tag).or_default() += exits;
            }
        }
        by_tag
    }

    /// Takes open span `id` out of whichever shard holds it but `local`,
    /// which the caller has searched already under its own lock.
    fn take_foreign_from(&self, local: &ShardLock, id: u64) -> Option<SpanState> {
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
        let on_worker = shard.on_runtime_worker();
        match shard.callsites.get_mut(&key) {
            Some(acc) => {
                acc.record(span, on_worker);
                if span.wall_ns >= LONG_SPAN_NS {
                    acc.keep_long(span);
                }
            }
            None => self.record_first(shard, key, meta, span),
        }
        let grouped = span.group != [0; super::groups::MAX_FIELDS];
        let group = grouped.then(|| self.record_group(shard, key, meta, span));
        if let Some(parent) = parent {
            let edge_key = (CallsiteKey::of(parent), key);
            match shard.edges.get_mut(&edge_key) {
                Some(edge) => {
                    edge.calls += 1;
                    edge.child_busy_ns = edge.child_busy_ns.saturating_add(span.busy_ns);
                }
                None => self.first_edge(shard, edge_key, parent, span),
            }
            if grouped || span.parent_group != 0 {
                let child_group = group.map_or(0, |g| super::groups::fold(&g));
                let edge_key = (edge_key.0, span.parent_group, key, child_group);
                self.record_group_edge(shard, edge_key, parent, span);
            }
        }
    }

    /// Counts a span of callsite `child` that outlived its parent of
    /// callsite `parent` and closed it, on this thread (whose shard, locked,
    /// is `shard`), where the child's edge was just recorded. Out of line:
    /// only a parent closed by its child comes here.
    #[cold]
    #[inline(never)]
    pub(crate) fn outlived(
        &self,
        shard: &mut Shard,
        parent: &'static Metadata<'static>,
        child: &'static Metadata<'static>,
    ) {
        let edge_key = (CallsiteKey::of(parent), CallsiteKey::of(child));
        if let Some(edge) = shard.edges.get_mut(&edge_key) {
            edge.outlived = edge.outlived.saturating_add(1);
        }
    }

    /// A closed span's edge by group, when it or its parent has one: out
    /// of line, as only grouped spans and their children come here. Past
    /// the edge cap the edge is left to the report's estimate.
    #[cold]
    #[inline(never)]
    fn record_group_edge(
        &self,
        shard: &mut Shard,
        edge_key: GroupEdgeKey,
        parent: &'static Metadata<'static>,
        span: &ClosedSpan,
    ) {
        if let Some(edge) = shard.group_edges.get_mut(&edge_key) {
            edge.calls += 1;
            edge.child_busy_ns = edge.child_busy_ns.saturating_add(span.busy_ns);
            return;
        }
        if self.group_edges_admitted.fetch_add(1, Ordering::Relaxed) >= self.max_edges {
            self.group_edges_admitted.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let _pause = PauseCounting::new();
        shard.group_edges.insert(
            edge_key,
            EdgeAcc {
                parent: Some(parent),
                calls: 1,
                child_busy_ns: span.busy_ns,
                outlived: 0,
            },
        );
    }

    /// The interval from which spans are timed on the CPU, ns; `None`
    /// when CPU time is off or cannot be read here.
    #[inline]
    pub(crate) fn cpu_threshold_ns(&self) -> Option<u32> {
        self.cpu_threshold_ns
    }

    /// A span of `meta` opened first on a thread
    /// ([`super::stack::Stack::first_opened`]), counted in `shard`,
    /// the thread's, locked. Out of line: once a thread. At most
    /// [`THREAD_START_CALLSITES`] callsites a shard; past them a start is
    /// not counted.
    #[cold]
    #[inline(never)]
    pub(crate) fn thread_started(&self, shard: &mut Shard, meta: &'static Metadata<'static>) {
        let key = CallsiteKey::of(meta);
        if let Some(n) = shard.thread_starts.get_mut(&key) {
            *n = n.saturating_add(1);
        } else if shard.thread_starts.len() < THREAD_START_CALLSITES {
            let _pause = PauseCounting::new();
            shard.thread_starts.insert(key, 1);
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
        let on_worker = shard.on_runtime_worker();
        if !self.admit_callsite(key, meta) {
            self.dropped_spans.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let acc = shard
            .callsites
            .entry(key)
            .or_insert_with(|| CallsiteAcc::empty(meta, self.layout));
        acc.record(span, on_worker);
        if span.wall_ns >= LONG_SPAN_NS {
            acc.keep_long(span);
        }
    }

    /// A closed span of a grouped callsite, into its group: out of line,
    /// as only spans with grouped fields come here. Returns the group it
    /// went to: its own, or [`OTHER`](super::groups::OTHER) past the cap.
    #[cold]
    #[inline(never)]
    fn record_group(
        &self,
        shard: &mut Shard,
        key: CallsiteKey,
        meta: &'static Metadata<'static>,
        span: &ClosedSpan,
    ) -> GroupKey {
        let on_worker = shard.on_runtime_worker();
        if let Some(acc) = shard.groups.get_mut(&(key, span.group)) {
            acc.record(span, on_worker);
            return span.group;
        }
        let Some(groups) = &self.groups else {
            return span.group;
        };
        // A group's first span on this thread, or a span past the cap.
        let group = groups.admit(key, span.group);
        let _pause = PauseCounting::new();
        shard
            .groups
            .entry((key, group))
            .or_insert_with(|| CallsiteAcc::empty(meta, self.layout))
            .record(span, on_worker);
        group
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
                    outlived: 0,
                },
            );
        } else {
            self.edges_admitted.fetch_sub(1, Ordering::Relaxed);
            self.dropped_edges.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Admits a callsite under the cap; visited once per callsite per thread.
    fn admit_callsite(&self, key: CallsiteKey, meta: &'static Metadata<'static>) -> bool {
        if self.admitted.contains_key(&key) {
            return true;
        }
        match self.admitted.entry(key) {
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

    /// Every shard's callsites and edges added up, and the spans still
    /// open, each shard locked only while it is copied (and its open spans
    /// counted).
    pub(crate) fn merged(&self) -> Merged {
        let mut total = Merged::default();
        for PaddedShard(shard) in self.shards.iter() {
            let copy = {
                let shard = shard.lock();
                for state in shard.open.iter() {
                    total
                        .open
                        .entry(CallsiteKey::of(state.meta))
                        .or_insert_with(|| OpenAcc::new(state.meta))
                        .add(state);
                }
                for (key, &n) in &shard.thread_starts {
                    let sum = total.thread_starts.entry(*key).or_default();
                    *sum = sum.saturating_add(n);
                }
                (
                    shard.callsites.clone(),
                    shard.edges.clone(),
                    shard.groups.clone(),
                    shard.group_edges.clone(),
                )
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
                total.edges.entry(key).or_default().merge(&edge);
            }
            for (key, acc) in copy.2 {
                match total.groups.get_mut(&key) {
                    Some(mine) => mine.merge(&acc),
                    None => {
                        total.groups.insert(key, acc);
                    }
                }
            }
            for (key, edge) in copy.3 {
                total.group_edges.entry(key).or_default().merge(&edge);
            }
        }
        total
    }

    /// Calls `f` with every thread's accumulator of every callsite, one at
    /// a time, holding that thread's lock only for that one callsite: a
    /// reader (the Prometheus scrape) delays a span on that thread by one
    /// callsite's worth of reading at most, never by the whole table.
    #[cfg(feature = "prometheus")]
    pub(crate) fn for_each_callsite(&self, mut f: impl FnMut(&CallsiteAcc)) {
        let mut keys = Vec::new();
        for PaddedShard(shard) in self.shards.iter() {
            keys.clear();
            keys.extend(shard.lock().callsites.keys().copied());
            for key in &keys {
                if let Some(acc) = shard.lock().callsites.get(key) {
                    f(acc);
                }
            }
        }
    }

    /// Calls `f` with every thread's accumulator of every group, as
    /// [`for_each_callsite`](Self::for_each_callsite) does.
    #[cfg(feature = "prometheus")]
    pub(crate) fn for_each_group(&self, mut f: impl FnMut(&GroupKey, &CallsiteAcc)) {
        let mut keys = Vec::new();
        for PaddedShard(shard) in self.shards.iter() {
            keys.clear();
            keys.extend(shard.lock().groups.keys().copied());
            for key in &keys {
                if let Some(acc) = shard.lock().groups.get(key) {
                    f(&key.1, acc);
                }
            }
        }
    }

    /// Number of threads that have recorded at least one span.
    pub(crate) fn threads(&self) -> usize {
        self.shards
            .iter()
            .filter(|PaddedShard(shard)| !shard.lock().callsites.is_empty())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use tracing_core::Level;

    use super::*;

    /// A published tag is read back for its span only: a span that took
    /// the slot since and a span never published read as unknown (the
    /// registry is asked then).
    #[test]
    fn open_tags_are_read_back_for_their_own_span_only() {
        let tags = OpenTags::new();
        tags.publish(7, 42);
        assert_eq!(tags.get(7), Some(42));
        assert_eq!(tags.get(8), None);
        // Another id in span 7's slot (registry ids are slab slots; any
        // two may share a slot here).
        let slot_of = |id| tags.slot(id).0 as *const AtomicU64;
        let mate = (8..).find(|&id| slot_of(id) == slot_of(7)).unwrap();
        tags.publish(mate, 9);
        assert_eq!(tags.get(mate), Some(9));
        assert_eq!(tags.get(7), None, "its slot is another span's now");
        // Tag 0 (no callsite) is published and read as itself.
        tags.publish(11, 0);
        assert_eq!(tags.get(11), Some(0));
        // Ids of one slab slot, generations apart (only their high bits
        // differ), in one slot here: the newer is not read as the older.
        let a = 5;
        let b = (1..)
            .map(|generation: u64| a | (generation << 40))
            .find(|&b| slot_of(b) == slot_of(a))
            .unwrap();
        tags.publish(a, 3);
        tags.publish(b, 4);
        assert_eq!((tags.get(a), tags.get(b)), (None, Some(4)));
    }

    static META: Metadata<'static> = tracing_core::metadata! {
        name: "moves",
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
        fn metadata(&self) -> &Metadata<'_> {
            &META
        }
    }

    /// An entered interval of 1 ns, none of it timed on the CPU.
    fn one_ns_interval() -> FinishedFrame {
        FinishedFrame {
            busy_ns: 1,
            entered_at: 0,
            ended_at: 1,
            self_ns: 1,
            alloc: None,
            events: [0; 5],
            events_ns: 0,
            cpu: None,
            sampled: false,
            by_calls: false,
        }
    }

    /// A thread records from its first interval's entry to its last
    /// interval's exit, or to the snapshot while a span it opened is open;
    /// a shard no interval ended in recorded nothing.
    #[test]
    fn a_thread_records_from_its_first_interval_to_its_last_or_while_a_span_is_open() {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        let shards = Shards::new(2, 1_000_000, 16, 16, None, None);
        // Raw readings 1 ms apart, read from the clock itself: its raw unit
        // is not the nanosecond everywhere.
        let raw_after = |ns: u64| {
            let t0 = clock.raw();
            while clock.delta_as_nanos(t0, clock.raw()) < ns {}
            clock.raw()
        };
        let first = raw_after(0);
        let second = raw_after(1_000_000);
        let local = shards.local();
        std::thread::scope(|s| {
            s.spawn(|| {
                shards.local();
            });
        });
        shards.exited(
            local,
            7,
            &FinishedFrame {
                entered_at: first,
                ended_at: first,
                ..one_ns_interval()
            },
        );
        shards.exited(
            local,
            7,
            &FinishedFrame {
                entered_at: second,
                ended_at: second,
                ..one_ns_interval()
            },
        );
        let now = raw_after(1_000_000);
        let closed = shards.threads_active_ns(&clock, start, now);
        assert!((1_000_000..2_000_000).contains(&closed), "{closed}");
        local
            .lock()
            .open
            .insert(8, SpanState::new(&META, None, 0, None));
        let open = shards.threads_active_ns(&clock, start, now);
        assert!(open >= closed + 1_000_000, "{closed} then {open}");
    }

    #[test]
    fn a_span_s_intervals_on_another_thread_are_summed_there_and_added_at_its_close() {
        let shards = Shards::new(2, 1_000_000, 16, 16, None, None);
        // This thread's shard first: a thread that exited gives its shard
        // to the next thread that asks.
        let local = shards.local();
        // Opened on another thread (a runtime worker), which keeps its state.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut state = SpanState::new(&META, None, 0, None);
                state.sums.busy_ns = 5;
                shards.local().lock().open.insert(7, state);
            });
        });
        let done = one_ns_interval();
        // Two intervals end here: the first starts a visit and counts it in
        // the span's slot; neither moves the state nor touches it.
        shards.exited(local, 7, &done);
        shards.exited(local, 7, &done);
        assert!(local.lock().open.get(7).is_none());
        assert_eq!(local.lock().visits.get(&7).map(|v| v.busy_ns), Some(2));
        let owner = shards.shards.iter().find_map(|PaddedShard(shard)| {
            let shard = shard.lock();
            shard.open.get(7).map(|s| s.sums.busy_ns)
        });
        assert_eq!(owner, Some(5), "the state stays where it opened");
        assert_eq!(shards.visits.count(7), 1);
        assert_eq!(
            shards.exit_counts(),
            ExitCounts {
                intervals: 2,
                timed: 0,
                called: 0
            }
        );
        // Its close here adds the visit to the state and leaves nothing
        // behind in any shard.
        let closed = shards.closing(local, 7, None).expect("the span is open");
        assert_eq!((closed.sums.busy_ns, closed.sums.intervals), (7, 2));
        let left = shards
            .shards
            .iter()
            .filter(|PaddedShard(shard)| {
                let shard = shard.lock();
                shard.open.get(7).is_some() || shard.visits.contains_key(&7)
            })
            .count();
        assert_eq!(left, 0);
        assert_eq!(shards.visits.count(7), 0);
        // A span no shard holds (opened before the layer saw it) starts a
        // visit all the same; its interval counts, and its close finds no
        // state and throws the visit away.
        shards.exited(local, 8, &done);
        assert_eq!(local.lock().visits.len(), 1);
        assert_eq!(shards.exit_counts().intervals, 3);
        assert!(shards.closing(local, 8, None).is_none());
        assert!(local.lock().visits.is_empty());
        assert!(!shards.may_have_visits(8));
    }

    #[test]
    fn a_close_takes_its_own_visits_wherever_they_are_and_leaves_a_slot_mate_s() {
        let shards = Shards::new(2, 1_000_000, 16, 16, None, None);
        let local = shards.local();
        // Two span ids counted in the same slot.
        let a = 7u64;
        let b = (8..)
            .find(|&id| std::ptr::eq(shards.visits.slot(id), shards.visits.slot(a)))
            .expect("a slot mate");
        let done = one_ns_interval();
        shards
            .local()
            .lock()
            .open
            .insert(a, SpanState::new(&META, None, 0, None));
        // Both visited on two other threads (each keeps its shard: the
        // scopes are nested so neither thread's shard is reused).
        std::thread::scope(|s| {
            s.spawn(|| {
                shards.exited(shards.local(), a, &done);
                shards.exited(shards.local(), b, &done);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        shards.exited(shards.local(), a, &done);
                        shards.exited(shards.local(), a, &done);
                        shards.exited(shards.local(), b, &done);
                    });
                });
            });
        });
        assert_eq!(shards.visits.count(a), 4);
        let found = local.lock().open.remove(a).copied();
        let closed = shards.closing(local, a, found).expect("the span is open");
        assert_eq!((closed.sums.busy_ns, closed.sums.intervals), (3, 3));
        // Its slot mate's visits are left, and counted.
        assert_eq!(shards.visits.count(b), 2);
        assert!(shards.may_have_visits(a), "a slot shared: maybe");
        let left: usize = shards
            .shards
            .iter()
            .map(|PaddedShard(shard)| {
                let shard = shard.lock();
                assert!(!shard.visits.contains_key(&a));
                shard.visits.len()
            })
            .sum();
        assert_eq!(left, 2);
        assert!(shards.closing(local, b, None).is_none());
        assert_eq!(shards.visits.count(a), 0);
    }
}
