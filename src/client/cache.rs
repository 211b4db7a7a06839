//! The opt-in response cache (server option `cache_ttl`): identical requests by the same
//! credentials within the TTL, in the same backend, are answered from memory. Bounded: the
//! oldest responses go first once the cache holds `LIMIT_BYTES`.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const LIMIT_BYTES: usize = 64 * 1024 * 1024;

type Key = (u64, String);

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, (Instant, Bytes)>,
    order: VecDeque<Key>,
    bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The body stored for `url` by `identity`, if it is younger than `ttl`.
pub fn get(identity: u64, url: &str, ttl: Duration) -> Option<Bytes> {
    let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let (stored, body) = cache.entries.get(&(identity, url.to_string()))?;
    (stored.elapsed() < ttl).then(|| body.clone())
}

pub fn put(identity: u64, url: &str, body: Bytes) {
    if body.len() > LIMIT_BYTES {
        return;
    }
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let key = (identity, url.to_string());
    if let Some((_, old)) = cache.entries.remove(&key) {
        cache.bytes -= old.len();
        cache.order.retain(|k| k != &key);
    }
    while cache.bytes + body.len() > LIMIT_BYTES {
        let Some(oldest) = cache.order.pop_front() else { break };
        if let Some((_, old)) = cache.entries.remove(&oldest) {
            cache.bytes -= old.len();
        }
    }
    cache.bytes += body.len();
    cache.order.push_back(key.clone());
    cache.entries.insert(key, (Instant::now(), body));
}

/// Forgets every stored response: after a write, no listing may be answered as it was before.
pub fn clear() {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    *cache = Cache::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_belong_to_one_identity() {
        put(1, "http://x/a", Bytes::from_static(b"{}"));
        assert_eq!(get(1, "http://x/a", Duration::from_secs(60)).as_deref(), Some(&b"{}"[..]));
        assert!(get(2, "http://x/a", Duration::from_secs(60)).is_none());
        assert!(get(1, "http://x/a", Duration::ZERO).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let big = Bytes::from(vec![b' '; LIMIT_BYTES / 3]);
        for i in 0..5 {
            put(7, &format!("http://x/big{i}"), big.clone());
        }
        let c = cache().lock().unwrap();
        assert!(c.bytes <= LIMIT_BYTES);
        assert!(!c.entries.contains_key(&(7, "http://x/big0".to_string())));
    }
}
