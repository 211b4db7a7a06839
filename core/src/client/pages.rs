//! One page of a list response, and the cursor that follows `next_page_token` to the end.

use super::error::ApiError;
use crate::convert::json_type;
use crate::convert::prepare::{prepare, PreparedRows, RowRecipe};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::fmt;

/// One decoded page: the body as it came, and for each item where its wanted fields are in it.
/// Decoding validates the whole body but builds no JSON tree: fields nobody asked for are only
/// skipped over, and the rows borrow their values from the body.
#[derive(Debug, Default)]
pub struct Page {
    /// The body, checked to be UTF-8 once, so fields are plain string slices.
    body: String,
    items: usize,
    /// Per item, per wanted field: the byte range of its JSON value in `body`.
    spans: Vec<Option<(u32, u32)>>,
    stride: usize,
    /// `None` at the end: the token was absent, null or `""`.
    pub next_page_token: Option<String>,
    /// The items as rows ready for the scan, when the listing was told how to make them.
    prepared: Option<PreparedRows>,
}

impl Page {
    /// Decodes `{"<list_key>": [{...}, ...], "next_page_token": "..."}`, keeping the position of
    /// `fields` in each item; both keys may be missing (`{}` is an empty result). Without a
    /// list key, the body is one object: a page of one item.
    pub fn decode(body: impl Into<bytes::Bytes>, list_key: Option<&str>, fields: &[&str]) -> Result<Page, String> {
        // Without a copy when the bytes are not shared (they are only when also cached).
        let body = String::from_utf8(Vec::from(body.into())).map_err(|e| {
            let start = String::from_utf8_lossy(&e.as_bytes()[..e.as_bytes().len().min(80)]).into_owned();
            format!("the body is not UTF-8 (starts with {start:?})")
        })?;
        let mut found = Found { spans: Vec::new(), items: 0, next: None, stride: fields.len() };
        let base = body.as_ptr() as usize;
        let mut de = serde_json::Deserializer::from_str(&body);
        let outcome = match list_key {
            Some(list_key) => TopSeed { list_key, fields, base, found: &mut found }.deserialize(&mut de),
            None => ItemSeed { fields, base, found: &mut found }.deserialize(&mut de),
        };
        let outcome = outcome.and_then(|()| de.end());
        if let Err(e) = outcome {
            let start = String::from_utf8_lossy(&body.as_bytes()[..body.len().min(80)]).into_owned();
            return Err(format!("{e} (body starts with {start:?}, {} bytes)", body.len()));
        }
        Ok(Page {
            items: found.items,
            spans: found.spans,
            stride: fields.len(),
            next_page_token: found.next.filter(|t| !t.is_empty()),
            body,
            prepared: None,
        })
    }

    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The JSON text of wanted field `field` (an index into the decode's `fields`) of item
    /// `item`; `None` where the item does not have it.
    pub fn field(&self, item: usize, field: usize) -> Option<&str> {
        let (start, end) = self.spans[item * self.stride + field]?;
        // The range is a JSON value the parser borrowed from this body: on char boundaries.
        self.body.get(start as usize..end as usize)
    }

    /// Makes the page's items into rows by `recipe` (on the I/O thread, so that the backend
    /// only copies them).
    pub fn prepare(&mut self, recipe: &RowRecipe) {
        let rows = prepare(self.items, |item, field| self.field(item, field), recipe);
        self.prepared = Some(rows);
    }

    pub fn prepared(&self) -> Option<&PreparedRows> {
        self.prepared.as_ref()
    }

    /// The memory the page holds: its body, the positions of its fields, its prepared rows,
    /// itself.
    pub fn memory(&self) -> usize {
        self.body.capacity()
            + self.spans.capacity() * std::mem::size_of::<Option<(u32, u32)>>()
            + self.prepared.as_ref().map_or(0, PreparedRows::memory)
            + std::mem::size_of::<Page>()
    }
}

struct Found {
    spans: Vec<Option<(u32, u32)>>,
    items: usize,
    next: Option<String>,
    stride: usize,
}

/// The top-level object.
struct TopSeed<'s, 'f> {
    list_key: &'s str,
    fields: &'s [&'s str],
    base: usize,
    found: &'f mut Found,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.list_key {
                map.next_value_seed(ListSeed { fields: self.fields, base: self.base, found: self.found })?;
            } else if key == "next_page_token" {
                let raw: &RawValue = map.next_value()?;
                self.found.next = match raw.get().as_bytes().first() {
                    Some(b'n') => None,
                    Some(b'"') => Some(serde_json::from_str(raw.get()).map_err(de::Error::custom)?),
                    _ => return Err(de::Error::custom(format!("\"next_page_token\" is a JSON {}, not a string", json_type(raw.get())))),
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The array of items (or null).
struct ListSeed<'s, 'f> {
    fields: &'s [&'s str],
    base: usize,
    found: &'f mut Found,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.fields.is_empty() {
            // Counting only (SELECT count(*)): validate and skip each item whole.
            while seq.next_element::<ObjectOnly>()?.is_some() {
                self.found.items += 1;
            }
            return Ok(());
        }
        while seq.next_element_seed(ItemSeed { fields: self.fields, base: self.base, found: &mut *self.found })?.is_some() {}
        Ok(())
    }
}

/// An item that must be an object, skipped whole.
struct ObjectOnly;

impl<'de> serde::Deserialize<'de> for ObjectOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectOnly, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ObjectOnly)
            }
        }
        d.deserialize_map(V)
    }
}

/// One item: records where its wanted fields are, skips the rest.
struct ItemSeed<'s, 'f> {
    fields: &'s [&'s str],
    base: usize,
    found: &'f mut Found,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let first = self.found.spans.len();
        self.found.spans.resize(first + self.found.stride, None);
        self.found.items += 1;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.fields.iter().position(|f| *f == key) {
                Some(i) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let start = raw.get().as_ptr() as usize - self.base;
                    self.found.spans[first + i] = Some((start as u32, (start + raw.get().len()) as u32));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Follows the page tokens of one listing. A token seen before is an error: following it would
/// repeat rows or loop for ever.
#[derive(Debug, Default)]
pub struct Cursor {
    next: Option<String>,
    seen: HashSet<String>,
    pages: u32,
    /// Pages in a row without an item that still named a next page.
    empty_run: u32,
    finished: bool,
}

/// The most pages in a row without an item a listing may take: an API that keeps answering
/// empty pages with new tokens would otherwise hold the backend for ever.
pub const MAX_EMPTY_PAGES: u32 = 100;

impl Cursor {
    #[cfg(test)]
    pub fn new() -> Self {
        Cursor::default()
    }

    /// A cursor for a listing that starts at `token` (which then counts as followed).
    pub fn starting_at(token: Option<&str>) -> Self {
        let mut cursor = Cursor::default();
        // Only seen: the first request is still the listing's own URL, which carries it.
        if let Some(t) = token {
            cursor.seen.insert(t.to_string());
        }
        cursor
    }

    /// The token for the next request (`None` for the first page), or `None` when finished.
    pub fn next_request(&self) -> Option<Option<&str>> {
        (!self.finished).then_some(self.next.as_deref())
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Whether `token` was never followed nor is being followed now.
    pub fn is_new(&self, token: &str) -> bool {
        self.next.as_deref() != Some(token) && !self.seen.contains(token)
    }

    /// Records a page of `items` items and the token it named; fails on a token already
    /// followed, and on too many empty pages in a row.
    pub fn advance(&mut self, next: Option<String>, items: usize, path: &str) -> Result<(), ApiError> {
        self.pages += 1;
        self.empty_run = if items == 0 { self.empty_run + 1 } else { 0 };
        match next {
            None => {
                self.finished = true;
                self.next = None;
            }
            Some(_) if self.empty_run > MAX_EMPTY_PAGES => {
                self.finished = true;
                let problem = format!("{} pages in a row had no item but named a next page; the listing was stopped", self.empty_run);
                return Err(ApiError::BadResponse { path: path.to_string(), problem });
            }
            Some(token) => {
                if !self.seen.insert(token.clone()) {
                    self.finished = true;
                    return Err(ApiError::RepeatedPageToken { path: path.to_string(), page: self.pages });
                }
                self.next = Some(token);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &[u8], fields: &[&str]) -> Result<Page, String> {
        Page::decode(body.to_vec(), Some("runs"), fields)
    }

    #[test]
    fn a_single_object_is_a_page_of_one() {
        let p = Page::decode(br#"{"name":"r","owner":"o"}"#.to_vec(), None, &["owner"]).unwrap();
        assert_eq!((p.len(), p.field(0, 0)), (1, Some(r#""o""#)));
        assert!(p.next_page_token.is_none());
        assert!(Page::decode(b"[]".to_vec(), None, &[]).is_err());
    }

    #[test]
    fn decodes_every_end_of_listing() {
        let p = decode(b"{}", &[]).unwrap();
        assert!(p.is_empty() && p.next_page_token.is_none());
        let p = decode(br#"{"runs":[{"a":1}],"next_page_token":""}"#, &[]).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p.next_page_token.is_none());
        let p = decode(br#"{"runs":[],"next_page_token":"t2","extra":{}}"#, &[]).unwrap();
        assert_eq!(p.next_page_token.as_deref(), Some("t2"));
        let p = decode(br#"{"runs":null,"next_page_token":null}"#, &[]).unwrap();
        assert!(p.is_empty() && p.next_page_token.is_none());
    }

    #[test]
    fn finds_wanted_fields_and_skips_the_rest() {
        let body = br#"{"runs":[{"b":"x\"y","a":1,"c":{"d":[1,2]}},{"c":null,"z":true},{}],"next_page_token":"n"}"#;
        let p = decode(body, &["a", "b", "c"]).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p.field(0, 0), p.field(0, 1), p.field(0, 2)), (Some("1"), Some(r#""x\"y""#), Some(r#"{"d":[1,2]}"#)));
        assert_eq!((p.field(1, 0), p.field(1, 2)), (None, Some("null")));
        assert_eq!(p.field(2, 1), None);
        // Counting needs no field at all.
        assert_eq!(decode(body, &[]).unwrap().len(), 3);
    }

    #[test]
    fn rejects_bodies_that_are_not_pages() {
        assert!(decode(b"<html>", &[]).unwrap_err().contains("body starts with"));
        assert!(decode(b"[]", &[]).is_err());
        assert!(decode(br#"{"runs":{}}"#, &[]).is_err());
        assert!(decode(br#"{"runs":[1]}"#, &[]).is_err());
        assert!(decode(br#"{"runs":[],"next_page_token":5}"#, &[]).unwrap_err().contains("not a string"));
        assert!(decode(br#"{"runs":[{"a":"#, &["a"]).is_err());
        assert!(decode(br#"{"runs":[]} trailing"#, &[]).is_err());
    }

    #[test]
    fn a_repeated_token_stops_the_cursor_with_an_error() {
        let mut c = Cursor::new();
        assert_eq!(c.next_request(), Some(None));
        c.advance(Some("a".into()), 1, "/p").unwrap();
        assert_eq!(c.next_request(), Some(Some("a")));
        c.advance(Some("b".into()), 1, "/p").unwrap();
        assert!(matches!(c.advance(Some("a".into()), 1, "/p"), Err(ApiError::RepeatedPageToken { page: 3, .. })));
        assert_eq!(c.next_request(), None);
        let mut c = Cursor::new();
        c.advance(None, 1, "/p").unwrap();
        assert_eq!(c.next_request(), None);
        assert_eq!(c.pages(), 1);
        // Empty pages with ever new tokens: stopped after MAX_EMPTY_PAGES of them.
        let mut c = Cursor::new();
        let mut sent = 0;
        while c.next_request().is_some() && sent < 1000 {
            sent += 1;
            if c.advance(Some(format!("t{sent}")), 0, "/p").is_err() {
                break;
            }
        }
        assert_eq!(sent, MAX_EMPTY_PAGES + 1);
        assert_eq!(c.next_request(), None);
    }
}
