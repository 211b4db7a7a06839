//! What planning hands to execution, as plain data: serialised into one String node in the
//! ForeignScan's (or ModifyTable's) `fdw_private`, so `copyObject` copies it and a cached plan
//! can run any number of times. The values for request columns are expressions in `fdw_exprs`, evaluated at execution
//! (constants, parameters of prepared statements, subquery results).

use crate::resources::ColumnSource;
use pgrx::prelude::*;
use pgrx::PgList;
use serde::{Deserialize, Serialize};
use std::ffi::CString;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanPlan {
    /// The foreign table's name, for messages.
    pub table: String,
    pub resource: String,
    pub page_size: Option<u32>,
    /// The table's `max_listings` (else the server's, else the default).
    pub max_listings: Option<usize>,
    /// A required request column without a value is given its values by listing the
    /// resource's parent (option `list_parents`).
    pub list_parents: bool,
    /// `params[i]` gets its value(s) from `fdw_exprs[i]`.
    pub params: Vec<PlannedParam>,
    /// The columns the query reads; the others are left NULL.
    pub columns: Vec<PlannedColumn>,
    /// The top-level fields each item is asked for (`ColumnSource::Field` numbers them).
    pub fields: Vec<String>,
    /// The scan may be rescanned with request values it has seen before (the inner side of a
    /// nested loop): keep finished listings for the rest of the execution.
    pub cache_listings: bool,
    /// A LIMIT may stop the query early: fetch pages only as rows are consumed.
    pub limited: bool,
    /// The query has a condition on deployment_name that is not among `params` (a LIKE, a
    /// join the planner did not turn into a parameter): every deployment must be read.
    #[serde(default)]
    pub deployment_unbound: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedParam {
    pub column: String,
    /// The expression is an array (`IN (...)`, `= ANY(...)`): one listing per element.
    pub list: bool,
    /// How EXPLAIN shows the condition.
    pub shown: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedColumn {
    pub attnum: i16,
    pub name: String,
    /// Where its value comes from (a field, a `path` into one, or the listing's request).
    pub source: ColumnSource,
}

/// What planning hands to the execution of an INSERT, UPDATE or DELETE on one foreign table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModifyPlan {
    pub table: String,
    pub resource: String,
    pub op: crate::resources::Operation,
    /// The columns an UPDATE sets (by name, as the body names them).
    pub set_columns: Vec<String>,
    /// The statement has RETURNING: rows are made from what the API answered.
    pub returning: bool,
    /// An UPDATE or DELETE whose join may reach one row several times (UPDATE ... FROM):
    /// each row is changed once, as Postgres does.
    #[serde(default)]
    pub may_repeat: bool,
}

/// Plan data of either kind, in and out of the one String node planning stores.
pub trait PlanData: Serialize + serde::de::DeserializeOwned {
    fn to_list(&self) -> *mut pg_sys::List {
        let json = CString::new(serde_json::to_string(self).expect("plan data always serialises")).expect("JSON has no NUL byte");
        let mut list = PgList::<pg_sys::Node>::new();
        // SAFETY: pstrdup copies the text into the current (planner) memory context, and
        // makeString wraps it in a String node that copyObject knows how to copy.
        unsafe { list.push(pg_sys::makeString(pg_sys::pstrdup(json.as_ptr())) as *mut pg_sys::Node) };
        list.into_pg()
    }

    /// # Safety
    /// `list` must be plan data of this kind made by this wrapper.
    unsafe fn from_list(list: *mut pg_sys::List) -> Self {
        let list = PgList::<pg_sys::Node>::from_pg(list);
        let node = list.get_ptr(0).expect("databricks_fdw plan data is present");
        let text = super::compat::string_node_text(node).to_string_lossy();
        serde_json::from_str(&text).expect("databricks_fdw plan data is valid")
    }
}

impl PlanData for ScanPlan {}
impl PlanData for ModifyPlan {}
