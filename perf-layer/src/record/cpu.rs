//! On-CPU time and context switches of the spans long enough to pay for
//! reading them.
//!
//! Reading a thread's CPU time and switches is system calls (`clock_gettime`
//! and `getrusage`; three per span, four when it was off the CPU, 0.7 to
//! 1.1 µs in all on the machines here): far too much for an interval of a
//! microsecond, nothing for one of a millisecond. So it is adaptive, per
//! entered interval, not per span: what one interval costs decides, since
//! the interval is what pays for the reads. An async span that lives for a
//! whole connection is entered at every poll; its busy time is large, its
//! polls are microseconds each, and timing every poll cost a real server
//! 15% of its throughput.
//!
//! Each thread keeps, per callsite, a moving mean of its entered intervals
//! ([`Pace`]; one interval counts for at most 16 means, so a preemption does
//! not make a short callsite long). An interval is timed when that mean is at
//! least the threshold (`cpu_time_threshold`, 100 µs by default), when the
//! callsite has been met on no thread yet (a span entered once, a `main`
//! or a one-off job, is timed; a thread's first interval of a callsite met
//! before is decided by the interval the last thread to meet it first had,
//! [`Pace::first`]), and otherwise one interval in
//! [`SAMPLE_EVERY`] on average, at random gaps: a uniform sample of the
//! short ones, whose on-CPU time per interval the report scales to those
//! not timed and says so. The dump counts the
//! intervals that were not timed (`cpu.untimed_intervals`). Linux only;
//! elsewhere nothing is read and the dump's `cpu` fields are absent, not
//! zero.
//!
//! From the two readings of an entered interval:
//!
//! - **on-CPU**: the thread's CPU time in it;
//! - **off-CPU**: the rest of the interval, the thread descheduled: it
//!   blocked (a voluntary switch: sleep, blocking I/O, a contended lock) or
//!   was preempted (an involuntary switch: other threads, other processes,
//!   the hypervisor);
//! - **preempted**: the share of off-CPU time that blocking does not
//!   explain: all of it when the thread made no voluntary switch (it was
//!   preempted, or the hypervisor stole the time: a guest kernel does not
//!   charge stolen time to the thread), none when it made only voluntary
//!   ones, in proportion to the counts when there were both.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{heap, task_clock};

/// A thread's CPU time and context switches at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ThreadCpu {
    pub(crate) cpu_ns: u64,
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

/// The reading at a span's enter: the switch counts, then the CPU time.
///
/// Where this thread's task clock is open ([`super::task_clock`]) and the
/// thread was not switched out since the last reading, no system call: the
/// last reading plus the wall-clock ticks since (`now`, converted by
/// `to_ns`). Otherwise two system calls: the CPU time from
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which includes the slice the
/// thread is running now, and the switch counts from
/// `getrusage(RUSAGE_THREAD)`. `getrusage`'s own CPU time is not used: the
/// kernel brings it up to date only at a tick or a switch, so a span that
/// sleeps would be charged the CPU its thread used before the span was
/// entered (measured: 330 µs of "on-CPU" in a 1 ms sleep that followed a
/// 300 µs spin).
///
/// The order matters because a kernel with lazy preemption defers a
/// preemption due at a tick to the next return from a system call: these
/// ones. At enter the switches are read first, so a preemption at that
/// return is inside the interval and counted; at exit the CPU time is read
/// first ([`at_exit`], before the exit's timestamp), so the stall is off
/// the CPU and inside the interval too, and the switches after it
/// ([`exit_reading`], only when the interval was off the CPU at all). Where
/// a deferred preemption lands on the last call of a reading its switch is
/// missed, but its time is not: off-CPU time without a voluntary switch is
/// preemption ([`IntervalCpu::between`]).
///
/// `counts`: the interval would be timed without the task clock too, so it
/// counts for the clock's policy ([`task_clock::timed`]).
///
/// Also returns the task clock's `lock` word as it was before any call
/// (`None` where the clock is not open): a switch during this reading's
/// own calls then shows at exit, which reads the calls again.
#[inline]
pub(crate) fn at_enter(
    now: u64,
    clock: &quanta::Clock,
    counts: bool,
) -> Option<(ThreadCpu, Option<u32>)> {
    let (fast, seq) = task_clock::extrapolate(now, |a, b| clock.delta_as_nanos(a, b));
    if let Some(a) = fast {
        if counts {
            task_clock::timed(None);
        }
        return Some((
            ThreadCpu {
                cpu_ns: a.cpu_ns,
                voluntary: a.voluntary,
                involuntary: a.involuntary,
            },
            seq,
        ));
    }
    let reading = read_at_enter()?;
    task_clock::anchored(
        reading.cpu_ns,
        clock.raw(),
        reading.voluntary,
        reading.involuntary,
        seq,
    );
    if counts {
        task_clock::timed(Some(reading.voluntary.saturating_add(reading.involuntary)));
    }
    Some((reading, seq))
}

/// The system calls of [`at_enter`].
#[inline]
fn read_at_enter() -> Option<ThreadCpu> {
    let (voluntary, involuntary) = switches()?;
    Some(ThreadCpu {
        cpu_ns: cpu_ns()?,
        voluntary,
        involuntary,
    })
}

/// Whether an interval entered when the task clock's word was `seq` needs
/// the system calls at exit: the clock is not open, or the thread was
/// switched out since.
#[inline]
pub(crate) fn exit_needs_calls(seq: Option<u32>) -> bool {
    seq.is_none_or(task_clock::switched_since)
}

/// The end of an interval the thread was not switched out of (see
/// [`exit_needs_calls`]): on the CPU throughout, no switch made.
#[inline]
pub(crate) fn unswitched_exit(start: &ThreadCpu, busy_ns: u64) -> ThreadCpu {
    ThreadCpu {
        cpu_ns: start.cpu_ns.saturating_add(busy_ns),
        ..*start
    }
}

/// The first half of the reading at a span's exit, before its timestamp:
/// the task clock's `lock` word (where it is open), then the CPU time (see
/// [`at_enter`]). [`exit_reading`] completes it.
#[inline]
pub(crate) fn at_exit() -> (Option<u64>, Option<u32>) {
    let seq = task_clock::seq_now();
    (cpu_ns(), seq)
}

/// Off the CPU for less than this in an interval, the thread was not
/// switched out: a switch out and back in costs more. Its switch counts are
/// then not read (a system call saved on most spans that compute).
const SWITCH_FLOOR_NS: u64 = 2_000;

/// The reading at a span's exit: the CPU time [`at_exit`] read, and the
/// switch counts, read now when the interval of `busy_ns` spent enough of
/// itself off the CPU to have been switched out (or the task clock says it
/// was: `switched`), else those at `start`. Anchors the task clock's next
/// readings at `ticks`, while its word stays `seq` ([`at_exit`]'s).
#[inline]
pub(crate) fn exit_reading(
    start: &ThreadCpu,
    cpu_ns: u64,
    busy_ns: u64,
    switched: bool,
    ticks: u64,
    seq: Option<u32>,
) -> ThreadCpu {
    let on_cpu = cpu_ns.saturating_sub(start.cpu_ns);
    let switches = if !switched && busy_ns.saturating_sub(on_cpu) < SWITCH_FLOOR_NS {
        None
    } else {
        switches()
    };
    let (voluntary, involuntary) = switches.unwrap_or((start.voluntary, start.involuntary));
    task_clock::anchored(cpu_ns, ticks, voluntary, involuntary, seq);
    ThreadCpu {
        cpu_ns,
        voluntary,
        involuntary,
    }
}

/// This thread's CPU time in nanoseconds (the background thread reads its
/// own for the overhead estimate).
#[inline]
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    cpu_ns()
}

/// This thread's CPU time in nanoseconds.
#[inline]
fn cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The time on clock `clock` (a CPU clock: this thread's, the process's,
/// another thread's), ns; `None` when it cannot be read (a thread that has
/// exited).
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut time = std::mem::MaybeUninit::<libc::timespec>::zeroed();
    // SAFETY: `clock_gettime` fills the `timespec` it is given a pointer to
    // and reports failure by its return value.
    if unsafe { libc::clock_gettime(clock, time.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: filled by the successful call above (and zeroed before).
    let time = unsafe { time.assume_init() };
    Some(
        (time.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(time.tv_nsec as u64),
    )
}

/// This thread's voluntary and involuntary context switches so far.
#[inline]
fn switches() -> Option<(u64, u64)> {
    #[cfg(target_os = "linux")]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the `rusage` it is given a pointer to and
        // reports failure by its return value.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: filled by the successful call above (and zeroed before).
        let usage = unsafe { usage.assume_init() };
        Some((usage.ru_nvcsw as u64, usage.ru_nivcsw as u64))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Whether this platform can time spans on the CPU.
pub(crate) fn available() -> bool {
    read_at_enter().is_some()
}

/// The interval from which spans are timed on a thread whose task clock is
/// open, when the threshold for the system calls is `threshold_ns`: a
/// reading then costs tens of nanoseconds, not a microsecond.
pub(crate) fn clock_threshold_ns(threshold_ns: u32) -> u32 {
    threshold_ns.min(CLOCK_THRESHOLD_NS)
}

/// See [`clock_threshold_ns`]: about 1% of such an interval.
const CLOCK_THRESHOLD_NS: u32 = 2_000;

/// Of a callsite's intervals that are shorter than the threshold, one in
/// this many is timed: a uniform sample for their on-CPU time, at a
/// thousandth of a system call per interval. Part of the dump's format.
pub(crate) const SAMPLE_EVERY: u32 = crate::dump::CPU_SAMPLE_EVERY;

/// Whether an interval is timed on the CPU, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// Short: not timed.
    Skip,
    /// Its callsite's intervals are long here (or not known yet): timed,
    /// standing for itself.
    Long,
    /// Short, and the one in [`SAMPLE_EVERY`] timed: it stands for the
    /// short intervals that were not (the report scales it to them).
    Sampled,
    /// Short for the system calls but long enough for the task clock, which
    /// is open: timed, standing for itself, and not counted as a reading
    /// the clock saves (without it, the interval would not be timed).
    Clock,
}

/// Each callsite's first interval on the thread that met it last, ns, by
/// tag ([`Pace::UNSEEN`] before any): what a thread's first interval of a
/// callsite is decided by ([`Pace::first`]). 32 KiB.
static FIRST_SEEN: [AtomicU32; heap::MAX_TAGS] =
    [const { AtomicU32::new(Pace::UNSEEN) }; heap::MAX_TAGS];

/// Draws each new pace's start in the sample's countdown.
static STARTS: AtomicU32 = AtomicU32::new(0);

/// How long a callsite's entered intervals last on one thread: the
/// decision to time its next one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Moving mean of its intervals, ns (weight 1/64 for the newest: the
    /// reads' cost is a share of the callsite's busy time, which its
    /// long-run mean sets; a slow first call is forgotten within a few
    /// hundred intervals, their reads a fraction of its own time);
    /// [`Pace::UNSEEN`]
    /// before its first interval.
    mean_ns: u32,
    /// Short intervals left until the next sampled one.
    left: u16,
    /// The state drawing each gap between sampled intervals (xorshift).
    draw: u16,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            mean_ns: Self::UNSEEN,
            left: SAMPLE_EVERY as u16,
            draw: 0xACE1,
        }
    }
}

impl Pace {
    const UNSEEN: u32 = u32::MAX;
    /// The most one interval counts for, in means ([`Pace::ended`]).
    const OUTLIER: i64 = 16;
    /// The newest interval's weight in the mean is one in this many. At 8,
    /// a callsite with one long interval among ten short ones (a tower-http
    /// `request` span whose `/search` route blocks 2 ms in one poll, the
    /// other routes' polls taking microseconds) never had its long ones
    /// timed: each pushed the mean up at most 16 times, capped, and the
    /// short ones after it brought it back under the threshold before the
    /// next long one, so the polls timed were the short ones after it. Its
    /// long-run mean, 185 µs, is over the threshold: at 64 the mean finds
    /// it, and the reads cost the callsite under 1% of its busy time.
    const WEIGHT: i64 = 64;

    /// Before this thread's first interval of the callsite.
    #[inline]
    pub(crate) fn unseen(&self) -> bool {
        self.mean_ns == Self::UNSEEN
    }

    /// The timing of this thread's first interval of callsite `tag`
    /// ([`Pace::unseen`]). Met on no thread before: timed, so that a span
    /// entered once (a `main`, a one-off job) is. Met before: decided by
    /// the interval the last thread to meet it first had, as if that were
    /// this thread's mean, with the sample's countdown at a random start.
    /// Timing every thread's first interval of a callsite whose intervals
    /// are short measured nothing but those where threads live for a few
    /// calls: a fresh batch job's four threads a batch timed only the first
    /// of each thread's ten 40 µs `checksum` calls, early in the thread's
    /// time slice, preempted a fortieth as much as the rest; and with the
    /// countdown at the same start on every thread, a thread of fewer than
    /// [`SAMPLE_EVERY`] calls never drew a sample.
    #[cold]
    #[inline(never)]
    pub(crate) fn first(
        &mut self,
        tag: u32,
        threshold_ns: u32,
        clock_threshold_ns: Option<u32>,
    ) -> Timing {
        let x = STARTS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9)
            .rotate_left(13);
        self.left = 1 + (x % SAMPLE_EVERY) as u16;
        self.draw = (x >> 16) as u16 | 1;
        let seen = FIRST_SEEN
            .get(tag as usize)
            .map_or(Self::UNSEEN, |s| s.load(Ordering::Relaxed));
        if seen == Self::UNSEEN {
            return Timing::Long;
        }
        self.mean_ns = seen;
        let timing = self.timing(threshold_ns, clock_threshold_ns);
        // The thread's own first interval still sets its mean whole.
        self.mean_ns = Self::UNSEEN;
        timing
    }

    /// Whether the next interval is timed, and why, given the threshold of
    /// the system calls and, when this thread's task clock is open, the
    /// clock's.
    #[inline]
    pub(crate) fn timing(&mut self, threshold_ns: u32, clock_threshold_ns: Option<u32>) -> Timing {
        if self.mean_ns >= threshold_ns {
            return Timing::Long;
        }
        if clock_threshold_ns.is_some_and(|t| self.mean_ns >= t) {
            return Timing::Clock;
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            self.left = self.next_gap();
            return Timing::Sampled;
        }
        Timing::Skip
    }

    /// The short intervals from one sampled interval to the next: 257 to
    /// 767, [`SAMPLE_EVERY`] on average. Not a fixed 512: an async span
    /// polled twice a call (an `async fn` that awaits once) had the same
    /// poll of every call sampled, the other never, when its polls differ
    /// (a fresh service's `store`: its 14 sampled polls all the 3 µs first
    /// ones, none of the 30 µs second ones).
    #[cold]
    fn next_gap(&mut self) -> u16 {
        // xorshift16 (7, 9, 8): every nonzero state, period 65,535.
        let mut x = self.draw;
        x ^= x << 7;
        x ^= x >> 9;
        x ^= x << 8;
        self.draw = x;
        let spread = SAMPLE_EVERY as u16 - 1;
        (SAMPLE_EVERY / 2) as u16 + 1 + x % spread
    }

    /// Takes in an interval that just ended.
    ///
    /// One interval counts for at most [`Pace::OUTLIER`] times the mean (and
    /// at least a microsecond): a preemption or a stray block in a short
    /// callsite's interval is wall time, not the callsite's length, and
    /// counted whole it made the callsite "long" for the next few dozen
    /// intervals, each then timed with system calls (beside two CPU hogs,
    /// a 4 ms preemption of a 2 µs poll did that about every 4 ms). A
    /// callsite that does turn long still crosses the threshold within a
    /// few intervals: the mean can grow 2.9 times an interval.
    #[inline]
    pub(crate) fn ended(&mut self, tag: u32, interval_ns: u64) {
        // Capped below the sentinel: 4.3 s is long enough to time anything.
        let x = interval_ns.min(u64::from(Self::UNSEEN - 1)) as i64;
        self.mean_ns = if self.mean_ns == Self::UNSEEN {
            first_seen(tag, x as u32);
            x as u32
        } else {
            let m = i64::from(self.mean_ns);
            let x = x.min((m * Self::OUTLIER).max(1_000));
            (m + (x - m) / Self::WEIGHT) as u32
        };
    }
}

/// This thread's first interval of callsite `tag` lasted `ns`: the next
/// thread's first is decided by it ([`Pace::first`]).
#[cold]
#[inline(never)]
fn first_seen(tag: u32, ns: u32) {
    if let Some(s) = FIRST_SEEN.get(tag as usize) {
        s.store(ns, Ordering::Relaxed);
    }
}

/// What one entered interval (or, added up, one span) measured on the CPU.
/// Small, as it travels with every span: the busy and self time it is
/// measured against are the span's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IntervalCpu {
    /// The timed intervals' busy and self time: a span's untimed intervals
    /// are not in these sums, so its CPU figures are measured against them.
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) on_cpu_ns: u64,
    /// On-CPU time while innermost: on-CPU minus the children's (a child
    /// that was not timed counts as on the CPU but for the off-CPU time of
    /// timed spans inside it).
    pub(crate) self_on_cpu_ns: u64,
    pub(crate) preempted_ns: u64,
    /// Preempted while innermost: its self time off the CPU, split by the
    /// switches its children (timed ones) did not have.
    pub(crate) self_preempted_ns: u64,
    pub(crate) voluntary: u32,
    pub(crate) involuntary: u32,
}

/// What the timed children of an interval measured, for its self figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Children {
    /// Their on-CPU time (a child not timed counts as on the CPU).
    pub(crate) on_cpu_ns: u64,
    /// Their time preempted, each split by its own switches.
    pub(crate) preempted_ns: u64,
    /// Their switches.
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

/// The part of `off_ns` off the CPU that blocking does not explain, given
/// the switches in it. Blocking always gives up the CPU with a voluntary
/// switch. Off-CPU time without one is preemption, with an involuntary
/// switch or with none: a guest kernel does not count the time the
/// hypervisor stole as the thread's CPU time, and does not switch the thread
/// out for it either.
fn preempted_part(off_ns: u64, voluntary: u64, involuntary: u64) -> u64 {
    match (voluntary, involuntary) {
        (0, _) => off_ns,
        (_, 0) => 0,
        (v, i) => (u128::from(off_ns) * u128::from(i) / (u128::from(v) + u128::from(i))) as u64,
    }
}

impl IntervalCpu {
    /// The figures of an interval of `busy_ns` between two readings.
    pub(crate) fn between(
        start: &ThreadCpu,
        end: &ThreadCpu,
        busy_ns: u64,
        self_ns: u64,
        children: &Children,
    ) -> Self {
        // The thread's CPU clock and the span's clock are separate: clamp so
        // on-CPU never exceeds the interval.
        let mut on_cpu_ns = end.cpu_ns.saturating_sub(start.cpu_ns).min(busy_ns);
        let voluntary = end.voluntary.saturating_sub(start.voluntary);
        let involuntary = end.involuntary.saturating_sub(start.involuntary);
        // Less off the CPU than a switch costs, and no switch: the thread
        // never left, the two clocks were read on either side of a system
        // call (a microsecond or two of "preemption" in every timed poll of
        // a few microseconds, a third of their time).
        if voluntary == 0 && involuntary == 0 && busy_ns - on_cpu_ns < SWITCH_FLOOR_NS {
            on_cpu_ns = busy_ns;
        }
        let off = busy_ns - on_cpu_ns;
        // Split over the time it was innermost, by the switches that were
        // not its children's: a parent that sleeps around a child that is
        // preempted is charged its sleep, not the child's queueing.
        let self_on_cpu_ns = on_cpu_ns.saturating_sub(children.on_cpu_ns).min(self_ns);
        let self_preempted_ns = preempted_part(
            self_ns - self_on_cpu_ns,
            voluntary.saturating_sub(children.voluntary),
            involuntary.saturating_sub(children.involuntary),
        );
        // The whole interval's: its own part and its timed children's, each
        // split by its own switches. One split over all of them mixed a
        // child's blocking with the parent's preemption: a parent preempted
        // while it computes around a child blocked on a lock read a third of
        // the lock's wait as preempted.
        let preempted_ns = self_preempted_ns
            .saturating_add(children.preempted_ns)
            .min(off);
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            busy_ns,
            self_ns,
            on_cpu_ns,
            self_on_cpu_ns,
            preempted_ns,
            self_preempted_ns,
            voluntary: count(voluntary),
            involuntary: count(involuntary),
        }
    }

    pub(crate) fn add(&mut self, other: &IntervalCpu) {
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.on_cpu_ns = self.on_cpu_ns.saturating_add(other.on_cpu_ns);
        self.self_on_cpu_ns = self.self_on_cpu_ns.saturating_add(other.self_on_cpu_ns);
        self.preempted_ns = self.preempted_ns.saturating_add(other.preempted_ns);
        self.self_preempted_ns = self
            .self_preempted_ns
            .saturating_add(other.self_preempted_ns);
        self.voluntary = self.voluntary.saturating_add(other.voluntary);
        self.involuntary = self.involuntary.saturating_add(other.involuntary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads living ten calls each of a short callsite: their first
    /// intervals are decided as the first thread's was, and the sample
    /// draws from every thread's calls alike.
    #[test]
    fn a_thread_s_first_interval_is_decided_by_the_last_thread_s_first() {
        let (short, long, never) = (
            heap::MAX_TAGS as u32 - 1,
            heap::MAX_TAGS as u32 - 2,
            heap::MAX_TAGS as u32 - 3,
        );
        // Met nowhere before: timed, and its first interval is kept.
        let mut first = Pace::default();
        assert_eq!(first.first(never, 100_000, None), Timing::Long);
        let mut pace = Pace::default();
        assert_eq!(pace.first(short, 100_000, None), Timing::Long);
        pace.ended(short, 40_000);
        let mut sampled = 0;
        for _ in 0..1_000 {
            let mut thread = Pace::default();
            for call in 0..10 {
                let t = if thread.unseen() {
                    thread.first(short, 100_000, None)
                } else {
                    thread.timing(100_000, None)
                };
                assert_ne!(t, Timing::Long, "call {call} of a short callsite");
                sampled += usize::from(t == Timing::Sampled);
                thread.ended(short, 40_000);
            }
        }
        // 10,000 intervals, one in 512 sampled: about 20, where a
        // countdown starting at 512 on every thread drew none.
        assert!((8..=40).contains(&sampled), "{sampled}");
        // A callsite whose first interval was long is timed on a new
        // thread, and a thread's own first interval sets its mean whole.
        let mut pace = Pace::default();
        pace.first(long, 100_000, None);
        pace.ended(long, 2_000_000);
        let mut next = Pace::default();
        assert_eq!(next.first(long, 100_000, None), Timing::Long);
        next.ended(long, 2_000);
        assert_ne!(next.timing(100_000, None), Timing::Long);
    }

    #[test]
    fn long_intervals_are_timed_and_short_ones_sampled() {
        let mut pace = Pace::default();
        // Unseen: timed, so a span entered once is.
        assert_eq!(pace.timing(100_000, None), Timing::Long);
        pace.ended(0, 500_000);
        assert_eq!(pace.timing(100_000, None), Timing::Long);
        // Polls of 2 µs: the mean falls under the threshold within about a
        // hundred, then one in SAMPLE_EVERY is timed.
        for _ in 0..300 {
            pace.ended(0, 2_000);
        }
        let timed = (0..200 * SAMPLE_EVERY)
            .filter(|_| {
                let t = pace.timing(100_000, None);
                pace.ended(0, 2_000);
                t != Timing::Skip
            })
            .count();
        assert!((185..=215).contains(&timed), "{timed} sampled of 200 x 512");
        assert_eq!(pace.timing(100_000, None), Timing::Skip);
        // Long again: timed again within a few dozen intervals (each counts
        // for at most 16 means: 1.23 times the mean an interval).
        for _ in 0..24 {
            pace.ended(0, 2_000_000);
        }
        assert_eq!(pace.timing(100_000, None), Timing::Long);
        // One long interval among ten short ones, whose long-run mean is
        // over the threshold (2 ms and ten of 3 µs: 185 µs): the mean finds
        // it, and the long ones are timed.
        let mut mixed = Pace::default();
        let mut long_timed = 0;
        for i in 0..11 * 200 {
            let long = i % 11 == 10;
            let timed = mixed.timing(100_000, None) == Timing::Long;
            if long && timed && i > 11 * 100 {
                long_timed += 1;
            }
            mixed.ended(0, if long { 2_000_000 } else { 3_000 });
        }
        assert_eq!(long_timed, 100, "of the last 100 long intervals");
        // One preemption of 4 ms in polls of 2 µs does not make them long.
        let mut polls = Pace::default();
        for _ in 0..64 {
            polls.ended(0, 2_000);
        }
        polls.ended(0, 4_000_000);
        assert_ne!(polls.timing(100_000, None), Timing::Long);
        // Beyond the cap it is still a mean, not the sentinel.
        pace.ended(0, u64::MAX);
        assert_eq!(pace.timing(100_000, None), Timing::Long);
        // 20 µs intervals: sampled for the system calls, all timed on the
        // task clock, as the clock's own kind (once the 4 s interval above
        // has faded from the mean).
        for _ in 0..1_024 {
            pace.ended(0, 20_000);
        }
        assert_eq!(pace.timing(100_000, Some(2_000)), Timing::Clock);
        assert_eq!(pace.timing(100_000, None), Timing::Skip);
    }

    #[test]
    fn gaps_between_samples_average_sample_every_and_do_not_alias_with_polls() {
        let mut pace = Pace::default();
        let gaps: Vec<u64> = (0..4_096).map(|_| u64::from(pace.next_gap())).collect();
        let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64;
        assert!(
            (mean - f64::from(SAMPLE_EVERY)).abs() < 8.0,
            "mean gap {mean}"
        );
        assert!(gaps.iter().all(|g| (257..=767).contains(g)));
        // An async span polled twice a call: a 3 µs poll, then a 30 µs one.
        // Both kinds are sampled, about as often.
        let mut pace = Pace::default();
        let mut sampled = [0u32; 2];
        for i in 0..400 * SAMPLE_EVERY as usize {
            let kind = i % 2;
            if pace.timing(100_000, None) == Timing::Sampled {
                sampled[kind] += 1;
            }
            pace.ended(0, [3_000, 30_000][kind]);
        }
        let [first, second] = sampled;
        assert!(first > 150 && second > 150, "sampled polls {sampled:?}");
    }

    fn at(cpu_ns: u64, voluntary: u64, involuntary: u64) -> ThreadCpu {
        ThreadCpu {
            cpu_ns,
            voluntary,
            involuntary,
        }
    }

    #[test]
    fn off_cpu_time_is_split_by_what_switched_the_thread_out() {
        let slept = IntervalCpu::between(
            &at(0, 0, 0),
            &at(100, 3, 0),
            1_000,
            1_000,
            &Children::default(),
        );
        assert_eq!((slept.on_cpu_ns, slept.preempted_ns), (100, 0));
        let preempted = IntervalCpu::between(
            &at(0, 0, 0),
            &at(600, 0, 2),
            1_000,
            1_000,
            &Children::default(),
        );
        assert_eq!(preempted.preempted_ns, 400);
        let both = IntervalCpu::between(
            &at(0, 0, 0),
            &at(0, 1, 3),
            1_000,
            1_000,
            &Children::default(),
        );
        assert_eq!(both.preempted_ns, 750);
        // Off the CPU without any switch: stolen by the hypervisor.
        let stolen = IntervalCpu::between(
            &at(0, 0, 0),
            &at(7_000, 0, 0),
            10_000,
            10_000,
            &Children::default(),
        );
        assert_eq!(stolen.preempted_ns, 3_000);
        // Less than a switch costs, without one: the clocks read apart, on
        // the CPU throughout.
        let read_apart = IntervalCpu::between(
            &at(0, 0, 0),
            &at(2_500, 0, 0),
            4_000,
            4_000,
            &Children::default(),
        );
        assert_eq!((read_apart.on_cpu_ns, read_apart.preempted_ns), (4_000, 0));
        // A child's on-CPU time is not the parent's own.
        let parent = IntervalCpu::between(
            &at(0, 0, 0),
            &at(5_000, 0, 0),
            10_000,
            4_000,
            &Children {
                on_cpu_ns: 3_000,
                ..Children::default()
            },
        );
        assert_eq!(parent.self_on_cpu_ns, 2_000);
        // A parent that slept (one voluntary switch) around a child that
        // was preempted twice: its own off-CPU time is blocking.
        let sleeper = IntervalCpu::between(
            &at(0, 0, 0),
            &at(500, 1, 2),
            1_000,
            500,
            &Children {
                on_cpu_ns: 300,
                preempted_ns: 200,
                voluntary: 0,
                involuntary: 2,
            },
        );
        // Preempted: the child's 200 ns, not two thirds of all 500 ns off.
        assert_eq!((sleeper.self_on_cpu_ns, sleeper.preempted_ns), (200, 200));
        assert_eq!(sleeper.self_preempted_ns, 0);
        // Never more on-CPU time than the interval had.
        let clamped = IntervalCpu::between(
            &at(0, 0, 0),
            &at(5_000, 0, 0),
            1_000,
            1_000,
            &Children::default(),
        );
        assert_eq!(clamped.on_cpu_ns, 1_000);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_thread_that_spins_gains_cpu_time() {
        // However busy the machine, a spinning thread's CPU clock moves;
        // bounded in wall time.
        let start = read_at_enter().unwrap();
        let t = std::time::Instant::now();
        let mut end = start.cpu_ns;
        while end - start.cpu_ns < 10_000_000 {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "the CPU clock did not move: {start:?} {end}"
            );
            std::hint::black_box(0);
            end = at_exit().0.unwrap();
        }
        // And never faster than the wall clock.
        assert!(u128::from(end - start.cpu_ns) <= t.elapsed().as_nanos() + 1_000_000);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn switches_are_read_at_exit_only_when_the_thread_was_off_the_cpu() {
        let start = ThreadCpu {
            cpu_ns: 0,
            voluntary: u64::MAX,
            involuntary: u64::MAX,
        };
        // On the CPU all along: the start's counts, no system call.
        let computed = exit_reading(&start, 10_000, 10_500, false, 0, None);
        assert_eq!(computed.voluntary, u64::MAX);
        // Off it for 1 ms: the thread's real counts, read now.
        let slept = exit_reading(&start, 10_000, 1_010_000, false, 0, None);
        assert_ne!(slept.voluntary, u64::MAX);
        // The task clock saw a switch: read now however short.
        let switched = exit_reading(&start, 10_000, 10_500, true, 0, None);
        assert_ne!(switched.voluntary, u64::MAX);
    }
}
