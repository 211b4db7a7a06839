//! How a role signs in: the credential options of a user mapping (or of a `.databrickscfg`
//! profile), resolved into one way to sign in. `auth_type` names it; without it, the options
//! given say which, and the options of two ways at once are refused.

use super::error::{OptionError, OptionResult, Problem};
use super::option;
use crate::client::auth::{Auth, Endpoints, Method, SessionKey};
use crate::client::secret::Secret;

/// Every `auth_type`, with the options it takes (required ones first, then optional ones).
pub const AUTH_TYPES: &[(&str, &[&str], &[&str])] = &[
    ("pat", &["token"], &[]),
    ("oauth-m2m", &["client_id", "client_secret"], &[]),
    ("azure-client-secret", &["azure_tenant_id", "azure_client_id", "azure_client_secret"], &[]),
    ("azure-msi", &[], &["azure_client_id"]),
    ("google-credentials", &["google_credentials"], &[]),
    ("file-oidc", &["oidc_token_file"], &["client_id"]),
];

/// The options that hold or lead to credentials: user mappings only.
pub const CREDENTIAL_OPTIONS: &[&str] = &[
    "auth_type",
    "token",
    "client_id",
    "client_secret",
    "azure_tenant_id",
    "azure_client_id",
    "azure_client_secret",
    "google_credentials",
    "oidc_token_file",
];

const ALL_WAYS: &str = "Give the user mapping the options of one way to sign in: (token '...'), (client_id '...', client_secret '...'), \
(azure_tenant_id '...', azure_client_id '...', azure_client_secret '...'), (auth_type 'azure-msi'), (google_credentials '<key JSON>') \
or (oidc_token_file '...'); auth_type may name it.";

/// The credential options as given.
#[derive(Debug, Clone, Default)]
pub struct UserOptions {
    given: Vec<(String, String)>,
}

/// How a role signs in.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// A personal access token, sent as it is.
    Token(Secret),
    /// Tokens from a token endpoint.
    Exchange(Method),
}

impl UserOptions {
    pub fn from_options(options: &[(String, String)]) -> Self {
        UserOptions { given: options.iter().filter(|(n, _)| CREDENTIAL_OPTIONS.contains(&n.as_str())).cloned().collect() }
    }

    /// No credential option at all (the server's profile may give them).
    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }

    fn get(&self, name: &str) -> Option<&str> {
        option(&self.given, name)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.given.iter().map(|(n, _)| n.as_str()).filter(|n| *n != "auth_type").collect();
        names.dedup();
        names
    }

    /// Exactly one way to sign in, with everything it needs.
    pub fn credentials(&self) -> OptionResult<Credentials> {
        let auth_type = self.auth_type()?;
        let (name, required, optional) = AUTH_TYPES.iter().find(|(n, _, _)| *n == auth_type).copied().expect("a known auth_type");
        let takes = || {
            let all: Vec<String> = required.iter().chain(optional.iter()).map(|o| o.to_string()).collect();
            if all.is_empty() {
                "no other option".to_string()
            } else {
                all.join(", ")
            }
        };
        for given in self.names() {
            if !required.contains(&given) && !optional.contains(&given) {
                return Err(OptionError::new(Problem::UnknownName, format!("option \"{given}\" does not belong to auth_type \"{name}\""))
                    .hint(format!("auth_type '{name}' takes {}.", takes())));
            }
        }
        if let Some(missing) = required.iter().find(|r| self.get(r).is_none()) {
            return Err(OptionError::missing_option(
                missing,
                &format!("a user mapping with auth_type \"{name}\""),
                format!("auth_type '{name}' takes {}.", takes()),
            ));
        }
        let text = |n: &str| self.get(n).map(str::to_string);
        let secret = |n: &str| self.get(n).map(|v| Secret::new(v.to_string())).expect("a required option");
        let required = |n: &str| text(n).expect("a required option");
        Ok(match name {
            "pat" => Credentials::Token(secret("token")),
            "oauth-m2m" => {
                Credentials::Exchange(Method::OAuthM2M { client_id: required("client_id"), client_secret: secret("client_secret") })
            }
            "azure-client-secret" => Credentials::Exchange(Method::AzureClientSecret {
                tenant_id: required("azure_tenant_id"),
                client_id: required("azure_client_id"),
                client_secret: secret("azure_client_secret"),
            }),
            "azure-msi" => Credentials::Exchange(Method::AzureMsi { client_id: text("azure_client_id") }),
            "google-credentials" => Credentials::Exchange(Method::Google { key: secret("google_credentials") }),
            _ => Credentials::Exchange(Method::FileOidc { token_file: required("oidc_token_file"), client_id: text("client_id") }),
        })
    }

    /// `auth_type`, or the one way the options given belong to.
    fn auth_type(&self) -> OptionResult<&'static str> {
        if let Some(given) = self.get("auth_type") {
            return parse_auth_type(given).map_err(|p| OptionError::bad_option_value("auth_type", p).hint(valid_auth_types()));
        }
        let names = self.names();
        if names.is_empty() {
            return Err(OptionError::new(Problem::Missing, "the user mapping has no credentials").hint(ALL_WAYS));
        }
        // The ways each option belongs to; an option of a single way decides.
        let ways = |o: &str| -> Vec<&'static str> {
            AUTH_TYPES.iter().filter(|(_, r, opt)| r.contains(&o) || opt.contains(&o)).map(|(n, _, _)| *n).collect()
        };
        let mut decided: Vec<(&str, &'static str)> = names
            .iter()
            .filter_map(|o| match ways(o).as_slice() {
                [one] => Some((*o, *one)),
                _ => None,
            })
            .collect();
        decided.dedup_by_key(|(_, w)| *w);
        let mut distinct: Vec<(&str, &'static str)> = Vec::new();
        for d in decided {
            if !distinct.iter().any(|(_, w)| *w == d.1) {
                distinct.push(d);
            }
        }
        match distinct.as_slice() {
            [] if names.contains(&"client_id") => Ok("oauth-m2m"),
            [] => Ok("azure-client-secret"),
            [(_, way)] => {
                // An option shared by several ways must belong to this one too.
                if let Some(other) = names.iter().find(|o| !ways(o).contains(way)) {
                    return Err(two_ways(other, ways(other)[0], names.iter().find(|o| ways(o) == [*way]).copied().unwrap_or(way), way));
                }
                Ok(way)
            }
            [(a, wa), (b, wb), ..] => Err(two_ways(a, wa, b, wb)),
        }
    }
}

fn two_ways(a: &str, way_a: &str, b: &str, way_b: &str) -> OptionError {
    OptionError::new(
        Problem::UnknownName,
        format!("the user mapping gives the options of two ways to sign in: {a} ({way_a}) and {b} ({way_b})"),
    )
    .hint(format!("Keep the options of one: ALTER USER MAPPING ... OPTIONS (DROP ...). {ALL_WAYS}"))
}

pub(super) fn parse_auth_type(v: &str) -> Result<&'static str, String> {
    AUTH_TYPES
        .iter()
        .map(|(n, _, _)| *n)
        .find(|n| *n == v.trim())
        .ok_or_else(|| format!("unknown auth_type {:?}", crate::text::excerpt(v, 40)))
}

pub(super) fn valid_auth_types() -> String {
    format!("Valid auth_types are: {}.", AUTH_TYPES.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", "))
}

/// An Entra ID tenant: its id (a GUID) or one of its domain names.
pub(super) fn check_tenant(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 253 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') || v.starts_with('.') {
        return Err("a tenant is its id (a GUID) or a domain name such as contoso.onmicrosoft.com".into());
    }
    Ok(())
}

impl Credentials {
    /// How requests are authorised with these credentials, for `role` on `server` (tokens from
    /// an endpoint are cached per server, role and credentials).
    pub fn auth(self, server: u32, role: u32, endpoints: &Endpoints) -> Auth {
        match self {
            Credentials::Token(token) => Auth::Token(token),
            Credentials::Exchange(method) => Auth::session(SessionKey { server, role, method, endpoints: endpoints.clone() }),
        }
    }

    /// What they are, for people (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Credentials::Token(_) => "a personal access token (pat)".into(),
            Credentials::Exchange(Method::OAuthM2M { client_id, .. }) => format!("Databricks service principal {client_id} (oauth-m2m)"),
            Credentials::Exchange(Method::AzureClientSecret { tenant_id, client_id, .. }) => {
                format!("Entra ID service principal {client_id} of tenant {tenant_id} (azure-client-secret)")
            }
            Credentials::Exchange(Method::AzureMsi { client_id: Some(id) }) => format!("user-assigned managed identity {id} (azure-msi)"),
            Credentials::Exchange(Method::AzureMsi { client_id: None }) => "the machine's managed identity (azure-msi)".into(),
            Credentials::Exchange(Method::Google { .. }) => "a Google service-account key (google-credentials)".into(),
            Credentials::Exchange(Method::FileOidc { token_file, client_id }) => match client_id {
                Some(id) => format!("workload identity federation with {token_file} as service principal {id} (file-oidc)"),
                None => format!("account-wide token federation with {token_file} (file-oidc)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> OptionResult<Credentials> {
        UserOptions::from_options(&pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()).credentials()
    }

    #[test]
    fn the_options_given_choose_the_way_to_sign_in() {
        assert_eq!(creds(&[("token", "t")]).unwrap(), Credentials::Token(Secret::new("t".into())));
        let name = |pairs: &[(&str, &str)]| match creds(pairs).unwrap() {
            Credentials::Token(_) => "pat",
            Credentials::Exchange(m) => m.name(),
        };
        assert_eq!(name(&[("client_id", "c"), ("client_secret", "s")]), "oauth-m2m");
        assert_eq!(name(&[("azure_tenant_id", "t"), ("azure_client_id", "c"), ("azure_client_secret", "s")]), "azure-client-secret");
        assert_eq!(name(&[("auth_type", "azure-msi")]), "azure-msi");
        assert_eq!(name(&[("auth_type", "azure-msi"), ("azure_client_id", "c")]), "azure-msi");
        assert_eq!(name(&[("google_credentials", "{}")]), "google-credentials");
        assert_eq!(name(&[("oidc_token_file", "/f")]), "file-oidc");
        assert_eq!(name(&[("oidc_token_file", "/f"), ("client_id", "c")]), "file-oidc");
        assert_eq!(name(&[("auth_type", "pat"), ("token", "t")]), "pat");
    }

    #[test]
    fn two_ways_at_once_missing_options_and_typos_are_refused() {
        for (pairs, says) in [
            (&[("token", "t"), ("client_id", "c"), ("client_secret", "s")][..], "two ways to sign in"),
            (&[("token", "t"), ("azure_tenant_id", "t")][..], "token (pat) and azure_tenant_id (azure-client-secret)"),
            (&[("client_secret", "s"), ("oidc_token_file", "/f")][..], "two ways"),
            (&[("token", "t"), ("client_id", "c")][..], "client_id (oauth-m2m) and token (pat)"),
            (&[("client_id", "c")][..], "needs the option \"client_secret\""),
            (&[("client_secret", "s")][..], "needs the option \"client_id\""),
            (&[("azure_client_id", "c")][..], "needs the option \"azure_tenant_id\""),
            (&[][..], "no credentials"),
            (&[("auth_type", "azure-msi"), ("token", "t")][..], "option \"token\" does not belong to auth_type \"azure-msi\""),
            (&[("auth_type", "file-oidc")][..], "needs the option \"oidc_token_file\""),
        ] {
            let e = creds(pairs).unwrap_err();
            assert!(e.message.contains(says), "{pairs:?}: {}", e.message);
            assert!(e.hint.is_some(), "{pairs:?}");
        }
        let e = creds(&[("auth_type", "azure_msi")]).unwrap_err();
        assert_eq!(e.problem, Problem::BadValue);
        assert!(e.message.contains("unknown auth_type \"azure_msi\""), "{}", e.message);
        assert_eq!(
            e.hint.as_deref(),
            Some("Valid auth_types are: pat, oauth-m2m, azure-client-secret, azure-msi, google-credentials, file-oidc.")
        );
    }

    #[test]
    fn descriptions_never_show_a_secret() {
        for c in [
            creds(&[("token", "dapi-canary")]).unwrap(),
            creds(&[("client_id", "c"), ("client_secret", "canary")]).unwrap(),
            creds(&[("azure_tenant_id", "t"), ("azure_client_id", "c"), ("azure_client_secret", "canary")]).unwrap(),
            creds(&[("google_credentials", "{\"canary\":1}")]).unwrap(),
        ] {
            assert!(!c.describe().contains("canary") && !format!("{c:?}").contains("canary"), "{}", c.describe());
        }
    }
}
