//! `perf-report serve --live ADDR`: the live view in the browser. The page
//! at `/live` polls `/api/live` every second (inline script, same origin
//! only: nothing is fetched from anywhere else) and fills its table with
//! text nodes, so a span name is never markup. `/api/live` takes a snapshot
//! of the process at ADDR at most twice a second and answers the window
//! since the previous one, as `perf-report live` shows it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use perf_layer::dump::Dump;
use serde_json::{Value, json};

use super::Shared;
use super::api::ApiError;
use crate::live::{WindowError, WindowView, fetch, window};

/// The least time between two snapshots the server takes.
const EVERY: Duration = Duration::from_millis(500);

/// What the server remembers of the live process.
#[derive(Debug)]
pub(crate) struct Live {
    addr: String,
    state: Mutex<LiveState>,
}

#[derive(Debug, Default)]
struct LiveState {
    last: Option<Dump>,
    answer: Option<(Instant, Value)>,
}

impl Live {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            addr,
            state: Mutex::new(LiveState::default()),
        }
    }

    /// The window since the last snapshot, as JSON (or why there is none).
    fn answer(&self) -> Result<Value, ApiError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, v)) = &st.answer {
            if at.elapsed() < EVERY {
                return Ok(v.clone());
            }
        }
        let new = fetch(&self.addr).map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::sanitize::one_line(&e.to_string()).into_owned(),
            )
        })?;
        let value = match st.last.as_ref().map(|old| window(old, &new)) {
            Some(Ok(w)) => {
                let mut v = view_json(&self.addr, &WindowView::of(&w));
                v["ended_at_unix_ms"] = json!(new.run.ended_at_unix_ms);
                v
            }
            Some(Err(WindowError::Restarted)) => {
                json!({"addr": self.addr, "status": "the process restarted; the next window starts from it"})
            }
            Some(Err(WindowError::NotLater)) | None => {
                json!({"addr": self.addr, "status": "waiting for a second snapshot"})
            }
        };
        st.last = Some(new);
        st.answer = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

fn view_json(addr: &str, v: &WindowView) -> Value {
    let rows: Vec<Value> = v
        .rows
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "calls_per_s": r.calls_per_s,
                "self_share": r.self_share,
                "p50_ns": r.p50_ns,
                "p99_ns": r.p99_ns,
                "on_cpu": r.on_cpu,
                "alloc_per_s": r.alloc_per_s,
                "live_bytes": r.live_bytes,
            })
        })
        .collect();
    let findings: Vec<Value> = v
        .findings
        .iter()
        .map(|(s, t)| json!({"severity": s.to_string(), "text": t}))
        .collect();
    json!({
        "addr": addr,
        "program": v.program,
        "pid": v.pid,
        "seconds": v.seconds,
        "process": v.process_line(),
        "rows": rows,
        "findings": findings,
    })
}

fn live_of(opts: &Shared) -> Result<&Live, ApiError> {
    opts.live.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this server has no live view: start it with `perf-report serve --live ADDR`",
        )
    })
}

pub(super) async fn api(State(opts): State<Arc<Shared>>) -> Result<Json<Value>, ApiError> {
    live_of(&opts)?;
    let shared = opts.clone();
    tokio::task::spawn_blocking(move || live_of(&shared)?.answer())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(Json)
}

pub(super) async fn page(State(opts): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let live = live_of(&opts)?;
    let html = PAGE.replace(
        "{addr}",
        &crate::render::html::escape(&crate::sanitize::bounded(&live.addr, 200)),
    );
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The page: its script only reads `/api/live` and writes text nodes.
const PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>perf-report live: {addr}</title>
<style>body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330;overflow-wrap:anywhere}
h1{font-size:1.4rem}.dim{color:#667085;font-size:.85rem}.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{padding:.3rem .5rem;text-align:left;border-bottom:1px solid #e4e7ec}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
li.high,li.critical{color:#b91c1c}li.medium{color:#a16207}</style></head>
<body data-updates="0" data-errors="0"><h1>perf-report live: {addr}</h1>
<p id="status" class="dim">waiting for the first window</p><p id="process"></p>
<div class="wrap"><table><thead><tr><th>span</th><th class="num">calls/s</th><th class="num">self %</th><th class="num">p50</th><th class="num">p99</th><th class="num">on-CPU</th><th class="num">alloc/s</th><th class="num">live heap</th></tr></thead><tbody id="rows"></tbody></table></div>
<h2>Findings of this window</h2><ul id="findings"></ul>
<script>
window.addEventListener('error',function(){document.body.dataset.errors=String(Number(document.body.dataset.errors)+1);});
function ns(v){if(v>=1e9)return (v/1e9).toFixed(2)+' s';if(v>=1e6)return (v/1e6).toFixed(2)+' ms';if(v>=1e3)return (v/1e3).toFixed(1)+' µs';return Math.round(v)+' ns';}
function bytes(v){var u=['B','KiB','MiB','GiB'];var i=0;while(v>=1024&&i<3){v/=1024;i++;}return (i?v.toFixed(1):Math.round(v))+' '+u[i];}
function cell(tr,text,num){var td=document.createElement('td');td.textContent=text;if(num){td.className='num';}tr.appendChild(td);}
function show(d){
  var st=document.getElementById('status');
  if(d.status){st.textContent=d.status;return;}
  st.textContent=d.program+' (pid '+d.pid+'): the last '+d.seconds.toFixed(1)+' s';
  document.getElementById('process').textContent=d.process;
  var body=document.getElementById('rows');body.textContent='';
  d.rows.forEach(function(r){var tr=document.createElement('tr');cell(tr,r.name,false);cell(tr,r.calls_per_s.toFixed(1),true);
    cell(tr,(r.self_share*100).toFixed(1)+'%',true);cell(tr,ns(r.p50_ns),true);cell(tr,ns(r.p99_ns),true);
    cell(tr,r.on_cpu===null?'-':Math.round(r.on_cpu*100)+'%',true);cell(tr,r.alloc_per_s===null?'-':bytes(r.alloc_per_s)+'/s',true);
    cell(tr,r.live_bytes===null?'-':bytes(r.live_bytes),true);body.appendChild(tr);});
  var ul=document.getElementById('findings');ul.textContent='';
  if(!d.findings.length){var li=document.createElement('li');li.textContent='none';ul.appendChild(li);}
  d.findings.forEach(function(f){var li=document.createElement('li');li.className=f.severity;li.textContent='['+f.severity+'] '+f.text;ul.appendChild(li);});
  document.body.dataset.updates=String(Number(document.body.dataset.updates)+1);
}
function tick(){fetch('/api/live').then(function(r){return r.json();}).then(function(d){
  if(d.error){document.getElementById('status').textContent='retrying every second · '+d.error;}else{show(d);}
}).catch(function(e){document.getElementById('status').textContent='retrying every second · the server did not answer';});}
tick();setInterval(tick,1000);
</script></body></html>
"#;
