//! One stored histogram ([`HistogramDump`]) and its codec: HdrHistogram V2
//! in base64, read defensively (a hostile header cannot make the reader
//! allocate gigabytes, overflow or panic).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

pub use super::decode::HistogramDecodeError;
use super::decode::with_scratch;
use super::v2;

/// A whole HDR histogram of nanosecond values, with a readable summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramDump {
    /// Number of values recorded.
    pub count: u64,
    /// Exact sum of the values recorded, unclamped, in nanoseconds.
    pub sum: u64,
    /// Smallest value recorded (0 when empty).
    pub min: u64,
    /// Largest value recorded, after clamping (0 when empty).
    pub max: u64,
    /// Exact mean, `sum / count` (0 when empty).
    pub mean: f64,
    /// Median, within the histogram's precision.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Values above the histogram's maximum, recorded as the maximum.
    pub clamped: u64,
    /// The histogram, HdrHistogram V2, base64 (standard alphabet).
    ///
    /// perf-layer writes the plain V2 encoding; dumps written by 0.1.0 hold
    /// V2 + DEFLATE, which [`decode`](Self::decode) reads too, as every
    /// HdrHistogram decoder does.
    pub encoded: String,
}

impl HistogramDump {
    /// A stored histogram known only by its encoding (kept elsewhere, as a
    /// run history keeps it), for [`decode`](Self::decode) and its
    /// siblings; the summary fields are zero.
    ///
    /// ```
    /// use perf_layer::dump::HistogramDump;
    /// let mut h = hdrhistogram::Histogram::<u64>::new(2).unwrap();
    /// h.record(1_000).unwrap();
    /// let stored = HistogramDump::from_histogram(&h, 1_000, 0);
    /// let again = HistogramDump::from_encoded(stored.encoded.clone());
    /// assert_eq!(again.decode().unwrap().len(), 1);
    /// ```
    pub fn from_encoded(encoded: String) -> Self {
        Self {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            mean: 0.0,
            p50: 0,
            p90: 0,
            p99: 0,
            p999: 0,
            clamped: 0,
            encoded,
        }
    }

    /// Stores a histogram with its exact sum and the number of clamped values.
    pub fn from_histogram(hist: &Histogram<u64>, sum: u64, clamped: u64) -> Self {
        let mut bytes = Vec::new();
        // Serializing into a Vec cannot fail for a histogram that exists: the
        // only errors are I/O errors and counts beyond i64, which saturating
        // recording never produces. Fall back to an empty string, never panic.
        // Plain V2, not V2 + DEFLATE: V2 already packs counts as varints
        // with runs of zeros folded, so DEFLATE saved a fifth of a dump's
        // size but made reading it twice as slow, a zlib stream with its own
        // Huffman tables per histogram (docs/benchmarks.md, perf-report).
        let encoded = match V2Serializer::new().serialize(hist, &mut bytes) {
            Ok(_) => BASE64.encode(&bytes),
            Err(_) => String::new(),
        };
        let count = hist.len();
        // hdrhistogram's `value_at_quantile` adds counts without saturating
        // (a panic in debug builds) when they total more than u64: only a
        // hostile dump, or a merge of such, gets there.
        let overflows = total_count(hist).is_none();
        let q = |quantile: f64| {
            if count == 0 {
                0
            } else if overflows {
                saturating_value_at_quantile(hist, quantile)
            } else {
                hist.value_at_quantile(quantile)
            }
        };
        Self {
            count,
            sum,
            min: if count == 0 { 0 } else { hist.min() },
            max: if count == 0 { 0 } else { hist.max() },
            mean: if count == 0 {
                0.0
            } else {
                sum as f64 / count as f64
            },
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            clamped,
            encoded,
        }
    }

    /// Decodes the stored histogram.
    ///
    /// # Errors
    /// [`HistogramDecodeError`] when the text is not base64, not a V2
    /// histogram, or declares bounds no profiler would write.
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramDecodeError> {
        with_scratch(|scratch| {
            let (v2, deserializer) = scratch.plain_v2(&self.encoded)?;
            // Only the decoder needs this scan: `check` and
            // `recorded_buckets` refuse the zero run in their own walk.
            if v2::holds_max_varint(v2.payload) {
                return Err(HistogramDecodeError::Hdr(
                    "payload holds a zero run of 2^63 counts".to_owned(),
                ));
            }
            let mut reader: &[u8] = v2.plain;
            let hist = deserializer
                .deserialize::<u64, _>(&mut reader)
                .map_err(|e| HistogramDecodeError::Hdr(format!("{e:?}")))?;
            // Counts adding up past u64 would make hdrhistogram's quantile
            // functions overflow; no recorder writes that many values. The
            // decoder's total saturates, so only a total at u64::MAX can
            // hide an overflow, and only then are the counts summed again.
            if hist.len() == u64::MAX && total_count(&hist).is_none() {
                return Err(HistogramDecodeError::CountOverflow);
            }
            Ok(hist)
        })
    }

    /// Checks the stored histogram as [`decode`](Self::decode) does, with
    /// the same result and the same error, without building it where it
    /// can: a well-formed encoding is inflated and walked, and only one
    /// this cannot vouch for is decoded to find out.
    ///
    /// # Errors
    /// What [`decode`](Self::decode) would return.
    pub fn check(&self) -> Result<(), HistogramDecodeError> {
        let vouched = with_scratch(|scratch| {
            let (v2, _) = scratch.plain_v2(&self.encoded)?;
            Ok::<_, HistogramDecodeError>(v2::accepts(v2.plain))
        })?;
        if vouched {
            Ok(())
        } else {
            self.decode().map(drop)
        }
    }

    /// The recorded buckets of the stored histogram, in order, as
    /// `(value_iterated_to, count_at_value)` of `decode()?.iter_recorded()`:
    /// the highest value of each non-zero bucket and its count. Read from
    /// the encoding without building the histogram where it can (a lowest
    /// discernible value of 1, which perf-layer always writes).
    ///
    /// ```
    /// # use perf_layer::dump::HistogramDump;
    /// let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 2).unwrap();
    /// h.record_n(1_234, 3).unwrap();
    /// h.record(70_000).unwrap();
    /// let stored = HistogramDump::from_histogram(&h, 3 * 1_234 + 70_000, 0);
    /// let expected: Vec<(u64, u64)> = h
    ///     .iter_recorded()
    ///     .map(|v| (v.value_iterated_to(), v.count_at_value()))
    ///     .collect();
    /// assert_eq!(stored.recorded_buckets().unwrap(), expected);
    /// ```
    ///
    /// # Errors
    /// What [`decode`](Self::decode) would return.
    pub fn recorded_buckets(&self) -> Result<Vec<(u64, u64)>, HistogramDecodeError> {
        // Indices and counts while walking, then values: `None` when the
        // walk cannot vouch for the encoding or its lowest discernible value
        // is not 1.
        let walked = with_scratch(|scratch| {
            let (v2, _) = scratch.plain_v2(&self.encoded)?;
            let mut buckets = Vec::new();
            let header = v2::walk(v2.plain, |index, count| {
                buckets.push((index as u64, count));
            });
            let Some((1, precision)) = header else {
                return Ok::<_, HistogramDecodeError>(None);
            };
            for (at, _) in buckets.iter_mut() {
                let index = usize::try_from(*at).unwrap_or(usize::MAX);
                *at = v2::highest_at(precision, index);
            }
            Ok(Some(buckets))
        })?;
        if let Some(buckets) = walked {
            return Ok(buckets);
        }
        let hist = self.decode()?;
        Ok(hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect())
    }
}

/// The sum of a histogram's counts, `None` when it does not fit a u64
/// (its `len()` saturates instead).
fn total_count(hist: &Histogram<u64>) -> Option<u64> {
    hist.iter_recorded()
        .try_fold(0u64, |total, v| total.checked_add(v.count_at_value()))
}

/// `value_at_quantile` for a histogram whose counts overflow u64: the first
/// recorded value at which the (saturating) running count reaches the
/// quantile of the (saturated) total.
fn saturating_value_at_quantile(hist: &Histogram<u64>, quantile: f64) -> u64 {
    let wanted = ((quantile.min(1.0) * hist.len() as f64).ceil() as u64).max(1);
    let mut running = 0u64;
    for v in hist.iter_recorded() {
        running = running.saturating_add(v.count_at_value());
        if running >= wanted {
            return hist.highest_equivalent(v.value_iterated_to());
        }
    }
    hist.max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn histogram_round_trips_losslessly() {
        let h = hist(&[1, 10, 100, 1_000, 1_000_000, 1_000_000_000]);
        let stored = HistogramDump::from_histogram(&h, 1_001_001_111, 0);
        assert_eq!(stored.count, 6);
        assert_eq!(stored.decode().unwrap(), h);
    }

    #[test]
    fn empty_histogram_has_zero_summary() {
        let stored = HistogramDump::from_histogram(&hist(&[]), 0, 0);
        assert_eq!(
            (stored.count, stored.min, stored.max, stored.p99),
            (0, 0, 0, 0)
        );
        assert_eq!(stored.decode().unwrap().len(), 0);
    }

    #[test]
    fn broken_histogram_encoding_is_an_error() {
        let mut stored = HistogramDump::from_histogram(&hist(&[5]), 5, 0);
        stored.encoded = "not base64!".into();
        assert!(matches!(
            stored.decode(),
            Err(HistogramDecodeError::Base64(_))
        ));
        stored.encoded = BASE64.encode([0x1c, 0x84, 0x93, 0x04, 0, 0, 0, 9, 1, 2]);
        assert!(stored.decode().is_err());
    }

    #[test]
    fn a_broken_histogram_leaves_the_reused_decoder_sound() {
        let good = HistogramDump::from_histogram(&hist(&[7, 70, 700_000]), 700_077, 0);
        let mut bytes = BASE64.decode(&good.encoded).unwrap();
        let cut = bytes.len() / 2;
        bytes[cut..].fill(0xff);
        let mut broken = good.clone();
        broken.encoded = BASE64.encode(&bytes);
        broken.decode().unwrap_err();
        bytes.truncate(20);
        broken.encoded = BASE64.encode(&bytes);
        broken.decode().unwrap_err();
        assert_eq!(good.decode().unwrap(), hist(&[7, 70, 700_000]));
    }
}
