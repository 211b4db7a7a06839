//! The Postgres-facing glue, and the only place with `unsafe` code: the FdwRoutine callbacks
//! (planning, scans, modifications, EXPLAIN) and the validator. Planning produces plain data copied into
//! the plan, so a cached plan can be executed any number of times; executor state lives in the
//! query's memory context and dies with one execution.

mod catalog;
mod check;
mod compat;
mod connect;
pub(crate) mod datum;
pub(crate) mod errors;
mod explain;
mod functions;
mod import;
mod modify;
mod modify_plan;
mod modify_row;
mod parent_filter;
mod paths;
mod plan_data;
mod quals;
pub(crate) mod quote;
mod scan;
pub(crate) mod shmem;
mod slot;
mod snapshot;
mod transaction;
mod write_errors;

use crate::error::FdwError;
use crate::options::{self, OptionContext};
pub use check::check;
pub use functions::{create_output_catalog, review_asset};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

pub fn fdw_routine() -> PgBox<pg_sys::FdwRoutine> {
    // SAFETY: alloc_node returns a zeroed, palloc'd FdwRoutine node; we only set callbacks.
    unsafe {
        let mut routine = PgBox::<pg_sys::FdwRoutine>::alloc_node(pg_sys::NodeTag::T_FdwRoutine);
        routine.GetForeignRelSize = Some(paths::get_foreign_rel_size);
        routine.GetForeignPaths = Some(paths::get_foreign_paths);
        routine.GetForeignPlan = Some(paths::get_foreign_plan);
        routine.ExplainForeignScan = Some(explain::explain_foreign_scan);
        routine.BeginForeignScan = Some(scan::begin_foreign_scan);
        routine.IterateForeignScan = Some(scan::iterate_foreign_scan);
        routine.ReScanForeignScan = Some(scan::rescan_foreign_scan);
        routine.EndForeignScan = Some(scan::end_foreign_scan);
        routine.ImportForeignSchema = Some(import::import_foreign_schema);
        routine.AddForeignUpdateTargets = Some(modify_plan::add_foreign_update_targets);
        routine.PlanForeignModify = Some(modify_plan::plan_foreign_modify);
        routine.BeginForeignModify = Some(modify::begin_foreign_modify);
        routine.ExecForeignInsert = Some(modify::exec_foreign_insert);
        routine.ExecForeignUpdate = Some(modify::exec_foreign_update);
        routine.ExecForeignDelete = Some(modify::exec_foreign_delete);
        routine.EndForeignModify = Some(modify::end_foreign_modify);
        routine.BeginForeignInsert = Some(modify::begin_foreign_insert);
        routine.EndForeignInsert = Some(modify::end_foreign_modify);
        routine.IsForeignRelUpdatable = Some(modify_plan::is_foreign_rel_updatable);
        routine.ExplainForeignModify = Some(modify::explain_foreign_modify);
        routine.into_pg_boxed()
    }
}

/// The most characters of a message, detail or hint: values quoted in them are cut short
/// where they are made; this is the last line of defence.
const MESSAGE_PART_LIMIT: usize = 2000;

/// Raises `e` as a Postgres ERROR. Never returns.
pub(crate) fn raise(e: FdwError) -> ! {
    let short = |s: String| crate::text::excerpt(&s, MESSAGE_PART_LIMIT);
    let mut report = ErrorReport::new(e.code, short(e.message), "databricks_fdw");
    if let Some(d) = e.detail {
        report = report.set_detail(short(d));
    }
    if let Some(h) = e.hint {
        report = report.set_hint(short(h));
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// A memory context for a few small values, child of the current one (it goes with it, also on
/// error), to be emptied whenever its values are made anew.
///
/// # Safety
/// Must run in a backend, in the memory context that is to own the new one.
pub(crate) unsafe fn small_memory_context(name: &'static std::ffi::CStr) -> pg_sys::MemoryContext {
    pg_sys::AllocSetContextCreateExtended(
        pg_sys::CurrentMemoryContext,
        name.as_ptr(),
        pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
        pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
        pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
    )
}

/// Text for a C string argument of Postgres (an EXPLAIN value, a name to quote): SQL text has
/// no NUL byte, so one that came from elsewhere is dropped.
pub(crate) fn c_text(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', "")).expect("NUL bytes removed")
}

pub(crate) trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<FdwError>> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e.into()))
    }
}

/// The validator's work. `options` NULL is no options; `catalog` NULL cannot come from
/// Postgres (which names the catalog the options belong to) but from a direct call, and is an
/// error; another catalog has no options of ours, so nothing is checked.
pub fn validate(options: Option<Vec<Option<String>>>, catalog: Option<pg_sys::Oid>) {
    let Some(catalog) = catalog else {
        raise(
            FdwError::new(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "databricks_fdw_validator: the catalog must not be NULL")
                .hint("Name the catalog the options belong to, e.g. 'pg_foreign_server'::regclass."),
        );
    };
    let context = match catalog {
        pg_sys::ForeignDataWrapperRelationId => OptionContext::Wrapper,
        pg_sys::ForeignServerRelationId => OptionContext::Server,
        pg_sys::UserMappingRelationId => OptionContext::UserMapping,
        pg_sys::ForeignTableRelationId => OptionContext::Table,
        pg_sys::AttributeRelationId => OptionContext::Column,
        _ => return,
    };
    let pairs: Vec<(String, String)> = options
        .into_iter()
        .flatten()
        .flatten()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    // Before anything reads a file the options name: a non-superuser learns nothing of it.
    if let Some(why) = options::superuser_only(context, &pairs) {
        // SAFETY: a plain check of the current user's role.
        if !unsafe { pg_sys::superuser() } {
            raise(
                FdwError::new(
                    PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("only a superuser may set this {}: {why}", context.label()),
                )
                .hint("Ask a superuser to create or alter it."),
            );
        }
    }
    options::validate(context, &pairs).or_raise();
}
