//! A real crate from crates.io under the layer: `serde_json` parsing and
//! indexing documents, beside a span that blocks on a socket and one that
//! keeps what it is given. The report must name each for what it is, on
//! code nobody here wrote or tuned for.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use perf_layer::{CountingAllocator, PerfLayer};
use perf_report::analyze::{Analysis, Class, analyze};
use serde_json::{Value, json};
use tracing::info_span;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

/// Every audit record ever written: the leak.
static AUDIT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A document of `n` orders, about 110 bytes each.
fn document(n: usize) -> String {
    let orders: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": i,
                "customer": format!("customer-{}", i % 97),
                "items": [i % 7, i % 11, i % 13],
                "total": (i as f64) * 1.25,
                "paid": i % 3 == 0,
            })
        })
        .collect();
    serde_json::to_string(&Value::Array(orders)).unwrap()
}

/// A rate service on a local socket that takes 2 ms to answer.
fn rate_service() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1];
            while stream.read_exact(&mut request).is_ok() {
                std::thread::sleep(Duration::from_millis(2));
                if stream.write_all(b"1.08").is_err() {
                    break;
                }
            }
        }
    });
    addr
}

fn workload(rounds: usize) -> Analysis {
    let doc = document(2_000);
    let addr = rate_service();
    let (layer, handle) = PerfLayer::builder()
        .without_overhead_calibration()
        .sampler_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let mut rates = TcpStream::connect(addr).unwrap();
        for round in 0..rounds {
            let parsed: Value =
                info_span!("parse_document").in_scope(|| serde_json::from_str(&doc).unwrap());
            let totals = info_span!("index_by_customer").in_scope(|| {
                let mut by_customer: HashMap<&str, f64> = HashMap::new();
                for order in parsed.as_array().unwrap() {
                    *by_customer
                        .entry(order["customer"].as_str().unwrap())
                        .or_default() += order["total"].as_f64().unwrap();
                }
                by_customer.len()
            });
            let rate = info_span!("fetch_rate").in_scope(|| {
                let mut answer = [0u8; 4];
                rates.write_all(b"?").unwrap();
                rates.read_exact(&mut answer).unwrap();
                answer[0]
            });
            info_span!("keep_audit_record").in_scope(|| {
                let record = serde_json::to_string(&parsed[round % 2_000]).unwrap();
                AUDIT
                    .lock()
                    .unwrap()
                    .push(record.repeat(300) + &format!("{totals}{rate}"));
            });
        }
    });
    analyze(&handle.snapshot().into(), &Default::default())
}

fn classes_for(a: &Analysis, name: &str) -> Vec<Class> {
    a.findings
        .iter()
        .filter(|f| f.location.as_ref().is_some_and(|l| l.name == name))
        .map(|f| f.class)
        .collect()
}

#[test]
fn serde_json_under_the_layer_each_span_is_named_for_what_it_does() {
    let a = workload(150);
    let parse = classes_for(&a, "parse_document");
    let fetch = classes_for(&a, "fetch_rate");
    let keep = classes_for(&a, "keep_audit_record");
    let index = classes_for(&a, "index_by_customer");
    let all = || format!("{:#?}", a.findings);
    // Parsing computes: the hot spot, never blocked, and what it parses is
    // dropped every round: no leak.
    assert!(parse.contains(&Class::HotSpot), "{}", all());
    assert!(
        !parse.contains(&Class::Blocked) && !parse.contains(&Class::LeakSuspect),
        "{}",
        all()
    );
    // The socket read blocks: blocked, not a hot spot.
    assert!(fetch.contains(&Class::Blocked), "{}", all());
    assert!(!fetch.contains(&Class::HotSpot), "{}", all());
    // The audit trail keeps every record: the leak, and only there.
    assert!(keep.contains(&Class::LeakSuspect), "{}", all());
    let leaks: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.class == Class::LeakSuspect)
        .filter_map(|f| f.location.as_ref().map(|l| l.name.as_str()))
        .collect();
    assert_eq!(leaks, ["keep_audit_record"], "{}", all());
    // Indexing borrows from the parsed document and keeps nothing.
    assert!(
        !index.contains(&Class::LeakSuspect) && !index.contains(&Class::Blocked),
        "{}",
        all()
    );
}
