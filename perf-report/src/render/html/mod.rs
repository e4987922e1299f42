//! The HTML renderer: one self-contained page per report or diff, for a
//! browser or a CI artifact. It shows what the text report shows (the
//! header, findings, plan, callsites, process and notes; the session
//! weights; the diff and its reasons), in the tables of `table.rs`, and
//! draws what a table cannot: the flamegraph, the busy-time percentile
//! distributions, the process timeline and the live heap (`charts.rs`,
//! drawn as inline SVG by `svg.rs`).
//!
//! Nothing is fetched when the page is viewed (`page.rs` says so in a
//! content security policy as well), and every string, from the dump or
//! ours, goes through [`escape`].
//!
//! Here: the renderer, the escaping, and the parts both pages use (tables,
//! sections, prose). Beside it:
//!
//! - `report.rs`: the page of a report or a diff, from its outline;
//! - `page.rs`: the document around the body, its style and the self-check
//!   a browser test reads;
//! - `charts.rs`: which pictures, from which figures;
//! - `svg.rs` and `axis.rs`: line charts and their axes;
//! - `base64.rs`: the flamegraph's data URL.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

mod axis;
mod base64;
mod charts;
mod page;
mod report;
mod svg;

use super::outline::{Head, Outline, Table};
use super::table::{Align, Tone};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::Severity;
use crate::callsite::Location;
use crate::diff::{Diff, Verdict};

/// The HTML renderer.
#[derive(Debug)]
pub(super) struct Html;

impl Renderer for Html {
    fn report(
        &self,
        report: &Report,
        kind: ReportKind,
        opts: &RenderOptions,
        out: &mut dyn io::Write,
    ) -> io::Result<()> {
        out.write_all(report::render_report(report, kind, opts).as_bytes())
    }

    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(report::render_diff(diff, opts).as_bytes())
    }
}

/// Any outline as a page.
pub(super) fn outline(outline: &Outline<'_>, opts: &RenderOptions) -> Option<String> {
    Some(report::render(outline, opts))
}

/// Escapes text for HTML: `&`, `<`, `>`, `"` and `'` become entities, so
/// the result is safe as element text, inside a quoted attribute, and in
/// SVG `<text>` and `<title>`; control characters become U+FFFD (as in the
/// text format). The one escaping function of the HTML report.
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || c.is_control())
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A sentence of ours, escaped, with its backticked spans (code, or a span
/// name the sentence quotes) set as `<code>`: escaping comes first, so a
/// name in backticks is as inert as any other.
fn prose(s: &str) -> String {
    let escaped = escape(s);
    let parts: Vec<&str> = escaped.split('`').collect();
    let mut out = String::with_capacity(escaped.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let is_code = i % 2 == 1;
        // An unpaired backtick stays as it was.
        if is_code && i + 1 == parts.len() {
            out.push('`');
            out.push_str(part);
        } else if is_code {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev-critical",
        Severity::High => "sev-high",
        Severity::Medium => "sev-medium",
        Severity::Low => "sev-low",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "v-regressed",
        Verdict::Mixed => "v-mixed",
        Verdict::Improved => "v-improved",
        _ => "v-plain",
    }
}

/// A table of `rows` under the shared `columns`, named `name` for its
/// style: the columns' alignment and fonts are rules written once beside
/// the table rather than a class on every cell, which keeps a table of ten
/// thousand callsites a third smaller.
fn table(out: &mut String, table: &Table) {
    let name = table.name;
    let columns = &table.heads;
    let cells_of = |wanted: &dyn Fn(&Head) -> bool| -> Vec<String> {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| wanted(c))
            .map(|(i, _)| format!(".t-{name} td:nth-child({})", i + 1))
            .collect()
    };
    let right = cells_of(&|c| c.align == Align::Right);
    let names = cells_of(&|c| c.from_dump);
    out.push_str("<style>");
    if !right.is_empty() {
        let _ = write!(
            out,
            "{}{{text-align:right;white-space:nowrap}}",
            right.join(",")
        );
    }
    if !names.is_empty() {
        let _ = write!(
            out,
            "{}{{font-family:var(--mono);font-size:.88em;overflow-wrap:anywhere;min-width:9em;max-width:28em}}",
            names.join(",")
        );
    }
    let _ = write!(
        out,
        "</style>\n<div class=\"table-wrap\"><table class=\"t-{name}\">\n<thead><tr>"
    );
    for c in columns {
        let align = match c.align {
            Align::Right => " class=\"num\"",
            Align::Left => "",
        };
        let _ = write!(out, "<th scope=\"col\"{align}>{}</th>", escape(c.header));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for cells in &table.rows {
        out.push_str("<tr>");
        for cell in cells {
            let text = escape(&cell.text);
            let _ = match cell.tone {
                Tone::Plain => write!(out, "<td>{text}</td>"),
                Tone::Severity(s) => write!(
                    out,
                    "<td><span class=\"{}\">{text}</span></td>",
                    severity_class(s)
                ),
                Tone::Verdict(v) => write!(
                    out,
                    "<td><span class=\"{}\">{text}</span></td>",
                    verdict_class(v)
                ),
            };
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn section(out: &mut String, id: &str, title: &str, lede: &str) {
    let _ = write!(out, "<section id=\"{id}\">\n<h2>{}</h2>\n", escape(title));
    if !lede.is_empty() {
        let _ = writeln!(out, "<p class=\"lede\">{}</p>", prose(lede));
    }
}

/// `label (file:line)` with the two set apart.
fn location(l: &Location) -> String {
    format!(
        "<span class=\"name\">{}</span> <span class=\"src\">({})</span>",
        escape(&l.label),
        escape(&l.source())
    )
}

#[cfg(test)]
mod tests {
    use super::{escape, prose};

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}"
        );
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn backticks_become_code_after_escaping() {
        assert_eq!(
            prose("cache `<b>` then `x"),
            "cache <code>&lt;b&gt;</code> then `x"
        );
    }
}
