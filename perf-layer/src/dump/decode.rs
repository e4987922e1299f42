//! Reading an encoding defensively before hdrhistogram's decoder sees it:
//! base64, the V2 header's bounds, and inflating V2 + DEFLATE (dumps of
//! perf-layer 0.1.0) once into reusable per-thread buffers.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::Deserializer;

use super::v2;

/// The largest number of significant digits a stored histogram may declare.
///
/// A hostile header could otherwise ask the decoder for a counts array of
/// hundreds of megabytes; 5 digits is the HdrHistogram maximum anyway.
pub(super) const MAX_SIGFIG: u8 = 5;

/// Runs `f` on this thread's decoding scratch space, trimmed afterwards.
/// Only a decode running inside another on this thread (none does today)
/// pays for scratch space of its own.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut DecodeScratch) -> R) -> R {
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

/// The reusable state of [`HistogramDump::decode`](super::HistogramDump::decode).
pub(super) struct DecodeScratch {
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
    pub(super) fn plain_v2(
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
    use v2::{HEADER_LEN as V2_HEADER_LEN, V2_COMPRESSED_COOKIE, V2_COOKIE};
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
pub(super) struct PlainV2<'a> {
    /// The header and payload, as hdrhistogram's deserializer reads them.
    pub(super) plain: &'a [u8],
    /// The payload the header declares, empty for foreign input.
    pub(super) payload: &'a [u8],
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
