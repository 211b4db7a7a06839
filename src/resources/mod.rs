//! Declarative definitions of the API resources a foreign table can read. Adding a resource is
//! adding one [`Resource`] value to [`RESOURCES`]: its endpoint, the key of the list in the
//! response, which columns become request parameters, and its columns.

mod task_runs;

/// One readable API resource (the table option `resource` names it).
#[derive(Debug)]
pub struct Resource {
    pub name: &'static str,
    pub description: &'static str,
    /// The endpoint, with `{column}` placeholders for path parameters.
    pub path: &'static str,
    /// The key of the array of items in each page.
    pub list_key: &'static str,
    /// Columns whose `=` (or `IN`) conditions become part of the request.
    pub params: &'static [Param],
    pub columns: &'static [ColumnDef],
}

/// A column that the request is built from.
#[derive(Debug)]
pub struct Param {
    pub column: &'static str,
    pub place: ParamPlace,
    /// Without a value for it, the resource cannot be listed at all.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamPlace {
    /// A `{column}` segment of the path, percent-encoded as one segment.
    Path,
    /// A query-string parameter of this name.
    Query(&'static str),
    /// Chooses the workspace: the `{deployment_name}` of the server's `workspace_url`.
    Workspace,
}

/// One column of a resource.
#[derive(Debug)]
pub struct ColumnDef {
    pub name: &'static str,
    pub source: Source,
    /// The SQL type documented for the column (what IMPORT FOREIGN SCHEMA would declare).
    pub sql_type: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A top-level field of each item.
    Field(&'static str),
    /// The value the request was made with (the row echoes what the WHERE clause asked for).
    Request,
}

pub static RESOURCES: &[&Resource] = &[&task_runs::TASK_RUNS];

pub fn find(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().copied().find(|r| r.name == name)
}

pub fn names() -> Vec<&'static str> {
    RESOURCES.iter().map(|r| r.name).collect()
}

impl Resource {
    pub fn column(&self, name: &str) -> Option<&'static ColumnDef> {
        // Resources are 'static, so their columns are too.
        let columns: &'static [ColumnDef] = self.columns;
        columns.iter().find(|c| c.name == name)
    }

    pub fn param(&self, column: &str) -> Option<&'static Param> {
        let params: &'static [Param] = self.params;
        params.iter().find(|p| p.column == column)
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    pub fn required_params(&self) -> impl Iterator<Item = &'static Param> {
        let params: &'static [Param] = self.params;
        params.iter().filter(|p| p.required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_param_is_a_column_and_every_path_placeholder_a_path_param() {
        for r in RESOURCES {
            for p in r.params {
                assert!(r.column(p.column).is_some(), "{}: param {} has no column", r.name, p.column);
            }
            for segment in r.path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    let p = r.param(name).unwrap_or_else(|| panic!("{}: {{{name}}} is not a param", r.name));
                    assert_eq!(p.place, ParamPlace::Path);
                    assert!(p.required, "{}: path params are required", r.name);
                }
            }
            for c in r.columns {
                if c.source == Source::Request {
                    assert!(r.param(c.name).is_some(), "{}: request column {} is not a param", r.name, c.name);
                }
            }
        }
    }
}
