//! The optional counting global allocator.
//!
//! Install it once, in the binary:
//!
//! ```
//! use perf_layer::CountingAllocator;
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator::system();
//! # fn main() {}
//! ```
//!
//! It wraps any [`GlobalAlloc`] (the system allocator by default, or e.g. a
//! jemalloc or mimalloc allocator) and counts, per thread, the bytes and
//! number of allocations and frees. The layer reads those thread-local
//! counters when a span is entered and exited, so every allocation is
//! attributed to the span that was entered on the thread that made it. The
//! counters are plain thread-local cells: no atomics, no locks, no syscalls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A [`GlobalAlloc`] that counts allocations per thread for perf-layer.
///
/// Install it once, in the binary; it wraps the system allocator, or any
/// other with [`CountingAllocator::new`]:
///
/// ```
/// #[global_allocator]
/// static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();
/// # fn main() {}
/// ```
///
/// Counts are plain thread-local cells read by the layer when spans are
/// entered and exited: no atomics, no locks, no syscalls.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    /// Counts allocations made through the system allocator.
    pub const fn system() -> Self {
        Self { inner: System }
    }
}

impl<A> CountingAllocator<A> {
    /// Counts allocations made through `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

/// Whether a [`CountingAllocator`] is installed as the global allocator and
/// has served at least one allocation.
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// The running allocation totals of the current thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocCounters {
    /// Bytes allocated by this thread.
    pub alloc_bytes: u64,
    /// Allocations made by this thread.
    pub allocs: u64,
    /// Bytes freed by this thread.
    pub freed_bytes: u64,
    /// Frees made by this thread.
    pub frees: u64,
}

impl AllocCounters {
    /// The counts from `earlier` to `self`.
    #[inline]
    pub(crate) fn since(&self, earlier: &AllocCounters) -> AllocCounters {
        AllocCounters {
            alloc_bytes: self.alloc_bytes.wrapping_sub(earlier.alloc_bytes),
            allocs: self.allocs.wrapping_sub(earlier.allocs),
            freed_bytes: self.freed_bytes.wrapping_sub(earlier.freed_bytes),
            frees: self.frees.wrapping_sub(earlier.frees),
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, other: &AllocCounters) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(other.alloc_bytes);
        self.allocs = self.allocs.wrapping_add(other.allocs);
        self.freed_bytes = self.freed_bytes.wrapping_add(other.freed_bytes);
        self.frees = self.frees.wrapping_add(other.frees);
    }
}

struct Counters {
    alloc_bytes: Cell<u64>,
    allocs: Cell<u64>,
    freed_bytes: Cell<u64>,
    frees: Cell<u64>,
    /// While above zero, this thread's allocations are perf-layer's own and
    /// are not counted.
    paused: Cell<u32>,
}

thread_local! {
    // `const` initialization and fields without `Drop`: accessing this never
    // allocates and registers no destructor, which a global allocator needs.
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

/// The current thread's totals (all zero without the counting allocator).
#[inline]
pub fn thread_counters() -> AllocCounters {
    COUNTERS
        .try_with(|c| AllocCounters {
            alloc_bytes: c.alloc_bytes.get(),
            allocs: c.allocs.get(),
            freed_bytes: c.freed_bytes.get(),
            frees: c.frees.get(),
        })
        .unwrap_or_default()
}

/// Stops counting this thread's allocations until dropped, so the layer's own
/// bookkeeping is kept out of the spans it measures.
pub(crate) struct PauseCounting(());

impl PauseCounting {
    pub(crate) fn new() -> Self {
        let _ = COUNTERS.try_with(|c| c.paused.set(c.paused.get() + 1));
        PauseCounting(())
    }
}

impl Drop for PauseCounting {
    fn drop(&mut self) {
        let _ = COUNTERS.try_with(|c| c.paused.set(c.paused.get().saturating_sub(1)));
    }
}

#[inline]
fn count_alloc(size: usize) {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
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

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments unchanged and returns its result unchanged; counting only touches
// thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { self.inner.dealloc(ptr, layout) };
        count_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // A reallocation frees the old block and allocates the new one.
            count_free(layout.size());
            count_alloc(new_size);
        }
        new
    }
}
