//! Parsing a dump: the format version first, so a newer dump is refused for
//! that reason rather than for a schema mismatch; histograms on request.

use serde::Deserialize;

use super::{Dump, FORMAT_VERSION, HistogramDecodeError};

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

#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u32>,
}

impl Dump {
    /// Parses a dump from JSON bytes, checking its format version first so a
    /// newer dump is refused for that reason rather than for a schema mismatch.
    ///
    /// # Errors
    /// [`DumpReadError`] for invalid JSON, a missing or unsupported version,
    /// or a schema mismatch. Histograms are decoded lazily, by
    /// [`HistogramDump::decode`](super::HistogramDump::decode) or [`Dump::validate_histograms`].
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
            for h in cs.histograms() {
                h.decode().map_err(|source| DumpReadError::Histogram {
                    callsite: cs.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
