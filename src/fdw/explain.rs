//! EXPLAIN output: the request template and the pushed conditions; with ANALYZE, what the scan
//! did. Never an internal dump, never a credential.

use super::plan_data::{PlanData, ScanPlan};
use super::scan::ScanState;
use crate::resources;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::{CStr, CString};

#[pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    let fsplan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let plan = ScanPlan::from_list((*fsplan).fdw_private);
    if let Some(resource) = resources::find(&plan.resource) {
        let given: Vec<&'static str> = plan.params.iter().filter_map(|p| resource.param(&p.column)).map(|p| p.column).collect();
        let chain = resource.listings(&given, plan.list_parents);
        let line = match &chain {
            // The parents' listings first, then one listing of the table's resource per item.
            Some(chain) => chain
                .iter()
                .enumerate()
                .map(|(i, (r, g))| if i == 0 { r.request_line(g) } else { format!("{} for each", r.request_line(g)) })
                .collect::<Vec<_>>()
                .join(", then "),
            None => resource.request_line(&given),
        };
        text(es, "Databricks", &line);
        if let (Some(2..), Some(parent)) = (chain.as_ref().map(Vec::len), &resource.parent) {
            parent_filter_line(node, es, &plan, resource, parent.resource.name);
        }
    }
    if !plan.params.is_empty() {
        let exprs = PgList::<pg_sys::Node>::from_pg((*fsplan).fdw_exprs);
        let shown: Vec<String> = plan
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if !p.shown.is_empty() {
                    return p.shown.clone();
                }
                let op = if p.list { "= ANY" } else { "=" };
                match exprs.get_ptr(i) {
                    // The Filter line was just deparsed with this plan node's context (every
                    // pushed condition is also in the Filter), so outer references resolve.
                    Some(expr) if !(*fsplan).scan.plan.qual.is_null() => {
                        let text =
                            CStr::from_ptr(pg_sys::deparse_expression(expr, (*es).deparse_cxt, true, false)).to_string_lossy().into_owned();
                        format!("{} {op} {text}", p.column)
                    }
                    _ => format!("{} {op} (value from the outer query)", p.column),
                }
            })
            .collect();
        text(es, "Pushed", &shown.join(", "));
    }
    if let Some(size) = plan.page_size {
        integer(es, "Page Size", size as i64);
    }
    if (*es).analyze {
        if let Some(state) = ((*node).fdw_state as *const ScanState).as_ref() {
            let s = state.stats();
            integer(es, "Requests", s.requests as i64);
            integer(es, "Pages", s.pages as i64);
            integer(es, "Retries", s.retries as i64);
            integer(es, "Bytes Received", s.bytes as i64);
            if state.caches_responses() {
                integer(es, "Response Cache Hits", s.response_cache_hits as i64);
            }
            if state.plan.cache_listings {
                integer(es, "Listings From Cache", s.listing_cache_hits as i64);
            }
            if let (Some(parent), true) = (resources::find(&plan.resource).and_then(|r| r.parent.as_ref()), s.parents.listed > 0) {
                let p = s.parents;
                let mut why = Vec::new();
                match (&parent.skip, p.skipped) {
                    (_, 0) => {}
                    (Some(rule), n) => why.push(format!("{} {}: {n}", rule.field, rule.values.join(" or "))),
                    (None, n) => why.push(format!("nothing to list: {n}")),
                }
                if p.unusable > 0 {
                    why.push(format!("no usable value, warned: {}", p.unusable));
                }
                if p.filtered > 0 {
                    why.push(format!("ruled out by the query's conditions: {}", p.filtered));
                }
                let line = match why.is_empty() {
                    true => format!("0 of {} {}", p.listed, parent.resource.name),
                    false => {
                        format!("{} of {} {} ({})", p.skipped + p.unusable + p.filtered, p.listed, parent.resource.name, why.join(", "))
                    }
                };
                text(es, "Skipped", &line);
            }
        }
    }
}

/// The conditions checked on each parent item before its listings are made
/// (`fdw/parent_filter.rs`), as Postgres deparses them.
unsafe fn parent_filter_line(
    node: *mut pg_sys::ForeignScanState,
    es: *mut pg_sys::ExplainState,
    plan: &ScanPlan,
    resource: &'static resources::Resource,
    parent: &str,
) {
    let Some((_, conditions)) = super::parent_filter::conditions(node, plan, resource) else { return };
    let shown: Vec<String> = conditions
        .iter_ptr()
        .map(|expr| {
            CStr::from_ptr(pg_sys::deparse_expression(expr as *mut pg_sys::Node, (*es).deparse_cxt, false, false))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    text(es, "Parent Filter", &format!("{} on each of {parent}", shown.join(" AND ")));
}

pub(super) unsafe fn text(es: *mut pg_sys::ExplainState, label: &str, value: &str) {
    let label = CString::new(label).unwrap_or_default();
    let value = super::c_text(value);
    pg_sys::ExplainPropertyText(label.as_ptr(), value.as_ptr(), es);
}

pub(super) unsafe fn integer(es: *mut pg_sys::ExplainState, label: &str, value: i64) {
    let label = CString::new(label).unwrap_or_default();
    pg_sys::ExplainPropertyInteger(label.as_ptr(), std::ptr::null(), value, es);
}
