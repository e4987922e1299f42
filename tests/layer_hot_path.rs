//! The span hot path: no allocation of its own after a callsite's first use
//! (the registry's extension slot aside), and no panic whatever order the
//! callbacks arrive in.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use perf_layer::{CountingAllocator, PerfHandle, PerfLayer};
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

/// Counts every allocation of the current thread, the layer's own included
/// (the `CountingAllocator` inside deliberately hides those from spans).
struct AuditingAllocator(CountingAllocator);

thread_local! {
    static ALL_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the inner allocator; the counter
// is a const-initialized thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for AuditingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALL_ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALL_ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: AuditingAllocator = AuditingAllocator(CountingAllocator::system());

struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

/// Allocations per span lifecycle (nested two deep) at steady state.
fn allocs_per_span(dispatch: &Dispatch) -> f64 {
    const SPANS: u64 = 1_000;
    tracing::dispatcher::with_default(dispatch, || {
        let work = || info_span!("outer").in_scope(|| info_span!("inner").in_scope(|| {}));
        for _ in 0..100 {
            work(); // first use: shards, histograms, stacks
        }
        let before = ALL_ALLOCS.with(Cell::get);
        for _ in 0..SPANS {
            work();
        }
        (ALL_ALLOCS.with(Cell::get) - before) as f64 / (2 * SPANS) as f64
    })
}

#[test]
fn after_first_use_the_layer_makes_no_allocation_of_its_own_per_span() {
    let floor = allocs_per_span(&Dispatch::new(
        tracing_subscriber::registry().with(NoopLayer),
    ));
    let (layer, handle) = PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let with_layer = allocs_per_span(&Dispatch::new(tracing_subscriber::registry().with(layer)));
    // The layer keeps span state in its own shards, not in the registry's
    // extensions, so after first use it allocates nothing per span.
    assert!(
        with_layer - floor <= 0.01,
        "the layer allocates {with_layer} per span against a floor of {floor}"
    );
    assert_eq!(handle.snapshot().overhead.spans, 2 * 1_100);
}

/// A subscriber whose perf-layer arrives only when `add_layer` is called,
/// through `reload`, as a service adding profiling at run time would.
fn layer_added_later() -> (Dispatch, impl FnOnce(), PerfHandle) {
    let (layer, handle) = PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let (reloadable, reload) = tracing_subscriber::reload::Layer::new(None::<PerfLayer>);
    // The no-op layer keeps the subscriber interested in every span while
    // the reloadable slot is empty (an empty slot alone hints "level OFF",
    // and spans created before the layer would never be created).
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(NoopLayer)
            .with(reloadable),
    );
    (
        dispatch,
        move || reload.reload(Some(layer)).unwrap(),
        handle,
    )
}

#[test]
fn callbacks_for_spans_the_layer_never_saw_open_are_ignored() {
    let (dispatch, add_layer, handle) = layer_added_later();
    tracing::dispatcher::with_default(&dispatch, || {
        let early = info_span!("opened_before_the_layer");
        // The layer arrives while `early` is open: it sees its enter, exit
        // and close but never its creation.
        add_layer();
        early.in_scope(|| {
            info_span!("child_of_unknown").in_scope(|| tracing::info!("event"));
        });
        drop(early);
        info_span!("normal").in_scope(|| {});
    });
    let dump = handle.snapshot();
    let calls = |name: &str| {
        dump.callsites
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.calls)
    };
    // Not recorded; listed with zero calls only as its child's parent.
    assert_eq!(calls("opened_before_the_layer"), Some(0));
    assert_eq!(calls("child_of_unknown"), Some(1));
    assert_eq!(calls("normal"), Some(1));
}

#[test]
fn a_span_created_under_a_span_entered_before_a_reload_gets_its_parent() {
    let (dispatch, add_layer, handle) = layer_added_later();
    tracing::dispatcher::with_default(&dispatch, || {
        // Entered before the layer arrives: its stack on this thread never
        // sees that enter, only the registry knows.
        info_span!("entered_before_the_layer").in_scope(|| {
            add_layer();
            info_span!("child_of_unseen").in_scope(|| {});
        });
        // Once nothing is entered, a root span is a root again.
        info_span!("root_after").in_scope(|| {});
    });
    let dump = handle.snapshot();
    let id = |name: &str| dump.callsites.iter().find(|c| c.name == name).map(|c| c.id);
    let (parent, child) = (id("entered_before_the_layer"), id("child_of_unseen"));
    let names: Vec<_> = dump.callsites.iter().map(|c| &c.name).collect();
    assert!(parent.is_some(), "the unseen parent is listed: {names:?}");
    assert!(
        dump.edges
            .iter()
            .any(|e| Some(e.parent) == parent && Some(e.child) == child),
        "edges: {:?}",
        dump.edges
    );
    let root = id("root_after");
    assert!(
        dump.edges.iter().all(|e| Some(e.child) != root),
        "root_after has no parent: {:?}",
        dump.edges
    );
}
