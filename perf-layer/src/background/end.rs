//! The end of the process: dumps on SIGTERM and SIGINT, at `exit`, and the
//! warning when a process that recorded spans ends with none taken out.
//!
//! Every live profiler is in one process-wide list of weak references
//! (`profiler::live`). Two hooks read it, each installed once per process when the first profiler
//! is built:
//!
//! - an `atexit` handler, which runs when the process exits through
//!   `std::process::exit` or by returning from `main` (not on a signal, an
//!   abort or `_exit`): profilers built with `dump_on_exit` write their dump
//!   unless their guard did; the others warn on standard error when spans
//!   recorded since their last dump (or ever, if none was written) are about
//!   to be lost: a forgotten guard, or one dropped at once by `let _ = …`;
//! - a profiler dropped before the process ends warns the same way if it
//!   recorded spans and none was ever taken out (no dump, no snapshot);
//! - with `dump_on_signal`, a thread waiting on SIGTERM and SIGINT through
//!   signal-hook, which writes the dumps of the profilers that asked for it
//!   and then emulates the signal's default action (the process ends,
//!   killed by that signal). Writing happens on that thread, never inside a
//!   signal handler; a second signal meanwhile ends the process at once.
//!
//! Neither hook can panic across the `atexit` boundary or block forever: a
//! panic is caught and reported, and dumps are written exactly as an
//! explicit `write_dump` writes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use crate::config::Config;
use crate::profiler::live;

/// Installs the process hooks a new profiler of `config` needs, each once
/// per process. Called once per profiler, by `build()`.
pub(crate) fn install(config: &Config) -> Result<(), String> {
    install_exit_hook();
    if config.dump_on_signal {
        install_signal_thread()?;
    }
    Ok(())
}

fn install_exit_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        extern "C" fn at_exit() {
            // A panic must not cross into C.
            let _ = std::panic::catch_unwind(on_exit);
        }
        // SAFETY: `at_exit` is a plain `extern "C" fn()` with no arguments,
        // as `atexit` requires, that never unwinds.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// What the `atexit` handler does for each live profiler, on a thread of
/// its own: the exiting thread's thread-locals (tracing's among them, which
/// the first snapshot's overhead calibration uses) are already destroyed.
fn on_exit() {
    let work = || {
        let _ = std::panic::catch_unwind(on_exit_here);
    };
    if std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("perf-layer-exit".into())
            .spawn_scoped(s, work)
            .map(|t| t.join())
            .is_err()
    }) {
        // No thread could be started: try here.
        work();
    }
}

fn on_exit_here() {
    for profiler in live() {
        if profiler.config.dump_on_exit {
            if !profiler.final_dump_written.load(Ordering::Acquire) {
                profiler.write_final_dump();
            }
        } else {
            if let Some((lost, last)) = profiler.spans_lost() {
                profiler.warn_lost(lost, last.as_deref());
            }
        }
    }
}

#[cfg(unix)]
fn install_signal_thread() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    if *started {
        return Ok(());
    }
    // Once a first signal is being handled, a second one runs the default
    // action at once, from the handler itself (async-signal-safe).
    let ending = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&ending))
            .map_err(|e| e.to_string())?;
    }
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("perf-layer-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                ending.store(true, Ordering::SeqCst);
                let _ = std::panic::catch_unwind(|| {
                    for profiler in live() {
                        if profiler.config.dump_on_signal {
                            profiler.write_final_dump();
                        }
                    }
                });
                // The signal's usual course: the process ends, killed by it.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                // Unreachable for SIGTERM and SIGINT; exit as they would.
                std::process::exit(128 + signal);
            }
        })
        .map_err(|e| e.to_string())?;
    *started = true;
    Ok(())
}

#[cfg(not(unix))]
fn install_signal_thread() -> Result<(), String> {
    Ok(())
}
