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
//! jemalloc or mimalloc allocator) and keeps two kinds of figures:
//!
//! - **who allocates**: per-thread running totals of bytes and allocations
//!   made and freed, which the layer reads when a span is entered and
//!   exited, so every allocation counts for the span entered on the thread
//!   that made it (plain thread-local cells: no atomics, no locks);
//! - **who holds memory**: every allocation carries a tag naming the span
//!   callsite that was innermost on its thread when it was made
//!   ([`super::heap`]), and its free is credited to that callsite, on
//!   whichever thread and inside whichever span it happens. So a function
//!   that returns a `Vec` its caller frees ends with nothing live, and a
//!   callsite's live bytes are what it made that is still allocated.
//!
//! # The tag, and what it costs
//!
//! The tag sits in an 8-byte footer after the allocation, at its size
//! rounded up to 8 bytes: every allocation takes 8 to 15 bytes more from
//! the inner allocator (and at least 8-byte alignment), whatever its
//! alignment, so 4096-aligned blocks pay no more than small ones.
//! `alloc_zeroed` goes through the inner allocator's `alloc_zeroed` and
//! writes only the footer, so a large zeroed allocation stays untouched
//! (and off the resident set) until used; `realloc` goes through the inner
//! `realloc` and moves the footer to the new end, keeping the tag: an
//! allocation belongs to the callsite that made it for its whole life,
//! whatever grows it. Tagging is on from the first allocation to the last;
//! it is never switched at run time (a block freed with another layout
//! than it was made with would be undefined behaviour).
//!
//! One file although over 400 lines: every `GlobalAlloc` path with its
//! safety argument, and the tag footer they share, read best side by side
//! (the counter tables are in `heap.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::heap::{self, Side, TAG_LAYER, TAG_NONE, TAG_OVERFLOW, Table};

/// The footer's upper half, to tell a tagged block from stray memory in
/// debug builds.
const FOOTER_MAGIC: u64 = 0x7A61_6700 << 32;
/// Bytes of the footer.
pub(crate) const TAG_BYTES: usize = 8;

/// A [`GlobalAlloc`] that counts and tags allocations for perf-layer.
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
/// Each allocation takes 8 to 15 bytes more from the inner allocator (the
/// tag of the callsite that made it: a footer of 8 bytes after the size
/// rounded up to a multiple of 8; docs/dump-format.md, `heap`). The
/// span path reads thread-local counters; no allocation or free takes a
/// lock or makes a syscall.
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
/// has served at least one allocation (some thread has counted one).
pub fn is_installed() -> bool {
    heap::any_counts()
}

/// Every byte the counting allocator has handed out and not yet seen freed,
/// over every thread and every callsite (spans, outside spans, perf-layer's
/// own); `None` when it is not the global allocator.
///
/// Exact when no other thread allocates meanwhile; otherwise a moment's
/// reading of counters that keep moving.
pub fn heap_live_bytes() -> Option<u64> {
    is_installed().then(heap::live_total)
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

/// Where a thread stands with its heap table.
const TABLE_NONE: u8 = 0;
const TABLE_OWNED: u8 = 1;
/// The thread is being torn down: counts go to the shared table.
const TABLE_GONE: u8 = 2;

/// Everything the allocator keeps per thread, in one thread-local.
struct Local {
    alloc_bytes: Cell<u64>,
    allocs: Cell<u64>,
    freed_bytes: Cell<u64>,
    frees: Cell<u64>,
    /// While above zero, this thread's allocations are perf-layer's own:
    /// not counted for spans, tagged [`TAG_LAYER`].
    paused: Cell<u32>,
    /// The callsite innermost on this thread, set by the layer.
    tag: Cell<u32>,
    table: Cell<Option<&'static Table>>,
    table_state: Cell<u8>,
}

thread_local! {
    // `const` initialization and fields without `Drop`: accessing this never
    // allocates and registers no destructor, which a global allocator needs.
    static LOCAL: Local = const {
        Local {
            alloc_bytes: Cell::new(0),
            allocs: Cell::new(0),
            freed_bytes: Cell::new(0),
            frees: Cell::new(0),
            paused: Cell::new(0),
            tag: Cell::new(TAG_NONE),
            table: Cell::new(None),
            table_state: Cell::new(TABLE_NONE),
        }
    };
    /// Gives the thread's heap table back when the thread exits. Touched
    /// once, when the thread gets its table.
    static RELEASE: Release = const { Release };
}

struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| {
            l.table_state.set(TABLE_GONE);
            if let Some(table) = l.table.take() {
                heap::release_table(table);
            }
        });
    }
}

/// The current thread's totals (all zero without the counting allocator).
#[inline]
pub fn thread_counters() -> AllocCounters {
    LOCAL
        .try_with(|c| AllocCounters {
            alloc_bytes: c.alloc_bytes.get(),
            allocs: c.allocs.get(),
            freed_bytes: c.freed_bytes.get(),
            frees: c.frees.get(),
        })
        .unwrap_or_default()
}

/// Names the callsite innermost on this thread: what the next allocations
/// are tagged with ([`heap::TAG_NONE`] outside every span).
#[inline]
pub(crate) fn set_current_tag(tag: u32) {
    let _ = LOCAL.try_with(|l| l.tag.set(tag));
}

/// Stops counting this thread's allocations until dropped, so the layer's own
/// bookkeeping is kept out of the spans it measures (and tagged as its own).
pub(crate) struct PauseCounting(());

impl PauseCounting {
    pub(crate) fn new() -> Self {
        let _ = LOCAL.try_with(|c| c.paused.set(c.paused.get() + 1));
        PauseCounting(())
    }
}

impl Drop for PauseCounting {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|c| c.paused.set(c.paused.get().saturating_sub(1)));
    }
}

/// The block the inner allocator serves for `layout`: the footer after the
/// allocation at its size rounded up to 8, at least 8-byte alignment.
/// `None` when the sizes overflow (the allocation then fails, as it must).
#[inline(always)]
fn outer(layout: Layout) -> Option<(Layout, usize)> {
    let align = layout.align().max(TAG_BYTES);
    // A `Layout`'s size is at most `isize::MAX - (align - 1)`, so these sums
    // cannot overflow `usize`; only the rounded outer size can pass
    // `isize::MAX`, for sizes within 16 bytes of it.
    if layout.size() > isize::MAX as usize - (2 * TAG_BYTES - 1) - (align - 1) {
        return None;
    }
    let footer_at = (layout.size() + TAG_BYTES - 1) & !(TAG_BYTES - 1);
    // SAFETY: `align` is a power of two (the larger of two), and the size
    // rounded up to it stays within `isize::MAX` by the check above.
    let outer = unsafe { Layout::from_size_align_unchecked(footer_at + TAG_BYTES, align) };
    Some((outer, footer_at))
}

/// # Safety
/// `block` is a live block of at least `footer_at + TAG_BYTES` bytes, 8-aligned.
#[inline]
unsafe fn write_footer(block: *mut u8, footer_at: usize, tag: u32) {
    // SAFETY: in bounds and 8-aligned by the caller's contract and `outer`.
    unsafe {
        block
            .add(footer_at)
            .cast::<u64>()
            .write(FOOTER_MAGIC | u64::from(tag))
    };
}

/// # Safety
/// As [`write_footer`], on a block whose footer was written.
#[inline]
unsafe fn read_footer(block: *const u8, footer_at: usize) -> u32 {
    // SAFETY: as in `write_footer`.
    let footer = unsafe { block.add(footer_at).cast::<u64>().read() };
    debug_assert_eq!(footer & !0xFFFF_FFFF, FOOTER_MAGIC, "a block without a tag");
    if footer & !0xFFFF_FFFF == FOOTER_MAGIC {
        footer as u32
    } else {
        TAG_OVERFLOW
    }
}

/// The tag of an allocation made now on this thread, with the span counts.
#[inline]
fn on_alloc(size: usize) -> u32 {
    LOCAL
        .try_with(|l| {
            let tag = if l.paused.get() == 0 {
                l.alloc_bytes
                    .set(l.alloc_bytes.get().wrapping_add(size as u64));
                l.allocs.set(l.allocs.get().wrapping_add(1));
                l.tag.get()
            } else {
                TAG_LAYER
            };
            count(l, tag, Side::Alloc, size);
            tag
        })
        .unwrap_or_else(|_| {
            heap::SHARED.add_shared(TAG_NONE, Side::Alloc, size);
            TAG_NONE
        })
}

/// Credits a free of `size` bytes to the callsite that made them.
#[inline]
fn on_free(tag: u32, size: usize) {
    let counted = LOCAL.try_with(|l| {
        if l.paused.get() == 0 {
            l.freed_bytes
                .set(l.freed_bytes.get().wrapping_add(size as u64));
            l.frees.set(l.frees.get().wrapping_add(1));
        }
        count(l, tag, Side::Free, size);
    });
    if counted.is_err() {
        heap::SHARED.add_shared(tag, Side::Free, size);
    }
}

/// Counts on this thread's table, getting one on its first allocation.
#[inline]
fn count(l: &Local, tag: u32, side: Side, size: usize) {
    match l.table.get() {
        Some(table) => table.add_owned(tag, side, size),
        None => count_without_table(l, tag, side, size),
    }
}

#[cold]
#[inline(never)]
fn count_without_table(l: &Local, tag: u32, side: Side, size: usize) {
    if l.table_state.get() == TABLE_NONE {
        if let Some(table) = heap::acquire_table() {
            l.table.set(Some(table));
            l.table_state.set(TABLE_OWNED);
            // Registers the destructor that gives the table back. Any
            // allocation it makes finds the table already set.
            if RELEASE.try_with(|_| ()).is_err() {
                l.table.set(None);
                l.table_state.set(TABLE_GONE);
                heap::release_table(table);
            } else {
                table.add_owned(tag, side, size);
                return;
            }
        }
    }
    heap::SHARED.add_shared(tag, side, size);
}

// SAFETY: every method asks the inner allocator for a block laid out by
// `outer` (the caller's size rounded up to 8, then the 8-byte footer; the
// caller's alignment, at least 8), returns the caller's pointer to its
// start, and frees or resizes it with that same layout, recomputed from the
// caller's layout. Counting only touches thread-local cells and the
// thread's own counters, which neither allocate through this allocator nor
// unwind.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((outer, footer_at)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size.
        let block = unsafe { self.inner.alloc(outer) };
        if !block.is_null() {
            let tag = on_alloc(layout.size());
            // SAFETY: `block` holds `outer`.
            unsafe { write_footer(block, footer_at, tag) };
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((outer, footer_at)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size. Only the footer is written,
        // so the rest stays as the inner allocator gave it (untouched pages).
        let block = unsafe { self.inner.alloc_zeroed(outer) };
        if !block.is_null() {
            let tag = on_alloc(layout.size());
            // SAFETY: `block` holds `outer`.
            unsafe { write_footer(block, footer_at, tag) };
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // `outer` succeeded when this block was allocated with this layout.
        let Some((outer, footer_at)) = outer(layout) else {
            return;
        };
        // SAFETY: `ptr` was allocated by `alloc`/`alloc_zeroed`/`realloc`
        // with `layout`, so it holds `outer` and its footer.
        let tag = unsafe { read_footer(ptr, footer_at) };
        // SAFETY: the block was allocated by the inner allocator with `outer`.
        unsafe { self.inner.dealloc(ptr, outer) };
        on_free(tag, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some((old_outer, old_footer)), Ok(new_layout)) = (
            outer(layout),
            Layout::from_size_align(new_size, layout.align()),
        ) else {
            return std::ptr::null_mut();
        };
        let Some((new_outer, new_footer)) = outer(new_layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `ptr` holds `old_outer` and its footer (see `dealloc`).
        let tag = unsafe { read_footer(ptr, old_footer) };
        // SAFETY: same alignment (the caller's, at least 8) for both
        // layouts, a non-zero new size; the old block is ours with
        // `old_outer`.
        let new = unsafe { self.inner.realloc(ptr, old_outer, new_outer.size()) };
        if !new.is_null() {
            // SAFETY: `new` holds `new_outer`.
            unsafe { write_footer(new, new_footer, tag) };
            // A resize: the old bytes freed and the new ones allocated, by
            // the callsite that made the block.
            on_free(tag, layout.size());
            let _ = LOCAL.try_with(|l| {
                if l.paused.get() == 0 {
                    l.alloc_bytes
                        .set(l.alloc_bytes.get().wrapping_add(new_size as u64));
                    l.allocs.set(l.allocs.get().wrapping_add(1));
                }
                count(l, tag, Side::Alloc, new_size);
            });
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_adds_8_to_15_bytes_and_keeps_alignment() {
        for (size, align) in [(1, 1), (8, 8), (9, 1), (64, 16), (100, 4096), (4096, 4096)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let (outer, at) = outer(layout).unwrap();
            assert!(at >= size && at % 8 == 0, "{size}/{align}: footer at {at}");
            let extra = outer.size() - size;
            assert!(
                (8..=15).contains(&extra),
                "{size}/{align}: {extra} extra bytes"
            );
            assert_eq!(outer.align(), align.max(8));
        }
        assert!(outer(Layout::from_size_align(isize::MAX as usize - 3, 1).unwrap()).is_none());
    }
}
