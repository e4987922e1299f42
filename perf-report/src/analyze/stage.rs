//! A pipeline's slowest stage: a callsite on the CPU that computed one at
//! a time, back to back, through most of the run. It paces the threads or
//! tasks that feed it and those it feeds: their waits are its, counted in
//! its hot spot, and fixing them gives back only what it lets through. A
//! fresh three-stage pipeline's reader and writer, blocked on either side
//! of one `transform` thread (80 µs a record, 90% of the run), read two
//! high blocked findings beside the right first one; a second `transform`
//! thread made 1.57 times the records. Its tokio twin (eight producers
//! `send_event` into a bounded channel, one consumer `apply_event`, 84% of
//! the run) read `send_event` waiting, high, "shortens the run by 17.5%".

use std::collections::{HashMap, HashSet};

use perf_layer::dump::CallsiteStats;

use super::context::Context;
use super::detectors::hot_spot;

/// A stage is on the CPU at least this share of its busy time...
const ON_CPU: f64 = 0.8;
/// ...and its calls, one at a time, fill at least this share of the run.
const FILL: f64 = 0.75;

/// The most stages kept: fills of three quarters of the run each, one at
/// a time, add up to at most the recording threads.
const MAX_STAGES: usize = 8;

/// The run's stages: every callsite on the CPU whose calls ran one at a
/// time through most of the run ([`ON_CPU`], [`FILL`]), at most
/// [`MAX_STAGES`] of the largest fills, each with the callsites it runs
/// inside or that run inside it. Read once a detector, not once a callsite
/// (a dump of ten thousand callsites).
pub(crate) struct Stages(Vec<Stage>);

struct Stage {
    /// Its row index.
    row: usize,
    /// The share of the run its calls fill.
    fill: f64,
    /// The callsites it runs inside or that run inside it, by id.
    related: HashSet<u32>,
}

impl Stages {
    pub(crate) fn of(cx: &Context<'_>) -> Self {
        let mut found: Vec<(usize, f64)> = cx
            .callsites()
            .filter(|(_, _, row)| row.cpu.as_ref().is_some_and(|c| c.on_cpu_share >= ON_CPU))
            .filter_map(|(j, o, row)| {
                hot_spot::serial_fill(cx, o, row)
                    .filter(|&f| f >= FILL)
                    .map(|fill| (j, fill))
            })
            .collect();
        if found.is_empty() {
            return Self(Vec::new());
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found.truncate(MAX_STAGES);
        let (mut down, mut up): (HashMap<u32, Vec<u32>>, HashMap<u32, Vec<u32>>) =
            Default::default();
        for e in cx.dump.edges.iter().filter(|e| e.parent != e.child) {
            down.entry(e.parent).or_default().push(e.child);
            up.entry(e.child).or_default().push(e.parent);
        }
        let reach = |from: u32, links: &HashMap<u32, Vec<u32>>, into: &mut HashSet<u32>| {
            let mut next = vec![from];
            while let Some(id) = next.pop() {
                for &n in links.get(&id).into_iter().flatten() {
                    if into.insert(n) {
                        next.push(n);
                    }
                }
            }
        };
        Self(
            found
                .into_iter()
                .map(|(row, fill)| {
                    let id = cx.dump.callsites[row].id;
                    let mut related = HashSet::new();
                    reach(id, &down, &mut related);
                    reach(id, &up, &mut related);
                    Stage { row, fill, related }
                })
                .collect(),
        )
    }

    /// The slowest stage beside callsite `cs` (neither runs inside the
    /// other), by its row index, with the share of the run its calls
    /// fill; `in_step`, only a stage whose calls go in step with `cs`'s.
    pub(crate) fn beside(
        &self,
        cx: &Context<'_>,
        cs: &CallsiteStats,
        in_step: bool,
    ) -> Option<(usize, f64)> {
        self.0
            .iter()
            .filter(|st| {
                let o = &cx.dump.callsites[st.row];
                o.id != cs.id
                    && !st.related.contains(&cs.id)
                    && (!in_step || crate::stats::in_step(o.calls, cs.calls))
            })
            .map(|st| (st.row, st.fill))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}
