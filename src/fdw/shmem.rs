//! Preloading (`shared_preload_libraries = 'databricks_fdw'`): the GUC sizing the shared response
//! cache, and the shared memory region every backend inherits (`crate::shared`). Loaded any other
//! way, the library defines nothing here and each backend keeps its own cache and budgets.

use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::sync::Once;

/// `databricks_fdw.shared_cache_size`, in kB (0: no shared cache).
static SHARED_CACHE_KB: GucSetting<i32> = GucSetting::<i32>::new(32 * 1024);

static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;
#[cfg(not(feature = "pg14"))]
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;

fn layout() -> crate::shared::Layout {
    crate::shared::Layout::new(SHARED_CACHE_KB.get().max(0) as usize * 1024)
}

/// From `_PG_init`: when preloading, defines the GUC and asks for the region.
pub fn init() {
    // SAFETY: a flag Postgres sets while it loads shared_preload_libraries, read on its thread.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    GucRegistry::define_int_guc(
        c"databricks_fdw.shared_cache_size",
        c"Memory for the response cache shared by all backends (cache_ttl).",
        c"Set at server start; 0 keeps a cache in each backend instead.",
        &SHARED_CACHE_KB,
        0,
        1024 * 1024,
        GucContext::Postmaster,
        GucFlags::UNIT_KB,
    );
    // SAFETY: hooks are chained as Postgres documents, during preloading, on its thread.
    unsafe {
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
        #[cfg(feature = "pg14")]
        pg_sys::RequestAddinShmemSpace(layout().size);
        #[cfg(not(feature = "pg14"))]
        {
            PREV_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(request);
        }
    }
}

#[cfg(not(feature = "pg14"))]
#[pg_guard]
unsafe extern "C-unwind" fn request() {
    if let Some(prev) = PREV_REQUEST {
        prev();
    }
    pg_sys::RequestAddinShmemSpace(layout().size);
}

#[pg_guard]
unsafe extern "C-unwind" fn startup() {
    if let Some(prev) = PREV_STARTUP {
        prev();
    }
    let layout = layout();
    // The same lock other extensions take here (AddinShmemInitLock, MainLWLockArray[21]).
    let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
    pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let mut found = false;
    let base = pg_sys::ShmemInitStruct(c"databricks_fdw".as_ptr(), layout.size, &mut found) as *mut u8;
    if !found {
        // Every word of the region is an atomic whose zero is its empty state.
        std::ptr::write_bytes(base, 0, layout.size);
    }
    pg_sys::LWLockRelease(lock);
    // ShmemInitStruct's memory is MAXALIGNed (8) and mapped for the server's life.
    crate::shared::install(base, layout);
}

/// Called on the backend's thread when a scan starts: a backend that exits while its requests
/// wait on a budget must not go on counting as waiting.
pub fn on_exit_forget_waits() {
    static ONCE: Once = Once::new();
    if crate::shared::region().is_some() {
        // SAFETY: registering a callback on the backend's thread; it only touches atomics.
        ONCE.call_once(|| unsafe { pg_sys::before_shmem_exit(Some(forget_waits), pg_sys::Datum::from(0)) });
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_waits(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    crate::shared::budget::Waiting::forget_all();
}

/// Whether the region exists; raises the error a user can act on when not.
pub fn require() -> &'static crate::shared::Region {
    match crate::shared::region() {
        Some(r) => r,
        None => super::raise(crate::error::FdwError {
            code: PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            message: "databricks_fdw is not preloaded: the cluster's figures are not kept".into(),
            detail: None,
            hint: Some(
                "Add databricks_fdw to shared_preload_libraries and restart the server; \
                 databricks_fdw_stats() gives this backend's figures."
                    .into(),
            ),
        }),
    }
}
