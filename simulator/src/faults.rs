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
    #[serde(flatten)]
    pub kind: FaultKind,
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
    /// A 200 whose body is padded to at least `bytes` bytes.
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
    /// The request is carried out (a write changes the dataset), then answered with this
    /// error status: a gateway that gave up while the service went on.
    AppliedThenStatus { status: u16 },
    /// The request is carried out, then the connection drops before the answer's body.
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

    /// Counts a request for `room` and says whether the fault applies to it.
    pub fn hits(&mut self, room: Option<&str>) -> bool {
        if self.fault.kind.is_token_fault() {
            return false;
        }
        if let Some(target) = &self.fault.room {
            if room != Some(target.as_str()) {
                return false;
            }
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
        let hits: Vec<bool> = (0..5).map(|_| a.hits(Some("r"))).collect();
        assert_eq!(hits, [false, true, true, false, false]);
        assert!(!a.hits(Some("other")));
    }

    #[test]
    fn every_hits_one_request_in_n() {
        let f: Fault = serde_json::from_str(r#"{"every":3,"kind":"status","status":429}"#).unwrap();
        let mut a = ArmedFault::new(f);
        let hits: Vec<bool> = (0..7).map(|_| a.hits(Some("any"))).collect();
        assert_eq!(hits, [false, false, true, false, false, true, false]);
    }
}
