//! What the layer costs the program it measures, for the dump's estimate.
//!
//! The estimate adds three parts:
//!
//! - **the callbacks**: the layer's time in its `tracing` callbacks, as one
//!   in about 64 of them was timed while it ran (`record::self_time`), so
//!   what only a real workload shows is in it: spans moving between a
//!   runtime's workers, cache lines another core wrote last, CPU-time reads
//!   by system calls on threads that switch often. Where fewer than
//!   [`MIN_CALLBACKS_SAMPLED`](crate::dump::MIN_CALLBACKS_SAMPLED) were timed (a short run), the calibrated
//!   model below stands in;
//! - **the counting allocator**, when installed: its calibrated cost per
//!   allocation and free times the allocations it served;
//! - **the background thread** (sampler, periodic dumps): its CPU time.
//!
//! The calibrated costs are measured once per handle, on the thread that
//! takes the first snapshot: span lifecycles through a private subscriber
//! with a copy of the layer, through copies that time every interval on
//! the CPU (on the task clock, and with the system calls only), and through
//! one with a no-op layer (the floor), side by side in each of several
//! rounds; and batches of allocations through the global allocator beside
//! the same ones through the system allocator. The median over rounds of
//! the differences is each cost. The model: a span's cost times the spans,
//! plus a further poll's cost times the intervals past a span's first, plus
//! a timed interval's cost (of its kind) times the timed intervals.
//!
//! The spans are timed as real code runs them, not in a hot loop: nested
//! (a child inside a parent, so parent resolution and self time are paid
//! for), with the CPU's caches flushed by other work (see `EVICT_BYTES`)
//! before each pair. In a hot loop the layer's histograms, shard and stack
//! stay in L1 and the layer looks several times cheaper than it is beside
//! real work: measured on the end-to-end bench (docs/benchmarks.md), the
//! hot-loop figure came out at an eighth to under half of the throughput
//! loss.

use std::time::Instant;

use tracing::Level;
use tracing_subscriber::layer::{Layer, SubscriberExt as _};

use crate::config::Config;
use crate::layer::PerfLayer;
use crate::profiler::Profiler;
use crate::record::alloc::PauseCounting;
use crate::record::task_clock;

pub(crate) use super::estimate::{Calibration, Counts};

const ROUNDS: usize = 7;
/// Parent-and-child pairs per round.
const PAIRS_PER_ROUND: u32 = 100;
/// Bytes walked before each pair: twice a typical 512 KiB L2 cache, so the
/// layer's data comes from L3 as it does beside real work. On the loaded
/// machine of docs/benchmarks.md, the estimate over the run's CPU time came
/// out at 0.58 of the end-to-end loss with 256 KiB, 0.78 to 0.84 with 1 MiB.
const EVICT_BYTES: usize = 1024 * 1024;
/// Bytes per cache line, the stride of the walk.
const LINE: usize = 64;

struct NoopLayer;
impl<S: tracing_core::Subscriber> Layer<S> for NoopLayer {}

impl Counts {
    /// What the layer has done so far in `profiler`'s run, `spans` spans
    /// recorded.
    pub(crate) fn of(profiler: &Profiler, spans: u64) -> Self {
        Counts {
            spans,
            exits: profiler.shards.exit_counts(),
            allocations: if crate::record::alloc::is_installed() {
                crate::record::heap::allocations_total()
            } else {
                0
            },
            callbacks: profiler.shards.callback_time(),
            background_ns: profiler
                .background_cpu_ns
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

pub(crate) fn calibrate(config: &Config) -> Calibration {
    // The calibration's own allocations belong to no user span.
    let _pause = PauseCounting::new();
    let floor = tracing::Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    // A copy of the layer as built by default, with this one's histograms,
    // for the layer's own use: no sampler, no dump, no calibration of its
    // own; every interval timed (a threshold no mean is below) or none.
    let copy = |timing: Timing| {
        let copy = Config {
            histogram_sigfig: config.histogram_sigfig,
            histogram_max_ns: config.histogram_max_ns,
            sampler_interval: None,
            calibrate_overhead: false,
            internal: true,
            cpu_time_threshold_ns: match timing {
                Timing::Off => None,
                Timing::Clock | Timing::Calls => Some(0),
            },
            // Not `task_clock: false` for the system calls' copy: an
            // internal copy never turns the clock off for the process;
            // each copy's source is held on this thread while it is timed
            // (`task_clock::Forced`, below).
            ..Config::default()
        };
        let profiler = super::start(copy).ok()?;
        Some(tracing::Dispatch::new(
            tracing_subscriber::registry().with(PerfLayer::new(profiler)),
        ))
    };
    let Some(untimed) = copy(Timing::Off) else {
        return Calibration::default();
    };
    let (timed, called) =
        if config.cpu_time_threshold_ns.is_some() && crate::record::cpu::available() {
            (copy(Timing::Clock), copy(Timing::Calls))
        } else {
            (None, None)
        };
    let allocator = crate::record::alloc::is_installed();
    let mut scratch = vec![0u8; EVICT_BYTES];
    // Each round times the three side by side; the differences within a
    // round see the same machine, and their median over rounds is the cost
    // (the best of each alone came out at half the end-to-end loss: the
    // least disturbed round is also the one with the warmest caches).
    let mut untimed_over_floor = Vec::with_capacity(ROUNDS);
    let mut poll_over_floor = Vec::with_capacity(ROUNDS);
    let mut timed_over_untimed = Vec::with_capacity(ROUNDS);
    let mut called_over_untimed = Vec::with_capacity(ROUNDS);
    let mut counting_over_system = Vec::with_capacity(ROUNDS);
    let mut clock_reads = Vec::with_capacity(ROUNDS);
    let mut floor_spans = Vec::with_capacity(ROUNDS);
    let mut loop_over_floor = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        clock_reads.push(time_clock_reads(&config.clock));
        let floor_ns = time_spans(&floor, &mut scratch);
        let floor_loop_ns = time_spans_in_a_loop(&floor);
        floor_spans.push(floor_loop_ns);
        loop_over_floor.push(time_spans_in_a_loop(&untimed) - floor_loop_ns);
        let untimed_ns = time_spans(&untimed, &mut scratch);
        untimed_over_floor.push(untimed_ns - floor_ns);
        poll_over_floor.push(time_polls(&untimed, &mut scratch) - time_polls(&floor, &mut scratch));
        if let Some(timed) = &timed {
            let _clock = task_clock::Forced::new(true);
            timed_over_untimed.push(time_spans(timed, &mut scratch) - untimed_ns);
        }
        if let Some(called) = &called {
            let _calls = task_clock::Forced::new(false);
            called_over_untimed.push(time_spans(called, &mut scratch) - untimed_ns);
        }
        if allocator {
            let system = time_allocations(&std::alloc::System, &mut scratch);
            let global = time_allocations(&GlobalAllocator, &mut scratch);
            counting_over_system.push(global - system);
        }
    }
    // Zero where nothing was measured (an empty list's median).
    let cost = |values: &mut Vec<f64>| median(values).max(0.0);
    Calibration {
        per_span_ns: cost(&mut untimed_over_floor),
        per_interval_ns: cost(&mut poll_over_floor),
        per_timed_interval_ns: cost(&mut timed_over_untimed),
        per_called_interval_ns: cost(&mut called_over_untimed),
        per_allocation_ns: cost(&mut counting_over_system),
        per_clock_read_ns: cost(&mut clock_reads),
        floor_per_span_ns: cost(&mut floor_spans),
        loop_per_span_ns: cost(&mut loop_over_floor),
    }
}

/// Nanoseconds per read of `clock`, read back to back.
fn time_clock_reads(clock: &quanta::Clock) -> f64 {
    const READS: u32 = 1_000;
    let start = clock.raw();
    for _ in 0..READS {
        std::hint::black_box(clock.raw());
    }
    clock.delta_as_nanos(start, clock.raw()) as f64 / f64::from(READS + 1)
}

/// How a calibration copy of the layer times intervals on the CPU.
#[derive(Debug, Clone, Copy)]
enum Timing {
    Off,
    /// Every interval, on the task clock where the kernel allows it.
    Clock,
    /// Every interval, with the system calls only.
    Calls,
}

/// The process's global allocator (the counting allocator, when this is
/// asked), as a value to time beside the system allocator.
struct GlobalAllocator;

// SAFETY: forwards every call to the global allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for GlobalAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, forwarded.
        unsafe { std::alloc::alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `alloc` above with `layout`.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
}

/// Sizes allocated by [`time_allocations`], in turn: small to a page, the
/// mix a service's buffers, strings and boxes make.
const ALLOCATION_SIZES: [usize; 8] = [16, 24, 48, 64, 96, 256, 1024, 4096];

/// A `size`-byte, 8-aligned layout (the sizes above are all valid ones).
fn allocation_layout(size: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(size, 8).unwrap_or(std::alloc::Layout::new::<u64>())
}

/// Nanoseconds per allocation and its free through `allocator`, each batch
/// of [`ALLOCATION_SIZES`] made and freed after `scratch` evicted the cache
/// (so the counting allocator's tables come from farther away, as beside
/// real work). The calibration's pause on counting is on: a paused
/// allocation skips three thread-local counts, a nanosecond or so.
fn time_allocations(allocator: &impl std::alloc::GlobalAlloc, scratch: &mut [u8]) -> f64 {
    let mut spent = std::time::Duration::ZERO;
    let mut blocks = [std::ptr::null_mut::<u8>(); ALLOCATION_SIZES.len()];
    for round in 0..PAIRS_PER_ROUND {
        for line in scratch.iter_mut().step_by(LINE) {
            *line = line.wrapping_add(round as u8);
        }
        std::hint::black_box(&mut *scratch);
        let start = Instant::now();
        for (block, &size) in blocks.iter_mut().zip(&ALLOCATION_SIZES) {
            let layout = allocation_layout(size);
            // SAFETY: a non-zero size.
            *block = unsafe { allocator.alloc(layout) };
        }
        std::hint::black_box(&mut blocks);
        for (block, &size) in blocks.iter_mut().zip(&ALLOCATION_SIZES) {
            let layout = allocation_layout(size);
            if !block.is_null() {
                // SAFETY: allocated just above by `allocator` with `layout`.
                unsafe { allocator.dealloc(*block, layout) };
            }
        }
        spent += start.elapsed();
    }
    spent.as_nanos() as f64 / (f64::from(PAIRS_PER_ROUND) * ALLOCATION_SIZES.len() as f64)
}

/// Nanoseconds per enter and exit of one open span under `dispatch`, as
/// an async span is polled again: a parent span entered twice after each
/// eviction, inside which the child opens (so the stack and the shard are
/// as a poll finds them).
fn time_polls(dispatch: &tracing::Dispatch, scratch: &mut [u8]) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let task =
            tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration_task");
        let mut spent = std::time::Duration::ZERO;
        for round in 0..PAIRS_PER_ROUND {
            for line in scratch.iter_mut().step_by(LINE) {
                *line = line.wrapping_add(round as u8);
            }
            std::hint::black_box(&mut *scratch);
            let start = Instant::now();
            drop(task.enter());
            drop(task.enter());
            spent += start.elapsed();
        }
        spent.as_nanos() as f64 / f64::from(2 * PAIRS_PER_ROUND)
    })
}

/// Nanoseconds per span lifecycle under `dispatch` for spans created back
/// to back inside one parent, as a loop's body makes them: warm caches,
/// unlike [`time_spans`].
fn time_spans_in_a_loop(dispatch: &tracing::Dispatch) -> f64 {
    const SPANS: u32 = 1_000;
    tracing::dispatcher::with_default(dispatch, || {
        let parent = tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration");
        let _parent = parent.enter();
        let start = Instant::now();
        for _ in 0..SPANS {
            let item = tracing::span!(
                target: "perf_layer::calibration",
                Level::ERROR,
                "calibration_item"
            );
            drop(std::hint::black_box(item.enter()));
        }
        start.elapsed().as_nanos() as f64 / f64::from(SPANS)
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Nanoseconds per span lifecycle (new, enter, exit, close) under
/// `dispatch`, for spans nested two deep, each pair after `scratch` evicted
/// the cache. Only the spans are timed: the eviction walk takes far longer
/// than a pair of spans, and its jitter would drown the layer's cost.
fn time_spans(dispatch: &tracing::Dispatch, scratch: &mut [u8]) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let mut spent = std::time::Duration::ZERO;
        for round in 0..PAIRS_PER_ROUND {
            for line in scratch.iter_mut().step_by(LINE) {
                *line = line.wrapping_add(round as u8);
            }
            std::hint::black_box(&mut *scratch);
            let start = Instant::now();
            {
                let parent =
                    tracing::span!(target: "perf_layer::calibration", Level::ERROR, "calibration");
                let _parent = parent.enter();
                let child = tracing::span!(
                    target: "perf_layer::calibration",
                    Level::ERROR,
                    "calibration_child"
                );
                let _child = child.enter();
            }
            spent += start.elapsed();
        }
        spent.as_nanos() as f64 / f64::from(2 * PAIRS_PER_ROUND)
    })
}
