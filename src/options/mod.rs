//! Every option the wrapper accepts, in one table, with the catalog it belongs to; the validator
//! walks given options against it. The values' parsers are in `parse`, the typed views of
//! server, user-mapping and table options that planning and execution use in `typed`.
//! Pure: no Postgres calls.

mod credentials;
mod parse;
pub mod profile;
mod typed;

pub use credentials::{Credentials, UserOptions};
pub use typed::*;

use crate::client::workspace::{check_deployment_name, WorkspaceUrl};
use crate::client::MAX_RESPONSE_BYTES_LIMIT;
use crate::error::{FdwError, FdwResult};
use crate::resources;
use parse::*;
use pgrx::PgSqlErrorCode::*;

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
        name: "azure_login_url",
        context: OptionContext::Server,
        description: "Entra ID's host for azure-client-secret (sovereign clouds); default https://login.microsoftonline.com",
        check: |v| WorkspaceUrl::parse(v).and_then(|u| if u.is_template() { Err("the URL cannot contain {deployment_name}".into()) } else { Ok(()) }),
    },
    OptionSpec {
        name: "azure_msi_url",
        context: OptionContext::Server,
        description: "The instance metadata service's token endpoint for azure-msi; default http://169.254.169.254/metadata/identity/oauth2/token",
        check: |v| parse_msi_url(v).map(|_| ()),
    },
    OptionSpec {
        name: "config_file",
        context: OptionContext::Server,
        description: "A .databrickscfg file of the database server whose profile gives the workspace (host) and credentials (superuser only)",
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
        description: "Requests a second to one workspace, from every backend together when the library is preloaded (else from each backend); default 0 (no limit)",
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
        description: "How to sign in: pat, oauth-m2m, azure-client-secret, azure-msi, google-credentials or file-oidc; default: what the options given say",
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
        description: "A file of the database server holding a JWT (a Kubernetes service-account token) for workload identity federation (file-oidc; superuser only)",
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

/// Credential options, which must never be given outside a user mapping.
const SECRET_OPTIONS: &[&str] = credentials::CREDENTIAL_OPTIONS;

/// Why these options may be set by a superuser only, if they may: they read a file of the
/// database server, or sign in as the database server's machine.
pub fn superuser_only(context: OptionContext, options: &[(String, String)]) -> Option<String> {
    let file = match context {
        OptionContext::Server => "config_file",
        OptionContext::UserMapping => "oidc_token_file",
        _ => return None,
    };
    if option(options, file).is_some() {
        return Some(format!("option \"{file}\" reads a file of the database server"));
    }
    let msi = context == OptionContext::UserMapping && option(options, "auth_type").map(str::trim) == Some("azure-msi");
    msi.then(|| "auth_type 'azure-msi' signs in as the database server's machine".to_string())
}

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
            // What the option is for, from the options' table.
            let e = FdwError::bad_option_value(name, problem).detail(format!("{}: {}.", spec.name, spec.description.trim_end_matches('.')));
            if spec.name == "auth_type" {
                e.hint(credentials::valid_auth_types())
            } else {
                e
            }
        })?;
    }
    // A user mapping without credentials takes its server's profile's.
    let user = UserOptions::from_options(options);
    if context == OptionContext::UserMapping && !user.is_empty() {
        user.credentials()?;
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
        let table = TableOptions::from_options("the foreign table", options)?;
        if table.resource.writes.is_none() && updatable(options, &[]) {
            let writable: Vec<&str> = resources::RESOURCES.iter().filter(|r| r.writes.is_some()).map(|r| r.name).collect();
            return Err(FdwError::bad_option_value("updatable", format!("resource {} is read-only", table.resource.name))
                .hint(format!("Writable resources are: {}.", writable.join(", "))));
        }
    }
    Ok(())
}

fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::secret::Secret;

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
    fn only_writable_resources_can_be_made_updatable() {
        validate(OptionContext::Table, &opts(&[("resource", "auto_approval_rules"), ("updatable", "true")])).unwrap();
        validate(OptionContext::Table, &opts(&[("resource", "task_runs"), ("updatable", "false")])).unwrap();
        let e = validate(OptionContext::Table, &opts(&[("resource", "task_runs"), ("updatable", "true")])).unwrap_err();
        assert!(e.message.contains("read-only") && e.hint.unwrap().contains("auto_approval_rules"), "{}", e.message);
        assert!(validate(OptionContext::Server, &opts(&[("updatable", "maybe")])).is_err());
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
                 oauth_token_url, azure_login_url, azure_msi_url, config_file, profile, ca_certificate, connect_timeout, request_timeout, max_retries, retry_max_wait, retry_total_wait, \
                 max_response_bytes, cache_ttl, max_requests_per_second."
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
        assert!(matches!(
            creds(&[("client_id", "c"), ("client_secret", "s")]).unwrap(),
            Credentials::Exchange(crate::client::auth::Method::OAuthM2M { .. })
        ));
        for bad in [
            &[][..],
            &[("client_id", "c")][..],
            &[("client_secret", "s")][..],
            &[("token", "t"), ("client_id", "c"), ("client_secret", "s")][..],
        ] {
            let e = creds(bad).unwrap_err();
            assert!(e.hint.unwrap().contains("client_secret"), "{bad:?}");
        }
        assert!(validate(OptionContext::UserMapping, &opts(&[("client_id", "c")])).is_err());
        // Without any, the server's profile gives them.
        assert!(validate(OptionContext::UserMapping, &[]).is_ok());
        for secret in ["client_secret", "client_id", "azure_client_secret", "google_credentials", "oidc_token_file", "auth_type"] {
            let e = validate(OptionContext::Server, &opts(&[(secret, "x")])).unwrap_err();
            assert!(e.hint.unwrap().contains("user mapping"), "{secret}");
        }
    }

    #[test]
    fn allowed_deployments_must_include_the_default() {
        assert!(validate(OptionContext::Server, &opts(&[("deployment_name", "dbc-a"), ("allowed_deployments", "dbc-a, dbc-b")])).is_ok());
        let e =
            validate(OptionContext::Server, &opts(&[("deployment_name", "dbc-c"), ("allowed_deployments", "dbc-a,dbc-b")])).unwrap_err();
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
