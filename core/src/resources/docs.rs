//! The README's table reference, written from the resource definitions so the two never
//! disagree. `cargo test` checks the README against it; run the test with
//! `DATABRICKS_FDW_BLESS=1` to rewrite the README's section.

use super::{Kind, ParamPlace, Source, RESOURCES};

pub const BEGIN: &str = "<!-- tables:begin (generated from core/src/resources; do not edit) -->";
pub const END: &str = "<!-- tables:end -->";

/// Markdown for every resource: endpoint, request columns, and columns with their imported types.
pub fn markdown() -> String {
    let mut out = String::new();
    for r in RESOURCES {
        out.push_str(&format!("\n#### `{}`\n\n{}\n\n", r.name, r.description));
        out.push_str(&format!("`GET {}`", r.path));
        if let Some(get) = &r.get {
            out.push_str(&format!("; with `{}` given, `GET {}`", get.column, get.path));
        }
        out.push_str("\n\n");
        let required: Vec<String> = r.required_params().map(|p| format!("`{}`", p.column)).collect();
        let optional: Vec<String> =
            r.params.iter().filter(|p| !p.required && p.place != ParamPlace::Workspace).map(|p| format!("`{}`", p.column)).collect();
        if !required.is_empty() {
            out.push_str(&format!("Required in WHERE (or from a join): {}. ", required.join(", ")));
        }
        if !optional.is_empty() {
            out.push_str(&format!("Also pushed down: {}. ", optional.join(", ")));
        }
        out.push_str("`deployment_name` chooses the workspace.\n\n");
        match &r.writes {
            Some(w) => {
                let list = |cols: &[&str]| cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
                out.push_str(&format!(
                    "Writable (with `updatable 'true'`): INSERT (`{}`) sets {}; UPDATE (`{}`) changes {}; DELETE (`{}`). \
                     Rows are identified by {}.\n\n",
                    w.request_line(super::Operation::Insert),
                    list(w.insertable),
                    w.request_line(super::Operation::Update),
                    list(w.updatable),
                    w.request_line(super::Operation::Delete),
                    list(w.keys),
                ));
            }
            None => out.push_str("Read-only.\n\n"),
        }
        out.push_str("| column | imported type | meaning |\n|---|---|---|\n");
        for c in r.columns {
            let ty = match c.kind {
                Kind::EpochMillis => "timestamptz (bigint with `raw_types`)".to_string(),
                k => k.sql_type(false).to_string(),
            };
            let from = match c.source {
                Source::Field(f) if f.contains('.') => format!(" (path `{f}`)"),
                Source::Request => " (from the request)".to_string(),
                Source::Field(_) => String::new(),
            };
            out.push_str(&format!("| {} | {ty} | {}{from} |\n", c.name, c.description.replace('|', "\\|")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_reference_matches_the_definitions() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme.find(BEGIN).expect("README has the tables:begin marker") + BEGIN.len();
        let end = readme.find(END).expect("README has the tables:end marker");
        let generated = markdown();
        if std::env::var("DATABRICKS_FDW_BLESS").is_ok() {
            let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert!(
            readme[start..end] == generated,
            "README's table reference is stale: run DATABRICKS_FDW_BLESS=1 cargo test -p databricks-fdw-core readme"
        );
    }
}
