//! What the sampler reads of the process and the machine: its memory and
//! threads ([`self_stat`], one read of `/proc/self/stat`; `sysinfo` where
//! there is no `/proc`), and between two samples the process's CPU time over every thread
//! ([`process_cpu_ns`]) and its context
//! switches (`getrusage(RUSAGE_SELF)`), and on Linux the CPU
//! pressure (`/proc/pressure/cpu`, PSI), the CPU time the hypervisor stole
//! (`/proc/stat`) and the open file descriptors (`/proc/self/fd`). Each is
//! `None` where the platform does not say. And for the watch of waits, a
//! thread's scheduler state ([`ThreadStates`]). Off the span path.

use std::time::Instant;

/// One reading of the counters the sampler turns into rates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    at: Instant,
    cpu_ns: Option<u64>,
    switches: Option<(u64, u64)>,
    /// The process's user and system CPU time, µs (`getrusage`).
    times_us: Option<(u64, u64)>,
    /// Microseconds some task waited for a CPU, since boot.
    pressure_us: Option<u64>,
    /// The machine's CPU time in clock ticks ([`parse_stat`]).
    stat: Option<StatTicks>,
}

/// Rates between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    /// CPU of the process in percent of one core, over every thread (200:
    /// two cores busy).
    pub(crate) cpu_percent: Option<f64>,
    /// Share of the wall time in which some task waited for a CPU, percent.
    pub(crate) pressure_percent: Option<f64>,
    /// Share of the machine's CPU time the hypervisor stole, percent.
    pub(crate) steal_percent: Option<f64>,
    /// CPU the whole machine used (all but idle and iowait), percent of
    /// one CPU.
    pub(crate) machine_cpu_percent: Option<f64>,
    pub(crate) voluntary_switches: Option<u64>,
    pub(crate) involuntary_switches: Option<u64>,
    /// Of the process's CPU time, the share in the kernel, percent.
    pub(crate) system_cpu_share_percent: Option<f64>,
}

impl Reading {
    pub(crate) fn now() -> Self {
        let usage = usage_self();
        Self {
            at: Instant::now(),
            cpu_ns: process_cpu_ns(),
            switches: usage.map(|u| u.switches),
            times_us: usage.map(|u| u.times_us),
            pressure_us: pressure_us(),
            stat: stat_ticks(),
        }
    }

    /// The rates from `earlier` to `self`.
    pub(crate) fn since(&self, earlier: &Reading) -> Rates {
        let wall_ns = self.at.duration_since(earlier.at).as_nanos() as f64;
        let rate = |now: Option<u64>, then: Option<u64>, scale: f64| match (now, then) {
            (Some(n), Some(t)) if wall_ns > 0.0 => {
                Some(n.saturating_sub(t) as f64 * scale / wall_ns * 100.0)
            }
            _ => None,
        };
        let (switches_now, switches_then) = (self.switches, earlier.switches);
        Rates {
            // At most every CPU busy: the process clock adds a running
            // thread's time at its next tick or switch, so a short window
            // can read more than the machine has.
            cpu_percent: rate(self.cpu_ns, earlier.cpu_ns, 1.0).map(|p| match self.stat {
                Some(t) => p.min(100.0 * f64::from(t.cpus)),
                None => p,
            }),
            pressure_percent: rate(self.pressure_us, earlier.pressure_us, 1_000.0)
                .map(|p| p.min(100.0)),
            steal_percent: stat_share(self.stat, earlier.stat, |t| t.steal),
            machine_cpu_percent: stat_share(self.stat, earlier.stat, |t| t.busy)
                .zip(self.stat)
                .map(|(share, t)| share * f64::from(t.cpus)),
            voluntary_switches: switches_now
                .zip(switches_then)
                .map(|(n, t)| n.0.saturating_sub(t.0)),
            involuntary_switches: switches_now
                .zip(switches_then)
                .map(|(n, t)| n.1.saturating_sub(t.1)),
            system_cpu_share_percent: self.times_us.zip(earlier.times_us).and_then(
                |((user, system), (user_then, system_then))| {
                    let system = system.saturating_sub(system_then);
                    let all = user.saturating_sub(user_then) + system;
                    (all > 0).then(|| system as f64 / all as f64 * 100.0)
                },
            ),
        }
    }
}

/// What `getrusage(RUSAGE_SELF)` says of every thread of the process,
/// those that exited included.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// Voluntary and involuntary context switches.
    switches: (u64, u64),
    /// User and system CPU time, µs.
    times_us: (u64, u64),
}

fn usage_self() -> Option<Usage> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the `rusage` it points at, or fails.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: filled by the successful call (and zeroed before).
        let u = unsafe { usage.assume_init() };
        let us = |t: libc::timeval| (t.tv_sec.max(0) as u64) * 1_000_000 + t.tv_usec.max(0) as u64;
        Some(Usage {
            switches: (u.ru_nvcsw as u64, u.ru_nivcsw as u64),
            times_us: (us(u.ru_utime), us(u.ru_stime)),
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `total=` of the `some` line of `/proc/pressure/cpu`.
fn pressure_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    parse_pressure(&text)
}

pub(crate) fn parse_pressure(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some"))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The machine's CPU time, in clock ticks since boot, from the `cpu` line
/// of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatTicks {
    /// Stolen by the hypervisor.
    pub(crate) steal: u64,
    /// Busy: all but idle and iowait (stolen time included).
    pub(crate) busy: u64,
    pub(crate) total: u64,
    /// Its CPUs: the `cpuN` lines.
    pub(crate) cpus: u32,
}

/// The share of the machine's CPU time between two readings that `part`
/// of it was, percent.
fn stat_share(
    now: Option<StatTicks>,
    then: Option<StatTicks>,
    part: impl Fn(&StatTicks) -> u64,
) -> Option<f64> {
    match (now, then) {
        (Some(n), Some(t)) if n.total > t.total => {
            Some(part(&n).saturating_sub(part(&t)) as f64 / (n.total - t.total) as f64 * 100.0)
        }
        _ => None,
    }
}

fn stat_ticks() -> Option<StatTicks> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_stat(&text)
}

pub(crate) fn parse_stat(text: &str) -> Option<StatTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user, so it is left out of the total.
    let steal = *ticks.get(7)?;
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks[3].saturating_add(ticks[4]);
    let cpus = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    Some(StatTicks {
        steal,
        busy: total.saturating_sub(idle),
        total,
        cpus: u32::try_from(cpus).unwrap_or(u32::MAX).max(1),
    })
}

/// The process's memory and threads, from one read of `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelfStat {
    pub(crate) rss_bytes: u64,
    pub(crate) virtual_bytes: u64,
    /// Every thread, the main one included.
    pub(crate) threads: u32,
}

/// [`SelfStat`] now; `None` where `/proc` cannot be read (not Linux), and
/// the sampler asks `sysinfo` instead (which lists every thread's
/// directory and reads several files: about three times the CPU).
pub(crate) fn self_stat() -> Option<SelfStat> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // SAFETY: `sysconf` has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        parse_self_stat(&text, u64::try_from(page).ok()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `num_threads` (field 20), `vsize` (23, bytes) and `rss` (24, pages) of
/// a `/proc/<pid>/stat` line, counted from after the name's last `)` (a
/// name may hold spaces and parentheses).
pub(crate) fn parse_self_stat(line: &str, page_bytes: u64) -> Option<SelfStat> {
    let after_name = &line[line.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the name.
    let field = |n: usize| after_name.split_whitespace().nth(n - 3);
    Some(SelfStat {
        threads: field(20)?.parse().ok()?,
        virtual_bytes: field(23)?.parse().ok()?,
        rss_bytes: field(24)?.parse::<u64>().ok()?.saturating_mul(page_bytes),
    })
}

/// Open file descriptors of the process: the size Linux 6.2 and later
/// give `/proc/self/fd` (one `stat`), else the directory's entries.
pub(crate) fn open_fds() -> Option<u32> {
    if let Ok(size) = std::fs::metadata("/proc/self/fd").map(|m| m.len()) {
        if size > 0 {
            return u32::try_from(size).ok();
        }
    }
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory handle itself is one of them.
    Some(
        u32::try_from(entries.count())
            .unwrap_or(u32::MAX)
            .saturating_sub(1),
    )
}

/// CPU time this process has used so far, in nanoseconds (all threads,
/// user and system, those that exited included), or `None` where the
/// platform does not say. `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` on Unix,
/// which counts the slices running now (`getrusage` lags by up to a
/// scheduler tick per running thread); a sysinfo refresh elsewhere
/// (milliseconds). Read by the sampler, when the layer is built and at
/// snapshots, never on the span path.
pub(crate) fn process_cpu_ns() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut time = std::mem::MaybeUninit::<libc::timespec>::zeroed();
        // SAFETY: `clock_gettime` writes a `timespec` into the pointer it is
        // given, which points at one, and reports failure by its return value.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, time.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: initialised by the successful call above (and zeroed before).
        let time = unsafe { time.assume_init() };
        Some(
            u64::try_from(time.tv_sec)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(time.tv_nsec).unwrap_or(0)),
        )
    }
    #[cfg(not(unix))]
    {
        let pid = sysinfo::Pid::from_u32(std::process::id());
        let mut system = sysinfo::System::new();
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_cpu(),
        );
        system
            .process(pid)
            .map(|p| p.accumulated_cpu_time().saturating_mul(1_000_000))
    }
}

/// Reads a thread's scheduler state from `/proc/self/task/<tid>/stat`
/// (about 2 µs), with its path and buffer kept to reuse.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub(crate) struct ThreadStates {
    path: String,
    buf: Vec<u8>,
    /// `io` files kept open, by thread id, the latest last: read again at
    /// offset 0, about 1.5 µs against 6 µs opened each time. At most
    /// [`IO_FILES`].
    io_files: Vec<(i32, std::fs::File)>,
}

/// The most `io` files kept open: the threads a few probes read in turns.
#[cfg(target_os = "linux")]
const IO_FILES: usize = 8;

#[cfg(target_os = "linux")]
impl ThreadStates {
    /// Whether thread `tid` of this process is running or waiting for a
    /// core (`R`); `None` when its state cannot be read (it is gone).
    pub(crate) fn runnable(&mut self, tid: i32) -> Option<bool> {
        // The state is the first field after the name; 512 bytes hold it
        // whatever the name (at most 64 bytes).
        state_of(self.read(tid, "stat", 512)?).map(|state| state == b'R')
    }

    /// Thread `tid`'s CPU time, ns (as of its last scheduler update), and
    /// the times it has been given a core, from
    /// `/proc/self/task/<tid>/schedstat`; `None` when that cannot be read
    /// (the thread is gone, or the kernel keeps no scheduler statistics).
    pub(crate) fn sched(&mut self, tid: i32) -> Option<(u64, u64)> {
        parse_schedstat(self.read(tid, "schedstat", 128)?)
    }

    /// Thread `tid`'s time runnable and waiting for a core since it
    /// started, ns (`schedstat`'s second field); `None` when that cannot be
    /// read.
    pub(crate) fn run_delay(&mut self, tid: i32) -> Option<u64> {
        let text = std::str::from_utf8(self.read(tid, "schedstat", 128)?).ok()?;
        text.split_ascii_whitespace().nth(1)?.parse().ok()
    }

    /// The system call thread `tid` of this process is blocked in
    /// (`/proc/self/task/<tid>/syscall`); `None` when it is running, blocked
    /// outside one, or that cannot be read.
    pub(crate) fn blocked_in(&mut self, tid: i32) -> Option<libc::c_long> {
        syscall_of(self.read(tid, "syscall", 32)?)
    }

    /// Thread `tid`'s read and write system calls and their bytes since it
    /// started (`/proc/self/task/<tid>/io`, about 3 µs); `None` when that
    /// cannot be read (the thread is gone, or the kernel keeps no I/O
    /// accounting).
    pub(crate) fn io(&mut self, tid: i32) -> Option<IoCounts> {
        use std::os::unix::fs::FileExt as _;
        let at = match self.io_files.iter().position(|f| f.0 == tid) {
            Some(at) => at,
            None => {
                use std::fmt::Write as _;
                self.path.clear();
                let _ = write!(self.path, "/proc/self/task/{tid}/io");
                let file = std::fs::File::open(&self.path).ok()?;
                if self.io_files.len() >= IO_FILES {
                    self.io_files.remove(0);
                }
                self.io_files.push((tid, file));
                self.io_files.len() - 1
            }
        };
        self.buf.clear();
        self.buf.resize(512, 0);
        // Read at 0, the kernel writes the counters anew.
        match self.io_files[at].1.read_at(&mut self.buf, 0) {
            Ok(n) => parse_io(&self.buf[..n]),
            Err(_) => {
                // The thread is gone (or its id reused after): let go.
                self.io_files.remove(at);
                None
            }
        }
    }

    /// The first `at_most` bytes of `/proc/self/task/<tid>/<file>`.
    fn read(&mut self, tid: i32, file: &str, at_most: u64) -> Option<&[u8]> {
        use std::fmt::Write as _;
        use std::io::Read as _;
        self.path.clear();
        let _ = write!(self.path, "/proc/self/task/{tid}/{file}");
        self.buf.clear();
        let opened = std::fs::File::open(&self.path).ok()?;
        opened.take(at_most).read_to_end(&mut self.buf).ok()?;
        Some(&self.buf)
    }
}

/// A thread's read-family and write-family system calls (`read`,
/// `pread64`, `readv`; `write`, `pwrite64`, `writev`, and what goes
/// through them: a file's, a pipe's, a terminal's; not a socket's `recv`
/// or `send`, which Rust's `TcpStream` uses) and the bytes they moved
/// (returned), from `/proc/self/task/<tid>/io`'s `syscr`, `syscw`, `rchar`
/// and `wchar`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoCounts {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) read_bytes: u64,
    pub(crate) written_bytes: u64,
}

impl IoCounts {
    /// What was counted between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &IoCounts) -> IoCounts {
        IoCounts {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            written_bytes: self.written_bytes.saturating_sub(earlier.written_bytes),
        }
    }
}

/// `/proc/<pid>/io`'s text (`name: value` lines); `None` without the four
/// counters it is read for.
pub(crate) fn parse_io(text: &[u8]) -> Option<IoCounts> {
    let (mut reads, mut writes, mut read_bytes, mut written_bytes) = (None, None, None, None);
    for line in std::str::from_utf8(text).ok()?.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().parse::<u64>().ok();
        match name {
            "syscr" => reads = value,
            "syscw" => writes = value,
            "rchar" => read_bytes = value,
            "wchar" => written_bytes = value,
            _ => {}
        }
    }
    Some(IoCounts {
        reads: reads?,
        writes: writes?,
        read_bytes: read_bytes?,
        written_bytes: written_bytes?,
    })
}

/// Lists the process's thread ids into `tids`, but the calling one (the
/// background thread's own reading is not the process's work); `false`
/// past `max` threads or where `/proc` cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn list_threads(tids: &mut Vec<i32>, max: usize) -> bool {
    tids.clear();
    // SAFETY: `gettid` has no preconditions.
    let own = unsafe { libc::gettid() };
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    for entry in dir.flatten() {
        if let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            if tid == own {
                continue;
            }
            if tids.len() == max {
                return false;
            }
            tids.push(tid);
        }
    }
    !tids.is_empty()
}

/// The time the process's threads spent runnable and waiting for a core
/// (the run queue: preempted, or woken with every core taken), summed over
/// its threads from each `/proc/self/task/<tid>/schedstat` (its second
/// field), between two samples. The ground truth the span path cannot
/// read: an interval with both kinds of switch splits its time off the CPU
/// by their counts, and four threads logging to a pipe a slow reader
/// drained read 2.96 s preempted where their threads waited 0.52 s for a
/// core. A thread's wait since its last reading counts (all of it for a
/// thread born since). A thread that ended since says its total as it
/// exits, if it recorded a span (`record::thread_end`): the rest of its
/// wait counts, all of it for one born and ended between two readings.
/// About 3 µs a thread.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub(crate) struct CoreWaits {
    /// Each thread's wait at the last reading, ns, by id.
    last: rustc_hash::FxHashMap<i32, u64>,
    next: rustc_hash::FxHashMap<i32, u64>,
    tids: Vec<i32>,
    states: ThreadStates,
    /// When the last reading was taken, if it was.
    at: Option<Instant>,
    /// The exits said since the last reading.
    ended: crate::record::thread_end::Listening,
    /// The threads whose exit the last reading counted: one still listed
    /// as it ends is not read again from nothing.
    gone: rustc_hash::FxHashSet<i32>,
}

/// Past this many threads the waits are not read: each is a file read
/// every sample.
#[cfg(target_os = "linux")]
const MAX_WAIT_THREADS: usize = 128;

#[cfg(target_os = "linux")]
impl CoreWaits {
    /// The threads' wait for a core since the last call, in percent of
    /// the wall time between (150: one and a half threads waiting all the
    /// time); `None` at the first call, past [`MAX_WAIT_THREADS`] threads,
    /// or where no thread's `schedstat` can be read (a kernel without
    /// scheduler statistics).
    pub(crate) fn since_last_percent(&mut self) -> Option<f64> {
        let then = self.at.take();
        let now = Instant::now();
        if !list_threads(&mut self.tids, MAX_WAIT_THREADS) {
            self.last.clear();
            return None;
        }
        self.next.clear();
        let mut waited = 0u64;
        for &tid in &self.tids {
            if self.gone.contains(&tid) {
                continue;
            }
            // A thread that ended since it was listed is counted below, as
            // it said at its exit.
            let Some(delay) = self.states.run_delay(tid) else {
                continue;
            };
            let before = self.last.get(&tid).copied().unwrap_or(0);
            waited = waited.saturating_add(delay.saturating_sub(before));
            self.next.insert(tid, delay);
        }
        self.gone.clear();
        let (last, next, gone) = (&self.last, &mut self.next, &mut self.gone);
        crate::record::thread_end::drain(&mut self.ended, |tid, total| {
            let counted = next
                .remove(&tid)
                .or_else(|| last.get(&tid).copied())
                .unwrap_or(0);
            waited = waited.saturating_add(total.saturating_sub(counted));
            gone.insert(tid);
        });
        if self.next.is_empty() {
            self.last.clear();
            return None;
        }
        std::mem::swap(&mut self.last, &mut self.next);
        self.at = Some(now);
        let wall_ns = now.duration_since(then?).as_nanos() as f64;
        (wall_ns > 0.0).then(|| waited as f64 / wall_ns * 100.0)
    }
}

/// The CPU time and the times given a core of a `schedstat` line: its
/// first and third fields (the second is the time spent waiting for one).
#[cfg(target_os = "linux")]
fn parse_schedstat(line: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let ran = fields.next()?.parse().ok()?;
    let got = fields.nth(1)?.parse().ok()?;
    Some((ran, got))
}

/// The system call a `/proc/<pid>/task/<tid>/syscall` line says the
/// thread is blocked in: its first field; `None` for "running" or a thread
/// blocked outside one (-1).
#[cfg(target_os = "linux")]
fn syscall_of(line: &[u8]) -> Option<libc::c_long> {
    let first = line.split(|b| b.is_ascii_whitespace()).next()?;
    let n: libc::c_long = std::str::from_utf8(first).ok()?.parse().ok()?;
    (n >= 0).then_some(n)
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after
/// the name, which is in parentheses and may hold any byte, `)` too.
#[cfg(target_os = "linux")]
fn state_of(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use std::sync::Arc;
    #[cfg(target_os = "linux")]
    use std::time::Duration;

    #[test]
    fn pressure_and_steal_parse_as_the_kernel_writes_them() {
        let psi = "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_pressure(psi), Some(123_456));
        let stat = "cpu  100 5 50 800 10 1 2 30 7 0\ncpu0 50 2 25 400 5 0 1 15 3 0\n";
        let ticks = parse_stat(stat).unwrap();
        // Busy: all but idle (800) and iowait (10).
        assert_eq!(
            (ticks.steal, ticks.busy, ticks.total, ticks.cpus),
            (30, 188, 998, 1)
        );
        assert_eq!(parse_stat("intr 1 2 3"), None);
    }

    /// The kernel's share of the process's CPU between two readings: its
    /// system time over its user and system time; none without CPU.
    #[test]
    fn the_kernel_s_share_is_system_time_over_all_cpu_time() {
        let then = Reading {
            at: Instant::now(),
            cpu_ns: None,
            switches: None,
            times_us: Some((1_000, 500)),
            pressure_us: None,
            stat: None,
        };
        let now = Reading {
            times_us: Some((1_250, 1_250)),
            ..then
        };
        assert_eq!(now.since(&then).system_cpu_share_percent, Some(75.0));
        assert_eq!(then.since(&then).system_cpu_share_percent, None);
    }

    /// The process clock adds a running thread's time at its next tick:
    /// 3 ms of it over a 1 ms window is no 300% on a two-CPU machine.
    #[test]
    fn a_short_window_never_reads_more_cpu_than_the_machine_has() {
        let stat = |busy| StatTicks {
            steal: 0,
            busy,
            total: 1_000,
            cpus: 2,
        };
        let then = Reading {
            at: Instant::now(),
            cpu_ns: Some(0),
            switches: None,
            times_us: None,
            pressure_us: None,
            stat: Some(stat(0)),
        };
        let now = Reading {
            at: then.at + std::time::Duration::from_millis(1),
            cpu_ns: Some(3_000_000),
            stat: Some(stat(10)),
            ..then
        };
        assert_eq!(now.since(&then).cpu_percent, Some(200.0));
        let within = Reading {
            cpu_ns: Some(1_500_000),
            ..now
        };
        assert_eq!(within.since(&then).cpu_percent, Some(150.0));
    }

    #[test]
    fn the_process_s_stat_line_is_read_after_its_name() {
        // A name with spaces and parentheses in it, as a thread may set.
        let line = "12345 (my (odd) name) S 1 12345 12345 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615\n";
        assert_eq!(
            parse_self_stat(line, 4096),
            Some(SelfStat {
                rss_bytes: 2048 * 4096,
                virtual_bytes: 123_456_789,
                threads: 7,
            })
        );
        assert_eq!(parse_self_stat("12345 (cut) S 1 2 3", 4096), None);
        assert_eq!(parse_self_stat("no name at all", 4096), None);
    }

    /// The one read of `/proc/self/stat` says what `sysinfo` said (its
    /// tasks leave the main thread out), and the size of `/proc/self/fd`
    /// what listing it says.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_is_read_as_sysinfo_and_the_listing_read_it() {
        // Three threads more, each until its sender is dropped.
        let (stops, threads): (Vec<_>, Vec<_>) = (0..3)
            .map(|_| {
                let (stop, stopped) = std::sync::mpsc::channel::<()>();
                let thread = std::thread::spawn(move || {
                    let _ = stopped.recv_timeout(Duration::from_secs(10));
                });
                (stop, thread)
            })
            .unzip();
        let ours = self_stat().unwrap();
        let pid = sysinfo::Pid::from_u32(std::process::id());
        let mut system = sysinfo::System::new();
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing()
                .with_memory()
                .with_tasks(),
        );
        let theirs = system.process(pid).unwrap();
        // Other tests of this binary start and end threads meanwhile.
        let tasks = u32::try_from(theirs.tasks().unwrap().len()).unwrap();
        assert!(
            ours.threads >= 4 && ours.threads.abs_diff(tasks + 1) <= 8,
            "{ours:?} {tasks}"
        );
        assert_eq!(ours.virtual_bytes > 0, theirs.virtual_memory() > 0);
        let rss_ratio = ours.rss_bytes as f64 / theirs.memory() as f64;
        assert!(
            (0.8..1.25).contains(&rss_ratio),
            "{ours:?} {}",
            theirs.memory()
        );
        drop(stops);
        for t in threads {
            t.join().unwrap();
        }
        let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() - 1;
        let fds = open_fds().unwrap() as usize;
        assert!(fds.abs_diff(listed) <= 4, "{fds} against {listed} listed");
    }

    /// What `read` says of a thread running `other` and of one sleeping,
    /// read 50 ms after both started; `release` lets `other` end.
    #[cfg(target_os = "linux")]
    fn beside_a_sleeper<T>(
        other: impl FnOnce() + Send + 'static,
        release: impl FnOnce(),
        read: impl Fn(&mut ThreadStates, i32) -> Option<T>,
    ) -> [Option<T>; 2] {
        let start = |work: Box<dyn FnOnce() + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                // SAFETY: `gettid` has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                work();
            });
            (rx.recv().unwrap(), thread)
        };
        let (busy, busy_thread) = start(Box::new(other));
        let (sleeper, sleeper_thread) =
            start(Box::new(|| std::thread::sleep(Duration::from_millis(300))));
        std::thread::sleep(Duration::from_millis(50));
        let mut states = ThreadStates::default();
        let said = [read(&mut states, busy), read(&mut states, sleeper)];
        release();
        busy_thread.join().unwrap();
        sleeper_thread.join().unwrap();
        said
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_blocked_on_a_lock_is_in_a_futex_and_a_sleeping_one_in_a_sleep() {
        assert_eq!(syscall_of(b"running"), None);
        assert_eq!(syscall_of(b"-1 0x7ffd 0x7f12"), None);
        assert_eq!(syscall_of(b"202 0x1 0x80 0x2"), Some(202));
        let lock = Arc::new(std::sync::Mutex::new(()));
        let held = lock.lock().unwrap();
        let waiter = Arc::clone(&lock);
        let said = beside_a_sleeper(
            move || drop(waiter.lock()),
            || drop(held),
            ThreadStates::blocked_in,
        );
        // glibc's `nanosleep` is `clock_nanosleep`; either is a sleep.
        let asleep = [libc::SYS_nanosleep, libc::SYS_clock_nanosleep];
        assert_eq!(said[0], Some(libc::SYS_futex));
        assert!(said[1].is_some_and(|nr| asleep.contains(&nr)), "{said:?}");
    }

    #[cfg(target_os = "linux")]
    /// Threads spinning on more threads than the machine has cores wait
    /// for a core: the reading after the first says so, in percent of the
    /// wall time between (at most the spinners' count times 100).
    #[cfg(target_os = "linux")]
    #[test]
    fn threads_outnumbering_the_cores_wait_for_one() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut waits = CoreWaits::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinners: Vec<_> = (0..2 * cores)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        assert_eq!(waits.since_last_percent(), None, "the first reading primes");
        std::thread::sleep(Duration::from_millis(200));
        let percent = waits.since_last_percent();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        let percent = percent.expect("a second reading");
        // `cores` spinners, at least, waited about all the time.
        assert!(percent > 30.0 * cores as f64, "{percent}");
        assert!(percent <= 100.0 * (2 * cores + 2) as f64, "{percent}");
    }

    /// Threads born and ended between two readings were never listed:
    /// having recorded spans, they say their waits as they exit, and the
    /// second reading counts them. A batch's scoped threads read 0.11
    /// threads waiting where they were preempted 1.3 threads' worth.
    #[cfg(target_os = "linux")]
    #[test]
    fn threads_that_end_between_two_readings_count_their_waits() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut waits = CoreWaits::default();
        assert_eq!(waits.since_last_percent(), None, "the first reading primes");
        let spinners: Vec<_> = (0..2 * cores)
            .map(|_| {
                std::thread::spawn(|| {
                    crate::record::thread_end::arm();
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(150) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for s in spinners {
            s.join().unwrap();
        }
        let percent = waits.since_last_percent().expect("a second reading");
        // Twice the cores' threads spinning 150 ms each: about half of it
        // waiting for a core, though none is alive at the reading.
        assert!(percent > 30.0 * cores as f64, "{percent}");
    }

    #[test]
    fn schedstat_is_the_cpu_time_then_the_wait_then_the_times_given_a_core() {
        assert_eq!(parse_schedstat(b"123456 789 42\n"), Some((123_456, 42)));
        assert_eq!(parse_schedstat(b"123456 789"), None);
        let mut states = ThreadStates::default();
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() };
        let before = states.sched(me).expect("this thread's schedstat");
        std::thread::sleep(Duration::from_millis(2));
        let after = states.sched(me).unwrap();
        assert!(
            after.1 > before.1,
            "a sleep gives the core up: {before:?} {after:?}"
        );
    }

    /// `/proc/<pid>/io` as the kernel writes it; a text without one of
    /// the four counters is not read.
    #[test]
    fn the_io_counters_are_read_by_name() {
        let text = b"rchar: 6976\nwchar: 12000\nsyscr: 10\nsyscw: 1000\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        let io = parse_io(text).unwrap();
        assert_eq!(
            io,
            IoCounts {
                reads: 10,
                writes: 1_000,
                read_bytes: 6_976,
                written_bytes: 12_000
            }
        );
        let earlier = IoCounts {
            reads: 4,
            writes: 1_000,
            read_bytes: 976,
            written_bytes: 12_001,
        };
        assert_eq!(
            io.since(&earlier),
            IoCounts {
                reads: 6,
                writes: 0,
                read_bytes: 6_000,
                written_bytes: 0
            }
        );
        assert!(parse_io(b"rchar: 1\nwchar: 2\nsyscr: 3\n").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_state_is_read_after_the_last_parenthesis_of_the_name() {
        assert_eq!(state_of(b"42 (worker) R 1 42 42"), Some(b'R'));
        assert_eq!(state_of(b"42 (a) S (b)) S 1 42"), Some(b'S'));
        assert_eq!(state_of(b"42 (cut"), None);
        assert_eq!(state_of(b"42 (x)"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_computing_thread_is_runnable_and_a_sleeping_one_is_not() {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinning = Arc::clone(&stop);
        let said = beside_a_sleeper(
            move || {
                while !spinning.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            },
            || stop.store(true, std::sync::atomic::Ordering::Relaxed),
            ThreadStates::runnable,
        );
        assert_eq!(said, [Some(true), Some(false)]);
    }
}
