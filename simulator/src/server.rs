//! The HTTP server: starting a simulator ([`spawn`]), serving its connections, and taking each
//! API request through the token check and the armed faults to its answer, which is recorded
//! in the request log.

use crate::body::SimBody;
use crate::control::control_request;
use crate::fault_responses::faulty_response;
use crate::faults::Aim;
use crate::log::Entry;
use crate::respond::api_error;
use crate::routes::api_response;
use crate::state::{Config, State};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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
pub(crate) struct DropConnection;

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
    let read_only = bearer.is_some_and(|t| state.config().read_only_tokens.iter().any(|r| r == t));
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
pub(crate) struct Call<'a> {
    pub(crate) method: &'a Method,
    pub(crate) body: &'a [u8],
    pub(crate) read_only: bool,
    /// The workspace it was sent to (its dataset answers reads).
    pub(crate) deployment: &'a str,
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

/// Requests taken through [`answer`] (token valid): routing, datasets per workspace, faults.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::respond::body_text;

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
}
