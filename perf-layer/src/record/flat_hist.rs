//! HdrHistogram's bucket layout as a plain array, for the span path.
//!
//! `hdrhistogram::Histogram::record` keeps a running total, a minimum and a
//! maximum beside its counts, and checks each addition for overflow and
//! each value for a resize. On the span path only the count matters:
//! [`FlatHist::record`] computes the same bucket index HdrHistogram would and
//! increments it. [`FlatHist::to_histogram`] rebuilds the real histogram at
//! snapshot time, bucket for bucket, so the dump loses nothing (the tests
//! below compare the two on random values at every precision).
//!
//! Measured on the lifecycle bench, the four `record` calls per span took
//! about 16 ns through HdrHistogram (docs/benchmarks.md).

use hdrhistogram::Histogram;

use crate::dump::v2::{half_magnitude, lowest_at};

/// The bucket layout of `Histogram::new_with_bounds(1, high, sigfig)`: with
/// a lowest discernible value of 1 the unit magnitude is 0, which the
/// formulas below assume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    high: u64,
    sigfig: u8,
    len: usize,
    /// Where values past the array are recorded: `high`'s bucket.
    high_index: usize,
    /// log2 of half the number of sub-buckets per bucket.
    half_magnitude: u32,
    /// Values up to this mask fall in bucket 0.
    mask: u64,
    /// 64 minus the bits of the largest value bucket 0 holds.
    leading_zero_base: u32,
}

impl Layout {
    /// The layout of the histogram HdrHistogram builds for these bounds, and
    /// that histogram's own `high` and length, so the two cannot disagree.
    /// Bounds are validated by the builder; the fallbacks only keep this
    /// total.
    pub(crate) fn new(sigfig: u8, max: u64) -> Self {
        Self::of(&empty_histogram(sigfig, max))
    }

    fn of(template: &Histogram<u64>) -> Self {
        let sigfig = template.sigfig();
        let half_magnitude = half_magnitude(sigfig);
        let count_magnitude = half_magnitude + 1;
        let mut layout = Self {
            high: template.high(),
            sigfig,
            len: template.distinct_values(),
            high_index: 0,
            half_magnitude,
            mask: (1_u64 << count_magnitude) - 1,
            leading_zero_base: 64 - count_magnitude,
        };
        layout.high_index = layout.index(layout.high).min(layout.len - 1);
        layout
    }

    /// The index HdrHistogram's `index_for` gives `value` (`value <= high`).
    #[inline]
    fn index(&self, value: u64) -> usize {
        let bucket = self.leading_zero_base - (value | self.mask).leading_zeros();
        let sub_bucket = value >> bucket;
        let half = 1_u64 << self.half_magnitude;
        ((u64::from(bucket + 1) << self.half_magnitude) + sub_bucket - half) as usize
    }

    /// The lowest value that lands at `index` (HdrHistogram's `value_for`).
    fn value_at(&self, index: usize) -> u64 {
        lowest_at(self.half_magnitude, index)
    }
}

/// An empty HdrHistogram for these bounds.
pub(crate) fn empty_histogram(sigfig: u8, max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, sigfig)
        .or_else(|_| Histogram::new_with_bounds(1, max.max(1_000), 2))
        .or_else(|_| Histogram::new_with_bounds(1, 3_600_000_000_000, 2))
        .expect("a 2-digit histogram up to an hour is always valid")
}

/// Counts in HdrHistogram's layout, with the exact sum and the number of
/// values clamped to the layout's maximum.
#[derive(Debug, Clone)]
pub(crate) struct FlatHist {
    counts: Box<[u64]>,
    pub(crate) sum: u64,
    pub(crate) clamped: u64,
}

impl FlatHist {
    pub(crate) fn new(layout: &Layout) -> Self {
        Self {
            counts: vec![0; layout.len].into_boxed_slice(),
            sum: 0,
            clamped: 0,
        }
    }

    /// Records one value; values over the layout's maximum are counted as
    /// clamped, and the sum keeps their true value.
    #[inline]
    pub(crate) fn record(&mut self, layout: &Layout, value: u64) {
        self.sum = self.sum.saturating_add(value);
        self.clamped += u64::from(value > layout.high);
        // As HdrHistogram's `saturating_record`: a value past the last bucket
        // is recorded as `high` (values between `high` and the end of the
        // array keep their own bucket, as there).
        let mut index = layout.index(value);
        if index >= layout.len {
            index = layout.high_index;
        }
        if let Some(count) = self.counts.get_mut(index) {
            *count = count.wrapping_add(1);
        }
    }

    /// Adds `other`, recorded with the same layout.
    pub(crate) fn merge(&mut self, other: &FlatHist) {
        self.sum = self.sum.saturating_add(other.sum);
        self.clamped = self.clamped.saturating_add(other.clamped);
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// Adds to `out[i]` the values below `bounds[i]` and to the last slot
    /// (`out.len() == bounds.len() + 1`) every value: cumulative counts as
    /// Prometheus buckets want them. Exact when each bound is the lowest
    /// value of its HdrHistogram bucket (powers of two at or above the
    /// sub-bucket count are).
    #[cfg(feature = "prometheus")]
    pub(crate) fn add_cumulative(&self, layout: &Layout, bounds: &[u64], out: &mut [u64]) {
        let mut start = 0;
        let mut below = 0u64;
        for (slot, &bound) in out.iter_mut().zip(bounds) {
            let end = if bound > layout.high {
                self.counts.len()
            } else {
                layout.index(bound).min(self.counts.len())
            };
            below += self.counts[start.min(end)..end].iter().sum::<u64>();
            start = start.max(end);
            *slot += below;
        }
        if let Some(all) = out.get_mut(bounds.len()) {
            *all += below + self.counts[start..].iter().sum::<u64>();
        }
    }

    /// The HdrHistogram these counts stand for.
    pub(crate) fn to_histogram(&self, layout: &Layout) -> Histogram<u64> {
        let mut hist = empty_histogram(layout.sigfig, layout.high);
        for (index, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                hist.saturating_record_n(layout.value_at(index), count);
            }
        }
        hist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values spread over every bucket: small ones, powers of two and their
    /// neighbours, random ones at every magnitude, and past the maximum.
    fn values(seed: u64) -> Vec<u64> {
        let mut values: Vec<u64> = (0..3_000).collect();
        for shift in 0..64 {
            let p = 1_u64 << shift;
            values.extend([p - 1, p, p + 1]);
        }
        let mut rng = crate::test_rng::Rng(seed | 1);
        for _ in 0..20_000 {
            let x = rng.next();
            values.push(x >> (x % 64));
        }
        values.push(u64::MAX);
        values
    }

    #[cfg(feature = "prometheus")]
    #[test]
    fn cumulative_counts_below_powers_of_two_are_exact() {
        let bounds: Vec<u64> = (10..=36).map(|k| 1_u64 << k).collect();
        for sigfig in [2, 3] {
            let layout = Layout::new(sigfig, 3_600_000_000_000);
            let mut flat = FlatHist::new(&layout);
            let values = values(7);
            for &v in &values {
                flat.record(&layout, v);
            }
            let mut out = vec![0; bounds.len() + 1];
            flat.add_cumulative(&layout, &bounds, &mut out);
            for (i, &b) in bounds.iter().enumerate() {
                // Values past the layout's maximum are recorded as it.
                let want = values.iter().filter(|&&v| v.min(layout.high) < b).count() as u64;
                assert_eq!(out[i], want, "below {b} at {sigfig} digits");
            }
            assert_eq!(out[bounds.len()], values.len() as u64);
        }
    }

    #[test]
    fn rebuilds_exactly_what_hdrhistogram_records() {
        for (sigfig, max) in [
            (1, 1_000),
            (2, 3_600_000_000_000),
            (3, 60_000_000_000),
            (4, 1_000_000),
            (5, 3_600_000_000_000),
        ] {
            let layout = Layout::new(sigfig, max);
            let mut flat = FlatHist::new(&layout);
            let mut direct = empty_histogram(sigfig, max);
            let mut clamped = 0;
            for value in values(u64::from(sigfig) * 7919) {
                flat.record(&layout, value);
                clamped += u64::from(value > direct.high());
                direct.saturating_record(value);
            }
            let rebuilt = flat.to_histogram(&layout);
            assert!(rebuilt == direct, "sigfig {sigfig}, max {max}");
            assert_eq!(rebuilt.len(), direct.len());
            assert_eq!(rebuilt.max(), direct.max());
            assert_eq!(rebuilt.min(), direct.min());
            assert_eq!(flat.clamped, clamped);
            for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(rebuilt.value_at_quantile(q), direct.value_at_quantile(q));
            }
        }
    }

    #[test]
    fn merging_adds_counts_and_sums() {
        let layout = Layout::new(2, 3_600_000_000_000);
        let (mut a, mut b) = (FlatHist::new(&layout), FlatHist::new(&layout));
        a.record(&layout, 10);
        b.record(&layout, 10);
        b.record(&layout, u64::MAX);
        a.merge(&b);
        assert_eq!((a.sum, a.clamped), (u64::MAX, 1));
        let hist = a.to_histogram(&layout);
        assert_eq!((hist.len(), hist.count_at(10)), (3, 2));
    }
}
