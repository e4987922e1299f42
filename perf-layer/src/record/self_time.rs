//! The layer's own time in its callbacks, measured where it is spent.
//!
//! The calibrated costs (`background/overhead.rs`) time spans through a copy
//! of the layer on one thread. A server's callbacks also pay for what one
//! thread cannot show: spans that move between workers (found in another
//! thread's shard and moved), shard locks whose cache line another core
//! wrote last, CPU-time reads by system calls on threads that switch often.
//! On mini-redis (docs/benchmarks.md) the calibrated figure came to about
//! half of the CPU the layer added per request.
//!
//! So a sample of the callbacks is timed as they run. Each thread counts
//! down a random number of callbacks (1 to 127, 64 on average, from a
//! per-thread xorshift, so that a request's fixed sequence of callbacks
//! cannot line up with the period), times the callback it reaches with two
//! clock reads, and adds that time, weighted by the callbacks the sample
//! stands for, to its shard, in all and under the callsite whose span the
//! callback served ([`serves`]; the dump's per-callsite `layer`, which
//! perf-report's note on the layer's cost shares out). Every other
//! callback pays one thread-local decrement and a branch.
//!
//! A sample is wall time: a thread switched out inside the timed callback
//! (another process took its core) would count the whole time slice, 64
//! times over. Beside two CPU hogs that put the axum bench's estimate at
//! 26% of its CPU against 3.5% added. So a sample over [`PREEMPTED_NS`] is
//! dropped, its callbacks counted, its time not: the kept samples' mean
//! stands for them.

use super::countdown::Countdown;
use super::shards::Shards;

/// The mean of the sampling period, in callbacks.
pub(crate) const MEAN_PERIOD: u32 = 64;

/// A sampled callback that took longer than this was switched out inside
/// it (no callback's own work takes so long but a thread's first ones,
/// which allocate its tables), and is not kept.
pub(crate) const PREEMPTED_NS: u64 = 50_000;

thread_local! {
    // `const`, no destructor: reading it never allocates, so the counting
    // allocator's bookkeeping never sees it.
    static COUNTDOWN: Countdown<MEAN_PERIOD> = const { Countdown::new() };
}

/// A callback being timed: dropped at its end, it adds its time to this
/// thread's shard.
pub(crate) struct Timed<'a> {
    at: u64,
    weight: u32,
    /// The callsite whose span the callback serves (its tag), for the
    /// layer's time by callsite; [`super::heap::TAG_NONE`] where none.
    tag: u32,
    clock: &'a quanta::Clock,
    shards: &'a Shards,
}

/// Starts timing this callback when it is the sampled one.
#[inline(always)]
pub(crate) fn start<'a>(clock: &'a quanta::Clock, shards: &'a Shards) -> Option<Timed<'a>> {
    let weight = COUNTDOWN.try_with(Countdown::tick).ok().flatten()?;
    Some(Timed {
        at: clock.raw(),
        weight,
        tag: super::heap::TAG_NONE,
        clock,
        shards,
    })
}

impl Timed<'_> {
    /// Names the callsite the callback serves.
    #[inline]
    pub(crate) fn serves(&mut self, tag: u32) {
        self.tag = tag;
    }
}

/// [`Timed::serves`] on a callback that is being timed.
#[inline(always)]
pub(crate) fn serves(timed: &mut Option<Timed<'_>>, tag: impl FnOnce() -> u32) {
    if let Some(t) = timed {
        t.serves(tag());
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let spent = self.clock.delta_as_nanos(self.at, self.clock.raw());
        let weight = u64::from(self.weight);
        // A callsite's first sample on this thread grows its map: the
        // layer's allocation.
        let _pause = super::alloc::PauseCounting::new();
        let mut shard = self.shards.local().lock();
        if spent > PREEMPTED_NS {
            shard.callbacks_dropped = shard.callbacks_dropped.saturating_add(weight);
            return;
        }
        shard.callbacks_ns = shard
            .callbacks_ns
            .saturating_add(spent.saturating_mul(weight));
        shard.callbacks = shard.callbacks.saturating_add(weight);
        shard.callbacks_sampled = shard.callbacks_sampled.saturating_add(1);
        let by_tag = shard.callbacks_by_tag.entry(self.tag).or_default();
        by_tag.0 = by_tag.0.saturating_add(spent.saturating_mul(weight));
        by_tag.1 = by_tag.1.saturating_add(weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_switched_out_is_dropped_and_the_kept_ones_stand_for_it() {
        let (clock, mock) = quanta::Clock::mock();
        let shards = Shards::new(2, 1_000_000, 16, 16, None, None);
        let sample = |ns: u64, tag: u32| {
            let mut timed = Some(Timed {
                at: clock.raw(),
                weight: 10,
                tag: super::super::heap::TAG_NONE,
                clock: &clock,
                shards: &shards,
            });
            serves(&mut timed, || tag);
            mock.increment(ns);
            drop(timed);
        };
        sample(100, 7);
        // A time slice lost inside the callback: not its cost.
        sample(3_000_000, 7);
        sample(40, 9);
        let time = shards.callback_time();
        assert_eq!((time.sampled, time.dropped, time.callbacks), (2, 10, 30));
        // The kept samples' 70 ns a callback on average, for all 30.
        assert_eq!(time.ns, 2_100);
        // By the callsite each served: the kept samples only.
        let by_tag = shards.callbacks_by_tag();
        assert_eq!(by_tag.get(&7), Some(&(1_000, 10)));
        assert_eq!(by_tag.get(&9), Some(&(400, 10)));
    }

    #[test]
    fn one_callback_in_about_64_is_timed() {
        let clock = quanta::Clock::new();
        let shards = Shards::new(2, 1_000_000, 16, 16, None, None);
        let n = 64_000;
        for _ in 0..n {
            drop(start(&clock, &shards));
        }
        let time = shards.callback_time();
        assert!(
            (700..1_300).contains(&time.sampled),
            "{} sampled of {n}",
            time.sampled
        );
        // Every sample stands for the callbacks since the one before.
        assert!(
            time.callbacks <= n && time.callbacks > n - 2 * u64::from(MEAN_PERIOD),
            "{} callbacks",
            time.callbacks
        );
    }
}
