//! Declarative definitions of the API resources a foreign table can read. Adding a resource is
//! adding one [`Resource`] value to [`RESOURCES`]: its endpoint, the key of the list in the
//! response, which columns become request parameters, and its columns with their kinds and
//! descriptions. Planning, requests, IMPORT FOREIGN SCHEMA, comments and the README's table
//! reference all come from these definitions.

mod cleanrooms;
pub mod ddl;
#[cfg(test)]
mod docs;
mod scan_columns;

pub use scan_columns::{ColumnSource, Origin, ScanColumns};

/// One readable API resource (the table option `resource` names it).
#[derive(Debug)]
pub struct Resource {
    pub name: &'static str,
    pub description: &'static str,
    /// The list endpoint, with `{column}` placeholders for path parameters.
    pub path: &'static str,
    /// The key of the array of items in each page.
    pub list_key: &'static str,
    /// A single-object endpoint used instead when the query gives this column a value.
    pub get: Option<GetBy>,
    /// Columns whose `=` (or `IN`) conditions become part of the request.
    pub params: &'static [Param],
    pub columns: &'static [ColumnDef],
    /// The largest page_size the endpoint takes (`None`: it takes no page_size at all).
    pub max_page_size: Option<u32>,
    /// The page_size sent when the table gives none: the documented maximum where there is one,
    /// so that a query makes as few requests as the API allows (`None`: the API's default).
    pub default_page_size: Option<u32>,
    /// Where values for the required request columns come from when a query gives none: each
    /// item of the parent's listing gives one listing of this resource.
    pub parent: Option<Parent>,
    /// How INSERT, UPDATE and DELETE change the resource (`None`: read-only).
    pub writes: Option<Writes>,
    /// Request columns whose values the API lists anything for: (column, values). Another value
    /// has nothing to list (revisions exist for notebooks only): no request, no row.
    pub listable: &'static [(&'static str, &'static [&'static str])],
}

/// The calls that create, update and delete items of a resource, and which columns each may
/// set. Values go into the body as JSON of the column's kind; NULL leaves a field out.
#[derive(Debug)]
pub struct Writes {
    /// The columns that identify one item: the placeholders of the update and delete paths.
    pub keys: &'static [&'static str],
    /// `POST`: the create call. Its path placeholders must be given by an INSERT too.
    pub create: Call,
    /// Fields an INSERT may give (the others are the service's to set).
    pub insertable: &'static [&'static str],
    /// Columns an INSERT must give: the create path's, and the fields the SDK requires.
    pub required: &'static [&'static str],
    /// `PATCH`: the update call, sent with the changed fields only.
    pub update: Call,
    /// Fields an UPDATE may change.
    pub updatable: &'static [&'static str],
    /// `DELETE`: the delete call's path (no body).
    pub delete: &'static str,
}

/// One write call of the API.
#[derive(Debug)]
pub struct Call {
    /// With `{column}` placeholders, percent-encoded as one segment each.
    pub path: &'static str,
    /// The key the body's object is wrapped in (`{"clean_room": {...}}`), if the API wants one.
    pub wrap: Option<&'static str>,
    /// Key columns the body repeats beside the path (the asset update names its asset).
    pub body_keys: &'static [&'static str],
}

/// What a statement does to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    pub fn sql(self) -> &'static str {
        match self {
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    /// The verb and preposition for a message: "insert into", "update", "delete from".
    pub fn phrase(self) -> &'static str {
        match self {
            Operation::Insert => "insert into",
            Operation::Update => "update",
            Operation::Delete => "delete from",
        }
    }

    pub fn method(self) -> &'static str {
        match self {
            Operation::Insert => "POST",
            Operation::Update => "PATCH",
            Operation::Delete => "DELETE",
        }
    }
}

impl Writes {
    /// The path of `op`'s call, and the key its body is wrapped in (a DELETE has no body).
    pub fn call(&self, op: Operation) -> (&'static str, Option<&'static str>) {
        match op {
            Operation::Insert => (self.create.path, self.create.wrap),
            Operation::Update => (self.update.path, self.update.wrap),
            Operation::Delete => (self.delete, None),
        }
    }

    /// The request line EXPLAIN shows (`POST /api/2.0/clean-rooms`).
    pub fn request_line(&self, op: Operation) -> String {
        format!("{} {}", op.method(), self.call(op).0)
    }
}

/// A resource listed per item of another, and which of the parent's columns give which of
/// this resource's request columns (`clean_rooms.name` gives `task_runs.clean_room_name`).
#[derive(Debug)]
pub struct Parent {
    pub resource: &'static Resource,
    /// (parent column, this resource's request column)
    pub columns: &'static [(&'static str, &'static str)],
    /// Parent items the API documents as having nothing to list (a deleted clean room): they
    /// are not followed, and EXPLAIN ANALYZE counts them.
    pub skip: Option<Skip>,
}

/// Which parent items are not followed: those whose `field` is one of `values`.
#[derive(Debug)]
pub struct Skip {
    pub field: &'static str,
    pub values: &'static [&'static str],
}

/// `GET {path}` for one object, when `column` has a value.
#[derive(Debug)]
pub struct GetBy {
    pub column: &'static str,
    pub path: &'static str,
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
    pub kind: Kind,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A field of each item; a dotted path (`a.b`) reaches into nested objects.
    Field(&'static str),
    /// The value the request was made with (the row echoes what the WHERE clause asked for).
    Request,
}

/// What a column holds, which decides the SQL type IMPORT FOREIGN SCHEMA declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A number of milliseconds (a duration) or a plain integer.
    Integer,
    /// A point in time, in epoch milliseconds.
    EpochMillis,
    Boolean,
    /// A JSON object or array.
    Object,
}

impl Kind {
    /// The SQL type to declare; `raw` keeps epoch milliseconds as bigint, as the API sends them.
    pub fn sql_type(self, raw: bool) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "bigint",
            Kind::EpochMillis if raw => "bigint",
            Kind::EpochMillis => "timestamptz",
            Kind::Boolean => "boolean",
            Kind::Object => "jsonb",
        }
    }
}

pub static RESOURCES: &[&Resource] = &[
    &cleanrooms::TASK_RUNS,
    &cleanrooms::CLEAN_ROOMS,
    &cleanrooms::ASSETS,
    &cleanrooms::ASSET_REVISIONS,
    &cleanrooms::AUTO_APPROVAL_RULES,
    &cleanrooms::CLEAN_ROOM_TASK_RUNS,
];

/// The remote schema IMPORT FOREIGN SCHEMA knows: the Clean Rooms service.
pub const REMOTE_SCHEMA: &str = "cleanrooms";

pub fn find(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().copied().find(|r| r.name == name)
}

/// A field name with a 'static lifetime: a resource's own, or (for a name that only a column
/// option gives) one leaked once per distinct name for the backend's life.
pub fn static_field(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    for r in RESOURCES {
        for c in r.columns {
            if let Source::Field(f) = c.source {
                if f == name {
                    return f;
                }
            }
        }
    }
    static EXTRA: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut extra = EXTRA.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = extra.get(name) {
        return f;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    extra.insert(leaked);
    leaked
}

/// The `{column}` placeholders of an API path, in order.
pub fn placeholders(path: &'static str) -> Vec<&'static str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
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

    /// The parent whose items give the values of this resource's request columns, when the
    /// query gives no value for a required one (`has` says which it gives) and `list_parents`
    /// allows it; `None` when the query's values are used as they are. Planning and execution
    /// both decide by this.
    pub fn parent_to_list(&self, has: impl Fn(&str) -> bool, list_parents: bool) -> Option<&Parent> {
        let missing = self.required_params().any(|p| !has(p.column));
        self.parent.as_ref().filter(|_| missing && list_parents)
    }

    /// The listings a scan makes, outermost first, when the query gives values for the request
    /// columns `given`: this resource alone, or (with `list_parents`, when a required column
    /// has no value) its parent's listing first, recursively. Each with the columns it is given
    /// values for. `None`: a required column has no value and no parent gives it.
    pub fn listings(&'static self, given: &[&'static str], list_parents: bool) -> Option<Vec<(&'static Resource, Vec<&'static str>)>> {
        let Some(parent) = self.parent_to_list(|c| given.contains(&c), list_parents) else {
            let missing = self.required_params().any(|p| !given.contains(&p.column));
            return (!missing).then(|| vec![(self, given.to_vec())]);
        };
        let parent_given: Vec<&'static str> = parent
            .columns
            .iter()
            .filter(|(from, to)| parent.resource.param(from).is_some() && given.contains(to))
            .map(|(from, _)| *from)
            .collect();
        let mut chain = parent.resource.listings(&parent_given, true)?;
        chain.push((self, given.to_vec()));
        Some(chain)
    }

    /// The request line of a listing given values for `given` (the single-object endpoint when
    /// its column has one).
    pub fn request_line(&self, given: &[&str]) -> String {
        match &self.get {
            Some(get) if given.contains(&get.column) => format!("GET {}", get.path),
            _ => format!("GET {}", self.path),
        }
    }

    /// The request column that chooses the workspace (`deployment_name`), if any.
    pub fn workspace_column(&self) -> Option<&'static str> {
        let params: &'static [Param] = self.params;
        params.iter().find(|p| p.place == ParamPlace::Workspace).map(|p| p.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_without_required_values_go_through_the_parents() {
        let names = |c: Option<Vec<(&'static Resource, Vec<&'static str>)>>| c.map(|c| c.iter().map(|(r, _)| r.name).collect::<Vec<_>>());
        let runs = find("task_runs").unwrap();
        assert_eq!(names(runs.listings(&["clean_room_name"], true)), Some(vec!["task_runs"]));
        assert_eq!(names(runs.listings(&["notebook_name"], true)), Some(vec!["clean_rooms", "task_runs"]));
        assert_eq!(names(runs.listings(&[], false)), None);
        let revisions = find("asset_revisions").unwrap();
        assert_eq!(names(revisions.listings(&[], true)), Some(vec!["clean_rooms", "assets", "asset_revisions"]));
        let chain = revisions.listings(&["clean_room_name", "deployment_name"], true).unwrap();
        assert_eq!(
            chain.iter().map(|(r, g)| (r.name, g.clone())).collect::<Vec<_>>(),
            [("assets", vec!["clean_room_name", "deployment_name"]), ("asset_revisions", vec!["clean_room_name", "deployment_name"])]
        );
        let rooms = find("clean_rooms").unwrap();
        assert_eq!(rooms.request_line(&["name"]), "GET /api/2.0/clean-rooms/{name}");
        assert_eq!(rooms.request_line(&[]), "GET /api/2.0/clean-rooms");
    }

    /// Writable columns are plain fields of a kind the body can carry; keys fill the paths.
    fn check_writes(r: &Resource, w: &Writes) {
        for name in w.insertable.iter().chain(w.updatable) {
            let c = r.column(name).unwrap_or_else(|| panic!("{}: writable {name} is not a column", r.name));
            let plain = matches!(c.source, Source::Field(f) if f == c.name)
                || (c.source == Source::Request && r.workspace_column() != Some(c.name));
            assert!(plain, "{}: writable {name} must be a plain field", r.name);
            assert!(matches!(c.kind, Kind::Text | Kind::Boolean | Kind::Object), "{}: {name} has no JSON form for a body", r.name);
            assert!(!w.keys.contains(name) || w.insertable.contains(name), "{}: key {name} cannot be updated", r.name);
        }
        for key in w.keys {
            assert!(!w.updatable.contains(key), "{}: key {key} cannot be updated", r.name);
        }
        for path in [w.create.path, w.update.path, w.delete] {
            for name in placeholders(path) {
                assert!(r.column(name).is_some(), "{}: {{{name}}} of {path} is not a column", r.name);
            }
        }
        for path in [w.update.path, w.delete] {
            assert_eq!(placeholders(path), w.keys.to_vec(), "{}: {path} must name the keys", r.name);
        }
        for name in placeholders(w.create.path) {
            assert!(w.required.contains(&name), "{}: the create path's {name} is required", r.name);
        }
        for name in w.required {
            assert!(
                w.insertable.contains(name) || placeholders(w.create.path).contains(name),
                "{}: required {name} cannot be given",
                r.name
            );
        }
        for key in w.update.body_keys {
            assert!(w.keys.contains(key), "{}: {key} is not a key", r.name);
        }
    }

    #[test]
    fn definitions_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for r in RESOURCES {
            assert!(names.insert(r.name), "{} twice", r.name);
            for p in r.params {
                assert!(r.column(p.column).is_some(), "{}: param {} has no column", r.name, p.column);
            }
            for name in placeholders(r.path) {
                let p = r.param(name).unwrap_or_else(|| panic!("{}: {{{name}}} is not a param", r.name));
                assert_eq!(p.place, ParamPlace::Path);
                assert!(p.required, "{}: path params of the list endpoint are required", r.name);
            }
            if let Some(get) = &r.get {
                for name in placeholders(get.path) {
                    let p = r.param(name).unwrap_or_else(|| panic!("{}: {{{name}}} is not a param", r.name));
                    assert!(p.required || name == get.column, "{}: {name}", r.name);
                }
            }
            let mut columns = std::collections::HashSet::new();
            for c in r.columns {
                assert!(columns.insert(c.name), "{}: column {} twice", r.name, c.name);
                if c.source == Source::Request {
                    assert!(r.param(c.name).is_some(), "{}: request column {} is not a param", r.name, c.name);
                }
                assert!(!c.description.is_empty(), "{}.{} has no description", r.name, c.name);
            }
            for p in r.required_params() {
                assert_ne!(p.place, ParamPlace::Workspace);
            }
            if let Some(w) = &r.writes {
                check_writes(r, w);
            }
            if let Some(parent) = &r.parent {
                for (from, to) in parent.columns {
                    assert!(parent.resource.column(from).is_some(), "{}: parent column {from}", r.name);
                    assert!(r.param(to).is_some(), "{}: {to} is not a param", r.name);
                }
                for p in r.required_params() {
                    assert!(parent.columns.iter().any(|(_, to)| *to == p.column), "{}: the parent gives no {}", r.name, p.column);
                }
            }
        }
    }
}
