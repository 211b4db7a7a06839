//! The tables the oracle queries: the same columns for the foreign table and its truth.

pub struct Table {
    /// The resource, and the name the table is made under (with a prefix).
    pub name: &'static str,
    pub columns: &'static str,
    /// The column that names the clean room.
    pub room_column: &'static str,
    /// Listed per clean room (every table but `clean_rooms`).
    pub per_room: bool,
    /// The columns conditions are made on, besides the room and the deployment.
    pub filters: &'static [Filter],
    /// The largest page_size the resource takes (`None`: its endpoint takes none).
    pub max_page_size: Option<usize>,
}

#[derive(Clone, Copy)]
pub struct Filter {
    pub column: &'static str,
    pub kind: FilterKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    /// A text column the API filters by (an equality makes fewer pages).
    Pushed,
    /// A text column Postgres filters.
    Text,
    /// A bigint column.
    Number,
    /// A text field inside a jsonb column: `column->>'field'`.
    Json(&'static str),
}

const fn f(column: &'static str, kind: FilterKind) -> Filter {
    Filter { column, kind }
}

pub const TASK_RUNS: Table = Table {
    name: "task_runs",
    columns: "clean_room_name text, deployment_name text, notebook_name text, notebook_etag text, \
              notebook_job_run_state jsonb, run_duration bigint, start_time bigint, collaborator_job_run_info jsonb",
    room_column: "clean_room_name",
    per_room: true,
    max_page_size: Some(10_000),
    filters: &[
        f("notebook_name", FilterKind::Pushed),
        f("notebook_etag", FilterKind::Text),
        f("run_duration", FilterKind::Number),
        f("notebook_job_run_state", FilterKind::Json("result_state")),
    ],
};

pub const CLEAN_ROOM_TASK_RUNS: Table = Table {
    name: "clean_room_task_runs",
    columns: "clean_room_name text, deployment_name text, name text, task_type text, task_run_state jsonb, start_time bigint",
    room_column: "clean_room_name",
    per_room: true,
    max_page_size: Some(100),
    filters: &[
        f("name", FilterKind::Pushed),
        f("task_type", FilterKind::Pushed),
        f("start_time", FilterKind::Number),
        f("task_run_state", FilterKind::Json("life_cycle_state")),
    ],
};

pub const ASSETS: Table = Table {
    name: "assets",
    columns: "clean_room_name text, deployment_name text, name text, asset_type text, status text, added_at bigint",
    room_column: "clean_room_name",
    per_room: true,
    max_page_size: None,
    filters: &[
        f("name", FilterKind::Text),
        f("asset_type", FilterKind::Text),
        f("status", FilterKind::Text),
        f("added_at", FilterKind::Number),
    ],
};

pub const ASSET_REVISIONS: Table = Table {
    name: "asset_revisions",
    columns: "clean_room_name text, name text, asset_type text, deployment_name text, \
              added_at bigint, status text, owner_collaborator_alias text",
    room_column: "clean_room_name",
    per_room: true,
    max_page_size: Some(10_000),
    filters: &[
        f("name", FilterKind::Text),
        f("asset_type", FilterKind::Text),
        f("status", FilterKind::Text),
        f("added_at", FilterKind::Number),
    ],
};

pub const RULES: Table = Table {
    name: "auto_approval_rules",
    columns:
        "clean_room_name text, deployment_name text, rule_id text, author_scope text, author_collaborator_alias text, created_at bigint",
    room_column: "clean_room_name",
    per_room: true,
    max_page_size: Some(10_000),
    filters: &[f("author_scope", FilterKind::Text), f("author_collaborator_alias", FilterKind::Text), f("created_at", FilterKind::Number)],
};

pub const CLEAN_ROOMS: Table = Table {
    name: "clean_rooms",
    columns: "name text, deployment_name text, owner text, status text, created_at bigint",
    room_column: "name",
    per_room: false,
    max_page_size: Some(10_000),
    filters: &[f("owner", FilterKind::Text), f("status", FilterKind::Text), f("created_at", FilterKind::Number)],
};

pub const ALL: [&Table; 6] = [&TASK_RUNS, &CLEAN_ROOM_TASK_RUNS, &ASSETS, &ASSET_REVISIONS, &RULES, &CLEAN_ROOMS];

/// Tables whose listing needs values besides the room (asset_revisions: the asset's type and
/// name), which the generated queries never give.
pub fn needs_more_than_the_room(table: &Table) -> bool {
    table.name == ASSET_REVISIONS.name
}

/// The names of a table's columns, in order.
pub fn column_names(table: &Table) -> Vec<&'static str> {
    table.columns.split(", ").map(|c| c.split(' ').next().unwrap_or(c)).collect()
}
