//! The shared response cache: a ring of entries in a fixed block of words, newest over oldest,
//! and a table of buckets pointing at the newest entry of each key. Nothing is locked:
//!
//! - a writer reserves its words by moving `head` on (compare-and-swap), then writes them, then
//!   points the key's bucket at them. One that dies half-way leaves words nobody points at;
//! - a reader copies an entry out, then checks that `head` has not moved so far that a writer
//!   may have reused those words meanwhile, and that the copy matches the checksum its writer
//!   stored (a writer preempted for a whole lap of the ring may still be writing into newer
//!   entries); if not, the copy is thrown away (a miss).
//!
//! A full ring just overwrites its oldest entries. Entries are read and written as atomic words
//! (relaxed), so a torn copy is a value to discard, never undefined behaviour.

use super::now_us;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// A key: SHA-256 of the credentials' fingerprint and the request's URL.
pub type Key = [u8; 32];

/// Words of an entry before its body: key (4), stored at (µs), generation, body length,
/// checksum of all these and the body.
const HEADER_WORDS: usize = 8;
/// One bucket per this many bytes of ring.
const BYTES_PER_BUCKET: usize = 4096;

#[repr(C)]
struct Control {
    /// Words ever reserved; an entry at logical word `p` lives at `p % words`.
    head: AtomicU64,
    /// Bumped by every write call to Databricks: entries of an older generation are stale.
    generation: AtomicU64,
}

pub struct Arena {
    control: &'static Control,
    buckets: &'static [AtomicU64],
    words: &'static [AtomicU64],
}

impl Arena {
    /// (ring words, buckets) for `bytes` of cache.
    pub fn dimensions(bytes: usize) -> (usize, usize) {
        let buckets = (bytes / BYTES_PER_BUCKET).max(16);
        match bytes / 8 {
            0 => (0, 0),
            words => (words.max(1024), buckets),
        }
    }

    pub fn bytes(words: usize, buckets: usize) -> usize {
        if words == 0 {
            return 0;
        }
        std::mem::size_of::<Control>() + 8 * (buckets + words)
    }

    /// # Safety
    /// As for [`super::install`]: `Arena::bytes(words, buckets)` bytes at `base`.
    pub unsafe fn at(base: *mut u8, words: usize, buckets: usize) -> Arena {
        let control = &*(base as *const Control);
        let b = base.add(std::mem::size_of::<Control>()) as *const AtomicU64;
        Arena { control, buckets: std::slice::from_raw_parts(b, buckets), words: std::slice::from_raw_parts(b.add(buckets), words) }
    }

    /// A ring of `bytes` in the backend's own memory (tests).
    pub fn private(bytes: usize) -> Arena {
        let (words, buckets) = Arena::dimensions(bytes);
        // SAFETY: freshly zeroed, leaked memory of the right size.
        unsafe { Arena::at(super::leak_zeroed(Arena::bytes(words, buckets)), words, buckets) }
    }

    /// The largest body kept: a quarter of the ring, so that one page never evicts everything.
    pub fn max_body(&self) -> usize {
        self.words.len() * 8 / 4
    }

    fn bucket(&self, key: &Key) -> &AtomicU64 {
        let h = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
        &self.buckets[(h % self.buckets.len() as u64) as usize]
    }

    fn word(&self, logical: u64) -> &AtomicU64 {
        &self.words[(logical % self.words.len() as u64) as usize]
    }

    /// The body stored under `key` if it is younger than `ttl_us` and no write call came after.
    pub fn get(&self, key: &Key, ttl_us: u64) -> Option<Vec<u8>> {
        let at = self.bucket(key).load(Ordering::Acquire).checked_sub(1)?;
        let ring = self.words.len() as u64;
        if self.control.head.load(Ordering::Relaxed) > at + ring {
            return None;
        }
        let header: Vec<u64> = (0..HEADER_WORDS as u64).map(|i| self.word(at + i).load(Ordering::Relaxed)).collect();
        let len = header[6] as usize;
        let fresh = now_us().saturating_sub(header[4]) < ttl_us && header[5] == self.control.generation.load(Ordering::Relaxed);
        if words_to_key(&header[..4]) != *key || !fresh || len > self.max_body() {
            return None;
        }
        let mut body = Vec::with_capacity(len);
        for i in 0..len.div_ceil(8) as u64 {
            body.extend_from_slice(&self.word(at + HEADER_WORDS as u64 + i).load(Ordering::Relaxed).to_le_bytes());
        }
        body.truncate(len);
        if checksum(&header[..7], &body) != header[7] {
            return None;
        }
        // Whatever a writer reserved after these words were copied shows in head (it reserves
        // before it writes); if head has come round to them, the copy may be torn.
        fence(Ordering::Acquire);
        (self.control.head.load(Ordering::Relaxed) <= at + ring).then_some(body)
    }

    pub fn put(&self, key: &Key, body: &[u8]) {
        if body.len() > self.max_body() {
            return;
        }
        let ring = self.words.len() as u64;
        let need = (HEADER_WORDS + body.len().div_ceil(8)) as u64;
        let mut head = self.control.head.load(Ordering::Relaxed);
        let at = loop {
            // An entry never wraps round the end of the ring: skip to its start instead.
            let at = if head % ring + need > ring { head + (ring - head % ring) } else { head };
            match self.control.head.compare_exchange_weak(head, at + need, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break at,
                Err(now) => head = now,
            }
        };
        // The reservation is seen before any of these words by a reader that sees one of them.
        fence(Ordering::Release);
        let generation = self.control.generation.load(Ordering::Relaxed);
        let mut header: Vec<u64> = key_words(key).into_iter().chain([now_us(), generation, body.len() as u64]).collect();
        header.push(checksum(&header, body));
        let words = header.into_iter().chain(body.chunks(8).map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        }));
        for (i, w) in words.enumerate() {
            self.word(at + i as u64).store(w, Ordering::Relaxed);
        }
        // Lapped while writing: the words are someone else's by now.
        if self.control.head.load(Ordering::Relaxed) <= at + ring {
            self.bucket(key).store(at + 1, Ordering::Release);
        }
    }

    /// Makes every stored entry stale (after a write call).
    pub fn clear(&self) {
        self.control.generation.fetch_add(1, Ordering::Relaxed);
    }
}

/// Tells a whole entry from one another writer wrote into (not a defence against an attacker,
/// who never chooses what lands where).
fn checksum(header: &[u64], body: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for w in header {
        h.write_u64(*w);
    }
    h.write(body);
    h.finish()
}

fn key_words(key: &Key) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_le_bytes(key[i * 8..i * 8 + 8].try_into().unwrap_or_default()))
}

fn words_to_key(words: &[u64]) -> Key {
    let mut key = [0u8; 32];
    for (i, w) in words.iter().enumerate().take(4) {
        key[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        let mut k = [n; 32];
        k[0] = n.wrapping_mul(37);
        k
    }

    #[test]
    fn a_body_comes_back_whole_for_its_key_only() {
        let a = Arena::private(64 * 1024);
        let body: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
        a.put(&key(1), &body);
        assert_eq!(a.get(&key(1), 60_000_000), Some(body));
        assert_eq!(a.get(&key(2), 60_000_000), None);
        assert_eq!(a.get(&key(1), 0), None, "older than the ttl");
        a.clear();
        assert_eq!(a.get(&key(1), 60_000_000), None, "stale after a write");
    }

    #[test]
    fn the_ring_overwrites_its_oldest_entries_and_never_returns_a_torn_one() {
        let a = Arena::private(16 * 1024);
        let big = |n: u8| vec![n; 3000];
        for n in 0..40u8 {
            a.put(&key(n), &big(n));
        }
        assert_eq!(a.get(&key(0), 60_000_000), None, "overwritten long ago");
        assert_eq!(a.get(&key(39), 60_000_000), Some(big(39)));
        // Everything still found is exactly what was stored under its key.
        for n in 0..40u8 {
            if let Some(b) = a.get(&key(n), 60_000_000) {
                assert_eq!(b, big(n));
            }
        }
        assert!(a.control.head.load(Ordering::Relaxed) > a.words.len() as u64);
        a.put(&key(99), &vec![1; a.max_body() + 1]);
        assert_eq!(a.get(&key(99), 60_000_000), None, "too large to keep");
    }

    #[test]
    fn concurrent_writers_and_readers_see_whole_entries_or_nothing() {
        let a: &'static Arena = Box::leak(Box::new(Arena::private(32 * 1024)));
        // Each key's body is its own byte repeated, with a length of its own: a torn copy
        // would mix bytes or lengths.
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut seen = 0;
                    for i in 0..3000u32 {
                        let n = ((i * 7 + t as u32) % 50) as u8;
                        if i % 2 == 0 {
                            a.put(&key(n), &vec![n; 100 + n as usize * 40]);
                        } else if let Some(b) = a.get(&key(n), 60_000_000) {
                            assert_eq!(b, vec![n; 100 + n as usize * 40]);
                            seen += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        let seen: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(seen > 0);
    }
}
