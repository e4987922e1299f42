//! The page around a report: the document head (title, the content
//! security policy that keeps it self-contained, the style sheet), and the
//! self-check a browser test reads.
//!
//! The policy allows no fetch at all (`default-src 'none'`): images only as
//! `data:` URLs, style and script only inline. So even a name that escaped
//! escaping could not load anything.
//!
//! The self-check: a listener registered first in `<head>` counts script
//! errors; once the page has loaded, a script at the end of `<body>` counts
//! the charts that drew (each `svg.chart` holding a line, and each
//! flamegraph `<img>` that decoded to a non-zero width) and sets
//! `data-charts` and `data-errors` on `<body>`, beside `data-expected-charts`,
//! what the renderer drew. It also sets `data-overflow`, how many pixels
//! the page is wider than the window (0: nothing is cut off or scrolls the
//! page sideways; a wide table scrolls inside its own box),
//! `data-table-overflow`, how many pixels the widest table scrolls inside
//! its box (0: every table fits), and
//! `data-flame-height`, the flamegraph's drawn height in pixels.

use super::escape;

/// The report's body being built, and how many charts it holds.
#[derive(Debug, Default)]
pub(super) struct Page {
    pub(super) body: String,
    /// Charts written: `svg.chart` figures and flamegraph images.
    pub(super) charts: usize,
}

/// Counts errors from the start: registered before anything else runs.
const ERROR_HOOK: &str = "<script>window.perfReportErrors=0;window.addEventListener('error',function(){window.perfReportErrors+=1;},true);</script>";

/// Counts what drew, once everything has loaded.
const SELF_CHECK: &str = "<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('svg.chart').forEach(function(s){if(s.querySelector('polyline,path')){n+=1;}});document.querySelectorAll('img.flamegraph').forEach(function(i){if(i.complete&&i.naturalWidth>0){n+=1;}});document.body.dataset.charts=String(n);document.body.dataset.errors=String(window.perfReportErrors);var d=document.documentElement;document.body.dataset.overflow=String(Math.max(0,d.scrollWidth-d.clientWidth));var t=0;document.querySelectorAll('.table-wrap').forEach(function(w){t=Math.max(t,w.scrollWidth-w.clientWidth);});document.body.dataset.tableOverflow=String(t);var f=document.querySelector('img.flamegraph');if(f){document.body.dataset.flameHeight=String(Math.round(f.getBoundingClientRect().height));}});</script>";

/// Nothing is fetched: images are `data:` URLs, style and script inline.
const POLICY: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--panel:#f6f8fa;--line:#d1d9e0;--stripe:#f6f8fa;--accent:#0969da;
--mono:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;
--critical:#b91c1c;--high:#dc2626;--medium:#a16207;--low:#6b7280;--good:#15803d;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--panel:#151b23;--line:#3d444d;
--stripe:#151b23;--accent:#4493f8;--critical:#f87171;--high:#fca5a5;--medium:#facc15;--low:#9ca3af;--good:#4ade80}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
.page{max-width:1200px;margin:0 auto;padding:24px 28px 48px;overflow-wrap:anywhere}
header h1{font-size:1.6rem;margin:0 0 4px}
header p{margin:2px 0;color:var(--muted)}
nav{margin:14px 0 6px;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.9rem}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
h2{font-size:1.2rem;margin:32px 0 6px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:0 0 6px}
.muted,.lede{color:var(--muted)}.lede{margin:0 0 10px}
code,.name,.src{font-family:var(--mono);font-size:.88em}
.name{overflow-wrap:anywhere}.src{color:var(--muted);overflow-wrap:anywhere}
code{background:var(--panel);padding:0 3px;border-radius:3px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{font-weight:600;background:var(--panel);position:sticky;top:0}
tbody tr:nth-child(even){background:var(--stripe)}
th.num{text-align:right;white-space:nowrap}
.sev-critical{color:var(--critical);font-weight:700}.sev-high{color:var(--high);font-weight:600}
.sev-medium{color:var(--medium);font-weight:600}.sev-low{color:var(--low)}
.v-regressed{color:var(--critical);font-weight:700}.v-mixed{color:var(--medium);font-weight:600}.v-improved{color:var(--good);font-weight:600}
.more{color:var(--muted);font-size:.88rem;margin:6px 0}
ol.steps{list-style:none;padding:0;margin:0}
li.step{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:12px 0;background:var(--bg)}
li.step dl{display:grid;grid-template-columns:7em 1fr;gap:4px 12px;margin:0}
li.step dt{color:var(--muted);font-weight:600}li.step dd{margin:0}
li.step dd ul,li.step dd ol{margin:0;padding-left:1.2em}
ol.short{padding-left:1.6em}ol.short li{margin:4px 0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}
figure{margin:12px 0}
.chart-box{border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin:0}
.chart-box figcaption{font-size:.9rem;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg.chart .plot{fill:var(--panel);stroke:var(--line)}
svg.chart .grid{stroke:var(--line);stroke-width:1}
svg.chart text{fill:var(--muted);font-size:12px;font-family:inherit}
svg.chart .axis-title{fill:var(--fg);font-size:13px}
ul.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.82rem}
ul.legend li{display:flex;align-items:center;gap:6px;overflow-wrap:anywhere;min-width:0}
svg.swatch{flex:none}
.flame-wrap{overflow-x:auto}
img.flamegraph{width:100%;min-width:900px;height:auto;display:block;border:1px solid var(--line);border-radius:6px;background:#fff}
ul.notes li{margin:3px 0}
footer{margin-top:40px;color:var(--muted);font-size:.8rem}
"#;

impl Page {
    /// The whole document: `title` (from the dump: escaped here) in the
    /// head, then the body and the self-check.
    pub(super) fn finish(self, title: &str) -> String {
        let mut out = String::with_capacity(self.body.len() + STYLE.len() + 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
        out.push_str(POLICY);
        out.push_str("\">\n<meta name=\"generator\" content=\"perf-report ");
        out.push_str(env!("CARGO_PKG_VERSION"));
        out.push_str("\">\n<title>");
        out.push_str(&escape(title));
        out.push_str("</title>\n");
        out.push_str(ERROR_HOOK);
        out.push_str("\n<style>");
        out.push_str(STYLE);
        out.push_str("</style>\n</head>\n<body data-expected-charts=\"");
        out.push_str(&self.charts.to_string());
        out.push_str("\">\n<div class=\"page\">\n");
        out.push_str(&self.body);
        out.push_str("<footer>Written by perf-report ");
        out.push_str(env!("CARGO_PKG_VERSION"));
        out.push_str(
            ". One self-contained file: charts are drawn inline, nothing is fetched.</footer>\n",
        );
        out.push_str("</div>\n");
        out.push_str(SELF_CHECK);
        out.push_str("\n</body>\n</html>\n");
        out
    }
}
