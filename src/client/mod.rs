//! HTTP to the Databricks REST API: one connection pool and async runtime per backend, reused by
//! every scan; requests built from resource definitions; pages decoded; API errors decoded into
//! messages a user can act on. Nothing here touches Postgres, so it is tested against the
//! simulator without a database.

pub mod auth;
pub mod error;
pub mod listing;
pub mod pages;
pub mod request;
pub mod runtime;

use auth::Auth;
use error::ApiError;
use pages::Page;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// The most a single response body may hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP client per set of trusted certificates (`None`: the public web PKI roots), kept for
/// the backend's life so keep-alive connections are reused across queries.
fn http(ca_certificate: Option<&str>) -> Result<reqwest::Client, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<Option<String>, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&ca_certificate.map(str::to_string)) {
        return Ok(c.clone());
    }
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("databricks_fdw/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // A redirect could carry the credentials to another host: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    if let Some(pem) = ca_certificate {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    clients.insert(ca_certificate.map(str::to_string), client.clone());
    Ok(client)
}

/// Talks to the API for one role on one server: the HTTP client and the credentials.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    auth: Auth,
}

impl ApiClient {
    pub fn new(auth: Auth, ca_certificate: Option<&str>) -> Result<ApiClient, String> {
        Ok(ApiClient { http: http(ca_certificate)?, auth })
    }

    /// GETs one page of a listing in `workspace` and decodes it. Counts bytes received into
    /// `bytes`. A 401 to a cached OAuth token renews the token and tries once more.
    pub async fn fetch_page(&self, workspace: &Url, url: Url, list_key: &str, bytes: &mut u64) -> Result<Page, ApiError> {
        let path = format!("GET {}", url.path());
        let mut renewed = false;
        loop {
            let header = self.auth.header(&self.http, workspace).await?;
            let mut resp = self
                .http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, header.expose())
                .send()
                .await
                .map_err(|e| ApiError::transport(&path, &e))?;
            let status = resp.status().as_u16();
            let mut body = Vec::with_capacity(resp.content_length().unwrap_or(16 * 1024).min(MAX_BODY_BYTES as u64) as usize);
            while let Some(chunk) = resp.chunk().await.map_err(|e| ApiError::transport(&path, &e))? {
                *bytes += chunk.len() as u64;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::TooLarge { path, limit: MAX_BODY_BYTES });
                }
                body.extend_from_slice(&chunk);
            }
            if status == 401 && !renewed && self.auth.rejected(workspace, &header).await {
                renewed = true;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(ApiError::from_status(&path, status, &body));
            }
            return Page::decode(&body, list_key).map_err(|problem| ApiError::BadResponse { path, problem });
        }
    }
}
