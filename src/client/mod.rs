//! HTTP to the Databricks REST API: one connection pool and async runtime per backend, reused by
//! every scan; requests built from resource definitions; pages decoded; API errors decoded into
//! messages a user can act on. Nothing here touches Postgres, so it is tested against the
//! simulator without a database.

pub mod error;
pub mod listing;
pub mod pages;
pub mod request;
pub mod runtime;

use crate::options::Secret;
use error::ApiError;
use pages::Page;
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// The most a single response body may hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The backend's HTTP client: keep-alive connections are reused across queries.
pub fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("databricks_fdw/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect could carry the bearer token to another host: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client configuration is valid")
    })
}

/// GETs one page and decodes it. Counts bytes received into `bytes`.
pub async fn fetch_page(url: Url, token: &Secret, list_key: &str, bytes: &mut u64) -> Result<Page, ApiError> {
    let path = url.path().to_string();
    let mut resp = http()
        .get(url)
        .bearer_auth(token.expose())
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
    if !(200..300).contains(&status) {
        return Err(ApiError::from_status(&path, status, &body));
    }
    Page::decode(&body, list_key).map_err(|problem| ApiError::BadResponse { path, problem })
}
