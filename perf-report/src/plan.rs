//! From findings to an ordered optimization plan: ordering and compounding
//! only.
//!
//! Each finding becomes one step. What the step says (concrete Rust fixes,
//! the Amdahl estimate of what it gives back, its effort and risk, what to
//! do first, what must change in the re-run) is written by the finding's own
//! detector (`analyze::detectors`); the plan adds the validation steps every
//! step shares and orders the steps, in one currency: the time they give
//! back.
//!
//! - **Time first.** Steps that give back time (the process's CPU time or
//!   the run's wall time) come before the steps that give back bytes
//!   (allocation, memory), which form the plan's memory part: a user wants
//!   time back first, and a byte is not a nanosecond. A memory step that is
//!   critical (the process near its memory limit, a leak that will end it)
//!   is urgent and goes first.
//! - **By what the run gets back, then effort.** Within each part,
//!
//!   ```text
//!   priority = score / min(2, sqrt(effort(complexity) x effort(risk)))
//!   ```
//!
//!   where the finding's score is its gain as sure as the evidence and
//!   weighed by what its resource is worth to the run (CPU time by the
//!   process's utilisation: halving the CPU of a process that computes a
//!   fifth of the time gives back a tenth of the run, less than halving a
//!   wait it spends most of the run in), so the order agrees with the
//!   severities; with effort Low = 1, Medium = 2, High = 4 for complexity
//!   and Low = 1, Medium = 1.5, High = 2.5 for risk: effort and risk break
//!   near-ties (at most a factor of 2), and never put a step above one that
//!   scores more than twice as much.
//! - **The process's own CPU demand after the work that makes it.** CPU
//!   contention that blames the process's own threads (more busy threads
//!   than cores) is the sum of its CPU work: its first fixes are its CPU
//!   findings, and "more cores" is a platform change. Its priority is held
//!   just under that of every CPU step of high severity or more, so it
//!   comes after them.

use serde::Serialize;

pub use crate::analyze::Effort;
use crate::analyze::{Analysis, Class, Evidence, Finding, Resource, Severity};
use crate::callsite::Location;

/// What a step is expected to give back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gain {
    /// What `share` is a share of.
    pub resource: Resource,
    /// The share of the run (in `resource`) given back:
    /// `cost_share x recoverable`, Amdahl's `p (1 - 1/S)`.
    pub share: f64,
    /// The estimate as a sentence.
    pub statement: String,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Step {
    /// 1-based position in the plan.
    pub rank: usize,
    /// The callsite to change, `None` for process-wide steps.
    pub location: Option<Location>,
    /// The finding's class.
    pub class: Class,
    /// The finding's severity.
    pub severity: Severity,
    /// The finding's impact score.
    pub score: f64,
    /// The finding's one-line summary.
    pub summary: String,
    /// The figures that triggered it.
    pub evidence: Vec<Evidence>,
    /// Concrete changes to try, most likely first.
    pub fixes: Vec<String>,
    /// The expected gain for the whole run.
    pub gain: Gain,
    /// How much work the change is.
    pub complexity: Effort,
    /// How likely it is to break something.
    pub risk: Effort,
    /// What to have in place before changing code.
    pub prerequisites: Vec<String>,
    /// How to prove it worked, ending in a `perf-report diff`.
    pub validation: Vec<String>,
    /// The ordering key within its part (see the module docs).
    pub priority: f64,
    /// Whether the step is in the memory part of the plan (it gives back
    /// bytes, not time), after the time steps.
    pub memory_part: bool,
    /// Its finding's pacer ([`Finding`]'s): not in the wall-time total.
    #[serde(skip)]
    pub(crate) paced_by: Option<String>,
}

/// The ordered plan and its total expected gain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The steps, best first.
    pub steps: Vec<Step>,
    /// Share of the run's self time all time steps give back together,
    /// compounded: `1 - Π(1 - gain_i)`, so overlapping steps never count the
    /// same time twice past 100% (slightly under the plain sum when the steps
    /// touch disjoint spans).
    pub total_time_gain: f64,
    /// Share of the run's wall time the waiting and process-CPU steps give
    /// back, compounded the same way; waits beside a span that paces the
    /// run (a producer's timer) are left out: they shorten the calls they
    /// are in, the run only where those hold the pacer back.
    pub total_wall_gain: f64,
    /// Share of allocated bytes the allocation steps remove, compounded.
    pub total_allocation_gain: f64,
    /// Share of peak memory the memory steps return, compounded.
    pub total_memory_gain: f64,
}

/// The most effort and risk together can weigh against a gain: they break
/// near-ties, never outrank a gain more than this many times larger.
const MAX_EFFORT_WEIGHT: f64 = 2.0;

fn complexity_cost(e: Effort) -> f64 {
    match e {
        Effort::Low => 1.0,
        Effort::Medium => 2.0,
        Effort::High => 4.0,
    }
}

fn risk_cost(e: Effort) -> f64 {
    match e {
        Effort::Low => 1.0,
        Effort::Medium => 1.5,
        Effort::High => 2.5,
    }
}

/// Orders the analysis's findings into a plan.
///
/// ```
/// use perf_layer::dump::Dump;
/// let dump = perf_report::LoadedDump::from(Dump::empty("demo"));
/// let analysis = perf_report::analyze::analyze(&dump, &Default::default());
/// let plan = perf_report::plan::plan(&analysis);
/// assert!(plan.steps.is_empty());
/// assert_eq!(plan.total_time_gain, 0.0);
/// ```
pub fn plan(analysis: &Analysis) -> Plan {
    let mut steps: Vec<Step> = analysis.findings.iter().map(step).collect();
    after_the_cpu_work(&analysis.findings, &mut steps);
    steps.sort_by(|a, b| {
        a.memory_part
            .cmp(&b.memory_part)
            .then(b.priority.total_cmp(&a.priority))
            .then(b.score.total_cmp(&a.score))
            .then(a.class.cmp(&b.class))
            .then_with(|| a.location.cmp(&b.location))
    });
    for (i, s) in steps.iter_mut().enumerate() {
        s.rank = i + 1;
    }
    let compound = |r: Resource| {
        1.0 - steps
            .iter()
            .filter(|s| s.gain.resource == r && s.paced_by.is_none())
            .map(|s| 1.0 - s.gain.share.clamp(0.0, 1.0))
            .product::<f64>()
    };
    Plan {
        total_time_gain: compound(Resource::Time),
        total_wall_gain: compound(Resource::WallTime),
        total_allocation_gain: compound(Resource::Allocation),
        total_memory_gain: compound(Resource::Memory),
        steps,
    }
}

/// CPU contention's step, where it blames the process's own threads,
/// takes a priority just under ([`YIELDS_TO_CPU_WORK`] times) the lowest
/// of the CPU steps (of the process's CPU time) of high severity or more:
/// their fixes are its own, and "more cores" a platform change. A fresh
/// program (three threads serving requests on two cores, one lookup in
/// forty refreshing rates for 4 ms) read "more cores recover 80% of the
/// 34% of the threads' wall time it lost" first, before the refresh, a
/// critical hot spot whose fix, ten times cheaper, made 1.78 times the
/// requests where a third core makes at most 1.5 times. `steps` are
/// `findings`' own, in order.
fn after_the_cpu_work(findings: &[Finding], steps: &mut [Step]) {
    let cpu_work = steps
        .iter()
        .filter(|s| {
            s.gain.resource == Resource::Time
                && s.class != Class::CpuContention
                && s.severity >= Severity::High
        })
        .map(|s| s.priority)
        .fold(f64::INFINITY, f64::min);
    if !cpu_work.is_finite() {
        return;
    }
    for (f, s) in findings.iter().zip(steps.iter_mut()) {
        if crate::analyze::detectors::cpu_contention::blames_own_threads(f) {
            s.priority = s.priority.min(cpu_work * YIELDS_TO_CPU_WORK);
        }
    }
}

/// How far under the CPU work's priority the process's own contention is
/// held (0.99): just under, so that it keeps its place among the rest.
const YIELDS_TO_CPU_WORK: f64 = 0.99;

fn step(f: &Finding) -> Step {
    let advice = f.advice.clone();
    let diff = "`perf-report diff before.json after.json --fail-on-regression 5`";
    let validation = vec![
        "Keep the current dump as the baseline: `before.json`".to_owned(),
        "Apply one fix, re-run the same workload with perf-layer and write `after.json`".to_owned(),
        format!("In `perf-report after.json`, {}", advice.check),
        match &f.location {
            Some(l) => format!(
                "{diff} must show `{}` improved and nothing regressed",
                l.label
            ),
            // The diff compares spans: a process-wide finding's fall is the
            // report's own figure (the step before).
            None => format!(
                "{diff} must show nothing regressed (the diff compares spans, not the process: the step before is its proof)"
            ),
        },
    ];
    let effort = (complexity_cost(advice.complexity) * risk_cost(advice.risk))
        .sqrt()
        .min(MAX_EFFORT_WEIGHT);
    // The gain as sure as the evidence is (a likely 30% before a doubtful
    // one) and as much as its resource is worth to the run: the score.
    let priority = f.score / effort;
    let urgent = f.severity == Severity::Critical;
    let memory_part = matches!(f.resource, Resource::Allocation | Resource::Memory) && !urgent;
    Step {
        rank: 0,
        location: f.location.clone(),
        class: f.class,
        severity: f.severity,
        score: f.score,
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
        fixes: advice.fixes,
        gain: Gain {
            resource: f.resource,
            share: f.expected_gain(),
            statement: advice.statement,
        },
        complexity: advice.complexity,
        risk: advice.risk,
        prerequisites: advice.prerequisites,
        validation,
        priority,
        memory_part,
        paced_by: f.paced_by.clone(),
    }
}
