//! Every table's columns, defined once: header, alignment, and how a row
//! becomes a cell. The text and Markdown renderers (and any later one) lay
//! out the same columns, so their tables cannot diverge.

use crate::analyze::{CallsiteRow, Finding, Severity, WeightRow};
use crate::diff::{CallsiteDiff, Change, Verdict};
use crate::units;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// How a cell is emphasised, where the format can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Plain,
    Severity(Severity),
    Verdict(Verdict),
}

/// One cell: its text and its emphasis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) tone: Tone,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self {
            text,
            tone: Tone::Plain,
        }
    }
}

/// One column of a table of `T`s.
pub(crate) struct Column<T> {
    pub(crate) header: &'static str,
    pub(crate) align: Align,
    /// The cell text comes from the dump (a name, a path), not from us:
    /// renderers escape it for their format.
    pub(crate) from_dump: bool,
    /// Where a narrow terminal hides it: 0 never, else the higher the
    /// sooner. Markdown and JSON show every column.
    pub(crate) drop_order: u8,
    /// A source location a narrow terminal shortens
    /// ([`crate::callsite::shorter_source`]) before it hides the column.
    pub(crate) shortens: bool,
    /// The cell of a row, given its 1-based position.
    pub(crate) cell: fn(usize, &T) -> Cell,
}

/// A column of our own text (figures, words), never hidden.
pub(crate) const fn col<T>(
    header: &'static str,
    align: Align,
    cell: fn(usize, &T) -> Cell,
) -> Column<T> {
    Column {
        header,
        align,
        from_dump: false,
        drop_order: 0,
        shortens: false,
        cell,
    }
}

/// A column of text from the dump (a name, a path): the format escapes it.
pub(crate) const fn dump_col<T>(header: &'static str, cell: fn(usize, &T) -> Cell) -> Column<T> {
    Column {
        header,
        align: Align::Left,
        from_dump: true,
        drop_order: 0,
        shortens: false,
        cell,
    }
}

impl<T> Column<T> {
    /// A location: shortened before it is hidden.
    const fn shortens(mut self) -> Self {
        self.shortens = true;
        self
    }

    /// Hidden in a narrow terminal, in this order (see [`Column::drop_order`]).
    const fn drops(mut self, order: u8) -> Self {
        self.drop_order = order;
        self
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::from(s.into())
}

/// The findings table.
pub(crate) static FINDINGS: &[Column<Finding>] = &[
    col::<Finding>("#", Align::Right, |i, _| text(i.to_string())),
    col::<Finding>("severity", Align::Left, |_, f| Cell {
        text: f.severity.to_string(),
        tone: Tone::Severity(f.severity),
    }),
    col::<Finding>("score", Align::Right, |_, f| {
        text(format!("{:.1}", f.score))
    }),
    col::<Finding>("class", Align::Left, |_, f| text(f.class.title())),
    dump_col::<Finding>("span", |_, f| text(f.subject().name())),
    dump_col::<Finding>("location", |_, f| text(f.subject().source()))
        .shortens()
        .drops(1),
];

fn alloc_cell(c: &CallsiteRow, f: impl Fn(&crate::analyze::AllocRow) -> String) -> Cell {
    text(c.alloc.as_ref().map_or_else(|| "-".to_owned(), f))
}

/// The per-callsite table.
pub(crate) static CALLSITES: &[Column<CallsiteRow>] = &[
    dump_col::<CallsiteRow>("span", |_, c| text(c.location.label.clone())),
    dump_col::<CallsiteRow>("location", |_, c| text(c.location.source()))
        .shortens()
        .drops(2),
    col::<CallsiteRow>("calls", Align::Right, |_, c| {
        text(units::count(c.calls as f64))
    })
    .drops(3),
    col::<CallsiteRow>("self", Align::Right, |_, c| {
        text(units::ns(c.self_total_ns as f64))
    }),
    col::<CallsiteRow>("self %", Align::Right, |_, c| {
        text(units::pct(c.self_share))
    }),
    col::<CallsiteRow>("mean", Align::Right, |_, c| text(units::ns(c.busy_mean_ns))).drops(1),
    col::<CallsiteRow>("p50", Align::Right, |_, c| {
        text(units::ns(c.busy_p50_ns as f64))
    })
    .drops(5),
    col::<CallsiteRow>("p99", Align::Right, |_, c| {
        text(units::ns(c.busy_p99_ns as f64))
    })
    .drops(1),
    col::<CallsiteRow>("max", Align::Right, |_, c| {
        text(units::ns(c.busy_max_ns as f64))
    })
    .drops(6),
    col::<CallsiteRow>("idle %", Align::Right, |_, c| {
        text(units::pct(c.idle_share))
    })
    .drops(4),
    col::<CallsiteRow>("on-cpu %", Align::Right, |_, c| {
        text(c.cpu.as_ref().map_or_else(|| "-".to_owned(), on_cpu_cell))
    })
    .drops(4),
    col::<CallsiteRow>("alloc/call", Align::Right, |_, c| {
        alloc_cell(c, |a| units::bytes(a.self_bytes_per_call))
    })
    .drops(3),
    col::<CallsiteRow>("live", Align::Right, |_, c| {
        text(
            c.heap
                .as_ref()
                .map_or_else(|| "-".to_owned(), |h| units::bytes(h.live_bytes as f64)),
        )
    })
    .drops(5),
    col::<CallsiteRow>("rss Δ/call", Align::Right, |_, c| {
        text(
            c.rss_delta_per_call_bytes
                .map_or_else(|| "-".to_owned(), units::bytes),
        )
    })
    .drops(7),
];

/// The session-weight table.
pub(crate) static WEIGHTS: &[Column<WeightRow>] = &[
    col::<WeightRow>("#", Align::Right, |i, _| text(i.to_string())),
    dump_col::<WeightRow>("span", |_, w| text(w.location.label.clone())),
    dump_col::<WeightRow>("location", |_, w| text(w.location.source()))
        .shortens()
        .drops(1),
    col::<WeightRow>("weight", Align::Right, |_, w| {
        text(format!("{:.1}", w.weight))
    }),
    col::<WeightRow>("cpu", Align::Right, |_, w| text(units::pct(w.cpu_share))).drops(2),
    col::<WeightRow>("memory", Align::Right, |_, w| {
        text(w.memory_share.map_or_else(|| "-".to_owned(), units::pct))
    })
    .drops(2),
    col::<WeightRow>("frequency", Align::Right, |_, w| {
        text(units::pct(w.frequency_share))
    })
    .drops(2),
];

/// `base -> new (+x%)`.
pub(crate) fn change(c: &Change, f: fn(f64) -> String) -> String {
    match c.relative {
        Some(r) => format!("{} -> {} ({})", f(c.base), f(c.new), units::change(r)),
        None => format!("{} -> {}", f(c.base), f(c.new)),
    }
}

/// The new value and its change: the table stays narrow; JSON has both sides.
fn new_value(c: &Change, f: fn(f64) -> String) -> Cell {
    text(match c.relative {
        Some(r) => format!("{} ({})", f(c.new), units::change(r)),
        None => format!("{} (new)", f(c.new)),
    })
}

/// The diff table.
pub(crate) static DIFF: &[Column<CallsiteDiff>] = &[
    col::<CallsiteDiff>("verdict", Align::Left, |_, c| Cell {
        text: c.verdict.to_string(),
        tone: Tone::Verdict(c.verdict),
    }),
    dump_col::<CallsiteDiff>("span", |_, c| text(c.location.label.clone())),
    dump_col::<CallsiteDiff>("location", |_, c| text(c.location.source()))
        .shortens()
        .drops(3),
    col::<CallsiteDiff>("calls", Align::Right, |_, c| {
        new_value(&c.calls, units::count)
    })
    .drops(5),
    col::<CallsiteDiff>("busy total", Align::Right, |_, c| {
        new_value(&c.busy_total_ns, units::ns)
    })
    .drops(6),
    col::<CallsiteDiff>("self total", Align::Right, |_, c| {
        new_value(&c.self_total_ns, units::ns)
    })
    .drops(2),
    col::<CallsiteDiff>("mean busy (base -> new)", Align::Right, |_, c| {
        text(change(&c.busy_mean_ns, units::ns))
    }),
    col::<CallsiteDiff>("p50", Align::Right, |_, c| {
        new_value(&c.busy_p50_ns, units::ns)
    })
    .drops(4),
    col::<CallsiteDiff>("p99", Align::Right, |_, c| {
        new_value(&c.busy_p99_ns, units::ns)
    })
    .drops(1),
    col::<CallsiteDiff>("max", Align::Right, |_, c| {
        new_value(&c.busy_max_ns, units::ns)
    })
    .drops(5),
    col::<CallsiteDiff>("wait", Align::Right, |_, c| {
        c.idle_mean_ns
            .as_ref()
            .map_or_else(|| text("-"), |w| new_value(w, units::ns))
    })
    .drops(3),
    col::<CallsiteDiff>("alloc/call", Align::Right, |_, c| {
        c.alloc_bytes_per_call
            .as_ref()
            .map_or_else(|| text("-"), |a| new_value(a, units::bytes))
    })
    .drops(2),
    col::<CallsiteDiff>("live", Align::Right, |_, c| {
        c.live_bytes
            .as_ref()
            .map_or_else(|| text("-"), |a| new_value(a, units::bytes))
    })
    .drops(3),
];

/// The cells of `rows` under `columns`, one `Vec` per row.
pub(crate) fn cells<T>(columns: &[Column<T>], rows: &[T]) -> Vec<Vec<Cell>> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| columns.iter().map(|c| (c.cell)(i + 1, row)).collect())
        .collect()
}

/// A callsite's on-CPU share, marked `~` when it is partly estimated from
/// a sample of its short intervals (most of a long-lived async span's
/// polls are not timed).
fn on_cpu_cell(cpu: &crate::analyze::CpuRow) -> String {
    if cpu.measured_share < 0.95 {
        format!("~{}", units::pct(cpu.on_cpu_share))
    } else {
        units::pct(cpu.on_cpu_share)
    }
}
