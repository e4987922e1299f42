//! One detector per finding class, registered in one list.
//!
//! Each file here owns everything about its class: the settings that
//! trigger it (a documented `Settings` struct, a field of
//! [`Config::classes`](crate::Config::classes)), the evidence it records,
//! its confidence and gain model, and the advice of its plan step. Adding a
//! class is one new file and one line in the `classes!` list below, which
//! generates the [`Class`] enum, its name and title, the detector look-up
//! and the [`ClassSettings`] config section, so none of them can be
//! forgotten.
//!
//! Detectors run in list order over one shared context (totals, rows, the
//! process summary); the analysis then applies each
//! class's `supersedes` and `innermost` rules and sorts.

use serde::{Deserialize, Serialize};

use super::context::{Context, Measures};
use super::finding::Finding;
use super::rows::CallsiteRow;

/// Static facts about a class.
#[derive(Debug)]
pub(crate) struct Info {
    /// A short title for people, e.g. `hot spot`.
    pub(crate) title: &'static str,
    /// A parent and its child (by call edge) both found: only the child is
    /// reported. For classes whose cost a parent inherits from its children
    /// (a queue: serialization).
    pub(crate) innermost: bool,
    /// Classes this one is a more specific diagnosis of, for the same
    /// callsite: when both fire, only this one is reported.
    pub(crate) supersedes: &'static [Class],
}

/// One finding class.
pub(crate) trait Detector: Sync {
    /// Its static facts.
    fn info(&self) -> &'static Info;
    /// Pushes its findings about the run onto `found`, each with the advice
    /// of its plan step, written from the figures the detector measured.
    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>);
}

/// Generates the class list: `Variant => module,` per class, each module
/// defining `pub struct Settings` and a detector named like the variant.
macro_rules! classes {
    ($( $(#[doc = $doc:literal])* $variant:ident => $module:ident, )+) => {
        $( pub mod $module; )+

        /// The kind of problem a finding describes: one per detector, in
        /// the order they run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Class {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Class {
            /// Every class, in a stable order.
            pub const ALL: &'static [Class] = &[$(Class::$variant),+];

            /// The name used in every output format, e.g. `hot_spot`: the
            /// name of its detector's module, so the two cannot differ.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Class::$variant => stringify!($module), )+
                }
            }

            pub(crate) fn detector(self) -> &'static dyn Detector {
                match self {
                    $( Class::$variant => &$module::$variant, )+
                }
            }
        }

        /// The settings of every finding class: when it fires, what a fix
        /// gives back, how sure the evidence is. Every field is optional in
        /// a config file.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        #[non_exhaustive]
        pub struct ClassSettings {
            $( $(#[doc = $doc])* pub $module: $module::Settings, )+
        }
    };
}

classes! {
    /// A large share of self time.
    HotSpot => hot_spot,
    /// p99 or max far above p50.
    TailLatency => tail_latency,
    /// Very many cheap calls: per-call overhead dominates.
    HotLoop => hot_loop,
    /// A thread started for each call: starting and ending threads costs
    /// a share of the process's CPU outside every span.
    ThreadPerCall => thread_per_call,
    /// Many bytes or allocations per call, or a large share of all.
    AllocationHeavy => allocation_heavy,
    /// Memory kept across calls, or an RSS timeline that keeps growing.
    LeakSuspect => leak_suspect,
    /// Wall time far above busy time: waiting on I/O, locks, other tasks.
    Waiting => waiting,
    /// Self time mostly off the CPU by the span's own doing: sleep,
    /// blocking I/O, a contended lock; inside a poll for an async span.
    Blocked => blocked,
    /// Several threads inside at once, at most about one on the CPU: they
    /// queue behind each other (a lock convoy).
    Serialization => serialization,
    /// Work split into parts side by side, the parent as slow as its
    /// slowest part while the others' cores idle.
    UnevenSplit => uneven_split,
    /// The threads lost time to preemption (other threads, processes, the
    /// hypervisor): the machine is short of CPU.
    CpuContention => cpu_contention,
    /// The process spent much of the run at saturated CPU.
    ProcessCpu => process_cpu,
    /// The process's memory spiked far above its usual level, or above the
    /// RSS alert threshold.
    ProcessMemory => process_memory,
}

impl ClassSettings {
    /// What the shared figures are measured with, from the classes whose
    /// settings they are: leak_suspect's warm-up window for the rows'
    /// live-heap growth, process_cpu's saturation level for the process
    /// summary.
    pub(crate) fn measures(&self) -> Measures {
        Measures {
            growth: self.leak_suspect.growth_window(),
            saturation: self.process_cpu.saturation(),
        }
    }
}

impl Class {
    /// A short title for people, e.g. `hot spot`.
    pub fn title(self) -> &'static str {
        self.detector().info().title
    }

    pub(crate) fn info(self) -> &'static Info {
        self.detector().info()
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

impl Serialize for Class {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Whose poll a span runs inside, as `blocked` and `hot_spot` tell it.
pub(crate) enum InPoll<'c> {
    /// Its own: more than `polls` entered intervals per span (an async span).
    Own,
    /// Its async caller's (see [`async_caller`]), by label.
    Caller(&'c str),
    /// A task's, unnamed: at least half of its spans closed on a runtime's
    /// worker thread (`runtime_worker_calls` in the dump), so they ran
    /// inside whatever task that worker was polling (a plain function a
    /// few calls below an `async fn`, or an `async fn` that never awaits).
    Worker,
}

impl InPoll<'_> {
    /// Whose polls, for a finding's summary: "the polls of async `x`".
    pub(crate) fn whose(&self) -> String {
        match self {
            InPoll::Own => "its own async span's polls".to_owned(),
            InPoll::Caller(caller) => format!("the polls of async `{caller}`"),
            InPoll::Worker => "a task's poll on a runtime worker thread".to_owned(),
        }
    }

    /// How long a span that takes `per_span_ns` holds the worker at a time:
    /// all of it inside a caller's poll or a task's; inside its own polls,
    /// spread over them, and the longest at least `per_span_ns` over its
    /// polls per span (an `#[instrument]`ed `async fn` is entered once
    /// more when dropped, so one poll of all its work reads as two).
    pub(crate) fn stall(&self, row: &CallsiteRow, per_span_ns: f64) -> Stall {
        let own = matches!(self, InPoll::Own);
        let polls = row
            .cpu
            .as_ref()
            .map_or(1.0, |c| c.intervals_per_call.max(1.0));
        Stall {
            ns: if own {
                per_span_ns / polls
            } else {
                per_span_ns
            },
            whose: self.whose(),
            at_least: own,
        }
    }
}

/// How long a span holds a runtime worker at a time, inside whose poll
/// ([`InPoll::stall`]).
pub(crate) struct Stall {
    pub(crate) ns: f64,
    /// [`InPoll::whose`].
    pub(crate) whose: String,
    /// Inside its own polls: `ns` is a lower bound of the longest.
    pub(crate) at_least: bool,
}

/// Whose poll callsite `id` (its row `row`) runs inside: its own when its
/// spans are entered more than `polls` times each, else its async
/// caller's, else a task's when it ran on a runtime's workers; `None`
/// when none of these.
pub(crate) fn in_poll<'c>(
    cx: &'c Context<'_>,
    id: u32,
    row: &CallsiteRow,
    polls: f64,
) -> Option<InPoll<'c>> {
    if cx
        .index_of(id)
        .and_then(|i| polls_per_span(cx, i))
        .is_some_and(|n| n > polls)
    {
        return Some(InPoll::Own);
    }
    if let Some(caller) = async_caller(cx, id, row.calls, polls) {
        return Some(InPoll::Caller(caller));
    }
    let on_workers = cx
        .index_of(id)
        .and_then(|i| cx.dump.callsites[i].runtime_worker_calls)
        .unwrap_or(0);
    (row.calls > 0 && on_workers.saturating_mul(2) >= row.calls).then_some(InPoll::Worker)
}

/// Entered intervals per span of the callsite at index `i`: from every
/// closed span (`intervals` in the dump), else from the spans timed on the
/// CPU (older dumps); `None` when neither says. Every span counts: a
/// request span polled three times for microseconds each has too few
/// timed intervals for CPU figures in a short run, and a blocking call
/// inside its polls was, in one run of five, not said to stall its worker.
pub(crate) fn polls_per_span(cx: &Context<'_>, i: usize) -> Option<f64> {
    let cs = &cx.dump.callsites[i];
    match cs.intervals {
        Some(n) if cs.calls > 0 => Some(n as f64 / cs.calls as f64),
        _ => cx.rows[i].cpu.as_ref().map(|c| c.intervals_per_call),
    }
}

/// Whether most of the spans of the callsite at index `i` closed on a
/// runtime's workers; `None` where the dump does not say.
fn mostly_on_workers(cx: &Context<'_>, i: usize) -> Option<bool> {
    let cs = &cx.dump.callsites[i];
    let on = cs.runtime_worker_calls?;
    Some(cs.calls > 0 && on.saturating_mul(2) >= cs.calls)
}

/// Whether the dump says callsite `id`'s spans mostly closed off a
/// runtime's workers (`false` where it does not say).
fn known_off_workers(cx: &Context<'_>, id: u32) -> bool {
    cx.index_of(id)
        .and_then(|i| mostly_on_workers(cx, i))
        .is_some_and(|on| !on)
}

/// Whether callsite `id`'s spans closed off a runtime's workers while a
/// caller's (a call edge's parent) closed on them: handed to another thread
/// by a task, a blocking pool's closure most likely (`spawn_blocking`).
pub(crate) fn carried_off_workers(cx: &Context<'_>, id: u32) -> bool {
    known_off_workers(cx, id)
        && cx
            .edges_into(id)
            .filter_map(|e| cx.index_of(e.parent))
            .any(|at| mostly_on_workers(cx, at) == Some(true))
}

/// The async span that calls callsite `id` (of `calls` spans) inside its
/// polls for at least half of those calls: its direct parent in the call
/// edges with more than `polls` entered intervals per span
/// ([`polls_per_span`]). Its label; `None` when no such caller. A parent
/// whose spans closed on a runtime's workers while this callsite's did not
/// handed it to another thread (a blocking pool's closure entering the
/// task's span, `span.in_scope` in `spawn_blocking`): not inside its polls.
/// A current-thread runtime's spans close on no worker the layer knows, the
/// caller's and the callee's alike, and keep the reading.
pub(crate) fn async_caller<'c>(
    cx: &'c Context<'_>,
    id: u32,
    calls: u64,
    polls: f64,
) -> Option<&'c str> {
    let off_workers = known_off_workers(cx, id);
    let mut in_polls = 0u64;
    let mut top: Option<(u64, &'c str)> = None;
    for e in cx.edges_into(id) {
        let Some(at) = cx.index_of(e.parent) else {
            continue;
        };
        let parent = &cx.rows[at];
        if off_workers && mostly_on_workers(cx, at) == Some(true) {
            continue;
        }
        if polls_per_span(cx, at).is_some_and(|n| n > polls) {
            in_polls = in_polls.saturating_add(e.calls);
            if top.is_none_or(|(n, _)| e.calls > n) {
                top = Some((e.calls, parent.location.label.as_str()));
            }
        }
    }
    top.filter(|_| in_polls.saturating_mul(2) >= calls)
        .map(|(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::Class;

    #[test]
    fn every_class_has_its_own_name_and_title() {
        let mut ids: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
        let mut titles: Vec<&str> = Class::ALL.iter().map(|c| c.title()).collect();
        ids.sort_unstable();
        ids.dedup();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(
            (ids.len(), titles.len()),
            (Class::ALL.len(), Class::ALL.len())
        );
        // Each class has a name (its module's) and a title (its detector's).
        for class in Class::ALL {
            assert!(!class.as_str().is_empty() && !class.title().is_empty());
        }
    }

    /// One class, one file: each class's id is the name of the file its
    /// detector is in (or of its folder, `name/mod.rs`, where the class's
    /// readings have files of their own), and every file here but this one
    /// is a class.
    #[test]
    fn every_class_is_the_file_of_its_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/analyze/detectors");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().join("mod.rs").is_file() {
                    format!("{name}.rs")
                } else {
                    name
                }
            })
            .filter(|f| f != "mod.rs")
            .collect();
        files.sort_unstable();
        let mut ids: Vec<String> = Class::ALL
            .iter()
            .map(|c| format!("{}.rs", c.as_str()))
            .collect();
        ids.sort_unstable();
        assert_eq!(files, ids);
    }
}
