//! API failures, and how each becomes a Postgres error.

use crate::error::FdwError;
use pgrx::PgSqlErrorCode::*;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The API answered with an error status.
    Status { path: String, status: u16, error_code: Option<String>, message: Option<String> },
    /// No usable answer: connection refused or reset, DNS, TLS, timeout. `lasting`: a failure
    /// that trying again would meet again (an unknown host, a certificate that does not verify).
    Transport { path: String, problem: String, timeout: bool, lasting: bool },
    /// The credentials cannot be sent in an HTTP header (a control character in a token).
    BadCredential,
    /// A request task stopped without an answer (a bug): the scan ends instead of waiting.
    Internal { problem: String },
    /// A 2xx whose body is not the expected JSON.
    BadResponse { path: String, problem: String },
    TooLarge { path: String, limit: usize },
    /// The API handed back a page token it had already given: following it would loop for ever.
    RepeatedPageToken { path: String, page: u32 },
    /// Retries of a transient failure ran out.
    Exhausted { last: Box<ApiError>, why: String },
}

impl ApiError {
    pub fn transport(path: &str, e: &reqwest::Error) -> Self {
        // `path` is the request line ("GET /api/..."); the URL is left out to keep it short.
        // The URL holds request values of any length; the path is reported on its own.
        let mut problem = e.to_string();
        if let Some(url) = e.url() {
            problem = problem.replace(&format!(" for url ({url})"), "");
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            problem = format!("{problem}: {s}");
            source = s.source();
        }
        // The error types of the TLS and DNS layers are not reachable through reqwest's API;
        // their messages are stable, and a test checks each (e2e `tls` and `reliability`).
        let lower = problem.to_ascii_lowercase();
        let lasting = e.is_builder() || LASTING.iter().any(|m| lower.contains(m));
        ApiError::Transport { path: excerpt(path, PATH_SHOWN), problem, timeout: e.is_timeout(), lasting }
    }

    /// Decodes an error body: `{"error_code","message"}`, the older `{"error"}`, or whatever a
    /// proxy sent (an excerpt of it becomes the message).
    /// The status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    pub fn from_status(path: &str, status: u16, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        let error_code = field("error_code");
        // Databricks: message; older services: error; OAuth endpoints: error_description.
        let message = field("message").or_else(|| field("error_description")).or_else(|| field("error")).map(|m| excerpt(&m, 300)).or_else(|| {
            let text = String::from_utf8_lossy(body);
            let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (!flat.is_empty()).then(|| excerpt(&flat, 200))
        });
        ApiError::Status { path: excerpt(path, PATH_SHOWN), status, error_code, message }
    }

    /// The Postgres error for a scan of `table`.
    pub fn into_fdw_error(self, table: &str) -> FdwError {
        match self {
            ApiError::Exhausted { last, why } => {
                let mut e = last.into_fdw_error(table);
                e.detail = Some(match e.detail {
                    Some(d) => format!("{d} ({why})"),
                    None => why,
                });
                e
            }
            ApiError::Status { path, status, error_code, message } => {
                let code_part = error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
                let msg_part = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                let (sqlstate, hint) = match (status, error_code.as_deref()) {
                    (401, _) => (ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, Some("Check the credentials in the user mapping for this server: ALTER USER MAPPING ... OPTIONS (SET token '...'), or client_id and client_secret.")),
                    (403, _) => (ERRCODE_INSUFFICIENT_PRIVILEGE, Some("The token is valid but lacks access: ask a workspace admin for permission on the clean room.")),
                    (404, Some("RESOURCE_DOES_NOT_EXIST")) => (ERRCODE_UNDEFINED_OBJECT, Some("Check the name; the clean_rooms listing shows the clean rooms this token can see.")),
                    (404, _) => (ERRCODE_FDW_TABLE_NOT_FOUND, Some("Check the server's workspace_url: it may not point at a Databricks workspace.")),
                    (400, _) => (ERRCODE_INVALID_PARAMETER_VALUE, None),
                    (409, _) => (ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, None),
                    (429, _) => (ERRCODE_INSUFFICIENT_RESOURCES, Some("The workspace is rate-limiting requests; try again later.")),
                    _ => (ERRCODE_FDW_ERROR, None),
                };
                let e = FdwError::new(sqlstate, format!("Databricks API returned HTTP {status}{code_part} for foreign table \"{table}\"{msg_part}"))
                    .detail(path);
                match hint {
                    Some(h) => e.hint(h),
                    None => e,
                }
            }
            ApiError::BadCredential => FdwError::new(
                ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                format!("the credentials in the user mapping cannot be sent for foreign table \"{table}\""),
            )
            .detail("The token or the OAuth token holds characters an HTTP header cannot carry, such as a line break.")
            .hint("Set it again without them: ALTER USER MAPPING ... OPTIONS (SET token '...')."),
            ApiError::Internal { problem } => {
                FdwError::new(ERRCODE_INTERNAL_ERROR, format!("databricks_fdw: a request for foreign table \"{table}\" stopped without an answer")).detail(problem)
            }
            ApiError::Transport { path, problem, timeout, lasting } => {
                let lower = problem.to_ascii_lowercase();
                let hint = if lasting && lower.contains("certificate") {
                    "The workspace's certificate did not verify: check the server's workspace_url, and its ca_certificate option for a private certificate authority."
                } else if lasting && lower.contains("corrupt message") {
                    "The workspace did not answer in TLS: check the scheme and port of the server's workspace_url."
                } else {
                    "Check the server's workspace_url and that the workspace is reachable from the database host."
                };
                let what = if timeout { "timed out" } else { "failed" };
                FdwError::new(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION, format!("request to the Databricks API {what} for foreign table \"{table}\""))
                    .detail(format!("{path}: {}", excerpt(&problem, 500)))
                    .hint(hint)
            }
            ApiError::BadResponse { path, problem } => {
                FdwError::new(ERRCODE_FDW_ERROR, format!("the Databricks API sent an unreadable response for foreign table \"{table}\""))
                    .detail(format!("{path}: {problem}"))
            }
            ApiError::TooLarge { path, limit } => FdwError::new(
                ERRCODE_FDW_ERROR,
                format!("a Databricks API response for foreign table \"{table}\" is larger than max_response_bytes ({limit} bytes)"),
            )
            .detail(path)
            .hint("Set a smaller page_size on the foreign table, or raise the server's max_response_bytes."),
            ApiError::RepeatedPageToken { path, page } => FdwError::new(
                ERRCODE_FDW_ERROR,
                format!("the Databricks API repeated a page token on page {page} for foreign table \"{table}\""),
            )
            .detail(format!("{path}: following it would return the same rows again, so the scan stopped")),
        }
    }
}

/// What the TLS and DNS layers say of failures that trying again would meet again: a
/// certificate that does not verify, an unknown host, a server that does not speak TLS.
const LASTING: &[&str] = &["certificate", "dns error", "failed to lookup address", "name or service not known", "corrupt message"];

/// The most characters of a request path quoted in a message (a path holds request values,
/// which may be of any length).
pub const PATH_SHOWN: usize = 200;

/// At most `max` characters of `s`, cut on a character boundary.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databricks_error_bodies_become_messages_with_status_code_and_text() {
        let e = ApiError::from_status("/api/2.0/clean-rooms/x/runs", 404, br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Clean room 'x' does not exist."}"#)
            .into_fdw_error("task_runs");
        assert_eq!(e.code, ERRCODE_UNDEFINED_OBJECT);
        assert_eq!(e.message, "Databricks API returned HTTP 404 RESOURCE_DOES_NOT_EXIST for foreign table \"task_runs\": Clean room 'x' does not exist.");
        assert!(e.hint.is_some());
    }

    #[test]
    fn older_and_non_json_bodies() {
        let e = ApiError::from_status("/p", 500, br#"{"error":"boom"}"#).into_fdw_error("t");
        assert!(e.message.ends_with("HTTP 500 for foreign table \"t\": boom"), "{}", e.message);
        let e = ApiError::from_status("/p", 502, b"<html>\n<body>Bad   gateway</body></html>").into_fdw_error("t");
        assert!(e.message.ends_with(": <html> <body>Bad gateway</body></html>"), "{}", e.message);
        let e = ApiError::from_status("/p", 401, b"").into_fdw_error("t");
        assert_eq!(e.code, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION);
        assert!(e.message.ends_with("HTTP 401 for foreign table \"t\""));
    }

    #[test]
    fn statuses_map_to_sqlstates_a_user_can_act_on() {
        let code = |status| ApiError::from_status("/p", status, b"{}").into_fdw_error("t").code;
        assert_eq!(code(403), ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert_eq!(code(429), ERRCODE_INSUFFICIENT_RESOURCES);
        assert_eq!(code(400), ERRCODE_INVALID_PARAMETER_VALUE);
        assert_eq!(code(404), ERRCODE_FDW_TABLE_NOT_FOUND);
        assert_eq!(code(503), ERRCODE_FDW_ERROR);
    }
}
