//! IMPORT FOREIGN SCHEMA: the statements that create one foreign table per resource, with its
//! columns typed from their kinds and a COMMENT on every table and column from the definitions.
//! Pure: the fdw glue checks the statement and runs these.

use crate::error::{FdwError, FdwResult};
use crate::resources::{self, Resource, Source, REMOTE_SCHEMA};
use pgrx::PgSqlErrorCode::*;

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

/// CREATE FOREIGN TABLE and its COMMENTs, for one resource.
pub fn statements(r: &Resource, req: &ImportRequest, raw: bool) -> Vec<String> {
    let table = format!("{}.{}", ident(&req.local_schema), ident(r.name));
    let columns: Vec<String> = r
        .columns
        .iter()
        .map(|c| {
            let path = match c.source {
                Source::Field(f) if f.contains('.') => format!(" OPTIONS (path {})", literal(f)),
                _ => String::new(),
            };
            format!("  {} {}{path}", ident(c.name), c.kind.sql_type(raw))
        })
        .collect();
    let mut out = vec![format!(
        "CREATE FOREIGN TABLE {table} (\n{}\n) SERVER {} OPTIONS (resource {})",
        columns.join(",\n"),
        ident(&req.server),
        literal(r.name)
    )];
    out.push(format!("COMMENT ON FOREIGN TABLE {table} IS {}", literal(&format!("{} (Databricks GET {})", r.description, r.path))));
    for c in r.columns {
        out.push(format!("COMMENT ON COLUMN {table}.{} IS {}", ident(c.name), literal(c.description)));
    }
    out
}

/// A quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
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
    fn tables_are_typed_from_kinds_and_commented() {
        let r = resources::find("task_runs").unwrap();
        let sql = statements(r, &req("cleanrooms", None, &[]), false);
        assert!(sql[0].starts_with("CREATE FOREIGN TABLE \"clean rooms\".\"task_runs\" (\n  \"clean_room_name\" text,"), "{}", sql[0]);
        assert!(sql[0].contains("\"start_time\" timestamptz,"));
        assert!(sql[0].contains("\"run_duration\" bigint,"));
        assert!(sql[0].contains("\"notebook_job_run_state\" jsonb,"));
        assert!(sql[0].contains("\"result_state\" text OPTIONS (path 'notebook_job_run_state.result_state'),"));
        assert!(sql[0].ends_with(") SERVER \"dbx\" OPTIONS (resource 'task_runs')"));
        assert_eq!(sql.len(), 2 + r.columns.len());
        assert!(sql[1].starts_with("COMMENT ON FOREIGN TABLE \"clean rooms\".\"task_runs\" IS 'Historical notebook task runs"));
        let raw = statements(r, &req("cleanrooms", None, &[]), true);
        assert!(raw[0].contains("\"start_time\" bigint,"));
        assert_eq!(literal("it's"), "'it''s'");
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
