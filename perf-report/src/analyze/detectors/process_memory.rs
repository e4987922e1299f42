//! Process memory: RSS that spiked far above its usual level, or above the
//! RSS alert threshold.

use perf_layer::dump::AlertKind;
use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When the process's memory spikes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Peak RSS at least this many times the median... (default 2)
    pub spike_over_median: f64,
    /// ...and at least this many bytes above it (64 MiB).
    pub spike_min_bytes: u64,
    /// The share of the excess memory a fix trims (0.25).
    pub recoverable: f64,
    /// Confidence is `samples / (samples + this)` (4)...
    pub half_confidence_samples: f64,
    /// ...or this with RSS alerts (0.9).
    pub confidence_with_alerts: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            spike_over_median: 2.0,
            spike_min_bytes: 64 * 1024 * 1024,
            recoverable: 0.25,
            half_confidence_samples: 4.0,
            confidence_with_alerts: 0.9,
        }
    }
}

pub(crate) struct ProcessMemory;

static INFO: Info = Info {
    id: "process_memory",
    title: "process memory",
    innermost: false,
    supersedes: &[],
};

impl Detector for ProcessMemory {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.process_memory;
        let p = &cx.process;
        let spike = p.rss_peak_bytes.saturating_sub(p.rss_median_bytes);
        let spiking = p.samples >= 2
            && p.rss_peak_bytes as f64 >= s.spike_over_median * p.rss_median_bytes as f64
            && spike >= s.spike_min_bytes;
        if !spiking && p.rss_alerts == 0 {
            return;
        }
        let confidence = if p.rss_alerts > 0 {
            s.confidence_with_alerts
        } else {
            stats::sample_confidence(p.samples as u64, s.half_confidence_samples)
        };
        let rss_alerts = || {
            cx.dump
                .alerts
                .iter()
                .filter(|a| a.kind == AlertKind::Rss)
        };
        // The part of peak memory above the usual level, or above the
        // threshold the user set for alerts, whichever is larger.
        let peak = rss_alerts()
            .filter(|a| a.value.is_finite())
            .map(|a| a.value)
            .fold(p.rss_peak_bytes as f64, f64::max);
        let over_threshold = rss_alerts()
            .filter(|a| a.threshold.is_finite())
            .map(|a| stats::share(peak - a.threshold, peak))
            .fold(0.0, f64::max);
        found.push(cx.score(Draft {
            class: Class::ProcessMemory,
            callsite: None,
            resource: Resource::Memory,
            cost_share: stats::share(spike as f64, peak).max(over_threshold),
            recoverable: s.recoverable,
            confidence,
            summary: format!(
                "RSS peaked at {} against a median of {}{}",
                units::bytes(peak),
                units::bytes(p.rss_median_bytes as f64),
                match cx.dump.config.rss_alert_bytes {
                    Some(limit) if p.rss_alerts > 0 => format!(
                        "; {} RSS alerts above the {} threshold",
                        p.rss_alerts,
                        units::bytes(limit as f64)
                    ),
                    _ => String::new(),
                }
            ),
            evidence: vec![
                Evidence::new("peak RSS", p.rss_peak_bytes as f64, Unit::Bytes, None),
                Evidence::new("median RSS", p.rss_median_bytes as f64, Unit::Bytes, None),
                Evidence::new(
                    "peak / median",
                    stats::ratio(p.rss_peak_bytes as f64, p.rss_median_bytes as f64),
                    Unit::Ratio,
                    Some(s.spike_over_median),
                ),
                Evidence::new("RSS alerts", p.rss_alerts as f64, Unit::Count, None),
            ],
        }));
    }

    fn advice(&self, f: &Finding) -> Advice {
        Advice {
            statement: format!(
                "trimming {} of the excess memory ({} of peak memory above the usual level or the alert threshold) returns {} of peak memory",
                units::pct(f.recoverable),
                units::pct(f.cost_share),
                units::pct(f.expected_gain())
            ),
            fixes: lines(&[
                "Stream instead of loading whole inputs (`BufReader`, iterators, `serde_json::Deserializer::from_reader`)",
                "Limit the concurrency of memory-heavy work with a `tokio::sync::Semaphore` so peaks do not stack",
                "Drop large buffers as soon as they are done and release capacity after spikes (`shrink_to_fit`)",
            ]),
            prerequisites: lines(&[
                "Enable the sampler with an RSS alert so the spike's time can be matched to the spans running then",
            ]),
            check: "peak RSS must come down towards the median".to_owned(),
            complexity: Effort::Medium,
            risk: Effort::Medium,
        }
    }
}
