//! API failures, and how each becomes a Postgres error.


#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The API answered with an error status.
    Status { path: String, status: u16, error_code: Option<String>, message: Option<String> },
    /// No usable answer: connection refused or reset, DNS, TLS, timeout. `lasting`: a failure
    /// that trying again would meet again (an unknown host, a certificate that does not verify).
    /// `unsent`: no connection was made, so the server never saw the request.
    Transport { path: String, problem: String, timeout: bool, lasting: bool, unsent: bool },
    /// The credentials cannot be sent in an HTTP header (a control character in a token).
    BadCredential,
    /// A request task stopped without an answer (a bug): the scan ends instead of waiting.
    Internal { problem: String },
    /// A 2xx whose body is not the expected JSON.
    BadResponse { path: String, problem: String },
    TooLarge { path: String, limit: usize },
    /// The API handed back a page token it had already given: following it would loop for ever.
    RepeatedPageToken { path: String, page: u32 },
    /// A fan-out over a parent listing needed more listings than `max_listings`.
    TooManyListings { max: usize },
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
        ApiError::Transport { path: excerpt(path, PATH_SHOWN), problem, timeout: e.is_timeout(), lasting, unsent: e.is_connect() }
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

    /// The service's answer that the object does not exist (404 RESOURCE_DOES_NOT_EXIST): not
    /// a wrong URL (ENDPOINT_NOT_FOUND), nor a proxy's 404 page.
    pub fn is_gone(&self) -> bool {
        match self {
            ApiError::Status { status: 404, error_code: Some(code), .. } => code == "RESOURCE_DOES_NOT_EXIST",
            _ => false,
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

