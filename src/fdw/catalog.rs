//! Reading the catalogs: options of tables, servers and user mappings, and names for messages.

use crate::error::{FdwError, FdwResult};
use pgrx::prelude::*;
use pgrx::PgList;
use pgrx::PgSqlErrorCode::*;
use std::ffi::CStr;

/// The options in a List of DefElem, as name/value pairs.
///
/// # Safety
/// `list` must be NIL or a valid List of DefElem nodes.
pub unsafe fn options(list: *mut pg_sys::List) -> Vec<(String, String)> {
    let list = PgList::<pg_sys::DefElem>::from_pg(list);
    list.iter_ptr()
        .map(|def| {
            let name = CStr::from_ptr((*def).defname).to_string_lossy().into_owned();
            let value = CStr::from_ptr(pg_sys::defGetString(def)).to_string_lossy().into_owned();
            (name, value)
        })
        .collect()
}

pub struct TableInfo {
    pub name: String,
    pub server_id: pg_sys::Oid,
    pub options: Vec<(String, String)>,
}

/// # Safety
/// `relid` must be a foreign table the caller holds a lock on.
pub unsafe fn table(relid: pg_sys::Oid) -> TableInfo {
    let ft = pg_sys::GetForeignTable(relid);
    TableInfo { name: relation_name(relid), server_id: (*ft).serverid, options: options((*ft).options) }
}

/// # Safety
/// `relid` must be a valid relation oid.
pub unsafe fn relation_name(relid: pg_sys::Oid) -> String {
    let name = pg_sys::get_rel_name(relid);
    if name.is_null() {
        format!("relation {}", relid.to_u32())
    } else {
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

pub struct ServerInfo {
    pub name: String,
    pub options: Vec<(String, String)>,
}

/// # Safety
/// `server_id` must be a valid foreign server oid.
pub unsafe fn server(server_id: pg_sys::Oid) -> ServerInfo {
    let server = pg_sys::GetForeignServer(server_id);
    ServerInfo { name: CStr::from_ptr((*server).servername).to_string_lossy().into_owned(), options: options((*server).options) }
}

/// The options of the user mapping for `user_id` (or PUBLIC) on the server, or an error saying
/// how to create one.
///
/// # Safety
/// `server_id` must be a valid foreign server oid.
pub unsafe fn user_mapping(user_id: pg_sys::Oid, server_id: pg_sys::Oid, server_name: &str) -> FdwResult<Vec<(String, String)>> {
    let exists = |user: pg_sys::Oid| {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as i32,
            user.into_datum().unwrap_or(pg_sys::Datum::from(0)),
            server_id.into_datum().unwrap_or(pg_sys::Datum::from(0)),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    };
    if !exists(user_id) && !exists(pg_sys::InvalidOid) {
        let role = role_name(user_id);
        return Err(FdwError::new(ERRCODE_UNDEFINED_OBJECT, format!("no user mapping for role \"{role}\" on server \"{server_name}\""))
            .hint(format!("CREATE USER MAPPING FOR \"{role}\" SERVER {server_name} OPTIONS (token '...'), or FOR PUBLIC to share one.")));
    }
    let mapping = pg_sys::GetUserMapping(user_id, server_id);
    Ok(options((*mapping).options))
}

unsafe fn role_name(user_id: pg_sys::Oid) -> String {
    let name = pg_sys::GetUserNameFromId(user_id, true);
    if name.is_null() {
        format!("role {}", user_id.to_u32())
    } else {
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// The `path` option of each column (same indexing as [`column_names`]).
///
/// # Safety
/// `relid` must be a foreign table the caller holds a lock on.
pub unsafe fn column_paths(relid: pg_sys::Oid, names: &[Option<String>]) -> Vec<Option<String>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            name.as_ref()?;
            let opts = options(pg_sys::GetForeignColumnOptions(relid, (i + 1) as i16));
            opts.into_iter().rev().find(|(k, _)| k == "path").map(|(_, v)| v)
        })
        .collect()
}

/// The names of a relation's live columns, by attribute number (index 0 is attnum 1; dropped
/// columns are `None`).
///
/// # Safety
/// `relid` must be a relation the caller holds a lock on.
pub unsafe fn column_names(relid: pg_sys::Oid) -> Vec<Option<String>> {
    let rel = pg_sys::RelationIdGetRelation(relid);
    if rel.is_null() {
        return Vec::new();
    }
    let desc = (*rel).rd_att;
    let attrs = super::compat::attributes(desc);
    let names =
        attrs.iter().map(|a| (!a.attisdropped).then(|| CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned())).collect();
    pg_sys::RelationClose(rel);
    names
}

/// Whether `server` belongs to a wrapper whose handler is this extension's.
///
/// # Safety
/// `server` must be a valid ForeignServer.
pub unsafe fn is_ours(server: *mut pg_sys::ForeignServer) -> bool {
    let fdw = pg_sys::GetForeignDataWrapper((*server).fdwid);
    let name = pg_sys::get_func_name((*fdw).fdwhandler);
    !name.is_null() && CStr::from_ptr(name).to_bytes() == b"databricks_fdw_handler"
}

/// Whether `role` may use the server (USAGE, as CREATE FOREIGN TABLE and user mappings ask).
///
/// # Safety
/// `server_id` must be a valid foreign server oid.
pub unsafe fn has_usage(server_id: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    super::compat::server_usage_allowed(server_id, role)
}
