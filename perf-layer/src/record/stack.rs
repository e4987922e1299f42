//! The per-thread stack of entered spans.
//!
//! The stack is what makes self time cheap. Exiting a span charges its
//! interval to the frame below as child time, so each frame's self time and
//! self allocation are its inclusive figures minus its children's, without
//! ever looking up the parent span. Entering is one clock read and one push
//! to thread-local memory, touching no other frame; exiting writes the
//! frame's totals into the span's state in the store, where they survive the
//! span moving to another thread.
//!
//! One file although over 400 lines (with its tests): push and pop, the
//! timed frames beside them and the forgetting of closed spans all keep one
//! invariant (a frame's child time is what the frames above it measured),
//! which reads best in one place.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Arc;

use super::alloc::{self, AllocCounters};
use super::cpu::{self, IntervalCpu, Pace, ThreadCpu, Timing};
use super::event_time;
use super::heap;
use super::open_spans::{FinishedFrame, IntervalAlloc};
use super::shards::{ShardLock, Shards};
use super::task_clock;
use super::watch::Watch;

/// One entered span on this thread's stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) span: u64,
    entered_at: u64,
    /// Nanoseconds this thread spent in frames above this one.
    child_ns: u64,
    alloc_at_enter: AllocCounters,
    /// What this thread allocated in frames above this one.
    child_alloc: AllocCounters,
    pub(crate) events: [u32; 5],
    /// The subscriber's time handling those events, ns (saturating: an
    /// interval of over 4 s of events keeps 4 s). Beside `events`, in what
    /// was the frame's padding.
    pub(crate) events_ns: u32,
    /// The same span is already entered lower on this stack: this interval
    /// is inside that one, so its busy time and allocation are not counted
    /// twice.
    reentry: bool,
    /// The frame is timed on the CPU: its reading at enter is in
    /// [`Stack::timed`].
    timed: bool,
    /// Timed as the sample of its callsite's short intervals.
    sampled: bool,
    /// The span's callsite tag, which allocations made while this frame is
    /// innermost carry ([`super::heap`]).
    tag: u32,
}

impl Frame {
    /// Charges an interval of a frame above this one: this frame was not
    /// innermost meanwhile.
    #[inline]
    fn add_child(&mut self, ns: u64, alloc: &AllocCounters) {
        self.child_ns = self.child_ns.saturating_add(ns);
        self.child_alloc.add(alloc);
    }
}

/// A frame timed on the CPU ([`super::cpu`]): kept beside the stack, so
/// that the frames of spans not timed (almost all) carry nothing for it.
#[derive(Debug, Clone, Copy)]
struct TimedFrame {
    span: u64,
    /// The thread's CPU time and switches at enter.
    start: ThreadCpu,
    /// The task clock's `lock` word at enter, where it is open
    /// ([`super::task_clock`]).
    seq: Option<u32>,
    /// Off-CPU time of the timed frames above this one: the part of its
    /// children's busy time that was not on the CPU.
    child_off_cpu_ns: u64,
    /// The part of it they were preempted.
    child_preempted_ns: u64,
    /// Their context switches.
    child_voluntary: u64,
    child_involuntary: u64,
}

/// What a timed frame's exit read before its timestamp.
#[derive(Debug, Clone, Copy)]
enum AtExit {
    /// Nothing: the thread was not switched out of the interval (or the
    /// frame is not timed).
    Unswitched,
    /// The thread's CPU time (`None`: the platform gave none), and the
    /// task clock's word read before it (`None`: not open).
    Read(Option<u64>, Option<u32>),
}

/// The deepest stack kept per thread. Frames past it are not pushed (their
/// spans' busy time on this thread goes unmeasured) so a program that enters
/// spans without ever exiting them cannot grow memory without bound.
pub(crate) const MAX_DEPTH: usize = 256;

/// Entered spans of one layer instance on one thread.
#[derive(Debug, Default)]
pub(crate) struct Stack {
    frames: Vec<Frame>,
    /// The registry has said this thread was outside every span (that this
    /// layer sees) at a moment when the stack was empty, so every span
    /// entered since is on the stack. Until then spans may have been entered
    /// before the layer existed on this thread (it was added by a `reload`)
    /// and only the registry knows them.
    complete: bool,
    /// The callsite tags of spans seen on this thread, by span id: a span
    /// created here is entered here almost always, and an async span polled
    /// here again and again. Direct-mapped; a miss asks the span's state.
    tags: TagCache,
    /// The timed frames, in stack order.
    timed: Vec<TimedFrame>,
    /// How long each callsite's intervals last on this thread, by tag: the
    /// decision to time the next one on the CPU ([`super::cpu`]). Grown to a
    /// callsite's tag at its first timed enter here (8 bytes a callsite;
    /// tags are dense and bounded by [`heap::MAX_TAGS`]).
    pace: Vec<Pace>,
    /// This thread's task clock was open at the last timed reading: the
    /// threshold is then the clock's ([`cpu::clock_threshold_ns`]).
    clock_open: bool,
    /// This thread's shard, and the store it is in ([`Stack::shard`]).
    shard: Option<(NonNull<Shards>, NonNull<ShardLock>)>,
    /// The counting allocator is the global one: frames read its counters
    /// and tag the thread's allocations. Without it (it is optional) they
    /// would read zeros and write a tag nothing reads, and the exit would
    /// add up zeros: 18 instructions an entered interval (callgrind,
    /// docs/benchmarks.md).
    /// Decided when the stack is made, after the layer was built: with the
    /// allocator installed, building the layer was counted.
    counts_allocs: bool,
    /// No span has opened on this thread since the stack was made (with
    /// the thread, at its first use of the layer): the next to open is the
    /// thread's first ([`Stack::first_opened`]). With two layers on one
    /// thread, an idle stack of one is dropped when the other first comes
    /// ([`first_stack`]) and made again later, and its thread counts again.
    unopened: bool,
    /// Where this thread publishes its innermost callsite for the
    /// background thread ([`super::watch`]): registered with the shard.
    watch: Option<Publisher>,
    /// Enters made while the stack was full ([`Stack::forget_due`]).
    full_enters: u32,
}

/// While the stack is full, the closed frames are looked for at one enter
/// in this many: each look asks the registry about every frame.
const FORGET_EVERY: u32 = 64;

/// A stack's watch and the pushes and pops it has published.
#[derive(Debug)]
struct Publisher {
    watch: Arc<Watch>,
    count: u32,
}

impl Publisher {
    #[inline]
    fn publish(&mut self, tag: u32) {
        self.count = self.count.wrapping_add(1);
        self.watch.publish(self.count, tag);
    }
}

impl Drop for Publisher {
    /// The stack is gone (its thread exits, or its layer is): inside no
    /// span any more.
    fn drop(&mut self) {
        self.publish(heap::TAG_NONE);
    }
}

/// Span id to callsite tag: 32 sets of two entries, the set chosen by the
/// low bits of the id, the least recently used entry of a set replaced.
/// The registry's ids carry a generation, so an id is not reused while a
/// stale entry could matter.
///
/// Two ways, not one: a slab slot's ids share their low bits on every
/// thread, so a connection's span, entered at every poll, shared its one
/// entry with the request spans other threads open in the same slot, and
/// on mini-redis about one enter in seven missed (each miss is a registry
/// look-up, [`crate::layer`]). With the entry used last kept, a span
/// entered between every two spans its set takes in stays.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct TagCache {
    /// Each set's entry used last first.
    sets: [[(u64, u32); 2]; TAG_SETS],
}

const TAG_SETS: usize = 32;

impl TagCache {
    #[inline]
    pub(crate) fn get(&mut self, span: u64) -> Option<u32> {
        let set = &mut self.sets[span as usize % TAG_SETS];
        if set[0].0 == span {
            return Some(set[0].1);
        }
        if set[1].0 == span {
            set.swap(0, 1);
            return Some(set[0].1);
        }
        None
    }

    #[inline]
    pub(crate) fn insert(&mut self, span: u64, tag: u32) {
        let set = &mut self.sets[span as usize % TAG_SETS];
        if set[0].0 != span {
            set[1] = set[0];
        }
        set[0] = (span, tag);
    }
}

/// What a thread's stack says about the current span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Current {
    /// No span is entered.
    None,
    /// The innermost entered span, and its callsite's tag as it was
    /// entered ([`heap::tag_of`]).
    Span { span: u64, tag: u32 },
    /// The stack cannot say: it is full (frames past it were not pushed),
    /// or it is empty but spans entered before this layer existed on this
    /// thread may still be entered (see [`Stack::mark_complete`]).
    Unknown,
}

impl Stack {
    /// Whether the span opening now is the first this thread opens: its
    /// start, as far as the layer can tell. A load and a branch a span.
    #[inline(always)]
    pub(crate) fn first_opened(&mut self) -> bool {
        if self.unopened {
            self.unopened = false;
            return true;
        }
        false
    }

    /// The innermost entered span, skipping re-entries as the registry's
    /// span stack does (its current span is the innermost entry that is not
    /// a duplicate).
    #[inline]
    pub(crate) fn current(&self) -> Current {
        if self.is_full() {
            return Current::Unknown;
        }
        // A frame on the stack was entered after the layer arrived, so it is
        // inside any span entered before: the innermost frame is right even
        // before the stack is complete.
        match self.frames.iter().rev().find(|f| !f.reentry) {
            Some(frame) => Current::Span {
                span: frame.span,
                tag: frame.tag,
            },
            None if self.complete => Current::None,
            None => Current::Unknown,
        }
    }

    /// Records that the registry found no current span on this thread: from
    /// now on an empty stack means no span is entered. Until this is known
    /// (once per thread and layer, at the first contextual span created
    /// with an empty stack) an empty stack sends the parent look-up to the
    /// registry. A layer removed by `reload` and added back later does not
    /// see the spans entered meanwhile; that case is not detected.
    pub(crate) fn mark_complete(&mut self) {
        self.complete = true;
    }

    /// An event was handled: counted in the innermost frame, with the
    /// subscriber's time on it where it is the sampled one
    /// ([`event_time`]): `to_ns(asked.at, now())` times the events it
    /// stands for (the clock is read only then).
    #[inline]
    pub(crate) fn event_handled(
        &mut self,
        level: usize,
        asked: Option<event_time::Asked>,
        now: impl FnOnce() -> u64,
        to_ns: impl FnOnce(u64, u64) -> u64,
    ) {
        if let Some(top) = self.frames.last_mut() {
            top.events[level] = top.events[level].saturating_add(1);
            if let Some(asked) = asked {
                let ns = to_ns(asked.at, now()).saturating_mul(u64::from(asked.weight));
                top.events_ns = top
                    .events_ns
                    .saturating_add(u32::try_from(ns).unwrap_or(u32::MAX));
            }
        }
    }

    /// The innermost frame's callsite tag, [`heap::TAG_NONE`] with none.
    pub(crate) fn top_tag(&self) -> u32 {
        self.frames.last().map_or(heap::TAG_NONE, |f| f.tag)
    }

    /// This thread's shard in `shards`: `thread_local`'s look-up the first
    /// time, a pointer kept here after that (the span path asks for it at
    /// a span's creation and at every exit).
    #[inline]
    pub(crate) fn shard<'s>(&mut self, shards: &'s Shards) -> &'s ShardLock {
        if let Some((of, shard)) = self.shard {
            if of == NonNull::from(shards) {
                // SAFETY: `shard` is what `shards.local()` returned on this
                // thread (a stack never leaves its thread): this thread's
                // entry of the `ThreadLocal` in `shards`, which never moves
                // an entry and frees them only when it is dropped, and
                // `shards` (the same store: checked above) lives for `'s`.
                return unsafe { shard.as_ref() };
            }
        }
        let shard = shards.local();
        self.shard = Some((NonNull::from(shards), NonNull::from(shard)));
        self.watch = shards
            .watched
            .register()
            .map(|watch| Publisher { watch, count: 0 });
        shard
    }

    /// The cache of callsite tags by span id.
    #[inline]
    pub(crate) fn tags(&mut self) -> &mut TagCache {
        &mut self.tags
    }

    /// Tags this thread's next allocations with the innermost frame's
    /// callsite, or as made outside every span, and publishes it.
    #[inline]
    fn retag(&mut self) {
        if !self.counts_allocs && self.watch.is_none() {
            return;
        }
        let tag = self.frames.last().map_or(heap::TAG_NONE, |f| f.tag);
        self.publish(tag);
        if self.counts_allocs {
            alloc::set_current_tag(tag);
        }
    }

    /// Publishes `tag` as this thread's innermost callsite: one store.
    #[inline]
    fn publish(&mut self, tag: u32) {
        if let Some(p) = &mut self.watch {
            p.publish(tag);
        }
    }

    /// The counting allocator's totals for this thread, or zeros without it
    /// (not read: see `counts_allocs`).
    #[inline]
    fn thread_counters(&self) -> AllocCounters {
        if self.counts_allocs {
            alloc::thread_counters()
        } else {
            AllocCounters::default()
        }
    }

    /// Whether the stack is at [`MAX_DEPTH`] and would not take another frame.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.frames.len() >= MAX_DEPTH
    }

    /// Whether an enter into a full stack should look for closed frames to
    /// forget ([`forget_closed`](Self::forget_closed)): the first, and one
    /// in [`FORGET_EVERY`] after it. Each look asks the registry about
    /// every frame; a recursion deeper than [`MAX_DEPTH`], whose frames are
    /// all open, looked at every enter past it (256 look-ups a span: a
    /// fresh recursive walk 400 deep ran at 13% of its speed, the layer
    /// estimating its own cost at 87% of the process's CPU).
    pub(crate) fn forget_due(&mut self) -> bool {
        let due = self.full_enters % FORGET_EVERY == 0;
        self.full_enters = self.full_enters.wrapping_add(1);
        due
    }

    /// Forgets the frames of spans that are no longer open: spans that
    /// closed while still entered on this thread (a guard leaked, or held
    /// across an `.await` and dropped on another thread). Without this such
    /// frames would fill the stack for good and the thread would measure no
    /// busy time again. Called only when the stack is full.
    pub(crate) fn forget_closed(
        &mut self,
        now: u64,
        is_open: impl Fn(u64) -> bool,
        to_ns: impl Fn(u64, u64) -> u64,
    ) {
        let counters = self.thread_counters();
        let mut kept: Vec<Frame> = Vec::with_capacity(self.frames.len());
        // Where the current run of forgotten frames began. From then until
        // the next kept frame was entered (or until now), the kept frame
        // below was not innermost: that stretch is its child time. Later on,
        // the next kept frame charges its own interval when it exits.
        let mut run_start: Option<(u64, AllocCounters)> = None;
        for frame in self.frames.drain(..) {
            if is_open(frame.span) {
                if let (Some((at, alloc_at)), Some(below)) = (run_start.take(), kept.last_mut()) {
                    let ns = to_ns(at, frame.entered_at);
                    below.add_child(ns, &frame.alloc_at_enter.since(&alloc_at));
                }
                kept.push(frame);
            } else if run_start.is_none() {
                run_start = Some((frame.entered_at, frame.alloc_at_enter));
            }
        }
        if let (Some((at, alloc_at)), Some(below)) = (run_start, kept.last_mut()) {
            let ns = to_ns(at, now);
            below.add_child(ns, &counters.since(&alloc_at));
        }
        self.frames = kept;
        let frames = &self.frames;
        self.timed
            .retain(|t| frames.iter().any(|f| f.timed && f.span == t.span));
        self.retag();
    }

    /// An exit out of order: `span` is below the top (or not here). Its
    /// frame is moved to the top, the frames above it keeping their order,
    /// and the index of the frame that was below it is returned (`None`
    /// inside: there was none); `None` when `span` is not on the stack.
    #[cold]
    #[inline(never)]
    fn move_to_top(&mut self, span: u64) -> Option<Option<usize>> {
        let index = self.frames.iter().rposition(|f| f.span == span)?;
        self.frames[index..].rotate_left(1);
        Some(index.checked_sub(1))
    }

    /// Growing the stack is the layer's allocation, not the span's.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let _pause = alloc::PauseCounting::new();
        self.frames.reserve(8);
    }

    /// Pushes `span`, of callsite `tag`: one thread-local write, no other
    /// frame touched, and the thread's allocations tagged with it. With CPU
    /// time on (`cpu_threshold_ns`), an interval long enough, or sampled,
    /// also reads the thread's CPU time ([`super::cpu`]).
    #[inline]
    pub(crate) fn push(
        &mut self,
        span: u64,
        now: u64,
        tag: u32,
        cpu: Option<(u32, &quanta::Clock)>,
    ) {
        if self.frames.len() >= MAX_DEPTH {
            return;
        }
        if self.counts_allocs {
            alloc::set_current_tag(tag);
        }
        self.publish(tag);
        let reentry = self.frames.iter().any(|f| f.span == span);
        if self.frames.len() == self.frames.capacity() {
            self.grow();
        }
        let (timing, clock) = match cpu {
            Some((threshold, clock)) if !reentry => {
                let on_clock = self.clock_open.then(|| cpu::clock_threshold_ns(threshold));
                let pace = self.pace_of(tag);
                let timing = if pace.unseen() {
                    pace.first(tag, threshold, on_clock)
                } else {
                    pace.timing(threshold, on_clock)
                };
                (timing, Some(clock))
            }
            _ => (Timing::Skip, None),
        };
        let timed = match clock {
            Some(clock) if timing != Timing::Skip => {
                self.push_timed(span, now, clock, timing != Timing::Clock)
            }
            _ => false,
        };
        self.frames.push(Frame {
            span,
            entered_at: now,
            child_ns: 0,
            alloc_at_enter: self.thread_counters(),
            child_alloc: AllocCounters::default(),
            events: [0; 5],
            events_ns: 0,
            reentry,
            timed,
            sampled: timing == Timing::Sampled,
            tag,
        });
    }

    /// The pace of callsite `tag` on this thread.
    #[inline]
    fn pace_of(&mut self, tag: u32) -> &mut Pace {
        let at = tag as usize;
        if at >= self.pace.len() {
            self.grow_pace(at);
        }
        &mut self.pace[at]
    }

    /// A callsite's first interval on this thread with CPU time on: the
    /// table is the layer's allocation.
    #[cold]
    #[inline(never)]
    fn grow_pace(&mut self, at: usize) {
        let _pause = alloc::PauseCounting::new();
        // Room for the callsites that come next, which have the next tags.
        let len = (at + 1)
            .next_power_of_two()
            .clamp(16, heap::MAX_TAGS.max(at + 1));
        self.pace.resize(len, Pace::default());
    }

    /// The reading at enter of a timed frame; `false` when the platform
    /// gives none. Out of line: the spans long enough to be timed pay for
    /// the system calls anyway.
    #[cold]
    #[inline(never)]
    fn push_timed(&mut self, span: u64, now: u64, clock: &quanta::Clock, counts: bool) -> bool {
        if self.timed.len() == self.timed.capacity() {
            let _pause = alloc::PauseCounting::new();
            self.timed.reserve(8);
        }
        match cpu::at_enter(now, clock, counts) {
            Some((start, seq)) => {
                self.clock_open = seq.is_some();
                self.timed.push(TimedFrame {
                    span,
                    start,
                    seq,
                    child_off_cpu_ns: 0,
                    child_preempted_ns: 0,
                    child_voluntary: 0,
                    child_involuntary: 0,
                });
                true
            }
            None => false,
        }
    }

    /// What [`pop_then`](Self::pop_then) hands on, returned (`None` when
    /// `span` is not on this stack).
    #[cfg(test)]
    pub(crate) fn pop(
        &mut self,
        span: u64,
        now: impl FnOnce() -> u64,
        to_ns: impl Fn(u64, u64) -> u64,
    ) -> Option<FinishedFrame> {
        let mut finished = None;
        self.pop_then(
            span,
            now,
            to_ns,
            |_, done| finished = Some(*done),
            |_, _| {},
        );
        finished
    }

    /// Pops `span` (normally the top; out-of-order exits are tolerated),
    /// charges its interval, ending at `now()`, to the frame below it, and
    /// hands what the interval measured to `then`, with the stack. `to_ns`
    /// converts a tick delta. Nothing when `span` is not on this stack.
    ///
    /// An exit that is not the top's, `misnested` is told first, with the
    /// stack and the frame's tag (`None` when `span` is not on this stack,
    /// and the stack is not full: a span entered where a full stack took no
    /// frame exits where it is still full). Nested `enter`s exit in the
    /// reverse order on their thread; one that does not was entered by a
    /// guard held across an `.await` (the task polled on, or moved to,
    /// another span's turn or another thread), or a guard dropped out of
    /// order.
    ///
    /// Handed on, not returned: returned, the 130-byte record was copied
    /// twice on its way out (callgrind: 24 of an exit's 290 instructions).
    ///
    /// A timed frame reads the thread's CPU time before the timestamp: a
    /// preemption the kernel defers to the return of that system call (lazy
    /// preemption) then falls inside the span's interval, where it
    /// happened, not after it.
    #[inline]
    pub(crate) fn pop_then(
        &mut self,
        span: u64,
        now: impl FnOnce() -> u64,
        to_ns: impl Fn(u64, u64) -> u64,
        then: impl FnOnce(&mut Self, &FinishedFrame),
        misnested: impl FnOnce(&mut Self, Option<u32>),
    ) {
        let Some(top) = self.frames.len().checked_sub(1) else {
            misnested(self, None);
            return;
        };
        // The top, almost always. The frame is read where it lies and cut
        // off at the end: copying its 120 bytes out (as `Vec::pop` does,
        // twice through an `Option`) cost 10 of an exit's instructions.
        let below_at = if self.frames[top].span == span {
            top.checked_sub(1)
        } else {
            match self.move_to_top(span) {
                Some(below_at) => {
                    misnested(self, Some(self.frames[top].tag));
                    below_at
                }
                None if self.is_full() => return,
                None => {
                    misnested(self, None);
                    return;
                }
            }
        };
        let (rest, last) = self.frames.split_at_mut(top);
        let frame = &last[0];
        let at_exit = if frame.timed {
            at_exit(&self.timed, span)
        } else {
            AtExit::Unswitched
        };
        let by_calls = matches!(at_exit, AtExit::Read(..));
        let now = now();
        let interval_ns = to_ns(frame.entered_at, now);
        let self_ns = interval_ns.saturating_sub(frame.child_ns);
        let cpu = if frame.timed {
            let open = &mut self.clock_open;
            pop_timed(
                &mut self.timed,
                open,
                span,
                interval_ns,
                frame,
                at_exit,
                now,
            )
        } else {
            None
        };
        // Only callsites that were ever decided on have a pace.
        if let Some(pace) = self.pace.get_mut(frame.tag as usize) {
            pace.ended(frame.tag, interval_ns);
        }
        let mut below = below_at.map(|i| &mut rest[i]);
        // The allocation figures only where the counting allocator counts:
        // without it they are zeros, not worth adding up (see
        // `counts_allocs`).
        let alloc = self.counts_allocs.then(|| {
            let interval = alloc::thread_counters().since(&frame.alloc_at_enter);
            if let Some(below) = below.as_deref_mut() {
                below.child_alloc.add(&interval);
            }
            IntervalAlloc {
                inclusive: if frame.reentry {
                    AllocCounters::default()
                } else {
                    interval
                },
                own: interval.since(&frame.child_alloc),
            }
        });
        if let Some(below) = below {
            below.child_ns = below.child_ns.saturating_add(interval_ns);
        }
        let busy_ns = if frame.reentry { 0 } else { interval_ns };
        let finished = FinishedFrame {
            busy_ns,
            entered_at: frame.entered_at,
            ended_at: now,
            self_ns,
            alloc,
            events: frame.events,
            events_ns: frame.events_ns,
            cpu,
            sampled: frame.sampled,
            by_calls,
        };
        self.frames.truncate(top);
        self.retag();
        then(self, &finished);
    }
}

/// The first half of a timed frame's reading at exit, before the
/// timestamp: nothing when the task clock says the thread was not
/// switched out since the enter, else the CPU time, read now. Out of
/// line, as [`Stack::push_timed`].
#[cold]
#[inline(never)]
fn at_exit(timed: &[TimedFrame], span: u64) -> AtExit {
    let seq = timed
        .iter()
        .rev()
        .find(|t| t.span == span)
        .and_then(|t| t.seq);
    if cpu::exit_needs_calls(seq) {
        let (cpu_ns, seq) = cpu::at_exit();
        AtExit::Read(cpu_ns, seq)
    } else {
        AtExit::Unswitched
    }
}

/// The CPU figures of a timed frame's interval, and its off-CPU time
/// charged to the timed frame below it. Out of line, as
/// [`Stack::push_timed`].
#[cold]
#[inline(never)]
fn pop_timed(
    timed_frames: &mut Vec<TimedFrame>,
    clock_open: &mut bool,
    span: u64,
    interval_ns: u64,
    frame: &Frame,
    at_exit: AtExit,
    now: u64,
) -> Option<IntervalCpu> {
    let at = timed_frames.iter().rposition(|t| t.span == span)?;
    let was_last = at + 1 == timed_frames.len();
    let timed = timed_frames.remove(at);
    let end = match at_exit {
        AtExit::Unswitched => cpu::unswitched_exit(&timed.start, interval_ns),
        AtExit::Read(cpu_ns, seq) => {
            let switched = timed.seq.is_some();
            cpu::exit_reading(&timed.start, cpu_ns?, interval_ns, switched, now, seq)
        }
    };
    *clock_open = timed.seq.is_some();
    // After the timestamp: opening the task clock is in no interval of
    // this span.
    task_clock::settle();
    let children = cpu::Children {
        on_cpu_ns: frame.child_ns.saturating_sub(timed.child_off_cpu_ns),
        preempted_ns: timed.child_preempted_ns,
        voluntary: timed.child_voluntary,
        involuntary: timed.child_involuntary,
    };
    let self_ns = interval_ns.saturating_sub(frame.child_ns);
    let cpu = IntervalCpu::between(&timed.start, &end, interval_ns, self_ns, &children);
    // The timed frames still here are below it when it was the top one.
    if let (true, Some(below)) = (was_last, timed_frames.last_mut()) {
        below.child_off_cpu_ns = below
            .child_off_cpu_ns
            .saturating_add(interval_ns - cpu.on_cpu_ns);
        below.child_preempted_ns = below.child_preempted_ns.saturating_add(cpu.preempted_ns);
        below.child_voluntary = below
            .child_voluntary
            .saturating_add(u64::from(cpu.voluntary));
        below.child_involuntary = below
            .child_involuntary
            .saturating_add(u64::from(cpu.involuntary));
    }
    Some(cpu)
}

thread_local! {
    /// One stack per layer instance that has entered spans on this thread,
    /// found by a short linear scan (almost always one entry).
    static STACKS: RefCell<Vec<(u64, Stack)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's stack for layer `layer_id`. `None` while the
/// thread is being torn down or if called re-entrantly.
#[inline(always)]
pub(crate) fn with_stack<R>(layer_id: u64, f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    STACKS
        .try_with(|stacks| {
            let mut stacks = stacks.try_borrow_mut().ok()?;
            let stack = match stacks.iter().position(|(id, _)| *id == layer_id) {
                Some(index) => &mut stacks[index].1,
                None => first_stack(&mut stacks, layer_id),
            };
            Some(f(stack))
        })
        .ok()
        .flatten()
}

/// A layer's first use of this thread's stacks: forgets the empty stacks of
/// layers that are gone or idle, so the list stays short, and adds one. The
/// list is the layer's allocation, not a span's. Out of line, so that the
/// span path stays small.
#[cold]
#[inline(never)]
fn first_stack(stacks: &mut Vec<(u64, Stack)>, layer_id: u64) -> &mut Stack {
    let _pause = alloc::PauseCounting::new();
    super::thread_end::arm();
    stacks.retain(|(_, s)| !s.frames.is_empty());
    let index = stacks.len();
    let stack = Stack {
        counts_allocs: alloc::is_installed(),
        unopened: true,
        ..Stack::default()
    };
    stacks.push((layer_id, stack));
    &mut stacks[index].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_shard_is_the_store_s_own_and_follows_the_store() {
        let a = Shards::new(2, 1_000_000, 16, 16, None, None);
        let b = Shards::new(2, 1_000_000, 16, 16, None, None);
        let mut stack = Stack::default();
        assert!(std::ptr::eq(stack.shard(&a), a.local()));
        assert!(std::ptr::eq(stack.shard(&a), a.local()));
        // Asked of another store: that store's shard, not the one kept.
        assert!(std::ptr::eq(stack.shard(&b), b.local()));
        assert!(!std::ptr::eq(stack.shard(&b), a.local()));
        assert!(std::ptr::eq(stack.shard(&a), a.local()));
    }

    #[test]
    fn a_span_entered_between_the_spans_its_set_takes_in_keeps_its_tag() {
        // Slab slot 6's ids on two threads and their later generations: the
        // same low bits, so the same set (the ids mini-redis's spans had).
        let connection = 0x0008_0040_0000_0006;
        let mut cache = TagCache::default();
        cache.insert(connection, 7);
        for generation in 1..100u64 {
            // A request span in the same slot, opened and entered...
            let request = (generation << 48) | 6;
            cache.insert(request, 9);
            assert_eq!(cache.get(request), Some(9));
            // ... and the connection polled again: still cached.
            assert_eq!(cache.get(connection), Some(7), "generation {generation}");
        }
        // Two spans taken in since its last use: the oldest goes.
        cache.insert(1 << 48 | 6, 1);
        cache.insert(2 << 48 | 6, 2);
        assert_eq!(cache.get(connection), None);
        assert_eq!(cache.get(2 << 48 | 6), Some(2));
        assert_eq!(cache.get(1 << 48 | 6), Some(1));
        // Other sets are untouched.
        cache.insert(5, 3);
        assert_eq!(cache.get(5), Some(3));
        assert_eq!(cache.get(1 << 48 | 6), Some(1));
    }

    fn ns(a: u64, b: u64) -> u64 {
        b.saturating_sub(a)
    }

    #[test]
    fn without_the_counting_allocator_a_frame_carries_no_allocation() {
        // A stack made where the counting allocator is not the global one
        // (`first_stack` asks; a heap test here fills its shared table).
        let mut stack = Stack::default();
        stack.push(1, 0, 0, None);
        stack.push(2, 10, 0, None);
        let child = stack.pop(2, || 15, ns).unwrap();
        let parent = stack.pop(1, || 20, ns).unwrap();
        assert!(child.alloc.is_none() && parent.alloc.is_none());
        assert_eq!((parent.busy_ns, parent.self_ns), (20, 15));
    }

    #[test]
    fn a_full_stack_looks_for_closed_frames_at_one_enter_in_sixty_four() {
        let mut stack = Stack::default();
        let due: Vec<bool> = (0..130).map(|_| stack.forget_due()).collect();
        let at: Vec<usize> = due
            .iter()
            .enumerate()
            .filter(|(_, d)| **d)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at, [0, 64, 128]);
    }

    #[test]
    fn forgetting_a_closed_frame_charges_the_frame_below_once() {
        // below (0) > forgotten (10) > closed child of it (20..25) > kept (40)
        let mut stack = Stack::default();
        stack.push(1, 0, 0, None);
        stack.push(2, 10, 0, None);
        stack.push(3, 20, 0, None);
        assert!(stack.pop(3, || 25, ns).is_some());
        stack.push(4, 40, 0, None);
        stack.forget_closed(50, |span| span != 2, ns);
        // The kept frame exits at 60 and charges 40..60 itself.
        assert_eq!(stack.pop(4, || 60, ns).map(|f| f.busy_ns), Some(20));
        // `below` was innermost only 0..10 and 60..70; 10..40 (the forgotten
        // frame and its closed child) is child time, counted once.
        let below = stack.pop(1, || 70, ns).unwrap();
        assert_eq!((below.busy_ns, below.self_ns), (70, 20));
    }

    #[test]
    fn an_exit_out_of_order_charges_the_frame_below_it_and_keeps_the_ones_above() {
        let ns = |a: u64, b: u64| b - a;
        let mut stack = Stack::default();
        stack.push(1, 0, 0, None);
        stack.push(2, 10, 0, None);
        stack.push(3, 20, 0, None);
        // 2 exits while 3, above it, is still entered.
        assert_eq!(stack.pop(2, || 30, ns).map(|f| f.busy_ns), Some(20));
        assert_eq!(stack.current(), Current::Span { span: 3, tag: 0 });
        assert_eq!(stack.pop(3, || 40, ns).map(|f| f.busy_ns), Some(20));
        // 1 was below both: 40 of its 50 ns were theirs.
        let one = stack.pop(1, || 50, ns).unwrap();
        assert_eq!((one.busy_ns, one.self_ns), (50, 10));
        assert!(stack.pop(1, || 60, ns).is_none());
    }

    /// What the exits tell `misnested`: nothing when they nest; the
    /// frame's tag for one below the top; `None` for a span entered on
    /// another thread (not here), but not where a full stack took no frame.
    #[test]
    fn exits_that_do_not_nest_are_told_with_their_tag() {
        let ns = |a: u64, b: u64| b - a;
        let exit = |stack: &mut Stack, span: u64| {
            let mut told = None;
            stack.pop_then(span, || 0, ns, |_, _| {}, |_, tag| told = Some(tag));
            told
        };
        let mut stack = Stack::default();
        stack.push(1, 0, 7, None);
        stack.push(2, 0, 8, None);
        assert_eq!(exit(&mut stack, 2), None);
        stack.push(3, 0, 9, None);
        // 1's guard drops while 3, entered after it, is still entered.
        assert_eq!(exit(&mut stack, 1), Some(Some(7)));
        assert_eq!(exit(&mut stack, 3), None);
        // Entered on another thread, exited here, empty or not.
        assert_eq!(exit(&mut stack, 4), Some(None));
        stack.push(5, 0, 7, None);
        assert_eq!(exit(&mut stack, 4), Some(None));
        assert_eq!(exit(&mut stack, 5), None);
        // A full stack takes no frame for span 999, whose exit nests.
        for span in 10..10 + MAX_DEPTH as u64 {
            stack.push(span, 0, 7, None);
        }
        stack.push(999, 0, 7, None);
        assert_eq!(exit(&mut stack, 999), None);
    }

    #[test]
    fn the_current_span_skips_reentries_as_the_registry_does() {
        let mut stack = Stack::default();
        // Empty, and no one has said the thread is outside every span.
        assert_eq!(stack.current(), Current::Unknown);
        stack.mark_complete();
        assert_eq!(stack.current(), Current::None);
        stack.push(1, 0, 0, None);
        stack.push(2, 1, 0, None);
        assert_eq!(stack.current(), Current::Span { span: 2, tag: 0 });
        // Re-entering span 1 inside span 2: the registry's current span is
        // still 2, the innermost entry that is not a duplicate.
        stack.push(1, 2, 0, None);
        assert_eq!(stack.current(), Current::Span { span: 2, tag: 0 });
        for span in 3..=MAX_DEPTH as u64 {
            stack.push(span, 3, 0, None);
        }
        assert_eq!(stack.current(), Current::Unknown);
    }

    #[test]
    fn forgetting_the_top_frames_charges_until_now() {
        let mut stack = Stack::default();
        stack.push(1, 0, 0, None);
        stack.push(2, 10, 0, None);
        stack.push(3, 15, 0, None);
        stack.forget_closed(40, |span| span == 1, ns);
        let below = stack.pop(1, || 50, ns).unwrap();
        assert_eq!((below.busy_ns, below.self_ns), (50, 20));
    }
}
