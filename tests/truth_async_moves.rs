//! Tasks that move between a runtime's two workers, profiled: every poll,
//! byte, event and child must land on its own callsite wherever the task
//! ran. A span first entered on the worker that did not open it takes its
//! callsite from the registry, sums its intervals there as a visit, and may
//! close on either worker (`Shards::exited`, `Shards::closing`); a child
//! opened there takes its parent's callsite from the frame's tag. A wrong
//! tag would put bytes and children on another callsite; a lost visit
//! would lose polls and events.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perf_layer::CountingAllocator;
use perf_layer::dump::{CallsiteStats, Dump};
use runtime_support::{traced, two_workers};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

mod runtime_support;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

/// Jobs in all, and at once.
const JOBS: u64 = 600;
const IN_FLIGHT: usize = 16;
/// What `encode` allocates at each call, and `encode_async` at each of its
/// two polls.
const ENCODE_BYTES: u64 = 64 * 1024;
const ASYNC_BYTES: u64 = 8 * 1024;
/// What `keep` holds from each call (one job in four calls it).
const KEPT_BYTES: u64 = 4 * 1024;
/// What each of `encode_async`'s two polls computes.
const POLL_WORK: Duration = Duration::from_micros(50);

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Jobs whose polls ran on more than one thread.
static MOVED: AtomicU64 = AtomicU64::new(0);
/// `encode_async` spans whose second poll ran on another thread than the
/// first (where the span opened).
static SECOND_POLL_MOVED: AtomicU64 = AtomicU64::new(0);

#[tracing::instrument(skip_all)]
async fn fetch() {
    tokio::time::sleep(Duration::from_micros(300)).await;
}

#[tracing::instrument(skip_all)]
fn encode(i: u64) -> usize {
    let v = vec![(i % 251) as u8; ENCODE_BYTES as usize];
    std::hint::black_box(&v).len()
}

fn spin(d: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[tracing::instrument(skip_all)]
async fn encode_async(i: u64) -> usize {
    let a = vec![(i % 13) as u8; ASYNC_BYTES as usize];
    std::hint::black_box(&a);
    drop(a);
    spin(POLL_WORK);
    let first = std::thread::current().id();
    tokio::task::yield_now().await;
    if std::thread::current().id() != first {
        SECOND_POLL_MOVED.fetch_add(1, Ordering::Relaxed);
    }
    // The second poll, often on the other worker: its bytes, its time and
    // its event are this span's.
    let b = vec![(i % 17) as u8; ASYNC_BYTES as usize];
    spin(POLL_WORK);
    tracing::info!(len = b.len(), "encoded");
    std::hint::black_box(&b).len()
}

#[tracing::instrument(skip_all)]
fn keep(i: u64) {
    let block = vec![(i % 7) as u8; KEPT_BYTES as usize];
    // Room made beforehand, outside the span, so the list's own growth is
    // not `keep`'s.
    KEPT.lock().unwrap().push(block);
}

async fn job(i: u64) {
    let mut threads = HashSet::new();
    threads.insert(std::thread::current().id());
    fetch().await;
    threads.insert(std::thread::current().id());
    std::hint::black_box(encode(i));
    tokio::task::yield_now().await;
    threads.insert(std::thread::current().id());
    std::hint::black_box(encode_async(i).await);
    threads.insert(std::thread::current().id());
    if i % 4 == 0 {
        keep(i);
    }
    if threads.len() > 1 {
        MOVED.fetch_add(1, Ordering::Relaxed);
    }
}

fn run() -> Dump {
    KEPT.lock().unwrap().reserve(JOBS as usize / 4 + IN_FLIGHT);
    let ((), dump) = traced(|dispatch| {
        two_workers().block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..JOBS {
                while set.len() >= IN_FLIGHT {
                    set.join_next().await.unwrap().unwrap();
                }
                set.spawn(
                    job(i)
                        .instrument(tracing::info_span!("job"))
                        .with_subscriber(dispatch.clone()),
                );
            }
            while let Some(done) = set.join_next().await {
                done.unwrap();
            }
        });
    });
    dump
}

fn callsite<'d>(dump: &'d Dump, name: &str) -> &'d CallsiteStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no callsite {name}"))
}

fn edge_calls(dump: &Dump, parent: &str, child: &str) -> u64 {
    let (p, c) = (callsite(dump, parent).id, callsite(dump, child).id);
    dump.edges
        .iter()
        .filter(|e| e.parent == p && e.child == c)
        .map(|e| e.calls)
        .sum()
}

#[test]
fn tasks_that_move_between_workers_keep_their_bytes_polls_events_and_children() {
    let dump = run();
    let moved = MOVED.load(Ordering::Relaxed);
    let second_moved = SECOND_POLL_MOVED.load(Ordering::Relaxed);
    eprintln!("jobs on two threads: {moved}; encode_async second polls moved: {second_moved}");
    // Without moves this test would check nothing it is for: each moved
    // second poll is 8 KiB and an event that only its visit carries.
    assert!(
        moved >= JOBS / 20 && second_moved >= 10,
        "too few moves: {moved} jobs, {second_moved} second polls of {JOBS}"
    );
    assert!(dump.allocations_tracked);

    for name in ["job", "fetch", "encode", "encode_async"] {
        assert_eq!(callsite(&dump, name).calls, JOBS, "{name}");
    }
    assert_eq!(callsite(&dump, "keep").calls, JOBS / 4);

    // Every byte on the span that allocated it, to the byte.
    let encode = callsite(&dump, "encode").alloc.unwrap();
    assert_eq!(encode.alloc_bytes, JOBS * ENCODE_BYTES, "{encode:?}");
    assert_eq!(encode.self_alloc_bytes, encode.alloc_bytes);
    assert_eq!(encode.freed_bytes, encode.alloc_bytes);
    // Both polls' bytes, wherever the second ran (the runtime may grow a
    // list of its own inside a poll, a few bytes at most).
    let encode_async = callsite(&dump, "encode_async").alloc.unwrap();
    let both = JOBS * 2 * ASYNC_BYTES;
    assert!(
        (both..both + 4096).contains(&encode_async.alloc_bytes),
        "{encode_async:?}"
    );
    let keep = callsite(&dump, "keep");
    let keep_alloc = keep.alloc.unwrap();
    assert_eq!(
        keep_alloc.alloc_bytes,
        JOBS / 4 * KEPT_BYTES,
        "{keep_alloc:?}"
    );
    assert_eq!(keep_alloc.calls_retaining, JOBS / 4);
    // The tag each block carries: `keep`'s blocks are still live, under
    // `keep`; `encode`'s were all freed.
    let keep_heap = keep.heap.as_ref().expect("the tagging allocator is on");
    assert_eq!(keep_heap.live_bytes, JOBS / 4 * KEPT_BYTES, "{keep_heap:?}");
    // The blocks of a second poll on the other worker carry the tag that
    // worker found for the span (in the registry: it did not open it).
    let encode_async_heap = callsite(&dump, "encode_async").heap.as_ref().unwrap();
    assert!(
        (both..both + 4096).contains(&encode_async_heap.allocated_bytes),
        "{encode_async_heap:?}"
    );
    let encode_heap = callsite(&dump, "encode").heap.as_ref().unwrap();
    assert_eq!(encode_heap.allocated_bytes, JOBS * ENCODE_BYTES);
    assert_eq!(encode_heap.live_bytes, 0);
    // `job` allocates nothing of its own but its bookkeeping of threads
    // (a set of at most four ids per job), far from its children's bytes.
    let job = callsite(&dump, "job").alloc.unwrap();
    assert!(
        job.self_alloc_bytes < JOBS * 1024,
        "its children's bytes are not its own: {job:?}"
    );

    // Both polls' time and the second poll's event, wherever each ran
    // (a lost visit would leave about half the time).
    let encode_async = callsite(&dump, "encode_async");
    let planted = JOBS * 2 * POLL_WORK.as_nanos() as u64;
    assert!(
        encode_async.busy_ns.sum >= planted * 95 / 100,
        "busy {} ns against {planted} ns computed in its polls",
        encode_async.busy_ns.sum
    );
    assert!(encode_async.self_ns.sum >= planted * 95 / 100);
    assert_eq!(encode_async.events.info, JOBS);

    // Children under their parent's callsite, on whichever worker they
    // opened.
    assert_eq!(edge_calls(&dump, "job", "fetch"), JOBS);
    assert_eq!(edge_calls(&dump, "job", "encode"), JOBS);
    assert_eq!(edge_calls(&dump, "job", "encode_async"), JOBS);
    assert_eq!(edge_calls(&dump, "job", "keep"), JOBS / 4);
}
