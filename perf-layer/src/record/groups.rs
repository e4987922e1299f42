//! Spans of one callsite split by the values of named fields
//! ([`group_by`](crate::PerfLayerBuilder::group_by)): tower-http's one
//! `request` callsite becomes a row per route.
//!
//! Only the named fields are ever read. A span whose callsite has none of
//! them pays one look-up of its callsite's answer, cached by tag. For the
//! others, each named field's value is formatted into a buffer on the
//! stack (at most [`MAX_VALUE`] bytes; paths normalised on request),
//! hashed, and the hash kept in the span's state; the text is stored once
//! per distinct value ([`Labels`], bounded), the first time it is seen.
//! At close, the span's hashes name its group. Each callsite has at most
//! `max_groups` groups; spans past that go to one `other` group, whose
//! calls are the overflow.

use std::fmt::Write as _;
use std::hash::Hasher as _;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use dashmap::DashMap;
use rustc_hash::FxHasher;
use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};

use super::alloc::PauseCounting;
use super::callsite::CallsiteKey;
use super::heap;

/// The most fields a layer groups by.
pub(crate) const MAX_FIELDS: usize = 4;
/// The most bytes of a value read: longer ones are cut (and their groups
/// are the first `MAX_VALUE` bytes').
pub(crate) const MAX_VALUE: usize = 256;
/// The most distinct field values whose text is kept, over all callsites.
const MAX_LABELS: usize = 16_384;
/// A span's group: the hash of each named field's value, 0 where the span
/// has none.
pub(crate) type GroupKey = [u64; MAX_FIELDS];
/// The group of spans past a callsite's cap.
pub(crate) const OTHER: GroupKey = [u64::MAX; MAX_FIELDS];

/// A group key folded into one word, for the group edges a span keeps of
/// its parent: 0 when the span has no group.
#[inline]
pub(crate) fn fold(key: &GroupKey) -> u64 {
    if *key == [0; MAX_FIELDS] {
        return 0;
    }
    let mut h = FxHasher::default();
    for part in key {
        h.write_u64(*part);
    }
    h.finish().max(1)
}

/// The grouping configuration and what it learned.
#[derive(Debug)]
pub(crate) struct Groups {
    fields: Vec<String>,
    normalize_paths: bool,
    max_groups: usize,
    /// Per callsite tag: 0 not looked at yet, 1 none of the fields, 2 some.
    has_fields: Box<[AtomicU8]>,
    labels: Labels,
    /// Groups admitted under the cap, and how many per callsite.
    admitted: DashMap<(CallsiteKey, GroupKey), ()>,
    per_callsite: DashMap<CallsiteKey, usize>,
    /// Spans that went to `other` groups.
    pub(crate) overflowed: AtomicUsize,
}

/// The text of field values, by field and hash of the value.
#[derive(Debug, Default)]
struct Labels {
    text: DashMap<(u8, u64), Box<str>>,
    count: AtomicUsize,
}

impl Groups {
    /// `None` when no field is named.
    pub(crate) fn new(fields: &[String], normalize_paths: bool, max_groups: usize) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        let fields = fields.iter().take(MAX_FIELDS).cloned().collect();
        Some(Self {
            fields,
            normalize_paths,
            max_groups: max_groups.max(1),
            has_fields: (0..heap::MAX_TAGS).map(|_| AtomicU8::new(0)).collect(),
            labels: Labels::default(),
            admitted: DashMap::new(),
            per_callsite: DashMap::new(),
            overflowed: AtomicUsize::new(0),
        })
    }

    /// The fields grouped by.
    pub(crate) fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether spans of `meta` (of callsite `tag`) have any of the fields.
    #[inline]
    pub(crate) fn applies(&self, tag: u32, meta: &'static Metadata<'static>) -> bool {
        let Some(cached) = self.has_fields.get(tag as usize) else {
            return self.look(meta);
        };
        match cached.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let has = self.look(meta);
                cached.store(if has { 2 } else { 1 }, Ordering::Relaxed);
                has
            }
        }
    }

    fn look(&self, meta: &'static Metadata<'static>) -> bool {
        meta.fields()
            .iter()
            .any(|f| self.fields.iter().any(|name| name == f.name()))
    }

    /// Reads the named fields of what `record` visits (a new span's
    /// attributes, or a `record` call's values) into `key`: a field present
    /// there replaces its slot.
    pub(crate) fn read(&self, record: impl FnOnce(&mut dyn Visit), key: &mut GroupKey) {
        let mut visitor = Reader { groups: self, key };
        record(&mut visitor);
    }

    /// The group a closed span of callsite `callsite` is recorded in: its
    /// own while the callsite has fewer than `max_groups`, else
    /// [`OTHER`]. Only a group's first span on a thread asks.
    #[cold]
    #[inline(never)]
    pub(crate) fn admit(&self, callsite: CallsiteKey, key: GroupKey) -> GroupKey {
        let _pause = PauseCounting::new();
        if self.admitted.contains_key(&(callsite, key)) {
            return key;
        }
        let mut count = self.per_callsite.entry(callsite).or_insert(0);
        if *count >= self.max_groups {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return OTHER;
        }
        if self.admitted.insert((callsite, key), ()).is_none() {
            *count += 1;
        }
        key
    }

    /// The text of each field of `key`: `(field, value)` pairs, fields the
    /// span had no value for left out; `None` for [`OTHER`].
    pub(crate) fn describe(&self, key: &GroupKey) -> Option<Vec<(String, String)>> {
        if *key == OTHER {
            return None;
        }
        Some(
            self.fields
                .iter()
                .enumerate()
                .filter(|(i, _)| key[*i] != 0)
                .map(|(i, name)| {
                    let value = self
                        .labels
                        .text
                        .get(&(i as u8, key[i]))
                        .map_or_else(|| "?".to_owned(), |t| t.to_string());
                    (name.clone(), value)
                })
                .collect(),
        )
    }

    /// Keeps the text of a value seen for the first time, while there is
    /// room.
    #[cold]
    #[inline(never)]
    fn remember(&self, field: u8, hash: u64, value: &str) {
        let _pause = PauseCounting::new();
        if self.labels.count.load(Ordering::Relaxed) >= MAX_LABELS {
            return;
        }
        self.labels.text.entry((field, hash)).or_insert_with(|| {
            self.labels.count.fetch_add(1, Ordering::Relaxed);
            printable(value)
        });
    }
}

/// Control characters shown as `?`: a value is text in every report, never
/// markup or a terminal escape (the renderers escape the rest).
fn printable(value: &str) -> Box<str> {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .into_boxed_str()
}

struct Reader<'a> {
    groups: &'a Groups,
    key: &'a mut GroupKey,
}

impl Reader<'_> {
    fn slot(&self, field: &Field) -> Option<usize> {
        self.groups.fields.iter().position(|f| f == field.name())
    }

    fn take(&mut self, field: &Field, write: impl FnOnce(&mut ValueBuf)) {
        let Some(slot) = self.slot(field) else {
            return;
        };
        let mut raw = ValueBuf::default();
        write(&mut raw);
        let value = if self.groups.normalize_paths {
            normalize_path(raw.as_str())
        } else {
            raw
        };
        let mut hasher = FxHasher::default();
        hasher.write(value.as_str().as_bytes());
        // 0 means "no value": a value that hashes to it is moved off it.
        let hash = hasher.finish().clamp(1, u64::MAX - 1);
        self.key[slot] = hash;
        if !self.groups.labels.text.contains_key(&(slot as u8, hash)) {
            self.groups.remember(slot as u8, hash, value.as_str());
        }
    }
}

impl Visit for Reader<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.take(field, |buf| buf.push_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.take(field, |buf| {
            let _ = write!(buf, "{value:?}");
        });
    }
}

/// A value's first [`MAX_VALUE`] bytes, on the stack.
struct ValueBuf {
    bytes: [u8; MAX_VALUE],
    len: usize,
}

impl Default for ValueBuf {
    fn default() -> Self {
        Self {
            bytes: [0; MAX_VALUE],
            len: 0,
        }
    }
}

impl ValueBuf {
    fn push_str(&mut self, s: &str) {
        let room = MAX_VALUE - self.len;
        // Cut at a character boundary.
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
    }

    fn as_str(&self) -> &str {
        // Only whole characters were pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for ValueBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// A path with its variable segments as `{}`: all digits, a UUID, or 16 or
/// more hex digits (`/users/42/orders/9f86d081884c7d65` is
/// `/users/{}/orders/{}`). The query string is dropped.
fn normalize_path(path: &str) -> ValueBuf {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = ValueBuf::default();
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push_str("/");
        }
        if is_variable(segment) {
            out.push_str("{}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

fn is_variable(segment: &str) -> bool {
    let hex = |c: char| c.is_ascii_hexdigit();
    let digits = !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit());
    let uuid = segment.len() == 36
        && segment.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                hex(c)
            }
        });
    let long_hex = segment.len() >= 16 && segment.chars().all(hex);
    digits || uuid || long_hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_their_ids_and_query() {
        let cases = [
            ("/users/42/orders/9f86d081884c7d65", "/users/{}/orders/{}"),
            (
                "/items/123e4567-e89b-12d3-a456-426614174000?x=1",
                "/items/{}",
            ),
            ("/export", "/export"),
            ("/v2/cafe", "/v2/cafe"),
            ("", ""),
        ];
        for (path, normal) in cases {
            assert_eq!(normalize_path(path).as_str(), normal, "{path}");
        }
    }

    #[test]
    fn values_are_cut_at_a_character_boundary_and_controls_do_not_survive() {
        let mut buf = ValueBuf::default();
        buf.push_str(&"é".repeat(MAX_VALUE));
        assert!(buf.as_str().len() <= MAX_VALUE);
        assert!(buf.as_str().chars().all(|c| c == 'é'));
        assert_eq!(&*printable("a\u{1b}[31mb\n"), "a?[31mb?");
    }
}
