//! Streams the items of a set of listings, page by page as they are pulled: only one page is held
//! at a time, and the next page is requested only when the current one is used up.

use super::error::ApiError;
use super::pages::{Cursor, Page};
use super::request::Target;
use super::runtime::{block_on, Interrupts};
use crate::options::Secret;
use serde_json::Value;

/// What a scan did, for EXPLAIN ANALYZE.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub pages: u64,
    pub items: u64,
    pub bytes: u64,
}

pub struct Listing {
    targets: Vec<Target>,
    list_key: &'static str,
    token: Secret,
    /// Index of the target being read; `targets.len()` when all are done.
    current: usize,
    cursor: Cursor,
    page: std::vec::IntoIter<Value>,
    pub stats: Stats,
}

impl Listing {
    pub fn new(targets: Vec<Target>, list_key: &'static str, token: Secret) -> Self {
        Listing { targets, list_key, token, current: 0, cursor: Cursor::new(), page: Vec::new().into_iter(), stats: Stats::default() }
    }

    /// The next item and the listing it came from; `None` when every listing is finished.
    pub fn next_item(&mut self, interrupts: &dyn Interrupts) -> Result<Option<(Value, &Target)>, ApiError> {
        loop {
            if let Some(item) = self.page.next() {
                self.stats.items += 1;
                return Ok(Some((item, &self.targets[self.current])));
            }
            let Some(target) = self.targets.get(self.current) else { return Ok(None) };
            match self.cursor.next_request() {
                Some(token) => {
                    let url = target.page_url(token);
                    let path = url.path().to_string();
                    self.stats.requests += 1;
                    let page: Page = block_on(super::fetch_page(url, &self.token, self.list_key, &mut self.stats.bytes), interrupts)?;
                    self.stats.pages += 1;
                    self.cursor.advance(page.next_page_token, &path)?;
                    self.page = page.items.into_iter();
                }
                None => {
                    self.current += 1;
                    self.cursor = Cursor::new();
                }
            }
        }
    }

    /// Drops what is buffered; the listing yields nothing more.
    pub fn finish(&mut self) {
        self.current = self.targets.len();
        self.page = Vec::new().into_iter();
    }
}
