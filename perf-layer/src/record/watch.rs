//! Which span each thread is inside, for the background thread to watch.
//!
//! A span that stays innermost on its thread while the thread is off the
//! CPU waits; what the rest of the process did with the CPU meanwhile tells
//! an idle wait (a sleep, a read: the cores idle too) from a wait on work
//! running elsewhere (a pool it joined, a lock's holder computing, a
//! channel's sender), where removing the wait gives nothing back by itself
//! ([`crate::background::waits`]).
//!
//! The span path's part is one relaxed store, at every enter and exit, to a
//! word only its thread writes: the innermost callsite's tag and a count of
//! the thread's pushes and pops, so that a reader who sees the same word
//! twice knows the same span stayed innermost in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// One thread's innermost span, as its stack publishes it.
#[derive(Debug)]
pub(crate) struct Watch {
    /// `pushes_and_pops << 32 | tag`, written by the owning thread only.
    state: AtomicU64,
    /// The thread's CPU clock, read from the background thread.
    #[cfg(target_os = "linux")]
    clock: libc::clockid_t,
    /// The thread's id, for its scheduler state in `/proc`.
    #[cfg(target_os = "linux")]
    tid: i32,
}

impl Watch {
    /// The calling thread's watch; `None` where another thread's CPU time
    /// cannot be read.
    fn of_this_thread() -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: `pthread_self` is always valid, and the call writes the
            // clock id it is given a pointer to, reporting failure by its
            // return value.
            if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } != 0 {
                return None;
            }
            Some(Watch {
                state: AtomicU64::new(0),
                clock,
                // SAFETY: `gettid` has no preconditions.
                tid: unsafe { libc::gettid() },
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Publishes `tag` as the thread's innermost callsite, at its `count`th
    /// push or pop.
    #[inline]
    pub(crate) fn publish(&self, count: u32, tag: u32) {
        self.state
            .store((u64::from(count) << 32) | u64::from(tag), Ordering::Relaxed);
    }

    /// What the thread published last.
    pub(crate) fn state(&self) -> u64 {
        self.state.load(Ordering::Relaxed)
    }

    /// The tag in a published state.
    pub(crate) fn tag_of(state: u64) -> u32 {
        state as u32
    }

    /// The thread's id (the kernel's).
    #[cfg(target_os = "linux")]
    pub(crate) fn tid(&self) -> i32 {
        self.tid
    }

    /// The thread's CPU time, ns; `None` once it cannot be read (the thread
    /// is gone).
    pub(crate) fn cpu_ns(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            super::cpu::clock_ns(self.clock)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

/// Every thread's watch of one layer instance, registered the first time
/// the thread's stack finds its shard (not on the span path's common case).
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Something reads the watches (the background thread samples): when
    /// not, threads publish nothing.
    on: bool,
    threads: Mutex<Vec<Arc<Watch>>>,
}

impl Watched {
    /// Watches that are read when `on`.
    pub(crate) fn new(on: bool) -> Self {
        Self {
            on,
            threads: Mutex::default(),
        }
    }

    /// A watch for the calling thread, registered here; `None` when nothing
    /// reads them.
    #[cold]
    pub(crate) fn register(&self) -> Option<Arc<Watch>> {
        if !self.on {
            return None;
        }
        let _pause = super::alloc::PauseCounting::new();
        let watch = Arc::new(Watch::of_this_thread()?);
        self.threads.lock().push(Arc::clone(&watch));
        Some(watch)
    }

    /// Runs `f` on every live thread's watch, forgetting those whose thread
    /// is gone (its stack held the other reference).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Watch>)) {
        let mut threads = self.threads.lock();
        threads.retain(|w| Arc::strong_count(w) > 1);
        for w in threads.iter() {
            f(w);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_gone_threads_watch_is_forgotten_and_a_live_ones_clock_reads() {
        let watched = Watched::new(true);
        std::thread::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    let watch = watched.register().expect("a watch");
                    watch.publish(1, 7);
                    assert_eq!(Watch::tag_of(watch.state()), 7);
                });
            }
        });
        let mut live = 0;
        watched.for_each(|_| live += 1);
        assert_eq!(live, 0, "the threads are gone");
        let mine = watched.register().expect("a watch");
        let mut read = None;
        watched.for_each(|w| read = w.cpu_ns());
        assert!(read.is_some_and(|ns| ns > 0));
        drop(mine);
        // Nothing reads them: no watch.
        assert!(Watched::new(false).register().is_none());
    }
}
