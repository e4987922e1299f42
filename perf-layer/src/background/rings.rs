//! The bounded rings the sampler fills and the snapshot reads: the
//! process timeline and the alerts. Plain data, so the profiler that holds
//! them needs nothing else of the background thread.

use std::collections::VecDeque;

use crate::dump::{Alert, ProcessSample, Timeline};

/// A timeline that never holds more than `capacity` samples but always spans
/// the whole run: when full, every other sample is dropped and from then on
/// only every other tick is kept (the spacing doubles).
#[derive(Debug)]
pub(crate) struct TimelineRing {
    samples: Vec<ProcessSample>,
    capacity: usize,
    base_interval_ms: u64,
    stride: u64,
    ticks: u64,
}

impl TimelineRing {
    pub(crate) fn new(capacity: usize, base_interval_ms: u64) -> Self {
        Self {
            samples: Vec::new(),
            capacity,
            base_interval_ms,
            stride: 1,
            ticks: 0,
        }
    }

    pub(crate) fn push(&mut self, sample: ProcessSample) {
        let keep = self.ticks % self.stride == 0;
        self.ticks += 1;
        if !keep {
            return;
        }
        if self.samples.len() >= self.capacity {
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = self.stride.saturating_mul(2);
        }
        self.samples.push(sample);
    }

    /// The newest sample kept.
    #[cfg(feature = "prometheus")]
    pub(crate) fn latest(&self) -> Option<&ProcessSample> {
        self.samples.last()
    }

    pub(crate) fn to_timeline(&self) -> Timeline {
        Timeline {
            interval_ms: self.base_interval_ms.saturating_mul(self.stride),
            samples: self.samples.clone(),
        }
    }
}

/// The newest `capacity` alerts, plus how many older ones were evicted.
#[derive(Debug)]
pub(crate) struct AlertRing {
    pub(crate) alerts: VecDeque<Alert>,
    capacity: usize,
    pub(crate) dropped: u64,
}

impl AlertRing {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            alerts: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, alert: Alert) {
        if self.alerts.len() >= self.capacity {
            self.alerts.pop_front();
            self.dropped += 1;
        }
        self.alerts.push_back(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::AlertKind;

    fn at(t_ms: u64) -> ProcessSample {
        ProcessSample {
            t_ms,
            rss_bytes: t_ms,
            virtual_bytes: 0,
            cpu_percent: 0.0,
            threads: 1,
            cpu_pressure_percent: None,
            steal_percent: None,
            machine_cpu_percent: None,
            voluntary_switches: None,
            involuntary_switches: None,
            system_cpu_share_percent: None,
            waiting_for_cpu_percent: None,
            open_fds: None,
        }
    }

    #[test]
    fn timeline_stays_bounded_and_spans_the_run() {
        let mut ring = TimelineRing::new(8, 100);
        for t in 0..1000 {
            ring.push(at(t * 100));
        }
        let timeline = ring.to_timeline();
        assert!(timeline.samples.len() <= 8, "{}", timeline.samples.len());
        assert_eq!(timeline.samples[0].t_ms, 0);
        // Covers the run to within one (doubled) interval of its last tick.
        let last = timeline.samples.last().unwrap().t_ms;
        assert!(
            last + timeline.interval_ms > 99_900,
            "last {last}, interval {}",
            timeline.interval_ms
        );
        let gaps: Vec<u64> = timeline
            .samples
            .windows(2)
            .map(|w| w[1].t_ms - w[0].t_ms)
            .collect();
        assert!(
            gaps.iter().all(|&g| g == timeline.interval_ms),
            "{gaps:?} vs {}",
            timeline.interval_ms
        );
    }

    #[test]
    fn alert_ring_keeps_the_newest() {
        let mut ring = AlertRing::new(2);
        for t in 0..5 {
            ring.push(Alert {
                t_ms: t,
                kind: AlertKind::Cpu,
                value: 1.0,
                threshold: 0.5,
                message: String::new(),
            });
        }
        assert_eq!(ring.dropped, 3);
        assert_eq!(
            ring.alerts.iter().map(|a| a.t_ms).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }
}
