//! A plain function a few calls below an `async fn` runs inside a task's
//! poll, though it is entered once a span like any synchronous call: the
//! layer counts the spans that close on a runtime's worker threads, and the
//! report says such a span stalls the worker. The same work moved into
//! `spawn_blocking` (whose threads tokio names like its workers) or done on
//! the main thread is not said to.

#![cfg(any(target_os = "linux", target_os = "macos"))]

use std::time::{Duration, Instant};

mod runtime_support;

use perf_layer::dump::Dump;
use perf_report::analyze::{Class, analyze};
use runtime_support::{traced, two_workers};
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

/// CPU work for about `d`, counted by the clock.
fn compute(d: Duration) -> u64 {
    let t = Instant::now();
    let mut x = 1u64;
    while t.elapsed() < d {
        for _ in 0..1_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    std::hint::black_box(x)
}

/// 60 tasks on 2 workers: each awaits a timer in `handle` (its span polled
/// twice), then calls `pack`, a plain function, whose child `compress`
/// computes 3 ms. 60 `offload` spans compute 3 ms each on tokio's blocking
/// pool, and 60 `on_main` spans 3 ms each on the main thread. Between
/// them, 60 tasks one after another `carry` their span into a blocking
/// closure that enters it (`span.in_scope`, as tracing's docs show) and
/// computes 3 ms in `carried` there.
fn run() -> Dump {
    let ((), dump) = traced(|dispatch| {
        let rt = two_workers();
        rt.block_on(async {
            let tasks: Vec<_> = (0..60)
                .map(|_| {
                    tokio::spawn(
                        async {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            info_span!("pack").in_scope(|| {
                                info_span!("compress")
                                    .in_scope(|| compute(Duration::from_millis(3)))
                            })
                        }
                        .instrument(info_span!("handle"))
                        .with_subscriber(dispatch.clone()),
                    )
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            for _ in 0..60 {
                let pool = dispatch.clone();
                tokio::spawn(
                    async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let span = tracing::Span::current();
                        tokio::task::spawn_blocking(move || {
                            tracing::dispatcher::with_default(&pool, || {
                                span.in_scope(|| {
                                    info_span!("carried")
                                        .in_scope(|| compute(Duration::from_millis(3)))
                                })
                            })
                        })
                        .await
                        .unwrap()
                    }
                    .instrument(info_span!("carry"))
                    .with_subscriber(dispatch.clone()),
                )
                .await
                .unwrap();
            }
            for _ in 0..60 {
                let dispatch = dispatch.clone();
                tokio::task::spawn_blocking(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        info_span!("offload").in_scope(|| compute(Duration::from_millis(3)))
                    })
                })
                .await
                .unwrap();
            }
        });
        drop(rt);
        for _ in 0..60 {
            info_span!("on_main").in_scope(|| compute(Duration::from_millis(3)));
        }
    });
    dump
}

/// The two tests take turns: side by side, each one's runtime, pool and
/// main thread computing beside the other's (fifteen threads on two cores)
/// preempt `compress` until it is no hot spot. A clean-clone CI run failed
/// so once the carried spans made the run longer.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn work_below_an_async_fn_on_a_worker_is_said_to_stall_it_and_offloaded_work_is_not() {
    let _turn = turn();
    let dump = run();
    let on_workers = |name: &str| {
        let cs = dump.callsites.iter().find(|c| c.name == name).unwrap();
        (cs.runtime_worker_calls, cs.calls)
    };
    // Every span that closed on a worker: the first spans on a worker may
    // close before it has polled any span twice (then it is not known as
    // one yet), so "most", not "all".
    for name in ["handle", "pack", "compress"] {
        let (workers, calls) = on_workers(name);
        assert_eq!(calls, 60, "{name}");
        assert!(workers.unwrap() >= 50, "{name}: {workers:?} of {calls}");
    }
    assert_eq!(on_workers("offload"), (Some(0), 60));
    assert_eq!(on_workers("on_main"), (Some(0), 60));
    // A blocking closure that enters the span of the task that handed it
    // over is entered once there: no poll, and the pool's thread no worker.
    assert_eq!(on_workers("carried"), (Some(0), 60));

    let a = analyze(&dump.clone().into(), &Default::default());
    let hot = |name: &str| {
        a.findings
            .iter()
            .find(|f| {
                f.class == Class::HotSpot && f.location.as_ref().is_some_and(|l| l.name == name)
            })
            .unwrap_or_else(|| panic!("{name} is no hot spot: {:#?}", a.findings))
    };
    let compress = hot("compress");
    assert!(
        compress.summary.contains(
            "inside a task's poll on a runtime worker thread, so it stalls a runtime worker"
        ),
        "{}",
        compress.summary
    );
    for elsewhere in ["offload", "on_main", "carried"] {
        let f = hot(elsewhere);
        assert!(!f.summary.contains("stalls"), "{elsewhere}: {}", f.summary);
    }
}

#[test]
fn an_older_dump_without_the_count_says_no_stall_it_cannot_know() {
    let _turn = turn();
    let mut dump = run();
    for cs in &mut dump.callsites {
        cs.runtime_worker_calls = None;
    }
    let a = analyze(&dump.into(), &Default::default());
    let compress = a
        .findings
        .iter()
        .find(|f| {
            f.class == Class::HotSpot && f.location.as_ref().is_some_and(|l| l.name == "compress")
        })
        .unwrap_or_else(|| panic!("{:#?}", a.findings));
    assert!(!compress.summary.contains("stalls"), "{}", compress.summary);
}
