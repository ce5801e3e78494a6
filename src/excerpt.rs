//! Short excerpts of client and file input, for error messages and the
//! journal: a message quotes at most [`QUOTE_CHARS`] characters of what it is
//! about, so a 1 MiB value never becomes a 1 MiB error body.

use std::borrow::Cow;

/// The most characters of an input an error message quotes.
pub const QUOTE_CHARS: usize = 64;

/// `text` cut to at most `max` characters, on a character boundary, and
/// whether it was cut.
pub fn prefix(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (&text[..end], true),
        None => (text, false),
    }
}

/// `text` as an error message quotes it: whole when it has at most
/// [`QUOTE_CHARS`] characters, else its first [`QUOTE_CHARS`] and `…`.
pub fn quote(text: &str) -> Cow<'_, str> {
    match prefix(text, QUOTE_CHARS) {
        (whole, false) => Cow::Borrowed(whole),
        (cut, true) => Cow::Owned(format!("{cut}…")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_is_cut_on_a_char_boundary() {
        assert_eq!(quote("run_abc"), "run_abc");
        let exact = "x".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), exact);
        let long = "é".repeat(1 << 20);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), QUOTE_CHARS + 1);
        assert!(quoted.ends_with('…') && quoted.starts_with("éé"));
        assert_eq!(prefix("abc", 0), ("", true));
        assert_eq!(prefix("", 0), ("", false));
    }
}
