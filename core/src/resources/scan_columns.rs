//! Where each column's value comes from: a `path` option into the items, else the resource's
//! field of that name, else the value the listing was requested with ([`Resource::origin`], the
//! one rule for scans and for the rows a write answers). For a scan, planning decides it once
//! ([`ScanColumns`]); the plan carries it and the executor follows it.

use super::{Resource, Source};
use serde::{Deserialize, Serialize};

/// Where a column's value comes from, by [`Resource::origin`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin<'a> {
    /// A (possibly dotted) path into each item.
    Field(&'a str),
    /// The value the listing (or the write call) was requested with.
    Request,
}

impl Resource {
    /// The origin of column `name` with the `path` option `path`; `None` for a column that is
    /// neither the resource's nor given a `path`.
    pub fn origin<'a>(&self, name: &str, path: Option<&'a str>) -> Option<Origin<'a>> {
        match (path, self.column(name).map(|def| def.source)) {
            (Some(path), _) => Some(Origin::Field(path)),
            (None, Some(Source::Field(path))) => Some(Origin::Field(path)),
            (None, Some(Source::Request)) => Some(Origin::Request),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnSource {
    /// Wanted field number `field` of each item (an index into [`ScanColumns::fields`]), and the
    /// keys below it for a nested value.
    Field { field: usize, keys: Vec<String> },
    /// The value the listing was requested with (clean_room_name, deployment_name).
    Echo,
}

/// The top-level fields a scan asks each item for, and each scanned column's source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanColumns {
    pub fields: Vec<String>,
    pub sources: Vec<ColumnSource>,
}

impl ScanColumns {
    /// The sources of `columns` (each a name and its `path` option). The error is the name of a
    /// column that is neither the resource's nor given a `path`.
    pub fn plan<'a>(resource: &Resource, columns: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Result<ScanColumns, String> {
        let mut plan = ScanColumns::default();
        for (name, path) in columns {
            let source = match resource.origin(name, path) {
                Some(Origin::Field(path)) => plan.field(path),
                Some(Origin::Request) => ColumnSource::Echo,
                None => return Err(name.to_string()),
            };
            plan.sources.push(source);
        }
        Ok(plan)
    }

    /// The source of a (possibly dotted) field path; its top-level field joins the wanted ones.
    fn field(&mut self, path: &str) -> ColumnSource {
        let mut keys = path.split('.');
        let top = keys.next().unwrap_or_default();
        let field = self.fields.iter().position(|f| f == top).unwrap_or_else(|| {
            self.fields.push(top.to_string());
            self.fields.len() - 1
        });
        ColumnSource::Field { field, keys: keys.map(str::to_string).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_wanted_once_and_request_columns_are_echoed() {
        let runs = super::super::find("task_runs").unwrap();
        let columns = [
            ("notebook_name", None),
            ("clean_room_name", None),
            ("state", Some("notebook_job_run_state.life_cycle_state")),
            ("result", Some("notebook_job_run_state.result_state")),
            ("extra", Some("a_field_the_service_added")),
        ];
        let plan = ScanColumns::plan(runs, columns).unwrap();
        assert_eq!(plan.fields, ["notebook_name", "notebook_job_run_state", "a_field_the_service_added"]);
        let field = |field, keys: &[&str]| ColumnSource::Field { field, keys: keys.iter().map(|k| k.to_string()).collect() };
        assert_eq!(
            plan.sources,
            [field(0, &[]), ColumnSource::Echo, field(1, &["life_cycle_state"]), field(1, &["result_state"]), field(2, &[])]
        );
        assert_eq!(ScanColumns::plan(runs, [("no_such_column", None)]), Err("no_such_column".to_string()));
    }
}
