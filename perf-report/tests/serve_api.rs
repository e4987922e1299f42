//! `perf-report serve` for real: the binary on 127.0.0.1, every endpoint
//! and its errors over HTTP, then a clean stop on SIGTERM. Bounded in time.

mod support;

use serde_json::Value;
use support::history::run;
use support::server::{agent, serve, stop};

fn get(a: &ureq::Agent, url: &str) -> (u16, String, String) {
    let mut r = a.get(url).call().unwrap();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), kind, body)
}

fn post(a: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Value) {
    let mut r = a.post(url).send(body).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn every_endpoint_answers_and_every_error_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let server = serve(&db, &[]);
    let a = agent();
    let b = &server.base;

    let (code, _, body) = get(&a, &format!("{b}/api/status"));
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["runs"], 0);
    assert!(status["schema_version"].as_u64().unwrap() >= 1);

    // Record through the API: created, then already there.
    let dump = serde_json::to_vec(&run(0, 0.04, None, 0.0)).unwrap();
    let (code, v) = post(&a, &format!("{b}/api/runs?label=branch=main"), &dump);
    assert_eq!(
        (code, v["created"].clone()),
        (201, Value::Bool(true)),
        "{v}"
    );
    let id = v["id"].as_i64().unwrap();
    let (code, v) = post(&a, &format!("{b}/api/runs"), &dump);
    assert_eq!(
        (code, v["created"].clone(), v["id"].as_i64()),
        (200, Value::Bool(false), Some(id))
    );
    for i in 1..6 {
        let d = serde_json::to_vec(&run(i, 0.04, None, 0.0)).unwrap();
        assert_eq!(
            post(&a, &format!("{b}/api/runs?label=branch=main"), &d).0,
            201
        );
    }
    // A path parameter that does not decode to UTF-8: still a JSON error
    // (found by fuzz/fuzz_targets/http_api.rs).
    let (code, kind, body) = get(&a, &format!("{b}/api/runs/%ff%fe/report"));
    assert_eq!(code, 400, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}: {body}");
    // A method a route does not serve: 405, and still a JSON error.
    let mut r = a.delete(&format!("{b}/api/runs/{id}")).call().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("DELETE"), "{v}");
    // Bodies that are not dumps, and a bad query.
    let (code, v) = post(&a, &format!("{b}/api/runs"), b"{\"not\": \"a dump\"}");
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("request body"), "{v}");
    let (code, _) = post(&a, &format!("{b}/api/runs"), b"\x00\x01garbage");
    assert_eq!(code, 400);
    let (code, v) = post(&a, &format!("{b}/api/runs?label=nolabel"), &dump);
    assert_eq!(code, 400, "{v}");

    let (code, _, body) = get(&a, &format!("{b}/api/runs"));
    assert_eq!(code, 200);
    let runs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 6);
    let (_, _, body) = get(&a, &format!("{b}/api/runs?label=branch=main&limit=2"));
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, _, body) = get(&a, &format!("{b}/api/runs?colour=blue"));
    assert_eq!(code, 400, "{body}");

    let (code, _, body) = get(&a, &format!("{b}/api/runs/{id}"));
    assert_eq!(code, 200);
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["run"]["labels"]["branch"], "main");
    assert_eq!(one["spans"].as_array().unwrap().len(), 3);

    let (code, kind, body) = get(&a, &format!("{b}/api/runs/{id}/report"));
    assert_eq!(code, 200);
    assert!(kind.starts_with("application/json"), "{kind}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        report["callsites"].as_array().map(Vec::len),
        Some(3),
        "{body:.300}"
    );

    let (code, kind, body) = get(&a, &format!("{b}/api/runs/{id}/report.html"));
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("<html"), "{body:.200}");

    let (code, kind, body) = get(&a, &format!("{b}/api/runs/{id}/flamegraph.svg"));
    assert_eq!(code, 200);
    assert_eq!(kind, "image/svg+xml");
    assert!(body.contains("<svg"));

    let (code, _, body) = get(&a, &format!("{b}/api/spans/lookup/trend"));
    assert_eq!(code, 200, "{body}");
    let trend: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(trend[0]["points"].as_array().unwrap().len(), 6);

    let (code, kind, body) = get(&a, &format!("{b}/"));
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/html"));
    assert!(
        body.contains("<table") && body.contains("app::work::lookup"),
        "{body:.400}"
    );

    // Unknown things: 404 with a JSON error.
    for path in [
        "/api/runs/999",
        "/api/runs/abc",
        "/api/runs/999/report",
        "/api/spans/nothing/trend",
        "/nowhere",
    ] {
        let (code, kind, body) = get(&a, &format!("{b}{path}"));
        assert_eq!(code, 404, "{path}: {body}");
        assert!(kind.starts_with("application/json"), "{path}: {kind}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].is_string(), "{path}: {body}");
    }
    stop(server);
}

#[test]
fn an_oversize_body_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("small.db"), &["--max-size", "4KiB"]);
    let a = agent();
    let dump = serde_json::to_vec(&run(0, 0.04, None, 0.0)).unwrap();
    assert!(dump.len() > 4096);
    let (code, v) = post(&a, &format!("{}/api/runs", server.base), &dump);
    assert_eq!(code, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
    stop(server);
}
