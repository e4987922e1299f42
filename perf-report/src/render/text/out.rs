//! The text being built for a terminal: lines, wrapped paragraphs, headings
//! and tables fitted to the width, with colour where asked for.

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};
use owo_colors::OwoColorize;

use crate::analyze::Severity;
use crate::diff::Verdict;
use crate::render::RenderOptions;
use crate::render::outline::{self, Head};
use crate::render::table::{Align, Cell as TableCell, Tone};
use crate::sanitize::one_line;

/// Text from the dump, safe for a terminal.
pub(super) fn clean(s: &str) -> String {
    one_line(s).into_owned()
}

/// The output being built: its width, colour, and the lines so far.
pub(super) struct Out<'a> {
    pub(super) text: String,
    pub(super) opts: &'a RenderOptions,
}

impl<'a> Out<'a> {
    pub(super) fn new(opts: &'a RenderOptions) -> Self {
        Self {
            text: String::new(),
            opts,
        }
    }

    /// One line of prose (our words and cleaned names), wrapped to the
    /// width: the first line starts with `first`, the rest with `rest`.
    pub(super) fn para(&mut self, first: &str, rest: &str, body: &str) {
        match self.opts.width {
            Some(width) => {
                let options = textwrap::Options::new(width.max(20))
                    .initial_indent(first)
                    .subsequent_indent(rest);
                for line in textwrap::wrap(body, options) {
                    self.line(line.trim_end());
                }
            }
            None => {
                let line = format!("{first}{body}");
                self.line(&line);
            }
        }
    }

    pub(super) fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    pub(super) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// A heading with a plain tail, e.g. `FINDINGS  2 critical, …`.
    pub(super) fn heading_line(&mut self, title: &str, tail: &str) {
        let plain = if tail.is_empty() {
            title.to_owned()
        } else {
            format!("{title}  {tail}")
        };
        if self.fits(&plain) {
            let styled = if self.opts.color {
                title.bold().to_string()
            } else {
                title.to_owned()
            };
            let line = if tail.is_empty() {
                styled
            } else {
                format!("{styled}  {tail}")
            };
            self.line(&line);
        } else {
            self.para("", "  ", &plain);
        }
    }

    pub(super) fn dim(&mut self, s: &str) {
        if self.opts.color {
            let fitted: Vec<String> = match self.opts.width {
                Some(w) => textwrap::wrap(s, w.max(20))
                    .into_iter()
                    .map(|l| l.into_owned())
                    .collect(),
                None => vec![s.to_owned()],
            };
            for l in fitted {
                self.line(&l.dimmed().to_string());
            }
        } else {
            self.para("", "", s);
        }
    }

    pub(super) fn fits(&self, s: &str) -> bool {
        self.opts
            .width
            .is_none_or(|w| unicode_width::UnicodeWidthStr::width(s) <= w)
    }

    /// A table of `rows` under `columns`, with the least important columns
    /// dropped until it fits the width, and a note naming them.
    pub(super) fn fitted_table(&mut self, table: &outline::Table) {
        let columns = &table.heads;
        let rows = &table.rows;
        let mut shown: Vec<usize> = (0..columns.len()).collect();
        let mut hidden: Vec<usize> = Vec::new();
        let mut shrink = 0;
        let mut lines = render_table(self.opts, columns, &shown, rows, None, shrink);
        while let Some(width) = self.opts.width {
            if lines.iter().all(|l| self.fits(l)) {
                break;
            }
            // The least important column still shown, the rightmost first.
            let Some((at, _)) = shown
                .iter()
                .enumerate()
                .filter(|&(_, &c)| columns[c].drop_order > 0)
                .max_by_key(|&(i, &c)| (columns[c].drop_order, i))
            else {
                // Only columns that must stay: let comfy-table wrap cells.
                lines = render_table(self.opts, columns, &shown, rows, Some(width), shrink);
                break;
            };
            // A location is shortened, twice, before it is hidden.
            if columns[shown[at]].shortens && shrink < 2 {
                shrink += 1;
            } else {
                hidden.push(shown.remove(at));
            }
            lines = render_table(self.opts, columns, &shown, rows, None, shrink);
        }
        for l in lines {
            self.line(l.trim_end());
        }
        if let (false, Some(width)) = (hidden.is_empty(), self.opts.width) {
            // In the table's own order.
            hidden.sort_unstable();
            let names: Vec<&str> = hidden.iter().map(|&c| columns[c].header).collect();
            self.dim(&format!(
                "(hidden to fit {width} columns: {}; --width 0 shows all, and Markdown and JSON have every column)",
                names.join(", ")
            ));
        }
    }

    pub(super) fn severity(&self, sev: Severity, s: &str) -> String {
        if !self.opts.color {
            return s.to_owned();
        }
        match sev {
            Severity::Critical => s.red().bold().to_string(),
            Severity::High => s.red().to_string(),
            Severity::Medium => s.yellow().to_string(),
            Severity::Low => s.dimmed().to_string(),
        }
    }
}

/// No borders, one rule under the header: quiet enough for wide tables.
pub(super) const STYLE: &str = "     ──            ";

/// The lines of the `shown` columns' of a table; `wrap_to` lets comfy-table
/// wrap cells to that width; locations shortened `shrink` steps
/// ([`crate::callsite::shorter_source`]).
pub(super) fn render_table(
    opts: &RenderOptions,
    heads: &[Head],
    shown: &[usize],
    rows: &[Vec<TableCell>],
    wrap_to: Option<usize>,
    shrink: u8,
) -> Vec<String> {
    let mut t = Table::new();
    t.load_preset(STYLE);
    if opts.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    if let Some(width) = wrap_to {
        t.set_content_arrangement(ContentArrangement::Dynamic);
        t.set_width(u16::try_from(width).unwrap_or(u16::MAX));
    }
    t.set_header(
        shown
            .iter()
            .map(|&c| Cell::new(heads[c].header).add_attribute(Attribute::Bold)),
    );
    for (i, &column) in shown.iter().enumerate() {
        if let (Align::Right, Some(c)) = (heads[column].align, t.column_mut(i)) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    for row in rows {
        t.add_row(shown.iter().map(|&column| {
            let cell = &row[column];
            let text = if heads[column].shortens && shrink > 0 {
                crate::callsite::shorter_source(&cell.text, shrink)
            } else {
                cell.text.clone()
            };
            let c = Cell::new(clean(&text));
            match cell.tone {
                Tone::Plain => c,
                Tone::Severity(s) => severity_style(c, s),
                Tone::Verdict(v) => verdict_style(c, v),
            }
        }));
    }
    t.trim_fmt().lines().map(str::to_owned).collect()
}

pub(super) fn severity_style(c: Cell, sev: Severity) -> Cell {
    match sev {
        Severity::Critical => c.fg(Color::Red).add_attribute(Attribute::Bold),
        Severity::High => c.fg(Color::Red),
        Severity::Medium => c.fg(Color::Yellow),
        Severity::Low => c.add_attribute(Attribute::Dim),
    }
}

pub(super) fn verdict_style(c: Cell, v: Verdict) -> Cell {
    match v {
        Verdict::Regressed => c.fg(Color::Red).add_attribute(Attribute::Bold),
        Verdict::Mixed => c.fg(Color::Yellow),
        Verdict::Improved => c.fg(Color::Green),
        _ => c,
    }
}
