//! One request budget per workspace: requests to a workspace leave at most `rate` a second,
//! evenly spaced, whichever backend sends them, and a 429 seen by one backend pauses every
//! backend's requests to that workspace for its `Retry-After`.
//!
//! Each workspace has a slot: the time the next request may leave and the time a pause ends. A
//! request reserves its departure by moving the first on by one interval (compare-and-swap),
//! then sleeps until then on the I/O thread. Without preloading, the table is the backend's own.

use super::now_us;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Workspaces with a slot of their own; beyond, workspaces share slots (more waiting, never
/// more requests).
const SLOTS: usize = 256;

#[repr(C)]
struct Slot {
    /// Hash of the workspace URL + 1; 0: free.
    key: AtomicU64,
    /// When the next request may leave (µs, monotonic clock).
    next: AtomicU64,
    /// Until when a 429 paused every request.
    paused_until: AtomicU64,
}

pub struct Table {
    slots: [Slot; SLOTS],
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

    /// The backend's own table, when nothing is shared.
    pub fn private() -> &'static Table {
        static OWN: OnceLock<usize> = OnceLock::new();
        let base = *OWN.get_or_init(|| super::leak_zeroed(Table::bytes()) as usize);
        // SAFETY: zeroed, leaked, of the right size.
        unsafe { Table::at(base as *mut u8) }
    }

    /// The shared table when preloaded, else the backend's own.
    pub fn current() -> &'static Table {
        super::region().map_or_else(Table::private, |r| r.budgets)
    }

    fn slot(&self, workspace: &str) -> &Slot {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        workspace.hash(&mut h);
        let key = h.finish().max(1);
        let start = (key % SLOTS as u64) as usize;
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            match slot.key.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return slot,
                Err(k) if k == key => return slot,
                Err(_) => {}
            }
        }
        &self.slots[start]
    }

    /// When a request to `workspace` may leave, at most one per `interval` (`None`: no budget,
    /// only pauses), counting from now: reserves the departure. Waits from [`Self::pause`]
    /// are told again by [`Self::paused`] after the wait.
    pub fn reserve(&self, workspace: &str, interval: Option<Duration>) -> Duration {
        let slot = self.slot(workspace);
        let now = now_us();
        let earliest = now.max(slot.paused_until.load(Ordering::Relaxed));
        let Some(interval) = interval else { return Duration::from_micros(earliest - now) };
        let step = interval.as_micros().min(u64::MAX as u128 / 4) as u64;
        let mut next = slot.next.load(Ordering::Relaxed);
        loop {
            let at = next.max(earliest);
            match slot.next.compare_exchange_weak(next, at.saturating_add(step), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Duration::from_micros(at - now),
                Err(n) => next = n,
            }
        }
    }

    /// How long requests to `workspace` are still paused by a 429.
    pub fn paused(&self, workspace: &str) -> Duration {
        let until = self.slot(workspace).paused_until.load(Ordering::Relaxed);
        Duration::from_micros(until.saturating_sub(now_us()))
    }

    /// A 429 from `workspace`: no request leaves for `wait`.
    pub fn pause(&self, workspace: &str, wait: Duration) {
        let slot = self.slot(workspace);
        let until = now_us().saturating_add(wait.as_micros().min(u64::MAX as u128 / 4) as u64);
        slot.paused_until.fetch_max(until, Ordering::Relaxed);
    }
}

/// Backends waiting on a budget, by the counter they wait under (their server's): each backend
/// counts once however many of its requests wait, and forgets its count when it exits.
pub struct Waiting {
    counter: u32,
}

fn mine() -> &'static Mutex<(bool, HashMap<u32, u32>)> {
    static MINE: OnceLock<Mutex<(bool, HashMap<u32, u32>)>> = OnceLock::new();
    MINE.get_or_init(Default::default)
}

impl Waiting {
    /// A request of this backend starts waiting under `counter` (a cluster counters' slot).
    pub fn start(counter: u32) -> Waiting {
        let mut mine = mine().lock().unwrap_or_else(|p| p.into_inner());
        let (exited, counts) = &mut *mine;
        let n = counts.entry(counter).or_default();
        *n += 1;
        if *n == 1 && !*exited {
            super::counters::waiting(counter, 1);
        }
        Waiting { counter }
    }

    /// The backend exits: what it still counts as waiting is taken back, once.
    pub fn forget_all() {
        let mut mine = mine().lock().unwrap_or_else(|p| p.into_inner());
        if !mine.0 {
            mine.0 = true;
            for (&counter, &n) in &mine.1 {
                if n > 0 {
                    super::counters::waiting(counter, -1);
                }
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut mine = mine().lock().unwrap_or_else(|p| p.into_inner());
        let (exited, counts) = &mut *mine;
        let n = counts.entry(self.counter).or_default();
        *n = n.saturating_sub(1);
        if *n == 0 && !*exited {
            super::counters::waiting(self.counter, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departures_are_spaced_by_the_interval_per_workspace() {
        let t = Table::private();
        let i = Some(Duration::from_millis(100));
        let waits: Vec<u128> = (0..5).map(|_| t.reserve("http://a/", i).as_millis()).collect();
        // Reserved one after the other within a millisecond: 0, 100, 200, ... ms from now.
        for (n, w) in waits.iter().enumerate() {
            assert!((*w as i128 - n as i128 * 100).abs() <= 2, "{waits:?}");
        }
        assert!(t.reserve("http://b/", i).as_millis() <= 1, "another workspace has its own budget");
        assert!(t.reserve("http://c/", None).is_zero());
    }

    #[test]
    fn a_pause_holds_every_request_to_its_workspace() {
        let t = Table::private();
        t.pause("http://p/", Duration::from_secs(2));
        let w = t.reserve("http://p/", None);
        assert!(w > Duration::from_millis(1900) && w <= Duration::from_secs(2), "{w:?}");
        assert!(t.paused("http://p/") > Duration::from_millis(1900));
        assert!(t.reserve("http://q/", None).is_zero());
    }
}
