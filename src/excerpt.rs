//! Short excerpts of client and file input, for error messages and the
//! journal: a message quotes at most [`QUOTE_CHARS`] characters of what it is
//! about, so a 1 MiB value never becomes a 1 MiB error body; and the decoding
//! of the percent-escapes those inputs arrive in.

use std::borrow::Cow;

/// The most characters of an input an error message quotes.
pub const QUOTE_CHARS: usize = 64;

/// `text` cut to at most `max` characters, on a character boundary, and
/// whether it was cut.
pub fn prefix(text: &str, max: usize) -> (&str, bool) {
    // A character takes at least a byte: a short text is whole without counting.
    if text.len() <= max {
        return (text, false);
    }
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

/// `message` with every span quoted in backticks or double quotes (a
/// serde message quotes the offending key or value so) cut as [`quote`]
/// cuts it; an unclosed quote runs to the end of the message.
pub fn shorten_quotes(message: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0; // `message[..done]` is in `out`.
    let mut rest = message.char_indices();
    while let Some((open, delimiter)) = rest.next() {
        if delimiter != '`' && delimiter != '"' {
            continue;
        }
        let start = open + 1;
        let mut end = message.len();
        let mut escaped = false;
        for (i, c) in rest.by_ref() {
            if escaped {
                escaped = false;
            } else if c == '\\' && delimiter == '"' {
                escaped = true;
            } else if c == delimiter {
                end = i;
                break;
            }
        }
        let inside = &message[start..end];
        if let (cut, true) = prefix(inside, QUOTE_CHARS) {
            out.push_str(&message[done..start]);
            out.push_str(cut);
            out.push('…');
            done = end;
        }
    }
    if done == 0 {
        return Cow::Borrowed(message);
    }
    out.push_str(&message[done..]);
    Cow::Owned(out)
}

/// Decodes `%XX` and `+` in a query value or path segment (invalid escapes
/// stay as they are; bytes that are not UTF-8 become U+FFFD).
pub fn percent_decode(text: &str) -> String {
    percent_decoded(text).into_owned()
}

/// [`percent_decode`], borrowing `text` when there is nothing to decode.
pub fn percent_decoded(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_spans_are_cut_and_the_rest_is_kept() {
        let long = "x".repeat(1 << 20);
        let serde = format!("unknown field `{long}`, expected `id` or `status`");
        let short = shorten_quotes(&serde);
        assert_eq!(short, format!("unknown field `{}…`, expected `id` or `status`", &long[..QUOTE_CHARS]));
        let value = format!("invalid type: string \"a\\\"{long}\", expected u16");
        let short = shorten_quotes(&value);
        assert!(short.len() < 200 && short.ends_with("…\", expected u16"), "{short}");
        let unclosed = format!("bad `{long}");
        assert_eq!(shorten_quotes(&unclosed).chars().count(), "bad `".len() + QUOTE_CHARS + 1);
        assert!(matches!(shorten_quotes("unknown field `x`"), Cow::Borrowed(_)));
    }

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
