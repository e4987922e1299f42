//! The diff in a terminal.

use owo_colors::OwoColorize;

use super::out::{Out, clean};
use crate::diff::Diff;
use crate::render::RenderOptions;
use crate::render::outline::Table;
use crate::render::table;
use crate::render::wording::diff_counts;
use crate::units;

pub(super) fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
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
    out.para("", "", &diff_counts(d));
    if d.callsites.is_empty() {
        return out.text;
    }
    let shown = opts.limit(d.callsites.len());
    out.blank();
    out.fitted_table(&Table::new("diff", table::DIFF, &d.callsites[..shown]));
    out.dim("cells show the new value and its change from the base");
    out.more(shown, d.callsites.len(), "callsites");
    let notable: Vec<_> = d.callsites[..shown]
        .iter()
        .filter(|c| c.verdict.is_change())
        .collect();
    if !notable.is_empty() {
        out.blank();
        out.heading_line("WHY", "");
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
