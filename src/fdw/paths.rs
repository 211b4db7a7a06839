//! Planning callbacks: size estimate, the scan path, and the plan with its plain data.

use super::catalog;
use super::compat;
use super::errors::missing_required;
use super::plan_data::{PlanData, PlannedColumn, PlannedParam, ScanPlan};
use super::quals::{self, PushedQual};
use super::{raise, OrRaise};
use crate::client::source::remembered_size;
use crate::options::TableOptions;
use crate::resources::{Resource, ScanColumns};
use pgrx::prelude::*;
use pgrx::{PgList, PgMemoryContexts};

/// Rows assumed when the required column has no value: large, so a plan that can supply the
/// value wins.
const ROWS_UNBOUNDED: f64 = 1_000_000.0;
/// One HTTP round trip, in units of sequential page reads.
const REQUEST_COST: f64 = 25.0;
const PER_ROW_COST: f64 = 0.05;
/// The cost of a scan that would fail for lack of a required value: more than any path
/// Postgres disables (`disable_cost`, 1e10, up to 17), so that a disabled nested loop that can
/// give the value still wins over it.
const IMPOSSIBLE_COST: f64 = 1.0e20;
/// Listings a fan-out is guessed to make before this backend has read its parent listing whole
/// (then the count it gave is used): the documented limit of clean rooms per metastore (100 on
/// AWS).
const PARENT_ITEMS: f64 = 100.0;
/// The cost of a listing of every parent item when a join could give the scan its values
/// instead: above any nested loop a real query makes (ten million outer rows), so the
/// parameterized scan wins whatever the statistics of the other side (a temporary table
/// never analyzed, say); below `disable_cost` (1e10), so with `enable_nestloop = off` the
/// listing and a hash join still run.
const FAN_OUT_BESIDE_JOIN: f64 = 1.0e9;

/// What planning learns about one foreign table in one query, kept on the RelOptInfo between
/// the planning callbacks.
struct RelPlan {
    table: String,
    options: TableOptions,
    /// Live column names by attnum (index 0 is attnum 1).
    names: Vec<Option<String>>,
    columns: Vec<PlannedColumn>,
    /// The top-level fields the scan asks for.
    fields: Vec<String>,
    /// The partition constraint, when the table is a partition: Postgres assumes every row of
    /// a partition meets it, so the scan checks it (and pushes what it can of it).
    bound: Vec<*mut pg_sys::Node>,
    /// Required columns without a value are given values by listing the parents.
    list_parents: bool,
    /// The server reads deployments only by name (a `{deployment_name}` URL without
    /// allowed_deployments): a condition on deployment_name that is not sent cannot be met.
    deployments_by_name_only: bool,
    /// The query compares deployment_name with something (in its WHERE clause or a join).
    deployment_mentioned: bool,
    /// Items of the parent listing seen when this backend last read it whole.
    parent_items: Option<f64>,
}

impl RelPlan {
    /// The first required request column that `pushed` gives no value for, when no parent
    /// listing can give it either.
    fn missing(&self, pushed: &[PushedQual]) -> Option<&'static str> {
        if self.levels(pushed).is_some() {
            return None;
        }
        self.options.resource.required_params().map(|p| p.column).find(|c| !pushed.iter().any(|q| q.column == *c))
    }

    /// A condition on deployment_name is in the query but not among `pushed`: every deployment
    /// must then be read.
    fn deployment_unbound(&self, pushed: &[PushedQual]) -> bool {
        let column = self.options.resource.workspace_column();
        self.deployment_mentioned && column.is_some_and(|c| !pushed.iter().any(|q| q.column == c))
    }

    /// How many parent listings come before the table's own (0: none), or `None` when the
    /// scan cannot be made.
    fn levels(&self, pushed: &[PushedQual]) -> Option<usize> {
        if self.deployments_by_name_only && self.deployment_unbound(pushed) {
            return None;
        }
        let mut given: Vec<&'static str> = pushed.iter().map(|q| q.column).collect();
        given.dedup();
        self.options.resource.listings(&given, self.list_parents).map(|chain| chain.len() - 1)
    }

    /// Estimated rows and total cost of a scan with these conditions pushed down.
    unsafe fn estimate(&self, pushed: &[PushedQual]) -> (f64, f64) {
        let Some(levels) = self.levels(pushed) else {
            return (ROWS_UNBOUNDED, IMPOSSIBLE_COST);
        };
        // Per request column, its narrowest condition decides how many values it gets.
        let listings: f64 = self
            .options
            .resource
            .params
            .iter()
            .map(|p| {
                pushed
                    .iter()
                    .filter(|q| q.column == p.column)
                    .map(|q| if q.list { list_length_guess(q.value) } else { 1.0 })
                    .fold(f64::INFINITY, f64::min)
            })
            .filter(|n| n.is_finite())
            .product();
        // A fan-out makes one listing per item its closest parent gave the last time it was
        // read whole (else a guess), after the parents' own listings (one for the rooms, one
        // per room for their assets, guessed as a tenth of the items).
        let fan_out = if levels == 0 { 1.0 } else { self.parent_items.unwrap_or(PARENT_ITEMS).max(1.0) };
        let parent_requests = if levels == 0 { 0.0 } else { 1.0 + (levels - 1) as f64 * fan_out / 10.0 };
        let listings = listings * fan_out;
        // Each further condition on a column that already has a value can only narrow it (the
        // listing is made only for values all of them allow): count it as halving the rows. It
        // keeps a parameterized path cheaper than the plain one of a partition whose bound
        // already names its room, which a parameterized Append over partitions needs.
        let extra_conditions =
            pushed.len() - self.options.resource.params.iter().filter(|p| pushed.iter().any(|q| q.column == p.column)).count();
        let rows = self.options.expected_rows * listings * 0.5f64.powi(extra_conditions as i32);
        (rows, REQUEST_COST * (listings + parent_requests) + rows * PER_ROW_COST)
    }

    /// The conditions pushable from `restrictinfos` (a List of RestrictInfo) and the bound.
    unsafe fn pushable(&self, root: *mut pg_sys::PlannerInfo, relid: u32, restrictinfos: *mut pg_sys::List) -> Vec<PushedQual> {
        let mut clauses = quals::clauses(restrictinfos);
        clauses.extend(&self.bound);
        quals::pushable(root, relid, &clauses, self.options.resource, &self.names)
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_rel_size(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    let table = catalog::table(relid);
    let options = TableOptions::from_options(&table.name, &table.options).or_raise();
    let names = catalog::column_names(relid);
    let paths = catalog::column_paths(relid, &names);
    check_columns(options.resource, &table.name, &names, &paths);
    let bound = partition_bound(relid, (*baserel).relid);
    let (columns, fields) = used_columns(baserel, &bound, &table.name, options.resource, &names, &paths);
    let server = catalog::server(table.server_id);
    let list_parents = crate::options::list_parents(&table.options, &server.options);
    let endpoint = crate::options::ServerOptions::from_options(&server.name, &server.options).or_raise().endpoint;
    let deployments_by_name_only = endpoint.workspace.is_template() && endpoint.allowed_deployments.is_none();
    let deployment_mentioned = match options.resource.workspace_column().and_then(|c| names.iter().position(|n| n.as_deref() == Some(c))) {
        Some(i) => column_mentioned(root, baserel, i as i16 + 1),
        None => false,
    };
    let parent_items =
        options.resource.parent.as_ref().and_then(|p| remembered_size(endpoint.workspace.as_str(), p.resource.name)).map(|n| n as f64);
    let plan = RelPlan {
        table: table.name,
        options,
        names,
        columns,
        fields,
        bound,
        list_parents,
        deployments_by_name_only,
        deployment_mentioned,
        parent_items,
    };
    let pushed = plan.pushable(root, (*baserel).relid, (*baserel).baserestrictinfo);
    (*baserel).rows = plan.estimate(&pushed).0;
    (*(*baserel).reltarget).width = 64 * plan.columns.len().max(1) as i32;
    (*baserel).fdw_private = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(plan) as *mut std::ffi::c_void;
}

/// One path using only the table's own conditions, and one parameterized path per set of
/// outer relations whose join clauses can supply request columns: with those, the planner
/// builds a nested loop that runs one listing per outer row. A path that would lack a required
/// column costs so much that the planner takes any path that has it.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, _relid: pg_sys::Oid) {
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    let relid = (*baserel).relid;
    let base = plan.pushable(root, relid, (*baserel).baserestrictinfo);
    let (rows, mut total) = plan.estimate(&base);

    let mut outer_sets: Vec<*mut pg_sys::Bitmapset> = Vec::new();
    for clause in join_clauses(root, baserel, plan) {
        let mut required = pg_sys::bms_union((*clause).clause_relids, (*baserel).lateral_relids);
        required = pg_sys::bms_del_member(required, relid as i32);
        if compat::bms_is_empty(required) || outer_sets.iter().any(|&s| pg_sys::bms_equal(s, required)) {
            continue;
        }
        outer_sets.push(required);
    }
    // Request columns joined to different relations: also offer the path that needs them all.
    if outer_sets.len() > 1 {
        let all = outer_sets.iter().fold(std::ptr::null_mut(), |acc, &s| pg_sys::bms_union(acc, s));
        outer_sets.push(all);
    }
    let base_levels = plan.levels(&base);
    for required in outer_sets {
        let info = pg_sys::get_baserel_parampathinfo(root, baserel, required);
        let clauses = pg_sys::list_concat_copy((*baserel).baserestrictinfo, (*info).ppi_clauses);
        let pushed = plan.pushable(root, relid, clauses);
        let Some(levels) = plan.levels(&pushed) else { continue };
        if pushed.len() > base.len() {
            let (rows, total) = plan.estimate(&pushed);
            add_scan_path(root, baserel, rows, total, required);
        }
        // A join gives the values a parent listing would: never list every parent instead.
        if base_levels.is_some_and(|b| levels < b) {
            total = total.max(FAN_OUT_BESIDE_JOIN);
        }
    }
    add_scan_path(root, baserel, rows, total, std::ptr::null_mut());
}

unsafe fn add_scan_path(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    rows: f64,
    total: f64,
    required_outer: *mut pg_sys::Bitmapset,
) {
    let path =
        compat::foreignscan_path(root, baserel, rows, REQUEST_COST, total.max(REQUEST_COST), required_outer, total >= IMPOSSIBLE_COST);
    pg_sys::add_path(baserel, path as *mut pg_sys::Path);
}

/// Join clauses that could give a request column its value: those in the relation's join info,
/// and those implied by equivalence classes (`t.clean_room_name = r.name` is one of those).
unsafe fn join_clauses(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, plan: &RelPlan) -> Vec<*mut pg_sys::RestrictInfo> {
    let mut found = Vec::new();
    for ri in PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).joininfo).iter_ptr() {
        found.push(ri);
    }
    for param in plan.options.resource.params {
        let Some(attnum) = plan.names.iter().position(|n| n.as_deref() == Some(param.column)) else { continue };
        found.extend(implied_equalities(root, baserel, attnum as i16 + 1));
    }
    // Only a clause that may be evaluated at this scan can give it a value (an outer join's
    // clause, say, cannot).
    found.retain(|&ri| pg_sys::join_clause_is_movable_to(ri, baserel));
    found
}

/// Whether the query compares column `attnum` of `baserel` with anything: in a condition of
/// its own, a join clause, or an equivalence class shared with another relation (`t.col =
/// w.col` becomes one of those; for a partition, through its parent's).
unsafe fn column_mentioned(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, attnum: i16) -> bool {
    let relid = (*baserel).relid;
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let in_clauses = |list: *mut pg_sys::List| {
        quals::clauses(list).into_iter().any(|clause| {
            let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
            pg_sys::pull_varattnos(clause, relid, &mut attrs);
            pg_sys::bms_is_member(attnum as i32 - offset, attrs)
        })
    };
    in_clauses((*baserel).baserestrictinfo) || in_clauses((*baserel).joininfo) || !implied_equalities(root, baserel, attnum).is_empty()
}

/// The join clauses equivalence classes imply for column `attnum` of `baserel`.
unsafe fn implied_equalities(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    attnum: i16,
) -> Vec<*mut pg_sys::RestrictInfo> {
    let mut target = EcTarget { relid: (*baserel).relid, attnum };
    let list = pg_sys::generate_implied_equalities_for_column(
        root,
        baserel,
        Some(ec_member_is_column),
        &mut target as *mut EcTarget as *mut std::ffi::c_void,
        (*baserel).lateral_referencers,
    );
    PgList::<pg_sys::RestrictInfo>::from_pg(list).iter_ptr().collect()
}

struct EcTarget {
    relid: u32,
    attnum: i16,
}

/// Callback for `generate_implied_equalities_for_column`: is this member our column?
#[pg_guard]
unsafe extern "C-unwind" fn ec_member_is_column(
    _root: *mut pg_sys::PlannerInfo,
    _rel: *mut pg_sys::RelOptInfo,
    ec: *mut pg_sys::EquivalenceClass,
    em: *mut pg_sys::EquivalenceMember,
    arg: *mut std::ffi::c_void,
) -> bool {
    let target = &*(arg as *const EcTarget);
    !(*ec).ec_has_volatile && quals::column_of((*em).em_expr as *mut pg_sys::Node, target.relid) == Some(target.attnum)
}

#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    relid: pg_sys::Oid,
    best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    // For a parameterized path, scan_clauses holds the join clauses too: their outer columns
    // become executor parameters in fdw_exprs, evaluated again at each rescan.
    let pushed = plan.pushable(root, (*baserel).relid, scan_clauses);
    let deployment_unbound = plan.deployment_unbound(&pushed);
    if deployment_unbound && plan.deployments_by_name_only {
        raise(super::errors::unbound_deployment(&plan.table, &catalog::server(catalog::table(relid).server_id).name));
    }
    if let Some(column) = plan.missing(&pushed) {
        raise(missing_required(&plan.table, column));
    }
    let mut exprs = PgList::<pg_sys::Expr>::new();
    for q in &pushed {
        exprs.push(q.value);
    }
    let data = ScanPlan {
        table: plan.table.clone(),
        resource: plan.options.resource.name.to_string(),
        page_size: plan.options.page_size,
        max_listings: plan.options.max_listings,
        list_parents: plan.list_parents,
        params: pushed.iter().map(|q| PlannedParam { column: q.column.to_string(), list: q.list, shown: q.shown.clone() }).collect(),
        columns: plan.columns.clone(),
        fields: plan.fields.clone(),
        cache_listings: !(*best_path).path.param_info.is_null() || pushed.iter().any(|q| q.shown.is_empty()),
        // A bounded query level (LIMIT, also in a LATERAL subquery), or the inner side of a
        // nested loop, which may be stopped early for each outer row.
        limited: (*root).limit_tuples >= 0.0 || !(*best_path).path.param_info.is_null(),
        deployment_unbound,
    };
    // Every condition stays for Postgres to check: pushing one down only narrows the request.
    let mut quals = pg_sys::extract_actual_clauses(scan_clauses, false);
    for &clause in &plan.bound {
        quals = pg_sys::lappend(quals, pg_sys::copyObjectImpl(clause as *const std::ffi::c_void));
    }
    pg_sys::make_foreignscan(
        tlist,
        quals,
        (*baserel).relid,
        exprs.into_pg(),
        data.to_list(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        outer_plan,
    )
}

/// Every column of the table must be a column of its resource, or name a field of its items in
/// a `path` option: any field, not only those the resource definitions know, so that a field
/// the service adds is one ALTER away.
fn check_columns(resource: &Resource, table: &str, names: &[Option<String>], paths: &[Option<String>]) {
    for (name, path) in names.iter().zip(paths) {
        if let Some(name) = name {
            if resource.origin(name, path.as_deref()).is_none() {
                raise(super::errors::unknown_column(name, table, resource));
            }
        }
    }
}

/// The columns the query reads (in its target list, its conditions or the partition bound the
/// scan checks; all, for a whole-row reference), each with where its value comes from, and the
/// fields the scan asks for.
unsafe fn used_columns(
    baserel: *mut pg_sys::RelOptInfo,
    bound: &[*mut pg_sys::Node],
    table: &str,
    resource: &'static Resource,
    names: &[Option<String>],
    paths: &[Option<String>],
) -> (Vec<PlannedColumn>, Vec<String>) {
    let relid = (*baserel).relid;
    let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    pg_sys::pull_varattnos((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut attrs);
    for clause in quals::clauses((*baserel).baserestrictinfo).into_iter().chain(bound.iter().copied()) {
        pg_sys::pull_varattnos(clause, relid, &mut attrs);
    }
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let whole_row = pg_sys::bms_is_member(-offset, attrs);
    let used: Vec<(i16, &String, Option<&str>)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let attnum = i as i32 + 1;
            let used = whole_row || pg_sys::bms_is_member(attnum - offset, attrs);
            name.as_ref().filter(|_| used).map(|n| (attnum as i16, n, paths[i].as_deref()))
        })
        .collect();
    let sources = ScanColumns::plan(resource, used.iter().map(|&(_, name, path)| (name.as_str(), path)))
        .unwrap_or_else(|name| raise(super::errors::unknown_column(&name, table, resource)));
    let columns =
        used.iter().zip(sources.sources).map(|(&(attnum, name, _), source)| PlannedColumn { attnum, name: name.clone(), source }).collect();
    (columns, sources.fields)
}

/// The number of elements of a constant array or an `ARRAY[...]` (an OR of equalities), else
/// a guess.
unsafe fn list_length_guess(expr: *mut pg_sys::Expr) -> f64 {
    let node = expr as *mut pg_sys::Node;
    if (*node).type_ == pg_sys::NodeTag::T_ArrayExpr {
        return PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::ArrayExpr)).elements).len() as f64;
    }
    if (*node).type_ == pg_sys::NodeTag::T_Const {
        let c = node as *mut pg_sys::Const;
        if !(*c).constisnull {
            let arr = pg_sys::pg_detoast_datum((*c).constvalue.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            if let Some(arr) = std::ptr::NonNull::new(arr) {
                if let [n] = pgrx::array::RawArray::from_ptr(arr).dims() {
                    return (*n).max(0) as f64;
                }
            }
        }
    }
    10.0
}

/// The clauses of the partition constraint of `relid` (none when it is not a partition), with
/// its columns referring to range table entry `rti`.
unsafe fn partition_bound(relid: pg_sys::Oid, rti: u32) -> Vec<*mut pg_sys::Node> {
    extern "C-unwind" {
        // Exported by every supported server, but not in pgrx's bindings.
        fn get_partition_qual_relid(relid: pg_sys::Oid) -> *mut pg_sys::Expr;
        fn ChangeVarNodes(node: *mut pg_sys::Node, rt_index: i32, new_index: i32, sublevels_up: i32);
    }
    if !pg_sys::get_rel_relispartition(relid) {
        return Vec::new();
    }
    let expr = pg_sys::ffi::pg_guard_ffi_boundary(|| get_partition_qual_relid(relid));
    if expr.is_null() {
        return Vec::new();
    }
    // The constraint's columns refer to range table entry 1.
    pg_sys::ffi::pg_guard_ffi_boundary(|| ChangeVarNodes(expr as *mut pg_sys::Node, 1, rti as i32, 0));
    PgList::<pg_sys::Node>::from_pg(pg_sys::make_ands_implicit(expr)).iter_ptr().collect()
}
