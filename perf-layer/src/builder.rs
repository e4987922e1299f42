//! Configuration of the layer, validated once in [`PerfLayerBuilder::build`].
//!
//! Over 400 lines, most of them the documentation of each option, which is
//! the builder's public manual.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{BuildError, Config};
use crate::handle::PerfHandle;
use crate::layer::PerfLayer;

/// Environment variable: where dumps are written.
pub const ENV_OUTPUT: &str = "PERF_LAYER_OUTPUT";
/// Environment variable: sampler interval in milliseconds; `0` turns it off.
pub const ENV_SAMPLE_MS: &str = "PERF_LAYER_SAMPLE_MS";
/// Environment variable: periodic dump interval in milliseconds; `0` turns it off.
pub const ENV_DUMP_EVERY_MS: &str = "PERF_LAYER_DUMP_EVERY_MS";
/// Environment variable: the Prometheus endpoint's address (`HOST:PORT`, or
/// a bare port for 127.0.0.1), with the `prometheus` feature.
#[cfg(feature = "prometheus")]
pub const ENV_PROMETHEUS: &str = "PERF_LAYER_PROMETHEUS";
/// Environment variable naming the fields to group spans by, comma-separated
/// ([`PerfLayerBuilder::group_by`]).
pub const ENV_GROUP_BY: &str = "PERF_LAYER_GROUP_BY";

/// Builds a [`PerfLayer`] and its [`PerfHandle`].
///
/// # Default values
///
/// | setting | default | environment ([`from_env`](Self::from_env)) |
/// |---|---|---|
/// | [`output_path`](Self::output_path) | `dump.json` | `PERF_LAYER_OUTPUT` |
/// | [`dump_on_signal`](Self::dump_on_signal) | off | |
/// | [`dump_on_exit`](Self::dump_on_exit) | off | |
/// | [`cpu_time_threshold`](Self::cpu_time_threshold) / [`without_cpu_time`](Self::without_cpu_time) | 100 µs (Linux) | |
/// | [`sampler_interval`](Self::sampler_interval) | 100 ms | `PERF_LAYER_SAMPLE_MS` (`0` = off) |
/// | [`periodic_dump`](Self::periodic_dump) | off | `PERF_LAYER_DUMP_EVERY_MS` (`0` = off) |
/// | [`group_by`](Self::group_by) / [`max_groups`](Self::max_groups) | none / 32 | `PERF_LAYER_GROUP_BY` (comma-separated fields) |
/// | [`histogram_sigfig`](Self::histogram_sigfig) | 2 (1% relative error) | |
/// | [`histogram_max`](Self::histogram_max) | 1 hour | |
/// | [`max_callsites`](Self::max_callsites) | 4096 | |
/// | [`max_edges`](Self::max_edges) | 16384 | |
/// | [`timeline_capacity`](Self::timeline_capacity) | 2048 samples | |
/// | [`heap_timeline_points`](Self::heap_timeline_points) | 64 points per callsite | |
/// | [`max_alerts`](Self::max_alerts) | 256 | |
/// | [`rss_alert`](Self::rss_alert), [`cpu_alert`](Self::cpu_alert) | off | |
/// | [`memory_limit`](Self::memory_limit) | the cgroup's limit, else physical memory | |
/// | [`memory_pressure_thresholds`](Self::memory_pressure_thresholds) | 70%, 85%, 95% of the limit | |
/// | [`on_memory_pressure`](Self::on_memory_pressure) | none | |
/// | `prometheus` (feature `prometheus`) | off | `PERF_LAYER_PROMETHEUS` (`HOST:PORT`, or a port on 127.0.0.1) |
/// | [`clock`](Self::clock) | `quanta::Clock::new()` (TSC where available) | |
///
/// Why two significant digits: a histogram of three digits is about 220 KiB,
/// and the layer keeps four per callsite per thread; two digits (1% error,
/// far below run-to-run noise) keep that near 36 KiB.
///
/// # Memory bound
///
/// About 4 × 36 KiB (two digits, one hour maximum) for each callsite on each
/// thread that closes its spans, so at most `max_callsites` × threads × 147
/// KiB, plus the timeline (`timeline_capacity` × 40 bytes), the alerts and the
/// edges (`max_edges` entries). A thread that exits leaves its shard for the
/// next thread to reuse, so "threads" is the most that ever ran at once.
/// One significant digit (10% error) cuts a histogram to about 5 KiB.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tracing_subscriber::prelude::*;
///
/// let (layer, handle) = perf_layer::PerfLayer::builder()
///     .output_path(std::env::temp_dir().join("builder-doc.json"))
///     .sampler_interval(Duration::from_millis(50))
///     .build()
///     .expect("valid configuration");
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info_span!("work").in_scope(|| {});
/// });
/// assert_eq!(handle.snapshot().callsites[0].calls, 1);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct PerfLayerBuilder {
    pub(crate) config: Config,
    env_error: Option<BuildError>,
}

impl PerfLayer {
    /// A builder with the default configuration.
    pub fn builder() -> PerfLayerBuilder {
        PerfLayerBuilder::new()
    }
}

impl Default for PerfLayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfLayerBuilder {
    /// A builder with the default values in the table above.
    pub fn new() -> Self {
        Self {
            config: Config::default(),
            env_error: None,
        }
    }

    /// Reads `PERF_LAYER_OUTPUT`, `PERF_LAYER_SAMPLE_MS`,
    /// `PERF_LAYER_DUMP_EVERY_MS` and `PERF_LAYER_GROUP_BY`, where set. Settings made after this call
    /// override the environment; an invalid value makes `build()` fail.
    pub fn from_env(mut self) -> Self {
        if let Some(path) = std::env::var_os(ENV_OUTPUT) {
            if path.is_empty() {
                self.env_error.get_or_insert(BuildError::Env {
                    var: ENV_OUTPUT,
                    value: String::new(),
                    reason: "expected the path of the dump file; unset it to write dump.json",
                });
            }
            self.config.output_path = PathBuf::from(path);
        }
        for (var, slot) in [
            (ENV_SAMPLE_MS, &mut self.config.sampler_interval),
            (ENV_DUMP_EVERY_MS, &mut self.config.periodic_dump),
        ] {
            let Ok(value) = std::env::var(var) else {
                continue;
            };
            match value.trim().parse::<u64>() {
                Ok(0) => *slot = None,
                Ok(ms) => *slot = Some(Duration::from_millis(ms)),
                Err(_) => {
                    self.env_error.get_or_insert(BuildError::Env {
                        var,
                        value,
                        reason: "expected a whole number of milliseconds (0 turns it off)",
                    });
                }
            }
        }
        if let Ok(value) = std::env::var(ENV_GROUP_BY) {
            self.config.group_by = value
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
        }
        #[cfg(feature = "prometheus")]
        if let Ok(value) = std::env::var(ENV_PROMETHEUS) {
            match parse_prometheus_addr(&value) {
                Some(addr) => self.config.prometheus = Some(addr),
                None => {
                    self.env_error.get_or_insert(BuildError::Env {
                        var: ENV_PROMETHEUS,
                        value,
                        reason: "expected HOST:PORT (such as 127.0.0.1:9898) or a port for 127.0.0.1",
                    });
                }
            }
        }
        self
    }

    /// Serves the recorded figures in the Prometheus text format at
    /// `http://ADDR/metrics` (feature `prometheus`), from a thread of its
    /// own; scrapes never stall the span path. Give a loopback address
    /// unless other hosts must scrape it: the figures name the program's
    /// spans. Port 0 picks a free port ([`PerfHandle::prometheus_addr`]
    /// says which). [`build`](Self::build) fails if it cannot listen.
    ///
    /// ```
    /// let (_layer, handle) = perf_layer::PerfLayer::builder()
    ///     .prometheus(([127, 0, 0, 1], 0).into())
    ///     .without_sampler()
    ///     .build()
    ///     .unwrap();
    /// assert!(handle.prometheus_addr().is_some_and(|a| a.ip().is_loopback()));
    /// ```
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, addr: std::net::SocketAddr) -> Self {
        self.config.prometheus = Some(addr);
        self
    }

    /// Where [`PerfHandle::write_dump`] and the drop guard write the dump.
    /// [`build`](Self::build) checks that its directory exists and takes a
    /// new file, so a bad path fails at start, not after the workload.
    pub fn output_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.output_path = path.into();
        self
    }

    /// Writes the dump when the process receives SIGTERM or SIGINT (Ctrl-C),
    /// then lets the signal take its usual course: the process ends as it
    /// would have, killed by that signal. A second signal while the dump is
    /// being written ends the process at once.
    ///
    /// For a long-running service stopped with `kill`, `systemctl stop`,
    /// Kubernetes or Ctrl-C, which otherwise leaves no dump. A program that
    /// handles these signals itself for a graceful shutdown (with
    /// `tokio::signal`, say) should not use this, which would end it before
    /// its shutdown runs: keep [`PerfHandle::dump_on_drop`]'s guard to the
    /// end of `main` instead, or call [`PerfHandle::write_dump`] in the
    /// shutdown path. The dump is written from a thread of the layer's, not
    /// inside the signal handler. Unix only; elsewhere it does nothing.
    pub fn dump_on_signal(mut self) -> Self {
        self.config.dump_on_signal = true;
        self
    }

    /// Times entered intervals on the CPU (the thread's CPU time and its
    /// voluntary and involuntary context switches, read at enter and exit)
    /// where a callsite's intervals on a thread last at least `mean_busy` on
    /// average (a moving mean weighting the newest 1/64, so a slow first call
    /// is forgotten within a few hundred; one interval counts for at most 16 times
    /// the mean, so a preempted poll does not make its callsite long). The
    /// decision is per interval, not per span: an async span that lives for a
    /// whole connection is entered at every poll, and its polls are what pay
    /// for the reads. A callsite's first interval is timed, so a span
    /// entered once (a `main`, a one-off job) is (on a thread after the
    /// first, as long as the first thread's first interval was); of the shorter
    /// intervals, one in 512 is timed, a uniform sample the report scales to
    /// the others and marks as estimated (`~` in the on-CPU column).
    /// The reads are three system calls per interval (four when it was off
    /// the CPU), 0.7 to 1.1 µs in all on the machines here
    /// (`benches/cpu_time.rs`): at the default of 100 µs, about 1% of such
    /// an interval (the budget is 2%; 50 µs would leave little margin
    /// where system calls cost more); shorter ones pay a table look-up and
    /// a mean update, and a 512th of the reads. It tells computing from
    /// blocking and from being preempted (see the `cpu` figures of the
    /// dump). Linux only; elsewhere the figures are absent.
    pub fn cpu_time_threshold(mut self, mean_busy: Duration) -> Self {
        self.config.cpu_time_threshold_ns =
            Some(u64::try_from(mean_busy.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// Reads CPU time with system calls only, never from a perf_event task
    /// clock, for the whole process from this layer's build on (the clock
    /// is per thread, shared by every layer).
    ///
    /// By default a thread that times more intervals than it makes context
    /// switches opens `perf_event_open`'s software task-clock event for
    /// itself and maps its first page: the page tells whether the thread
    /// was switched out since its last reading, and while it was not, its
    /// CPU time is the last reading plus the wall-clock time since, with no
    /// system call (tens of nanoseconds, not a microsecond). Its intervals
    /// are then timed from 2 µs, not from `cpu_time_threshold`. Where the
    /// kernel refuses the event (`perf_event_paranoid`, a seccomp profile
    /// such as Docker's default) the layer says so once on standard error,
    /// records it in the dump (`config.cpu_time_source`) and uses the
    /// system calls.
    pub fn without_task_clock(mut self) -> Self {
        self.config.task_clock = false;
        self
    }

    /// Does not watch what waiting spans wait beside: no callsite gets
    /// `watched_waits` in the dump, and threads publish nothing on the span
    /// path.
    ///
    /// By default, with the sampler on, each thread publishes its innermost
    /// callsite on every enter and exit (one relaxed atomic store), and the
    /// background thread probes every thread every 20 ms: its published
    /// callsite and CPU clock, twice 250 µs apart, with the rest of the
    /// process's CPU time. perf-report tells a span that waits for work done
    /// elsewhere (a pool it joined, a lock's holder computing) from an idle
    /// wait with it. The probes cost the background thread about half a
    /// percent of one core; turn them off where that matters more than the
    /// finding.
    ///
    /// ```
    /// let layer = perf_layer::PerfLayer::builder().without_wait_watch().build();
    /// # drop(layer);
    /// ```
    pub fn without_wait_watch(mut self) -> Self {
        self.config.watch_waits = false;
        self
    }

    /// Splits each callsite's spans into groups by the values of these
    /// fields (at most four), so that tower-http's one `request` callsite
    /// becomes a row per route: `group_by(["http.route", "method"])`. Each
    /// group is in the dump beside its callsite's totals
    /// (`callsites[].groups`), and perf-report lists and ranks them as
    /// their own rows.
    ///
    /// Only the named fields' values are ever read or stored; a span whose
    /// callsite has none of them pays a cached check. Values are read from
    /// the span's attributes and from later `Span::record` calls, cut at
    /// 256 bytes, with control characters shown as `?`. Each callsite has
    /// at most [`max_groups`](Self::max_groups) groups (32 by default);
    /// spans past that are counted in one `other` group. Also set by
    /// `PERF_LAYER_GROUP_BY` (comma-separated) in
    /// [`from_env`](Self::from_env).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (layer, handle) = perf_layer::PerfLayer::builder()
    ///     .without_sampler()
    ///     .group_by(["route"])
    ///     .build()
    ///     .unwrap();
    /// let _default = tracing_subscriber::registry().with(layer).set_default();
    /// for route in ["/export", "/health", "/export"] {
    ///     tracing::info_span!("request", route).in_scope(|| ());
    /// }
    /// let dump = handle.snapshot();
    /// let request = &dump.callsites[0];
    /// assert_eq!(request.calls, 3);
    /// let export = request.groups.iter().find(|g| g.fields[0].value == "/export").unwrap();
    /// assert_eq!(export.stats.calls, 2);
    /// ```
    pub fn group_by<I, F>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = F>,
        F: Into<String>,
    {
        self.config.group_by = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The most groups per callsite under [`group_by`](Self::group_by)
    /// (32 by default); spans past them go to one `other` group.
    pub fn max_groups(mut self, max: usize) -> Self {
        self.config.max_groups = max.max(1);
        self
    }

    /// Reads grouped values as paths and replaces their variable segments
    /// with `{}` (all digits, a UUID, 16 or more hex digits; the query
    /// string dropped), so that a `uri` field can be grouped by when no
    /// route field exists: `/users/42` and `/users/7` are one group,
    /// `/users/{}`.
    pub fn normalize_group_paths(mut self) -> Self {
        self.config.normalize_group_paths = true;
        self
    }

    /// Never reads CPU time on the span path: no on-CPU or off-CPU figures.
    pub fn without_cpu_time(mut self) -> Self {
        self.config.cpu_time_threshold_ns = None;
        self
    }

    /// Writes the dump when the process exits through
    /// [`std::process::exit`] or by returning from `main`, unless the
    /// guard of [`PerfHandle::dump_on_drop`] already wrote it. For programs
    /// that end with `exit` (which runs no destructors, so no guard), or
    /// that install the subscriber globally and keep no guard.
    ///
    /// Without it, a process that recorded spans and ends without any dump
    /// or snapshot taken says so on standard error.
    pub fn dump_on_exit(mut self) -> Self {
        self.config.dump_on_exit = true;
        self
    }

    /// How often the background sampler reads process RSS, virtual memory,
    /// CPU and threads. It never runs on the span path.
    pub fn sampler_interval(mut self, interval: Duration) -> Self {
        self.config.sampler_interval = Some(interval);
        self
    }

    /// Turns the process sampler off: no timeline, no RSS deltas, no alerts.
    pub fn without_sampler(mut self) -> Self {
        self.config.sampler_interval = None;
        self
    }

    /// Also writes the dump to the output path every `interval`, from a
    /// background thread, so a crash loses at most one interval.
    pub fn periodic_dump(mut self, interval: Duration) -> Self {
        self.config.periodic_dump = Some(interval);
        self
    }

    /// Significant decimal digits of every histogram, 1 to 5.
    pub fn histogram_sigfig(mut self, sigfig: u8) -> Self {
        self.config.histogram_sigfig = sigfig;
        self
    }

    /// The largest duration a histogram tracks exactly; longer ones are
    /// recorded as this value and counted as clamped (sums stay exact).
    pub fn histogram_max(mut self, max: Duration) -> Self {
        self.config.histogram_max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// The most distinct span callsites recorded; spans of further callsites
    /// are counted in `callsites_dropped_spans`.
    pub fn max_callsites(mut self, max: usize) -> Self {
        self.config.max_callsites = max;
        self
    }

    /// The most distinct parent-to-child edges recorded; further edge
    /// observations are counted in `edges_dropped`.
    pub fn max_edges(mut self, max: usize) -> Self {
        self.config.max_edges = max;
        self
    }

    /// The most timeline samples kept. When full, every other sample is
    /// dropped and the spacing doubles, so the timeline always spans the run.
    pub fn timeline_capacity(mut self, samples: usize) -> Self {
        self.config.timeline_capacity = samples;
        self
    }

    /// The most points of each callsite's live-bytes timeline (with the
    /// counting allocator and the sampler). When full, every other point is
    /// dropped and the spacing doubles, so each timeline spans the run: at
    /// most `points x 8` bytes per callsite that holds memory.
    pub fn heap_timeline_points(mut self, points: usize) -> Self {
        self.config.heap_timeline_points = points;
        self
    }

    /// The most alerts kept (the newest); older ones are counted as dropped.
    pub fn max_alerts(mut self, max: usize) -> Self {
        self.config.max_alerts = max;
        self
    }

    /// Raises an alert when process RSS rises above `bytes`.
    pub fn rss_alert(mut self, bytes: u64) -> Self {
        self.config.rss_alert_bytes = Some(bytes);
        self
    }

    /// The memory limit the pressure levels are fractions of, bytes. By
    /// default the process's cgroup limit (v2 `memory.max` of its cgroup or
    /// an ancestor, else v1), else the machine's physical memory; the limit
    /// used is in the dump (`memory_pressure`).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit = Some(bytes);
        self
    }

    /// The fractions of the memory limit at which the pressure level becomes
    /// WARNING, EMERGENCY and CRITICAL (default 0.70, 0.85, 0.95). A level
    /// is left once RSS falls 2% of the limit below its fraction.
    pub fn memory_pressure_thresholds(
        mut self,
        warning: f64,
        emergency: f64,
        critical: f64,
    ) -> Self {
        self.config.pressure_thresholds = [warning, emergency, critical];
        self
    }

    /// Calls `callback` at every change of memory pressure level (with the
    /// sampler on), so the program can shed caches at WARNING or stop taking
    /// on work at EMERGENCY. Callbacks run on a thread of their own, one
    /// after another: one that blocks delays only the next ones (changes
    /// that arrive meanwhile, beyond a queue of 16, are counted and
    /// dropped), one that panics is reported once; neither stalls the
    /// sampler.
    ///
    /// ```
    /// use perf_layer::{MemoryPressureEvent, PerfLayer, PressureLevel};
    /// let builder = PerfLayer::builder().on_memory_pressure(|e: MemoryPressureEvent| {
    ///     if e.level >= PressureLevel::Warning {
    ///         // drop caches here
    ///     }
    /// });
    /// # drop(builder);
    /// ```
    pub fn on_memory_pressure(
        mut self,
        callback: impl Fn(crate::MemoryPressureEvent) + Send + Sync + 'static,
    ) -> Self {
        self.config
            .pressure_callbacks
            .0
            .push(std::sync::Arc::new(callback));
        self
    }

    /// Raises an alert when process CPU rises above `percent` of one core.
    pub fn cpu_alert(mut self, percent: f64) -> Self {
        self.config.cpu_alert_percent = Some(percent);
        self
    }

    /// The clock spans are timed with; `quanta::Clock::mock()` makes timings
    /// exact in tests.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Skips the in-process measurement of the layer's own per-span cost;
    /// the dump's overhead estimate is then zero.
    pub fn without_overhead_calibration(mut self) -> Self {
        self.config.calibrate_overhead = false;
        self
    }

    /// Validates the configuration, starts the background sampler (if any)
    /// and returns the layer with its handle.
    ///
    /// # Errors
    /// [`BuildError`] naming the setting that is out of range.
    pub fn build(self) -> Result<(PerfLayer, PerfHandle), BuildError> {
        if let Some(e) = self.env_error {
            return Err(e);
        }
        let c = &self.config;
        if !(1..=5).contains(&c.histogram_sigfig) {
            return Err(BuildError::Sigfig(c.histogram_sigfig));
        }
        if c.histogram_max_ns < 1_000 {
            return Err(BuildError::HistogramMax(c.histogram_max_ns));
        }
        for (name, value) in [
            ("max_callsites", c.max_callsites),
            ("max_edges", c.max_edges),
            ("timeline_capacity", c.timeline_capacity),
            ("heap_timeline_points", c.heap_timeline_points),
            ("max_alerts", c.max_alerts),
        ] {
            if value == 0 {
                return Err(BuildError::ZeroCapacity(name));
            }
        }
        for (name, value) in [
            ("sampler_interval", c.sampler_interval),
            ("periodic_dump", c.periodic_dump),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(BuildError::ZeroInterval(name));
            }
        }
        if let Some(p) = c.cpu_alert_percent {
            if !(p.is_finite() && p > 0.0) {
                return Err(BuildError::CpuThreshold(p));
            }
        }
        let [w, e, cr] = c.pressure_thresholds;
        if !(w.is_finite()
            && e.is_finite()
            && cr.is_finite()
            && 0.0 < w
            && w < e
            && e < cr
            && cr <= 1.0)
        {
            return Err(BuildError::PressureThresholds(c.pressure_thresholds));
        }
        if c.memory_limit == Some(0) {
            return Err(BuildError::MemoryLimit);
        }
        if !c.internal {
            check_output(&c.output_path)?;
        }
        #[cfg(feature = "prometheus")]
        let endpoint = match c.prometheus {
            Some(addr) => Some(
                crate::prometheus::Endpoint::bind(addr)
                    .map_err(|reason| BuildError::Prometheus { addr, reason })?,
            ),
            None => None,
        };
        let shared = crate::background::start(self.config)?;
        #[cfg(feature = "prometheus")]
        if let Some(endpoint) = endpoint {
            let addr = endpoint.addr();
            endpoint
                .start(&shared)
                .map_err(|reason| BuildError::Prometheus { addr, reason })?;
            let _ = shared.prometheus_addr.set(addr);
        }
        Ok((PerfLayer::new(shared.clone()), PerfHandle::new(shared)))
    }
}

/// Checks that dumps can be written to `path`: it names a file, not a
/// directory, in a directory that exists and takes a new file (a probe file
/// is created next to it and removed).
fn check_output(path: &std::path::Path) -> Result<(), BuildError> {
    let refuse = |reason: String| BuildError::Output {
        path: path.to_owned(),
        reason,
    };
    let Some(name) = path.file_name() else {
        return Err(refuse("the path names no file".to_owned()));
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".to_owned()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(refuse(format!("{} is not a directory", dir.display()))),
        Err(e) => return Err(refuse(format!("directory {}: {e}", dir.display()))),
    }
    // Unique within the process too: layers may be built on several threads.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut probe_name = name.to_owned();
    probe_name.push(format!(
        ".probe{}.{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let probe = dir.join(probe_name);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // Left behind by a crashed process that had this id: the directory
        // takes files.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(refuse(format!(
            "cannot create a file in {}: {e}",
            dir.display()
        ))),
    }
}

/// `HOST:PORT`, or a bare port on 127.0.0.1.
#[cfg(feature = "prometheus")]
fn parse_prometheus_addr(value: &str) -> Option<std::net::SocketAddr> {
    let v = value.trim();
    if let Ok(port) = v.parse::<u16>() {
        return Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    v.parse().ok()
}
