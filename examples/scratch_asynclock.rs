//! Scratch (not committed): a tokio service on two workers; sixteen client
//! tasks each loop on `handle`: `get_user` takes a `tokio::sync::Mutex`
//! around a user cache and, on a miss (three ids in ten), awaits
//! `fetch_upstream` (a 1 ms timer) while holding the guard (the planted
//! bug: an async lock held across an await), then `render` (40 µs).
//! FIX=1 drops the guard before the fetch; FIX=half halves `render`.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use perf_layer::PerfLayer;
use tokio::sync::Mutex;
use tracing::instrument;
use tracing_subscriber::prelude::*;

fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[instrument]
async fn fetch_upstream(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    id * 3
}

#[instrument(skip(cache))]
async fn get_user(cache: &Mutex<HashMap<u64, u64>>, id: u64, fixed: bool) -> u64 {
    let miss = (id * 7919) % 10 < 3;
    if fixed {
        {
            let c = cache.lock().await;
            if !miss {
                if let Some(v) = c.get(&(id % 512)) {
                    return *v;
                }
            }
        }
        let v = fetch_upstream(id).await;
        cache.lock().await.insert(id % 512, v);
        v
    } else {
        let mut c = cache.lock().await;
        if !miss {
            if let Some(v) = c.get(&(id % 512)) {
                return *v;
            }
        }
        let v = fetch_upstream(id).await;
        c.insert(id % 512, v);
        v
    }
}

#[instrument]
fn render(user: u64, us: u64) -> u64 {
    spin(Duration::from_micros(us));
    user ^ 0x55
}

#[instrument(skip(cache))]
async fn handle(cache: &Mutex<HashMap<u64, u64>>, id: u64, fix: &str) -> u64 {
    let user = get_user(cache, id, fix == "1").await;
    render(user, if fix == "half" { 20 } else { 40 })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (layer, dump) = PerfLayer::builder()
        .output_path("/tmp/asynclock.json")
        .build()?;
    tracing_subscriber::registry().with(layer).init();
    let fix: &'static str = Box::leak(std::env::var("FIX").unwrap_or_default().into_boxed_str());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let served = rt.block_on(async move {
        let cache: &'static Mutex<HashMap<u64, u64>> =
            Box::leak(Box::new(Mutex::new(HashMap::new())));
        let clients: Vec<_> = (0..16u64)
            .map(|c| {
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        handle(cache, c * 1_000_003 + n, fix).await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut served = 0;
        for c in clients {
            served += c.await.unwrap();
        }
        served
    });
    eprintln!("served: {served}");
    drop(rt);
    dump.write_dump()?;
    Ok(())
}
