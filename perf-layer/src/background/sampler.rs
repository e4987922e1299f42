//! The process sampler: reads process RSS, virtual memory, CPU and thread
//! count through `sysinfo` into a bounded timeline, and raises threshold
//! alerts. It runs on the background thread; spans only read the latest RSS
//! from an atomic.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::procfs::{self, Reading};
use crate::dump::{Alert, AlertKind, ProcessSample, Timeline};
use crate::profiler::Profiler;

/// A timeline that never holds more than `capacity` samples but always spans
/// the whole run: when full, every other sample is dropped and from then on
/// only every other tick is kept (the spacing doubles).
#[derive(Debug)]
pub(crate) struct TimelineRing {
    samples: Vec<ProcessSample>,
    capacity: usize,
    base_interval_ms: u64,
    stride: u64,
    ticks: u64,
}

impl TimelineRing {
    pub(crate) fn new(capacity: usize, base_interval_ms: u64) -> Self {
        Self {
            samples: Vec::new(),
            capacity,
            base_interval_ms,
            stride: 1,
            ticks: 0,
        }
    }

    pub(crate) fn push(&mut self, sample: ProcessSample) {
        let keep = self.ticks % self.stride == 0;
        self.ticks += 1;
        if !keep {
            return;
        }
        if self.samples.len() >= self.capacity {
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = self.stride.saturating_mul(2);
        }
        self.samples.push(sample);
    }

    /// The newest sample kept.
    #[cfg(feature = "prometheus")]
    pub(crate) fn latest(&self) -> Option<&ProcessSample> {
        self.samples.last()
    }

    pub(crate) fn to_timeline(&self) -> Timeline {
        Timeline {
            interval_ms: self.base_interval_ms.saturating_mul(self.stride),
            samples: self.samples.clone(),
        }
    }
}

/// The newest `capacity` alerts, plus how many older ones were evicted.
#[derive(Debug)]
pub(crate) struct AlertRing {
    pub(crate) alerts: VecDeque<Alert>,
    capacity: usize,
    pub(crate) dropped: u64,
}

impl AlertRing {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            alerts: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, alert: Alert) {
        if self.alerts.len() >= self.capacity {
            self.alerts.pop_front();
            self.dropped += 1;
        }
        self.alerts.push_back(alert);
    }
}

/// Alerts fire when a value crosses above its threshold and re-arm once it
/// falls back below, so a process that stays hot raises one alert, not one
/// per sample.
#[derive(Debug, Default)]
pub(super) struct Armed {
    rss_above: bool,
    cpu_above: bool,
}

pub(super) fn sample(
    shared: &Profiler,
    system: &mut System,
    pid: Pid,
    armed: &mut Armed,
    last: &mut Reading,
) {
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .with_tasks(),
    );
    let Some(process) = system.process(pid) else {
        return;
    };
    let t_ms = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let now = Reading::now();
    let rates = now.since(last);
    *last = now;
    let sample = ProcessSample {
        t_ms,
        rss_bytes: process.memory(),
        virtual_bytes: process.virtual_memory(),
        // The process's CPU time over the interval, every thread; sysinfo's
        // figure where the platform has no getrusage.
        cpu_percent: rates
            .cpu_percent
            .unwrap_or_else(|| f64::from(process.cpu_usage())),
        threads: process
            .tasks()
            .map_or(0, |t| u32::try_from(t.len()).unwrap_or(u32::MAX)),
        cpu_pressure_percent: rates.pressure_percent,
        steal_percent: rates.steal_percent,
        voluntary_switches: rates.voluntary_switches,
        involuntary_switches: rates.involuntary_switches,
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
        if above && !armed.rss_above {
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
        armed.rss_above = above;
    }
    if let Some(limit) = config.cpu_alert_percent {
        let above = sample.cpu_percent > limit;
        if above && !armed.cpu_above {
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
        armed.cpu_above = above;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64) -> ProcessSample {
        ProcessSample {
            t_ms,
            rss_bytes: t_ms,
            virtual_bytes: 0,
            cpu_percent: 0.0,
            threads: 1,
            cpu_pressure_percent: None,
            steal_percent: None,
            voluntary_switches: None,
            involuntary_switches: None,
            open_fds: None,
        }
    }

    #[test]
    fn timeline_stays_bounded_and_spans_the_run() {
        let mut ring = TimelineRing::new(8, 100);
        for t in 0..1000 {
            ring.push(at(t * 100));
        }
        let timeline = ring.to_timeline();
        assert!(timeline.samples.len() <= 8, "{}", timeline.samples.len());
        assert_eq!(timeline.samples[0].t_ms, 0);
        // Covers the run to within one (doubled) interval of its last tick.
        let last = timeline.samples.last().unwrap().t_ms;
        assert!(
            last + timeline.interval_ms > 99_900,
            "last {last}, interval {}",
            timeline.interval_ms
        );
        let gaps: Vec<u64> = timeline
            .samples
            .windows(2)
            .map(|w| w[1].t_ms - w[0].t_ms)
            .collect();
        assert!(
            gaps.iter().all(|&g| g == timeline.interval_ms),
            "{gaps:?} vs {}",
            timeline.interval_ms
        );
    }

    #[test]
    fn alert_ring_keeps_the_newest() {
        let mut ring = AlertRing::new(2);
        for t in 0..5 {
            ring.push(Alert {
                t_ms: t,
                kind: AlertKind::Cpu,
                value: 1.0,
                threshold: 0.5,
                message: String::new(),
            });
        }
        assert_eq!(ring.dropped, 3);
        assert_eq!(
            ring.alerts.iter().map(|a| a.t_ms).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }
}
