//! A batch job in phases, written fresh for a truth check (2026-12-05):
//! the main thread reads its input (it sleeps), two scoped workers parse
//! it for a moment, and the main thread merges. Before, the run's three
//! recording threads counted as three for the whole run: the read's
//! blocking, 65% of the time the threads recorded in, read as 21% of
//! "the recording threads' wall time" (a 2 s job of the same shape: 14.7%
//! read as 5.0%).

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use perf_report::analyze::analyze;
use tracing::info_span;

mod runtime_support;

use runtime_support::traced;

fn spin(d: Duration) -> u64 {
    let mut x = 1u64;
    let start = Instant::now();
    while start.elapsed() < d {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

#[test]
fn workers_of_one_short_phase_count_for_that_phase_only() {
    let (_, dump) = traced(|dispatch| {
        for _ in 0..40 {
            info_span!("read_input").in_scope(|| std::thread::sleep(Duration::from_millis(5)));
        }
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    tracing::dispatcher::with_default(dispatch, || {
                        for _ in 0..10 {
                            info_span!("parse_chunk").in_scope(|| spin(Duration::from_millis(1)));
                        }
                    })
                });
            }
        });
        info_span!("merge").in_scope(|| spin(Duration::from_millis(100)));
    });
    assert_eq!(dump.run.span_threads, Some(3));
    // The main thread recorded over about the run, the workers for their
    // 10 ms each: about 1.07 threads on average, not 3.
    let active = dump.run.span_threads_active_ns.unwrap() as f64;
    let duration = dump.run.duration_ns as f64;
    assert!(
        (0.8 * duration..1.3 * duration).contains(&active),
        "{active} ns recording in a {duration} ns run"
    );

    let a = analyze(&dump.into(), &Default::default());
    let read = a
        .findings
        .iter()
        .find(|f| {
            f.class.as_str() == "blocked"
                && f.location.as_ref().is_some_and(|l| l.name == "read_input")
        })
        .unwrap_or_else(|| panic!("{:#?}", a.findings));
    let share = read
        .evidence
        .iter()
        .find(|e| e.metric == "share of the recording threads' wall time")
        .unwrap()
        .value;
    // 200 ms blocked in about 310 ms of the main thread and 20 ms of the
    // workers': about 60%. Over three threads' whole run, 21%.
    assert!((0.45..0.75).contains(&share), "{share}: {:#?}", read);
}
