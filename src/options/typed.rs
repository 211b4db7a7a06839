//! The typed views of server, user-mapping and table options that planning and execution use:
//! each built from a catalog's (name, value) pairs, with a message naming the bad option.

use super::option;
use super::parse::*;
use crate::client::auth::{Auth, SessionKey};
use crate::client::retry::RetryPolicy;
use crate::client::secret::Secret;
use crate::client::workspace::{Endpoint, WorkspaceUrl};
use crate::client::{ClientSettings, HttpSettings, MAX_RESPONSE_BYTES_LIMIT};
use crate::error::{FdwError, FdwResult};
use crate::resources::{self, Resource};
use pgrx::PgSqlErrorCode::*;
use std::time::Duration;

pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 8;
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
        request_interval: option(options, "max_requests_per_second").map(parse_rate).transpose().map_err(|p| FdwError::bad_option_value("max_requests_per_second", p))?.flatten(),
    })
}

/// Whether a table without values for its required columns lists its parents: the table's
/// option `list_parents`, else the server's, else yes.
pub fn list_parents(table: &[(String, String)], server: &[(String, String)]) -> bool {
    table_or_server(table, server, "list_parents", true)
}

/// Whether INSERT, UPDATE and DELETE may change the workspace through a table: the table's
/// option `updatable`, else the server's, else no (a remote change cannot be rolled back).
pub fn updatable(table: &[(String, String)], server: &[(String, String)]) -> bool {
    table_or_server(table, server, "updatable", false)
}

/// A boolean option a table may set for itself, else its server (the validator has checked
/// both values).
fn table_or_server(table: &[(String, String)], server: &[(String, String)], name: &str, default: bool) -> bool {
    option(table, name).or_else(|| option(server, name)).and_then(|v| parse_bool(v).ok()).unwrap_or(default)
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
        match (page_size, resource.max_page_size) {
            (Some(_), None) => {
                return Err(FdwError::bad_option_value("page_size", format!("the {} endpoint takes no page_size", resource.name)).hint("Drop the option: ALTER FOREIGN TABLE ... OPTIONS (DROP page_size)."));
            }
            (Some(n), Some(max)) if n > max => {
                return Err(FdwError::bad_option_value("page_size", format!("{n} is more than {} takes ({max})", resource.name)));
            }
            _ => {}
        }
        let page_size = page_size.or(resource.default_page_size);
        let expected_rows = option(options, "expected_rows")
            .map(parse_expected_rows)
            .transpose()
            .map_err(|p| FdwError::bad_option_value("expected_rows", p))?
            .unwrap_or(DEFAULT_EXPECTED_ROWS);
        Ok(TableOptions { resource, page_size, expected_rows, max_listings: parse_max_listings(options)? })
    }
}

