//! A thread started for each piece of work: two threads handle requests,
//! each splitting its work into four 20 µs chunks run on new scoped
//! threads, then joining them. Starting and ending a thread costs more CPU
//! than a chunk, all of it outside every span. A fresh program of this
//! shape read `process_chunk` a medium hot spot first, with 58.6% of the
//! process's CPU outside every span and "no finding can name it"; running
//! the chunks inline served 6.5 times the requests. The same requests with
//! the chunks inline start no thread: no such finding. Alone in its
//! binary: the process's CPU is its.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use perf_report::analyze::{Class, analyze};
use tracing::info_span;

mod cpu_support;

use cpu_support::{calibrate, classes_for, fixed_work};

fn requests(chunk: u64, threaded: bool) -> perf_layer::dump::Dump {
    cpu_support::run(20, || {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let until = Instant::now() + Duration::from_millis(800);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        while Instant::now() < until {
                            info_span!("handle").in_scope(|| {
                                if threaded {
                                    std::thread::scope(|s| {
                                        for _ in 0..4 {
                                            let dispatch = dispatch.clone();
                                            s.spawn(move || {
                                                tracing::dispatcher::with_default(&dispatch, || {
                                                    info_span!("process_chunk")
                                                        .in_scope(|| fixed_work(chunk))
                                                })
                                            });
                                        }
                                    });
                                } else {
                                    for _ in 0..4 {
                                        info_span!("process_chunk").in_scope(|| fixed_work(chunk));
                                    }
                                }
                            });
                        }
                    })
                });
            }
        });
    })
}

#[test]
fn a_thread_started_for_each_chunk_is_the_first_line_and_inline_chunks_are_none() {
    let chunk = calibrate(Duration::from_micros(20));
    let dump = requests(chunk, true);
    let a = analyze(&dump.into(), &Default::default());
    let seen = format!(
        "{:?}",
        a.findings
            .iter()
            .map(|f| (
                f.class,
                f.location.as_ref().map(|l| l.name.clone()),
                f.cost_share
            ))
            .collect::<Vec<_>>()
    );
    let first = a.findings.first().expect("a finding");
    assert_eq!(first.class, Class::ThreadPerCall, "{seen}");
    assert_eq!(
        first.location.as_ref().unwrap().name,
        "process_chunk",
        "{seen}"
    );
    // A chunk is 20 µs; a thread's start and end cost more than that.
    assert!(first.cost_share >= 0.2, "{seen}");

    let dump = requests(chunk, false);
    let a = analyze(&dump.into(), &Default::default());
    assert!(
        !classes_for(&a, "process_chunk").contains(&Class::ThreadPerCall),
        "{:?}",
        a.findings
    );
}
