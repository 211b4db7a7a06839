//! Streams the items of a scan's listings. Each open listing is followed by one task on the I/O
//! thread, a loop that fetches and decodes its pages in order and sends them to the backend,
//! which hands out their items as pages arrive.
//!
//! At most `max_in_flight` listings are open at once, and the next listing starts only when one
//! finishes; one page waits in the channel, and each task holds at most one decoded page and
//! one request: memory is bounded, however many listings the scan has. (A deeper channel was
//! measured: it bought no speed and cost a page of memory per place.) When a task fetches its next page depends on the
//! query: under a LIMIT it waits to be asked (once half of the current page has been consumed),
//! so only the pages needed are requested; otherwise it runs ahead, requesting the next page
//! before decoding the current one, so the network and the decoding overlap with Postgres working
//! on rows.

use super::error::ApiError;
use super::pages::{self, Cursor, Page};
use bytes::Bytes;
use super::request::Target;
use super::runtime::{runtime, wait, Interrupts};
use super::source::ListingSource;
use super::{ApiClient, Stats};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

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

/// Pages of listings finished earlier in the same execution, by first-page URL, so that a
/// nested loop meeting the same outer value again does not fetch it again. Bounded by response
/// bytes: a listing is recorded only while it fits in what is left.
#[derive(Default)]
pub struct ListingCache {
    complete: HashMap<String, Vec<Arc<Page>>>,
    bytes: u64,
}

/// The most memory a scan keeps for repeated listings, recorded or being recorded: their
/// pages (bodies and field positions) and entries (URL and bookkeeping).
pub const CACHE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

/// What a cache entry costs besides its pages and URL.
const ENTRY_OVERHEAD: u64 = 256;

/// What a listing's task sends: each page in order (the last one says so), or the error that
/// ends the listing. `open` is the listing's id.
enum Event {
    Page { open: usize, page: Page, last: bool, cost: Stats },
    Failed { error: ApiError, cost: Stats },
}

/// A task on the I/O thread, stopped when this is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One listing being followed.
struct Open {
    id: usize,
    target: Arc<Target>,
    /// The task following it.
    _task: AbortOnDrop<()>,
    /// Under a LIMIT: each notification lets the task fetch one more page.
    ask: Option<Arc<Notify>>,
    /// Its last page has arrived.
    done: bool,
    /// Its pages so far and their bytes, while it may still go into the listing cache.
    recording: Option<(Vec<Arc<Page>>, u64)>,
}

struct Current {
    /// The id of the listing it came from.
    open: usize,
    page: Arc<Page>,
    pos: usize,
    /// Its listing's next page was asked for (under a LIMIT, once per page).
    asked: bool,
}

pub struct Listing {
    source: ListingSource,
    /// Listings being followed.
    open: Vec<Open>,
    /// Listings opened so far: the next one's id.
    opened: usize,
    /// Where the listings' tasks send their pages (kept, so receiving never sees a closed channel).
    sender: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    /// Pages of listings answered from the cache, served before anything fetched.
    replay: VecDeque<(Arc<Target>, Arc<Page>)>,
    current: Option<Current>,
    replaying: Option<(Arc<Target>, Arc<Page>, usize)>,
    cache: Option<ListingCache>,
    /// Bytes of the listings being recorded for the cache.
    recording_bytes: u64,
    stats: Stats,
    config: FetchConfig,
}

impl Listing {
    /// Prepares to follow `targets`; nothing is requested before the first item is asked for.
    /// With `cache`, listings found in it are replayed, and finished ones are added to it.
    pub fn new(source: ListingSource, config: &FetchConfig, cache: Option<ListingCache>) -> Listing {
        let (sender, events) = mpsc::channel(1);
        Listing {
            source,
            open: Vec::new(),
            opened: 0,
            sender,
            events,
            replay: VecDeque::new(),
            current: None,
            replaying: None,
            cache,
            recording_bytes: 0,
            stats: Stats::default(),
            config: config.clone(),
        }
    }

    /// What the listing did so far, its parents' requests included.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s += self.source.parent_stats();
        s
    }

    /// The listings' source (what a fan-out did with its parent items).
    pub fn source(&self) -> &ListingSource {
        &self.source
    }

    /// What the backend should be told since the last call (items that could not be followed).
    pub fn take_notices(&mut self) -> Vec<String> {
        self.source.take_notices()
    }

    /// Stops every request in flight and hands back the listing cache.
    pub fn finish(mut self) -> Option<ListingCache> {
        self.open.clear();
        self.cache.take()
    }

    /// Where open listing `id` is (a page's listing stays open while it is read).
    fn place(&self, id: usize) -> usize {
        self.open.iter().position(|o| o.id == id).expect("a listing asked for is open")
    }

    /// The next item: its page, its index in the page, and the listing it came from; `None`
    /// when every listing is finished.
    pub fn next_item(&mut self, interrupts: &dyn Interrupts) -> Result<Option<(&Page, usize, &Target)>, ApiError> {
        loop {
            if let Some((_, page, pos)) = &mut self.replaying {
                if *pos < page.len() {
                    *pos += 1;
                    self.stats.items += 1;
                    let (target, page, pos) = self.replaying.as_ref().expect("checked above");
                    return Ok(Some((page, *pos - 1, target)));
                }
                self.replaying = None;
            }
            if let Some(cur) = &mut self.current {
                if cur.pos < cur.page.len() {
                    cur.pos += 1;
                    // Under a LIMIT, the next page is asked for once half of this one is read.
                    if cur.pos * 2 >= cur.page.len() && !cur.asked {
                        cur.asked = true;
                        let id = cur.open;
                        self.ask(id);
                    }
                    self.stats.items += 1;
                    let cur = self.current.as_ref().expect("checked above");
                    let target = &self.open[self.place(cur.open)].target;
                    return Ok(Some((&cur.page, cur.pos - 1, target)));
                }
                let (id, asked) = (cur.open, cur.asked);
                self.current = None;
                if !asked {
                    self.ask(id);
                }
                self.open.retain(|o| !(o.id == id && o.done));
            }
            if let Some((target, page)) = self.replay.pop_front() {
                self.replaying = Some((target, page, 0));
                continue;
            }
            self.start_listings(interrupts)?;
            if !self.replay.is_empty() {
                continue;
            }
            if self.open.is_empty() {
                return Ok(None);
            }
            let event = wait(self.events.recv(), interrupts).expect("the listing keeps a sender");
            match event {
                Event::Page { open, page, last, cost } => {
                    self.stats += cost;
                    self.arrived(open, page, last);
                }
                Event::Failed { error, cost } => {
                    self.stats += cost;
                    self.open.clear();
                    return Err(error);
                }
            }
        }
    }

    /// Opens listings while there is room, and starts the first page of each (or replays it
    /// from the cache).
    fn start_listings(&mut self, interrupts: &dyn Interrupts) -> Result<(), ApiError> {
        let max = if self.source.per_parent() && !self.config.prefetch { 1 } else { self.config.max_in_flight.max(1) };
        while self.open.len() < max {
            let Some(target) = self.source.next(interrupts)? else { break };
            let target = Arc::new(target);
            if let Some(pages) = self.cache.as_ref().and_then(|c| c.complete.get(target.url.as_str())) {
                self.stats.listing_cache_hits += 1;
                self.replay.extend(pages.iter().map(|p| (target.clone(), p.clone())));
                continue;
            }
            let recording = self.start_recording(&target);
            let id = self.opened;
            self.opened += 1;
            let ask = (!self.config.prefetch).then(|| Arc::new(Notify::new()));
            let task = spawn_follow(id, target.clone(), self.config.clone(), self.sender.clone(), ask.clone());
            self.open.push(Open { id, target, _task: task, ask, done: false, recording });
        }
        Ok(())
    }

    /// A page of listing `id` arrived.
    fn arrived(&mut self, id: usize, page: Page, last: bool) {
        self.stats.pages += 1;
        let page = Arc::new(page);
        self.record(id, &page);
        if last {
            let place = self.place(id);
            self.open[place].done = true;
            self.save(id);
        }
        self.current = Some(Current { open: id, page, pos: 0, asked: false });
    }

    /// Lets listing `id`'s task fetch its next page (under a LIMIT; otherwise it runs ahead).
    fn ask(&mut self, id: usize) {
        if let Some(ask) = &self.open[self.place(id)].ask {
            ask.notify_one();
        }
    }

    /// Moves listing `id`, all of whose pages have arrived, into the cache if it was recorded
    /// (a scan stopped by a LIMIT may never read it to the end).
    fn save(&mut self, id: usize) {
        let place = self.place(id);
        let open = &mut self.open[place];
        if let (Some((pages, bytes)), Some(cache)) = (open.recording.take(), &mut self.cache) {
            self.recording_bytes -= bytes;
            cache.bytes += bytes;
            cache.complete.insert(open.target.url.to_string(), pages);
        }
    }

    /// The recording of a new listing, if the cache is kept and has room for its entry.
    fn start_recording(&mut self, target: &Target) -> Option<(Vec<Arc<Page>>, u64)> {
        let cache = self.cache.as_ref()?;
        let entry = target.url.as_str().len() as u64 + ENTRY_OVERHEAD;
        if cache.bytes + self.recording_bytes + entry > CACHE_LIMIT_BYTES {
            return None;
        }
        self.recording_bytes += entry;
        Some((Vec::new(), entry))
    }

    /// Keeps `page` for the listing cache while the listing still fits in what is left of it.
    fn record(&mut self, id: usize, page: &Arc<Page>) {
        let place = self.place(id);
        let Some(cache) = &self.cache else { return };
        let open = &mut self.open[place];
        let Some((pages, recorded)) = &mut open.recording else { return };
        let bytes = page.memory() as u64;
        if cache.bytes + self.recording_bytes + bytes > CACHE_LIMIT_BYTES {
            // Too large to remember: forget what was kept of it.
            self.recording_bytes -= *recorded;
            open.recording = None;
            return;
        }
        pages.push(page.clone());
        *recorded += bytes;
        self.recording_bytes += bytes;
    }
}

/// Starts the task that follows listing `id`, and the one that reports it if it panics (a bug:
/// the scan then ends with an error instead of waiting for a page that never comes).
fn spawn_follow(id: usize, target: Arc<Target>, config: FetchConfig, sender: mpsc::Sender<Event>, ask: Option<Arc<Notify>>) -> AbortOnDrop<()> {
    let report = sender.clone();
    let follow = AbortOnDrop(runtime().spawn(follow(id, target, config, sender, ask)));
    AbortOnDrop(runtime().spawn(async move {
        let mut follow = follow;
        if matches!((&mut follow.0).await, Err(e) if e.is_panic()) {
            let _ = report.send(Event::Failed { error: ApiError::Internal { problem: "a request task failed".into() }, cost: Stats::default() }).await;
        }
    }))
}

/// Follows one listing to its end, sending each page. With `ask`, waits to be asked before each
/// next page; without, requests the next page before decoding the current one (its token found
/// by `pages::quick_next_token`), so the next response travels while this page is decoded: on
/// loopback that halves the time of a `count(*)` over many pages (measured by the benchmark).
/// The full decode decides: a page asked for with a quick token that is not the page's is
/// dropped, and the right one asked for.
async fn follow(id: usize, target: Arc<Target>, config: FetchConfig, sender: mpsc::Sender<Event>, ask: Option<Arc<Notify>>) {
    let mut cursor = Cursor::new();
    let mut ahead: Option<(String, AbortOnDrop<(Result<Bytes, ApiError>, Stats)>)> = None;
    while let Some(token) = cursor.next_request().map(|t| t.map(str::to_string)) {
        if let (Some(ask), Some(_)) = (&ask, &token) {
            ask.notified().await;
        }
        let url = target.page_url(token.as_deref());
        let path = super::error::excerpt(&format!("GET {}", url.path()), super::error::PATH_SHOWN);
        let (fetched, cost) = match ahead.take() {
            Some((_, mut task)) => (&mut task.0).await.unwrap_or_else(|_| (Err(ApiError::Internal { problem: "a request task failed".into() }), Stats::default())),
            None => fetch_body(config.client.clone(), target.clone(), url).await,
        };
        let body = match fetched {
            Ok(body) => body,
            // A single object that does not exist is no row, not an error; nor is an item of a
            // parent listing that went away since it was listed. Only the service's own "does
            // not exist" on a first page means that: any other 404 (a wrong endpoint, a proxy's
            // page, one on a later page) is an error, never a shorter result.
            Err(e) if (target.single || target.gone_is_empty) && cursor.pages() == 0 && e.is_gone() => {
                let _ = sender.send(Event::Page { open: id, page: Page::default(), last: true, cost }).await;
                return;
            }
            Err(error) => {
                let _ = sender.send(Event::Failed { error, cost }).await;
                return;
            }
        };
        if ask.is_none() && !target.single {
            // A page naming itself as the next one is an error the cursor reports: no request.
            if let Some(next) = pages::quick_next_token(&body).filter(|n| Some(n) != token.as_ref()) {
                let url = target.page_url(Some(&next));
                ahead = Some((next, AbortOnDrop(tokio::spawn(fetch_body(config.client.clone(), target.clone(), url)))));
                // Let the request leave before this thread turns to decoding.
                tokio::task::yield_now().await;
            }
        }
        let event = match Page::decode(body, (!target.single).then_some(config.list_key), &config.fields) {
            Ok(mut page) => {
                let next = page.next_page_token.take();
                // The full decode decides: a page asked for with another token is dropped.
                if ahead.as_ref().is_some_and(|(t, _)| Some(t) != next.as_ref()) {
                    ahead = None;
                }
                match cursor.advance(next, page.len(), &path) {
                    Ok(()) => Event::Page { open: id, page, last: cursor.next_request().is_none(), cost },
                    Err(error) => Event::Failed { error, cost },
                }
            }
            Err(problem) => Event::Failed { error: ApiError::BadResponse { path, problem }, cost },
        };
        let stop = !matches!(event, Event::Page { last: false, .. });
        if sender.send(event).await.is_err() || stop {
            return;
        }
    }
}

/// One page's body, and what getting it cost.
async fn fetch_body(client: ApiClient, target: Arc<Target>, url: url::Url) -> (Result<Bytes, ApiError>, Stats) {
    let mut cost = Stats::default();
    let body = client.fetch_raw(&target.workspace, url, &mut cost).await;
    (body, cost)
}
