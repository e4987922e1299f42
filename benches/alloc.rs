//! The tagging allocator against the system allocator and against perf-layer
//! 0.1's counting allocator, in one run: a 64-byte allocation and its free,
//! a `Vec` grown by pushes (a chain of reallocations), and a hand-off freed
//! on another thread. Each allocator is called directly (not as this
//! binary's global allocator), so the figures are the allocators' own.
//! Targets (docs/benchmarks.md): the pair at most 1.3x `System` (aim 1.1x),
//! the rest within noise of 0.1's counting allocator.

mod support;

#[path = "support/counting_v0.rs"]
mod counting_v0;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::mpsc;

use criterion::Criterion;
use perf_layer::CountingAllocator;

static TAGGING: CountingAllocator = CountingAllocator::system();
static V0: counting_v0::CountingV0 = counting_v0::CountingV0;

fn subjects() -> [(&'static str, &'static (dyn GlobalAlloc + Sync)); 3] {
    [
        ("system", &System),
        ("counting_v0_1", &V0),
        ("perf_layer_tagging", &TAGGING),
    ]
}

/// One allocation of `layout` and its free.
fn pair(a: &dyn GlobalAlloc, layout: Layout) {
    // SAFETY: a non-zero-size layout, freed with the same layout.
    unsafe {
        let p = a.alloc(layout);
        black_box(p);
        a.dealloc(p, layout);
    }
}

/// A buffer grown from 8 bytes to 64 KiB by doubling, as `Vec` grows when
/// pushed to, then freed.
fn growth(a: &dyn GlobalAlloc) {
    // SAFETY: each realloc keeps the alignment and resizes the live block.
    unsafe {
        let mut layout = Layout::from_size_align(8, 8).unwrap();
        let mut p = a.alloc(layout);
        while layout.size() < 64 * 1024 {
            let size = layout.size() * 2;
            p = a.realloc(p, layout, size);
            layout = Layout::from_size_align(size, 8).unwrap();
            p.write(1);
        }
        a.dealloc(black_box(p), layout);
    }
}

/// One thread's work: measured in thread CPU time, which preemption on a
/// shared machine does not inflate.
fn one_thread(c: &mut Criterion<support::ThreadTime>) {
    let small = Layout::from_size_align(64, 8).unwrap();
    let mut g = c.benchmark_group("alloc.pair_64b");
    for (name, a) in subjects() {
        g.bench_function(name, |b| b.iter(|| pair(a, small)));
    }
    g.finish();

    let mut g = c.benchmark_group("alloc.vec_growth_to_64kib");
    for (name, a) in subjects() {
        g.bench_function(name, |b| b.iter(|| growth(a)));
    }
    g.finish();
}

/// Two threads' work: measured in wall time, as the freeing thread's time
/// is part of it.
fn two_threads(c: &mut Criterion) {
    let small = Layout::from_size_align(64, 8).unwrap();
    // Allocated here, freed on another thread: 64 blocks per iteration.
    let mut g = c.benchmark_group("alloc.handoff_64_blocks");
    for (name, a) in subjects() {
        let (to_free, freeing) = mpsc::sync_channel::<Vec<usize>>(1);
        let (done, finished) = mpsc::sync_channel::<()>(1);
        let freer = std::thread::spawn(move || {
            for blocks in freeing {
                for p in blocks {
                    // SAFETY: allocated with `small` by the same allocator.
                    unsafe { a.dealloc(p as *mut u8, small) };
                }
                let _ = done.send(());
            }
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                // SAFETY: a non-zero-size layout; freed by the other thread.
                let blocks: Vec<usize> = (0..64)
                    .map(|_| unsafe { a.alloc(small) } as usize)
                    .collect();
                to_free.send(blocks).unwrap();
                finished.recv().unwrap();
            })
        });
        drop(to_free);
        freer.join().unwrap();
    }
    g.finish();
}

criterion::criterion_group! {
    name = cpu;
    config = support::criterion_cpu();
    targets = one_thread
}
criterion::criterion_group! {
    name = wall;
    config = support::criterion();
    targets = two_threads
}
criterion::criterion_main!(cpu, wall);
