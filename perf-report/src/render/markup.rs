//! A format as a handful of primitives over the outline's blocks, in the
//! spirit of hyperfine's `MarkupExporter`: [`write()`] walks the outline once
//! for every format, so a format says only how a heading, a table row, a
//! paragraph or a list looks, never what the report contains or in which
//! order.

use super::outline::{Block, Chart, Detail, Outline, Section, Table};
use super::wording::Words;
use crate::diff::CallsiteDiff;
use crate::plan::Step;

/// How one format lays out the outline's blocks. Text from the dump (names,
/// locations, cells of columns marked `from_dump`) is the format's to
/// escape.
pub(crate) trait Markup {
    /// Whether it draws [`Block::Chart`]s; if not, a section of nothing but
    /// charts is left out.
    fn draws_charts(&self) -> bool {
        false
    }

    /// The report's title and summary (and, for a page, its navigation
    /// over the sections).
    fn title(&mut self, outline: &Outline<'_>);

    /// A section's heading and its lede.
    fn heading(&mut self, section: &Section<'_>);

    /// After a section's blocks.
    fn end_section(&mut self) {}

    fn table(&mut self, table: &Table);

    fn paragraph(&mut self, text: &str);

    /// A remark after a table.
    fn aside(&mut self, words: &Words);

    /// `hidden` rows of `what` left out by `--top`; called only when some were.
    fn more(&mut self, hidden: usize, what: &str);

    fn list(&mut self, items: &[String]);

    fn steps(&mut self, steps: &[Step], detail: Detail);

    /// The diff's changed callsites: verdict, name, why.
    fn reasons(&mut self, changed: &[&CallsiteDiff]);

    fn chart(&mut self, _chart: Chart<'_>) {}

    /// After the last section.
    fn end(&mut self) {}
}

/// Writes `outline` through `m`.
pub(crate) fn write(m: &mut impl Markup, outline: &Outline<'_>) {
    m.title(outline);
    for section in &outline.sections {
        if !m.draws_charts() && section.only_charts() {
            continue;
        }
        m.heading(section);
        for block in &section.blocks {
            match block {
                Block::Table(t) => m.table(t),
                Block::Paragraph(p) => m.paragraph(p),
                Block::Aside(w) => m.aside(w),
                Block::More(0, _) => {}
                Block::More(hidden, what) => m.more(*hidden, what),
                Block::List(items) => m.list(items),
                Block::Steps(steps, detail) => m.steps(steps, *detail),
                Block::Reasons(changed) => m.reasons(changed),
                Block::Chart(c) => {
                    if m.draws_charts() {
                        m.chart(*c);
                    }
                }
            }
        }
        m.end_section();
    }
    m.end();
}
