//! The IMPORT FOREIGN SCHEMA callback. The tables and their comments are created here, through
//! SPI, rather than handed back to Postgres: Postgres would run only CREATE FOREIGN TABLE
//! statements, and every table and column is to carry its API description as a COMMENT.

use super::catalog;
use super::OrRaise;
use crate::resources::ddl::{self as import, ImportRequest};
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CStr;

#[pg_guard]
pub unsafe extern "C-unwind" fn import_foreign_schema(stmt: *mut pg_sys::ImportForeignSchemaStmt, server_oid: pg_sys::Oid) -> *mut pg_sys::List {
    let text = |p: *const std::ffi::c_char| if p.is_null() { String::new() } else { CStr::from_ptr(p).to_string_lossy().into_owned() };
    let tables: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list).iter_ptr().map(|rv| text((*rv).relname)).collect();
    let (limit_to, except) = match (*stmt).list_type {
        pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO => (Some(tables), Vec::new()),
        pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_EXCEPT => (None, tables),
        _ => (None, Vec::new()),
    };
    let req = ImportRequest {
        remote_schema: text((*stmt).remote_schema),
        local_schema: text((*stmt).local_schema),
        server: catalog::server(server_oid).name,
        limit_to,
        except,
        options: catalog::options((*stmt).options),
    };
    let raw = import::raw_types(&req).or_raise();
    for resource in import::selected(&req).or_raise() {
        for sql in import::statements(resource, &req, raw) {
            if let Err(e) = Spi::run(&sql) {
                super::raise(crate::error::FdwError::new(pgrx::PgSqlErrorCode::ERRCODE_FDW_ERROR, format!("IMPORT FOREIGN SCHEMA failed: {e}")).detail(sql));
            }
        }
    }
    // Nothing left for Postgres to run.
    std::ptr::null_mut()
}
