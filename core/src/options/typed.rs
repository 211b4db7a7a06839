//! The typed views of server, user-mapping and table options that planning and execution use:
//! each built from a catalog's (name, value) pairs, with a message naming the bad option.

use super::error::{OptionError, OptionResult};
use super::option;
use super::parse::*;
use super::profile::{self, Profile};
use super::{Credentials, UserOptions};
use crate::client::auth::Endpoints;
use crate::client::retry::RetryPolicy;
use crate::client::workspace::{Endpoint, WorkspaceUrl};
use crate::client::{ClientSettings, HttpSettings, MAX_RESPONSE_BYTES_LIMIT};
use crate::resources::{self, Resource};
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
    /// The token endpoints the server names (or their defaults).
    pub auth_endpoints: Endpoints,
    /// The `.databrickscfg` profile of `config_file`: the workspace and default credentials.
    pub profile: Option<Profile>,
    /// Timeouts, retries, size limit and trusted certificates.
    pub client: ClientSettings,
}

impl ServerOptions {
    pub fn from_options(server_name: &str, options: &[(String, String)]) -> OptionResult<Self> {
        let profile = match (option(options, "config_file"), option(options, "profile")) {
            (Some(file), name) => Some(profile::load(file, name.unwrap_or(profile::DEFAULT_PROFILE))?),
            (None, Some(_)) => {
                return Err(OptionError::missing_option(
                    "config_file",
                    "a server with a profile",
                    "ALTER SERVER ... OPTIONS (ADD config_file '/path/to/.databrickscfg'); only a superuser may.",
                ))
            }
            (None, None) => None,
        };
        let host = profile.as_ref().and_then(|p| p.host.as_deref());
        let workspace = match (option(options, "workspace_url"), host) {
            (Some(_), Some(_)) => {
                return Err(OptionError::bad_option_value("workspace_url", "the server's profile gives the workspace (host) too")
                    .hint("Keep one: drop workspace_url, or the profile's host."));
            }
            (Some(v), None) => WorkspaceUrl::parse(v).map_err(|p| OptionError::bad_option_value("workspace_url", p))?,
            (None, Some(h)) => {
                WorkspaceUrl::parse(h).map_err(|p| OptionError::bad_option_value("config_file", format!("the profile's host: {p}")))?
            }
            (None, None) => WorkspaceUrl::default_template(),
        };
        let deployment_name = option(options, "deployment_name").map(str::to_string).or_else(|| workspace.implied_deployment());
        let max_concurrent_requests = option(options, "max_concurrent_requests")
            .map(parse_concurrency)
            .transpose()
            .map_err(|p| OptionError::bad_option_value("max_concurrent_requests", p))?
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS);
        let allowed_deployments = option(options, "allowed_deployments")
            .map(parse_deployment_list)
            .transpose()
            .map_err(|p| OptionError::bad_option_value("allowed_deployments", p))?;
        if let (Some(allowed), Some(d)) = (&allowed_deployments, &deployment_name) {
            if !allowed.contains(d) {
                return Err(OptionError::bad_option_value(
                    "deployment_name",
                    format!("\"{d}\" is not in allowed_deployments ({})", allowed.join(", ")),
                ));
            }
        }
        Ok(ServerOptions {
            server_name: server_name.to_string(),
            endpoint: Endpoint { workspace, deployment_name, allowed_deployments },
            max_concurrent_requests,
            max_listings: parse_max_listings(options)?,
            auth_endpoints: auth_endpoints(options)?,
            profile,
            client: client_settings(options)?,
        })
    }
}

impl ServerOptions {
    /// How a role with the user mapping `mapping` signs in: its own credentials, else those of
    /// the server's profile.
    pub fn credentials(&self, mapping: &[(String, String)]) -> OptionResult<Credentials> {
        let user = UserOptions::from_options(mapping);
        match &self.profile {
            Some(p) if user.is_empty() => p.credentials.credentials().map_err(|e| OptionError {
                message: format!("{} (the user mapping gives none, nor does the profile of server \"{}\")", e.message, self.server_name),
                ..e
            }),
            _ => user.credentials().map_err(|e| OptionError { message: format!("{} (server \"{}\")", e.message, self.server_name), ..e }),
        }
    }
}

fn auth_endpoints(options: &[(String, String)]) -> OptionResult<Endpoints> {
    let defaults = Endpoints::default();
    let url = |name: &str| -> OptionResult<Option<url::Url>> {
        option(options, name)
            .map(|v| WorkspaceUrl::parse(v).and_then(|u| url::Url::parse(u.as_str()).map_err(|e| e.to_string())))
            .transpose()
            .map_err(|p| OptionError::bad_option_value(name, p))
    };
    Ok(Endpoints {
        oauth_token_url: url("oauth_token_url")?,
        azure_login_url: url("azure_login_url")?.unwrap_or(defaults.azure_login_url),
        azure_msi_url: option(options, "azure_msi_url")
            .map(parse_msi_url)
            .transpose()
            .map_err(|p| OptionError::bad_option_value("azure_msi_url", p))?
            .unwrap_or(defaults.azure_msi_url),
    })
}

fn client_settings(options: &[(String, String)]) -> OptionResult<ClientSettings> {
    let defaults = ClientSettings::default();
    let seconds = |name: &str, default: Duration| -> OptionResult<Duration> {
        option(options, name)
            .map(parse_seconds)
            .transpose()
            .map_err(|p| OptionError::bad_option_value(name, p))
            .map(|v| v.unwrap_or(default))
    };
    let count = |name: &str, min: u64, max: u64, default: u64| -> OptionResult<u64> {
        option(options, name)
            .map(|v| parse_count(v, min, max))
            .transpose()
            .map_err(|p| OptionError::bad_option_value(name, p))
            .map(|v| v.unwrap_or(default))
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
        max_response_bytes: count("max_response_bytes", 1024, MAX_RESPONSE_BYTES_LIMIT as u64, defaults.max_response_bytes as u64)?
            as usize,
        cache_ttl: match option(options, "cache_ttl").map(str::trim) {
            None | Some("0") => None,
            Some(v) => Some(parse_seconds(v).map_err(|p| OptionError::bad_option_value("cache_ttl", p))?),
        },
        request_interval: option(options, "max_requests_per_second")
            .map(parse_rate)
            .transpose()
            .map_err(|p| OptionError::bad_option_value("max_requests_per_second", p))?
            .flatten(),
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

fn parse_max_listings(options: &[(String, String)]) -> OptionResult<Option<usize>> {
    option(options, "max_listings")
        .map(|v| parse_count(v, 1, MAX_LISTINGS_LIMIT).map(|n| n as usize))
        .transpose()
        .map_err(|p| OptionError::bad_option_value("max_listings", p))
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
    pub fn from_options(table_name: &str, options: &[(String, String)]) -> OptionResult<Self> {
        let name = option(options, "resource").ok_or_else(|| {
            OptionError::missing_option(
                "resource",
                &format!("foreign table \"{table_name}\""),
                format!(
                    "ALTER FOREIGN TABLE {table_name} OPTIONS (ADD resource '...'); valid resources are: {}.",
                    resources::names().join(", ")
                ),
            )
        })?;
        let resource = resources::find(name).ok_or_else(|| {
            OptionError::bad_option_value("resource", format!("unknown resource \"{name}\" on foreign table \"{table_name}\""))
                .hint(format!("Valid resources are: {}.", resources::names().join(", ")))
        })?;
        let page_size =
            option(options, "page_size").map(parse_page_size).transpose().map_err(|p| OptionError::bad_option_value("page_size", p))?;
        match (page_size, resource.max_page_size) {
            (Some(_), None) => {
                return Err(OptionError::bad_option_value("page_size", format!("the {} endpoint takes no page_size", resource.name))
                    .hint("Drop the option: ALTER FOREIGN TABLE ... OPTIONS (DROP page_size)."));
            }
            (Some(n), Some(max)) if n > max => {
                return Err(OptionError::bad_option_value("page_size", format!("{n} is more than {} takes ({max})", resource.name)));
            }
            _ => {}
        }
        let page_size = page_size.or(resource.default_page_size);
        let expected_rows = option(options, "expected_rows")
            .map(parse_expected_rows)
            .transpose()
            .map_err(|p| OptionError::bad_option_value("expected_rows", p))?
            .unwrap_or(DEFAULT_EXPECTED_ROWS);
        Ok(TableOptions { resource, page_size, expected_rows, max_listings: parse_max_listings(options)? })
    }
}
