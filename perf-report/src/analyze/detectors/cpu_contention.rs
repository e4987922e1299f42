//! CPU contention: the instrumented threads lost time waiting for a CPU
//! while their spans were entered, preempted by other threads, other
//! processes or the hypervisor. The machine's problem, not a span's: the
//! tails it explains are not reported as tail latency.
//!
//! Read from the layer's on-CPU figures (the off-CPU time of timed spans
//! that involuntary switches explain), with the sampler's CPU pressure
//! (Linux PSI), steal time and involuntary switches as corroboration. A VM
//! whose hypervisor steals much of the CPU is reported from the timeline
//! alone.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::busy_cores::CoresInWindow;
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When the process is short of CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Time the timed spans lost to preemption is at least this share of
    /// the recording threads' wall time (default 0.02)...
    pub min_share: f64,
    /// ...or the hypervisor stole at least this share of the machine's CPU
    /// on average, percent (10).
    pub min_steal_percent: f64,
    /// CPU pressure (PSI `some`) or steal at least this high on average,
    /// percent, corroborates the finding (5).
    pub corroborating_percent: f64,
    /// The share of the lost time a change of environment gives back (0.8).
    pub recoverable: f64,
    /// Confidence is `switches / (switches + this)` over the involuntary
    /// switches inside timed spans (10), times 0.7, plus 0.3 when the
    /// timeline corroborates.
    pub half_confidence_switches: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_share: 0.02,
            min_steal_percent: 10.0,
            corroborating_percent: 5.0,
            recoverable: 0.8,
            half_confidence_switches: 10.0,
        }
    }
}

pub(crate) struct CpuContention;

static INFO: Info = Info {
    title: "CPU contention",
    innermost: false,
    supersedes: &[],
};

impl Detector for CpuContention {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.cpu_contention;
        let p = &cx.process;
        let threads_wall = cx.threads_wall_ns();
        let (mut preempted_ns, mut switches, mut tails) = (0.0, 0.0, 0usize);
        // How busy the process kept its cores itself where the time was
        // lost: over each callsite's window, weighted by its preempted time.
        let (mut own_busy, mut own_weight) = (0.0, 0.0);
        let tail = &cx.config.classes.tail_latency;
        for (i, cs, row) in cx.callsites() {
            let Some(c) = &row.cpu else { continue };
            // A queue whose waiters spin or yield is preempted by its own
            // waiters, for the lock, not the cores: the serialization
            // finding has that time.
            if super::serialization::queue_of_runnable_waiters(cx, cs, row).is_some() {
                continue;
            }
            preempted_ns += c.self_preempted_ns;
            if let Some(w) = CoresInWindow::of(cx.dump, cx.run_wall_ns, cs.active) {
                own_busy += w.busy * c.self_preempted_ns;
                own_weight += c.self_preempted_ns;
            }
            let timed = cs.cpu.as_ref().map_or(0, |c| c.involuntary_switches);
            switches += timed as f64;
            if super::tail_latency::tail_shaped(row, tail).is_some()
                && cx.tail_preempted_share(i) >= tail.max_preempted_share
            {
                tails += 1;
            }
        }
        let share = stats::share(preempted_ns, threads_wall);
        let steal = p.steal_mean_percent.unwrap_or(0.0);
        let pressure = p.cpu_pressure_mean_percent.unwrap_or(0.0);
        let stolen = steal >= s.min_steal_percent;
        if share < s.min_share && !stolen {
            return;
        }
        let corroborated = pressure.max(steal) >= s.corroborating_percent;
        let confidence = if share >= s.min_share {
            0.7 * stats::sample_confidence(switches as u64, s.half_confidence_switches)
                + if corroborated { 0.3 } else { 0.0 }
        } else {
            0.6
        };
        let cost_share = share.max(if stolen { steal / 100.0 } else { 0.0 });
        let mut evidence = vec![
            Evidence::new(
                "preempted share of the threads' wall time",
                share,
                Unit::Share,
                Some(s.min_share),
            ),
            Evidence::new("time preempted in spans", preempted_ns, Unit::Ns, None),
            Evidence::new("involuntary switches in timed spans", switches, Unit::Count, None),
            Evidence::new("span tails it explains", tails as f64, Unit::Count, None),
        ];
        let mut optional = |metric: &str, value: Option<f64>, unit, threshold| {
            if let Some(v) = value {
                evidence.push(Evidence::new(metric, v, unit, threshold));
            }
        };
        optional(
            "CPU pressure (PSI), mean %",
            p.cpu_pressure_mean_percent,
            Unit::Number,
            Some(s.corroborating_percent),
        );
        optional(
            "steal, mean %",
            p.steal_mean_percent,
            Unit::Number,
            Some(s.min_steal_percent),
        );
        optional(
            "involuntary switches per second",
            p.involuntary_switches_per_s,
            Unit::Number,
            None,
        );
        optional("cores", p.cores.map(f64::from), Unit::Count, None);
        optional(
            "threads (most at once)",
            (p.samples > 0).then_some(f64::from(p.threads_max)),
            Unit::Count,
            None,
        );
        let mut summary = format!(
            "the spans were preempted for {} ({} of the recording threads' wall time)",
            units::ns(preempted_ns),
            units::pct(share)
        );
        if tails > 0 {
            summary.push_str(&format!(
                ", which explains the tails of {tails} span{}",
                if tails == 1 { "" } else { "s" }
            ));
        }
        let mut context = Vec::new();
        if let Some(psi) = p.cpu_pressure_mean_percent {
            context.push(format!("CPU pressure {psi:.0}%"));
        }
        if let Some(st) = p.steal_mean_percent.filter(|&st| st >= 0.5) {
            context.push(format!("steal {st:.0}%"));
        }
        if let (Some(cores), true) = (p.cores, p.samples > 0) {
            context.push(format!("{} threads on {cores} cores", p.threads_max));
        }
        if !context.is_empty() {
            summary.push_str(&format!("; {}", context.join(", ")));
        }
        // The process itself kept its cores busy where the time was lost (at
        // process CPU saturation's level): its own threads preempt each
        // other, and the code's work is what they queue for.
        let saturated = cx.config.classes.process_cpu.saturated_share_of_cores;
        let own = (own_weight > 0.0)
            .then(|| own_busy / own_weight)
            .filter(|&busy| busy >= saturated);
        // Short of that, the rest of the machine: where it used too little
        // CPU beside the process to have taken the time the spans lost
        // (four readers computing on two cores, stopped together by a
        // writer 40% of the time, kept 80% of them busy on average and all
        // of them between the writes), the process preempts itself in
        // bursts its 100 ms samples average away.
        // Neither reading holds where the hypervisor stole the cores: the
        // stolen time is busy on the host and idle in the guest. A CI
        // guest losing 25% to steal read "the machine kept only 34.9% of
        // its cores busy: cores were free most of the run".
        let lost_threads = preempted_ns / cx.run_wall_ns.max(1.0);
        let others = p.others_cpu_mean_percent.map(|o| o / 100.0).filter(|_| !stolen);
        let quiet_machine = others
            .filter(|&o| own.is_none() && o < OTHERS_EXPLAIN * lost_threads);
        // Short of both, a machine that kept at most half its cores busy
        // on average, the process and the rest together: cores were free
        // most of the run, and the spans lost theirs in bursts, threads
        // woken onto a busy core (a lock or a channel handing over). A
        // fresh SQLite service (four threads on one connection, 0.8 cores
        // busy of 2) lost 6% of its threads' wall time so, beside 0.08
        // cores of kernel threads writing its journal: read as "the code is
        // not the cause: give the process the CPUs it waits for".
        let idle_machine = match (others, p.cores) {
            (Some(o), Some(cores)) if cores > 0 && own.is_none() && quiet_machine.is_none() => {
                let busy = (p.cpu_mean_percent / 100.0 + o) / f64::from(cores);
                (busy <= IDLE_MACHINE_BUSY).then_some(busy)
            }
            _ => None,
        };
        let cause = if own.is_some() || quiet_machine.is_some() {
            Cause::Own
        } else if idle_machine.is_some() {
            Cause::Bursts
        } else {
            Cause::Others
        };
        if let Some(busy) = own {
            summary.push_str(&format!(
                "; the process itself kept {} of its cores busy while those spans ran: its own threads preempt each other",
                units::pct(busy)
            ));
            evidence.push(Evidence::new(
                OWN_BUSY,
                busy,
                Unit::Share,
                Some(saturated),
            ));
        }
        if let Some(o) = quiet_machine {
            summary.push_str(&format!(
                "; the rest of the machine used {o:.2} cores beside it, too little to have taken the {lost_threads:.2} threads' worth of time the spans lost: its own threads preempt each other, in bursts"
            ));
            evidence.push(Evidence::new(
                QUIET_MACHINE,
                stats::ratio(o, lost_threads),
                Unit::Ratio,
                Some(OTHERS_EXPLAIN),
            ));
        }
        if let Some(busy) = idle_machine {
            summary.push_str(&format!(
                "; the machine kept only {} of its cores busy on average (the process and the rest together): cores were free most of the run, and the spans lost theirs in bursts, threads woken onto a busy core",
                units::pct(busy)
            ));
            evidence.push(Evidence::new(
                IDLE_MACHINE,
                busy,
                Unit::Share,
                Some(IDLE_MACHINE_BUSY),
            ));
        }
        let draft = Draft {
            class: Class::CpuContention,
            callsite: None,
            resource: Resource::WallTime,
            cost_share,
            recoverable: s.recoverable,
            confidence,
            summary,
            evidence,
        };
        found.push(cx.score(draft, |f| advice(f, cause)));
    }

}

/// The evidence that the process's own threads took the CPU: its busy
/// cores where the spans were preempted...
const OWN_BUSY: &str = "cores the process kept busy while the preempted spans ran";
/// ...or the rest of the machine's, too few to have.
const QUIET_MACHINE: &str =
    "cores the rest of the machine used, over the threads' worth of time lost";

/// ...or the machine's busy cores, the process's and the rest's, over
/// its cores: at most [`IDLE_MACHINE_BUSY`], cores were free.
const IDLE_MACHINE: &str = "the machine's busy share of its cores (the process and the rest)";
/// The machine kept at most this share of its cores busy on average: the
/// cores were not short (0.5).
const IDLE_MACHINE_BUSY: f64 = 0.5;

/// Whether a CPU contention finding blames the process's own threads.
pub(crate) fn blames_own_threads(f: &Finding) -> bool {
    f.class == Class::CpuContention
        && f.evidence
            .iter()
            .any(|e| e.metric == OWN_BUSY || e.metric == QUIET_MACHINE)
}

/// Whose threads took the CPU from the spans.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cause {
    /// The process's own: it kept its cores busy while the spans were
    /// preempted, or the rest of the machine used too little CPU to have.
    Own,
    /// Neither: the machine kept at most half its cores busy, so the time
    /// was lost in bursts, not for want of cores.
    Bursts,
    /// Other processes or the hypervisor (or the machine's CPU is not
    /// known).
    Others,
}

/// The rest of the machine's CPU, in cores, under this share of the
/// threads' worth of time the spans lost to preemption (time preempted
/// over the run's wall time) cannot have taken it (0.25).
const OTHERS_EXPLAIN: f64 = 0.25;

/// The plan step's advice for one of its findings, by its `cause`.
fn advice(f: &Finding, cause: Cause) -> Advice {
    let (recoverable, cost) = (units::pct(f.recoverable), units::pct(f.cost_share));
    Advice {
        statement: match cause {
            Cause::Own => format!(
                "its own threads outnumber its cores: more cores recover {recoverable} of the {cost} of the threads' wall time it lost; fewer busy threads shorten each call (a service's latency, and its throughput where its clients wait for answers) but not a batch's run, and less work (its CPU findings) shortens both"
            ),
            Cause::Bursts => format!(
                "the cores were free most of the run: the {cost} of the threads' wall time it lost went in bursts, threads woken onto a busy core, which more cores would not recover; fewer hand-overs between threads (its queue and lock findings) and less work shorten it"
            ),
            Cause::Others => format!(
                "the code is not the cause: giving the process the CPUs it waits for recovers {recoverable} of the {cost} of the threads' wall time it lost"
            ),
        },
        fixes: lines(&[
            "Run no more busy threads than cores: size the tokio runtime (`worker_threads`), rayon's pool and any thread pools to the cores the process gets, not to the machine's; CPU-bound work sent to `tokio::task::spawn_blocking` gets a thread per waiting call (up to 512), so cap it (`max_blocking_threads`) or give it a pool of the cores' size (rayon)",
            "Find what else competes on the host (`top`, `pidstat -w`, container CPU limits): move batch jobs or neighbours elsewhere, or lower their priority (`nice`, `SCHED_IDLE`)",
            "On a VM with steal time, move to a dedicated or larger instance; noisy neighbours are outside the program",
            "Give latency-critical work its own cores (cgroup `cpuset`, `taskset`) when it shares a machine",
        ]),
        prerequisites: lines(&[
            "Profile and compare runs on a quiet machine with the same core count: contention makes every span slower and its tails longer",
        ]),
        check: "the CPU contention finding must shrink or go, and the span tails it explained with it".to_owned(),
        // Its own threads on its own cores: the gain is the platform's
        // (more cores, which cost), not a change to the code, and fewer
        // threads shorten calls, not the run. Four threads loading blobs
        // on two cores read it as the plan's first step, low effort,
        // before the hot spot whose fix made 56 times as many jobs. At
        // medium it still won near-ties with the code's own steps: four
        // threads serving a catalog on two cores read it first (28.3 of
        // the threads' wall time, "more cores recover 80%") before the
        // hot spot whose fix (a sort done once at load, not on every
        // call) served 2.9 times the requests. A bigger machine or a
        // re-sized pool is a larger change than a local fix.
        complexity: if cause == Cause::Own {
            Effort::High
        } else {
            Effort::Low
        },
        risk: if cause == Cause::Own {
            Effort::Medium
        } else {
            Effort::Low
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, Span, assert_near, detect, dump, evidence};

    /// One thread's 2 s run with 1 s in `work`, of which `preempted_ms`
    /// were lost to 50 involuntary switches.
    fn run(preempted_ms: u64) -> perf_layer::dump::Dump {
        let on_cpu = (1_000 - preempted_ms) * MS;
        dump(
            2_000 * MS,
            &[Span::new("work", &[(10 * MS, 100)]).on_cpu(on_cpu, preempted_ms * MS, 0, 50)],
        )
    }

    /// 100 ms preempted is 5% of the thread's wall time; 39 ms is 1.95%,
    /// just under the 2% it takes.
    #[test]
    fn finds_time_lost_to_preemption_and_not_just_under_two_percent() {
        let found = detect(Class::CpuContention, run(100));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert!(f.location.is_none());
        assert_near(f.cost_share, 0.05, 1e-9);
        assert_eq!(evidence(f, "involuntary switches in timed spans"), 50.0);
        // No timeline to corroborate it: 0.7 x 50 / (50 + 10).
        assert_near(f.confidence, 0.7 * 50.0 / 60.0, 1e-9);
        assert_eq!(f.recoverable, 0.8);

        assert!(detect(Class::CpuContention, run(39)).is_empty());
    }

    /// The same preemption in a process that kept its 2 cores busy itself
    /// (190% in every sample while the span ran): its own threads preempt
    /// each other, and the step does not say the code is not the cause.
    #[test]
    fn a_process_that_fills_its_cores_itself_is_told_so() {
        let with_cpu = |percent: f64| {
            let mut d = run(100);
            d.run.cores = Some(2);
            crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, percent); 3]);
            let found = detect(Class::CpuContention, d);
            found[0].clone()
        };
        let own = with_cpu(190.0);
        assert!(own.summary.contains("its own threads preempt each other"), "{}", own.summary);
        assert!(own.advice.statement.starts_with("its own threads outnumber its cores"), "{}", own.advice.statement);
        assert_eq!(
            (own.advice.complexity, own.advice.risk),
            (crate::analyze::advice::Effort::High, crate::analyze::advice::Effort::Medium)
        );
        let neighbours = with_cpu(60.0);
        assert!(!neighbours.summary.contains("its own threads"), "{}", neighbours.summary);
        assert!(neighbours.advice.statement.starts_with("the code is not the cause"), "{}", neighbours.advice.statement);
    }

    /// A process at 190% of its 2 cores is saturated, and its own threads
    /// preempt each other: that is CPU contention's finding, and process
    /// CPU saturation beside it would count the same wall time again.
    #[test]
    fn a_cpu_bound_process_is_one_finding_not_two() {
        let mut d = run(100);
        d.run.cores = Some(2);
        crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 190.0); 3]);
        assert_eq!(detect(Class::ProcessCpu, d.clone()).len(), 1);
        let analysis = crate::analyze::analyze(&d.into(), &Default::default());
        let classes: Vec<Class> = analysis.findings.iter().map(|f| f.class).collect();
        assert!(classes.contains(&Class::CpuContention), "{classes:?}");
        assert!(!classes.contains(&Class::ProcessCpu), "{classes:?}");
    }

    /// Three threads computing on two cores through a 2 s run, a third of
    /// their wall time preempted: the process's own contention scores
    /// above the hot spot `refresh` (a third of the process's CPU),
    /// yet comes after it in the plan, as its fixes are the contention's;
    /// beside a neighbour that took the other core, the contention keeps
    /// its place.
    #[test]
    fn the_process_s_own_contention_comes_after_its_cpu_work() {
        let plan_of = |process_percent: f64, machine_percent: f64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("refresh", &[(4 * MS, 600)])
                        .on_cpu(1_200 * MS, 1_200 * MS, 0, 3_000),
                    Span::new("validate", &[(100 * crate::analyze::test_dump::US, 16_000)])
                        .on_cpu(800 * MS, 800 * MS, 0, 2_000),
                ],
            );
            d.run.cores = Some(2);
            d.run.span_threads = Some(3);
            crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, process_percent); 3]);
            for s in &mut d.timeline.samples {
                s.machine_cpu_percent = Some(machine_percent);
            }
            let a = crate::analyze::analyze(&d.into(), &Default::default());
            crate::plan::plan(&a)
                .steps
                .iter()
                .map(|s| (s.class, s.severity, s.score))
                .collect::<Vec<_>>()
        };
        let own = plan_of(199.0, 199.5);
        let at = |class| own.iter().position(|s| s.0 == class).unwrap_or_else(|| panic!("{own:?}"));
        assert!(own[at(Class::CpuContention)].2 > own[at(Class::HotSpot)].2, "{own:?}");
        assert!(at(Class::HotSpot) < at(Class::CpuContention), "{own:?}");
        let neighbours = plan_of(100.0, 199.5);
        assert_eq!(neighbours[0].0, Class::CpuContention, "{neighbours:?}");
    }

    /// The finding of [`run`]'s 100 ms preempted on 2 cores, in a process
    /// at 60% of a core, beside a machine at `machine_percent`.
    fn with_machine(machine_percent: f64) -> crate::analyze::Finding {
        let mut d = run(100);
        d.run.cores = Some(2);
        crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 60.0); 3]);
        for s in &mut d.timeline.samples {
            s.machine_cpu_percent = Some(machine_percent);
        }
        detect(Class::CpuContention, d)[0].clone()
    }

    /// The same preemption, 100 ms of a 2 s run (0.05 threads' worth), in
    /// a process at 60%: with the rest of the machine at half a percent of
    /// a core beside it, nothing else can have taken that time, and its
    /// own threads preempt each other; with another core busy beside it,
    /// the neighbours are the cause.
    #[test]
    fn a_machine_too_quiet_to_have_taken_the_time_leaves_the_process_itself() {
        let quiet = with_machine(60.5);
        assert!(quiet.summary.contains("the rest of the machine used 0.01 cores beside it"), "{}", quiet.summary);
        assert!(quiet.advice.statement.starts_with("its own threads outnumber its cores"), "{}", quiet.advice.statement);
        let busy = with_machine(160.0);
        assert!(!busy.summary.contains("the rest of the machine"), "{}", busy.summary);
        assert!(busy.advice.statement.starts_with("the code is not the cause"), "{}", busy.advice.statement);
    }

    /// The same preemption beside 0.2 cores of the rest of the machine
    /// (kernel threads writing the process's files, say): too much for the
    /// rest of the machine to be ruled out, but the process and the rest
    /// together kept 40% of the 2 cores busy. Cores were free: the time
    /// went in bursts, and more cores are not the fix. At 60% they are.
    #[test]
    fn a_machine_with_free_cores_lost_the_time_in_bursts() {
        let free = with_machine(80.0);
        assert!(free.summary.contains("the machine kept only 40.0% of its cores busy"), "{}", free.summary);
        assert!(free.advice.statement.starts_with("the cores were free most of the run"), "{}", free.advice.statement);
        assert_near(evidence(&free, super::IDLE_MACHINE), 0.4, 1e-9);
        let busy = with_machine(120.0);
        assert!(!busy.summary.contains("the machine kept only"), "{}", busy.summary);
        assert!(busy.advice.statement.starts_with("the code is not the cause"), "{}", busy.advice.statement);
    }

    /// The machine of [`a_machine_with_free_cores_lost_the_time_in_bursts`]
    /// (40% of its cores busy), or of the quiet one, with the hypervisor
    /// stealing a quarter of the CPU: the cores were not free, the host
    /// took them, and the code is not the cause.
    #[test]
    fn stolen_cores_are_not_free_cores() {
        for machine_percent in [80.0, 60.5] {
            let mut d = run(100);
            d.run.cores = Some(2);
            crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 60.0); 3]);
            for s in &mut d.timeline.samples {
                s.machine_cpu_percent = Some(machine_percent);
                s.steal_percent = Some(25.0);
            }
            let f = detect(Class::CpuContention, d)[0].clone();
            assert!(!f.summary.contains("the machine kept only"), "{}", f.summary);
            assert!(!f.summary.contains("the rest of the machine used"), "{}", f.summary);
            assert!(f.summary.contains("steal 25%"), "{}", f.summary);
            assert!(f.advice.statement.starts_with("the code is not the cause"), "{}", f.advice.statement);
        }
    }
}
