//! The state of the spans a thread opened that are still open: the layer's
//! per-span storage, kept in the opening thread's shard (see
//! [`super::shards`]) instead of the registry's extensions.

use rustc_hash::FxHashMap;
use tracing_core::Metadata;

use super::alloc::{AllocCounters, PauseCounting};
use super::cpu::IntervalCpu;
use super::groups::{GroupKey, MAX_FIELDS};

/// What a popped frame measured, in nanoseconds and allocation counts:
/// what an entered interval adds to its open span ([`Sums::absorb`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishedFrame {
    pub(crate) busy_ns: u64,
    /// The clock's raw readings at the interval's entry and exit: the
    /// thread was recording spans between them ([`super::shards::Shard::active`]).
    pub(crate) entered_at: u64,
    pub(crate) ended_at: u64,
    pub(crate) self_ns: u64,
    /// What it allocated, where the counting allocator counts (`None`
    /// without it: nothing to add).
    pub(crate) alloc: Option<IntervalAlloc>,
    pub(crate) events: [u32; 5],
    /// The subscriber's time handling them, ns.
    pub(crate) events_ns: u32,
    /// What the interval measured on the CPU, when it was timed.
    pub(crate) cpu: Option<IntervalCpu>,
    /// It was timed as a sample of its callsite's short intervals.
    pub(crate) sampled: bool,
    /// Its CPU time was read with system calls at exit (the task clock was
    /// not open, or the thread was switched out): the dearer kind of timed
    /// interval, counted apart for the overhead estimate.
    pub(crate) by_calls: bool,
}

/// What an entered interval allocated: in it (nothing for a re-entry,
/// already counted by the interval around it), and in it outside the
/// frames above it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IntervalAlloc {
    pub(crate) inclusive: AllocCounters,
    pub(crate) own: AllocCounters,
}

/// What an open span's entered intervals added up to: the part of its
/// state that sums, kept where the intervals ended ([`SpanState::sums`] on
/// the thread that opened it, a visit's on each thread it moved to; see
/// [`super::shards`]) and added up at its close.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sums {
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) alloc: AllocCounters,
    pub(crate) self_alloc_bytes: u64,
    pub(crate) self_allocs: u64,
    pub(crate) events: [u32; 5],
    /// The subscriber's time handling them, ns.
    pub(crate) events_ns: u64,
    /// Entered intervals, those of them timed on the CPU, and what those
    /// measured.
    pub(crate) intervals: u32,
    pub(crate) timed_intervals: u32,
    pub(crate) cpu: IntervalCpu,
    /// Of the timed intervals, the sampled ones (short, one in
    /// [`super::cpu::SAMPLE_EVERY`]), and what they measured.
    pub(crate) sampled_intervals: u32,
    pub(crate) sampled: IntervalCpu,
    /// The task that ran its first interval here ([`super::task`]; 0: none,
    /// as on every thread without the `tokio` feature): its owner.
    pub(crate) task: u64,
    /// The clock's raw reading at the owner's latest exit (0 before one):
    /// where a span ended when a child outlived it and closed it
    /// ([`SpanState::parent_id`]).
    pub(crate) last_ended: u64,
    /// What the intervals other tasks ran added, and the latest of their
    /// exits: a task spawned with `.in_current_span()` polling the span of
    /// the request it was spawned in. Left out of a span that ended at its
    /// owner's last exit.
    pub(crate) other: OtherTasks,
}

/// What a span's intervals run by tasks other than its owner added
/// ([`Sums::other`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OtherTasks {
    pub(crate) intervals: u32,
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) last_ended: u64,
}

impl Sums {
    /// Adds what one entered interval (a popped frame) measured, run by
    /// task `task` ([`super::task::current`]).
    #[inline]
    pub(crate) fn absorb(&mut self, done: &FinishedFrame, task: u64) {
        // Nanoseconds in a u64 wrap after 584 years of busy time: the sums
        // need no saturation (an instruction each, on every exit).
        self.busy_ns = self.busy_ns.wrapping_add(done.busy_ns);
        self.self_ns = self.self_ns.wrapping_add(done.self_ns);
        if let Some(alloc) = &done.alloc {
            self.alloc.add(&alloc.inclusive);
            self.self_alloc_bytes = self.self_alloc_bytes.wrapping_add(alloc.own.alloc_bytes);
            self.self_allocs = self.self_allocs.wrapping_add(alloc.own.allocs);
        }
        // Most intervals see no event (and no event's time without one).
        if done.events != [0; 5] {
            for (mine, theirs) in self.events.iter_mut().zip(done.events) {
                *mine = mine.saturating_add(theirs);
            }
            self.events_ns = self.events_ns.saturating_add(u64::from(done.events_ns));
        }
        if self.intervals == 0 {
            self.task = task;
        }
        self.intervals = self.intervals.saturating_add(1);
        // A span's intervals on one thread end in order; sums from other
        // threads take the later of the two (`add`).
        if task == self.task {
            self.last_ended = done.ended_at;
        } else {
            self.other.absorb(done);
        }
        if let Some(cpu) = &done.cpu {
            self.timed_intervals = self.timed_intervals.saturating_add(1);
            self.cpu.add(cpu);
            if done.sampled {
                self.sampled_intervals = self.sampled_intervals.saturating_add(1);
                self.sampled.add(cpu);
            }
        }
    }

    /// Adds the sums of the same span's intervals kept elsewhere.
    pub(crate) fn add(&mut self, other: &Sums) {
        self.add_tasks(other);
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.alloc.add(&other.alloc);
        self.self_alloc_bytes = self.self_alloc_bytes.wrapping_add(other.self_alloc_bytes);
        self.self_allocs = self.self_allocs.wrapping_add(other.self_allocs);
        for (mine, theirs) in self.events.iter_mut().zip(other.events) {
            *mine = mine.saturating_add(theirs);
        }
        self.events_ns = self.events_ns.saturating_add(other.events_ns);
        self.intervals = self.intervals.saturating_add(other.intervals);
        self.timed_intervals = self.timed_intervals.saturating_add(other.timed_intervals);
        self.cpu.add(&other.cpu);
        self.sampled_intervals = self
            .sampled_intervals
            .saturating_add(other.sampled_intervals);
        self.sampled.add(&other.sampled);
    }

    /// Adds the owner's and the other tasks' parts of `other`, the same
    /// span's intervals kept elsewhere, before its counts are added. Where
    /// the two saw a different task first, each one's other tasks are
    /// taken as the other's owner: exact while one other task ran the span
    /// (a request's task and the one it spawned).
    fn add_tasks(&mut self, other: &Sums) {
        if other.intervals == 0 {
            return;
        }
        if self.intervals == 0 {
            (self.task, self.last_ended, self.other) = (other.task, other.last_ended, other.other);
        } else if other.task == self.task {
            self.last_ended = self.last_ended.max(other.last_ended);
            self.other.add(&other.other);
        } else {
            self.last_ended = self.last_ended.max(other.other.last_ended);
            self.other.add(&OtherTasks {
                intervals: other.intervals.saturating_sub(other.other.intervals),
                busy_ns: other.busy_ns.saturating_sub(other.other.busy_ns),
                self_ns: other.self_ns.saturating_sub(other.other.self_ns),
                last_ended: other.last_ended,
            });
        }
    }
}

impl OtherTasks {
    #[inline]
    fn absorb(&mut self, done: &FinishedFrame) {
        self.intervals = self.intervals.saturating_add(1);
        self.busy_ns = self.busy_ns.wrapping_add(done.busy_ns);
        self.self_ns = self.self_ns.wrapping_add(done.self_ns);
        self.last_ended = done.ended_at;
    }

    fn add(&mut self, other: &OtherTasks) {
        self.intervals = self.intervals.saturating_add(other.intervals);
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.last_ended = self.last_ended.max(other.last_ended);
    }
}

/// What the layer keeps for one open span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanState {
    pub(crate) meta: &'static Metadata<'static>,
    /// The parent's callsite, for call edges.
    pub(crate) parent: Option<&'static Metadata<'static>>,
    /// The parent span's id (0: none or not known). A span whose last
    /// reference a child held (a task spawned inside it, with the span as
    /// its parent, that outlived it) closes only when that child does:
    /// the child's close tells the parent's, which then ends at its last
    /// exit ([`crate::layer`]'s `on_close`).
    pub(crate) parent_id: u64,
    /// The parent's group when this span opened, folded
    /// ([`super::groups::fold`]); 0 when it had none or is not known.
    pub(crate) parent_group: u64,
    pub(crate) created: u64,
    pub(crate) rss_at_open: Option<u64>,
    /// Its intervals that ended on the thread that opened it.
    pub(crate) sums: Sums,
    /// The hashes of its grouped fields' values ([`super::groups`]); all 0
    /// when the layer groups by nothing this span has.
    pub(crate) group: GroupKey,
}

impl SpanState {
    /// Makes this slot's state that of a span just opened, field by field:
    /// a state built and then moved into its slot (about 300 bytes) was a
    /// `memcpy` of a tenth of the layer's instructions per span
    /// (docs/benchmarks.md).
    #[inline(always)]
    fn reopen(
        &mut self,
        meta: &'static Metadata<'static>,
        parent: Option<&'static Metadata<'static>>,
        created: u64,
        rss_at_open: Option<u64>,
    ) {
        self.meta = meta;
        self.parent = parent;
        self.parent_id = 0;
        self.parent_group = 0;
        self.created = created;
        self.rss_at_open = rss_at_open;
        self.sums = Sums::default();
        self.group = [0; MAX_FIELDS];
    }

    pub(crate) fn new(
        meta: &'static Metadata<'static>,
        parent: Option<&'static Metadata<'static>>,
        created: u64,
        rss_at_open: Option<u64>,
    ) -> Self {
        Self {
            meta,
            parent,
            parent_id: 0,
            parent_group: 0,
            created,
            rss_at_open,
            sums: Sums::default(),
            group: [0; MAX_FIELDS],
        }
    }
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

    /// Opens span `id`: its state, fresh, written in place (see
    /// [`SpanState::reopen`]) and returned. Growing is the layer's
    /// allocation, not the span's.
    #[inline(always)]
    pub(crate) fn open(
        &mut self,
        id: u64,
        meta: &'static Metadata<'static>,
        parent: Option<&'static Metadata<'static>>,
        created: u64,
        rss_at_open: Option<u64>,
    ) -> &mut SpanState {
        // At most one map insert below: the previous span's.
        if self.slot_of.len() == self.slot_of.capacity()
            || (self.free.is_empty() && self.slots.len() == self.slots.capacity())
        {
            self.grow();
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].reopen(meta, parent, created, rss_at_open);
                slot
            }
            None => {
                self.slots
                    .push(SpanState::new(meta, parent, created, rss_at_open));
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
        &mut self.slots[slot as usize]
    }

    /// Adds span `id` with `state`.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, id: u64, state: SpanState) {
        *self.open(
            id,
            state.meta,
            state.parent,
            state.created,
            state.rss_at_open,
        ) = state;
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

    /// The state of every open span, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SpanState> {
        let unmapped = match self.last {
            Some(Last {
                slot,
                in_map: false,
                ..
            }) => Some(slot),
            _ => None,
        };
        self.slot_of
            .values()
            .copied()
            .chain(unmapped)
            .filter_map(|slot| self.slots.get(slot as usize))
    }

    /// Whether no span is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.slot_of.is_empty() && !matches!(self.last, Some(Last { in_map: false, .. }))
    }
}

#[cfg(test)]
mod tests {
    use tracing_core::Level;

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
        open.get_mut(3).unwrap().sums.busy_ns = 7;
        assert_eq!(open.remove(3).map(|s| s.sums.busy_ns), Some(7));
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
                        s.sums.busy_ns += add;
                        (s.created, s.sums.busy_ns)
                    });
                    let theirs = model.get_mut(&id).map(|m| {
                        m.1 += add;
                        *m
                    });
                    assert_eq!(ours, theirs, "step {step}: get_mut({id})");
                }
                1 | 3 => {
                    let ours = open.remove(id).map(|s| (s.created, s.sums.busy_ns));
                    assert_eq!(ours, model.remove(&id), "step {step}: remove({id})");
                    live.retain(|&l| l != id);
                }
                _ => {
                    let ours = open.get(id).map(|s| (s.created, s.sums.busy_ns));
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
        open.get_mut(1).unwrap().sums.busy_ns = 5;
        assert_eq!(open.remove(1).map(|s| s.sums.busy_ns), Some(5));
        assert!(open.get_mut(1).is_none(), "a closed span is not found");
        open.insert(3, SpanState::new(&META, None, 30, None));
        assert!(open.get_mut(1).is_none());
        // Alternating look-ups each find their own state.
        for (id, busy) in [(2, 1), (3, 2), (2, 3), (2, 4), (3, 5)] {
            open.get_mut(id).unwrap().sums.busy_ns += busy;
        }
        assert_eq!(open.get(2).map(|s| s.sums.busy_ns), Some(8));
        assert_eq!(open.get(3).map(|s| s.sums.busy_ns), Some(7));
        assert_eq!(open.remove(3).map(|s| s.created), Some(30));
        assert!(open.get_mut(3).is_none());
        assert_eq!(open.get_mut(2).map(|s| s.created), Some(20));
    }

    /// An interval of `busy` ns that ended at `at`.
    fn interval(busy: u64, at: u64) -> FinishedFrame {
        FinishedFrame {
            busy_ns: busy,
            entered_at: at - busy,
            ended_at: at,
            self_ns: busy,
            alloc: None,
            events: [0; 5],
            events_ns: 0,
            cpu: None,
            sampled: false,
            by_calls: false,
        }
    }

    #[test]
    fn the_owner_task_s_exits_are_told_from_the_others_wherever_they_ended() {
        // Where the span opened: its owner (task 1) first, then the task it
        // spawned (task 2).
        let mut here = Sums::default();
        here.absorb(&interval(10, 100), 1);
        here.absorb(&interval(50, 400), 2);
        assert_eq!((here.task, here.last_ended), (1, 100));
        assert_eq!((here.other.busy_ns, here.other.last_ended), (50, 400));
        // On another thread, the spawned task first, then the owner.
        let mut visit = Sums::default();
        visit.absorb(&interval(70, 500), 2);
        visit.absorb(&interval(5, 600), 1);
        visit.absorb(&interval(20, 900), 2);
        here.add(&visit);
        assert_eq!(here.task, 1);
        assert_eq!(here.last_ended, 600);
        assert_eq!((here.other.busy_ns, here.other.last_ended), (140, 900));
        assert_eq!((here.intervals, here.other.intervals), (5, 3));
        assert_eq!(here.busy_ns, 155);
        // Added the other way round, the same.
        let mut there = visit;
        let mut opened = Sums::default();
        opened.absorb(&interval(10, 100), 1);
        opened.absorb(&interval(50, 400), 2);
        there.add(&opened);
        assert_eq!((there.task, there.last_ended), (2, 900));
        assert_eq!((there.other.busy_ns, there.other.last_ended), (15, 600));
        assert_eq!((there.intervals, there.other.intervals), (5, 2));
        // Without tasks, every exit is the owner's.
        let mut plain = Sums::default();
        plain.absorb(&interval(10, 100), 0);
        plain.absorb(&interval(10, 300), 0);
        assert_eq!((plain.last_ended, plain.other.last_ended), (300, 0));
    }
}
