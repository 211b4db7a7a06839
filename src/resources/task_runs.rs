//! `task_runs`: the notebook task runs of one clean room (the seed's
//! `databricks_workspace.cleanrooms.task_runs`).

use super::{ColumnDef, Param, ParamPlace::*, Resource, Source::*};

pub static TASK_RUNS: Resource = Resource {
    name: "task_runs",
    description: "Historical notebook task runs in a clean room.",
    path: "/api/2.0/clean-rooms/{clean_room_name}/runs",
    list_key: "runs",
    params: &[
        Param { column: "clean_room_name", place: Path, required: true },
        Param { column: "notebook_name", place: Query("notebook_name"), required: false },
        Param { column: "deployment_name", place: Workspace, required: false },
    ],
    columns: &[
        ColumnDef { name: "clean_room_name", source: Request, sql_type: "text", description: "Name of the clean room (required in WHERE)." },
        ColumnDef { name: "deployment_name", source: Request, sql_type: "text", description: "The workspace deployment name the run was read from." },
        ColumnDef { name: "notebook_name", source: Field("notebook_name"), sql_type: "text", description: "Asset name of the notebook executed in this task run." },
        ColumnDef { name: "notebook_etag", source: Field("notebook_etag"), sql_type: "text", description: "Etag of the notebook executed, identifying the notebook version." },
        ColumnDef { name: "notebook_updated_at", source: Field("notebook_updated_at"), sql_type: "bigint", description: "When the notebook was last updated, in epoch milliseconds." },
        ColumnDef { name: "notebook_job_run_state", source: Field("notebook_job_run_state"), sql_type: "jsonb", description: "State of the task run: {life_cycle_state, result_state}." },
        ColumnDef { name: "output_schema_name", source: Field("output_schema_name"), sql_type: "text", description: "Name of the output schema of the task run." },
        ColumnDef { name: "output_schema_expiration_time", source: Field("output_schema_expiration_time"), sql_type: "bigint", description: "Expiration time of the output schema, in epoch milliseconds." },
        ColumnDef { name: "shared_output_schema_name", source: Field("shared_output_schema_name"), sql_type: "text", description: "Name of the shared output schema of the task run." },
        ColumnDef { name: "shared_output_schema_expiration_time", source: Field("shared_output_schema_expiration_time"), sql_type: "bigint", description: "Expiration time of the shared output schema, in epoch milliseconds." },
        ColumnDef { name: "run_duration", source: Field("run_duration"), sql_type: "bigint", description: "Duration of the task run, in milliseconds." },
        ColumnDef { name: "start_time", source: Field("start_time"), sql_type: "bigint", description: "When the task run started, in epoch milliseconds." },
        ColumnDef { name: "collaborator_job_run_info", source: Field("collaborator_job_run_info"), sql_type: "jsonb", description: "Job run info of the task in the runner's workspace (alias, job, run and workspace ids)." },
    ],
};
