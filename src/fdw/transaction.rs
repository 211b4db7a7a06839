//! What the current transaction changed through the API, per subtransaction, so that nothing
//! pretends to undo it: the API is not transactional. A rolled-back subtransaction (ROLLBACK TO
//! SAVEPOINT, a PL/pgSQL EXCEPTION block) or transaction that changed something ends with a
//! WARNING saying how many changes stayed; PREPARE TRANSACTION after a change is refused, since
//! ROLLBACK PREPARED could not undo it.

use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// Changes made at one subtransaction level (those of committed children included).
#[derive(Debug, Default, Clone, Copy)]
struct Level {
    subid: pg_sys::SubTransactionId,
    applied: u64,
    /// Requests whose answer never came (a cancel while waiting), or whose failure may hide a
    /// change (a 503 after a create, a lost answer).
    in_doubt: u64,
}

thread_local! {
    /// The transaction's ledger: one entry per subtransaction level that changed something,
    /// in the order of their ids (children after parents).
    static LEDGER: RefCell<Vec<Level>> = const { RefCell::new(Vec::new()) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Registers the transaction callbacks, once per backend.
///
/// # Safety
/// Must run in a backend (it registers callbacks with Postgres).
pub unsafe fn watch() {
    if !WATCHING.get() {
        pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut());
        WATCHING.set(true);
    }
}

/// Adds to the current subtransaction's entry.
fn record(applied: i64, in_doubt: i64) {
    // SAFETY: reads the backend's current subtransaction id; no allocation, no error.
    let subid = unsafe { pg_sys::GetCurrentSubTransactionId() };
    LEDGER.with_borrow_mut(|ledger| {
        let at = match ledger.iter().position(|l| l.subid == subid) {
            Some(i) => i,
            None => {
                ledger.push(Level { subid, ..Level::default() });
                ledger.len() - 1
            }
        };
        let level = &mut ledger[at];
        level.applied = level.applied.saturating_add_signed(applied);
        level.in_doubt = level.in_doubt.saturating_add_signed(in_doubt);
    });
}

/// A write call is about to be sent: until its answer comes, it may or may not be applied.
pub fn sending() {
    record(0, 1);
}

/// What the answer to the last call sent says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Applied,
    NotApplied,
    /// No answer that settles it: the change may have been made.
    InDoubt,
}

pub fn answered(answer: Answered) {
    match answer {
        Answered::Applied => record(1, -1),
        Answered::NotApplied => record(0, -1),
        Answered::InDoubt => {}
    }
}

/// "3 changes made on Databricks by this transaction were not rolled back", with the changes in doubt.
fn stayed(applied: u64, in_doubt: u64, by: &str) -> String {
    let mut message = match applied {
        0 => format!("no change made on Databricks by {by} is known to have been applied"),
        1 => format!("1 change made on Databricks by {by} was not rolled back"),
        n => format!("{n} changes made on Databricks by {by} were not rolled back"),
    };
    if in_doubt > 0 {
        message.push_str(&format!("; {in_doubt} more request(s) stopped before their answer came and may have been applied"));
    }
    message
}

fn warn(message: String) {
    ereport!(
        PgLogLevel::WARNING,
        PgSqlErrorCode::ERRCODE_WARNING,
        message,
        "The Databricks API is not transactional: a ROLLBACK or an error does not undo what it already did. \
         SELECT from the tables to see their state."
    );
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    if !matches!(event, SUBXACT_EVENT_COMMIT_SUB | SUBXACT_EVENT_ABORT_SUB) {
        return;
    }
    let Some(mine) = LEDGER.with_borrow_mut(|ledger| ledger.iter().position(|l| l.subid == my_subid).map(|i| ledger.remove(i))) else {
        return;
    };
    // The changes stay changes of the transaction, whichever way the subtransaction ended.
    let parent = Level { subid: parent_subid, ..mine };
    LEDGER.with_borrow_mut(|ledger| match ledger.iter_mut().find(|l| l.subid == parent_subid) {
        Some(l) => {
            l.applied += mine.applied;
            l.in_doubt += mine.in_doubt;
        }
        None => ledger.push(parent),
    });
    if event == SUBXACT_EVENT_ABORT_SUB && mine.applied + mine.in_doubt > 0 {
        warn(stayed(mine.applied, mine.in_doubt, "the rolled-back subtransaction (savepoint or EXCEPTION block)"));
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let total = || LEDGER.with_borrow(|ledger| ledger.iter().fold((0, 0), |(a, d), l| (a + l.applied, d + l.in_doubt)));
    if event == XACT_EVENT_PRE_PREPARE {
        let (applied, in_doubt) = total();
        if applied + in_doubt > 0 {
            // The abort that follows this error warns that the changes stayed.
            let doubtful = if in_doubt > 0 { format!(" (and {in_doubt} more that may have been)") } else { String::new() };
            super::raise(
                crate::error::FdwError::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "cannot PREPARE a transaction that has changed Databricks through databricks_fdw",
                )
                .detail(format!(
                    "{applied} change(s) made by this transaction were applied at once{doubtful}: ROLLBACK PREPARED could not undo them."
                ))
                .hint("COMMIT the transaction instead."),
            );
        }
        return;
    }
    let aborted = matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT);
    if !aborted && !matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE) {
        return;
    }
    let (applied, in_doubt) = total();
    LEDGER.with_borrow_mut(Vec::clear);
    if aborted && applied + in_doubt > 0 {
        warn(stayed(applied, in_doubt, "this transaction"));
    }
}
