//! The task that follows one listing to its end, on the I/O thread: each page is read as its
//! bytes arrive, split into items ([`super::split`]), and handed to the backend in batches, so
//! a page of any size (a room's whole history in one page) streams in bounded memory and its
//! first rows arrive long before its end.
//!
//! A page whose body breaks off is asked for again (as the retry policy allows) and resumes
//! after the items already handed on, once the service has sent those same items again (a
//! hash of them is compared): a row is never handed on twice, nor skipped.

use super::body::PageBody;
use super::error::{ApiError, PATH_SHOWN};
use super::listing::{Event, FetchConfig};
use super::next_token::quick_next_token;
use super::pages::{Cursor, Page};
use super::request::Target;
use super::runtime::Task;
use super::split::{SplitError, Splitter};
use super::Stats;
use crate::text::excerpt;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Items are handed on in batches of about this many bytes; the first batch of a page as soon
/// as it has an item, so the first row does not wait for the rest of the page.
const BATCH_BYTES: usize = 256 * 1024;
/// A page up to this size is decoded whole, in one pass (the cheapest); a larger one is split
/// into its items as it arrives, so that its size never matters.
const WHOLE_BYTES: usize = 1024 * 1024;
/// What one read from the network gives at most, as a rule (a larger chunk only grows a buffer).
const CHUNK_BYTES: usize = 64 * 1024;
/// How much of the next page is read while the current one is still being handed on.
const AHEAD_BYTES: usize = 1024 * 1024;

/// The next page, requested before its turn: its token, and the task opening it.
type Ahead = (String, Task<(Result<PageBody, ApiError>, Stats)>);

/// Follows listing `id` to its end, sending each batch of items and the error that ends it, if
/// any. With `ask`, waits to be asked before each next page (a LIMIT may need no more);
/// without, requests the next page as soon as its token is known.
pub(super) async fn follow(id: usize, target: Arc<Target>, config: FetchConfig, sender: mpsc::Sender<Event>, ask: Option<Arc<Notify>>) {
    // A listing the query started at a page_token: that token counts as followed.
    let mut cursor = Cursor::starting_at(target.echo_value("page_token").filter(|t| !t.is_empty()));
    let mut ahead: Option<Ahead> = None;
    while let Some(token) = cursor.next_request().map(|t| t.map(str::to_string)) {
        if let (Some(ask), Some(_)) = (&ask, &token) {
            ask.notified().await;
        }
        let url = target.page_url(token.as_deref());
        let path = excerpt(&format!("GET {}", url.path()), PATH_SHOWN);
        let mut opened = match ahead.take() {
            Some((t, mut task)) if Some(&t) == token.as_ref() => {
                task.finished().await.unwrap_or_else(|_| (Err(ApiError::task_failed()), Stats::default()))
            }
            _ => open(&config, &target, url.clone()).await,
        };
        // A page read ahead whose answer broke off is asked for again, as any page is.
        if matches!(opened.0, Err(ApiError::Transport { .. })) {
            let (body, cost) = open(&config, &target, url.clone()).await;
            let mut total = opened.1;
            total += cost;
            opened = (body, total);
        }
        let mut reader = PageReader {
            config: &config,
            target: &target,
            sender: &sender,
            id,
            path,
            cost: opened.1,
            sent: 0,
            handed: DefaultHasher::new(),
            decoding: None,
        };
        // Without a LIMIT, the next page is asked for as soon as its token is read.
        let run_ahead = ask.is_none().then_some(&cursor);
        let read = reader.read(opened.0, url, cursor.pages() == 0, run_ahead, &mut ahead).await;
        let (batch, next, items) = match read {
            Ok(Some(done)) => done,
            // The listing ended here (a vanished item of a parent listing, or the backend is gone).
            Ok(None) => return,
            // A room whose state allows no listing (deleted): no rows, and the user is told.
            Err(error) if cursor.pages() == 0 && reader.sent == 0 && !target.single && error.is_invalid_state() => {
                let notice = unlistable_notice(&target, &error);
                let _ = sender.send(Event::Unlistable { open: id, notice, cost: reader.cost }).await;
                return;
            }
            Err(error) => {
                let _ = sender.send(Event::Failed { error, cost: reader.cost }).await;
                return;
            }
        };
        if ahead.as_ref().is_some_and(|(t, _)| Some(t) != next.as_ref()) {
            ahead = None;
        }
        let mut cost = std::mem::take(&mut reader.cost);
        cost.pages += 1;
        let event = match cursor.advance(next, items, &reader.path) {
            Ok(()) => Event::Page { open: id, page: batch, ends_page: true, last: cursor.next_request().is_none(), cost },
            Err(error) => Event::Failed { error, cost },
        };
        let stop = !matches!(event, Event::Page { last: false, .. });
        if sender.send(event).await.is_err() || stop {
            return;
        }
    }
}

/// What the user is told of a listing the room's state does not allow.
fn unlistable_notice(target: &Target, error: &ApiError) -> String {
    let room =
        target.echo_value("clean_room_name").map(|r| format!("clean room {:?}", excerpt(r, 64))).unwrap_or_else(|| "a clean room".into());
    let said = match error {
        ApiError::Status { message: Some(m), .. } => format!(" ({})", excerpt(m, 200)),
        _ => String::new(),
    };
    format!("{room} cannot be listed in its state, so it gives no rows{said}")
}

/// Opens a page, and what that cost.
async fn open(config: &FetchConfig, target: &Target, url: url::Url) -> (Result<PageBody, ApiError>, Stats) {
    let mut cost = Stats::default();
    let body = config.client.open_page(&target.workspace, url, &mut cost).await;
    (body, cost)
}

/// Starts the request of the page `token` names, reading the start of its answer.
fn request_ahead(config: &FetchConfig, target: &Arc<Target>, token: &str) -> Ahead {
    let (config, target, url) = (config.clone(), target.clone(), target.page_url(Some(token)));
    let task = Task::spawn(async move {
        let (body, mut cost) = open(&config, &target, url).await;
        let body = match body {
            Ok(mut body) => body.read_ahead(AHEAD_BYTES, &mut cost).await.map(|()| body),
            Err(e) => Err(e),
        };
        (body, cost)
    });
    (token.to_string(), task)
}

/// Reads one page of a listing, sending its items in batches.
struct PageReader<'a> {
    config: &'a FetchConfig,
    target: &'a Arc<Target>,
    sender: &'a mpsc::Sender<Event>,
    id: usize,
    path: String,
    /// What the page cost so far and was not sent with a batch.
    cost: Stats,
    /// Items of this page handed on, and a hash of their texts (to resume after a break).
    sent: usize,
    handed: DefaultHasher,
    /// A batch being decoded on a thread of its own while the page's next bytes are split,
    /// with what it cost; sent before the next one.
    decoding: Option<(JoinHandle<Result<Page, String>>, Stats)>,
}

impl PageReader<'_> {
    /// Reads the page from `opened` (asked for again at `url` if its body breaks off): its last
    /// batch, the next page's token and the page's number of items; `None` when the listing
    /// ends without them.
    async fn read(
        &mut self,
        mut opened: Result<PageBody, ApiError>,
        url: url::Url,
        first_page: bool,
        run_ahead: Option<&Cursor>,
        ahead: &mut Option<Ahead>,
    ) -> Result<Option<(Page, Option<String>, usize)>, ApiError> {
        let (mut retries, mut waited) = (0, Duration::ZERO);
        loop {
            let body = match opened {
                Ok(body) => body,
                // A single object that does not exist is no row; an item of a parent listing
                // that the service says went away since it was listed gives no rows. Only the
                // service's own "does not exist" before anything was read means that: any other
                // 404 is an error, never a shorter result.
                Err(e) if first_page && self.sent == 0 && (self.target.single || self.target.gone_is_empty) && e.is_gone() => {
                    return Ok(Some((Page::default(), None, 0)));
                }
                Err(e) => return Err(e),
            };
            let sent_before = self.sent;
            let outcome = if self.target.single { self.read_single(body).await } else { self.read_list(body, run_ahead, ahead).await };
            match outcome {
                Err(Broken::Off(e)) => {
                    // A reading that handed on new items made progress: its break starts the
                    // count of tries again.
                    if self.sent > sent_before {
                        (retries, waited) = (0, Duration::ZERO);
                    }
                    let wait = self.config.client.retry_wait(e, retries, waited)?;
                    tokio::time::sleep(wait).await;
                    (retries, waited) = (retries + 1, waited + wait);
                    self.cost.retries += 1;
                    let (body, cost) = open(self.config, self.target, url.clone()).await;
                    self.cost += cost;
                    opened = body;
                }
                Err(Broken::Fatal(e)) => return Err(e),
                Err(Broken::Closed) => return Ok(None),
                Ok(done) => return Ok(Some(done)),
            }
        }
    }

    /// A single object: the body is one item.
    async fn read_single(&mut self, body: PageBody) -> Result<(Page, Option<String>, usize), Broken> {
        let limit = self.config.client.max_value_bytes();
        let bytes = body.collect(limit, &mut self.cost).await.map_err(Broken::from_read)?;
        let page = self.config.decode(bytes, None).map_err(|problem| Broken::Fatal(self.bad(problem)))?;
        let items = page.len();
        Ok((page, None, items))
    }

    /// A list page. One of at most `WHOLE_BYTES` (a page of 100 runs) is decoded whole, in
    /// one pass; a larger one (a room's history in one page) is split as it arrives, and its
    /// batches before the last are sent from here.
    async fn read_list(
        &mut self,
        mut body: PageBody,
        run_ahead: Option<&Cursor>,
        ahead: &mut Option<Ahead>,
    ) -> Result<(Page, Option<String>, usize), Broken> {
        let limit = self.config.client.max_value_bytes();
        // Whole only when no item of it can be over the limit. The buffer is sized from the
        // announced length when there is one (never trusted beyond what it may hold).
        let whole = WHOLE_BYTES.min(limit);
        let mut start = Vec::with_capacity(body.announced().map_or(CHUNK_BYTES, |n| n.min(whole as u64 + 1) as usize));
        // A page read again after it broke off is split, to find where to resume.
        while self.sent == 0 && start.len() <= whole {
            match body.chunk(&mut self.cost).await.map_err(Broken::from_read)? {
                Some(chunk) => start.extend_from_slice(&chunk),
                None => return self.read_whole(start, body, run_ahead, ahead).await,
            }
        }
        let mut splitter = Splitter::new(self.config.list_key, limit);
        let mut batch = Batch::new(self.config.list_key);
        // Items seen in this reading of the page, and the hash of those already handed on.
        let (mut seen, mut replayed) = (0usize, DefaultHasher::new());
        let mut flushed = self.sent > 0;
        let mut start = (!start.is_empty()).then(|| bytes::Bytes::from(start));
        loop {
            let chunk = match start.take() {
                Some(start) => start,
                None => match body.chunk(&mut self.cost).await.map_err(Broken::from_read)? {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            splitter.feed(&chunk).map_err(|e| Broken::Fatal(self.split_error(e, limit)))?;
            for item in splitter.take_items() {
                if seen < self.sent {
                    replayed.write_u64(item_hash(&item));
                    seen += 1;
                    if seen == self.sent && replayed.finish() != self.handed.finish() {
                        return Err(Broken::Fatal(self.bad(
                            "the page was asked for again after its answer broke off, and its first items were not the same".into(),
                        )));
                    }
                    continue;
                }
                seen += 1;
                batch.push(&item);
            }
            if let (Some(cursor), None, Some(Some(token))) = (run_ahead, &ahead, splitter.token()) {
                // A token followed before is the cursor's error to report: no request.
                if cursor.is_new(token) {
                    *ahead = Some(request_ahead(self.config, self.target, token));
                }
            }
            if !batch.is_empty() && (batch.bytes() >= BATCH_BYTES || !flushed) {
                flushed = true;
                self.hand_on(batch.take()).await?;
            }
        }
        let next = splitter.finish().map_err(|e| Broken::Fatal(self.split_error(e, limit)))?;
        if seen < self.sent {
            return Err(Broken::Fatal(self.bad("the page was asked for again after its answer broke off, and had fewer items".into())));
        }
        body.completed();
        self.flush().await?;
        let page = batch.decode(self.config).map_err(|p| Broken::Fatal(self.bad(p)))?;
        Ok((page, next, seen))
    }

    /// A page read whole: its next page asked for (its token found by a quick scan) before it
    /// is decoded, so that the next answer travels meanwhile.
    async fn read_whole(
        &mut self,
        mut bytes: Vec<u8>,
        body: PageBody,
        run_ahead: Option<&Cursor>,
        ahead: &mut Option<Ahead>,
    ) -> Result<(Page, Option<String>, usize), Broken> {
        if let (Some(cursor), None) = (run_ahead, &ahead) {
            // A token followed before is the cursor's error to report: no request.
            if let Some(token) = quick_next_token(&bytes).filter(|t| cursor.is_new(t)) {
                *ahead = Some(request_ahead(self.config, self.target, &token));
                // Let the request leave before this thread turns to decoding.
                tokio::task::yield_now().await;
            }
        }
        // The buffer was reserved for the largest page read whole; the page keeps only its size.
        bytes.shrink_to_fit();
        let mut page = self.config.decode(bytes, Some(self.config.list_key)).map_err(|p| Broken::Fatal(self.bad(p)))?;
        body.completed();
        let next = page.next_page_token.take();
        let items = page.len();
        Ok((page, next, items))
    }

    /// Hands on a batch before the page's end, and counts its items as handed on. It is
    /// decoded (and its rows prepared) on a blocking thread while this task splits the next
    /// bytes; the page's first batch is sent at once, for the first row's sake.
    async fn hand_on(&mut self, batch: Batch) -> Result<(), Broken> {
        for h in &batch.hashes {
            self.handed.write_u64(*h);
        }
        let first = self.sent == 0;
        self.sent += batch.hashes.len();
        self.flush().await?;
        let config = self.config.clone();
        let task = tokio::task::spawn_blocking(move || batch.decode(&config));
        self.decoding = Some((task, std::mem::take(&mut self.cost)));
        if first {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the batch being decoded, if any.
    async fn flush(&mut self) -> Result<(), Broken> {
        let Some((task, cost)) = self.decoding.take() else { return Ok(()) };
        let page = task.await.map_err(|_| Broken::Fatal(ApiError::task_failed()))?.map_err(|p| Broken::Fatal(self.bad(p)))?;
        self.sender.send(Event::Page { open: self.id, page, ends_page: false, last: false, cost }).await.map_err(|_| Broken::Closed)
    }

    fn bad(&self, problem: String) -> ApiError {
        ApiError::BadResponse { path: self.path.clone(), problem }
    }

    fn split_error(&self, e: SplitError, limit: usize) -> ApiError {
        match e {
            SplitError::TooLarge => ApiError::TooLarge { path: self.path.clone(), limit },
            SplitError::Bad(problem) => self.bad(problem),
        }
    }
}

/// A hash of one item's text, to recognise it when a page is read again (after a break, the
/// same items must come first). Not a defence against a forger, only against a page that
/// changed: eight bytes at a time (a multiply and a rotate), several times faster than SipHash
/// over a 150 MB page.
fn item_hash(item: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = item.len() as u64;
    let mut chunks = item.chunks_exact(8);
    for c in &mut chunks {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(c.try_into().expect("eight bytes"))).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
    }
    h
}

/// Why a page could not be read to its end.
enum Broken {
    /// The body broke off: the page may be asked for again.
    Off(ApiError),
    Fatal(ApiError),
    /// The backend stopped listening (the scan ended).
    Closed,
}

impl Broken {
    fn from_read(e: ApiError) -> Broken {
        match e {
            e @ ApiError::Transport { .. } => Broken::Off(e),
            e => Broken::Fatal(e),
        }
    }
}

/// Items collected into the text of a page of their own, `{"<list key>":[item,...]}`, which
/// decodes as any page does.
struct Batch {
    text: Vec<u8>,
    prefix: usize,
    /// Each item's hash, in order.
    hashes: Vec<u64>,
}

impl Batch {
    fn new(list_key: &str) -> Batch {
        let mut text = Vec::new();
        text.extend_from_slice(b"{");
        text.extend_from_slice(serde_json::Value::from(list_key).to_string().as_bytes());
        text.extend_from_slice(b":[");
        let prefix = text.len();
        Batch { text, prefix, hashes: Vec::new() }
    }

    fn push(&mut self, item: &[u8]) {
        if !self.hashes.is_empty() {
            self.text.push(b',');
        }
        self.text.extend_from_slice(item);
        self.hashes.push(item_hash(item));
    }

    fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The batch so far, leaving an empty one.
    fn take(&mut self) -> Batch {
        let fresh = Batch { text: self.text[..self.prefix].to_vec(), prefix: self.prefix, hashes: Vec::new() };
        std::mem::replace(self, fresh)
    }

    fn decode(mut self, config: &FetchConfig) -> Result<Page, String> {
        self.text.extend_from_slice(b"]}");
        config.decode(self.text, Some(config.list_key))
    }
}
