//! Live heap by allocating span, with the tagging allocator: hand-offs,
//! leaks against bounded caches, and every `GlobalAlloc` path.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use perf_layer::dump::{Dump, HeapStats};
use perf_layer::{CountingAllocator, PerfLayer};
use perf_report::analyze::{Class, analyze};
use tracing::info_span;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Runs `work` under a fresh layer, sampling every `sample_ms` (0: no
/// sampler), and returns the dump.
fn run(sample_ms: u64, work: impl FnOnce()) -> Dump {
    let mut builder = PerfLayer::builder().without_overhead_calibration();
    builder = match sample_ms {
        0 => builder.without_sampler(),
        ms => builder.sampler_interval(Duration::from_millis(ms)),
    };
    let (layer, handle) = builder.build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

fn heap_of<'a>(dump: &'a Dump, name: &str) -> &'a HeapStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.heap.as_ref())
        .unwrap_or_else(|| panic!("no heap figures for `{name}`"))
}

#[tracing::instrument(skip_all)]
fn produce() -> Vec<u8> {
    vec![7u8; MIB]
}

#[test]
fn a_buffer_handed_to_a_caller_that_frees_it_ends_with_nothing_live() {
    let dump = run(0, || {
        for i in 0..1_000 {
            let buffer = info_span!("caller").in_scope(produce);
            if i % 2 == 0 {
                drop(buffer);
            } else {
                // Freed on another thread, outside any span.
                std::thread::spawn(move || drop(buffer)).join().unwrap();
            }
        }
    });
    let producer = heap_of(&dump, "produce");
    assert_eq!(producer.allocations, 1_000);
    assert_eq!(producer.allocated_bytes, 1_000 * MIB as u64);
    assert_eq!(producer.freed_bytes, producer.allocated_bytes);
    assert_eq!(producer.live_bytes, 0);
    // The caller freed half of them, and holds nothing of its own either.
    assert_eq!(heap_of(&dump, "caller").live_bytes, 0);
    for cs in &dump.callsites {
        let h = cs.heap.as_ref().unwrap();
        assert!(h.freed_bytes <= h.allocated_bytes, "{}: {h:?}", cs.name);
    }
    let a = analyze(&dump.into(), &Default::default());
    assert!(
        a.findings.iter().all(|f| f.class != Class::LeakSuspect),
        "{:?}",
        a.findings
    );
}

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static CACHE: Mutex<VecDeque<Vec<u8>>> = Mutex::new(VecDeque::new());

#[tracing::instrument(skip_all)]
fn remember() {
    KEPT.lock().unwrap().push(vec![1u8; 64 * KIB]);
}

#[tracing::instrument(skip_all)]
fn cache_put() {
    let mut cache = CACHE.lock().unwrap();
    cache.push_back(vec![2u8; 64 * KIB]);
    if cache.len() > 32 {
        drop(cache.pop_front());
    }
}

#[test]
fn a_leak_grows_by_exactly_what_it_keeps_and_a_bounded_cache_is_no_leak() {
    let dump = run(5, || {
        for _ in 0..300 {
            remember();
            cache_put();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let kept = KEPT.lock().unwrap();
    let cache = CACHE.lock().unwrap();
    // The payloads, and the collection's own buffer that grew inside the span.
    let expected_leak = kept.iter().map(|v| v.capacity()).sum::<usize>()
        + kept.capacity() * std::mem::size_of::<Vec<u8>>();
    assert_eq!(heap_of(&dump, "remember").live_bytes, expected_leak as u64);
    let expected_cache = cache.iter().map(|v| v.capacity()).sum::<usize>()
        + cache.capacity() * std::mem::size_of::<Vec<u8>>();
    assert_eq!(
        heap_of(&dump, "cache_put").live_bytes,
        expected_cache as u64
    );
    // The cache peaked at 33 entries, between an insert and its eviction.
    assert!(heap_of(&dump, "cache_put").peak_live_bytes >= expected_cache as u64);
    let points = heap_of(&dump, "remember").live_timeline_bytes.len();
    assert!(points >= 16, "{points} timeline points");

    let a = analyze(&dump.into(), &Default::default());
    let leaks: Vec<&str> = a
        .findings
        .iter()
        .filter(|f| f.class == Class::LeakSuspect)
        .filter_map(|f| f.location.as_ref().map(|l| l.name.as_str()))
        .collect();
    assert_eq!(leaks, ["remember"], "{:?}", a.findings);
}

#[test]
fn realloc_chains_and_large_alignments_keep_their_bytes_and_their_tag() {
    let dump = run(0, || {
        info_span!("grow").in_scope(|| {
            let mut v: Vec<u32> = Vec::new();
            for i in 0..100_000u32 {
                v.push(i);
            }
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
            v.truncate(1_000);
            v.shrink_to_fit();
            assert_eq!(v.iter().sum::<u32>(), 999 * 1_000 / 2);
            std::mem::forget(v); // kept: 4,000 bytes
        });
        info_span!("aligned").in_scope(|| {
            let layout = Layout::from_size_align(10_000, 4096).unwrap();
            // SAFETY: a valid layout; the block is written, read and freed
            // within it with the layouts it was made and resized with.
            unsafe {
                let p = ALLOC.alloc(layout);
                assert_eq!(p as usize % 4096, 0);
                for i in 0..10_000 {
                    p.add(i).write(i as u8);
                }
                let q = ALLOC.realloc(p, layout, 30_000);
                assert_eq!(q as usize % 4096, 0);
                assert!((0..10_000).all(|i| q.add(i).read() == i as u8));
                ALLOC.dealloc(q, Layout::from_size_align(30_000, 4096).unwrap());
                let z = ALLOC.alloc_zeroed(Layout::from_size_align(8_192, 4096).unwrap());
                assert!((0..8_192).all(|i| z.add(i).read() == 0));
                ALLOC.dealloc(z, Layout::from_size_align(8_192, 4096).unwrap());
            }
        });
    });
    let grow = heap_of(&dump, "grow");
    assert_eq!(grow.live_bytes, 4_000, "{grow:?}");
    // Each growth is one more allocation of the same block (a realloc).
    assert!(grow.allocations > 10, "{grow:?}");
    let aligned = heap_of(&dump, "aligned");
    assert_eq!(aligned.live_bytes, 0, "{aligned:?}");
    assert_eq!(aligned.allocated_bytes, 10_000 + 30_000 + 8_192);
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[test]
#[cfg(target_os = "linux")]
fn an_untouched_zeroed_allocation_stays_off_the_resident_set() {
    let before = rss_bytes();
    let big = vec![0u8; 512 * MIB];
    let during = rss_bytes();
    // Only the footer's page was written.
    assert!(
        during.saturating_sub(before) < 64 * MIB as u64,
        "RSS grew {} MiB for an untouched zeroed 512 MiB Vec",
        during.saturating_sub(before) >> 20
    );
    assert_eq!(big[512 * MIB - 1], 0);
    assert_eq!(big[0], 0);
    drop(big);
}
