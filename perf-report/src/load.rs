//! Reading dumps: from files, standard input or bytes, with a size limit,
//! version check and histogram validation, so that everything after this
//! stage can trust what it gets. What it returns, a [`LoadedDump`], carries
//! what the analysis needs of the histograms it checked.
//!
//! Every error's message has the form `<input>: <what is wrong>; <what to do>`
//! on one line.
//!
//! One file although over 400 lines: each error's wording beside the check
//! that raises it, most of the file being those messages and their docs.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use perf_layer::dump::{Dump, DumpReadError, FORMAT_VERSION};
use serde_json::error::Category;

use crate::LoadedDump;
use crate::merge::{self, MergeError};
use crate::sanitize::one_line;

/// The name [`load_paths`] gives standard input in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// How dumps are read.
///
/// # Default values
///
/// | field | default |
/// |---|---|
/// | `max_bytes` | 256 MiB |
///
/// ```
/// let opts = perf_report::load::LoadOptions::default().with_max_bytes(1 << 20);
/// assert_eq!(opts.max_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The largest input accepted, in bytes. Larger files are refused before
    /// they are read; standard input is read up to this size plus one byte.
    pub max_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl LoadOptions {
    /// Sets [`LoadOptions::max_bytes`].
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// Why a dump could not be loaded. Each message names the input, says what
/// is wrong and what to do, on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No input was given.
    #[error("no dump given; pass one or more dump files, or - to read standard input")]
    NoInput,
    /// The file does not exist.
    #[error("{input}: no such file; check the path, or pass - to read standard input")]
    NotFound {
        /// The input's name.
        input: String,
    },
    /// The input could not be read.
    #[error("{input}: cannot read it ({error}); check that it is a readable file")]
    Io {
        /// The input's name.
        input: String,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
    /// The input is larger than [`LoadOptions::max_bytes`].
    #[error(
        "{input}: {size} is larger than the {max_bytes}-byte limit; raise the limit (--max-size) if this really is a dump"
    )]
    TooLarge {
        /// The input's name.
        input: String,
        /// What is known of its size, e.g. `5000000000 bytes`.
        size: String,
        /// The limit.
        max_bytes: u64,
    },
    /// The input is empty.
    #[error("{input}: the file is empty; pass a dump written by perf-layer")]
    Empty {
        /// The input's name.
        input: String,
    },
    /// The JSON ends early.
    #[error(
        "{input}: the dump is truncated ({detail}); the writer stopped early, take the dump again"
    )]
    Truncated {
        /// The input's name.
        input: String,
        /// Where it ends.
        detail: String,
    },
    /// The input is not JSON.
    #[error("{input}: not JSON ({detail}); pass a dump written by perf-layer")]
    NotJson {
        /// The input's name.
        input: String,
        /// The parser's message.
        detail: String,
    },
    /// The input is JSON, but not an object, so not a dump.
    #[error(
        "{input}: this is JSON, but {what}, not a perf-layer dump (a dump is an object with a `format_version`); pass a dump written by perf-layer"
    )]
    NotADump {
        /// The input's name.
        input: String,
        /// What the JSON is, e.g. `an array`.
        what: &'static str,
    },
    /// The JSON nests deeper than the parser's recursion limit.
    #[error("{input}: JSON nested too deeply ({detail}); this is not a perf-layer dump")]
    TooDeep {
        /// The input's name.
        input: String,
        /// The parser's message.
        detail: String,
    },
    /// The JSON does not match the dump schema.
    #[error(
        "{input}: not a valid perf-layer dump ({detail}); pass an unedited dump written by perf-layer"
    )]
    Schema {
        /// The input's name.
        input: String,
        /// The parser's message.
        detail: String,
    },
    /// No `format_version` field.
    #[error(
        "{input}: no `format_version` field, so this is not a perf-layer dump; pass a dump written by perf-layer"
    )]
    MissingVersion {
        /// The input's name.
        input: String,
    },
    /// Written by a newer perf-layer.
    #[error(
        "{input}: dump format version {found} is newer than this perf-report reads (up to {supported}); upgrade perf-report"
    )]
    TooNew {
        /// The input's name.
        input: String,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A version no perf-layer wrote.
    #[error(
        "{input}: dump format version {found} does not exist (this perf-report reads 1 to {supported}); pass a dump written by perf-layer"
    )]
    Unsupported {
        /// The input's name.
        input: String,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A stored histogram is broken.
    #[error(
        "{input}: callsite `{callsite}` has a broken histogram ({detail}); the dump is damaged, take it again"
    )]
    Histogram {
        /// The input's name.
        input: String,
        /// The callsite's name.
        callsite: String,
        /// What is wrong with it.
        detail: String,
    },
    /// One file was given twice, or two files hold dumps of one run: merging
    /// would count the same spans twice.
    #[error(
        "{first} and {second} {what}; merging would count its spans twice, so pass each run once (the latest dump of a run holds everything before it)"
    )]
    SameRun {
        /// The earlier input.
        first: String,
        /// The later input.
        second: String,
        /// `are the same file`, or which run they share.
        what: String,
    },
    /// The dumps could not be merged.
    #[error("{inputs}: {error}")]
    Merge {
        /// The inputs' names, comma-separated.
        inputs: String,
        /// Why.
        #[source]
        error: MergeError,
    },
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        STDIN_NAME.to_owned()
    } else {
        one_line(&path.display().to_string()).into_owned()
    }
}

/// Loads one or more dumps and merges them (see [`merge::merge`]); `-`
/// reads standard input.
///
/// # Errors
/// The first input that cannot be loaded, or a merge failure.
pub fn load_paths(paths: &[PathBuf], opts: &LoadOptions) -> Result<LoadedDump, LoadError> {
    if paths.is_empty() {
        return Err(LoadError::NoInput);
    }
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for path in paths.iter().filter(|p| p.as_os_str() != "-") {
        let Ok(canonical) = path.canonicalize() else {
            continue; // the load below names the problem
        };
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canonical) {
            return Err(LoadError::SameRun {
                first: display_name(first),
                second: display_name(path),
                what: "are the same file".to_owned(),
            });
        }
        seen.push((canonical, path));
    }
    let mut dumps = Vec::with_capacity(paths.len());
    for path in paths {
        dumps.push(load_path(path, opts)?);
    }
    // Two dumps of one process (periodic dumps, say): the later one holds
    // the earlier one's spans. A pid of 0 says nothing (a dump made in
    // memory, not by a process).
    for (i, d) in dumps.iter().enumerate() {
        let run = |d: &LoadedDump| (d.run.pid, d.run.host.clone(), d.run.started_at_unix_ms);
        if d.run.pid == 0 {
            continue;
        }
        if let Some(j) = dumps[..i].iter().position(|e| run(e) == run(d)) {
            return Err(LoadError::SameRun {
                first: display_name(&paths[j]),
                second: display_name(&paths[i]),
                what: format!(
                    "are dumps of one run (pid {} on {}, started at {} ms since the epoch)",
                    d.run.pid,
                    one_line(&d.run.host),
                    d.run.started_at_unix_ms
                ),
            });
        }
    }
    if dumps.len() == 1 {
        return Ok(dumps.remove(0));
    }
    let dumps = dumps.into_iter().map(LoadedDump::into_dump).collect();
    merge::merge(dumps)
        .map(LoadedDump::from)
        .map_err(|error| LoadError::Merge {
            inputs: paths
                .iter()
                .map(|p| display_name(p))
                .collect::<Vec<_>>()
                .join(", "),
            error,
        })
}

/// Loads one dump from a file, or from standard input for `-`.
///
/// A file larger than [`LoadOptions::max_bytes`] is refused from its
/// metadata, before it is read.
///
/// # Errors
/// See [`LoadError`].
pub fn load_path(path: &Path, opts: &LoadOptions) -> Result<LoadedDump, LoadError> {
    let input = display_name(path);
    if path.as_os_str() == "-" {
        return load_reader(io::stdin().lock(), &input, opts);
    }
    let file = File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => LoadError::NotFound {
            input: input.clone(),
        },
        _ => LoadError::Io {
            input: input.clone(),
            error,
        },
    })?;
    let meta = file.metadata().map_err(|error| LoadError::Io {
        input: input.clone(),
        error,
    })?;
    if meta.is_dir() {
        return Err(LoadError::Io {
            input,
            error: io::Error::other("it is a directory"),
        });
    }
    if meta.len() > opts.max_bytes {
        return Err(LoadError::TooLarge {
            input,
            size: format!("{} bytes", meta.len()),
            max_bytes: opts.max_bytes,
        });
    }
    load_reader(file, &input, opts)
}

/// Loads one dump from a reader, reading at most `max_bytes + 1` bytes.
///
/// # Errors
/// See [`LoadError`].
pub fn load_reader<R: Read>(
    reader: R,
    input: &str,
    opts: &LoadOptions,
) -> Result<LoadedDump, LoadError> {
    let mut bytes = Vec::new();
    reader
        .take(opts.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| LoadError::Io {
            input: input.to_owned(),
            error,
        })?;
    load_slice(&bytes, input, opts)
}

/// Parses and validates one dump held in memory; `source` names it in errors.
///
/// Checks, in order: size, emptiness, JSON well-formedness (serde_json's
/// recursion limit refuses deep nesting), the format version (a newer dump
/// is refused for that reason), the schema, and every histogram's encoding.
///
/// # Errors
/// See [`LoadError`].
///
/// ```
/// use perf_report::load::{load_slice, LoadError, LoadOptions};
/// let err = load_slice(b"", "dump.json", &LoadOptions::default()).unwrap_err();
/// assert!(matches!(err, LoadError::Empty { .. }));
/// assert!(err.to_string().starts_with("dump.json: "));
/// ```
pub fn load_slice(bytes: &[u8], source: &str, opts: &LoadOptions) -> Result<LoadedDump, LoadError> {
    let input = one_line(source).into_owned();
    if bytes.len() as u64 > opts.max_bytes {
        return Err(LoadError::TooLarge {
            input,
            size: format!("more than {} bytes", opts.max_bytes),
            max_bytes: opts.max_bytes,
        });
    }
    let Some(&first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(LoadError::Empty { input });
    };
    // A dump is an object. Anything else is refused as what it is: JSON of
    // another shape, or not JSON at all.
    if first != b'{' {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => LoadError::NotADump {
                    input,
                    what: match first {
                        b'[' => "an array",
                        b'"' => "a string",
                        b't' | b'f' => "a boolean",
                        b'n' => "null",
                        _ => "a number",
                    },
                },
                Err(e) => read_error(DumpReadError::Json(e), &input),
            },
        );
    }
    // The schema first: a valid dump of a version this build reads needs no
    // second pass. Anything else goes through `Dump::from_slice`, whose
    // version probe picks the error (a newer dump is refused for that).
    let dump = match serde_json::from_slice::<Dump>(bytes) {
        Ok(dump) if (1..=FORMAT_VERSION).contains(&dump.format_version) => dump,
        _ => Dump::from_slice(bytes).map_err(|e| read_error(e, &input))?,
    };
    LoadedDump::validated(dump).map_err(|e| read_error(e, &input))
}

fn read_error(e: DumpReadError, input: &str) -> LoadError {
    let input = input.to_owned();
    match e {
        DumpReadError::Json(e) => {
            let detail = one_line(&e.to_string()).into_owned();
            match e.classify() {
                Category::Eof => LoadError::Truncated { input, detail },
                Category::Syntax if detail.contains("recursion limit") => {
                    LoadError::TooDeep { input, detail }
                }
                // Numbers too large for any type are a schema problem, not
                // a syntax one: the text is JSON.
                Category::Syntax if detail.contains("number out of range") => {
                    LoadError::Schema { input, detail }
                }
                Category::Syntax => LoadError::NotJson { input, detail },
                Category::Data => LoadError::Schema { input, detail },
                Category::Io => LoadError::Io {
                    input,
                    error: io::Error::other(detail),
                },
            }
        }
        DumpReadError::MissingVersion => LoadError::MissingVersion { input },
        DumpReadError::TooNew { found } => LoadError::TooNew {
            input,
            found,
            supported: FORMAT_VERSION,
        },
        DumpReadError::Unsupported { found } => LoadError::Unsupported {
            input,
            found,
            supported: FORMAT_VERSION,
        },
        DumpReadError::Histogram { callsite, source } => LoadError::Histogram {
            input,
            callsite: one_line(&callsite).into_owned(),
            detail: one_line(&source.to_string()).into_owned(),
        },
        other => LoadError::Schema {
            input,
            detail: one_line(&other.to_string()).into_owned(),
        },
    }
}
