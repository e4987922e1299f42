//! The diff page: what the text diff says (the totals, the verdict counts,
//! the table and why each changed span changed), then the base and new
//! busy-time distributions of the changed spans, one chart each.

use std::fmt::Write as _;

use super::page::Page;
use super::{charts, escape, more, prose, section, table, verdict_class};
use crate::diff::Diff;
use crate::render::RenderOptions;
use crate::render::outline::Table;
use crate::render::table as columns;
use crate::render::wording::diff_counts;
use crate::units;

pub(super) fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    let shown = opts.limit(d.callsites.len());
    let notable: Vec<_> = d.callsites[..shown]
        .iter()
        .filter(|c| c.verdict.is_change())
        .collect();
    let nav = match (d.callsites.is_empty(), notable.is_empty()) {
        (true, _) => "",
        (false, true) => "<a href=\"#callsites\">Callsites</a><a href=\"#latency\">Latency</a>",
        (false, false) => {
            "<a href=\"#callsites\">Callsites</a><a href=\"#why\">Why</a><a href=\"#latency\">Latency</a>"
        }
    };
    let mut page = Page::default();
    let out = &mut page.body;
    let _ = writeln!(
        out,
        "<header>\n<h1>perf-report diff: <span class=\"name\">{}</span> → <span class=\"name\">{}</span></h1>\n<p>base {} -> new {}: self time in spans {}</p>\n<p>{}</p>\n<nav>{nav}</nav>\n</header>\n<main>",
        escape(&d.base_program),
        escape(&d.new_program),
        escape(&d.base_program),
        escape(&d.new_program),
        escape(&columns::change(&d.total_self_ns, units::ns)),
        escape(&diff_counts(d))
    );
    if !d.callsites.is_empty() {
        section(
            out,
            "callsites",
            "Callsites",
            "Cells show the new value and its change from the base.",
        );
        table(
            out,
            &Table::new("diff", columns::DIFF, &d.callsites[..shown]),
        );
        more(out, shown, d.callsites.len(), "callsites");
        out.push_str("</section>\n");
        if !notable.is_empty() {
            section(out, "why", "Why", "");
            out.push_str("<ul class=\"notes\">");
            for c in notable {
                let _ = write!(
                    out,
                    "<li><span class=\"{}\">{}</span> <span class=\"name\">{}</span>: {}</li>",
                    verdict_class(c.verdict),
                    c.verdict,
                    escape(&c.location.label),
                    prose(&c.reason)
                );
            }
            out.push_str("</ul>\n</section>\n");
        }
        section(
            &mut page.body,
            "latency",
            "Latency distributions of the changed spans",
            "Busy time by percentile, base dashed, new solid; both axes are logarithmic.",
        );
        charts::diff_curves(&mut page, d);
        page.body.push_str("</section>\n");
    }
    page.body.push_str("</main>\n");
    page.finish(&format!(
        "perf-report diff: {} → {}",
        d.base_program, d.new_program
    ))
}
