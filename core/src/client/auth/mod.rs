//! Credentials on the wire. A personal access token is sent as it is; every other way to sign
//! in (`methods`) exchanges what the user mapping holds for short-lived tokens at a token
//! endpoint. Those tokens are cached per backend, server, role and credentials (one session,
//! shared by every scan), renewed before they expire, and renewed once more when the API
//! answers 401 to a cached one.

pub mod google;
mod methods;
pub mod token;

pub use methods::{Endpoints, Method};

use super::error::ApiError;
use super::secret::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use url::Url;

/// How requests are authorised.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Token(Secret),
    /// Tokens from a token endpoint, cached.
    Session(Arc<Session>),
}

/// What a request carries to sign in: the `Authorization` value and, for some methods, more
/// headers (Google's access token).
#[derive(Clone, Debug, PartialEq)]
pub struct Headers {
    pub authorization: Secret,
    pub extra: Vec<(&'static str, Secret)>,
}

/// One way to sign in as used by one role on one server, with its tokens.
#[derive(Debug)]
pub struct Session {
    method: Method,
    endpoints: Endpoints,
    /// By what the token is for ([`Method::cache_key`]: its endpoint, or its audience).
    tokens: tokio::sync::Mutex<HashMap<String, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    headers: Headers,
    renew_after: Instant,
}

/// Identifies a session: backend-wide, per server, role and credentials.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SessionKey {
    pub server: u32,
    pub role: u32,
    pub method: Method,
    pub endpoints: Endpoints,
}

/// What the check reports about signing in (never the token).
pub struct SignedIn {
    /// The token endpoint asked, or None (a personal access token needs none).
    pub endpoint: Option<String>,
    /// Whether the token came from this backend's cache rather than from the endpoint just now.
    pub cached: bool,
    /// How long until it is renewed.
    pub renewed_in: Duration,
}

impl Auth {
    /// The session for `key`, shared by every scan of this backend.
    pub fn session(key: SessionKey) -> Auth {
        static SESSIONS: OnceLock<Mutex<HashMap<SessionKey, Arc<Session>>>> = OnceLock::new();
        let mut sessions = SESSIONS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.entry(key.clone()).or_insert_with(|| {
            Arc::new(Session { method: key.method, endpoints: key.endpoints, tokens: tokio::sync::Mutex::new(HashMap::new()) })
        });
        Auth::Session(session.clone())
    }

    /// The `auth_type` these credentials sign in with.
    pub fn method_name(&self) -> &'static str {
        match self {
            Auth::Token(_) => "pat",
            Auth::Session(s) => s.method.name(),
        }
    }

    /// A one-way digest (SHA-256) of the credentials, for keys shared between backends: equal
    /// for equal credentials, with no way back to them.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        use std::hash::{Hash, Hasher};
        /// Feeds what `Hash` writes (every field, secrets included) to SHA-256.
        struct Feed(Sha256);
        impl Hasher for Feed {
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
            fn finish(&self) -> u64 {
                0
            }
        }
        let mut feed = Feed(Sha256::new());
        match self {
            Auth::Token(t) => ("pat", t).hash(&mut feed),
            Auth::Session(s) => (s.method.name(), &s.method, &s.endpoints).hash(&mut feed),
        }
        feed.0.finalize().into()
    }

    /// The headers that sign a request to `workspace`; a token endpoint takes at most
    /// `timeout` to answer.
    pub async fn headers(&self, http: &reqwest::Client, workspace: &Url, timeout: Duration) -> Result<Headers, ApiError> {
        match self {
            Auth::Token(t) => Ok(Headers { authorization: Secret::new(format!("Bearer {}", t.expose())), extra: Vec::new() }),
            Auth::Session(session) => session.headers(http, workspace, timeout).await.map(|(h, _)| h),
        }
    }

    /// Signs in (from the cache when it can) and says how, for `databricks_fdw_check()`.
    pub async fn sign_in(&self, http: &reqwest::Client, workspace: &Url, timeout: Duration) -> Result<SignedIn, ApiError> {
        match self {
            Auth::Token(_) => Ok(SignedIn { endpoint: None, cached: false, renewed_in: Duration::ZERO }),
            Auth::Session(session) => {
                let (_, (cached, renew_after)) = session.headers(http, workspace, timeout).await?;
                let endpoint = session.method.endpoint(&session.endpoints, workspace).ok();
                Ok(SignedIn { endpoint, cached, renewed_in: renew_after.saturating_duration_since(Instant::now()) })
            }
        }
    }

    /// The API refused `headers` with 401: forget them if they came from the cache. Returns
    /// whether a retry with a fresh token makes sense.
    pub async fn rejected(&self, workspace: &Url, headers: &Headers) -> bool {
        match self {
            Auth::Token(_) => false,
            Auth::Session(session) => {
                let key = session.method.cache_key(&session.endpoints, workspace);
                let mut tokens = session.tokens.lock().await;
                if tokens.get(&key).is_some_and(|t| &t.headers == headers) {
                    tokens.remove(&key);
                }
                true
            }
        }
    }
}

impl Session {
    /// The headers, and whether they came from the cache and when they are renewed.
    async fn headers(&self, http: &reqwest::Client, workspace: &Url, timeout: Duration) -> Result<(Headers, (bool, Instant)), ApiError> {
        let key = self.method.cache_key(&self.endpoints, workspace);
        // One renewal at a time; other requests wait for it and use its token.
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&key) {
            if Instant::now() < t.renew_after {
                return Ok((t.headers.clone(), (true, t.renew_after)));
            }
        }
        let (headers, lifetime) = self.method.request(http, &self.endpoints, workspace, timeout).await?;
        let renew_after = token::renew_after(lifetime, Instant::now());
        tokens.insert(key, Cached { headers: headers.clone(), renew_after });
        Ok((headers, (false, renew_after)))
    }
}
