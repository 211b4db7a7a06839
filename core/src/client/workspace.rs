//! The workspace a request goes to: the server's `workspace_url`, checked, with the
//! `{deployment_name}` placeholder that several workspaces share.

use super::request_error::RequestError;
use url::{Host, Url};

pub const DEFAULT_WORKSPACE_URL: &str = "https://{deployment_name}.cloud.databricks.com";
pub const DEPLOYMENT_PLACEHOLDER: &str = "{deployment_name}";

/// Deployment names become part of a host name: letters, digits and inner hyphens only.
pub fn check_deployment_name(v: &str) -> Result<(), String> {
    let ok_chars = v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if v.is_empty() || v.len() > 63 || !ok_chars || v.starts_with('-') || v.ends_with('-') {
        return Err(format!(
            "\"{}\" is not a deployment name (1 to 63 letters, digits and inner hyphens, like dbc-abcd0123-a1bc)",
            crate::text::excerpt(v, 64).escape_default()
        ));
    }
    Ok(())
}

/// A checked `workspace_url`: https (plain http only to a loopback host), no credentials, query
/// or fragment, and `{deployment_name}` at most once.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceUrl {
    template: String,
}

impl WorkspaceUrl {
    pub fn parse(template: &str) -> Result<WorkspaceUrl, String> {
        let template = template.trim().trim_end_matches('/');
        let placeholders = template.matches(DEPLOYMENT_PLACEHOLDER).count();
        if placeholders > 1 {
            return Err("{deployment_name} may appear only once".into());
        }
        if template.replace(DEPLOYMENT_PLACEHOLDER, "").contains(['{', '}']) {
            return Err("the only placeholder allowed is {deployment_name}".into());
        }
        let url = Url::parse(&template.replace(DEPLOYMENT_PLACEHOLDER, "dbc-abcd0123-a1bc"))
            .map_err(|e| format!("\"{template}\" is not a URL ({e})"))?;
        check_base_url(&url)?;
        Ok(WorkspaceUrl { template: template.to_string() })
    }

    pub fn default_template() -> WorkspaceUrl {
        WorkspaceUrl { template: DEFAULT_WORKSPACE_URL.to_string() }
    }

    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// Whether the URL depends on the deployment name.
    pub fn is_template(&self) -> bool {
        self.template.contains(DEPLOYMENT_PLACEHOLDER)
    }

    /// The deployment a fixed URL stands for: the first label of a DNS host name
    /// (`dbc-abcd0123-a1bc` for `https://dbc-abcd0123-a1bc.cloud.databricks.com`).
    pub fn implied_deployment(&self) -> Option<String> {
        if self.is_template() {
            return None;
        }
        let url = Url::parse(&self.template).ok()?;
        match url.host()? {
            Host::Domain(d) if d.contains('.') => {
                let label = d.split('.').next()?.to_string();
                check_deployment_name(&label).ok().map(|_| label)
            }
            _ => None,
        }
    }

    /// The base URL for one deployment (checked again after substitution).
    pub fn resolve(&self, deployment: Option<&str>) -> Result<Url, RequestError> {
        let text = match (self.is_template(), deployment) {
            (false, _) => self.template.clone(),
            (true, Some(d)) => {
                check_deployment_name(d).map_err(|problem| RequestError::BadDeployment { problem })?;
                self.template.replace(DEPLOYMENT_PLACEHOLDER, d)
            }
            (true, None) => return Err(RequestError::NoDeployment),
        };
        let url = Url::parse(&text).map_err(|e| RequestError::BadWorkspaceUrl { problem: e.to_string() })?;
        check_base_url(&url).map_err(|problem| RequestError::BadWorkspaceUrl { problem })?;
        Ok(url)
    }
}

/// Where a server's requests go, from its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub workspace: WorkspaceUrl,
    /// The deployment when the query names none (with a fixed URL: the URL's own).
    pub deployment_name: Option<String>,
    /// When set, the only deployments requests may go to.
    pub allowed_deployments: Option<Vec<String>>,
}

pub fn check_base_url(url: &Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL; put the token in a user mapping".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err("the URL has no host".into()),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("plain http is allowed only for a loopback host (127.0.0.1, ::1, localhost); use https".into()),
        other => Err(format!("scheme \"{other}\" is not supported; use https")),
    }
}
