//! INSERT, UPDATE and DELETE on the writable resources (see `Resource::writes`). Each row is one
//! API call, sent when the executor reaches the row: the API is not transactional, so nothing
//! waits for COMMIT, and every error says what the statement had already changed. UPDATE and
//! DELETE find their rows with the table's own scan (read whole first: fdw/snapshot.rs); the
//! columns that identify a row reach the modification as row identity columns, and a row a
//! join reaches twice is changed once. Plain EXPLAIN sends nothing. Planning is in
//! fdw/modify_plan.rs; a row's values in and out in fdw/modify_row.rs.

use super::catalog;
use super::compat;
use super::connect::{self, Remote};
use super::modify_plan::{identity_columns, identity_name, writable};
use super::plan_data::{ModifyPlan, PlanData};
use super::scan::PgInterrupts;
use super::transaction::{self, Answered};
use super::write_errors::{self, Applied};
use super::{raise, OrRaise};
use crate::client::runtime;
use crate::client::write::{self, Effect, Outcome, RowValues};
use crate::client::Stats;
use crate::error::FdwError;
use crate::fdw::datum::ColumnWriter;
use crate::options::ServerOptions;
use crate::resources::{self, ColumnDef, Operation, Resource, Writes};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;
use pgrx::PgSqlErrorCode::*;
use std::collections::HashSet;

/// One column of the table, and what a change does with it.
pub(super) struct Column {
    pub index: usize,
    pub name: String,
    pub type_oid: pg_sys::Oid,
    /// The resource's column of this name, unless a `path` option points it elsewhere.
    pub def: Option<&'static ColumnDef>,
    /// A `path` option.
    pub path: Option<String>,
    /// Where the scan put this column's value among the row identity columns.
    pub identity: Option<pg_sys::AttrNumber>,
}

/// The row triggers of the table that a change must serve.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Triggers {
    /// A BEFORE UPDATE trigger may change columns outside the SET list: those are sent too.
    pub before_update: bool,
    /// An AFTER trigger (or a view's WITH CHECK OPTION) reads the row the API answered, as
    /// RETURNING does.
    pub reads_answer: bool,
}

/// The state of one execution of a modification, in the query's memory context.
pub struct ModifyState {
    pub(super) plan: ModifyPlan,
    pub(super) resource: &'static Resource,
    pub(super) writes: &'static Writes,
    pub(super) server: ServerOptions,
    client: crate::client::ApiClient,
    pub(super) columns: Vec<Column>,
    /// For RETURNING and AFTER triggers: the columns' Datum makers, by column.
    pub(super) writers: Vec<ColumnWriter>,
    pub(super) triggers: Triggers,
    applied: Applied,
    /// UPDATE ... FROM, DELETE ... USING: fingerprints of the rows already changed.
    seen: Option<HashSet<u128>>,
    /// A request is out, its answer not yet in (a cancel now leaves it in doubt).
    waiting: bool,
    stats: Stats,
    failed: bool,
    /// The values of one row, emptied before the next.
    pub(super) row_cxt: pg_sys::MemoryContext,
}

impl Drop for ModifyState {
    fn drop(&mut self) {
        // No Postgres calls here: the backend's own counters only.
        crate::stats::record(&self.server.server_name, self.resource.name, self.stats, self.failed);
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    fdw_private: *mut pg_sys::List,
    _subplan_index: std::ffi::c_int,
    eflags: std::ffi::c_int,
) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    let plan = ModifyPlan::from_list(fdw_private);
    let subplan = (*(*mtstate).ps.lefttree).plan;
    begin(mtstate, rinfo, plan, (*subplan).targetlist);
}

/// COPY FROM and rows routed to a partition: inserts without a planned modification.
#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_insert(mtstate: *mut pg_sys::ModifyTableState, rinfo: *mut pg_sys::ResultRelInfo) {
    let relid = (*(*rinfo).ri_RelationDesc).rd_id;
    let table = catalog::table(relid);
    // An UPDATE that moves a row into another partition it also updates: the insert would
    // replace the update's state, and the update could then reach the new row.
    if !(*rinfo).ri_FdwState.is_null() {
        raise(
            FdwError::new(
                ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("cannot route rows into foreign table \"{}\": the same statement updates it", table.name),
            )
            .hint("Update the partitions in separate statements, or move the row with a DELETE and an INSERT."),
        );
    }
    let (resource, _) = writable(&table, Operation::Insert).or_raise();
    let plan = ModifyPlan {
        table: table.name,
        resource: resource.name.to_string(),
        op: Operation::Insert,
        set_columns: Vec::new(),
        returning: !(*rinfo).ri_returningList.is_null(),
        may_repeat: false,
    };
    begin(mtstate, rinfo, plan, std::ptr::null_mut());
}

unsafe fn begin(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    plan: ModifyPlan,
    targetlist: *mut pg_sys::List,
) {
    let resource = resources::find(&plan.resource)
        .unwrap_or_else(|| raise(FdwError::new(ERRCODE_FDW_ERROR, format!("unknown resource \"{}\" in a cached plan", plan.resource))));
    let writes = resource.writes.as_ref().unwrap_or_else(|| raise(write_errors::read_only(&plan.table, resource, plan.op)));
    let relation = (*rinfo).ri_RelationDesc;
    let relid = (*relation).rd_id;
    let table = catalog::table(relid);
    let estate = (*mtstate).ps.state;
    let Remote { server, client } = connect::open(table.server_id, compat::modify_as_user(rinfo, estate));
    let triggers = triggers(rinfo, plan.op);
    let fills_slot = plan.returning || (triggers.reads_answer && plan.op != Operation::Delete);

    let names = catalog::column_names(relid);
    let paths = catalog::column_paths(relid, &names);
    let attrs = compat::attributes((*relation).rd_att);
    let identity =
        if plan.op == Operation::Insert { Vec::new() } else { identity_columns(resource, writes, &names, plan.op, plan.returning) };
    let mut columns = Vec::new();
    let mut writers = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        let attr = &attrs[index];
        let path = paths[index].clone().filter(|p| p != name);
        let identity = identity.contains(name).then(|| {
            let attno = pg_sys::ExecFindJunkAttributeInTlist(targetlist, identity_name(name).as_ptr());
            if attno <= 0 {
                raise(FdwError::new(
                    ERRCODE_INTERNAL_ERROR,
                    format!("databricks_fdw: the scan of \"{}\" did not carry column \"{name}\"", plan.table),
                ));
            }
            attno
        });
        let def = if path.is_none() { resource.column(name) } else { None };
        if fills_slot {
            writers.push(ColumnWriter::new(index, name.clone(), &plan.table, attr.atttypid, attr.atttypmod));
        }
        columns.push(Column { index, name: name.clone(), type_oid: attr.atttypid, def, path, identity });
    }
    let row_cxt = super::small_memory_context(c"databricks_fdw row values");
    let applied = Applied { op: Some(plan.op), column: writes.keys.last().copied().unwrap_or("name"), ..Applied::default() };
    let seen = plan.may_repeat.then(HashSet::new);
    let state = ModifyState {
        plan,
        resource,
        writes,
        server,
        client,
        columns,
        writers,
        triggers,
        applied,
        seen,
        waiting: false,
        stats: Stats::default(),
        failed: false,
        row_cxt,
    };
    (*rinfo).ri_FdwState = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state) as *mut std::ffi::c_void;
    transaction::watch();
}

/// What the table's row triggers (and a view's check options) need from a change of kind `op`.
unsafe fn triggers(rinfo: *mut pg_sys::ResultRelInfo, op: Operation) -> Triggers {
    let checks = !(*rinfo).ri_WithCheckOptions.is_null();
    let Some(t) = (*rinfo).ri_TrigDesc.as_ref() else { return Triggers { before_update: false, reads_answer: checks } };
    let after = match op {
        Operation::Insert => t.trig_insert_after_row,
        Operation::Update => t.trig_update_after_row,
        Operation::Delete => t.trig_delete_after_row,
    };
    Triggers { before_update: op == Operation::Update && t.trig_update_before_row, reads_answer: after || checks }
}

unsafe fn state_of<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a mut ModifyState {
    match ((*rinfo).ri_FdwState as *mut ModifyState).as_mut() {
        Some(state) => state,
        None => raise(FdwError::new(ERRCODE_FEATURE_NOT_SUPPORTED, "databricks_fdw: this kind of statement cannot change a foreign table")),
    }
}

/// ExecForeignInsert. `slot` is the new row.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    exec_row(Operation::Insert, rinfo, slot, plan_slot)
}

/// ExecForeignUpdate. `slot` is the new row, `plan_slot` the scan's row with the row identity
/// columns.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_update(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    exec_row(Operation::Update, rinfo, slot, plan_slot)
}

/// ExecForeignDelete. `slot` is the place for RETURNING.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_delete(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    exec_row(Operation::Delete, rinfo, slot, plan_slot)
}

/// One row of the statement: its values (in memory emptied before the next row), then its
/// call. Any error on the way (a value that cannot be sent, the API's refusal, a cancel while
/// waiting, RETURNING that cannot be made) says what the statement had already changed.
unsafe fn exec_row(
    op: Operation,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state: *mut ModifyState = state_of(rinfo);
    // AssertUnwindSafe: on error the state only serves the message, then goes with the query.
    let guarded = std::panic::AssertUnwindSafe(state);
    PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        let state = &mut *state;
        pg_sys::MemoryContextReset(state.row_cxt);
        let row = PgMemoryContexts::For(state.row_cxt).switch_to(|_| match op {
            Operation::Insert => state.inserted(slot),
            Operation::Update => state.updated(rinfo, slot, plan_slot),
            Operation::Delete => state.identified(plan_slot),
        });
        state.apply(op, row, slot, plan_slot)
    }))
    .catch_others(move |e| {
        let state = &guarded;
        (*state.0).rethrow_with_changes(e)
    })
    .execute()
}

impl ModifyState {
    /// Sends the change for one row. Returns the slot for RETURNING and AFTER triggers (what
    /// the API answered, or for a DELETE the row the scan read), or NULL when the row was
    /// already gone, or already changed by this statement (a join that reached it twice).
    unsafe fn apply(
        &mut self,
        op: Operation,
        row: RowValues,
        slot: *mut pg_sys::TupleTableSlot,
        plan_slot: *mut pg_sys::TupleTableSlot,
    ) -> *mut pg_sys::TupleTableSlot {
        let change = write::change(self.resource, &self.server.endpoint, op, &row)
            .unwrap_or_else(|e| raise(write_errors::change_error(e, &self.plan.table, &self.server.server_name)));
        if let Some(seen) = self.seen.as_mut() {
            if !seen.insert(fingerprint(&row)) {
                return std::ptr::null_mut();
            }
        }
        let client = self.client.clone();
        transaction::sending();
        self.waiting = true;
        let outcome = runtime::run(
            async move {
                let mut stats = Stats::default();
                let outcome = write::send(&client, &change, op, &mut stats).await;
                (outcome, stats)
            },
            &PgInterrupts,
        );
        self.waiting = false;
        let (outcome, stats) = outcome.unwrap_or_else(|_| {
            transaction::answered(Answered::InDoubt);
            raise(FdwError::new(
                ERRCODE_INTERNAL_ERROR,
                format!("databricks_fdw: a request for foreign table \"{}\" stopped without an answer", self.plan.table),
            ))
        });
        self.stats += stats;
        let key = self.applied.column;
        let answer = match outcome {
            Outcome::Done { answer, .. } => answer,
            // The row went away since the scan read it: like a row deleted concurrently, it is
            // not counted.
            Outcome::Gone => {
                transaction::answered(Answered::NotApplied);
                return std::ptr::null_mut();
            }
            Outcome::Failed { error, effect } => {
                transaction::answered(match effect {
                    Effect::None => Answered::NotApplied,
                    Effect::Maybe => Answered::InDoubt,
                    Effect::Made => Answered::Applied,
                });
                if effect == Effect::Made {
                    self.applied.push(row.key(key).unwrap_or("(not known)").to_string());
                }
                self.failed = true;
                raise(write_errors::write_error(error, &self.plan.table, op, &self.applied, effect))
            }
        };
        transaction::answered(Answered::Applied);
        let described = answer.get(key).and_then(serde_json::Value::as_str).or_else(|| row.key(key));
        self.applied.push(described.unwrap_or("(not known)").to_string());
        if self.writers.is_empty() {
            return slot;
        }
        match op {
            Operation::Delete => self.store_scanned(slot, plan_slot),
            _ => PgMemoryContexts::For(self.row_cxt).switch_to(|_| self.store_answer(slot, &answer, &row)),
        }
        slot
    }

    /// Raises `e` again with what the statement had already changed in its DETAIL (an API
    /// error says it already), and that a request still waiting for its answer may have been
    /// applied.
    unsafe fn rethrow_with_changes(&mut self, e: CaughtError) -> *mut pg_sys::TupleTableSlot {
        let mut said = self.applied.describe();
        if std::mem::take(&mut self.waiting) {
            transaction::answered(Answered::InDoubt);
            said.push_str(" The request that was waiting for its answer may have been applied: check with a SELECT before trying again.");
        } else if self.applied.count == 0 {
            e.rethrow();
        }
        let detail = |d: Option<&str>| match d {
            Some(d) if d.starts_with(&self.applied.describe()) => d.to_string(),
            Some(d) => format!("{said} {d}"),
            None => said.clone(),
        };
        match e {
            CaughtError::PostgresError(report) => {
                // Keep Postgres's own error (its CONTEXT lines too): copy it, add to its
                // DETAIL, and throw it again.
                let edata = pg_sys::CopyErrorData();
                pg_sys::FlushErrorState();
                let text = std::ffi::CString::new(detail(report.detail())).unwrap_or_default();
                (*edata).detail = pg_sys::pstrdup(text.as_ptr());
                super::compat::rethrow(edata)
            }
            CaughtError::ErrorReport(report) | CaughtError::RustPanic { ereport: report, .. } => {
                let mut e = FdwError::new(report.sql_error_code(), report.message()).detail(detail(report.detail()));
                e.hint = report.hint().map(str::to_string);
                raise(e)
            }
        }
    }
}

/// A row's identity (keys and workspace) in 16 bytes: what an UPDATE ... FROM remembers of
/// each row it changed.
fn fingerprint(row: &RowValues) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, &row.keys, &row.deployment).hash(&mut h);
        h.finish() as u128
    };
    half(0) << 64 | half(1)
}

#[pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_modify(_estate: *mut pg_sys::EState, _rinfo: *mut pg_sys::ResultRelInfo) {
    // The state goes with the query's memory (its Drop records the statistics).
}

#[pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_modify(
    _mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    fdw_private: *mut pg_sys::List,
    _subplan_index: std::ffi::c_int,
    es: *mut pg_sys::ExplainState,
) {
    let plan = ModifyPlan::from_list(fdw_private);
    if let Some(writes) = resources::find(&plan.resource).and_then(|r| r.writes.as_ref()) {
        super::explain::text(es, "Databricks", &writes.request_line(plan.op));
    }
    if !plan.set_columns.is_empty() {
        super::explain::text(es, "Fields Sent", &plan.set_columns.join(", "));
    }
    if (*es).analyze {
        if let Some(state) = ((*rinfo).ri_FdwState as *const ModifyState).as_ref() {
            super::explain::integer(es, "Requests", state.stats.requests as i64);
            super::explain::integer(es, "Retries", state.stats.retries as i64);
        }
    }
}
