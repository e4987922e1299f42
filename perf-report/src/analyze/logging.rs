//! A span whose self time is its logging: the subscriber's handling of the
//! events inside it (the dump's `events.ns`: every other layer's work on
//! them, a `fmt` layer formatting and writing each line), where that is a
//! large part of it. The hot spot and blocked findings read it: computing
//! or waiting, the fix is then to log less, or without blocking, not to
//! memoize or to find the blocking call.

use perf_layer::dump::CallsiteStats;

use crate::analyze::finding::Evidence;
use crate::stats;
use crate::units::{self, Unit};

/// At least this share of a span's self time in the subscriber's handling
/// of its events makes logging less its first fix (0.25).
const MIN_LOGGING_SHARE: f64 = 0.25;

/// Fewest events that make the layer's sample of their time (one in about
/// 16, each weighted by the events it stands for) worth reading: about 16
/// timed. Under it one slow write weighted 16 times could read as logging.
const MIN_LOGGED_EVENTS: u64 = 256;

/// A span's events, where the subscriber's handling of them is at least
/// [`MIN_LOGGING_SHARE`] of its self time. An axum service's `build_report`
/// logged an `info!` a row, 300 a call, through a `fmt` layer writing to a
/// file: a hot spot of 33% of the process's CPU whose fixes were to memoize
/// and to find a better algorithm, where 90% of its self time was the
/// events (one event a call made its requests 63% faster and the process's
/// CPU 31% less). Four threads logging five lines a job to a stdout a slow
/// reader drained: `handle` blocked, 96% of its self time in its events,
/// told to find its blocking call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Logging {
    /// Their share of its self time.
    pub(crate) part: f64,
    /// Events a call.
    pub(crate) per_call: f64,
}

/// [`Logging`] of `cs`, where its events are that large a part of it.
pub(crate) fn of(cs: &CallsiteStats) -> Option<Logging> {
    let part = stats::share(cs.events.ns as f64, cs.self_ns.sum as f64).min(1.0);
    (part >= MIN_LOGGING_SHARE && cs.events.total() >= MIN_LOGGED_EVENTS).then(|| Logging {
        part,
        per_call: cs.events.total() as f64 / cs.calls.max(1) as f64,
    })
}

impl Logging {
    /// The finding's evidence of it.
    pub(crate) fn evidence(&self) -> Evidence {
        Evidence::new(
            "the subscriber's handling of its events, share of its self time",
            self.part,
            Unit::Share,
            Some(MIN_LOGGING_SHARE),
        )
    }

    /// The finding's summary of it: "its events (5 a call) are 96.0% of its
    /// self time, the subscriber's layers handling them".
    pub(crate) fn clause(&self) -> String {
        format!(
            "its events ({} a call) are {} of its self time, the subscriber's layers handling them",
            units::count(self.per_call),
            units::pct(self.part)
        )
    }
}
