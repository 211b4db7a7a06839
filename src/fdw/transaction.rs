//! What the current transaction changed through the API, so that an abort, which cannot undo
//! those changes, says so (a WARNING at the abort) instead of leaving the user to believe it did.

use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static APPLIED: Cell<u64> = const { Cell::new(0) };
    /// Requests sent whose answer never came (a cancel while waiting).
    static IN_DOUBT: Cell<u64> = const { Cell::new(0) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Registers the transaction callback, once per backend.
///
/// # Safety
/// Must run in a backend (it registers a callback with Postgres).
pub unsafe fn watch() {
    if !WATCHING.get() {
        pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
        WATCHING.set(true);
    }
}

/// A write call is about to be sent: until its answer comes, it may or may not be applied.
pub fn sending() {
    IN_DOUBT.set(IN_DOUBT.get() + 1);
}

/// The answer came: the change was applied, or refused.
pub fn answered(applied: bool) {
    IN_DOUBT.set(IN_DOUBT.get().saturating_sub(1));
    if applied {
        APPLIED.set(APPLIED.get() + 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let aborted = matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT);
    if !aborted && !matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE) {
        return;
    }
    let (applied, in_doubt) = (APPLIED.replace(0), IN_DOUBT.replace(0));
    if aborted && applied + in_doubt > 0 {
        let mut message = match applied {
            1 => "1 change made on Databricks by this transaction was not rolled back".to_string(),
            n => format!("{n} changes made on Databricks by this transaction were not rolled back"),
        };
        if in_doubt > 0 {
            message.push_str(&format!("; {in_doubt} more request(s) stopped before their answer came and may have been applied"));
        }
        ereport!(
            PgLogLevel::WARNING,
            PgSqlErrorCode::ERRCODE_WARNING,
            message,
            "The Databricks API is not transactional: a ROLLBACK or an error does not undo what it already did. SELECT from the tables to see their state."
        );
    }
}
