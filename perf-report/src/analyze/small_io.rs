//! A span whose time on the CPU is small system calls: reads or writes of
//! a few bytes each, one every few microseconds of its CPU (the dump's
//! `watched_io`, the background thread's reading of each thread's
//! `/proc/self/task/<tid>/io` where the span stayed innermost on the CPU).
//! A file, a pipe or a terminal written a line at a time (`write_all` on
//! an unbuffered `File`, `println!` to a pipe) or read a byte at a time
//! (`File::bytes()`) pays a system call for each. The hot spot finding
//! reads it: buffering is then its first fix, not memoizing.
//!
//! The process's kernel share tells it only where the span holds most of
//! the process's CPU: two threads each computing 2 ms then writing 4,000
//! lines unbuffered read 29% of the process's CPU in the kernel, and the
//! writing span's fixes were the general ones; a `BufWriter` gave 40%
//! more batches.

use perf_layer::dump::{CallsiteStats, WatchedIo};

use crate::analyze::context::Context;
use crate::analyze::finding::Evidence;
use crate::units::{self, Unit};

/// Fewest probes read inside the span's own work that make its rate worth
/// reading: 8 × 250 µs, 2 ms of its CPU.
const MIN_PROBES: u64 = 8;

/// A read or write moving at most this many bytes on average is small
/// (1 KiB); a `BufWriter` writes 8 KiB at a time.
pub(crate) const SMALL_BYTES: f64 = 1024.0;

/// At most this much of the span's CPU time between two such calls on
/// average (50 µs: 20 a millisecond) makes them a large part of it; one
/// small system call costs about a microsecond, more under a VM.
pub(crate) const MAX_CPU_BETWEEN_NS: f64 = 50_000.0;

/// At least this share of the span's own CPU time that its system calls
/// could be ([`SmallIo::share`]) makes them a large part of it (0.25). A
/// span computing 600 µs a call and logging 20 lines through a `fmt` layer
/// made a `write` every 34 µs of its CPU, 307 bytes each, with 5.8% of the
/// process's CPU in the kernel: one line a call gave 11% more calls, a
/// fix but not the first.
pub(crate) const MIN_SHARE: f64 = 0.25;

/// The most CPU one small read or write to a file, a pipe or a terminal
/// is taken to cost (5 µs; 0.5 to 1.1 µs measured on the 2-core guest,
/// the call and the span's work between two of them together).
const MAX_CALL_NS: f64 = 5_000.0;

/// The share of their CPU buffering removes (0.9): a buffer of 8 KiB makes
/// one call of hundreds; the copies stay.
const BUFFERED: f64 = 0.9;

/// Which way the small calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    Reads,
    Writes,
}

/// A span's small system calls ([`of`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmallIo {
    pub(crate) way: Way,
    /// Its CPU time between two calls on average, ns.
    pub(crate) cpu_between_ns: f64,
    /// Bytes a call on average.
    pub(crate) bytes_per_call: f64,
    /// What it was read from.
    pub(crate) probes: u64,
    pub(crate) cpu_ns: u64,
    /// The most of its CPU its system calls can be: the process's time in
    /// the kernel while it was live over its own CPU, and
    /// [`MAX_CALL_NS`] a call, whichever is less.
    pub(crate) share: f64,
}

/// [`SmallIo`] of `cs`: at least [`MIN_PROBES`] probes, and reads or
/// writes of at most [`SMALL_BYTES`] each, one every
/// [`MAX_CPU_BETWEEN_NS`] of its CPU or more often (the more frequent way
/// where both are), which could be at least [`MIN_SHARE`] of its CPU
/// (`kernel_at_most`: the process's time in the kernel while it was live,
/// over its own CPU; `None`, not known, and no reading).
pub(crate) fn of(cs: &CallsiteStats, kernel_at_most: Option<f64>) -> Option<SmallIo> {
    let io: WatchedIo = cs.watched_io?;
    let kernel_at_most = kernel_at_most?;
    if io.probes < MIN_PROBES {
        return None;
    }
    [
        (Way::Reads, io.reads_per_cpu_second()),
        (Way::Writes, io.writes_per_cpu_second()),
    ]
    .into_iter()
    .filter_map(|(way, rate)| {
        let (per_second, bytes_per_call) = rate?;
        let cpu_between_ns = 1e9 / per_second;
        let share = kernel_at_most.min(MAX_CALL_NS / cpu_between_ns).min(1.0);
        (cpu_between_ns <= MAX_CPU_BETWEEN_NS
            && bytes_per_call <= SMALL_BYTES
            && share >= MIN_SHARE)
            .then_some(SmallIo {
                way,
                cpu_between_ns,
                bytes_per_call,
                probes: io.probes,
                cpu_ns: io.cpu_ns,
                share,
            })
    })
    .min_by(|a, b| a.cpu_between_ns.total_cmp(&b.cpu_between_ns))
}

impl SmallIo {
    fn call(&self) -> &'static str {
        match self.way {
            Way::Reads => "`read`",
            Way::Writes => "`write`",
        }
    }

    /// The finding's evidence of it.
    pub(crate) fn evidence(&self) -> [Evidence; 3] {
        let what = match self.way {
            Way::Reads => "read",
            Way::Writes => "write",
        };
        [
            Evidence::new(
                &format!("its time on the CPU between two {what} system calls"),
                self.cpu_between_ns,
                Unit::Ns,
                Some(MAX_CPU_BETWEEN_NS),
            ),
            Evidence::new(
                &format!("bytes a {what} call"),
                self.bytes_per_call,
                Unit::Bytes,
                Some(SMALL_BYTES),
            ),
            Evidence::new(
                "its system calls' share of its CPU, at most (the process's time in the kernel while it was live, 5 µs a call)",
                self.share,
                Unit::Share,
                Some(MIN_SHARE),
            ),
        ]
    }

    /// The finding's summary of it, for a span of `cpu_per_call_ns` on
    /// the CPU a call: "it made a `write` system call every 937 ns of its
    /// time on the CPU (about 4,000 a call), 14 B each (...)".
    pub(crate) fn clause(&self, cpu_per_call_ns: f64) -> String {
        format!(
            "it made a {} system call every {} of its time on the CPU (about {} a call), {} each (read by the background thread over {} probes, {} of its CPU): up to {} of its CPU, as the process's time in the kernel while it ran bounds them",
            self.call(),
            units::ns(self.cpu_between_ns),
            units::count(two_figures(cpu_per_call_ns / self.cpu_between_ns)),
            units::bytes(self.bytes_per_call),
            units::count(self.probes as f64),
            units::ns(self.cpu_ns as f64),
            units::pct(self.share)
        )
    }

    /// The share of its self time on the CPU buffering removes: most of
    /// its system calls' ([`BUFFERED`]).
    pub(crate) fn buffered_share(&self) -> f64 {
        BUFFERED * self.share
    }

    /// The plan step's gain, for a finding of cost `cost` (its share of
    /// `of`) that gives back `gain`; `name`, the span in prose.
    pub(crate) fn statement(&self, name: &str, cost: f64, gain: f64, of: &str) -> String {
        format!(
            "buffering its {} removes about {} of {name}'s self time on the CPU ({} of {of}), its system calls, and saves about {} of {of}",
            match self.way {
                Way::Reads => "reads",
                Way::Writes => "writes",
            },
            units::pct(self.buffered_share()),
            units::pct(cost),
            units::pct(gain)
        )
    }

    /// The first fix.
    pub(crate) fn fix(&self) -> String {
        match self.way {
            Way::Writes => format!(
                "Buffer its writes: it made a `write` system call every {} of its CPU, {} each; wrap the file, pipe or socket in a `std::io::BufWriter` (and `flush` it at the end), or build the output in a `Vec<u8>`/`String` and write it once; `println!` writes a line at a time to stdout, so lock it once (`stdout().lock()`) inside a `BufWriter` for many lines",
                units::ns(self.cpu_between_ns),
                units::bytes(self.bytes_per_call)
            ),
            Way::Reads => format!(
                "Buffer its reads: it made a `read` system call every {} of its CPU, {} each; wrap the file or pipe in a `std::io::BufReader` (`File::bytes()` and small `read`s on a bare `File` are a system call each), or read it whole (`std::fs::read`, `read_to_end`) and parse the bytes in memory",
                units::ns(self.cpu_between_ns),
                units::bytes(self.bytes_per_call)
            ),
        }
    }
}

/// `x` to two significant figures (an estimate: 4,013 is about 4,000).
fn two_figures(x: f64) -> f64 {
    if !(x.is_finite() && x >= 100.0) {
        return x.round();
    }
    let unit = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / unit).round() * unit
}

/// The most of a span's `on_cpu` time its system calls can be: the
/// process's time in the kernel over `cs`'s `active` window (the other
/// threads' included), over it, at most 1; `None` under two timeline
/// samples there.
pub(crate) fn kernel_at_most(
    cx: &Context<'_>,
    cs: &perf_layer::dump::CallsiteStats,
    on_cpu: f64,
) -> Option<f64> {
    let (_, kernel_ns, samples) = kernel_over_window(cx, cs)?;
    (samples >= 2 && on_cpu > 0.0).then(|| (kernel_ns / on_cpu).min(1.0))
}

/// The process's CPU time and the kernel's part of it over `cs`'s
/// `active` window (the timeline samples whose intervals lie inside it),
/// ns, and the samples read.
pub(crate) fn kernel_over_window(
    cx: &Context<'_>,
    cs: &perf_layer::dump::CallsiteStats,
) -> Option<(f64, f64, usize)> {
    let w = cs.active.filter(|w| w.len_ns() > 0)?;
    let (mut cpu_ns, mut kernel_ns, mut samples) = (0.0, 0.0, 0);
    let inside = crate::analyze::busy_cores::samples_inside(
        cx.dump,
        w.first_open_ns as f64,
        w.last_close_ns as f64,
    );
    for (before, s) in inside {
        let (Some(share), cpu) = (s.system_cpu_share_percent, s.cpu_percent) else {
            continue;
        };
        if !(share.is_finite() && cpu.is_finite()) {
            continue;
        }
        let ns = cpu.max(0.0) / 100.0 * s.t_ms.saturating_sub(before.t_ms) as f64 * 1e6;
        cpu_ns += ns;
        kernel_ns += ns * (share / 100.0).clamp(0.0, 1.0);
        samples += 1;
    }
    Some((cpu_ns, kernel_ns, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`of`] with the kernel's time at most 90% of the span's CPU.
    fn of_(cs: &CallsiteStats) -> Option<SmallIo> {
        of(cs, Some(0.9))
    }

    fn with(io: WatchedIo) -> CallsiteStats {
        use crate::analyze::test_dump::{Span, dump};
        let mut cs = dump(1_000_000_000, &[Span::new("export", &[(1_000_000, 10)])])
            .callsites
            .remove(0);
        cs.watched_io = Some(io);
        cs
    }

    /// A line a `write` (14 bytes, one every 1.1 µs of the CPU) is small
    /// I/O; a `BufWriter`'s 8 KiB writes, or small writes far apart (a
    /// log line every millisecond of computing), or too few probes, are
    /// not.
    #[test]
    fn writes_of_a_line_each_are_small_and_buffered_or_rare_ones_are_not() {
        let unbuffered = WatchedIo {
            probes: 173,
            cpu_ns: 55_508_005,
            writes: 51_358,
            written_bytes: 718_165,
            ..WatchedIo::default()
        };
        let found = of_(&with(unbuffered)).expect("small writes");
        assert_eq!(found.way, Way::Writes);
        assert!(
            (found.cpu_between_ns - 1_080.8).abs() < 1.0,
            "{}",
            found.cpu_between_ns
        );
        assert!((found.bytes_per_call - 13.98).abs() < 0.01);
        assert!(found.fix().starts_with("Buffer its writes"));
        assert!((found.share - 0.9).abs() < 1e-9);
        // The kernel's time at most a tenth of its CPU, or not known: the
        // calls are not a large part of it.
        assert!(of(&with(unbuffered), Some(0.1)).is_none());
        assert!(of(&with(unbuffered), None).is_none());
        // A small write every 34 µs of the CPU is at most 15% of it, at 5
        // µs a call, whatever the kernel did beside it.
        let logging = WatchedIo {
            probes: 173,
            cpu_ns: 44_150_060,
            writes: 1_288,
            written_bytes: 395_239,
            ..WatchedIo::default()
        };
        assert!(of(&with(logging), Some(1.0)).is_none());
        let buffered = WatchedIo {
            probes: 10,
            cpu_ns: 2_670_793,
            writes: 72,
            written_bytes: 577_010,
            ..WatchedIo::default()
        };
        assert!(of_(&with(buffered)).is_none());
        let rare = WatchedIo {
            probes: 100,
            cpu_ns: 25_000_000,
            writes: 25,
            written_bytes: 2_500,
            ..WatchedIo::default()
        };
        assert!(of_(&with(rare)).is_none());
        assert!(
            of_(&with(WatchedIo {
                probes: MIN_PROBES - 1,
                ..unbuffered
            }))
            .is_none()
        );
    }

    /// A byte a `read` (`File::bytes()`) is small I/O read, and the more
    /// frequent way is the one named.
    #[test]
    fn reads_of_a_byte_each_are_named_over_rarer_writes() {
        let io = WatchedIo {
            probes: 276,
            cpu_ns: 80_676_945,
            reads: 152_110,
            read_bytes: 152_110,
            writes: 5_000,
            written_bytes: 50_000,
        };
        let found = of_(&with(io)).expect("small reads");
        assert_eq!(found.way, Way::Reads);
        assert_eq!(found.bytes_per_call, 1.0);
        assert!(found.fix().starts_with("Buffer its reads"));
        assert!(
            found.clause(530_000.0).contains(
                "`read` system call every 530 ns of its time on the CPU (about 1,000 a call)"
            ),
            "{}",
            found.clause(530_000.0)
        );
    }
}
