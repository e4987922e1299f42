//! Any bytes as a stored histogram's encoding: decoding must refuse what it
//! cannot read, never panic or allocate beyond the bounds it accepts, and
//! what it accepts must round-trip.
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
    if let Ok(hist) = stored.decode() {
        let again = HistogramDump::from_histogram(&hist, 0, 0);
        assert_eq!(again.decode().ok().as_ref(), Some(&hist));
    }
});
