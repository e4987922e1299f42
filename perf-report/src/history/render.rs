//! The history's text for a terminal: the runs, trends with sparklines and
//! change points, and a check's verdicts. JSON is the types themselves
//! (`serde`).

use comfy_table::{CellAlignment, ContentArrangement, Table};

use super::check::{CheckReport, Judgement, Metric};
use super::store::RunSummary;
use super::trend::{Trend, sparkline};
use crate::sanitize::one_line;
use crate::units;

fn table(width: Option<usize>, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    if let Some(w) = width {
        t.set_width(u16::try_from(w).unwrap_or(u16::MAX));
    }
    t
}

fn right(t: &mut Table, columns: &[usize]) {
    for &c in columns {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A date and time for people, UTC, from ms since the Unix epoch.
pub(crate) fn when(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn labels(run: &RunSummary) -> String {
    run.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runs, one line each.
pub fn runs_text(runs: &[RunSummary], width: Option<usize>) -> String {
    if runs.is_empty() {
        return "No runs stored (or none match). Record one with `perf-report record DUMP`.\n"
            .to_owned();
    }
    let mut t = table(
        width,
        &[
            "id",
            "started (UTC)",
            "program",
            "duration",
            "spans",
            "machine",
            "labels",
        ],
    );
    for r in runs {
        t.add_row(vec![
            r.id.to_string(),
            when(r.started_at_unix_ms),
            one_line(&r.program).into_owned(),
            units::ns(r.duration_ns as f64),
            units::count(r.spans as f64),
            one_line(&r.machine_desc).into_owned(),
            one_line(&labels(r)).into_owned(),
        ]);
    }
    right(&mut t, &[0, 3, 4]);
    format!("RUNS  {} stored\n{t}\n", runs.len())
}

fn format_metric(metric: &str, v: f64) -> String {
    match metric {
        "self_share" => units::pct(v),
        "live_bytes" => units::bytes(v),
        _ => units::ns(v),
    }
}

/// Each trend: the span's metrics as sparklines, the latest values, and
/// every change point.
pub fn trends_text(trends: &[Trend], width: Option<usize>) -> String {
    if trends.is_empty() {
        return "No stored run has that span.\n".to_owned();
    }
    let mut out = String::new();
    for tr in trends {
        out.push_str(&format!(
            "SPAN  {} ({} runs)\n",
            one_line(&tr.identity),
            tr.points.len()
        ));
        let mut t = table(
            width,
            &["metric", "trend (oldest → newest)", "first", "latest"],
        );
        for s in &tr.series {
            let present: Vec<f64> = s.values.iter().flatten().copied().collect();
            t.add_row(vec![
                s.metric.to_owned(),
                sparkline(&s.values),
                present
                    .first()
                    .map_or_else(|| "-".to_owned(), |&v| format_metric(s.metric, v)),
                present
                    .last()
                    .map_or_else(|| "-".to_owned(), |&v| format_metric(s.metric, v)),
            ]);
        }
        right(&mut t, &[2, 3]);
        out.push_str(&format!("{t}\n"));
        let shifts: Vec<String> = tr
            .series
            .iter()
            .flat_map(|s| {
                // Indices count the runs that have the metric.
                let runs: Vec<usize> = s
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_some())
                    .map(|(i, _)| i)
                    .collect();
                s.change_points.iter().map(move |c| {
                    let at = runs.get(c.index).copied().unwrap_or(0);
                    let run = &tr.points[at];
                    format!(
                        "{} shifted {} at run {} ({}): {} → {} (p {:.3})",
                        s.metric,
                        units::change(c.relative_change),
                        run.run_id,
                        when(run.started_at_unix_ms),
                        format_metric(s.metric, c.before),
                        format_metric(s.metric, c.after),
                        c.p_value
                    )
                })
            })
            .collect();
        if shifts.is_empty() {
            out.push_str("  no change points\n\n");
        } else {
            for s in shifts {
                out.push_str(&format!("  - {s}\n"));
            }
            out.push('\n');
        }
    }
    out
}

fn format_check_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::BusyP50 | Metric::BusyP99 => units::ns(v),
        Metric::AllocBytesPerCall => units::bytes(v),
        Metric::AllocsPerCall => format!("{v:.2}"),
    }
}

/// A check's verdicts: the regressions and improvements, then a count of
/// the rest.
pub fn check_text(r: &CheckReport, width: Option<usize>) -> String {
    let regressed = r.regressions().count();
    let improved = r
        .checks
        .iter()
        .filter(|c| c.judgement == Judgement::Improved)
        .count();
    let mut out = format!(
        "perf-report check {}: against {} comparable runs (same program and machine {}); {} tests, z > {:.2} each (α split over them); {} regressed, {} improved, {} unchanged; {} spans without enough history\n",
        one_line(&r.program),
        r.history.len(),
        r.machine,
        r.tests,
        r.z_critical,
        regressed,
        improved,
        r.tests - regressed - improved,
        r.not_judged
    );
    let notable: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.judgement != Judgement::Unchanged)
        .collect();
    if notable.is_empty() {
        return out;
    }
    let mut t = table(
        width,
        &["verdict", "span", "metric", "now", "history", "change", "z"],
    );
    for c in &notable {
        t.add_row(vec![
            c.judgement.to_string(),
            one_line(&c.identity).into_owned(),
            c.metric.to_string(),
            format_check_value(c.metric, c.value),
            format!(
                "{} ± {} ({} runs)",
                format_check_value(c.metric, c.history_median),
                format_check_value(c.metric, c.history_spread),
                c.history_runs
            ),
            units::change(c.change),
            if c.z.is_finite() {
                format!("{:.1}", c.z)
            } else {
                "∞".to_owned()
            },
        ]);
    }
    right(&mut t, &[3, 5, 6]);
    out.push_str(&format!("{t}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(when(0), "1970-01-01 00:00");
        assert_eq!(when(1_796_120_026_796), "2026-12-01 10:13");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00");
    }
}
