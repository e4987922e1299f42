//! Folded stacks and flamegraphs from a dump's call edges.
//!
//! perf-layer records callsite-to-callsite edges (how many child spans
//! closed under each parent callsite, and their busy time), not whole call
//! paths. Paths are rebuilt from the roots down: a callsite's self time is
//! split among its parents in proportion to the busy time it spent under
//! each (and, for calls with no parent, to the root), and the split is
//! carried down every path. That is exact for call trees where each
//! callsite has one parent, and the usual proportional estimate (as in
//! gprof) where a callsite is called from several places.
//!
//! ```
//! use perf_layer::dump::Dump;
//!
//! let lines = perf_report::flamegraph::folded_stacks(&Dump::empty("demo"));
//! assert!(lines.is_empty());
//! ```

use std::collections::HashMap;
use std::io::Write;

use perf_layer::dump::Dump;

use crate::callsite::{Location, qualify};

/// The most stack lines written: a guard against path explosion in
/// graphs where many callsites call each other.
pub const MAX_LINES: usize = 100_000;
/// The deepest path followed.
pub const MAX_DEPTH: usize = 128;

/// Why a flamegraph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlamegraphError {
    /// The dump has no self time to draw.
    #[error(
        "the dump has no span with self time to draw; run the workload longer or check the layer is installed"
    )]
    Empty,
    /// inferno could not write the SVG.
    #[error("cannot draw the flamegraph: {0}")]
    Draw(String),
}

/// The dump as folded stacks (`root;child;grandchild <self ns>`), one line
/// per call path, heaviest first; the input of any flamegraph tool.
pub fn folded_stacks(dump: &Dump) -> Vec<String> {
    CallGraph::of(dump).folded_stacks()
}

/// What a flamegraph is folded from: each callsite's frame name, self and
/// busy time, and the call edges between them. Taking it from a dump is
/// cheap (a copy of the figures and a name per callsite); folding it into
/// call paths ([`CallGraph::folded_stacks`]) is the work, done only for a
/// flamegraph that is drawn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallGraph {
    /// In the dump's order.
    frames: Vec<Frame>,
    edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: u32,
    name: String,
    self_ns: u64,
    busy_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Edge {
    parent: u32,
    child: u32,
    child_busy_ns: u64,
}

impl CallGraph {
    /// The call graph of `dump`, its frames named as the report labels
    /// the callsites.
    pub fn of(dump: &Dump) -> Self {
        let mut locations: Vec<Location> = dump.callsites.iter().map(Location::of).collect();
        qualify(locations.iter_mut());
        Self::with_labels(dump, &locations)
    }

    /// The call graph of `dump` whose callsites have the `locations` (in
    /// the dump's order, qualified as [`qualify`] does): the analysis's,
    /// which qualified them once.
    pub(crate) fn with_labels<'a>(
        dump: &Dump,
        locations: impl IntoIterator<Item = &'a Location>,
    ) -> Self {
        let locations: Vec<&Location> = locations.into_iter().collect();
        Self {
            frames: dump
                .callsites
                .iter()
                .zip(frame_names(&locations))
                .map(|(c, name)| Frame {
                    id: c.id,
                    name,
                    self_ns: c.self_ns.sum,
                    busy_ns: c.busy_ns.sum,
                })
                .collect(),
            edges: dump
                .edges
                .iter()
                .map(|e| Edge {
                    parent: e.parent,
                    child: e.child,
                    child_busy_ns: e.child_busy_ns,
                })
                .collect(),
        }
    }

    /// The graph as folded stacks (`root;child;grandchild <self ns>`), one
    /// line per call path, heaviest first.
    pub fn folded_stacks(&self) -> Vec<String> {
        let by_id: HashMap<u32, &Frame> = self.frames.iter().map(|c| (c.id, c)).collect();

        // Each callsite's busy time under each parent, and at the root.
        let mut children: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
        let mut under_parents: HashMap<u32, f64> = HashMap::new();
        for e in &self.edges {
            if e.parent == e.child
                || !by_id.contains_key(&e.parent)
                || !by_id.contains_key(&e.child)
            {
                continue;
            }
            children
                .entry(e.parent)
                .or_default()
                .push((e.child, e.child_busy_ns as f64));
            *under_parents.entry(e.child).or_default() += e.child_busy_ns as f64;
        }
        // Fraction of a callsite's time spent under one parent (or at the root).
        let share = |child: u32, busy_under: f64| {
            let c = by_id[&child];
            let total = (c.busy_ns as f64).max(under_parents.get(&child).copied().unwrap_or(0.0));
            if total > 0.0 { busy_under / total } else { 0.0 }
        };

        let mut weights: HashMap<String, f64> = HashMap::new();
        let mut path: Vec<u32> = Vec::new();
        for root in &self.frames {
            let at_root = root.busy_ns as f64 - under_parents.get(&root.id).copied().unwrap_or(0.0);
            let fraction = share(root.id, at_root.max(0.0));
            // A callsite with self time but no busy time recorded (and no
            // parent) is still drawn, as a root.
            let drawn_whole =
                root.busy_ns == 0 && root.self_ns > 0 && !under_parents.contains_key(&root.id);
            let start = if drawn_whole { 1.0 } else { fraction };
            if start > 0.0 {
                walk(
                    root.id,
                    start,
                    &mut path,
                    &children,
                    &by_id,
                    &share,
                    &mut weights,
                );
            }
        }
        let mut lines: Vec<(String, u64)> = weights
            .into_iter()
            .map(|(stack, w)| (stack, w.round() as u64))
            .filter(|(_, w)| *w > 0)
            .collect();
        lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        lines.truncate(MAX_LINES);
        lines
            .into_iter()
            .map(|(stack, w)| format!("{stack} {w}"))
            .collect()
    }
}

fn walk(
    id: u32,
    fraction: f64,
    path: &mut Vec<u32>,
    children: &HashMap<u32, Vec<(u32, f64)>>,
    by_id: &HashMap<u32, &Frame>,
    share: &impl Fn(u32, f64) -> f64,
    weights: &mut HashMap<String, f64>,
) {
    // Recursion through the same callsite folds into the first frame.
    if path.contains(&id) || path.len() >= MAX_DEPTH || weights.len() >= MAX_LINES {
        return;
    }
    path.push(id);
    let stack = path
        .iter()
        .map(|p| by_id[p].name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    *weights.entry(stack).or_default() += by_id[&id].self_ns as f64 * fraction;
    for &(child, busy_under) in children.get(&id).into_iter().flatten() {
        let f = fraction * share(child, busy_under);
        // Paths worth less than a nanosecond would only add noise.
        if f * by_id[&child].busy_ns as f64 >= 1.0 {
            walk(child, f, path, children, by_id, share, weights);
        }
    }
    path.pop();
}

/// A frame name per callsite of `locations` (the report's labels,
/// module-qualified where a name is ambiguous): the label, with
/// `file:line` added where two callsites share it. Semicolons (the folded
/// format's separator) and control characters are replaced.
fn frame_names(locations: &[&Location]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for l in locations {
        *count.entry(l.label.as_str()).or_default() += 1;
    }
    locations
        .iter()
        .map(|l| {
            let name = if count[l.label.as_str()] > 1 {
                format!("{} ({})", l.label, l.source())
            } else {
                l.label.clone()
            };
            crate::sanitize::bounded(&name, crate::sanitize::MAX_NAME_CHARS)
                .chars()
                .map(|ch| {
                    if ch == ';' || ch.is_control() {
                        ':'
                    } else {
                        ch
                    }
                })
                .collect()
        })
        .collect()
}

/// Draws the dump's self time as a flamegraph SVG into `writer`.
///
/// # Errors
/// [`FlamegraphError::Empty`] when there is nothing to draw;
/// [`FlamegraphError::Draw`] when inferno fails or `writer` does.
pub fn flamegraph_svg<W: Write>(dump: &Dump, writer: W) -> Result<(), FlamegraphError> {
    draw(&folded_stacks(dump), &dump.run.program, writer, |_| {})
}

/// The flamegraph drawn for a page, where it is scaled to the page's width:
/// 900 px wide (the page shows it at least that wide, scrolling inside its
/// box in a narrower window), with taller rows and larger text, so three
/// rows read as well as thirty. It draws the `folded_stacks` of a run of
/// `program`, as the analysis keeps them.
pub(crate) fn flamegraph_svg_for_page<W: Write>(
    folded_stacks: &[String],
    program: &str,
    writer: W,
) -> Result<(), FlamegraphError> {
    draw(folded_stacks, program, writer, |o| {
        o.image_width = Some(PAGE_WIDTH_PX);
        o.frame_height = 24;
        o.font_size = 14;
    })
}

/// The width the page's flamegraph is drawn for, px.
pub(crate) const PAGE_WIDTH_PX: usize = 900;

fn draw<W: Write>(
    lines: &[String],
    program: &str,
    writer: W,
    size: impl FnOnce(&mut inferno::flamegraph::Options<'_>),
) -> Result<(), FlamegraphError> {
    if lines.is_empty() {
        return Err(FlamegraphError::Empty);
    }
    // inferno adds the counts up in a u64 (and panics past it in a debug
    // build): only a dump whose self times make centuries gets there.
    let total: u128 = lines
        .iter()
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .map(u128::from)
        .sum();
    if total > u128::from(u64::MAX) {
        return Err(FlamegraphError::Draw(
            "the self times add up to more than 2^64 ns; the dump cannot be of a real run"
                .to_owned(),
        ));
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!(
        "{}: self time by call path",
        crate::sanitize::bounded(program, crate::sanitize::MAX_NAME_CHARS)
    );
    options.count_name = "ns".to_owned();
    // Colours from each frame's name rather than inferno's random draws
    // (whose state lives on in the thread): the same dump draws the same
    // bytes, as every renderer promises, and a span keeps its colour.
    options.hash = true;
    size(&mut options);
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), writer)
        .map_err(|e| FlamegraphError::Draw(e.to_string()))
}
