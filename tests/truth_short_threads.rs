//! Threads that live for one batch: a batch job computing each batch on
//! twice as many scoped threads as the machine has cores, each thread
//! calling a heavy `compress` and a light `checksum` ten times. Nothing
//! blocks and nothing queues: the threads wait for the cores. A fresh
//! program of this shape read `compress` as a queue ("serialization",
//! medium): the sampler, reading only the threads alive at its samples,
//! saw a tenth of the threads' wait for a core, so the report moved most
//! of `compress`'s preempted time to blocked; and the threads' first
//! `checksum` calls, the only ones timed, came early in their time slices
//! and were barely preempted beside it. Alone in its binary: its threads
//! fill the cores.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use perf_report::analyze::{Class, analyze};
use tracing::info_span;

mod cpu_support;

use cpu_support::{calibrate, classes_for, fixed_work};

#[test]
fn threads_of_one_batch_on_too_few_cores_wait_for_cores_not_each_other() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = 2 * cores;
    let heavy = calibrate(Duration::from_micros(400));
    let light = heavy / 10;
    let dump = cpu_support::run(20, || {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let batch = info_span!("batch");
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let (batch, dispatch) = (batch.clone(), dispatch.clone());
                    s.spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let _in = batch.enter();
                            for _ in 0..10 {
                                info_span!("compress").in_scope(|| fixed_work(heavy));
                                info_span!("checksum").in_scope(|| fixed_work(light));
                            }
                        })
                    });
                }
            });
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    let row = a
        .callsites
        .iter()
        .find(|r| r.location.name == "compress")
        .expect("compress");
    let cpu = row.cpu.as_ref().expect("compress timed");
    let seen = format!(
        "compress: on the CPU {:.2}, preempted {:.2}, blocked {:.2} of its self time; findings {:?}",
        cpu.self_on_cpu_share,
        cpu.self_preempted_share,
        cpu.self_blocked_share,
        a.findings
            .iter()
            .map(|f| (f.class, f.location.as_ref().map(|l| l.name.clone())))
            .collect::<Vec<_>>()
    );
    // Twice the cores' threads computing: some of their time is a wait
    // for a core, so there is some to be read wrongly.
    assert!(
        cpu.self_preempted_share + cpu.self_blocked_share >= 0.2,
        "{seen}"
    );
    // It never blocks: its time off the CPU is preemption.
    assert!(cpu.self_blocked_share <= 0.1, "{seen}");
    let classes = classes_for(&a, "compress");
    assert!(!classes.contains(&Class::Serialization), "{seen}");
    assert!(classes.contains(&Class::HotSpot), "{seen}");
}
