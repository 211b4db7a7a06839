//! Planning callbacks: size estimate, the scan path, and the plan with its plain data.

use super::catalog;
use super::plan_data::{PlannedColumn, PlannedParam, ScanPlan};
use super::quals::{self, PushedQual};
use super::{raise, OrRaise};
use crate::client::request::missing_required;
use crate::error::FdwError;
use crate::options::TableOptions;
use crate::resources::Resource;
use pgrx::prelude::*;
use pgrx::{PgList, PgMemoryContexts};
use pgrx::PgSqlErrorCode::*;

/// Rows one listing is expected to return, for estimates.
const ROWS_PER_LISTING: f64 = 100.0;
/// Rows assumed when the required column has no value: large, so a plan that can supply the
/// value wins.
const ROWS_UNBOUNDED: f64 = 1_000_000.0;
/// One HTTP round trip, in units of sequential page reads.
const REQUEST_COST: f64 = 100.0;
const PER_ROW_COST: f64 = 0.05;
/// The cost of a scan that would fail for lack of a required value.
const IMPOSSIBLE_COST: f64 = 1.0e10;

/// What planning learns about one foreign table in one query, kept on the RelOptInfo between
/// the planning callbacks.
struct RelPlan {
    table: String,
    options: TableOptions,
    pushed: Vec<PushedQual>,
    /// The first required request column with no value, if any.
    missing: Option<&'static str>,
    columns: Vec<PlannedColumn>,
    listings: f64,
}

#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_rel_size(_root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    let table = catalog::table(relid);
    let options = TableOptions::from_options(&table.name, &table.options).or_raise();
    let names = catalog::column_names(relid);
    check_columns(options.resource, &table.name, &names);
    let pushed = quals::pushable(baserel, options.resource, &names);
    let missing = options.resource.required_params().map(|p| p.column).find(|c| !pushed.iter().any(|q| q.column == *c));
    let columns = used_columns(baserel, &names);
    let listings: f64 = pushed.iter().map(|q| if q.list { list_length_guess(q.value) } else { 1.0 }).product();
    let rows = if missing.is_some() { ROWS_UNBOUNDED } else { ROWS_PER_LISTING * listings };
    (*baserel).rows = rows;
    (*(*baserel).reltarget).width = 64 * columns.len().max(1) as i32;
    let plan = RelPlan { table: table.name, options, pushed, missing, columns, listings };
    (*baserel).fdw_private = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(plan) as *mut std::ffi::c_void;
}

#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, _relid: pg_sys::Oid) {
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    let rows = (*baserel).rows;
    let startup = REQUEST_COST;
    let total = if plan.missing.is_some() { IMPOSSIBLE_COST } else { startup + REQUEST_COST * (plan.listings - 1.0).max(0.0) + rows * PER_ROW_COST };
    let path = pg_sys::create_foreignscan_path(
        root,
        baserel,
        std::ptr::null_mut(),
        rows,
        startup,
        total,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    pg_sys::add_path(baserel, path as *mut pg_sys::Path);
}

#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_plan(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _relid: pg_sys::Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    if let Some(column) = plan.missing {
        raise(missing_required(&plan.table, column));
    }
    let mut exprs = PgList::<pg_sys::Expr>::new();
    for q in &plan.pushed {
        exprs.push(q.value);
    }
    let data = ScanPlan {
        table: plan.table.clone(),
        resource: plan.options.resource.name.to_string(),
        page_size: plan.options.page_size,
        params: plan.pushed.iter().map(|q| PlannedParam { column: q.column.to_string(), list: q.list, shown: q.shown.clone() }).collect(),
        columns: plan.columns.clone(),
    };
    // Every condition stays for Postgres to check: pushing one down only narrows the request.
    let quals = pg_sys::extract_actual_clauses(scan_clauses, false);
    pg_sys::make_foreignscan(tlist, quals, (*baserel).relid, exprs.into_pg(), data.into_list(), std::ptr::null_mut(), std::ptr::null_mut(), outer_plan)
}

/// Every column of the table must be a column of its resource.
fn check_columns(resource: &Resource, table: &str, names: &[Option<String>]) {
    for name in names.iter().flatten() {
        if resource.column(name).is_none() {
            raise(
                FdwError::new(ERRCODE_FDW_INVALID_COLUMN_NAME, format!("column \"{name}\" of foreign table \"{table}\" is not a field of resource {}", resource.name))
                    .hint(format!("Columns of {} are: {}.", resource.name, resource.column_names().join(", "))),
            );
        }
    }
}

/// The columns the query reads: in its target list or its conditions (all, for a whole-row
/// reference).
unsafe fn used_columns(baserel: *mut pg_sys::RelOptInfo, names: &[Option<String>]) -> Vec<PlannedColumn> {
    let relid = (*baserel).relid;
    let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    pg_sys::pull_varattnos((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut attrs);
    for ri in PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr() {
        pg_sys::pull_varattnos((*ri).clause as *mut pg_sys::Node, relid, &mut attrs);
    }
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let whole_row = pg_sys::bms_is_member(-offset, attrs);
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let attnum = i as i32 + 1;
            let used = whole_row || pg_sys::bms_is_member(attnum - offset, attrs);
            match (used, name) {
                (true, Some(n)) => Some(PlannedColumn { attnum: attnum as i16, name: n.clone() }),
                _ => None,
            }
        })
        .collect()
}

/// The number of elements of a constant array, else a guess.
unsafe fn list_length_guess(expr: *mut pg_sys::Expr) -> f64 {
    let node = expr as *mut pg_sys::Node;
    if (*node).type_ == pg_sys::NodeTag::T_Const {
        let c = node as *mut pg_sys::Const;
        if !(*c).constisnull {
            let arr = pg_sys::pg_detoast_datum((*c).constvalue.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            let ndim = (*arr).ndim;
            if ndim == 1 {
                let dims = (arr as *mut u8).add(std::mem::size_of::<pg_sys::ArrayType>()) as *const i32;
                return (*dims).max(0) as f64;
            }
        }
    }
    10.0
}
