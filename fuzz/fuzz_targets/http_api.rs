//! Any request to `perf-report serve`'s API: the first line of the input is
//! the method and the target (path and query), the rest the body. Every
//! request the HTTP layer would deliver is answered with a status below 500
//! and, for the API, a JSON error or a JSON body; any valid dump posted is
//! stored. The server runs on a history with two runs.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use perf_report::history::Store;
use perf_report::serve::{ServeOptions, router};
use tower::ServiceExt as _;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

const DUMPS: [&[u8]; 2] = [
    include_bytes!("../seeds/load_analyze/threads_alloc.json"),
    include_bytes!("../seeds/load_analyze/requests.json"),
];

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("fuzz.db");
        let mut store = Store::open(&db).expect("a new history");
        for (i, d) in DUMPS.iter().enumerate() {
            let dump = perf_layer::dump::Dump::from_slice(d).expect("a seed dump");
            store
                .record(&dump, &[("branch".into(), format!("b{i}"))])
                .expect("stored");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let opts = ServeOptions::new(db).with_max_body(1 << 20);
        let router = runtime.block_on(async { router(opts) }).expect("the routes");
        Server {
            runtime,
            router,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (method, target) = line.split_once(' ').unwrap_or(("GET", &line));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    // What hyper would not deliver (not a valid request target) never
    // reaches the routes.
    let Ok(request) = Request::builder()
        .method(method)
        .uri(target)
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let s = server();
    let (status, json) = s.runtime.block_on(async {
        let response = s.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("the body reads");
        let parsed = json.then(|| serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        (status, parsed)
    });
    assert!(
        status < StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE,
        "{line:?}: {status}"
    );
    assert_ne!(json, Some(false), "{line:?}: a JSON answer that is not JSON");
    if status.is_client_error() && target.starts_with("/api/") {
        assert_eq!(json, Some(true), "{line:?}: an API error is JSON ({status})");
    }
});
