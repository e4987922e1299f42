//! From findings to an ordered optimization plan.
//!
//! Each finding becomes one step with concrete Rust fixes for its class, an
//! Amdahl estimate of what it gives back, its effort and risk, what to do
//! first, and how to prove it worked. Steps are ordered by
//!
//! ```text
//! priority = (score / 100) / (effort(complexity) x effort(risk))
//! ```
//!
//! with effort Low = 1, Medium = 2, High = 4 for complexity and Low = 1,
//! Medium = 1.5, High = 2.5 for risk: the largest expected gain for the least
//! effort and risk first.

use std::fmt;

use serde::Serialize;

use crate::analyze::{Analysis, Class, Evidence, Finding, Location, Resource, Severity};
use crate::units;

/// How much work or how much risk a step carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    /// A local change.
    Low,
    /// A change across a module or an API.
    Medium,
    /// A design change.
    High,
}

impl Effort {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }
}

impl fmt::Display for Effort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The ordering key (see the module docs).
    pub priority: f64,
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
    /// back, compounded the same way.
    pub total_wall_gain: f64,
    /// Share of allocated bytes the allocation steps remove, compounded.
    pub total_allocation_gain: f64,
    /// Share of peak memory the memory steps return, compounded.
    pub total_memory_gain: f64,
}

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
/// let analysis = perf_report::analyze::analyze(&Dump::empty("demo"), &Default::default());
/// let plan = perf_report::plan::plan(&analysis);
/// assert!(plan.steps.is_empty());
/// assert_eq!(plan.total_time_gain, 0.0);
/// ```
pub fn plan(analysis: &Analysis) -> Plan {
    let mut steps: Vec<Step> = analysis.findings.iter().map(step).collect();
    steps.sort_by(|a, b| {
        b.priority
            .total_cmp(&a.priority)
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
            .filter(|s| s.gain.resource == r)
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

/// `a 2.0x speed-up` style phrase for a recoverable share `r = 1 - 1/S`.
fn speedup_phrase(r: f64) -> String {
    if (r - 0.5).abs() < 1e-9 {
        "halving".to_owned()
    } else if r >= 1.0 {
        "removing".to_owned()
    } else {
        format!("a {:.1}x speed-up of", 1.0 / (1.0 - r))
    }
}

fn step(f: &Finding) -> Step {
    let name = f
        .location
        .as_ref()
        .map_or_else(|| "the process".to_owned(), |l| format!("`{}`", l.name));
    let bare = f
        .location
        .as_ref()
        .map_or_else(|| "process".to_owned(), |l| l.name.clone());
    let gain_share = f.expected_gain();
    let cost = units::pct(f.cost_share);
    let gain = units::pct(gain_share);
    let r = f.recoverable;

    let (complexity, risk) = match f.class {
        Class::HotSpot | Class::TailLatency | Class::Waiting => (Effort::Medium, Effort::Medium),
        Class::HotLoop | Class::AllocationHeavy => (Effort::Low, Effort::Low),
        Class::LeakSuspect | Class::ProcessMemory => (Effort::Medium, Effort::Medium),
        Class::ProcessCpu => (Effort::High, Effort::Medium),
    };

    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    let (statement, fixes, prerequisites, check) = match f.class {
        Class::HotSpot => (
            format!(
                "{} {name}'s self time ({cost} of the run) saves {gain} of the run",
                speedup_phrase(r)
            ),
            s(&[
                "Memoize repeated work: cache results by input (a `HashMap`, or `moka`/`cached`) when it is called with the same arguments",
                "Use a better algorithm or data structure: replace linear searches (`Vec::contains`, `iter().find`) with a `HashSet`/`HashMap` or a sorted `binary_search`, remove nested loops and repeated sorting",
                "Parallelise independent items with `rayon` (`par_iter`) when the work per item is independent",
                "Cut needless copies in the hot path: borrow (`&str`, `&[T]`, `Cow`) instead of `clone()`/`to_string()`",
            ]),
            vec![format!(
                "Add a criterion benchmark of {name} with a representative input, so the speed-up is measured rather than assumed"
            )],
            format!(
                "{name}'s self time share must fall from {cost} towards {}",
                units::pct(f.cost_share - gain_share)
            ),
        ),
        Class::TailLatency => (
            format!(
                "removing {} of the time its calls above p90 spend beyond p90 ({cost} of the run) saves {gain} of the run, and most of its p99",
                units::pct(r)
            ),
            s(&[
                "Find what the slow calls share: record a distinguishing field on the span (input size, cache hit or miss, retry count) and compare slow and fast calls",
                "Move rare blocking work off the hot path: file or network I/O, a `std::sync::Mutex` held across heavy work; in async code use `tokio::task::spawn_blocking`",
                "Amortise occasional expensive work: pre-size collections (`with_capacity`) so they do not regrow or rehash mid-call, warm caches at start-up",
                "Bound the work one call can do (chunking, pagination) and add timeouts so one slow input cannot stall the rest",
            ]),
            vec![
                format!("Record a field on {name} that tells slow calls from fast ones"),
                format!("Run long enough for at least 1,000 calls of {name} so its p99 is stable"),
            ],
            format!("{name}'s busy p99 must move towards its p50 (the p99/p50 ratio must fall)"),
        ),
        Class::HotLoop => (
            format!(
                "{} the per-call cost of {name} ({cost} of the run) by batching saves {gain} of the run",
                speedup_phrase(r)
            ),
            s(&[
                "Batch: process items in chunks (`chunks(256)`, a `Vec` of work) with one call and one span per batch instead of one per item",
                "Hoist the span out of the loop, or lower it to `trace` and filter it out where it is not needed: per-call instrumentation is part of the cost",
                "Strip per-call setup from the loop body: look-ups, lock acquisitions and allocations that could be done once outside",
            ]),
            vec![format!(
                "Check that {name}'s items can be handled together (no per-item ordering or error-handling requirement)"
            )],
            format!("{name}'s call count or its self time share ({cost}) must fall"),
        ),
        Class::AllocationHeavy => (
            format!(
                "{} the bytes {name} allocates ({cost} of all bytes allocated) removes {gain} of the run's allocation",
                speedup_phrase(r)
            ),
            s(&[
                "Reuse buffers: keep a `Vec`/`String` outside the loop or in the struct and `clear()` it, instead of allocating a new one per call",
                "Pre-size collections: `Vec::with_capacity`, `String::with_capacity`, `HashMap::with_capacity` when the size is known or bounded",
                "Borrow instead of cloning: take `&[T]`/`&str`, return `Cow<'_, str>`, avoid `to_vec()`, `to_string()` and `format!` in the hot path",
                "Keep small short-lived collections on the stack (`smallvec`, `arrayvec`)",
            ]),
            s(&[
                "Keep perf-layer's counting allocator installed in the benchmark and the re-run, so allocation per call can be compared",
            ]),
            format!("{name}'s bytes and allocations per call must fall"),
        ),
        Class::LeakSuspect => (
            format!(
                "releasing {} of what {name} keeps ({cost} of peak memory) returns {gain} of peak memory and stops the growth",
                units::pct(r)
            ),
            s(&[
                "Bound caches and maps that grow with input: an LRU (`lru`, `moka`) or eviction by age or size",
                "Break `Arc` reference cycles: hold back-references (parents, observers, callbacks) as `Weak`",
                "Drain or bound what is never emptied: unbounded `mpsc` queues, spawned tasks that never finish, `Box::leak`/`mem::forget`, `static` collections",
            ]),
            s(&[
                "Run long enough past warm-up to see the trend, so a cache filling to its bound is not mistaken for a leak",
            ]),
            if f.location.is_some() {
                format!(
                    "{name}'s net retained bytes must fall to near zero and the RSS slope must flatten"
                )
            } else {
                "the RSS slope must flatten (a fit with low slope or low R²)".to_owned()
            },
        ),
        Class::Waiting => (
            format!(
                "overlapping or unblocking {} of {name}'s waiting ({cost} of the run's wall time) shortens the run by {gain}",
                units::pct(r)
            ),
            s(&[
                "Move blocking calls off async worker threads with `tokio::task::spawn_blocking`, or use the async version of the API",
                "Overlap independent waits: `tokio::join!` or `futures::future::join_all` instead of awaiting one after another",
                "Bound the queue it waits on (a bounded `tokio::sync::mpsc::channel`) and size pools and semaphores so producers and consumers keep pace",
                "Shorten lock hold times: never hold a `Mutex` guard across `.await` or I/O; use `RwLock` or sharding for read-mostly state",
            ]),
            vec![format!(
                "Know what {name} waits on: add child spans around each `.await`, lock and I/O call"
            )],
            format!("{name}'s idle share of wall time must fall"),
        ),
        Class::ProcessCpu => (
            format!(
                "relieving {} of the saturated time ({cost} of the run) gives back {gain} of the run's wall time",
                units::pct(r)
            ),
            s(&[
                "Start with the hot spots and hot loops of this plan: process CPU is their sum",
                "Spread independent work across cores (`rayon`, more tokio worker threads) when one core is saturated and others idle",
                "Rate-limit or apply backpressure to background work so it cannot starve latency-sensitive tasks",
            ]),
            s(&["Note the machine's core count and the sampler interval so runs are comparable"]),
            "the share of saturated samples must fall".to_owned(),
        ),
        Class::ProcessMemory => (
            format!(
                "trimming {} of the excess memory ({cost} of peak memory above the usual level or the alert threshold) returns {gain} of peak memory",
                units::pct(r)
            ),
            s(&[
                "Stream instead of loading whole inputs (`BufReader`, iterators, `serde_json::Deserializer::from_reader`)",
                "Limit the concurrency of memory-heavy work with a `tokio::sync::Semaphore` so peaks do not stack",
                "Drop large buffers as soon as they are done and release capacity after spikes (`shrink_to_fit`)",
            ]),
            s(&[
                "Enable the sampler with an RSS alert so the spike's time can be matched to the spans running then",
            ]),
            "peak RSS must come down towards the median".to_owned(),
        ),
    };

    let validation = vec![
        "Keep the current dump as the baseline: `before.json`".to_owned(),
        "Apply one fix, re-run the same workload with perf-layer and write `after.json`".to_owned(),
        format!("In `perf-report after.json`, {check}"),
        format!(
            "`perf-report diff before.json after.json --fail-on-regression 5` must show `{bare}` improved and nothing regressed"
        ),
    ];

    let priority = (f.score / 100.0) / (complexity_cost(complexity) * risk_cost(risk));

    Step {
        rank: 0,
        location: f.location.clone(),
        class: f.class,
        severity: f.severity,
        score: f.score,
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
        fixes,
        gain: Gain {
            resource: f.resource,
            share: gain_share,
            statement,
        },
        complexity,
        risk,
        prerequisites,
        validation,
        priority,
    }
}
