//! The token endpoints a server signs in at, each checking the request as the Databricks SDKs
//! send it and answering as the real endpoint does (errors included):
//! - `POST /oidc/v1/token` (under a workspace): OAuth M2M (client credentials, HTTP Basic) and
//!   workload identity federation (token exchange of a JWT matched against federation policies);
//! - `POST /entra/{tenant}/oauth2/token`: Entra ID's v1 endpoint (`expires_in` as a string);
//! - `GET /metadata/identity/oauth2/token`: Azure's instance metadata service (`Metadata: true`);
//! - `POST /google/token`: Google's, checking an RS256 assertion's signature and claims; it
//!   issues ID tokens (their audience checked on API requests) and access tokens.
//!
//! Issued tokens are valid bearer tokens for the API until they expire. The request log shows
//! each request's form with its secrets (`client_secret`, `subject_token`, `assertion`) as `***`.

use crate::body::SimBody;
use crate::log::Entry;
use crate::respond::json;
use crate::server::parse_query;
use crate::state::State;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The application id of Azure Databricks, the resource of its Entra ID tokens.
pub const AZURE_DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
/// A service-account key for tests (generated for this simulator; it protects nothing).
pub const TEST_GOOGLE_KEY: &str = include_str!("../fixtures/test-google-key.pem");
pub const GOOGLE_ASSERTION_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
pub const GCP_ACCESS_TOKEN_HEADER: &str = "x-databricks-gcp-sa-access-token";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Who the token endpoints know.
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// Entra ID applications: (tenant, client id, client secret).
    pub azure_apps: Vec<(String, String, String)>,
    /// The machine's managed identities: None is the system-assigned one, Some the client id
    /// of a user-assigned one.
    pub managed_identities: Vec<Option<String>>,
    /// Google service accounts: (client_email, PKCS#8 PEM private key, whose public half checks
    /// the assertions).
    pub google_accounts: Vec<(String, String)>,
    /// Federation policies: (client id, or None for account-wide federation; issuer; subject).
    pub federation: Vec<(Option<String>, String, String)>,
}

pub const AZURE_TENANT: &str = "sim-tenant";
pub const AZURE_CLIENT_ID: &str = "sim-azure-app";
pub const AZURE_CLIENT_SECRET: &str = "sim-azure-secret";
pub const USER_ASSIGNED_IDENTITY: &str = "sim-user-assigned";
pub const GOOGLE_ACCOUNT: &str = "sim-sa@sim-project.iam.gserviceaccount.com";
pub const FEDERATED_CLIENT_ID: &str = "sim-federated-sp";
pub const FEDERATION_ISSUER: &str = "https://kubernetes.default.svc";
pub const FEDERATION_SUBJECT: &str = "system:serviceaccount:db:postgres";

impl Default for IdpConfig {
    fn default() -> Self {
        IdpConfig {
            azure_apps: vec![(AZURE_TENANT.into(), AZURE_CLIENT_ID.into(), AZURE_CLIENT_SECRET.into())],
            managed_identities: vec![None, Some(USER_ASSIGNED_IDENTITY.into())],
            google_accounts: vec![(GOOGLE_ACCOUNT.into(), TEST_GOOGLE_KEY.into())],
            federation: vec![
                (Some(FEDERATED_CLIENT_ID.into()), FEDERATION_ISSUER.into(), FEDERATION_SUBJECT.into()),
                (None, FEDERATION_ISSUER.into(), FEDERATION_SUBJECT.into()),
            ],
        }
    }
}

/// Google ID tokens issued, with the audience each names.
#[derive(Default)]
pub struct IdpState {
    google_audiences: Mutex<HashMap<String, String>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response<SimBody> {
    json(status, json!({"error": error, "error_description": description}).to_string())
}

/// An Entra ID error, with the fields Entra ID adds.
fn entra_error(status: u16, error: &str, code: u32, description: &str) -> Response<SimBody> {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 00000000-sim\r\nCorrelation ID: 00000000-sim"),
        "error_codes": [code],
        "trace_id": "00000000-sim"
    });
    json(status, body.to_string())
}

/// The form of a token request and its raw headers' values that matter.
struct TokenRequest {
    method: Method,
    form: HashMap<String, String>,
    query: HashMap<String, String>,
    basic: Option<(String, String)>,
    metadata: bool,
    form_encoded: bool,
}

async fn read(req: Request<Incoming>) -> TokenRequest {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let basic = header(AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Basic ").map(str::to_string))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, secret)| (id.to_string(), secret.to_string())));
    let metadata = header("metadata").as_deref() == Some("true");
    let form_encoded = header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let query = parse_query(req.uri().query().unwrap_or(""));
    let method = req.method().clone();
    let form = match req.into_body().collect().await {
        Ok(b) => parse_query(&String::from_utf8_lossy(&b.to_bytes())),
        Err(_) => HashMap::new(),
    };
    TokenRequest { method, form, query, basic, metadata, form_encoded }
}

/// Answers a token endpoint's request; hands the request back when `path` is not one.
pub async fn route(state: &State, req: Request<Incoming>, path: &str, deployment: &str) -> Result<Response<SimBody>, Request<Incoming>> {
    let tenant = path.strip_prefix("/entra/").and_then(|p| p.strip_suffix("/oauth2/token")).map(str::to_string);
    let kind = match (path, tenant) {
        ("/oidc/v1/token", _) => "databricks",
        ("/metadata/identity/oauth2/token", _) => "msi",
        ("/google/token", _) => "google",
        (_, Some(_)) => "entra",
        _ => return Err(req),
    };
    let r = read(req).await;
    let (resp, accepted) = match kind {
        "databricks" => databricks(state, &r),
        "msi" => msi(state, &r),
        "google" => google(state, &r),
        _ => entra(state, &r, path.trim_start_matches("/entra/").trim_end_matches("/oauth2/token")),
    };
    let shown: Vec<String> = {
        let mut pairs: Vec<(&String, &String)> = r.form.iter().chain(r.query.iter()).collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| {
                if ["client_secret", "subject_token", "assertion"].contains(&k.as_str()) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect()
    };
    state.log.push(Entry {
        seq: 0,
        method: r.method.to_string(),
        path: path.to_string(),
        query: shown.join("&"),
        body: None,
        deployment: deployment.to_string(),
        auth: if accepted { "valid" } else { "invalid" },
        room: None,
        status: resp.status().as_u16(),
        accept: None,
        at_us: crate::log::now_us(),
    });
    Ok(resp)
}

/// A token issued now, as Databricks and Azure endpoints describe it.
fn issued(state: &State, prefix: &str) -> (String, u64) {
    state.issue_token(prefix)
}

fn databricks(state: &State, r: &TokenRequest) -> (Response<SimBody>, bool) {
    if r.method != Method::POST {
        return (oauth_error(405, "invalid_request", "Use POST."), false);
    }
    if r.form.get("scope").map(String::as_str) != Some("all-apis") && r.form.get("grant_type").map(String::as_str) == Some(TOKEN_EXCHANGE) {
        return (oauth_error(400, "invalid_scope", "The scope must be all-apis."), false);
    }
    match r.form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let known = r.basic.as_ref().is_some_and(|c| state.config().oauth_clients.contains(c));
            if !known {
                return (oauth_error(401, "invalid_client", "Client authentication failed."), false);
            }
            if r.form.get("scope").map(String::as_str) != Some("all-apis") {
                return (oauth_error(400, "invalid_scope", "The scope must be all-apis."), false);
            }
        }
        Some(TOKEN_EXCHANGE) => {
            if r.form.get("subject_token_type").map(String::as_str) != Some("urn:ietf:params:oauth:token-type:jwt") {
                return (oauth_error(400, "invalid_request", "subject_token_type must be urn:ietf:params:oauth:token-type:jwt."), false);
            }
            if r.basic.is_some() {
                return (oauth_error(400, "invalid_request", "Token exchange takes no client secret."), false);
            }
            let claims = r.form.get("subject_token").and_then(|t| jwt_claims(t));
            let Some(claims) = claims else {
                return (oauth_error(400, "invalid_request", "subject_token is not a JWT."), false);
            };
            if claims["exp"].as_u64().is_none_or(|exp| exp <= now()) {
                return (oauth_error(400, "invalid_grant", "The subject token has expired."), false);
            }
            let client_id = r.form.get("client_id").cloned();
            let matches = state
                .config()
                .idp
                .federation
                .iter()
                .any(|(id, iss, sub)| *id == client_id && claims["iss"] == iss.as_str() && claims["sub"] == sub.as_str());
            if !matches {
                return (oauth_error(401, "invalid_client", "The subject token matches no federation policy of this client."), false);
            }
        }
        _ => return (oauth_error(400, "unsupported_grant_type", "Only client_credentials and token exchange are supported."), false),
    }
    let (token, expires_in) = issued(state, "sim-oauth");
    (json(200, json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": "all-apis"}).to_string()), true)
}

fn entra(state: &State, r: &TokenRequest, tenant: &str) -> (Response<SimBody>, bool) {
    let apps = &state.config().idp.azure_apps;
    let field = |k: &str| r.form.get(k).map(String::as_str);
    if r.method != Method::POST || !r.form_encoded {
        return (
            entra_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."),
            false,
        );
    }
    if !apps.iter().any(|(t, _, _)| t == tenant) {
        return (
            entra_error(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."),
            ),
            false,
        );
    }
    if field("grant_type") != Some("client_credentials") {
        return (entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."), false);
    }
    let Some(client) = field("client_id") else {
        return (entra_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."), false);
    };
    let Some((_, _, secret)) = apps.iter().find(|(t, c, _)| t == tenant && c == client) else {
        return (
            entra_error(
                400,
                "unauthorized_client",
                700016,
                &format!("Application with identifier '{client}' was not found in the directory."),
            ),
            false,
        );
    };
    if field("client_secret") != Some(secret.as_str()) {
        let description = format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, \
             not the client secret ID, for a secret added to app '{client}'."
        );
        return (entra_error(401, "invalid_client", 7000215, &description), false);
    }
    if field("resource") != Some(AZURE_DATABRICKS_RESOURCE) {
        return (entra_error(400, "invalid_resource", 500011, "The resource principal was not found in the tenant."), false);
    }
    (azure_token(state), true)
}

/// Entra ID's v1 answer: every number a string.
fn azure_token(state: &State) -> Response<SimBody> {
    let (token, expires_in) = issued(state, "sim-entra");
    let body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in.to_string(),
        "ext_expires_in": expires_in.to_string(),
        "expires_on": (now() + expires_in).to_string(),
        "not_before": now().to_string(),
        "resource": AZURE_DATABRICKS_RESOURCE,
        "access_token": token
    });
    json(200, body.to_string())
}

fn msi(state: &State, r: &TokenRequest) -> (Response<SimBody>, bool) {
    if r.method != Method::GET {
        return (oauth_error(405, "invalid_request", "Use GET."), false);
    }
    if !r.metadata {
        return (oauth_error(400, "invalid_request", "Required metadata header not specified"), false);
    }
    if r.query.get("api-version").map(String::as_str) != Some("2018-02-01") {
        return (oauth_error(400, "invalid_request", "Required query variable 'api-version' is missing or not supported"), false);
    }
    if r.query.get("resource").map(String::as_str) != Some(AZURE_DATABRICKS_RESOURCE) {
        return (oauth_error(400, "invalid_resource", "The resource is not an Azure Databricks application."), false);
    }
    let identity = r.query.get("client_id").cloned();
    if !state.config().idp.managed_identities.contains(&identity) {
        return (oauth_error(400, "invalid_request", "Identity not found"), false);
    }
    (azure_token(state), true)
}

fn google(state: &State, r: &TokenRequest) -> (Response<SimBody>, bool) {
    let refuse = |d: &str| (oauth_error(400, "invalid_grant", d), false);
    if r.method != Method::POST || r.form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return (oauth_error(400, "unsupported_grant_type", "Invalid grant_type."), false);
    }
    let Some(assertion) = r.form.get("assertion") else { return refuse("Missing assertion.") };
    let parts: Vec<&str> = assertion.split('.').collect();
    let (Some(header), Some(claims), [_, _, signature]) =
        (parts.first().and_then(|p| decode_json(p)), parts.get(1).and_then(|p| decode_json(p)), parts.as_slice())
    else {
        return refuse("Invalid JWT.");
    };
    if header["alg"] != "RS256" || header["typ"] != "JWT" {
        return refuse("Invalid JWT: the header must be {\"alg\":\"RS256\",\"typ\":\"JWT\"}.");
    }
    let Some((email, pem)) = state.config().idp.google_accounts.iter().find(|(e, _)| claims["iss"] == e.as_str()) else {
        return refuse("Invalid grant: account not found");
    };
    let Some(public) = public_key(pem) else { return refuse("The account has no usable key.") };
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public);
    let signed =
        URL_SAFE_NO_PAD.decode(signature).ok().is_some_and(|s| key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &s).is_ok());
    if !signed {
        return refuse("Invalid JWT Signature.");
    }
    if claims["aud"] != GOOGLE_ASSERTION_AUDIENCE {
        return refuse("Invalid JWT: the audience must be https://oauth2.googleapis.com/token.");
    }
    let (iat, exp) = (claims["iat"].as_u64().unwrap_or(0), claims["exp"].as_u64().unwrap_or(0));
    if iat > now() + 60 || exp <= now() || exp.saturating_sub(iat) > 3600 {
        return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    if let Some(audience) = claims["target_audience"].as_str() {
        // Google states an ID token's lifetime only in its exp claim.
        let claims = json!({
            "iss": "https://accounts.google.com",
            "aud": audience,
            "sub": email,
            "email": email,
            "iat": now(),
            "exp": now() + state.stated_lifetime(),
            "jti": state.issue_token("id").0
        });
        let id_token = format!(
            "{}.{}.c2lt",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"sim","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        state.register_token(&id_token);
        state.idp.google_audiences.lock().unwrap_or_else(|p| p.into_inner()).insert(id_token.clone(), audience.to_string());
        return (json(200, json!({"id_token": id_token}).to_string()), true);
    }
    let scopes = claims["scope"].as_str().unwrap_or("");
    if !scopes.split(' ').any(|s| s == "https://www.googleapis.com/auth/cloud-platform") {
        return (oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."), false);
    }
    let (token, expires_in) = issued(state, "ya29.sim-google");
    (json(200, json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}).to_string()), true)
}

/// For an API request with a Google ID token: "invalid" unless its audience is this workspace
/// (`expected`: host and path prefix) and the access token header holds a valid token. None:
/// not a Google ID token.
pub fn check_google(state: &State, bearer: &str, expected: &str, access_token: Option<&str>) -> Option<&'static str> {
    let audience = state.idp.google_audiences.lock().unwrap_or_else(|p| p.into_inner()).get(bearer).cloned()?;
    let audience = audience.trim_start_matches("https://").trim_start_matches("http://");
    if audience != expected || access_token.is_none_or(|t| state.check_token(t) != "valid") {
        return Some("invalid");
    }
    None
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The claims of a JWT, unchecked (the simulator trusts the platform that issued it).
fn jwt_claims(jwt: &str) -> Option<Value> {
    decode_json(jwt.split('.').nth(1)?)
}

/// The DER public key of a PKCS#8 PEM RSA key.
fn public_key(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(body).ok()?).ok()?;
    Some(ring::signature::KeyPair::public_key(&pair).as_ref().to_vec())
}
