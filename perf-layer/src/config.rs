//! What a built layer runs with: the builder's settings, checked, as the
//! profiler and its background thread read them.

use std::path::PathBuf;
use std::time::Duration;

/// The memory pressure callbacks (a list of closures, which print as their
/// number).
#[derive(Clone, Default)]
pub(crate) struct Callbacks(pub(crate) Vec<crate::background::pressure::Callback>);

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} callbacks", self.0.len())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) output_path: PathBuf,
    pub(crate) sampler_interval: Option<Duration>,
    pub(crate) periodic_dump: Option<Duration>,
    pub(crate) histogram_sigfig: u8,
    pub(crate) histogram_max_ns: u64,
    pub(crate) max_callsites: usize,
    pub(crate) max_edges: usize,
    pub(crate) timeline_capacity: usize,
    pub(crate) heap_timeline_points: usize,
    pub(crate) max_alerts: usize,
    pub(crate) rss_alert_bytes: Option<u64>,
    pub(crate) cpu_alert_percent: Option<f64>,
    pub(crate) clock: quanta::Clock,
    pub(crate) calibrate_overhead: bool,
    pub(crate) dump_on_signal: bool,
    pub(crate) dump_on_exit: bool,
    pub(crate) cpu_time_threshold_ns: Option<u64>,
    /// Fields whose values split a callsite's spans into groups.
    pub(crate) group_by: Vec<String>,
    pub(crate) max_groups: usize,
    pub(crate) normalize_group_paths: bool,
    /// Threads may read their CPU time from a perf_event task clock
    /// (`record::task_clock`); off: system calls only.
    pub(crate) task_clock: bool,
    /// The background thread watches what waiting spans wait beside
    /// (`background::waits`), when the sampler runs.
    pub(crate) watch_waits: bool,
    /// The memory limit the pressure levels are fractions of; `None`: the
    /// cgroup's, else physical memory.
    pub(crate) memory_limit: Option<u64>,
    /// The warning, emergency and critical fractions of the limit.
    pub(crate) pressure_thresholds: [f64; 3],
    pub(crate) pressure_callbacks: Callbacks,
    /// Where the Prometheus endpoint listens; `None`: no endpoint.
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<std::net::SocketAddr>,
    /// The layer's own private layer (the overhead calibration): no output
    /// check, no end-of-process hooks.
    pub(crate) internal: bool,
}

impl Config {
    /// The background thread watches what waiting spans wait beside: with
    /// the sampler, unless turned off, where threads' CPU clocks can be read.
    pub(crate) fn watches_waits(&self) -> bool {
        self.watch_waits && self.sampler_interval.is_some() && cfg!(target_os = "linux")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output_path: PathBuf::from("dump.json"),
            sampler_interval: Some(Duration::from_millis(100)),
            periodic_dump: None,
            histogram_sigfig: 2,
            histogram_max_ns: 3_600_000_000_000,
            max_callsites: 4096,
            max_edges: 16384,
            timeline_capacity: 2048,
            heap_timeline_points: 64,
            max_alerts: 256,
            rss_alert_bytes: None,
            cpu_alert_percent: None,
            clock: quanta::Clock::new(),
            calibrate_overhead: true,
            dump_on_signal: false,
            dump_on_exit: false,
            cpu_time_threshold_ns: Some(100_000),
            task_clock: true,
            watch_waits: true,
            group_by: Vec::new(),
            max_groups: 32,
            normalize_group_paths: false,
            memory_limit: None,
            pressure_thresholds: [0.70, 0.85, 0.95],
            pressure_callbacks: Callbacks::default(),
            #[cfg(feature = "prometheus")]
            prometheus: None,
            internal: false,
        }
    }
}

/// Why [`PerfLayerBuilder::build`](crate::PerfLayerBuilder::build) refused a configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Histogram precision out of range.
    #[error("histogram precision must be 1 to 5 significant digits, got {0}")]
    Sigfig(u8),
    /// Histogram maximum too small to be useful.
    #[error("histogram maximum must be at least 1 µs, got {0} ns")]
    HistogramMax(u64),
    /// A capacity of zero.
    #[error("`{0}` must be at least 1")]
    ZeroCapacity(&'static str),
    /// An interval of zero (use the `without_*` method to turn it off).
    #[error("`{0}` must be longer than zero; to turn it off, leave it unset")]
    ZeroInterval(&'static str),
    /// A CPU threshold that is not a positive number.
    #[error("CPU alert threshold must be a positive percentage, got {0}")]
    CpuThreshold(f64),
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is expected instead.
        reason: &'static str,
    },
    /// The background thread could not be started.
    #[error("cannot start the perf-layer background thread: {0}")]
    Thread(String),
    /// Dumps could not be written where the configuration says.
    #[error(
        "cannot write dumps to {}: {reason}; create the directory or set another output_path (or PERF_LAYER_OUTPUT)",
        path.display()
    )]
    Output {
        /// The configured output path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The signal handler could not be installed.
    #[error("cannot install the perf-layer signal handler for dump_on_signal: {0}")]
    Signal(String),
    /// Memory pressure fractions out of order or out of range.
    #[error(
        "memory pressure thresholds must rise within 0 to 1 (warning < emergency < critical <= 1), got {0:?}"
    )]
    PressureThresholds([f64; 3]),
    /// A memory limit of zero.
    #[error("memory_limit must be at least 1 byte")]
    MemoryLimit,
    /// The Prometheus endpoint could not listen on its address.
    #[error(
        "the Prometheus endpoint cannot listen on {addr}: {reason}; pick a free port, or 127.0.0.1:0 for any"
    )]
    Prometheus {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it cannot.
        reason: String,
    },
}
