//! JSON text -> jsonb Datum without Postgres's JSON lexer: serde parses the text into a small
//! tree, which becomes an in-memory JsonbValue (keys sorted and made unique as jsonb requires)
//! and is serialised with one call to `JsonbValueToJsonb`. Several times cheaper than
//! `jsonb_in`, which dominated the profile of a full-table COPY. Only what converts exactly
//! takes this path: a non-integer or out-of-range number, a NUL character, or text that does
//! not parse returns `None`, and the caller uses `jsonb_in`, whose result (or error) is the
//! reference.

use pgrx::pg_sys;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The jsonb Datum for `text`, or `None` where `jsonb_in` must decide.
///
/// # Safety
/// Must run in a memory context that lives as long as the Datum is needed.
pub unsafe fn jsonb_datum(text: &str) -> Option<pg_sys::Datum> {
    let mut de = serde_json::Deserializer::from_str(text);
    let node = Node::deserialize(&mut de).ok()?;
    de.end().ok()?;
    // Every array the JsonbValue tree points into lives here until the jsonb is built.
    let mut arena = Arena::default();
    let mut top = arena.value(&node);
    if !matches!(node, Node::Arr(_) | Node::Obj(_)) {
        // jsonb stores a lone scalar as a one-element "raw scalar" array.
        let elems = arena.values(vec![top]);
        top = array_value(elems, 1, true);
    }
    Some(pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(&mut top)))
}

enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Arr(Vec<Node<'a>>),
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

/// Refuses the fast path; the caller falls back to jsonb_in.
fn fallback<E: de::Error>() -> E {
    E::custom("not on the fast path")
}

fn text<'a, E: de::Error>(s: Cow<'a, str>) -> Result<Cow<'a, str>, E> {
    if s.contains('\0') {
        return Err(fallback());
    }
    Ok(s)
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Node<'de>, E> {
        i64::try_from(n).map(Node::Int).map_err(|_| fallback())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node<'de>, E> {
        // A decimal's exact digits are not kept by serde: jsonb_in takes it.
        Err(fallback())
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Node<'de>, E> {
        text(Cow::Borrowed(s)).map(Node::Str)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node<'de>, E> {
        text(Cow::Owned(s.to_string())).map(Node::Str)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let key = text(key)?;
            pairs.push((key, map.next_value()?));
        }
        Ok(Node::Obj(pairs))
    }
}

#[derive(Default)]
struct Arena {
    values: Vec<Vec<pg_sys::JsonbValue>>,
    pairs: Vec<Vec<pg_sys::JsonbPair>>,
}

fn array_value(elems: *mut pg_sys::JsonbValue, n: usize, raw_scalar: bool) -> pg_sys::JsonbValue {
    let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvArray, ..Default::default() };
    v.val.array = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_2 { nElems: n as i32, elems, rawScalar: raw_scalar };
    v
}

fn string_value(s: &str) -> pg_sys::JsonbValue {
    let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvString, ..Default::default() };
    // The text is only read, by JsonbValueToJsonb, while the tree it belongs to is alive.
    v.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 { len: s.len() as i32, val: s.as_ptr() as *mut std::ffi::c_char };
    v
}

impl Arena {
    /// Keeps `v` alive and returns a pointer to its first element (moving the Vec into the
    /// arena does not move its buffer).
    fn values(&mut self, mut v: Vec<pg_sys::JsonbValue>) -> *mut pg_sys::JsonbValue {
        let ptr = v.as_mut_ptr();
        self.values.push(v);
        ptr
    }

    unsafe fn value(&mut self, node: &Node) -> pg_sys::JsonbValue {
        match node {
            Node::Null => pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvNull, ..Default::default() },
            Node::Bool(b) => {
                let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvBool, ..Default::default() };
                v.val.boolean = *b;
                v
            }
            Node::Int(n) => {
                let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvNumeric, ..Default::default() };
                v.val.numeric = pg_sys::int64_to_numeric(*n);
                v
            }
            Node::Str(s) => string_value(s),
            Node::Arr(items) => {
                let elems: Vec<pg_sys::JsonbValue> = items.iter().map(|i| self.value(i)).collect();
                let n = elems.len();
                array_value(self.values(elems), n, false)
            }
            Node::Obj(entries) => {
                // jsonb's key order: shorter keys first, then bytewise; of duplicate keys the
                // last one wins.
                let mut order: Vec<usize> = (0..entries.len()).collect();
                order.sort_by(|&a, &b| {
                    let (ka, kb) = (entries[a].0.as_bytes(), entries[b].0.as_bytes());
                    ka.len().cmp(&kb.len()).then(ka.cmp(kb)).then(b.cmp(&a))
                });
                order.dedup_by(|later, earlier| entries[*later].0 == entries[*earlier].0);
                let mut pairs: Vec<pg_sys::JsonbPair> = order
                    .into_iter()
                    .map(|i| pg_sys::JsonbPair { key: string_value(&entries[i].0), value: self.value(&entries[i].1), order: i as u32 })
                    .collect();
                let mut v = pg_sys::JsonbValue { type_: pg_sys::jbvType::jbvObject, ..Default::default() };
                v.val.object = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_3 { nPairs: pairs.len() as i32, pairs: pairs.as_mut_ptr() };
                self.pairs.push(pairs);
                v
            }
        }
    }
}
