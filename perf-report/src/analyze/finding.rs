//! Findings and their impact score.
//!
//! ```text
//! score = 100 x weight(resource) x cost_share x recoverable x confidence
//! ```
//!
//! * `cost_share`: the share of the run the finding's cost represents, in its
//!   own [`Resource`] ([`Finding::share_of`] names the whole): self time over
//!   the process's CPU time, idle time over the run's wall time, allocated
//!   bytes over all allocated bytes, retained bytes over peak RSS.
//! * `recoverable`: the share of that cost a typical fix of the class gives
//!   back (each class's `recoverable` setting; Amdahl: a speed-up `S` gives
//!   back `1 - 1/S`).
//! * `confidence`: how sure the evidence is, 0 to 1 (sample counts, fit
//!   quality, how much of the measurement is instrumentation).
//! * `weight`: how much a unit of the resource counts against run time:
//!   wall time 1; CPU time the process's CPU utilisation (CPU time over wall
//!   time, at most 1: saving half the CPU of a process that computed a tenth
//!   of the time gives back a twentieth of the run); allocation
//!   [`Scoring::allocation_weight`]; memory [`Scoring::memory_weight`].
//!
//! So the score is the percentage of the run a fix is expected to give back,
//! discounted by doubt. [`SeverityBands`] map it to a [`Severity`].

use std::fmt;

use serde::Serialize;

use super::advice::Advice;
use super::detectors::Class;
use crate::callsite::{Location, Subject};
#[cfg(doc)]
use crate::config::Scoring;
use crate::config::SeverityBands;
use crate::label::labelled;
use crate::units::Unit;

labelled! {
    /// How bad a finding is, from its impact score and [`SeverityBands`].
    pub enum Severity {
        /// Impact score below the medium band (4).
        Low = "low",
        /// Impact score at or above `bands.medium` (4).
        Medium = "medium",
        /// Impact score at or above `bands.high` (10).
        High = "high",
        /// Impact score at or above `bands.critical` (20).
        Critical = "critical",
    }
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
}

labelled! {
    /// What a finding's cost is measured in.
    #[non_exhaustive]
    pub enum Resource {
        /// Share of the process's CPU time (of all self time in spans when
        /// the dump does not record the CPU time; of the spans' estimated
        /// CPU time when that is over 10% more than the process used).
        Time = "time",
        /// Share of the run's wall time.
        WallTime = "wall_time",
        /// Share of all self-allocated bytes.
        Allocation = "allocation",
        /// Share of peak memory.
        Memory = "memory",
    }
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
    /// The whole `cost_share` is a share of, in words: `the process's CPU
    /// time`, `all self time in spans`, `the run's wall time`, `all bytes
    /// allocated`, `peak memory`.
    pub share_of: String,
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
    /// The callsite's id in the analysed dump, for the rules that relate
    /// findings by call edge.
    #[serde(skip)]
    pub(crate) callsite_id: Option<u32>,
    /// What its plan step says, written by its detector from the figures
    /// it measured (the report shows it in the plan, not in the finding).
    #[serde(skip)]
    pub(crate) advice: Advice,
    /// The span that paces the run, for a wait beside it: its gain is in
    /// the calls it waits in, the run's only where they hold the pacer
    /// back, so the plan's total of the run's wall time leaves it out.
    #[serde(skip)]
    pub(crate) paced_by: Option<String>,
    /// The other callsites of a queue it heads, which it stands for: it
    /// supersedes their findings as its own callsite's.
    #[serde(skip)]
    pub(crate) queued_with: Vec<u32>,
}

impl Finding {
    /// The expected share of the run (in `resource`) a fix gives back,
    /// `cost_share x recoverable`, before any doubt.
    pub fn expected_gain(&self) -> f64 {
        self.cost_share * self.recoverable
    }

    /// What the finding is about: its callsite, or the process.
    pub fn subject(&self) -> Subject<'_> {
        Subject(self.location.as_ref())
    }
}

/// A finding before it is scored: what a detector measured.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) class: Class,
    /// The callsite's id and location, `None` for the process.
    pub(crate) callsite: Option<(u32, Location)>,
    pub(crate) resource: Resource,
    pub(crate) cost_share: f64,
    pub(crate) recoverable: f64,
    pub(crate) confidence: f64,
    pub(crate) summary: String,
    pub(crate) evidence: Vec<Evidence>,
}

impl Draft {
    /// Scores the draft: clamps its shares to 0..=1 and applies the score
    /// formula, with the resource's `weight` and `share_of` as the context
    /// gives them, and the severity bands; then `advise` writes the plan
    /// step's advice from the scored finding (its gain is of the clamped
    /// shares).
    pub(crate) fn score(
        self,
        weight: f64,
        share_of: &str,
        bands: &SeverityBands,
        advise: impl FnOnce(&Finding) -> Advice,
    ) -> Finding {
        let cost_share = clamp01(self.cost_share);
        let recoverable = clamp01(self.recoverable);
        let confidence = clamp01(self.confidence);
        let score = impact_score(weight, cost_share, recoverable, confidence);
        let (callsite_id, location) = self.callsite.unzip();
        let mut finding = Finding {
            class: self.class,
            severity: Severity::from_score(score, bands),
            score,
            location,
            resource: self.resource,
            share_of: share_of.to_owned(),
            cost_share,
            recoverable,
            confidence,
            summary: self.summary,
            evidence: self.evidence,
            callsite_id,
            advice: Advice::PENDING,
            paced_by: None,
            queued_with: Vec::new(),
        };
        finding.advice = advise(&finding);
        finding
    }
}

pub(crate) fn clamp01(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The impact score, `100 x weight x cost_share x recoverable x
/// confidence`, clamped to 0..=100 and rounded to one decimal so that the
/// same dump always gives the same text. `weight` is the resource's
/// ([`Scoring::weight`]).
///
/// ```
/// use perf_report::analyze::impact_score;
/// // 60% of the CPU time, halved, 95% sure, in a process busy all the time: 28.5 points.
/// assert_eq!(impact_score(1.0, 0.6, 0.5, 0.95), 28.5);
/// ```
pub fn impact_score(weight: f64, cost_share: f64, recoverable: f64, confidence: f64) -> f64 {
    let raw = 100.0 * weight * cost_share * recoverable * confidence;
    if raw.is_finite() {
        (raw.clamp(0.0, 100.0) * 10.0).round() / 10.0
    } else {
        0.0
    }
}
