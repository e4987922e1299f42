//! perf-layer 0.1's counting allocator, kept as a baseline for the tagging
//! one: per-thread totals in thread-local cells, no tag. The same code as
//! `perf-layer/src/alloc.rs` at 2db0459, minus what the layer read from it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[derive(Debug, Default, Clone, Copy)]
pub struct CountingV0;

struct Counters {
    alloc_bytes: Cell<u64>,
    allocs: Cell<u64>,
    freed_bytes: Cell<u64>,
    frees: Cell<u64>,
    paused: Cell<u32>,
}

thread_local! {
    static COUNTERS: Counters = const {
        Counters {
            alloc_bytes: Cell::new(0),
            allocs: Cell::new(0),
            freed_bytes: Cell::new(0),
            frees: Cell::new(0),
            paused: Cell::new(0),
        }
    };
}

#[inline]
fn count_alloc(size: usize) {
    let _ = COUNTERS.try_with(|c| {
        if c.paused.get() == 0 {
            c.alloc_bytes
                .set(c.alloc_bytes.get().wrapping_add(size as u64));
            c.allocs.set(c.allocs.get().wrapping_add(1));
        }
    });
}

#[inline]
fn count_free(size: usize) {
    let _ = COUNTERS.try_with(|c| {
        if c.paused.get() == 0 {
            c.freed_bytes
                .set(c.freed_bytes.get().wrapping_add(size as u64));
            c.frees.set(c.frees.get().wrapping_add(1));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; counting touches only
// thread-local cells.
unsafe impl GlobalAlloc for CountingV0 {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        new
    }
}
