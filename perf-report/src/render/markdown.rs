//! The Markdown renderer: GitHub-flavoured tables that paste into a pull
//! request. Everything taken from a dump goes through [`escape`].

use std::fmt::Write as _;
use std::io;

use super::markup::{self, Markup};
use super::outline::{self, Detail, Outline, Section, Table, Title};
use super::table::{Align, Tone};
use super::wording::{self, Words};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::callsite::Location;
use crate::diff::{CallsiteDiff, Diff, Verdict};
use crate::plan::Step;
use crate::sanitize::one_line;

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

/// A table under the shared columns.
fn table(out: &mut String, table: &Table) {
    let heads = &table.heads;
    row(
        out,
        &heads
            .iter()
            .map(|c| c.header.to_owned())
            .collect::<Vec<_>>(),
    );
    let seps: Vec<String> = heads
        .iter()
        .map(|c| match c.align {
            Align::Left => "---".to_owned(),
            Align::Right => "---:".to_owned(),
        })
        .collect();
    row(out, &seps);
    for cells in &table.rows {
        let cells: Vec<String> = cells
            .iter()
            .zip(heads)
            .map(|(cell, column)| {
                // Our own text never holds Markdown; the dump's is escaped.
                let text = if column.from_dump {
                    escape(&cell.text)
                } else {
                    cell.text.clone()
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

/// The report being written.
struct Md(String);

impl Markup for Md {
    fn title(&mut self, outline: &Outline<'_>) {
        let _ = match &outline.title {
            Title::Report { program, summary } => writeln!(
                self.0,
                "## perf-report: {}\n\n{summary}.",
                escape(program)
            ),
            Title::Diff {
                base,
                new,
                self_time,
                counts,
            } => writeln!(
                self.0,
                "## perf-report diff: {} → {}\n\nSelf time in spans {self_time}. {counts}.",
                escape(base),
                escape(new)
            ),
            Title::History {
                command,
                program,
                summary,
            } => {
                let _ = write!(self.0, "## {command}");
                if let Some(program) = program {
                    let _ = write!(self.0, ": {}", escape(program));
                }
                match summary {
                    Some(summary) => writeln!(self.0, "\n\n{}", escape(&summary.sentence)),
                    None => writeln!(self.0),
                }
            }
        };
    }

    fn heading(&mut self, section: &Section<'_>) {
        if !section.titled {
            return;
        }
        let _ = writeln!(self.0, "\n### {}", section.title);
        if let Some(lede) = &section.lede {
            // A lede is a sentence here, figures too.
            let stop = if lede.sentence.ends_with('.') {
                ""
            } else {
                "."
            };
            let _ = writeln!(self.0, "\n{}{stop}", escape(&lede.sentence));
        }
    }

    fn table(&mut self, t: &Table) {
        self.0.push('\n');
        table(&mut self.0, t);
    }

    fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.0, "\n{}", escape(text));
    }

    fn aside(&mut self, words: &Words) {
        let _ = writeln!(self.0, "\n{}", escape(&words.sentence));
    }

    fn more(&mut self, hidden: usize, what: &str) {
        let _ = writeln!(self.0, "\n_{} not shown._", wording::more(hidden, what));
    }

    fn list(&mut self, items: &[String]) {
        self.0.push('\n');
        for item in items {
            let _ = writeln!(self.0, "- {}", escape(item));
        }
    }

    fn steps(&mut self, steps: &[Step], detail: Detail) {
        for s in steps {
            step(&mut self.0, s, detail);
        }
    }

    fn reasons(&mut self, changed: &[&CallsiteDiff]) {
        self.0.push('\n');
        for c in changed {
            let _ = writeln!(
                self.0,
                "- **{}** {}: {}",
                c.verdict,
                escape(&c.location.label),
                escape(&c.reason)
            );
        }
    }
}

fn step(out: &mut String, s: &Step, detail: Detail) {
    // A process-wide step's title already names the process.
    let title = match &s.location {
        Some(l) => format!("{}: {}", s.class.title(), loc(l)),
        None => s.class.title().to_owned(),
    };
    if detail == Detail::Line {
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
        return;
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
        // Our own text, whose backticks are meant as code, but it may name
        // the span (a hot spot's "moves `name`'s CPU time").
        let _ = writeln!(out, "  - {}", code_safe(f, s.location.as_ref()));
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

/// Plan text embeds span names inside backticks: the step's own, and
/// others' (a waiting step names the caller whose calls it waits in).
/// Rebuild such sentences so no name is trusted: the step's own name, and
/// any code span holding what Markdown would not keep as code (a line
/// break, which ends it) or a tag, become escaped bold text; the rest stay
/// code, and the prose between has no HTML left (a name with a backtick
/// of its own splits wrongly, and part of it lands there). A fuzzed span
/// name with a line break and `<script>`, named as a waiting step's
/// caller, came out as raw HTML.
fn code_safe(text: &str, location: Option<&Location>) -> String {
    let own = location.map(|l| (format!("`{}`", l.label), format!("**{}**", escape(&l.label))));
    // Markdown keeps a code span's text as it is, up to a line break; what
    // could open a tag (`<` before a letter, `/`, `!` or `?`) is taken for a
    // name's, not our own code (`Cow<'_, str>`, `&[T]`).
    let plain = |code: &str| {
        !code.contains(['\n', '\r'])
            && !code
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || b"/!?".contains(&w[1])))
    };
    let mut out = String::with_capacity(text.len());
    let pieces: Vec<&str> = match &own {
        Some((raw, _)) => text.split(raw.as_str()).collect(),
        None => vec![text],
    };
    for (n, piece) in pieces.iter().enumerate() {
        if n > 0 {
            out.push_str(own.as_ref().map_or("", |(_, safe)| safe.as_str()));
        }
        for (i, part) in piece.split('`').enumerate() {
            match (i % 2 == 1, part) {
                (false, prose) => {
                    for c in prose.chars() {
                        match c {
                            '<' => out.push_str("&lt;"),
                            '>' => out.push_str("&gt;"),
                            '&' => out.push_str("&amp;"),
                            c => out.push(c),
                        }
                    }
                }
                (true, code) if plain(code) => {
                    out.push('`');
                    out.push_str(code);
                    out.push('`');
                }
                (true, name) => {
                    let _ = write!(out, "**{}**", escape(name));
                }
            }
        }
    }
    out
}

/// Any outline in Markdown.
pub(super) fn outline(outline: &Outline<'_>, _: &RenderOptions) -> Option<String> {
    let mut md = Md(String::new());
    markup::write(&mut md, outline);
    Some(md.0)
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let mut md = Md(String::new());
    markup::write(&mut md, &outline::report(r, kind, opts));
    md.0
}

fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    let mut md = Md(String::new());
    markup::write(&mut md, &outline::diff(d, opts));
    md.0
}

#[cfg(test)]
mod tests {
    use super::{code_safe, escape};

    /// Plan text naming another span in backticks (a waiting step's
    /// caller): a name with a line break and a tag is bold and escaped,
    /// our own code (`Cow<'_, str>`, `&[T]`) stays code.
    #[test]
    fn names_in_plan_text_cannot_inject_markup_and_our_code_stays_code() {
        let text = "the wall time of the `n\n><script>alert(1)</script>` calls; take `&[T]`, return `Cow<'_, str>`";
        let s = code_safe(text, None);
        assert!(!s.contains("<script"), "{s}");
        assert!(s.contains("**n") && s.contains("&gt;&lt;script&gt;alert(1)&lt;/script&gt;**"), "{s}");
        assert!(s.contains("`&[T]`") && s.contains("`Cow<'_, str>`"), "{s}");
    }

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
