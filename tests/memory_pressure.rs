//! Memory pressure levels on the process's real RSS, against a limit
//! injected through the builder: memory touched up past the warning and
//! critical fractions and then freed moves the level up and back down, the
//! callbacks hear every change in order, the dump keeps the same changes,
//! and a callback that panics or blocks stalls nothing. Alone in its binary,
//! so no other test moves its RSS.

#![cfg(target_os = "linux")]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use perf_layer::dump::LimitSource;
use perf_layer::{MemoryPressureEvent, PerfLayer, PressureLevel};

const MIB: u64 = 1 << 20;

/// Resident bytes of this process now, from `/proc/self/statm`.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Memory made resident: every page written.
fn touched(bytes: u64) -> Vec<u8> {
    vec![1u8; bytes as usize]
}

/// Waits for the callbacks to report `level`, returning every level heard
/// on the way; panics after 10 s.
fn until(heard: &mpsc::Receiver<MemoryPressureEvent>, level: PressureLevel) -> Vec<PressureLevel> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match heard.recv_timeout(left) {
            Ok(e) => {
                seen.push(e.level);
                if e.level == level {
                    return seen;
                }
            }
            Err(_) => panic!("no change to {level} within 10 s; heard {seen:?}"),
        }
    }
}

#[test]
fn levels_follow_rss_and_callbacks_hear_each_change() {
    let base = rss();
    // A limit 200 MiB above what the process holds: it starts NORMAL.
    let limit = base + 200 * MIB;
    let (tell, heard) = mpsc::channel();
    let (_layer, handle) = PerfLayer::builder()
        .without_overhead_calibration()
        .sampler_interval(Duration::from_millis(10))
        .memory_limit(limit)
        .on_memory_pressure(|_| panic!("a callback that panics"))
        .on_memory_pressure(move |e| {
            let _ = tell.send(e);
        })
        .on_memory_pressure(|_| std::thread::sleep(Duration::from_millis(50)))
        .build()
        .unwrap();

    // Up to 78% of the limit: WARNING.
    let warm = touched((limit as f64 * 0.78) as u64 - base);
    assert_eq!(
        until(&heard, PressureLevel::Warning),
        [PressureLevel::Warning]
    );
    // On to 98%: CRITICAL, through EMERGENCY or straight there, never down.
    let hot = touched((limit as f64 * 0.20) as u64);
    let up = until(&heard, PressureLevel::Critical);
    assert!(
        up.windows(2).all(|w| w[0] < w[1]),
        "levels only rise while RSS does: {up:?}"
    );
    // Everything freed: back to NORMAL.
    drop((warm, hot));
    let down = until(&heard, PressureLevel::Normal);
    assert!(
        down.windows(2).all(|w| w[0] > w[1]),
        "levels only fall while RSS does: {down:?}"
    );

    let d = handle.snapshot();
    let p = d.memory_pressure.expect("pressure figures with a sampler");
    assert_eq!(
        (p.limit_bytes, p.limit_source),
        (limit, LimitSource::Configured)
    );
    assert_eq!(p.peak_level, PressureLevel::Critical);
    assert!(p.peak_rss_bytes >= (limit as f64 * 0.95) as u64, "{p:?}");
    assert_eq!(p.level, PressureLevel::Normal);
    // The dump's changes are the callbacks' changes, in order.
    let kept: Vec<PressureLevel> = p.transitions.iter().map(|t| t.to).collect();
    let told: Vec<PressureLevel> = [vec![PressureLevel::Warning], up, down].concat();
    assert_eq!(kept, told);
    assert!(p.time_in_level_ms[1] > 0, "some time in WARNING: {p:?}");
    // The sleeping callback (50 ms a change) fell behind no more than the
    // queue holds: nothing dropped in so few changes.
    assert_eq!(p.callback_events_dropped, 0);
}
