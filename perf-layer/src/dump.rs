//! The versioned dump format, shared by `perf-layer` (which writes it) and
//! `perf-report` (which reads it).
//!
//! Every field is documented in `docs/dump-format.md`; units are in the field
//! names (`_ns`, `_bytes`, `_ms`). Histograms are stored whole, as HdrHistogram
//! V2 in base64, so dumps can be merged and any quantile recomputed; the
//! percentile summary beside each one is for people reading the JSON.
//!
//! ```
//! use perf_layer::dump::{Dump, HistogramDump};
//! use hdrhistogram::Histogram;
//!
//! let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
//! h.record(1_500).unwrap();
//! let stored = HistogramDump::from_histogram(&h, 1_500, 0);
//! assert_eq!(stored.decode().unwrap(), h);
//!
//! let json = serde_json::to_vec(&Dump::empty("demo")).unwrap();
//! let back = Dump::from_slice(&json).unwrap();
//! assert_eq!(back.format_version, perf_layer::dump::FORMAT_VERSION);
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

/// The format version this crate writes and the newest it reads.
///
/// Bumped on any change that an older reader would misread. Adding an
/// optional field does not bump it: readers ignore fields they do not know.
pub const FORMAT_VERSION: u32 = 1;

/// The largest number of significant digits a stored histogram may declare.
///
/// A hostile header could otherwise ask the decoder for a counts array of
/// hundreds of megabytes; 5 digits is the HdrHistogram maximum anyway.
const MAX_SIGFIG: u8 = 5;

/// One whole profiling run: everything `perf-report` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dump {
    /// The dump format version, [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The crate that wrote the dump.
    pub producer: Producer,
    /// What ran, where, and when.
    pub run: RunInfo,
    /// The layer's configuration for this run.
    pub config: DumpConfig,
    /// Whether the counting allocator was installed: when `false`, every
    /// callsite's [`CallsiteStats::alloc`] is `None` (unknown, not zero).
    pub allocations_tracked: bool,
    /// Per-callsite statistics, one entry per span callsite seen.
    pub callsites: Vec<CallsiteStats>,
    /// Spans not recorded because `config.max_callsites` was reached.
    #[serde(default)]
    pub callsites_dropped_spans: u64,
    /// Parent-to-child callsite edges, for call paths and flamegraphs.
    pub edges: Vec<CallEdge>,
    /// Edge observations not recorded because `config.max_edges` was reached.
    #[serde(default)]
    pub edges_dropped: u64,
    /// The process timeline from the background sampler.
    pub timeline: Timeline,
    /// Threshold alerts raised during the run (a bounded ring: the newest kept).
    pub alerts: Vec<Alert>,
    /// Alerts raised but evicted from the bounded alert ring.
    #[serde(default)]
    pub alerts_dropped: u64,
    /// The layer's estimate of its own cost.
    pub overhead: Overhead,
}

/// The crate that wrote a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// Crate name, `perf-layer`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// What ran, where, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The program name (the executable's file name).
    pub program: String,
    /// The process id.
    pub pid: u32,
    /// The host name, or `"unknown"`.
    pub host: String,
    /// When the layer was built, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// When this dump was taken, in milliseconds since the Unix epoch.
    pub ended_at_unix_ms: u64,
    /// Time from the layer's build to this dump, in nanoseconds.
    pub duration_ns: u64,
}

/// The layer configuration a dump was recorded with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpConfig {
    /// Significant decimal digits of every histogram (1 to 5).
    pub histogram_sigfig: u8,
    /// The largest value a histogram tracks, in nanoseconds; larger values are
    /// recorded as this value and counted in [`HistogramDump::clamped`].
    pub histogram_max_ns: u64,
    /// The sampler interval in milliseconds, `None` when the sampler was off.
    pub sampler_interval_ms: Option<u64>,
    /// The RSS alert threshold in bytes, if any.
    pub rss_alert_bytes: Option<u64>,
    /// The CPU alert threshold in percent of one core, if any.
    pub cpu_alert_percent: Option<f64>,
    /// The most callsites recorded.
    pub max_callsites: usize,
    /// The most distinct call edges recorded.
    pub max_edges: usize,
    /// The most timeline samples kept (older ones are thinned, not dropped).
    pub timeline_capacity: usize,
}

/// Statistics of one span callsite (one place in the code), merged over every
/// thread and every span it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallsiteStats {
    /// Index of this callsite in the dump, referenced by [`CallEdge`].
    pub id: u32,
    /// Span name.
    pub name: String,
    /// Span target.
    pub target: String,
    /// Rust module path, if known.
    pub module_path: Option<String>,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// Level: `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// Number of spans of this callsite that closed.
    pub calls: u64,
    /// Creation to close.
    pub wall_ns: HistogramDump,
    /// Sum of the intervals the span was entered (on any thread).
    pub busy_ns: HistogramDump,
    /// Wall minus busy: time the span existed but was not entered.
    pub idle_ns: HistogramDump,
    /// Busy time when this span was the innermost entered span on its thread:
    /// busy minus the busy time of its child spans.
    pub self_ns: HistogramDump,
    /// Events recorded inside the span, by level.
    pub events: EventCounts,
    /// Heap allocation while entered; `None` without the counting allocator.
    pub alloc: Option<AllocStats>,
    /// Process RSS change between open and close, as the sampler saw it.
    /// Coarse: the sampler's resolution is its interval. `None` without sampler.
    pub rss_delta: Option<RssDelta>,
}

/// Events recorded inside a span, per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct EventCounts {
    pub trace: u64,
    pub debug: u64,
    pub info: u64,
    pub warn: u64,
    pub error: u64,
}

impl EventCounts {
    /// All events of every level (saturating: counts read from a file can
    /// be anything).
    pub fn total(&self) -> u64 {
        [self.debug, self.info, self.warn, self.error]
            .into_iter()
            .fold(self.trace, u64::saturating_add)
    }

    /// Adds another set of counts to this one, saturating.
    pub fn add(&mut self, other: &EventCounts) {
        self.trace = self.trace.saturating_add(other.trace);
        self.debug = self.debug.saturating_add(other.debug);
        self.info = self.info.saturating_add(other.info);
        self.warn = self.warn.saturating_add(other.warn);
        self.error = self.error.saturating_add(other.error);
    }
}

/// Heap allocation attributed to a callsite, summed over all its spans.
///
/// Counted only while a span was entered, on the thread that entered it.
/// "Inclusive" counts include child spans; "self" counts do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocStats {
    /// Bytes allocated, inclusive.
    pub alloc_bytes: u64,
    /// Allocations made, inclusive.
    pub allocs: u64,
    /// Bytes freed, inclusive.
    pub freed_bytes: u64,
    /// Deallocations made, inclusive.
    pub frees: u64,
    /// Bytes allocated while this span was innermost.
    pub self_alloc_bytes: u64,
    /// Allocations made while this span was innermost.
    pub self_allocs: u64,
    /// Inclusive bytes allocated minus bytes freed: memory the spans kept.
    pub net_bytes: i64,
    /// Spans of this callsite that closed holding more than they freed.
    pub calls_retaining: u64,
}

impl AllocStats {
    /// Adds another callsite's figures to these.
    pub fn add(&mut self, other: &AllocStats) {
        self.alloc_bytes = self.alloc_bytes.saturating_add(other.alloc_bytes);
        self.allocs = self.allocs.saturating_add(other.allocs);
        self.freed_bytes = self.freed_bytes.saturating_add(other.freed_bytes);
        self.frees = self.frees.saturating_add(other.frees);
        self.self_alloc_bytes = self.self_alloc_bytes.saturating_add(other.self_alloc_bytes);
        self.self_allocs = self.self_allocs.saturating_add(other.self_allocs);
        self.net_bytes = self.net_bytes.saturating_add(other.net_bytes);
        self.calls_retaining = self.calls_retaining.saturating_add(other.calls_retaining);
    }
}

/// Process RSS change between a span's open and close, summed over its spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RssDelta {
    /// Sum of the per-span deltas, in bytes.
    pub sum_bytes: i64,
    /// The largest single-span growth, in bytes.
    pub max_bytes: i64,
    /// The largest single-span shrink (most negative delta), in bytes.
    pub min_bytes: i64,
}

impl RssDelta {
    /// Adds another callsite's figures to these.
    pub fn add(&mut self, other: &RssDelta) {
        self.sum_bytes = self.sum_bytes.saturating_add(other.sum_bytes);
        self.max_bytes = self.max_bytes.max(other.max_bytes);
        self.min_bytes = self.min_bytes.min(other.min_bytes);
    }
}

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
            if holds_max_varint(v2.payload) {
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
            Ok::<_, HistogramDecodeError>(crate::v2_check::accepts(v2.plain))
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
            let header = crate::v2_check::walk(v2.plain, |index, count| {
                buckets.push((index as u64, count));
            });
            let Some((1, precision)) = header else {
                return Ok::<_, HistogramDecodeError>(None);
            };
            for (at, _) in buckets.iter_mut() {
                let index = usize::try_from(*at).unwrap_or(usize::MAX);
                *at = crate::flat_hist::highest_at(precision, index);
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

/// Runs `f` on this thread's decoding scratch space, trimmed afterwards.
/// Only a decode running inside another on this thread (none does today)
/// pays for scratch space of its own.
fn with_scratch<R>(f: impl FnOnce(&mut DecodeScratch) -> R) -> R {
    DECODE_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let out = f(&mut scratch);
            scratch.trim();
            out
        }
        Err(_) => f(&mut DecodeScratch::default()),
    })
}

thread_local! {
    /// Each thread's decoding buffers and inflate state, reused from one
    /// histogram to the next: a fresh inflate state (tens of kilobytes,
    /// allocated and zeroed) per histogram cost more than the inflating.
    static DECODE_SCRATCH: std::cell::RefCell<DecodeScratch> =
        std::cell::RefCell::new(DecodeScratch::default());
}

/// Buffers larger than this are dropped after a decode rather than kept:
/// the histograms profilers write fit well within it, and a hostile one
/// should not pin its memory for the life of the thread.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

/// The reusable state of [`HistogramDump::decode`].
struct DecodeScratch {
    /// The base64-decoded encoding.
    bytes: Vec<u8>,
    /// The inflated (plain V2) encoding.
    plain: Vec<u8>,
    /// Reset before every use.
    inflater: flate2::Decompress,
    /// Keeps its payload buffer between uses.
    deserializer: Deserializer,
}

impl Default for DecodeScratch {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            plain: Vec::new(),
            inflater: flate2::Decompress::new(true),
            deserializer: Deserializer::new(),
        }
    }
}

impl DecodeScratch {
    /// `encoded` decoded from base64, checked and inflated ([`plain_v2`]),
    /// with the deserializer to read it.
    fn plain_v2(
        &mut self,
        encoded: &str,
    ) -> Result<(PlainV2<'_>, &mut Deserializer), HistogramDecodeError> {
        let DecodeScratch {
            bytes,
            plain,
            inflater,
            deserializer,
        } = self;
        bytes.clear();
        BASE64
            .decode_vec(encoded.as_bytes(), bytes)
            .map_err(|e| HistogramDecodeError::Base64(e.to_string()))?;
        Ok((plain_v2(bytes, inflater, plain)?, deserializer))
    }

    fn trim(&mut self) {
        // The deserializer's payload buffer, which only grows, is never
        // longer than the encoding (the plain one, or the decoded bytes).
        if self.bytes.capacity() > SCRATCH_KEEP_BYTES || self.plain.capacity() > SCRATCH_KEEP_BYTES
        {
            *self = Self::default();
        }
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

/// Why a stored histogram could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistogramDecodeError {
    /// The `encoded` text is not valid base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(String),
    /// The bytes are not a valid HdrHistogram V2 (or V2 + DEFLATE) encoding.
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0}")]
    Hdr(String),
    /// The header asks for a histogram larger than any profiler writes.
    #[error("histogram declares {0} significant digits (at most {MAX_SIGFIG} are allowed)")]
    Precision(u32),
    /// The counts add up to more than a u64 holds.
    #[error("histogram counts add up to more than 2^64 - 1; no recorder writes that many values")]
    CountOverflow,
    /// The header declares a payload larger than the encoding can hold.
    #[error(
        "histogram header declares a payload of {declared} bytes, more than the {max} its encoding can hold"
    )]
    Payload {
        /// The payload length the header declares.
        declared: u32,
        /// The most the encoding can hold.
        max: usize,
    },
}

/// Checks an encoding before hdrhistogram's decoder sees it, and returns
/// it as plain (uncompressed) V2, inflated here once. Refused:
///
/// - a precision above [`MAX_SIGFIG`] (an absurd counts array);
/// - a payload length larger than the encoding can hold (the decoder
///   allocates and zeroes the declared length before reading a byte of it,
///   so a 60-character string could ask for 4 GiB);
///
/// A zero run of 2^63 in the payload (the decoder negates it, which
/// overflows: a panic in debug builds) is left to the caller, which scans
/// [`PlainV2::payload`] before decoding with hdrhistogram.
///
/// The plain layout is the V2 header (40 bytes: cookie, payload length,
/// normalizing offset, precision, lowest, highest, ratio) then the payload,
/// zig-zag LEB128 varints of at most 9 bytes. The compressed one is a
/// cookie (4 bytes), a length (4) and a zlib stream of the plain layout.
fn plain_v2<'a>(
    bytes: &'a [u8],
    inflater: &mut flate2::Decompress,
    plain: &'a mut Vec<u8>,
) -> Result<PlainV2<'a>, HistogramDecodeError> {
    use crate::v2_check::{HEADER_LEN as V2_HEADER_LEN, V2_COMPRESSED_COOKIE, V2_COOKIE};
    // DEFLATE cannot expand data more than about 1032 to 1 (a 258-byte
    // match costs at least 2 bits).
    const MAX_INFLATE_RATIO: usize = 1032;
    let hdr = |what: &str| HistogramDecodeError::Hdr(what.to_owned());
    if bytes.len() < 8 {
        return Err(hdr("encoding shorter than its header"));
    }
    let word = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut compressed: &[u8] = &[];
    let (header, room, is_compressed) = match word(bytes, 0) {
        V2_COOKIE => {
            let Some(header) = bytes.get(..V2_HEADER_LEN) else {
                return Err(hdr("header is truncated"));
            };
            let mut h = [0u8; V2_HEADER_LEN];
            h.copy_from_slice(header);
            (h, bytes.len() - V2_HEADER_LEN, false)
        }
        V2_COMPRESSED_COOKIE => {
            inflater.reset(true);
            compressed = &bytes[8..];
            let mut h = [0u8; V2_HEADER_LEN];
            if inflate_exact(inflater, &mut compressed, &mut h).is_err() {
                return Err(hdr("compressed header is truncated"));
            }
            let room = (bytes.len() - 8).saturating_mul(MAX_INFLATE_RATIO);
            (h, room, true)
        }
        // Let the deserializer give its own error for foreign input.
        _ => {
            return Ok(PlainV2 {
                plain: bytes,
                payload: &[],
            });
        }
    };
    let sigfig = word(&header, 12);
    if sigfig > u32::from(MAX_SIGFIG) {
        return Err(HistogramDecodeError::Precision(sigfig));
    }
    // At most one 9-byte varint per count, and at most 65 half-buckets of
    // counts (HdrHistogram's layout: sub-buckets are the next power of two
    // above 2 * 10^sigfig).
    let sub_buckets = (2 * 10u64.pow(sigfig)).next_power_of_two();
    let most_counts = 65 * sub_buckets / 2;
    let max = usize::try_from(9 * most_counts)
        .unwrap_or(usize::MAX)
        .min(room);
    let declared = word(&header, 4);
    let len = usize::try_from(declared).unwrap_or(usize::MAX);
    if len > max {
        return Err(HistogramDecodeError::Payload { declared, max });
    }
    let plain: &[u8] = if is_compressed {
        plain.clear();
        plain.extend_from_slice(&header);
        // Bounded by the check above: at most 1032 times the input's length.
        plain.resize(V2_HEADER_LEN + len, 0);
        let mut read = 0;
        while read < len {
            match inflate_some(
                inflater,
                &mut compressed,
                &mut plain[V2_HEADER_LEN + read..],
            ) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) => return Err(HistogramDecodeError::Hdr(format!("cannot inflate: {e}"))),
            }
        }
        if read < len {
            return Err(hdr("compressed payload is truncated"));
        }
        plain
    } else {
        bytes
    };
    let payload = plain.get(V2_HEADER_LEN..V2_HEADER_LEN + len).unwrap_or(&[]);
    Ok(PlainV2 { plain, payload })
}

/// A plain V2 encoding from [`plain_v2`].
struct PlainV2<'a> {
    /// The header and payload, as hdrhistogram's deserializer reads them.
    plain: &'a [u8],
    /// The payload the header declares, empty for foreign input.
    payload: &'a [u8],
}

/// One `Read::read` from a zlib stream held whole in `input`, with the
/// results and errors of flate2's `read::ZlibDecoder` (which this replaces
/// so that one inflate state serves every histogram): `Ok(0)` at the
/// stream's end, an error for a corrupt or incomplete stream.
fn inflate_some(
    inflater: &mut flate2::Decompress,
    input: &mut &[u8],
    dst: &mut [u8],
) -> io::Result<usize> {
    use flate2::{FlushDecompress, Status};
    loop {
        let eof = input.is_empty();
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let flush = if eof {
            FlushDecompress::Finish
        } else {
            FlushDecompress::None
        };
        let ret = inflater.decompress(input, dst, flush);
        let read = usize::try_from(inflater.total_out() - before_out).unwrap_or(usize::MAX);
        let consumed = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX);
        *input = input.get(consumed..).unwrap_or(&[]);
        match ret {
            Ok(Status::Ok | Status::BufError) if read == 0 && !eof && !dst.is_empty() => {}
            Ok(Status::Ok | Status::BufError) if read == 0 && eof && !dst.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "incomplete deflate stream",
                ));
            }
            Ok(_) => return Ok(read),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "corrupt deflate stream",
                ));
            }
        }
    }
}

/// `Read::read_exact` over [`inflate_some`].
fn inflate_exact(
    inflater: &mut flate2::Decompress,
    input: &mut &[u8],
    mut dst: &mut [u8],
) -> io::Result<()> {
    while !dst.is_empty() {
        match inflate_some(inflater, input, dst)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => dst = &mut dst[n..],
        }
    }
    Ok(())
}

/// Whether the payload holds the varint u64::MAX, which zig-zag decodes to
/// i64::MIN, the one zero run hdrhistogram cannot negate.
pub(crate) fn holds_max_varint(mut payload: &[u8]) -> bool {
    // Stops at the end, or at a truncated varint the decoder refuses.
    while let Some((value, used)) = crate::v2_check::varint(payload) {
        if value == u64::MAX {
            return true;
        }
        payload = &payload[used..];
    }
    false
}

/// A parent-to-child callsite edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEdge {
    /// The parent callsite's [`CallsiteStats::id`].
    pub parent: u32,
    /// The child callsite's [`CallsiteStats::id`].
    pub child: u32,
    /// Child spans closed under this parent.
    pub calls: u64,
    /// Sum of those child spans' busy time, in nanoseconds.
    pub child_busy_ns: u64,
}

/// The process timeline sampled in the background.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The spacing of the kept samples in milliseconds. Starts at the sampler
    /// interval and doubles each time a full timeline is thinned.
    pub interval_ms: u64,
    /// The samples, oldest first.
    pub samples: Vec<ProcessSample>,
}

/// One process sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_bytes: u64,
    /// CPU use since the previous sample, in percent of one core (can exceed 100).
    pub cpu_percent: f64,
    /// Number of threads in the process (0 when unknown).
    pub threads: u32,
}

/// A threshold crossing raised by the sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// What crossed its threshold.
    pub kind: AlertKind,
    /// The measured value (bytes for RSS, percent for CPU).
    pub value: f64,
    /// The configured threshold, in the same unit.
    pub threshold: f64,
    /// The message that was logged.
    pub message: String,
}

/// What an [`Alert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// Resident memory above `rss_alert_bytes`.
    Rss,
    /// CPU above `cpu_alert_percent`.
    Cpu,
}

/// The layer's estimate of its own cost during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// Measured cost the layer adds to one span's lifecycle, in nanoseconds
    /// (calibrated in-process against a no-op layer).
    pub per_span_ns: f64,
    /// Spans recorded.
    pub spans: u64,
    /// `per_span_ns * spans`, in nanoseconds.
    pub estimated_ns: u64,
    /// `estimated_ns` as a fraction of the CPU time the process used during
    /// the run (0 to 1); where that is unknown or too short to read, of the
    /// run's wall time on each thread that recorded spans, at most one per core.
    pub fraction_of_run: f64,
}

/// Why a dump could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpReadError {
    /// The input is not JSON, is truncated, or does not match the schema.
    #[error("not a valid perf-layer dump: {0}")]
    Json(#[from] serde_json::Error),
    /// The input has no `format_version` field.
    #[error("no `format_version` field: this is not a perf-layer dump")]
    MissingVersion,
    /// The dump was written by a newer perf-layer.
    #[error(
        "dump format version {found} is newer than this tool reads (up to {FORMAT_VERSION}); upgrade perf-report"
    )]
    TooNew {
        /// The version found in the dump.
        found: u32,
    },
    /// The dump's format version is one no perf-layer ever wrote.
    #[error("dump format version {found} is not supported (this tool reads {FORMAT_VERSION})")]
    Unsupported {
        /// The version found in the dump.
        found: u32,
    },
    /// A stored histogram could not be decoded.
    #[error("callsite `{callsite}`: {source}")]
    Histogram {
        /// The callsite whose histogram is broken.
        callsite: String,
        /// What was wrong with it.
        #[source]
        source: HistogramDecodeError,
    },
}

/// Why a dump could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpWriteError {
    /// Creating, writing or renaming the file failed.
    #[error(
        "cannot write dump to {path}: {source}; check that the directory exists, is writable and has free space"
    )]
    Io {
        /// The dump's destination.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Serialization failed (it does not, for dumps this crate builds).
    #[error("cannot serialize dump: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u32>,
}

impl Dump {
    /// An empty dump for `program`: no callsites, no timeline.
    pub fn empty(program: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            producer: Producer {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            run: RunInfo {
                program: program.to_owned(),
                pid: 0,
                host: "unknown".to_owned(),
                started_at_unix_ms: 0,
                ended_at_unix_ms: 0,
                duration_ns: 0,
            },
            config: DumpConfig {
                histogram_sigfig: 2,
                histogram_max_ns: 3_600_000_000_000,
                sampler_interval_ms: None,
                rss_alert_bytes: None,
                cpu_alert_percent: None,
                max_callsites: 0,
                max_edges: 0,
                timeline_capacity: 0,
            },
            allocations_tracked: false,
            callsites: Vec::new(),
            callsites_dropped_spans: 0,
            edges: Vec::new(),
            edges_dropped: 0,
            timeline: Timeline::default(),
            alerts: Vec::new(),
            alerts_dropped: 0,
            overhead: Overhead::default(),
        }
    }

    /// Parses a dump from JSON bytes, checking its format version first so a
    /// newer dump is refused for that reason rather than for a schema mismatch.
    ///
    /// # Errors
    /// [`DumpReadError`] for invalid JSON, a missing or unsupported version,
    /// or a schema mismatch. Histograms are decoded lazily, by
    /// [`HistogramDump::decode`] or [`Dump::validate_histograms`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DumpReadError> {
        let probe: VersionProbe = serde_json::from_slice(bytes)?;
        match probe.format_version {
            None => Err(DumpReadError::MissingVersion),
            Some(v) if v > FORMAT_VERSION => Err(DumpReadError::TooNew { found: v }),
            Some(v) if v < 1 => Err(DumpReadError::Unsupported { found: v }),
            Some(_) => Ok(serde_json::from_slice(bytes)?),
        }
    }

    /// Decodes every histogram once, reporting the first broken one.
    ///
    /// # Errors
    /// [`DumpReadError::Histogram`] naming the callsite.
    pub fn validate_histograms(&self) -> Result<(), DumpReadError> {
        for cs in &self.callsites {
            for h in [&cs.wall_ns, &cs.busy_ns, &cs.idle_ns, &cs.self_ns] {
                h.decode().map_err(|source| DumpReadError::Histogram {
                    callsite: cs.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Serializes the dump as pretty JSON into `writer`.
    ///
    /// # Errors
    /// Any I/O error of `writer`.
    pub fn to_writer<W: Write>(&self, writer: W) -> Result<(), serde_json::Error> {
        serde_json::to_writer_pretty(writer, self)
    }

    /// Writes the dump to `path` atomically: into a temporary file in the same
    /// directory, flushed to disk, then renamed over `path`. A crash at any
    /// point leaves either the previous dump or the new one, never half of one.
    /// On Unix the file is created readable by its owner only.
    ///
    /// # Errors
    /// [`DumpWriteError::Io`] naming the path; the previous file is untouched.
    pub fn write_atomic(&self, path: &Path) -> Result<(), DumpWriteError> {
        let io_err = |source| DumpWriteError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = path.file_name().ok_or_else(|| {
            io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        })?;
        // A name no other write uses, in this process or another: two
        // threads writing the same path at once (a periodic dump and an
        // explicit one) must not share, and tear, one temporary file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = file_name.to_owned();
        tmp_name.push(format!(
            ".tmp{}.{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);

        let result = (|| {
            let mut options = fs::OpenOptions::new();
            // `create_new`: never reuse a stale file (and its permissions)
            // that a crashed run may have left under this name.
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&tmp)?;
            let mut writer = io::BufWriter::new(file);
            self.to_writer(&mut writer).map_err(io::Error::other)?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        Ok(())
    }
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

    #[test]
    fn newer_version_is_refused_for_that_reason() {
        let mut value = serde_json::to_value(Dump::empty("x")).unwrap();
        value["format_version"] = (FORMAT_VERSION + 1).into();
        let err = Dump::from_slice(value.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, DumpReadError::TooNew { .. }), "{err}");
        assert!(matches!(
            Dump::from_slice(b"{}"),
            Err(DumpReadError::MissingVersion)
        ));
    }
}
