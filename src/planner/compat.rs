//! Differences between the PostgreSQL versions this wrapper supports, each behind one small
//! function, so that no other module needs a version branch.

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
