//! Fetching a snapshot from perf-layer's endpoint.

use std::time::Duration;

use perf_layer::dump::Dump;

/// What can go wrong reading a live process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// Nothing answers at the address.
    #[error(
        "{addr}: nothing answers ({detail}); is the service running, with PerfLayerBuilder::prometheus(ADDR) or PERF_LAYER_PROMETHEUS=ADDR?"
    )]
    Unreachable {
        /// The address.
        addr: String,
        /// What the connection said.
        detail: String,
    },
    /// Something answers, but not perf-layer's snapshot.
    #[error(
        "{addr}: not perf-layer's endpoint ({detail}); give the address the layer serves /metrics and /snapshot.json on"
    )]
    NotEndpoint {
        /// The address.
        addr: String,
        /// What it answered.
        detail: String,
    },
    /// The terminal could not be used.
    #[error("the terminal: {0}; `perf-report live` needs an interactive terminal (or --once)")]
    Terminal(#[from] std::io::Error),
    /// `--record` could not write its file.
    #[error("{path}: cannot write the recorded snapshot: {detail}")]
    Record {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
}

/// The largest snapshot read, bytes: a dump is bounded by the layer's own
/// caps, far below this.
const MAX_SNAPSHOT: u64 = 256 << 20;

/// Takes one snapshot of the process at `addr` (`host:port`, or a URL
/// `http://host:port`).
///
/// # Errors
/// [`LiveError::Unreachable`] when nothing answers, [`LiveError::NotEndpoint`]
/// when what answers is not perf-layer's snapshot.
pub fn fetch(addr: &str) -> Result<Dump, LiveError> {
    let base = addr.trim_end_matches('/');
    let url = if base.starts_with("http://") || base.starts_with("https://") {
        format!("{base}/snapshot.json")
    } else {
        format!("http://{base}/snapshot.json")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let not_ours = |detail: String| LiveError::NotEndpoint {
        addr: addr.to_owned(),
        detail,
    };
    let mut response = agent.get(&url).call().map_err(|e| match e {
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
            LiveError::Unreachable {
                addr: addr.to_owned(),
                detail: e.to_string(),
            }
        }
        ureq::Error::HostNotFound => LiveError::Unreachable {
            addr: addr.to_owned(),
            detail: "no such host".to_owned(),
        },
        other => not_ours(other.to_string()),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(not_ours(format!("GET /snapshot.json answered {status}")));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_SNAPSHOT)
        .read_to_vec()
        .map_err(|e| not_ours(e.to_string()))?;
    // The raw dump, groups not yet expanded: callsite ids are the layer's
    // own, the same in every snapshot, so two snapshots subtract.
    let clean = |e: &dyn std::fmt::Display| {
        not_ours(crate::sanitize::one_line(&e.to_string()).into_owned())
    };
    let dump = Dump::from_slice(&body).map_err(|e| clean(&e))?;
    dump.validate_histograms().map_err(|e| clean(&e))?;
    Ok(dump)
}
