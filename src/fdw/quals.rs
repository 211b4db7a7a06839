//! Which conditions become part of the request: `column = value`, `column IN (...)` /
//! `= ANY(array)` and ORs of equalities on one column, on a resource's request columns, where the value side does not depend on this
//! table's own columns and has no volatile functions. The value may be a constant, a parameter,
//! a subquery's result, or (in a parameterized path) a column of another table in a join.
//!
//! Only what the API compares exactly as Postgres would is pushed (the model is postgres_fdw's
//! shippability rules): the built-in `text = text` operator under a deterministic collation,
//! which compares bytes, as the API compares names. `COLLATE` a case-insensitive collation,
//! citext, char(n) or any other operator spelled `=` stays a local filter and the API is asked
//! for everything. Every condition also stays in the plan for Postgres to check.

use crate::resources::Resource;
use pgrx::prelude::*;
use pgrx::PgList;

pub struct PushedQual {
    pub column: &'static str,
    pub list: bool,
    pub value: *mut pg_sys::Expr,
    /// How EXPLAIN shows it; empty when the value can only be deparsed at EXPLAIN time.
    pub shown: String,
}

/// The bare clauses of a List of RestrictInfo.
///
/// # Safety
/// `list` must be NIL or a List of RestrictInfo.
pub unsafe fn clauses(list: *mut pg_sys::List) -> Vec<*mut pg_sys::Node> {
    PgList::<pg_sys::RestrictInfo>::from_pg(list)
        .iter_ptr()
        .filter(|ri| (**ri).type_ == pg_sys::NodeTag::T_RestrictInfo)
        .map(|ri| (*ri).clause as *mut pg_sys::Node)
        .collect()
}

/// Every usable condition on a request column of `resource`, among `clauses`. Several on one
/// column are all kept: the request asks only for values that every one of them allows.
///
/// # Safety
/// `clauses` must be expressions of the planner's query `root`, and `relid` the range table
/// index of a foreign table whose live column names (by attnum) are `names`.
pub unsafe fn pushable(
    root: *mut pg_sys::PlannerInfo,
    relid: u32,
    clauses: &[*mut pg_sys::Node],
    resource: &'static Resource,
    names: &[Option<String>],
) -> Vec<PushedQual> {
    let mut found: Vec<PushedQual> = Vec::new();
    for &clause in clauses {
        let Some((attnum, list, value)) = column_condition(root, clause, relid) else { continue };
        let Some(Some(name)) = names.get(attnum as usize - 1) else { continue };
        let Some(param) = resource.param(name) else { continue };
        let shown = match show_value(value, list) {
            v if v.is_empty() => v,
            v => format!("{} {} {v}", param.column, if list { "= ANY" } else { "=" }),
        };
        found.push(PushedQual { column: param.column, list, value, shown });
    }
    found
}

/// `(attnum, is_list, value)` for `Var = value`, `value = Var` or `Var = ANY(value)` on a column
/// of relation `relid`, compared with text equality under a deterministic collation.
unsafe fn column_condition(
    root: *mut pg_sys::PlannerInfo,
    clause: *mut pg_sys::Node,
    relid: u32,
) -> Option<(i16, bool, *mut pg_sys::Expr)> {
    match (*clause).type_ {
        pg_sys::NodeTag::T_OpExpr => {
            let op = clause as *mut pg_sys::OpExpr;
            let args = PgList::<pg_sys::Node>::from_pg((*op).args);
            if args.len() != 2 || !compares_exactly((*op).opno, (*op).inputcollid) {
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
            if !(*op).useOr || args.len() != 2 || !compares_exactly((*op).opno, (*op).inputcollid) {
                return None;
            }
            let (a, b) = (args.get_ptr(0)?, args.get_ptr(1)?);
            match (column_of(a, relid), is_value(root, b, relid)) {
                (Some(attnum), true) => Some((attnum, true, b as *mut pg_sys::Expr)),
                _ => None,
            }
        }
        // `col = 'a' OR col = 'b'` is `col = ANY(ARRAY['a', 'b'])`.
        pg_sys::NodeTag::T_BoolExpr if (*(clause as *mut pg_sys::BoolExpr)).boolop == pg_sys::BoolExprType::OR_EXPR => {
            let arms = PgList::<pg_sys::Node>::from_pg((*(clause as *mut pg_sys::BoolExpr)).args);
            let mut column = None;
            let mut elements = PgList::<pg_sys::Expr>::new();
            for arm in arms.iter_ptr() {
                let (attnum, false, value) = column_condition(root, arm, relid)? else { return None };
                if column.replace(attnum).is_some_and(|c| c != attnum) {
                    return None;
                }
                elements.push(as_text(value));
            }
            Some((column?, true, text_array(elements.into_pg())))
        }
        _ => None,
    }
}

/// `value` as a `text` expression (a varchar one is binary-compatible: a relabel suffices).
unsafe fn as_text(value: *mut pg_sys::Expr) -> *mut pg_sys::Expr {
    if pg_sys::exprType(value as *mut pg_sys::Node) == pg_sys::TEXTOID {
        return value;
    }
    let collation = pg_sys::exprCollation(value as *mut pg_sys::Node);
    pg_sys::makeRelabelType(value, pg_sys::TEXTOID, -1, collation, pg_sys::CoercionForm::COERCE_IMPLICIT_CAST) as *mut pg_sys::Expr
}

/// `ARRAY[elements]` of text.
unsafe fn text_array(elements: *mut pg_sys::List) -> *mut pg_sys::Expr {
    let mut array = pgrx::PgBox::<pg_sys::ArrayExpr>::alloc_node(pg_sys::NodeTag::T_ArrayExpr);
    array.array_typeid = pg_sys::TEXTARRAYOID;
    array.array_collid = pg_sys::DEFAULT_COLLATION_OID;
    array.element_typeid = pg_sys::TEXTOID;
    array.elements = elements;
    array.multidims = false;
    array.location = -1;
    array.into_pg() as *mut pg_sys::Expr
}

/// The built-in `text = text` (which varchar and domains over text use too) under a
/// deterministic collation: equal exactly when the bytes are equal.
unsafe fn compares_exactly(opno: pg_sys::Oid, collation: pg_sys::Oid) -> bool {
    opno == pg_sys::Oid::from(pg_sys::TextEqualOperator)
        && collation != pg_sys::InvalidOid
        && pg_sys::get_collation_isdeterministic(collation)
}

/// `node` without the binary-compatible casts (RelabelType) around it.
unsafe fn strip_relabel(mut node: *mut pg_sys::Node) -> *mut pg_sys::Node {
    while (*node).type_ == pg_sys::NodeTag::T_RelabelType {
        node = (*(node as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
    }
    node
}

/// The attnum of a plain column of `relid` (under binary-compatible casts such as text to
/// varchar).
pub unsafe fn column_of(node: *mut pg_sys::Node, relid: u32) -> Option<i16> {
    let node = strip_relabel(node);
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
    let node = strip_relabel(expr as *mut pg_sys::Node);
    match (*node).type_ {
        pg_sys::NodeTag::T_Const => {
            let c = node as *mut pg_sys::Const;
            if (*c).constisnull {
                return "NULL".into();
            }
            let text = crate::fdw::datum::output_text((*c).constvalue, (*c).consttype);
            let quoted = super::quote::literal(&text);
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
