//! Hostile input at perf-layer's own reading API (`Dump::from_slice`,
//! `HistogramDump::decode`, the helpers on the dump types): refused with an
//! error or handled, never a panic. Regression tests for what the property
//! tests and the fuzzer found live here.

use perf_layer::dump::{Dump, EventCounts, HistogramDump};

/// Found by `perf-report/tests/proptest_pipeline.rs`: event counts read
/// from a file can be anything, and adding them (merge, totals) overflowed.
#[test]
fn event_counts_from_a_file_saturate_instead_of_overflowing() {
    let huge = EventCounts {
        trace: u64::MAX,
        debug: u64::MAX,
        info: 1,
        warn: 0,
        error: u64::MAX,
        ns: u64::MAX,
    };
    assert_eq!(huge.total(), u64::MAX);
    let mut sum = huge;
    sum.add(&huge);
    assert_eq!(
        (sum.trace, sum.info, sum.warn, sum.ns),
        (u64::MAX, 2, 0, u64::MAX)
    );
}

#[test]
fn refuses_what_is_not_a_dump_with_an_error() {
    let cases: [&[u8]; 8] = [
        b"",
        b"null",
        b"[]",
        b"{\"format_version\": -1}",
        b"{\"format_version\": 99999999999}",
        b"{\"format_version\": 1}",
        &[0xff, 0xfe, 0x00],
        b"{\"format_version\": 1, \"callsites\": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}",
    ];
    for bytes in cases {
        assert!(
            Dump::from_slice(bytes).is_err(),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Nesting far past serde_json's recursion limit is an error, not a
    // stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Dump::from_slice(deep.as_bytes()).is_err());
}

#[test]
fn hostile_histogram_encodings_are_errors() {
    let mut stored =
        HistogramDump::from_histogram(&hdrhistogram::Histogram::<u64>::new(2).unwrap(), 0, 0);
    for encoded in [
        "",
        "====",
        "HISTFAAAAA==",
        // The V2 + DEFLATE cookie and a length, then a zlib stream cut short.
        "HISTFAAAACB4nJNpmSzMwMDAxQABzFCaEUzOmNZg",
        // The V2 (uncompressed) cookie with nothing after it.
        "HIST",
    ] {
        stored.encoded = encoded.to_owned();
        assert!(stored.decode().is_err(), "{encoded:?} decoded");
    }
}

/// Standard base64, as the dump stores encodings.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A zlib stream holding `data` in one stored (uncompressed) block.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap();
    let mut out = vec![0x78, 0x01, 0x01];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// An HdrHistogram V2 header (no payload) declaring `payload_len` bytes.
fn v2_header(payload_len: u32, sigfig: u32) -> Vec<u8> {
    let mut h = 0x1c84_9313u32.to_be_bytes().to_vec(); // V2 cookie
    h.extend_from_slice(&payload_len.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // normalizing offset
    h.extend_from_slice(&sigfig.to_be_bytes());
    h.extend_from_slice(&1u64.to_be_bytes()); // lowest
    h.extend_from_slice(&3_600_000_000_000u64.to_be_bytes()); // highest
    h.extend_from_slice(&1f64.to_be_bytes()); // integer to double ratio
    h
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Found by reading the decoder: a V2 header's payload length is trusted
/// and allocated before a byte of payload is read, so a 60-character
/// histogram string could make the reader allocate (and zero) gigabytes.
/// The length is now checked against what the encoding can hold.
#[test]
fn a_histogram_header_cannot_make_the_reader_allocate_gigabytes() {
    let mut stored =
        HistogramDump::from_histogram(&hdrhistogram::Histogram::<u64>::new(2).unwrap(), 0, 0);
    let before = peak_rss_kib();
    let lie = 1 << 30; // 1 GiB
    let uncompressed = v2_header(lie, 2);
    let mut compressed = 0x1c84_9314u32.to_be_bytes().to_vec(); // V2 + DEFLATE cookie
    let inner = zlib_stored(&uncompressed);
    compressed.extend_from_slice(&u32::try_from(inner.len()).unwrap().to_be_bytes());
    compressed.extend_from_slice(&inner);
    for bytes in [uncompressed, compressed] {
        stored.encoded = base64(&bytes);
        let err = stored.decode().expect_err("a payload that is not there");
        assert!(err.to_string().contains("payload"), "{err}");
    }
    let grown_mib = peak_rss_kib().saturating_sub(before) >> 10;
    assert!(
        grown_mib < 256,
        "decoding grew the peak RSS by {grown_mib} MiB"
    );
}

#[test]
fn a_histogram_header_declaring_an_absurd_precision_is_refused() {
    let mut stored =
        HistogramDump::from_histogram(&hdrhistogram::Histogram::<u64>::new(2).unwrap(), 0, 0);
    let mut compressed = 0x1c84_9314u32.to_be_bytes().to_vec();
    let inner = zlib_stored(&v2_header(0, 99));
    compressed.extend_from_slice(&u32::try_from(inner.len()).unwrap().to_be_bytes());
    compressed.extend_from_slice(&inner);
    stored.encoded = base64(&compressed);
    let err = stored.decode().expect_err("99 significant digits");
    assert!(err.to_string().contains("99"), "{err}");
}

#[test]
fn the_test_encoders_agree_with_real_encodings() {
    // The hand-made encodings above are only meaningful if they are what
    // the decoder reads: a real histogram, re-framed by them, decodes.
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
    h.record(1_500).unwrap();
    let real = HistogramDump::from_histogram(&h, 1_500, 0);
    // perf-layer writes plain V2 (cookie 0x1c849313).
    assert!(real.encoded.starts_with("HISTE"), "{}", real.encoded);
    let mut raw = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2Serializer::new(),
        &h,
        &mut raw,
    )
    .unwrap();
    let mut framed = 0x1c84_9314u32.to_be_bytes().to_vec();
    let inner = zlib_stored(&raw);
    framed.extend_from_slice(&u32::try_from(inner.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&inner);
    let mut stored = real.clone();
    stored.encoded = base64(&framed);
    assert_eq!(stored.decode().unwrap(), h);
    stored.encoded = base64(&raw);
    assert_eq!(stored.decode().unwrap(), h);
}

#[test]
fn the_largest_real_histograms_still_decode() {
    // Five digits over the whole u64 range, with counts in many buckets:
    // the longest payloads a real dump can hold pass the header checks.
    for (sigfig, high) in [(5u8, u64::MAX / 2), (5, 3_600_000_000_000), (1, 2_000)] {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, high, sigfig).unwrap();
        let mut v = 1u64;
        while v < high / 2 {
            for step in 0..50 {
                h.saturating_record(v + step * (v / 64 + 1));
            }
            h.record_n(v, u64::MAX / 1024).unwrap();
            v = v.saturating_mul(3) / 2 + 1;
        }
        let stored = HistogramDump::from_histogram(&h, 0, 0);
        assert_eq!(stored.decode().unwrap(), h, "sigfig {sigfig}, high {high}");
    }
}

/// Found by `scripts/fuzz histogram_decode` (kept as
/// `fuzz/seeds/histogram_decode/count-overflow.bin`): counts that add up past
/// u64 made hdrhistogram's `value_at_quantile` overflow, a panic in debug
/// builds and garbage quantiles in release ones.
#[test]
fn histogram_counts_that_overflow_are_refused_and_never_panic() {
    let mut stored =
        HistogramDump::from_histogram(&hdrhistogram::Histogram::<u64>::new(2).unwrap(), 0, 0);
    stored.encoded = "HISTFAAAAFx4nC2J0Q1AQBBEx9xtLhcRRPxJlEAH/vxoiwo0oAzt6EAJ5nL2bfJmd4b97ABsyMPfBejW+b6wvPlxNDon/3hSUlJSWqdS////D1JS0lJSUlJSUlJSUgBSUlJSAAAAAAAAAAAAAGwAAAAAUlJShQ==".to_owned();
    let err = stored.decode().expect_err("counts beyond u64");
    assert!(err.to_string().contains("2^64"), "{err}");

    // A histogram built in memory (a merge of two such) is summarised
    // without a panic. With the total saturated the quantiles cannot be
    // exact; they stay recorded values.
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 2).unwrap();
    h.record_n(10, u64::MAX).unwrap();
    h.record_n(1_000, u64::MAX).unwrap();
    let summary = HistogramDump::from_histogram(&h, u64::MAX, 0);
    assert_eq!(summary.count, u64::MAX);
    assert_eq!(summary.p50, h.highest_equivalent(10));
    assert_eq!(summary.max, h.highest_equivalent(1_000));
}

/// Found by `scripts/fuzz histogram_decode` (kept as
/// `fuzz/seeds/histogram_decode/zero-run-min.bin`): a payload varint that
/// zig-zag decodes to i64::MIN made hdrhistogram's decoder negate it, an
/// overflow (a panic in debug builds).
#[test]
fn a_zero_run_the_decoder_cannot_negate_is_refused() {
    let mut stored =
        HistogramDump::from_histogram(&hdrhistogram::Histogram::<u64>::new(2).unwrap(), 0, 0);
    stored.encoded = "HISTFB0AIFx4nCyJ0Q1AQBBEx9xtLhcRRPxJlEAH/vxoiwo0oAzt6EAJ5nL2bfJmd4b97ACOyMPfBeDW+b64vPlx7ej/////////adGc2csmAv8RAQAAAAAAK5YieJoAAAAAAAAAAAAAAAAAAAAAAAAAAABVAAAAAAAAAAAAAAAAAAAAAAAAQP//////////QBBEx9xtLhcRRPxJlEAH/jg4OPzoiwo0oAzt6EAJ5nL2bTpmd4b97ABsyMPfBeDW+b6wvPlx7ej//////////9Gc2csmAv8RAAD///8AAAArAgCWIhLWyqkygqOjpk8yNaHKqTWCozJPo/+mNf///z///////z3/////////////////////////////////Jmd+eCf/eg==".to_owned();
    assert!(stored.decode().is_err());

    // The same zero run in a plain (uncompressed) V2 encoding.
    let mut plain = v2_header(9, 2);
    plain.extend_from_slice(&[0xff; 9]); // the varint u64::MAX
    stored.encoded = base64(&plain);
    let err = stored.decode().expect_err("zero run of 2^63");
    assert!(err.to_string().contains("zero run"), "{err}");
}
