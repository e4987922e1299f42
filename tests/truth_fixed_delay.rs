//! Calls that each wait out the same delay: a server writing each answer
//! in two small writes under Nagle's algorithm makes its client wait for
//! the delayed ACK, about 40 ms a request on Linux. A fresh program of this
//! shape (four clients, thread per connection) read `request` and
//! `serve_one` blocked and "waiting together, for work or for one
//! another"; with `TCP_NODELAY` it served 2,347 times the requests.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

mod runtime_support;

use perf_report::analyze::{Class, analyze};
use runtime_support::traced;
use tracing::info_span;

#[test]
fn a_client_waiting_for_a_delayed_ack_waits_out_a_fixed_delay() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 16];
        while s.read_exact(&mut req).is_ok() {
            // Two small writes: the second waits for the first's ACK.
            s.write_all(b"LEN 00000200\n").unwrap();
            s.write_all(&[b'x'; 200]).unwrap();
        }
    });
    let ((), dump) = traced(|_| {
        let mut s = TcpStream::connect(addr).unwrap();
        for i in 0..30u64 {
            let _request = info_span!("request").entered();
            s.write_all(format!("GET {i:012}").as_bytes()).unwrap();
            let mut answer = [0u8; 213];
            s.read_exact(&mut answer).unwrap();
        }
    });
    server.join().unwrap();
    let analysis = analyze(&dump.into(), &Default::default());
    let f = analysis
        .findings
        .iter()
        .find(|f| {
            f.class == Class::Blocked && f.location.as_ref().is_some_and(|l| l.label == "request")
        })
        .unwrap_or_else(|| panic!("{:#?}", analysis.findings));
    assert!(
        f.summary.contains("every call waits about as long") && f.summary.contains("delayed ACK"),
        "{}",
        f.summary
    );
}
