//! End to end: a realistic instrumented request handler (six spans, three
//! levels deep, each doing about 20 µs of hashing, sorting, parsing and
//! allocating) with and without perf-layer in its full configuration
//! (counting allocator, sampler on).
//!
//! Two parts:
//! - the criterion group `end_to_end.request`: time per request under no
//!   subscriber, the floor, and perf-layer; the throughput loss is
//!   `1 - floor / perf_layer`;
//! - the estimate check: requests under the floor and under perf-layer
//!   taking turns one by one, and the dump's overhead estimate for the
//!   perf-layer requests set against the loss measured. Written to
//!   `<criterion home>/end_to_end.estimate/estimate.json` for
//!   `scripts/bench-report`, and printed.

mod support;

use perf_layer::dump::Overhead;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::hint::black_box;
use std::time::Duration;

use support::Subject;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();

/// Bytes in one request. Sized so each span does about 20 µs of work on the
/// machine in docs/benchmarks.md; the estimate check prints the measured
/// self time per span so the claim can be checked.
const REQUEST_BYTES: usize = 32 * 1024;

#[tracing::instrument(skip_all)]
fn handle(input: &[u8]) -> u64 {
    let check = validate(input);
    let mut keys = parse(input);
    let digest = transform(&mut keys);
    let out = encode(&keys);
    check ^ digest ^ out.len() as u64
}

/// The handler's own work: an FNV-1a checksum of the input.
fn validate(input: &[u8]) -> u64 {
    input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[tracing::instrument(skip_all)]
fn parse(input: &[u8]) -> Vec<u32> {
    let mut keys: Vec<u32> = input
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for k in &mut keys {
        *k = k.rotate_left(7).wrapping_mul(0x9e37_79b9);
    }
    keys
}

#[tracing::instrument(skip_all)]
fn transform(keys: &mut [u32]) -> u64 {
    for k in keys.iter_mut() {
        let mut x = *k;
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
        }
        *k = x;
    }
    hash(keys) ^ sort(keys)
}

#[tracing::instrument(skip_all)]
fn hash(keys: &[u32]) -> u64 {
    let mut hasher = DefaultHasher::new();
    keys.hash(&mut hasher);
    hasher.finish()
}

#[tracing::instrument(skip_all)]
fn sort(keys: &mut [u32]) -> u64 {
    let half = keys.len() / 2;
    keys[..half].sort_unstable();
    u64::from(keys[half / 2])
}

#[tracing::instrument(skip_all)]
fn encode(keys: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(&k.to_be_bytes());
        if k & 7 == 0 {
            out.push(b',');
        }
    }
    out
}

fn request_input() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..REQUEST_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn perf_layer_full() -> (Dispatch, perf_layer::PerfHandle) {
    perf_layer_with(perf_layer::PerfLayer::builder())
}

/// The full configuration less the CPU-time reads: what they cost, apart.
fn perf_layer_without_cpu_time() -> (Dispatch, perf_layer::PerfHandle) {
    perf_layer_with(perf_layer::PerfLayer::builder().without_cpu_time())
}

fn perf_layer_with(builder: perf_layer::PerfLayerBuilder) -> (Dispatch, perf_layer::PerfHandle) {
    let (layer, handle) = builder
        .sampler_interval(Duration::from_millis(100))
        .build()
        .expect("default configuration is valid");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        handle,
    )
}

fn benches(c: &mut criterion::Criterion<support::ThreadTime>) {
    let input = request_input();
    let (perf, _handle) = perf_layer_full();
    let subjects = [Subject::no_subscriber(), Subject::floor()];
    let mut group = c.benchmark_group("end_to_end.request");
    for subject in &subjects {
        group.bench_function(subject.name, |b| {
            tracing::dispatcher::with_default(&subject.dispatch, || {
                b.iter(|| handle(black_box(&input)))
            });
        });
    }
    group.bench_function("perf_layer_full", |b| {
        tracing::dispatcher::with_default(&perf, || b.iter(|| handle(black_box(&input))));
    });
    group.finish();
}

/// CPU time of this thread for one request under `dispatch`.
fn time_request(dispatch: &Dispatch, input: &[u8]) -> Duration {
    tracing::dispatcher::with_default(dispatch, || {
        let start = support::thread_cpu_time();
        black_box(handle(black_box(input)));
        support::thread_cpu_time() - start
    })
}

/// The floor and one perf-layer take turns request by request, in the
/// order floor, perf-layer, perf-layer, floor (so a drift in the machine's
/// speed within a turn falls on both alike), and a perf-layer without the
/// CPU-time reads in the middle of each turn: on a shared host the speed
/// drifts by tens of percent over tens of milliseconds, more than the loss
/// being measured, and only requests timed side by side see the same
/// machine. The loss is `1 - floor / perf-layer` over the sums, and the
/// median over blocks of requests beside it as a check. The dump's
/// estimate is the difference of two snapshots' `estimated_ns` around the
/// measured requests (after a warm-up that pays the first-use costs), less
/// its counting-allocator part (every subject here pays that), over
/// the CPU time of the perf-layer requests: the dump's own
/// `fraction_of_run` would be over the whole process, floor turns included.
fn estimate_check(quick: bool) {
    let input = request_input();
    let (blocks, turns_per_block): (u32, u32) = if quick { (1, 10) } else { (40, 100) };
    let floor = Subject::floor();
    let (perf, handle) = perf_layer_full();
    let (without_cpu, _without_cpu_handle) = perf_layer_without_cpu_time();
    // Warm every path (callsite registration, first allocations, the
    // first-use CPU timing of each callsite).
    for _ in 0..200 {
        time_request(&floor.dispatch, &input);
        time_request(&perf, &input);
        time_request(&without_cpu, &input);
    }
    let before = handle.snapshot();
    let mut floor_total = Duration::ZERO;
    let mut perf_total = Duration::ZERO;
    let mut without_cpu_total = Duration::ZERO;
    let mut block_losses = Vec::new();
    for _ in 0..blocks {
        let (mut floor_block, mut perf_block) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..turns_per_block {
            floor_block += time_request(&floor.dispatch, &input);
            perf_block += time_request(&perf, &input);
            without_cpu_total += time_request(&without_cpu, &input);
            without_cpu_total += time_request(&without_cpu, &input);
            perf_block += time_request(&perf, &input);
            floor_block += time_request(&floor.dispatch, &input);
        }
        block_losses.push(1.0 - floor_block.as_secs_f64() / perf_block.as_secs_f64());
        floor_total += floor_block;
        perf_total += perf_block;
    }
    let after = handle.snapshot();
    let requests = u64::from(blocks * turns_per_block * 2);
    let loss = 1.0 - floor_total.as_secs_f64() / perf_total.as_secs_f64();
    let loss_without_cpu = 1.0 - floor_total.as_secs_f64() / without_cpu_total.as_secs_f64();
    let (a, b) = (&after.overhead, &before.overhead);
    let (estimate_ns, allocator_ns) = estimate_between(b, a);
    let estimated_ns = estimate_ns as u64;
    let estimate = estimated_ns as f64 / perf_total.as_nanos() as f64;
    let spans: Vec<_> = after
        .callsites
        .iter()
        .map(|c| {
            let calls = c.calls.max(1) as f64;
            serde_json::json!({
                "name": c.name,
                "calls": c.calls,
                "mean_busy_ns": c.busy_ns.sum as f64 / calls,
                "mean_self_ns": c.self_ns.sum as f64 / calls,
                "timed_calls": c.cpu.as_ref().map_or(0, |cpu| cpu.timed_calls),
            })
        })
        .collect();
    let mean_self_ns = after.callsites.iter().map(|c| c.self_ns.sum).sum::<u64>() as f64
        / after.callsites.iter().map(|c| c.calls).sum::<u64>().max(1) as f64;
    let per_request_ns = |d: Duration| d.as_nanos() as f64 / requests as f64;
    let report = serde_json::json!({
        "requests_per_subject": requests,
        "blocks": blocks,
        "floor_ns_per_request": per_request_ns(floor_total),
        "perf_layer_ns_per_request": per_request_ns(perf_total),
        "measured_loss_fraction": loss,
        "median_block_loss_fraction": support::median(block_losses.clone()),
        "loss_without_cpu_time_fraction": loss_without_cpu,
        "block_losses": block_losses,
        "estimated_ns": estimated_ns,
        "estimated_fraction": estimate,
        "per_span_ns": after.overhead.per_span_ns,
        "per_timed_interval_ns": after.overhead.per_timed_interval_ns,
        "allocator_ns_left_out": allocator_ns,
        "callbacks_sampled": a.callbacks_sampled - b.callbacks_sampled,
        "timed_intervals": after.overhead.timed_intervals - before.overhead.timed_intervals,
        "mean_self_ns_per_span": mean_self_ns,
        "spans": spans,
    });
    println!(
        "end_to_end.estimate: measured loss {:.2}% (median of blocks {:.2}%; {:.2}% without the CPU-time reads), dump estimate {:.2}% (mean self time per span {:.1} µs)",
        loss * 100.0,
        support::median(block_losses) * 100.0,
        loss_without_cpu * 100.0,
        estimate * 100.0,
        mean_self_ns / 1000.0
    );
    if !quick {
        support::write_result("end_to_end.estimate", "estimate.json", &report);
    }
}

/// The dump's estimate between two snapshots, ns, and the counting
/// allocator's part of it, which is left out: the allocator is this binary's
/// global allocator, under the floor as under perf-layer, so the losses
/// measured here have none of its cost (and it counts every subject's
/// allocations).
fn estimate_between(before: &Overhead, after: &Overhead) -> (f64, f64) {
    let allocator_ns =
        after.per_allocation_ns * after.allocations.saturating_sub(before.allocations) as f64;
    let estimate_ns =
        (after.estimated_ns.saturating_sub(before.estimated_ns) as f64 - allocator_ns).max(0.0);
    (estimate_ns, allocator_ns)
}

/// The estimate's other end: spans with nothing in them, a parent and a
/// child in a hot loop, where the layer's data stays in the caches. The
/// floor and perf-layer (every feature on) take turns, five
/// rounds of 200,000 pairs each; what perf-layer adds per pair is the
/// difference of the best round of each, set against the dump's estimate
/// per pair (its callbacks timed as they ran) and the calibrated model's.
fn hot_loop_check(quick: bool) {
    let floor = Subject::floor();
    let (perf, handle) = perf_layer_full();
    let (rounds, pairs) = if quick { (1, 1_000u32) } else { (5, 200_000) };
    let run = |dispatch: &Dispatch| {
        let start = std::time::Instant::now();
        tracing::dispatcher::with_default(dispatch, || {
            for _ in 0..pairs {
                tracing::info_span!("parent")
                    .in_scope(|| tracing::info_span!("child").in_scope(|| std::hint::black_box(0)));
            }
        });
        start.elapsed().as_nanos() as f64 / f64::from(pairs)
    };
    let before = handle.snapshot().overhead;
    let (mut floor_best, mut perf_best) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        floor_best = floor_best.min(run(&floor.dispatch));
        perf_best = perf_best.min(run(&perf));
    }
    let after = handle.snapshot().overhead;
    let measured_pairs = f64::from(rounds * pairs);
    let estimate = estimate_between(&before, &after).0 / measured_pairs;
    println!(
        "end_to_end.hot_loop: perf-layer adds {:.0} ns a parent-and-child pair (best of {rounds} rounds), dump estimate {:.0} ns ({:.2}×), calibrated model {:.0} ns, calibrated in a loop {:.0} ns (the floor {:.0} ns a pair here, {:.0} ns calibrated)",
        perf_best - floor_best,
        estimate,
        estimate / (perf_best - floor_best),
        2.0 * after.per_span_ns,
        2.0 * after.loop_per_span_ns,
        floor_best,
        2.0 * after.floor_per_span_ns,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let quick = args.iter().any(|a| a == "--test");
    let mut criterion = support::criterion_cpu();
    benches(&mut criterion);
    criterion.final_summary();
    if !listing {
        estimate_check(quick);
        hot_loop_check(quick);
    }
}
