//! INSERT, UPDATE and DELETE on the writable resources (see `Resource::writes`). Each row is one
//! API call, sent when the executor reaches the row: the API is not transactional, so nothing
//! waits for COMMIT, and an error says what the statement had already changed. UPDATE and
//! DELETE find their rows with the table's own scan; the columns that identify a row reach the
//! modification as row identity columns. Plain EXPLAIN sends nothing.

use super::catalog;
use super::compat;
use super::connect::{self, Remote};
use super::errors::{self, Applied};
use super::plan_data::{ModifyPlan, PlanData};
use super::scan::PgInterrupts;
use super::slot::{emptied, slot_values};
use super::transaction;
use super::{raise, OrRaise};
use crate::client::runtime;
use crate::client::write::{self, RowValues};
use crate::client::Stats;
use crate::convert::datum::{json_value, output_text, ColumnWriter};
use crate::convert::convert;
use crate::error::FdwError;
use crate::options::{self, ServerOptions, TableOptions};
use crate::resources::{self, ColumnDef, Operation, Resource, Source, Writes};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;
use pgrx::{PgList, PgMemoryContexts};
use serde_json::{Map, Value};
use std::ffi::CString;

/// The name of the row identity column that carries `column` from the scan to the change.
fn identity_name(column: &str) -> CString {
    CString::new(format!("databricks_fdw {column}")).unwrap_or_default()
}

/// The columns an UPDATE or DELETE needs from the scan: the keys, the workspace column when the
/// table has one, and for a DELETE with RETURNING every column (the API answers a DELETE with
/// nothing, so the row returned is the row the scan read).
fn identity_columns(resource: &Resource, writes: &Writes, names: &[Option<String>], op: Operation, returning: bool) -> Vec<String> {
    let mut wanted: Vec<String> = writes.keys.iter().map(|k| k.to_string()).collect();
    if let Some(w) = resource.workspace_column().filter(|w| names.iter().flatten().any(|n| n == w)) {
        wanted.push(w.to_string());
    }
    if op == Operation::Delete && returning {
        wanted.extend(names.iter().flatten().filter(|n| !wanted.contains(n)).cloned().collect::<Vec<_>>());
    }
    wanted
}

/// The resource of a foreign table and how it is written, or why `op` cannot change the table:
/// a read-only resource, or the option `updatable` off.
///
/// # Safety
/// `table` must be a foreign table's catalog entry, read in a backend.
unsafe fn writable(table: &catalog::TableInfo, op: Operation) -> Result<(&'static Resource, &'static Writes), FdwError> {
    let resource = TableOptions::from_options(&table.name, &table.options)?.resource;
    let Some(writes) = resource.writes.as_ref() else { return Err(errors::read_only(&table.name, resource, op)) };
    if !options::updatable(&table.options, &catalog::server(table.server_id).options) {
        return Err(errors::not_updatable(&table.name, op));
    }
    Ok((resource, writes))
}

unsafe fn operation(cmd: pg_sys::CmdType::Type) -> Option<Operation> {
    match cmd {
        pg_sys::CmdType::CMD_INSERT => Some(Operation::Insert),
        pg_sys::CmdType::CMD_UPDATE => Some(Operation::Update),
        pg_sys::CmdType::CMD_DELETE => Some(Operation::Delete),
        _ => None,
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn add_foreign_update_targets(
    root: *mut pg_sys::PlannerInfo,
    rtindex: pg_sys::Index,
    _target_rte: *mut pg_sys::RangeTblEntry,
    relation: pg_sys::Relation,
) {
    let relid = (*relation).rd_id;
    let table = catalog::table(relid);
    let resource = TableOptions::from_options(&table.name, &table.options).or_raise().resource;
    let (Some(writes), Some(op)) = (resource.writes.as_ref(), operation((*(*root).parse).commandType)) else {
        return; // planning the modification says why it cannot be made
    };
    let returning = !(*(*root).parse).returningList.is_null();
    let names = catalog::column_names(relid);
    let attrs = compat::attributes((*relation).rd_att);
    for column in identity_columns(resource, writes, &names, op, returning) {
        let Some(index) = names.iter().position(|n| n.as_deref() == Some(column.as_str())) else {
            raise(errors::missing_key(&table.name, &column, op));
        };
        let attr = &attrs[index];
        let var = pg_sys::makeVar(rtindex as _, attr.attnum, attr.atttypid, attr.atttypmod, attr.attcollation, 0);
        pg_sys::add_row_identity_var(root, var, rtindex, identity_name(&column).as_ptr());
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn plan_foreign_modify(
    root: *mut pg_sys::PlannerInfo,
    plan: *mut pg_sys::ModifyTable,
    result_relation: pg_sys::Index,
    subplan_index: std::ffi::c_int,
) -> *mut pg_sys::List {
    let rte = *(*root).simple_rte_array.add(result_relation as usize);
    let relid = (*rte).relid;
    let table = catalog::table(relid);
    let Some(op) = operation((*plan).operation) else {
        raise(FdwError::new(ERRCODE_FEATURE_NOT_SUPPORTED, format!("foreign table \"{}\" takes only INSERT, UPDATE and DELETE", table.name)));
    };
    let (resource, writes) = writable(&table, op).or_raise();
    if (*plan).onConflictAction != pg_sys::OnConflictAction::ONCONFLICT_NONE {
        raise(FdwError::new(ERRCODE_FEATURE_NOT_SUPPORTED, format!("INSERT ... ON CONFLICT is not supported on foreign table \"{}\"", table.name)));
    }
    let names = catalog::column_names(relid);
    let paths = catalog::column_paths(relid, &names);
    let mut set_columns = Vec::new();
    if op == Operation::Update {
        for attnum in int_list(nth_list((*plan).updateColnosLists, subplan_index)) {
            let Some(Some(name)) = names.get(attnum as usize - 1) else { continue };
            if writes.keys.contains(&name.as_str()) || resource.workspace_column() == Some(name.as_str()) {
                raise(errors::key_change(&table.name, name));
            }
            let own_field = paths[attnum as usize - 1].as_ref().is_none_or(|p| p == name);
            if !own_field || !writes.updatable.contains(&name.as_str()) {
                raise(errors::set_by_service(&table.name, name, op, writes.updatable));
            }
            set_columns.push(name.clone());
        }
    }
    let returning = !nth_list((*plan).returningLists, subplan_index).is_null();
    ModifyPlan { table: table.name, resource: resource.name.to_string(), op, set_columns, returning }.to_list()
}

#[pg_guard]
pub unsafe extern "C-unwind" fn is_foreign_rel_updatable(relation: pg_sys::Relation) -> std::ffi::c_int {
    if writable(&catalog::table((*relation).rd_id), Operation::Insert).is_ok() {
        (1 << pg_sys::CmdType::CMD_INSERT) | (1 << pg_sys::CmdType::CMD_UPDATE) | (1 << pg_sys::CmdType::CMD_DELETE)
    } else {
        0
    }
}

/// Element `n` of a List of Lists (NULL when the list is shorter or absent).
unsafe fn nth_list(list: *mut pg_sys::List, n: std::ffi::c_int) -> *mut pg_sys::List {
    PgList::<pg_sys::List>::from_pg(list).get_ptr(n as usize).unwrap_or(std::ptr::null_mut())
}

unsafe fn int_list(list: *mut pg_sys::List) -> Vec<i32> {
    if list.is_null() {
        return Vec::new();
    }
    (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).int_value).collect()
}

/// One column of the table, and what a change does with it.
struct Column {
    index: usize,
    name: String,
    type_oid: pg_sys::Oid,
    /// The resource's column of this name, unless a `path` option points it elsewhere.
    def: Option<&'static ColumnDef>,
    /// A `path` option.
    path: Option<String>,
    /// Where the scan put this column's value among the row identity columns.
    identity: Option<pg_sys::AttrNumber>,
}

/// The state of one execution of a modification, in the query's memory context.
pub struct ModifyState {
    plan: ModifyPlan,
    resource: &'static Resource,
    writes: &'static Writes,
    server: ServerOptions,
    client: crate::client::ApiClient,
    columns: Vec<Column>,
    /// For RETURNING: the columns' Datum makers, by column.
    writers: Vec<ColumnWriter>,
    applied: Applied,
    stats: Stats,
    failed: bool,
    /// The values of one row, emptied before the next.
    row_cxt: pg_sys::MemoryContext,
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
    let (resource, _) = writable(&table, Operation::Insert).or_raise();
    let plan = ModifyPlan {
        table: table.name,
        resource: resource.name.to_string(),
        op: Operation::Insert,
        set_columns: Vec::new(),
        returning: !(*rinfo).ri_returningList.is_null(),
    };
    begin(mtstate, rinfo, plan, std::ptr::null_mut());
}

unsafe fn begin(mtstate: *mut pg_sys::ModifyTableState, rinfo: *mut pg_sys::ResultRelInfo, plan: ModifyPlan, targetlist: *mut pg_sys::List) {
    let resource = resources::find(&plan.resource)
        .unwrap_or_else(|| raise(FdwError::new(ERRCODE_FDW_ERROR, format!("unknown resource \"{}\" in a cached plan", plan.resource))));
    let writes = resource.writes.as_ref().unwrap_or_else(|| raise(errors::read_only(&plan.table, resource, plan.op)));
    let relation = (*rinfo).ri_RelationDesc;
    let relid = (*relation).rd_id;
    let table = catalog::table(relid);
    let estate = (*mtstate).ps.state;
    let Remote { server, client } = connect::open(table.server_id, compat::modify_as_user(rinfo, estate));

    let names = catalog::column_names(relid);
    let paths = catalog::column_paths(relid, &names);
    let attrs = compat::attributes((*relation).rd_att);
    let identity = if plan.op == Operation::Insert { Vec::new() } else { identity_columns(resource, writes, &names, plan.op, plan.returning) };
    let mut columns = Vec::new();
    let mut writers = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        let attr = &attrs[index];
        let path = paths[index].clone().filter(|p| p != name);
        let identity = identity.contains(name).then(|| {
            let attno = pg_sys::ExecFindJunkAttributeInTlist(targetlist, identity_name(name).as_ptr());
            if attno <= 0 {
                raise(FdwError::new(ERRCODE_INTERNAL_ERROR, format!("databricks_fdw: the scan of \"{}\" did not carry column \"{name}\"", plan.table)));
            }
            attno
        });
        let def = if path.is_none() { resource.column(name) } else { None };
        if plan.returning {
            writers.push(ColumnWriter::new(index, name.clone(), &plan.table, attr.atttypid, attr.atttypmod));
        }
        columns.push(Column { index, name: name.clone(), type_oid: attr.atttypid, def, path, identity });
    }
    let row_cxt = super::small_memory_context(c"databricks_fdw row values");
    let applied = Applied { op: Some(plan.op), column: writes.keys.last().copied().unwrap_or("name"), ..Applied::default() };
    let state = ModifyState { plan, resource, writes, server, client, columns, writers, applied, stats: Stats::default(), failed: false, row_cxt };
    (*rinfo).ri_FdwState = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state) as *mut std::ffi::c_void;
    transaction::watch();
}

unsafe fn state_of<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a mut ModifyState {
    match ((*rinfo).ri_FdwState as *mut ModifyState).as_mut() {
        Some(state) => state,
        None => raise(FdwError::new(ERRCODE_FEATURE_NOT_SUPPORTED, "databricks_fdw: this kind of statement cannot change a foreign table")),
    }
}

/// ExecForeignInsert, ExecForeignUpdate and ExecForeignDelete (the plan says which): one row of
/// the statement, its values (in memory emptied before the next row), then its call. `slot` is
/// the new row (INSERT, UPDATE) or the place for RETURNING (DELETE); `plan_slot` the scan's row
/// with the row identity columns.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_row(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state = state_of(rinfo);
    pg_sys::MemoryContextReset(state.row_cxt);
    let row = PgMemoryContexts::For(state.row_cxt).switch_to(|_| match state.plan.op {
        Operation::Insert => state.inserted(slot),
        Operation::Update => state.updated(slot, plan_slot),
        Operation::Delete => state.identified(plan_slot),
    });
    state.apply(row, slot, plan_slot)
}

impl ModifyState {
    /// The JSON a column's value is sent as.
    unsafe fn json(&self, column: &Column, datum: pg_sys::Datum) -> Value {
        let kind = column.def.map_or(crate::resources::Kind::Text, |d| d.kind);
        json_value(datum, column.type_oid, kind).unwrap_or_else(|problem| raise(errors::unsendable(&self.plan.table, &column.name, &problem)))
    }

    /// What an inserted row gives: the create path's columns, the workspace, and the fields
    /// an INSERT may set. Any other column given a value is refused: it is the service's.
    unsafe fn inserted(&self, slot: *mut pg_sys::TupleTableSlot) -> RowValues {
        let values = slot_values(slot);
        let path_columns: Vec<&str> = resources::placeholders(self.writes.create.path);
        let mut row = RowValues::default();
        for column in &self.columns {
            let Some(datum) = values[column.index] else { continue };
            let name = column.name.as_str();
            let own = column.def.is_some();
            let mut used = false;
            if own && self.resource.workspace_column() == Some(name) {
                row.deployment = Some(output_text(datum, column.type_oid));
                used = true;
            }
            if own && path_columns.contains(&name) {
                row.keys.push((column.def.expect("checked").name, output_text(datum, column.type_oid)));
                used = true;
            }
            if own && self.writes.insertable.contains(&name) {
                row.fields.insert(name.to_string(), self.json(column, datum));
                used = true;
            }
            if !used {
                let mut settable: Vec<&str> = path_columns.clone();
                settable.extend(self.writes.insertable.iter().filter(|c| !path_columns.contains(c)));
                settable.extend(self.resource.workspace_column());
                raise(errors::set_by_service(&self.plan.table, name, Operation::Insert, &settable));
            }
        }
        for column in self.writes.required {
            if row.key(column).is_none() && !row.fields.contains_key(*column) {
                raise(errors::missing_value(&self.plan.table, column, self.resource));
            }
        }
        row
    }

    /// What an updated row sends: its keys, and the SET columns' new values (NULL clears a
    /// field, as far as the service allows).
    unsafe fn updated(&self, slot: *mut pg_sys::TupleTableSlot, plan_slot: *mut pg_sys::TupleTableSlot) -> RowValues {
        let mut row = self.identified(plan_slot);
        let values = slot_values(slot);
        for name in &self.plan.set_columns {
            let column = self.columns.iter().find(|c| &c.name == name).expect("set columns are columns of the table");
            let value = match values[column.index] {
                None => Value::Null,
                Some(datum) => self.json(column, datum),
            };
            row.fields.insert(name.clone(), value);
        }
        row
    }

    /// The keys (and workspace) of the row an UPDATE or DELETE reached, from the scan.
    unsafe fn identified(&self, plan_slot: *mut pg_sys::TupleTableSlot) -> RowValues {
        let mut row = RowValues::default();
        let scanned = slot_values(plan_slot);
        for column in &self.columns {
            let Some(attno) = column.identity else { continue };
            let is_key = self.writes.keys.iter().find(|k| **k == column.name);
            let is_workspace = self.resource.workspace_column() == Some(column.name.as_str());
            if is_key.is_none() && !is_workspace {
                continue;
            }
            let text = scanned[attno as usize - 1].map(|d| output_text(d, column.type_oid));
            match (is_key, text) {
                (Some(key), Some(v)) => row.keys.push((key, v)),
                (Some(key), None) => raise(errors::null_key(&self.plan.table, key, self.plan.op)),
                (None, deployment) => row.deployment = deployment,
            }
        }
        row
    }

    /// Sends the change for one row. Returns the slot for RETURNING (what the API answered,
    /// or for a DELETE the row the scan read), or NULL when the row was already gone.
    unsafe fn apply(&mut self, row: RowValues, slot: *mut pg_sys::TupleTableSlot, plan_slot: *mut pg_sys::TupleTableSlot) -> *mut pg_sys::TupleTableSlot {
        let op = self.plan.op;
        let write::Change { workspace, request } = write::change(self.resource, &self.server.endpoint, op, &row)
            .unwrap_or_else(|e| raise(errors::change_error(e, &self.plan.table, &self.server.server_name)));
        let client = self.client.clone();
        transaction::sending();
        let outcome = runtime::run(
            async move {
                let mut stats = Stats::default();
                let answer = client.send(&workspace, &request, &mut stats).await;
                (answer, stats)
            },
            &PgInterrupts,
        );
        let (answer, stats) = outcome.unwrap_or_else(|_| {
            raise(FdwError::new(ERRCODE_INTERNAL_ERROR, format!("databricks_fdw: a request for foreign table \"{}\" stopped without an answer", self.plan.table)))
        });
        self.stats += stats;
        let body = match answer {
            Ok(body) => body,
            // The row went away since the scan read it: like a row deleted concurrently, it is
            // not counted.
            Err(e) if op != Operation::Insert && is_gone(&e) => {
                transaction::answered(false);
                return std::ptr::null_mut();
            }
            Err(e) => {
                transaction::answered(false);
                self.failed = true;
                raise(errors::write_error(e, &self.plan.table, op, &self.applied))
            }
        };
        transaction::answered(true);
        let answer: Map<String, Value> = match op {
            Operation::Delete => Map::new(),
            _ => serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default(),
        };
        let key = self.applied.column;
        let described = answer.get(key).and_then(Value::as_str).map(str::to_string).or_else(|| row.key(key).map(str::to_string));
        self.applied.push(described.unwrap_or_else(|| "(no name)".into()));
        if !self.plan.returning {
            return slot;
        }
        match op {
            Operation::Delete => self.store_scanned(slot, plan_slot),
            _ => PgMemoryContexts::For(self.row_cxt).switch_to(|_| self.store_answer(slot, &answer, &row)),
        }
        slot
    }

    /// Fills `slot` with the object the API answered (RETURNING of INSERT and UPDATE). Columns
    /// taken from the request (clean_room_name, deployment_name) show the values sent.
    unsafe fn store_answer(&mut self, slot: *mut pg_sys::TupleTableSlot, answer: &Map<String, Value>, row: &RowValues) {
        let (values, nulls) = emptied(slot);
        let deployment = row.deployment.clone().or_else(|| self.server.endpoint.deployment_name.clone());
        for (column, writer) in self.columns.iter().zip(self.writers.iter_mut()) {
            let raw: Option<String> = match (&column.path, column.def.map(|d| d.source)) {
                (Some(path), _) => lookup(answer, path),
                (None, Some(Source::Field(field))) => lookup(answer, field),
                (None, Some(Source::Request)) if self.resource.workspace_column() == Some(column.name.as_str()) => deployment.as_deref().map(json_string),
                (None, Some(Source::Request)) => row.key(&column.name).map(json_string).or_else(|| lookup(answer, &column.name)),
                (None, None) => None,
            };
            let cell = convert(raw.as_deref(), writer.target).map_err(|e| writer.conversion_error(&self.plan.table, e)).or_raise();
            if let Some(datum) = writer.datum(cell, &self.plan.table) {
                values[writer.index] = datum;
                nulls[writer.index] = false;
            }
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }

    /// Fills `slot` with the row the scan read (RETURNING of DELETE).
    unsafe fn store_scanned(&self, slot: *mut pg_sys::TupleTableSlot, plan_slot: *mut pg_sys::TupleTableSlot) {
        let scanned = slot_values(plan_slot);
        let (values, nulls) = emptied(slot);
        for column in &self.columns {
            if let Some(datum) = column.identity.and_then(|attno| scanned[attno as usize - 1]) {
                values[column.index] = datum;
                nulls[column.index] = false;
            }
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }
}

/// The API's "no such object" (the row, or its clean room): not a 404 from a wrong URL.
fn is_gone(e: &crate::client::error::ApiError) -> bool {
    matches!(e, crate::client::error::ApiError::Status { status: 404, error_code: Some(code), .. } if code == "RESOURCE_DOES_NOT_EXIST")
}

fn json_string(v: &str) -> String {
    Value::from(v).to_string()
}

/// The JSON text at a dotted `path` of an object.
fn lookup(object: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let first = object.get(parts.next()?)?;
    parts.try_fold(first, |v, key| v.get(key)).filter(|v| !v.is_null()).map(Value::to_string)
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
