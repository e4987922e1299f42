//! Live heap by allocating callsite: the tags that name a span callsite in
//! every allocation, and the per-thread counter tables that credit each
//! allocation and each free to the callsite that made the allocation.
//!
//! # Tags
//!
//! A tag is a small integer naming a span callsite, the same in every layer
//! of the process (the allocator is process-wide). [`tag_of`] finds a
//! callsite's tag in a lock-free open-addressing table over the address of
//! its `'static` metadata (a few nanoseconds; a first sight claims a slot
//! with a compare-and-swap). Three tags are reserved: [`TAG_NONE`] (no span
//! entered, or before any layer), [`TAG_LAYER`] (perf-layer's own
//! bookkeeping) and [`TAG_OVERFLOW`] (callsites past [`MAX_TAGS`]).
//!
//! # Counter tables
//!
//! Each thread owns a table of counters per tag (allocations, bytes
//! allocated, frees, bytes freed), in chunks of 256 tags allocated from the
//! system allocator the first time the thread touches one. Only the owning
//! thread writes its table, with plain loads and stores (relaxed atomics:
//! no read-modify-write, no lock); readers sum every table. A thread that
//! exits gives its table back for the next thread to continue, so tables
//! are bounded by the most threads alive at once, not by all that ever
//! ran. Where a thread has no table (while it is torn down), a process-wide
//! table takes the counts with atomic additions.
//!
//! Memory: 256 KiB of static look-up tables, then 8 KiB per chunk a thread
//! touches (one chunk covers 256 callsites) and 256 bytes per table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use tracing_core::Metadata;

/// No span entered on the allocating thread (or no layer yet).
pub(crate) const TAG_NONE: u32 = 0;
/// perf-layer's own allocations (its maps, histograms, stacks).
pub(crate) const TAG_LAYER: u32 = 1;
/// A callsite beyond [`MAX_TAGS`].
pub(crate) const TAG_OVERFLOW: u32 = 2;
pub(crate) const FIRST_CALLSITE_TAG: u32 = 3;

/// The most tags, reserved ones included.
pub(crate) const MAX_TAGS: usize = 8192;
const CHUNK_TAGS: usize = 256;
const CHUNKS: usize = MAX_TAGS / CHUNK_TAGS;
/// Twice the tags: probes stay short.
const SLOTS: usize = 2 * MAX_TAGS;

/// Callsite addresses (0: empty slot).
static KEYS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
/// Tag + 1 of the callsite in the same slot (0: being claimed).
static VALUES: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
static NEXT_TAG: AtomicU32 = AtomicU32::new(FIRST_CALLSITE_TAG);
/// Each callsite tag's metadata (null: a reserved tag, or not claimed yet):
/// [`callsite_of`].
static CALLSITES: [AtomicPtr<Metadata<'static>>; MAX_TAGS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_TAGS];

/// The tag of a span callsite: the same for every layer, for the life of
/// the process.
#[inline]
pub(crate) fn tag_of(meta: &'static Metadata<'static>) -> u32 {
    let key = meta as *const Metadata<'static> as usize;
    let mut slot = home_slot(key);
    loop {
        match KEYS[slot].load(Ordering::Acquire) {
            k if k == key => return value_at(slot),
            0 => {
                if let Some(tag) = claim(slot, key) {
                    return tag;
                }
                // Another thread claimed this slot meanwhile: look again.
                continue;
            }
            _ => slot = (slot + 1) % SLOTS,
        }
    }
}

/// The slot a callsite's probe starts at: Fibonacci hashing of its
/// metadata's address (metadata are 8-aligned statics).
#[inline]
fn home_slot(key: usize) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 50) % SLOTS
}

/// The tag in `slot`, once its claimer has stored it. The claimer stores
/// it a few instructions after claiming the slot; a claimer preempted in
/// between gets the CPU back from this thread's yields, instead of this
/// thread spinning out its time slice.
#[inline]
fn value_at(slot: usize) -> u32 {
    let mut spins = 0u32;
    loop {
        match VALUES[slot].load(Ordering::Acquire) {
            0 if spins < 64 => {
                spins += 1;
                std::hint::spin_loop();
            }
            0 => std::thread::yield_now(),
            v => return v - 1,
        }
    }
}

/// Claims empty `slot` for `key`; `None` when another thread took it first.
#[cold]
#[inline(never)]
fn claim(slot: usize, key: usize) -> Option<u32> {
    KEYS[slot]
        .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
        .ok()?;
    let next = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
    let tag = if (next as usize) < MAX_TAGS {
        next
    } else {
        TAG_OVERFLOW
    };
    if tag != TAG_OVERFLOW {
        // Before the tag is published: whoever has the tag finds its
        // callsite.
        CALLSITES[tag as usize].store(key as *mut Metadata<'static>, Ordering::Relaxed);
    }
    VALUES[slot].store(tag + 1, Ordering::Release);
    Some(tag)
}

/// The span callsite that tag `tag` names ([`tag_of`]); `None` for the
/// reserved tags. A span's callsite from a tag already at hand, such as a
/// stack frame's, without a look-up by span id.
#[inline]
pub(crate) fn callsite_of(tag: u32) -> Option<&'static Metadata<'static>> {
    let callsite = CALLSITES.get(tag as usize)?.load(Ordering::Acquire);
    // SAFETY: only `claim` stores here, the address of a `&'static
    // Metadata<'static>` (`tag_of`'s key).
    unsafe { callsite.as_ref() }
}

/// Allocations, bytes allocated, frees, bytes freed.
type Entry = [AtomicU64; 4];

struct Chunk {
    entries: [Entry; CHUNK_TAGS],
}

/// One thread's counters (or the shared fallback's).
pub(crate) struct Table {
    chunks: [AtomicPtr<Chunk>; CHUNKS],
    /// The next table in [`TABLES`] (never changes once linked).
    next: AtomicPtr<Table>,
    /// The next table in [`FREE`], while this one is free.
    next_free: AtomicPtr<Table>,
}

impl Table {
    const fn new() -> Self {
        Self {
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS],
            next: AtomicPtr::new(ptr::null_mut()),
            next_free: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The entry of `tag`, its chunk created on first use; `None` when the
    /// system cannot give memory for it.
    #[inline]
    fn entry(&self, tag: u32) -> Option<&Entry> {
        let tag = tag as usize % MAX_TAGS;
        let slot = &self.chunks[tag / CHUNK_TAGS];
        let mut chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            chunk = new_chunk(slot)?;
        }
        // SAFETY: chunks are zeroed `Chunk`s from the system allocator,
        // never freed.
        Some(unsafe { &(*chunk).entries[tag % CHUNK_TAGS] })
    }

    /// Counts on the owner's table: plain loads and stores.
    #[inline]
    pub(crate) fn add_owned(&self, tag: u32, which: Side, bytes: usize) {
        if let Some(e) = self.entry(tag) {
            let (n, b) = which.indices();
            e[n].store(
                e[n].load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            e[b].store(
                e[b].load(Ordering::Relaxed).wrapping_add(bytes as u64),
                Ordering::Relaxed,
            );
        }
    }

    /// Counts on a table several threads write.
    pub(crate) fn add_shared(&self, tag: u32, which: Side, bytes: usize) {
        if let Some(e) = self.entry(tag) {
            let (n, b) = which.indices();
            e[n].fetch_add(1, Ordering::Relaxed);
            e[b].fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

/// An allocation or a free.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Alloc,
    Free,
}

impl Side {
    fn indices(self) -> (usize, usize) {
        match self {
            Side::Alloc => (0, 1),
            Side::Free => (2, 3),
        }
    }
}

#[cold]
#[inline(never)]
fn new_chunk(slot: &AtomicPtr<Chunk>) -> Option<*mut Chunk> {
    // SAFETY: a non-zero-size layout; zeroed atomics are valid zeros.
    let fresh = unsafe { System.alloc_zeroed(Layout::new::<Chunk>()) }.cast::<Chunk>();
    if fresh.is_null() {
        return None;
    }
    match slot.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            CHUNKED.store(true, Ordering::Release);
            Some(fresh)
        }
        // The shared table: another thread made it first.
        Err(existing) => {
            // SAFETY: allocated just above with this layout, never shared.
            unsafe { System.dealloc(fresh.cast(), Layout::new::<Chunk>()) };
            Some(existing)
        }
    }
}

/// Every table ever made, linked through `next` (push-only).
static TABLES: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());
/// Tables whose threads exited, for the next thread, behind a spin lock
/// (taken once when a thread starts and once when it exits) that yields
/// while it waits, so a holder preempted in its few instructions runs again
/// instead of the waiter spinning out its time slice. Not a blocking mutex:
/// it is taken inside the global allocator, which must not allocate.
static FREE: spin::mutex::SpinMutex<usize, spin::relax::Yield> = spin::mutex::SpinMutex::new(0);
/// Counts of threads that have no table at that moment.
pub(crate) static SHARED: Table = Table::new();

/// A table for a new thread: one given back by an exited thread, or a new
/// one from the system allocator. `None` when the system has no memory.
#[cold]
#[inline(never)]
pub(crate) fn acquire_table() -> Option<&'static Table> {
    {
        let mut head = FREE.lock();
        if *head != 0 {
            let table = *head as *const Table;
            // SAFETY: free-listed tables are live statics-by-leak.
            let t = unsafe { &*table };
            *head = t.next_free.load(Ordering::Relaxed) as usize;
            return Some(t);
        }
    }
    // SAFETY: a non-zero-size layout; a zeroed `Table` is `Table::new()`.
    let fresh = unsafe { System.alloc_zeroed(Layout::new::<Table>()) }.cast::<Table>();
    if fresh.is_null() {
        return None;
    }
    // SAFETY: just allocated, never freed: tables live as long as the process.
    let t: &'static Table = unsafe { &*fresh };
    let mut head = TABLES.load(Ordering::Acquire);
    loop {
        t.next.store(head, Ordering::Relaxed);
        match TABLES.compare_exchange_weak(head, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(t),
            Err(now) => head = now,
        }
    }
}

/// Gives a table back when its thread exits; its counts stay in the sums.
pub(crate) fn release_table(table: &'static Table) {
    let mut head = FREE.lock();
    table
        .next_free
        .store(*head as *mut Table, Ordering::Relaxed);
    *head = table as *const Table as usize;
}

/// One tag's counts, summed over every thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeapCounts {
    pub(crate) allocations: u64,
    pub(crate) allocated_bytes: u64,
    pub(crate) frees: u64,
    pub(crate) freed_bytes: u64,
}

impl HeapCounts {
    /// Bytes allocated and not yet freed (0 while a free is seen before the
    /// allocation it frees, which a reader of unsynchronised tables can).
    pub(crate) fn live_bytes(&self) -> u64 {
        self.allocated_bytes.saturating_sub(self.freed_bytes)
    }

    pub(crate) fn add(&mut self, other: &HeapCounts) {
        self.allocations = self.allocations.wrapping_add(other.allocations);
        self.allocated_bytes = self.allocated_bytes.wrapping_add(other.allocated_bytes);
        self.frees = self.frees.wrapping_add(other.frees);
        self.freed_bytes = self.freed_bytes.wrapping_add(other.freed_bytes);
    }
}

/// Whether any allocation was ever counted: a table exists (every thread
/// gets one at its first allocation), or the shared one has counts.
///
/// Two loads: every span's close asks (`alloc::is_installed`), and walking
/// the shared table's chunks cost a span about 100 instructions where the
/// counting allocator is not the global one (callgrind, docs/benchmarks.md).
#[inline]
pub(crate) fn any_counts() -> bool {
    !TABLES.load(Ordering::Acquire).is_null() || CHUNKED.load(Ordering::Acquire)
}

/// Some table has a chunk: set once, by the first chunk made.
static CHUNKED: AtomicBool = AtomicBool::new(false);

/// Calls `f` on every table, the shared one first.
fn each_table(mut f: impl FnMut(&Table)) {
    f(&SHARED);
    let mut table = TABLES.load(Ordering::Acquire);
    while !table.is_null() {
        // SAFETY: tables are never freed.
        let t = unsafe { &*table };
        f(t);
        table = t.next.load(Ordering::Acquire);
    }
}

/// Every live byte of every tag, read without allocating (so the reading
/// does not count itself).
pub(crate) fn live_total() -> u64 {
    let [_, allocated, _, freed] = sum_entries();
    allocated.saturating_sub(freed)
}

/// Every allocation the counting allocator served, of every tag (a
/// `realloc` is one): what its per-allocation cost is multiplied by in the
/// overhead estimate. Read without allocating.
pub(crate) fn allocations_total() -> u64 {
    sum_entries()[0]
}

/// The four counters (allocations, bytes, frees, bytes freed) summed over
/// every tag of every table.
fn sum_entries() -> [u64; 4] {
    let mut sums = [0u64; 4];
    each_table(|table| {
        for slot in &table.chunks {
            let chunk = slot.load(Ordering::Acquire);
            if chunk.is_null() {
                continue;
            }
            // SAFETY: chunks are never freed.
            for e in unsafe { &(*chunk).entries } {
                for (sum, counter) in sums.iter_mut().zip(e) {
                    *sum = sum.wrapping_add(counter.load(Ordering::Relaxed));
                }
            }
        }
    });
    sums
}

/// Every tag's counts summed over every table, indexed by tag, up to the
/// highest tag in use. Reads every table without stopping any thread.
pub(crate) fn totals() -> Vec<HeapCounts> {
    let used = (NEXT_TAG.load(Ordering::Relaxed) as usize).min(MAX_TAGS);
    let mut out = vec![HeapCounts::default(); used];
    let mut add = |table: &Table| {
        for (c, slot) in table.chunks.iter().enumerate() {
            let chunk = slot.load(Ordering::Acquire);
            if chunk.is_null() {
                continue;
            }
            // SAFETY: chunks are never freed.
            let chunk = unsafe { &*chunk };
            for (i, e) in chunk.entries.iter().enumerate() {
                let Some(total) = out.get_mut(c * CHUNK_TAGS + i) else {
                    return;
                };
                total.add(&HeapCounts {
                    allocations: e[0].load(Ordering::Relaxed),
                    allocated_bytes: e[1].load(Ordering::Relaxed),
                    frees: e[2].load(Ordering::Relaxed),
                    freed_bytes: e[3].load(Ordering::Relaxed),
                });
            }
        }
    };
    each_table(&mut add);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_shared_counts_add_up_per_tag() {
        let table = acquire_table().unwrap();
        let before = totals();
        let at = |t: &[HeapCounts], tag: u32| t.get(tag as usize).copied().unwrap_or_default();
        table.add_owned(TAG_OVERFLOW, Side::Alloc, 100);
        table.add_owned(TAG_OVERFLOW, Side::Free, 40);
        SHARED.add_shared(TAG_OVERFLOW, Side::Alloc, 5);
        let after = totals();
        let (b, a) = (at(&before, TAG_OVERFLOW), at(&after, TAG_OVERFLOW));
        assert_eq!(a.allocations - b.allocations, 2);
        assert_eq!(a.allocated_bytes - b.allocated_bytes, 105);
        assert_eq!(a.freed_bytes - b.freed_bytes, 40);
        release_table(table);
        // A released table is the next one given out, its counts kept.
        let again = acquire_table().unwrap();
        assert!(std::ptr::eq(again, table));
        assert_eq!(
            at(&totals(), TAG_OVERFLOW).allocated_bytes - b.allocated_bytes,
            105
        );
        release_table(again);
    }

    #[test]
    fn a_reader_waits_out_a_claimer_that_stalls_before_storing_its_tag() {
        // A key no metadata has (statics are not at address 8), claimed by
        // hand as `claim` does, with its tag stored only 20 ms later: long
        // past the reader's spins, well into its yields.
        let key = 8usize;
        let mut slot = home_slot(key);
        while KEYS[slot]
            .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            slot = (slot + 1) % SLOTS;
        }
        let reader = std::thread::spawn(move || value_at(slot));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!reader.is_finished(), "read a tag that was not stored");
        VALUES[slot].store(TAG_OVERFLOW + 1, Ordering::Release);
        assert_eq!(reader.join().unwrap(), TAG_OVERFLOW);
    }

    #[test]
    fn a_tag_names_its_callsite_and_a_reserved_tag_none() {
        struct Callsite;
        static CALLSITE: Callsite = Callsite;
        static META: Metadata<'static> = tracing_core::metadata! {
            name: "named",
            target: "perf_layer",
            level: tracing_core::Level::INFO,
            fields: &[],
            callsite: &CALLSITE,
            kind: tracing_core::metadata::Kind::SPAN,
        };
        impl tracing_core::Callsite for Callsite {
            fn set_interest(&self, _: tracing_core::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        let tag = tag_of(&META);
        assert!(std::ptr::eq(callsite_of(tag).unwrap(), &META));
        for reserved in [TAG_NONE, TAG_LAYER, TAG_OVERFLOW, MAX_TAGS as u32] {
            assert!(callsite_of(reserved).is_none(), "{reserved}");
        }
    }
}
