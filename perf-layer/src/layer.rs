//! The `Layer` callbacks, and nothing else.
//!
//! Per span lifecycle the layer reads the clock four times (new, enter,
//! exit, close), looks spans up in the registry three or four times (the new
//! span and its parent, exit, close; entering touches only this thread's
//! stack), and takes one lock:
//! its own thread's shard, uncontended, at close. No syscall, no global
//! lock, no allocation after a callsite's first use on a thread except the
//! registry's extension slot.

use std::sync::Arc;

use tracing_core::span::{Attributes, Id};
use tracing_core::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::PerfLayerBuilder;
use crate::alloc::PauseCounting;
use crate::dump::AllocStats;
use crate::shared::Shared;
use crate::span_state::{SpanState, with_stack};
use crate::store::{ClosedSpan, events_from_array, level_index};

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
    shared: Arc<Shared>,
}

impl PerfLayer {
    /// A builder with the default configuration.
    pub fn builder() -> PerfLayerBuilder {
        PerfLayerBuilder::new()
    }

    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.shared.config.clock.raw()
    }
}

impl<S> Layer<S> for PerfLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.shared.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let _pause = PauseCounting::new();
        let created = self.now();
        let Some(span) = ctx.span(id) else { return };
        // The registry resolved the parent (contextual or explicit, and
        // skipping spans our per-layer filter disabled); one more look-up.
        let parent = span.parent().map(|p| p.metadata());
        let state = SpanState::new(
            self.shared.layer_id,
            span.metadata(),
            parent,
            created,
            self.shared.rss_now(),
        );
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanState>() {
            // Another PerfLayer in this same subscriber got here first.
            Some(first) => first.stack(state),
            None => extensions.insert(state),
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        // No pause: pushing allocates only when the stack grows, and pauses
        // for that itself.
        let now = self.now();
        let clock = &self.shared.config.clock;
        with_stack(self.shared.layer_id, |stack| {
            if stack.is_full() {
                let _pause = PauseCounting::new();
                stack.forget_closed(
                    now,
                    |span| ctx.span(&Id::from_u64(span)).is_some(),
                    |a, b| clock.delta_as_nanos(a, b),
                );
            }
            stack.push(id.into_u64(), now);
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        // No pause: nothing here allocates.
        let now = self.now();
        let clock = &self.shared.config.clock;
        let layer_id = self.shared.layer_id;
        with_stack(layer_id, |stack| {
            let Some(finished) = stack.pop(id.into_u64(), now, |a, b| clock.delta_as_nanos(a, b))
            else {
                return;
            };
            let Some(span) = ctx.span(id) else { return };
            let mut extensions = span.extensions_mut();
            if let Some(state) = extensions
                .get_mut::<SpanState>()
                .and_then(|s| s.of_layer(layer_id))
            {
                state.absorb(&finished);
            }
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = level_index(event.metadata().level());
        if event.is_contextual() {
            with_stack(self.shared.layer_id, |stack| {
                if let Some(top) = stack.top_mut() {
                    top.events[level] = top.events[level].saturating_add(1);
                }
            });
        } else if let Some(span) = event.parent().and_then(|id| ctx.span(id)) {
            let mut extensions = span.extensions_mut();
            if let Some(state) = extensions
                .get_mut::<SpanState>()
                .and_then(|s| s.of_layer(self.shared.layer_id))
            {
                state.events[level] = state.events[level].saturating_add(1);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let _pause = PauseCounting::new();
        let now = self.now();
        let Some(span) = ctx.span(&id) else { return };
        // Removed rather than read: the state's memory is freed here, while
        // counting is paused, so the free is not charged to the parent span.
        let state = {
            let mut extensions = span.extensions_mut();
            let layer_id = self.shared.layer_id;
            match extensions.get_mut::<SpanState>() {
                Some(first) if first.is_only(layer_id) => extensions.remove::<SpanState>(),
                Some(first) => first.take_stacked(layer_id),
                None => None,
            }
        };
        let Some(state) = state else { return };
        drop(span);

        let clock = &self.shared.config.clock;
        let wall_ns = clock.delta_as_nanos(state.created, now);
        // Busy can exceed wall only when one span was entered on two threads
        // at once; clamp so idle (wall - busy) is never negative.
        let busy_ns = state.busy_ns.min(wall_ns);
        let self_ns = state.self_ns.min(busy_ns);
        let alloc = crate::alloc::is_installed().then(|| {
            let net = i128::from(state.alloc.alloc_bytes) - i128::from(state.alloc.freed_bytes);
            let net_bytes = i64::try_from(net).unwrap_or(if net > 0 { i64::MAX } else { i64::MIN });
            AllocStats {
                alloc_bytes: state.alloc.alloc_bytes,
                allocs: state.alloc.allocs,
                freed_bytes: state.alloc.freed_bytes,
                frees: state.alloc.frees,
                self_alloc_bytes: state.self_alloc_bytes,
                self_allocs: state.self_allocs,
                net_bytes,
                calls_retaining: u64::from(net_bytes > 0),
            }
        });
        let rss_delta = match (state.rss_at_open, self.shared.rss_now()) {
            (Some(open), Some(close)) => Some(close as i64 - open as i64),
            _ => None,
        };
        let closed = ClosedSpan {
            wall_ns,
            busy_ns,
            self_ns,
            events: events_from_array(&state.events),
            alloc,
            rss_delta,
        };
        self.shared.store.record(state.meta, state.parent, &closed);
    }
}
