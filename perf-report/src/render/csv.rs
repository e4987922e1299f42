//! CSV (RFC 4180 quoting, lines ending in `\n`): the report's tables for a
//! spreadsheet or a script, each a header row and its rows, the tables
//! apart by an empty line (the full report: findings, then callsites; the
//! summary: findings; the weight report: the weights; the diff: its table).
//! Prose, steps and charts are left out; `--top 0` gives every row.

use std::io;

use super::markup::{self, Markup};
use super::outline::{self, Detail, Outline, Section, Table};
use super::wording::Words;
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::diff::{CallsiteDiff, Diff};
use crate::plan::Step;
use crate::sanitize::one_line;

/// The CSV renderer.
#[derive(Debug)]
pub(super) struct Csv;

impl Renderer for Csv {
    fn report(&self, r: &Report, kind: ReportKind, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        let mut csv = Tables(String::new());
        markup::write(&mut csv, &outline::report(r, kind, opts));
        out.write_all(csv.0.as_bytes())
    }

    fn diff(&self, d: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        let mut csv = Tables(String::new());
        markup::write(&mut csv, &outline::diff(d, opts));
        out.write_all(csv.0.as_bytes())
    }
}

/// The tables of any outline.
pub(super) fn outline(outline: &Outline<'_>, _: &RenderOptions) -> Option<String> {
    let mut csv = Tables(String::new());
    markup::write(&mut csv, outline);
    Some(csv.0)
}

/// The tables so far.
struct Tables(String);

impl Markup for Tables {
    fn table(&mut self, t: &Table) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        let headers: Vec<String> = t.heads.iter().map(|h| field(h.header, false)).collect();
        self.0.push_str(&(headers.join(",") + "\n"));
        for row in &t.rows {
            let cells: Vec<String> =
                row.iter().zip(&t.heads).map(|(c, h)| field(&c.text, h.from_dump)).collect();
            self.0.push_str(&(cells.join(",") + "\n"));
        }
    }

    // The tables only.
    fn title(&mut self, _: &Outline<'_>) {}
    fn heading(&mut self, _: &Section<'_>) {}
    fn paragraph(&mut self, _: &str) {}
    fn aside(&mut self, _: &Words) {}
    fn more(&mut self, _: usize, _: &str) {}
    fn list(&mut self, _: &[String]) {}
    fn steps(&mut self, _: &[Step], _: Detail) {}
    fn reasons(&mut self, _: &[&CallsiteDiff]) {}
}

/// One field: quoted when it holds a comma, a quote or a line break, its
/// quotes doubled. A name from the dump is put on one line, and one that
/// starts like a formula (`=`, `+`, `-`, `@`) gets a `'` in front, so a
/// spreadsheet shows it rather than evaluates it.
fn field(text: &str, from_dump: bool) -> String {
    let mut text = if from_dump { one_line(text).into_owned() } else { text.to_owned() };
    if from_dump && text.starts_with(['=', '+', '-', '@']) {
        text.insert(0, '\'');
    }
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain", true), "plain");
        assert_eq!(field("a,b", true), "\"a,b\"");
        assert_eq!(field("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()", true), "'=cmd()");
        assert_eq!(field("-3.0%", false), "-3.0%");
        assert!(!field("a\nb", true).contains('\n'));
    }
}
