//! Finding the line and column of a key path in JSON text, so that errors
//! found after parsing still point into the file.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `runs[2].lifecycle[0].status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The path with one more key.
    pub fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    /// The path with one more index.
    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                // A key from the file (a header name, say) is cut as errors quote input.
                Seg::Key(k) if i == 0 => write!(f, "{}", crate::excerpt::quote(k))?,
                Seg::Key(k) => write!(f, ".{}", crate::excerpt::quote(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.pos < self.b.len() && matches!(self.b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skips a string and returns its raw contents (escapes left as they are).
    fn string(&mut self) -> Option<&str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.b.len() {
            match self.b[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    let s = std::str::from_utf8(&self.b[start..self.pos]).ok();
                    self.pos += 1;
                    return s;
                }
                _ => self.pos += 1,
            }
        }
        None
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                while self.pos < self.b.len() {
                    match self.b[self.pos] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                None
            }
            _ => {
                while self.pos < self.b.len() && !matches!(self.b[self.pos], b',' | b'}' | b']') {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    /// Positions the scanner at the value of `path` and returns its offset.
    fn find(&mut self, path: &[Seg]) -> Option<usize> {
        self.ws();
        let Some((first, rest)) = path.split_first() else {
            return Some(self.pos);
        };
        match (first, self.peek()?) {
            (Seg::Key(want), b'{') => {
                self.pos += 1;
                loop {
                    self.ws();
                    let key_at = self.pos;
                    let key = self.string()?.to_owned();
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    if &key == want {
                        // For the last segment point at the key, where a person looks.
                        return if rest.is_empty() { Some(key_at) } else { self.find(rest) };
                    }
                    self.skip_value()?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        _ => return None,
                    }
                }
            }
            (Seg::Index(want), b'[') => {
                self.pos += 1;
                let mut i = 0;
                loop {
                    self.ws();
                    if i == *want {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        _ => return None,
                    }
                    i += 1;
                }
            }
            _ => None,
        }
    }
}

/// The position of `path` if the whole path exists in `text`.
pub fn locate_exact(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
    let mut s = Scanner { b: text.as_bytes(), pos: 0 };
    s.find(&path.0).map(|offset| line_col(text, offset))
}

/// The 1-based line and column of `path` in `text`: the key for a key, the
/// value for an index. Falls back to the deepest part of the path that
/// exists, then to the start of the file.
pub fn locate(text: &str, path: &KeyPath) -> (usize, usize) {
    for len in (0..=path.0.len()).rev() {
        let mut s = Scanner { b: text.as_bytes(), pos: 0 };
        if let Some(offset) = s.find(&path.0[..len]) {
            return line_col(text, offset);
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n  \"version\": 1,\n  \"runs\": [\n    {\"id\": \"run_a\"},\n    {\n      \"id\": \"run_b\",\n      \"lifecycle\": [{\"status\": \"X\"}]\n    }\n  ]\n}\n";

    fn path(segs: &[Seg]) -> KeyPath {
        KeyPath(segs.to_vec())
    }

    #[test]
    fn finds_keys_and_indices() {
        use Seg::*;
        assert_eq!(locate(TEXT, &path(&[Key("version".into())])), (2, 3));
        assert_eq!(locate(TEXT, &path(&[Key("runs".into()), Index(0)])), (4, 5));
        assert_eq!(locate(TEXT, &path(&[Key("runs".into()), Index(1), Key("id".into())])), (6, 7));
        let deep = path(&[Key("runs".into()), Index(1), Key("lifecycle".into()), Index(0), Key("status".into())]);
        assert_eq!(locate(TEXT, &deep), (7, 22));
        assert_eq!(deep.to_string(), "runs[1].lifecycle[0].status");
    }

    #[test]
    fn missing_parts_fall_back_to_what_exists() {
        use Seg::*;
        assert_eq!(locate(TEXT, &path(&[Key("runs".into()), Index(1), Key("nope".into())])), (5, 5));
        assert_eq!(locate("garbage", &path(&[Key("x".into())])), (1, 1));
    }

    #[test]
    fn strings_with_brackets_and_escapes_do_not_confuse_it() {
        use Seg::*;
        let text = r#"{"a": "x]}\"{", "b": [1, "]", {"c": 2}]}"#;
        assert_eq!(locate(text, &path(&[Key("b".into()), Index(2), Key("c".into())])), (1, 32));
    }
}
