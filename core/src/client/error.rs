//! API failures, typed: what went wrong and whether trying again may help. The extension's
//! `src/fdw/errors.rs` words each one as a Postgres error.

use crate::text::excerpt;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The API answered with an error status.
    Status {
        path: String,
        status: u16,
        error_code: Option<String>,
        message: Option<String>,
        details: ErrorDetails,
    },
    /// No usable answer: connection refused or reset, DNS, TLS, timeout. `lasting`: a failure
    /// that trying again would meet again (an unknown host, a certificate that does not verify).
    /// `unsent`: no connection was made, so the server never saw the request.
    Transport {
        path: String,
        problem: String,
        timeout: bool,
        lasting: bool,
        unsent: bool,
    },
    /// The credentials cannot be sent in an HTTP header (a control character in a token).
    BadCredential,
    /// A request task stopped without an answer (a bug): the scan ends instead of waiting.
    Internal {
        problem: String,
    },
    /// A 2xx whose body is not the expected JSON.
    BadResponse {
        path: String,
        problem: String,
    },
    TooLarge {
        path: String,
        limit: usize,
    },
    /// The API handed back a page token it had already given: following it would loop for ever.
    RepeatedPageToken {
        path: String,
        page: u32,
    },
    /// A fan-out over a parent listing needed more listings than `max_listings`.
    TooManyListings {
        max: usize,
    },
    /// Retries of a transient failure ran out.
    Exhausted {
        last: Box<ApiError>,
        why: String,
    },
    /// A token endpoint refused, failed or could not be reached: `method` is the `auth_type`,
    /// `option` the server option naming the endpoint. `retryable`: as the error would be for
    /// the API, but never for a metadata service that is not there.
    SignIn {
        method: &'static str,
        option: &'static str,
        error: Box<ApiError>,
        retryable: bool,
    },
    /// The credentials cannot be used as they are (an unreadable token file, a key that is not
    /// one): no request was made.
    CredentialUnusable {
        method: &'static str,
        problem: String,
    },
}

impl ApiError {
    pub fn transport(path: &str, e: &reqwest::Error) -> Self {
        // `path` is the request line ("GET /api/..."); the URL is left out to keep it short.
        // The URL holds request values of any length; the path is reported on its own.
        let mut problem = e.to_string();
        if let Some(url) = e.url() {
            problem = problem.replace(&format!(" for url ({url})"), "");
        }
        let mut lasting = e.is_builder();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            problem = format!("{problem}: {s}");
            lasting |= is_lasting(s);
            source = s.source();
        }
        ApiError::Transport { path: excerpt(path, PATH_SHOWN), problem, timeout: e.is_timeout(), lasting, unsent: e.is_connect() }
    }

    /// A request task that stopped without an answer (a bug): the scan ends with this instead
    /// of waiting for a page that never comes.
    pub fn task_failed() -> Self {
        ApiError::Internal { problem: "a request task failed".into() }
    }

    /// The service's answer that the object does not exist (404 RESOURCE_DOES_NOT_EXIST): not
    /// a wrong URL (ENDPOINT_NOT_FOUND), nor a proxy's 404 page.
    pub fn is_gone(&self) -> bool {
        match self {
            ApiError::Status { status: 404, error_code: Some(code), .. } => code == "RESOURCE_DOES_NOT_EXIST",
            _ => false,
        }
    }

    /// The service's answer that the object's state allows no such request (a DELETED clean
    /// room allows nothing but its deletion).
    pub fn is_invalid_state(&self) -> bool {
        matches!(self, ApiError::Status { error_code: Some(code), .. } if code == "INVALID_STATE")
    }

    pub fn from_status(path: &str, status: u16, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        // Some services send the code as a number.
        let error_code =
            field("error_code").or_else(|| json.as_ref().and_then(|j| j.get("error_code")).and_then(|v| v.as_i64()).map(|n| n.to_string()));
        let details = json.as_ref().and_then(|j| j.get("details")).map(ErrorDetails::parse).unwrap_or_default();
        // Databricks: message; older services: error; OAuth endpoints: error_description.
        let message =
            field("message").or_else(|| field("error_description")).or_else(|| field("error")).map(|m| excerpt(&m, 300)).or_else(|| {
                let text = String::from_utf8_lossy(body);
                let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                (!flat.is_empty()).then(|| excerpt(&flat, 200))
            });
        ApiError::Status { path: excerpt(path, PATH_SHOWN), status, error_code, message, details }
    }

    /// A 3xx to the workspace's login page, which a workspace behind Private Link answers a
    /// request from outside its network with: the SDKs report it as 403
    /// PRIVATE_LINK_VALIDATION_ERROR, and so does this.
    pub fn private_link(path: &str) -> Self {
        ApiError::Status {
            path: excerpt(path, PATH_SHOWN),
            status: 403,
            error_code: Some(PRIVATE_LINK_CODE.into()),
            message: Some("the workspace has Private Link enabled and is not reachable from this database server's network".into()),
            details: ErrorDetails::default(),
        }
    }
}

pub const PRIVATE_LINK_CODE: &str = "PRIVATE_LINK_VALIDATION_ERROR";

/// Whether a redirect's `Location` is the login page's Private Link refusal.
pub fn is_private_link_redirect(location: &str) -> bool {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    path.ends_with("/login.html") && query.split('&').any(|p| p == "error=private-link-validation-error")
}

/// What the typed entries of an error body's `details` say that a user or a retry can use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorDetails {
    /// `RequestInfo.request_id`: what Databricks support asks for.
    pub request_id: Option<String>,
    /// `RetryInfo.retry_delay` ("1.5s"): when to try again, like `Retry-After`.
    pub retry_delay: Option<std::time::Duration>,
    /// `BadRequest.field_violations`: (field, description), the first few.
    pub field_violations: Vec<(String, String)>,
}

impl ErrorDetails {
    /// The most field violations kept (a body may list any number).
    const VIOLATIONS_KEPT: usize = 5;

    fn parse(details: &serde_json::Value) -> ErrorDetails {
        let mut parsed = ErrorDetails::default();
        let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(|s| excerpt(s, 200));
        for entry in details.as_array().into_iter().flatten() {
            match entry.get("@type").and_then(|t| t.as_str()).unwrap_or_default() {
                "type.googleapis.com/google.rpc.RequestInfo" => parsed.request_id = text(entry, "request_id"),
                "type.googleapis.com/google.rpc.RetryInfo" => {
                    parsed.retry_delay = entry.get("retry_delay").and_then(|d| d.as_str()).and_then(parse_duration)
                }
                "type.googleapis.com/google.rpc.BadRequest" => {
                    for v in entry.get("field_violations").and_then(|f| f.as_array()).into_iter().flatten().take(Self::VIOLATIONS_KEPT) {
                        parsed.field_violations.push((text(v, "field").unwrap_or_default(), text(v, "description").unwrap_or_default()));
                    }
                }
                _ => {}
            }
        }
        parsed
    }
}

/// A protobuf JSON duration: decimal seconds followed by `s` ("3", "1.5"). Absurd values are
/// ignored rather than trusted.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds)).then(|| std::time::Duration::from_secs_f64(seconds))
}

/// Whether one error of a transport failure's chain would be met again on a second try, by its
/// type: a host name that does not resolve, or any TLS failure (a certificate that does not
/// verify, a server that does not speak TLS). The TLS layer's errors arrive inside I/O errors.
fn is_lasting(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(resolve) = e.downcast_ref::<super::dns::ResolveError>() {
        return resolve.lasting;
    }
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    // An I/O error's source() skips the error it wraps: look inside, layer by layer.
    match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => is_lasting(inner as &(dyn std::error::Error + 'static)),
        None => false,
    }
}

/// The most characters of a request path quoted in a message (a path holds request values,
/// which may be of any length).
pub const PATH_SHOWN: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_their_code_request_id_retry_delay_and_fields() {
        let body = concat!(
            r#"{"error_code": 1003, "message": "bad", "details": [
            {"@type": "type.googleapis.com/google.rpc.RequestInfo", "request_id": "req-42", "serving_data": ""},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": "1.5s"},
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": "#,
            r#"[{"field": "remote_detailed_info.region", "description": "required"}]},
            {"@type": "type.googleapis.com/google.rpc.Unknown"}, 7]}"#
        )
        .as_bytes();
        let ApiError::Status { error_code, details, .. } = ApiError::from_status("POST /p", 400, body) else { panic!() };
        assert_eq!(error_code.as_deref(), Some("1003"));
        assert_eq!(details.request_id.as_deref(), Some("req-42"));
        assert_eq!(details.retry_delay, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(details.field_violations, [("remote_detailed_info.region".to_string(), "required".to_string())]);
        for junk in [
            &br#"{"details": "x"}"#[..],
            br#"{"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": "-1s"}]}"#,
            b"<html>",
        ] {
            let ApiError::Status { details, .. } = ApiError::from_status("GET /p", 500, junk) else { panic!() };
            assert_eq!(details, ErrorDetails::default());
        }
    }

    #[test]
    fn tls_errors_are_lasting_however_deep_in_io_errors() {
        let tls =
            std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType));
        assert!(is_lasting(&tls));
        assert!(is_lasting(&std::io::Error::other(tls)));
        assert!(!is_lasting(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
    }

    #[test]
    fn the_private_link_login_page_is_recognised() {
        assert!(is_private_link_redirect("https://x.cloud.databricks.com/login.html?error=private-link-validation-error"));
        assert!(is_private_link_redirect("/login.html?a=1&error=private-link-validation-error"));
        assert!(!is_private_link_redirect("https://x/login.html?error=other"));
        assert!(!is_private_link_redirect("https://evil/?error=private-link-validation-error"));
    }
}
