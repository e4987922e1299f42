//! What the on/off-CPU tests share: a layer to run work under, a span's
//! CPU figures and findings by class, and work that computes for a known
//! time.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use perf_layer::PerfLayer;
use perf_layer::dump::{CpuStats, Dump};
use perf_report::analyze::{Analysis, Class, Finding};
use tracing_subscriber::prelude::*;

/// Runs `work` under a fresh layer sampling every `sample_ms` (no overhead
/// calibration) and returns the dump.
pub fn run(sample_ms: u64, work: impl FnOnce()) -> Dump {
    run_with(
        PerfLayer::builder().sampler_interval(Duration::from_millis(sample_ms)),
        work,
    )
}

/// [`run`] under a layer of `builder` (no overhead calibration).
pub fn run_with(builder: perf_layer::PerfLayerBuilder, work: impl FnOnce()) -> Dump {
    let (layer, handle) = builder.without_overhead_calibration().build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

/// The findings about the span named `name`.
pub fn findings_for<'a>(a: &'a Analysis, name: &str) -> Vec<&'a Finding> {
    a.findings
        .iter()
        .filter(|f| f.location.as_ref().is_some_and(|l| l.name == name))
        .collect()
}

/// Their classes.
pub fn classes_for(a: &Analysis, name: &str) -> Vec<Class> {
    findings_for(a, name).iter().map(|f| f.class).collect()
}

/// The CPU figures of the span named `name`; panics when it has none.
pub fn cpu_of<'a>(dump: &'a Dump, name: &str) -> &'a CpuStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.cpu.as_ref())
        .unwrap_or_else(|| panic!("no CPU figures for `{name}`"))
}

/// On-CPU time over busy time of the timed intervals.
pub fn on_cpu_share(c: &CpuStats) -> f64 {
    c.on_cpu_ns.sum as f64 / c.busy_ns.max(1) as f64
}

/// Spins for `d` of wall time.
pub fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// `n` rounds of arithmetic: the same work whatever the machine does.
pub fn fixed_work(n: u64) -> u64 {
    let mut x = 1u64;
    for _ in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

/// Rounds of [`fixed_work`] that take about `d` on a free core.
pub fn calibrate(d: Duration) -> u64 {
    let mut n = 1_000u64;
    loop {
        let start = Instant::now();
        fixed_work(n);
        let took = start.elapsed();
        if took >= Duration::from_millis(5) {
            return (n as f64 * d.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        n *= 2;
    }
}

/// Pins the calling thread to the first core the process may use, so that
/// it and [`Hogs`] share that core whatever else the machine runs; `false`
/// when the platform will not.
pub fn pin_to_first_core() -> bool {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.first().copied())
        .is_some_and(core_affinity::set_for_current)
}

/// Threads that compute until dropped, pinned to the first core when
/// `pinned` (the caller pinned itself there).
pub struct Hogs {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    pub fn start(n: usize, pinned: bool) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    if pinned {
                        pin_to_first_core();
                    }
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        fixed_work(1_000);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// perf-report's own bar for CPU contention read from steal (its
/// default `min_steal_percent`, 10): a run whose host stole at least this
/// much of the guest's CPU on average (percent). There a reading that
/// depends on how fast a woken thread runs again (a pool's connection
/// handed over, a lock's next holder) is the host's, not the program's:
/// the woken thread's vCPU may be paused.
pub fn stolen_percent() -> f64 {
    perf_report::Config::default()
        .classes
        .cpu_contention
        .min_steal_percent
}

/// The hypervisor's steal over `dump`'s samples, mean percent (0 where
/// they do not say).
pub fn steal_percent(dump: &Dump) -> f64 {
    let stolen: Vec<f64> = dump
        .timeline
        .samples
        .iter()
        .filter_map(|s| s.steal_percent)
        .collect();
    if stolen.is_empty() {
        0.0
    } else {
        stolen.iter().sum::<f64>() / stolen.len() as f64
    }
}

/// What [`until_read`] saw: the last run's result and dump, and whether it
/// read as the test expects.
pub struct Tried<T> {
    pub result: T,
    pub dump: Dump,
    pub read: bool,
    /// The runs that did not read so, and of them those on a host that
    /// stole at least [`stolen_percent`] of the CPU.
    pub unread: usize,
    pub unread_stolen: usize,
}

impl<T> Tried<T> {
    /// No run read as expected, and the host stole from every one of them.
    pub fn stolen_throughout(&self) -> bool {
        !self.read && self.unread_stolen == self.unread
    }
}

/// Runs `attempt` (a run's result and its dump) until `read` holds of the
/// result: at most `quiet` failed runs on a quiet host, and twice that in
/// all, counting the failed runs where the host stole at least
/// [`stolen_percent`] of the CPU (CI's guests lose a quarter of it for
/// minutes at a time).
pub fn until_read<T>(
    quiet: usize,
    mut attempt: impl FnMut() -> (T, Dump),
    read: impl Fn(&T) -> bool,
) -> Tried<T> {
    let (mut unread, mut unread_stolen) = (0, 0);
    loop {
        let (result, dump) = attempt();
        let ok = read(&result);
        if !ok {
            unread += 1;
            let steal = steal_percent(&dump);
            if steal >= stolen_percent() {
                unread_stolen += 1;
            }
            eprintln!(
                "a run did not read as expected ({unread} so far; the host stole {steal:.0}% of the CPU)"
            );
        }
        let quiet_runs = unread - unread_stolen;
        if ok || quiet_runs >= quiet || unread >= 2 * quiet {
            return Tried {
                result,
                dump,
                read: ok,
                unread,
                unread_stolen,
            };
        }
    }
}

/// Whether `a` says the host stole the CPU: a CPU contention finding whose
/// summary gives the steal.
pub fn says_stolen(a: &Analysis) -> bool {
    a.findings
        .iter()
        .any(|f| f.class == Class::CpuContention && f.summary.contains("steal "))
}
