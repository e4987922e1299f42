//! The live bytes of every callsite over the run, as the sampler sees them:
//! a bounded timeline per tag, on one shared clock, and the peak of each.
//!
//! Bounded as the process timeline is: at most `capacity` points, and when
//! full every other point is dropped and from then on only every other tick
//! is kept (the spacing doubles), so the timeline always spans the run. A
//! series exists only for a tag that had live bytes at a kept point, so the
//! memory is at most `capacity x (1 + tags with live bytes) x 8` bytes:
//! 64 points and 4,096 callsites are 2 MiB at most.

use rustc_hash::FxHashMap;

use crate::record::heap::HeapCounts;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HeapTimeline {
    capacity: usize,
    stride: u64,
    ticks: u64,
    pub(crate) t_ms: Vec<u64>,
    pub(crate) total: Vec<u64>,
    /// Live bytes per tag, each as long as `t_ms`.
    pub(crate) series: FxHashMap<u32, Vec<u64>>,
    /// The most live bytes seen per tag, at every tick (kept or not).
    pub(crate) peak: FxHashMap<u32, u64>,
}

impl HeapTimeline {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            stride: 1,
            ticks: 0,
            t_ms: Vec::new(),
            total: Vec::new(),
            series: FxHashMap::default(),
            peak: FxHashMap::default(),
        }
    }

    /// One sampler tick: every tag's counts at `t_ms`.
    pub(crate) fn record(&mut self, t_ms: u64, counts: &[HeapCounts]) {
        for (tag, c) in counts.iter().enumerate() {
            let live = c.live_bytes();
            if live > 0 {
                let peak = self.peak.entry(tag as u32).or_default();
                *peak = (*peak).max(live);
            }
        }
        let keep = self.ticks % self.stride == 0;
        self.ticks += 1;
        if !keep {
            return;
        }
        if self.t_ms.len() >= self.capacity {
            thin(&mut self.t_ms);
            thin(&mut self.total);
            for s in self.series.values_mut() {
                thin(s);
            }
            self.stride = self.stride.saturating_mul(2);
        }
        let points = self.t_ms.len();
        self.t_ms.push(t_ms);
        self.total
            .push(counts.iter().map(HeapCounts::live_bytes).sum::<u64>());
        for (tag, c) in counts.iter().enumerate() {
            let live = c.live_bytes();
            match self.series.get_mut(&(tag as u32)) {
                Some(s) => s.push(live),
                None if live > 0 => {
                    let mut s = vec![0; points];
                    s.push(live);
                    self.series.insert(tag as u32, s);
                }
                None => {}
            }
        }
        // Tags past the end of `counts` (none yet) keep their length.
        for s in self.series.values_mut() {
            if s.len() < self.t_ms.len() {
                s.push(0);
            }
        }
    }
}

/// Keeps every other element, the first included.
fn thin(v: &mut Vec<u64>) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        i % 2 == 1
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(tag_bytes: &[u64]) -> Vec<HeapCounts> {
        tag_bytes
            .iter()
            .map(|&b| HeapCounts {
                allocations: 1,
                allocated_bytes: b,
                frees: 0,
                freed_bytes: 0,
            })
            .collect()
    }

    #[test]
    fn stays_bounded_spans_the_run_and_keeps_each_peak() {
        let mut t = HeapTimeline::new(8);
        for tick in 0..1_000u64 {
            // Tag 1 grows; tag 2 appears at tick 500 and peaks at 600.
            let two = if (500..=600).contains(&tick) { tick } else { 0 };
            t.record(tick * 10, &live(&[0, tick, two]));
        }
        assert!(t.t_ms.len() <= 8, "{}", t.t_ms.len());
        assert_eq!(t.t_ms[0], 0);
        assert!(*t.t_ms.last().unwrap() >= 9_000 - 10 * 128);
        for s in t.series.values() {
            assert_eq!(s.len(), t.t_ms.len());
        }
        assert_eq!(t.peak[&1], 999);
        assert_eq!(t.peak[&2], 600, "a peak between kept points is kept");
        let one = &t.series[&1];
        assert!(one.windows(2).all(|w| w[0] <= w[1]), "{one:?}");
    }
}
