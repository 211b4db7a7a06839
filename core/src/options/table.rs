//! Every option the wrapper accepts, in one table: where it is given, what it is for (the
//! validator's DETAIL and the README quote it), and the check of its value on its own.

use super::credentials;
use super::parse::*;
use crate::client::workspace::{check_deployment_name, WorkspaceUrl};
use crate::client::MAX_RESPONSE_BYTES_LIMIT;
use crate::resources;

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
        description: "Workspace URL, e.g. https://dbc-abcd0123-a1bc.cloud.databricks.com; may contain {deployment_name}. \
                      Default: https://{deployment_name}.cloud.databricks.com",
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
        description: "Without a condition on a required column (clean_room_name), \
                      list every clean room (or asset) and read each one's listing; \
                      'false' makes such a query an error instead. Default 'true'",
        check: |v| parse_bool(v).map(|_| ()),
    },
    OptionSpec {
        name: "updatable",
        context: OptionContext::Server,
        description: "Whether INSERT, UPDATE and DELETE may change the workspace through this server's tables \
                      (clean_rooms, assets, auto_approval_rules); default 'false'",
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
        check: |v| {
            WorkspaceUrl::parse(v).and_then(|u| {
                if u.is_template() {
                    Err("the token URL cannot contain {deployment_name}".into())
                } else {
                    Ok(())
                }
            })
        },
    },
    OptionSpec {
        name: "azure_login_url",
        context: OptionContext::Server,
        description: "Entra ID's host for azure-client-secret (sovereign clouds); default https://login.microsoftonline.com",
        check: |v| {
            WorkspaceUrl::parse(v)
                .and_then(|u| if u.is_template() { Err("the URL cannot contain {deployment_name}".into()) } else { Ok(()) })
        },
    },
    OptionSpec {
        name: "azure_msi_url",
        context: OptionContext::Server,
        description: "The instance metadata service's token endpoint for azure-msi; \
                      default http://169.254.169.254/metadata/identity/oauth2/token",
        check: |v| parse_msi_url(v).map(|_| ()),
    },
    OptionSpec {
        name: "config_file",
        context: OptionContext::Server,
        description: "A .databrickscfg file of the database server whose profile gives the workspace (host) \
                      and credentials (superuser only)",
        check: |v| if v.starts_with('/') { Ok(()) } else { Err("the path must be absolute".into()) },
    },
    OptionSpec {
        name: "profile",
        context: OptionContext::Server,
        description: "The profile of config_file; default DEFAULT",
        check: |v| if v.trim().is_empty() || v.contains(['[', ']', '\n']) { Err("not a profile name".into()) } else { Ok(()) },
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
        name: "max_requests_per_second",
        context: OptionContext::Server,
        description: "Requests a second to one workspace, from every backend together when the library is preloaded \
                      (else from each backend); default 0 (no limit)",
        check: |v| parse_rate(v).map(|_| ()),
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
        name: "auth_type",
        context: OptionContext::UserMapping,
        description: "How to sign in: pat, oauth-m2m, azure-client-secret, azure-msi, google-credentials or file-oidc; \
                      default: what the options given say",
        check: |v| credentials::parse_auth_type(v).map(|_| ()),
    },
    OptionSpec {
        name: "azure_tenant_id",
        context: OptionContext::UserMapping,
        description: "The Entra ID tenant of an azure-client-secret service principal",
        check: credentials::check_tenant,
    },
    OptionSpec {
        name: "azure_client_id",
        context: OptionContext::UserMapping,
        description: "The Entra ID application (client) id: azure-client-secret, or a user-assigned identity for azure-msi",
        check: |v| check_credential("client id", v),
    },
    OptionSpec {
        name: "azure_client_secret",
        context: OptionContext::UserMapping,
        description: "The Entra ID application's client secret (azure-client-secret)",
        check: |v| check_credential("client secret", v),
    },
    OptionSpec {
        name: "google_credentials",
        context: OptionContext::UserMapping,
        description: "A Google service account's key, the JSON itself (google-credentials)",
        check: |v| crate::client::auth::google::Key::parse(&crate::client::secret::Secret::new(v.to_string())).map(|_| ()),
    },
    OptionSpec {
        name: "oidc_token_file",
        context: OptionContext::UserMapping,
        description: "A file of the database server holding a JWT (a Kubernetes service-account token) \
                      for workload identity federation (file-oidc; superuser only)",
        check: |v| if v.starts_with('/') { Ok(()) } else { Err("the path must be absolute".into()) },
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
                Err(format!("{:?} is not a field path like field or field.subfield", crate::text::excerpt(v, 64)))
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
