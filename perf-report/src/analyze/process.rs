//! The process as the sampler saw it: RSS levels and trend, CPU across all
//! cores, CPU pressure and steal, context switches, threads and files.

use perf_layer::dump::{AlertKind, Dump};
use serde::Serialize;

use crate::stats::{self, LinearFit};

/// The CPU level a timeline sample counts as saturated at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CpuLevel {
    /// A fixed level, percent of one core.
    Percent(f64),
    /// This share of every core the process could use (of one core when
    /// the core count is unknown).
    ShareOfCores(f64),
}

impl CpuLevel {
    /// The level in percent of one core, for a process that could use
    /// `cores` (unknown: `None`).
    fn percent(self, cores: Option<u32>) -> f64 {
        match self {
            CpuLevel::Percent(p) => p,
            CpuLevel::ShareOfCores(share) => 100.0 * share * f64::from(cores.unwrap_or(1)),
        }
    }
}

/// The process as the sampler saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessSummary {
    /// Timeline samples.
    pub samples: usize,
    /// RSS at the first sample, bytes.
    pub rss_first_bytes: u64,
    /// RSS at the last sample, bytes.
    pub rss_last_bytes: u64,
    /// Median RSS, bytes.
    pub rss_median_bytes: u64,
    /// Peak RSS, bytes.
    pub rss_peak_bytes: u64,
    /// Least-squares fit of RSS (bytes) over time (seconds), when there are
    /// at least two samples at distinct times.
    pub rss_trend: Option<LinearFit>,
    /// Mean CPU over every thread, percent of one core (200: two cores
    /// busy).
    pub cpu_mean_percent: f64,
    /// Peak CPU, percent of one core.
    pub cpu_max_percent: f64,
    /// The CPUs the process could use, when the dump says.
    pub cores: Option<u32>,
    /// The CPU level a sample counts as saturated at, percent of one core:
    /// `classes.process_cpu.saturated_percent` when set, else
    /// `saturated_share_of_cores` of every core (of one core when the core
    /// count is unknown).
    pub cpu_saturated_at_percent: f64,
    /// Share of samples at or above that level.
    pub cpu_saturated_share: f64,
    /// Mean share of time some task of the machine waited for a CPU (Linux
    /// PSI), percent, when the samples have it.
    pub cpu_pressure_mean_percent: Option<f64>,
    /// Mean share of the machine's CPU the hypervisor stole, percent.
    pub steal_mean_percent: Option<f64>,
    /// Mean CPU the rest of the machine used beside the process (the
    /// machine's busy CPU less the process's), percent of one core, when
    /// the samples have the machine's.
    pub others_cpu_mean_percent: Option<f64>,
    /// Voluntary context switches of the process per second.
    pub voluntary_switches_per_s: Option<f64>,
    /// Involuntary context switches of the process per second (it was
    /// preempted).
    pub involuntary_switches_per_s: Option<f64>,
    /// The most threads the process had at once.
    pub threads_max: u32,
    /// The most file descriptors it had open at once.
    pub open_fds_max: Option<u32>,
    /// CPU alerts raised.
    pub cpu_alerts: usize,
    /// RSS alerts raised.
    pub rss_alerts: usize,
}

impl ProcessSummary {
    /// The summary of a dump's timeline and alerts, a sample counting as
    /// saturated at `saturation`.
    pub(crate) fn of(dump: &Dump, saturation: CpuLevel) -> Self {
        let samples = &dump.timeline.samples;
        let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_bytes).collect();
        rss.sort_unstable();
        let points: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.t_ms as f64 / 1e3, s.rss_bytes as f64))
            .collect();
        let cpu: Vec<f64> = samples
            .iter()
            .map(|s| s.cpu_percent)
            .filter(|c| c.is_finite())
            .collect();
        let cores = dump.run.cores.filter(|&n| n > 0);
        let saturated_at = saturation.percent(cores);
        let saturated = cpu.iter().filter(|&&c| c >= saturated_at).count();
        let mean_of = |f: fn(&perf_layer::dump::ProcessSample) -> Option<f64>| {
            let v: Vec<f64> = samples
                .iter()
                .filter_map(f)
                .filter(|x| x.is_finite())
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let span_s = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) if b.t_ms > a.t_ms => Some((b.t_ms - a.t_ms) as f64 / 1e3),
            _ => None,
        };
        // Each sample counts the switches since the one before: the first's
        // are before the timeline starts.
        let per_s = |f: fn(&perf_layer::dump::ProcessSample) -> Option<u64>| {
            let total: Option<u64> = samples.iter().skip(1).map(f).sum();
            total.zip(span_s).map(|(n, s)| n as f64 / s)
        };
        let alerts = |kind: AlertKind| dump.alerts.iter().filter(|a| a.kind == kind).count();
        Self {
            samples: samples.len(),
            rss_first_bytes: samples.first().map_or(0, |s| s.rss_bytes),
            rss_last_bytes: samples.last().map_or(0, |s| s.rss_bytes),
            rss_median_bytes: rss.get(rss.len() / 2).copied().unwrap_or(0),
            rss_peak_bytes: rss.last().copied().unwrap_or(0),
            rss_trend: stats::least_squares(&points),
            cpu_mean_percent: if cpu.is_empty() {
                0.0
            } else {
                cpu.iter().sum::<f64>() / cpu.len() as f64
            },
            cpu_max_percent: cpu.iter().copied().fold(0.0, f64::max),
            cores,
            cpu_saturated_at_percent: saturated_at,
            cpu_saturated_share: stats::share(saturated as f64, cpu.len() as f64),
            cpu_pressure_mean_percent: mean_of(|s| s.cpu_pressure_percent),
            steal_mean_percent: mean_of(|s| s.steal_percent),
            others_cpu_mean_percent: mean_of(|s| {
                s.machine_cpu_percent.map(|m| (m - s.cpu_percent).max(0.0))
            }),
            voluntary_switches_per_s: per_s(|s| s.voluntary_switches),
            involuntary_switches_per_s: per_s(|s| s.involuntary_switches),
            threads_max: samples.iter().map(|s| s.threads).max().unwrap_or(0),
            open_fds_max: samples.iter().filter_map(|s| s.open_fds).max(),
            cpu_alerts: alerts(AlertKind::Cpu),
            rss_alerts: alerts(AlertKind::Rss),
        }
    }
}
