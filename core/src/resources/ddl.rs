//! IMPORT FOREIGN SCHEMA: the statements that create one foreign table per resource, with its
//! columns typed from their kinds and a COMMENT on every table and column from the definitions.
//! Pure text: the fdw glue checks the statement (`fdw/import.rs`) and runs these.

use crate::resources::{Resource, Source};

/// CREATE FOREIGN TABLE and its COMMENTs, for one resource.
pub fn statements(r: &Resource, local_schema: &str, server: &str, raw: bool) -> Vec<String> {
    let table = format!("{}.{}", ident(local_schema), ident(r.name));
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
        ident(server),
        literal(r.name)
    )];
    let writes = if r.writes.is_some() { "; INSERT, UPDATE and DELETE once the option updatable is 'true'" } else { "" };
    out.push(format!("COMMENT ON FOREIGN TABLE {table} IS {}", literal(&format!("{} (Databricks GET {}{writes})", r.description, r.path))));
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
    use crate::resources;

    #[test]
    fn tables_are_typed_from_kinds_and_commented() {
        let r = resources::find("task_runs").unwrap();
        let sql = statements(r, "clean rooms", "dbx", false);
        assert!(sql[0].starts_with("CREATE FOREIGN TABLE \"clean rooms\".\"task_runs\" (\n  \"clean_room_name\" text,"), "{}", sql[0]);
        assert!(sql[0].contains("\"start_time\" timestamptz,"));
        assert!(sql[0].contains("\"run_duration\" bigint,"));
        assert!(sql[0].contains("\"notebook_job_run_state\" jsonb,"));
        assert!(sql[0].contains("\"result_state\" text OPTIONS (path 'notebook_job_run_state.result_state'),"));
        assert!(sql[0].ends_with(") SERVER \"dbx\" OPTIONS (resource 'task_runs')"));
        assert_eq!(sql.len(), 2 + r.columns.len());
        assert!(sql[1].starts_with("COMMENT ON FOREIGN TABLE \"clean rooms\".\"task_runs\" IS 'Historical notebook task runs"));
        assert!(!sql[1].contains("INSERT"));
        let rules = statements(resources::find("auto_approval_rules").unwrap(), "s", "dbx", false);
        assert!(
            rules[1].ends_with("auto-approval-rules; INSERT, UPDATE and DELETE once the option updatable is ''true'')'"),
            "{}",
            rules[1]
        );
        let raw = statements(r, "clean rooms", "dbx", true);
        assert!(raw[0].contains("\"start_time\" bigint,"));
        assert_eq!(literal("it's"), "'it''s'");
    }
}
