//! The simulator's configuration ([`Config`]) and what a running simulator keeps between
//! requests ([`State`]): the datasets, the request log, the armed faults, the OAuth tokens
//! issued and the rendered pages of runs.

use crate::data::Dataset;
use crate::faults::{Aim, ArmedFault, Fault, FaultKind};
use crate::log::RequestLog;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

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
    pub(crate) latency_ms: AtomicU64,
    /// API requests being answered right now, and the most there have been at once.
    pub(crate) in_flight: AtomicU64,
    pub(crate) peak_in_flight: AtomicU64,
    pub log: RequestLog,
    faults: Mutex<Vec<ArmedFault>>,
    /// OAuth tokens issued, with when each stops being valid.
    issued: Mutex<HashMap<String, Instant>>,
    token_serial: AtomicU64,
    /// Rendered pages of runs by (room, notebook filter, offset, size), when caching.
    pub(crate) pages: Mutex<HashMap<PageKey, bytes::Bytes>>,
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
    pub(crate) fn check_bearer(&self, token: &str) -> &'static str {
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
    pub(crate) fn fault_for(&self, aim: &Aim) -> Option<FaultKind> {
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
