//! The `Layer` callbacks, and nothing else.
//!
//! One callback in about 64 is timed as it runs, for the dump's overhead
//! estimate ([`self_time`]); the others pay a thread-local decrement.
//!
//! Per span lifecycle the layer reads the clock four times (new, enter,
//! exit, close), and twice for one event in about 16 (asked, then told:
//! the subscriber's handling between), and takes its own thread's shard
//! lock, uncontended, three times (new, exit, close), where the span's
//! state lives. A new span's
//! parent is the innermost span on this thread's stack; the registry is
//! asked only when that parent was opened on another thread, or once per
//! thread while the stack is empty (spans entered before the layer was
//! added by a `reload` are on no stack). Entering touches only this
//! thread's stack, and the registry (without a lock) when the stack's cache
//! of callsite tags does not know the span: its first enter on a thread
//! that did not open it. No syscall, no global lock, no allocation after a
//! callsite's first use on a thread.
//!
//! The cost of that choice: a span entered on another thread than the one
//! that opened it (an async task moved by a work-stealing runtime) is found
//! by searching the other threads' shards, each locked only while it is
//! searched, once per span and thread: its intervals that end there are
//! summed in that thread's own shard (a visit), and its close adds the
//! visits up ([`crate::record::shards`]).
//!
//! The registry's span extensions would be the textbook place for per-span
//! state; measured on the lifecycle bench (docs/benchmarks.md) they cost
//! more than everything else the layer does: a boxed allocation, a type-map
//! insert and removal, and a registry look-up at every exit and close.

use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::profiler::Profiler;
use crate::record::alloc::PauseCounting;
use crate::record::event_time;
use crate::record::heap;
use crate::record::open_spans::SpanState;
use crate::record::self_time;
use crate::record::shards::{LastClosed, Shard, Shards};
use crate::record::stack::{Current, Stack, with_stack};
use crate::record::totals::{ClosedSpan, SpanAlloc, SpanCpu, level_index};

/// The profiling layer. Build it with [`PerfLayer::builder`].
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (layer, handle) = perf_layer::PerfLayer::builder().without_sampler().build().unwrap();
/// let _default = tracing_subscriber::registry().with(layer).set_default();
/// tracing::info_span!("load").in_scope(|| std::hint::black_box(2 + 2));
/// let dump = handle.snapshot();
/// assert_eq!(dump.callsites[0].name, "load");
/// ```
#[derive(Debug, Clone)]
pub struct PerfLayer {
    profiler: Arc<Profiler>,
}

impl PerfLayer {
    pub(crate) fn new(profiler: Arc<Profiler>) -> Self {
        Self { profiler }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.profiler.config.clock.raw()
    }

    /// Times this callback when it is the one in about 64 that is sampled
    /// ([`self_time`]): its time is added to the shard when the returned
    /// guard drops, so it is declared first, to drop last.
    #[inline(always)]
    fn timed(&self) -> Option<self_time::Timed<'_>> {
        self_time::start(&self.profiler.config.clock, &self.profiler.shards)
    }
}

impl<S> Layer<S> for PerfLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.profiler.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut timed = self.timed();
        // Counting is paused only where the layer allocates (growing a map,
        // a first shard or callsite), not on every span: pausing is two
        // thread-local writes.
        let created = self.now();
        // The callsite's tag, which allocations carry while the span is
        // innermost: cached by span id for its enters on this thread.
        let tag = heap::tag_of(attrs.metadata());
        self_time::serves(&mut timed, || tag);
        let contextual = attrs.is_contextual();
        // The innermost span this thread has entered, as the registry's
        // current span seen through this layer's filter; read before the
        // lock, from thread-local memory.
        let shards = &self.profiler.shards;
        let found = with_stack(self.profiler.layer_id, |stack| {
            stack.tags().insert(id.into_u64(), tag);
            let first = stack.first_opened();
            (
                contextual.then(|| stack.current()),
                stack.shard(shards),
                first,
            )
        });
        let (current, local, thread_start) = match found {
            Some(found) => found,
            None => (None, shards.local(), false),
        };
        let mut shard = local.lock();
        if thread_start {
            shards.thread_started(&mut shard, attrs.metadata());
        }
        let layer_id = self.profiler.layer_id;
        let grouping = shards.groups.is_some();
        let parent = parent_callsite(attrs, id, current, &ctx, &shard, layer_id, grouping);
        let rss = self.profiler.rss_now();
        let state = shard.open.open(
            id.into_u64(),
            attrs.metadata(),
            parent.callsite,
            created,
            rss,
        );
        state.parent_group = parent.group;
        state.parent_id = parent.id;
        if let Some(groups) = &shards.groups {
            if groups.applies(tag, attrs.metadata()) {
                groups.read(|v| attrs.record(v), &mut state.group);
            }
        }
        drop(shard);
        // Last, with no lock after it here: the store's line is often the
        // other worker's, and a locked instruction behind it would wait
        // for it (0.6% of mini-redis's samples when this came first).
        shards.publish_tag(id.into_u64(), tag);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let mut timed = self.timed();
        // No pause: pushing allocates only when the stack grows, and pauses
        // for that itself.
        let now = self.now();
        let clock = &self.profiler.config.clock;
        with_stack(self.profiler.layer_id, |stack| {
            if stack.is_full() && stack.forget_due() {
                forget_closed(stack, now, &ctx, clock);
            }
            let span = id.into_u64();
            let tag = match stack.tags().get(span) {
                Some(tag) => tag,
                None => tag_of_open_span(stack, id, &ctx, &self.profiler.shards),
            };
            self_time::serves(&mut timed, || tag);
            let cpu = self.profiler.shards.cpu_threshold_ns().map(|t| (t, clock));
            stack.push(span, now, tag, cpu);
        });
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let mut timed = self.timed();
        // No pause: nothing here allocates.
        let clock = &self.profiler.config.clock;
        let layer_id = self.profiler.layer_id;
        let span = id.into_u64();
        let shards = &self.profiler.shards;
        with_stack(layer_id, |stack| {
            self_time::serves(&mut timed, || stack.top_tag());
            let now = || self.now();
            let to_ns = |a, b| clock.delta_as_nanos(a, b);
            stack.pop_then(
                span,
                now,
                to_ns,
                |stack, finished| shards.exited(stack.shard(shards), span, finished),
                |stack, tag| misnested_exit(stack, span, tag, shards),
            );
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        // Only grouping reads recorded values, and only the named fields.
        let Some(groups) = &self.profiler.shards.groups else {
            return;
        };
        let _timed = self.timed();
        self.profiler.shards.with_open(id.into_u64(), |state| {
            if groups.applies(heap::tag_of(state.meta), state.meta) {
                groups.read(|v| values.record(v), &mut state.group);
            }
        });
    }

    /// Asked first where perf-layer is the outermost layer (the last
    /// `.with(...)`), and told last in `on_event`: the time between is the
    /// subscriber's handling of an event (a `fmt` layer's formatting and
    /// writing), counted where the event is inside a span: one event in
    /// about 16 (`record::event_time`).
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        if event.is_contextual() {
            event_time::asked(self.profiler.layer_id, || self.now());
        }
        true
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut timed = self.timed();
        let level = level_index(event.metadata().level());
        if event.is_contextual() {
            let clock = &self.profiler.config.clock;
            let asked = event_time::take(self.profiler.layer_id);
            with_stack(self.profiler.layer_id, |stack| {
                self_time::serves(&mut timed, || stack.top_tag());
                stack.event_handled(
                    level,
                    asked,
                    || self.now(),
                    |a, b| clock.delta_as_nanos(a, b),
                );
            });
        } else if let Some(id) = event.parent() {
            self.profiler.shards.with_open(id.into_u64(), |state| {
                state.sums.events[level] = state.sums.events[level].saturating_add(1);
            });
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut timed = self.timed();
        // Nothing here allocates but a callsite's first span on this thread,
        // which `record` pauses counting for itself.
        let now = self.now();
        let shards = &self.profiler.shards;
        let local = shards.local();
        let mut shard = local.lock();
        // Closed by a child's close ([`Shard::last_closed`]).
        let by_child = (shard.last_closed.parent_id == id.into_u64()).then_some(shard.last_closed);
        // Read in place: the state is not copied out of its slot. The
        // closed span is the match's value, not part of a tuple with the
        // callsites: moved out of one, its 300 bytes were copied again.
        let (meta, parent, parent_id, task);
        let (closed, outlived) = match shard.open.remove(id.into_u64()) {
            Some(state) if !shards.may_have_visits(id.into_u64()) => {
                (meta, parent, parent_id, task) =
                    (state.meta, state.parent, state.parent_id, state.sums.task);
                let end =
                    by_child.map_or(Ending::at(now), |child| ended_before(state, &child, now));
                (self.closed(state, end), end.outlived)
            }
            found => {
                // Opened on another thread (its state is in that thread's
                // shard), or with intervals that ended on other threads
                // (their sums are in theirs): gathered with no lock held.
                let found = found.copied();
                drop(shard);
                let Some(state) = shards.closing(local, id.into_u64(), found) else {
                    return;
                };
                shard = local.lock();
                (meta, parent, parent_id, task) =
                    (state.meta, state.parent, state.parent_id, state.sums.task);
                let end =
                    by_child.map_or(Ending::at(now), |child| ended_before(&state, &child, now));
                (self.closed(&state, end), end.outlived)
            }
        };
        shards.record(&mut shard, meta, parent, &closed);
        // Ended before the child that closed it did: the child outlived it.
        if outlived {
            if let Some(child) = shard.last_closed.meta {
                shards.outlived(&mut shard, meta, child);
            }
        }
        shard.last_closed = LastClosed {
            parent_id,
            ended: closed.closed,
            task,
            meta: Some(meta),
        };
        self_time::serves(&mut timed, || heap::tag_of(meta));
    }
}

impl PerfLayer {
    /// What a span that ended at `end` (its close, or its owner's last
    /// exit: [`ended_before`]) contributes to its callsite.
    #[inline]
    fn closed(&self, state: &SpanState, end: Ending) -> ClosedSpan {
        let clock = &self.profiler.config.clock;
        let sums = &state.sums;
        let wall_ns = clock.delta_as_nanos(state.created, end.at);
        let (mut busy_ns, mut self_ns) = (sums.busy_ns, sums.self_ns);
        if end.without_others {
            busy_ns = busy_ns.saturating_sub(sums.other.busy_ns);
            self_ns = self_ns.saturating_sub(sums.other.self_ns);
        }
        // Busy can exceed wall only when one span was entered on two threads
        // at once; clamp so idle (wall - busy) is never negative.
        let busy_ns = busy_ns.min(wall_ns);
        let self_ns = self_ns.min(busy_ns);
        let alloc = crate::record::alloc::is_installed().then_some(SpanAlloc {
            alloc_bytes: sums.alloc.alloc_bytes,
            allocs: sums.alloc.allocs,
            freed_bytes: sums.alloc.freed_bytes,
            frees: sums.alloc.frees,
            self_alloc_bytes: sums.self_alloc_bytes,
            self_allocs: sums.self_allocs,
        });
        let rss_delta = match (state.rss_at_open, self.profiler.rss_now()) {
            (Some(open), Some(close)) => Some(close as i64 - open as i64),
            _ => None,
        };
        ClosedSpan {
            wall_ns,
            busy_ns,
            self_ns,
            events: sums.events,
            events_ns: sums.events_ns,
            intervals: sums.intervals,
            alloc,
            rss_delta,
            // Not `then_some`, which builds its value first: the CPU part
            // is copied only when there is one.
            cpu: if sums.timed_intervals > 0 {
                Some(SpanCpu {
                    intervals: sums.intervals,
                    timed_intervals: sums.timed_intervals,
                    timed: sums.cpu,
                    sampled_intervals: sums.sampled_intervals,
                    sampled: sums.sampled,
                })
            } else {
                None
            },
            group: state.group,
            parent_group: state.parent_group,
            opened: state.created,
            closed: end.at,
        }
    }
}

/// Where a span ended, as its close found it.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// The clock's raw reading: its close, or its owner's last exit.
    at: u64,
    /// It ended before the child whose close closed it: that child
    /// outlived it (a task spawned inside it, not awaited).
    outlived: bool,
    /// Other tasks ran it after its owner's last exit (a task spawned with
    /// `.in_current_span()`): what they added is left out of it.
    without_others: bool,
}

impl Ending {
    #[inline]
    fn at(now: u64) -> Self {
        Self {
            at: now,
            outlived: false,
            without_others: false,
        }
    }
}

/// Where a span closing at `now` right after `child` closed ended: at its
/// owner's last exit. A child that held its last reference (a task spawned
/// inside it, detached) outlived it when that exit came before the child
/// ended; the span did not end when the child closed it, which would read
/// as a parent awaiting its child. A task spawned with `.in_current_span()`
/// enters the span too, at each poll: the span ends at its owner task's
/// last exit all the same, without what that task added after it
/// ([`crate::record::task`]). Not where another task ran the child and the
/// owner entered the span once: a span handed to a task after its spawner
/// entered it (`in_scope`, then `.instrument(span)`) is that task's work,
/// and ends at its close. A future's span is entered by its own task at
/// least twice, at a poll and as the future is dropped (`Instrumented`
/// enters it there): a task spawned with `.in_current_span()` is told from
/// the hand-off by that. Without tasks, the last exit is the close but
/// for the child's close between. Out of line: only a span whose child
/// closed just before it comes here.
#[cold]
#[inline(never)]
fn ended_before(state: &SpanState, child: &LastClosed, now: u64) -> Ending {
    let sums = &state.sums;
    let last = sums.last_ended;
    let handed_over =
        child.task != sums.task && sums.intervals.saturating_sub(sums.other.intervals) < 2;
    if sums.intervals == 0 || last < state.created || handed_over {
        return Ending::at(now);
    }
    Ending {
        at: last,
        outlived: last < child.ended,
        without_others: sums.other.last_ended > last,
    }
}

/// The callsite tag of open span `id`, cached for next time: one the cache
/// lost (another span's id took its entry), or one this thread did not
/// create (a task another worker polled first: about one enter in ten on
/// mini-redis). Read from the tag its opening published
/// ([`Shards::published_tag`]), else asked of the registry, which finds it
/// without a lock but with two read-modify-writes on the slab slot's
/// reference count. Searching the shards, as this did before, took the
/// other threads' shard locks on their own span path.
/// Out of line: most enters find the tag in the cache.
#[cold]
#[inline(never)]
fn tag_of_open_span<S>(stack: &mut Stack, id: &Id, ctx: &Context<'_, S>, shards: &Shards) -> u32
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tag = match shards.published_tag(id.into_u64()) {
        Some(tag) => tag,
        None => ctx.metadata(id).map_or(heap::TAG_NONE, heap::tag_of),
    };
    stack.tags().insert(id.into_u64(), tag);
    tag
}

/// Counts an exit that was not of the innermost span entered on this
/// thread, of callsite `tag` (`None`: not entered on this thread, looked
/// up in the thread's tag cache, then in the table new spans publish their
/// tags in: a span whose slot another took since is not counted). Out of
/// line: nested guards never come here.
#[cold]
#[inline(never)]
fn misnested_exit(stack: &mut Stack, span: u64, tag: Option<u32>, shards: &Shards) {
    let tag = tag
        .or_else(|| stack.tags().get(span))
        .or_else(|| shards.published_tag(span));
    if let Some(tag) = tag.filter(|&tag| tag != heap::TAG_NONE) {
        shards.misnested_exit(stack.shard(shards), tag);
    }
}

/// Forgets the frames of spans that closed while entered on this thread
/// (see [`Stack::forget_closed`]); out of line, as it
/// runs only when the stack is full.
#[cold]
#[inline(never)]
fn forget_closed<S>(stack: &mut Stack, now: u64, ctx: &Context<'_, S>, clock: &quanta::Clock)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let _pause = PauseCounting::new();
    stack.forget_closed(
        now,
        |span| ctx.span(&Id::from_u64(span)).is_some(),
        |a, b| clock.delta_as_nanos(a, b),
    );
}

/// A contextual span's parent when this thread's stack cannot say, from
/// the registry. When the registry finds no span entered, the stack is
/// complete from then on ([`Stack::mark_complete`]). Out of line: it runs
/// when the stack is full, and once per thread while it is empty.
#[cold]
#[inline(never)]
fn parent_from_registry<S>(
    id: &Id,
    ctx: &Context<'_, S>,
    layer_id: u64,
) -> Option<(&'static tracing_core::Metadata<'static>, u64)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let parent = registry_parent(id, ctx);
    if parent.is_none() {
        with_stack(layer_id, Stack::mark_complete);
    }
    parent
}

/// The callsite and id of span `id`'s parent as the registry resolved it
/// for this layer's filter.
fn registry_parent<S>(
    id: &Id,
    ctx: &Context<'_, S>,
) -> Option<(&'static tracing_core::Metadata<'static>, u64)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span(id)?
        .parent()
        .map(|p| (p.metadata(), p.id().into_u64()))
}

/// The callsite of a new span's parent as the registry resolved it
/// (contextual or explicit, skipping spans a per-layer filter disabled for
/// us), looked up as little as possible. A contextual span's parent is the
/// innermost span entered on this thread that this layer sees, which is
/// what the registry's `lookup_current` returns for this layer's filter:
/// `current`, from this thread's stack, `Unknown` when the stack cannot say
/// (full, or spans entered before a `reload` added the layer may still be
/// entered), `None` when the thread is being torn down. The current span's
/// callsite is known from the tag it was entered with; when the layer
/// groups by fields (`grouping`), or for an explicit parent, the parent's
/// state is read: a parent this thread opened is in `shard`, and only one
/// opened on another thread needs the registry. Beside it, the parent's
/// group folded (0 when it has none or is not known here).
#[inline]
fn parent_callsite<S>(
    attrs: &Attributes<'_>,
    id: &Id,
    current: Option<Current>,
    ctx: &Context<'_, S>,
    shard: &Shard,
    layer_id: u64,
    grouping: bool,
) -> Parent
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let from_registry = || Parent::of(registry_parent(id, ctx));
    if attrs.is_root() {
        return Parent::NONE;
    }
    let parent = match attrs.parent() {
        Some(explicit) => explicit.into_u64(),
        None => match current {
            // Its callsite from the tag it was entered with, where nothing
            // else is asked of its state: no search of the open spans (nor
            // of the registry, for a parent another thread opened, as a
            // request's span under a connection's a worker took over).
            Some(Current::Span { span, tag }) => {
                if let Some(callsite) = heap::callsite_of(tag).filter(|_| !grouping) {
                    return Parent {
                        callsite: Some(callsite),
                        group: 0,
                        id: span,
                    };
                }
                span
            }
            Some(Current::None) => return Parent::NONE,
            Some(Current::Unknown) => return Parent::of(parent_from_registry(id, ctx, layer_id)),
            None => return from_registry(),
        },
    };
    // The parent's group, when it is known here: the parent opened on this
    // thread. Elsewhere the edge's group is left to the report's estimate.
    match shard.open.get(parent) {
        Some(state) => Parent {
            callsite: Some(state.meta),
            group: crate::record::groups::fold(&state.group),
            id: parent,
        },
        None => from_registry(),
    }
}

/// A new span's parent as [`parent_callsite`] found it.
struct Parent {
    callsite: Option<&'static tracing_core::Metadata<'static>>,
    /// Its group folded (0 when it has none or is not known here).
    group: u64,
    /// Its span id (0: none, or not known).
    id: u64,
}

impl Parent {
    const NONE: Self = Self {
        callsite: None,
        group: 0,
        id: 0,
    };

    /// A parent the registry found: its callsite and id.
    fn of(found: Option<(&'static tracing_core::Metadata<'static>, u64)>) -> Self {
        Self {
            callsite: found.map(|(callsite, _)| callsite),
            group: 0,
            id: found.map_or(0, |(_, id)| id),
        }
    }
}
