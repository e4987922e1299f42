//! The Markdown renderer: GitHub-flavoured tables that paste into a pull
//! request. Everything taken from a dump goes through [`escape`].

use std::fmt::Write as _;
use std::io;

use super::table::{self, Align, Column, Tone};
use super::{RenderOptions, Renderer, ReportKind, wording};
use crate::Report;
use crate::analyze::Analysis;
use crate::callsite::Location;
use crate::diff::{Diff, Verdict};
use crate::sanitize::one_line;
use crate::units;

/// The Markdown renderer.
#[derive(Debug)]
pub(super) struct Markdown;

impl Renderer for Markdown {
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

/// Escapes text from a dump for a Markdown table cell or paragraph: the
/// table separator `|`, code and emphasis markers, links, HTML and line
/// breaks cannot survive, so a hostile span name renders as itself.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            // `(`, `)` and `!` are harmless once `[` and `]` are escaped.
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

fn loc(l: &Location) -> String {
    format!("{} ({})", escape(&l.label), escape(&l.source()))
}

fn row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        out.push(' ');
        out.push_str(c);
        out.push_str(" |");
    }
    out.push('\n');
}

/// A table of `rows` under the shared `columns`.
fn table<T>(out: &mut String, columns: &[Column<T>], rows: &[T]) {
    row(
        out,
        &columns
            .iter()
            .map(|c| c.header.to_owned())
            .collect::<Vec<_>>(),
    );
    let seps: Vec<String> = columns
        .iter()
        .map(|c| match c.align {
            Align::Left => "---".to_owned(),
            Align::Right => "---:".to_owned(),
        })
        .collect();
    row(out, &seps);
    for cells in table::cells(columns, rows) {
        let cells: Vec<String> = cells
            .into_iter()
            .zip(columns)
            .map(|(cell, column)| {
                // Our own text never holds Markdown; the dump's is escaped.
                let text = if column.from_dump {
                    escape(&cell.text)
                } else {
                    cell.text
                };
                match cell.tone {
                    Tone::Severity(_) | Tone::Verdict(Verdict::Regressed | Verdict::Improved) => {
                        format!("**{text}**")
                    }
                    _ => text,
                }
            })
            .collect();
        row(out, &cells);
    }
}

fn more(out: &mut String, shown: usize, total: usize, what: &str) {
    if shown < total {
        let _ = writeln!(out, "\n_{} more {what} not shown._", total - shown);
    }
}

fn title(out: &mut String, a: &Analysis) {
    let _ = writeln!(
        out,
        "## perf-report: {}\n\n{}.",
        escape(&a.program),
        wording::run_summary(a)
    );
}

fn findings(out: &mut String, a: &Analysis, opts: &RenderOptions) {
    let _ = writeln!(out, "\n### Findings\n");
    if a.findings.is_empty() {
        let _ = writeln!(out, "No findings: nothing crossed a threshold.");
        return;
    }
    let shown = opts.limit(a.findings.len());
    table(out, table::FINDINGS, &a.findings[..shown]);
    more(out, shown, a.findings.len(), "findings");
}

fn plan(out: &mut String, r: &Report, opts: &RenderOptions, full: bool) {
    let p = &r.plan;
    let _ = writeln!(
        out,
        "\n### Plan\n\nEstimated total gain: {}.",
        wording::plan_totals(p, &r.analysis)
    );
    let shown = opts.limit(p.steps.len());
    for s in &p.steps[..shown] {
        // A process-wide step's title already names the process.
        let title = match &s.location {
            Some(l) => format!("{}: {}", s.class.title(), loc(l)),
            None => s.class.title().to_owned(),
        };
        if !full {
            let _ = writeln!(
                out,
                "{}. **{}** {}: {} (complexity {}, risk {})",
                s.rank,
                s.severity,
                title,
                code_safe(&s.gain.statement, s.location.as_ref()),
                s.complexity,
                s.risk
            );
            continue;
        }
        let _ = writeln!(
            out,
            "\n#### {}. {}\n\n**{}**, score {:.1}; complexity {}, risk {}.\n\n- **Why:** {}\n- **Evidence:** {}\n- **Gain:** {}",
            s.rank,
            title,
            s.severity,
            s.score,
            s.complexity,
            s.risk,
            escape(&s.summary),
            s.evidence
                .iter()
                .map(|e| escape(&e.to_string()))
                .collect::<Vec<_>>()
                .join("; "),
            code_safe(&s.gain.statement, s.location.as_ref())
        );
        let _ = writeln!(out, "- **Fixes:**");
        for f in &s.fixes {
            // Our own text: its backticks are meant as code.
            let _ = writeln!(out, "  - {f}");
        }
        let _ = writeln!(out, "- **First:**");
        for f in &s.prerequisites {
            let _ = writeln!(out, "  - {}", code_safe(f, s.location.as_ref()));
        }
        let _ = writeln!(out, "- **Validate:**");
        for (i, v) in s.validation.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, code_safe(v, s.location.as_ref()));
        }
    }
    more(out, shown, p.steps.len(), "steps");
}

/// Plan text embeds the span name inside backticks; rebuild such sentences
/// so the name is escaped rather than trusted.
fn code_safe(text: &str, location: Option<&Location>) -> String {
    match location {
        Some(l) => {
            let raw = format!("`{}`", l.label);
            let parts: Vec<&str> = text.split(raw.as_str()).collect();
            let safe_name = escape(&l.label);
            parts
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(&format!("**{safe_name}**"))
        }
        None => text.to_owned(),
    }
}

fn callsites(out: &mut String, a: &Analysis, opts: &RenderOptions) {
    let shown = opts.limit(a.callsites.len());
    let _ = writeln!(
        out,
        "\n### Callsites\n\n{} of {} by self time; busy time per call unless named self.\n",
        shown,
        a.callsites.len()
    );
    if a.callsites.is_empty() {
        return;
    }
    table(out, table::CALLSITES, &a.callsites[..shown]);
}

fn process(out: &mut String, a: &Analysis) {
    if let Some(line) = wording::process_line(a) {
        let _ = writeln!(out, "\n### Process\n\n{}.", escape(&line));
    }
}

fn notes(out: &mut String, a: &Analysis) {
    if a.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Notes\n");
    for n in &a.notes {
        let _ = writeln!(out, "- {}", escape(n));
    }
}

fn weights(out: &mut String, r: &Report, opts: &RenderOptions) {
    let a = &r.analysis;
    let w = &r.config.weights;
    let _ = writeln!(
        out,
        "\n### Session weights\n\nweight = {:.0}% CPU (self time) + {:.0}% memory (allocated bytes) + {:.0}% frequency (calls), each over the largest of any span.\n",
        w.cpu * 100.0,
        w.memory * 100.0,
        w.frequency * 100.0
    );
    let shown = opts.limit(a.weights.len());
    table(out, table::WEIGHTS, &a.weights[..shown]);
    more(out, shown, a.weights.len(), "spans");
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let a = &r.analysis;
    let mut out = String::new();
    title(&mut out, a);
    match kind {
        ReportKind::Full => {
            findings(&mut out, a, opts);
            plan(&mut out, r, opts, true);
            callsites(&mut out, a, opts);
            process(&mut out, a);
            notes(&mut out, a);
        }
        ReportKind::Summary => {
            findings(&mut out, a, opts);
            plan(&mut out, r, opts, false);
            notes(&mut out, a);
        }
        ReportKind::Weight => weights(&mut out, r, opts),
    }
    out
}

fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## perf-report diff: {} → {}\n\nSelf time in spans {}. {}.\n",
        escape(&d.base_program),
        escape(&d.new_program),
        table::change(&d.total_self_ns, units::ns),
        wording::diff_counts(d)
    );
    if d.callsites.is_empty() {
        return out;
    }
    let shown = opts.limit(d.callsites.len());
    table(&mut out, table::DIFF, &d.callsites[..shown]);
    let _ = writeln!(
        out,
        "\nCells show the new value and its change from the base."
    );
    more(&mut out, shown, d.callsites.len(), "callsites");
    let notable: Vec<_> = d.callsites[..shown]
        .iter()
        .filter(|c| c.verdict.is_change())
        .collect();
    if !notable.is_empty() {
        let _ = writeln!(out, "\n### Why\n");
        for c in notable {
            let _ = writeln!(
                out,
                "- **{}** {}: {}",
                c.verdict,
                escape(&c.location.label),
                escape(&c.reason)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn hostile_names_cannot_break_a_table_or_inject_markup() {
        let s = escape("a|b`c`*d*_e_[f](g)<img src=x>\nrow");
        assert!(!s.contains('\n'));
        assert!(!s.contains('<') && !s.contains('>'));
        // Every `|` is escaped.
        assert_eq!(s.matches('|').count(), s.matches("\\|").count());
        assert_eq!(s.matches('`').count(), s.matches("\\`").count());
        assert_eq!(s.matches('[').count(), s.matches("\\[").count());
        assert!(s.contains("&lt;img"));
    }
}
