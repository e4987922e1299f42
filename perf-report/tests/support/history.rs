//! Runs of one program for the history tests: three spans whose busy time
//! moves from run to run by a seeded noise, as on a real machine, and an
//! allocation per call that does not.

use perf_layer::dump::Dump;

use super::{Span, US, dump};

/// A reproducible generator.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `[-1, 1)`.
    pub fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % 20_000) as f64 / 10_000.0 - 1.0
    }
}

/// A busy-time distribution around `base_ns`: most calls near it, a tenth
/// slower, a few (the tail) `tail` times three times slower.
fn calls(base_ns: f64, n: u64, tail: f64) -> Vec<(u64, u64)> {
    let at = |f: f64| (base_ns * f) as u64;
    vec![
        (at(0.9), n * 30 / 100),
        (at(1.0), n * 40 / 100),
        (at(1.2), n * 25 / 100),
        (at(3.0 * tail), n * 5 / 100),
    ]
}

/// Run `i` of program `svc`: busy times of `parse`, `lookup` and `encode`
/// moved by up to ±`noise` (a fraction) from run to run, `slow` making one
/// span slower by a factor, `alloc_growth` making `encode` allocate more.
pub fn run(i: u64, noise: f64, slow: Option<(&str, f64)>, alloc_growth: f64) -> Dump {
    let mut rng = Noise::new(i + 1);
    let mut factor = |name: &str| {
        let jitter = 1.0 + noise * rng.next();
        jitter * slow.filter(|(s, _)| *s == name).map_or(1.0, |(_, f)| f)
    };
    let factors = [factor("parse"), factor("lookup"), factor("encode")];
    shaped_run(i, factors, 1.0, alloc_growth)
}

/// Run `i` of program `svc` with each span's busy time (`parse`, `lookup`,
/// `encode`) multiplied by its factor, and `lookup`'s tail by `tail`.
pub fn shaped_run(i: u64, factors: [f64; 3], tail: f64, alloc_growth: f64) -> Dump {
    let [parse, lookup, encode] = factors;
    let parse = calls(200.0 * US as f64 * parse, 1_000, 1.0);
    let lookup = calls(50.0 * US as f64 * lookup, 2_000, tail);
    let encode = calls(30.0 * US as f64 * encode, 1_000, 1.0);
    let bytes = (4096.0 * (1.0 + alloc_growth)) as u64;
    let mut d = dump(
        "svc",
        2_000_000_000,
        &[
            Span::new("parse", 10, &parse).alloc(1_000 * 1024, 1_000 * 4, 0, 0),
            Span::new("lookup", 20, &lookup).alloc(2_000 * 256, 2_000, 0, 0),
            Span::new("encode", 30, &encode).alloc(1_000 * bytes, 1_000 * 8, 0, 0),
        ],
    );
    d.run.started_at_unix_ms = 1_790_000_000_000 + i * 3_600_000;
    d.run.ended_at_unix_ms = d.run.started_at_unix_ms + 2_000;
    d.run.pid = 1000 + i as u32;
    d.run.host = format!("ci-runner-{}", i % 3);
    d.run.cpu_model = Some("Test CPU 9000".to_owned());
    d.run.cores = Some(4);
    d
}
