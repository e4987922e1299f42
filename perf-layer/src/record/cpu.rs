//! On-CPU time and context switches of the spans long enough to pay for
//! reading them.
//!
//! Reading a thread's CPU time is a system call (`getrusage(RUSAGE_THREAD)`,
//! a few hundred nanoseconds): far too much for a span of a microsecond,
//! nothing for one of a millisecond. So it is adaptive, per callsite: once a
//! callsite's spans average at least the threshold of busy time
//! (`cpu_time_threshold`, 50 µs by default), its enters and exits read the
//! thread's CPU time and its voluntary and involuntary context switches.
//! Shorter spans pay one flag check. Linux only; elsewhere nothing is read
//! and the dump's `cpu` fields are absent, not zero.
//!
//! From the two readings of an entered interval:
//!
//! - **on-CPU**: the thread's CPU time in it;
//! - **off-CPU**: the rest of the interval, the thread descheduled: it
//!   blocked (a voluntary switch: sleep, blocking I/O, a contended lock) or
//!   was preempted (an involuntary switch: other threads, other processes,
//!   the hypervisor);
//! - **preempted**: the share of off-CPU time the involuntary switches
//!   explain (all of it when there were only involuntary switches, in
//!   proportion to the counts when there were both).

/// A thread's CPU time and context switches at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ThreadCpu {
    pub(crate) cpu_ns: u64,
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

/// This thread's CPU time and switches, `None` where the platform cannot
/// say.
#[inline]
pub(crate) fn now() -> Option<ThreadCpu> {
    #[cfg(target_os = "linux")]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the `rusage` it is given a pointer to and
        // reports failure by its return value.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: filled by the successful call above (and zeroed before).
        let u = unsafe { usage.assume_init() };
        let ns = |t: libc::timeval| {
            (t.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_usec as u64 * 1_000)
        };
        Some(ThreadCpu {
            cpu_ns: ns(u.ru_utime).saturating_add(ns(u.ru_stime)),
            voluntary: u.ru_nvcsw as u64,
            involuntary: u.ru_nivcsw as u64,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Whether this platform can time spans on the CPU.
pub(crate) fn available() -> bool {
    now().is_some()
}

/// What one entered interval measured on the CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IntervalCpu {
    /// The interval's length (busy time), for the ratios.
    pub(crate) busy_ns: u64,
    /// Its self time (busy minus entered children), likewise.
    pub(crate) self_ns: u64,
    pub(crate) on_cpu_ns: u64,
    /// On-CPU time while innermost: on-CPU minus the children's (a child
    /// that was not timed counts its whole interval as on-CPU: short spans
    /// compute).
    pub(crate) self_on_cpu_ns: u64,
    pub(crate) preempted_ns: u64,
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

impl IntervalCpu {
    /// The figures of an interval of `busy_ns` between two readings.
    pub(crate) fn between(
        start: &ThreadCpu,
        end: &ThreadCpu,
        busy_ns: u64,
        self_ns: u64,
        children_on_cpu_ns: u64,
    ) -> Self {
        // The thread's CPU clock and the span's clock are separate: clamp so
        // on-CPU never exceeds the interval.
        let on_cpu_ns = end.cpu_ns.saturating_sub(start.cpu_ns).min(busy_ns);
        let voluntary = end.voluntary.saturating_sub(start.voluntary);
        let involuntary = end.involuntary.saturating_sub(start.involuntary);
        let off = busy_ns - on_cpu_ns;
        let preempted_ns = match (voluntary, involuntary) {
            (_, 0) => 0,
            (0, _) => off,
            (v, i) => (u128::from(off) * u128::from(i) / u128::from(v + i)) as u64,
        };
        Self {
            busy_ns,
            self_ns,
            on_cpu_ns,
            self_on_cpu_ns: on_cpu_ns.saturating_sub(children_on_cpu_ns).min(self_ns),
            preempted_ns,
            voluntary,
            involuntary,
        }
    }

    pub(crate) fn add(&mut self, other: &IntervalCpu) {
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.on_cpu_ns = self.on_cpu_ns.saturating_add(other.on_cpu_ns);
        self.self_on_cpu_ns = self.self_on_cpu_ns.saturating_add(other.self_on_cpu_ns);
        self.preempted_ns = self.preempted_ns.saturating_add(other.preempted_ns);
        self.voluntary = self.voluntary.saturating_add(other.voluntary);
        self.involuntary = self.involuntary.saturating_add(other.involuntary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cpu_ns: u64, voluntary: u64, involuntary: u64) -> ThreadCpu {
        ThreadCpu {
            cpu_ns,
            voluntary,
            involuntary,
        }
    }

    #[test]
    fn off_cpu_time_is_split_by_what_switched_the_thread_out() {
        let slept = IntervalCpu::between(&at(0, 0, 0), &at(100, 3, 0), 1_000, 1_000, 0);
        assert_eq!((slept.on_cpu_ns, slept.preempted_ns), (100, 0));
        let preempted = IntervalCpu::between(&at(0, 0, 0), &at(600, 0, 2), 1_000, 1_000, 0);
        assert_eq!(preempted.preempted_ns, 400);
        let both = IntervalCpu::between(&at(0, 0, 0), &at(0, 1, 3), 1_000, 1_000, 0);
        assert_eq!(both.preempted_ns, 750);
        // A child's on-CPU time is not the parent's own.
        let parent = IntervalCpu::between(&at(0, 0, 0), &at(900, 0, 0), 1_000, 400, 600);
        assert_eq!(parent.self_on_cpu_ns, 300);
        // Never more on-CPU time than the interval had.
        let clamped = IntervalCpu::between(&at(0, 0, 0), &at(5_000, 0, 0), 1_000, 1_000, 0);
        assert_eq!(clamped.on_cpu_ns, 1_000);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_thread_that_spins_gains_cpu_time() {
        let start = now().unwrap();
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::black_box(0);
        }
        let end = now().unwrap();
        assert!(end.cpu_ns - start.cpu_ns >= 10_000_000, "{start:?} {end:?}");
    }
}
