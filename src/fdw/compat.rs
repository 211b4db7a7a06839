//! Differences between the PostgreSQL versions this wrapper supports (14 to 18), each behind one
//! small function, so that no other module needs a version branch.

use pgrx::prelude::*;

/// Whether `role` has USAGE on foreign server `server_id`.
///
/// # Safety
/// `server_id` must be a valid foreign server oid.
pub unsafe fn server_usage_allowed(server_id: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    #[cfg(any(feature = "pg14", feature = "pg15"))]
    let result = pg_sys::pg_foreign_server_aclcheck(server_id, role, pg_sys::ACL_USAGE as pg_sys::AclMode);
    #[cfg(not(any(feature = "pg14", feature = "pg15")))]
    let result = pg_sys::object_aclcheck(pg_sys::ForeignServerRelationId, server_id, role, pg_sys::ACL_USAGE as pg_sys::AclMode);
    result == pg_sys::AclResult::ACLCHECK_OK
}

/// The role whose user mapping a foreign scan uses: the owner of a view (or of a security
/// definer function's query) it was reached through, else the current user. 16 moved it from
/// the range table entry to the plan node.
///
/// # Safety
/// `fsplan` must be the ForeignScan of a running executor state `estate`.
pub unsafe fn check_as_user(fsplan: *mut pg_sys::ForeignScan, estate: *mut pg_sys::EState) -> pg_sys::Oid {
    #[cfg(any(feature = "pg14", feature = "pg15"))]
    let user = (*pg_sys::exec_rt_fetch((*fsplan).scan.scanrelid, estate)).checkAsUser;
    #[cfg(not(any(feature = "pg14", feature = "pg15")))]
    let user = {
        let _ = estate;
        (*fsplan).checkAsUser
    };
    if user != pg_sys::InvalidOid {
        user
    } else {
        pg_sys::GetUserId()
    }
}

/// The role whose user mapping a modification of a foreign table uses (as for scans: a view's
/// owner, else the current user). 16 added a function for it.
///
/// # Safety
/// `rinfo` must be a result relation of the running executor state `estate`.
pub unsafe fn modify_as_user(rinfo: *mut pg_sys::ResultRelInfo, estate: *mut pg_sys::EState) -> pg_sys::Oid {
    #[cfg(any(feature = "pg14", feature = "pg15"))]
    let user = {
        let user = (*pg_sys::exec_rt_fetch((*rinfo).ri_RangeTableIndex, estate)).checkAsUser;
        if user != pg_sys::InvalidOid {
            user
        } else {
            pg_sys::GetUserId()
        }
    };
    #[cfg(not(any(feature = "pg14", feature = "pg15")))]
    let user = pg_sys::ExecGetResultRelCheckAsUser(rinfo, estate);
    user
}

/// A ForeignPath with no pathkeys, outer path or private data; `disabled` for a path that must
/// lose to any other (from 18 on, paths with fewer disabled nodes win whatever their cost; up
/// to 17 the caller's cost says it). 17 added the restriction clauses it enforces.
///
/// # Safety
/// `root` and `rel` must be the planner's, `required_outer` NULL or a set of its relations.
pub unsafe fn foreignscan_path(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    rows: f64,
    startup: f64,
    total: f64,
    required_outer: *mut pg_sys::Bitmapset,
    disabled: bool,
) -> *mut pg_sys::ForeignPath {
    use std::ptr::null_mut as null;
    #[cfg(not(feature = "pg18"))]
    let _ = disabled;
    #[cfg(any(feature = "pg14", feature = "pg15", feature = "pg16"))]
    let path = pg_sys::create_foreignscan_path(root, rel, null(), rows, startup, total, null(), required_outer, null(), null());
    #[cfg(feature = "pg17")]
    let path = pg_sys::create_foreignscan_path(root, rel, null(), rows, startup, total, null(), required_outer, null(), null(), null());
    #[cfg(feature = "pg18")]
    let path = pg_sys::create_foreignscan_path(
        root,
        rel,
        null(),
        rows,
        disabled as i32,
        startup,
        total,
        null(),
        required_outer,
        null(),
        null(),
        null(),
    );
    path
}

/// The attributes of a tuple descriptor (copies), through pgrx's accessor, which knows each
/// version's layout (18 put a compact array before them).
///
/// # Safety
/// `desc` must be a valid tuple descriptor.
pub unsafe fn attributes(desc: pg_sys::TupleDesc) -> Vec<pg_sys::FormData_pg_attribute> {
    let desc = pgrx::PgTupleDesc::from_pg_unchecked(desc);
    desc.iter().copied().collect()
}

/// The text of a String node (14: a Value node holding a string).
///
/// # Safety
/// `node` must be a String node (a string Value on 14).
pub unsafe fn string_node_text<'a>(node: *mut pg_sys::Node) -> &'a std::ffi::CStr {
    #[cfg(feature = "pg14")]
    let text = (*(node as *mut pg_sys::Value)).val.str_;
    #[cfg(not(feature = "pg14"))]
    let text = (*(node as *mut pg_sys::String)).sval;
    std::ffi::CStr::from_ptr(text)
}

/// Whether a set of relations is empty (16 made `bms_is_empty` a macro: an empty set is NULL).
///
/// # Safety
/// `set` must be NULL or a valid Bitmapset.
pub unsafe fn bms_is_empty(set: *mut pg_sys::Bitmapset) -> bool {
    set.is_null() || pg_sys::bms_num_members(set) == 0
}

/// Throws `edata` again (14's bindings do not say that ReThrowError never returns).
///
/// # Safety
/// `edata` must be an ErrorData copied with CopyErrorData, in a memory context that lives on.
#[allow(unreachable_code)]
pub unsafe fn rethrow(edata: *mut pg_sys::ErrorData) -> ! {
    pg_sys::ReThrowError(edata);
    unreachable!("ReThrowError returned")
}
