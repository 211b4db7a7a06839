//! JSON text -> jsonb's binary form, built in Rust so that it can run off the backend thread
//! (the backend then only copies the bytes). The format is the one `src/include/utils/jsonb.h`
//! documents and `convertToJsonb` writes: a varlena whose root container is a header word
//! (count and kind), one JEntry per child (keys before values in an object; every 32nd JEntry
//! an end offset, the others lengths), then the children's data, containers and numerics
//! aligned to 4 bytes from the varlena's start. Object keys are sorted shorter-first then
//! bytewise, and of duplicate keys the last one is kept, as `jsonb_in` does.
//!
//! Only what is known to come out exactly as `jsonb_in` makes it takes this path: anything
//! else (a `\u0000` escape, a lone surrogate, an exponent beyond ±300, nesting deeper than 64,
//! text that is not JSON) returns `false`, and the caller hands the text to `jsonb_in`, whose
//! result or error is the reference. The in-database tests compare both on every fixture and
//! on randomized documents.

use super::varlena::{align_to, begin_varlena, end_varlena};
use std::borrow::Cow;

const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_OFFSET_STRIDE: usize = 32;

/// Deeper documents go to `jsonb_in` (whose stack check decides about them).
const MAX_DEPTH: usize = 64;
/// Exponents beyond this go to `jsonb_in`: every supported version reads these the same way.
const MAX_EXPONENT: i64 = 300;
/// Numbers with more digits go to `jsonb_in`.
const MAX_DIGITS: usize = 1000;

/// Appends the jsonb varlena for `text` to `out` (at an 8-byte aligned position, see
/// `varlena::begin_varlena`) and returns `true`; or leaves `out` as it was and returns `false`
/// where `jsonb_in` must decide.
pub fn encode(text: &str, out: &mut Vec<u8>) -> bool {
    let Some(value) = Parser::parse(text) else { return false };
    let start = begin_varlena(out);
    let ok = match &value {
        Json::Arr(_) | Json::Obj(_) => container(&value, out, start).is_some(),
        // A lone scalar is stored as a one-element "raw scalar" array.
        scalar => raw_scalar(scalar, out, start).is_some(),
    };
    if !ok || !end_varlena(out, start) {
        out.truncate(start);
        return false;
    }
    true
}

enum Json<'a> {
    Null,
    Bool(bool),
    /// The number's text, known to be a JSON number.
    Num(&'a str),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

fn raw_scalar(value: &Json, out: &mut Vec<u8>, base: usize) -> Option<()> {
    put_u32(out, 1 | JB_FARRAY | JB_FSCALAR);
    let entry_at = out.len();
    put_u32(out, 0);
    let meta = child(value, out, base)?;
    set_u32(out, entry_at, entry(meta, meta & JENTRY_OFFLENMASK, 0));
    Some(())
}

/// Appends an array or object (padding first) and returns its JEntry.
fn container(value: &Json, out: &mut Vec<u8>, base: usize) -> Option<u32> {
    let begin = out.len();
    align_to(out, base, 4);
    match value {
        Json::Arr(items) => {
            put_u32(out, count(items.len())? | JB_FARRAY);
            let mut entries = out.len();
            out.resize(out.len() + 4 * items.len(), 0);
            let mut total = 0u32;
            for (i, item) in items.iter().enumerate() {
                let meta = child(item, out, base)?;
                total = total.checked_add(meta & JENTRY_OFFLENMASK).filter(|t| *t <= JENTRY_OFFLENMASK)?;
                set_u32(out, entries, entry(meta, total, i));
                entries += 4;
            }
        }
        Json::Obj(pairs) => {
            let pairs = sorted_unique(pairs);
            put_u32(out, count(pairs.len())? | JB_FOBJECT);
            let mut entries = out.len();
            out.resize(out.len() + 8 * pairs.len(), 0);
            let mut total = 0u32;
            let keys = pairs.iter().map(|(k, _)| Either::Key(k));
            let values = pairs.iter().map(|(_, v)| Either::Value(v));
            for (i, part) in keys.chain(values).enumerate() {
                let meta = match part {
                    Either::Key(k) => string(k, out)?,
                    Either::Value(v) => child(v, out, base)?,
                };
                total = total.checked_add(meta & JENTRY_OFFLENMASK).filter(|t| *t <= JENTRY_OFFLENMASK)?;
                set_u32(out, entries, entry(meta, total, i));
                entries += 4;
            }
        }
        _ => unreachable!("only containers come here"),
    }
    let len = u32::try_from(out.len() - begin).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?;
    Some(JENTRY_ISCONTAINER | len)
}

enum Either<'v, 'a> {
    Key(&'v Cow<'a, str>),
    Value(&'v Json<'a>),
}

/// Every 32nd JEntry holds the end offset of its child's data, the others its length.
fn entry(meta: u32, total: u32, index: usize) -> u32 {
    if index % JB_OFFSET_STRIDE == 0 {
        (meta & !JENTRY_OFFLENMASK) | total | JENTRY_HAS_OFF
    } else {
        meta
    }
}

fn count(n: usize) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n <= 0x0FFF_FFFF)
}

/// Appends one child's data and returns its JEntry.
fn child(value: &Json, out: &mut Vec<u8>, base: usize) -> Option<u32> {
    Some(match value {
        Json::Null => JENTRY_ISNULL,
        Json::Bool(true) => JENTRY_ISBOOL_TRUE,
        Json::Bool(false) => JENTRY_ISBOOL_FALSE,
        Json::Str(s) => string(s, out)?,
        Json::Num(text) => {
            let begin = out.len();
            align_to(out, base, 4);
            numeric(text, out)?;
            JENTRY_ISNUMERIC | u32::try_from(out.len() - begin).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?
        }
        Json::Arr(_) | Json::Obj(_) => container(value, out, base)?,
    })
}

fn string(s: &str, out: &mut Vec<u8>) -> Option<u32> {
    let len = u32::try_from(s.len()).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?;
    out.extend_from_slice(s.as_bytes());
    Some(len)
}

/// jsonb's key order: shorter keys first, then bytewise; of equal keys the last one written.
fn sorted_unique<'v, 'a>(pairs: &'v [(Cow<'a, str>, Json<'a>)]) -> Vec<&'v (Cow<'a, str>, Json<'a>)> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (pairs[a].0.as_bytes(), pairs[b].0.as_bytes());
        ka.len().cmp(&kb.len()).then(ka.cmp(kb)).then(b.cmp(&a))
    });
    order.dedup_by(|later, earlier| pairs[*later].0 == pairs[*earlier].0);
    order.into_iter().map(|i| &pairs[i]).collect()
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn set_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Appends the numeric varlena (4-byte header) for a JSON number's text, as `numeric_in`
/// makes it: base-10000 digits without leading or trailing zero groups, the display scale of
/// the text, the short header where scale and weight allow it.
fn numeric(text: &str, out: &mut Vec<u8>) -> Option<()> {
    const NUMERIC_NEG: u16 = 0x4000;
    const NUMERIC_SHORT: u16 = 0x8000;
    const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
    const NUMERIC_SHORT_DSCALE_SHIFT: u16 = 7;
    const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
    const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;

    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok().filter(|e| e.abs() <= MAX_EXPONENT)?),
        None => (rest, 0),
    };
    let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.len() + frac.len() > MAX_DIGITS {
        return None;
    }
    let dscale = (frac.len() as i64 - exponent).max(0) as u16;
    // Every digit, and the power of ten of the last one.
    let digits: Vec<u8> = int_part.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let last_power = exponent - frac.len() as i64;
    // Pad right to a group boundary, then left to whole groups of four.
    let low = last_power.div_euclid(4) * 4;
    let mut padded = digits;
    padded.resize(padded.len() + (last_power - low) as usize, 0);
    let lead = (4 - padded.len() % 4) % 4;
    let padded: Vec<u8> = std::iter::repeat_n(0, lead).chain(padded).collect();
    let mut groups: Vec<i16> = padded.chunks(4).map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + *d as i16)).collect();
    let mut weight = low / 4 + groups.len() as i64 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let negative = negative && !groups.is_empty();
    if groups.is_empty() {
        weight = 0;
    }
    let short = dscale <= 63 && (-64..=63).contains(&weight);
    let header_len = if short { 2 } else { 4 };
    let len = 4 + header_len + 2 * groups.len();
    out.extend_from_slice(&super::varlena::header(len)?);
    if short {
        let sign = if negative { NUMERIC_SHORT | NUMERIC_SHORT_SIGN_MASK } else { NUMERIC_SHORT };
        let weight_bits = if weight < 0 { NUMERIC_SHORT_WEIGHT_SIGN_MASK } else { 0 } | (weight as u16 & NUMERIC_SHORT_WEIGHT_MASK);
        out.extend_from_slice(&(sign | (dscale << NUMERIC_SHORT_DSCALE_SHIFT) | weight_bits).to_ne_bytes());
    } else {
        let sign = if negative { NUMERIC_NEG } else { 0 };
        out.extend_from_slice(&(sign | (dscale & 0x3FFF)).to_ne_bytes());
        out.extend_from_slice(&i16::try_from(weight).ok()?.to_ne_bytes());
    }
    for g in groups {
        out.extend_from_slice(&g.to_ne_bytes());
    }
    Some(())
}

/// A JSON parser as strict as Postgres's: the grammar of RFC 8259, whitespace of space, tab,
/// CR and LF only, no unescaped control characters. It declines (rather than decides) where
/// `jsonb_in` would raise an error or the encoding of text could differ.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn parse(text: &'a str) -> Option<Json<'a>> {
        let mut p = Parser { text, pos: 0 };
        let value = p.value(0)?;
        p.skip_ws();
        (p.pos == text.len()).then_some(value)
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_ws(&mut self) {
        while matches!(self.bytes().get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.bytes().get(self.pos) == Some(&b) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        let rest = &self.bytes()[self.pos..];
        match rest.first()? {
            b'{' => {
                self.pos += 1;
                let mut pairs = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Obj(pairs));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    pairs.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Json::Obj(pairs));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' if rest.starts_with(b"true") => self.literal(4, Json::Bool(true)),
            b'f' if rest.starts_with(b"false") => self.literal(5, Json::Bool(false)),
            b'n' if rest.starts_with(b"null") => self.literal(4, Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, len: usize, value: Json<'a>) -> Option<Json<'a>> {
        self.pos += len;
        // `truex` is not JSON: a literal ends where a token may.
        if self.bytes().get(self.pos).is_some_and(|&b| token_char(b)) {
            return None;
        }
        Some(value)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<Json<'a>> {
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
        Some(Json::Num(&self.text[start..i]))
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        let b = self.bytes();
        if b.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        // Plain text up to the closing quote borrows from the document.
        while let Some(&c) = b.get(i) {
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Some(Cow::Borrowed(&self.text[start..i]));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        let mut s = String::from(&self.text[start..i]);
        loop {
            let c = *b.get(i)?;
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return Some(Cow::Owned(s));
                }
                b'\\' => {
                    let escaped = *b.get(i + 1)?;
                    i += 2;
                    match escaped {
                        b'"' => s.push('"'),
                        b'\\' => s.push('\\'),
                        b'/' => s.push('/'),
                        b'b' => s.push('\u{8}'),
                        b'f' => s.push('\u{c}'),
                        b'n' => s.push('\n'),
                        b'r' => s.push('\r'),
                        b't' => s.push('\t'),
                        b'u' => {
                            let (ch, used) = unicode_escape(&b[i..])?;
                            s.push(ch);
                            i += used;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    // Copy the run of plain text up to the next quote or backslash.
                    let run = b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i);
                    s.push_str(&self.text[i..i + run]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        encode(text, &mut out).then_some(out)
    }

    fn numeric_bytes(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        numeric(text, &mut out).expect(text);
        out
    }

    #[test]
    fn numerics_are_base_10000_with_the_text_s_scale() {
        // 12345.678: weight 1, digits 1 2345 6780, dscale 3, short header.
        let n = numeric_bytes("12345.678");
        assert_eq!(&n[4..6], &(0x8000u16 | (3 << 7) | 1).to_ne_bytes());
        let digits: Vec<i16> = n[6..].chunks(2).map(|c| i16::from_ne_bytes([c[0], c[1]])).collect();
        assert_eq!(digits, vec![1, 2345, 6780]);
        // Zero of any sign is positive with no digits; its scale stays.
        assert_eq!(numeric_bytes("-0.00"), numeric_bytes("0.00"));
        assert_eq!(&numeric_bytes("0.00")[4..6], &(0x8000u16 | (2 << 7)).to_ne_bytes());
        // 1e3 is 1000 with scale 0; 1.5e1 is 15; 15e-1 is 1.5 with scale 1.
        assert_eq!(numeric_bytes("1e3"), numeric_bytes("1000"));
        assert_eq!(numeric_bytes("1.5e1"), numeric_bytes("15"));
        assert_eq!(numeric_bytes("15e-1"), numeric_bytes("1.5"));
        // 10000 is one group 1 of weight 1 (trailing zero group dropped).
        let n = numeric_bytes("10000");
        assert_eq!(n.len(), 8);
        assert_eq!(&n[4..6], &(0x8000u16 | 1).to_ne_bytes());
        // Negative weights: 0.0001 is the group 1 at weight -1.
        let n = numeric_bytes("0.0001");
        assert_eq!(&n[4..6], &(0x8000u16 | (4 << 7) | 0x0040 | (-1i16 as u16 & 0x3F)).to_ne_bytes());
        // A scale over 63 needs the long header.
        let long = format!("0.{}1", "0".repeat(70));
        assert_eq!(numeric_bytes(&long).len(), 4 + 4 + 2);
    }

    #[test]
    fn declines_what_jsonb_in_must_decide() {
        for text in [r#""\u0000""#, r#""\ud800""#, r#""\udc00x""#, "1e301", "[1,]", "01", "1.", ".5", "+1", "tru", "nul", "\"a\u{1}\"", "{\"a\" 1}", "[1] x", "NaN", "[truex]"] {
            assert!(jsonb(text).is_none(), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert!(jsonb(&deep).is_none());
    }

    #[test]
    fn scalars_are_one_element_raw_arrays() {
        let b = jsonb("true").unwrap();
        assert_eq!(b.len(), 12);
        assert_eq!(&b[4..8], &(1 | JB_FARRAY | JB_FSCALAR).to_ne_bytes());
        assert_eq!(&b[8..12], &(JENTRY_ISBOOL_TRUE | JENTRY_HAS_OFF).to_ne_bytes());
    }

    #[test]
    fn object_keys_are_sorted_and_the_last_duplicate_wins() {
        assert_eq!(jsonb(r#"{"bb":1,"a":2,"a":3}"#), jsonb(r#"{"a":3,"bb":1}"#));
        assert_eq!(jsonb(r#"{"b":"\u00e9\ud83d\ude00"}"#), jsonb("{\"b\":\"é😀\"}"));
        assert_eq!(jsonb(" { \"a\" : [ 1 , null ] } "), jsonb(r#"{"a":[1,null]}"#));
    }
}
