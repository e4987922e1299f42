//! Off the span path: one background thread per layer, started by `build()`
//! when the configuration needs it, that samples the process
//! ([`sampler`]) and writes periodic dumps. [`overhead`] calibrates the
//! layer's own per-span cost, on the thread that takes the first snapshot;
//! [`end`] writes dumps when the process ends by a signal or `exit`.
//!
//! The thread holds only a weak reference to the profiler and exits once the
//! layer and every handle are gone.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use sysinfo::{Pid, System};

use crate::config::{BuildError, Config};
use crate::profiler::{self, Profiler};

pub(crate) mod end;
pub(crate) mod estimate;
pub(crate) mod heap_timeline;
pub(crate) mod overhead;
pub(crate) mod pressure;
pub(crate) mod procfs;
pub(crate) mod rings;
pub(crate) mod sampler;
pub(crate) mod waits;

/// The profiler of `config`, started: in the process's list of live ones,
/// with the end hooks it asks for (not for the overhead calibration's
/// internal copies), and its background thread when it needs one.
pub(crate) fn start(config: Config) -> Result<Arc<Profiler>, BuildError> {
    let shared = Profiler::new(config);
    if !shared.config.internal {
        profiler::remember(&shared);
        end::install(&shared.config).map_err(BuildError::Signal)?;
    }
    if let Some(thread) = spawn(&shared).map_err(BuildError::Thread)? {
        shared.set_background(thread);
    }
    Ok(shared)
}

/// Starts the background thread when the configuration needs one (sampler or
/// periodic dumps). It holds only a weak reference and exits once the layer
/// and every handle are gone.
fn spawn(shared: &Arc<Profiler>) -> Result<Option<thread::Thread>, String> {
    let sample_every = shared.config.sampler_interval;
    let dump_every = shared.config.periodic_dump;
    if sample_every.is_none() && dump_every.is_none() {
        return Ok(None);
    }
    let watch = shared.config.watches_waits();
    let weak = Arc::downgrade(shared);
    let handle = thread::Builder::new()
        .name("perf-layer".into())
        .spawn(move || run(weak, sample_every, dump_every, watch))
        .map_err(|e| e.to_string())?;
    Ok(Some(handle.thread().clone()))
}

fn run(
    weak: Weak<Profiler>,
    sample_every: Option<Duration>,
    dump_every: Option<Duration>,
    watch: bool,
) {
    let pid = Pid::from_u32(std::process::id());
    let mut system = System::new();
    let mut kept = sampler::Kept::new();
    let mut last = procfs::Reading::now();
    let start = Instant::now();
    // The first sample one interval in: a rate over the microseconds since
    // `last` is noise (the process's CPU clock adds other threads' time at
    // their ticks and switches: a fresh one-second job's first sample read
    // 567% of a two-core machine, and its mean 230%).
    let mut next_sample = sample_every.map(|every| start + every);
    let mut next_dump = dump_every.map(|d| start + d);
    // The waits are watched with the sampler, more often than it samples.
    let mut watcher = waits::Watcher::default();
    let mut next_watch = watch.then_some(start);
    loop {
        let now = Instant::now();
        {
            let Some(shared) = weak.upgrade() else { return };
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            if let (Some(due), Some(every)) = (next_sample, sample_every) {
                if now >= due {
                    sampler::sample(&shared, &mut system, pid, &mut kept, &mut last);
                    next_sample = Some(due.max(now - every) + every);
                }
            }
            if let Some(due) = next_watch {
                if now >= due {
                    watcher.read(&shared.shards.watched, &shared.waits);
                    next_watch = Some(watcher.next_after(now, next_sample));
                }
            }
            if let (Some(due), Some(every)) = (next_dump, dump_every) {
                if now >= due {
                    if let Err(e) = shared.write_dump(&shared.config.output_path) {
                        shared.report_error(&e);
                    }
                    next_dump = Some(Instant::now() + every);
                }
            }
            // This thread's work is the layer's overhead too.
            if let Some(ns) = crate::record::cpu::thread_cpu_ns() {
                shared.background_cpu_ns.store(ns, Ordering::Relaxed);
            }
        }
        let wake = [next_sample, next_dump, next_watch]
            .into_iter()
            .flatten()
            .min();
        let Some(wake) = wake else { return };
        // Parked, not slept: dropping the last handle unparks us to exit.
        thread::park_timeout(wake.saturating_duration_since(Instant::now()));
    }
}
