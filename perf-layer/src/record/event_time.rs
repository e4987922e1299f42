//! The subscriber's time on the events inside spans, sampled.
//!
//! Where perf-layer is the outermost layer (the last `.with(...)`), the
//! subscriber asks it first whether it wants an event (`event_enabled`)
//! and tells it last (`on_event`): what lies between is every other
//! layer's handling of the event, a `fmt` layer formatting and writing a
//! line (a microsecond or more), a filter, an exporter. Counted in the
//! innermost span's frame, beside its events, it is the dump's
//! `events.ns`: perf-report reads a span whose self time is mostly that as
//! logging, where "memoize" would be the wrong fix.
//!
//! Two clock reads are about 24 ns an event on the machines here, as much
//! as the layer's whole handling of an event before, so one event in
//! [`MEAN_PERIOD`] is timed, at random gaps (1 to 31, from a per-thread
//! xorshift, so that a loop's fixed sequence of events cannot line up with
//! the period: [`super::countdown`]), and its time is weighted by the events
//! it stands for. The others pay a thread-local decrement and a branch
//! when asked, and a thread-local read when told.

use std::cell::Cell;

use super::countdown::Countdown;

/// The mean of the sampling period, in events.
pub(crate) const MEAN_PERIOD: u32 = 16;

struct Sampler {
    /// Events left until the next timed one.
    countdown: Countdown<MEAN_PERIOD>,
    /// The timed event being dispatched: its layer, the clock's raw reading
    /// when that layer was asked, and the events it stands for; `at` 0 when
    /// none is.
    asked: Cell<Asked>,
}

/// When a layer was asked about the event it timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asked {
    layer_id: u64,
    /// The clock's raw reading.
    pub(crate) at: u64,
    /// The events this one stands for, itself included.
    pub(crate) weight: u32,
}

const NONE: Asked = Asked {
    layer_id: 0,
    at: 0,
    weight: 0,
};

thread_local! {
    // `const`, no destructor: never allocates.
    static SAMPLER: Sampler = const {
        Sampler {
            countdown: Countdown::new(),
            asked: Cell::new(NONE),
        }
    };
}

/// Layer `layer_id` is asked whether it wants an event: when the event is
/// the sampled one, `now()` (the clock's raw reading) is kept as the start
/// of the subscriber's handling of it, which [`take`] ends.
#[inline]
pub(crate) fn asked(layer_id: u64, now: impl FnOnce() -> u64) {
    let _ = SAMPLER.try_with(|s| {
        if let Some(weight) = s.countdown.tick() {
            s.asked.set(Asked {
                layer_id,
                at: now(),
                weight,
            });
        } else if s.asked.get().at != 0 {
            // The last sampled event was never told (a layer inside this
            // one refused it in its own `event_enabled`): forgotten, or
            // this event's handling would be timed from its start.
            s.asked.set(NONE);
        }
    });
}

/// When layer `layer_id` was asked about the event it is now told of, if
/// that event is the sampled one and this layer was the last asked on this
/// thread (an event dispatched inside another's handling takes its start);
/// forgotten either way.
#[inline]
pub(crate) fn take(layer_id: u64) -> Option<Asked> {
    SAMPLER
        .try_with(|s| {
            let asked = s.asked.get();
            if asked.at == 0 {
                return None;
            }
            s.asked.set(NONE);
            (asked.layer_id == layer_id).then_some(asked)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over many events the weights of the timed ones add up to the events
    /// (each stands for the gap before it), one in [`MEAN_PERIOD`] is
    /// timed, and a take by another layer, or a second take, finds none.
    #[test]
    fn sampled_events_stand_for_all_of_them() {
        let (mut timed, mut weights) = (0u64, 0u64);
        let events = 160_000u64;
        for i in 0..events {
            asked(7, || i + 1);
            if let Some(a) = take(7) {
                assert_eq!(a.at, i + 1);
                timed += 1;
                weights += u64::from(a.weight);
            }
            assert_eq!(take(7), None);
        }
        let mean = events as f64 / timed as f64;
        assert!((mean - f64::from(MEAN_PERIOD)).abs() < 1.0, "one in {mean}");
        let off = (weights as f64 - events as f64).abs() / events as f64;
        assert!(off < 0.01, "weights {weights} for {events} events");
        // Asked by one layer, told to another: not timed, and forgotten.
        for i in 0..64 {
            asked(7, || i + 1);
            assert_eq!(take(8), None);
            assert_eq!(take(7), None);
        }
        // A sampled event never told (refused inside): the next event asked
        // is not timed from its start, only (when it is the sampled one) from
        // its own.
        let mut refused = 0;
        for i in 1..=4_096 {
            asked(7, || i);
            if SAMPLER.with(|s| s.asked.get().at) != 0 {
                refused += 1;
                asked(7, || 10_000 + i);
                let next = take(7).map(|a| a.at);
                assert!(next.is_none() || next == Some(10_000 + i), "{next:?}");
            }
        }
        assert!(refused > 100, "{refused} sampled");
    }
}
