//! Walking a plain HdrHistogram V2 encoding without building the histogram,
//! and HdrHistogram's bucket layout.
//!
//! perf-report checks every histogram of a dump when it loads it, but its
//! analysis reads only the busy-time ones: building the other three per
//! callsite (a counts array allocated, zeroed and filled, then dropped) was
//! a third of loading a 10,000-callsite dump (docs/benchmarks.md). [`accepts`]
//! walks the same header and varints hdrhistogram's deserializer reads and
//! says whether it would accept them. It only ever answers "yes" for input
//! the deserializer accepts (tested against it below on mutated encodings);
//! anything it does not recognise gets "not shown", and the caller decodes it
//! for real, which also gives the decoder's own error.

use std::cell::RefCell;

use hdrhistogram::Histogram;

/// hdrhistogram's V2 cookies: the base values with the word-size bits (0x10).
pub(crate) const V2_COOKIE: u32 = 0x1c84_9313;
pub(crate) const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// The plain V2 header: cookie, payload length, normalizing offset,
/// precision, lowest, highest, integer-to-double ratio.
pub(crate) const HEADER_LEN: usize = 40;
/// Distinct (lowest, highest, precision) headers remembered per thread; a
/// dump uses one.
const LAYOUTS_KEPT: usize = 8;

/// Whether hdrhistogram's deserializer accepts `plain`, a plain V2 encoding
/// (header then zig-zag LEB128 varints), and its counts add up within a
/// u64. `false` means "not shown here", not "refused".
pub(crate) fn accepts(plain: &[u8]) -> bool {
    walk(plain, |_, _| {}).is_some()
}

/// [`accepts`], calling `recorded(index, count)` for each non-zero count in
/// order, and returning the header's (lowest, precision) when it accepts.
pub(crate) fn walk(plain: &[u8], recorded: impl FnMut(usize, u64)) -> Option<(u64, u8)> {
    let header = plain.get(..HEADER_LEN)?;
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let long = |at: usize| (u64::from(word(at)) << 32) | u64::from(word(at + 4));
    if word(0) != V2_COOKIE || word(8) != 0 || f64::from_bits(long(32)) != 1.0 {
        return None;
    }
    let precision = u8::try_from(word(12)).ok()?;
    let counts_len = counts_len(long(16), long(24), precision)?;
    let payload_len = usize::try_from(word(4)).unwrap_or(usize::MAX);
    let payload = HEADER_LEN
        .checked_add(payload_len)
        .and_then(|end| plain.get(HEADER_LEN..end))?;
    counts_fit(payload, counts_len, recorded).then_some((long(16), precision))
}

/// The length of the counts array `Histogram::new_with_bounds` builds for
/// these bounds, `None` when it refuses them. Built once per distinct
/// header and thread, as the deserializer would build it for each.
fn counts_len(low: u64, high: u64, precision: u8) -> Option<usize> {
    /// (lowest, highest, precision) and the counts length it gives.
    type Known = ((u64, u64, u8), Option<usize>);
    thread_local! {
        static LAYOUTS: RefCell<Vec<Known>> = const { RefCell::new(Vec::new()) };
    }
    let key = (low, high, precision);
    let build = || {
        Histogram::<u64>::new_with_bounds(low, high, precision)
            .ok()
            .map(|h| h.distinct_values())
    };
    LAYOUTS
        .try_with(|layouts| {
            let mut layouts = layouts.try_borrow_mut().ok()?;
            if let Some((_, len)) = layouts.iter().find(|(k, _)| *k == key) {
                return Some(*len);
            }
            let len = build();
            if layouts.len() == LAYOUTS_KEPT {
                layouts.remove(0);
            }
            layouts.push((key, len));
            Some(len)
        })
        .ok()
        .flatten()
        .unwrap_or_else(build)
}

/// The deserializer's decode loop without the histogram: every varint
/// complete, every non-zero count inside the counts array, no index
/// overflow, and the counts' sum within a u64.
fn counts_fit(mut payload: &[u8], counts_len: usize, mut recorded: impl FnMut(usize, u64)) -> bool {
    let mut index = 0usize;
    let mut total = 0u64;
    while !payload.is_empty() {
        let Some((encoded, used)) = varint(payload) else {
            return false;
        };
        payload = &payload[used..];
        let n = zig_zag(encoded);
        let next = if n < 0 {
            // A run of zeros.
            n.checked_neg()
                .and_then(|zeros| usize::try_from(zeros).ok())
                .and_then(|zeros| index.checked_add(zeros))
        } else {
            let count = n.unsigned_abs();
            if count > 0 {
                if index >= counts_len {
                    return false;
                }
                match total.checked_add(count) {
                    Some(sum) => total = sum,
                    None => return false,
                }
                recorded(index, count);
            }
            index.checked_add(1)
        };
        match next {
            Some(next) => index = next,
            None => return false,
        }
    }
    true
}

/// One LEB128 varint as hdrhistogram writes them: at most nine bytes, the
/// ninth carrying eight bits. `None` when the input ends inside it.
#[inline]
pub(crate) fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (k, &b) in bytes.iter().enumerate().take(9) {
        if k == 8 {
            return Some((value | (u64::from(b) << 56), 9));
        }
        value |= u64::from(b & 0x7f) << (7 * k);
        if b & 0x80 == 0 {
            return Some((value, k + 1));
        }
    }
    None
}

fn zig_zag(encoded: u64) -> i64 {
    ((encoded >> 1) as i64) ^ -((encoded & 1) as i64)
}

// HdrHistogram's bucket layout, shared by the codec (which reads bucket
// indices from an encoding) and the recorder's flat histograms (which
// write counts at them). With a lowest discernible value of 1, which
// perf-layer always writes, the unit magnitude is 0.

/// log2 of half the number of sub-buckets per bucket at this precision:
/// the largest value kept at single-unit resolution, 2 * 10^precision,
/// rounded up to a power of two, is the number of sub-buckets.
pub(crate) fn half_magnitude(precision: u8) -> u32 {
    let largest = 2 * 10_u64.pow(u32::from(precision.min(5)));
    let count_magnitude = 64 - (largest - 1).leading_zeros();
    count_magnitude.max(1) - 1
}

/// The lowest value that lands at `index` with this half magnitude.
pub(crate) fn lowest_at(half_magnitude: u32, index: usize) -> u64 {
    let half = 1_u64 << half_magnitude;
    let index = index as u64;
    match (index >> half_magnitude).checked_sub(1) {
        Some(bucket) => ((index & (half - 1)) + half) << bucket,
        // The lower half of bucket 0: one value per index.
        None => index,
    }
}

/// The highest value HdrHistogram's bucket `index` holds, in a histogram
/// of lowest discernible value 1 and this precision: what `iter_recorded`
/// reports as `value_iterated_to` for that bucket.
pub(crate) fn highest_at(precision: u8, index: usize) -> u64 {
    let half_magnitude = half_magnitude(precision);
    let bucket = ((index as u64) >> half_magnitude).saturating_sub(1);
    // HdrHistogram's `highest_equivalent`: the next bucket's lowest value,
    // saturating, minus one.
    lowest_at(half_magnitude, index).saturating_add(1 << bucket) - 1
}

/// Whether the payload holds the varint u64::MAX, which zig-zag decodes to
/// i64::MIN, the one zero run hdrhistogram cannot negate.
pub(crate) fn holds_max_varint(mut payload: &[u8]) -> bool {
    // Stops at the end, or at a truncated varint the decoder refuses.
    while let Some((value, used)) = varint(payload) {
        if value == u64::MAX {
            return true;
        }
        payload = &payload[used..];
    }
    false
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

    use super::*;
    use crate::test_rng::Rng;

    /// The payload length a plain encoding's header declares.
    fn declared_len(plain: &[u8]) -> u32 {
        u32::from_be_bytes(plain[4..8].try_into().unwrap())
    }

    /// A random histogram's plain V2 encoding.
    fn encoding(rng: &mut Rng) -> Vec<u8> {
        let precision = 1 + rng.below(3) as u8;
        let high = [1_000, 1_000_000, 3_600_000_000_000][rng.below(3) as usize];
        let mut hist = Histogram::<u64>::new_with_bounds(1, high, precision).unwrap();
        for _ in 0..rng.below(200) {
            let value = rng.next() >> rng.below(64);
            hist.saturating_record_n(value, 1 + rng.below(1_000));
        }
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&hist, &mut plain).unwrap();
        plain
    }

    /// Flipped bits and bytes, truncation, appended varints, and edited
    /// header fields, several at once.
    fn mutate(rng: &mut Rng, plain: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(3) {
            if plain.is_empty() {
                return;
            }
            let at = rng.below(plain.len() as u64) as usize;
            match rng.below(7) {
                0 => plain[at] ^= 1 << rng.below(8),
                1 => plain[at] = rng.next() as u8,
                2 => plain.truncate(at),
                3 => plain.extend((0..rng.below(20)).map(|_| rng.next() as u8)),
                4 if plain.len() >= 8 => {
                    // The payload length, shorter or longer.
                    let len = declared_len(plain)
                        .wrapping_add(rng.below(20) as u32)
                        .wrapping_sub(10);
                    plain[4..8].copy_from_slice(&len.to_be_bytes());
                }
                5 if plain.len() >= 32 => {
                    // Bounds and precision.
                    let field = [12, 16, 24][rng.below(3) as usize];
                    plain[field + 3] = rng.next() as u8;
                }
                _ if plain.len() > HEADER_LEN => {
                    // A large count or zero run in the payload.
                    let at = HEADER_LEN + rng.below((plain.len() - HEADER_LEN) as u64) as usize;
                    plain.splice(at..at, [0xff; 8].into_iter().chain([rng.next() as u8]));
                }
                _ => {}
            }
        }
    }

    fn decoder_accepts(plain: &[u8]) -> bool {
        // A payload longer than the input fails the decoder's `read_exact`,
        // after it allocates the declared length: skip the allocation.
        if plain.len() >= HEADER_LEN && declared_len(plain) as usize > plain.len() - HEADER_LEN {
            return false;
        }
        let mut reader = plain;
        match Deserializer::new().deserialize::<u64, _>(&mut reader) {
            Ok(h) => {
                h.len() < u64::MAX
                    || h.iter_recorded()
                        .try_fold(0u64, |t, v| t.checked_add(v.count_at_value()))
                        .is_some()
            }
            Err(_) => false,
        }
    }

    #[test]
    fn accepts_only_what_the_decoder_accepts() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut refused, mut not_shown) = (0, 0, 0);
        for case in 0..6_000 {
            let mut plain = encoding(&mut rng);
            if case % 4 != 0 {
                mutate(&mut rng, &mut plain);
            }
            let ours = accepts(&plain);
            // The decoder panics on a zero run of 2^63 (the dump decoder
            // refuses it before, and relies on this walk refusing it too),
            // so only ask it about the rest.
            if plain.len() > HEADER_LEN && holds_max_varint(&plain[HEADER_LEN..]) {
                let end = (HEADER_LEN + declared_len(&plain) as usize).min(plain.len());
                if holds_max_varint(&plain[HEADER_LEN..end]) {
                    assert!(!ours, "case {case}: accepted a zero run of 2^63");
                }
                continue;
            }
            let theirs = decoder_accepts(&plain);
            assert!(
                !ours || theirs,
                "case {case}: accepted what the decoder refuses: {plain:02x?}"
            );
            match (ours, theirs) {
                (true, _) => accepted += 1,
                (false, false) => refused += 1,
                (false, true) => not_shown += 1,
            }
            // Unmutated encodings are always shown acceptable here.
            if case % 4 == 0 {
                assert!(ours, "case {case}: a valid encoding was not recognised");
            }
        }
        // Both answers were exercised, many times, and what the decoder
        // accepts is almost always recognised here (a miss costs a decode).
        assert!(
            accepted > 1_000 && refused > 1_000 && not_shown * 100 < accepted,
            "{accepted} accepted, {refused} refused, {not_shown} left to the decoder"
        );
    }

    #[test]
    fn a_zero_run_of_two_to_the_63_is_refused() {
        // `HistogramDump::check` relies on this: only `decode` scans for it.
        let mut plain = encoding(&mut Rng(0x0123_4567_89ab_cdef));
        assert!(accepts(&plain));
        plain.extend([0xff; 9]);
        let declared = declared_len(&plain) + 9;
        plain[4..8].copy_from_slice(&declared.to_be_bytes());
        assert!(holds_max_varint(&plain[HEADER_LEN..]));
        assert!(!accepts(&plain));
    }

    #[test]
    fn recorded_buckets_are_what_the_decoded_histogram_iterates() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for case in 0..150 {
            let precision = 1 + (case % 5) as u8;
            // Every 10th histogram has a lowest discernible value above 1,
            // which the walk leaves to the decoder.
            let low = if case % 10 == 9 { 1_000 } else { 1 };
            // Large counts arrays are slow to iterate in a debug build.
            let high = if precision >= 4 {
                10_000_000
            } else {
                3_600_000_000_000
            };
            let mut hist = Histogram::<u64>::new_with_bounds(low, high, precision).unwrap();
            for _ in 0..rng.below(300) {
                hist.saturating_record_n(rng.next() >> rng.below(64), 1 + rng.below(1_000));
            }
            let stored = crate::dump::HistogramDump::from_histogram(&hist, 0, 0);
            let expected: Vec<(u64, u64)> = stored
                .decode()
                .unwrap()
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            assert_eq!(stored.recorded_buckets().unwrap(), expected, "case {case}");
            if let Some(&(last, _)) = expected.last() {
                assert_eq!(last, stored.decode().unwrap().max(), "case {case}");
            }
        }
        let broken = crate::dump::HistogramDump {
            encoded: "!!".into(),
            ..crate::dump::HistogramDump::from_histogram(&Histogram::<u64>::new(2).unwrap(), 0, 0)
        };
        assert_eq!(
            broken.recorded_buckets().unwrap_err(),
            broken.decode().unwrap_err()
        );
    }

    #[test]
    fn varints_read_as_hdrhistogram_writes_them() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x80, 0x80]), None);
        assert_eq!((zig_zag(1), zig_zag(2), zig_zag(3)), (-1, 1, -2));
    }
}
