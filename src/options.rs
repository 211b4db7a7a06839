//! Every option the wrapper accepts, in one table, with the catalog it belongs to; the validator
//! walks given options against it. Also the typed views of server, user-mapping and table
//! options that planning and execution use. Pure: no Postgres calls.

use crate::error::{FdwError, FdwResult};
use crate::resources::{self, Resource};
use pgrx::PgSqlErrorCode::*;
use crate::client::retry::RetryPolicy;
use crate::client::auth::{Auth, SessionKey};
use crate::client::secret::Secret;
use crate::client::workspace::{check_deployment_name, Endpoint, WorkspaceUrl};
use crate::client::{ClientSettings, HttpSettings, MAX_RESPONSE_BYTES_LIMIT};
use std::time::Duration;

/// Where an option is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionContext {
    Wrapper,
    Server,
    UserMapping,
    Table,
    Column,
}

impl OptionContext {
    pub fn label(self) -> &'static str {
        match self {
            OptionContext::Wrapper => "foreign-data wrapper",
            OptionContext::Server => "foreign server",
            OptionContext::UserMapping => "user mapping",
            OptionContext::Table => "foreign table",
            OptionContext::Column => "foreign table column",
        }
    }
}

pub struct OptionSpec {
    pub name: &'static str,
    pub context: OptionContext,
    pub description: &'static str,
    /// Checks a value on its own (cross-option rules are checked where options are read).
    pub check: fn(&str) -> Result<(), String>,
}


pub static OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "workspace_url",
        context: OptionContext::Server,
        description: "Workspace URL, e.g. https://dbc-abcd0123-a1bc.cloud.databricks.com; may contain {deployment_name}. Default: https://{deployment_name}.cloud.databricks.com",
        check: |v| WorkspaceUrl::parse(v).map(|_| ()),
    },
    OptionSpec {
        name: "deployment_name",
        context: OptionContext::Server,
        description: "The workspace's deployment name (dbc-abcd0123-a1bc); the default for the deployment_name column",
        check: check_deployment_name,
    },
    OptionSpec {
        name: "max_concurrent_requests",
        context: OptionContext::Server,
        description: "Requests one scan keeps in flight at once (IN lists, several workspaces); default 8",
        check: |v| parse_concurrency(v).map(|_| ()),
    },
    OptionSpec {
        name: "max_listings",
        context: OptionContext::Server,
        description: "The most listings one scan may make (one per combination of IN-list values); default 10000",
        check: |v| parse_count(v, 1, MAX_LISTINGS_LIMIT).map(|_| ()),
    },
    OptionSpec {
        name: "list_parents",
        context: OptionContext::Server,
        description: "Without a condition on a required column (clean_room_name), list every clean room (or asset) and read each one's listing; 'false' makes such a query an error instead. Default 'true'",
        check: |v| parse_bool(v).map(|_| ()),
    },
    OptionSpec {
        name: "updatable",
        context: OptionContext::Server,
        description: "Whether INSERT, UPDATE and DELETE may change the workspace through this server's tables (clean_rooms, assets, auto_approval_rules); default 'false'",
        check: |v| parse_bool(v).map(|_| ()),
    },
    OptionSpec {
        name: "allowed_deployments",
        context: OptionContext::Server,
        description: "Comma-separated deployment names this server may reach; any other is an error before a request is made",
        check: |v| parse_deployment_list(v).map(|_| ()),
    },
    OptionSpec {
        name: "oauth_token_url",
        context: OptionContext::Server,
        description: "OAuth token endpoint; default <workspace_url>/oidc/v1/token",
        check: |v| WorkspaceUrl::parse(v).and_then(|u| if u.is_template() { Err("the token URL cannot contain {deployment_name}".into()) } else { Ok(()) }),
    },
    OptionSpec {
        name: "ca_certificate",
        context: OptionContext::Server,
        description: "PEM certificate(s) trusted in addition to the public roots, for private endpoints",
        check: check_ca_certificate,
    },
    OptionSpec {
        name: "connect_timeout",
        context: OptionContext::Server,
        description: "Seconds to wait for a connection to the workspace; default 10",
        check: |v| parse_seconds(v).map(|_| ()),
    },
    OptionSpec {
        name: "request_timeout",
        context: OptionContext::Server,
        description: "Seconds one request (one page) may take in all; default 60",
        check: |v| parse_seconds(v).map(|_| ()),
    },
    OptionSpec {
        name: "max_retries",
        context: OptionContext::Server,
        description: "Retries of one request after 429, 503, connection failures and timeouts; default 5 (0 turns retries off)",
        check: |v| parse_count(v, 0, 100).map(|_| ()),
    },
    OptionSpec {
        name: "retry_max_wait",
        context: OptionContext::Server,
        description: "Seconds of the longest wait before a retry (a longer Retry-After ends the retries); default 10",
        check: |v| parse_seconds(v).map(|_| ()),
    },
    OptionSpec {
        name: "retry_total_wait",
        context: OptionContext::Server,
        description: "Seconds one request may spend waiting to retry, in all; default 60",
        check: |v| parse_seconds(v).map(|_| ()),
    },
    OptionSpec {
        name: "max_response_bytes",
        context: OptionContext::Server,
        description: "The largest response body accepted, in bytes; default 67108864 (64 MiB), at most 1073741824 (1 GiB)",
        check: |v| parse_count(v, 1024, MAX_RESPONSE_BYTES_LIMIT as u64).map(|_| ()),
    },
    OptionSpec {
        name: "cache_ttl",
        context: OptionContext::Server,
        description: "Seconds identical requests are answered from this backend's memory; default 0 (off)",
        check: |v| if v.trim() == "0" { Ok(()) } else { parse_seconds(v).map(|_| ()) },
    },
    OptionSpec {
        name: "token",
        context: OptionContext::UserMapping,
        description: "A Databricks personal access token, sent as a bearer token",
        check: |v| check_credential("token", v),
    },
    OptionSpec {
        name: "client_id",
        context: OptionContext::UserMapping,
        description: "OAuth service principal's client id (with client_secret)",
        check: |v| check_credential("client id", v),
    },
    OptionSpec {
        name: "client_secret",
        context: OptionContext::UserMapping,
        description: "OAuth service principal's secret (with client_id)",
        check: |v| check_credential("client secret", v),
    },
    OptionSpec {
        name: "resource",
        context: OptionContext::Table,
        description: "Which API resource the table reads (task_runs)",
        check: |v| match resources::find(v) {
            Some(_) => Ok(()),
            None => Err(format!("unknown resource \"{v}\"; valid resources are: {}", resources::names().join(", "))),
        },
    },
    OptionSpec {
        name: "path",
        context: OptionContext::Column,
        description: "The field that fills the column, dotted for a nested field (notebook_job_run_state.result_state)",
        check: |v| {
            if v.is_empty() || v.split('.').any(|s| s.is_empty()) {
                Err(format!("{:?} is not a field path like field or field.subfield", crate::client::error::excerpt(v, 64)))
            } else if v.split('.').count() > MAX_PATH_DEPTH {
                Err(format!("the path has more than {MAX_PATH_DEPTH} fields, more than a JSON value can nest"))
            } else {
                Ok(())
            }
        },
    },
    OptionSpec {
        name: "expected_rows",
        context: OptionContext::Table,
        description: "Rows one listing (one clean room) is expected to return, for the planner's estimates; default 100",
        check: |v| parse_expected_rows(v).map(|_| ()),
    },
    OptionSpec {
        name: "max_listings",
        context: OptionContext::Table,
        description: "The most listings one scan of this table may make; default: the server's",
        check: |v| parse_count(v, 1, MAX_LISTINGS_LIMIT).map(|_| ()),
    },
    OptionSpec {
        name: "list_parents",
        context: OptionContext::Table,
        description: "The server's list_parents, for this table",
        check: |v| parse_bool(v).map(|_| ()),
    },
    OptionSpec {
        name: "updatable",
        context: OptionContext::Table,
        description: "The server's updatable, for this table",
        check: |v| parse_bool(v).map(|_| ()),
    },
    OptionSpec {
        name: "page_size",
        context: OptionContext::Table,
        description: "page_size sent with each list request (1 to 10000); default: the API's",
        check: |v| parse_page_size(v).map(|_| ()),
    },
];

/// The most fields a column's `path` may name: serde_json reads values nested up to 128 deep.
const MAX_PATH_DEPTH: usize = 100;
/// The largest `max_listings`.
const MAX_LISTINGS_LIMIT: u64 = 1_000_000;

/// A credential goes into an HTTP header: visible ASCII only (a line break or a space could
/// never be sent). The value itself is never part of the message.
fn check_credential(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("the {what} holds a character that cannot be sent in an HTTP header (a space, a line break or a non-ASCII character)"));
    }
    Ok(())
}

/// Credential options, which must never be given outside a user mapping.
const SECRET_OPTIONS: &[&str] = &["token", "client_id", "client_secret"];

/// The validator: every option must be known in `context` and have a usable value.
pub fn validate(context: OptionContext, options: &[(String, String)]) -> FdwResult<()> {
    for (name, value) in options {
        let Some(spec) = OPTIONS.iter().find(|s| s.name == name && s.context == context) else {
            if SECRET_OPTIONS.contains(&name.as_str()) {
                return Err(FdwError::new(
                    ERRCODE_FDW_INVALID_OPTION_NAME,
                    format!("option \"{name}\" is not allowed on a {}", context.label()),
                )
                .hint("Secrets belong in a user mapping: CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (token '...'). Server and table options are readable by every role."));
            }
            let valid: Vec<&str> = OPTIONS.iter().filter(|s| s.context == context).map(|s| s.name).collect();
            return Err(FdwError::unknown_option(name, context.label(), &valid));
        };
        (spec.check)(value).map_err(|problem| {
            // Never echo a secret back, not even a malformed one.
            let problem = if SECRET_OPTIONS.contains(&spec.name) { problem } else { problem.replace('\0', "") };
            FdwError::bad_option_value(name, problem)
        })?;
    }
    if context == OptionContext::UserMapping {
        UserOptions::from_options(options).credentials()?;
    }
    if context == OptionContext::Server {
        ServerOptions::from_options("", options)?;
    }
    if context == OptionContext::Table && !options.iter().any(|(n, _)| n == "resource") {
        return Err(FdwError::missing_option(
            "resource",
            "a databricks_fdw foreign table",
            format!("Add OPTIONS (resource '...'); valid resources are: {}.", resources::names().join(", ")),
        ));
    }
    if context == OptionContext::Table {
        TableOptions::from_options("the foreign table", options)?;
    }
    Ok(())
}

fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn parse_deployment_list(v: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = v.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
    if names.is_empty() {
        return Err("the list is empty".into());
    }
    for n in &names {
        check_deployment_name(n)?;
    }
    Ok(names)
}

fn check_ca_certificate(v: &str) -> Result<(), String> {
    if !v.contains("-----BEGIN CERTIFICATE-----") {
        return Err("expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)".into());
    }
    reqwest::Certificate::from_pem_bundle(v.as_bytes()).map(|_| ()).map_err(|e| format!("the certificate cannot be read: {e}"))
}

fn parse_page_size(v: &str) -> Result<u32, String> {
    parse_count(v, 1, 10_000).map(|n| n as u32)
}

fn parse_seconds(v: &str) -> Result<Duration, String> {
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("\"{v}\" is not a number of seconds (more than 0, at most 86400)")),
    }
}

/// A whole number from `min` to `max`.
fn parse_count(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{:?} is not a whole number from {min} to {max}", crate::client::error::excerpt(v, 64))),
    }
}

fn parse_concurrency(v: &str) -> Result<usize, String> {
    parse_count(v, 1, 64).map(|n| n as usize)
}

pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 8;

fn parse_expected_rows(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 1.0 => Ok(n),
        _ => Err(format!("\"{v}\" is not a number of rows (1 or more)")),
    }
}

pub const DEFAULT_EXPECTED_ROWS: f64 = 100.0;

/// Server options as planning and execution use them.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub server_name: String,
    /// The workspace URL, the default deployment and the allowed ones.
    pub endpoint: Endpoint,
    pub max_concurrent_requests: usize,
    /// The server's `max_listings` (tables may set their own).
    pub max_listings: Option<usize>,
    pub oauth_token_url: Option<String>,
    /// Timeouts, retries, size limit and trusted certificates.
    pub client: ClientSettings,
}

impl ServerOptions {
    pub fn from_options(server_name: &str, options: &[(String, String)]) -> FdwResult<Self> {
        let workspace = match option(options, "workspace_url") {
            Some(v) => WorkspaceUrl::parse(v).map_err(|p| FdwError::bad_option_value("workspace_url", p))?,
            None => WorkspaceUrl::default_template(),
        };
        let deployment_name = option(options, "deployment_name").map(str::to_string).or_else(|| workspace.implied_deployment());
        let max_concurrent_requests = option(options, "max_concurrent_requests")
            .map(parse_concurrency)
            .transpose()
            .map_err(|p| FdwError::bad_option_value("max_concurrent_requests", p))?
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS);
        let allowed_deployments = option(options, "allowed_deployments")
            .map(parse_deployment_list)
            .transpose()
            .map_err(|p| FdwError::bad_option_value("allowed_deployments", p))?;
        if let (Some(allowed), Some(d)) = (&allowed_deployments, &deployment_name) {
            if !allowed.contains(d) {
                return Err(FdwError::bad_option_value("deployment_name", format!("\"{d}\" is not in allowed_deployments ({})", allowed.join(", "))));
            }
        }
        Ok(ServerOptions {
            server_name: server_name.to_string(),
            endpoint: Endpoint { workspace, deployment_name, allowed_deployments },
            max_concurrent_requests,
            max_listings: parse_max_listings(options)?,
            oauth_token_url: option(options, "oauth_token_url").map(str::to_string),
            client: client_settings(options)?,
        })
    }
}

fn client_settings(options: &[(String, String)]) -> FdwResult<ClientSettings> {
    let defaults = ClientSettings::default();
    let seconds = |name: &str, default: Duration| -> FdwResult<Duration> {
        option(options, name).map(parse_seconds).transpose().map_err(|p| FdwError::bad_option_value(name, p)).map(|v| v.unwrap_or(default))
    };
    let count = |name: &str, min: u64, max: u64, default: u64| -> FdwResult<u64> {
        option(options, name).map(|v| parse_count(v, min, max)).transpose().map_err(|p| FdwError::bad_option_value(name, p)).map(|v| v.unwrap_or(default))
    };
    Ok(ClientSettings {
        http: HttpSettings {
            connect_timeout: seconds("connect_timeout", defaults.http.connect_timeout)?,
            request_timeout: seconds("request_timeout", defaults.http.request_timeout)?,
            ca_certificate: option(options, "ca_certificate").map(str::to_string),
        },
        retry: RetryPolicy {
            max_retries: count("max_retries", 0, 100, defaults.retry.max_retries as u64)? as u32,
            max_wait: seconds("retry_max_wait", defaults.retry.max_wait)?,
            total_wait: seconds("retry_total_wait", defaults.retry.total_wait)?,
        },
        max_response_bytes: count("max_response_bytes", 1024, MAX_RESPONSE_BYTES_LIMIT as u64, defaults.max_response_bytes as u64)? as usize,
        cache_ttl: match option(options, "cache_ttl").map(str::trim) {
            None | Some("0") => None,
            Some(v) => Some(parse_seconds(v).map_err(|p| FdwError::bad_option_value("cache_ttl", p))?),
        },
    })
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Ok(true),
        "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{:?} is not 'true' or 'false'", crate::client::error::excerpt(v, 64))),
    }
}

/// Whether a table without values for its required columns lists its parents: the table's
/// option `list_parents`, else the server's, else yes.
pub fn list_parents(table: &[(String, String)], server: &[(String, String)]) -> bool {
    option(table, "list_parents").or_else(|| option(server, "list_parents")).and_then(|v| parse_bool(v).ok()).unwrap_or(true)
}

/// Whether INSERT, UPDATE and DELETE may change the workspace through a table: the table's
/// option `updatable`, else the server's, else no (a remote change cannot be rolled back).
pub fn updatable(table: &[(String, String)], server: &[(String, String)]) -> bool {
    option(table, "updatable").or_else(|| option(server, "updatable")).and_then(|v| parse_bool(v).ok()).unwrap_or(false)
}

fn parse_max_listings(options: &[(String, String)]) -> FdwResult<Option<usize>> {
    option(options, "max_listings")
        .map(|v| parse_count(v, 1, MAX_LISTINGS_LIMIT).map(|n| n as usize))
        .transpose()
        .map_err(|p| FdwError::bad_option_value("max_listings", p))
}

impl Credentials {
    /// How requests are authorised with these credentials, for `role` on `server` (OAuth
    /// tokens are cached per server, role and credentials).
    pub fn auth(self, server: u32, role: u32, token_url: Option<String>) -> Auth {
        match self {
            Credentials::Token(token) => Auth::Token(token),
            Credentials::ServicePrincipal { client_id, client_secret } => Auth::oauth(SessionKey { server, role, client_id, client_secret, token_url }),
        }
    }

    /// What they are, for people (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Credentials::Token(_) => "a personal access token".into(),
            Credentials::ServicePrincipal { client_id, .. } => format!("OAuth service principal {client_id}"),
        }
    }
}

/// User-mapping options: the credentials.
#[derive(Debug, Clone)]
pub struct UserOptions {
    pub token: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
}

/// How a role signs in.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    Token(Secret),
    ServicePrincipal { client_id: String, client_secret: Secret },
}

impl UserOptions {
    pub fn from_options(options: &[(String, String)]) -> Self {
        UserOptions {
            token: option(options, "token").map(|t| Secret::new(t.to_string())),
            client_id: option(options, "client_id").map(str::to_string),
            client_secret: option(options, "client_secret").map(|t| Secret::new(t.to_string())),
        }
    }

    /// Exactly one way to sign in: a token, or a client id with its secret.
    pub fn credentials(&self) -> FdwResult<Credentials> {
        let fix = "Give the user mapping either OPTIONS (token '...') or OPTIONS (client_id '...', client_secret '...').";
        match (&self.token, &self.client_id, &self.client_secret) {
            (Some(t), None, None) => Ok(Credentials::Token(t.clone())),
            (None, Some(id), Some(secret)) => Ok(Credentials::ServicePrincipal { client_id: id.clone(), client_secret: secret.clone() }),
            (None, None, None) => Err(FdwError::new(ERRCODE_FDW_OPTION_NAME_NOT_FOUND, "the user mapping has no credentials").hint(fix)),
            (Some(_), _, _) => Err(FdwError::new(ERRCODE_FDW_INVALID_OPTION_NAME, "the user mapping has both a token and OAuth options").hint(fix)),
            (None, Some(_), None) => Err(FdwError::missing_option("client_secret", "a user mapping with client_id", fix)),
            (None, None, Some(_)) => Err(FdwError::missing_option("client_id", "a user mapping with client_secret", fix)),
        }
    }
}

/// Table options.
#[derive(Debug, Clone)]
pub struct TableOptions {
    pub resource: &'static Resource,
    pub page_size: Option<u32>,
    /// Rows per listing, for estimates.
    pub expected_rows: f64,
    pub max_listings: Option<usize>,
}

impl TableOptions {
    pub fn from_options(table_name: &str, options: &[(String, String)]) -> FdwResult<Self> {
        let name = option(options, "resource").ok_or_else(|| {
            FdwError::missing_option(
                "resource",
                &format!("foreign table \"{table_name}\""),
                format!("ALTER FOREIGN TABLE {table_name} OPTIONS (ADD resource '...'); valid resources are: {}.", resources::names().join(", ")),
            )
        })?;
        let resource = resources::find(name).ok_or_else(|| {
            FdwError::bad_option_value("resource", format!("unknown resource \"{name}\" on foreign table \"{table_name}\""))
                .hint(format!("Valid resources are: {}.", resources::names().join(", ")))
        })?;
        let page_size = option(options, "page_size").map(parse_page_size).transpose().map_err(|p| FdwError::bad_option_value("page_size", p))?;
        if let Some(n) = page_size.filter(|n| *n > resource.max_page_size) {
            return Err(FdwError::bad_option_value("page_size", format!("{n} is more than {} takes ({})", resource.name, resource.max_page_size)));
        }
        let expected_rows = option(options, "expected_rows")
            .map(parse_expected_rows)
            .transpose()
            .map_err(|p| FdwError::bad_option_value("expected_rows", p))?
            .unwrap_or(DEFAULT_EXPECTED_ROWS);
        Ok(TableOptions { resource, page_size, expected_rows, max_listings: parse_max_listings(options)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn credentials_that_cannot_be_sent_in_a_header_are_refused_without_echoing_them() {
        for bad in ["dapi-abc\ndef", "dapi abc", "dapi-é", "dapi\u{7f}"] {
            let e = validate(OptionContext::UserMapping, &opts(&[("token", bad)])).unwrap_err();
            assert!(e.message.contains("option \"token\"") && e.message.contains("HTTP header"), "{}", e.message);
            assert!(!e.message.contains("dapi"), "{}", e.message);
        }
        assert!(validate(OptionContext::UserMapping, &opts(&[("client_id", "id"), ("client_secret", "s\r\n")])).is_err());
        assert!(validate(OptionContext::UserMapping, &opts(&[("token", "dapi-0123456789abcdef")])).is_ok());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(validate(OptionContext::Server, &opts(&[("max_response_bytes", "1073741824")])).is_ok());
        assert!(validate(OptionContext::Server, &opts(&[("max_response_bytes", "1073741825")])).is_err());
        assert!(validate(OptionContext::Table, &opts(&[("resource", "task_runs"), ("max_listings", "100000")])).is_ok());
        assert!(validate(OptionContext::Server, &opts(&[("max_listings", "0")])).is_err());
        let deep = vec!["a"; 101].join(".");
        assert!(validate(OptionContext::Column, &opts(&[("path", &deep)])).is_err());
    }

    #[test]
    fn misspelled_options_are_refused_with_the_valid_ones() {
        let e = validate(OptionContext::Server, &opts(&[("workspace_ulr", "https://x.cloud.databricks.com")])).unwrap_err();
        assert_eq!(e.code, ERRCODE_FDW_INVALID_OPTION_NAME);
        assert!(e.message.contains("workspace_ulr"), "{}", e.message);
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "Valid options for a foreign server are: workspace_url, deployment_name, max_concurrent_requests, max_listings, list_parents, updatable, allowed_deployments, \
                 oauth_token_url, ca_certificate, connect_timeout, request_timeout, max_retries, retry_max_wait, retry_total_wait, \
                 max_response_bytes, cache_ttl."
            )
        );
    }

    #[test]
    fn tokens_outside_user_mappings_are_refused_without_echoing_them() {
        for ctx in [OptionContext::Server, OptionContext::Table] {
            let e = validate(ctx, &opts(&[("token", "dapi-secret-123")])).unwrap_err();
            assert!(e.hint.unwrap().contains("user mapping"));
            assert!(!e.message.contains("dapi-secret-123"));
        }
        validate(OptionContext::UserMapping, &opts(&[("token", "dapi-secret-123")])).unwrap();
        assert!(format!("{:?}", Secret::new("dapi-secret-123".into())).find("dapi").is_none());
    }

    #[test]
    fn user_mappings_take_one_kind_of_credentials() {
        let creds = |pairs: &[(&str, &str)]| UserOptions::from_options(&opts(pairs)).credentials();
        assert_eq!(creds(&[("token", "t")]).unwrap(), Credentials::Token(Secret::new("t".into())));
        assert!(matches!(creds(&[("client_id", "c"), ("client_secret", "s")]).unwrap(), Credentials::ServicePrincipal { .. }));
        for bad in [&[][..], &[("client_id", "c")][..], &[("client_secret", "s")][..], &[("token", "t"), ("client_id", "c"), ("client_secret", "s")][..]] {
            let e = creds(bad).unwrap_err();
            assert!(e.hint.unwrap().contains("client_secret"), "{bad:?}");
        }
        assert!(validate(OptionContext::UserMapping, &opts(&[("client_id", "c")])).is_err());
        for secret in ["client_secret", "client_id"] {
            let e = validate(OptionContext::Server, &opts(&[(secret, "x")])).unwrap_err();
            assert!(e.hint.unwrap().contains("user mapping"), "{secret}");
        }
    }

    #[test]
    fn allowed_deployments_must_include_the_default() {
        assert!(validate(OptionContext::Server, &opts(&[("deployment_name", "dbc-a"), ("allowed_deployments", "dbc-a, dbc-b")])).is_ok());
        let e = validate(OptionContext::Server, &opts(&[("deployment_name", "dbc-c"), ("allowed_deployments", "dbc-a,dbc-b")])).unwrap_err();
        assert!(e.message.contains("not in allowed_deployments"), "{}", e.message);
        assert!(validate(OptionContext::Server, &opts(&[("allowed_deployments", "dbc-a,evil.com")])).is_err());
        assert!(validate(OptionContext::Server, &opts(&[("ca_certificate", "not a pem")])).is_err());
    }

    #[test]
    fn tables_need_a_known_resource() {
        assert!(validate(OptionContext::Table, &opts(&[("resource", "task_runs"), ("page_size", "50")])).is_ok());
        let e = validate(OptionContext::Table, &opts(&[("resource", "task_run")])).unwrap_err();
        assert!(e.message.contains("task_runs"), "{}", e.message);
        assert_eq!(validate(OptionContext::Table, &opts(&[("page_size", "5")])).unwrap_err().code, ERRCODE_FDW_OPTION_NAME_NOT_FOUND);
        assert!(validate(OptionContext::Table, &opts(&[("resource", "task_runs"), ("page_size", "0")])).is_err());
    }

    #[test]
    fn workspace_urls() {
        assert!(WorkspaceUrl::parse("https://dbc-abcd0123-a1bc.cloud.databricks.com").is_ok());
        assert!(WorkspaceUrl::parse("https://{deployment_name}.cloud.databricks.com").is_ok());
        assert!(WorkspaceUrl::parse("http://127.0.0.1:8080").is_ok());
        assert!(WorkspaceUrl::parse("http://localhost:8080/ws/{deployment_name}").is_ok());
        assert!(WorkspaceUrl::parse("http://[::1]:8080").is_ok());
        for bad in [
            "http://dbc-a.cloud.databricks.com",
            "ftp://127.0.0.1",
            "https://user:pw@x.cloud.databricks.com",
            "https://x.cloud.databricks.com?a=1",
            "https://{deployment_name}.{deployment_name}.com",
            "https://{region}.cloud.databricks.com",
            "not a url",
        ] {
            assert!(WorkspaceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_urls_imply_their_deployment_and_templates_need_one() {
        let fixed = WorkspaceUrl::parse("https://dbc-abcd0123-a1bc.cloud.databricks.com").unwrap();
        assert_eq!(fixed.implied_deployment().as_deref(), Some("dbc-abcd0123-a1bc"));
        assert_eq!(WorkspaceUrl::parse("http://127.0.0.1:1").unwrap().implied_deployment(), None);
        let t = WorkspaceUrl::default_template();
        assert_eq!(t.resolve(Some("dbc-x")).unwrap().as_str(), "https://dbc-x.cloud.databricks.com/");
        assert_eq!(t.resolve(None).unwrap_err(), crate::client::request::RequestError::NoDeployment);
        for hostile in ["evil.com#", "a.b", "x/y", "", "-a", "a_b"] {
            assert!(t.resolve(Some(hostile)).is_err(), "{hostile}");
        }
    }

    #[test]
    fn server_options_default_the_deployment_from_the_host() {
        let s = ServerOptions::from_options("dbx", &opts(&[("workspace_url", "https://dbc-abcd0123-a1bc.cloud.databricks.com")])).unwrap();
        assert_eq!(s.endpoint.deployment_name.as_deref(), Some("dbc-abcd0123-a1bc"));
        let s = ServerOptions::from_options("dbx", &opts(&[("deployment_name", "dbc-1")])).unwrap();
        assert!(s.endpoint.workspace.is_template());
        assert_eq!(s.endpoint.deployment_name.as_deref(), Some("dbc-1"));
    }
}
