//! Memory shared by every backend, when the library is preloaded (`shared_preload_libraries`):
//! one response cache, one request budget per workspace, and the cluster's totals. Nothing here
//! knows Postgres: the glue (`fdw/shmem.rs`) reserves the region at server start and hands its
//! address to [`install`]; backends inherit it.
//!
//! Every word of the region is an atomic, and no word is ever locked: the I/O threads use it
//! directly (they may not take Postgres locks), and a backend that dies at any instant leaves
//! nothing held. Writers reserve before they write, readers check after they read (see
//! `arena.rs`).

pub mod arena;
pub mod budget;
pub mod counters;

use std::sync::atomic::{AtomicPtr, Ordering};

/// What the region holds, placed one after the other at these offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub budgets: usize,
    pub counters: usize,
    pub arena: usize,
    pub arena_words: usize,
    pub buckets: usize,
    pub size: usize,
}

impl Layout {
    /// The layout for a response cache of `cache_bytes` (0: none).
    pub fn new(cache_bytes: usize) -> Layout {
        let budgets = 0;
        let counters = budgets + budget::Table::bytes();
        let arena = counters + counters::Table::bytes();
        let (arena_words, buckets) = arena::Arena::dimensions(cache_bytes);
        Layout { budgets, counters, arena, arena_words, buckets, size: arena + arena::Arena::bytes(arena_words, buckets) }
    }
}

pub struct Region {
    pub budgets: &'static budget::Table,
    pub counters: &'static counters::Table,
    /// `None` when `databricks_fdw.shared_cache_size` is 0.
    pub cache: Option<arena::Arena>,
}

static REGION: AtomicPtr<Region> = AtomicPtr::new(std::ptr::null_mut());

/// Makes the region at `base` the backend's (and its children's) shared state.
///
/// # Safety
/// `base` must point to `layout.size` bytes of zeroed or previously installed memory, aligned
/// to 8, that live as long as the process and are mapped at the same address in every backend.
pub unsafe fn install(base: *mut u8, layout: Layout) {
    let region = Region {
        budgets: budget::Table::at(base.add(layout.budgets)),
        counters: counters::Table::at(base.add(layout.counters)),
        cache: (layout.arena_words > 0).then(|| arena::Arena::at(base.add(layout.arena), layout.arena_words, layout.buckets)),
    };
    REGION.store(Box::into_raw(Box::new(region)), Ordering::Release);
}

/// The shared state, when the library was preloaded.
pub fn region() -> Option<&'static Region> {
    // SAFETY: set once by install() to a leaked box, never freed.
    unsafe { REGION.load(Ordering::Acquire).as_ref() }
}

/// Microseconds on the system's monotonic clock, the same in every process.
pub fn now_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a plain libc call filling a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Zeroed memory for a region or a table made in the backend itself (tests, a backend without
/// preloading), as u64 words so that it is aligned for every atomic, never freed.
pub fn leak_zeroed(bytes: usize) -> *mut u8 {
    Box::leak(vec![0u64; bytes.div_ceil(8)].into_boxed_slice()).as_mut_ptr() as *mut u8
}
