//! The dashboard at `/`: one page, drawn on the server (inline SVG, no
//! script): the stored runs with links to their reports, and the trends of
//! the latest run's heaviest spans with their change points marked.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::api::ApiError;
use crate::history::render::when;
use crate::history::trend::{Series, Trend, trends};
use crate::history::{RunFilter, RunSummary, Store};
use crate::render::html::escape;
use crate::units;

/// Runs listed, newest first.
const RUNS_SHOWN: usize = 50;
/// Spans whose trends are drawn.
const SPANS_DRAWN: usize = 6;

pub(super) async fn page(State(opts): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let db = opts.db.clone();
    let html = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let store = Store::open_existing(&db)?;
        let runs = store.runs(&RunFilter::default().newest(RUNS_SHOWN))?;
        let mut drawn = Vec::new();
        if let Some(latest) = runs.last() {
            let filter = RunFilter::default()
                .program(&latest.program)
                .machine(&latest.machine);
            for span in store.spans(latest.id)?.into_iter().take(SPANS_DRAWN) {
                drawn.extend(trends(&store, &span.identity, &filter)?);
            }
        }
        Ok(render(&db.display().to_string(), &runs, &drawn))
    })
    .await
    .map_err(|e| {
        ApiError::from(crate::history::HistoryError::Sqlite {
            path: opts.db.clone(),
            detail: e.to_string(),
        })
    })??;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

fn render(db: &str, runs: &[RunSummary], drawn: &[Trend]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>perf-report history: {db}</title><style>{STYLE}</style></head><body>\
<h1>perf-report history</h1><p class=\"dim\">{db}: {} runs shown, newest last</p>",
        runs.len(),
        db = escape(db)
    );
    if runs.is_empty() {
        h.push_str(
            "<p>No runs stored yet. Record one with <code>perf-report record DUMP</code>, \
or <code>POST /api/runs</code>.</p></body></html>",
        );
        return h;
    }
    h.push_str("<h2>Trends of the latest run's heaviest spans</h2><div class=\"trends\">");
    for t in drawn {
        trend_card(&mut h, t);
    }
    h.push_str(
        "</div><h2>Runs</h2><table><thead><tr><th>id</th><th>started (UTC)</th>\
<th>program</th><th>duration</th><th>spans</th><th>machine</th><th>labels</th><th>report</th>\
</tr></thead><tbody>",
    );
    for r in runs.iter().rev() {
        let labels: Vec<String> = r
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let _ = write!(
            h,
            "<tr><td class=\"num\">{id}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td>{}</td><td>{}</td><td><a href=\"/api/runs/{id}/report.html\">report</a> \
<a href=\"/api/runs/{id}/flamegraph.svg\">flamegraph</a> <a href=\"/api/runs/{id}\">json</a></td></tr>",
            when(r.started_at_unix_ms),
            escape(&r.program),
            units::ns(r.duration_ns as f64),
            units::count(r.spans as f64),
            escape(&r.machine_desc),
            labels.join(" "),
            id = r.id,
        );
    }
    h.push_str("</tbody></table></body></html>");
    h
}

fn trend_card(h: &mut String, t: &Trend) {
    let _ = write!(
        h,
        "<section class=\"card\"><h3>{}</h3><p class=\"dim\">{} runs</p>",
        escape(&t.identity),
        t.points.len()
    );
    for s in t.series.iter().filter(|s| s.metric != "self_share") {
        sparkline_svg(h, s);
    }
    h.push_str("</section>");
}

/// A small line chart of one metric with its change points as red marks.
fn sparkline_svg(h: &mut String, s: &Series) {
    const W: f64 = 300.0;
    const H: f64 = 60.0;
    let present: Vec<f64> = s.values.iter().flatten().copied().collect();
    let (lo, hi) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if present.is_empty() || !lo.is_finite() {
        return;
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |i: usize| {
        if present.len() > 1 {
            4.0 + i as f64 * (W - 8.0) / (present.len() - 1) as f64
        } else {
            W / 2.0
        }
    };
    let y = |v: f64| H - 6.0 - (v - lo) / span * (H - 12.0);
    let points: Vec<String> = present
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let fmt = |v: f64| match s.metric {
        "live_bytes" => units::bytes(v),
        _ => units::ns(v),
    };
    let _ = write!(
        h,
        "<figure><figcaption>{} <span class=\"dim\">{} → {}</span></figcaption>\
<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">\
<polyline fill=\"none\" stroke=\"#2463eb\" stroke-width=\"1.5\" points=\"{}\"/>",
        s.metric,
        fmt(present[0]),
        fmt(present[present.len() - 1]),
        s.metric,
        points.join(" ")
    );
    for c in &s.change_points {
        let cx = (x(c.index.saturating_sub(1)) + x(c.index)) / 2.0;
        let _ = write!(
            h,
            "<line class=\"change\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"2\" y2=\"{}\" stroke=\"#d43\" stroke-dasharray=\"3 2\"><title>{} {}</title></line>",
            H - 2.0,
            s.metric,
            units::change(c.relative_change)
        );
    }
    h.push_str("</svg></figure>");
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330}h1{font-size:1.5rem}\
h2{font-size:1.15rem;margin-top:2rem}h3{font-size:.95rem;margin:.2rem 0;word-break:break-all}\
.dim{color:#667085;font-size:.85rem}table{border-collapse:collapse;width:100%;font-size:.88rem}\
th,td{padding:.3rem .5rem;text-align:left;border-bottom:1px solid #e4e7ec}\
tbody tr:nth-child(even){background:#f7f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}\
.trends{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #e4e7ec;border-radius:8px;\
padding:.6rem .8rem}figure{margin:.3rem 0}figcaption{font-size:.8rem}a{color:#2463eb}";
