//! Routing and responses. Each API request is answered from the dataset, after the token check
//! and the armed faults, and is recorded in the request log.

use crate::body::SimBody;
use crate::data::{Dataset, LastPage, Room};
use crate::faults::{Aim, ArmedFault, Fault, FaultKind};
use crate::log::{Entry, RequestLog};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub struct Config {
    /// What every workspace serves, and what write calls change.
    pub data: Dataset,
    /// Workspaces (`/ws/{deployment}`) that serve reads from their own dataset instead;
    /// write calls still change `data` only.
    pub deployments: BTreeMap<String, Dataset>,
    /// Bearer tokens the simulator accepts.
    pub tokens: Vec<String>,
    /// Serve runs in pages (`default_page_size`, or the request's `page_size`). Off by
    /// default, as on the service, whose runs endpoint ignores page_size and sends a room's
    /// runs in one page: tests of paging ask for it.
    pub paged_runs: bool,
    /// Runs per page when paged and the request names no `page_size`.
    pub default_page_size: usize,
    /// The largest `page_size` honoured; larger ones are capped.
    pub max_page_size: usize,
    /// Added to every API request.
    pub latency_ms: u64,
    /// Accepted tokens whose writes are refused with 403 (a role without MODIFY_CLEAN_ROOM).
    pub read_only_tokens: Vec<String>,
    /// OAuth service principals (client id, client secret) the token endpoint accepts.
    pub oauth_clients: Vec<(String, String)>,
    /// How long an issued OAuth token is valid.
    pub token_lifetime: Duration,
    /// Keep every rendered page of runs in memory, so the simulator serves repeated listings
    /// at memory speed (for benchmarks; a million runs take about 700 MB).
    pub cache_pages: bool,
    /// Write `next_page_token` before the list of items (JSON's member order is free, and the
    /// service does not promise one).
    pub token_first: bool,
    /// Who the identity providers' token endpoints know (Entra ID, managed identities, Google,
    /// federation policies).
    pub idp: crate::idp::IdpConfig,
}

impl Config {
    /// The shipped fixture, the token `dapi-simulator-token`, 25 runs per page.
    pub fn with_fixture() -> Config {
        Config {
            data: Dataset::from_fixture_json(include_str!("../fixtures/cleanrooms.json")).expect("shipped fixture is valid"),
            deployments: BTreeMap::new(),
            tokens: vec![DEFAULT_TOKEN.to_string(), READ_ONLY_TOKEN.to_string()],
            read_only_tokens: vec![READ_ONLY_TOKEN.to_string()],
            paged_runs: false,
            default_page_size: 25,
            max_page_size: 1000,
            latency_ms: 0,
            oauth_clients: vec![(DEFAULT_CLIENT_ID.to_string(), DEFAULT_CLIENT_SECRET.to_string())],
            token_lifetime: Duration::from_secs(3600),
            cache_pages: false,
            token_first: false,
            idp: Default::default(),
        }
    }
}

pub const DEFAULT_TOKEN: &str = "dapi-simulator-token";
/// Reads everything; every write is refused with 403.
pub const READ_ONLY_TOKEN: &str = "dapi-simulator-reader";
pub const DEFAULT_CLIENT_ID: &str = "sim-service-principal";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-oauth-secret";

/// (deployment, room, notebook filter, offset, size) of a rendered page of runs.
type PageKey = (String, String, Option<String>, usize, usize);

pub struct State {
    config: Config,
    /// The clean rooms and what they hold; write calls change it.
    pub data: RwLock<Dataset>,
    /// The workspaces with their own dataset for reads (see [`Config::deployments`]).
    pub deployments: HashMap<String, RwLock<Dataset>>,
    latency_ms: AtomicU64,
    /// API requests being answered right now, and the most there have been at once.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    pub log: RequestLog,
    faults: Mutex<Vec<ArmedFault>>,
    /// OAuth tokens issued, with when each stops being valid.
    issued: Mutex<HashMap<String, Instant>>,
    token_serial: AtomicU64,
    /// Rendered pages of runs by (room, notebook filter, offset, size), when caching.
    pages: Mutex<HashMap<PageKey, bytes::Bytes>>,
    /// New clean rooms on their way to ACTIVE.
    pub provisioning: crate::writes::Provisioning,
    /// What the identity providers issued.
    pub(crate) idp: crate::idp::IdpState,
}

impl State {
    pub fn new(mut config: Config) -> Arc<State> {
        let data = RwLock::new(std::mem::take(&mut config.data));
        let deployments = std::mem::take(&mut config.deployments).into_iter().map(|(name, d)| (name, RwLock::new(d))).collect();
        Arc::new(State {
            data,
            deployments,
            latency_ms: AtomicU64::new(config.latency_ms),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            config,
            log: RequestLog::default(),
            faults: Mutex::new(Vec::new()),
            issued: Mutex::new(HashMap::new()),
            token_serial: AtomicU64::new(0),
            pages: Mutex::new(HashMap::new()),
            provisioning: Default::default(),
            idp: Default::default(),
        })
    }

    /// The dataset reads of `deployment` are served from: its own, else the shared one.
    pub fn read_data(&self, deployment: &str) -> RwLockReadGuard<'_, Dataset> {
        self.deployments.get(deployment).unwrap_or(&self.data).read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn arm(&self, fault: Fault) {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).push(ArmedFault::new(fault));
    }

    /// Makes every OAuth token issued so far invalid, as if its lifetime had ended.
    pub fn expire_issued_tokens(&self) {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        for until in issued.values_mut() {
            *until = Instant::now();
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// A new token, valid as a bearer token until its lifetime ends, and the `expires_in` to
    /// state for it.
    pub(crate) fn issue_token(&self, prefix: &str) -> (String, u64) {
        let serial = self.token_serial.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}-{serial}-{:x}", Instant::now().elapsed().as_nanos() ^ (serial as u128 * 0x9E37_79B9));
        (token.clone(), self.register_token(&token))
    }

    /// Makes `token` valid for the configured lifetime; returns the `expires_in` to state.
    pub(crate) fn register_token(&self, token: &str) -> u64 {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).insert(token.to_string(), Instant::now() + self.config.token_lifetime);
        self.stated_lifetime()
    }

    /// The lifetime token endpoints state (an armed token_lifetime fault's, else the real one).
    pub(crate) fn stated_lifetime(&self) -> u64 {
        self.token_lifetime_fault().unwrap_or(self.config.token_lifetime.as_secs())
    }

    pub(crate) fn check_token(&self, token: &str) -> &'static str {
        self.check_bearer(token)
    }

    /// "valid", "expired" or "invalid" for a bearer token.
    fn check_bearer(&self, token: &str) -> &'static str {
        if self.config.tokens.iter().any(|ok| ok == token) {
            return "valid";
        }
        match self.issued.lock().unwrap_or_else(|p| p.into_inner()).get(token) {
            Some(until) if *until > Instant::now() => "valid",
            Some(_) => "expired",
            None => "invalid",
        }
    }

    /// The most API requests that were in flight at once since the last reset.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Clears the request log and the in-flight peak.
    pub fn reset_log(&self) {
        self.log.clear();
        self.peak_in_flight.store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn disarm_all(&self) {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The `expires_in` an armed token fault states, if any.
    fn token_lifetime_fault(&self) -> Option<u64> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).iter().find_map(|f| match f.fault.kind {
            FaultKind::TokenLifetime { expires_in } => Some(expires_in),
            _ => None,
        })
    }

    /// The first armed fault that hits this request (every armed fault counts the request).
    fn fault_for(&self, aim: &Aim) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut chosen = None;
        for f in faults.iter_mut() {
            if f.hits(aim) && chosen.is_none() {
                chosen = Some(f.fault.kind.clone());
            }
        }
        chosen
    }
}

/// A simulator running on its own thread, for tests in the same process.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    /// Whether it speaks TLS (its URL is then https://localhost:port).
    pub tls: bool,
}

impl SimHandle {
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }
}

/// Starts a simulator on 127.0.0.1 (port picked by the system) in a background thread.
pub fn spawn(config: Config) -> SimHandle {
    start(config, None)
}

/// The same, speaking TLS with `server` (see [`crate::tls::TestCa`]).
pub fn spawn_tls(config: Config, server: Arc<tokio_rustls::rustls::ServerConfig>) -> SimHandle {
    start(config, Some(server))
}

fn start(config: Config, tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>) -> SimHandle {
    let state = State::new(config);
    let is_tls = tls.is_some();
    let std_listener = bind_loopback(0).expect("a free port on 127.0.0.1");
    std_listener.set_nonblocking(true).expect("nonblocking listener");
    let addr = std_listener.local_addr().expect("local addr");
    let served = state.clone();
    std::thread::Builder::new()
        .name("databricks-sim".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                match tls {
                    Some(config) => serve_tls(listener, served, config).await,
                    None => serve(listener, served).await,
                }
            })
        })
        .expect("spawn simulator thread");
    SimHandle { addr, state, tls: is_tls }
}

/// A listener on 127.0.0.1:`port`; with 0, on a free port below 32768. The system's own choice
/// would come from the ephemeral range (32768 and up), where outgoing connections take their
/// ports: a cluster started later on a fixed port there could find it taken, and so could this.
pub fn bind_loopback(port: u16) -> std::io::Result<std::net::TcpListener> {
    if port != 0 {
        return std::net::TcpListener::bind(("127.0.0.1", port));
    }
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    let start = (std::process::id().wrapping_mul(7919) ^ (NEXT_PORT.fetch_add(1, Ordering::Relaxed) as u32 * 131)) % COUNT;
    let mut last = None;
    for i in 0..COUNT {
        let candidate = (FIRST + (start + i) % COUNT) as u16;
        match std::net::TcpListener::bind(("127.0.0.1", candidate)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

static NEXT_PORT: AtomicU64 = AtomicU64::new(0);

/// Serves connections on `listener` for ever.
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, state.clone()));
    }
}

/// Serves TLS connections on `listener` for ever; a failed handshake only ends its connection.
pub async fn serve_tls(listener: TcpListener, state: Arc<State>, config: Arc<tokio_rustls::rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_connection(tls, state).await;
            }
        });
    }
}

async fn serve_connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(stream: S, state: Arc<State>) {
    let service = service_fn(move |req| {
        let state = state.clone();
        // Its own task: a client that stops waiting (a timeout) does not stop the request
        // from being carried out, as on a real server.
        let handled = tokio::spawn(async move { handle(&state, req).await });
        async move {
            let resp = handled.await.unwrap_or_else(|_| api_error(500, "INTERNAL_ERROR", "The simulator failed."));
            // A service error makes hyper close the connection without any answer.
            match resp.extensions().get::<DropConnection>() {
                Some(_) => Err::<Response<SimBody>, std::io::Error>(std::io::Error::other("simulated connection drop")),
                None => Ok::<_, std::io::Error>(resp),
            }
        }
    });
    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

/// Marks a response that is not sent: the connection drops instead, before any status line.
#[derive(Clone, Copy)]
struct DropConnection;

pub(crate) fn json(status: u16, body: String) -> Response<SimBody> {
    json_bytes(status, bytes::Bytes::from(body))
}

fn json_bytes(status: u16, body: bytes::Bytes) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An error as the service sends it: code, message, and a request id in `details`.
fn api_error(status: u16, code: &str, message: &str) -> Response<SimBody> {
    api_error_with(status, serde_json::Value::from(code), message, Vec::new())
}

/// An error with `extra` entries in `details` after the request id; the code may be a number.
fn api_error_with(status: u16, code: serde_json::Value, message: &str, extra: Vec<serde_json::Value>) -> Response<SimBody> {
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    let id = format!("sim-req-{:06}", REQUESTS.fetch_add(1, Ordering::Relaxed) + 1);
    let mut details =
        vec![serde_json::json!({"@type": "type.googleapis.com/google.rpc.RequestInfo", "request_id": id, "serving_data": ""})];
    details.extend(extra);
    json(status, serde_json::json!({"error_code": code, "message": message, "details": details}).to_string())
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<SimBody> {
    let arrived = crate::log::now_us();
    let path = req.uri().path().to_string();
    if let Some(control) = path.strip_prefix("/_sim/") {
        return control_request(state, control, req).await;
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let (deployment, api_path) = split_workspace_prefix(&path, req.headers().get(HOST));
    let api_path = api_path.to_string();
    let req = match crate::idp::route(state, req, &api_path, &deployment).await {
        Ok(token_response) => return token_response,
        Err(req) => req,
    };
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let bearer = header.and_then(|v| v.strip_prefix("Bearer "));
    let auth = match (header, bearer) {
        (None, _) => "missing",
        (_, Some(t)) => state.check_bearer(t),
        (Some(_), None) => "invalid",
    };
    // A Google ID token names its workspace, and comes with the service account's access token.
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let prefix = if path.starts_with("/ws/") { &path[..path.len() - api_path.len()] } else { "" };
    let gcp_access = req.headers().get(crate::idp::GCP_ACCESS_TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let auth = bearer.and_then(|t| crate::idp::check_google(state, t, &format!("{host}{prefix}"), gcp_access)).unwrap_or(auth);
    let read_only = bearer.is_some_and(|t| state.config.read_only_tokens.iter().any(|r| r == t));
    let segments: Vec<String> = api_path.split('/').skip(1).map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect();
    let room = match segments.as_slice() {
        [a, v, c, name, ..] if a == "api" && v == "2.0" && c == "clean-rooms" => Some(name.clone()),
        _ => None,
    };
    let params = parse_query(&query);
    let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_string);
    let method = req.method().clone();
    let body = if method == Method::GET { bytes::Bytes::new() } else { read_request_body(req).await };

    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let call = Call { method: &method, body: &body, read_only, deployment: &deployment };
    let resp = answer(state, &call, auth, room.as_deref(), &segments, &params).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    state.log.push(Entry {
        body: (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned()),
        seq: 0,
        method: method.to_string(),
        path: api_path.to_string(),
        query,
        deployment,
        auth,
        room,
        status: resp.status().as_u16(),
        accept,
        at_us: arrived,
    });
    resp
}

/// The body of a write call (at most 16 MiB; a larger one is cut, and fails to parse).
async fn read_request_body(req: Request<Incoming>) -> bytes::Bytes {
    use http_body_util::{BodyExt, Limited};
    match Limited::new(req.into_body(), 16 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    }
}

/// What a request asks, beyond its path: the method, the body of a write, and whether its
/// token may write.
struct Call<'a> {
    method: &'a Method,
    body: &'a [u8],
    read_only: bool,
    /// The workspace it was sent to (its dataset answers reads).
    deployment: &'a str,
}

async fn answer(
    state: &State,
    call: &Call<'_>,
    auth: &'static str,
    room: Option<&str>,
    segments: &[String],
    params: &HashMap<String, String>,
) -> Response<SimBody> {
    let latency = state.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    state.provisioning.settle(&state.data);
    let aim = Aim { room, endpoint: listing_endpoint(segments), later_page: params.get("page_token").is_some_and(|t| !t.is_empty()) };
    let fault = if auth == "valid" { state.fault_for(&aim) } else { None };
    match fault {
        Some(kind) => faulty_response(state, kind, call, segments, params).await,
        None => api_response(state, auth, call, segments, params),
    }
}

/// The listing a GET asks for, by the last segment of its path (`clean-rooms` for the rooms).
fn listing_endpoint(segments: &[String]) -> Option<&str> {
    match segments.len() {
        3 | 5 | 8 => segments.last().map(String::as_str),
        _ => None,
    }
}

/// `/ws/{deployment}/api/...` stands for the workspace `{deployment}`; otherwise the Host header
/// names it.
fn split_workspace_prefix<'a>(path: &'a str, host: Option<&HeaderValue>) -> (String, &'a str) {
    if let Some(rest) = path.strip_prefix("/ws/") {
        if let Some(slash) = rest.find('/') {
            return (percent_decode_str(&rest[..slash]).decode_utf8_lossy().into_owned(), &rest[slash..]);
        }
    }
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    (host.to_string(), path)
}

pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

fn api_response(state: &State, auth: &str, call: &Call<'_>, segments: &[String], params: &HashMap<String, String>) -> Response<SimBody> {
    match auth {
        "valid" => {}
        "expired" => return api_error(401, "UNAUTHENTICATED", "Token is expired."),
        _ => return api_error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."),
    }
    let route: Vec<&str> = segments.iter().map(String::as_str).collect();
    if *call.method != Method::GET {
        return write_response(state, call, &route);
    }
    let data = state.read_data(call.deployment);
    let with_room = |name: &str, f: &dyn Fn(&Room) -> Response<SimBody>| match data.rooms.get(name) {
        Some(room) if room.is_deleted() => only_deletion_allowed(name),
        Some(room) => f(room),
        None => room_not_found(name),
    };
    match route.as_slice() {
        ["api", "2.0", "clean-rooms"] => list_rooms(state, &data, params),
        ["api", "2.0", "clean-rooms", name] => match data.rooms.get(*name) {
            Some(room) => json(200, room.info.to_string()),
            None => room_not_found(name),
        },
        ["api", "2.0", "clean-rooms", name, "runs"] => with_room(name, &|room| list_runs(state, call.deployment, room, params, false)),
        // The generic task-runs endpoint accepts at most 100 a page.
        ["api", "2.0", "clean-rooms", _, "task-runs"]
            if params.get("page_size").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 100) =>
        {
            api_error(400, "INVALID_PARAMETER_VALUE", "page_size must be at most 100.")
        }
        ["api", "2.0", "clean-rooms", name, "task-runs"] => with_room(name, &|room| {
            let (wanted_name, wanted_type) = (params.get("name"), params.get("task_type"));
            let matching = room.task_runs.iter().filter(|t| {
                wanted_name.is_none_or(|n| t.name.as_ref() == Some(n)) && wanted_type.is_none_or(|k| t.kind.as_ref() == Some(k))
            });
            list_items(state, matching, "runs", params, 25, 100)
        }),
        // The assets list takes only page_token.
        ["api", "2.0", "clean-rooms", _, "assets"] if params.contains_key("page_size") => {
            api_error(400, "INVALID_PARAMETER_VALUE", "Unknown parameter page_size: the assets list takes only page_token.")
        }
        ["api", "2.0", "clean-rooms", name, "assets"] => {
            with_room(name, &|room| list_items(state, room.assets.iter().map(|a| &a.item), "assets", params, 100, 100))
        }
        // "Asset type. Only NOTEBOOK_FILE is supported." (the SDKs)
        ["api", "2.0", "clean-rooms", _, "assets", kind, _, "revisions"] if *kind != "NOTEBOOK_FILE" => {
            api_error(400, "INVALID_PARAMETER_VALUE", &format!("Asset type {kind} has no revisions: only NOTEBOOK_FILE is supported."))
        }
        ["api", "2.0", "clean-rooms", name, "assets", kind, asset, "revisions"] => with_room(name, &|room| match room
            .assets
            .iter()
            .find(|a| a.item.kind.as_deref() == Some(*kind) && a.item.name.as_deref() == Some(*asset))
        {
            Some(a) => list_items(state, a.revisions.iter(), "revisions", params, 10, 100),
            None => api_error(404, "RESOURCE_DOES_NOT_EXIST", &format!("Asset {kind} '{asset}' does not exist in clean room '{name}'.")),
        }),
        ["api", "2.0", "clean-rooms", name, "auto-approval-rules"] => {
            with_room(name, &|room| list_items(state, room.rules.iter(), "rules", params, 100, 100))
        }
        _ => api_error(404, "ENDPOINT_NOT_FOUND", &format!("No API found for 'GET /{}'", segments.join("/"))),
    }
}

/// POST, PATCH and DELETE: the write calls, refused for read-only tokens.
fn write_response(state: &State, call: &Call<'_>, route: &[&str]) -> Response<SimBody> {
    use crate::writes::*;
    let (method, body) = (call.method, call.body);
    if call.read_only {
        return api_error(403, "PERMISSION_DENIED", "User does not have MODIFY_CLEAN_ROOM on the clean room.");
    }
    let mut data = state.data.write().unwrap_or_else(|p| p.into_inner());
    let data = &mut *data;
    let outcome = match (method.as_str(), route) {
        ("POST", ["api", "2.0", "clean-rooms"]) => create_room(data, &state.provisioning, body),
        ("PATCH", ["api", "2.0", "clean-rooms", name]) => update_room(data, name, body),
        ("DELETE", ["api", "2.0", "clean-rooms", name]) => delete_room(data, name),
        ("POST", ["api", "2.0", "clean-rooms", room, "assets"]) => create_asset(data, room, body),
        ("PATCH", ["api", "2.0", "clean-rooms", room, "assets", kind, name]) => update_asset(data, room, kind, name, body),
        ("DELETE", ["api", "2.0", "clean-rooms", room, "assets", kind, name]) => delete_asset(data, room, kind, name),
        ("POST", ["api", "2.0", "clean-rooms", room, "auto-approval-rules"]) => create_rule(data, room, body),
        ("PATCH", ["api", "2.0", "clean-rooms", room, "auto-approval-rules", id]) => update_rule(data, room, id, body),
        ("DELETE", ["api", "2.0", "clean-rooms", room, "auto-approval-rules", id]) => delete_rule(data, room, id),
        ("POST", ["api", "2.0", "clean-rooms", room, "output-catalogs"]) => crate::exec::create_output_catalog(data, room, body),
        ("POST", ["api", "2.0", "clean-rooms", room, "assets", kind, name, "reviews"]) => {
            crate::exec::review_asset(data, room, kind, name, body)
        }
        _ => return api_error(404, "ENDPOINT_NOT_FOUND", &format!("No API found for '{method} /{}'", route.join("/"))),
    };
    let (status, body) = answer(outcome);
    json(status, body.to_string())
}

fn room_not_found(name: &str) -> Response<SimBody> {
    api_error(404, "RESOURCE_DOES_NOT_EXIST", &format!("Clean room '{name}' does not exist."))
}

/// What a DELETED room answers to anything but its deletion.
fn only_deletion_allowed(name: &str) -> Response<SimBody> {
    api_error(400, "INVALID_STATE", &format!("Clean room '{name}' is in DELETED state: only deletion is allowed."))
}

/// Page tokens are opaque to clients; here they carry the offset of the page they start.
fn page_token(offset: usize) -> String {
    format!("pt{:x}", (offset as u64).wrapping_mul(0x9E37_79B9).wrapping_add(0x5bd1))
}

fn parse_page_token(token: &str) -> Option<usize> {
    let n = u64::from_str_radix(token.strip_prefix("pt")?, 16).ok()?;
    let offset = n.wrapping_sub(0x5bd1) / 0x9E37_79B9;
    (page_token(offset as usize) == token).then_some(offset as usize)
}

/// Reads `page_size` and `page_token`: the page's offset and length, or a 400 response.
#[allow(clippy::result_large_err)] // the error is the response to send, built once per bad request
fn page_window(state: &State, params: &HashMap<String, String>, default: usize) -> Result<(usize, usize), Response<SimBody>> {
    let size = match params.get("page_size").map(|s| s.parse::<i64>()) {
        None => default,
        Some(Ok(n)) if n <= 0 => default,
        Some(Ok(n)) => (n as usize).min(state.config.max_page_size),
        Some(Err(_)) => return Err(api_error(400, "INVALID_PARAMETER_VALUE", "page_size must be an integer.")),
    };
    let offset = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match parse_page_token(t) {
            Some(o) => o,
            None => return Err(api_error(400, "INVALID_PARAMETER_VALUE", "Invalid page token.")),
        },
    };
    Ok((offset, size))
}

/// Writes `{"<key>":[...],"next_page_token":"..."}` (the token first with `token_first`);
/// `{}` when there is nothing at all.
fn envelope(key: &str, items: &str, next: Option<String>, last: LastPage, token_first: bool) -> String {
    let token = match (next, last) {
        (Some(t), _) => Some(t),
        (None, LastPage::Empty) => Some(String::new()),
        (None, LastPage::Absent) => None,
    };
    let mut members = Vec::new();
    if !items.is_empty() {
        members.push(format!("\"{key}\":[{items}]"));
    }
    if let Some(t) = token {
        members.push(format!("\"next_page_token\":\"{t}\""));
    }
    if token_first {
        members.reverse();
    }
    format!("{{{}}}", members.join(","))
}

fn list_runs(state: &State, deployment: &str, room: &Room, params: &HashMap<String, String>, repeat_token: bool) -> Response<SimBody> {
    let name = &room.name;
    let (offset, size) = match page_window(state, params, state.config.default_page_size) {
        Ok(w) if state.config.paged_runs => w,
        // "page_size: currently ignored - all runs will be returned."
        Ok((offset, _)) => (offset, usize::MAX),
        Err(resp) => return resp,
    };
    let notebook = params.get("notebook_name").filter(|s| !s.is_empty());
    let key = (deployment.to_string(), name.to_string(), notebook.cloned(), offset, size);
    if state.config.cache_pages && !repeat_token {
        if let Some(body) = state.pages.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return json_bytes(200, body.clone());
        }
    }
    let matching = room.matching(notebook.map(String::as_str));
    let end = (offset + size).min(matching.len());
    let mut items = String::with_capacity((end.saturating_sub(offset)) * 700);
    for k in offset..end {
        if k > offset {
            items.push(',');
        }
        matching.render(k, &mut items);
    }
    let next = if repeat_token {
        Some(params.get("page_token").cloned().unwrap_or_else(|| page_token(0)))
    } else {
        (end < matching.len()).then(|| page_token(end))
    };
    let body = bytes::Bytes::from(envelope("runs", &items, next, room.last_page, state.config.token_first));
    if state.config.cache_pages && !repeat_token {
        state.pages.lock().unwrap_or_else(|p| p.into_inner()).insert(key, body.clone());
    }
    json_bytes(200, body)
}

/// One page of a fixture listing; `page_size` is capped at `max`.
fn list_items<'a>(
    state: &State,
    items: impl Iterator<Item = &'a crate::data::Item>,
    key: &str,
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Response<SimBody> {
    let (offset, size) = match page_window(state, params, default) {
        Ok((o, s)) => (o, s.min(max)),
        Err(resp) => return resp,
    };
    let all: Vec<&str> = items.map(|i| i.json.as_str()).collect();
    let end = (offset + size).min(all.len());
    let page = all.get(offset..end).unwrap_or(&[]).join(",");
    let next = (end < all.len()).then(|| page_token(end));
    json(200, envelope(key, &page, next, LastPage::Absent, state.config.token_first))
}

/// The rooms, then the items with no room behind them.
fn list_rooms(state: &State, data: &Dataset, params: &HashMap<String, String>) -> Response<SimBody> {
    let (offset, size) = match page_window(state, params, 100) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let rooms: Vec<&serde_json::Value> = data.rooms.values().map(|r| &r.info).chain(&data.listed_only).collect();
    let end = (offset + size).min(rooms.len());
    let items: Vec<String> = rooms.get(offset..end).unwrap_or(&[]).iter().map(|r| r.to_string()).collect();
    let next = (end < rooms.len()).then(|| page_token(end));
    json(200, envelope("clean_rooms", &items.join(","), next, LastPage::Absent, state.config.token_first))
}

async fn faulty_response(
    state: &State,
    kind: FaultKind,
    call: &Call<'_>,
    segments: &[String],
    params: &HashMap<String, String>,
) -> Response<SimBody> {
    let normal = || api_response(state, "valid", call, segments, params);
    match kind {
        FaultKind::Status { status, error_code, message, retry_after, numeric_code, details } => {
            let code = match numeric_code {
                Some(n) => serde_json::Value::from(n),
                None => serde_json::Value::from(error_code.unwrap_or_else(|| default_error_code(status).to_string())),
            };
            let message = message.unwrap_or_else(|| format!("Simulated {status}."));
            let mut resp = api_error_with(status, code, &message, details);
            if let Some(ra) = retry_after.and_then(|ra| HeaderValue::from_str(&ra).ok()) {
                resp.headers_mut().insert(RETRY_AFTER, ra);
            }
            resp
        }
        FaultKind::Html { status } => {
            let mut resp =
                json(status, format!("<html><head><title>{status}</title></head><body><h1>{status} Gateway error</h1></body></html>"));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            resp
        }
        FaultKind::Malformed => json(200, "{\"runs\": [{\"notebook_name\": oops".to_string()),
        FaultKind::Truncated => {
            let body = body_text(normal());
            let cut = body.len() / 2;
            json(200, body[..cut].to_string())
        }
        FaultKind::RepeatToken => {
            let repeated = match segments {
                [_, _, _, name, runs] if runs == "runs" => {
                    state.read_data(call.deployment).rooms.get(name).map(|room| list_runs(state, call.deployment, room, params, true))
                }
                _ => None,
            };
            repeated.unwrap_or_else(normal)
        }
        FaultKind::EmptyPageWithToken => json(200, format!("{{\"runs\":[],\"next_page_token\":\"{}\"}}", page_token(0))),
        // One run this large (a page of any size is fine; one item is bounded).
        FaultKind::Oversize { bytes } => json(200, format!("{{\"runs\":[{{\"notebook_name\":\"{}\"}}]}}", "x".repeat(bytes))),
        FaultKind::Delay { ms } => {
            // The request is carried out at once; only its answer is late.
            let resp = normal();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            resp
        }
        FaultKind::Redirect { status, location } => {
            let mut resp = json(status, "{}".into());
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(hyper::header::LOCATION, v);
            }
            resp
        }
        FaultKind::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            normal()
        }
        FaultKind::AnnouncedLength { bytes } => {
            let mut resp = Response::new(SimBody::claiming(bytes, "{}"));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        FaultKind::FieldValue { field, raw } => {
            let mut page: serde_json::Value = match serde_json::from_str(&body_text(normal())) {
                Ok(v) => v,
                Err(_) => return normal(),
            };
            const MARK: &str = "__sim_raw_value__";
            if let Some(obj) = page.as_object_mut() {
                for list in obj.values_mut().filter_map(|v| v.as_array_mut()) {
                    for item in list.iter_mut().filter_map(|i| i.as_object_mut()) {
                        item.insert(field.clone(), MARK.into());
                    }
                }
            }
            json(200, page.to_string().replace(&format!("\"{MARK}\""), &raw))
        }
        FaultKind::TokenLifetime { .. } => normal(),
        FaultKind::EmptyPageWithNewToken => {
            let asked = params.get("page_token").and_then(|t| parse_page_token(t)).unwrap_or(0);
            json(200, format!("{{\"next_page_token\":\"{}\"}}", page_token(asked + 1)))
        }
        FaultKind::AppliedThenStatus { status } => {
            let _ = normal();
            api_error(status, default_error_code(status), &format!("Simulated {status} after the request was carried out."))
        }
        FaultKind::AppliedThenReset => {
            let mut resp = normal();
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        FaultKind::AppliedThenBody { body } => {
            let _ = normal();
            json(200, body)
        }
        FaultKind::Reset => {
            let body = body_text(normal());
            let mut resp = Response::new(SimBody::broken_after(body[..body.len() / 2].to_string()));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}

fn body_text(resp: Response<SimBody>) -> String {
    use http_body_util::BodyExt;
    use std::future::Future;
    // SimBody is always ready, so one poll of the collect future finishes it.
    let mut fut = std::pin::pin!(resp.into_body().collect());
    let waker = std::task::Waker::noop();
    match fut.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(Ok(c)) => String::from_utf8_lossy(&c.to_bytes()).into_owned(),
        _ => String::new(),
    }
}

fn default_error_code(status: u16) -> &'static str {
    match status {
        400 => "INVALID_PARAMETER_VALUE",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "RESOURCE_DOES_NOT_EXIST",
        409 => "RESOURCE_CONFLICT",
        429 => "REQUEST_LIMIT_EXCEEDED",
        501 => "NOT_IMPLEMENTED",
        503 => "TEMPORARILY_UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL_ERROR",
    }
}

async fn control_request(state: &State, what: &str, req: Request<Incoming>) -> Response<SimBody> {
    use http_body_util::BodyExt;
    match (req.method().clone(), what) {
        (Method::GET, "health") => json(200, "{\"ok\":true}".into()),
        (Method::GET, "requests") => json(200, serde_json::json!({ "requests": state.log.snapshot() }).to_string()),
        (Method::DELETE, "requests") => {
            state.reset_log();
            json(200, "{}".into())
        }
        (Method::POST, "faults") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return json(400, serde_json::json!({"error": e.to_string()}).to_string()),
            };
            match serde_json::from_slice::<Fault>(&body) {
                Ok(f) => {
                    state.arm(f);
                    json(200, "{}".into())
                }
                Err(e) => json(400, serde_json::json!({"error": e.to_string()}).to_string()),
            }
        }
        (Method::DELETE, "faults") => {
            state.disarm_all();
            json(200, "{}".into())
        }
        (Method::POST, "expire-tokens") => {
            state.expire_issued_tokens();
            json(200, "{}".into())
        }
        (Method::POST, "latency") => {
            let ms = req.uri().query().and_then(|q| parse_query(q).get("ms").and_then(|v| v.parse().ok())).unwrap_or(0);
            state.latency_ms.store(ms, Ordering::Relaxed);
            json(200, "{}".into())
        }
        _ => json(404, "{\"error\":\"unknown control endpoint\"}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_forgeries() {
        for o in [0, 1, 25, 999_975] {
            assert_eq!(parse_page_token(&page_token(o)), Some(o));
        }
        assert_eq!(parse_page_token("pt1"), None);
        assert_eq!(parse_page_token("garbage"), None);
    }

    /// Answers `GET path?query` sent to `deployment` with a valid token: (status, body).
    fn get(state: &State, deployment: &str, path: &str, query: &str) -> (u16, serde_json::Value) {
        let segments: Vec<String> = path.split('/').skip(1).map(str::to_string).collect();
        let room = match segments.as_slice() {
            [_, _, _, name, ..] => Some(name.as_str()),
            _ => None,
        };
        let call = Call { method: &Method::GET, body: &[], read_only: false, deployment };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let resp = rt.block_on(answer(state, &call, "valid", room, &segments, &parse_query(query)));
        let status = resp.status().as_u16();
        (status, serde_json::from_str(&body_text(resp)).unwrap_or(serde_json::Value::Null))
    }

    fn room_names(page: &serde_json::Value) -> Vec<serde_json::Value> {
        page["clean_rooms"].as_array().map(|a| a.iter().map(|r| r["name"].clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn a_deployment_with_its_own_dataset_serves_reads_from_it_and_others_the_shared_one() {
        let mut config = Config::with_fixture();
        let mut only_a = Dataset::default();
        only_a.add_synthetic("room_of_a", 3);
        config.deployments.insert("a".into(), only_a);
        let state = State::new(config);
        assert_eq!(room_names(&get(&state, "a", "/api/2.0/clean-rooms", "").1), ["room_of_a"]);
        assert_eq!(get(&state, "a", "/api/2.0/clean-rooms/room_of_a/runs", "").1["runs"].as_array().unwrap().len(), 3);
        assert_eq!(get(&state, "a", "/api/2.0/clean-rooms/acme_x_retailer/runs", "").0, 404);
        assert_eq!(room_names(&get(&state, "b", "/api/2.0/clean-rooms", "").1).len(), 5, "an unknown deployment: the shared dataset");
    }

    #[test]
    fn a_deleted_room_is_listed_and_shown_but_its_listings_answer_invalid_state() {
        let mut config = Config::with_fixture();
        config.data.add_deleted_room("old", 2);
        let state = State::new(config);
        assert!(room_names(&get(&state, "", "/api/2.0/clean-rooms", "").1).contains(&"old".into()));
        let (status, room) = get(&state, "", "/api/2.0/clean-rooms/old", "");
        assert_eq!((status, room["status"].as_str()), (200, Some("DELETED")));
        for listing in ["runs", "task-runs", "assets", "auto-approval-rules"] {
            let (status, body) = get(&state, "", &format!("/api/2.0/clean-rooms/old/{listing}"), "");
            assert_eq!((status, body["error_code"].as_str()), (400, Some("INVALID_STATE")), "{listing}");
            assert!(body["message"].as_str().unwrap().contains("only deletion is allowed"), "{body}");
        }
    }

    #[test]
    fn listing_items_without_a_room_come_after_the_rooms_and_lead_nowhere() {
        let mut config = Config::with_fixture();
        config.data.add_vanished_room("ghost");
        config.data.add_unusable_room_items();
        let state = State::new(config);
        let names = room_names(&get(&state, "", "/api/2.0/clean-rooms", "").1);
        let mut expected: Vec<serde_json::Value> =
            ["acme_x_retailer", "bank_x_insurer", "empty_room", "partners/2024 é", "retired_room", "ghost"].map(Into::into).to_vec();
        expected.extend(crate::data::unusable_room_names());
        assert_eq!(names, expected);
        // Paged: the items without a room are on the later pages, not lost.
        let (_, first) = get(&state, "", "/api/2.0/clean-rooms", "page_size=4");
        let token = first["next_page_token"].as_str().unwrap().to_string();
        assert_eq!(room_names(&get(&state, "", "/api/2.0/clean-rooms", &format!("page_size=10&page_token={token}")).1), expected[4..]);
        let (status, body) = get(&state, "", "/api/2.0/clean-rooms/ghost/runs", "");
        assert_eq!((status, body["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")));
    }

    #[test]
    fn an_endpoint_fault_hits_one_listing_of_every_room_and_new_tokens_never_repeat() {
        let state = State::new(Config::with_fixture());
        state.arm(
            serde_json::from_value(
                serde_json::json!({"endpoint": "task-runs", "kind": "status", "status": 404, "error_code": "ENDPOINT_NOT_FOUND"}),
            )
            .unwrap(),
        );
        assert_eq!(get(&state, "", "/api/2.0/clean-rooms/acme_x_retailer/runs", "").0, 200);
        assert_eq!(get(&state, "", "/api/2.0/clean-rooms", "").0, 200);
        let (status, body) = get(&state, "", "/api/2.0/clean-rooms/bank_x_insurer/task-runs", "");
        assert_eq!((status, body["error_code"].as_str()), (404, Some("ENDPOINT_NOT_FOUND")));
        state.disarm_all();
        state.arm(serde_json::from_value(serde_json::json!({"room": "acme_x_retailer", "kind": "empty_page_with_new_token"})).unwrap());
        let mut seen = std::collections::HashSet::new();
        let mut query = String::new();
        for _ in 0..5 {
            let (status, page) = get(&state, "", "/api/2.0/clean-rooms/acme_x_retailer/runs", &query);
            assert_eq!(status, 200);
            assert!(page.get("runs").is_none(), "{page}");
            let token = page["next_page_token"].as_str().unwrap().to_string();
            assert!(seen.insert(token.clone()), "{token} repeated");
            query = format!("page_token={token}");
        }
    }

    #[test]
    fn envelope_shapes() {
        assert_eq!(envelope("runs", "", None, LastPage::Absent, false), "{}");
        assert_eq!(envelope("runs", "", None, LastPage::Empty, false), "{\"next_page_token\":\"\"}");
        assert_eq!(envelope("runs", "1", Some("t".into()), LastPage::Absent, false), "{\"runs\":[1],\"next_page_token\":\"t\"}");
        assert_eq!(envelope("runs", "1", Some("t".into()), LastPage::Absent, true), "{\"next_page_token\":\"t\",\"runs\":[1]}");
    }
}
