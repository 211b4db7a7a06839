//! The IMPORT FOREIGN SCHEMA callback. The tables and their comments are created here, through
//! SPI, rather than handed back to Postgres: Postgres would run only CREATE FOREIGN TABLE
//! statements, and every table and column is to carry its API description as a COMMENT.

use super::catalog;
use super::OrRaise;
use crate::error::{FdwError, FdwResult};
use crate::resources::{self, ddl, Resource, REMOTE_SCHEMA};
use pgrx::prelude::*;
use pgrx::PgList;
use pgrx::PgSqlErrorCode::*;
use std::ffi::CStr;

#[pg_guard]
pub unsafe extern "C-unwind" fn import_foreign_schema(
    stmt: *mut pg_sys::ImportForeignSchemaStmt,
    server_oid: pg_sys::Oid,
) -> *mut pg_sys::List {
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
    let raw = raw_types(&req).or_raise();
    for resource in selected(&req).or_raise() {
        for sql in ddl::statements(resource, &req.local_schema, &req.server, raw, &super::quote::PgQuoting::MAIN_THREAD) {
            if let Err(e) = Spi::run(&sql) {
                super::raise(
                    crate::error::FdwError::new(pgrx::PgSqlErrorCode::ERRCODE_FDW_ERROR, format!("IMPORT FOREIGN SCHEMA failed: {e}"))
                        .detail(sql),
                );
            }
        }
    }
    // Nothing left for Postgres to run.
    std::ptr::null_mut()
}

/// What the IMPORT statement asked for.
pub struct ImportRequest {
    pub remote_schema: String,
    pub local_schema: String,
    pub server: String,
    /// `LIMIT TO (...)`: only these; `EXCEPT (...)`: all but these.
    pub limit_to: Option<Vec<String>>,
    pub except: Vec<String>,
    pub options: Vec<(String, String)>,
}

pub const IMPORT_OPTIONS: &[&str] = &["raw_types"];

/// The tables to create, or an error naming what is wrong.
pub fn selected(req: &ImportRequest) -> FdwResult<Vec<&'static Resource>> {
    if req.remote_schema != REMOTE_SCHEMA {
        return Err(FdwError::new(ERRCODE_FDW_SCHEMA_NOT_FOUND, format!("there is no remote schema \"{}\"", req.remote_schema))
            .hint(format!("The remote schemas of databricks_fdw are: {REMOTE_SCHEMA}.")));
    }
    let known = resources::names();
    for name in req.limit_to.iter().flatten().chain(&req.except) {
        if !known.contains(&name.as_str()) {
            return Err(FdwError::new(ERRCODE_FDW_TABLE_NOT_FOUND, format!("remote schema {REMOTE_SCHEMA} has no table \"{name}\""))
                .hint(format!("Its tables are: {}.", known.join(", "))));
        }
    }
    Ok(resources::RESOURCES
        .iter()
        .copied()
        .filter(|r| req.limit_to.as_ref().is_none_or(|l| l.iter().any(|n| n == r.name)))
        .filter(|r| !req.except.iter().any(|n| n == r.name))
        .collect())
}

/// `raw_types 'true'`: keep epoch milliseconds as bigint, as the API sends them.
pub fn raw_types(req: &ImportRequest) -> FdwResult<bool> {
    let mut raw = false;
    for (name, value) in &req.options {
        match name.as_str() {
            "raw_types" => {
                raw = match value.to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    _ => return Err(FdwError::bad_option_value("raw_types", format!("\"{value}\" is not a boolean"))),
                }
            }
            other => return Err(FdwError::unknown_option(other, "IMPORT FOREIGN SCHEMA", IMPORT_OPTIONS)),
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(remote: &str, limit_to: Option<&[&str]>, except: &[&str]) -> ImportRequest {
        ImportRequest {
            remote_schema: remote.into(),
            local_schema: "clean rooms".into(),
            server: "dbx".into(),
            limit_to: limit_to.map(|l| l.iter().map(|s| s.to_string()).collect()),
            except: except.iter().map(|s| s.to_string()).collect(),
            options: Vec::new(),
        }
    }

    #[test]
    fn all_limit_to_and_except() {
        assert_eq!(selected(&req("cleanrooms", None, &[])).unwrap().len(), resources::RESOURCES.len());
        let names = |r: Vec<&Resource>| r.iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(selected(&req("cleanrooms", Some(&["clean_rooms", "task_runs"]), &[])).unwrap()), ["task_runs", "clean_rooms"]);
        assert!(!names(selected(&req("cleanrooms", None, &["assets"])).unwrap()).contains(&"assets"));
        let e = selected(&req("clean_rooms", None, &[])).err().unwrap();
        assert_eq!(e.code, ERRCODE_FDW_SCHEMA_NOT_FOUND);
        assert!(e.hint.unwrap().contains("cleanrooms"));
        assert!(selected(&req("cleanrooms", Some(&["task_run"]), &[])).err().unwrap().hint.unwrap().contains("task_runs"));
    }

    #[test]
    fn import_options_are_checked() {
        let mut r = req("cleanrooms", None, &[]);
        r.options = vec![("raw_types".into(), "true".into())];
        assert!(raw_types(&r).unwrap());
        r.options = vec![("raw_type".into(), "true".into())];
        assert!(raw_types(&r).unwrap_err().hint.unwrap().contains("raw_types"));
    }
}
