//! The opt-in response cache (server option `cache_ttl`): identical requests by the same
//! credentials within the TTL are answered from memory. With the library preloaded, from the
//! cache every backend shares (`shared/arena.rs`); otherwise from the backend's own, bounded:
//! the oldest responses go first once it holds `LIMIT_BYTES`.
//!
//! An entry's key is a SHA-256 of the credentials' fingerprint and the URL: a role whose
//! credentials differ can never compute another's key, so it never reads what they fetched.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::shared::arena::Key;

pub const LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The key of `url` requested with the credentials whose fingerprint is `credentials`.
pub fn key(credentials: &[u8; 32], url: &str) -> Key {
    let mut h = Sha256::new();
    h.update(credentials);
    h.update(url.as_bytes());
    h.finalize().into()
}

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

fn shared() -> Option<&'static crate::shared::arena::Arena> {
    crate::shared::region().and_then(|r| r.cache.as_ref())
}

/// The body stored under `key`, if it is younger than `ttl`.
pub fn get(key: &Key, ttl: Duration) -> Option<Bytes> {
    if let Some(arena) = shared() {
        return arena.get(key, ttl.as_micros().min(u64::MAX as u128) as u64).map(Bytes::from);
    }
    let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let (stored, body) = cache.entries.get(key)?;
    (stored.elapsed() < ttl).then(|| body.clone())
}

pub fn put(key: Key, body: Bytes) {
    if let Some(arena) = shared() {
        return arena.put(&key, &body);
    }
    if body.len() > LIMIT_BYTES {
        return;
    }
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
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
    cache.order.push_back(key);
    cache.entries.insert(key, (Instant::now(), body));
}

/// Forgets every stored response: after a write, no listing may be answered as it was before.
pub fn clear() {
    if let Some(arena) = shared() {
        arena.clear();
    }
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    *cache = Cache::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_belong_to_one_identity() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        put(key(&a, "http://x/a"), Bytes::from_static(b"{}"));
        assert_eq!(get(&key(&a, "http://x/a"), Duration::from_secs(60)).as_deref(), Some(&b"{}"[..]));
        assert!(get(&key(&b, "http://x/a"), Duration::from_secs(60)).is_none());
        assert!(get(&key(&a, "http://x/a"), Duration::ZERO).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let big = Bytes::from(vec![b' '; LIMIT_BYTES / 3]);
        for i in 0..5 {
            put(key(&[7; 32], &format!("http://x/big{i}")), big.clone());
        }
        let c = cache().lock().unwrap();
        assert!(c.bytes <= LIMIT_BYTES);
        assert!(!c.entries.contains_key(&key(&[7; 32], "http://x/big0")));
    }
}
