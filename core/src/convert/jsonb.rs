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

use super::json_lex::{Parser, StrAt};
use super::numeric::numeric;
use super::varlena::{align_to, begin_varlena, end_varlena};

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

/// Builds jsonb values, keeping its working memory from one value to the next (a page's worth
/// of documents then costs no allocation each).
#[derive(Default)]
pub struct Encoder {
    /// The parsed document, flat: containers name their children in `kids`.
    nodes: Vec<Node>,
    /// Children of each container, contiguous: array items, or object (key, value) pairs.
    kids: Vec<(u32, u32)>,
    /// Children of the containers being parsed.
    stack: Vec<(u32, u32)>,
    /// Strings that had escapes, unescaped.
    unescaped: String,
    /// A numeric's base-10000 digits.
    groups: Vec<i16>,
}

#[derive(Clone, Copy)]
enum Node {
    Null,
    Bool(bool),
    /// The number's text (known to be a JSON number) in the document.
    Num(u32, u32),
    /// A string: a range of the document, or (`true`) of the unescaped strings.
    Str(bool, u32, u32),
    /// Children `kids[first..first + len]`.
    Arr(u32, u32),
    Obj(u32, u32),
}

impl Encoder {
    /// Appends the jsonb varlena for `text` to `out` (at an 8-byte aligned position, see
    /// `varlena::begin_varlena`) and returns `true`; or leaves `out` as it was and returns
    /// `false` where `jsonb_in` must decide.
    pub fn encode(&mut self, text: &str, out: &mut Vec<u8>) -> bool {
        if text.len() > JENTRY_OFFLENMASK as usize {
            return false;
        }
        self.nodes.clear();
        self.kids.clear();
        self.stack.clear();
        self.unescaped.clear();
        let mut parser = Parser { text, pos: 0 };
        let Some(root) = self.value(&mut parser, 0) else { return false };
        parser.skip_ws();
        if parser.pos != text.len() {
            return false;
        }
        let start = begin_varlena(out);
        let doc = Doc { text, nodes: &self.nodes, kids: &self.kids, unescaped: &self.unescaped };
        let ok = match self.nodes[root as usize] {
            Node::Arr(..) | Node::Obj(..) => doc.container(root, out, start, &mut self.groups).is_some(),
            // A lone scalar is stored as a one-element "raw scalar" array.
            _ => doc.raw_scalar(root, out, start, &mut self.groups).is_some(),
        };
        if !ok || !end_varlena(out, start) {
            out.truncate(start);
            return false;
        }
        true
    }

    fn push(&mut self, node: Node) -> Option<u32> {
        self.nodes.push(node);
        u32::try_from(self.nodes.len() - 1).ok()
    }

    fn value(&mut self, p: &mut Parser, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        p.skip_ws();
        let rest = &p.bytes()[p.pos..];
        match rest.first()? {
            b'{' => {
                p.pos += 1;
                let base = self.stack.len();
                if !p.eat(b'}') {
                    loop {
                        p.skip_ws();
                        let key = self.string(p)?;
                        if !p.eat(b':') {
                            return None;
                        }
                        let value = self.value(p, depth + 1)?;
                        self.stack.push((key, value));
                        if p.eat(b'}') {
                            break;
                        }
                        if !p.eat(b',') {
                            return None;
                        }
                    }
                }
                self.sort_keys(base, p.text);
                self.close(base, Node::Obj)
            }
            b'[' => {
                p.pos += 1;
                let base = self.stack.len();
                if !p.eat(b']') {
                    loop {
                        let item = self.value(p, depth + 1)?;
                        self.stack.push((item, 0));
                        if p.eat(b']') {
                            break;
                        }
                        if !p.eat(b',') {
                            return None;
                        }
                    }
                }
                self.close(base, Node::Arr)
            }
            b'"' => self.string(p),
            b't' if rest.starts_with(b"true") => p.literal(4).and_then(|()| self.push(Node::Bool(true))),
            b'f' if rest.starts_with(b"false") => p.literal(5).and_then(|()| self.push(Node::Bool(false))),
            b'n' if rest.starts_with(b"null") => p.literal(4).and_then(|()| self.push(Node::Null)),
            b'-' | b'0'..=b'9' => {
                let (start, end) = p.number()?;
                self.push(Node::Num(start as u32, end as u32))
            }
            _ => None,
        }
    }

    /// Moves the children collected since `base` to `kids`, as the container `make` says.
    fn close(&mut self, base: usize, make: fn(u32, u32) -> Node) -> Option<u32> {
        let first = u32::try_from(self.kids.len()).ok()?;
        let len = u32::try_from(self.stack.len() - base).ok()?;
        self.kids.extend_from_slice(&self.stack[base..]);
        self.stack.truncate(base);
        self.push(make(first, len))
    }

    /// jsonb's key order: shorter keys first, then bytewise; of equal keys only the last one
    /// written stays (keys are numbered in the order they were written).
    fn sort_keys(&mut self, base: usize, text: &str) {
        let (nodes, unescaped) = (&self.nodes, &self.unescaped);
        let key = |node: u32| str_of(text, unescaped, nodes[node as usize]).as_bytes();
        let pairs = &mut self.stack[base..];
        pairs.sort_unstable_by(|a, b| {
            let (ka, kb) = (key(a.0), key(b.0));
            ka.len().cmp(&kb.len()).then(ka.cmp(kb)).then(b.0.cmp(&a.0))
        });
        let mut kept = base;
        for i in base..self.stack.len() {
            if i == base || key(self.stack[i].0) != key(self.stack[kept - 1].0) {
                self.stack[kept] = self.stack[i];
                kept += 1;
            }
        }
        self.stack.truncate(kept);
    }

    fn string(&mut self, p: &mut Parser) -> Option<u32> {
        let node = match p.string(&mut self.unescaped)? {
            StrAt::Text(start, end) => Node::Str(false, start as u32, end as u32),
            StrAt::Unescaped(start, end) => Node::Str(true, start as u32, end as u32),
        };
        self.push(node)
    }
}

/// The text of a string node.
fn str_of<'t>(text: &'t str, unescaped: &'t str, node: Node) -> &'t str {
    match node {
        Node::Str(false, start, end) => &text[start as usize..end as usize],
        Node::Str(true, start, end) => &unescaped[start as usize..end as usize],
        _ => "",
    }
}

/// A parsed document, to write out.
struct Doc<'e, 't> {
    text: &'t str,
    nodes: &'e [Node],
    kids: &'e [(u32, u32)],
    unescaped: &'e str,
}

impl Doc<'_, '_> {
    fn raw_scalar(&self, node: u32, out: &mut Vec<u8>, base: usize, groups: &mut Vec<i16>) -> Option<()> {
        put_u32(out, 1 | JB_FARRAY | JB_FSCALAR);
        let entry_at = out.len();
        put_u32(out, 0);
        let meta = self.child(node, out, base, groups)?;
        set_u32(out, entry_at, entry(meta, meta & JENTRY_OFFLENMASK, 0));
        Some(())
    }

    /// Appends an array or object (padding first) and returns its JEntry.
    fn container(&self, node: u32, out: &mut Vec<u8>, base: usize, groups: &mut Vec<i16>) -> Option<u32> {
        let begin = out.len();
        align_to(out, base, 4);
        let (first, len, is_object) = match self.nodes[node as usize] {
            Node::Arr(first, len) => (first as usize, len as usize, false),
            Node::Obj(first, len) => (first as usize, len as usize, true),
            _ => return None,
        };
        let kids = &self.kids[first..first + len];
        put_u32(out, count(len)? | if is_object { JB_FOBJECT } else { JB_FARRAY });
        let mut entries = out.len();
        let children = if is_object { 2 * len } else { len };
        out.resize(out.len() + 4 * children, 0);
        let mut total = 0u32;
        // An object's keys come first, then its values.
        let keys = kids.iter().filter(|_| is_object).map(|k| (k.0, true));
        let values = kids.iter().map(|k| (if is_object { k.1 } else { k.0 }, false));
        for (i, (child, is_key)) in keys.chain(values).enumerate() {
            let meta = if is_key {
                string(str_of(self.text, self.unescaped, self.nodes[child as usize]), out)?
            } else {
                self.child(child, out, base, groups)?
            };
            total = total.checked_add(meta & JENTRY_OFFLENMASK).filter(|t| *t <= JENTRY_OFFLENMASK)?;
            set_u32(out, entries, entry(meta, total, i));
            entries += 4;
        }
        let len = u32::try_from(out.len() - begin).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?;
        Some(JENTRY_ISCONTAINER | len)
    }

    /// Appends one child's data and returns its JEntry.
    fn child(&self, node: u32, out: &mut Vec<u8>, base: usize, groups: &mut Vec<i16>) -> Option<u32> {
        Some(match self.nodes[node as usize] {
            Node::Null => JENTRY_ISNULL,
            Node::Bool(true) => JENTRY_ISBOOL_TRUE,
            Node::Bool(false) => JENTRY_ISBOOL_FALSE,
            s @ Node::Str(..) => string(str_of(self.text, self.unescaped, s), out)?,
            Node::Num(start, end) => {
                let begin = out.len();
                align_to(out, base, 4);
                numeric(&self.text[start as usize..end as usize], out, groups)?;
                JENTRY_ISNUMERIC | u32::try_from(out.len() - begin).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?
            }
            Node::Arr(..) | Node::Obj(..) => self.container(node, out, base, groups)?,
        })
    }
}

/// Every 32nd JEntry holds the end offset of its child's data, the others its length.
fn entry(meta: u32, total: u32, index: usize) -> u32 {
    if index.is_multiple_of(JB_OFFSET_STRIDE) {
        (meta & !JENTRY_OFFLENMASK) | total | JENTRY_HAS_OFF
    } else {
        meta
    }
}

fn count(n: usize) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n <= 0x0FFF_FFFF)
}

fn string(s: &str, out: &mut Vec<u8>) -> Option<u32> {
    let len = u32::try_from(s.len()).ok().filter(|l| *l <= JENTRY_OFFLENMASK)?;
    out.extend_from_slice(s.as_bytes());
    Some(len)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn set_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        Encoder::default().encode(text, &mut out).then_some(out)
    }

    #[test]
    fn declines_what_jsonb_in_must_decide() {
        for text in [
            r#""\u0000""#,
            r#""\ud800""#,
            r#""\udc00x""#,
            "1e301",
            "[1,]",
            "01",
            "1.",
            ".5",
            "+1",
            "tru",
            "nul",
            "\"a\u{1}\"",
            "{\"a\" 1}",
            "[1] x",
            "NaN",
            "[truex]",
        ] {
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
