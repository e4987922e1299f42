//! Loading hostile and broken input: always a `LoadError` naming the input,
//! never a panic.

mod support;

use perf_layer::dump::FORMAT_VERSION;
use perf_report::load::{LoadError, LoadOptions, load_paths, load_slice};
use proptest::prelude::*;

fn load(bytes: &[u8]) -> Result<perf_report::LoadedDump, LoadError> {
    load_slice(bytes, "in.json", &LoadOptions::default())
}

fn valid() -> Vec<u8> {
    serde_json::to_vec(&support::ground_truth()).unwrap()
}

fn edit(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&valid()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn message(e: &LoadError) -> String {
    let m = e.to_string();
    assert!(!m.contains('\n'), "one line: {m}");
    assert!(m.starts_with("in.json: "), "names the input: {m}");
    assert!(m.contains("; "), "says what to do: {m}");
    m
}

#[test]
fn a_valid_dump_loads() {
    let d = load(&valid()).unwrap();
    assert_eq!(d.callsites.len(), 6);
}

#[test]
fn empty_and_blank_input_is_empty() {
    for input in [&b""[..], b"  \n\t"] {
        let e = load(input).unwrap_err();
        assert!(matches!(e, LoadError::Empty { .. }));
        assert!(message(&e).contains("empty"));
    }
}

#[test]
fn truncated_input_says_truncated() {
    let v = valid();
    let e = load(&v[..v.len() / 2]).unwrap_err();
    assert!(matches!(e, LoadError::Truncated { .. }), "{e}");
    assert!(message(&e).contains("take the dump again"));
}

#[test]
fn non_json_says_not_json() {
    let e = load(b"hello, world").unwrap_err();
    assert!(matches!(e, LoadError::NotJson { .. }), "{e}");
    message(&e);
}

#[test]
fn versions_are_checked_first() {
    let e = load(&edit(|v| v["format_version"] = (FORMAT_VERSION + 1).into())).unwrap_err();
    assert!(matches!(e, LoadError::TooNew { .. }), "{e}");
    assert!(message(&e).contains("upgrade perf-report"));
    let e = load(&edit(|v| v["format_version"] = 0.into())).unwrap_err();
    assert!(matches!(e, LoadError::Unsupported { .. }), "{e}");
    let e = load(br#"{"hello": 1}"#).unwrap_err();
    assert!(matches!(e, LoadError::MissingVersion { .. }), "{e}");
    message(&e);
}

#[test]
fn schema_mismatches_and_huge_numbers_are_schema_errors() {
    let e = load(&edit(|v| v["callsites"][0]["calls"] = "many".into())).unwrap_err();
    assert!(matches!(e, LoadError::Schema { .. }), "{e}");
    message(&e);
    let text = String::from_utf8(valid()).unwrap();
    for huge in ["1e400", "18446744073709551616", "-1"] {
        let bad = text.replacen("\"calls\":1000", &format!("\"calls\":{huge}"), 1);
        assert_ne!(bad, text);
        let e = load(bad.as_bytes()).unwrap_err();
        assert!(matches!(e, LoadError::Schema { .. }), "{huge}: {e}");
        message(&e);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // In an unknown field serde_json skips it without recursing; in a known
    // one the schema stops it at once; either way one clear line.
    for deep in [
        format!(
            "{{\"format_version\": 1, \"x\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!(
            "{{\"format_version\": 1, \"callsites\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        "[".repeat(1_000_000),
    ] {
        let e = load(deep.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::TooDeep { .. } | LoadError::Schema { .. } | LoadError::Truncated { .. }
            ),
            "{e}"
        );
        message(&e);
    }
}

#[test]
fn broken_histograms_name_the_callsite() {
    let e = load(&edit(|v| {
        v["callsites"][1]["busy_ns"]["encoded"] = "!!not base64!!".into()
    }))
    .unwrap_err();
    assert!(
        matches!(&e, LoadError::Histogram { callsite, .. } if callsite == "parse"),
        "{e}"
    );
    assert!(message(&e).contains("callsite `parse`"));
    // Valid base64, not a histogram.
    let e = load(&edit(|v| {
        v["callsites"][2]["self_ns"]["encoded"] = "AAAAAAAAAAAAAAAA".into()
    }))
    .unwrap_err();
    assert!(matches!(e, LoadError::Histogram { .. }), "{e}");
    // A well-formed header that asks for 9 significant digits (an absurd
    // counts array) is refused before decoding.
    let absurd = "HISTFAAAAB54nJNpmSzMgACcUJqRgYHZzWDHAgb7DxABAE7PBFE=";
    let e = load(&edit(|v| {
        v["callsites"][3]["idle_ns"]["encoded"] = absurd.into()
    }))
    .unwrap_err();
    assert!(
        matches!(&e, LoadError::Histogram { callsite, .. } if callsite == "cache_insert"),
        "{e}"
    );
    assert!(message(&e).contains("significant digits"), "{e}");
}

#[test]
fn the_size_limit_is_enforced_before_parsing() {
    let v = valid();
    let opts = LoadOptions::default().with_max_bytes(100);
    let e = load_slice(&v, "in.json", &opts).unwrap_err();
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e}");
    assert!(message(&e).contains("--max-size"));

    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "big.json", &support::ground_truth());
    let e = load_paths(&[path], &opts).unwrap_err();
    assert!(
        matches!(&e, LoadError::TooLarge { size, .. } if size.ends_with(" bytes")),
        "{e}"
    );
}

#[test]
fn missing_files_and_directories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_paths(&[dir.path().join("nope.json")], &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope.json: no such file"));
    let e = load_paths(&[dir.path().to_owned()], &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e}");
    assert!(matches!(
        load_paths(&[], &LoadOptions::default()),
        Err(LoadError::NoInput)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&bytes);
    }

    /// Flipping bytes of a valid dump: whatever still loads must analyse and
    /// render without panicking.
    #[test]
    fn mutated_dumps_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(d) = load(&bytes) {
            let r = perf_report::Report::build(&d, &Default::default());
            for format in [perf_report::render::Format::Text, perf_report::render::Format::Json, perf_report::render::Format::Markdown] {
                let _ = perf_report::render::render(&r, format, perf_report::render::ReportKind::Full, &Default::default());
            }
        }
    }
}

/// perf-layer 0.1.0 wrote every histogram as V2 + DEFLATE; later versions
/// write plain V2. A dump of either kind gives the same report.
#[test]
fn a_dump_with_deflated_histograms_from_0_1_0_gives_the_same_report() {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    use perf_report::render::{Format, RenderOptions, ReportKind, render};
    use perf_report::{Config, Report};

    let plain = support::ground_truth();
    let mut deflated = plain.clone();
    for cs in &mut deflated.callsites {
        for h in [
            &mut cs.wall_ns,
            &mut cs.busy_ns,
            &mut cs.idle_ns,
            &mut cs.self_ns,
        ] {
            assert!(
                h.encoded.starts_with("HISTE"),
                "written plain: {}",
                h.encoded
            );
            let mut bytes = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&h.decode().unwrap(), &mut bytes)
                .unwrap();
            h.encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert!(h.encoded.starts_with("HISTF"), "deflated: {}", h.encoded);
        }
    }
    let text = |dump: &perf_layer::dump::Dump| {
        let bytes = serde_json::to_vec(dump).unwrap();
        let loaded = load(&bytes).unwrap();
        let report = Report::build(&loaded, &Config::default());
        render(
            &report,
            Format::Json,
            ReportKind::Full,
            &RenderOptions::default(),
        )
    };
    let (from_plain, from_deflated) = (text(&plain), text(&deflated));
    assert!(from_plain.contains("\"hot_spot\""), "{from_plain}");
    assert_eq!(from_plain, from_deflated);
}
