//! One page of a list response, and the cursor that follows `next_page_token` to the end.

use super::error::ApiError;
use serde_json::Value;
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    /// `None` at the end: the token was absent, null or `""`.
    pub next_page_token: Option<String>,
}

impl Page {
    /// Decodes `{"<list_key>": [...], "next_page_token": "..."}`; both keys may be missing
    /// (`{}` is an empty result).
    pub fn decode(body: &[u8], list_key: &str) -> Result<Page, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            let start = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            format!("{e} (body starts with {start:?}, {} bytes)", body.len())
        })?;
        let Value::Object(mut map) = value else {
            return Err(format!("expected a JSON object, got {}", crate::convert::json_type(&value)));
        };
        let items = match map.remove(list_key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(format!("\"{list_key}\" is {}, not an array", crate::convert::json_type(&other))),
        };
        let next_page_token = match map.remove("next_page_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(format!("\"next_page_token\" is {}, not a string", crate::convert::json_type(&other))),
        };
        Ok(Page { items, next_page_token })
    }
}

/// Follows the page tokens of one listing. A token seen before is an error: following it would
/// repeat rows or loop for ever.
#[derive(Debug, Default)]
pub struct Cursor {
    next: Option<String>,
    seen: HashSet<String>,
    pages: u32,
    finished: bool,
}

impl Cursor {
    pub fn new() -> Self {
        Cursor::default()
    }

    /// The token for the next request (`None` for the first page), or `None` when finished.
    pub fn next_request(&self) -> Option<Option<&str>> {
        (!self.finished).then_some(self.next.as_deref())
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Records the token a page named; fails on a token already followed.
    pub fn advance(&mut self, next: Option<String>, path: &str) -> Result<(), ApiError> {
        self.pages += 1;
        match next {
            None => {
                self.finished = true;
                self.next = None;
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

    #[test]
    fn decodes_every_end_of_listing() {
        let p = Page::decode(b"{}", "runs").unwrap();
        assert!(p.items.is_empty() && p.next_page_token.is_none());
        let p = Page::decode(br#"{"runs":[{"a":1}],"next_page_token":""}"#, "runs").unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(p.next_page_token.is_none());
        let p = Page::decode(br#"{"runs":[],"next_page_token":"t2","extra":{}}"#, "runs").unwrap();
        assert_eq!(p.next_page_token.as_deref(), Some("t2"));
    }

    #[test]
    fn rejects_bodies_that_are_not_pages() {
        assert!(Page::decode(b"<html>", "runs").unwrap_err().contains("body starts with"));
        assert!(Page::decode(b"[]", "runs").unwrap_err().contains("array"));
        assert!(Page::decode(br#"{"runs":{}}"#, "runs").is_err());
        assert!(Page::decode(br#"{"runs":[],"next_page_token":5}"#, "runs").is_err());
        assert!(Page::decode(br#"{"runs":[{"a":"#, "runs").is_err());
    }

    #[test]
    fn a_repeated_token_stops_the_cursor_with_an_error() {
        let mut c = Cursor::new();
        assert_eq!(c.next_request(), Some(None));
        c.advance(Some("a".into()), "/p").unwrap();
        assert_eq!(c.next_request(), Some(Some("a")));
        c.advance(Some("b".into()), "/p").unwrap();
        assert!(matches!(c.advance(Some("a".into()), "/p"), Err(ApiError::RepeatedPageToken { page: 3, .. })));
        assert_eq!(c.next_request(), None);
        let mut c = Cursor::new();
        c.advance(None, "/p").unwrap();
        assert_eq!(c.next_request(), None);
        assert_eq!(c.pages(), 1);
    }
}
