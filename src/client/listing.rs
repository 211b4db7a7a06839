//! Streams the items of a set of listings. Each listing (one [`Target`]) is followed by a task on
//! the backend's runtime, so several listings are in flight at once (at most `max_in_flight`
//! requests), and rows are handed out as pages arrive.
//!
//! When the next page is asked for depends on the query: a scan under a LIMIT asks once half of
//! the current page has been consumed, so it requests only the pages it needs; any other scan
//! prefetches, requesting the next page as soon as one arrives, so the network and the decoding
//! overlap with Postgres working on rows. Memory is bounded either way: at most `max_in_flight`
//! pages wait in the channel, plus those being fetched, plus the one being read.

use super::error::ApiError;
use super::pages::{self, Cursor, Page};
use bytes::Bytes;
use super::request::Target;
use super::runtime::{block_on, block_on_local, runtime, Interrupts};
use super::{ApiClient, RequestStats};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify, Semaphore};

/// What a scan did, for EXPLAIN ANALYZE.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub retries: u64,
    pub pages: u64,
    pub items: u64,
    pub bytes: u64,
    /// Listings answered from the scan's own cache of earlier listings.
    pub cache_hits: u64,
    /// Pages answered by the response cache (server option cache_ttl).
    pub response_cache_hits: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.requests += o.requests;
        self.retries += o.retries;
        self.pages += o.pages;
        self.items += o.items;
        self.bytes += o.bytes;
        self.cache_hits += o.cache_hits;
        self.response_cache_hits += o.response_cache_hits;
    }
}

pub type Items = Arc<Page>;

/// How listings are fetched.
#[derive(Clone)]
pub struct FetchConfig {
    pub client: ApiClient,
    /// Request each next page as soon as the previous one arrives (no LIMIT above the scan).
    pub prefetch: bool,
    pub list_key: &'static str,
    /// The fields of each item the scan reads; the others are skipped while decoding.
    pub fields: Arc<[&'static str]>,
    pub max_in_flight: usize,
}

enum Event {
    Page { target: usize, page: Page, last: bool, cost: RequestStats },
    Failed { error: ApiError, cost: RequestStats },
}

struct Current {
    target: usize,
    items: Items,
    pos: usize,
    /// The listing's next page has been asked for (or there is none).
    asked: bool,
}

/// Pages of earlier listings in the same execution, by first-page URL, so that a nested loop
/// meeting the same outer value again does not fetch it again. Bounded by response bytes.
#[derive(Default)]
pub struct ListingCache {
    complete: HashMap<String, Vec<Items>>,
    bytes: u64,
}

/// The most response bytes a scan keeps for repeated listings.
pub const CACHE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

pub struct Listing {
    targets: Vec<Target>,
    rx: mpsc::Receiver<Event>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Per target: wakes its task to fetch the next page.
    asks: Vec<Arc<Notify>>,
    /// Pages from the cache, served before anything fetched.
    replay: VecDeque<(usize, Items)>,
    current: Option<Current>,
    /// Listings still being fetched.
    unfinished: usize,
    /// Pages seen so far per target, while they may still go into the cache.
    recording: Option<HashMap<usize, (Vec<Items>, u64)>>,
    pub stats: Stats,
    /// A lone listing's first page is fetched on the backend's own thread (no hand-off: most
    /// queries read one page); its task is started with the page after it.
    first_here: Option<usize>,
    config: FetchConfig,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Event>,
}

impl Listing {
    /// Starts following `targets`; those whose pages are in `cache` are replayed from it.
    pub fn start(targets: Vec<Target>, config: &FetchConfig, cache: Option<&ListingCache>) -> Listing {
        let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        // Room for one waiting page per listing in flight; senders wait beyond that.
        let (tx, rx) = mpsc::channel(config.max_in_flight.max(1));
        let lone = targets.len() == 1;
        let mut listing = Listing {
            asks: (0..targets.len()).map(|_| Arc::new(Notify::new())).collect(),
            targets,
            rx,
            tasks: Vec::new(),
            replay: VecDeque::new(),
            current: None,
            unfinished: 0,
            recording: cache.map(|_| HashMap::new()),
            stats: Stats::default(),
            first_here: None,
            config: config.clone(),
            slots,
            tx,
        };
        for i in 0..listing.targets.len() {
            if let Some(pages) = cache.and_then(|c| c.complete.get(listing.targets[i].url.as_str())) {
                listing.stats.cache_hits += 1;
                listing.replay.extend(pages.iter().map(|p| (i, p.clone())));
                continue;
            }
            listing.unfinished += 1;
            if lone {
                listing.first_here = Some(i);
            } else {
                listing.spawn(i, Cursor::new(), false);
            }
        }
        listing
    }

    /// Starts the task that follows listing `i` from `cursor` (waiting to be asked first when
    /// `wait_first` and the scan does not prefetch).
    fn spawn(&mut self, i: usize, cursor: Cursor, wait_first: bool) {
        let _guard = runtime().enter();
        let ask = (!self.config.prefetch).then(|| self.asks[i].clone());
        let task = follow(i, self.targets[i].clone(), self.config.clone(), self.slots.clone(), self.tx.clone(), ask, cursor, wait_first);
        self.tasks.push(tokio::spawn(task));
    }

    /// Fetches and decodes the first page of listing `i` on this thread.
    fn first_page_here(&mut self, i: usize, interrupts: &dyn Interrupts) -> Result<(), ApiError> {
        let target = self.targets[i].clone();
        let url = target.page_url(None);
        let path = format!("GET {}", url.path());
        let mut cost = RequestStats::default();
        let client = self.config.client.local();
        let fetched = block_on_local(client.fetch_raw(&target.workspace, url, &mut cost), interrupts);
        self.count(cost);
        let mut page = decode(&target, &self.config, found(&target, fetched)?, &path)?;
        let mut cursor = Cursor::new();
        cursor.advance(page.next_page_token.take(), &path)?;
        self.stats.pages += 1;
        let items = Arc::new(page);
        self.record(i, &items, cost.bytes);
        let last = cursor.next_request().is_none();
        if last {
            self.unfinished -= 1;
        } else {
            self.spawn(i, cursor, true);
        }
        self.current = Some(Current { target: i, items, pos: 0, asked: last });
        Ok(())
    }

    /// The next item (a page and an index into it) and the listing it came from (its index and
    /// target); `None` when every listing is finished.
    pub fn next_item(&mut self, interrupts: &dyn Interrupts) -> Result<Option<(&Page, usize, usize, &Target)>, ApiError> {
        loop {
            if let Some(cur) = &mut self.current {
                if cur.pos < cur.items.len() {
                    cur.pos += 1;
                    if !cur.asked && cur.pos * 2 >= cur.items.len() {
                        cur.asked = true;
                        self.asks[cur.target].notify_one();
                    }
                    self.stats.items += 1;
                    let cur = self.current.as_ref().expect("checked above");
                    return Ok(Some((&cur.items, cur.pos - 1, cur.target, &self.targets[cur.target])));
                }
                if !cur.asked {
                    self.asks[cur.target].notify_one();
                }
                self.current = None;
            }
            if let Some((target, items)) = self.replay.pop_front() {
                self.current = Some(Current { target, items, pos: 0, asked: true });
                continue;
            }
            if self.unfinished == 0 {
                return Ok(None);
            }
            if let Some(i) = self.first_here.take() {
                if let Err(e) = self.first_page_here(i, interrupts) {
                    self.finish();
                    return Err(e);
                }
                continue;
            }
            match block_on(self.rx.recv(), interrupts) {
                Some(Event::Page { target, page, last, cost }) => {
                    self.count(cost);
                    self.stats.pages += 1;
                    let items = Arc::new(page);
                    self.record(target, &items, cost.bytes);
                    if last {
                        self.unfinished -= 1;
                    }
                    self.current = Some(Current { target, items, pos: 0, asked: last });
                }
                Some(Event::Failed { error, cost }) => {
                    self.count(cost);
                    self.finish();
                    return Err(error);
                }
                None => {
                    return Err(ApiError::BadResponse { path: String::new(), problem: "a listing stopped without finishing".into() });
                }
            }
        }
    }

    fn count(&mut self, cost: RequestStats) {
        self.stats.requests += cost.requests;
        self.stats.response_cache_hits += cost.cache_hits;
        self.stats.retries += cost.retries;
        self.stats.bytes += cost.bytes;
    }

    fn record(&mut self, target: usize, items: &Items, bytes: u64) {
        if let Some(rec) = &mut self.recording {
            let entry = rec.entry(target).or_default();
            entry.0.push(items.clone());
            entry.1 += bytes;
        }
    }

    /// Moves the listings read to the end into `cache`, within its byte limit.
    pub fn save_into(&mut self, cache: &mut ListingCache) {
        let Some(rec) = self.recording.take() else { return };
        let finished_all = self.unfinished == 0 && self.current.as_ref().is_none_or(|c| c.pos == c.items.len());
        if !finished_all {
            return;
        }
        for (target, (pages, bytes)) in rec {
            if cache.bytes + bytes > CACHE_LIMIT_BYTES {
                continue;
            }
            cache.bytes += bytes;
            cache.complete.insert(self.targets[target].url.to_string(), pages);
        }
    }

    /// Stops every request in flight and drops what is buffered.
    pub fn finish(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.unfinished = 0;
        self.replay.clear();
        self.current = None;
        self.recording = None;
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Follows one listing to its end, sending each page. With `ask`, waits to be asked before
/// each next page; without, requests the next page before decoding the current one (when a
/// quick scan finds its token), so the next response travels while this page is decoded.
#[allow(clippy::too_many_arguments)]
async fn follow(
    index: usize,
    target: Target,
    config: FetchConfig,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Event>,
    ask: Option<Arc<Notify>>,
    mut cursor: Cursor,
    wait_first: bool,
) {
    if let (true, Some(ask)) = (wait_first, &ask) {
        ask.notified().await;
    }
    let mut ahead: Option<(String, AbortOnDrop)> = None;
    while let Some(token) = cursor.next_request().map(|t| t.map(str::to_string)) {
        let url = target.page_url(token.as_deref());
        let path = format!("GET {}", url.path());
        let (fetched, cost) = match ahead.take() {
            Some((_, mut task)) => match (&mut task.0).await {
                Ok(done) => done,
                Err(_) => (Err(ApiError::BadResponse { path: path.clone(), problem: "the request for this page stopped".into() }), RequestStats::default()),
            },
            None => fetch(&config, &slots, &target, url).await,
        };
        let body = match found(&target, fetched) {
            Ok(body) => body,
            Err(error) => {
                let _ = tx.send(Event::Failed { error, cost }).await;
                return;
            }
        };
        if let (true, Some(body)) = (ask.is_none() && !target.single, &body) {
            if let Some(next) = pages::quick_next_token(body) {
                if !cursor.has_seen(&next) {
                    let task = tokio::spawn(fetch_owned(config.clone(), slots.clone(), target.clone(), target.page_url(Some(&next))));
                    ahead = Some((next, AbortOnDrop(task)));
                    // Let the request leave before this thread turns to decoding.
                    tokio::task::yield_now().await;
                }
            }
        }
        let event = match decode(&target, &config, body, &path) {
            Ok(mut page) => {
                let next = page.next_page_token.take();
                let consistent = ahead.as_ref().is_none_or(|(t, _)| Some(t) == next.as_ref());
                match (consistent, cursor.advance(next, &path)) {
                    (true, Ok(())) => Event::Page { target: index, page, last: cursor.next_request().is_none(), cost },
                    (false, _) => Event::Failed { error: ApiError::BadResponse { path, problem: "the page's next_page_token is ambiguous".into() }, cost },
                    (true, Err(error)) => Event::Failed { error, cost },
                }
            }
            Err(error) => Event::Failed { error, cost },
        };
        let stop = !matches!(event, Event::Page { last: false, .. });
        if tx.send(event).await.is_err() || stop {
            return;
        }
        if let Some(ask) = &ask {
            ask.notified().await;
        }
    }
}

/// A fetched body, or `None` for a single object that does not exist (no row, not an error).
fn found(target: &Target, fetched: Result<Bytes, ApiError>) -> Result<Option<Bytes>, ApiError> {
    match fetched {
        Ok(body) => Ok(Some(body)),
        Err(e) if target.single && e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Decodes what [`found`] returned into a page of `target`'s items.
fn decode(target: &Target, config: &FetchConfig, body: Option<Bytes>, path: &str) -> Result<Page, ApiError> {
    match body {
        Some(body) => Page::decode(body, (!target.single).then_some(config.list_key), &config.fields)
            .map_err(|problem| ApiError::BadResponse { path: path.to_string(), problem }),
        None => Ok(Page::default()),
    }
}

/// A spawned request that is cancelled when its listing is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<(Result<Bytes, ApiError>, RequestStats)>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One page's body; a request slot is held while it is fetched.
async fn fetch(config: &FetchConfig, slots: &Semaphore, target: &Target, url: url::Url) -> (Result<Bytes, ApiError>, RequestStats) {
    let mut cost = RequestStats::default();
    let Ok(_slot) = slots.acquire().await else {
        return (Err(ApiError::BadResponse { path: url.path().to_string(), problem: "the listing was closed".into() }), cost);
    };
    let result = config.client.fetch_raw(&target.workspace, url, &mut cost).await;
    (result, cost)
}

async fn fetch_owned(config: FetchConfig, slots: Arc<Semaphore>, target: Target, url: url::Url) -> (Result<Bytes, ApiError>, RequestStats) {
    fetch(&config, &slots, &target, url).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::runtime::NoInterrupts;

    #[test]
    fn empty_target_lists_finish_at_once() {
        let client = ApiClient::new(crate::client::auth::Auth::Token(crate::options::Secret::new("t".into())), &Default::default()).unwrap();
        let config = FetchConfig { client, prefetch: true, list_key: "runs", fields: Arc::from(Vec::new()), max_in_flight: 2 };
        let mut l = Listing::start(Vec::new(), &config, None);
        assert!(l.next_item(&NoInterrupts).unwrap().is_none());
    }
}
