//! IMPORT FOREIGN SCHEMA: the statements that create one foreign table per resource, with its
//! columns typed from their kinds and a COMMENT on every table and column from the definitions.
//! Pure text: the fdw glue checks the statement (`fdw/import.rs`), quotes names and text with
//! Postgres's own functions ([`Quoting`]) and runs these.

use crate::resources::{Resource, Source};

/// How names and text become SQL: the extension uses Postgres's `quote_identifier` and
/// `quote_literal_cstr`, which know the server's settings (standard_conforming_strings, say).
pub trait Quoting {
    fn ident(&self, name: &str) -> String;
    fn literal(&self, text: &str) -> String;
}

/// CREATE FOREIGN TABLE and its COMMENTs, for one resource.
pub fn statements(r: &Resource, local_schema: &str, server: &str, raw: bool, quoting: &dyn Quoting) -> Vec<String> {
    let ident = |name: &str| quoting.ident(name);
    let literal = |text: &str| quoting.literal(text);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    /// Always quoted, as with standard_conforming_strings on.
    struct Always;

    impl Quoting for Always {
        fn ident(&self, name: &str) -> String {
            format!("\"{}\"", name.replace('"', "\"\""))
        }

        fn literal(&self, text: &str) -> String {
            format!("'{}'", text.replace('\'', "''"))
        }
    }

    #[test]
    fn tables_are_typed_from_kinds_and_commented() {
        let r = resources::find("task_runs").unwrap();
        let sql = statements(r, "clean rooms", "dbx", false, &Always);
        assert!(sql[0].starts_with("CREATE FOREIGN TABLE \"clean rooms\".\"task_runs\" (\n  \"clean_room_name\" text,"), "{}", sql[0]);
        assert!(sql[0].contains("\"start_time\" timestamptz,"));
        assert!(sql[0].contains("\"run_duration\" bigint,"));
        assert!(sql[0].contains("\"notebook_job_run_state\" jsonb,"));
        assert!(sql[0].contains("\"result_state\" text OPTIONS (path 'notebook_job_run_state.result_state'),"));
        assert!(sql[0].ends_with(") SERVER \"dbx\" OPTIONS (resource 'task_runs')"));
        assert_eq!(sql.len(), 2 + r.columns.len());
        assert!(sql[1].starts_with("COMMENT ON FOREIGN TABLE \"clean rooms\".\"task_runs\" IS 'Historical notebook task runs"));
        assert!(!sql[1].contains("INSERT"));
        let rules = statements(resources::find("auto_approval_rules").unwrap(), "s", "dbx", false, &Always);
        assert!(
            rules[1].ends_with("auto-approval-rules; INSERT, UPDATE and DELETE once the option updatable is ''true'')'"),
            "{}",
            rules[1]
        );
        let raw = statements(r, "clean rooms", "dbx", true, &Always);
        assert!(raw[0].contains("\"start_time\" bigint,"));
    }
}
