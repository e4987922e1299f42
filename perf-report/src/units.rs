//! Human formatting of the figures the report shows, and the unit of each.

use crate::label::labelled;

labelled! {
    /// The unit of a figure in a finding's evidence.
    #[non_exhaustive]
    pub enum Unit {
        /// Nanoseconds.
        Ns = "ns",
        /// Bytes.
        Bytes = "bytes",
        /// Bytes per second.
        BytesPerSec = "bytes_per_sec",
        /// A fraction of a whole, 0 to 1 (shown as a percentage).
        Share = "share",
        /// A plain count.
        Count = "count",
        /// A ratio of two like figures (shown as `12.0x`).
        Ratio = "ratio",
        /// CPU use in percent of one core (shown as `%cpu`).
        CpuPercent = "cpu_percent",
        /// A plain number such as a coefficient (shown with two decimals).
        Number = "number",
    }
}

impl Unit {
    /// Formats `value` in this unit for people.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Ns => ns(value),
            Unit::Bytes => bytes(value),
            Unit::BytesPerSec => format!("{}/s", bytes(value)),
            Unit::Share => pct(value),
            Unit::Count => count(value),
            Unit::Ratio => format!("{}x", sig(value)),
            Unit::CpuPercent => format!("{}% cpu", sig(value)),
            Unit::Number => format!("{value:.2}"),
        }
    }
}

/// Three significant digits, without scientific notation for ordinary sizes.
fn sig(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    if a >= 1e15 {
        format!("{v:.2e}")
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}

/// A duration in nanoseconds: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn ns(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    if a < 1e3 {
        format!("{} ns", sig(v))
    } else if a < 1e6 {
        format!("{} µs", sig(v / 1e3))
    } else if a < 1e9 {
        format!("{} ms", sig(v / 1e6))
    } else {
        format!("{} s", sig(v / 1e9))
    }
}

/// A size in bytes with binary prefixes: `512 B`, `1.50 KiB`, `3.2 MiB`.
pub fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{x:.0} B")
    } else {
        format!("{} {}", sig(x), UNITS[i])
    }
}

/// A fraction as a percentage: `0.183` is `18.3%`.
pub fn pct(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "n/a".to_owned();
    }
    let p = fraction * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A signed relative change: `+12.5%`, `-3.0%`.
pub fn change(fraction: f64) -> String {
    if !fraction.is_finite() {
        return if fraction > 0.0 { "new" } else { "n/a" }.to_owned();
    }
    format!("{:+.1}%", fraction * 100.0)
}

/// A number of calls: `1 call`, `2,608 calls`.
///
/// ```
/// assert_eq!(perf_report::units::calls(1), "1 call");
/// assert_eq!(perf_report::units::calls(2_608), "2,608 calls");
/// ```
pub fn calls(n: u64) -> String {
    match n {
        1 => "1 call".to_owned(),
        n => format!("{} calls", count(n as f64)),
    }
}

/// A count with thousands separators below ten million, then `12.3M`.
pub fn count(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    if v.abs() >= 1e7 {
        if v.abs() >= 1e12 {
            return format!("{v:.3e}");
        }
        return format!("{}M", sig(v / 1e6));
    }
    if v.fract() != 0.0 {
        return sig(v);
    }
    let s = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_naturally() {
        assert_eq!(ns(850.0), "850 ns");
        assert_eq!(ns(12_345.0), "12.3 µs");
        assert_eq!(ns(4_560_000.0), "4.56 ms");
        assert_eq!(ns(1.5e9), "1.50 s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(-3.0 * 1024.0 * 1024.0), "-3.00 MiB");
        assert_eq!(pct(0.183), "18.3%");
        assert_eq!(change(-0.03), "-3.0%");
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(count(12_300_000.0), "12.3M");
        assert_eq!(Unit::Ratio.format(12.0), "12.0x");
        assert_eq!(ns(f64::INFINITY), "n/a");
        assert_eq!(bytes(1.8e19), "15987 PiB");
    }
}
