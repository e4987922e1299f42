//! Keeping the dump of a failed truth check: the readings these tests
//! check depend on the machine's load, and a failure seen once in CI is
//! read from the dump that gave it, not guessed at.

use perf_layer::dump::Dump;

/// Writes `dump` to `named`.json in Cargo's temporary directory for
/// integration tests (`target/tmp`) and says where, for a failing
/// assertion's message.
pub fn keep(dump: &Dump, named: &str) -> String {
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{named}.json"));
    match dump.write_atomic(&kept) {
        Ok(()) => format!("the dump is kept at {}", kept.display()),
        Err(e) => format!("the dump could not be kept: {e}"),
    }
}
