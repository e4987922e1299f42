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

use perf_layer::dump::{ActiveWindow, Dump};

use super::finding::Evidence;
use crate::units::{self, Unit};

/// Fewest timeline samples inside the window that say how busy it was.
const MIN_SAMPLES: usize = 2;

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
        let (from_ns, to_ns) = match active {
            Some(w) if w.len_ns() > 0 => (w.first_open_ns as f64, w.last_close_ns as f64),
            _ => (0.0, run_wall_ns),
        };
        // A sample's CPU is over the interval since the one before it.
        let inside: Vec<f64> = dump
            .timeline
            .samples
            .windows(2)
            .filter(|p| p[0].t_ms as f64 * 1e6 >= from_ns && p[1].t_ms as f64 * 1e6 <= to_ns)
            .map(|p| p[1].cpu_percent)
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

/// How busy the process kept its cores while a callsite's spans were live,
/// when that bounds a wall-time gain below what the finding would claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BusyCores {
    /// How busy the cores were over the window.
    pub(crate) window: CoresInWindow,
    /// The most the run's wall time can shorten, as a share of it: the
    /// cores' idle share times the window's share of the run.
    pub(crate) cap: f64,
    /// The share of the cost the fix itself removes (the detector's
    /// `recoverable`).
    pub(crate) fix: f64,
    /// The gain the finding would claim without the bound.
    pub(crate) uncapped: f64,
}

impl BusyCores {
    /// The bound on a gain of `cost × recoverable` (shares of the run's wall
    /// time) from time off the CPU in `active` (the whole run when `None`);
    /// `None` when the cores were idle enough to carry it, or when the dump
    /// does not say.
    pub(crate) fn of(
        dump: &Dump,
        run_wall_ns: f64,
        active: Option<ActiveWindow>,
        cost: f64,
        recoverable: f64,
    ) -> Option<Self> {
        let w = CoresInWindow::of(dump, run_wall_ns, active)?;
        let cap = (1.0 - w.busy) * w.window_share;
        let uncapped = cost * recoverable;
        (cap < uncapped).then_some(Self {
            window: w,
            cap,
            fix: recoverable,
            uncapped,
        })
    }

    /// The finding's `recoverable` under the bound, for a cost of `cost`.
    pub(crate) fn recoverable(&self, cost: f64) -> f64 {
        if cost > 0.0 {
            (self.cap / cost).min(self.fix)
        } else {
            0.0
        }
    }

    /// The clause a summary ends with.
    pub(crate) fn summary(&self) -> String {
        format!(
            "; but the process kept {} of its {} cores busy while its spans were live, so only their idle time can come back: its other threads ran while these waited",
            units::pct(self.window.busy),
            self.window.cores
        )
    }

    /// What a plan step's gain says beside its figure, in brackets.
    pub(crate) fn gain_clause(&self) -> String {
        format!(
            " (the cores' idle time while its spans were live, not {}: the process kept {} of its {} cores busy, and its other threads ran while these waited)",
            units::pct(self.uncapped),
            units::pct(self.window.busy),
            self.window.cores
        )
    }

    /// The evidence it adds.
    pub(crate) fn evidence(&self) -> Evidence {
        Evidence::new(
            "cores busy while its spans were live (the process's CPU)",
            self.window.busy,
            Unit::Share,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::test_dump::{MS, dump};
    use perf_layer::dump::ProcessSample;

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
        let b = BusyCores::of(&d, 10e9, Some(WINDOW), 0.2, 0.8).unwrap();
        assert!((b.window.busy - 0.95).abs() < 1e-9, "{b:?}");
        assert!((b.cap - 0.03).abs() < 1e-9, "{b:?}");
        assert!((b.recoverable(0.2) - 0.15).abs() < 1e-9);
        assert!((b.uncapped - 0.16).abs() < 1e-9);
        // Over the whole run the idle edges count too: (1 − 0.6 × 0.95 −
        // 0.4 × 0.025) of 10 s, 42%, which carries the 16%.
        assert_eq!(BusyCores::of(&d, 10e9, None, 0.2, 0.8), None);
    }

    #[test]
    fn idle_cores_or_an_unknown_count_leave_the_gain_alone() {
        assert_eq!(
            BusyCores::of(&with_cpu(80.0, Some(2)), 10e9, Some(WINDOW), 0.2, 0.8),
            None
        );
        assert_eq!(
            BusyCores::of(&with_cpu(200.0, None), 10e9, Some(WINDOW), 0.2, 0.8),
            None
        );
        // A window shorter than two samples says nothing.
        let short = ActiveWindow {
            first_open_ns: 2_000_000_000,
            last_close_ns: 3_500_000_000,
        };
        assert_eq!(
            BusyCores::of(&with_cpu(200.0, Some(2)), 10e9, Some(short), 0.2, 0.8),
            None
        );
    }
}
