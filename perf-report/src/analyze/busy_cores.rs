//! What the process's busy cores leave of a gain from time off the CPU.
//!
//! A finding about time a span spends off the CPU (blocked, queued, a
//! blocking tail, a wait) gives back wall time only where a core would
//! otherwise sit idle. While the process keeps all its cores busy, another
//! of its threads runs whenever one waits: the run's CPU work in a window
//! of length `W`, at a share `u` of its cores busy, needs at least `u × W`
//! however little anything waits, so no fix that leaves that work alone
//! shortens the window by more than `(1 − u) × W`. Four threads indexing
//! on two cores that queue briefly on one lock gave back 1 to 2% of the run
//! with the lock gone, where their blocking tail read 8.6%.
//!
//! `u` is read from the sampler's timeline over the window the callsite's
//! spans were live in (`active`; the whole run without one): the mean of
//! the samples whose intervals lie inside it, the process's CPU over
//! `run.cores`. Without the cores, or with fewer than two such samples,
//! nothing is known and the gain stands.
//!
//! Finer, where the layer watched the callsite's spans wait
//! (`watched_waits`, at least [`MIN_WATCHED`] times): the rest of the
//! process kept a share `b` of the `C` cores busy *while they waited*, so
//! `C × (1 − b)` cores sat idle then, and a waiting thread given back its
//! time can use one core at most: at most `min(1, C × (1 − b))` of the wait
//! can come back. A thread that waits for its own pool's work (a
//! `par_iter`, a join) waits while the pool fills the cores: a fresh batch
//! program's `process_batch` read "blocked, gives back 9%", where its wait
//! was its pool's computing (1.95 of 2 cores busy); its `load_batch` (a
//! read the whole process idled through) was the real fix, 32%. A runtime
//! worker blocked beside another that computes still has its own core
//! idle: its wait can all come back.
//!
//! Busy is not all the rest of the process wanted: beside other processes
//! (a shared CI runner), a pool of three spinning threads got one core of
//! two, and its join read 0.94 to 0.98 cores busy, one idle, where no core
//! was idle for it. Where the dump says what the rest of the process
//! wanted (`others_wanted_ns`: a thread waiting for a core at a probe's end
//! counts it all), the idle cores are those it neither used nor wanted.
//! What it wanted beyond its CPU is at most what its threads waited for a
//! core while the spans waited, by the timeline (`waiting_for_cpu_percent`,
//! the kernel's run delay of every thread; its mean over the window, over
//! the share of the window the spans waited in, `Timeline::while_waiting`):
//! a probe's end finds a thread of a
//! lock convoy runnable most times (woken by the holder, or put off its
//! core by the background thread's own wake-up), and a fresh convoy whose
//! fix made 63% more items read as the rest wanting both of two cores, on
//! an idle machine, its gain 0.5% of the run. Where the rest wanted more
//! than it got and the machine's other processes used less than half of
//! the difference, no other process is named: the rest ran in bursts.
//!
//! The watch sees a thread off the CPU, not why: a preempted thread waits
//! while others run by definition. Where more than
//! [`MAX_PREEMPTED_SHARE`] of a span's self time off the CPU is preemption
//! (its timed intervals' switches say so), its watched waits are not used:
//! a lock's holder preempted while it computes would read its queue's
//! cores as busy.

use perf_layer::dump::{ActiveWindow, CallsiteStats, Dump, ProcessSample};

use super::finding::Evidence;
use crate::units::{self, Unit};

/// Fewest timeline samples inside the window that say how busy it was.
const MIN_SAMPLES: usize = 2;

/// Fewest watched waits that say how busy the rest of the process was
/// while a callsite's spans waited.
pub(crate) const MIN_WATCHED: u64 = 8;

/// Below this many idle cores while a span waited, it waits beside work.
pub(crate) const BESIDE_WORK_IDLE_CORES: f64 = 0.5;

/// Above this share of preemption in a span's self time off the CPU, its
/// watched waits are not read as blocking.
pub(crate) const MAX_PREEMPTED_SHARE: f64 = 0.25;

/// How busy the rest of the process kept the cores while a callsite's
/// spans waited, as the layer watched them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CoresWhileWaiting {
    /// The other threads' CPU over the cores' time while it waited (0 to 1).
    pub(crate) busy: f64,
    /// What the other threads wanted of the cores then, at least `busy`
    /// (above 1 when they wanted more cores than there are): their CPU, and
    /// whole probes for threads that waited for a core (on a core or
    /// waiting for one).
    pub(crate) wanted: f64,
    /// The cores the process may use.
    pub(crate) cores: u32,
    /// The waits watched.
    pub(crate) watched: u64,
    /// Whether other processes used the cores the rest of the process
    /// wanted and did not get (the machine's other CPU over the window, at
    /// least half of them); `None` where the timeline does not say.
    pub(crate) others_took: Option<bool>,
}

impl CoresWhileWaiting {
    /// The cores the rest of the process neither used nor wanted, on
    /// average, while the spans waited.
    pub(crate) fn idle_cores(&self) -> f64 {
        f64::from(self.cores) * (1.0 - self.wanted.max(self.busy)).max(0.0)
    }

    /// Whether the rest of the process wanted noticeably more than it got
    /// (a twentieth of the cores).
    fn wanted_more(&self) -> bool {
        self.wanted > self.busy + 0.05
    }

    /// What the rest of the process kept busy, and wanted where more: with
    /// cores it did not use, other processes had them; with every core
    /// busy, it ran more threads than cores.
    fn kept_busy(&self) -> String {
        let wanted = if self.wanted_more() {
            format!(
                " and had threads waiting for more ({:.2} cores wanted: {})",
                self.wanted * f64::from(self.cores),
                if self.busy >= 0.95 {
                    "more threads than cores"
                } else if self.others_took == Some(false) {
                    "in bursts, more of its threads runnable than cores at moments and cores idle at others"
                } else {
                    "other processes had the rest"
                }
            )
        } else {
            String::new()
        };
        format!(
            "kept {} of its {} cores busy{wanted}",
            units::pct(self.busy),
            self.cores
        )
    }

    /// The most of a wait that can come back: the idle cores, at most the
    /// one core a waiting thread would run on.
    pub(crate) fn left(&self) -> f64 {
        self.idle_cores().min(1.0)
    }

    /// Of `cs`; `None` without the cores or [`MIN_WATCHED`] watched waits.
    pub(crate) fn of(dump: &Dump, cs: &CallsiteStats) -> Option<Self> {
        let cores = dump.run.cores.filter(|&n| n > 0)?;
        let w = cs
            .watched_waits
            .as_ref()
            .filter(|w| w.intervals >= MIN_WATCHED)?;
        let others = w.others_cores().filter(|c| c.is_finite())?;
        let wanted = w.others_wanted_cores().filter(|c| c.is_finite())?;
        let n = f64::from(cores);
        let busy = (others / n).clamp(0.0, 1.0);
        // Not bounded by 1: three threads may want two cores.
        let mut wanted = (wanted / n).max(0.0);
        let timeline = Timeline::over(dump, cs.active);
        if let Some(t) = timeline {
            if let Some(waiting) = t.waiting_cores.and_then(|w| t.while_waiting(dump, cs, w)) {
                wanted = wanted.min(busy + waiting / n).max(busy);
            }
        }
        let short = (wanted - busy).max(0.0) * n;
        Some(Self {
            busy,
            wanted,
            cores,
            watched: w.intervals,
            others_took: timeline
                .and_then(|t| t.machine_others_cores)
                .map(|o| o >= 0.5 * short),
        })
    }
}

/// What the timeline says of the process and the machine over a window.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// The process's threads waiting for a core, on average: in cores.
    waiting_cores: Option<f64>,
    /// The CPU the rest of the machine used, in cores.
    machine_others_cores: Option<f64>,
    /// The window's length, ns.
    window_ns: f64,
}

impl Timeline {
    /// Over `active` (the whole run when `None`); `None` with fewer than
    /// [`MIN_SAMPLES`] samples inside. Each figure only where every sample
    /// inside has it.
    fn over(dump: &Dump, active: Option<ActiveWindow>) -> Option<Self> {
        let (from_ns, to_ns) = window(active, dump.run.duration_ns as f64);
        let inside: Vec<&ProcessSample> = samples_inside(dump, from_ns, to_ns)
            .map(|(_, s)| s)
            .collect();
        if inside.len() < MIN_SAMPLES {
            return None;
        }
        let mean_cores = |of: &dyn Fn(&ProcessSample) -> Option<f64>| {
            let all: Option<Vec<f64>> = inside
                .iter()
                .map(|s| of(s).filter(|v| v.is_finite()))
                .collect();
            all.map(|v| v.iter().sum::<f64>() / v.len() as f64 / 100.0)
        };
        Some(Self {
            window_ns: to_ns - from_ns,
            waiting_cores: mean_cores(&|s| s.waiting_for_cpu_percent),
            machine_others_cores: mean_cores(&|s| {
                s.machine_cpu_percent.map(|m| (m - s.cpu_percent).max(0.0))
            }),
        })
    }

    /// The most the process's threads waited for a core, in cores, while
    /// `cs`'s spans waited, from `waiting`, the mean over the window: at
    /// most that mean over the share `f` of the window some span of `cs`
    /// waited in, which is at least their time off the CPU over the window
    /// and the threads recording spans (as many waiting at once). A span
    /// waiting half the time, in phases that fill the cores, waits beside
    /// twice the window's mean; one a crowd waits in all along, beside the
    /// mean. `None` without its time off the CPU.
    fn while_waiting(&self, dump: &Dump, cs: &CallsiteStats, waiting: f64) -> Option<f64> {
        let off_ns = cs.cpu.as_ref()?.off_cpu_ns as f64;
        let threads = crate::analyze::context::recording_threads(dump, dump.run.duration_ns as f64);
        let f = (off_ns / (self.window_ns * threads)).min(1.0);
        (f > 0.0 && self.window_ns > 0.0).then(|| waiting / f)
    }
}

/// What a bound on a gain from waiting was read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Busy {
    /// The cores over the window the callsite's spans were live in.
    Window(CoresInWindow),
    /// The cores while its spans waited.
    Waiting(CoresWhileWaiting),
}

/// How busy the process kept its cores over a callsite's `active` window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CoresInWindow {
    /// The process's CPU over its cores' time in the window (0 to 1).
    pub(crate) busy: f64,
    /// The cores the process may use.
    pub(crate) cores: u32,
    /// The window's share of the run's wall time.
    pub(crate) window_share: f64,
}

impl CoresInWindow {
    /// Over `active` (the whole run when `None`); `None` without the cores
    /// or two timeline samples inside the window.
    pub(crate) fn of(dump: &Dump, run_wall_ns: f64, active: Option<ActiveWindow>) -> Option<Self> {
        let cores = dump.run.cores.filter(|&n| n > 0)?;
        if run_wall_ns <= 0.0 {
            return None;
        }
        let (from_ns, to_ns) = window(active, run_wall_ns);
        let inside: Vec<f64> = samples_inside(dump, from_ns, to_ns)
            .map(|(_, s)| s.cpu_percent)
            .filter(|c| c.is_finite())
            .collect();
        if inside.len() < MIN_SAMPLES {
            return None;
        }
        let mean = inside.iter().sum::<f64>() / inside.len() as f64;
        Some(Self {
            busy: (mean / (100.0 * f64::from(cores))).clamp(0.0, 1.0),
            cores,
            window_share: ((to_ns - from_ns) / run_wall_ns).clamp(0.0, 1.0),
        })
    }
}

/// A callsite's `active` window in the run, ns: the whole run (of
/// `run_wall_ns`) without one.
fn window(active: Option<ActiveWindow>, run_wall_ns: f64) -> (f64, f64) {
    match active {
        Some(w) if w.len_ns() > 0 => (w.first_open_ns as f64, w.last_close_ns as f64),
        _ => (0.0, run_wall_ns),
    }
}

/// The timeline's samples whose intervals (from the sample before, the
/// first of each pair) lie inside `from_ns..=to_ns` of the run, with the
/// sample before each: a sample's CPU is over the interval since it.
pub(crate) fn samples_inside(
    dump: &Dump,
    from_ns: f64,
    to_ns: f64,
) -> impl Iterator<Item = (&ProcessSample, &ProcessSample)> {
    dump.timeline
        .samples
        .windows(2)
        .filter(move |p| p[0].t_ms as f64 * 1e6 >= from_ns && p[1].t_ms as f64 * 1e6 <= to_ns)
        .map(|p| (&p[0], &p[1]))
}

/// How busy the process kept its cores while a callsite's spans were live
/// or waited, when that bounds a wall-time gain below what the finding
/// would claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BusyCores {
    /// How busy the cores were, and when.
    pub(crate) busy: Busy,
    /// The most the run's wall time can shorten, as a share of it: the
    /// cores' idle share times the window's share of the run, or times the
    /// cost while the spans waited.
    pub(crate) cap: f64,
    /// The share of the cost the fix itself removes (the detector's
    /// `recoverable`).
    pub(crate) fix: f64,
    /// The gain the finding would claim without the bound.
    pub(crate) uncapped: f64,
    /// Of the cores' time over the window, the share the spans' own
    /// waiters burnt spinning or yielding, which the fix frees and the
    /// cap counts as idle ([`BusyCores::less_spinning`]).
    pub(crate) spun: f64,
}

impl BusyCores {
    /// The bound on a gain of `cost × recoverable` (shares of the run's wall
    /// time) from time `cs`'s spans spent off the CPU: the tighter of the
    /// cores' idle time while they waited (where watched, and `blocking`:
    /// their time off the CPU is blocking, not preemption) and over their
    /// `active` window (the whole run when `None`); `None` when the cores
    /// were idle enough to carry it, or when the dump does not say.
    pub(crate) fn of(
        dump: &Dump,
        run_wall_ns: f64,
        cs: &CallsiteStats,
        blocking: bool,
        cost: f64,
        recoverable: f64,
    ) -> Option<Self> {
        let window = CoresInWindow::of(dump, run_wall_ns, cs.active)
            .map(|w| ((1.0 - w.busy) * w.window_share, Busy::Window(w)));
        let waiting = CoresWhileWaiting::of(dump, cs)
            .filter(|_| blocking)
            .map(|w| (w.left() * cost, Busy::Waiting(w)));
        let (cap, busy) = [window, waiting]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.total_cmp(&b.0))?;
        let uncapped = cost * recoverable;
        (cap < uncapped).then_some(Self {
            busy,
            cap,
            fix: recoverable,
            uncapped,
            spun: 0.0,
        })
    }

    /// The bound when `cores` of the process's busy cores over the window
    /// were the spans' own waiters spinning or yielding (a queue on a
    /// `parking_lot` or spin lock): the fix frees them, so they count as
    /// idle; `None` when the bound then leaves the whole gain. Only the
    /// window's bound reads the process's CPU; the watched waits' is left.
    pub(crate) fn less_spinning(self, cores: f64) -> Option<Self> {
        let Busy::Window(w) = self.busy else {
            return Some(self);
        };
        let spun = (cores / f64::from(w.cores)).clamp(0.0, w.busy);
        let cap = self.cap + spun * w.window_share;
        (cap < self.uncapped).then_some(Self { cap, spun, ..self })
    }

    /// The window's busy share, and what of it the spans' waiters spun.
    fn kept_busy(&self, w: &CoresInWindow) -> String {
        let spun = if self.spun > 0.0 {
            format!(
                " ({} of them its own waiters spinning, which the fix frees)",
                units::pct(self.spun)
            )
        } else {
            String::new()
        };
        format!("{} of its {} cores busy{spun}", units::pct(w.busy), w.cores)
    }

    /// The finding's `recoverable` under the bound, for a cost of `cost`.
    pub(crate) fn recoverable(&self, cost: f64) -> f64 {
        if cost > 0.0 {
            (self.cap / cost).min(self.fix)
        } else {
            0.0
        }
    }

    /// Whether the rest of the process left less than
    /// [`BESIDE_WORK_IDLE_CORES`] of a core idle while the spans waited:
    /// they wait beside work running elsewhere (a pool they joined, a
    /// lock's holder, a channel's sender), likely for it.
    pub(crate) fn waits_beside_work(&self) -> bool {
        matches!(self.busy, Busy::Waiting(w) if w.idle_cores() < BESIDE_WORK_IDLE_CORES)
    }

    /// The clause a summary ends with.
    pub(crate) fn summary(&self) -> String {
        match self.busy {
            Busy::Window(w) => format!(
                "; but the process kept {} while its spans were live, so only their idle time can come back: its other threads ran while these waited",
                self.kept_busy(&w)
            ),
            Busy::Waiting(w) => format!(
                "; but while its spans waited the rest of the process {} ({} waits watched), {:.2} of a core idle, so at most that share of the wait can come back{}",
                w.kept_busy(),
                units::count(w.watched as f64),
                w.idle_cores(),
                if self.waits_beside_work() {
                    ": they wait beside work running elsewhere (a pool they joined, a lock's holder, a channel's sender), and that work's findings are where the time goes"
                } else {
                    ""
                }
            ),
        }
    }

    /// What a plan step's gain says beside its figure, in brackets.
    pub(crate) fn gain_clause(&self) -> String {
        match self.busy {
            Busy::Window(w) => format!(
                " (the cores' idle time while its spans were live, not {}: the process kept {}, and its other threads ran while these waited)",
                units::pct(self.uncapped),
                self.kept_busy(&w)
            ),
            Busy::Waiting(w) => format!(
                " (the cores' idle time while its spans waited, not {}: the rest of the process {} then, {:.2} of a core idle)",
                units::pct(self.uncapped),
                w.kept_busy(),
                w.idle_cores()
            ),
        }
    }

    /// The evidence it adds.
    pub(crate) fn evidence(&self) -> Evidence {
        match self.busy {
            Busy::Window(w) => Evidence::new(
                "cores busy while its spans were live (the process's CPU)",
                w.busy,
                Unit::Share,
                None,
            ),
            Busy::Waiting(w) if w.wanted_more() => Evidence::new(
                "cores the rest of the process kept busy or had threads waiting for while its spans waited",
                w.wanted.min(1.0),
                Unit::Share,
                None,
            ),
            Busy::Waiting(w) => Evidence::new(
                "cores the rest of the process kept busy while its spans waited",
                w.busy,
                Unit::Share,
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::test_dump::{MS, Span, dump};
    use perf_layer::dump::{ProcessSample, WatchedWaits};

    /// A callsite live over `active`, its waits watched as `waits`.
    fn callsite(active: Option<ActiveWindow>, waits: Option<WatchedWaits>) -> CallsiteStats {
        let mut cs = dump(10_000 * MS, &[Span::new("wait", &[(MS, 1)])])
            .callsites
            .remove(0);
        cs.active = active;
        cs.watched_waits = waits;
        cs
    }

    /// The bound over `active` alone.
    fn of(
        d: &Dump,
        active: Option<ActiveWindow>,
        cost: f64,
        recoverable: f64,
    ) -> Option<BusyCores> {
        BusyCores::of(d, 10e9, &callsite(active, None), true, cost, recoverable)
    }

    /// A 10 s run on 2 cores, the process at `cpu` percent from 2 s to 8 s
    /// and idle around it; a span live over those 6 s.
    fn with_cpu(cpu: f64, cores: Option<u32>) -> Dump {
        let mut d = dump(10_000 * MS, &[]);
        d.run.cores = cores;
        d.timeline.interval_ms = 1_000;
        d.timeline.samples = (0..=10)
            .map(|s| ProcessSample {
                t_ms: s * 1_000,
                cpu_percent: if (3..=8).contains(&s) { cpu } else { 5.0 },
                ..ProcessSample::default()
            })
            .collect();
        d
    }

    const WINDOW: ActiveWindow = ActiveWindow {
        first_open_ns: 2_000_000_000,
        last_close_ns: 8_000_000_000,
    };

    #[test]
    fn busy_cores_bound_a_gain_from_waiting_by_their_idle_time() {
        // 190% of 2 cores: 5% idle over 60% of the run, 3% of it at most.
        let d = with_cpu(190.0, Some(2));
        let b = of(&d, Some(WINDOW), 0.2, 0.8).unwrap();
        assert!(
            matches!(b.busy, Busy::Window(w) if (w.busy - 0.95).abs() < 1e-9),
            "{b:?}"
        );
        assert!((b.cap - 0.03).abs() < 1e-9, "{b:?}");
        assert!((b.recoverable(0.2) - 0.15).abs() < 1e-9);
        assert!((b.uncapped - 0.16).abs() < 1e-9);
        // Over the whole run the idle edges count too: (1 − 0.6 × 0.95 −
        // 0.4 × 0.025) of 10 s, 42%, which carries the 16%.
        assert_eq!(of(&d, None, 0.2, 0.8), None);
    }

    #[test]
    fn idle_cores_or_an_unknown_count_leave_the_gain_alone() {
        assert_eq!(of(&with_cpu(80.0, Some(2)), Some(WINDOW), 0.2, 0.8), None);
        assert_eq!(of(&with_cpu(200.0, None), Some(WINDOW), 0.2, 0.8), None);
        // A window shorter than two samples says nothing.
        let short = ActiveWindow {
            first_open_ns: 2_000_000_000,
            last_close_ns: 3_500_000_000,
        };
        assert_eq!(of(&with_cpu(200.0, Some(2)), Some(short), 0.2, 0.8), None);
    }

    /// Waits watched while the rest of the process kept 1.9 of 2 cores busy
    /// (a thread joining its pool) leave a tenth of a core, 10% of the
    /// wait; over its window (the process idle around it) the whole gain
    /// would stand.
    #[test]
    fn waits_beside_busy_cores_leave_only_their_idle_share() {
        let d = with_cpu(100.0, Some(2));
        // An older dump: what the rest wanted is not said.
        let waits = WatchedWaits {
            intervals: 20,
            wait_ns: 100 * MS,
            others_cpu_ns: 190 * MS,
            others_wanted_ns: None,
            ..WatchedWaits::default()
        };
        let cs = callsite(None, Some(waits.clone()));
        let b = BusyCores::of(&d, 10e9, &cs, true, 0.4, 0.5).expect("bounded");
        assert!((b.cap - 0.1 * 0.4).abs() < 1e-9, "{b:?}");
        assert!((b.recoverable(0.4) - 0.1).abs() < 1e-9);
        assert!(b.waits_beside_work());
        assert!(
            b.summary()
                .contains("while its spans waited the rest of the process kept 95.0%"),
            "{}",
            b.summary()
        );
        assert!(b.summary().contains("0.10 of a core idle"));
        assert!(b.summary().contains("wait beside work running elsewhere"));
        // One of the two cores busy elsewhere (a runtime worker blocked
        // beside another computing): its own core is idle, and the wait can
        // all come back.
        let one = callsite(
            None,
            Some(WatchedWaits {
                others_cpu_ns: 100 * MS,
                ..waits.clone()
            }),
        );
        assert_eq!(BusyCores::of(&d, 10e9, &one, true, 0.4, 0.5), None);
        // 1.6 of 2 busy: 0.4 of a core, and beside work.
        let most = callsite(
            None,
            Some(WatchedWaits {
                others_cpu_ns: 160 * MS,
                ..waits.clone()
            }),
        );
        let b = BusyCores::of(&d, 10e9, &most, true, 0.4, 0.5).expect("bounded");
        assert!((b.recoverable(0.4) - 0.4).abs() < 1e-9, "{b:?}");
        assert!(b.waits_beside_work());
        // Mostly preempted, the waits say nothing of blocking: unused.
        assert_eq!(BusyCores::of(&d, 10e9, &cs, false, 0.4, 0.5), None);
        // Too few watched.
        let few = callsite(
            None,
            Some(WatchedWaits {
                intervals: MIN_WATCHED - 1,
                ..waits.clone()
            }),
        );
        assert_eq!(BusyCores::of(&d, 10e9, &few, true, 0.4, 0.5), None);
        // Beside idle cores (a read the process waits through), the gain
        // stands.
        let idle = callsite(
            None,
            Some(WatchedWaits {
                others_cpu_ns: 2 * MS,
                ..waits.clone()
            }),
        );
        assert_eq!(BusyCores::of(&d, 10e9, &idle, true, 0.4, 0.5), None);
    }

    /// A lock's waiters, four threads on two cores: at each probe's end
    /// one thread is runnable (the background thread's own wake-up takes a
    /// core), and the watch read the rest of the process wanting both
    /// cores, a thread a probe beyond what it ran. The timeline's wait for
    /// a core, over the run, was 0.15 threads: what the rest wanted beyond
    /// its CPU is at most that, and no other process ran. A fresh convoy
    /// whose fix made 63% more items read "gives back 0.5%", low.
    #[test]
    fn what_the_rest_wanted_is_at_most_its_cpu_and_the_timeline_s_wait_for_a_core() {
        let mut d = with_cpu(120.0, Some(2));
        for s in &mut d.timeline.samples {
            s.waiting_for_cpu_percent = Some(15.0);
            s.machine_cpu_percent = Some(s.cpu_percent + 1.0);
        }
        let convoy = WatchedWaits {
            intervals: 200,
            wait_ns: 100 * MS,
            others_cpu_ns: 120 * MS,
            others_wanted_ns: Some(199 * MS),
            ..WatchedWaits::default()
        };
        // Its spans off the CPU through the whole 6 s window.
        let waiting = |waits: WatchedWaits| {
            let mut cs = dump(
                10_000 * MS,
                &[Span::new("update", &[(6_000 * MS, 1)]).on_cpu(0, 0, 1, 0)],
            )
            .callsites
            .remove(0);
            cs.active = Some(WINDOW);
            cs.watched_waits = Some(waits);
            cs
        };
        let w = CoresWhileWaiting::of(&d, &waiting(convoy.clone())).unwrap();
        assert!((w.busy - 0.6).abs() < 1e-9, "{w:?}");
        assert!((w.wanted - 0.675).abs() < 1e-9, "{w:?}");
        assert!((w.idle_cores() - 0.65).abs() < 1e-9, "{w:?}");
        assert_eq!(w.others_took, Some(false));
        assert!(
            w.kept_busy().contains("(1.35 cores wanted: in bursts, more of its threads runnable than cores at moments and cores idle at others)"),
            "{}",
            w.kept_busy()
        );
        // Other processes busy beside it: they had the rest.
        for s in &mut d.timeline.samples {
            s.machine_cpu_percent = Some(s.cpu_percent + 80.0);
        }
        let w = CoresWhileWaiting::of(&d, &waiting(convoy.clone())).unwrap();
        assert!(
            w.kept_busy().contains("other processes had the rest"),
            "{}",
            w.kept_busy()
        );
        // Waiting a third of the window (phases), beside three times the
        // window's mean: 0.45 cores.
        let mut phases = waiting(convoy.clone());
        phases.cpu.as_mut().unwrap().off_cpu_ns = 2_000 * MS;
        let w = CoresWhileWaiting::of(&d, &phases).unwrap();
        assert!((w.wanted - 0.825).abs() < 1e-9, "{w:?}");
        // Without the timeline's wait, the watch's reading stands.
        for s in &mut d.timeline.samples {
            s.waiting_for_cpu_percent = None;
        }
        let w = CoresWhileWaiting::of(&d, &waiting(convoy)).unwrap();
        assert!((w.wanted - 0.995).abs() < 1e-9, "{w:?}");
    }

    /// A pool of three threads computing while a span joins it, given one
    /// of the two cores by other processes: one core busy, three wanted.
    /// Nothing was idle for the join; by its busy cores alone, a whole core
    /// seemed to be.
    #[test]
    fn cores_other_processes_took_from_the_rest_of_the_process_are_not_idle() {
        let d = with_cpu(100.0, Some(2));
        let starved = WatchedWaits {
            intervals: 20,
            wait_ns: 100 * MS,
            others_cpu_ns: 100 * MS,
            others_wanted_ns: Some(300 * MS),
            ..WatchedWaits::default()
        };
        let b = BusyCores::of(
            &d,
            10e9,
            &callsite(None, Some(starved.clone())),
            true,
            0.4,
            0.5,
        )
        .expect("bounded");
        assert_eq!(b.recoverable(0.4), 0.0, "{b:?}");
        assert!(b.waits_beside_work());
        let summary = b.summary();
        assert!(
            summary.contains(
                "kept 50.0% of its 2 cores busy and had threads waiting for more (3.00 cores wanted: other processes had the rest)"
            ) && summary.contains("0.00 of a core idle"),
            "{summary}"
        );
        assert!(b.evidence().metric.contains("had threads waiting for"));
        // Every core busy and more wanted: the process's own threads
        // outnumber the cores, no other process is named.
        let crowded = callsite(
            None,
            Some(WatchedWaits {
                others_cpu_ns: 200 * MS,
                ..starved.clone()
            }),
        );
        let b = BusyCores::of(&d, 10e9, &crowded, true, 0.4, 0.5).expect("bounded");
        assert!(
            b.summary()
                .contains("(3.00 cores wanted: more threads than cores)"),
            "{}",
            b.summary()
        );
        // Said by the busy cores alone, as an older dump does: one idle.
        let unsaid = callsite(
            None,
            Some(WatchedWaits {
                others_wanted_ns: None,
                ..starved.clone()
            }),
        );
        assert_eq!(BusyCores::of(&d, 10e9, &unsaid, true, 0.4, 0.5), None);
        // Wanting what it got (a read beside an idle process): nothing more
        // is said, and the gain stands.
        let idle = callsite(
            None,
            Some(WatchedWaits {
                others_cpu_ns: 2 * MS,
                others_wanted_ns: Some(3 * MS),
                ..starved.clone()
            }),
        );
        assert_eq!(BusyCores::of(&d, 10e9, &idle, true, 0.4, 0.5), None);
    }
}
