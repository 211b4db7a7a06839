//! The JSON lexer of the jsonb encoder (`convert::jsonb`): tokens and strings of one document.

/// A JSON lexer as strict as Postgres's: the grammar of RFC 8259, whitespace of space, tab,
/// CR and LF only, no unescaped control characters. It declines (rather than decides) where
/// `jsonb_in` would raise an error.
pub(super) struct Parser<'a> {
    pub text: &'a str,
    pub pos: usize,
}

/// Where a string's text is: a range of the document, or of the unescaped strings.
pub(super) enum StrAt {
    Text(usize, usize),
    Unescaped(usize, usize),
}

impl<'a> Parser<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    pub fn skip_ws(&mut self) {
        while matches!(self.bytes().get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.bytes().get(self.pos) == Some(&b) {
            self.pos += 1;
            return true;
        }
        false
    }

    /// Steps over a literal of `len` bytes, which must end where a token may.
    pub fn literal(&mut self, len: usize) -> Option<()> {
        self.pos += len;
        if self.bytes().get(self.pos).is_some_and(|&b| token_char(b)) {
            return None;
        }
        Some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: its range.
    pub fn number(&mut self) -> Option<(usize, usize)> {
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if b.get(i).is_some_and(|&c| token_char(c) || c == b'.') {
            return None;
        }
        self.pos = i;
        Some((start, i))
    }

    /// A string at the current position: plain text stays where it is, text with escapes is
    /// unescaped onto the end of `unescaped`.
    pub fn string(&mut self, unescaped: &mut String) -> Option<StrAt> {
        let b = self.bytes();
        if b.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = b.get(i) {
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Some(StrAt::Text(start, i));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        let from = unescaped.len();
        unescaped.push_str(&self.text[start..i]);
        loop {
            let c = *b.get(i)?;
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Some(StrAt::Unescaped(from, unescaped.len()));
                }
                b'\\' => {
                    let escaped = *b.get(i + 1)?;
                    i += 2;
                    match escaped {
                        b'"' => unescaped.push('"'),
                        b'\\' => unescaped.push('\\'),
                        b'/' => unescaped.push('/'),
                        b'b' => unescaped.push('\u{8}'),
                        b'f' => unescaped.push('\u{c}'),
                        b'n' => unescaped.push('\n'),
                        b'r' => unescaped.push('\r'),
                        b't' => unescaped.push('\t'),
                        b'u' => {
                            let (ch, used) = unicode_escape(&b[i..])?;
                            unescaped.push(ch);
                            i += used;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    // The run of plain text up to the next quote, backslash or control character.
                    let run = b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i);
                    unescaped.push_str(&self.text[i..i + run]);
                    i += run;
                }
            }
        }
    }
}

/// What Postgres's lexer reads as part of a word: a literal or number followed by one is an
/// invalid token.
fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The character of `XXXX` (after `\u`), or of a surrogate pair `XXXX\uYYYY`, and the bytes
/// used. `\u0000` and lone surrogates are `jsonb_in`'s to refuse.
fn unicode_escape(b: &[u8]) -> Option<(char, usize)> {
    let hex = |s: &[u8]| -> Option<u32> {
        let s = std::str::from_utf8(s.get(..4)?).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    };
    let first = hex(b)?;
    match first {
        0 => None,
        0xD800..=0xDBFF => {
            if b.get(4..6)? != b"\\u" {
                return None;
            }
            let second = hex(&b[6..])?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return None;
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            Some((char::from_u32(code)?, 10))
        }
        0xDC00..=0xDFFF => None,
        code => Some((char::from_u32(code)?, 4)),
    }
}
