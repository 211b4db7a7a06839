//! Faults a test switches on through `POST /_sim/faults`, so that every failure the extension must
//! survive can be produced on demand: latency, statuses with Databricks error bodies (and
//! `Retry-After`), HTML from a proxy, broken JSON, repeated page tokens, hangs and resets.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Fault {
    /// The clean room whose requests it hits (`None`: every API request).
    #[serde(default)]
    pub room: Option<String>,
    /// Let this many matching requests through untouched first (to hit page 2, say).
    #[serde(default)]
    pub after: u32,
    /// Hit this many matching requests, then stop (`None`: for ever).
    #[serde(default)]
    pub times: Option<u32>,
    /// Hit only every n-th matching request (after `after`): steady background faults for load
    /// tests, deterministic where a probability would not be.
    #[serde(default)]
    pub every: Option<u32>,
    /// The listing whose requests it hits, by the last segment of its path: `clean-rooms`,
    /// `runs`, `task-runs`, `assets`, `revisions` or `auto-approval-rules` (`None`: any
    /// request). A workspace without a feature answers every call of one endpoint alike.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Which pages of a listing it hits (`None`: every request).
    #[serde(default)]
    pub pages: Option<Pages>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pages {
    /// Requests without a `page_token`.
    First,
    /// Requests with one: page 2 and later.
    Later,
}

/// What a fault may select a request by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Aim<'a> {
    /// The clean room its path names.
    pub room: Option<&'a str>,
    /// The listing it asks for (see [`Fault::endpoint`]).
    pub endpoint: Option<&'a str>,
    /// Whether it carries a page token.
    pub later_page: bool,
}

impl<'a> Aim<'a> {
    pub fn room(room: &'a str) -> Aim<'a> {
        Aim { room: Some(room), ..Aim::default() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// An error status with a Databricks error body.
    Status {
        status: u16,
        #[serde(default)]
        error_code: Option<String>,
        #[serde(default)]
        message: Option<String>,
        /// Sent as the `Retry-After` header, verbatim (seconds or an HTTP date).
        #[serde(default)]
        retry_after: Option<String>,
        /// The code as a number instead (some services send one).
        #[serde(default)]
        numeric_code: Option<i64>,
        /// Typed entries added to `details` after the request id (RetryInfo, BadRequest, ...).
        #[serde(default)]
        details: Vec<serde_json::Value>,
    },
    /// An HTML page, as a load balancer or proxy sends.
    Html { status: u16 },
    /// A 200 whose body is not JSON at all.
    Malformed,
    /// A 200 whose JSON stops halfway (with a matching Content-Length).
    Truncated,
    /// The page's `next_page_token` is the token it was asked with.
    RepeatToken,
    /// A page with no runs that still names a next page.
    EmptyPageWithToken,
    /// A 200 whose one run is at least `bytes` bytes long.
    Oversize { bytes: usize },
    /// Answer normally, this long later (a write is carried out at once: only its answer is late).
    Delay { ms: u64 },
    /// A redirect to `location` (which a client must not follow with its token).
    Redirect { status: u16, location: String },
    /// Never answer.
    Hang,
    /// Send the first part of the body, then drop the connection.
    Reset,
    /// A 200 whose `Content-Length` announces `bytes` (it sends far fewer): a client that sizes
    /// its buffer from the header asks for that much memory.
    AnnouncedLength { bytes: u64 },
    /// Every item of the page gets `field` set to `raw`, JSON text as it stands (values serde
    /// would refuse to produce, like 1e400 or 20-digit integers).
    FieldValue { field: String, raw: String },
    /// The OAuth token endpoint states this `expires_in` (it is not an API request: `room`,
    /// `after`, `times` and `every` do not apply; it holds until disarmed).
    TokenLifetime { expires_in: u64 },
    /// A page with no items whose `next_page_token` is new every time (the next offset after
    /// the one asked for): armed without `times`, a listing that never ends nor repeats.
    EmptyPageWithNewToken,
    /// The request is carried out (a write changes the dataset), then answered with this
    /// error status: a gateway that gave up while the service went on.
    AppliedThenStatus { status: u16 },
    /// The request is carried out, then the connection drops before any answer.
    AppliedThenReset,
    /// The request is carried out, then answered 200 with this body (not JSON, say).
    AppliedThenBody { body: String },
}

impl FaultKind {
    /// Faults of the token endpoint rather than of API requests.
    pub fn is_token_fault(&self) -> bool {
        matches!(self, FaultKind::TokenLifetime { .. })
    }
}

/// A fault and how many matching requests it has seen.
pub struct ArmedFault {
    pub fault: Fault,
    seen: u32,
}

impl ArmedFault {
    pub fn new(fault: Fault) -> Self {
        ArmedFault { fault, seen: 0 }
    }

    /// Whether the request is one the fault is aimed at (before counting).
    fn aims_at(&self, aim: &Aim) -> bool {
        let f = &self.fault;
        !f.kind.is_token_fault()
            && f.room.as_deref().is_none_or(|r| aim.room == Some(r))
            && f.endpoint.as_deref().is_none_or(|e| aim.endpoint == Some(e))
            && f.pages.is_none_or(|p| (p == Pages::Later) == aim.later_page)
    }

    /// Counts a request it is aimed at and says whether the fault applies to it.
    pub fn hits(&mut self, aim: &Aim) -> bool {
        if !self.aims_at(aim) {
            return false;
        }
        let n = self.seen;
        self.seen += 1;
        if n < self.fault.after {
            return false;
        }
        let k = n - self.fault.after;
        match self.fault.every {
            Some(every) if every > 1 => k % every == every - 1 && self.fault.times.is_none_or(|t| k / every < t),
            _ => self.fault.times.is_none_or(|t| k < t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_times_select_a_window_of_requests() {
        let f: Fault = serde_json::from_str(r#"{"room":"r","after":1,"times":2,"kind":"status","status":503}"#).unwrap();
        let mut a = ArmedFault::new(f);
        let hits: Vec<bool> = (0..5).map(|_| a.hits(&Aim::room("r"))).collect();
        assert_eq!(hits, [false, true, true, false, false]);
        assert!(!a.hits(&Aim::room("other")));
    }

    #[test]
    fn every_hits_one_request_in_n() {
        let f: Fault = serde_json::from_str(r#"{"every":3,"kind":"status","status":429}"#).unwrap();
        let mut a = ArmedFault::new(f);
        let hits: Vec<bool> = (0..7).map(|_| a.hits(&Aim::room("any"))).collect();
        assert_eq!(hits, [false, false, true, false, false, true, false]);
    }

    #[test]
    fn endpoint_and_pages_narrow_the_requests_and_only_those_are_counted() {
        let f: Fault = serde_json::from_str(r#"{"endpoint":"runs","pages":"later","times":1,"kind":"status","status":404}"#).unwrap();
        let mut a = ArmedFault::new(f);
        let first = Aim { room: Some("r"), endpoint: Some("runs"), later_page: false };
        let later = Aim { later_page: true, ..first };
        let other = Aim { endpoint: Some("assets"), ..later };
        assert!(!a.hits(&first) && !a.hits(&other));
        assert!(a.hits(&later), "the first request it is aimed at");
        assert!(!a.hits(&later), "times: 1");
        let f: Fault = serde_json::from_str(r#"{"pages":"first","kind":"empty_page_with_new_token"}"#).unwrap();
        let mut a = ArmedFault::new(f);
        assert!(a.hits(&first) && !a.hits(&later));
    }
}
