//! Which conditions become part of the request: `column = value` and `column IN (...)` /
//! `= ANY(array)` on a resource's request columns, where the value side does not depend on this
//! table's own columns and has no volatile functions. The value may be a constant, a parameter,
//! a subquery's result, or (in a parameterized path) a column of another table in a join. Every
//! condition also stays in the plan for Postgres to check, so pushing one down never changes a
//! result.

use crate::resources::Resource;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CStr;

pub struct PushedQual {
    pub column: &'static str,
    pub list: bool,
    pub value: *mut pg_sys::Expr,
    /// How EXPLAIN shows it; empty when the value can only be deparsed at EXPLAIN time.
    pub shown: String,
}

/// The first usable condition for each request column of `resource`, among `clauses`.
///
/// # Safety
/// `clauses` must be a List of RestrictInfo of the planner's query `root`, and `relid` the range
/// table index of a foreign table whose live column names (by attnum) are `names`.
pub unsafe fn pushable(
    root: *mut pg_sys::PlannerInfo,
    relid: u32,
    clauses: *mut pg_sys::List,
    resource: &'static Resource,
    names: &[Option<String>],
) -> Vec<PushedQual> {
    let mut found: Vec<PushedQual> = Vec::new();
    for ri in PgList::<pg_sys::RestrictInfo>::from_pg(clauses).iter_ptr() {
        if !(*ri).type_.eq(&pg_sys::NodeTag::T_RestrictInfo) {
            continue;
        }
        let Some((attnum, list, value)) = column_condition(root, (*ri).clause as *mut pg_sys::Node, relid) else { continue };
        let Some(Some(name)) = names.get(attnum as usize - 1) else { continue };
        let Some(param) = resource.param(name) else { continue };
        if found.iter().any(|q| q.column == param.column) {
            continue;
        }
        let shown = match show_value(value, list) {
            v if v.is_empty() => v,
            v => format!("{} {} {v}", param.column, if list { "= ANY" } else { "=" }),
        };
        found.push(PushedQual { column: param.column, list, value, shown });
    }
    found
}

/// `(attnum, is_list, value)` for `Var = value`, `value = Var` or `Var = ANY(value)` on a column
/// of relation `relid`.
unsafe fn column_condition(root: *mut pg_sys::PlannerInfo, clause: *mut pg_sys::Node, relid: u32) -> Option<(i16, bool, *mut pg_sys::Expr)> {
    match (*clause).type_ {
        pg_sys::NodeTag::T_OpExpr => {
            let op = clause as *mut pg_sys::OpExpr;
            let args = PgList::<pg_sys::Node>::from_pg((*op).args);
            if args.len() != 2 || !is_equality((*op).opno) {
                return None;
            }
            let (a, b) = (args.get_ptr(0)?, args.get_ptr(1)?);
            if let (Some(attnum), true) = (column_of(a, relid), is_value(root, b, relid)) {
                return Some((attnum, false, b as *mut pg_sys::Expr));
            }
            if let (Some(attnum), true) = (column_of(b, relid), is_value(root, a, relid)) {
                return Some((attnum, false, a as *mut pg_sys::Expr));
            }
            None
        }
        pg_sys::NodeTag::T_ScalarArrayOpExpr => {
            let op = clause as *mut pg_sys::ScalarArrayOpExpr;
            let args = PgList::<pg_sys::Node>::from_pg((*op).args);
            if !(*op).useOr || args.len() != 2 || !is_equality((*op).opno) {
                return None;
            }
            let (a, b) = (args.get_ptr(0)?, args.get_ptr(1)?);
            match (column_of(a, relid), is_value(root, b, relid)) {
                (Some(attnum), true) => Some((attnum, true, b as *mut pg_sys::Expr)),
                _ => None,
            }
        }
        _ => None,
    }
}

unsafe fn is_equality(opno: pg_sys::Oid) -> bool {
    let name = pg_sys::get_opname(opno);
    !name.is_null() && CStr::from_ptr(name).to_bytes() == b"="
}

/// The attnum of a plain column of `relid` (under binary-compatible casts such as text to
/// varchar).
pub unsafe fn column_of(mut node: *mut pg_sys::Node, relid: u32) -> Option<i16> {
    while (*node).type_ == pg_sys::NodeTag::T_RelabelType {
        node = (*(node as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
    }
    if (*node).type_ != pg_sys::NodeTag::T_Var {
        return None;
    }
    let var = node as *mut pg_sys::Var;
    ((*var).varno as u32 == relid && (*var).varlevelsup == 0 && (*var).varattno > 0).then_some((*var).varattno)
}

/// A value known before the scan (re)starts: none of this table's columns, nothing volatile.
unsafe fn is_value(root: *mut pg_sys::PlannerInfo, node: *mut pg_sys::Node, relid: u32) -> bool {
    !pg_sys::bms_is_member(relid as i32, pg_sys::pull_varnos(root, node)) && !pg_sys::contain_volatile_functions(node)
}

/// How EXPLAIN shows a value: a constant as a literal, a parameter as `$n`.
unsafe fn show_value(expr: *mut pg_sys::Expr, list: bool) -> String {
    let mut node = expr as *mut pg_sys::Node;
    while (*node).type_ == pg_sys::NodeTag::T_RelabelType {
        node = (*(node as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_Const => {
            let c = node as *mut pg_sys::Const;
            if (*c).constisnull {
                return "NULL".into();
            }
            let mut out_fn = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo((*c).consttype, &mut out_fn, &mut varlena);
            let text = CStr::from_ptr(pg_sys::OidOutputFunctionCall(out_fn, (*c).constvalue)).to_string_lossy().into_owned();
            let quoted = format!("'{}'", text.replace('\'', "''"));
            if list {
                format!("({quoted})")
            } else {
                quoted
            }
        }
        pg_sys::NodeTag::T_Param => {
            let p = node as *mut pg_sys::Param;
            if (*p).paramkind == pg_sys::ParamKind::PARAM_EXTERN {
                format!("${}", (*p).paramid)
            } else {
                String::new()
            }
        }
        // Deparsed at EXPLAIN time, where the outer plan is known.
        _ => String::new(),
    }
}
