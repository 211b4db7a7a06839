//! Per-backend totals by server and resource, since the backend started, for
//! `databricks_fdw_stats()`. Scans add to them when they end, whether they succeed or fail, and
//! to the cluster's totals when the library is preloaded (`shared/counters.rs`).

use crate::client::Stats;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The same totals the cluster keeps (its 429 and cache figures are this backend's here).
pub use crate::shared::counters::Totals;

fn registry() -> &'static Mutex<BTreeMap<(String, String), Totals>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<(String, String), Totals>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Adds one finished scan.
pub fn record(server: &str, resource: &str, s: Stats, failed: bool) {
    let scan = Totals {
        scans: 1,
        requests: s.requests,
        pages: s.pages,
        rows: s.items,
        retries: s.retries,
        errors: failed as u64,
        bytes: s.bytes,
        throttled: s.throttled,
        cache_hits: s.response_cache_hits,
        cache_misses: s.response_cache_misses,
    };
    registry().lock().unwrap_or_else(|p| p.into_inner()).entry((server.to_string(), resource.to_string())).or_default().add(&scan);
    crate::shared::counters::record(server, resource, &scan);
}

/// Every (server, resource) with its totals, ordered.
pub fn snapshot() -> Vec<((String, String), Totals)> {
    registry().lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_add_up_per_server_and_resource() {
        record("s_test", "task_runs", Stats { requests: 3, pages: 3, items: 57, bytes: 100, ..Stats::default() }, false);
        record("s_test", "task_runs", Stats { requests: 2, retries: 1, ..Stats::default() }, true);
        let snap = snapshot();
        let t = snap.iter().find(|(k, _)| k.0 == "s_test").unwrap().1;
        assert_eq!(t, Totals { scans: 2, requests: 5, pages: 3, rows: 57, retries: 1, errors: 1, bytes: 100, ..Totals::default() });
    }
}
