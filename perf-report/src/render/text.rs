//! The terminal renderer: aligned tables (comfy-table) and optional colour
//! (owo-colors for prose, comfy-table styling inside tables so widths stay
//! right), fitted to [`RenderOptions::width`]: prose is wrapped (textwrap)
//! and each table drops its least important columns until it fits, saying
//! which; Markdown and JSON keep everything.

use std::io;

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};
use owo_colors::OwoColorize;

use super::table::{self, Align, Column, Tone};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::{Analysis, Resource, Severity};
use crate::callsite::Subject;
use crate::diff::{Diff, Verdict};
use crate::plan::{Plan, Step};
use crate::sanitize::one_line;
use crate::units;

/// The terminal renderer.
#[derive(Debug)]
pub(super) struct Text;

impl Renderer for Text {
    fn report(
        &self,
        report: &Report,
        kind: ReportKind,
        opts: &RenderOptions,
        out: &mut dyn io::Write,
    ) -> io::Result<()> {
        out.write_all(render_report(report, kind, opts).as_bytes())
    }

    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render_diff(diff, opts).as_bytes())
    }
}

/// Text from the dump, safe for a terminal.
fn clean(s: &str) -> String {
    one_line(s).into_owned()
}

/// The output being built: its width, colour, and the lines so far.
struct Out<'a> {
    text: String,
    opts: &'a RenderOptions,
}

impl<'a> Out<'a> {
    fn new(opts: &'a RenderOptions) -> Self {
        Self {
            text: String::new(),
            opts,
        }
    }

    /// One line of prose (our words and cleaned names), wrapped to the
    /// width: the first line starts with `first`, the rest with `rest`.
    fn para(&mut self, first: &str, rest: &str, body: &str) {
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

    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// A heading with a plain tail, e.g. `FINDINGS  2 critical, …`.
    fn heading(&mut self, title: &str, tail: &str) {
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

    fn dim(&mut self, s: &str) {
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

    fn fits(&self, s: &str) -> bool {
        self.opts
            .width
            .is_none_or(|w| unicode_width::UnicodeWidthStr::width(s) <= w)
    }

    /// A table of `rows` under `columns`, with the least important columns
    /// dropped until it fits the width, and a note naming them.
    fn table<T>(&mut self, columns: &[Column<T>], rows: &[T]) {
        let mut shown: Vec<&Column<T>> = columns.iter().collect();
        let mut hidden: Vec<&Column<T>> = Vec::new();
        let mut lines = render_table(self.opts, &shown, rows, None);
        while let Some(width) = self.opts.width {
            if lines.iter().all(|l| self.fits(l)) {
                break;
            }
            // The least important column still shown, the rightmost first.
            let Some((at, _)) = shown
                .iter()
                .enumerate()
                .filter(|(_, c)| c.drop_order > 0)
                .max_by_key(|&(i, c)| (c.drop_order, i))
            else {
                // Only columns that must stay: let comfy-table wrap cells.
                lines = render_table(self.opts, &shown, rows, Some(width));
                break;
            };
            hidden.push(shown.remove(at));
            lines = render_table(self.opts, &shown, rows, None);
        }
        for l in lines {
            self.line(l.trim_end());
        }
        if let (false, Some(width)) = (hidden.is_empty(), self.opts.width) {
            // In the table's own order.
            let names: Vec<&str> = columns
                .iter()
                .filter(|c| hidden.iter().any(|h| std::ptr::eq(*h, *c)))
                .map(|c| c.header)
                .collect();
            self.dim(&format!(
                "(hidden to fit {width} columns: {}; --width 0 shows all, and Markdown and JSON have every column)",
                names.join(", ")
            ));
        }
    }

    fn more(&mut self, shown: usize, total: usize, what: &str) {
        if shown < total {
            self.dim(&format!(
                "({} more {what}; --top 0 shows all)",
                total - shown
            ));
        }
    }

    fn severity(&self, sev: Severity, s: &str) -> String {
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
const STYLE: &str = "     ──            ";

/// The table's lines; `wrap_to` lets comfy-table wrap cells to that width.
fn render_table<T>(
    opts: &RenderOptions,
    columns: &[&Column<T>],
    rows: &[T],
    wrap_to: Option<usize>,
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
        columns
            .iter()
            .map(|c| Cell::new(c.header).add_attribute(Attribute::Bold)),
    );
    for (i, column) in columns.iter().enumerate() {
        if let (Align::Right, Some(c)) = (column.align, t.column_mut(i)) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    for (n, row) in rows.iter().enumerate() {
        t.add_row(columns.iter().map(|column| {
            let cell = (column.cell)(n + 1, row);
            let c = Cell::new(clean(&cell.text));
            match cell.tone {
                Tone::Plain => c,
                Tone::Severity(s) => severity_style(c, s),
                Tone::Verdict(v) => verdict_style(c, v),
            }
        }));
    }
    t.trim_fmt().lines().map(str::to_owned).collect()
}

fn severity_style(c: Cell, sev: Severity) -> Cell {
    match sev {
        Severity::Critical => c.fg(Color::Red).add_attribute(Attribute::Bold),
        Severity::High => c.fg(Color::Red),
        Severity::Medium => c.fg(Color::Yellow),
        Severity::Low => c.add_attribute(Attribute::Dim),
    }
}

fn verdict_style(c: Cell, v: Verdict) -> Cell {
    match v {
        Verdict::Regressed => c.fg(Color::Red).add_attribute(Attribute::Bold),
        Verdict::Mixed => c.fg(Color::Yellow),
        Verdict::Improved => c.fg(Color::Green),
        _ => c,
    }
}

fn header(out: &mut Out<'_>, a: &Analysis) {
    let t = &a.totals;
    let cpu = match t.cpu_ns {
        Some(cpu) => format!(
            ", {} of CPU ({:.2} cores on average)",
            units::ns(cpu as f64),
            t.cpu_utilization
        ),
        None => String::new(),
    };
    let title = if out.opts.color {
        "perf-report".bold().to_string()
    } else {
        "perf-report".to_owned()
    };
    let body = format!(
        "{}: {} run, {} spans, {} of self time in spans{cpu}",
        clean(&a.program),
        units::ns(t.duration_ns as f64),
        units::count(t.calls as f64),
        units::ns(t.self_ns as f64),
    );
    if out.fits(&format!("perf-report {body}")) {
        out.line(&format!("{title} {body}"));
    } else {
        out.para("perf-report ", "  ", &body);
    }
}

fn counts(a: &Analysis) -> String {
    let n = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} critical, {} high, {} medium, {} low",
        n(Severity::Critical),
        n(Severity::High),
        n(Severity::Medium),
        n(Severity::Low)
    )
}

fn findings(out: &mut Out<'_>, a: &Analysis) {
    out.blank();
    out.heading("FINDINGS", &counts(a));
    if a.findings.is_empty() {
        out.para("", "", "No findings: nothing crossed a threshold.");
        return;
    }
    let shown = out.opts.limit(a.findings.len());
    out.table(table::FINDINGS, &a.findings[..shown]);
    out.more(shown, a.findings.len(), "findings");
}

fn plan_totals(plan: &Plan, a: &Analysis) -> String {
    let parts: Vec<String> = [
        (plan.total_time_gain, Resource::Time),
        (plan.total_wall_gain, Resource::WallTime),
        (plan.total_allocation_gain, Resource::Allocation),
        (plan.total_memory_gain, Resource::Memory),
    ]
    .into_iter()
    .filter(|&(gain, resource)| gain > 0.0 || resource == Resource::Time)
    .map(|(gain, resource)| format!("{} of {}", units::pct(gain), a.totals.share_of(resource)))
    .collect();
    parts.join(", ")
}

/// A step's title: `hot spot: name (file:line)`, or the class alone for a
/// process-wide step (its title names the process).
fn step_title(s: &Step) -> String {
    match &s.location {
        Some(_) => format!(
            "{}: {}",
            s.class.title(),
            clean(&Subject(s.location.as_ref()).to_string())
        ),
        None => s.class.title().to_owned(),
    }
}

fn plan_full(out: &mut Out<'_>, r: &Report) {
    let plan = &r.plan;
    out.blank();
    out.heading(
        "PLAN",
        &format!("estimated total gain: {}", plan_totals(plan, &r.analysis)),
    );
    if plan.steps.is_empty() {
        out.line("Nothing to do.");
        return;
    }
    const LABEL: &str = "               ";
    let shown = out.opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        out.blank();
        let tag = format!("[{} {:.1}]", s.severity, s.score);
        let title = step_title(s);
        let plain = format!("{}. {tag} {title}", s.rank);
        if out.fits(&plain) {
            let styled_title = if out.opts.color {
                title.bold().to_string()
            } else {
                title.clone()
            };
            let line = format!(
                "{}. {} {styled_title}",
                s.rank,
                out.severity(s.severity, &tag)
            );
            out.line(&line);
        } else {
            out.para("", "   ", &plain);
        }
        out.para("   why       ", &LABEL[..13], &clean(&s.summary));
        let evidence: Vec<String> = s.evidence.iter().map(ToString::to_string).collect();
        out.para("   evidence  ", &LABEL[..13], &clean(&evidence.join("; ")));
        out.para("   gain      ", &LABEL[..13], &clean(&s.gain.statement));
        out.para(
            "   effort    ",
            &LABEL[..13],
            &format!("complexity {}, risk {}", s.complexity, s.risk),
        );
        for (i, fix) in s.fixes.iter().enumerate() {
            let first = if i == 0 {
                "   fixes     - "
            } else {
                "             - "
            };
            out.para(first, LABEL, fix);
        }
        for (i, pre) in s.prerequisites.iter().enumerate() {
            let first = if i == 0 {
                "   first     - "
            } else {
                "             - "
            };
            out.para(first, LABEL, &clean(pre));
        }
        for (i, v) in s.validation.iter().enumerate() {
            let label = if i == 0 { "validate" } else { "" };
            let first = format!("   {label:<9} {}. ", i + 1);
            let rest = " ".repeat(first.len());
            out.para(&first, &rest, &clean(v));
        }
    }
    out.more(shown, plan.steps.len(), "steps");
}

fn plan_short(out: &mut Out<'_>, r: &Report) {
    let plan = &r.plan;
    out.blank();
    out.heading(
        "PLAN",
        &format!("estimated total gain: {}", plan_totals(plan, &r.analysis)),
    );
    let shown = out.opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        let body = format!(
            "[{}] {}: {} (complexity {}, risk {})",
            s.severity,
            step_title(s),
            clean(&s.gain.statement),
            s.complexity,
            s.risk
        );
        out.para(&format!("{:>3}. ", s.rank), "     ", &body);
    }
    out.more(shown, plan.steps.len(), "steps");
}

fn callsites(out: &mut Out<'_>, a: &Analysis) {
    let shown = out.opts.limit(a.callsites.len());
    out.blank();
    out.heading(
        "CALLSITES",
        &format!("{} of {} by self time", shown, a.callsites.len()),
    );
    if a.callsites.is_empty() {
        return;
    }
    out.table(table::CALLSITES, &a.callsites[..shown]);
    out.dim(
        "times are busy time per call unless named self; alloc is self-allocated; rss Δ/call is process RSS at close minus at open, as coarse as the sampler",
    );
}

fn process(out: &mut Out<'_>, a: &Analysis) {
    let pr = &a.process;
    if pr.samples == 0 {
        return;
    }
    let trend = pr.rss_trend.map_or_else(String::new, |f| {
        format!(", trend {}/s (R² {:.2})", units::bytes(f.slope), f.r2)
    });
    let cores = pr
        .cores
        .map_or_else(String::new, |n| format!(", of {n} cores"));
    let mut machine = Vec::new();
    if let Some(psi) = pr.cpu_pressure_mean_percent {
        machine.push(format!("CPU pressure {psi:.0}%"));
    }
    if let Some(steal) = pr.steal_mean_percent {
        machine.push(format!("steal {steal:.0}%"));
    }
    if let Some(switches) = pr.involuntary_switches_per_s {
        machine.push(format!("{} preemptions/s", units::count(switches)));
    }
    let mut resources = format!("{} threads", pr.threads_max);
    if let Some(fds) = pr.open_fds_max {
        resources.push_str(&format!(", {fds} open files"));
    }
    out.blank();
    out.heading(
        "PROCESS",
        &format!(
            "{} samples; RSS {} -> {} (median {}, peak {}{}); CPU mean {:.0}%, max {:.0}% (100% is one core{cores}){}; at most {resources}; alerts: {} CPU, {} RSS",
            pr.samples,
            units::bytes(pr.rss_first_bytes as f64),
            units::bytes(pr.rss_last_bytes as f64),
            units::bytes(pr.rss_median_bytes as f64),
            units::bytes(pr.rss_peak_bytes as f64),
            trend,
            pr.cpu_mean_percent,
            pr.cpu_max_percent,
            if machine.is_empty() {
                String::new()
            } else {
                format!("; {}", machine.join(", "))
            },
            pr.cpu_alerts,
            pr.rss_alerts
        ),
    );
}

fn notes(out: &mut Out<'_>, a: &Analysis) {
    if a.notes.is_empty() {
        return;
    }
    out.blank();
    out.heading("NOTES", "");
    for n in &a.notes {
        out.para(" - ", "   ", &clean(n));
    }
}

fn weights(out: &mut Out<'_>, r: &Report) {
    let a = &r.analysis;
    let w = &r.config.weights;
    out.blank();
    out.heading(
        "SESSION WEIGHTS",
        &format!(
            "weight = {:.0}% CPU (self time) + {:.0}% memory (allocated bytes) + {:.0}% frequency (calls), each over the largest of any span",
            w.cpu * 100.0,
            w.memory * 100.0,
            w.frequency * 100.0
        ),
    );
    let shown = out.opts.limit(a.weights.len());
    out.table(table::WEIGHTS, &a.weights[..shown]);
    out.more(shown, a.weights.len(), "spans");
    if a.totals.self_alloc_bytes.is_none() {
        out.dim(
            "allocation was not tracked: the memory weight is shared out between CPU and frequency",
        );
    }
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let a = &r.analysis;
    let mut out = Out::new(opts);
    header(&mut out, a);
    match kind {
        ReportKind::Full => {
            findings(&mut out, a);
            plan_full(&mut out, r);
            callsites(&mut out, a);
            process(&mut out, a);
            notes(&mut out, a);
        }
        ReportKind::Summary => {
            findings(&mut out, a);
            plan_short(&mut out, r);
            notes(&mut out, a);
        }
        ReportKind::Weight => weights(&mut out, r),
    }
    out.text
}

fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    let mut out = Out::new(opts);
    let title = if opts.color {
        "perf-report diff".bold().to_string()
    } else {
        "perf-report diff".to_owned()
    };
    let body = format!(
        "base {} -> new {}: self time in spans {}",
        clean(&d.base_program),
        clean(&d.new_program),
        table::change(&d.total_self_ns, units::ns)
    );
    if out.fits(&format!("perf-report diff {body}")) {
        out.line(&format!("{title} {body}"));
    } else {
        out.para("perf-report diff ", "  ", &body);
    }
    out.para(
        "",
        "",
        &format!(
            "{} regressed, {} mixed, {} improved, {} unchanged, {} added, {} removed (noise threshold ±{:.0}%, KS α {})",
            d.count(Verdict::Regressed),
            d.count(Verdict::Mixed),
            d.count(Verdict::Improved),
            d.count(Verdict::Unchanged),
            d.count(Verdict::Added),
            d.count(Verdict::Removed),
            d.options.threshold * 100.0,
            d.options.alpha
        ),
    );
    if d.callsites.is_empty() {
        return out.text;
    }
    let shown = opts.limit(d.callsites.len());
    out.blank();
    out.table(table::DIFF, &d.callsites[..shown]);
    out.dim("cells show the new value and its change from the base");
    out.more(shown, d.callsites.len(), "callsites");
    let notable: Vec<_> = d.callsites[..shown]
        .iter()
        .filter(|c| {
            matches!(
                c.verdict,
                Verdict::Regressed | Verdict::Mixed | Verdict::Improved
            )
        })
        .collect();
    if !notable.is_empty() {
        out.blank();
        out.heading("WHY", "");
        for c in notable {
            out.para(
                " - ",
                "   ",
                &format!(
                    "{} {}: {}",
                    c.verdict,
                    clean(&c.location.label),
                    clean(&c.reason)
                ),
            );
        }
    }
    out.text
}
