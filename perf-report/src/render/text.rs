//! The terminal renderer: aligned tables (comfy-table) and optional colour
//! (owo-colors for prose, comfy-table styling inside tables so widths stay
//! right).

use std::fmt::Write as _;
use std::io;

use comfy_table::{Attribute, Cell, CellAlignment, Color, Table};
use owo_colors::OwoColorize;

use super::table::{self, Align, Column, Tone};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::{Analysis, Severity};
use crate::diff::{Diff, Verdict};
use crate::plan::Plan;
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

struct Paint {
    on: bool,
}

impl Paint {
    fn heading(&self, s: &str) -> String {
        if self.on {
            s.bold().to_string()
        } else {
            s.to_owned()
        }
    }

    fn severity(&self, sev: Severity, s: &str) -> String {
        if !self.on {
            return s.to_owned();
        }
        match sev {
            Severity::Critical => s.red().bold().to_string(),
            Severity::High => s.red().to_string(),
            Severity::Medium => s.yellow().to_string(),
            Severity::Low => s.dimmed().to_string(),
        }
    }

    fn dim(&self, s: &str) -> String {
        if self.on {
            s.dimmed().to_string()
        } else {
            s.to_owned()
        }
    }
}

/// No borders, one rule under the header: quiet enough for wide tables.
const STYLE: &str = "     ──            ";

/// A comfy-table of `rows` under the shared `columns`.
fn table<T>(opts: &RenderOptions, columns: &[Column<T>], rows: &[T]) -> Table {
    let mut t = Table::new();
    t.load_preset(STYLE);
    if opts.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
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
    for row in table::cells(columns, rows) {
        t.add_row(row.into_iter().map(|cell| {
            let c = Cell::new(clean(&cell.text));
            match cell.tone {
                Tone::Plain => c,
                Tone::Severity(s) => severity_style(c, s),
                Tone::Verdict(v) => verdict_style(c, v),
            }
        }));
    }
    t
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
        Verdict::Improved => c.fg(Color::Green),
        _ => c,
    }
}

fn push_table(out: &mut String, t: &Table) {
    for line in t.trim_fmt().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn header(out: &mut String, a: &Analysis, p: &Paint) {
    let _ = writeln!(
        out,
        "{} {}: {} run, {} spans, {} of self time in spans",
        p.heading("perf-report"),
        clean(&a.program),
        units::ns(a.totals.duration_ns as f64),
        units::count(a.totals.calls as f64),
        units::ns(a.totals.self_ns as f64),
    );
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

fn more(out: &mut String, shown: usize, total: usize, what: &str, p: &Paint) {
    if shown < total {
        let _ = writeln!(
            out,
            "{}",
            p.dim(&format!(
                "({} more {what}; --top 0 shows all)",
                total - shown
            ))
        );
    }
}

fn findings(out: &mut String, a: &Analysis, opts: &RenderOptions, p: &Paint) {
    let _ = writeln!(out, "\n{}  {}", p.heading("FINDINGS"), counts(a));
    if a.findings.is_empty() {
        let _ = writeln!(out, "No findings: nothing crossed a threshold.");
        return;
    }
    let shown = opts.limit(a.findings.len());
    push_table(out, &table(opts, table::FINDINGS, &a.findings[..shown]));
    more(out, shown, a.findings.len(), "findings", p);
}

fn plan_totals(plan: &Plan) -> String {
    let mut parts = vec![format!("{} of self time", units::pct(plan.total_time_gain))];
    if plan.total_wall_gain > 0.0 {
        parts.push(format!("{} of wall time", units::pct(plan.total_wall_gain)));
    }
    if plan.total_allocation_gain > 0.0 {
        parts.push(format!(
            "{} of allocated bytes",
            units::pct(plan.total_allocation_gain)
        ));
    }
    if plan.total_memory_gain > 0.0 {
        parts.push(format!(
            "{} of peak memory",
            units::pct(plan.total_memory_gain)
        ));
    }
    parts.join(", ")
}

fn plan_heading(out: &mut String, plan: &crate::Plan, p: &Paint) {
    let _ = writeln!(
        out,
        "\n{}  estimated total gain: {}",
        p.heading("PLAN"),
        plan_totals(plan)
    );
}

/// A step's target as `name (file:line)`, or the process for process-level steps.
fn step_target(s: &crate::plan::Step) -> String {
    clean(&crate::callsite::Subject(s.location.as_ref()).to_string())
}

fn plan_full(out: &mut String, r: &Report, opts: &RenderOptions, p: &Paint) {
    let plan = &r.plan;
    plan_heading(out, plan, p);
    if plan.steps.is_empty() {
        let _ = writeln!(out, "Nothing to do.");
        return;
    }
    let shown = opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        let target = step_target(s);
        let _ = writeln!(
            out,
            "\n{}. {} {}: {}",
            s.rank,
            p.severity(s.severity, &format!("[{} {:.1}]", s.severity, s.score)),
            s.class.title(),
            p.heading(&target)
        );
        let _ = writeln!(out, "   why       {}", clean(&s.summary));
        let evidence: Vec<String> = s.evidence.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "   evidence  {}", evidence.join("; "));
        let _ = writeln!(out, "   gain      {}", clean(&s.gain.statement));
        let _ = writeln!(
            out,
            "   effort    complexity {}, risk {}",
            s.complexity, s.risk
        );
        for (i, fix) in s.fixes.iter().enumerate() {
            let label = if i == 0 { "fixes" } else { "" };
            let _ = writeln!(out, "   {label:<9} - {fix}");
        }
        for (i, pre) in s.prerequisites.iter().enumerate() {
            let label = if i == 0 { "first" } else { "" };
            let _ = writeln!(out, "   {label:<9} - {}", clean(pre));
        }
        for (i, v) in s.validation.iter().enumerate() {
            let label = if i == 0 { "validate" } else { "" };
            let _ = writeln!(out, "   {label:<9} {}. {}", i + 1, clean(v));
        }
    }
    more(out, shown, plan.steps.len(), "steps", p);
}

fn plan_short(out: &mut String, r: &Report, opts: &RenderOptions, p: &Paint) {
    let plan = &r.plan;
    plan_heading(out, plan, p);
    let shown = opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        let target = step_target(s);
        let _ = writeln!(
            out,
            "{:>3}. {} {} {}: {} (complexity {}, risk {})",
            s.rank,
            p.severity(s.severity, &format!("[{}]", s.severity)),
            s.class.title(),
            target,
            clean(&s.gain.statement),
            s.complexity,
            s.risk
        );
    }
    more(out, shown, plan.steps.len(), "steps", p);
}

fn callsites(out: &mut String, a: &Analysis, opts: &RenderOptions, p: &Paint) {
    let shown = opts.limit(a.callsites.len());
    let _ = writeln!(
        out,
        "\n{}  {} of {} by self time",
        p.heading("CALLSITES"),
        shown,
        a.callsites.len()
    );
    if a.callsites.is_empty() {
        return;
    }
    push_table(out, &table(opts, table::CALLSITES, &a.callsites[..shown]));
    let _ = writeln!(
        out,
        "{}",
        p.dim("times are busy time per call unless named self; alloc is self-allocated")
    );
}

fn process(out: &mut String, a: &Analysis, p: &Paint) {
    let pr = &a.process;
    if pr.samples == 0 {
        return;
    }
    let trend = pr.rss_trend.map_or_else(String::new, |f| {
        format!(", trend {}/s (R² {:.2})", units::bytes(f.slope), f.r2)
    });
    let _ = writeln!(
        out,
        "\n{}  {} samples; RSS {} -> {} (median {}, peak {}{}); CPU mean {:.0}%, max {:.0}%; alerts: {} CPU, {} RSS",
        p.heading("PROCESS"),
        pr.samples,
        units::bytes(pr.rss_first_bytes as f64),
        units::bytes(pr.rss_last_bytes as f64),
        units::bytes(pr.rss_median_bytes as f64),
        units::bytes(pr.rss_peak_bytes as f64),
        trend,
        pr.cpu_mean_percent,
        pr.cpu_max_percent,
        pr.cpu_alerts,
        pr.rss_alerts
    );
}

fn notes(out: &mut String, a: &Analysis, p: &Paint) {
    if a.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", p.heading("NOTES"));
    for n in &a.notes {
        let _ = writeln!(out, " - {}", clean(n));
    }
}

fn weights(out: &mut String, r: &Report, opts: &RenderOptions, p: &Paint) {
    let a = &r.analysis;
    let w = &r.config.weights;
    let _ = writeln!(
        out,
        "\n{}  weight = {:.0}% CPU (self-time share) + {:.0}% memory (allocated-bytes share) + {:.0}% frequency (call share)",
        p.heading("SESSION WEIGHTS"),
        w.cpu * 100.0,
        w.memory * 100.0,
        w.frequency * 100.0
    );
    let shown = opts.limit(a.weights.len());
    push_table(out, &table(opts, table::WEIGHTS, &a.weights[..shown]));
    more(out, shown, a.weights.len(), "spans", p);
    if a.totals.self_alloc_bytes.is_none() {
        let _ = writeln!(
            out,
            "{}",
            p.dim("allocation was not tracked: the memory weight is shared out between CPU and frequency")
        );
    }
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let p = Paint { on: opts.color };
    let a = &r.analysis;
    let mut out = String::new();
    header(&mut out, a, &p);
    match kind {
        ReportKind::Full => {
            findings(&mut out, a, opts, &p);
            plan_full(&mut out, r, opts, &p);
            callsites(&mut out, a, opts, &p);
            process(&mut out, a, &p);
            notes(&mut out, a, &p);
        }
        ReportKind::Summary => {
            findings(&mut out, a, opts, &p);
            plan_short(&mut out, r, opts, &p);
            notes(&mut out, a, &p);
        }
        ReportKind::Weight => weights(&mut out, r, opts, &p),
    }
    out
}

fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    let p = Paint { on: opts.color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} base {} -> new {}: self time in spans {}",
        p.heading("perf-report diff"),
        clean(&d.base_program),
        clean(&d.new_program),
        table::change(&d.total_self_ns, units::ns)
    );
    let _ = writeln!(
        out,
        "{} regressed, {} improved, {} unchanged, {} added, {} removed (noise threshold ±{:.0}%, KS α {})",
        d.count(Verdict::Regressed),
        d.count(Verdict::Improved),
        d.count(Verdict::Unchanged),
        d.count(Verdict::Added),
        d.count(Verdict::Removed),
        d.options.threshold * 100.0,
        d.options.alpha
    );
    if d.callsites.is_empty() {
        return out;
    }
    let shown = opts.limit(d.callsites.len());
    let t = table(opts, table::DIFF, &d.callsites[..shown]);
    out.push('\n');
    push_table(&mut out, &t);
    let _ = writeln!(
        out,
        "{}",
        p.dim("cells show the new value and its change from the base")
    );
    more(&mut out, shown, d.callsites.len(), "callsites", &p);
    let notable: Vec<_> = d.callsites[..shown]
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Regressed | Verdict::Improved))
        .collect();
    if !notable.is_empty() {
        let _ = writeln!(out, "\n{}", p.heading("WHY"));
        for c in notable {
            let _ = writeln!(
                out,
                " - {} {}: {}",
                c.verdict,
                clean(&c.location.name),
                clean(&c.reason)
            );
        }
    }
    out
}
