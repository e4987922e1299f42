//! The report's outline, built once per report kind: a title, then sections
//! of blocks (tables over the columns of `table.rs`, paragraphs, lists, the
//! plan's steps, charts). Which sections a report has, in which order, what
//! each says and how many rows each shows is decided here, and the words
//! come from `wording.rs`; a format only lays the blocks out
//! ([`super::markup::Markup`]), so the formats cannot drift apart.

use super::table::{self, Align, Cell, Column};
use super::wording::{self, Words};
use super::{RenderOptions, ReportKind};
use crate::Report;
use crate::analyze::pictures::{Distribution, LiveHeap, Timeline};
use crate::callsite::Location;
use crate::diff::{CallsiteDiff, Diff};
use crate::flamegraph::CallGraph;
use crate::plan::Step;
use crate::units;

/// A report or a diff laid out as blocks.
#[derive(Debug)]
pub(crate) struct Outline<'a> {
    /// What the page is called: `perf-report: program`.
    pub(crate) page_title: String,
    pub(crate) title: Title<'a>,
    pub(crate) sections: Vec<Section<'a>>,
}

/// What the outline is about, for its header. Names are from the dump:
/// the format escapes them.
#[derive(Debug)]
pub(crate) enum Title<'a> {
    /// A report of one run: its program, and the run's summary.
    Report { program: &'a str, summary: String },
    /// A comparison: the two programs, the self time's change and the
    /// callsites by verdict.
    Diff {
        base: &'a str,
        new: &'a str,
        self_time: String,
        counts: String,
    },
    /// A view of the run history: its command (`perf-report check`), the
    /// program it is about, and its summary; a listing has neither and
    /// starts with its first section.
    History {
        command: &'static str,
        program: Option<&'a str>,
        summary: Option<Words>,
    },
}

/// A titled part of the report.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// Its anchor, for a page's navigation (unique within the outline).
    pub(crate) id: String,
    pub(crate) title: &'static str,
    /// Its name in a page's navigation bar.
    pub(crate) nav: &'static str,
    /// Whether a document shows its title; if not, only a page does (for
    /// its navigation), and a document starts the section without one.
    pub(crate) titled: bool,
    /// What a heading says about the section: the terminal puts it on the
    /// heading's line, the other formats under it.
    pub(crate) lede: Option<Words>,
    pub(crate) blocks: Vec<Block<'a>>,
}

impl Section<'_> {
    /// Nothing but pictures: a format that draws none leaves it out.
    pub(crate) fn only_charts(&self) -> bool {
        self.lede.is_none() && self.blocks.iter().all(|b| matches!(b, Block::Chart(_)))
    }
}

/// One block of a section.
#[derive(Debug)]
pub(crate) enum Block<'a> {
    Table(Table),
    /// A sentence of ours, which may quote names from the dump.
    Paragraph(&'static str),
    /// A remark after a table: how to read it.
    Aside(Words),
    /// How many rows `--top` left out: `(hidden, what)`.
    More(usize, &'static str),
    /// A bulleted list of sentences that may quote names from the dump.
    List(&'a [String]),
    /// The plan's steps, each in full or in one line.
    Steps(&'a [Step], Detail),
    /// The diff's changed callsites, each with its verdict and why.
    Reasons(Vec<&'a CallsiteDiff>),
    Chart(Chart<'a>),
}

/// How much of a step to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Why, evidence, gain, effort, fixes, prerequisites and validation.
    Full,
    /// One line: the class, the span, the gain and the effort.
    Line,
}

/// A picture, drawn by the formats that draw (HTML) from what the analysis
/// took of the dump for it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chart<'a> {
    /// Busy-time distributions of the callsites with the most self time.
    Latency(&'a [(Location, Distribution)]),
    /// Self time by call path: the call graph of a run of the program, and
    /// the caption.
    Flamegraph(&'a CallGraph, &'a str, &'static str),
    /// The sampler's RSS and CPU over the run.
    Timeline(&'a Timeline),
    /// Live heap over the run, by callsite, where the dump has it.
    LiveHeap(Option<&'a LiveHeap>),
    /// The base and new busy-time distributions of the changed callsites,
    /// with their caption.
    DiffCurves(&'a Diff, &'static str),
}

/// A table: its columns' heads and its rows' cells, taken from the
/// `Column`s of `table.rs`.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table's name, for a page's style rules.
    pub(crate) name: &'static str,
    pub(crate) heads: Vec<Head>,
    pub(crate) rows: Vec<Vec<Cell>>,
}

/// A column without its cells: what a format needs to lay it out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) header: &'static str,
    pub(crate) align: Align,
    pub(crate) from_dump: bool,
    pub(crate) drop_order: u8,
    pub(crate) shortens: bool,
}

impl Table {
    /// `rows` under `columns`.
    pub(crate) fn new<T>(name: &'static str, columns: &[Column<T>], rows: &[T]) -> Self {
        Self {
            name,
            heads: columns
                .iter()
                .map(|c| Head {
                    header: c.header,
                    align: c.align,
                    from_dump: c.from_dump,
                    drop_order: c.drop_order,
                    shortens: c.shortens,
                })
                .collect(),
            rows: table::cells(columns, rows),
        }
    }
}

pub(crate) fn section<'a>(
    id: &'static str,
    title: &'static str,
    lede: Option<Words>,
    blocks: Vec<Block<'a>>,
) -> Section<'a> {
    Section {
        id: id.to_owned(),
        title,
        nav: title,
        titled: true,
        lede,
        blocks,
    }
}

/// The first `--top` of `rows` as a table, and how many it left out.
fn top<'a, T>(
    name: &'static str,
    columns: &[Column<T>],
    rows: &[T],
    what: &'static str,
    opts: &RenderOptions,
) -> [Block<'a>; 2] {
    let shown = opts.limit(rows.len());
    [
        Block::Table(Table::new(name, columns, &rows[..shown])),
        Block::More(rows.len() - shown, what),
    ]
}

fn findings<'a>(r: &'a Report, opts: &RenderOptions) -> Section<'a> {
    let a = &r.analysis;
    let blocks = if a.findings.is_empty() {
        vec![Block::Paragraph(wording::NO_FINDINGS)]
    } else {
        top("findings", table::FINDINGS, &a.findings, "findings", opts).into()
    };
    section(
        "findings",
        "Findings",
        Some(Words::figures(wording::counts(a))),
        blocks,
    )
}

fn plan<'a>(r: &'a Report, detail: Detail, opts: &RenderOptions) -> Section<'a> {
    let steps = &r.plan.steps;
    let blocks = if steps.is_empty() {
        vec![Block::Paragraph(wording::NOTHING_TO_DO)]
    } else {
        let shown = opts.limit(steps.len());
        vec![
            Block::Steps(&steps[..shown], detail),
            Block::More(steps.len() - shown, "steps"),
        ]
    };
    section(
        "plan",
        "Plan",
        Some(Words::sentence(format!(
            "estimated total gain: {}",
            wording::plan_totals(&r.plan, &r.analysis)
        ))),
        blocks,
    )
}

fn callsites<'a>(r: &'a Report, opts: &RenderOptions) -> Section<'a> {
    let rows = &r.analysis.callsites;
    let shown = opts.limit(rows.len());
    let blocks = if rows.is_empty() {
        Vec::new()
    } else {
        vec![
            Block::Table(Table::new("callsites", table::CALLSITES, &rows[..shown])),
            Block::Aside(Words::sentence(wording::CALLSITES_READING.to_owned())),
        ]
    };
    section(
        "callsites",
        "Callsites",
        Some(Words::sentence(format!(
            "{shown} of {} by self time",
            rows.len()
        ))),
        blocks,
    )
}

/// The pictures and the process line between the callsites and the notes.
fn pictures(r: &Report) -> [Section<'_>; 4] {
    let a = &r.analysis;
    let pictures = &a.pictures;
    let mut latency = section(
        "latency",
        "Latency distributions",
        None,
        vec![Block::Chart(Chart::Latency(&pictures.latency))],
    );
    latency.nav = "Latency";
    [
        latency,
        section(
            "flamegraph",
            "Flamegraph",
            None,
            vec![Block::Chart(Chart::Flamegraph(
                &pictures.call_graph,
                &a.program,
                wording::FLAMEGRAPH_CAPTION,
            ))],
        ),
        section(
            "process",
            "Process",
            wording::process_line(a).map(Words::figures),
            vec![Block::Chart(Chart::Timeline(&pictures.timeline))],
        ),
        section(
            "heap",
            "Live heap",
            None,
            vec![Block::Chart(Chart::LiveHeap(pictures.live_heap.as_ref()))],
        ),
    ]
}

fn notes(r: &Report) -> Option<Section<'_>> {
    let notes = &r.analysis.notes;
    (!notes.is_empty()).then(|| section("notes", "Notes", None, vec![Block::List(notes)]))
}

fn weights<'a>(r: &'a Report, opts: &RenderOptions) -> Section<'a> {
    let a = &r.analysis;
    let mut blocks: Vec<Block<'a>> =
        top("weights", table::WEIGHTS, &a.weights, "spans", opts).into();
    if a.totals.self_alloc_bytes.is_none() {
        blocks.push(Block::Aside(Words::sentence(
            wording::ALLOCATION_UNTRACKED.to_owned(),
        )));
    }
    section(
        "weights",
        "Session weights",
        Some(Words::formula(wording::weights_formula(&r.config.weights))),
        blocks,
    )
}

/// The outline of a report of `kind`.
pub(crate) fn report<'a>(r: &'a Report, kind: ReportKind, opts: &RenderOptions) -> Outline<'a> {
    let a = &r.analysis;
    let mut sections = Vec::new();
    match kind {
        ReportKind::Full => {
            sections.push(findings(r, opts));
            sections.push(plan(r, Detail::Full, opts));
            sections.push(callsites(r, opts));
            sections.extend(pictures(r));
            sections.extend(notes(r));
        }
        ReportKind::Summary => {
            sections.push(findings(r, opts));
            sections.push(plan(r, Detail::Line, opts));
            sections.extend(notes(r));
        }
        ReportKind::Weight => sections.push(weights(r, opts)),
    }
    Outline {
        page_title: format!("perf-report: {}", a.program),
        title: Title::Report {
            program: &a.program,
            summary: wording::run_summary(a),
        },
        sections,
    }
}

/// The outline of a diff: its table, why each changed callsite changed,
/// and their distributions.
pub(crate) fn diff<'a>(d: &'a Diff, opts: &RenderOptions) -> Outline<'a> {
    let mut sections = Vec::new();
    if !d.callsites.is_empty() {
        let shown = opts.limit(d.callsites.len());
        let mut callsites = section(
            "callsites",
            "Callsites",
            None,
            vec![
                Block::Table(Table::new("diff", table::DIFF, &d.callsites[..shown])),
                Block::Aside(Words::sentence(wording::DIFF_READING.to_owned())),
                Block::More(d.callsites.len() - shown, "callsites"),
            ],
        );
        // The diff opens with its table.
        callsites.titled = false;
        sections.push(callsites);
        let changed: Vec<&CallsiteDiff> = d.callsites[..shown]
            .iter()
            .filter(|c| c.verdict.is_change())
            .collect();
        if !changed.is_empty() {
            sections.push(section("why", "Why", None, vec![Block::Reasons(changed)]));
        }
        let mut latency = section(
            "latency",
            "Latency distributions of the changed spans",
            None,
            vec![Block::Chart(Chart::DiffCurves(
                d,
                wording::DIFF_CURVES_CAPTION,
            ))],
        );
        latency.nav = "Latency";
        sections.push(latency);
    }
    Outline {
        page_title: format!("perf-report diff: {} → {}", d.base_program, d.new_program),
        title: Title::Diff {
            base: &d.base_program,
            new: &d.new_program,
            self_time: table::change(&d.total_self_ns, units::ns),
            counts: wording::diff_counts(d),
        },
        sections,
    }
}
