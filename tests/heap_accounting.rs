//! Every allocation and every free is tagged and credited exactly once: the
//! allocator's live heap equals what an independent counter outside it
//! sees, and the dump's per-callsite live bytes add up to it.
//!
//! One test in its own binary, so that no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering};

use perf_layer::{CountingAllocator, PerfLayer};
use tracing::info_span;
use tracing_subscriber::prelude::*;

/// Counts live bytes itself, around the counting allocator.
struct Outer(CountingAllocator);

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call unchanged to the counting allocator.
unsafe impl GlobalAlloc for Outer {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Outer = Outer(CountingAllocator::system());

#[tracing::instrument(skip_all)]
fn make(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

#[test]
fn the_live_heap_is_what_an_outside_counter_sees_and_callsites_add_up_to_it() {
    let (layer, handle) = PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut kept = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200 {
            let v = info_span!("outer").in_scope(|| make(100 + i));
            // Kept across threads, grown elsewhere, freed elsewhere.
            if i % 3 == 0 {
                kept.push(v);
            } else {
                std::thread::spawn(move || {
                    let mut v = v;
                    v.push(1);
                    drop(v);
                })
                .join()
                .unwrap();
            }
        }
    });
    // Nothing else allocates between these two readings.
    let ours = perf_layer::heap_live_bytes().expect("the counting allocator is installed");
    let theirs = LIVE.load(Ordering::Relaxed);
    assert_eq!(
        ours as i64, theirs,
        "every allocation and free counted once"
    );

    let dump = handle.snapshot();
    let heap = dump.heap.as_ref().expect("heap figures");
    let callsites: u64 = dump
        .callsites
        .iter()
        .map(|c| c.heap.as_ref().unwrap().live_bytes)
        .sum();
    assert_eq!(
        callsites + heap.outside_spans.live_bytes + heap.layer.live_bytes + heap.other.live_bytes,
        heap.live_bytes,
        "the parts add up to the whole"
    );
    let make = dump.callsites.iter().find(|c| c.name == "make").unwrap();
    let kept_bytes: u64 = kept.iter().map(|v| (v.capacity() * 8) as u64).sum();
    assert_eq!(make.heap.as_ref().unwrap().live_bytes, kept_bytes);
}
