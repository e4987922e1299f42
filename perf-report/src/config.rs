//! The knobs of the analysis: thresholds that trigger findings, the expected
//! gains that turn a measured share into a recoverable one, the severity
//! bands, and the session-weight mix.
//!
//! Every figure here is documented in `docs/report-format.md`; the defaults
//! are the ones `perf-report` uses on the command line.

use serde::{Deserialize, Serialize};

/// Everything the analysis can be tuned with.
///
/// # Default values
///
/// | field | default |
/// |---|---|
/// | `thresholds` | [`Thresholds::default()`] |
/// | `gains` | [`Gains::default()`] |
/// | `bands` | [`SeverityBands::default()`] |
/// | `weights` | [`SessionWeights::default()`]: 40% CPU, 40% memory, 20% frequency |
///
/// It reads from JSON with every field optional, so a file need only hold
/// what it changes (`perf-report --config FILE`):
///
/// ```
/// let config: perf_report::Config =
///     serde_json::from_str(r#"{"thresholds": {"hot_spot_min_share": 0.2}}"#).unwrap();
/// assert_eq!(config.thresholds.hot_spot_min_share, 0.2);
/// assert_eq!(config.bands.critical, 20.0);
/// ```
///
/// ```
/// let mut config = perf_report::Config::default();
/// config.thresholds.hot_spot_min_share = 0.05; // flag spans with 5% of self time
/// assert_eq!(config.weights.cpu, 0.4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// When a callsite or the process triggers a finding.
    pub thresholds: Thresholds,
    /// What share of a finding's measured cost a typical fix gives back.
    pub gains: Gains,
    /// Impact score boundaries of the severities.
    pub bands: SeverityBands,
    /// The mix of the session-weight view.
    pub weights: SessionWeights,
}

/// When a callsite or the process triggers a finding.
///
/// Shares are fractions (0 to 1) of the run; times are nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Thresholds {
    /// Hot spot: the callsite's self time is at least this share of all self time.
    pub hot_spot_min_share: f64,
    /// Tail latency: at least this many calls, so that p99 means something.
    pub tail_min_calls: u64,
    /// Tail latency: busy p99 at least this many times busy p50...
    pub tail_p99_over_p50: f64,
    /// ...or busy max at least this many times busy p50.
    pub tail_max_over_p50: f64,
    /// Tail latency: the tail's excess time is at least this share of the run.
    pub tail_min_share: f64,
    /// Hot loop: at least this many calls...
    pub hot_loop_min_calls: u64,
    /// ...each costing at most this much self time on average (ns)...
    pub hot_loop_max_mean_self_ns: f64,
    /// ...adding up to at least this share of all self time.
    pub hot_loop_min_share: f64,
    /// Allocation-heavy: at least this many self-allocated bytes per call...
    pub alloc_min_bytes_per_call: f64,
    /// ...or at least this many self allocations per call...
    pub alloc_min_allocs_per_call: f64,
    /// ...together with at least this share of all self-allocated bytes.
    pub alloc_min_share: f64,
    /// Allocation-heavy regardless of per-call figures: this share of all
    /// self-allocated bytes.
    pub alloc_dominant_share: f64,
    /// Leak suspect (callsite): at least this share of its calls closed
    /// holding more than they freed...
    pub leak_min_retaining_ratio: f64,
    /// ...and it kept at least this many bytes in total.
    pub leak_min_net_bytes: u64,
    /// Leak suspect (process): at least this many timeline samples for a fit.
    pub leak_min_samples: usize,
    /// Leak suspect (process): the least-squares fit explains at least this
    /// much of the RSS variance (R², 0 to 1)...
    pub leak_min_r2: f64,
    /// ...and the fitted growth over the timeline is at least this share of
    /// the first sample's RSS...
    pub leak_min_growth_share: f64,
    /// ...and at least this many bytes.
    pub leak_min_growth_bytes: u64,
    /// Waiting, not working: idle time is at least this share of wall time...
    pub wait_min_idle_ratio: f64,
    /// ...and at least this share of the run's wall time.
    pub wait_min_share: f64,
    /// Process CPU saturation: a sample at or above this CPU percentage (of
    /// one core) counts as saturated. Set it to cores x 90 for a service that
    /// is meant to use several cores.
    pub cpu_saturated_percent: f64,
    /// Process CPU saturation: at least this share of samples saturated.
    pub cpu_min_saturated_share: f64,
    /// Process memory spike: peak RSS at least this many times the median...
    pub rss_spike_over_median: f64,
    /// ...and at least this many bytes above it.
    pub rss_spike_min_bytes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            hot_spot_min_share: 0.10,
            tail_min_calls: 20,
            tail_p99_over_p50: 5.0,
            tail_max_over_p50: 20.0,
            tail_min_share: 0.01,
            hot_loop_min_calls: 10_000,
            hot_loop_max_mean_self_ns: 5_000.0,
            hot_loop_min_share: 0.02,
            alloc_min_bytes_per_call: 64.0 * 1024.0,
            alloc_min_allocs_per_call: 64.0,
            alloc_min_share: 0.05,
            alloc_dominant_share: 0.25,
            leak_min_retaining_ratio: 0.5,
            leak_min_net_bytes: 1024 * 1024,
            leak_min_samples: 8,
            leak_min_r2: 0.8,
            leak_min_growth_share: 0.10,
            leak_min_growth_bytes: 8 * 1024 * 1024,
            wait_min_idle_ratio: 0.5,
            wait_min_share: 0.05,
            cpu_saturated_percent: 90.0,
            cpu_min_saturated_share: 0.25,
            rss_spike_over_median: 2.0,
            rss_spike_min_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The share of a finding's measured cost that a typical fix of its class
/// gives back (0 to 1), and how much a unit of each resource counts against
/// a unit of run time.
///
/// A fix that makes a part `S` times faster gives back `1 - 1/S` of that
/// part (Amdahl's law): halving a span's self time gives back 0.5 of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Gains {
    /// Hot spot: the fix halves the self time (speed-up 2).
    pub hot_spot: f64,
    /// Tail latency: the fix removes this share of the tail's excess time.
    pub tail_latency: f64,
    /// Hot loop: batching halves the per-call cost (speed-up 2).
    pub hot_loop: f64,
    /// Allocation-heavy: buffer reuse / preallocation removes this share of
    /// the bytes allocated.
    pub allocation_heavy: f64,
    /// Leak suspect: bounding the cache / breaking the cycle returns this
    /// share of the retained memory.
    pub leak_suspect: f64,
    /// Waiting: overlapping or unblocking removes this share of idle time.
    pub waiting: f64,
    /// Process level: this share of the saturated or spiking part.
    pub process: f64,
    /// How much one unit of allocation share counts against one unit of run
    /// time in the score. Allocation costs time (allocator calls, page
    /// faults, cache misses) and memory, but in most programs far less than
    /// the work it serves: on real runs a weight of 0.5 ranked a 2 KiB
    /// buffer per call above a span holding 70% of the CPU time, so the
    /// default is 0.25.
    pub allocation_weight: f64,
    /// How much one unit of memory share counts against one unit of run time.
    pub memory_weight: f64,
}

impl Default for Gains {
    fn default() -> Self {
        Self {
            hot_spot: 0.5,
            tail_latency: 0.8,
            hot_loop: 0.5,
            allocation_heavy: 0.5,
            leak_suspect: 0.9,
            waiting: 0.5,
            process: 0.25,
            allocation_weight: 0.25,
            memory_weight: 1.0,
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
