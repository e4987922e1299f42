//! A recording thread's last word: as it exits, the time it spent waiting
//! for a core over its life, for the sampler.
//!
//! The sampler reads each live thread's wait for a core at every sample
//! (`background::procfs::CoreWaits`); a thread that started and ended
//! between two samples was never read, and one that ended took its last
//! piece with it. A fresh batch job that ran each batch on four scoped
//! threads (about 10 ms each) on two cores read 0.11 threads waiting for
//! a core where its spans were preempted 1.3 threads' worth, so the
//! report, which bounds the spans' preempted time by the process's wait,
//! moved nine tenths of it to blocked, and a pure computation read as a
//! queue ("serialization", medium).
//!
//! So a thread that has recorded a span reads its own
//! `/proc/thread-self/schedstat` in a thread-local destructor, while some
//! sampler listens ([`Listening`]), and leaves its id and total in a ring
//! of [`KEPT`] entries each sampler drains from its own cursor ([`drain`]).
//! Three system calls at the thread's exit (about 2 µs in the
//! `thread_churn` bench), none on the span path; no allocation, and no
//! wait: an exit that finds the ring held through a few hundred tries
//! says nothing. Off Linux, nothing.

#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The ring's entries: the threads' exits kept between two samples (1,024
    /// in 100 ms is ten thousand threads a second). Past it the oldest go,
    /// and their waits are not counted (as before the ring).
    pub(crate) const KEPT: usize = 1024;

    /// Samplers listening: while none is, an exit reads nothing.
    static LISTENERS: AtomicUsize = AtomicUsize::new(0);

    /// The threads' exits, in order.
    static ENDED: Mutex<Ring> = Mutex::new(Ring {
        next: 0,
        entries: [(0, 0); KEPT],
    });

    /// Exit `n` is at `entries[n % KEPT]` while `n + KEPT > next`.
    struct Ring {
        /// The number of the next exit.
        next: u64,
        /// Thread id and its total wait for a core, ns.
        entries: [(i32, u64); KEPT],
    }

    impl Ring {
        fn push(&mut self, tid: i32, waited_ns: u64) {
            self.entries[(self.next % KEPT as u64) as usize] = (tid, waited_ns);
            self.next += 1;
        }
    }

    /// A sampler listening while it lives: threads say their waits as they
    /// exit. Made where the sampler's cursor starts ([`drain`]).
    #[derive(Debug)]
    pub(crate) struct Listening {
        /// The next exit this listener has not read.
        cursor: u64,
    }

    impl Default for Listening {
        fn default() -> Self {
            LISTENERS.fetch_add(1, Ordering::Relaxed);
            Self {
                cursor: lock().next,
            }
        }
    }

    impl Drop for Listening {
        fn drop(&mut self) {
            LISTENERS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn lock() -> std::sync::MutexGuard<'static, Ring> {
        ENDED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `f(tid, total wait ns)` for each thread that exited since
    /// this listener's last drain, oldest first (those the ring still
    /// holds). The entries are copied out first: `f` runs with the ring
    /// free, so an exit trying it meanwhile does not give up.
    pub(crate) fn drain(listening: &mut Listening, mut f: impl FnMut(i32, u64)) {
        let mut taken = [(0, 0); KEPT];
        let count = {
            let ring = lock();
            let from = listening.cursor.max(ring.next.saturating_sub(KEPT as u64));
            for (slot, n) in taken.iter_mut().zip(from..ring.next) {
                *slot = ring.entries[(n % KEPT as u64) as usize];
            }
            listening.cursor = ring.next;
            (ring.next - from) as usize
        };
        for &(tid, waited) in &taken[..count] {
            f(tid, waited);
        }
    }

    /// Says this thread's wait at its exit. Made at its first recorded
    /// span ([`arm`]).
    struct AtExit;

    impl Drop for AtExit {
        fn drop(&mut self) {
            if LISTENERS.load(Ordering::Relaxed) == 0 {
                return;
            }
            if let Some(waited) = own_run_delay() {
                // SAFETY: `gettid` has no preconditions.
                let tid = unsafe { libc::gettid() };
                if let Some(mut ring) = try_lock() {
                    ring.push(tid, waited);
                }
            }
        }
    }

    /// The ring, unless another thread holds it through [`TRIES`] tries: an
    /// exit never waits on a lock. (A process forked while another thread
    /// held it has it locked for good; that thread is not in the child.)
    fn try_lock() -> Option<std::sync::MutexGuard<'static, Ring>> {
        for _ in 0..TRIES {
            match ENDED.try_lock() {
                Ok(ring) => return Some(ring),
                Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
            }
        }
        None
    }

    /// An exit's tries at the ring: another exit holds it for a push, tens
    /// of nanoseconds.
    const TRIES: u32 = 256;

    thread_local! {
        static AT_EXIT: AtExit = const { AtExit };
    }

    /// This thread will say its wait as it exits. Cold: once a thread and
    /// layer, where its stack is made.
    pub(crate) fn arm() {
        let _ = AT_EXIT.try_with(|_| ());
    }

    /// This thread's time runnable and waiting for a core since it
    /// started, ns (`/proc/thread-self/schedstat`'s second field), read
    /// with no allocation: a thread-local destructor may run after the
    /// counting allocator's.
    fn own_run_delay() -> Option<u64> {
        let mut buf = [0u8; 128];
        // SAFETY: a NUL-terminated path; the descriptor is closed below.
        let fd = unsafe {
            libc::open(
                c"/proc/thread-self/schedstat".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        // SAFETY: the descriptor opened above, closed once.
        unsafe { libc::close(fd) };
        let text = std::str::from_utf8(buf.get(..usize::try_from(n).ok()?)?).ok()?;
        text.split_ascii_whitespace().nth(1)?.parse().ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Tests that push to the process-wide ring run one at a time.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

        #[test]
        fn an_armed_thread_says_its_wait_as_it_exits_to_each_listener_once() {
            let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
            let mut a = Listening::default();
            let mut b = Listening::default();
            let tid = std::thread::spawn(|| {
                arm();
                // SAFETY: `gettid` has no preconditions.
                unsafe { libc::gettid() }
            })
            .join()
            .unwrap();
            let mut seen = Vec::new();
            drain(&mut a, |t, w| seen.push((t, w)));
            assert!(seen.iter().any(|&(t, _)| t == tid), "{seen:?} lacks {tid}");
            let mut again = Vec::new();
            drain(&mut a, |t, w| again.push((t, w)));
            assert!(
                !again.iter().any(|&(t, _)| t == tid),
                "read twice: {again:?}"
            );
            let mut other = Vec::new();
            drain(&mut b, |t, w| other.push((t, w)));
            assert!(
                other.iter().any(|&(t, _)| t == tid),
                "{other:?} lacks {tid}"
            );
            // A thread that never armed says nothing.
            // SAFETY: `gettid` has no preconditions.
            let quiet = std::thread::spawn(|| unsafe { libc::gettid() })
                .join()
                .unwrap();
            let mut none = Vec::new();
            drain(&mut a, |t, w| none.push((t, w)));
            assert!(!none.iter().any(|&(t, _)| t == quiet), "{none:?}");
        }

        #[test]
        fn a_listener_behind_the_ring_reads_the_latest_it_holds() {
            let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
            let mut behind = Listening::default();
            for i in 0..KEPT as u64 + 10 {
                lock().push(-1, i);
            }
            let mut seen = Vec::new();
            drain(&mut behind, |t, w| {
                if t == -1 {
                    seen.push(w)
                }
            });
            // Other tests' threads may exit meanwhile and push the oldest
            // out sooner: never more than the ring, in order, the latest.
            assert!(
                seen.len() <= KEPT && seen.len() >= KEPT - 64,
                "{}",
                seen.len()
            );
            assert!(seen.windows(2).all(|w| w[0] + 1 == w[1]), "in order");
            assert!(
                seen.first().is_some_and(|&w| w >= 10),
                "the oldest ten gone"
            );
            assert_eq!(seen.last(), Some(&(KEPT as u64 + 9)));
        }

        #[test]
        fn an_exit_never_waits_for_the_ring() {
            let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
            let mut listening = Listening::default();
            let held = lock();
            let tid = std::thread::spawn(|| {
                arm();
                // SAFETY: `gettid` has no preconditions.
                unsafe { libc::gettid() }
            })
            .join()
            .unwrap();
            drop(held);
            let mut seen = Vec::new();
            drain(&mut listening, |t, _| seen.push(t));
            assert!(!seen.contains(&tid), "pushed while held: {seen:?}");
        }

        #[test]
        fn the_own_wait_parses() {
            assert!(
                own_run_delay().is_some(),
                "a kernel without scheduler statistics?"
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn arm() {}
