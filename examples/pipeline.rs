//! An order-processing service in miniature, instrumented with `tracing` and
//! profiled by perf-layer. Run it, then read the plan:
//!
//! ```text
//! cargo run --release --example pipeline && cargo run --release -p perf-report -- dump.json
//! ```
//!
//! It has, on purpose, the problems perf-report should find:
//! - a hot spot: `checksum` hashes every payload byte by byte, many rounds;
//! - a bad tail: `lookup_price` is fast except when it misses the cache;
//! - allocation-heavy work: `render_receipt` builds strings piece by piece;
//! - a slow leak: `remember_order` keeps every order in a global list;
//! - waiting, not working: `fetch_order` awaits a simulated database;
//! - blocking a runtime worker: `audit` makes a synchronous call inside an
//!   async fn, which stalls the worker thread and every task queued on it.
//!
//! Options: `--orders N` (default 6000, about 3 seconds), `--out PATH` (default
//! `$PERF_LAYER_OUTPUT` or `dump.json`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use perf_layer::{CountingAllocator, PerfLayer};
use tracing::instrument;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

/// Every order ever seen, payload and receipt: the leak.
static HISTORY: Mutex<Vec<(Vec<u8>, String)>> = Mutex::new(Vec::new());

#[derive(Debug, Clone)]
struct Order {
    id: u64,
    items: Vec<u32>,
    payload: Vec<u8>,
}

#[instrument(skip_all, fields(id))]
async fn fetch_order(id: u64) -> Order {
    // A database round trip: the task waits, the thread is free.
    tokio::time::sleep(Duration::from_millis(2 + id % 3)).await;
    let items = (0..(id % 7 + 3) as u32)
        .map(|i| i * 13 + id as u32)
        .collect();
    let payload = (0..2048u32).map(|i| (i as u64 ^ id) as u8).collect();
    Order { id, items, payload }
}

#[instrument(skip_all)]
fn checksum(order: &Order) -> u64 {
    // The hot spot: hashing one byte at a time, forty rounds.
    let mut h = DefaultHasher::new();
    for round in 0..40u8 {
        for b in &order.payload {
            (b ^ round).hash(&mut h);
        }
    }
    h.finish()
}

#[instrument(skip_all)]
fn lookup_price(item: u32) -> u64 {
    let mut x = u64::from(item);
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    // One lookup in five hundred misses the cache and goes to slow storage.
    if item % 500 == 7 {
        std::thread::sleep(Duration::from_millis(2));
    }
    x % 10_000
}

#[instrument(skip_all)]
fn render_receipt(order: &Order, prices: &[u64]) -> String {
    // Allocation-heavy: a fresh String and Vec for every line, no capacity.
    let mut lines = Vec::new();
    for (item, price) in order.items.iter().zip(prices) {
        let mut line = String::new();
        for part in [
            format!("item {item}"),
            format!("{price} cents"),
            "\n".repeat(8),
        ] {
            line.push_str(&part);
        }
        lines.push(line);
    }
    lines.concat()
}

#[instrument(skip_all)]
fn remember_order(order: &Order, receipt: &str) {
    let entry = (order.payload.clone(), receipt.to_owned());
    HISTORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);
}

#[instrument(skip_all)]
async fn audit(order: &Order) {
    // Hands the record to the audit queue (a yield to the runtime)...
    tokio::task::yield_now().await;
    // ...then waits for the write to reach a slow disk with a blocking
    // call on the runtime's worker thread: the stall.
    std::thread::sleep(Duration::from_micros(300 + order.id % 200));
}

#[instrument(skip_all, fields(id))]
async fn process(id: u64) -> u64 {
    let order = fetch_order(id).await;
    let sum = checksum(&order);
    let prices: Vec<u64> = order.items.iter().map(|&i| lookup_price(i)).collect();
    let receipt = render_receipt(&order, &prices);
    remember_order(&order, &receipt);
    audit(&order).await;
    sum ^ order.id
}

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders: u64 = arg("--orders")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(6000);
    let mut builder = PerfLayer::builder().from_env().rss_alert(2 << 30);
    if let Some(out) = arg("--out") {
        builder = builder.output_path(out);
    }
    let (layer, handle) = builder.build()?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .with(layer)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let total = runtime.block_on(async {
        let mut total = 0u64;
        // Sixteen orders in flight at a time.
        for batch in (0..orders).collect::<Vec<_>>().chunks(16) {
            let tasks: Vec<_> = batch.iter().map(|&id| tokio::spawn(process(id))).collect();
            for task in tasks {
                total ^= task.await.unwrap_or_default();
            }
        }
        total
    });
    drop(runtime);

    let path = handle.write_dump()?;
    let dump = handle.snapshot();
    eprintln!(
        "processed {orders} orders (checksum {total:x}); {} callsites, {} spans; dump written to {}",
        dump.callsites.len(),
        dump.overhead.spans,
        path.display()
    );
    eprintln!(
        "next: cargo run --release -p perf-report -- {}",
        path.display()
    );
    Ok(())
}
