//! Process memory: RSS that spiked far above its usual level, above the
//! RSS alert threshold, or into a memory pressure level (a fraction of the
//! process's real limit: its container's, else the machine's).
//!
//! With pressure figures the finding is worded against the limit ("peak
//! 81% of the container's 512 MiB limit, 12 s in WARNING"): a bare RSS
//! number says nothing about how close the process came to being killed.
//! The cost is then at least the share of peak memory above the warning
//! fraction: what must go for the process to stay NORMAL.

use perf_layer::dump::{AlertKind, MemoryPressure, PressureLevel};
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
        let pressure = cx
            .dump
            .memory_pressure
            .as_ref()
            .filter(|m| m.peak_level > PressureLevel::Normal && m.limit_bytes > 0);
        if !spiking && p.rss_alerts == 0 && pressure.is_none() {
            return;
        }
        let confidence = if p.rss_alerts > 0 || pressure.is_some() {
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
        let peak = pressure.map_or(peak, |m| peak.max(m.peak_rss_bytes as f64));
        let over_warning = pressure.map_or(0.0, |m| {
            stats::share(peak - m.thresholds[0] * m.limit_bytes as f64, peak)
        });
        let mut evidence = vec![
            Evidence::new("peak RSS", p.rss_peak_bytes as f64, Unit::Bytes, None),
            Evidence::new("median RSS", p.rss_median_bytes as f64, Unit::Bytes, None),
            Evidence::new(
                "peak / median",
                stats::ratio(p.rss_peak_bytes as f64, p.rss_median_bytes as f64),
                Unit::Ratio,
                Some(s.spike_over_median),
            ),
            Evidence::new("RSS alerts", p.rss_alerts as f64, Unit::Count, None),
        ];
        if let Some(m) = pressure {
            evidence.extend([
                Evidence::new("memory limit", m.limit_bytes as f64, Unit::Bytes, None),
                Evidence::new(
                    "peak share of the limit",
                    stats::share(peak, m.limit_bytes as f64),
                    Unit::Share,
                    Some(m.thresholds[0]),
                ),
                Evidence::new(
                    "time at WARNING or above",
                    m.time_in_level_ms[1..].iter().sum::<u64>() as f64 * 1e6,
                    Unit::Ns,
                    None,
                ),
            ]);
        }
        let draft = Draft {
            class: Class::ProcessMemory,
            callsite: None,
            resource: Resource::Memory,
            cost_share: stats::share(spike as f64, peak)
                .max(over_threshold)
                .max(over_warning),
            recoverable: s.recoverable,
            confidence,
            summary: match pressure {
                Some(m) => pressure_summary(m, peak),
                None => format!(
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
            },
            evidence,
        };
        found.push(cx.score(draft, |f| advice(f, pressure.is_some())));
    }

}

/// The plan step's advice for one of its findings, worded against the
/// memory limit where the dump has one (`against_limit`).
fn advice(f: &Finding, against_limit: bool) -> Advice {
    Advice {
        statement: format!(
            "trimming {} of the excess memory ({} of peak memory above {}) returns {} of peak memory",
            units::pct(f.recoverable),
            units::pct(f.cost_share),
            if against_limit {
                "the usual level, the alert threshold or the warning fraction of the limit"
            } else {
                "the usual level or the alert threshold"
            },
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Stream instead of loading whole inputs (`BufReader`, iterators, `serde_json::Deserializer::from_reader`)",
            "Limit the concurrency of memory-heavy work with a `tokio::sync::Semaphore` so peaks do not stack",
            "Drop large buffers as soon as they are done and release capacity after spikes (`shrink_to_fit`)",
            "React to pressure before the kernel does: register `PerfLayer::builder().on_memory_pressure(..)` to shed caches at WARNING and refuse new work at EMERGENCY",
        ]),
        prerequisites: lines(&[
            "Enable the sampler with an RSS alert so the spike's time can be matched to the spans running then",
        ]),
        check: if against_limit {
            "peak RSS must stay below the warning fraction of the limit: the dump's memory_pressure.peak_level normal".to_owned()
        } else {
            "peak RSS must come down towards the median".to_owned()
        },
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

/// "peak 81% of the container's 512 MiB limit, 12 s in WARNING, 2 s in
/// EMERGENCY": the peak against the limit and the time at each level above
/// NORMAL that the run spent any time in.
fn pressure_summary(m: &MemoryPressure, peak: f64) -> String {
    let mut s = format!(
        "peak {} of {} {} limit",
        units::pct(stats::share(peak, m.limit_bytes as f64)),
        m.limit_source.describe(),
        units::bytes(m.limit_bytes as f64)
    );
    let mut any = false;
    for (level, &ms) in PressureLevel::ALL.iter().zip(&m.time_in_level_ms).skip(1) {
        if ms > 0 {
            s.push_str(&format!(", {} in {level}", units::ns(ms as f64 * 1e6)));
            any = true;
        }
    }
    if !any {
        s.push_str(&format!(", reached {}", m.peak_level));
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MIB, assert_near, detect, dump, evidence, timeline};

    /// Ten samples at 100 MiB but one at `peak` MiB.
    fn run(peak: u64) -> perf_layer::dump::Dump {
        let mut d = dump(10_000_000_000, &[]);
        let samples: Vec<(u64, f64)> = (0..10)
            .map(|i| (if i == 6 { peak } else { 100 } * MIB, 10.0))
            .collect();
        timeline(&mut d, &samples);
        d
    }

    /// A 300 MiB peak over a 100 MiB median is a spike (3x, 200 MiB above);
    /// 199 MiB is 1.99x, just under twice.
    #[test]
    fn finds_a_spike_over_twice_the_median_and_not_one_just_under() {
        let found = detect(Class::ProcessMemory, run(300));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_near(evidence(f, "peak / median"), 3.0, 1e-9);
        // The 200 MiB above the median, of the 300 MiB peak.
        assert_near(f.cost_share, 2.0 / 3.0, 1e-9);
        assert_near(f.confidence, 10.0 / 14.0, 1e-9);
        // No memory limit in the dump: the advice says the median, not it.
        assert_eq!(f.advice.check, "peak RSS must come down towards the median");

        assert!(detect(Class::ProcessMemory, run(199)).is_empty());
    }
}
