//! HTTP to the Databricks REST API: one connection pool and async runtime per backend, reused by
//! every scan; requests built from resource definitions; pages decoded; API errors decoded into
//! messages a user can act on. Nothing here touches Postgres, so it is tested against the
//! simulator without a database.

pub mod auth;
pub mod body;
pub mod cache;
pub mod dns;
pub mod error;
mod follow;
pub mod listing;
pub mod next_token;
pub mod pages;
pub mod request;
pub mod request_error;
pub mod retry;
pub mod runtime;
pub mod secret;
pub mod source;
pub mod split;
pub mod workspace;
pub mod write;

use crate::shared::budget;
use auth::Auth;
use bytes::Bytes;
use error::ApiError;
use pages::Page;
use retry::{Decision, RetryPolicy};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
// In the client's signatures (a workspace, a request).
pub use url::Url;

/// Connection settings: one HTTP client (and pool) per distinct set, kept for the backend's
/// life so keep-alive connections are reused across queries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// PEM certificates trusted in addition to the public web PKI roots.
    pub ca_certificate: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { connect_timeout: Duration::from_secs(10), request_timeout: Duration::from_secs(60), ca_certificate: None }
    }
}

/// The HTTP client (and its connection pool) for `settings`, shared by every scan of the backend
/// so keep-alive connections are reused across queries.
fn http(settings: &HttpSettings) -> Result<reqwest::Client, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<HttpSettings, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(settings) {
        return Ok(c.clone());
    }
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("databricks_fdw/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.connect_timeout)
        // Idle time: a page is read as the backend consumes it, which may take any time (a
        // cursor fetching slowly), so a read bounds only the wait for the next bytes. A write
        // is bounded in all (in attempt()).
        .read_timeout(settings.request_timeout)
        // A redirect could carry the credentials to another host: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        // Ours, so that an unknown host is told from a passing resolver failure by its code.
        .dns_resolver(std::sync::Arc::new(dns::Resolver))
        .tcp_nodelay(true);
    if let Some(pem) = &settings.ca_certificate {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    clients.insert(settings.clone(), client.clone());
    Ok(client)
}

/// Everything that shapes how requests are made, from the server's options.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSettings {
    pub http: HttpSettings,
    pub retry: RetryPolicy,
    /// The most a single response body may hold.
    pub max_response_bytes: usize,
    /// Answer identical requests from memory for this long (`None`: never).
    pub cache_ttl: Option<Duration>,
    /// At most one request per this long to a workspace, from every backend together when the
    /// library is preloaded (`None`: no budget).
    pub request_interval: Option<Duration>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            http: HttpSettings::default(),
            retry: RetryPolicy::default(),
            max_response_bytes: 64 * 1024 * 1024,
            cache_ttl: None,
            request_interval: None,
        }
    }
}

/// The largest `max_response_bytes` allowed: positions in a page are 32-bit, and no Postgres
/// value is larger.
pub const MAX_RESPONSE_BYTES_LIMIT: usize = 1 << 30;

/// What requests, listings and scans cost, for EXPLAIN ANALYZE and the backend's statistics:
/// one set of counters, one meaning each (a request fills the first four).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    pub retries: u64,
    /// Pages received or answered from a cache.
    pub pages: u64,
    pub items: u64,
    pub bytes: u64,
    /// Listings answered from the scan's own memory of earlier listings (nested loops).
    pub listing_cache_hits: u64,
    /// Pages answered by the response cache (server option cache_ttl), and pages it was asked
    /// for and did not have.
    pub response_cache_hits: u64,
    pub response_cache_misses: u64,
    /// Answers 429 (too many requests), retried or not.
    pub throttled: u64,
    /// Items of the closest parent listing (a fan-out's clean rooms), and those not followed.
    pub parents: source::ParentCounts,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.requests += o.requests;
        self.retries += o.retries;
        self.pages += o.pages;
        self.items += o.items;
        self.bytes += o.bytes;
        self.listing_cache_hits += o.listing_cache_hits;
        self.response_cache_hits += o.response_cache_hits;
        self.response_cache_misses += o.response_cache_misses;
        self.throttled += o.throttled;
        self.parents += o.parents;
    }
}

/// Talks to the API for one role on one server: the HTTP client, the credentials, the limits.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    auth: Auth,
    settings: ClientSettings,
    /// Where this backend counts itself while its requests wait on a budget (the cluster
    /// counters' slot of the server).
    waits_as: Option<u32>,
}

impl ApiClient {
    pub fn new(auth: Auth, settings: &ClientSettings) -> Result<ApiClient, String> {
        Ok(ApiClient { http: http(&settings.http)?, auth, settings: settings.clone(), waits_as: None })
    }

    /// Waits on a request budget are counted for `server` in the cluster's figures.
    pub fn waits_counted_for(mut self, server: &str) -> ApiClient {
        self.waits_as = crate::shared::counters::waiting_slot(server);
        self
    }

    /// Signs in to `workspace` (a token from the cache, or from the token endpoint), for the
    /// check; and which `auth_type` did.
    pub async fn sign_in(&self, workspace: &Url) -> (&'static str, Result<auth::SignedIn, ApiError>) {
        (self.auth.method_name(), self.auth.sign_in(&self.http, workspace, self.settings.http.request_timeout).await)
    }

    /// The body of one GET (from the response cache when the server allows it), whole: a
    /// single object, or a page for a caller that needs it all at once. At most
    /// `max_response_bytes`.
    pub async fn fetch_raw(&self, workspace: &Url, url: Url, stats: &mut Stats) -> Result<Bytes, ApiError> {
        let limit = self.max_value_bytes();
        self.open_page(workspace, url, stats).await?.collect(limit, stats).await
    }

    /// GETs one page whole and decodes it (for a check that reads one small page).
    pub async fn fetch_page(
        &self,
        workspace: &Url,
        url: Url,
        list_key: Option<&str>,
        fields: &[&str],
        stats: &mut Stats,
    ) -> Result<Page, ApiError> {
        let path = format!("GET {}", url.path());
        let body = self.fetch_raw(workspace, url, stats).await?;
        Page::decode(body, list_key, fields).map_err(|problem| ApiError::BadResponse { path, problem })
    }

    /// Opens one page of a listing: its body is read as it arrives. Retried (as the policy
    /// says) until its answer starts; a body that breaks off later is the caller's to resume.
    pub async fn open_page(&self, workspace: &Url, url: Url, stats: &mut Stats) -> Result<body::PageBody, ApiError> {
        let path = format!("GET {}", url.path());
        let key = self.settings.cache_ttl.map(|_| cache::key(&self.auth.fingerprint(), url.as_str()));
        if let (Some(ttl), Some(key)) = (self.settings.cache_ttl, &key) {
            if let Some(body) = cache::get(key, ttl) {
                stats.response_cache_hits += 1;
                return Ok(body::PageBody::cached(body, &path));
            }
            stats.response_cache_misses += 1;
        }
        let recording = key;
        let call = HttpRequest { method: reqwest::Method::GET, url, body: None };
        let response = self.call_response(workspace, &call, retry::is_retryable, stats).await?;
        Ok(body::PageBody::live(response, &path, recording))
    }

    /// The most bytes one item (one run), one error body or one single object may have.
    pub fn max_value_bytes(&self) -> usize {
        self.settings.max_response_bytes.min(MAX_RESPONSE_BYTES_LIMIT)
    }

    /// How long to wait before asking again for a page whose body broke off with `error` after
    /// `retries` tries and `waited` in all, as for any GET; the error to report when not.
    pub fn retry_wait(&self, error: ApiError, retries: u32, waited: Duration) -> Result<Duration, ApiError> {
        if !retry::is_retryable(&error) {
            return Err(error);
        }
        match self.settings.retry.decide(&error, None, retries, waited, fastrand::f64()) {
            Decision::Wait(wait) => Ok(wait),
            Decision::GiveUp(None) => Err(error),
            Decision::GiveUp(Some(why)) => Err(ApiError::Exhausted { last: Box::new(error), why }),
        }
    }

    /// Sends one write call (POST, PATCH or DELETE, with its JSON body) and reads its answer.
    /// Sent again only as [`retry::write_is_retryable`] allows: a create only when the failure
    /// proves it was not made. A body that breaks off after a 2xx status is not sent again: the
    /// change was made. Any write empties the response cache, so that no listing is answered as
    /// it was before the change.
    pub async fn send(&self, workspace: &Url, call: &HttpRequest, stats: &mut Stats) -> Sent {
        let path = format!("{} {}", call.method, call.url.path());
        let mut earlier_may_have_applied = false;
        let retryable = |e: &ApiError| {
            let again = retry::write_is_retryable(&call.method, e);
            earlier_may_have_applied |= again && retry::may_have_been_applied(e);
            again
        };
        let (result, accepted) = match self.call_response(workspace, call, retryable, stats).await {
            Ok(mut response) => (read_body(&mut response, &path, self.max_value_bytes(), stats).await.map(Bytes::from), true),
            Err(e) => (Err(e), false),
        };
        if self.settings.cache_ttl.is_some() {
            cache::clear();
        }
        Sent { result, earlier_may_have_applied, accepted }
    }

    /// Makes `call` until an answer with a 2xx status starts, trying again after the failures
    /// `retryable` allows, as the policy says.
    async fn call_response(
        &self,
        workspace: &Url,
        call: &HttpRequest,
        mut retryable: impl FnMut(&ApiError) -> bool,
        stats: &mut Stats,
    ) -> Result<reqwest::Response, ApiError> {
        let mut waited = Duration::ZERO;
        let mut retries = 0;
        loop {
            let (error, retry_after) = match self.attempt(workspace, call, stats).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            if !retryable(&error) {
                return Err(error);
            }
            match self.settings.retry.decide(&error, retry_after, retries, waited, fastrand::f64()) {
                Decision::Wait(wait) => {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    retries += 1;
                    stats.retries += 1;
                }
                Decision::GiveUp(None) => return Err(error),
                Decision::GiveUp(Some(why)) => return Err(ApiError::Exhausted { last: Box::new(error), why }),
            }
        }
    }

    /// One try (two, when a cached OAuth token is refused): a 2xx answer whose body is still to
    /// be read, or the error and the `Retry-After` that came with it.
    async fn attempt(
        &self,
        workspace: &Url,
        call: &HttpRequest,
        stats: &mut Stats,
    ) -> Result<reqwest::Response, (ApiError, Option<Duration>)> {
        let path = format!("{} {}", call.method, call.url.path());
        let mut renewed = false;
        loop {
            let headers = self.auth.headers(&self.http, workspace, self.settings.http.request_timeout).await.map_err(|e| (e, None))?;
            let value =
                |s: &secret::Secret| reqwest::header::HeaderValue::from_str(s.expose()).map_err(|_| (ApiError::BadCredential, None));
            self.wait_for_budget(workspace).await;
            stats.requests += 1;
            // Every request asks for JSON, as the SDKs' do (a gateway may answer HTML otherwise).
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .header(reqwest::header::AUTHORIZATION, value(&headers.authorization)?)
                .header(reqwest::header::ACCEPT, "application/json");
            for (name, secret) in &headers.extra {
                request = request.header(*name, value(secret)?);
            }
            if let Some(body) = &call.body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            if call.method != reqwest::Method::GET {
                request = request.timeout(self.settings.http.request_timeout);
            }
            let mut resp = request.send().await.map_err(|e| (ApiError::transport(&path, &e), None))?;
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
            let private_link = resp.status().is_redirection()
                && resp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).is_some_and(error::is_private_link_redirect);
            if private_link {
                return Err((ApiError::private_link(&path), None));
            }
            let body = read_prefix(&mut resp, self.max_value_bytes().min(ERROR_BODY_LIMIT), stats).await;
            // A refused token was refused before anything was done: trying once more with a
            // new one is safe for writes too.
            if status == 401 && !renewed && self.auth.rejected(workspace, &headers).await {
                renewed = true;
                continue;
            }
            if status == 429 {
                stats.throttled += 1;
                // Every backend's requests to this workspace wait, not only this one's retry.
                budget::Table::current().pause(workspace.as_str(), retry_after.unwrap_or(DEFAULT_PAUSE));
            }
            let error = ApiError::from_status(&path, status, &body);
            // The body's RetryInfo counts like a Retry-After header (which wins).
            let retry_after = match &error {
                ApiError::Status { details, .. } => retry_after.or(details.retry_delay),
                _ => retry_after,
            };
            return Err((error, retry_after));
        }
    }
}

impl ApiClient {
    /// Until this request may leave: the workspace's request budget (server option
    /// `max_requests_per_second`), and any pause a 429 asked for. Runs on the I/O thread and
    /// only sleeps there; a cancelled query drops the wait.
    async fn wait_for_budget(&self, workspace: &Url) {
        let table = budget::Table::current();
        let mut wait = table.reserve(workspace.as_str(), self.settings.request_interval);
        if wait.is_zero() {
            return;
        }
        let _counted = self.waits_as.map(budget::Waiting::start);
        loop {
            tokio::time::sleep(wait).await;
            // A 429 seen meanwhile by any backend holds this request too.
            wait = table.paused(workspace.as_str());
            if wait.is_zero() {
                return;
            }
        }
    }
}

/// How long a 429 without `Retry-After` pauses a workspace (the SDKs wait 1 s).
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// The most of an error body read: its message and details, not a proxy's whole page.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// The start of an error body, at most `limit` bytes: a longer one (a proxy's page) is cut, and
/// one that breaks off is what arrived, so that the status is never lost.
async fn read_prefix(resp: &mut reqwest::Response, limit: usize, stats: &mut Stats) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        let Ok(Some(chunk)) = resp.chunk().await else { break };
        stats.bytes += chunk.len() as u64;
        body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
    }
    body
}

/// What the attempts of one write call came to.
#[derive(Debug)]
pub struct Sent {
    /// The last attempt's body, or why there is none.
    pub result: Result<Bytes, ApiError>,
    /// An attempt before the last failed in a way that may hide a change.
    pub earlier_may_have_applied: bool,
    /// The last attempt was answered with a 2xx status (the change was made), whatever became
    /// of its body.
    pub accepted: bool,
}

/// One HTTP request: the method, the URL, and the JSON body of a write.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: reqwest::Method,
    pub url: Url,
    pub body: Option<Bytes>,
}

impl HttpRequest {
    /// A POST of `body` (JSON text) to `url`.
    pub fn post(url: Url, body: String) -> HttpRequest {
        HttpRequest { method: reqwest::Method::POST, url, body: Some(body.into()) }
    }
}

/// The body of `resp`, at most `limit` bytes. The buffer grows as bytes arrive: a length the
/// server announces is never trusted with an allocation.
pub async fn read_body(resp: &mut reqwest::Response, path: &str, limit: usize, stats: &mut Stats) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::TooLarge { path: crate::text::excerpt(path, error::PATH_SHOWN), limit };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ApiError::transport(path, &e))? {
        stats.bytes += chunk.len() as u64;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
