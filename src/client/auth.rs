//! Credentials on the wire: a personal access token as it is, or OAuth machine-to-machine (a
//! service principal's client id and secret exchanged for a short-lived token at the workspace's
//! token endpoint). OAuth tokens are cached per backend, server, role and workspace, renewed
//! before they expire, and renewed once more when the API answers 401 to a cached one.

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
    OAuth(Arc<OAuthSession>),
}

/// One service principal as used by one role on one server, with its tokens by workspace.
#[derive(Debug)]
pub struct OAuthSession {
    client_id: String,
    client_secret: Secret,
    /// The server's `oauth_token_url`; otherwise `<workspace>/oidc/v1/token`.
    token_url: Option<Url>,
    tokens: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    header: Secret,
    renew_after: Instant,
}

/// Identifies an OAuth session: backend-wide, per server, role and credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub server: u32,
    pub role: u32,
    pub client_id: String,
    pub client_secret: Secret,
    pub token_url: Option<String>,
}

impl Auth {
    /// The session for `key`, shared by every scan of this backend.
    pub fn oauth(key: SessionKey) -> Auth {
        static SESSIONS: OnceLock<Mutex<HashMap<SessionKey, Arc<OAuthSession>>>> = OnceLock::new();
        let mut sessions = SESSIONS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.entry(key.clone()).or_insert_with(|| {
            Arc::new(OAuthSession {
                client_id: key.client_id.clone(),
                client_secret: key.client_secret.clone(),
                token_url: key.token_url.as_deref().and_then(|u| Url::parse(u).ok()),
                tokens: tokio::sync::Mutex::new(HashMap::new()),
            })
        });
        Auth::OAuth(session.clone())
    }

    /// Who the requests are made as, for keying cached responses (never shown anywhere).
    pub fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match self {
            Auth::Token(t) => t.hash(&mut h),
            Auth::OAuth(s) => (&s.client_id, &s.client_secret, s.token_url.as_ref().map(Url::as_str)).hash(&mut h),
        }
        h.finish()
    }

    /// A one-way digest of the credentials (SHA-256), for keys shared between backends: equal
    /// for equal credentials, and no way back to them.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match self {
            Auth::Token(t) => h.update([b"token\0".as_slice(), t.expose().as_bytes()].concat()),
            Auth::OAuth(s) => {
                for part in [s.client_id.as_str(), s.client_secret.expose(), s.token_url.as_ref().map_or("", Url::as_str)] {
                    h.update((part.len() as u64).to_le_bytes());
                    h.update(part.as_bytes());
                }
            }
        }
        h.finalize().into()
    }

    /// The `Authorization` header value for a request to `workspace`.
    pub async fn header(&self, http: &reqwest::Client, workspace: &Url) -> Result<Secret, ApiError> {
        match self {
            Auth::Token(t) => Ok(Secret::new(format!("Bearer {}", t.expose()))),
            Auth::OAuth(session) => session.header(http, workspace).await,
        }
    }

    /// The API refused `header` with 401: forget it if it came from the cache. Returns whether
    /// a retry with a fresh token makes sense.
    pub async fn rejected(&self, workspace: &Url, header: &Secret) -> bool {
        match self {
            Auth::Token(_) => false,
            Auth::OAuth(session) => {
                let url = session.token_url(workspace);
                let mut tokens = session.tokens.lock().await;
                if tokens.get(url.as_str()).is_some_and(|t| &t.header == header) {
                    tokens.remove(url.as_str());
                }
                true
            }
        }
    }
}

impl OAuthSession {
    fn token_url(&self, workspace: &Url) -> Url {
        self.token_url.clone().unwrap_or_else(|| {
            let mut url = workspace.clone();
            let path = format!("{}/oidc/v1/token", workspace.path().trim_end_matches('/'));
            url.set_path(&path);
            url
        })
    }

    async fn header(&self, http: &reqwest::Client, workspace: &Url) -> Result<Secret, ApiError> {
        let url = self.token_url(workspace);
        // One renewal at a time; other requests wait for it and use its token.
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(url.as_str()) {
            if Instant::now() < t.renew_after {
                return Ok(t.header.clone());
            }
        }
        let fresh = self.request_token(http, url.clone()).await?;
        let header = fresh.header.clone();
        tokens.insert(url.to_string(), fresh);
        Ok(header)
    }

    async fn request_token(&self, http: &reqwest::Client, url: Url) -> Result<CachedToken, ApiError> {
        let path = format!("POST {}", url.path());
        let mut resp = http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=all-apis")
            .send()
            .await
            .map_err(|e| ApiError::transport(&path, &e))?;
        let status = resp.status().as_u16();
        let body = super::read_body(&mut resp, &path, MAX_TOKEN_RESPONSE_BYTES, &mut Default::default()).await?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_status(&path, status, &body));
        }
        parse_token(&body, Instant::now()).map_err(|problem| ApiError::BadResponse { path, problem })
    }
}

const MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;
/// A token response is a few hundred bytes; anything past this is not one.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

/// Reads `{access_token, token_type, expires_in}`. The token is renewed when a fifth of its
/// lifetime (at most a minute) is left, so a request never leaves with one about to expire.
fn parse_token(body: &[u8], now: Instant) -> Result<CachedToken, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("the token response is not JSON: {e}"))?;
    let token = v.get("access_token").and_then(|t| t.as_str()).filter(|t| !t.is_empty()).ok_or("the token response has no access_token")?;
    let kind = v.get("token_type").and_then(|t| t.as_str()).unwrap_or("Bearer");
    // Any lifetime the endpoint states is believed up to a day: time arithmetic on a larger
    // one could overflow.
    let lifetime = Duration::from_secs(v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(3600).min(MAX_TOKEN_LIFETIME_SECS));
    let margin = (lifetime / 5).min(Duration::from_secs(60));
    Ok(CachedToken { header: Secret::new(format!("{kind} {token}")), renew_after: now + (lifetime - margin) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let now = Instant::now();
        let t = parse_token(br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#, now).unwrap();
        assert_eq!(t.header.expose(), "Bearer abc");
        assert_eq!(t.renew_after, now + Duration::from_secs(3540));
        let t = parse_token(br#"{"access_token":"abc","expires_in":10}"#, now).unwrap();
        assert_eq!(t.renew_after, now + Duration::from_secs(8));
        assert!(parse_token(br#"{"token_type":"Bearer"}"#, now).is_err());
        let t = parse_token(br#"{"access_token":"abc","expires_in":18446744073709551615}"#, now).unwrap();
        assert_eq!(t.renew_after, now + Duration::from_secs(86_340));
        assert!(parse_token(b"<html>", now).is_err());
    }

    #[test]
    fn the_default_token_endpoint_is_on_the_workspace() {
        let s = OAuthSession { client_id: "c".into(), client_secret: Secret::new("s".into()), token_url: None, tokens: Default::default() };
        let ws = Url::parse("http://127.0.0.1:9/ws/dbc-a").unwrap();
        assert_eq!(s.token_url(&ws).as_str(), "http://127.0.0.1:9/ws/dbc-a/oidc/v1/token");
        let ws = Url::parse("https://dbc-a.cloud.databricks.com/").unwrap();
        assert_eq!(s.token_url(&ws).as_str(), "https://dbc-a.cloud.databricks.com/oidc/v1/token");
    }
}
