//! The axes of a chart: linear ones from 0 with round ticks (counts,
//! percentages, bytes in their binary unit, time), and logarithmic ones
//! (nanoseconds by decade; the percentile of an HDR distribution). Every
//! axis has a handful of ticks whatever the figures, so a hostile dump
//! cannot make a chart endless.

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scale {
    Linear,
    /// Base 10; the axis's bounds and values must be positive.
    Log,
}

/// One axis: its bounds, scale, labelled ticks and title.
#[derive(Debug, Clone)]
pub(super) struct Axis {
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) scale: Scale,
    pub(super) ticks: Vec<(f64, String)>,
    pub(super) title: String,
}

impl Axis {
    /// Where `v` falls, 0 at `min` to 1 at `max` (clamped).
    pub(super) fn fraction(&self, v: f64) -> f64 {
        let (v, lo, hi) = match self.scale {
            Scale::Linear => (v, self.min, self.max),
            Scale::Log => (
                v.max(f64::MIN_POSITIVE).log10(),
                self.min.max(f64::MIN_POSITIVE).log10(),
                self.max.max(f64::MIN_POSITIVE).log10(),
            ),
        };
        if hi > lo && v.is_finite() {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// `v` with at most two decimals and none that are zero: `1`, `2.5`, `0.25`.
pub(super) fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A step of 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// A linear axis from 0 to a round number at or above `max`, with about
/// five ticks labelled by `label` (applied to the tick's value divided by
/// `unit`, so that bytes can be counted in MiB).
pub(super) fn linear_axis(
    max: f64,
    unit: f64,
    title: impl Into<String>,
    label: impl Fn(f64) -> String,
) -> Axis {
    let scaled = if max.is_finite() && max > 0.0 {
        max / unit
    } else {
        1.0
    };
    // At most ten steps whatever the figures: a maximum near `f64::MAX`
    // must not make the ticks endless, nor a subnormal one a step of 0.
    let mut step = nice_step(scaled / 5.0);
    if !(step > 0.0 && step.is_finite()) {
        step = 1.0;
    }
    let mut steps = (scaled / step - 1e-9).ceil().clamp(1.0, 10.0) as u32;
    if !(f64::from(steps) * step * unit).is_finite() {
        (step, steps) = (scaled, 1);
    }
    let top = f64::from(steps) * step;
    let ticks = (0..=steps)
        .map(|i| f64::from(i) * step)
        .map(|v| (v * unit, label(v)))
        .collect();
    Axis {
        min: 0.0,
        max: top * unit,
        scale: Scale::Linear,
        ticks,
        title: title.into(),
    }
}

/// A linear axis of bytes from 0, counted in the binary unit of `max`.
pub(super) fn bytes_axis(max: f64, title: impl Into<String>) -> Axis {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 1.0;
    let mut i = 0;
    while max / unit >= 1024.0 && i + 1 < UNITS.len() {
        unit *= 1024.0;
        i += 1;
    }
    linear_axis(max, unit, title, |v| format!("{} {}", number(v), UNITS[i]))
}

/// A linear time axis from 0 to `max_ms`, in seconds (milliseconds for a
/// run under two seconds).
pub(super) fn time_axis(max_ms: f64) -> Axis {
    if max_ms < 2_000.0 {
        linear_axis(max_ms, 1.0, "time (ms)", number)
    } else {
        linear_axis(max_ms, 1_000.0, "time (s)", number)
    }
}

/// `m × 10^k` ns as people write it: `1 ns`, `200 µs`, `10 s`.
fn ns_label(m: u64, k: i32) -> String {
    let (unit, base) = match k {
        ..=2 => ("ns", 0),
        3..=5 => ("µs", 3),
        6..=8 => ("ms", 6),
        _ => ("s", 9),
    };
    let v = m.saturating_mul(10u64.saturating_pow((k - base).max(0) as u32));
    format!("{v} {unit}")
}

/// A log axis of nanoseconds over whole decades around `min`..`max`,
/// labelled at each decade, and at 2 and 5 times it when there are only
/// one or two.
pub(super) fn log_ns_axis(min: f64, max: f64, title: impl Into<String>) -> Axis {
    let lo = min.max(1.0).log10().floor() as i32;
    let hi = (max.max(1.0).log10().ceil() as i32).max(lo + 1);
    let multiples: &[u64] = if hi - lo <= 2 { &[1, 2, 5] } else { &[1] };
    let mut ticks = Vec::new();
    for k in lo..=hi {
        for &m in multiples {
            if k < hi || m == 1 {
                ticks.push((m as f64 * 10f64.powi(k), ns_label(m, k)));
            }
        }
    }
    Axis {
        min: 10f64.powi(lo),
        max: 10f64.powi(hi),
        scale: Scale::Log,
        ticks,
        title: title.into(),
    }
}

/// The percentile axis of an HDR percentile distribution: `1 / (1 − p)` on
/// a log scale, from the median's left (`p` = 0) to `10^decades`
/// (99.9% at 3 decades).
pub(super) fn percentile_axis(decades: i32) -> Axis {
    let mut ticks = vec![(1.0, "0%".to_owned()), (2.0, "50%".to_owned())];
    for k in 1..=decades {
        // 1 − 10^-k as a percentage: 90%, 99%, 99.9%, ...
        let label = match k {
            1 => "90%".to_owned(),
            2 => "99%".to_owned(),
            _ => format!("99.{}%", "9".repeat((k - 2) as usize)),
        };
        ticks.push((10f64.powi(k), label));
    }
    Axis {
        min: 1.0,
        max: 10f64.powi(decades),
        scale: Scale::Log,
        ticks,
        title: "percentile".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_maximum() {
        let axis = linear_axis(195.0, 1.0, "x", number);
        assert_eq!(axis.max, 200.0);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "50", "100", "150", "200"]);
        let bytes = bytes_axis(195.0 * 1024.0 * 1024.0, "rss");
        assert_eq!(bytes.ticks.last().map(|t| t.1.as_str()), Some("200 MiB"));
        assert_eq!(linear_axis(0.0, 1.0, "x", number).max, 1.0);
        // Figures no sampler writes still make a few ticks.
        for max in [f64::MAX, f64::INFINITY, f64::NAN, 5e-324, -1.0] {
            let axis = linear_axis(max, 1.0, "x", number);
            assert!((2..=11).contains(&axis.ticks.len()), "{max}: {axis:?}");
        }
        assert!(bytes_axis(f64::MAX, "rss").ticks.len() <= 11);
    }

    #[test]
    fn log_axes_label_decades_and_percentiles() {
        let narrow = log_ns_axis(150_000.0, 900_000.0, "busy");
        let labels: Vec<&str> = narrow.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["100 µs", "200 µs", "500 µs", "1 ms"]);
        let axis = log_ns_axis(50_000.0, 10_000_000.0, "busy");
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["10 µs", "100 µs", "1 ms", "10 ms"]);
        let p = percentile_axis(4);
        let labels: Vec<&str> = p.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]);
        assert!((p.fraction(100.0) - 0.5).abs() < 1e-12);
    }
}
