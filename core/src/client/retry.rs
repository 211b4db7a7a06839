//! When to try a request again, and how long to wait first. Retried: 429 and 503, the error
//! codes the SDKs treat as "slow down" or "try later", connection failures and timeouts (a
//! create only after a 429 or a connection that never opened: see [`write_is_retryable`]). Never
//! retried: anything the same request would get again (400, 401, 403, 404, ...). A `Retry-After`
//! header is honoured (seconds or an HTTP date); otherwise waits grow exponentially with jitter.
//! Each wait and the sum of waits are capped.

use super::error::ApiError;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// The longest single wait; a `Retry-After` asking for more ends the retries.
    pub max_wait: Duration,
    /// The most time spent waiting for one request, all retries together.
    pub total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 5, max_wait: Duration::from_secs(10), total_wait: Duration::from_secs(60) }
    }
}

/// Error codes that mean "slow down" or "try later", whatever the status.
const RETRYABLE_CODES: &[&str] = &["REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED", "TEMPORARILY_UNAVAILABLE"];
/// The first wait without a Retry-After; each next one doubles.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

pub fn is_retryable(e: &ApiError) -> bool {
    match e {
        ApiError::Status { status: 429 | 503, .. } => true,
        ApiError::Status { error_code: Some(code), .. } => RETRYABLE_CODES.contains(&code.as_str()),
        ApiError::Transport { lasting, .. } => !lasting,
        ApiError::SignIn { retryable, .. } => *retryable,
        _ => false,
    }
}

/// Whether a write call may be sent again after `e`. A create (POST) makes a new object each
/// time the service carries it out (the service assigns its id), so it is sent again only when
/// the failure proves it was not carried out: a 429 (refused before processing) or a connection
/// that never opened. A 503 proves nothing (a gateway may answer it after the service made the
/// object), nor does a timeout or a dropped connection. An update sets the same fields twice and
/// a delete finds the object gone, so those are retried as reads are.
pub fn write_is_retryable(method: &reqwest::Method, e: &ApiError) -> bool {
    if *method != reqwest::Method::POST {
        return is_retryable(e);
    }
    // A failed sign-in sent nothing to the workspace.
    matches!(
        e,
        ApiError::Status { status: 429, .. }
            | ApiError::Transport { lasting: false, unsent: true, .. }
            | ApiError::SignIn { retryable: true, .. }
    )
}

/// Whether a write call that failed with `e` may have been carried out all the same: a server
/// error (5xx), a connection lost after the request was sent, or an answer that could not be
/// read. A 4xx is a refusal, and a connection that never opened carried nothing.
pub fn may_have_been_applied(e: &ApiError) -> bool {
    match e {
        ApiError::Status { status, .. } => *status >= 500,
        ApiError::Transport { unsent, .. } => !unsent,
        ApiError::Exhausted { last, .. } => may_have_been_applied(last),
        // Nothing was sent to the workspace before a token was there.
        ApiError::BadCredential | ApiError::RepeatedPageToken { .. } | ApiError::TooManyListings { .. } => false,
        ApiError::SignIn { .. } | ApiError::CredentialUnusable { .. } => false,
        ApiError::Internal { .. } | ApiError::BadResponse { .. } | ApiError::TooLarge { .. } => true,
    }
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Wait(Duration),
    /// Stop, saying why (`None`: the error is not one to retry).
    GiveUp(Option<String>),
}

impl RetryPolicy {
    /// `retries` made so far, `waited` in total so far; `jitter` in [0, 1).
    pub fn decide(&self, error: &ApiError, retry_after: Option<Duration>, retries: u32, waited: Duration, jitter: f64) -> Decision {
        if !is_retryable(error) {
            return Decision::GiveUp(None);
        }
        if retries >= self.max_retries {
            return Decision::GiveUp(Some(format!("gave up after {retries} retries (max_retries)")));
        }
        let wait = match retry_after {
            Some(asked) if asked > self.max_wait => {
                return Decision::GiveUp(Some(format!("the API asked to wait {} s, more than retry_max_wait", asked.as_secs_f64())));
            }
            Some(asked) => asked,
            None => {
                let exp = FIRST_BACKOFF.saturating_mul(1u32 << retries.min(16)).min(self.max_wait);
                exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
            }
        };
        if waited + wait > self.total_wait {
            return Decision::GiveUp(Some(format!("gave up after {retries} retries: another wait would pass retry_total_wait")));
        }
        Decision::Wait(wait)
    }
}

/// `Retry-After`: whole seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>) -> ApiError {
        ApiError::Status { path: "GET /p".into(), status, error_code: code.map(str::to_string), message: None, details: Default::default() }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for e in
            [status(429, None), status(503, None), status(400, Some("RESOURCE_EXHAUSTED")), status(500, Some("TEMPORARILY_UNAVAILABLE"))]
        {
            assert!(is_retryable(&e), "{e:?}");
        }
        assert!(is_retryable(&transport(false, false, false)));
        assert!(!is_retryable(&ApiError::Transport {
            path: "GET /p".into(),
            problem: "invalid peer certificate".into(),
            timeout: false,
            lasting: true,
            unsent: true
        }));
        for s in [400, 401, 403, 404, 409, 500, 501, 502, 504] {
            assert!(!is_retryable(&status(s, None)), "{s}");
        }
        assert!(!is_retryable(&ApiError::BadResponse { path: "GET /p".into(), problem: "x".into() }));
    }

    fn transport(timeout: bool, lasting: bool, unsent: bool) -> ApiError {
        ApiError::Transport { path: "POST /p".into(), problem: "x".into(), timeout, lasting, unsent }
    }

    #[test]
    fn creates_are_retried_only_when_they_surely_were_not_made() {
        let post = reqwest::Method::POST;
        assert!(write_is_retryable(&post, &status(429, None)));
        assert!(!write_is_retryable(&post, &status(503, Some("TEMPORARILY_UNAVAILABLE"))), "a gateway may answer 503 after the create");
        assert!(write_is_retryable(&post, &transport(false, false, true)), "connection refused");
        assert!(write_is_retryable(&post, &transport(true, false, true)), "connect timeout");
        assert!(!write_is_retryable(&post, &transport(true, false, false)), "a timeout after sending");
        assert!(!write_is_retryable(&post, &transport(false, false, false)), "a reset after sending");
        assert!(!write_is_retryable(&post, &transport(false, true, true)), "a certificate that does not verify");
        for s in [400, 404, 409, 500, 502, 504] {
            assert!(!write_is_retryable(&post, &status(s, None)), "{s}");
        }
        assert!(!write_is_retryable(&post, &status(500, Some("TEMPORARILY_UNAVAILABLE"))));
        // Updates and deletes do the same thing twice: retried as reads are.
        for m in [reqwest::Method::PATCH, reqwest::Method::DELETE] {
            assert!(write_is_retryable(&m, &status(503, None)));
            assert!(write_is_retryable(&m, &transport(false, false, false)), "a reset after sending");
            assert!(!write_is_retryable(&m, &status(404, None)));
        }
    }

    #[test]
    fn failures_that_may_hide_a_change_are_told_apart_from_refusals() {
        for e in [status(503, None), status(500, None), transport(true, false, false), transport(false, false, false)] {
            assert!(may_have_been_applied(&e), "{e:?}");
        }
        for e in [status(429, None), status(400, None), status(404, None), status(409, None), transport(false, false, true)] {
            assert!(!may_have_been_applied(&e), "{e:?}");
        }
        assert!(may_have_been_applied(&ApiError::Exhausted { last: Box::new(status(503, None)), why: "x".into() }));
        assert!(!may_have_been_applied(&ApiError::Exhausted { last: Box::new(status(429, None)), why: "x".into() }));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_respects_the_caps() {
        let p = RetryPolicy::default();
        let e = status(503, None);
        assert_eq!(p.decide(&e, None, 0, Duration::ZERO, 0.0), Decision::Wait(Duration::from_millis(250)));
        assert_eq!(p.decide(&e, None, 0, Duration::ZERO, 1.0), Decision::Wait(Duration::from_millis(500)));
        assert_eq!(p.decide(&e, None, 3, Duration::ZERO, 1.0), Decision::Wait(Duration::from_secs(4)));
        assert_eq!(p.decide(&e, None, 4, Duration::ZERO, 1.0), Decision::Wait(Duration::from_secs(8)));
        let long = RetryPolicy { max_retries: 20, ..RetryPolicy::default() };
        assert_eq!(long.decide(&e, None, 10, Duration::ZERO, 1.0), Decision::Wait(Duration::from_secs(10)));
        assert!(matches!(p.decide(&e, None, 5, Duration::ZERO, 0.0), Decision::GiveUp(Some(_))));
        assert!(matches!(p.decide(&e, None, 1, Duration::from_millis(59_500), 1.0), Decision::GiveUp(Some(_))));
        assert_eq!(p.decide(&status(404, None), None, 0, Duration::ZERO, 0.0), Decision::GiveUp(None));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy::default();
        let e = status(429, None);
        assert_eq!(p.decide(&e, Some(Duration::from_secs(3)), 0, Duration::ZERO, 0.7), Decision::Wait(Duration::from_secs(3)));
        assert!(
            matches!(p.decide(&e, Some(Duration::from_secs(30)), 0, Duration::ZERO, 0.0), Decision::GiveUp(Some(m)) if m.contains("30 s"))
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(&httpdate::fmt_http_date(now - Duration::from_secs(5)), now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
