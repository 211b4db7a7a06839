//! The validator: given options walked against the table of every option (`table`). The values'
//! parsers are in `parse`, the typed views of server, user-mapping and table options that
//! planning and execution use in `typed`, how a role signs in in `credentials`.

mod credentials;
mod error;
mod parse;
pub mod profile;
mod table;
mod typed;

pub use credentials::{Credentials, UserOptions};
pub use error::{OptionError, OptionResult, Problem};
pub use table::{OptionContext, OptionSpec, OPTIONS};
pub use typed::*;

use crate::resources;

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
pub fn validate(context: OptionContext, options: &[(String, String)]) -> OptionResult<()> {
    for (name, value) in options {
        let Some(spec) = OPTIONS.iter().find(|s| s.name == name && s.context == context) else {
            if SECRET_OPTIONS.contains(&name.as_str()) {
                return Err(OptionError::new(Problem::UnknownName, format!("option \"{name}\" is not allowed on a {}", context.label()))
                    .hint(
                        "Secrets belong in a user mapping: CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (token '...'). \
                         Server and table options are readable by every role.",
                    ));
            }
            let valid: Vec<&str> = OPTIONS.iter().filter(|s| s.context == context).map(|s| s.name).collect();
            return Err(OptionError::unknown_option(name, context.label(), &valid));
        };
        (spec.check)(value).map_err(|problem| {
            // Never echo a secret back, not even a malformed one.
            let problem = if SECRET_OPTIONS.contains(&spec.name) { problem } else { problem.replace('\0', "") };
            // What the option is for, from the options' table.
            let e =
                OptionError::bad_option_value(name, problem).detail(format!("{}: {}.", spec.name, spec.description.trim_end_matches('.')));
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
        return Err(OptionError::missing_option(
            "resource",
            "a databricks_fdw foreign table",
            format!("Add OPTIONS (resource '...'); valid resources are: {}.", resources::names().join(", ")),
        ));
    }
    if context == OptionContext::Table {
        let table = TableOptions::from_options("the foreign table", options)?;
        if table.resource.writes.is_none() && updatable(options, &[]) {
            let writable: Vec<&str> = resources::RESOURCES.iter().filter(|r| r.writes.is_some()).map(|r| r.name).collect();
            return Err(OptionError::bad_option_value("updatable", format!("resource {} is read-only", table.resource.name))
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
    use crate::client::workspace::WorkspaceUrl;

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
        assert_eq!(e.problem, Problem::UnknownName);
        assert!(e.message.contains("workspace_ulr"), "{}", e.message);
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "Valid options for a foreign server are: workspace_url, deployment_name, max_concurrent_requests, max_listings, \
                 list_parents, updatable, allowed_deployments, oauth_token_url, azure_login_url, azure_msi_url, config_file, profile, \
                 ca_certificate, connect_timeout, request_timeout, max_retries, retry_max_wait, retry_total_wait, \
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
        assert_eq!(validate(OptionContext::Table, &opts(&[("page_size", "5")])).unwrap_err().problem, Problem::Missing);
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
        assert_eq!(t.resolve(None).unwrap_err(), crate::client::request_error::RequestError::NoDeployment);
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
