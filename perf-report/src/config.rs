//! The knobs of the analysis: each finding class's settings (what triggers
//! it, what a fix gives back, how sure the evidence is), how resources weigh
//! in the score, the severity bands, and the session-weight mix.
//!
//! Every figure here is documented in `docs/report-format.md`; the defaults
//! are the ones `perf-report` uses on the command line.

use serde::{Deserialize, Serialize};

pub use crate::analyze::ClassSettings;

/// Everything the analysis can be tuned with.
///
/// # Default values
///
/// | field | default |
/// |---|---|
/// | `classes` | each class's `Settings::default()` ([`ClassSettings`]) |
/// | `scoring` | [`Scoring::default()`] |
/// | `bands` | [`SeverityBands::default()`]: critical 20, high 10, medium 4 |
/// | `weights` | [`SessionWeights::default()`]: 40% CPU, 40% memory, 20% frequency |
///
/// It reads from JSON with every field optional, so a file need only hold
/// what it changes (`perf-report --config FILE`):
///
/// ```
/// let config: perf_report::Config =
///     serde_json::from_str(r#"{"classes": {"hot_spot": {"min_share": 0.2}}}"#).unwrap();
/// assert_eq!(config.classes.hot_spot.min_share, 0.2);
/// assert_eq!(config.bands.critical, 20.0);
/// ```
///
/// ```
/// let mut config = perf_report::Config::default();
/// config.classes.hot_spot.min_share = 0.05; // flag spans with 5% of self time
/// assert_eq!(config.weights.cpu, 0.4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Per finding class: when it fires, what a fix gives back, how sure
    /// the evidence is.
    pub classes: ClassSettings,
    /// How each resource weighs in the impact score, and the least score
    /// reported.
    pub scoring: Scoring,
    /// Impact score boundaries of the severities.
    pub bands: SeverityBands,
    /// The mix of the session-weight view.
    pub weights: SessionWeights,
}

/// How a unit of each resource counts against a unit of run time in the
/// impact score, and the least score worth reporting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Scoring {
    /// How much one unit of allocation share counts against one unit of run
    /// time. Allocation costs time (allocator calls, page faults, cache
    /// misses) and memory, but in most programs far less than the work it
    /// serves: on real runs a weight of 0.5 ranked a 2 KiB buffer per call
    /// above a span holding 70% of the CPU time, so the default is 0.25.
    /// It is times the process's CPU utilisation, as CPU time's weight is:
    /// a server idling at 0.03 cores (its clients waited on the network)
    /// read its page renderer's allocations high, first in the table.
    pub allocation_weight: f64,
    /// How much one unit of memory share counts against one unit of run
    /// time (default 1).
    pub memory_weight: f64,
    /// Findings scoring below this are dropped as noise (default 0.1).
    pub min_score: f64,
}

impl Scoring {
    /// The weight of `resource` in the impact score, for a process whose
    /// CPU utilisation (CPU time over wall time, at most 1) is `cpu_busy`.
    pub fn weight(&self, resource: crate::analyze::Resource, cpu_busy: f64) -> f64 {
        use crate::analyze::Resource;
        match resource {
            Resource::Time => cpu_busy.clamp(0.0, 1.0),
            Resource::WallTime => 1.0,
            // Allocator calls are CPU time: what saving them gives back is
            // discounted as the process's CPU is.
            Resource::Allocation => self.allocation_weight * cpu_busy.clamp(0.0, 1.0),
            Resource::Memory => self.memory_weight,
        }
    }
}

impl Default for Scoring {
    fn default() -> Self {
        Self {
            allocation_weight: 0.25,
            memory_weight: 1.0,
            min_score: 0.1,
        }
    }
}

/// Impact-score boundaries: a score at or above `critical` is critical, and
/// so on down; anything below `medium` is low.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SeverityBands {
    /// Lowest critical score (default 20: a fifth of the run recoverable).
    pub critical: f64,
    /// Lowest high score (default 10).
    pub high: f64,
    /// Lowest medium score (default 4).
    pub medium: f64,
}

impl Default for SeverityBands {
    fn default() -> Self {
        Self {
            critical: 20.0,
            high: 10.0,
            medium: 4.0,
        }
    }
}

/// The session-weight view's mix: each span's weight is
/// `100 x (cpu x cpu_share + memory x memory_share + frequency x call_share)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionWeights {
    /// Weight of the span's share of self time (default 0.4).
    pub cpu: f64,
    /// Weight of the span's share of self-allocated bytes (default 0.4).
    pub memory: f64,
    /// Weight of the span's share of calls (default 0.2).
    pub frequency: f64,
}

impl Default for SessionWeights {
    fn default() -> Self {
        Self {
            cpu: 0.4,
            memory: 0.4,
            frequency: 0.2,
        }
    }
}
