//! A per-thread countdown to the next sampled callback, at random gaps.
//!
//! The layer's samples (its own callbacks for the overhead estimate,
//! [`super::self_time`]; the subscriber's time on events,
//! [`super::event_time`]) each count down a random number of callbacks
//! (1 to `2 × MEAN − 1`, `MEAN` on average, from a per-thread xorshift, so
//! that a request's or a loop's fixed sequence of callbacks cannot line up
//! with the period), take the one they reach, and weight it by the
//! callbacks it stands for: the gap up to it. Every other callback pays a
//! thread-local decrement and a branch.

use std::cell::Cell;

/// Callbacks left until the next sampled one, the gap the next sample
/// stands for, and the generator drawing the gaps. `const`-constructible,
/// with no destructor, for a `thread_local!` that never allocates.
#[derive(Debug)]
pub(crate) struct Countdown<const MEAN: u32> {
    left: Cell<u32>,
    period: Cell<u32>,
    /// xorshift32 state; 0 until the first draw seeds it.
    rng: Cell<u32>,
}

impl<const MEAN: u32> Countdown<MEAN> {
    /// The first sample after `MEAN` callbacks.
    pub(crate) const fn new() -> Self {
        Self {
            left: Cell::new(MEAN),
            period: Cell::new(MEAN),
            rng: Cell::new(0),
        }
    }

    /// One callback: the weight of the sample when it is the sampled one
    /// (the callbacks it stands for, itself included), else `None`.
    #[inline(always)]
    pub(crate) fn tick(&self) -> Option<u32> {
        let left = self.left.get();
        if left > 1 {
            self.left.set(left - 1);
            None
        } else {
            Some(self.next_period())
        }
    }

    /// The period the sample now taken stands for, and the next one drawn.
    /// Out of line: once in `MEAN` callbacks.
    #[cold]
    #[inline(never)]
    fn next_period(&self) -> u32 {
        let mut x = self.rng.get();
        if x == 0 {
            // A seed of this thread's own: the address of its countdown.
            x = (std::ptr::from_ref(self) as usize as u32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        let next = x % (2 * MEAN - 1) + 1;
        self.left.set(next);
        self.period.replace(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_average_the_mean_and_never_repeat_in_step() {
        let c = Countdown::<64>::new();
        let draws: Vec<u32> = (0..10_000).map(|_| c.next_period()).collect();
        assert!(draws.iter().all(|&p| (1..2 * 64).contains(&p)));
        let mean = draws.iter().map(|&p| f64::from(p)).sum::<f64>() / draws.len() as f64;
        assert!((mean - 64.0).abs() < 3.0, "mean {mean}");
        // Not a fixed period: a request's callbacks cannot line up with it.
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "{} distinct periods", distinct.len());
    }

    /// Over many callbacks the samples' weights add up to the callbacks.
    #[test]
    fn the_samples_stand_for_every_callback() {
        let c = Countdown::<16>::new();
        let (mut samples, mut weights) = (0u64, 0u64);
        for _ in 0..160_000 {
            if let Some(w) = c.tick() {
                samples += 1;
                weights += u64::from(w);
            }
        }
        let mean = 160_000.0 / samples as f64;
        assert!((mean - 16.0).abs() < 1.0, "one in {mean}");
        assert!((weights as f64 - 160_000.0).abs() < 1_600.0, "{weights}");
    }
}
