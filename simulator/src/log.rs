//! The request log: one entry per API request served, read by tests through
//! `GET /_sim/requests` to assert exactly what the extension asked for. The token itself is never
//! recorded, only whether it was accepted.

use serde::Serialize;
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub method: String,
    /// The path as it arrived (still percent-encoded), without the `/ws/{deployment}` prefix.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// From a `/ws/{deployment}` prefix, else from the Host header.
    pub deployment: String,
    /// "valid", "invalid" or "missing".
    pub auth: &'static str,
    /// The decoded clean room name, when the path names one.
    pub room: Option<String>,
    pub status: u16,
    /// The body of a write call, as sent.
    pub body: Option<String>,
    /// The request's `Accept` header.
    pub accept: Option<String>,
    /// When it arrived: microseconds since the simulator's process started logging.
    pub at_us: u64,
}

/// Microseconds since the first call, for [`Entry::at_us`].
pub fn now_us() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<Vec<Entry>>,
}

impl RequestLog {
    pub fn push(&self, mut entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entry.seq = entries.len() as u64 + 1;
        entries.push(entry);
    }

    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
