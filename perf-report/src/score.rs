//! Findings and their impact score.
//!
//! ```text
//! score = 100 x weight(resource) x cost_share x recoverable x confidence
//! ```
//!
//! * `cost_share`: the share of the run the finding's cost represents, in its
//!   own [`Resource`]: self time over all self time, idle time over the run's
//!   wall time, allocated bytes over all allocated bytes, retained bytes over
//!   peak RSS.
//! * `recoverable`: the share of that cost a typical fix of the class gives
//!   back ([`Gains`]; Amdahl: a speed-up `S` gives back `1 - 1/S`).
//! * `confidence`: how sure the evidence is, 0 to 1 (sample counts, fit
//!   quality, how much of the measurement is instrumentation).
//! * `weight`: how much a unit of the resource counts against run time
//!   (time 1, allocation [`Gains::allocation_weight`], memory
//!   [`Gains::memory_weight`]).
//!
//! So the score is the percentage of the run a fix is expected to give back,
//! discounted by doubt. [`SeverityBands`] map it to a [`Severity`].

use std::fmt;

use serde::Serialize;

use crate::analyze::Location;
use crate::config::{Config, Gains, SeverityBands};
use crate::units::Unit;

/// The kind of problem a finding describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Class {
    /// A large share of self time.
    HotSpot,
    /// p99 or max far above p50.
    TailLatency,
    /// Very many cheap calls: per-call overhead dominates.
    HotLoop,
    /// Many bytes or allocations per call, or a large share of all.
    AllocationHeavy,
    /// Memory kept across calls, or an RSS timeline that keeps growing.
    LeakSuspect,
    /// Wall time far above busy time: waiting on I/O, locks, other tasks.
    Waiting,
    /// The process spent much of the run at saturated CPU.
    ProcessCpu,
    /// The process's memory spiked far above its usual level, or above the
    /// RSS alert threshold.
    ProcessMemory,
}

impl Class {
    /// Every class, in a stable order.
    pub const ALL: [Class; 8] = [
        Class::HotSpot,
        Class::TailLatency,
        Class::HotLoop,
        Class::AllocationHeavy,
        Class::LeakSuspect,
        Class::Waiting,
        Class::ProcessCpu,
        Class::ProcessMemory,
    ];

    /// The name used in every output format, e.g. `hot_spot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::HotSpot => "hot_spot",
            Class::TailLatency => "tail_latency",
            Class::HotLoop => "hot_loop",
            Class::AllocationHeavy => "allocation_heavy",
            Class::LeakSuspect => "leak_suspect",
            Class::Waiting => "waiting",
            Class::ProcessCpu => "process_cpu",
            Class::ProcessMemory => "process_memory",
        }
    }

    /// A short title for people, e.g. `hot spot`.
    pub fn title(self) -> &'static str {
        match self {
            Class::HotSpot => "hot spot",
            Class::TailLatency => "tail latency",
            Class::HotLoop => "hot loop",
            Class::AllocationHeavy => "allocation-heavy",
            Class::LeakSuspect => "leak suspect",
            Class::Waiting => "waiting, not working",
            Class::ProcessCpu => "process CPU saturation",
            Class::ProcessMemory => "process memory",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// How bad a finding is, from its impact score and [`SeverityBands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Below the medium band.
    Low,
    /// At or above `bands.medium`.
    Medium,
    /// At or above `bands.high`.
    High,
    /// At or above `bands.critical`.
    Critical,
}

impl Severity {
    /// The severity of an impact score.
    pub fn from_score(score: f64, bands: &SeverityBands) -> Self {
        if score >= bands.critical {
            Severity::Critical
        } else if score >= bands.high {
            Severity::High
        } else if score >= bands.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// `critical`, `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding's cost is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Resource {
    /// Share of all self time (CPU work inside spans).
    Time,
    /// Share of the run's wall time.
    WallTime,
    /// Share of all self-allocated bytes.
    Allocation,
    /// Share of peak memory.
    Memory,
}

/// One figure that triggered a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// What was measured, e.g. `self time share`.
    pub metric: String,
    /// The measured value, in `unit`.
    pub value: f64,
    /// The unit of `value` and `threshold`.
    pub unit: Unit,
    /// The threshold it was compared with, if one applies.
    pub threshold: Option<f64>,
}

impl Evidence {
    pub(crate) fn new(metric: &str, value: f64, unit: Unit, threshold: Option<f64>) -> Self {
        Self {
            metric: metric.to_owned(),
            value,
            unit,
            threshold,
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.metric, self.unit.format(self.value))?;
        if let Some(t) = self.threshold {
            write!(f, " (threshold {})", self.unit.format(t))?;
        }
        Ok(())
    }
}

/// A scored problem, with the numbers that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// What kind of problem.
    pub class: Class,
    /// From the score and the bands.
    pub severity: Severity,
    /// Impact score, 0 to 100 (see the module docs).
    pub score: f64,
    /// The callsite, or `None` for the whole process.
    pub location: Option<Location>,
    /// What `cost_share` is a share of.
    pub resource: Resource,
    /// Share of the run (in `resource`) the finding's cost represents.
    pub cost_share: f64,
    /// Share of that cost a typical fix gives back.
    pub recoverable: f64,
    /// How sure the evidence is, 0 to 1.
    pub confidence: f64,
    /// One sentence for people.
    pub summary: String,
    /// The figures that triggered it.
    pub evidence: Vec<Evidence>,
}

impl Finding {
    /// The expected share of the run (in `resource`) a fix gives back,
    /// `cost_share x recoverable`, before any doubt.
    pub fn expected_gain(&self) -> f64 {
        self.cost_share * self.recoverable
    }

    /// The callsite's name, or `process`.
    pub fn subject(&self) -> String {
        self.location
            .as_ref()
            .map_or_else(|| "process".to_owned(), ToString::to_string)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn finding(
    class: Class,
    location: Option<Location>,
    resource: Resource,
    cost_share: f64,
    recoverable: f64,
    confidence: f64,
    summary: String,
    evidence: Vec<Evidence>,
    config: &Config,
) -> Finding {
    let cost_share = clamp01(cost_share);
    let recoverable = clamp01(recoverable);
    let confidence = clamp01(confidence);
    let score = impact_score(resource, cost_share, recoverable, confidence, &config.gains);
    Finding {
        class,
        severity: Severity::from_score(score, &config.bands),
        score,
        location,
        resource,
        cost_share,
        recoverable,
        confidence,
        summary,
        evidence,
    }
}

pub(crate) fn clamp01(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The impact score, `100 x weight(resource) x cost_share x recoverable x
/// confidence`, clamped to 0..=100 and rounded to one decimal so that the
/// same dump always gives the same text.
///
/// ```
/// use perf_report::score::{impact_score, Resource};
/// let gains = perf_report::config::Gains::default();
/// // 60% of self time, halved, 95% sure: 28.5 points.
/// assert_eq!(impact_score(Resource::Time, 0.6, 0.5, 0.95, &gains), 28.5);
/// ```
pub fn impact_score(
    resource: Resource,
    cost_share: f64,
    recoverable: f64,
    confidence: f64,
    gains: &Gains,
) -> f64 {
    let weight = match resource {
        Resource::Time | Resource::WallTime => 1.0,
        Resource::Allocation => gains.allocation_weight,
        Resource::Memory => gains.memory_weight,
    };
    let raw = 100.0 * weight * cost_share * recoverable * confidence;
    if raw.is_finite() {
        (raw.clamp(0.0, 100.0) * 10.0).round() / 10.0
    } else {
        0.0
    }
}
