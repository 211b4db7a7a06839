//! The Clean Rooms service. Facts from the API reference (shared/docs/databricks-cleanrooms-api.md)
//! and, for the write calls, the official Python SDK (`databricks/sdk/service/cleanrooms.py`);
//! descriptions follow the SDKs' documentation.

use super::{Call, ColumnDef as C, GetBy, Kind::*, Param as P, ParamPlace::*, Parent, Resource, Skip, Source::*, Writes};

const DEPLOYMENT: P = P { column: "deployment_name", place: Workspace, required: false };
const DEPLOYMENT_COLUMN: C =
    C { name: "deployment_name", source: Request, kind: Text, description: "The workspace deployment name the row was read from." };
/// StackQL's optional parameters of the list methods, here as request columns: a query may say
/// `AND page_size = '100' AND page_token = '...'` as StackQL users do; rows echo them.
const PAGE_SIZE: P = P { column: "page_size", place: Query("page_size"), required: false };
const PAGE_TOKEN: P = P { column: "page_token", place: Query("page_token"), required: false };
const PAGE_SIZE_COLUMN: C = C {
    name: "page_size",
    source: Request,
    kind: Text,
    description: "The page_size the query asked for (WHERE page_size = '100'), as StackQL takes it; NULL when it gave none.",
};
const PAGE_TOKEN_COLUMN: C = C {
    name: "page_token",
    source: Request,
    kind: Text,
    description: "The page_token the query started the listing at (WHERE page_token = '...'), as StackQL takes it; NULL when it gave none.",
};
const ROOM_PARAM: P = P { column: "clean_room_name", place: Path, required: true };
const ROOM_COLUMN: C = C {
    name: "clean_room_name",
    source: Request,
    kind: Text,
    description: "Name of the clean room (without a condition on it, every clean room is listed).",
};
/// Resources listed per clean room: without a room, every room's listing.
/// A DELETED room allows nothing but its deletion: its runs, assets and rules cannot be listed.
const PER_ROOM: Option<Parent> = Some(Parent {
    resource: &CLEAN_ROOMS,
    columns: &[("name", "clean_room_name"), ("deployment_name", "deployment_name")],
    skip: Some(Skip { field: "status", values: &["DELETED"] }),
});
const COLLABORATOR_JOB: C = C {
    name: "collaborator_job_run_info",
    source: Field("collaborator_job_run_info"),
    kind: Object,
    description: "Job run info in the runner's workspace: collaborator_alias, collaborator_job_id, collaborator_job_run_id, \
                  collaborator_task_run_id, collaborator_workspace_id (only the workspace id when the run was in another workspace).",
};

const RUN_DURATION: C =
    C { name: "run_duration", source: Field("run_duration"), kind: Integer, description: "Duration of the task run, in milliseconds." };
const START_TIME: C = C { name: "start_time", source: Field("start_time"), kind: EpochMillis, description: "When the task run started." };
const LIFE_CYCLE: &str = "Life cycle state of the run: PENDING, QUEUED, RUNNING, TERMINATED, ...";
const RESULT: &str = "Result of a finished run: SUCCESS, FAILED, CANCELED, TIMEDOUT, ... (NULL while running).";

pub static TASK_RUNS: Resource = Resource {
    name: "task_runs",
    description: "Historical notebook task runs in a clean room.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/runs",
    list_key: "runs",
    get: None,
    params: &[ROOM_PARAM, P { column: "notebook_name", place: Query("notebook_name"), required: false }, DEPLOYMENT, PAGE_SIZE, PAGE_TOKEN],
    columns: &[
        ROOM_COLUMN,
        DEPLOYMENT_COLUMN,
        C {
            name: "notebook_name",
            source: Field("notebook_name"),
            kind: Text,
            description: "Asset name of the notebook executed in this task run.",
        },
        C {
            name: "notebook_etag",
            source: Field("notebook_etag"),
            kind: Text,
            description: "Etag of the notebook executed, identifying the notebook version.",
        },
        C {
            name: "notebook_updated_at",
            source: Field("notebook_updated_at"),
            kind: EpochMillis,
            description: "When the notebook was last updated.",
        },
        C {
            name: "notebook_job_run_state",
            source: Field("notebook_job_run_state"),
            kind: Object,
            description: "State of the task run: {life_cycle_state, result_state}.",
        },
        C { name: "life_cycle_state", source: Field("notebook_job_run_state.life_cycle_state"), kind: Text, description: LIFE_CYCLE },
        C { name: "result_state", source: Field("notebook_job_run_state.result_state"), kind: Text, description: RESULT },
        C {
            name: "output_schema_name",
            source: Field("output_schema_name"),
            kind: Text,
            description: "Name of the output schema of the task run.",
        },
        C {
            name: "output_schema_expiration_time",
            source: Field("output_schema_expiration_time"),
            kind: EpochMillis,
            description: "When the output schema expires.",
        },
        C {
            name: "shared_output_schema_name",
            source: Field("shared_output_schema_name"),
            kind: Text,
            description: "Name of the shared output schema of the task run.",
        },
        C {
            name: "shared_output_schema_expiration_time",
            source: Field("shared_output_schema_expiration_time"),
            kind: EpochMillis,
            description: "When the shared output schema expires.",
        },
        RUN_DURATION,
        START_TIME,
        COLLABORATOR_JOB,
        PAGE_SIZE_COLUMN,
        PAGE_TOKEN_COLUMN,
    ],
    max_page_size: Some(10_000),
    default_page_size: None,
    parent: PER_ROOM,
    writes: None,
    listable: &[],
};

pub static CLEAN_ROOM_TASK_RUNS: Resource = Resource {
    name: "clean_room_task_runs",
    description: "Historical task runs (notebooks and JAR analyses) in a clean room, from the newer task-runs endpoint.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/task-runs",
    list_key: "runs",
    get: None,
    params: &[
        ROOM_PARAM,
        P { column: "name", place: Query("name"), required: false },
        P { column: "task_type", place: Query("task_type"), required: false },
        DEPLOYMENT,
        PAGE_SIZE,
        PAGE_TOKEN,
    ],
    columns: &[
        ROOM_COLUMN,
        DEPLOYMENT_COLUMN,
        C { name: "name", source: Field("name"), kind: Text, description: "Name of the executable: the notebook or JAR analysis." },
        C { name: "task_type", source: Field("task_type"), kind: Text, description: "NOTEBOOK or JAR." },
        C {
            name: "task_run_state",
            source: Field("task_run_state"),
            kind: Object,
            description: "State of the task run: {life_cycle_state, result_state}.",
        },
        C { name: "life_cycle_state", source: Field("task_run_state.life_cycle_state"), kind: Text, description: LIFE_CYCLE },
        C { name: "result_state", source: Field("task_run_state.result_state"), kind: Text, description: RESULT },
        C {
            name: "analysis_details",
            source: Field("analysis_details"),
            kind: Object,
            description: "The executable's version: {etag, updated_at}.",
        },
        C {
            name: "output_info",
            source: Field("output_info"),
            kind: Object,
            description: "Output schema of the run: {output_schema_name, output_schema_expiration_time}.",
        },
        C {
            name: "shared_output_info",
            source: Field("shared_output_info"),
            kind: Object,
            description: "Shared output schema of the run: {output_schema_name, output_schema_expiration_time}.",
        },
        RUN_DURATION,
        START_TIME,
        COLLABORATOR_JOB,
        PAGE_SIZE_COLUMN,
        PAGE_TOKEN_COLUMN,
    ],
    max_page_size: Some(100),
    default_page_size: Some(100),
    parent: PER_ROOM,
    writes: None,
    listable: &[],
};

pub static CLEAN_ROOMS: Resource = Resource {
    name: "clean_rooms",
    description: "The clean rooms the caller can see; WHERE name = ... reads one clean room.",
    path: "/api/2.0/clean-rooms",
    list_key: "clean_rooms",
    get: Some(GetBy { column: "name", path: "/api/2.0/clean-rooms/{name}" }),
    params: &[P { column: "name", place: Path, required: false }, DEPLOYMENT, PAGE_SIZE, PAGE_TOKEN],
    columns: &[
        C { name: "name", source: Field("name"), kind: Text, description: "Name of the clean room." },
        DEPLOYMENT_COLUMN,
        C { name: "owner", source: Field("owner"), kind: Text, description: "Owner of the clean room." },
        C { name: "comment", source: Field("comment"), kind: Text, description: "Comment on the clean room." },
        C { name: "status", source: Field("status"), kind: Text, description: "ACTIVE, DELETED, FAILED or PROVISIONING." },
        C { name: "created_at", source: Field("created_at"), kind: EpochMillis, description: "When the clean room was created." },
        C { name: "updated_at", source: Field("updated_at"), kind: EpochMillis, description: "When the clean room was last updated." },
        C {
            name: "access_restricted",
            source: Field("access_restricted"),
            kind: Text,
            description: "Whether access to the clean room is restricted (e.g. for compliance).",
        },
        C {
            name: "enable_shared_output",
            source: Field("enable_shared_output"),
            kind: Boolean,
            description: "Whether runs may write shared output schemas.",
        },
        C {
            name: "local_collaborator_alias",
            source: Field("local_collaborator_alias"),
            kind: Text,
            description: "The caller's own collaborator alias in the clean room.",
        },
        C {
            name: "output_catalog",
            source: Field("output_catalog"),
            kind: Object,
            description: "Catalog of the clean room's output tables: {catalog_name, status}.",
        },
        C {
            name: "remote_detailed_info",
            source: Field("remote_detailed_info"),
            kind: Object,
            description: "Central clean room details (collaborators, cloud, region); filled when reading one clean room by name.",
        },
        PAGE_SIZE_COLUMN,
        PAGE_TOKEN_COLUMN,
    ],
    max_page_size: Some(10_000),
    default_page_size: None,
    parent: None,
    writes: Some(Writes {
        keys: &["name"],
        create: Call { path: "/api/2.0/clean-rooms", wrap: None, body_keys: &[] },
        insertable: &["name", "owner", "comment", "enable_shared_output", "remote_detailed_info"],
        required: &["name"],
        update: Call { path: "/api/2.0/clean-rooms/{name}", wrap: Some("clean_room"), body_keys: &[] },
        updatable: &["owner", "comment", "enable_shared_output", "remote_detailed_info"],
        delete: "/api/2.0/clean-rooms/{name}",
    }),
    listable: &[],
};

/// Columns of an asset, which asset revisions share.
macro_rules! asset_columns {
    ([$($first:expr),*], [$($last:expr),*]) => {
        &[
            $($first,)*
            DEPLOYMENT_COLUMN,
            C {
                name: "added_at",
                source: Field("added_at"),
                kind: EpochMillis,
                description: "When the asset (revision) was added to the clean room.",
            },
            C {
                name: "owner_collaborator_alias",
                source: Field("owner_collaborator_alias"),
                kind: Text,
                description: "Alias of the collaborator who owns the asset.",
            },
            C { name: "status", source: Field("status"), kind: Text, description: "ACTIVE, PENDING or PERMISSION_DENIED." },
            C {
                name: "notebook",
                source: Field("notebook"),
                kind: Object,
                description: "For a NOTEBOOK_FILE: {etag, notebook_content, review_state, runner_collaborator_aliases, ...}.",
            },
            C {
                name: "jar_analysis",
                source: Field("jar_analysis"),
                kind: Object,
                description: "For a JAR_ANALYSIS: {main_class_name, central_jar_file_paths, review_state, ...}.",
            },
            C { name: "table", source: Field("table"), kind: Object, description: "For a TABLE: {columns}." },
            C {
                name: "table_local_details",
                source: Field("table_local_details"),
                kind: Object,
                description: "For a TABLE owned by the caller: {local_name, partitions}.",
            },
            C { name: "view", source: Field("view"), kind: Object, description: "For a VIEW." },
            C {
                name: "view_local_details",
                source: Field("view_local_details"),
                kind: Object,
                description: "For a VIEW owned by the caller: {local_name}.",
            },
            C {
                name: "volume_local_details",
                source: Field("volume_local_details"),
                kind: Object,
                description: "For a VOLUME owned by the caller: {local_name}.",
            },
            C { name: "foreign_table", source: Field("foreign_table"), kind: Object, description: "For a FOREIGN_TABLE." },
            C {
                name: "foreign_table_local_details",
                source: Field("foreign_table_local_details"),
                kind: Object,
                description: "For a FOREIGN_TABLE owned by the caller: {local_name}.",
            },
            $($last,)*
        ]
    };
}

pub static ASSETS: Resource = Resource {
    name: "assets",
    description: "Assets (tables, views, volumes, notebooks, ...) shared in a clean room.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/assets",
    list_key: "assets",
    get: None,
    params: &[ROOM_PARAM, DEPLOYMENT, PAGE_TOKEN],
    columns: asset_columns!(
        [
            ROOM_COLUMN,
            C { name: "name", source: Field("name"), kind: Text, description: "Name of the asset, unique per asset type." },
            C {
                name: "asset_type",
                source: Field("asset_type"),
                kind: Text,
                description: "FOREIGN_TABLE, JAR_ANALYSIS, NOTEBOOK_FILE, TABLE, VIEW or VOLUME."
            }
        ],
        [PAGE_TOKEN_COLUMN]
    ),
    max_page_size: None,
    default_page_size: None,
    parent: PER_ROOM,
    writes: Some(Writes {
        keys: &["clean_room_name", "asset_type", "name"],
        // The create call does not take the room from its path: the body names it too.
        create: Call { path: "/api/2.0/clean-rooms/{clean_room_name}/assets", wrap: None, body_keys: &[] },
        insertable: &[
            "clean_room_name",
            "name",
            "asset_type",
            "notebook",
            "jar_analysis",
            "table",
            "table_local_details",
            "view",
            "view_local_details",
            "volume_local_details",
            "foreign_table",
            "foreign_table_local_details",
        ],
        required: &["clean_room_name", "name", "asset_type"],
        // The body identifies the asset by its own name and type, as the path does.
        update: Call {
            path: "/api/2.0/clean-rooms/{clean_room_name}/assets/{asset_type}/{name}",
            wrap: None,
            body_keys: &["name", "asset_type"],
        },
        updatable: &[
            "notebook",
            "jar_analysis",
            "table",
            "table_local_details",
            "view",
            "view_local_details",
            "volume_local_details",
            "foreign_table",
            "foreign_table_local_details",
        ],
        delete: "/api/2.0/clean-rooms/{clean_room_name}/assets/{asset_type}/{name}",
    }),
    listable: &[],
};

pub static ASSET_REVISIONS: Resource = Resource {
    name: "asset_revisions",
    description: "Revisions of one asset of a clean room, newest first.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/assets/{asset_type}/{name}/revisions",
    list_key: "revisions",
    get: None,
    params: &[
        ROOM_PARAM,
        P { column: "asset_type", place: Path, required: true },
        P { column: "name", place: Path, required: true },
        DEPLOYMENT,
        PAGE_SIZE,
        PAGE_TOKEN,
    ],
    columns: asset_columns!(
        [
            ROOM_COLUMN,
            C { name: "name", source: Request, kind: Text, description: "Name of the asset (without a condition, every asset is listed)." },
            C {
                name: "asset_type",
                source: Request,
                kind: Text,
                description: "Type of the asset: NOTEBOOK_FILE, TABLE, ... (without a condition, every asset is listed)."
            }
        ],
        [PAGE_SIZE_COLUMN, PAGE_TOKEN_COLUMN]
    ),
    max_page_size: Some(10_000),
    default_page_size: None,
    parent: Some(Parent {
        resource: &ASSETS,
        columns: &[
            ("clean_room_name", "clean_room_name"),
            ("asset_type", "asset_type"),
            ("name", "name"),
            ("deployment_name", "deployment_name"),
        ],
        skip: None,
    }),
    writes: None,
    // "Asset type. Only NOTEBOOK_FILE is supported." (the SDKs)
    listable: &[("asset_type", &["NOTEBOOK_FILE"])],
};

/// What a rule says: whose notebooks (one author, or a scope), run by whom.
const RULE_FIELDS: &[&str] = &["author_collaborator_alias", "author_scope", "runner_collaborator_alias"];

pub static AUTO_APPROVAL_RULES: Resource = Resource {
    name: "auto_approval_rules",
    description: "Rules that approve notebook runs in a clean room automatically.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/auto-approval-rules",
    list_key: "rules",
    get: None,
    params: &[ROOM_PARAM, DEPLOYMENT, PAGE_SIZE, PAGE_TOKEN],
    columns: &[
        ROOM_COLUMN,
        DEPLOYMENT_COLUMN,
        C { name: "rule_id", source: Field("rule_id"), kind: Text, description: "Id of the rule." },
        C {
            name: "author_collaborator_alias",
            source: Field("author_collaborator_alias"),
            kind: Text,
            description: "Notebooks by this collaborator are approved.",
        },
        C {
            name: "author_scope",
            source: Field("author_scope"),
            kind: Text,
            description: "Which authors the rule covers (e.g. ANY_AUTHOR).",
        },
        C { name: "created_at", source: Field("created_at"), kind: EpochMillis, description: "When the rule was created." },
        C {
            name: "rule_owner_collaborator_alias",
            source: Field("rule_owner_collaborator_alias"),
            kind: Text,
            description: "Collaborator who owns the rule.",
        },
        C {
            name: "runner_collaborator_alias",
            source: Field("runner_collaborator_alias"),
            kind: Text,
            description: "Runs by this collaborator are approved.",
        },
        PAGE_SIZE_COLUMN,
        PAGE_TOKEN_COLUMN,
    ],
    max_page_size: Some(10_000),
    default_page_size: None,
    parent: PER_ROOM,
    writes: Some(Writes {
        keys: &["clean_room_name", "rule_id"],
        create: Call {
            path: "/api/2.0/clean-rooms/{clean_room_name}/auto-approval-rules",
            wrap: Some("auto_approval_rule"),
            body_keys: &[],
        },
        insertable: RULE_FIELDS,
        required: &["clean_room_name"],
        // "The rule_id field is used to identify the rule to update" (the SDK): the body names it.
        update: Call { path: "/api/2.0/clean-rooms/{clean_room_name}/auto-approval-rules/{rule_id}", wrap: None, body_keys: &["rule_id"] },
        updatable: RULE_FIELDS,
        delete: "/api/2.0/clean-rooms/{clean_room_name}/auto-approval-rules/{rule_id}",
    }),
    listable: &[],
};
