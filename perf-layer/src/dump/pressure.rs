//! Memory pressure levels as a dump records them.

use serde::{Deserialize, Serialize};

/// How close the process is to its memory limit.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PressureLevel {
    /// Below the warning fraction of the limit (70% by default).
    #[default]
    Normal,
    /// At or above the warning fraction: time to shed caches.
    Warning,
    /// At or above the emergency fraction (85%): stop taking on work.
    Emergency,
    /// At or above the critical fraction (95%): the next allocation may be
    /// the one the kernel kills the process for.
    Critical,
}

impl PressureLevel {
    /// Every level, lowest first.
    pub const ALL: [PressureLevel; 4] = [
        PressureLevel::Normal,
        PressureLevel::Warning,
        PressureLevel::Emergency,
        PressureLevel::Critical,
    ];

    /// The level's name, as in the dump: `normal`, `warning`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PressureLevel::Normal => "normal",
            PressureLevel::Warning => "warning",
            PressureLevel::Emergency => "emergency",
            PressureLevel::Critical => "critical",
        }
    }
}

impl std::fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().to_ascii_uppercase())
    }
}

/// Where the memory limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitSource {
    /// The cgroup v2 `memory.max` of the process's cgroup or an ancestor.
    CgroupV2,
    /// The cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// No container limit: the machine's physical memory.
    Physical,
    /// Set with the builder's `memory_limit`.
    Configured,
}

impl LimitSource {
    /// In words: `the container's` (cgroup), `the machine's`, `the configured`.
    pub fn describe(self) -> &'static str {
        match self {
            LimitSource::CgroupV2 | LimitSource::CgroupV1 => "the container's",
            LimitSource::Physical => "the machine's",
            LimitSource::Configured => "the configured",
        }
    }
}

/// One change of level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressureTransition {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// The level left.
    pub from: PressureLevel,
    /// The level entered.
    pub to: PressureLevel,
    /// RSS at that sample, bytes.
    pub rss_bytes: u64,
}

/// The process's memory against its limit over the run, from the sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPressure {
    /// The limit the levels are fractions of, bytes.
    pub limit_bytes: u64,
    /// Where it came from.
    pub limit_source: LimitSource,
    /// The warning, emergency and critical fractions of the limit.
    pub thresholds: [f64; 3],
    /// How far below a level's fraction RSS must fall to leave it, as a
    /// fraction of the limit (hysteresis).
    pub hysteresis: f64,
    /// The level at the dump.
    pub level: PressureLevel,
    /// The highest level reached.
    pub peak_level: PressureLevel,
    /// The highest RSS sampled, bytes.
    pub peak_rss_bytes: u64,
    /// Milliseconds spent at each level, `[normal, warning, emergency,
    /// critical]`, as the sampler saw it.
    pub time_in_level_ms: [u64; 4],
    /// The changes of level, oldest first, at most 256 (the oldest dropped).
    pub transitions: Vec<PressureTransition>,
    /// Changes of level dropped from `transitions`.
    pub transitions_dropped: u64,
    /// Changes of level not delivered to the callbacks because the callback
    /// thread was still busy with earlier ones.
    pub callback_events_dropped: u64,
}
