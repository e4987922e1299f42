//! Which runs are comparable: a stable fingerprint of the kind of machine a
//! run ran on.
//!
//! It is the CPU model and the number of CPUs the process could use
//! (`run.cpu_model`, `run.cores`), hashed: two hosts of one instance type
//! share it, a rebuilt VM keeps it, a bigger machine does not. Nothing that
//! changes at a reboot (a boot id, an uptime, a pid) enters it. Where the
//! dump does not say the CPU model (dumps before perf-layer 0.2.0), the host
//! name stands in for it.

use perf_layer::dump::Dump;
use sha2::{Digest, Sha256};

/// The machine fingerprint of a dump: 16 hex digits.
///
/// ```
/// use perf_layer::dump::Dump;
/// use perf_report::history::fingerprint::fingerprint;
/// let mut a = Dump::empty("svc");
/// a.run.cpu_model = Some("AMD EPYC 7B13".to_owned());
/// a.run.cores = Some(2);
/// let mut b = a.clone();
/// b.run.host = "another-host".to_owned();
/// assert_eq!(fingerprint(&a), fingerprint(&b));
/// b.run.cores = Some(4);
/// assert_ne!(fingerprint(&a), fingerprint(&b));
/// ```
pub fn fingerprint(dump: &Dump) -> String {
    let key = match &dump.run.cpu_model {
        Some(model) => format!("cpu={model};cores={}", cores(dump)),
        None => format!("host={};cores={}", dump.run.host, cores(dump)),
    };
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The machine in words: `AMD EPYC 7B13, 2 CPUs`.
pub fn describe(dump: &Dump) -> String {
    let cpus = match dump.run.cores {
        Some(1) => "1 CPU".to_owned(),
        Some(n) => format!("{n} CPUs"),
        None => "CPUs unknown".to_owned(),
    };
    match &dump.run.cpu_model {
        Some(model) => format!("{model}, {cpus}"),
        None => format!("host {} (CPU model unknown), {cpus}", dump.run.host),
    }
}

fn cores(dump: &Dump) -> String {
    dump.run
        .cores
        .map_or_else(|| "?".to_owned(), |n| n.to_string())
}
