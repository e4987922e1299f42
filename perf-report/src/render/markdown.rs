//! The Markdown renderer: GitHub-flavoured tables that paste into a pull
//! request. Everything taken from a dump goes through [`escape`].

use std::fmt::Write as _;

use super::{RenderOptions, ReportKind};
use crate::Report;
use crate::analyze::{Analysis, Location};
use crate::diff::{Change, Diff, Verdict};
use crate::units;

/// Escapes text from a dump for a Markdown table cell or paragraph: the
/// table separator `|`, code and emphasis markers, links, HTML and line
/// breaks cannot survive, so a hostile span name renders as itself.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            // `(`, `)` and `!` are harmless once `[` and `]` are escaped.
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn loc(l: &Location) -> String {
    format!("{} ({})", escape(&l.name), escape(&l.source()))
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

/// A table header; columns whose index is in `right` are right-aligned.
fn head(out: &mut String, cells: &[&str], right: &[usize]) {
    row(
        out,
        &cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
    );
    let seps: Vec<String> = (0..cells.len())
        .map(|i| if right.contains(&i) { "---:" } else { "---" }.to_owned())
        .collect();
    row(out, &seps);
}

fn more(out: &mut String, shown: usize, total: usize, what: &str) {
    if shown < total {
        let _ = writeln!(out, "\n_{} more {what} not shown._", total - shown);
    }
}

fn title(out: &mut String, a: &Analysis) {
    let _ = writeln!(
        out,
        "## perf-report: {}\n\n{} run, {} spans, {} of self time in spans.",
        escape(&a.program),
        units::ns(a.totals.duration_ns as f64),
        units::count(a.totals.calls as f64),
        units::ns(a.totals.self_ns as f64)
    );
}

fn findings(out: &mut String, a: &Analysis, opts: &RenderOptions) {
    let _ = writeln!(out, "\n### Findings\n");
    if a.findings.is_empty() {
        let _ = writeln!(out, "No findings: nothing crossed a threshold.");
        return;
    }
    head(
        out,
        &["#", "severity", "score", "class", "where", "summary"],
        &[0, 2],
    );
    let shown = opts.limit(a.findings.len());
    for (i, f) in a.findings[..shown].iter().enumerate() {
        row(
            out,
            &[
                (i + 1).to_string(),
                format!("**{}**", f.severity),
                format!("{:.1}", f.score),
                f.class.title().to_owned(),
                f.location
                    .as_ref()
                    .map_or_else(|| "process".to_owned(), loc),
                escape(&f.summary),
            ],
        );
    }
    more(out, shown, a.findings.len(), "findings");
}

fn plan(out: &mut String, r: &Report, opts: &RenderOptions, full: bool) {
    let p = &r.plan;
    let _ = writeln!(
        out,
        "\n### Plan\n\nEstimated total gain: **{}** of self time, {} of wall time, {} of allocated bytes, {} of peak memory.",
        units::pct(p.total_time_gain),
        units::pct(p.total_wall_gain),
        units::pct(p.total_allocation_gain),
        units::pct(p.total_memory_gain)
    );
    let shown = opts.limit(p.steps.len());
    for s in &p.steps[..shown] {
        let target = s
            .location
            .as_ref()
            .map_or_else(|| "the process".to_owned(), loc);
        if !full {
            let _ = writeln!(
                out,
                "{}. **{}** {}: {}: {} (complexity {}, risk {})",
                s.rank,
                s.severity,
                s.class.title(),
                target,
                code_safe(&s.gain.statement, s.location.as_ref()),
                s.complexity,
                s.risk
            );
            continue;
        }
        let _ = writeln!(
            out,
            "\n#### {}. {}: {}\n\n**{}**, score {:.1}; complexity {}, risk {}.\n\n- **Why:** {}\n- **Evidence:** {}\n- **Gain:** {}",
            s.rank,
            s.class.title(),
            target,
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
            let raw = format!("`{}`", l.name);
            let parts: Vec<&str> = text.split(raw.as_str()).collect();
            let safe_name = escape(&l.name);
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
    head(
        out,
        &[
            "span",
            "location",
            "calls",
            "self",
            "self %",
            "mean",
            "p50",
            "p99",
            "max",
            "idle %",
            "alloc/call",
            "net kept",
        ],
        &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    for c in &a.callsites[..shown] {
        let (apc, net) = match &c.alloc {
            Some(al) => (
                units::bytes(al.self_bytes_per_call),
                units::bytes(al.net_retained_bytes as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        row(
            out,
            &[
                escape(&c.location.name),
                escape(&c.location.source()),
                units::count(c.calls as f64),
                units::ns(c.self_total_ns as f64),
                units::pct(c.self_share),
                units::ns(c.busy_mean_ns),
                units::ns(c.busy_p50_ns as f64),
                units::ns(c.busy_p99_ns as f64),
                units::ns(c.busy_max_ns as f64),
                units::pct(c.idle_share),
                apc,
                net,
            ],
        );
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
        "\n### Session weights\n\nweight = {:.0}% CPU + {:.0}% memory + {:.0}% frequency.\n",
        w.cpu * 100.0,
        w.memory * 100.0,
        w.frequency * 100.0
    );
    head(
        out,
        &[
            "#",
            "span",
            "location",
            "weight",
            "cpu",
            "memory",
            "frequency",
        ],
        &[0, 3, 4, 5, 6],
    );
    let shown = opts.limit(a.weights.len());
    for (i, row_) in a.weights[..shown].iter().enumerate() {
        row(
            out,
            &[
                (i + 1).to_string(),
                escape(&row_.location.name),
                escape(&row_.location.source()),
                format!("{:.1}", row_.weight),
                units::pct(row_.cpu_share),
                row_.memory_share.map_or_else(|| "-".to_owned(), units::pct),
                units::pct(row_.frequency_share),
            ],
        );
    }
    more(out, shown, a.weights.len(), "spans");
}

pub(super) fn report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let a = &r.analysis;
    let mut out = String::new();
    title(&mut out, a);
    match kind {
        ReportKind::Full => {
            findings(&mut out, a, opts);
            plan(&mut out, r, opts, true);
            callsites(&mut out, a, opts);
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

fn change(c: &Change, f: fn(f64) -> String) -> String {
    match c.relative {
        Some(r) => format!("{} → {} ({})", f(c.base), f(c.new), units::change(r)),
        None => format!("{} → {}", f(c.base), f(c.new)),
    }
}

pub(super) fn diff(d: &Diff, opts: &RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## perf-report diff: {} → {}\n\nSelf time in spans {}. **{}** regressed, **{}** improved, {} unchanged, {} added, {} removed (noise threshold ±{:.0}%).\n",
        escape(&d.base_program),
        escape(&d.new_program),
        change(&d.total_self_ns, units::ns),
        d.count(Verdict::Regressed),
        d.count(Verdict::Improved),
        d.count(Verdict::Unchanged),
        d.count(Verdict::Added),
        d.count(Verdict::Removed),
        d.options.threshold * 100.0
    );
    if d.callsites.is_empty() {
        return out;
    }
    head(
        &mut out,
        &[
            "verdict",
            "span",
            "location",
            "calls",
            "busy total",
            "self total",
            "mean busy",
            "p50",
            "p99",
            "max",
            "alloc/call",
            "why",
        ],
        &[3, 4, 5, 6, 7, 8, 9, 10],
    );
    let shown = opts.limit(d.callsites.len());
    for c in &d.callsites[..shown] {
        let v = match c.verdict {
            Verdict::Regressed | Verdict::Improved => format!("**{}**", c.verdict),
            v => v.to_string(),
        };
        row(
            &mut out,
            &[
                v,
                escape(&c.location.name),
                escape(&c.location.source()),
                change(&c.calls, units::count),
                change(&c.busy_total_ns, units::ns),
                change(&c.self_total_ns, units::ns),
                change(&c.busy_mean_ns, units::ns),
                change(&c.busy_p50_ns, units::ns),
                change(&c.busy_p99_ns, units::ns),
                change(&c.busy_max_ns, units::ns),
                c.alloc_bytes_per_call
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |a| change(a, units::bytes)),
                escape(&c.reason),
            ],
        );
    }
    more(&mut out, shown, d.callsites.len(), "callsites");
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
