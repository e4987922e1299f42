//! The on-CPU time the report estimates for short spans from the layer's
//! sample of them, against the thread's own CPU clock, when the spans share
//! their core. Timing an interval with system calls is where the scheduler
//! preempts a thread past its slice (reading the thread's CPU clock
//! updates its run time), so the sampled intervals are mostly waiting for
//! the core: their on-CPU *share* stood for the rest and gave a tenth of
//! the truth; their on-CPU time per interval gives it. Alone in its binary,
//! so that its hogs slow no other test.

#![cfg(target_os = "linux")]

use std::time::Duration;

use perf_layer::PerfLayer;
use perf_report::analyze::analyze;
use tracing::info_span;

mod cpu_support;

use cpu_support::{Hogs, calibrate, fixed_work, pin_to_first_core};

/// The calling thread's CPU time, ns.
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` fills the `timespec` it is given.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) },
        0
    );
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[test]
fn short_spans_sharing_their_core_are_on_the_cpu_for_their_cpu_time() {
    let (row, truth_ns) = std::thread::spawn(|| {
        let pinned = pin_to_first_core();
        // 40 µs of work a call on a free core: under the 100 µs threshold,
        // so one call in 512 is timed, with system calls (no task clock):
        // 16,000 calls give about 38 timed ones.
        let iterations = calibrate(Duration::from_micros(40));
        let hogs = Hogs::start(2, pinned);
        let mut truth_ns = 0;
        // With the sampler: where the sample saw no switch at all (one run
        // in five or so), the process's switches say how the rest of the
        // time off the CPU splits.
        let layer = PerfLayer::builder().without_task_clock();
        let dump = cpu_support::run_with(layer, || {
            let start = thread_cpu_ns();
            for _ in 0..16_000 {
                info_span!("share_a_core").in_scope(|| fixed_work(iterations));
            }
            truth_ns = thread_cpu_ns() - start;
        });
        drop(hogs);
        let a = analyze(&dump.into(), &Default::default());
        let row = a
            .callsites
            .into_iter()
            .find(|c| c.location.name == "share_a_core")
            .unwrap();
        (row, truth_ns)
    })
    .join()
    .unwrap();
    let cpu = row.cpu.as_ref().expect("CPU figures from the sample");
    // The thread's CPU time holds the layer's own callbacks too (about 1%
    // of a 40 µs call). The sample's estimate was 0.85 to 1.02 of it here
    // (a quiet 2-vCPU guest, 15 runs of 8,000 calls), and 1.245 and 1.25 on
    // CI's host in two runs whose samples showed the hypervisor stealing a
    // quarter of the CPU: the timed calls are the ones the scheduler
    // preempts (their system calls), and a preempted call finishes on a
    // cache the hogs have used. Within a third of it; the share-based
    // reading this test was written against gave a tenth.
    let ratio = cpu.self_on_cpu_ns / truth_ns as f64;
    assert!(
        (0.75..=1.33).contains(&ratio),
        "estimated {:.1} ms on the CPU, the thread's clock says {:.1} ms: {cpu:?}",
        cpu.self_on_cpu_ns / 1e6,
        truth_ns as f64 / 1e6
    );
    // It computes: what is not on the CPU is preemption, not blocking.
    assert!(cpu.self_blocked_share < 0.1, "{cpu:?}");
}
