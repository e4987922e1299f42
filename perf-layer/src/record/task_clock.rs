//! A thread's CPU time without a system call, where the kernel allows it.
//!
//! `perf_event_open` with the software `task-clock` event, for this thread
//! only, and its first page mapped read-only. The kernel rewrites that page
//! each time it puts the thread back on a CPU, and its `lock` word moves by
//! two each time, so reading the word (a load from memory this thread
//! mapped, a nanosecond or two) tells whether the thread was switched out
//! since the last look. While it has not been, the thread has been on a CPU
//! all along, and its CPU time is the last one read plus the wall-clock
//! ticks since ([`Anchor`]): no system call. Only an interval the thread was
//! switched out of pays for the reads of [`super::cpu`], which also anchor
//! the next ones.
//!
//! What this does not see: time the hypervisor stole without switching the
//! thread out counts as on the CPU until the next anchor (the system calls
//! cannot see it either: a guest kernel charges it to the thread), and so
//! does time in interrupts taken on the thread's CPU.
//!
//! What it costs: an enabled event is switched in and out with its thread,
//! about 1.2 µs more per context switch on the machines here
//! (docs/benchmarks.md), one descriptor and one page per thread. So a
//! thread opens it only while it times more intervals than it makes
//! switches ([`Policy`]), and gives both back when it exits. Where the kernel
//! refuses (`perf_event_paranoid`, a seccomp profile such as Docker's
//! default, no descriptors left), or off Linux, every reading is the system
//! calls, and [`source`] says which and why, once.
//!
//! A process forked from this one keeps the mapping of the parent's
//! thread: its readings are then anchored only when the parent's thread
//! switches. Rust programs that fork do so to `exec`, and the descriptor is
//! closed on `exec`.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Timed intervals per look at the switch rate ([`Policy`]).
const WINDOW: u32 = 64;

/// A reading of the thread's CPU time that needs no system call: the CPU
/// time and the wall-clock ticks at the last reading that did, and the
/// page's `lock` word then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    pub(crate) seq: u32,
    pub(crate) cpu_ns: u64,
    pub(crate) ticks: u64,
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

/// The mapped page of an open event.
#[derive(Debug)]
struct Mapped {
    fd: i32,
    page: *const u8,
    len: usize,
}

impl Mapped {
    /// The page's `lock` word: `perf_event_mmap_page` starts with
    /// `version` and `compat_version`, two `u32`s, then `lock`.
    #[inline]
    fn seq(&self) -> u32 {
        // SAFETY: `page` is a live read-only mapping of at least one page
        // (unmapped only in `drop`), and offset 8 is the aligned `u32`
        // `lock` of the kernel's `perf_event_mmap_page`. The kernel writes
        // it only while this thread is off the CPU, so a volatile read
        // sees a settled value.
        unsafe { std::ptr::read_volatile(self.page.add(8).cast::<u32>()) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: `page` and `len` are the mapping `open` made and `fd` the
        // descriptor it opened; both are released once, here.
        unsafe {
            libc::munmap(self.page as *mut libc::c_void, self.len);
            libc::close(self.fd);
        }
    }
}

/// When a thread keeps the event open: while it times at least twice as
/// many intervals as it makes context switches (each timed interval saves
/// 0.7 to 1.1 µs of system calls, each switch costs about 1.2 µs more with
/// the event), looked at every [`WINDOW`] timed intervals. A thread that
/// closed it waits twice as many windows each time before trying again.
#[derive(Debug)]
struct Policy {
    timed: u32,
    /// Switches (voluntary + involuntary) or `lock` word at the window's
    /// start.
    switches_at: u64,
    seq_at: u32,
    /// Windows to wait before the next try, and the wait after that.
    wait: u32,
    backoff: u32,
}

/// One thread's clock.
#[derive(Debug)]
struct ThreadClock {
    mapped: Option<Mapped>,
    anchor: Option<Anchor>,
    policy: Policy,
    /// The policy decided to open the event: done at the next
    /// [`settle`], after an exit's timestamp, so that the open is in no
    /// timed interval of the span that decided it.
    want_open: bool,
    /// Held to one source by a [`Forced`] guard: the policy neither opens
    /// nor closes the event meanwhile.
    forced: bool,
}

thread_local! {
    static CLOCK: RefCell<ThreadClock> = const {
        RefCell::new(ThreadClock {
            mapped: None,
            anchor: None,
            want_open: false,
            forced: false,
            policy: Policy {
                timed: 0,
                switches_at: 0,
                seq_at: 0,
                wait: 0,
                backoff: 0,
            },
        })
    };
}

/// The kernel refused the event once: no thread asks again.
static REFUSED: AtomicBool = AtomicBool::new(false);
/// Why, for [`source`].
static REFUSAL: OnceLock<String> = OnceLock::new();
/// Off for the process (the builder's choice).
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the clock off (or on again) for the whole process: every reading
/// is then the system calls.
pub(crate) fn set_disabled(disabled: bool) {
    DISABLED.store(disabled, Ordering::Relaxed);
}

/// Which source of CPU time this process uses, in words, for the dump and
/// the one line on standard error.
pub(crate) fn source() -> String {
    if DISABLED.load(Ordering::Relaxed) {
        return "system calls (clock_gettime, getrusage): the task clock is turned off".into();
    }
    match REFUSAL.get() {
        Some(why) => format!("system calls (clock_gettime, getrusage): {why}"),
        None => "perf_event task-clock, anchored by system calls after each context switch, on threads that time more intervals than they switch".into(),
    }
}

/// The thread's CPU time at wall-clock `now` without a system call, when
/// its event is open and it was not switched out since the anchor; the
/// page's `lock` word either way, when the event is open.
#[inline]
pub(crate) fn extrapolate(
    now: u64,
    to_ns: impl Fn(u64, u64) -> u64,
) -> (Option<Anchor>, Option<u32>) {
    CLOCK
        .try_with(|clock| {
            let clock = clock.borrow();
            let Some(mapped) = &clock.mapped else {
                return (None, None);
            };
            let seq = mapped.seq();
            match clock.anchor {
                Some(a) if a.seq == seq => (
                    Some(Anchor {
                        cpu_ns: a.cpu_ns.saturating_add(to_ns(a.ticks, now)),
                        ticks: now,
                        ..a
                    }),
                    Some(seq),
                ),
                _ => (None, Some(seq)),
            }
        })
        .unwrap_or((None, None))
}

/// Whether the thread was switched out since its `lock` word was `seq`.
#[inline]
pub(crate) fn switched_since(seq: u32) -> bool {
    CLOCK
        .try_with(|clock| {
            clock
                .borrow()
                .mapped
                .as_ref()
                .is_none_or(|m| m.seq() != seq)
        })
        .unwrap_or(true)
}

/// The page's `lock` word now, when the event is open: read before a
/// reading by system calls, it is the word that reading anchors
/// ([`anchored`]).
#[inline]
pub(crate) fn seq_now() -> Option<u32> {
    CLOCK
        .try_with(|clock| clock.borrow().mapped.as_ref().map(Mapped::seq))
        .ok()
        .flatten()
}

/// Records a reading made with system calls at wall-clock `ticks`: the
/// anchor of the next ones, valid while the page's `lock` word stays
/// `seq`, the word read before the reading. Read after it, a switch out
/// between `ticks` and that read (a preemption deferred to the return of
/// the reading's last system call, on a kernel with lazy preemption) was
/// taken as time on the CPU by every extrapolation from the anchor: a
/// 400 µs sleep read 9 ms on the CPU in a loaded CI run. With the word
/// from before, such a switch shows at the next reading, which then makes
/// the system calls again.
#[cold]
#[inline(never)]
pub(crate) fn anchored(
    cpu_ns: u64,
    ticks: u64,
    voluntary: u64,
    involuntary: u64,
    seq: Option<u32>,
) {
    let _ = CLOCK.try_with(|clock| {
        let mut clock = clock.borrow_mut();
        let seq = clock.mapped.as_ref().and(seq);
        clock.anchor = seq.map(|seq| Anchor {
            seq,
            cpu_ns,
            ticks,
            voluntary,
            involuntary,
        });
    });
}

/// Counts an interval timed on this thread, at its enter, for the
/// [`Policy`]: `switches`, the thread's context switches so far, when the
/// enter read them (with the event open the `lock` word counts them).
#[inline]
pub(crate) fn timed(switches: Option<u64>) {
    let _ = CLOCK.try_with(|clock| {
        let mut clock = clock.borrow_mut();
        let seq = clock.mapped.as_ref().map(Mapped::seq);
        let switches = switches.unwrap_or(clock.policy.switches_at);
        clock.look(seq, switches);
    });
}

/// Opens this thread's event if the policy decided to: called after an
/// exit's timestamp. About 10 µs; the first event on a machine where no
/// other exists costs milliseconds (the kernel patches its scheduler hooks
/// in), which is why [`Keeper`] opens one when the layer is built.
#[cold]
#[inline(never)]
pub(crate) fn settle() {
    let _ = CLOCK.try_with(|clock| {
        let mut clock = clock.borrow_mut();
        if !std::mem::take(&mut clock.want_open) || clock.mapped.is_some() || clock.forced {
            return;
        }
        if let Some(mapped) = open() {
            clock.policy.seq_at = mapped.seq();
            clock.mapped = Some(mapped);
        }
    });
}

/// A disabled task-clock event on the thread that builds the layer, held
/// for the layer's life. While any event exists the kernel keeps its
/// scheduler hooks patched in, so the threads' own events open in about
/// 10 µs instead of the milliseconds the first one costs (measured: 7.8 to
/// 9.5 ms here, a voluntary switch, and again after a second with none):
/// that cost is paid here, at build, not inside a span. Disabled, it counts
/// nothing and costs its thread's switches next to nothing. It is also
/// where a refusal is found first, and said.
#[derive(Debug)]
pub(crate) struct Keeper(i32);

impl Keeper {
    /// `None` when the clock is off or the kernel refuses.
    pub(crate) fn open() -> Option<Self> {
        if DISABLED.load(Ordering::Relaxed) || REFUSED.load(Ordering::Relaxed) {
            return None;
        }
        match open_fd(true) {
            Ok(fd) => Some(Self(fd)),
            Err(why) => {
                refused(why);
                None
            }
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: the descriptor `open_fd` returned, closed once, here.
        unsafe {
            libc::close(self.0);
        }
    }
}

/// This thread's CPU-time source held to one choice while the guard lives,
/// whatever the policy would do, and given back as it was when it drops:
/// the overhead calibration's copies of the layer time their intervals with
/// the task clock and with the system calls on the thread that asks for a
/// dump, and must change nothing for the rest of the process.
#[derive(Debug)]
pub(crate) struct Forced {
    /// The thread's event before the guard, put back at its drop.
    before: Option<Mapped>,
}

impl Forced {
    /// The system calls only on this thread (its event, if open, set
    /// aside), or the task clock opened for it when `clock` and the kernel
    /// allows (the system calls where the clock is off or refused).
    pub(crate) fn new(clock: bool) -> Option<Self> {
        CLOCK
            .try_with(|c| {
                let mut c = c.borrow_mut();
                let before = c.mapped.take();
                c.anchor = None;
                c.forced = true;
                if clock {
                    c.mapped = open();
                }
                Forced { before }
            })
            .ok()
    }
}

impl Drop for Forced {
    fn drop(&mut self) {
        let before = self.before.take();
        let _ = CLOCK.try_with(|c| {
            let mut c = c.borrow_mut();
            c.mapped = before;
            c.anchor = None;
            c.forced = false;
            c.want_open = false;
            c.policy.timed = 0;
        });
    }
}

impl ThreadClock {
    /// One more timed interval; at the end of a window, whether to open or
    /// close the event. `switches` is the thread's count now, when read
    /// (with the event open, the `lock` word counts them instead).
    fn look(&mut self, seq: Option<u32>, switches: u64) {
        let p = &mut self.policy;
        p.timed = p.timed.saturating_add(1);
        if p.timed < WINDOW {
            return;
        }
        if self.forced {
            p.timed = 0;
            return;
        }
        let made = match seq {
            // Two moves of the word per return to the CPU.
            Some(seq) => u64::from(seq.wrapping_sub(p.seq_at) / 2),
            None => switches.saturating_sub(p.switches_at),
        };
        let worth_it = made.saturating_mul(2) <= u64::from(p.timed);
        p.timed = 0;
        p.switches_at = switches;
        if let Some(seq) = seq {
            p.seq_at = seq;
        }
        match (&self.mapped, worth_it) {
            (Some(_), false) => {
                self.mapped = None;
                self.anchor = None;
                let p = &mut self.policy;
                p.backoff = p.backoff.saturating_mul(2).clamp(1, 1 << 16);
                p.wait = p.backoff;
            }
            (None, true) if self.policy.wait == 0 => self.want_open = true,
            (None, _) => self.policy.wait = self.policy.wait.saturating_sub(1),
            (Some(_), true) => {}
        }
    }
}

/// Opens and maps this thread's task-clock event; `None` when the kernel
/// refuses (and then no thread tries again) or the clock is off.
#[cold]
fn open() -> Option<Mapped> {
    if DISABLED.load(Ordering::Relaxed) || REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    match open_event() {
        Ok(mapped) => Some(mapped),
        Err(why) => {
            refused(why);
            None
        }
    }
}

/// Records that the kernel refused the event, and says so once.
fn refused(why: String) {
    REFUSED.store(true, Ordering::Relaxed);
    if REFUSAL.set(why).is_ok() {
        eprintln!("perf-layer: CPU time from {}", source());
    }
}

#[cfg(target_os = "linux")]
fn open_event() -> Result<Mapped, String> {
    let fd = open_fd(false)?;
    // SAFETY: `sysconf` has no preconditions.
    let len = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    // SAFETY: maps `len` bytes of the event's descriptor read-only; the
    // result is checked against `MAP_FAILED`.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        let err = std::io::Error::last_os_error();
        // SAFETY: `fd` was opened above and is not used again.
        unsafe { libc::close(fd) };
        return Err(format!("the task clock's page could not be mapped ({err})"));
    }
    Ok(Mapped {
        fd,
        page: page as *const u8,
        len,
    })
}

/// This thread's task-clock event, enabled or `disabled`.
#[cfg(target_os = "linux")]
fn open_fd(disabled: bool) -> Result<i32, String> {
    /// `perf_event_attr` up to `config1`: its first published size
    /// (`PERF_ATTR_SIZE_VER0`, 64 bytes), which every kernel accepts.
    #[repr(C)]
    struct Attr {
        kind: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        /// Bit fields: bit 0 `disabled`; the others clear (user and
        /// kernel time counted, not inherited by child threads).
        flags: u64,
        wakeup_events: u32,
        bp_type: u32,
        config1: u64,
    }
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let attr = Attr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<Attr>() as u32,
        config: PERF_COUNT_SW_TASK_CLOCK,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: u64::from(disabled),
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid `perf_event_attr` of the size it states,
    // alive across the call; pid 0 and cpu -1 are this thread on any CPU,
    // group -1 none.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "perf_event_open was refused ({err}; /proc/sys/kernel/perf_event_paranoid, a seccomp profile, or no descriptors left)"
        ));
    }
    Ok(fd as i32)
}

#[cfg(not(target_os = "linux"))]
fn open_event() -> Result<Mapped, String> {
    Err("perf_event_open exists only on Linux".into())
}

#[cfg(not(target_os = "linux"))]
fn open_fd(_disabled: bool) -> Result<i32, String> {
    Err("perf_event_open exists only on Linux".into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_lock_word_moves_when_the_thread_sleeps_and_not_while_it_spins() {
        let Some(mapped) = open() else {
            // Refused here (a container's seccomp profile): the fallback
            // is what runs, and its own tests cover it.
            assert!(REFUSAL.get().is_some());
            return;
        };
        let slept = mapped.seq();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(mapped.seq(), slept, "a sleep switches the thread out");
        // Spinning for 50 µs is rarely preempted; a few tries make it sure.
        let still = (0..20).any(|_| {
            let before = mapped.seq();
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_micros(50) {
                std::hint::spin_loop();
            }
            mapped.seq() == before
        });
        assert!(still, "the word moved in 20 spins of 50 µs");
    }

    #[test]
    fn a_forced_source_holds_on_its_thread_only_and_is_given_back() {
        std::thread::spawn(|| {
            let mapped = || CLOCK.with(|c| c.borrow().mapped.as_ref().map(|m| m.page));
            let Some(own) = open() else {
                assert!(REFUSAL.get().is_some());
                return;
            };
            let page = own.page;
            CLOCK.with(|c| c.borrow_mut().mapped = Some(own));
            {
                // The system calls: the thread's event set aside, and the
                // policy's wish to open one not acted on.
                let _calls = Forced::new(false).unwrap();
                assert_eq!(mapped(), None);
                CLOCK.with(|c| c.borrow_mut().want_open = true);
                settle();
                assert_eq!(mapped(), None);
            }
            assert_eq!(mapped(), Some(page), "the thread's own event is back");
            // The clock: an event of its own while the guard lives.
            CLOCK.with(|c| c.borrow_mut().mapped = None);
            {
                let _clock = Forced::new(true).unwrap();
                assert!(mapped().is_some());
            }
            assert_eq!(mapped(), None, "the thread had none before");
            // Neither touches the process: another thread still opens one.
            assert!(!DISABLED.load(Ordering::Relaxed));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_switch_after_a_reading_s_word_was_read_is_never_extrapolated_over() {
        std::thread::spawn(|| {
            let Some(own) = open() else {
                assert!(REFUSAL.get().is_some());
                return;
            };
            CLOCK.with(|c| c.borrow_mut().mapped = Some(own));
            let before = seq_now();
            // Switched out after the word was read, as a preemption at the
            // return of the reading's last system call would.
            std::thread::sleep(std::time::Duration::from_millis(2));
            anchored(1_000, 0, 0, 0, before);
            let (fast, seq) = extrapolate(5_000_000, |a, b| b - a);
            assert!(fast.is_none(), "{fast:?}: the sleep read as on the CPU");
            assert_ne!(seq, before);
            // Anchored with the word it read, the next reading extrapolates.
            anchored(1_000, 0, 0, 0, seq);
            let (fast, _) = extrapolate(500, |a, b| b - a);
            assert_eq!(fast.map(|a| a.cpu_ns), Some(1_500));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn threads_that_exit_give_their_descriptor_back() {
        let open_fds = || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        let before = open_fds();
        for _ in 0..200 {
            std::thread::spawn(|| {
                CLOCK.with(|clock| clock.borrow_mut().mapped = open());
            })
            .join()
            .unwrap();
        }
        // Other tests of this binary run beside this one and open their
        // own; 200 leaked descriptors would be far over this.
        assert!(open_fds() < before + 50, "{before} -> {}", open_fds());
    }
}
