//! A `.databrickscfg` profile, as the SDKs and the CLI read it: an INI file of `[profile]`
//! sections of `key = value` lines. A profile gives the workspace (`host`) and the credentials
//! of one way to sign in, in the SDKs' key names. Errors name the file, the line and the key,
//! never a value.

use super::credentials::UserOptions;
use super::error::{OptionError, OptionResult, Problem};

/// The profile when the server names none, as in the SDKs.
pub const DEFAULT_PROFILE: &str = "DEFAULT";
/// A configuration file is a few hundred bytes; anything this large is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct Profile {
    /// `host`: the workspace URL.
    pub host: Option<String>,
    /// The credentials it gives, as user-mapping options.
    pub credentials: UserOptions,
}

/// Reads `name` from the file `path`.
pub fn load(path: &str, name: &str) -> OptionResult<Profile> {
    let unreadable = |e: std::io::Error| OptionError::bad_option_value("config_file", format!("cannot read \"{path}\": {e}"));
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_FILE_BYTES {
        return Err(OptionError::bad_option_value("config_file", format!("\"{path}\" is larger than a configuration file ({size} bytes)")));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    parse(&text, path, name)
}

/// The section `name` of `text` (the file `path`).
pub fn parse(text: &str, path: &str, name: &str) -> OptionResult<Profile> {
    let mut sections: Vec<String> = Vec::new();
    let mut pairs: Vec<(String, String, usize)> = Vec::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(section.trim().to_string());
            current = Some(section.trim().to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad_line(path, n + 1, "is neither a [profile] nor a key = value line"));
        };
        match &current {
            None => return Err(bad_line(path, n + 1, "comes before any [profile]")),
            Some(s) if s == name => pairs.push((key.trim().to_ascii_lowercase(), value.trim().to_string(), n + 1)),
            Some(_) => {}
        }
    }
    if !sections.iter().any(|s| s == name) {
        let known = if sections.is_empty() { "none".to_string() } else { sections.join(", ") };
        return Err(OptionError::bad_option_value("profile", format!("\"{name}\" is not a profile of \"{path}\""))
            .hint(format!("Profiles in the file: {known}.")));
    }
    let mut host = None;
    let mut options: Vec<(String, String)> = Vec::new();
    for (key, value, line) in pairs {
        match key.as_str() {
            "host" => host = Some(value),
            "token" | "client_id" | "client_secret" | "azure_tenant_id" | "azure_client_id" | "azure_client_secret" | "auth_type" => {
                options.push((key, value))
            }
            "oidc_token_filepath" | "oidc_token_file" => options.push(("oidc_token_file".into(), value)),
            // The SDKs take the key's JSON or the path of its file.
            "google_credentials" if value.starts_with('{') => options.push((key, value)),
            "google_credentials" => {
                let json = std::fs::read_to_string(&value)
                    .map_err(|e| bad_line(path, line, &format!("names a google_credentials file that cannot be read ({})", e.kind())))?;
                options.push((key, json));
            }
            "azure_use_msi" if value.eq_ignore_ascii_case("true") => options.push(("auth_type".into(), "azure-msi".into())),
            // Keys for other purposes (cluster_id, account_id, ...) do not matter here.
            _ => {}
        }
    }
    let credentials = UserOptions::from_options(&options);
    // Checked now, so that the error names the file rather than a user mapping.
    if !credentials.is_empty() {
        credentials.credentials().map_err(|e| OptionError { message: format!("profile \"{name}\" of \"{path}\": {}", e.message), ..e })?;
    }
    Ok(Profile { host, credentials })
}

fn bad_line(path: &str, line: usize, problem: &str) -> OptionError {
    OptionError::new(Problem::ConfigFile, format!("line {line} of \"{path}\" {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Credentials;

    const FILE: &str = "# made by databricks configure\n[DEFAULT]\nhost = https://dbc-a.cloud.databricks.com\ntoken = dapi-canary-1\n\n\
[azure]\nhost=https://adb-1.2.azuredatabricks.net/\nazure_tenant_id = t\nazure_client_id = c\n\
azure_client_secret = canary-2\ncluster_id = x\n\n\
[msi]\nhost = https://adb-1.2.azuredatabricks.net\nazure_use_msi = true\n\n[empty]\n";

    #[test]
    fn profiles_give_a_host_and_credentials() {
        let p = parse(FILE, "/etc/dbx.cfg", DEFAULT_PROFILE).unwrap();
        assert_eq!(p.host.as_deref(), Some("https://dbc-a.cloud.databricks.com"));
        assert!(matches!(p.credentials.credentials().unwrap(), Credentials::Token(_)));
        let p = parse(FILE, "/etc/dbx.cfg", "azure").unwrap();
        assert_eq!(p.host.as_deref(), Some("https://adb-1.2.azuredatabricks.net/"));
        assert!(matches!(p.credentials.credentials().unwrap(), Credentials::Exchange(m) if m.name() == "azure-client-secret"));
        let p = parse(FILE, "f", "msi").unwrap();
        assert!(matches!(p.credentials.credentials().unwrap(), Credentials::Exchange(m) if m.name() == "azure-msi"));
        assert!(parse(FILE, "f", "empty").unwrap().credentials.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_line_but_no_value() {
        let e = parse("[DEFAULT]\ntoken dapi-canary\n", "/etc/dbx.cfg", DEFAULT_PROFILE).unwrap_err();
        assert_eq!(e.message, "line 2 of \"/etc/dbx.cfg\" is neither a [profile] nor a key = value line");
        assert_eq!(e.problem, Problem::ConfigFile);
        let e = parse("token = dapi-canary\n", "f", DEFAULT_PROFILE).unwrap_err();
        assert!(e.message.contains("line 1") && !e.message.contains("canary"), "{}", e.message);
        let e = parse(FILE, "/etc/dbx.cfg", "prod").unwrap_err();
        assert!(e.message.contains("\"prod\" is not a profile"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("Profiles in the file: DEFAULT, azure, msi, empty."));
        let e = parse("[p]\ntoken = dapi-canary\nclient_id = c\nclient_secret = canary\n", "f", "p").unwrap_err();
        assert!(e.message.starts_with("profile \"p\" of \"f\": the user mapping gives the options of two ways"), "{}", e.message);
        assert!(!e.message.contains("canary"));
        assert!(load("/nonexistent/dbx.cfg", "p").unwrap_err().message.contains("cannot read \"/nonexistent/dbx.cfg\""));
    }
}
