//! The cluster's totals by server and resource, for `databricks_fdw_cluster_stats()`: every
//! backend adds its scans when they end, and counts itself while it waits on a request budget.
//! A slot is claimed by compare-and-swap on the hash of its names, which are written before the
//! slot is marked ready; once the table is full, further pairs add to its last slot, shown as
//! server `(other)`.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const SLOTS: usize = 512;
const SERVER_WORDS: usize = 8;
const RESOURCE_WORDS: usize = 4;
/// The totals kept, in this order.
pub const FIELDS: usize = 10;

/// What one scan (or write statement) adds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub scans: u64,
    pub requests: u64,
    pub pages: u64,
    pub rows: u64,
    pub retries: u64,
    pub errors: u64,
    pub bytes: u64,
    /// Answers 429 (too many requests).
    pub throttled: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl Totals {
    /// Adds `other`, field by field.
    pub fn add(&mut self, other: &Totals) {
        let (mine, theirs) = (self.fields(), other.fields());
        *self = Totals::from_fields(std::array::from_fn(|i| mine[i] + theirs[i]));
    }

    fn fields(&self) -> [u64; FIELDS] {
        [
            self.scans,
            self.requests,
            self.pages,
            self.rows,
            self.retries,
            self.errors,
            self.bytes,
            self.throttled,
            self.cache_hits,
            self.cache_misses,
        ]
    }

    fn from_fields(f: [u64; FIELDS]) -> Totals {
        let [scans, requests, pages, rows, retries, errors, bytes, throttled, cache_hits, cache_misses] = f;
        Totals { scans, requests, pages, rows, retries, errors, bytes, throttled, cache_hits, cache_misses }
    }
}

#[repr(C)]
struct Slot {
    /// Hash of the names + 1; 0: free.
    key: AtomicU64,
    /// 1 once the names are written.
    ready: AtomicU64,
    names: [AtomicU64; SERVER_WORDS + RESOURCE_WORDS],
    totals: [AtomicU64; FIELDS],
    /// Backends waiting on a request budget for this server (its slot with resource "").
    waiting: AtomicI64,
}

pub struct Table {
    slots: [Slot; SLOTS],
}

/// One row of the cluster's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub server: String,
    pub resource: String,
    pub totals: Totals,
    pub waiting: i64,
}

impl Table {
    pub const fn bytes() -> usize {
        std::mem::size_of::<Table>()
    }

    /// # Safety
    /// `base` must hold `Table::bytes()` zeroed (or installed) bytes, aligned to 8, for ever.
    pub unsafe fn at(base: *mut u8) -> &'static Table {
        &*(base as *const Table)
    }

    /// The slot number of (server, resource), claimed if new. Names are cut to the bytes a slot
    /// holds (Postgres names are shorter).
    pub fn slot(&self, server: &str, resource: &str) -> u32 {
        let names = encode(server, resource);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        names.hash(&mut h);
        let key = h.finish().max(1);
        let start = (key % (SLOTS as u64 - 1)) as usize;
        for i in 0..SLOTS - 1 {
            let n = (start + i) % (SLOTS - 1);
            let slot = &self.slots[n];
            match slot.key.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    for (w, v) in slot.names.iter().zip(names) {
                        w.store(v, Ordering::Relaxed);
                    }
                    slot.ready.store(1, Ordering::Release);
                    return n as u32;
                }
                // Claimed by another backend for the same names (maybe still writing them).
                Err(k) if k == key && (slot.ready.load(Ordering::Acquire) == 0 || self.names(slot) == names) => return n as u32,
                Err(_) => {}
            }
        }
        (SLOTS - 1) as u32
    }

    fn names(&self, slot: &Slot) -> [u64; SERVER_WORDS + RESOURCE_WORDS] {
        std::array::from_fn(|i| slot.names[i].load(Ordering::Relaxed))
    }

    pub fn add(&self, slot: u32, t: &Totals) {
        let slot = &self.slots[slot as usize % SLOTS];
        for (total, v) in slot.totals.iter().zip(t.fields()) {
            total.fetch_add(v, Ordering::Relaxed);
        }
    }

    pub fn waiting(&self, slot: u32, delta: i64) {
        self.slots[slot as usize % SLOTS].waiting.fetch_add(delta, Ordering::Relaxed);
    }

    /// Every (server, resource) with its totals and the backends waiting for its server; the
    /// server-wide slots (resource "") give only their waiting figure, as a row of their own
    /// while the server has no other.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        let mut waiting_by_server = std::collections::HashMap::new();
        for (n, slot) in self.slots.iter().enumerate() {
            let ready = slot.ready.load(Ordering::Acquire) == 1;
            let totals = Totals::from_fields(std::array::from_fn(|i| slot.totals[i].load(Ordering::Relaxed)));
            let (server, resource) = match (ready, n == SLOTS - 1) {
                (_, true) if totals != Totals::default() => ("(other)".to_string(), String::new()),
                (true, false) => decode(&self.names(slot)),
                _ => continue,
            };
            if resource.is_empty() && server != "(other)" {
                waiting_by_server.insert(server, slot.waiting.load(Ordering::Relaxed).max(0));
                continue;
            }
            rows.push(Row { server, resource, totals, waiting: 0 });
        }
        for row in &mut rows {
            row.waiting = waiting_by_server.get(&row.server).copied().unwrap_or(0);
        }
        // A server none of whose scans has ended yet still shows who waits for it.
        for (server, waiting) in waiting_by_server {
            if waiting > 0 && !rows.iter().any(|r| r.server == server) {
                rows.push(Row { server, resource: String::new(), totals: Totals::default(), waiting });
            }
        }
        rows.sort_by(|a, b| (&a.server, &a.resource).cmp(&(&b.server, &b.resource)));
        rows
    }

    /// Back to zero, names kept (and the waiting figures, which are current, not totals).
    pub fn reset(&self) {
        for slot in &self.slots {
            for t in &slot.totals {
                t.store(0, Ordering::Relaxed);
            }
        }
    }
}

fn encode(server: &str, resource: &str) -> [u64; SERVER_WORDS + RESOURCE_WORDS] {
    let mut bytes = [0u8; 8 * (SERVER_WORDS + RESOURCE_WORDS)];
    let s = &server.as_bytes()[..server.len().min(8 * SERVER_WORDS)];
    let r = &resource.as_bytes()[..resource.len().min(8 * RESOURCE_WORDS)];
    bytes[..s.len()].copy_from_slice(s);
    bytes[8 * SERVER_WORDS..8 * SERVER_WORDS + r.len()].copy_from_slice(r);
    std::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default()))
}

fn decode(words: &[u64; SERVER_WORDS + RESOURCE_WORDS]) -> (String, String) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).into_owned();
    (text(&bytes[..8 * SERVER_WORDS]), text(&bytes[8 * SERVER_WORDS..]))
}

/// Adds to the shared table, when there is one.
pub fn record(server: &str, resource: &str, t: &Totals) {
    if let Some(r) = super::region() {
        r.counters.add(r.counters.slot(server, resource), t);
    }
}

/// The slot under which requests of `server` count their waits, when there is a shared table.
pub fn waiting_slot(server: &str) -> Option<u32> {
    super::region().map(|r| r.counters.slot(server, ""))
}

pub(super) fn waiting(slot: u32, delta: i64) {
    if let Some(r) = super::region() {
        r.counters.waiting(slot, delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static Table {
        // SAFETY: zeroed, leaked, of the right size.
        unsafe { Table::at(super::super::leak_zeroed(Table::bytes())) }
    }

    #[test]
    fn totals_add_up_by_server_and_resource() {
        let t = table();
        let one = Totals { scans: 1, requests: 3, rows: 57, cache_hits: 2, ..Totals::default() };
        t.add(t.slot("dbx", "task_runs"), &one);
        t.add(t.slot("dbx", "task_runs"), &one);
        t.add(t.slot("dbx", "clean_rooms"), &Totals { throttled: 1, ..Totals::default() });
        let w = t.slot("dbx", "");
        t.waiting(w, 1);
        t.waiting(t.slot("new", ""), 2);
        assert!(t.rows().contains(&Row { server: "new".into(), resource: String::new(), totals: Totals::default(), waiting: 2 }));
        t.waiting(t.slot("new", ""), -2);
        let rows = t.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            rows[1],
            Row {
                server: "dbx".into(),
                resource: "task_runs".into(),
                totals: Totals { scans: 2, requests: 6, rows: 114, cache_hits: 4, ..Totals::default() },
                waiting: 1
            }
        );
        assert_eq!(rows[0].totals.throttled, 1);
        t.reset();
        assert!(t.rows().iter().all(|r| r.totals == Totals::default()));
    }

    #[test]
    fn a_full_table_adds_to_its_last_slot() {
        let t = table();
        for i in 0..SLOTS + 10 {
            t.add(t.slot(&format!("s{i}"), "task_runs"), &Totals { scans: 1, ..Totals::default() });
        }
        let rows = t.rows();
        assert_eq!(rows.iter().map(|r| r.totals.scans).sum::<u64>(), (SLOTS + 10) as u64);
        assert_eq!(rows.iter().find(|r| r.server == "(other)").map(|r| r.totals.scans), Some(11));
    }
}
