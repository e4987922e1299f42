//! Four threads logging five lines a job through a real `fmt` layer into a
//! pipe that a slow reader drains (written fresh, 2026-12-06: a service
//! whose log collector falls behind). Their writes block on the full pipe
//! and on the writer's lock (a `Mutex` around a `LineWriter`, as stdout
//! is). The span path split each job's time off the
//! CPU by its switches' counts and read 2.96 s of it preempted, where the
//! threads waited 0.52 s for a core in all (their `schedstat`): CPU
//! contention came second, high, in a process using a tenth of its two
//! cores. The timeline's wait for a core now bounds the spans' preempted
//! time, the rest is blocked, and the blocked span is told its writer
//! blocks (one line a job made 4.8 times the jobs).

#![cfg(target_os = "linux")]

use std::io::Read as _;
use std::os::fd::FromRawFd as _;
use std::time::{Duration, Instant};

use perf_layer::PerfLayer;
use perf_report::analyze::{Class, analyze};
use tracing_subscriber::prelude::*;

mod cpu_support;

use cpu_support::spin_for;

#[tracing::instrument(skip_all)]
fn handle(job: u64) {
    spin_for(Duration::from_micros(50));
    for step in 0..5 {
        tracing::info!(
            job,
            step,
            "handled a step of the job with some context attached"
        );
    }
}

fn run() -> perf_layer::dump::Dump {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: each descriptor is open, and owned by one `File` from here.
    let (mut reader, writer) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    // The slow reader: 4 KiB every 2 ms, until the writer is gone (or a
    // minute has passed: never in a passing run).
    let drain = std::thread::spawn(move || {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(60) {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    let (layer, handle_) = PerfLayer::builder()
        .sampler_interval(Duration::from_millis(20))
        .without_overhead_calibration()
        .build()
        .unwrap();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::sync::Mutex::new(std::io::LineWriter::new(writer)))
        .with_ansi(false);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt).with(layer));
    let deadline = Instant::now() + Duration::from_millis(1_500);
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut job = 0;
                    while Instant::now() < deadline {
                        handle(w * 1_000_000 + job);
                        job += 1;
                    }
                });
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let dump = handle_.snapshot();
    // The pipe's writer closes with the subscriber: the reader sees its end.
    drop(dispatch);
    drain.join().unwrap();
    dump
}

#[test]
fn waits_on_a_slow_log_reader_are_blocked_time_not_preemption() {
    let dump = run();
    // The process's threads' wait for a core over the run, from the
    // timeline (each sample's since the one before; the first's since the
    // layer started), and what the hypervisor stole from them (a guest's
    // run delay does not hold it: the machine's steal over the process's
    // CPU), as the report reckons it.
    let mut before = 0;
    let mut waited_ns = 0.0;
    for s in &dump.timeline.samples {
        let percent = s
            .waiting_for_cpu_percent
            .expect("every sample has the wait for a core");
        let ns = s.t_ms.saturating_sub(before) as f64 * 1e6;
        let steal = s.steal_percent.unwrap_or(0.0).clamp(0.0, 90.0) / 100.0;
        waited_ns +=
            percent / 100.0 * ns + steal / (1.0 - steal) * s.cpu_percent.max(0.0) / 100.0 * ns;
        before = s.t_ms;
    }
    let analysis = analyze(&dump.clone().into(), &Default::default());
    // The spans' preempted time is within the threads' wait for a core (the
    // span path read about three times that here, from the switches'
    // counts), so CPU contention says no more than that.
    if let Some(f) = analysis
        .findings
        .iter()
        .find(|f| f.class == Class::CpuContention && f.location.is_none())
    {
        let preempted = f
            .evidence
            .iter()
            .find(|e| e.metric == "time preempted in spans")
            .map_or(0.0, |e| e.value);
        assert!(
            preempted <= 1.26 * waited_ns,
            "{preempted} ns preempted, {waited_ns} ns waited: {f:#?}"
        );
    }
    let plan = perf_report::plan::plan(&analysis);
    let step = plan
        .steps
        .iter()
        .find(|s| {
            s.class == Class::Blocked && s.location.as_ref().is_some_and(|l| l.name == "handle")
        })
        .unwrap_or_else(|| panic!("`handle` is blocked: {:#?}", analysis.findings));
    assert!(
        step.fixes[0].starts_with("Log without blocking"),
        "{:?}",
        step.fixes
    );
}
