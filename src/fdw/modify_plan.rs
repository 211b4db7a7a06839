//! Planning INSERT, UPDATE and DELETE on the writable resources (see `Resource::writes`): which
//! tables take writes, the row identity columns an UPDATE or DELETE carries from the scan (the
//! keys that name the row in the API's paths), and which columns an UPDATE may set.

use super::catalog;
use super::compat;
use super::plan_data::{ModifyPlan, PlanData};
use super::write_errors;
use super::{raise, OrRaise};
use crate::error::FdwError;
use crate::options::{self, TableOptions};
use crate::resources::{Operation, Resource, Writes};
use pgrx::prelude::*;
use pgrx::PgList;
use pgrx::PgSqlErrorCode::*;
use std::ffi::CString;

/// The name of the row identity column that carries `column` from the scan to the change.
pub(super) fn identity_name(column: &str) -> CString {
    CString::new(format!("databricks_fdw {column}")).unwrap_or_default()
}

/// The columns an UPDATE or DELETE needs from the scan: the keys, the workspace column when the
/// table has one, and for a DELETE with RETURNING every column (the API answers a DELETE with
/// nothing, so the row returned is the row the scan read).
pub(super) fn identity_columns(
    resource: &Resource,
    writes: &Writes,
    names: &[Option<String>],
    op: Operation,
    returning: bool,
) -> Vec<String> {
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
pub(super) unsafe fn writable(table: &catalog::TableInfo, op: Operation) -> Result<(&'static Resource, &'static Writes), FdwError> {
    let resource = TableOptions::from_options(&table.name, &table.options)?.resource;
    let Some(writes) = resource.writes.as_ref() else { return Err(write_errors::read_only(&table.name, resource, op)) };
    if !options::updatable(&table.options, &catalog::server(table.server_id).options) {
        return Err(write_errors::not_updatable(&table.name, op));
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
            raise(write_errors::missing_key(&table.name, &column, op));
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
        raise(FdwError::new(
            ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("foreign table \"{}\" takes only INSERT, UPDATE and DELETE", table.name),
        ));
    };
    let (resource, writes) = writable(&table, op).or_raise();
    if (*plan).onConflictAction != pg_sys::OnConflictAction::ONCONFLICT_NONE {
        raise(FdwError::new(
            ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("INSERT ... ON CONFLICT is not supported on foreign table \"{}\"", table.name),
        ));
    }
    let names = catalog::column_names(relid);
    let paths = catalog::column_paths(relid, &names);
    let mut set_columns = Vec::new();
    if op == Operation::Update {
        for attnum in int_list(nth_list((*plan).updateColnosLists, subplan_index)) {
            let Some(Some(name)) = names.get(attnum as usize - 1) else { continue };
            let own_field = paths[attnum as usize - 1].as_ref().is_none_or(|p| p == name);
            settable(&table.name, resource, writes, name, own_field).or_raise();
            set_columns.push(name.clone());
        }
    }
    let returning = !nth_list((*plan).returningLists, subplan_index).is_null();
    // UPDATE ... FROM and DELETE ... USING may reach a row once per match of the join; a lone
    // table (or a semi-join from IN (SELECT ...)) reaches each row once.
    let jointree = (*(*root).parse).jointree;
    let from = PgList::<pg_sys::Node>::from_pg((*jointree).fromlist);
    let joined = from.len() > 1 || from.get_ptr(0).is_some_and(|n| (*n).type_ == pg_sys::NodeTag::T_JoinExpr);
    let may_repeat = op != Operation::Insert && joined;
    ModifyPlan { table: table.name, resource: resource.name.to_string(), op, set_columns, returning, may_repeat }.to_list()
}

/// Whether an UPDATE may change column `name` (from its SET list, or from a BEFORE UPDATE
/// trigger): not a column that identifies the row or its workspace, not one the service sets,
/// not one that a `path` option maps elsewhere (`own_field` false).
pub(super) fn settable(table: &str, resource: &Resource, writes: &Writes, name: &str, own_field: bool) -> Result<(), FdwError> {
    if writes.keys.contains(&name) || resource.workspace_column() == Some(name) {
        return Err(write_errors::key_change(table, name));
    }
    if !own_field || !writes.updatable.contains(&name) {
        return Err(write_errors::set_by_service(table, name, Operation::Update, writes.updatable));
    }
    Ok(())
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
    PgList::<i32>::from_pg(list).iter_int().collect()
}
