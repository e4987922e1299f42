//! Allocation attribution through the counting allocator.

use perf_layer::dump::{AllocStats, Dump};
use perf_layer::{CountingAllocator, PerfLayer};
use tracing::info_span;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

const MIB: usize = 1 << 20;

fn run(work: impl FnOnce()) -> Dump {
    let (layer, handle) = PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

fn alloc_of(dump: &Dump, name: &str) -> AllocStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.alloc)
        .unwrap()
}

#[test]
fn a_span_that_allocates_one_mib_shows_it_and_only_it_does() {
    let mut kept = Vec::new();
    let dump = run(|| {
        info_span!("parent").in_scope(|| {
            info_span!("allocator").in_scope(|| kept.push(vec![1u8; MIB]));
            info_span!("sibling").in_scope(|| std::hint::black_box(1 + 1));
        });
    });
    assert!(dump.allocations_tracked);
    let child = alloc_of(&dump, "allocator");
    assert!(
        child.alloc_bytes >= MIB as u64 && child.alloc_bytes < MIB as u64 + 4096,
        "{child:?}"
    );
    assert_eq!(child.self_alloc_bytes, child.alloc_bytes);
    assert!(
        child.net_bytes >= MIB as i64,
        "kept, so retained: {child:?}"
    );
    assert_eq!(child.calls_retaining, 1);

    let parent = alloc_of(&dump, "parent");
    assert!(
        parent.alloc_bytes >= MIB as u64,
        "inclusive includes the child: {parent:?}"
    );
    assert!(
        parent.self_alloc_bytes < 1024,
        "self excludes the child: {parent:?}"
    );

    let sibling = alloc_of(&dump, "sibling");
    assert_eq!((sibling.alloc_bytes, sibling.allocs), (0, 0), "{sibling:?}");
    drop(kept);
}

#[test]
fn memory_freed_inside_the_span_is_not_retained() {
    let dump = run(|| {
        for _ in 0..10 {
            info_span!("scratch").in_scope(|| drop(std::hint::black_box(vec![0u8; 64 * 1024])));
        }
    });
    let scratch = alloc_of(&dump, "scratch");
    assert_eq!(scratch.allocs, 10);
    assert_eq!(scratch.alloc_bytes, 10 * 64 * 1024);
    assert_eq!(scratch.freed_bytes, scratch.alloc_bytes);
    assert_eq!((scratch.net_bytes, scratch.calls_retaining), (0, 0));
}

#[test]
fn allocation_is_attributed_per_thread_while_entered() {
    let dump = run(|| {
        let span = info_span!("shared");
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (span, dispatch) = (span.clone(), dispatch.clone());
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        span.in_scope(|| drop(std::hint::black_box(vec![0u8; 1000])));
                        // Outside the span: not counted.
                        drop(std::hint::black_box(vec![0u8; 5000]));
                    })
                });
            }
        });
    });
    assert_eq!(alloc_of(&dump, "shared").alloc_bytes, 2000);
}
