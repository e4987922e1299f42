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
use crate::history::render::{RUNS, when};
use crate::history::trend::{Series, Trend, trends};
use crate::history::{RunFilter, RunSummary, Store};
use crate::render::html::escape;
use crate::render::table::Align;
use crate::sanitize::bounded;
use crate::units;

/// Runs listed, newest first.
const RUNS_SHOWN: usize = 50;
/// Spans whose trends are drawn.
const SPANS_DRAWN: usize = 6;

pub(super) async fn page(State(opts): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let db = opts.db.clone();
    let live = opts.opts.live.clone();
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
        Ok(render(
            &db.display().to_string(),
            &runs,
            &drawn,
            live.as_deref(),
        ))
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

/// The most characters of a name or label the page shows.
const MAX_SHOWN: usize = 160;

/// `s` cut to [`MAX_SHOWN`] characters and escaped: inert and bounded.
fn shown(s: &str) -> String {
    escape(&bounded(s, MAX_SHOWN)).into_owned()
}

/// Counts script errors from the start, and once loaded says on `<body>`
/// how many there were and how many pixels the page is wider than the
/// window (`data-errors`, `data-overflow`), for the browser tests. The page
/// itself needs no script.
const SELF_CHECK: &str = "<script>window.perfReportErrors=0;window.addEventListener('error',function(){window.perfReportErrors+=1;},true);window.addEventListener('load',function(){var d=document.documentElement;document.body.dataset.errors=String(window.perfReportErrors);document.body.dataset.overflow=String(Math.max(0,d.scrollWidth-d.clientWidth));});</script>";

fn render(db: &str, runs: &[RunSummary], drawn: &[Trend], live: Option<&str>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>perf-report history: {db}</title><style>{STYLE}</style>{SELF_CHECK}</head><body>\
<h1>perf-report history</h1><p class=\"dim\">{db}: the newest {} runs</p>",
        runs.len(),
        db = shown(db)
    );
    if let Some(addr) = live {
        let _ = write!(
            h,
            "<p><a href=\"/live\">Live view</a> of the process at {}: its last second, \
refreshed every second.</p>",
            shown(addr)
        );
    }
    let Some(latest) = runs.last() else {
        h.push_str(
            "<p>No runs stored yet. Record one with <code>perf-report record DUMP</code>, \
or <code>POST /api/runs</code>.</p></body></html>",
        );
        return h;
    };
    let _ = write!(
        h,
        "<h2>Latest run: <a href=\"/api/runs/{id}/report.html\">#{id}</a> of {}, started {} UTC</h2>\
<p class=\"dim\">The newest run by its start time. Below, each of its heaviest spans across the \
runs of the same program on the same kind of machine, oldest on the left; a dashed red line marks \
a change point, with the shift.</p><div class=\"trends\">",
        shown(&latest.program),
        when(latest.started_at_unix_ms),
        id = latest.id,
    );
    for t in drawn {
        trend_card(&mut h, t);
    }
    // The runs table's columns are the CLI's (`history::render::RUNS`), each
    // cell bounded here, then a column of links.
    h.push_str("</div><h2>Runs, newest first</h2><div class=\"table-wrap\"><table><thead><tr>");
    for c in RUNS {
        let _ = write!(h, "<th{}>{}</th>", num(c.align), escape(c.header));
    }
    h.push_str("<th>report</th></tr></thead><tbody>");
    for r in runs.iter().rev() {
        h.push_str(if r.id == latest.id {
            "<tr class=\"latest\">"
        } else {
            "<tr>"
        });
        for c in RUNS {
            let _ = write!(
                h,
                "<td{}>{}</td>",
                num(c.align),
                shown(&(c.cell)(0, r).text)
            );
        }
        let _ = write!(
            h,
            "<td><a href=\"/api/runs/{id}/report.html\">report</a> \
<a href=\"/api/runs/{id}/flamegraph.svg\">flamegraph</a> <a href=\"/api/runs/{id}\">json</a></td></tr>",
            id = r.id,
        );
    }
    h.push_str("</tbody></table></div></body></html>");
    h
}

/// The class of a cell that lines up on the right.
fn num(align: Align) -> &'static str {
    match align {
        Align::Right => " class=\"num\"",
        Align::Left => "",
    }
}

fn trend_card(h: &mut String, t: &Trend) {
    let _ = write!(
        h,
        "<section class=\"card\"><h3>{}</h3><p class=\"dim\">{} runs</p>",
        shown(&t.identity),
        t.points.len()
    );
    for s in t.series.iter().filter(|s| s.metric != "self_share") {
        sparkline_svg(h, s, t);
    }
    h.push_str("</section>");
}

/// What a metric is called on the page.
fn metric_title(metric: &str) -> &str {
    match metric {
        "busy_p50_ns" => "busy time, median",
        "busy_p99_ns" => "busy time, p99",
        "live_bytes" => "live heap at the end",
        other => other,
    }
}

/// A small line chart of one metric, run by run: the y axis with its lowest
/// and highest value in units, the x axis from the first run to the last
/// (by id), and each change point as a dashed red line labelled with the
/// shift.
fn sparkline_svg(h: &mut String, s: &Series, t: &Trend) {
    const W: f64 = 320.0;
    const H: f64 = 110.0;
    // The plot area: room on the left for the y labels, below for the x.
    const LEFT: f64 = 62.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 20.0;
    let present: Vec<(usize, f64)> = s
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((i, (*v)?)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let Some(&(first_at, _)) = present.first() else {
        return;
    };
    let last_at = present[present.len() - 1].0;
    let (lo, hi) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |i: usize| {
        if present.len() > 1 {
            LEFT + i as f64 * (W - LEFT - RIGHT) / (present.len() - 1) as f64
        } else {
            (LEFT + W - RIGHT) / 2.0
        }
    };
    let y = |v: f64| H - BOTTOM - (v - lo) / span * (H - TOP - BOTTOM);
    let points: Vec<String> = present
        .iter()
        .enumerate()
        .map(|(i, &(_, v))| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let fmt = |v: f64| match s.metric {
        "live_bytes" => units::bytes(v),
        _ => units::ns(v),
    };
    let run_id = |at: usize| t.points.get(at).map_or(0, |p| p.run_id);
    let title = metric_title(s.metric);
    let _ = write!(
        h,
        "<figure><figcaption>{title} <span class=\"dim\">{} → {}</span></figcaption>\
<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
aria-label=\"{title} per run, from run {} to run {}\">\
<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>\
<text class=\"tick\" x=\"{tx}\" y=\"{ytop:.1}\" text-anchor=\"end\">{}</text>\
<text class=\"tick\" x=\"{tx}\" y=\"{ybot:.1}\" text-anchor=\"end\">{}</text>\
<text class=\"tick\" x=\"{LEFT}\" y=\"{xy}\">run #{}</text>\
<text class=\"tick\" x=\"{xr}\" y=\"{xy}\" text-anchor=\"end\">run #{}</text>\
<polyline fill=\"none\" stroke=\"#2463eb\" stroke-width=\"1.5\" points=\"{}\"/>",
        fmt(present[0].1),
        fmt(present[present.len() - 1].1),
        run_id(first_at),
        run_id(last_at),
        fmt(hi),
        fmt(lo),
        run_id(first_at),
        run_id(last_at),
        points.join(" "),
        pw = W - LEFT - RIGHT,
        ph = H - TOP - BOTTOM,
        tx = LEFT - 4.0,
        ytop = TOP + 4.0,
        ybot = H - BOTTOM,
        xy = H - 5.0,
        xr = W - RIGHT,
    );
    for c in &s.change_points {
        let cx = (x(c.index.saturating_sub(1)) + x(c.index)) / 2.0;
        let shift = units::change(c.relative_change);
        let _ = write!(
            h,
            "<line class=\"change\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#d43\" stroke-dasharray=\"3 2\"><title>{title}: {shift} from run #{}</title></line>\
<text class=\"shift\" x=\"{cx:.1}\" y=\"{}\" text-anchor=\"middle\">{shift}</text>",
            H - BOTTOM,
            present.get(c.index).map_or(0, |&(at, _)| run_id(at)),
            TOP - 3.0,
        );
    }
    h.push_str("</svg></figure>");
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330;overflow-wrap:anywhere}h1{font-size:1.5rem}\
h2{font-size:1.15rem;margin-top:2rem}h3{font-size:.95rem;margin:.2rem 0}\
.dim{color:#667085;font-size:.85rem}.table-wrap{overflow-x:auto}\
table{border-collapse:collapse;width:100%;font-size:.88rem}\
th,td{padding:.3rem .5rem;text-align:left;border-bottom:1px solid #e4e7ec}\
tbody tr:nth-child(even){background:#f7f8fa}tr.latest{font-weight:600}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
.trends{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #e4e7ec;border-radius:8px;\
padding:.6rem .8rem;min-width:0;max-width:100%}figure{margin:.3rem 0}figcaption{font-size:.8rem}\
svg.chart{max-width:100%;height:auto}svg .plot{fill:#f7f8fa;stroke:#e4e7ec}\
svg .tick{font-size:10px;fill:#667085}svg .shift{font-size:10px;fill:#d43}a{color:#2463eb}";
