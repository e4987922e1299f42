//! The versioned dump format, shared by `perf-layer` (which writes it) and
//! `perf-report` (which reads it). It builds without the recorder:
//! `perf-layer = { default-features = false }` gives this module alone, with
//! none of the recorder's dependencies (tracing-subscriber, dashmap, quanta,
//! sysinfo).
//!
//! - this file: the schema;
//! - `read`: parsing a dump, its version checked first ([`Dump::from_slice`]);
//! - [`histogram`]: one whole histogram as stored ([`HistogramDump`]) and its
//!   codec, HdrHistogram V2 in base64;
//! - `fields`: which fields are histograms ([`CallsiteStats::HISTOGRAMS`],
//!   [`CallsiteStats::histograms`]), for everything that walks them;
//! - `v2`: walking a V2 encoding without building the histogram, and the
//!   bucket layout that the recorder's flat histograms share;
//! - `write`: atomic writes ([`Dump::write_atomic`]).
//!
//! Every field is documented in `docs/dump-format.md`; units are in the field
//! names (`_ns`, `_bytes`, `_ms`). Histograms are stored whole, so dumps can
//! be merged and any quantile recomputed; the percentile summary beside each
//! one is for people reading the JSON.
//!
//! ```
//! use perf_layer::dump::{Dump, HistogramDump};
//! use hdrhistogram::Histogram;
//!
//! let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
//! h.record(1_500).unwrap();
//! let stored = HistogramDump::from_histogram(&h, 1_500, 0);
//! assert_eq!(stored.decode().unwrap(), h);
//!
//! let json = serde_json::to_vec(&Dump::empty("demo")).unwrap();
//! let back = Dump::from_slice(&json).unwrap();
//! // No groups: the version every reader since 0.1 reads.
//! assert_eq!(back.format_version, perf_layer::dump::FORMAT_VERSION_UNGROUPED);
//! ```
//!
//! Over 400 lines: the whole wire schema, each field documented, in one
//! place a reader of the format can read top to bottom (reading, the
//! histogram codec and writing are in their own files).

use serde::{Deserialize, Serialize};

mod decode;
mod fields;
pub mod histogram;
mod pressure;
mod read;
pub(crate) mod v2;
mod write;

pub use fields::HistogramField;
pub use histogram::{HistogramDecodeError, HistogramDump};
pub use pressure::{LimitSource, MemoryPressure, PressureLevel, PressureTransition};
pub use read::DumpReadError;
pub use write::DumpWriteError;

/// The format version this crate writes and the newest it reads.
///
/// Bumped on any change that an older reader would misread. Adding an
/// optional field does not bump it: readers ignore fields they do not know.
///
/// Version 2 adds a callsite's groups ([`CallsiteStats::groups`]). A dump is
/// written as version 2 only when it has groups, so that a reader of
/// version 1 refuses it with "newer than this tool reads; upgrade" instead
/// of reading it without them; every other dump is still version 1.
pub const FORMAT_VERSION: u32 = 2;

/// The version of a dump without groups (see [`FORMAT_VERSION`]).
pub const FORMAT_VERSION_UNGROUPED: u32 = 1;

/// One whole profiling run: everything `perf-report` needs.
///
/// Deliberately not `#[non_exhaustive]`: a reader that combines dumps (as
/// `perf-report`'s merge does) builds and destructures it field by field, so
/// that a field added here is a compile error there until the reader decides
/// how it combines. Adding a field is a breaking change of this crate, not of
/// the format: older dumps lack it and read with its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    /// The dump format version, [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The crate that wrote the dump.
    pub producer: Producer,
    /// What ran, where, and when.
    pub run: RunInfo,
    /// The layer's configuration for this run.
    pub config: DumpConfig,
    /// Whether the counting allocator was installed: when `false`, every
    /// callsite's [`CallsiteStats::alloc`] is `None` (unknown, not zero).
    pub allocations_tracked: bool,
    /// Per-callsite statistics, one entry per span callsite seen.
    pub callsites: Vec<CallsiteStats>,
    /// Spans not recorded because `config.max_callsites` was reached.
    #[serde(default)]
    pub callsites_dropped_spans: u64,
    /// Parent-to-child callsite edges, for call paths and flamegraphs.
    pub edges: Vec<CallEdge>,
    /// Edge observations not recorded because `config.max_edges` was reached.
    #[serde(default)]
    pub edges_dropped: u64,
    /// The part of `edges` whose parent or child is a grouped span, by
    /// group ([`GroupEdge`]): which route a child ran under. Empty without
    /// grouping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_edges: Vec<GroupEdge>,
    /// The process timeline from the background sampler.
    pub timeline: Timeline,
    /// Threshold alerts raised during the run (a bounded ring: the newest kept).
    pub alerts: Vec<Alert>,
    /// Alerts raised but evicted from the bounded alert ring.
    #[serde(default)]
    pub alerts_dropped: u64,
    /// The layer's estimate of its own cost.
    pub overhead: Overhead,
    /// The live heap as the counting allocator saw it: the process-wide
    /// total, what no span of this dump made, and the times of the
    /// callsites' live-bytes timelines. `None` without the counting
    /// allocator (and in dumps of perf-layer 0.1.0).
    #[serde(default)]
    pub heap: Option<HeapSummary>,
    /// RSS against the process's memory limit, with the pressure levels it
    /// crossed. `None` without a sampler (and before perf-layer 0.2.0).
    #[serde(default)]
    pub memory_pressure: Option<MemoryPressure>,
}

/// The crate that wrote a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// Crate name, `perf-layer`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// What ran, where, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The program name (the executable's file name).
    pub program: String,
    /// The process id.
    pub pid: u32,
    /// The host name, or `"unknown"`.
    pub host: String,
    /// When the layer was built, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// When this dump was taken, in milliseconds since the Unix epoch.
    pub ended_at_unix_ms: u64,
    /// Time from the layer's build to this dump, in nanoseconds: the same
    /// interval as `ended_at_unix_ms - started_at_unix_ms`, on a monotonic
    /// clock.
    pub duration_ns: u64,
    /// CPU time the whole process used in that interval (every thread, user
    /// and system), in nanoseconds, from the process CPU clock on Unix;
    /// `None` where the platform does not say, and in dumps of
    /// perf-layer 0.1.0.
    #[serde(default)]
    pub cpu_ns: Option<u64>,
    /// The CPUs the process could run on when the layer was built
    /// (`std::thread::available_parallelism`: affinity and cgroup quota
    /// count); `None` when unknown and in dumps before perf-layer 0.2.0.
    #[serde(default)]
    pub cores: Option<u32>,
    /// The layer's thread slots that recorded spans by the time of this
    /// dump: a thread that exits leaves its slot to the next one spawned,
    /// so threads that ran one after another count once (short-lived
    /// threads, nine alive at most, read 9 however many were started);
    /// `None` in dumps before perf-layer 0.2.0.
    #[serde(default)]
    pub span_threads: Option<u32>,
    /// The time the threads that recorded spans were recording, summed
    /// over threads, ns: each thread from its first entered interval to
    /// its last (to the dump while a span it opened is open). Threads that
    /// recorded in one phase only (scoped workers of a parallel step)
    /// count for that phase, not the run. A thread that exits leaves its
    /// slot to the next one spawned, and a slot's time runs from its
    /// first thread's first interval to its last thread's last. At most
    /// `duration_ns x span_threads`; `None` in dumps of earlier versions.
    #[serde(default)]
    pub span_threads_active_ns: Option<u64>,
    /// The CPU's model name (`/proc/cpuinfo` on Linux, through sysinfo),
    /// for telling machines apart when runs are compared; `None` when
    /// unknown and before 0.2.0.
    #[serde(default)]
    pub cpu_model: Option<String>,
}

/// The layer configuration a dump was recorded with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpConfig {
    /// Significant decimal digits of every histogram (1 to 5).
    pub histogram_sigfig: u8,
    /// The largest value a histogram tracks, in nanoseconds; larger values are
    /// recorded as this value and counted in [`HistogramDump::clamped`].
    pub histogram_max_ns: u64,
    /// The sampler interval in milliseconds, `None` when the sampler was off.
    pub sampler_interval_ms: Option<u64>,
    /// The RSS alert threshold in bytes, if any.
    pub rss_alert_bytes: Option<u64>,
    /// The CPU alert threshold in percent of one core, if any.
    pub cpu_alert_percent: Option<f64>,
    /// The most callsites recorded.
    pub max_callsites: usize,
    /// The most distinct call edges recorded.
    pub max_edges: usize,
    /// The most timeline samples kept (older ones are thinned, not dropped).
    pub timeline_capacity: usize,
    /// The most points of each callsite's live-bytes timeline (thinned the
    /// same way); 0 in dumps of perf-layer 0.1.0.
    #[serde(default)]
    pub heap_timeline_points: usize,
    /// The mean interval from which a callsite's entered intervals are
    /// timed on the CPU with system calls, ns; `None` when off or where the
    /// platform cannot.
    #[serde(default)]
    pub cpu_time_threshold_ns: Option<u64>,
    /// Where CPU time came from, in words: the perf_event task clock (on
    /// threads where it paid), or system calls and why. `None` when CPU
    /// time was off, and in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_source: Option<String>,
    /// The fields spans were grouped by (`group_by`); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// The most groups per callsite; 0 when not grouping.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_groups: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Statistics of one span callsite (one place in the code), merged over every
/// thread and every span it created. Not `#[non_exhaustive]`, for the reason
/// given on [`Dump`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsiteStats {
    /// Index of this callsite in the dump, referenced by [`CallEdge`].
    pub id: u32,
    /// Span name.
    pub name: String,
    /// Span target.
    pub target: String,
    /// Rust module path, if known.
    pub module_path: Option<String>,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// Level: `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// Number of spans of this callsite that closed.
    pub calls: u64,
    /// Creation to close.
    pub wall_ns: HistogramDump,
    /// Sum of the intervals the span was entered (on any thread).
    pub busy_ns: HistogramDump,
    /// Wall minus busy: time the span existed but was not entered.
    pub idle_ns: HistogramDump,
    /// Busy time when this span was the innermost entered span on its thread:
    /// busy minus the busy time of its child spans.
    pub self_ns: HistogramDump,
    /// Events recorded inside the span, by level.
    pub events: EventCounts,
    /// Heap allocation while entered; `None` without the counting allocator.
    pub alloc: Option<AllocStats>,
    /// Process RSS change between open and close, as the sampler saw it.
    /// Coarse: the sampler's resolution is its interval. `None` without sampler.
    pub rss_delta: Option<RssDelta>,
    /// The memory this callsite's spans allocated and what of it is still
    /// live, whoever freed it: `None` without the counting allocator (and in
    /// dumps of perf-layer 0.1.0).
    #[serde(default)]
    pub heap: Option<HeapStats>,
    /// On-CPU and off-CPU time of the spans timed on the CPU: `None` for a
    /// callsite never timed (its spans are shorter than
    /// `config.cpu_time_threshold_ns` on average), where the platform cannot
    /// say, and in dumps of perf-layer 0.1.0.
    #[serde(default)]
    pub cpu: Option<CpuStats>,
    /// The callsite's spans split by the values of the fields the layer
    /// groups by (`config.group_by`): each group with the same figures as a
    /// callsite, whose own figures above stay the totals. Empty when the
    /// layer groups by nothing this callsite has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<CallsiteGroup>,
    /// When the callsite's spans were live: the first one's opening and the
    /// last one's closing, in ns since the run started. `None` without a
    /// closed span, and in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveWindow>,
    /// How many of its spans closed on an async runtime's worker thread
    /// (known by the names tokio and actix give their workers): such a span
    /// ran inside a task's poll, even when it is entered once, like a
    /// plain function called from an `async fn`. `None` in older dumps and
    /// merges of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_worker_calls: Option<u64>,
    /// Its spans' entered intervals: one per enter and exit, so an async
    /// span's polls, and at least `calls` where every span was entered.
    /// What the layer's cost per callsite is counted from (perf-report's
    /// note on the layer's own cost). `None` in older dumps and merges of
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<u64>,
    /// The layer's own time in the callbacks that served its spans (their
    /// creation, enters, exits, close, and the events inside them), as the
    /// layer's sample of its callbacks timed them (`Overhead::callbacks_ns`
    /// split by callsite). `None` in older dumps and merges of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerTime>,
    /// What its spans waited beside, as the layer's background thread
    /// watched every thread (a 250 µs probe every 20 ms, less often past 64
    /// threads): zeros
    /// where it never saw one wait. `None` without the sampler, where a
    /// thread's CPU time cannot be read from another (not Linux), for a
    /// group, and in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_waits: Option<WatchedWaits>,
    /// Its read and write system calls, as the same watch read them where
    /// one of its spans stayed innermost on a thread on the CPU through a
    /// probe. `None` where no probe read one (a span never innermost
    /// through a probe, no sampler, not Linux), for a group, and in older
    /// dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_io: Option<WatchedIo>,
    /// Exits of its spans that were not of the innermost span entered on
    /// their thread: the span was entered on another thread, or spans
    /// entered after it exited before it. Nested guards exit in the reverse
    /// order of their enters on their thread; a guard of `Span::enter` held
    /// across an `.await` does not (the task yields with the span entered,
    /// the worker polls other tasks inside it, and the guard drops on
    /// whichever thread polls the task last), and the span's busy time then
    /// holds the worker's time between polls. 0 (and left out) when every
    /// exit nested, and in older dumps.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub misnested_exits: u64,
    /// Threads whose first span was one of its spans: the first span
    /// opened on its thread (under this layer), after entering a span
    /// handed to the thread or not. A thread started for each call (`thread::spawn`, a
    /// scoped thread per chunk of work) counts one a call; a pool's
    /// threads count once each. Threads are not counted where they never
    /// open a span, nor a start past the 64 callsites each of the layer's
    /// thread slots counts them for. 0 (and left out) when no thread
    /// started with one, and in older dumps.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub thread_starts: u64,
    /// Its latest long spans (1 ms of wall time or more): when each opened
    /// and closed, and its idle time. Which other span a long wait ended
    /// just after is how perf-report ties a task's waits to the span that
    /// held what it waited for. `None` when none was long, for a group, in
    /// a merge of runs, and in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_spans: Option<LongSpans>,
    /// Its spans still open when the dump was written, which no other
    /// figure counts (a span's figures are recorded when it closes): tasks
    /// that never end, requests stuck in an await, connections. `None`
    /// when none was open, for a group, and in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenAtDump>,
}

/// A callsite's spans still open when the dump was written
/// ([`CallsiteStats::open`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAtDump {
    /// How many.
    pub spans: u64,
    /// When the first of them opened, ns since the run started.
    pub first_opened_ns: u64,
    /// When they opened on average, ns since the run started: about half
    /// the run's length for spans opened steadily through it and never
    /// closed.
    pub mean_opened_ns: u64,
    /// The callsite most of them opened under (their parent span's), by
    /// [`CallsiteStats::id`]; `None` for root spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The layer's sampled time in the callbacks of one callsite's spans
/// ([`CallsiteStats::layer`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerTime {
    /// The kept samples' time, each weighted by the callbacks it stands
    /// for, ns (each sample's own clock read included, as in
    /// `Overhead::callbacks_ns`).
    pub ns: u64,
    /// The callbacks those samples stand for.
    pub callbacks: u64,
}

/// What a callsite's spans waited beside ([`CallsiteStats::watched_waits`]):
/// the watch's intervals in which one of its spans stayed innermost on its
/// thread (no span entered or exited there) while the thread ran for under
/// a tenth of the interval, and what the rest of the process did with the
/// CPU meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedWaits {
    /// Such intervals.
    pub intervals: u64,
    /// Their lengths, summed, ns.
    pub wait_ns: u64,
    /// The process's CPU time over them, less the waiting thread's, ns.
    pub others_cpu_ns: u64,
    /// What the rest of the process wanted of the CPU over them, ns: its
    /// CPU time, where a thread waiting for a core at an interval's end (or
    /// on one most of it; not one yielding while idle) counts the whole
    /// interval, for waits blocked in a futex (waiting for another thread: a join, a lock, a
    /// channel); `others_cpu_ns` for a sleep or a read. Above
    /// `others_cpu_ns` when other processes took cores the rest of this one
    /// wanted. `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others_wanted_ns: Option<u64>,
    /// Of `wait_ns`, the intervals in which the waiting thread was blocked
    /// in a futex, waiting for another thread (a channel, a lock, a join),
    /// ns. `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_a_thread_ns: Option<u64>,
    /// Of `wait_ns`, the intervals in which the waiting thread was asleep
    /// on a timer (`nanosleep`, `clock_nanosleep`: `std::thread::sleep`),
    /// ns. `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asleep_ns: Option<u64>,
    /// Over those intervals, the callsites other threads waited in at the
    /// same time outside a futex (a sleep, a read), each with the time, an
    /// interval's length shared among them: the waits at the end of the
    /// chain this one was part of. At most four, the most time first; a
    /// kept callsite's time may be over (a callsite dropped adds its time
    /// to the least one's place). Empty in older dumps and in a merge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beside: Vec<WaitedBeside>,
    /// Glances at threads inside one of its spans at a probe's end that
    /// had entered or left a span during the probe (no interval above holds
    /// them) and were blocked in a system call then: a sample of the short
    /// waits the intervals miss (a round trip of tens of microseconds, a
    /// brief lock wait). At most eight a probe. `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glances: Option<u64>,
    /// Of `glances`, those blocked in a futex (waiting for another thread:
    /// a lock, a channel, a join), where the rest waited in another system
    /// call (a socket's read, a file's). `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glances_in_futex: Option<u64>,
}

/// A callsite's read and write system calls, read where its work was
/// ([`CallsiteStats::watched_io`]): over the background thread's probes
/// (250 µs, every 20 ms) in which one of its spans stayed innermost on a
/// thread that was on the CPU at least half the probe, the thread's
/// read-family and write-family system calls and the bytes they moved
/// (`/proc/self/task/<tid>/io`: `syscr`, `syscw`, `rchar`, `wchar`; a
/// file's, a pipe's, a terminal's, not a socket's `send` or `recv`), and
/// its CPU time then. At most two threads a probe are read. A sample of
/// the callsite's own time on the CPU, so a rate: calls per second of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedIo {
    /// Probes read.
    pub probes: u64,
    /// The threads' CPU time over them, ns.
    pub cpu_ns: u64,
    /// Read-family system calls over them.
    pub reads: u64,
    /// Write-family system calls over them.
    pub writes: u64,
    /// The bytes those reads returned.
    pub read_bytes: u64,
    /// The bytes those writes wrote.
    pub written_bytes: u64,
}

impl WatchedIo {
    /// Write calls per second of the callsite's time on the CPU, and the
    /// bytes each wrote on average; `None` without a write or CPU time.
    ///
    /// ```
    /// use perf_layer::dump::WatchedIo;
    /// // 40 probes, 8 ms on the CPU in all, 1,600 writes of 16 bytes: one
    /// // write every 5 µs of its CPU.
    /// let io = WatchedIo {
    ///     probes: 40,
    ///     cpu_ns: 8_000_000,
    ///     writes: 1_600,
    ///     written_bytes: 25_600,
    ///     ..WatchedIo::default()
    /// };
    /// assert_eq!(io.writes_per_cpu_second(), Some((200_000.0, 16.0)));
    /// assert_eq!(io.reads_per_cpu_second(), None);
    /// ```
    pub fn writes_per_cpu_second(&self) -> Option<(f64, f64)> {
        Self::rate(self.writes, self.written_bytes, self.cpu_ns)
    }

    /// Read calls per second of the callsite's time on the CPU, and the
    /// bytes each returned on average; `None` without a read or CPU time.
    pub fn reads_per_cpu_second(&self) -> Option<(f64, f64)> {
        Self::rate(self.reads, self.read_bytes, self.cpu_ns)
    }

    /// Both readings' sums: a merge of two processes' dumps.
    pub fn plus(&self, other: &WatchedIo) -> WatchedIo {
        self.with(other, u64::saturating_add)
    }

    /// What was read after `earlier` (an older snapshot of the same
    /// process): a window between two snapshots.
    ///
    /// ```
    /// use perf_layer::dump::WatchedIo;
    /// let then = WatchedIo { probes: 10, cpu_ns: 2_000_000, writes: 2_000, written_bytes: 28_000, ..WatchedIo::default() };
    /// let now = WatchedIo { probes: 30, cpu_ns: 7_000_000, writes: 2_500, written_bytes: 35_000, ..WatchedIo::default() };
    /// let window = now.since(&then);
    /// assert_eq!((window.probes, window.writes), (20, 500));
    /// assert_eq!(window.plus(&then), now);
    /// ```
    pub fn since(&self, earlier: &WatchedIo) -> WatchedIo {
        self.with(earlier, u64::saturating_sub)
    }

    fn with(&self, other: &WatchedIo, f: fn(u64, u64) -> u64) -> WatchedIo {
        WatchedIo {
            probes: f(self.probes, other.probes),
            cpu_ns: f(self.cpu_ns, other.cpu_ns),
            reads: f(self.reads, other.reads),
            writes: f(self.writes, other.writes),
            read_bytes: f(self.read_bytes, other.read_bytes),
            written_bytes: f(self.written_bytes, other.written_bytes),
        }
    }

    fn rate(calls: u64, bytes: u64, cpu_ns: u64) -> Option<(f64, f64)> {
        (calls > 0 && cpu_ns > 0).then(|| {
            (
                calls as f64 * 1e9 / cpu_ns as f64,
                bytes as f64 / calls as f64,
            )
        })
    }
}

/// A callsite another thread waited in while a callsite's span waited for
/// a thread ([`WatchedWaits::beside`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitedBeside {
    /// The callsite's id in this dump.
    pub callsite: u32,
    /// The time, ns.
    pub ns: u64,
}

impl WatchedWaits {
    /// The cores the rest of the process kept busy, on average, while the
    /// callsite's spans waited; `None` without a watched wait.
    ///
    /// ```
    /// use perf_layer::dump::WatchedWaits;
    /// // Waiting 100 ms in all while the process's other threads used
    /// // 190 ms of CPU: 1.9 cores.
    /// let w = WatchedWaits {
    ///     intervals: 10,
    ///     wait_ns: 100_000_000,
    ///     others_cpu_ns: 190_000_000,
    ///     others_wanted_ns: None,
    ///     ..WatchedWaits::default()
    /// };
    /// assert_eq!(w.others_cores(), Some(1.9));
    /// assert_eq!(WatchedWaits::default().others_cores(), None);
    /// ```
    pub fn others_cores(&self) -> Option<f64> {
        (self.wait_ns > 0).then(|| self.others_cpu_ns as f64 / self.wait_ns as f64)
    }

    /// The cores the rest of the process kept busy or had threads waiting
    /// for, on average, while the callsite's spans waited: at least
    /// [`others_cores`](Self::others_cores); that where the dump does not
    /// say (older dumps); `None` without a watched wait.
    ///
    /// ```
    /// use perf_layer::dump::WatchedWaits;
    /// // Three threads of a pool computing through 100 ms of waits, given
    /// // one core between them by a busy machine: one core busy, three
    /// // wanted.
    /// let w = WatchedWaits {
    ///     intervals: 10,
    ///     wait_ns: 100_000_000,
    ///     others_cpu_ns: 100_000_000,
    ///     others_wanted_ns: Some(300_000_000),
    ///     ..WatchedWaits::default()
    /// };
    /// assert_eq!(w.others_cores(), Some(1.0));
    /// assert_eq!(w.others_wanted_cores(), Some(3.0));
    /// ```
    pub fn others_wanted_cores(&self) -> Option<f64> {
        let wanted = self.others_wanted_ns.unwrap_or(0).max(self.others_cpu_ns);
        (self.wait_ns > 0).then(|| wanted as f64 / self.wait_ns as f64)
    }
}

/// The part of the run in which a callsite's spans were live
/// ([`CallsiteStats::active`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveWindow {
    /// When its first span opened, ns since the run started.
    pub first_open_ns: u64,
    /// When its last span closed, ns since the run started.
    pub last_close_ns: u64,
}

impl ActiveWindow {
    /// Its length, ns (0 when the ends are out of order).
    ///
    /// ```
    /// use perf_layer::dump::ActiveWindow;
    /// let w = ActiveWindow { first_open_ns: 2_000, last_close_ns: 5_000 };
    /// assert_eq!(w.len_ns(), 3_000);
    /// ```
    pub fn len_ns(&self) -> u64 {
        self.last_close_ns.saturating_sub(self.first_open_ns)
    }

    /// The window covering both.
    pub fn union(&self, other: &ActiveWindow) -> ActiveWindow {
        ActiveWindow {
            first_open_ns: self.first_open_ns.min(other.first_open_ns),
            last_close_ns: self.last_close_ns.max(other.last_close_ns),
        }
    }
}

/// A callsite's latest long spans ([`CallsiteStats::long_spans`]).
///
/// Each thread keeps its latest 64 long spans of a callsite; a dump keeps
/// the latest 256 of all threads' that it holds whole: every long span
/// that closed after `complete_after_ns` is here, none before it is. The
/// spans idle the longest are kept apart, over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongSpans {
    /// The wall time from which a span is long, ns.
    pub threshold_ns: u64,
    /// Every long span of the callsite that closed after this is in
    /// `spans`, ns since the run started; 0 when none was left out.
    pub complete_after_ns: u64,
    /// The spans, by closing time.
    pub spans: Vec<LongSpan>,
    /// The long spans idle the longest over the whole run, whenever they
    /// closed, the most idle first: 16 a thread, 64 in a dump (fewer where
    /// `spans` are cut to the dump's budget). A callsite whose spans are
    /// all long fills `spans` in a few milliseconds; its longest waits are
    /// here. Empty in older dumps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub longest_waits: Vec<LongSpan>,
}

/// One long span ([`LongSpans::spans`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongSpan {
    /// When it opened, ns since the run started.
    pub opened_ns: u64,
    /// When it closed, ns since the run started.
    pub closed_ns: u64,
    /// Its wall time not entered on any thread, ns.
    pub idle_ns: u64,
}

/// One group of a callsite's spans ([`CallsiteStats::groups`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsiteGroup {
    /// The grouped fields' values, in `config.group_by` order, for the
    /// fields the spans had. Values are text: cut at 256 bytes, control
    /// characters as `?`. Empty for the `other` group.
    pub fields: Vec<GroupField>,
    /// The spans past the callsite's cap on groups (`config.max_groups`),
    /// all values together.
    #[serde(default)]
    pub other: bool,
    /// The group's figures, as a callsite's (its `id` is the callsite's;
    /// its own `groups` are empty; `heap` is the callsite's only).
    pub stats: CallsiteStats,
}

/// One field's value in a group's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupField {
    /// The field's name, as `group_by` named it.
    pub field: String,
    /// Its value, as text.
    pub value: String,
}

impl CallsiteGroup {
    /// `route=/export,method=GET`, or `other`.
    pub fn label(&self) -> String {
        if self.other {
            return "other".to_owned();
        }
        self.fields
            .iter()
            .map(|f| format!("{}={}", f.field, f.value))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Events recorded inside a span, per level, and the subscriber's time
/// handling them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    /// `TRACE` events.
    pub trace: u64,
    /// `DEBUG` events.
    pub debug: u64,
    /// `INFO` events.
    pub info: u64,
    /// `WARN` events.
    pub warn: u64,
    /// `ERROR` events.
    pub error: u64,
    /// The subscriber's time handling the events recorded inside the span
    /// (contextual ones: an event with an explicit `parent:` is counted,
    /// not timed), ns: from perf-layer's `event_enabled` to its `on_event`,
    /// so what the layers between them did (a `fmt` layer formatting and
    /// writing each line, a filter, an exporter). Whole only where
    /// perf-layer is the outermost layer (the last `.with(...)`), which is
    /// asked first and told last; near 0 where it is the innermost. Part of
    /// the span's self time. 0 in older dumps (left out when 0).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ns: u64,
}

impl EventCounts {
    /// All events of every level (saturating: counts read from a file can
    /// be anything).
    pub fn total(&self) -> u64 {
        [self.debug, self.info, self.warn, self.error]
            .into_iter()
            .fold(self.trace, u64::saturating_add)
    }

    /// Adds another set of counts to this one, saturating.
    pub fn add(&mut self, other: &EventCounts) {
        self.trace = self.trace.saturating_add(other.trace);
        self.debug = self.debug.saturating_add(other.debug);
        self.info = self.info.saturating_add(other.info);
        self.warn = self.warn.saturating_add(other.warn);
        self.error = self.error.saturating_add(other.error);
        self.ns = self.ns.saturating_add(other.ns);
    }
}

/// Heap allocation attributed to a callsite, summed over all its spans.
///
/// Counted only while a span was entered, on the thread that entered it.
/// "Inclusive" counts include child spans; "self" counts do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocStats {
    /// Bytes allocated, inclusive.
    pub alloc_bytes: u64,
    /// Allocations made, inclusive.
    pub allocs: u64,
    /// Bytes freed, inclusive.
    pub freed_bytes: u64,
    /// Deallocations made, inclusive.
    pub frees: u64,
    /// Bytes allocated while this span was innermost.
    pub self_alloc_bytes: u64,
    /// Allocations made while this span was innermost.
    pub self_allocs: u64,
    /// Inclusive bytes allocated minus bytes freed: memory the spans kept.
    pub net_bytes: i64,
    /// Spans of this callsite that closed holding more than they freed.
    pub calls_retaining: u64,
}

impl AllocStats {
    /// Adds another callsite's figures to these.
    pub fn add(&mut self, other: &AllocStats) {
        self.alloc_bytes = self.alloc_bytes.saturating_add(other.alloc_bytes);
        self.allocs = self.allocs.saturating_add(other.allocs);
        self.freed_bytes = self.freed_bytes.saturating_add(other.freed_bytes);
        self.frees = self.frees.saturating_add(other.frees);
        self.self_alloc_bytes = self.self_alloc_bytes.saturating_add(other.self_alloc_bytes);
        self.self_allocs = self.self_allocs.saturating_add(other.self_allocs);
        self.net_bytes = self.net_bytes.saturating_add(other.net_bytes);
        self.calls_retaining = self.calls_retaining.saturating_add(other.calls_retaining);
    }
}

/// What a callsite's spans did on the CPU, over the entered intervals timed
/// there (the thread's CPU time and context switches read at the enter and
/// exit of each; see `config.cpu_time_threshold_ns`). Intervals at least
/// that long on average are all timed; of shorter ones, a uniform sample
/// (one in 512), so a long-lived async span polled thousands of times has
/// a sample of its polls timed, `untimed_intervals` says how many were not.
/// Sums are over the timed intervals only: compare them with `busy_ns`
/// here, not with the callsite's histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Spans timed (at least one of their intervals).
    pub timed_calls: u64,
    /// Entered intervals of those spans (polls, for an async span).
    pub intervals: u64,
    /// Of `intervals`, those not timed (short ones outside the sample): 0
    /// when every interval of the timed spans was timed, and in dumps
    /// written before intervals were sampled (which timed all of them).
    #[serde(default)]
    pub untimed_intervals: u64,
    /// Busy time of the timed intervals, ns.
    pub busy_ns: u64,
    /// Self time of the timed intervals, ns.
    pub self_ns: u64,
    /// On-CPU time per timed span over its timed intervals, ns (inclusive
    /// of children); its sum is the callsite's.
    pub on_cpu_ns: HistogramDump,
    /// On-CPU time while the span was innermost, ns: on-CPU minus its
    /// children's (a child not timed counts as wholly on-CPU).
    pub self_on_cpu_ns: u64,
    /// Busy time off the CPU, ns: `busy_ns - on_cpu_ns.sum`.
    pub off_cpu_ns: u64,
    /// Per timed span, the part of its off-CPU time that blocking does not
    /// explain: preemption by other threads or processes (involuntary
    /// switches), or time the hypervisor stole (off the CPU with no switch
    /// at all), ns. Its sum is the callsite's; the rest of `off_cpu_ns` is
    /// blocking (voluntary switches). Its tail tells whether the busy-time
    /// tail is preemption.
    pub preempted_ns: HistogramDump,
    /// Preempted while innermost, ns: the span's self time off the CPU,
    /// split as `preempted_ns` is but by the switches its timed children did
    /// not have. `None` in older dumps (perf-report then splits the self
    /// time off the CPU in `preempted_ns`'s proportion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_preempted_ns: Option<u64>,
    /// Voluntary context switches while entered (sleep, blocking I/O, a
    /// contended lock).
    pub voluntary_switches: u64,
    /// Involuntary context switches while entered.
    pub involuntary_switches: u64,
    /// The sampled intervals among the timed ones, summed apart: they stand
    /// for the callsite's short intervals that were not timed (one timed in
    /// 512), and the rest of the timed ones only for themselves. `None` when
    /// no interval was sampled (every dump written before sampling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<SampledCpu>,
}

/// Of a callsite's intervals shorter than the CPU-time threshold, one in
/// this many is timed ([`CpuStats::sampled`]): each sampled interval stands
/// for `CPU_SAMPLE_EVERY - 1` that were not, which is how a reader counts
/// the untimed intervals of spans that were never timed.
///
/// ```
/// assert_eq!(perf_layer::dump::CPU_SAMPLE_EVERY, 512);
/// ```
pub const CPU_SAMPLE_EVERY: u32 = 512;

/// The sampled intervals of a callsite ([`CpuStats::sampled`]): a uniform
/// sample of its intervals shorter than the CPU-time threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledCpu {
    /// Intervals sampled.
    pub intervals: u64,
    /// Their busy time, ns.
    pub busy_ns: u64,
    /// Their self time, ns.
    pub self_ns: u64,
    /// Their on-CPU time, ns.
    pub on_cpu_ns: u64,
    /// Their on-CPU time while innermost, ns.
    pub self_on_cpu_ns: u64,
    /// Their off-CPU time not explained by blocking, ns (see
    /// [`CpuStats::preempted_ns`]).
    pub preempted_ns: u64,
    /// Their preempted time while innermost, ns (see
    /// [`CpuStats::self_preempted_ns`]); `None` in older dumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_preempted_ns: Option<u64>,
}

impl SampledCpu {
    /// Adds another callsite's sample to this one, saturating.
    pub fn add(&mut self, other: &SampledCpu) {
        self.intervals = self.intervals.saturating_add(other.intervals);
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.on_cpu_ns = self.on_cpu_ns.saturating_add(other.on_cpu_ns);
        self.self_on_cpu_ns = self.self_on_cpu_ns.saturating_add(other.self_on_cpu_ns);
        self.preempted_ns = self.preempted_ns.saturating_add(other.preempted_ns);
        self.self_preempted_ns = match (self.self_preempted_ns, other.self_preempted_ns) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
    }
}

/// Memory made by one callsite's spans, tracked by the counting allocator:
/// every allocation carries the tag of the callsite innermost on its thread
/// when it was made, and its free is credited to that callsite, on any
/// thread, inside any span. Sizes are what the program asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapStats {
    /// Bytes allocated (a `realloc` counts its new size).
    pub allocated_bytes: u64,
    /// Allocations made (a `realloc` counts as one).
    pub allocations: u64,
    /// Bytes of those allocations freed, by anyone (a `realloc` frees its
    /// old size).
    pub freed_bytes: u64,
    /// Frees of those allocations.
    pub frees: u64,
    /// Bytes still allocated when the dump was taken.
    pub live_bytes: u64,
    /// The most bytes live at once, as the sampler and the dumps saw it
    /// (sampled: a peak between two samples is not seen).
    pub peak_live_bytes: u64,
    /// Live bytes at each time of [`HeapSummary::timeline_t_ms`], the last
    /// at the dump; empty without a sampler. Bounded (see
    /// [`HeapSummary::timeline_t_ms`]).
    #[serde(default)]
    pub live_timeline_bytes: Vec<u64>,
}

impl HeapStats {
    /// Adds another part's counts (live bytes and the peak add up; the
    /// timelines, on different clocks, are dropped).
    pub fn add(&mut self, other: &HeapStats) {
        self.allocated_bytes = self.allocated_bytes.saturating_add(other.allocated_bytes);
        self.allocations = self.allocations.saturating_add(other.allocations);
        self.freed_bytes = self.freed_bytes.saturating_add(other.freed_bytes);
        self.frees = self.frees.saturating_add(other.frees);
        self.live_bytes = self.live_bytes.saturating_add(other.live_bytes);
        self.peak_live_bytes = self.peak_live_bytes.saturating_add(other.peak_live_bytes);
        self.live_timeline_bytes.clear();
    }
}

/// The live heap of the whole process, beside the per-callsite figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapSummary {
    /// Bytes the allocator adds to each allocation for its tag (8, plus the
    /// padding of the size to a multiple of 8).
    pub tag_bytes: u32,
    /// Every live byte the allocator tracks when the dump was taken: the
    /// callsites' `live_bytes` plus `outside_spans`, `layer` and `other`.
    pub live_bytes: u64,
    /// Allocations made while no span was entered on their thread (or
    /// before any layer existed).
    pub outside_spans: HeapStats,
    /// perf-layer's own allocations.
    pub layer: HeapStats,
    /// Allocations of callsites this dump does not list (spans of another
    /// layer, filtered out, past the callsite cap).
    pub other: HeapStats,
    /// Milliseconds since the run started of each point of the live-bytes
    /// timelines, oldest first, the last at the dump. At most
    /// `config.heap_timeline_points` points: when full, every other point is
    /// dropped and the spacing doubles, so it always spans the run.
    pub timeline_t_ms: Vec<u64>,
    /// Every live byte at each point of `timeline_t_ms`.
    pub timeline_live_bytes: Vec<u64>,
}

/// Process RSS change between a span's open and close, summed over its spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RssDelta {
    /// Sum of the per-span deltas, in bytes.
    pub sum_bytes: i64,
    /// The largest single-span growth, in bytes.
    pub max_bytes: i64,
    /// The largest single-span shrink (most negative delta), in bytes.
    pub min_bytes: i64,
}

impl RssDelta {
    /// Adds another callsite's figures to these.
    pub fn add(&mut self, other: &RssDelta) {
        self.sum_bytes = self.sum_bytes.saturating_add(other.sum_bytes);
        self.max_bytes = self.max_bytes.max(other.max_bytes);
        self.min_bytes = self.min_bytes.min(other.min_bytes);
    }
}

/// A parent-to-child callsite edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEdge {
    /// The parent callsite's [`CallsiteStats::id`].
    pub parent: u32,
    /// The child callsite's [`CallsiteStats::id`].
    pub child: u32,
    /// Child spans closed under this parent.
    pub calls: u64,
    /// Sum of those child spans' busy time, in nanoseconds.
    pub child_busy_ns: u64,
    /// Of those child spans, the ones that outlived their parent span and
    /// closed it: a task spawned inside the parent, not awaited, held the
    /// parent's last reference. The parent's wall time ended at its last
    /// exit; the child's is its own. Counts the child that closed last,
    /// where several outlived one parent. 0 in dumps before it was kept.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub outlived: u64,
}

/// The part of a [`CallEdge`] between given groups of its callsites
/// ([`CallsiteStats::groups`]): `request{uri=/export}` to `compress_json`.
/// A group is an index in its callsite's `groups`; `None` where that end's
/// callsite is not grouped, or its group was not known when the child
/// opened (a value recorded later, or a parent opened on another thread).
/// An edge's group edges add up to at most the edge; the rest is
/// unattributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEdge {
    /// The parent callsite's [`CallsiteStats::id`].
    pub parent: u32,
    /// The parent's group, an index in its callsite's `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group: Option<u32>,
    /// The child callsite's [`CallsiteStats::id`].
    pub child: u32,
    /// The child's group, an index in its callsite's `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_group: Option<u32>,
    /// Child spans closed under a parent of that group.
    pub calls: u64,
    /// Sum of those child spans' busy time, in nanoseconds.
    pub child_busy_ns: u64,
}

/// The process timeline sampled in the background.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The spacing of the kept samples in milliseconds. Starts at the sampler
    /// interval and doubles each time a full timeline is thinned.
    pub interval_ms: u64,
    /// The samples, oldest first.
    pub samples: Vec<ProcessSample>,
}

/// One process sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_bytes: u64,
    /// CPU the process used since the previous sample, over every thread,
    /// in percent of one core: 200 is two cores busy all the time.
    pub cpu_percent: f64,
    /// Number of threads in the process (0 when unknown).
    pub threads: u32,
    /// Share of the interval in which some task of the machine waited for a
    /// CPU (Linux PSI, `/proc/pressure/cpu`), percent; `None` where the
    /// kernel does not say.
    #[serde(default)]
    pub cpu_pressure_percent: Option<f64>,
    /// Share of the machine's CPU time the hypervisor stole in the interval
    /// (`/proc/stat`), percent.
    #[serde(default)]
    pub steal_percent: Option<f64>,
    /// CPU the whole machine used in the interval, every process's (this
    /// one's included) and the hypervisor's steal, in percent of one CPU
    /// like `cpu_percent` (`/proc/stat`: all but idle and iowait, over its
    /// `cpuN` lines); `None` where the kernel does not say, and in dumps of
    /// earlier versions. Less `cpu_percent`: what the rest of the machine
    /// used beside the process.
    #[serde(default)]
    pub machine_cpu_percent: Option<f64>,
    /// Voluntary context switches of the process in the interval (it
    /// blocked: sleep, I/O, locks).
    #[serde(default)]
    pub voluntary_switches: Option<u64>,
    /// Involuntary context switches in the interval (it was preempted).
    #[serde(default)]
    pub involuntary_switches: Option<u64>,
    /// Of the process's CPU time in the interval, the share spent in the
    /// kernel on its behalf (system calls, page faults), percent: its
    /// system time over its user and system time (`getrusage`, which the
    /// kernel splits between them by the ticks it sampled); `None` where
    /// the platform does not say, when the process used no CPU in the
    /// interval, and in dumps of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_cpu_share_percent: Option<f64>,
    /// The process's threads' time runnable and waiting for a core in the
    /// interval (preempted, or woken with every core taken), summed over
    /// threads, in percent of the interval: 150 is one and a half threads
    /// waiting all the time (`/proc/self/task/<tid>/schedstat`'s run
    /// delay, the background thread's own not counted; a thread that
    /// recorded a span and ended in the interval says the rest of its
    /// delay as it exits, others take their last piece with them). `None`
    /// past 128
    /// threads, where the kernel keeps no scheduler statistics, off Linux,
    /// and in dumps of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for_cpu_percent: Option<f64>,
    /// Open file descriptors.
    #[serde(default)]
    pub open_fds: Option<u32>,
}

/// A threshold crossing raised by the sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// What crossed its threshold.
    pub kind: AlertKind,
    /// The measured value (bytes for RSS, percent for CPU).
    pub value: f64,
    /// The configured threshold, in the same unit.
    pub threshold: f64,
    /// The message that was logged.
    pub message: String,
}

/// What an [`Alert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// Resident memory above `rss_alert_bytes`.
    Rss,
    /// CPU above `cpu_alert_percent`.
    Cpu,
}

/// The layer's estimate of its own cost during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// Measured cost the layer adds to one span's lifecycle, in nanoseconds
    /// (calibrated in-process against a no-op layer).
    pub per_span_ns: f64,
    /// Spans recorded.
    pub spans: u64,
    /// Measured cost the layer adds to entering and exiting a span once
    /// more (an async span's poll after its first), ns. Absent from older
    /// dumps, read as 0.
    #[serde(default)]
    pub per_interval_ns: f64,
    /// Entered intervals that ended, of open spans too (at least one per
    /// span that was entered). Absent from older dumps, read as 0.
    #[serde(default)]
    pub intervals: u64,
    /// Measured cost that timing an entered interval on the CPU (reading
    /// the thread's CPU time and context switches at enter and exit) adds on
    /// top of `per_span_ns`, in nanoseconds; 0 where nothing is timed.
    /// Absent from older dumps, read as 0.
    #[serde(default)]
    pub per_timed_interval_ns: f64,
    /// Entered intervals timed on the CPU, of open spans too; absent from
    /// older dumps, read as 0.
    #[serde(default)]
    pub timed_intervals: u64,
    /// Measured cost that timing an entered interval with system calls
    /// only (no task clock, or the thread was switched out, as a server's
    /// workers often are) adds on top of `per_span_ns`, ns. Absent from
    /// older dumps, read as 0.
    #[serde(default)]
    pub per_called_interval_ns: f64,
    /// Of `timed_intervals`, those read with system calls at exit. Absent
    /// from older dumps, read as 0.
    #[serde(default)]
    pub called_intervals: u64,
    /// Measured cost the counting allocator adds to one allocation and its
    /// free, against the system allocator, ns; 0 without it. Absent from
    /// older dumps, read as 0.
    #[serde(default)]
    pub per_allocation_ns: f64,
    /// Allocations the counting allocator served (of every thread, in spans
    /// or not; a `realloc` is one); 0 without it. Absent from older dumps,
    /// read as 0.
    #[serde(default)]
    pub allocations: u64,
    /// The layer's time in its callbacks, estimated from a sample of them
    /// (about one in 64) timed while they ran: each kept sample's time times
    /// the callbacks it stands for, summed, scaled to every callback, ns.
    /// Absent from older dumps, read as 0.
    #[serde(default)]
    pub callbacks_ns: u64,
    /// Callbacks the samples stand for. Absent from older dumps, read as 0.
    #[serde(default)]
    pub callbacks: u64,
    /// Callbacks timed and kept. Absent from older dumps, read as 0.
    #[serde(default)]
    pub callbacks_sampled: u64,
    /// Callbacks whose samples were dropped: over 50 µs, the thread was
    /// switched out inside the timed callback. Counted in `callbacks`, their
    /// time is the kept samples' mean. Absent from older dumps, read as 0.
    #[serde(default)]
    pub callbacks_dropped: u64,
    /// CPU time of the layer's background thread (sampler, periodic dumps),
    /// ns. Absent from older dumps, read as 0.
    #[serde(default)]
    pub background_cpu_ns: u64,
    /// One read of the layer's clock, calibrated, ns: what timing a sampled
    /// callback adds to its own time, taken off `callbacks_ns` once per
    /// callback in the estimate. Absent from older dumps, read as 0.
    #[serde(default)]
    pub per_clock_read_ns: f64,
    /// One span's lifecycle through tracing alone (a registry and a no-op
    /// layer), calibrated in-process on spans made back to back inside one
    /// parent, as a loop makes them (warm caches), ns: the part of
    /// a span's instrumentation perf-layer does not add, which a span
    /// called in a loop pays too (the report's hot loop counts both). Not
    /// part of `estimated_ns`. Absent from older dumps, read as 0.
    #[serde(default)]
    pub floor_per_span_ns: f64,
    /// What the layer adds to such a span, made back to back inside one
    /// parent and not timed on the CPU, calibrated beside
    /// `floor_per_span_ns`, ns: `per_span_ns` with a loop's warm caches.
    /// Not part of `estimated_ns`. Absent from older dumps, read as 0.
    #[serde(default)]
    pub loop_per_span_ns: f64,
    /// What the layer added to the run, ns, in three parts:
    ///
    /// - its callbacks: `callbacks_ns - per_clock_read_ns * callbacks` when
    ///   at least 16 callbacks were timed; otherwise the calibrated model,
    ///   `per_span_ns * spans + per_interval_ns * (intervals - spans) +
    ///   per_timed_interval_ns * (timed_intervals - called_intervals) +
    ///   per_called_interval_ns * called_intervals`;
    /// - the counting allocator: `per_allocation_ns * allocations`;
    /// - the background thread: `background_cpu_ns`.
    ///
    /// Dumps before these fields used the model alone.
    pub estimated_ns: u64,
    /// `estimated_ns` as a fraction of the CPU time the process used during
    /// the run (0 to 1); where that is unknown or too short to read, of the
    /// run's wall time on each thread that recorded spans, at most one per core.
    pub fraction_of_run: f64,
}

/// Fewer callbacks timed than this, and [`Overhead::measured_callbacks_ns`]
/// has no figure: the estimate's callbacks part is then the calibrated model.
pub const MIN_CALLBACKS_SAMPLED: u64 = 16;

impl Overhead {
    /// The layer's time in its callbacks as the run measured it:
    /// `callbacks_ns` less one clock read a callback (the samples' own
    /// timing), ns; `None` where fewer than [`MIN_CALLBACKS_SAMPLED`] were
    /// timed or the clock read is not a number.
    ///
    /// ```
    /// let mut o = perf_layer::dump::Overhead::default();
    /// assert_eq!(o.measured_callbacks_ns(), None);
    /// (o.callbacks_ns, o.callbacks, o.callbacks_sampled, o.per_clock_read_ns) =
    ///     (64_000, 640, 10, 20.0);
    /// assert_eq!(o.measured_callbacks_ns(), None);
    /// o.callbacks_sampled = 16;
    /// assert_eq!(o.measured_callbacks_ns(), Some(51_200.0));
    /// ```
    pub fn measured_callbacks_ns(&self) -> Option<f64> {
        if self.callbacks_sampled < MIN_CALLBACKS_SAMPLED || !self.per_clock_read_ns.is_finite() {
            return None;
        }
        let timing = self.per_clock_read_ns.max(0.0) * self.callbacks as f64;
        Some((self.callbacks_ns as f64 - timing).max(0.0))
    }
}

impl Dump {
    /// An empty dump for `program`: no callsites, no timeline.
    pub fn empty(program: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION_UNGROUPED,
            producer: Producer {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            run: RunInfo {
                program: program.to_owned(),
                pid: 0,
                host: "unknown".to_owned(),
                started_at_unix_ms: 0,
                ended_at_unix_ms: 0,
                duration_ns: 0,
                cpu_ns: None,
                cores: None,
                span_threads: None,
                span_threads_active_ns: None,
                cpu_model: None,
            },
            config: DumpConfig {
                histogram_sigfig: 2,
                histogram_max_ns: 3_600_000_000_000,
                sampler_interval_ms: None,
                rss_alert_bytes: None,
                cpu_alert_percent: None,
                max_callsites: 0,
                max_edges: 0,
                timeline_capacity: 0,
                heap_timeline_points: 0,
                cpu_time_threshold_ns: None,
                cpu_time_source: None,
                group_by: Vec::new(),
                max_groups: 0,
            },
            allocations_tracked: false,
            callsites: Vec::new(),
            callsites_dropped_spans: 0,
            edges: Vec::new(),
            edges_dropped: 0,
            group_edges: Vec::new(),
            timeline: Timeline::default(),
            alerts: Vec::new(),
            alerts_dropped: 0,
            overhead: Overhead::default(),
            heap: None,
            memory_pressure: None,
        }
    }
}
