//! The profiler: the state the layer, its handles and the background thread
//! share (configuration, shards, timeline, alerts), behind one `Arc`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tracing_core::dispatcher::WeakDispatch;

use crate::background::estimate::Calibration;
use crate::background::heap_timeline::HeapTimeline;
use crate::background::pressure::{self, PressureState};
use crate::background::procfs::process_cpu_ns;
use crate::background::rings::{AlertRing, TimelineRing};
use crate::config::Config;
use crate::dump::{Alert, DumpWriteError, LimitSource};
use crate::record::shards::Shards;

/// The target of the layer's own log events (alerts, write failures).
pub(crate) const LOG_TARGET: &str = "perf_layer";

/// `latest_rss` before the first sample.
pub(crate) const RSS_UNKNOWN: u64 = u64::MAX;

/// The share of a run's spans that must be missing from its last dump for
/// the end of the process to warn about them (see [`Profiler::spans_lost`]).
const LOST_SHARE_WORTH_SAYING: f64 = 0.01;

static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub(crate) struct Profiler {
    pub(crate) config: Config,
    pub(crate) shards: Shards,
    /// Distinguishes this layer's per-thread stacks from other instances'.
    pub(crate) layer_id: u64,
    /// When the layer was built, on every clock the dump reads.
    pub(crate) started: Start,
    /// The sampler's latest RSS reading, read by spans at open and close.
    pub(crate) latest_rss: AtomicU64,
    pub(crate) timeline: Mutex<TimelineRing>,
    /// Every callsite's live bytes over the run, from the sampler.
    pub(crate) heap_timeline: Mutex<HeapTimeline>,
    /// What each callsite's spans waited beside, from the background
    /// thread's watch.
    pub(crate) waits: Mutex<crate::background::waits::WaitTable>,
    pub(crate) alerts: Mutex<AlertRing>,
    /// The subscriber this layer is part of, to log alerts into it from the
    /// background thread. Weak: the subscriber owns the layer that owns us.
    pub(crate) dispatch: OnceLock<WeakDispatch>,
    /// The layer's measured per-span cost, calibrated on first use.
    pub(crate) calibration: OnceLock<Calibration>,
    /// The CPU time the background thread (sampler, periodic dumps) has
    /// used, ns, as it last read it: part of the layer's overhead.
    pub(crate) background_cpu_ns: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Keeps the kernel's perf scheduler hooks in while the layer lives, so
    /// threads open their task clocks cheaply (`record::task_clock`).
    _task_clock: Option<crate::record::task_clock::Keeper>,
    pub(crate) stopping: AtomicBool,
    background: OnceLock<Thread>,
    /// The output path made absolute, to tell when two layers of this
    /// process write the same file.
    output_key: PathBuf,
    /// A snapshot or dump was taken: the data left the process at least once.
    taken_out: AtomicBool,
    /// The end-of-run dump was written (by the guard, a signal or `exit`).
    pub(crate) final_dump_written: AtomicBool,
    /// The last dump written, to any path: its spans and where it went;
    /// `None` before the first.
    last_dump: Mutex<Option<(u64, PathBuf)>>,
    /// Another live layer writes the same file: said once.
    warned_shared_output: AtomicBool,
    /// Memory pressure levels, with the sampler; `None` without one, or
    /// where no limit can be found.
    pub(crate) pressure: Option<Mutex<PressureState>>,
    /// The thread that calls the memory pressure callbacks.
    pub(crate) pressure_callbacks: Option<pressure::Callbacks>,
    /// Where the Prometheus endpoint listens, once it does.
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus_addr: OnceLock<std::net::SocketAddr>,
}

/// When a profiler was built, on every clock the dump reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub(crate) at: Instant,
    pub(crate) unix_ms: u64,
    /// The process's CPU time, ns, if readable.
    pub(crate) cpu_ns: Option<u64>,
    /// The layer clock's raw reading ([`crate::dump::ActiveWindow`]).
    pub(crate) raw: u64,
}

pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every profiler built in this process that may still be alive: for the
/// process's end (`background::end`) and to tell when two write one file.
static LIVE: Mutex<Vec<Weak<Profiler>>> = Mutex::new(Vec::new());

/// Adds a new profiler to the process's list of live ones.
pub(crate) fn remember(profiler: &Arc<Profiler>) {
    let mut live = LIVE.lock();
    live.retain(|p| p.strong_count() > 0);
    live.push(Arc::downgrade(profiler));
}

/// The profilers still alive, each upgraded.
pub(crate) fn live() -> Vec<Arc<Profiler>> {
    LIVE.lock().iter().filter_map(Weak::upgrade).collect()
}

impl Profiler {
    /// The profiler of `config`, not yet started: `background::start`
    /// starts its thread and the process's end hooks.
    pub(crate) fn new(config: Config) -> Arc<Self> {
        let interval_ms = config.sampler_interval.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        // The calibration's copies (`internal`) force their source on
        // their own thread ([`crate::record::task_clock::Forced`]): turning
        // the clock off for the process from one of them turned it off for
        // the user's layer at its first dump or scrape.
        if !config.task_clock && !config.internal {
            crate::record::task_clock::set_disabled(true);
        }
        let task_clock = (config.cpu_time_threshold_ns.is_some()
            && !config.internal
            && crate::record::cpu::available())
        .then(crate::record::task_clock::Keeper::open)
        .flatten();
        Arc::new(Self {
            shards: Shards::new(
                config.histogram_sigfig,
                config.histogram_max_ns,
                config.max_callsites,
                config.max_edges,
                config.cpu_time_threshold_ns,
                crate::record::groups::Groups::new(
                    &config.group_by,
                    config.normalize_group_paths,
                    config.max_groups,
                ),
            )
            .watching(config.watches_waits()),
            layer_id: NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed),
            started: Start {
                at: Instant::now(),
                unix_ms: unix_ms(SystemTime::now()),
                cpu_ns: process_cpu_ns(),
                raw: config.clock.raw(),
            },
            latest_rss: AtomicU64::new(RSS_UNKNOWN),
            timeline: Mutex::new(TimelineRing::new(config.timeline_capacity, interval_ms)),
            heap_timeline: Mutex::new(HeapTimeline::new(config.heap_timeline_points)),
            waits: Mutex::default(),
            alerts: Mutex::new(AlertRing::new(config.max_alerts)),
            dispatch: OnceLock::new(),
            calibration: OnceLock::new(),
            background_cpu_ns: AtomicU64::new(0),
            last_error: Mutex::new(None),
            _task_clock: task_clock,
            stopping: AtomicBool::new(false),
            background: OnceLock::new(),
            output_key: std::path::absolute(&config.output_path)
                .unwrap_or_else(|_| config.output_path.clone()),
            taken_out: AtomicBool::new(false),
            final_dump_written: AtomicBool::new(false),
            last_dump: Mutex::new(None),
            warned_shared_output: AtomicBool::new(false),
            pressure: config
                .sampler_interval
                .and_then(|_| {
                    config
                        .memory_limit
                        .map(|bytes| (bytes, LimitSource::Configured))
                        .or_else(pressure::detect_limit)
                })
                .map(|(limit, source)| {
                    Mutex::new(PressureState::new(
                        limit,
                        source,
                        config.pressure_thresholds,
                    ))
                }),
            pressure_callbacks: config
                .sampler_interval
                .and_then(|_| pressure::Callbacks::start(config.pressure_callbacks.0.clone())),
            #[cfg(feature = "prometheus")]
            prometheus_addr: OnceLock::new(),
            config,
        })
    }

    /// The background thread serving this profiler, to wake it when the
    /// profiler goes.
    pub(crate) fn set_background(&self, thread: Thread) {
        let _ = self.background.set(thread);
    }

    /// Whether another live profiler writes to the same file.
    fn shares_output(&self) -> bool {
        live()
            .iter()
            .any(|other| !std::ptr::eq(&**other, self) && other.output_key == self.output_key)
    }

    /// Says on standard error that `spans` recorded spans are in no dump:
    /// since the last one, written to `last`, or in none at all.
    pub(crate) fn warn_lost(&self, spans: u64, last: Option<&Path>) {
        let (since, path) = match last {
            Some(path) => ("since the last dump", path),
            None => ("but no dump was ever", self.config.output_path.as_path()),
        };
        eprintln!(
            "perf-layer: {spans} spans were recorded {since} written to {}; keep the guard of `handle.dump_on_drop()` alive to the end of main (`let _dump = ...`, not `let _ = ...`), or build the layer with `.dump_on_exit()`",
            path.display()
        );
    }

    /// Records that the data left the process (a snapshot or a dump).
    pub(crate) fn mark_taken_out(&self) {
        self.taken_out.store(true, Ordering::Release);
    }

    /// Whether spans were recorded and nothing was ever taken out.
    pub(crate) fn nothing_taken_out(&self) -> bool {
        !self.taken_out.load(Ordering::Acquire) && self.spans_recorded() > 0
    }

    /// What ending now would lose, when it is worth saying: the spans
    /// recorded since the last dump (to whichever path it went, returned
    /// with it) or, without one, every span, unless a snapshot or a
    /// Prometheus scrape took the data out. Spans that close after the
    /// last dump while the program tears down (a runtime's tasks dropped
    /// after `main` wrote its dump) are not worth a warning: under
    /// [`LOST_SHARE_WORTH_SAYING`] of the run's, nothing is said.
    pub(crate) fn spans_lost(&self) -> Option<(u64, Option<PathBuf>)> {
        let now = self.spans_recorded();
        match self.last_dump.lock().clone() {
            // Taken out by snapshots or scrapes, never dumped: the program
            // reads its data its own way, and nothing is lost.
            None => (now > 0 && !self.taken_out.load(Ordering::Acquire)).then_some((now, None)),
            Some((dumped, path)) => {
                let lost = now.saturating_sub(dumped);
                (lost > 0 && lost as f64 >= LOST_SHARE_WORTH_SAYING * now as f64)
                    .then_some((lost, Some(path)))
            }
        }
    }

    /// Spans recorded so far, over every thread.
    pub(crate) fn spans_recorded(&self) -> u64 {
        self.shards
            .merged()
            .callsites
            .values()
            .map(|c| c.calls)
            .sum()
    }

    /// Writes the end-of-run dump to the output path, once it is due (the
    /// guard dropped, a signal, `exit`); a failure is reported, not raised.
    pub(crate) fn write_final_dump(&self) {
        match self.write_dump(&self.config.output_path) {
            Ok(()) => self.final_dump_written.store(true, Ordering::Release),
            Err(e) => self.report_error(&e),
        }
    }

    /// The latest sampled RSS, `None` without a sampler or before its first sample.
    #[inline]
    pub(crate) fn rss_now(&self) -> Option<u64> {
        self.config.sampler_interval?;
        match self.latest_rss.load(Ordering::Relaxed) {
            RSS_UNKNOWN => None,
            rss => Some(rss),
        }
    }

    /// Takes the sample's RSS into the memory pressure levels; a change of
    /// level is logged, kept, and handed to the callbacks.
    pub(crate) fn observe_pressure(&self, t_ms: u64, rss: u64) {
        let Some(state) = &self.pressure else { return };
        let Some(event) = state.lock().observe(t_ms, rss) else {
            return;
        };
        if let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::warn!(
                    target: LOG_TARGET,
                    level = event.level.as_str(),
                    previous = event.previous.as_str(),
                    rss_bytes = event.rss_bytes,
                    limit_bytes = event.limit_bytes,
                    "memory pressure {} (was {}): RSS {} MiB of a {} MiB limit",
                    event.level,
                    event.previous,
                    event.rss_bytes >> 20,
                    event.limit_bytes >> 20
                );
            });
        }
        if let Some(callbacks) = &self.pressure_callbacks {
            if !callbacks.deliver(event) {
                state.lock().dropped_callback_event();
            }
        }
    }

    /// Keeps the alert and logs it as a `tracing` warning into the subscriber
    /// this layer belongs to (the layer ignores its own target).
    pub(crate) fn raise_alert(&self, alert: Alert) {
        if let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::warn!(target: LOG_TARGET, kind = ?alert.kind, value = alert.value, threshold = alert.threshold, "{}", alert.message);
            });
        }
        self.alerts.lock().push(alert);
    }

    pub(crate) fn write_dump(&self, path: &Path) -> Result<(), DumpWriteError> {
        let dump = self.snapshot();
        let written = dump.write_atomic(path);
        if written.is_ok() {
            self.mark_taken_out();
            *self.last_dump.lock() = Some((dump.overhead.spans, path.to_owned()));
        }
        if written.is_ok()
            && path == self.config.output_path
            && !self.warned_shared_output.load(Ordering::Relaxed)
            && self.shares_output()
        {
            self.warned_shared_output.store(true, Ordering::Relaxed);
            eprintln!(
                "perf-layer: another layer in this process also writes its dumps to {}, and the last one written wins; give each layer its own output_path",
                self.config.output_path.display()
            );
        }
        written
    }

    /// Reports a failure once on standard error (the host's own output is
    /// the one place a user is sure to look); the same failure repeated, as
    /// from periodic dumps into a vanished directory, is not repeated.
    pub(crate) fn report_error(&self, error: &dyn std::error::Error) {
        let message = error.to_string();
        let mut last = self.last_error.lock();
        if last.as_deref() != Some(message.as_str()) {
            eprintln!("perf-layer: {message}");
            *last = Some(message);
        }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        if !self.config.internal && self.nothing_taken_out() {
            self.warn_lost(self.spans_recorded(), None);
        }
        self.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.background.get() {
            thread.unpark();
        }
    }
}
