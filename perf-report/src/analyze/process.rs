//! The process as the sampler saw it: RSS levels and trend, CPU.

use perf_layer::dump::{AlertKind, Dump};
use serde::Serialize;

use crate::config::Config;
use crate::stats::{self, LinearFit};

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
    /// Mean CPU, percent of one core.
    pub cpu_mean_percent: f64,
    /// Peak CPU, percent of one core.
    pub cpu_max_percent: f64,
    /// Share of samples at or above the saturation threshold
    /// (`classes.process_cpu.saturated_percent`).
    pub cpu_saturated_share: f64,
    /// CPU alerts raised.
    pub cpu_alerts: usize,
    /// RSS alerts raised.
    pub rss_alerts: usize,
}

impl ProcessSummary {
    pub(crate) fn of(dump: &Dump, config: &Config) -> Self {
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
        let saturated = cpu
            .iter()
            .filter(|&&c| c >= config.classes.process_cpu.saturated_percent)
            .count();
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
            cpu_saturated_share: stats::share(saturated as f64, cpu.len() as f64),
            cpu_alerts: alerts(AlertKind::Cpu),
            rss_alerts: alerts(AlertKind::Rss),
        }
    }
}
