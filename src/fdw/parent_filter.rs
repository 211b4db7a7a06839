//! Conditions checked on each parent item before its listings are made. A scan that lists
//! every clean room's runs knows each room's `clean_room_name` (and `deployment_name`) before
//! asking for its runs: the conditions of the query that use only those columns
//! (`clean_room_name LIKE 'acme%'`, `<> 'x'`, a default partition's bound) are evaluated on a
//! row holding just those values, and a room they rule out is never requested. Postgres still
//! checks every condition on every row, so this only saves requests; it cannot change a result.

use super::plan_data::ScanPlan;
use super::scan::echoed;
use super::OrRaise;
use crate::client::source::ParentFilter;
use crate::fdw::datum::ColumnWriter;
use crate::resources::{ColumnSource, Resource};
use pgrx::prelude::*;
use pgrx::{PgList, PgMemoryContexts};

/// The filter for a scan of `resource` whose plan node is `node`, or `None` when the resource
/// has no parent or no condition uses only the columns the parent gives.
///
/// # Safety
/// `node` must be the foreign scan being begun, in the executor's query memory context; the
/// filter must be called only while that scan runs (it evaluates the plan's expressions).
pub unsafe fn for_scan(node: *mut pg_sys::ForeignScanState, plan: &ScanPlan, resource: &'static Resource) -> Option<ParentFilter> {
    let (given, chosen) = conditions(node, plan, resource)?;
    let relation = (*node).ss.ss_currentRelation;
    let attrs = super::compat::attributes((*relation).rd_att);
    let state = pg_sys::ExecInitQual(chosen.into_pg(), node as *mut pg_sys::PlanState);
    filter(node, plan, given, &attrs, state)
}

/// The conditions of the scan's plan that use only the columns the parent gives (with those
/// columns by attnum), for the filter and for EXPLAIN; `None` when there are none.
///
/// The parent-given columns a condition may use: attribute number and the parent's field.
pub type ParentColumns = Vec<(i16, &'static str)>;

/// # Safety
/// `node` must be a foreign scan that has been begun (its relation is open).
pub unsafe fn conditions(
    node: *mut pg_sys::ForeignScanState,
    plan: &ScanPlan,
    resource: &'static Resource,
) -> Option<(ParentColumns, PgList<pg_sys::Expr>)> {
    let parent = resource.parent.as_ref()?;
    let fsplan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let relation = (*node).ss.ss_currentRelation;
    let relid = (*fsplan).scan.scanrelid;
    let attrs = super::compat::attributes((*relation).rd_att);
    // The table's columns that the parent gives, by attnum: those of type text only, whose
    // values never fail to convert (a varchar(8) or a domain could, for a room with no rows).
    let given: Vec<(i16, &'static str)> = parent
        .columns
        .iter()
        .filter_map(|(_, to)| plan.columns.iter().find(|c| c.source == ColumnSource::Echo && c.name == *to).map(|c| (c.attnum, *to)))
        .filter(|(attnum, _)| attrs[*attnum as usize - 1].atttypid == pg_sys::TEXTOID)
        .collect();
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let mut chosen = PgList::<pg_sys::Expr>::new();
    for qual in PgList::<pg_sys::Expr>::from_pg((*fsplan).scan.plan.qual).iter_ptr() {
        let mut used: *mut pg_sys::Bitmapset = std::ptr::null_mut();
        pg_sys::pull_varattnos(qual as *mut pg_sys::Node, relid, &mut used);
        let mut uses_any = false;
        let mut only_given = true;
        let mut member = -1;
        loop {
            member = pg_sys::bms_next_member(used, member);
            if member < 0 {
                break;
            }
            let attnum = (member + offset) as i16;
            uses_any = true;
            only_given &= given.iter().any(|(a, _)| *a == attnum);
        }
        // A subquery would be evaluated a second time, and maybe differently (LIMIT, random()).
        let node = qual as *mut pg_sys::Node;
        if uses_any && only_given && !pg_sys::contain_volatile_functions(node) && !pg_sys::contain_subplans(node) {
            chosen.push(qual);
        }
    }
    (!chosen.is_empty()).then_some((given, chosen))
}

unsafe fn filter(
    node: *mut pg_sys::ForeignScanState,
    plan: &ScanPlan,
    given: Vec<(i16, &'static str)>,
    attrs: &[pg_sys::FormData_pg_attribute],
    state: *mut pg_sys::ExprState,
) -> Option<ParentFilter> {
    let relation = (*node).ss.ss_currentRelation;
    // A descriptor of our own (not reference-counted), so the slot pins nothing.
    let desc = pg_sys::CreateTupleDescCopy((*relation).rd_att);
    let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsVirtual);
    let writers: Vec<(ColumnWriter, &'static str)> = given
        .iter()
        .map(|&(attnum, name)| {
            let attr = &attrs[attnum as usize - 1];
            (ColumnWriter::new(attnum as usize - 1, name.to_string(), &plan.table, attr.atttypid, attr.atttypmod), name)
        })
        .collect();
    let memory = super::small_memory_context(c"databricks_fdw parent filter");
    let econtext = (*node).ss.ps.ps_ExprContext;
    let table = plan.table.clone();
    let natts = (*desc).natts as usize;
    let mut writers = writers;
    Some(std::rc::Rc::new(std::cell::RefCell::new(move |values: &[(&str, Option<&str>)]| {
        // SAFETY: called on the backend thread while the scan runs (see above): the slot,
        // expression state, memory context and expression context all live as long as it.
        unsafe {
            pg_sys::MemoryContextReset(memory);
            PgMemoryContexts::For(memory).switch_to(|_| {
                pg_sys::ExecClearTuple(slot);
                let datums = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
                let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
                nulls.fill(true);
                for (writer, name) in writers.iter_mut() {
                    let value = values.iter().find(|(c, _)| c == name).and_then(|(_, v)| *v);
                    let cell = echoed(value, writer.target).map_err(|e| writer.conversion_error(&table, e)).or_raise();
                    if let Some(datum) = writer.datum(cell, &table) {
                        datums[writer.index] = datum;
                        nulls[writer.index] = false;
                    }
                }
                pg_sys::ExecStoreVirtualTuple(slot);
                let scanned = (*econtext).ecxt_scantuple;
                (*econtext).ecxt_scantuple = slot;
                let mut is_null = false;
                let result = pg_sys::ExecEvalExpr(state, econtext, &mut is_null);
                (*econtext).ecxt_scantuple = scanned;
                !is_null && result.value() != 0
            })
        }
    })))
}
