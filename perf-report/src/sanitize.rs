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

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_cannot_survive() {
        assert_eq!(super::one_line("plain"), "plain");
        assert_eq!(
            super::one_line("a\nb\u{1b}[31m\r"),
            "a\u{FFFD}b\u{FFFD}[31m\u{FFFD}"
        );
    }
}
