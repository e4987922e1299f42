//! What a span waiting off the CPU waited beside: every [`WATCH_EVERY`]
//! (longer with many threads, and up to [`IDLE_BACKOFF`] times longer in a
//! program idle for about 100 ms; a probe is skipped when no thread is
//! inside a span), the background thread reads each thread's
//! published innermost callsite ([`crate::record::watch`]) and CPU time,
//! and the process's CPU time, twice, [`PROBE`] apart. A thread whose
//! innermost span stayed the same over the probe (no push or pop) while it
//! ran under a tenth of it waited there; the probe's length, and the
//! process's CPU time over it less that thread's, are added to the
//! callsite's [`WaitSums`]. Short probes catch short waits (a 300 µs
//! blocking write) that a whole interval would not hold; spaced, they cost
//! little: about 3 ms of the background thread's CPU a second with ten
//! threads (each probe lists `/proc/self/task` and reads every thread's CPU
//! clock twice), counted in the dump's overhead estimate.
//!
//! `others_cpu_ns / wait_ns` is then how many cores the rest of the
//! process kept busy while the callsite's spans waited: about none for a
//! sleep or a read in a program that waits for it, all of them for a
//! thread that waits for its pool's work.
//!
//! Busy cores are not all the rest of the process wanted: beside other
//! processes (a shared CI runner, a noisy neighbour), a pool of three
//! spinning threads on two cores got one, and its join seemed to wait
//! beside an idle core. Where a waiting thread is blocked in a futex
//! (`/proc/self/task/<tid>/syscall`: a join, a lock, a channel, waiting for
//! another thread), the probe's end also reads the state of every thread
//! that ran under half the probe (`/proc/self/task/<tid>/stat`): one
//! runnable then waited for a core, and wanted the whole probe, unless it
//! ran only moments each time it got a core since its schedule was last
//! read, or got none since and did so before ([`YIELDS_BELOW_NS`], from
//! `/proc/self/task/<tid>/schedstat`: an idle pool's worker spinning on
//! `sched_yield`); one that ran over half
//! wanted the whole probe too. That is `others_wanted_ns`. A sleep or a
//! read waits for no thread, and the threads runnable beside it may be
//! idle workers yielding (beside two other processes, a fresh batch
//! program's idle rayon workers read 1.5 cores wanted beside its read):
//! its `others_wanted_ns` is its `others_cpu_ns`. Read only then, once a
//! probe: reading every thread's state at both ends of every probe slowed
//! a debug build's pipeline by 1 to 4% of its wall time.
//!
//! A wait shorter than a probe is never a probe's interval. At the
//! probe's end, a thread inside a span that entered or left one during
//! the probe is glanced at ([`Glance`], at most [`MAX_GLANCES`] a probe:
//! one `/proc/self/task/<tid>/syscall` read each): blocked in a system
//! call, it counts for its innermost callsite, in a futex or not. Threads
//! each fetching items one round trip of 30 µs at a time on a socket of
//! their own are seen only so, and their sockets tell them from a queue on
//! a lock, whose waiters are in a futex. A fresh program's four such
//! threads (260 glances in 3 s, none in a futex) left the background
//! thread's CPU where it was, 4.3 to 4.5 ms a second against 4.8.
//!
//! A thread blocked in a futex waits for another thread; when that one
//! waits too, outside a futex (a sleep, a read), the wait is the other's:
//! a consumer blocked on a channel while its producer sleeps on a timer, a
//! caller blocked on a lock whose holder writes to disk. Each futex wait's
//! probe is shared among the callsites other threads waited in outside a
//! futex at the same probe (`beside`), so perf-report can name the wait a
//! wait is part of. A thread runnable at the probe's end (preempted,
//! waiting for a core: a computing stage beside other processes) is work,
//! not such a wait: its state is read for it, once a probe with a futex
//! wait, for each thread waiting outside one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

#[cfg(target_os = "linux")]
use super::procfs::{self, ThreadStates};
#[cfg(target_os = "linux")]
use crate::record::cpu::clock_ns as cpu_ns;
use crate::record::heap;
use crate::record::watch::Watch;

/// How often the threads are probed, with up to [`THREADS_PER_WATCH`]
/// threads: twice about 0.5 µs a thread (a relaxed load and a CPU clock
/// read) each time.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(20);

/// A probe's length: its two readings this far apart.
pub(crate) const PROBE: Duration = Duration::from_micros(250);

/// Past this many threads, the interval grows in proportion, so the
/// watch's cost stays bounded whatever the thread count.
const THREADS_PER_WATCH: usize = 64;

/// A thread on the CPU under this share of an interval waited through it.
const WAITING_BELOW: f64 = 0.1;

/// The most callsites a wait's [`WaitSums::beside`] keeps.
pub(crate) const BESIDE_SLOTS: usize = 4;

/// One callsite's watched waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WaitSums {
    /// Intervals in which one of its spans stayed innermost on a thread that
    /// was off the CPU.
    pub(crate) intervals: u64,
    /// Their lengths, ns.
    pub(crate) wait_ns: u64,
    /// The process's CPU time over them, less the waiting thread's, ns.
    pub(crate) others_cpu_ns: u64,
    /// The same, where a thread waiting for a core at an interval's end (or
    /// on one most of it) counts the whole interval, for waits blocked in
    /// a futex, ns; at least `others_cpu_ns`.
    pub(crate) others_wanted_ns: u64,
    /// Of `wait_ns`, the probes in which the thread was blocked in a futex
    /// (waiting for another thread: a channel, a lock, a join), ns.
    pub(crate) for_a_thread_ns: u64,
    /// Of `wait_ns`, the probes in which the thread was asleep on a timer
    /// (`nanosleep`, `clock_nanosleep`: `std::thread::sleep`), ns.
    pub(crate) asleep_ns: u64,
    /// For those probes, the callsites other threads waited in at the same
    /// time outside a futex (a sleep, a read: the end of a chain of waits)
    /// and the time, ns, a probe's length shared among them: `(tag, ns)`,
    /// empty slots at 0 ns. Bounded to [`BESIDE_SLOTS`]: a callsite not
    /// kept takes the slot with the least time and adds to it (the
    /// space-saving count), so a kept callsite's time is an upper bound and
    /// one that waited beside it most of the time is never dropped.
    pub(crate) beside: [(u32, u64); BESIDE_SLOTS],
    /// Threads found inside one of its spans at a probe's end, blocked in a
    /// system call, that entered or left a span during the probe (see
    /// [`Glance`]).
    pub(crate) glances: u64,
    /// Of `glances`, those blocked in a futex.
    pub(crate) glances_in_futex: u64,
    /// Probes over which one of its spans stayed innermost on a thread
    /// that was on the CPU, and that thread's read and write system calls
    /// then (see [`IoSums`]).
    pub(crate) io: IoSums,
}

/// A callsite's system calls, read where the work was: over probes in
/// which one of its spans stayed innermost on a thread that was on the
/// CPU at least [`ON_CPU_FOR_IO`] of the probe, the thread's read and
/// write system calls and their bytes (`/proc/self/task/<tid>/io`, read
/// at both ends for at most [`MAX_IO_THREADS`] threads a probe). A span
/// writing a file a line at a time makes a `write` every few microseconds
/// of its CPU, a few bytes each; buffered, one every 8 KiB. The process's
/// kernel share cannot tell it beside threads computing at the same time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoSums {
    /// Such probes.
    pub(crate) probes: u64,
    /// The thread's CPU time over them, ns.
    pub(crate) cpu_ns: u64,
    /// Its system calls and bytes over them.
    pub(crate) counts: super::procfs::IoCounts,
}

impl IoSums {
    fn add(&mut self, cpu_ns: u64, c: &super::procfs::IoCounts) {
        self.probes += 1;
        self.cpu_ns = self.cpu_ns.saturating_add(cpu_ns);
        let t = &mut self.counts;
        t.reads = t.reads.saturating_add(c.reads);
        t.writes = t.writes.saturating_add(c.writes);
        t.read_bytes = t.read_bytes.saturating_add(c.read_bytes);
        t.written_bytes = t.written_bytes.saturating_add(c.written_bytes);
    }
}

/// The most threads inside a span whose system calls a probe reads (two
/// small `/proc` reads each): bounded work per probe; where more are
/// inside spans, each probe starts past the last one's.
const MAX_IO_THREADS: usize = 2;

/// A thread on the CPU at least this share of a probe did its span's work
/// through it: its system calls are that work's.
const ON_CPU_FOR_IO: f64 = 0.5;

impl WaitSums {
    /// Adds `ns` of waiting beside callsite `tag` (see [`Self::beside`]).
    fn add_beside(&mut self, tag: u32, ns: u64) {
        let slots = &mut self.beside;
        let slot = match slots.iter().position(|s| s.1 > 0 && s.0 == tag) {
            Some(i) => i,
            None => slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.1)
                .map_or(0, |(i, _)| i),
        };
        slots[slot] = (tag, slots[slot].1.saturating_add(ns));
    }
}

/// The system calls a waiting thread is told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    /// A futex: waiting for another thread.
    Futex,
    /// A sleep on a timer.
    Sleep,
}

/// What one probe's reading of a waiting thread adds to its callsite.
#[derive(Debug, Clone, Copy)]
struct Wait {
    tag: u32,
    wait_ns: u64,
    others_cpu_ns: u64,
    others_wanted_ns: u64,
    /// Blocked in a futex: waiting for another thread.
    for_a_thread: bool,
    /// Asleep on a timer.
    asleep: bool,
    /// The waiting thread's id.
    tid: i32,
}

/// A thread glanced at, at a probe's end: inside a span of callsite `tag`,
/// blocked in a system call, after entering or leaving a span during the
/// probe. A wait shorter than a probe is never one probe's interval: a
/// thread fetching items one round trip of 30 µs each is seen only so,
/// and whether it waits on a socket or in a futex (on another thread of
/// the process) tells independent waits from a queue.
#[derive(Debug, Clone, Copy)]
struct Glance {
    tag: u32,
    in_futex: bool,
}

/// The most threads glanced at in one probe (one small `/proc` read each):
/// bounded work per probe, whatever the thread count.
const MAX_GLANCES: usize = 8;

/// The most distinct callsites waiting outside a futex in one probe that
/// its futex waits are shared among; past them, a probe's futex waits are
/// put beside none (bounded work per probe, whatever the thread count).
const MAX_CHAIN_ENDS: usize = 8;

/// The watched waits of every callsite, by tag (at most
/// [`heap::MAX_TAGS`] and the reserved ones: bounded).
pub(crate) type WaitTable = FxHashMap<u32, WaitSums>;

/// The background thread's last reading of every thread.
#[derive(Debug, Default)]
pub(crate) struct Watcher {
    /// When a probe's first reading was made; `None` between probes.
    last: Option<Instant>,
    /// Every thread of the process, for the CPU time they use over a probe.
    all: AllThreads,
    /// Each watch's published state and CPU time then, by address.
    threads: FxHashMap<usize, (u64, u64)>,
    /// The next reading's, made in place of `threads` (kept to reuse).
    next: FxHashMap<usize, (u64, u64)>,
    /// The waits of one reading, before the table is locked (kept to reuse).
    waits: Vec<Wait>,
    /// The glances of one reading, likewise.
    glances: Vec<Glance>,
    /// The system-call counts of the threads read at a probe's start, by
    /// watch address (at most [`MAX_IO_THREADS`]).
    io_started: Vec<(usize, super::procfs::IoCounts)>,
    /// What a probe's end read of them: `(tag, CPU ns, counts)` (kept to
    /// reuse).
    io_read: Vec<(u32, u64, super::procfs::IoCounts)>,
    /// The threads inside a span to pass over before reading one's system
    /// calls, as for the glances.
    io_skip: usize,
    /// The threads to pass over before glancing at one, at a probe's end:
    /// where more than [`MAX_GLANCES`] entered or left a span, each probe
    /// starts where the last left off, so every thread has its turn.
    glance_skip: usize,
    /// Draws the gap to the next probe: at random, so that a program
    /// whose phases repeat at the watch's period is not always probed in
    /// the same one.
    rng: u64,
    /// Probes skipped in a row because no thread was inside a span: past
    /// [`IDLE_SKIPS`] of them, the gap to the next grows, up to
    /// [`IDLE_BACKOFF`] periods.
    idle: u32,
}

/// Skipped probes in a row (about 100 ms with no thread inside a span) after
/// which the program is taken to be idle, not between two requests.
const IDLE_SKIPS: u32 = 5;

/// The most periods between probes while the program is idle.
const IDLE_BACKOFF: u32 = 3;

/// While the program is idle, the watch looks at the sampler's next
/// wake-up instead when it comes within this: one wake-up for both.
const IDLE_SHARED_WAKE: Duration = Duration::from_millis(100);

impl Watcher {
    /// When to read next, after a reading at `now`: the probe's end, or
    /// the next probe; idle, the sampler's next wake-up (`sampler`) when it
    /// comes within [`IDLE_SHARED_WAKE`].
    pub(crate) fn next_after(&self, now: Instant, sampler: Option<Instant>) -> Instant {
        if self.last.is_some() {
            return now + PROBE;
        }
        if let Some(wake) = sampler {
            if self.idle >= IDLE_SKIPS && wake > now && wake <= now + IDLE_SHARED_WAKE {
                return wake;
            }
        }
        let scale = self.threads.len().div_ceil(THREADS_PER_WATCH).max(1);
        let scale = u32::try_from(scale).unwrap_or(u32::MAX);
        let backoff = (self.idle / IDLE_SKIPS + 1).min(IDLE_BACKOFF);
        let every = WATCH_EVERY * scale.saturating_mul(backoff);
        // Half to one and a half times the period, uniformly.
        let fraction = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        now + every.mul_f64(fraction)
    }

    /// A step of the gap's draw (xorshift64).
    fn draw(&mut self) {
        if self.rng == 0 {
            self.rng = 0x9e37_79b9_7f4a_7c15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
    }

    /// Reads every watched thread: a probe's first reading, or its second,
    /// which adds the waits over the probe to `table`.
    pub(crate) fn read(
        &mut self,
        watched: &crate::record::watch::Watched,
        table: &parking_lot::Mutex<WaitTable>,
    ) {
        // The watcher's tables are the layer's memory, not a span's.
        let _pause = crate::record::alloc::PauseCounting::new();
        let now = Instant::now();
        self.draw();
        let last = match self.last.take() {
            Some(first) => {
                let probe_ns = u64::try_from(now.duration_since(first).as_nanos()).unwrap_or(0);
                self.all
                    .since_start(probe_ns)
                    .map(|process| (first, process))
            }
            None => {
                // No span can wait over a probe that starts with no thread
                // inside one: skipped, without listing the threads.
                let mut inside = false;
                watched.for_each(|watch| inside |= Watch::tag_of(watch.state()) != heap::TAG_NONE);
                if !inside {
                    self.idle = self.idle.saturating_add(1);
                    return;
                }
                self.idle = 0;
                self.all.start();
                self.last = Some(now);
                None
            }
        };
        let (threads, waits, glances, before, all) = (
            &mut self.next,
            &mut self.waits,
            &mut self.glances,
            &self.threads,
            &mut self.all,
        );
        let (io_started, io_read) = (&mut self.io_started, &mut self.io_read);
        threads.clear();
        waits.clear();
        glances.clear();
        io_read.clear();
        if last.is_none() {
            io_started.clear();
        }
        let (skip, io_skip) = (self.glance_skip, self.io_skip);
        let (mut met, mut inside) = (0usize, 0usize);
        watched.for_each(|watch: &Arc<Watch>| {
            let state = watch.state();
            let Some(cpu_ns) = watch.cpu_ns() else {
                return;
            };
            let key = Arc::as_ptr(watch) as usize;
            threads.insert(key, (state, cpu_ns));
            let tag = Watch::tag_of(state);
            let Some((at, process)) = last else {
                // A probe's start: the system calls of a few threads inside
                // a span, in turns.
                if tag != heap::TAG_NONE {
                    inside += 1;
                    if inside > io_skip && io_started.len() < MAX_IO_THREADS {
                        if let Some(counts) = all.io(watch.tid()) {
                            io_started.push((key, counts));
                        }
                    }
                }
                return;
            };
            let Some(&(state_before, cpu_before)) = before.get(&key) else {
                return;
            };
            if tag == heap::TAG_NONE {
                return;
            }
            if state != state_before {
                met += 1;
                if met > skip && glances.len() < MAX_GLANCES {
                    if let Some(in_futex) = all.blocked_in_futex(watch.tid()) {
                        glances.push(Glance { tag, in_futex });
                    }
                }
                return;
            }
            let interval_ns = u64::try_from(now.duration_since(at).as_nanos()).unwrap_or(u64::MAX);
            let own = cpu_ns.saturating_sub(cpu_before);
            if own as f64 >= ON_CPU_FOR_IO * interval_ns as f64 {
                if let Some(&(_, start)) = io_started.iter().find(|s| s.0 == key) {
                    if let Some(end) = all.io(watch.tid()) {
                        io_read.push((tag, own, end.since(&start)));
                    }
                }
            }
            if interval_ns == 0 || own as f64 >= WAITING_BELOW * interval_ns as f64 {
                return;
            }
            let others_cpu_ns = process.cpu_ns.saturating_sub(own);
            // What the others wanted is what this wait waited beside only
            // where it waits for one of them (a futex: a join, a lock, a
            // channel); a sleep or a read waits for no thread, and runnable
            // threads beside it may be idle workers yielding.
            let blocked_in = all.blocked_in(watch.tid());
            let for_a_thread = blocked_in == Some(Blocked::Futex);
            let asleep = blocked_in == Some(Blocked::Sleep);
            let others_wanted_ns = if for_a_thread {
                all.wanted(process)
                    .map_or(others_cpu_ns, |w| w.saturating_sub(own).max(others_cpu_ns))
            } else {
                others_cpu_ns
            };
            waits.push(Wait {
                tag,
                wait_ns: interval_ns,
                others_cpu_ns,
                others_wanted_ns,
                for_a_thread,
                asleep,
                tid: watch.tid(),
            });
        });
        std::mem::swap(&mut self.threads, &mut self.next);
        if last.is_some() {
            // The next probe starts past the threads glanced at this time.
            self.glance_skip = if met > MAX_GLANCES {
                (skip + MAX_GLANCES) % met
            } else {
                0
            };
        } else {
            // And past the threads whose system calls were read.
            self.io_skip = if inside > MAX_IO_THREADS {
                (io_skip + MAX_IO_THREADS) % inside
            } else {
                0
            };
        }
        if !self.io_read.is_empty() {
            let mut table = table.lock();
            for (tag, cpu_ns, counts) in &self.io_read {
                table.entry(*tag).or_default().io.add(*cpu_ns, counts);
            }
        }
        if !self.glances.is_empty() {
            let mut table = table.lock();
            for g in &self.glances {
                let sums = table.entry(g.tag).or_default();
                sums.glances += 1;
                sums.glances_in_futex += u64::from(g.in_futex);
            }
        }
        if self.waits.is_empty() {
            return;
        }
        // The ends of the chains: callsites waiting outside a futex (a
        // sleep, a read), each with its threads; read only for a probe with
        // a futex wait. A thread runnable at the probe's end was not
        // waiting but preempted: work waiting for a core, no end.
        let mut ends = [(heap::TAG_NONE, 0u64); MAX_CHAIN_ENDS];
        let mut ended = 0;
        let mut too_many = false;
        let chained = self.waits.iter().any(|w| w.for_a_thread);
        for w in self.waits.iter().filter(|w| chained && !w.for_a_thread) {
            if !self.all.sleeps(w.tid) {
                continue;
            }
            match ends[..ended].iter_mut().find(|e| e.0 == w.tag) {
                Some(e) => e.1 += 1,
                None if ended < MAX_CHAIN_ENDS => {
                    ends[ended] = (w.tag, 1);
                    ended += 1;
                }
                None => too_many = true,
            }
        }
        let ends = if too_many { &[][..] } else { &ends[..ended] };
        let mut table = table.lock();
        for w in &self.waits {
            let sums = table.entry(w.tag).or_default();
            sums.intervals += 1;
            sums.wait_ns = sums.wait_ns.saturating_add(w.wait_ns);
            sums.others_cpu_ns = sums.others_cpu_ns.saturating_add(w.others_cpu_ns);
            sums.others_wanted_ns = sums.others_wanted_ns.saturating_add(w.others_wanted_ns);
            if w.asleep {
                sums.asleep_ns = sums.asleep_ns.saturating_add(w.wait_ns);
            }
            if !w.for_a_thread {
                continue;
            }
            sums.for_a_thread_ns = sums.for_a_thread_ns.saturating_add(w.wait_ns);
            // Shared among the other callsites' waiting threads.
            let threads: u64 = ends.iter().filter(|e| e.0 != w.tag).map(|e| e.1).sum();
            for &(tag, n) in ends.iter().filter(|e| e.0 != w.tag) {
                sums.add_beside(tag, w.wait_ns.saturating_mul(n) / threads);
            }
        }
    }
}

/// A thread found waiting for a core at a probe's end that, since its
/// schedule was last read, ran less than this each time it got a core
/// yields (an idle pool's worker spinning on `sched_yield` before it
/// sleeps): beside other processes it is runnable for tens of milliseconds
/// and wants no core for work. A thread that computes runs whole time
/// slices, and one that computed since and yields now (a pool's worker in
/// its channel's back-off between jobs) still ran long slices. Beside two
/// other processes, a fresh program's idle rayon workers read 2.1 cores
/// wanted beside a lock wait without this; two threads yielding beside a
/// planted lock wait read 0.9 to 1.8 when only the probe itself was read
/// (a thread given no core in 250 µs cannot be told).
const YIELDS_BELOW_NS: u64 = 10_000;

/// What the process's threads did over a probe.
#[derive(Debug, Clone, Copy)]
struct OverProbe {
    /// Their CPU time, ns.
    cpu_ns: u64,
    /// The probe's length, ns.
    probe_ns: u64,
}

/// The CPU time of every thread of the process over a probe, each read on
/// its own clock: precise, where the process's clock adds a thread running
/// on another CPU only at its last scheduler tick (4 ms at 250 Hz, longer
/// than a probe). Threads born during the probe count all their CPU time;
/// a probe during which one ended is not read. Asked, what they wanted of
/// the cores ([`wanted`](Self::wanted)).
#[derive(Debug, Default)]
struct AllThreads {
    /// Each listed thread's id and its time at the probe's start, by id.
    #[cfg(target_os = "linux")]
    threads: Vec<(i32, Option<u64>)>,
    /// The threads listed at the probe's end (kept to reuse).
    #[cfg(target_os = "linux")]
    at_end: Vec<i32>,
    /// Each thread's CPU time over the last probe, ns, by id.
    #[cfg(target_os = "linux")]
    ran: Vec<(i32, u64)>,
    /// What they wanted over it, once asked.
    wanted: Option<u64>,
    /// Where a thread's state is read (kept to reuse).
    #[cfg(target_os = "linux")]
    stat: ThreadStates,
    /// Each thread's CPU time and times given a core when last read, and
    /// whether it computed then, by id (`schedstat`, read for threads
    /// waiting for a core).
    #[cfg(target_os = "linux")]
    schedules: Vec<(i32, (u64, u64), bool)>,
    /// The process's clock at the probe's start, where no list is read.
    process_at_start: Option<u64>,
}

impl AllThreads {
    /// A probe's first reading.
    fn start(&mut self) {
        #[cfg(target_os = "linux")]
        {
            // Listed at every probe: a pool's threads may live 10 ms.
            self.threads.clear();
            if procfs::list_threads(&mut self.at_end, MAX_LISTED) {
                self.threads
                    .extend(self.at_end.iter().map(|&tid| (tid, cpu_ns(clock_of(tid)))));
                self.threads.sort_unstable_by_key(|t| t.0);
                self.process_at_start = None;
            } else {
                self.process_at_start = cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
            }
        }
    }

    /// What the process's threads did since [`start`](Self::start), a
    /// probe of `probe_ns`; `None` when a thread listed then has ended
    /// since (its time is gone).
    fn since_start(&mut self, probe_ns: u64) -> Option<OverProbe> {
        self.wanted = None;
        #[cfg(target_os = "linux")]
        {
            self.ran.clear();
            if let Some(at) = self.process_at_start {
                return cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID).map(|now| OverProbe {
                    cpu_ns: now.saturating_sub(at),
                    probe_ns,
                });
            }
            let mut sum = 0u64;
            for &(tid, at) in &self.threads {
                let Some(at) = at else { continue };
                // A thread that ended during the probe took its time with
                // it: the sum would be short, and a span waiting for it (a
                // join) would seem to wait beside idle cores. Not read.
                let now = cpu_ns(clock_of(tid))?;
                let ran = now.saturating_sub(at);
                self.ran.push((tid, ran));
                sum = sum.saturating_add(ran);
            }
            if procfs::list_threads(&mut self.at_end, MAX_LISTED) {
                for &tid in &self.at_end {
                    if self.threads.binary_search_by_key(&tid, |t| t.0).is_err() {
                        let ran = cpu_ns(clock_of(tid)).unwrap_or(0);
                        self.ran.push((tid, ran));
                        sum = sum.saturating_add(ran);
                    }
                }
            }
            Some(OverProbe {
                cpu_ns: sum,
                probe_ns,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = probe_ns;
            None
        }
    }

    /// What the process's threads wanted of the cores over the last probe,
    /// ns: their CPU time, and the whole probe for a thread that ran under
    /// half of it and waits for a core at its end (runnable, `/proc/self/
    /// task/<tid>/stat`) unless it yields ([`YIELDS_BELOW_NS`]); one that
    /// ran over half counts the whole probe too. Read only when a waiting
    /// span asks, once a probe: the reads cost about 2 µs a thread, and
    /// reading every thread's state at every probe slowed a debug build's
    /// pipeline by 1 to 4% of its wall time.
    fn wanted(&mut self, probe: OverProbe) -> Option<u64> {
        // Read on the process's clock, no thread's own time is known.
        if self.process_at_start.is_some() {
            return None;
        }
        if let Some(w) = self.wanted {
            return Some(w);
        }
        #[cfg(target_os = "linux")]
        {
            let probe_ns = probe.probe_ns;
            let mut wanted = 0u64;
            let threads = std::mem::take(&mut self.ran);
            for &(tid, ran) in &threads {
                let waits_for_a_core = ran < probe_ns / 2 && self.stat.runnable(tid) == Some(true);
                let computes = ran >= probe_ns / 2 || (waits_for_a_core && self.computes(tid));
                wanted = wanted.saturating_add(if computes { ran.max(probe_ns) } else { ran });
            }
            self.ran = threads;
            self.wanted = Some(wanted);
            Some(wanted)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Whether thread `tid` ran a whole slice each time it got a core since
    /// its schedule was last read; over its whole life the first time.
    /// Given no core since, it has done nothing since: the last verdict
    /// stands (`true` where there is none: it is taken to want one for
    /// work).
    #[cfg(target_os = "linux")]
    fn computes(&mut self, tid: i32) -> bool {
        let Some(now) = self.stat.sched(tid) else {
            return true;
        };
        let slices = |ran: u64, got: u64| ran >= got * YIELDS_BELOW_NS;
        match self.schedules.binary_search_by_key(&tid, |s| s.0) {
            Ok(i) => {
                let (_, (ran_before, got_before), verdict) = self.schedules[i];
                let got = now.1.saturating_sub(got_before);
                let computes =
                    got == 0 && verdict || got > 0 && slices(now.0.saturating_sub(ran_before), got);
                self.schedules[i] = (tid, now, computes);
                computes
            }
            Err(i) => {
                let computes = slices(now.0, now.1);
                // Bounded: forgotten past the threads a probe reads.
                if self.schedules.len() >= MAX_LISTED {
                    self.schedules.clear();
                    self.schedules.push((tid, now, computes));
                } else {
                    self.schedules.insert(i, (tid, now, computes));
                }
                computes
            }
        }
    }

    /// Whether thread `tid` is off the CPU and not waiting for a core
    /// (asleep: a sleep, a read, a futex), at the probe's end.
    fn sleeps(&mut self, tid: i32) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.stat.runnable(tid) == Some(false)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tid;
            false
        }
    }

    /// Whether thread `tid` is blocked in a futex (`Some(true)`) or in
    /// another system call (`Some(false)`); `None` when it is running, or
    /// blocked outside one, or its state cannot be read.
    fn blocked_in_futex(&mut self, tid: i32) -> Option<bool> {
        #[cfg(target_os = "linux")]
        {
            self.stat.blocked_in(tid).map(|nr| nr == libc::SYS_futex)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tid;
            None
        }
    }

    /// Thread `tid`'s read and write system calls so far; `None` where
    /// they cannot be read.
    fn io(&mut self, tid: i32) -> Option<super::procfs::IoCounts> {
        #[cfg(target_os = "linux")]
        {
            self.stat.io(tid)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tid;
            None
        }
    }

    /// What thread `tid` is blocked in, where it is a futex (waiting for
    /// another thread: a join, a lock, a condition variable, a channel) or
    /// a sleep on a timer; `None` in another system call, running, or
    /// unreadable.
    fn blocked_in(&mut self, tid: i32) -> Option<Blocked> {
        #[cfg(target_os = "linux")]
        {
            match self.stat.blocked_in(tid)? {
                libc::SYS_futex => Some(Blocked::Futex),
                libc::SYS_nanosleep | libc::SYS_clock_nanosleep => Some(Blocked::Sleep),
                _ => None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tid;
            None
        }
    }
}

/// At most this many threads are read for the process's CPU time; past
/// them, the process's own clock (coarser: it adds other CPUs' running
/// threads at their last scheduler tick).
#[cfg(target_os = "linux")]
const MAX_LISTED: usize = 1_024;

/// The CPU clock of thread `tid` of this process: glibc's
/// `pthread_getcpuclockid`, for a thread known by its id (the kernel's
/// per-thread scheduler clock).
#[cfg(target_os = "linux")]
fn clock_of(tid: i32) -> libc::clockid_t {
    (!tid << 3) | 6
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::record::watch::Watched;

    /// Four callsites are kept; a fifth takes the least one's place and
    /// adds to its time, so one kept most of the time is never dropped.
    #[test]
    fn what_a_wait_waited_beside_keeps_four_callsites_the_most_time_first() {
        let mut sums = WaitSums::default();
        for (tag, ns) in [(3, 500), (4, 100), (5, 200), (3, 500), (6, 300)] {
            sums.add_beside(tag, ns);
        }
        assert_eq!(sums.beside, [(3, 1_000), (4, 100), (5, 200), (6, 300)]);
        sums.add_beside(7, 50);
        assert_eq!(sums.beside, [(3, 1_000), (7, 150), (5, 200), (6, 300)]);
        sums.add_beside(3, 1);
        assert_eq!(sums.beside[0], (3, 1_001));
    }

    /// A thread on the CPU inside one span through a probe has its system
    /// calls read for that span: a `write` of 16 bytes in a loop counts
    /// its writes and their bytes. A thread asleep inside another span
    /// through the same probes is not read (its calls are not work).
    #[test]
    fn a_span_writing_in_small_pieces_counts_its_writes_and_a_sleeping_one_none() {
        use std::io::Write as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let watched = Watched::new(true);
        let table = parking_lot::Mutex::new(WaitTable::default());
        let (writing, sleeping) = (heap::FIRST_CALLSITE_TAG, heap::FIRST_CALLSITE_TAG + 1);
        let stop = AtomicBool::new(false);
        let ready = std::sync::Barrier::new(3);
        std::thread::scope(|s| {
            let (watched, stop, ready) = (&watched, &stop, &ready);
            s.spawn(move || {
                let watch = watched.register().unwrap();
                watch.publish(1, writing);
                let mut null = std::fs::File::create("/dev/null").unwrap();
                ready.wait();
                while !stop.load(Ordering::Relaxed) {
                    null.write_all(&[7; 16]).unwrap();
                }
            });
            s.spawn(move || {
                let watch = watched.register().unwrap();
                watch.publish(1, sleeping);
                ready.wait();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            ready.wait();
            let mut watcher = Watcher::default();
            let deadline = Instant::now() + Duration::from_secs(10);
            while table.lock().get(&writing).map_or(0, |w| w.io.probes) < 5
                && Instant::now() < deadline
            {
                watcher.read(watched, &table);
                std::thread::sleep(PROBE);
                watcher.read(watched, &table);
            }
            stop.store(true, Ordering::Relaxed);
        });
        let table = table.lock();
        let io = table.get(&writing).expect("the writing span was read").io;
        assert!(io.probes >= 5, "{io:?}");
        assert!(io.counts.writes >= 10 * io.probes, "{io:?}");
        assert_eq!(io.counts.written_bytes, 16 * io.counts.writes, "{io:?}");
        assert_eq!(io.counts.reads, 0, "{io:?}");
        assert_eq!(table.get(&sleeping).map_or(0, |w| w.io.probes), 0);
    }

    /// A probe that would start with no thread inside a span is skipped
    /// (no thread listed, no second reading), and after about 100 ms of
    /// such skips the watch is made less often; a span entered anywhere
    /// starts the next probe at once.
    #[test]
    fn an_idle_program_is_not_probed_and_is_watched_less_often() {
        let watched = Watched::new(true);
        let watch = watched.register().unwrap();
        let table = parking_lot::Mutex::new(WaitTable::default());
        let mut watcher = Watcher::default();
        let at = Instant::now();
        let gap = |w: &Watcher| w.next_after(at, None) - at;
        watcher.read(&watched, &table);
        assert!(watcher.last.is_none() && watcher.threads.is_empty());
        // Between two requests: the usual period, 10 to 30 ms.
        assert!(gap(&watcher) <= WATCH_EVERY.mul_f64(1.5));
        for _ in 0..2 * IDLE_SKIPS {
            watcher.read(&watched, &table);
        }
        // Idle: three periods, 30 to 90 ms.
        let idle_gap = gap(&watcher);
        assert!(
            idle_gap >= (WATCH_EVERY * IDLE_BACKOFF).mul_f64(0.5),
            "{idle_gap:?}"
        );
        assert!(
            idle_gap <= (WATCH_EVERY * IDLE_BACKOFF).mul_f64(1.5),
            "{idle_gap:?}"
        );
        // Idle, it looks when the sampler wakes the thread, if soon.
        let sampler = at + Duration::from_millis(70);
        assert_eq!(watcher.next_after(at, Some(sampler)), sampler);
        let later = at + Duration::from_millis(500);
        assert_ne!(watcher.next_after(at, Some(later)), later);
        // A span entered: the probe starts, and ends a probe's length on.
        watch.publish(1, heap::FIRST_CALLSITE_TAG);
        watcher.read(&watched, &table);
        assert!(watcher.last.is_some());
        assert_eq!(watcher.idle, 0);
        assert_eq!(gap(&watcher), PROBE);
    }
}
