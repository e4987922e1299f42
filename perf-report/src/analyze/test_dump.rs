//! Synthetic dumps for the detectors' unit tests: spans with known figures
//! (real HDR histograms, as a dump stores them), and one detector run over
//! a dump. A reduced `tests/support`, inside the crate so that a test can
//! reach a detector and its finding's advice.

use hdrhistogram::Histogram;
use perf_layer::dump::{
    AllocStats, CallEdge, CallsiteStats, CpuStats, Dump, HeapSummary, HistogramDump, ProcessSample,
};
use serde_json::json;

use super::context::Context;
use super::detectors::Class;
use super::finding::Finding;
use crate::LoadedDump;
use crate::config::Config;

pub(crate) const US: u64 = 1_000;
pub(crate) const MS: u64 = 1_000_000;
pub(crate) const MIB: u64 = 1024 * 1024;

/// An HDR histogram of `(value, count)` pairs, stored as a dump would.
pub(crate) fn hist(values: &[(u64, u64)]) -> HistogramDump {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
    let mut sum = 0u64;
    for &(v, n) in values {
        h.record_n(v, n).unwrap();
        sum += v * n;
    }
    HistogramDump::from_histogram(&h, sum, 0)
}

/// One span callsite to synthesise; without children, so its self time is
/// its busy time.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    name: &'static str,
    busy: Vec<(u64, u64)>,
    idle_per_call: u64,
    alloc: Option<AllocStats>,
    live: Option<Vec<u64>>,
    cpu: Option<CpuStats>,
}

impl Span {
    /// A span whose calls are busy `(value_ns, calls)`.
    pub(crate) fn new(name: &'static str, busy: &[(u64, u64)]) -> Self {
        Self {
            name,
            busy: busy.to_vec(),
            idle_per_call: 0,
            alloc: None,
            live: None,
            cpu: None,
        }
    }

    /// Idle time added to every call's wall time.
    pub(crate) fn idle(mut self, per_call: u64) -> Self {
        self.idle_per_call = per_call;
        self
    }

    /// Self-allocated `bytes` in `allocs`, `net` bytes kept, by `retaining`
    /// calls.
    pub(crate) fn alloc(mut self, bytes: u64, allocs: u64, net: i64, retaining: u64) -> Self {
        self.alloc = Some(AllocStats {
            alloc_bytes: bytes,
            allocs,
            freed_bytes: (bytes as i64 - net).max(0) as u64,
            frees: allocs,
            self_alloc_bytes: bytes,
            self_allocs: allocs,
            net_bytes: net,
            calls_retaining: retaining,
        });
        self
    }

    /// Its live bytes at each point of the dump's heap timeline, the last
    /// at the end.
    pub(crate) fn live(mut self, series: Vec<u64>) -> Self {
        self.live = Some(series);
        self
    }

    /// Every call timed on the CPU, one interval each: `self_on_cpu_ns` of
    /// its self time on the CPU and `self_preempted_ns` preempted, in all,
    /// with these context switches in all.
    pub(crate) fn on_cpu(
        mut self,
        self_on_cpu_ns: u64,
        self_preempted_ns: u64,
        voluntary: u64,
        involuntary: u64,
    ) -> Self {
        let calls = self.calls();
        let busy: u64 = self.busy.iter().map(|&(v, n)| v * n).sum();
        self.cpu = Some(CpuStats {
            timed_calls: calls,
            intervals: calls,
            untimed_intervals: 0,
            busy_ns: busy,
            self_ns: busy,
            on_cpu_ns: hist(&[(self_on_cpu_ns / calls, calls)]),
            self_on_cpu_ns,
            off_cpu_ns: busy - self_on_cpu_ns,
            preempted_ns: hist(&[(self_preempted_ns / calls, calls)]),
            self_preempted_ns: Some(self_preempted_ns),
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
            sampled: None,
        });
        self
    }

    pub(crate) fn calls(&self) -> u64 {
        self.busy.iter().map(|p| p.1).sum()
    }

    /// The dump's callsite.
    pub(crate) fn callsite(&self, id: u32) -> CallsiteStats {
        let calls = self.calls();
        let wall: Vec<_> = self
            .busy
            .iter()
            .map(|&(v, n)| (v + self.idle_per_call, n))
            .collect();
        let value = json!({
            "id": id,
            "name": self.name,
            "target": "app::work",
            "module_path": "app::work",
            "file": "src/work.rs",
            "line": id + 1,
            "level": "INFO",
            "calls": calls,
            "wall_ns": hist(&wall),
            "busy_ns": hist(&self.busy),
            "idle_ns": hist(&[(self.idle_per_call, calls)]),
            "self_ns": hist(&self.busy),
            "events": {"trace": 0, "debug": 0, "info": 0, "warn": 0, "error": 0},
            "alloc": self.alloc,
            "rss_delta": null,
            "heap": self.live.as_ref().map(|series| {
                let live = series.last().copied().unwrap_or(0);
                let allocated = self.alloc.map_or(live, |a| a.alloc_bytes.max(live));
                json!({
                    "allocated_bytes": allocated,
                    "allocations": calls,
                    "freed_bytes": allocated - live,
                    "frees": calls,
                    "live_bytes": live,
                    "peak_live_bytes": series.iter().copied().max().unwrap_or(0),
                    "live_timeline_bytes": series,
                })
            }),
            "cpu": self.cpu,
        });
        serde_json::from_value(value).unwrap()
    }
}

/// A run of `duration_ns` with `spans`, all children of the first;
/// allocation tracked when every span has allocation figures, a heap
/// timeline (one point a millisecond apart per value) when one has live
/// bytes.
pub(crate) fn dump(duration_ns: u64, spans: &[Span]) -> Dump {
    let mut d = Dump::empty("unit");
    d.run.duration_ns = duration_ns;
    d.allocations_tracked = spans.iter().all(|s| s.alloc.is_some());
    d.callsites = spans
        .iter()
        .enumerate()
        .map(|(i, s)| s.callsite(i as u32))
        .collect();
    if let Some(points) = spans.iter().find_map(|s| s.live.as_ref().map(Vec::len)) {
        for (cs, s) in d.callsites.iter_mut().zip(spans) {
            if s.live.is_none() {
                cs.heap = Span::new(s.name, &[])
                    .live(vec![0; points])
                    .callsite(0)
                    .heap;
            }
        }
        let total: Vec<u64> = (0..points)
            .map(|i| {
                d.callsites
                    .iter()
                    .map(|c| c.heap.as_ref().map_or(0, |h| h.live_timeline_bytes[i]))
                    .sum()
            })
            .collect();
        d.heap = Some(HeapSummary {
            tag_bytes: 8,
            live_bytes: *total.last().unwrap(),
            timeline_t_ms: (0..points as u64).collect(),
            timeline_live_bytes: total,
            ..HeapSummary::default()
        });
    }
    d.edges = (1..spans.len() as u32)
        .map(|child| CallEdge {
            parent: 0,
            child,
            calls: spans[child as usize].calls(),
            child_busy_ns: 0,
            outlived: 0,
        })
        .collect();
    d
}

/// Gives `d` a timeline of `samples` one a second at `cpu_percent`,
/// `kernel_percent` of it in the kernel, the callsite at `at` live from
/// the first to the last, and `cpu_ns` of the process's CPU.
pub(crate) fn kernel_timeline(
    d: &mut Dump,
    at: usize,
    samples: u64,
    cpu_percent: f64,
    kernel_percent: f64,
    cpu_ns: u64,
) {
    timeline(d, &vec![(1 << 20, cpu_percent); samples as usize]);
    for s in &mut d.timeline.samples {
        s.system_cpu_share_percent = Some(kernel_percent);
    }
    d.callsites[at].active = Some(perf_layer::dump::ActiveWindow {
        first_open_ns: 0,
        last_close_ns: (samples - 1) * 1_000 * MS,
    });
    d.run.cpu_ns = Some(cpu_ns);
}

/// Gives `d` a process timeline: one sample a second per `(rss_bytes,
/// cpu_percent)`.
pub(crate) fn timeline(d: &mut Dump, samples: &[(u64, f64)]) {
    d.timeline.interval_ms = 1_000;
    d.timeline.samples = samples
        .iter()
        .zip(0..)
        .map(|(&(rss_bytes, cpu_percent), i)| ProcessSample {
            t_ms: i * 1_000,
            rss_bytes,
            virtual_bytes: 4 * rss_bytes,
            cpu_percent,
            threads: 4,
            ..ProcessSample::default()
        })
        .collect();
}

/// The findings of one class's detector over `dump`, with the default
/// settings.
pub(crate) fn detect(class: Class, dump: Dump) -> Vec<Finding> {
    detect_with(class, dump, &Config::default())
}

/// The findings of one class's detector over `dump`, with `config`.
pub(crate) fn detect_with(class: Class, dump: Dump, config: &Config) -> Vec<Finding> {
    let input = LoadedDump::from(dump);
    let cx = Context::new(&input, config, config.classes.measures());
    let mut found = Vec::new();
    class.detector().detect(&cx, &mut found);
    found
}

/// The finding about the span named `name`, if any.
pub(crate) fn about<'a>(found: &'a [Finding], name: &str) -> Option<&'a Finding> {
    found
        .iter()
        .find(|f| f.location.as_ref().is_some_and(|l| l.name == name))
}

/// The value of the evidence named `metric`.
pub(crate) fn evidence(f: &Finding, metric: &str) -> f64 {
    f.evidence
        .iter()
        .find(|e| e.metric == metric)
        .unwrap_or_else(|| panic!("no evidence `{metric}` in {:?}", f.evidence))
        .value
}

/// `actual` within `tolerance` (relative) of `expected`.
#[track_caller]
pub(crate) fn assert_near(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs(),
        "{actual} is not within {tolerance} of {expected}"
    );
}
