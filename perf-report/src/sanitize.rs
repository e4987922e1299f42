//! The one cleaner of text that reaches a terminal or a one-line message
//! from outside: span names, file paths and program names from a dump, file
//! names from the command line, a parser's error message.

use std::borrow::Cow;

/// `s` with every control character (ANSI escapes, newlines, tabs) replaced
/// by U+FFFD, so that a hostile name can neither move the cursor nor fake a
/// line, and a message stays on one line.
///
/// ```
/// use perf_report::sanitize::one_line;
/// assert_eq!(one_line("a\nb\u{1b}[31m"), "a\u{FFFD}b\u{FFFD}[31m");
/// ```
pub fn one_line(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// The most characters of one name (a span, a target, a file, a program)
/// a report shows: real ones are far shorter, and a hostile dump's
/// megabyte name must not become a megabyte per mention in every page.
pub const MAX_NAME_CHARS: usize = 512;

/// `s` cut to `max` characters, the cut marked with `…`.
///
/// ```
/// use perf_report::sanitize::bounded;
/// assert_eq!(bounded("parse", 8), "parse");
/// assert_eq!(bounded("abcdefghij", 5), "abcd…");
/// ```
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let keep = s
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(0, |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..keep]))
        }
    }
}

/// Cuts every name a report shows of `dump` to [`MAX_NAME_CHARS`]: the
/// callsites' names, targets, module paths, files and levels, the program,
/// the host and the CPU model.
pub(crate) fn bound_names(dump: &mut perf_layer::dump::Dump) {
    let cut = |s: &mut String| {
        if let Cow::Owned(b) = bounded(s, MAX_NAME_CHARS) {
            *s = b;
        }
    };
    for cs in &mut dump.callsites {
        cut(&mut cs.name);
        cut(&mut cs.target);
        cut(&mut cs.level);
        cs.module_path.iter_mut().for_each(cut);
        cs.file.iter_mut().for_each(cut);
    }
    cut(&mut dump.run.program);
    cut(&mut dump.run.host);
    dump.run.cpu_model.iter_mut().for_each(cut);
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1_000);
        let cut = super::bounded(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(super::bounded("", 0), "");
    }

    #[test]
    fn control_characters_cannot_survive() {
        assert_eq!(super::one_line("plain"), "plain");
        assert_eq!(
            super::one_line("a\nb\u{1b}[31m\r"),
            "a\u{FFFD}b\u{FFFD}[31m\u{FFFD}"
        );
    }
}
