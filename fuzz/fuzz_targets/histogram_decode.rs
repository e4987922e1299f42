//! Any bytes as a stored histogram's encoding: decoding must refuse what it
//! cannot read, never panic or allocate beyond the bounds it accepts, and
//! what it accepts must round-trip. `check` and `recorded_buckets`, which
//! read the encoding without building the histogram, must give the
//! decoder's answer on every input.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use perf_layer::dump::HistogramDump;

fuzz_target!(|data: &[u8]| {
    let mut stored = HistogramDump::from_histogram(
        &hdrhistogram::Histogram::new(2).expect("a valid histogram"),
        0,
        0,
    );
    stored.encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let decoded = stored.decode();
    assert_eq!(stored.check(), decoded.as_ref().map(drop).map_err(Clone::clone));
    let recorded = decoded.as_ref().map(|hist| {
        hist.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect::<Vec<_>>()
    });
    assert_eq!(stored.recorded_buckets(), recorded.map_err(Clone::clone));
    if let Ok(hist) = decoded {
        let again = HistogramDump::from_histogram(&hist, 0, 0);
        assert_eq!(again.decode().ok().as_ref(), Some(&hist));
    }
});
