//! Span lifecycle cost with perf-layer's counting allocator as this binary's
//! global allocator: perf-layer's full configuration (timing plus allocation
//! counting, with and without the sampler, and with everything: the
//! sampler, the adaptive CPU-time reads and an idle Prometheus endpoint)
//! against the same baselines and peers as `lifecycle`. The baselines here also run on the counting
//! allocator, which costs almost nothing when no span reads its counters
//! (compare `floor_registry_noop_layer` across the two binaries).
//!
//! After the criterion groups, the same workloads with the floor,
//! everything on, the peers and the clock floor
//! ([`support::ClockOnlyLayer`]) taking turns (see [`turns`]): written to
//! `<criterion home>/lifecycle_alloc.turns/turns.json` for
//! `scripts/bench-report`, and printed.

mod support;

use std::hint::black_box;
use std::time::Duration;

use support::Subject;

#[global_allocator]
static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();

fn subjects() -> Vec<Subject> {
    [
        Subject::no_subscriber(),
        Subject::floor(),
        Subject::perf_layer("perf_layer_timing_alloc"),
        Subject::perf_layer_sampler("perf_layer_timing_alloc_sampler"),
        Subject::perf_layer_prometheus("perf_layer_all_features"),
    ]
    .into_iter()
    .chain(Subject::peers())
    .collect()
}

fn benches(c: &mut criterion::Criterion<support::ThreadTime>) {
    support::lifecycle_groups(c, "lifecycle_alloc", &subjects());
}

/// This thread's CPU time for `n` runs of `workload` under `subject`.
fn time_runs(subject: &Subject, workload: fn(), n: u32) -> Duration {
    tracing::dispatcher::with_default(&subject.dispatch, || {
        let start = support::thread_cpu_time();
        for _ in 0..n {
            black_box(workload)();
        }
        support::thread_cpu_time() - start
    })
}

/// The criterion groups run one subject after another, seconds apart, and
/// on a shared host the machine's speed drifts by more than the gaps being
/// judged between them (in one run, perf-layer with fewer features came out
/// 15% slower than with all of them). Here the subjects take turns in slots
/// of about 2 ms, in an order reversed every round, and each round gives
/// every subject's time over the floor's in that same round: the median
/// over rounds is the ratio, from subjects that saw the same machine.
fn turns(quick: bool) {
    // The clock floor takes turns too (not a criterion group): what reading
    // the clock at every callback costs, the least any timing layer adds.
    let subjects: Vec<Subject> = subjects()
        .into_iter()
        .filter(|s| s.name != "no_subscriber")
        .chain([Subject::clock_only()])
        .collect();
    let (rounds, slot) = if quick {
        (3, Duration::from_micros(200))
    } else {
        (61, Duration::from_millis(2))
    };
    let floor_at = subjects
        .iter()
        .position(|s| s.name == Subject::FLOOR)
        .expect("the floor is among the subjects");
    let mut report = serde_json::Map::new();
    for (workload_name, workload) in support::WORKLOADS {
        // Runs per slot for each subject, from a first timing of 200.
        let runs: Vec<u32> = subjects
            .iter()
            .map(|s| {
                time_runs(s, workload, 50);
                let per_run = time_runs(s, workload, 200).as_secs_f64() / 200.0;
                ((slot.as_secs_f64() / per_run.max(1e-9)) as u32).clamp(20, 200_000)
            })
            .collect();
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        for round in 0..rounds {
            let mut per_run = vec![0.0; subjects.len()];
            let order: Vec<usize> = if round % 2 == 0 {
                (0..subjects.len()).collect()
            } else {
                (0..subjects.len()).rev().collect()
            };
            for i in order {
                let took = time_runs(&subjects[i], workload, runs[i]);
                per_run[i] = took.as_secs_f64() / f64::from(runs[i]);
            }
            let floor = per_run[floor_at];
            for (i, t) in per_run.iter().enumerate() {
                ratios[i].push(t / floor);
            }
        }
        let mut row = serde_json::Map::new();
        let mut line = format!("lifecycle_alloc.turns {workload_name}:");
        for (subject, r) in subjects.iter().zip(ratios) {
            let m = support::median(r);
            line.push_str(&format!(" {} {m:.2}×", subject.name));
            row.insert(subject.name.to_owned(), m.into());
        }
        println!("{line}");
        report.insert(workload_name.to_owned(), row.into());
    }
    if !quick {
        let value = serde_json::json!({ "rounds": rounds, "slot_ms": slot.as_secs_f64() * 1e3, "x_floor": report });
        support::write_result("lifecycle_alloc.turns", "turns.json", &value);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Listing, or profiling one group (`--profile-time`): no turns.
    let skip = args.iter().any(|a| a == "--list" || a == "--profile-time");
    let quick = args.iter().any(|a| a == "--test");
    let mut criterion = support::criterion_cpu();
    benches(&mut criterion);
    criterion.final_summary();
    if !skip {
        turns(quick);
    }
}
