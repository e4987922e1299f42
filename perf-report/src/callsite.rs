//! The identity of a callsite across dumps, below everything that compares
//! callsites (merge, diff, analysis), and the labels every renderer uses.
//!
//! # Identity
//!
//! A callsite is identified across dumps by what survives an edit: its
//! **scope** (the Rust module path, or the span's target when the dump has
//! none) and its **name**. File and line only break ties: when one dump
//! holds several callsites of one scope and name (two `apply` methods in
//! one module), they are told apart by file, then by their order of line
//! within that file. So adding a line above a function changes nothing,
//! while two spans of one name in two modules never merge.
//!
//! # Labels
//!
//! A span is shown by its bare name where that name is unambiguous in the
//! report, and qualified by the shortest tail of its module path that tells
//! it apart where it is not ([`qualify`]): `client::apply` and
//! `server::apply`. Source files of dependencies are shown relative to
//! their crate ([`short_file`]): `some-crate-0.4.1/src/client.rs:109`, not
//! `$CARGO_HOME/registry/src/index.crates.io-…/some-crate-0.4.1/…`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use perf_layer::dump::CallsiteStats;
use serde::Serialize;

/// Where a callsite lives in the code, as reports show it. In JSON it also
/// has `source`, the [`Location::source`] every other format shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Span target (usually the module path).
    pub target: String,
    /// Rust module path, if known.
    pub module_path: Option<String>,
    /// Span name.
    pub name: String,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// The name as reports show it: the bare name, or qualified by its
    /// module path where the bare name is ambiguous ([`qualify`]).
    pub label: String,
}

impl Location {
    /// The location of a dump's callsite, labelled by its bare name.
    pub fn of(cs: &CallsiteStats) -> Self {
        Self {
            target: cs.target.clone(),
            module_path: cs.module_path.clone(),
            name: cs.name.clone(),
            file: cs.file.clone(),
            line: cs.line,
            label: cs.name.clone(),
        }
    }

    /// The scope of the identity: the module path, or the target.
    pub fn scope(&self) -> &str {
        self.module_path.as_deref().unwrap_or(&self.target)
    }

    /// `file:line`, `file`, or `target` when the file is unknown; files of
    /// dependencies relative to their crate ([`short_file`]).
    pub fn source(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{}:{l}", short_file(f)),
            (Some(f), None) => short_file(f).into_owned(),
            _ => self.target.clone(),
        }
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Location", 7)?;
        s.serialize_field("target", &self.target)?;
        s.serialize_field("module_path", &self.module_path)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("file", &self.file)?;
        s.serialize_field("line", &self.line)?;
        s.serialize_field("label", &self.label)?;
        s.serialize_field("source", &self.source())?;
        s.end()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label, self.source())
    }
}

/// What a finding or a plan step is about: a callsite, or the whole process
/// (`None`). The one place that says how "the process" is written.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a>(pub Option<&'a Location>);

impl Subject<'_> {
    /// The span's label, or `(process)`: for a "span" column.
    pub fn name(&self) -> &str {
        self.0.map_or("(process)", |l| l.label.as_str())
    }

    /// The span's source, or nothing: for a "location" column.
    pub fn source(&self) -> String {
        self.0.map(Location::source).unwrap_or_default()
    }

    /// The span's label in backticks, or `the process`: inside a sentence.
    pub fn in_prose(&self) -> String {
        self.0
            .map_or_else(|| "the process".to_owned(), |l| format!("`{}`", l.label))
    }
}

impl fmt::Display for Subject<'_> {
    /// `label (file:line)`, or `the process`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => l.fmt(f),
            None => f.write_str("the process"),
        }
    }
}

/// A callsite's identity across dumps (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The module path, or the target.
    pub scope: String,
    /// The span name.
    pub name: String,
    /// The file, only when the dump has several callsites of this scope and
    /// name.
    pub file: Option<String>,
    /// The callsite's rank by line among those of its scope, name and file
    /// (0 for the first or only one).
    pub rank: u32,
}

impl Identity {
    /// The identity as one string, stable across runs: `scope::name`, with
    /// `@file` and `#rank` only where they break a tie. The run history
    /// keys spans by it.
    ///
    /// ```
    /// use perf_report::callsite::Identity;
    /// let id = Identity { scope: "kv::client".into(), name: "apply".into(), file: None, rank: 0 };
    /// assert_eq!(id.key(), "kv::client::apply");
    /// ```
    pub fn key(&self) -> String {
        let mut key = format!("{}::{}", self.scope, self.name);
        if let Some(file) = &self.file {
            key.push('@');
            key.push_str(file);
        }
        if self.rank > 0 {
            key.push_str(&format!("#{}", self.rank));
        }
        key
    }
}

/// The identity of each of a dump's callsites, in their order.
///
/// ```
/// use perf_layer::dump::Dump;
/// let ids = perf_report::callsite::identities(&Dump::empty("demo").callsites);
/// assert!(ids.is_empty());
/// ```
pub fn identities(callsites: &[CallsiteStats]) -> Vec<Identity> {
    let scope = |cs: &CallsiteStats| cs.module_path.clone().unwrap_or_else(|| cs.target.clone());
    let mut per_name: HashMap<(String, &str), usize> = HashMap::new();
    for cs in callsites {
        *per_name.entry((scope(cs), cs.name.as_str())).or_default() += 1;
    }
    let mut ids: Vec<Identity> = callsites
        .iter()
        .map(|cs| {
            let s = scope(cs);
            let ambiguous = per_name.get(&(s.clone(), cs.name.as_str())) > Some(&1);
            Identity {
                scope: s,
                name: cs.name.clone(),
                file: if ambiguous { cs.file.clone() } else { None },
                rank: 0,
            }
        })
        .collect();
    // Ranks by line within each (scope, name, file) that still repeats.
    let mut groups: HashMap<Identity, Vec<usize>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        groups.entry(id.clone()).or_default().push(i);
    }
    for members in groups.into_values().filter(|m| m.len() > 1) {
        let mut by_line = members;
        by_line.sort_by_key(|&i| (callsites[i].line, i));
        for (rank, i) in by_line.into_iter().enumerate() {
            ids[i].rank = u32::try_from(rank).unwrap_or(u32::MAX);
        }
    }
    ids
}

/// Sets every location's [`Location::label`]: the bare name where no other
/// location of a different scope shares it, else the name qualified by the
/// shortest tail of the module path that tells the scopes apart.
///
/// ```
/// use perf_report::callsite::{Location, qualify};
/// let at = |module: &str| Location {
///     target: module.to_owned(),
///     module_path: Some(module.to_owned()),
///     name: "apply".to_owned(),
///     file: None,
///     line: None,
///     label: "apply".to_owned(),
/// };
/// let mut locations = vec![at("kv::client"), at("kv::server")];
/// qualify(locations.iter_mut());
/// assert_eq!(locations[0].label, "client::apply");
/// assert_eq!(locations[1].label, "server::apply");
/// ```
pub fn qualify<'a>(locations: impl Iterator<Item = &'a mut Location>) {
    let mut all: Vec<&'a mut Location> = locations.collect();
    // Labels are worked out on a shared view, then written: no name or
    // scope is copied but into a label (a 10,000-callsite dump has 10,000
    // names, almost all unique).
    let labels = {
        let view: Vec<&Location> = all.iter().map(|l| &**l).collect();
        labels_of(&view)
    };
    for (l, label) in all.iter_mut().zip(labels) {
        l.label = label;
    }
}

/// [`qualify`]'s labels, in the order of `locations`.
fn labels_of(locations: &[&Location]) -> Vec<String> {
    let mut labels = vec![String::new(); locations.len()];
    let mut order: Vec<usize> = (0..locations.len()).collect();
    order.sort_unstable_by(|&a, &b| locations[a].name.cmp(&locations[b].name));
    for group in order.chunk_by(|&a, &b| locations[a].name == locations[b].name) {
        let name = &locations[group[0]].name;
        let mut scopes: Vec<&str> = group.iter().map(|&i| locations[i].scope()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.len() < 2 {
            for &i in group {
                labels[i] = name.clone();
            }
            continue;
        }
        // Each scope's shortest tail that no other scope of the group ends
        // with: `store::get` beside `x::cache::get` and `y::cache::get`.
        // Tails of different lengths never coincide, so labels stay distinct.
        // A tail of n parts is the scope from the start of its n-th part
        // from the end, the parts as `split("::")` cuts them.
        let starts: Vec<Vec<usize>> = scopes
            .iter()
            .map(|s| {
                std::iter::once(0)
                    .chain(s.match_indices("::").map(|(at, _)| at + 2))
                    .collect()
            })
            .collect();
        let tail = |k: usize, n: usize| {
            let parts = &starts[k];
            &scopes[k][parts[parts.len().saturating_sub(n).min(parts.len() - 1)]..]
        };
        let shortest: Vec<&str> = (0..scopes.len())
            .map(|k| {
                let depth = starts[k].len();
                let n = (1..=depth)
                    .find(|&n| (0..scopes.len()).all(|j| j == k || tail(j, n) != tail(k, n)))
                    .unwrap_or(depth);
                tail(k, n)
            })
            .collect();
        for &i in group {
            // Every scope of the group is listed: found, always.
            if let Ok(k) = scopes.binary_search(&locations[i].scope()) {
                labels[i] = format!("{}::{name}", shortest[k]);
            }
        }
    }
    labels
}

/// A source file as reports show it: a dependency's file relative to its
/// crate, a git dependency's relative to its repository, the standard
/// library's relative to the toolchain; anything else unchanged.
///
/// ```
/// use perf_report::callsite::short_file;
/// assert_eq!(
///     short_file("/home/me/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-redis-0.4.1/src/client.rs"),
///     "mini-redis-0.4.1/src/client.rs"
/// );
/// assert_eq!(short_file("src/main.rs"), "src/main.rs");
/// ```
pub fn short_file(file: &str) -> Cow<'_, str> {
    let unix = file.replace('\\', "/");
    // …/registry/src/<index>/<crate>-<version>/…
    if let Some(at) = unix.find("/registry/src/") {
        let rest = &unix[at + "/registry/src/".len()..];
        if let Some((_index, in_crate)) = rest.split_once('/') {
            return Cow::Owned(in_crate.to_owned());
        }
    }
    // …/git/checkouts/<repo>-<hash>/<rev>/…
    if let Some(at) = unix.find("/git/checkouts/") {
        let rest = &unix[at + "/git/checkouts/".len()..];
        if let Some((checkout, after)) = rest.split_once('/') {
            let repo = checkout.rsplit_once('-').map_or(checkout, |(repo, _)| repo);
            if let Some((_rev, in_repo)) = after.split_once('/') {
                return Cow::Owned(format!("{repo}/{in_repo}"));
            }
        }
    }
    // /rustc/<hash>/library/…
    if let Some(rest) = unix.strip_prefix("/rustc/") {
        if let Some((_hash, in_toolchain)) = rest.split_once('/') {
            return Cow::Owned(format!("rust/{in_toolchain}"));
        }
    }
    Cow::Borrowed(file)
}

/// The crate a source file belongs to where it is a dependency's (under
/// Cargo's registry or git checkouts): its name without the version, or
/// the repository's name; `None` for the project's own files and the
/// standard library's.
///
/// ```
/// use perf_report::callsite::dependency;
/// assert_eq!(
///     dependency("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-http-0.7.1/src/trace/make_span.rs").as_deref(),
///     Some("tower-http")
/// );
/// assert_eq!(
///     dependency("/root/.cargo/git/checkouts/axum-0123abcd/5a1b2c3/axum/src/routing/mod.rs").as_deref(),
///     Some("axum")
/// );
/// assert_eq!(dependency("src/main.rs"), None);
/// ```
pub fn dependency(file: &str) -> Option<String> {
    let unix = file.replace('\\', "/");
    let short = short_file(&unix);
    if short == unix.as_str() {
        return None;
    }
    let first = short.split('/').next()?;
    let name = crate_of_folder(first).unwrap_or(first);
    (!name.is_empty() && !short.starts_with("rust/")).then(|| name.to_owned())
}

/// `name-1.2.3`, a dependency's folder: its crate's name before the
/// version.
fn crate_of_folder(folder: &str) -> Option<&str> {
    folder
        .rsplit_once('-')
        .filter(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()) && v.contains('.'))
        .map(|(name, _)| name)
}

/// A location (`file:line`, as [`Location::source`] gives it) shorter for a
/// narrow terminal: at `level` 1 a path of three parts or more keeps its
/// first part (a dependency's crate name, without its version) and its file
/// (`tower-http…/make_span.rs:109`); at 2, a dependency is its crate name
/// alone (`tower-http`) and a file of the project its file name
/// (`pipeline.rs:107`). Anything else is as it was.
///
/// ```
/// use perf_report::callsite::shorter_source;
/// let dep = "tower-http-0.7.1/src/trace/make_span.rs:109";
/// assert_eq!(shorter_source(dep, 1), "tower-http…/make_span.rs:109");
/// assert_eq!(shorter_source(dep, 2), "tower-http");
/// assert_eq!(shorter_source("examples/pipeline.rs:107", 1), "examples/pipeline.rs:107");
/// assert_eq!(shorter_source("examples/pipeline.rs:107", 2), "pipeline.rs:107");
/// ```
pub fn shorter_source(source: &str, level: u8) -> String {
    if level == 0 || !source.contains('/') {
        return source.to_owned();
    }
    let (path, line) = match source.rsplit_once(':') {
        Some((p, l)) if l.bytes().all(|b| b.is_ascii_digit()) => (p, format!(":{l}")),
        _ => (source, String::new()),
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (Some(first), Some(file)) = (parts.first(), parts.last()) else {
        return source.to_owned();
    };
    let krate = crate_of_folder(first);
    match (level, krate) {
        (1, _) if parts.len() >= 3 => format!("{}…/{file}{line}", krate.unwrap_or(first)),
        (1, _) => source.to_owned(),
        (_, Some(name)) => name.to_owned(),
        _ => format!("{file}{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_toolchain_files_are_shortened() {
        assert_eq!(
            short_file("/root/.cargo/git/checkouts/tokio-abcdef12/1a2b3c4/tokio/src/lib.rs"),
            "tokio/tokio/src/lib.rs"
        );
        assert_eq!(
            short_file("/rustc/59807616e/library/std/src/thread/mod.rs"),
            "rust/library/std/src/thread/mod.rs"
        );
        assert_eq!(short_file("/abs/elsewhere/x.rs"), "/abs/elsewhere/x.rs");
    }

    /// `qualify` as it first was: tails built as strings by splitting and
    /// joining. The faster one must give the same labels.
    fn reference_labels(locations: &[Location]) -> Vec<String> {
        let mut labels = vec![String::new(); locations.len()];
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, l) in locations.iter().enumerate() {
            by_name.entry(&l.name).or_default().push(i);
        }
        for (name, group) in by_name {
            let mut scopes: Vec<String> = group
                .iter()
                .map(|&i| locations[i].scope().to_owned())
                .collect();
            scopes.sort_unstable();
            scopes.dedup();
            if scopes.len() < 2 {
                for i in group {
                    labels[i] = name.to_owned();
                }
                continue;
            }
            let tail = |scope: &str, n: usize| {
                let parts: Vec<&str> = scope.split("::").collect();
                parts[parts.len().saturating_sub(n)..].join("::")
            };
            let shortest: HashMap<String, String> = scopes
                .iter()
                .map(|s| {
                    let depth = s.split("::").count();
                    let n = (1..=depth)
                        .find(|&n| {
                            scopes
                                .iter()
                                .all(|other| other == s || tail(other, n) != tail(s, n))
                        })
                        .unwrap_or(depth);
                    (s.clone(), tail(s, n))
                })
                .collect();
            for i in group {
                labels[i] = format!("{}::{name}", shortest[locations[i].scope()]);
            }
        }
        labels
    }

    proptest::proptest! {
        #[test]
        fn labels_are_those_of_splitting_and_joining(
            spans in proptest::collection::vec(
                ("[ab]{0,2}", proptest::collection::vec("[xy:]{0,3}", 1..4)),
                1..12,
            )
        ) {
            let locations: Vec<Location> = spans
                .iter()
                .map(|(name, parts)| {
                    let module = parts.join("::");
                    Location {
                        target: module.clone(),
                        module_path: Some(module),
                        name: name.clone(),
                        file: None,
                        line: None,
                        label: String::new(),
                    }
                })
                .collect();
            let mut qualified = locations.clone();
            qualify(qualified.iter_mut());
            let labels: Vec<String> = qualified.into_iter().map(|l| l.label).collect();
            proptest::prop_assert_eq!(labels, reference_labels(&locations));
        }
    }

    #[test]
    fn deep_scopes_are_qualified_as_far_as_needed() {
        let at = |module: &str| Location {
            target: module.to_owned(),
            module_path: Some(module.to_owned()),
            name: "get".to_owned(),
            file: None,
            line: None,
            label: String::new(),
        };
        let mut l = [at("a::x::cache"), at("b::y::cache"), at("a::store")];
        qualify(l.iter_mut());
        let labels: Vec<&str> = l.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["x::cache::get", "y::cache::get", "store::get"]);
    }
}
