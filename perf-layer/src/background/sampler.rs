//! The process sampler: reads process RSS, virtual memory, CPU and thread
//! count (from `/proc/self/stat` on Linux, through `sysinfo` elsewhere)
//! into a bounded timeline, and raises threshold
//! alerts. It runs on the background thread; spans only read the latest RSS
//! from an atomic.

use std::sync::atomic::Ordering;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::procfs::{self, Reading};
use crate::dump::{Alert, AlertKind, ProcessSample};
use crate::profiler::Profiler;

/// Alerts fire when a value crosses above its threshold and re-arm once it
/// falls back below, so a process that stays hot raises one alert, not one
/// per sample.
#[derive(Debug, Default)]
pub(super) struct Armed {
    rss_above: bool,
    cpu_above: bool,
}

/// The process's memory and threads, and sysinfo's CPU figure where it was
/// asked.
struct Process {
    rss_bytes: u64,
    virtual_bytes: u64,
    threads: u32,
    cpu_percent: Option<f64>,
}

/// One read of `/proc/self/stat` on Linux; elsewhere (or where `/proc`
/// cannot be read) a `sysinfo` refresh.
fn read_process(system: &mut System, pid: Pid) -> Option<Process> {
    if let Some(stat) = procfs::self_stat() {
        return Some(Process {
            rss_bytes: stat.rss_bytes,
            virtual_bytes: stat.virtual_bytes,
            threads: stat.threads,
            cpu_percent: None,
        });
    }
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .with_tasks(),
    );
    let process = system.process(pid)?;
    Some(Process {
        rss_bytes: process.memory(),
        virtual_bytes: process.virtual_memory(),
        threads: process
            .tasks()
            .map_or(0, |t| u32::try_from(t.len()).unwrap_or(u32::MAX)),
        cpu_percent: Some(f64::from(process.cpu_usage())),
    })
}

/// What the sampler keeps between samples.
#[derive(Debug, Default)]
pub(super) struct Kept {
    pub(super) armed: Armed,
    /// The threads' waits for a core at the last sample.
    #[cfg(target_os = "linux")]
    pub(super) core_waits: procfs::CoreWaits,
}

impl Kept {
    /// Kept from the layer's start: the first sample's wait for a core is
    /// since then.
    pub(super) fn new() -> Self {
        let mut kept = Self::default();
        let _ = kept.waiting_for_cpu_percent();
        kept
    }

    /// The threads' wait for a core since the last sample, percent.
    fn waiting_for_cpu_percent(&mut self) -> Option<f64> {
        #[cfg(target_os = "linux")]
        return self.core_waits.since_last_percent();
        #[cfg(not(target_os = "linux"))]
        None
    }
}

pub(super) fn sample(
    shared: &Profiler,
    system: &mut System,
    pid: Pid,
    kept: &mut Kept,
    last: &mut Reading,
) {
    let t_ms = u64::try_from(shared.started.at.elapsed().as_millis()).unwrap_or(u64::MAX);
    let Some(process) = read_process(system, pid) else {
        return;
    };
    let now = Reading::now();
    let rates = now.since(last);
    *last = now;
    let sample = ProcessSample {
        t_ms,
        rss_bytes: process.rss_bytes,
        virtual_bytes: process.virtual_bytes,
        // The process's CPU time over the interval, every thread; sysinfo's
        // figure where the platform has no such clock.
        cpu_percent: rates.cpu_percent.or(process.cpu_percent).unwrap_or(0.0),
        threads: process.threads,
        cpu_pressure_percent: rates.pressure_percent,
        steal_percent: rates.steal_percent,
        machine_cpu_percent: rates.machine_cpu_percent,
        voluntary_switches: rates.voluntary_switches,
        involuntary_switches: rates.involuntary_switches,
        system_cpu_share_percent: rates.system_cpu_share_percent,
        waiting_for_cpu_percent: kept.waiting_for_cpu_percent(),
        open_fds: procfs::open_fds(),
    };
    shared.latest_rss.store(sample.rss_bytes, Ordering::Relaxed);
    shared.timeline.lock().push(sample);
    shared.observe_pressure(t_ms, sample.rss_bytes);
    if crate::record::alloc::is_installed() {
        let counts = crate::record::heap::totals();
        shared.heap_timeline.lock().record(t_ms, &counts);
    }

    let config = &shared.config;
    if let Some(limit) = config.rss_alert_bytes {
        let above = sample.rss_bytes > limit;
        if above && !kept.armed.rss_above {
            let message = format!(
                "process RSS {} MiB is above the alert threshold of {} MiB",
                sample.rss_bytes >> 20,
                limit >> 20
            );
            shared.raise_alert(Alert {
                t_ms,
                kind: AlertKind::Rss,
                value: sample.rss_bytes as f64,
                threshold: limit as f64,
                message,
            });
        }
        kept.armed.rss_above = above;
    }
    if let Some(limit) = config.cpu_alert_percent {
        let above = sample.cpu_percent > limit;
        if above && !kept.armed.cpu_above {
            let message = format!(
                "process CPU {:.0}% is above the alert threshold of {limit:.0}%",
                sample.cpu_percent
            );
            shared.raise_alert(Alert {
                t_ms,
                kind: AlertKind::Cpu,
                value: sample.cpu_percent,
                threshold: limit,
                message,
            });
        }
        kept.armed.cpu_above = above;
    }
}
