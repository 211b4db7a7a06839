//! The ways to sign in that get tokens from a token endpoint, each request shaped as the
//! Databricks SDKs send it: OAuth M2M and workload identity federation at the workspace's
//! `/oidc/v1/token`, an Entra ID service principal at `login.microsoftonline.com`, an Azure
//! managed identity at the instance metadata service, a Google service account (see `google`).

use super::super::error::ApiError;
use super::super::secret::Secret;
use super::{google, token, Headers};
use std::time::Duration;
use url::Url;

/// The application id of Azure Databricks: the `resource` of every Entra ID token for it.
pub const AZURE_DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
/// The instance metadata service answers in milliseconds where there is one; where there is
/// none, a connection would wait for the whole request timeout.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// A token response is a few kilobytes; anything past this is not one.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

/// A way to sign in through a token endpoint, with what it needs.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    /// `oauth-m2m`: a Databricks service principal's id and secret.
    OAuthM2M { client_id: String, client_secret: Secret },
    /// `azure-client-secret`: an Entra ID application.
    AzureClientSecret { tenant_id: String, client_id: String, client_secret: Secret },
    /// `azure-msi`: the managed identity of the machine (a user-assigned one by its client id).
    AzureMsi { client_id: Option<String> },
    /// `google-credentials`: a service-account key (its JSON).
    Google { key: Secret },
    /// `file-oidc`: a JWT in a file exchanged for a Databricks token.
    FileOidc { token_file: String, client_id: Option<String> },
}

/// The server's token endpoints.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Endpoints {
    /// `oauth_token_url`; else `<workspace>/oidc/v1/token`.
    pub oauth_token_url: Option<Url>,
    /// `azure_login_url`: Entra ID's host.
    pub azure_login_url: Url,
    /// `azure_msi_url`: the instance metadata service's token endpoint.
    pub azure_msi_url: Url,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            oauth_token_url: None,
            azure_login_url: Url::parse("https://login.microsoftonline.com").expect("a valid URL"),
            azure_msi_url: Url::parse("http://169.254.169.254/metadata/identity/oauth2/token").expect("a valid URL"),
        }
    }
}

impl Method {
    /// The SDKs' `auth_type` for it.
    pub fn name(&self) -> &'static str {
        match self {
            Method::OAuthM2M { .. } => "oauth-m2m",
            Method::AzureClientSecret { .. } => "azure-client-secret",
            Method::AzureMsi { .. } => "azure-msi",
            Method::Google { .. } => "google-credentials",
            Method::FileOidc { .. } => "file-oidc",
        }
    }

    /// The server option that names its endpoint, for hints.
    fn endpoint_option(&self) -> &'static str {
        match self {
            Method::OAuthM2M { .. } | Method::FileOidc { .. } => "oauth_token_url",
            Method::AzureClientSecret { .. } => "azure_login_url",
            Method::AzureMsi { .. } => "azure_msi_url",
            Method::Google { .. } => "google_credentials",
        }
    }

    /// What a token is for: tokens of the workspace's own endpoint are per workspace, Entra ID's
    /// are good for every Azure Databricks workspace, Google's ID token names its workspace.
    pub fn cache_key(&self, endpoints: &Endpoints, workspace: &Url) -> String {
        match self {
            Method::OAuthM2M { .. } | Method::FileOidc { .. } => workspace_token_url(endpoints, workspace).to_string(),
            Method::AzureClientSecret { .. } | Method::AzureMsi { .. } => String::new(),
            Method::Google { .. } => google::audience(workspace),
        }
    }

    /// The token endpoint, as the check shows it (no query: it may hold a client id).
    pub fn endpoint(&self, endpoints: &Endpoints, workspace: &Url) -> Result<String, ApiError> {
        let mut url = match self {
            Method::OAuthM2M { .. } | Method::FileOidc { .. } => workspace_token_url(endpoints, workspace),
            Method::AzureClientSecret { tenant_id, .. } => entra_url(endpoints, tenant_id),
            Method::AzureMsi { .. } => endpoints.azure_msi_url.clone(),
            Method::Google { key } => google::Key::parse(key).map_err(|p| self.unusable(p))?.token_uri,
        };
        url.set_query(None);
        Ok(url.to_string())
    }

    /// Gets new headers, and how long they are valid.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        workspace: &Url,
        timeout: Duration,
    ) -> Result<(Headers, Duration), ApiError> {
        let issued = match self {
            Method::OAuthM2M { client_id, client_secret } => {
                let form = form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]);
                let request = http.post(workspace_token_url(endpoints, workspace)).basic_auth(client_id, Some(client_secret.expose()));
                self.send(request.timeout(timeout), Some(form), "access_token", &[client_secret.expose()]).await?
            }
            Method::AzureClientSecret { tenant_id, client_id, client_secret } => {
                // As the SDKs send it: the credentials in the form, the resource of Azure
                // Databricks (Entra ID's v1 endpoint).
                let form = form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "all-apis"),
                    ("resource", AZURE_DATABRICKS_RESOURCE),
                    ("client_id", client_id),
                    ("client_secret", client_secret.expose()),
                ]);
                let request = http.post(entra_url(endpoints, tenant_id)).timeout(timeout);
                self.send(request, Some(form), "access_token", &[client_secret.expose()]).await?
            }
            Method::AzureMsi { client_id } => {
                let mut url = endpoints.azure_msi_url.clone();
                url.query_pairs_mut().append_pair("api-version", "2018-02-01").append_pair("resource", AZURE_DATABRICKS_RESOURCE);
                if let Some(id) = client_id {
                    url.query_pairs_mut().append_pair("client_id", id);
                }
                let request = http.get(url).header("Metadata", "true").timeout(timeout.min(METADATA_TIMEOUT));
                self.send(request, None, "access_token", &[]).await?
            }
            Method::FileOidc { token_file, client_id } => {
                // Read at every exchange: the platform rotates the file.
                let jwt = read_token_file(token_file).map_err(|p| self.unusable(p))?;
                let mut pairs = vec![
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", jwt.expose()),
                    ("subject_token_type", JWT_TOKEN_TYPE),
                    ("scope", "all-apis"),
                ];
                if let Some(id) = client_id {
                    pairs.push(("client_id", id));
                }
                let request = http.post(workspace_token_url(endpoints, workspace)).timeout(timeout);
                self.send(request, Some(form(&pairs)), "access_token", &[jwt.expose()]).await?
            }
            Method::Google { key } => {
                let key = google::Key::parse(key).map_err(|p| self.unusable(p))?;
                let (id_form, access_form) = key.assertions(workspace, token::now_epoch()).map_err(|p| self.unusable(p))?;
                let id = self.send(http.post(key.token_uri.clone()).timeout(timeout), Some(id_form), "id_token", &[]).await?;
                let access = self.send(http.post(key.token_uri.clone()).timeout(timeout), Some(access_form), "access_token", &[]).await?;
                let headers = Headers {
                    authorization: Secret::new(format!("Bearer {}", id.access_token.expose())),
                    extra: vec![(google::ACCESS_TOKEN_HEADER, access.access_token)],
                };
                return Ok((headers, id.lifetime.min(access.lifetime)));
            }
        };
        let headers =
            Headers { authorization: Secret::new(format!("{} {}", issued.token_type, issued.access_token.expose())), extra: Vec::new() };
        Ok((headers, issued.lifetime))
    }

    /// Sends one token request and reads its token; a failure names the method and the
    /// endpoint's status and error code, with `secrets` cut out of whatever the endpoint said.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        form: Option<String>,
        field: &str,
        secrets: &[&str],
    ) -> Result<token::Issued, ApiError> {
        let request = match form {
            Some(body) => request.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body),
            None => request,
        };
        let request = request.header(reqwest::header::ACCEPT, "application/json");
        let (client, request) = request.build_split();
        let request = request.map_err(|e| self.failed(ApiError::transport("token request", &e), secrets))?;
        let path = format!("{} {}", request.method(), shown(request.url()));
        let mut resp = client.execute(request).await.map_err(|e| self.failed(ApiError::transport(&path, &e), secrets))?;
        let status = resp.status().as_u16();
        let body = super::super::read_body(&mut resp, &path, MAX_TOKEN_RESPONSE_BYTES, &mut Default::default())
            .await
            .map_err(|e| self.failed(e, secrets))?;
        if !(200..300).contains(&status) {
            return Err(self.failed(endpoint_error(&path, status, &body), secrets));
        }
        token::parse(&body, field).map_err(|problem| self.failed(ApiError::BadResponse { path, problem }, secrets))
    }

    /// `error` as a failure to sign in with this method.
    fn failed(&self, error: ApiError, secrets: &[&str]) -> ApiError {
        // The metadata service is on the machine or not at all: waiting and trying again does
        // not make one appear.
        let retryable = super::super::retry::is_retryable(&error)
            && !(matches!(self, Method::AzureMsi { .. }) && matches!(error, ApiError::Transport { .. }));
        ApiError::SignIn { method: self.name(), option: self.endpoint_option(), error: Box::new(scrub(error, secrets)), retryable }
    }

    fn unusable(&self, problem: String) -> ApiError {
        ApiError::CredentialUnusable { method: self.name(), problem }
    }
}

/// The workspace's token endpoint, or the server's `oauth_token_url`.
fn workspace_token_url(endpoints: &Endpoints, workspace: &Url) -> Url {
    endpoints.oauth_token_url.clone().unwrap_or_else(|| {
        let mut url = workspace.clone();
        let path = format!("{}/oidc/v1/token", workspace.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    })
}

/// `{azure_login_url}/{tenant}/oauth2/token`, the tenant one path segment.
fn entra_url(endpoints: &Endpoints, tenant_id: &str) -> Url {
    let mut url = endpoints.azure_login_url.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend([tenant_id, "oauth2", "token"]);
    }
    url
}

/// A request's endpoint in messages: host and path, never the query.
fn shown(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A token endpoint's refusal: OAuth endpoints name the error in `error` (`invalid_client`) and
/// explain it in `error_description`.
fn endpoint_error(path: &str, status: u16, body: &[u8]) -> ApiError {
    let mut e = ApiError::from_status(path, status, body);
    if let ApiError::Status { error_code, message, .. } = &mut e {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        if error_code.is_none() {
            *error_code = field("error").map(|c| crate::text::excerpt(&c, 64));
            if let Some(d) = field("error_description") {
                let flat: String = d.split_whitespace().collect::<Vec<_>>().join(" ");
                *message = Some(crate::text::excerpt(&flat, 300));
            } else if error_code.is_some() {
                *message = None;
            }
        }
    }
    e
}

/// `e` without any of `secrets` in what it quotes (an endpoint may echo what it was sent).
fn scrub(e: ApiError, secrets: &[&str]) -> ApiError {
    let clean = |text: &mut String| {
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            *text = text.replace(*s, "***");
        }
    };
    match e {
        ApiError::Status { path, status, error_code, mut message, details } => {
            if let Some(m) = message.as_mut() {
                clean(m);
            }
            ApiError::Status { path, status, error_code, message, details }
        }
        ApiError::Transport { path, mut problem, timeout, lasting, unsent } => {
            clean(&mut problem);
            ApiError::Transport { path, problem, timeout, lasting, unsent }
        }
        ApiError::BadResponse { path, mut problem } => {
            clean(&mut problem);
            ApiError::BadResponse { path, problem }
        }
        other => other,
    }
}

/// The JWT in `path`, trimmed; an empty or unreadable file is an error naming the file.
fn read_token_file(path: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read oidc_token_file \"{path}\": {e}"))?;
    let jwt = text.trim();
    if jwt.is_empty() {
        return Err(format!("oidc_token_file \"{path}\" is empty"));
    }
    Ok(Secret::new(jwt.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_built_as_the_sdks_build_them() {
        let e = Endpoints::default();
        let ws = Url::parse("http://127.0.0.1:9/ws/dbc-a").unwrap();
        assert_eq!(workspace_token_url(&e, &ws).as_str(), "http://127.0.0.1:9/ws/dbc-a/oidc/v1/token");
        let ws = Url::parse("https://dbc-a.cloud.databricks.com/").unwrap();
        assert_eq!(workspace_token_url(&e, &ws).as_str(), "https://dbc-a.cloud.databricks.com/oidc/v1/token");
        assert_eq!(
            entra_url(&e, "contoso.onmicrosoft.com").as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token"
        );
        let sovereign = Endpoints { azure_login_url: Url::parse("http://127.0.0.1:9/entra/").unwrap(), ..Endpoints::default() };
        assert_eq!(entra_url(&sovereign, "a/b").as_str(), "http://127.0.0.1:9/entra/a%2Fb/oauth2/token");
        let msi = Method::AzureMsi { client_id: Some("c".into()) };
        assert_eq!(msi.endpoint(&e, &ws).unwrap(), "http://169.254.169.254/metadata/identity/oauth2/token");
    }

    #[test]
    fn endpoint_errors_name_the_oauth_error_and_never_a_secret() {
        let body = concat!(
            r#"{"error":"invalid_client","#,
            r#""error_description":"AADSTS7000215: Invalid client secret provided: s3cr3t-value.\r\nTrace ID: 1","#,
            r#""error_codes":[7000215]}"#
        )
        .as_bytes();
        let e = scrub(endpoint_error("POST /t/oauth2/token", 401, body), &["s3cr3t-value"]);
        let ApiError::Status { status, error_code, message, .. } = e else { panic!("{e:?}") };
        assert_eq!((status, error_code.as_deref()), (401, Some("invalid_client")));
        assert_eq!(message.as_deref(), Some("AADSTS7000215: Invalid client secret provided: ***. Trace ID: 1"));
        let ApiError::Status { error_code, .. } =
            endpoint_error("POST /oidc/v1/token", 400, br#"{"error_code":"INVALID_REQUEST","message":"m"}"#)
        else {
            panic!()
        };
        assert_eq!(error_code.as_deref(), Some("INVALID_REQUEST"));
    }

    #[test]
    fn token_files_are_read_whole_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("dbx-fdw-oidc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "eyJ.a.b\n").unwrap();
        assert_eq!(read_token_file(file.to_str().unwrap()).unwrap().expose(), "eyJ.a.b");
        std::fs::write(&file, " \n").unwrap();
        assert!(read_token_file(file.to_str().unwrap()).unwrap_err().contains("is empty"));
        let missing = dir.join("missing");
        assert!(read_token_file(missing.to_str().unwrap()).unwrap_err().contains("cannot read oidc_token_file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
