//! EXPLAIN output: the request template and the pushed conditions; with ANALYZE, what the scan
//! did. Never an internal dump, never a credential.

use super::plan_data::ScanPlan;
use super::scan::ScanState;
use crate::resources;
use pgrx::prelude::*;
use std::ffi::CString;

#[pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    let fsplan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let plan = ScanPlan::from_list((*fsplan).fdw_private);
    if let Some(resource) = resources::find(&plan.resource) {
        text(es, "Databricks", &format!("GET {}", resource.path));
    }
    if !plan.params.is_empty() {
        let shown: Vec<&str> = plan.params.iter().map(|p| p.shown.as_str()).collect();
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
            integer(es, "Bytes Received", s.bytes as i64);
        }
    }
}

unsafe fn text(es: *mut pg_sys::ExplainState, label: &str, value: &str) {
    let label = CString::new(label).unwrap_or_default();
    let value = CString::new(value.replace('\0', "")).unwrap_or_default();
    pg_sys::ExplainPropertyText(label.as_ptr(), value.as_ptr(), es);
}

unsafe fn integer(es: *mut pg_sys::ExplainState, label: &str, value: i64) {
    let label = CString::new(label).unwrap_or_default();
    pg_sys::ExplainPropertyInteger(label.as_ptr(), std::ptr::null(), value, es);
}
