//! Streams the items of a scan's listings. Each open listing is followed by one task on the I/O
//! thread ([`super::follow`]), which reads its pages as they arrive and sends their items to the
//! backend in batches; the backend hands them out as rows.
//!
//! At most `max_in_flight` listings are open at once, and the next listing starts only when one
//! finishes; one batch waits in the channel, and each task holds at most one batch being built,
//! one network chunk and the start of the next page: memory is bounded, however many listings
//! the scan has and however large their pages. (A deeper channel was measured: it bought no
//! speed and cost a page of memory per place.) When a task fetches its next page depends on
//! the query: under a LIMIT it waits to be asked (once half of a page's last batch has been
//! consumed), so only the pages needed are requested; otherwise it runs ahead, requesting the
//! next page as soon as its token is known, so the network and the decoding overlap with
//! Postgres working on rows.

use super::error::ApiError;
use super::pages::Page;
use super::request::Target;
use super::runtime::{wait, Interrupts, Task};
use super::source::ListingSource;
use super::{ApiClient, Stats};
use crate::convert::prepare::RowRecipe;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

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
    /// How the items become the scan's rows, made on the I/O thread (`None`: a listing whose
    /// items are read by other code, such as a parent's).
    pub rows: Option<Arc<RowRecipe>>,
}

impl FetchConfig {
    /// Decodes a page (or batch) of this listing, and prepares its rows.
    pub(super) fn decode(&self, body: impl Into<bytes::Bytes>, list_key: Option<&str>) -> Result<Page, String> {
        let mut page = Page::decode(body, list_key, &self.fields)?;
        if let Some(recipe) = &self.rows {
            page.prepare(recipe);
        }
        Ok(page)
    }
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

/// What a listing's task sends: each batch of a page's items in order (`ends_page` on a page's
/// last batch, `last` on the listing's), or the error that ends the listing. `open` is the
/// listing's id.
pub(super) enum Event {
    Page {
        open: usize,
        page: Page,
        ends_page: bool,
        last: bool,
        cost: Stats,
    },
    /// The listing cannot be made and gives no rows (a deleted clean room): the backend is told.
    Unlistable {
        open: usize,
        notice: String,
        cost: Stats,
    },
    Failed {
        error: ApiError,
        cost: Stats,
    },
}

/// One listing being followed.
struct Open {
    id: usize,
    target: Arc<Target>,
    /// The task following it.
    _task: Task<()>,
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
    /// What the backend should be told of listings that could not be made.
    notices: Vec<String>,
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
            notices: Vec::new(),
        }
    }

    /// What the listing did so far, its parents' requests included.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s += self.source.parent_stats();
        s
    }

    /// What the backend should be told since the last call (items that could not be followed).
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut notices = self.source.take_notices();
        notices.append(&mut self.notices);
        notices
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
                Event::Page { open, page, ends_page, last, cost } => {
                    self.stats += cost;
                    self.arrived(open, page, ends_page, last);
                }
                Event::Unlistable { open, notice, cost } => {
                    self.stats += cost;
                    if self.notices.len() < super::source::MAX_NOTICES {
                        self.notices.push(notice);
                    }
                    self.arrived(open, Page::default(), true, true);
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

    /// A batch of listing `id` arrived.
    fn arrived(&mut self, id: usize, page: Page, ends_page: bool, last: bool) {
        let page = Arc::new(page);
        self.record(id, &page);
        if last {
            let place = self.place(id);
            self.open[place].done = true;
            self.save(id);
        }
        // Only a page's last batch may ask for the next page: the page's earlier batches are
        // on their way anyway.
        self.current = Some(Current { open: id, page, pos: 0, asked: !ends_page });
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
fn spawn_follow(id: usize, target: Arc<Target>, config: FetchConfig, sender: mpsc::Sender<Event>, ask: Option<Arc<Notify>>) -> Task<()> {
    let report = sender.clone();
    let mut follow = Task::spawn(super::follow::follow(id, target, config, sender, ask));
    Task::spawn(async move {
        if matches!(follow.finished().await, Err(e) if e.is_panic()) {
            let _ = report.send(Event::Failed { error: ApiError::task_failed(), cost: Stats::default() }).await;
        }
    })
}
