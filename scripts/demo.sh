#!/usr/bin/env bash
# The demo: on a fresh machine (as root), installs what is missing, builds and installs
# databricks_fdw, starts a PostgreSQL cluster (as user postgres; version $PG_MAJOR, default 15,
# e.g. `PG_MAJOR=17 scripts/demo.sh`) and the Databricks API simulator, creates the database
# databricks_workspace with the server, user mapping and foreign tables in its schema
# cleanrooms, and runs the seed's query as StackQL's page writes it.
# Both keep running afterwards, so you can open psql (the command is printed at the end).
# Idempotent: run it again at will. `scripts/demo.sh stop` stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# One cluster per PostgreSQL version, each with its own directory and port (15: 25432), so a
# demo of one version never touches another's, whichever checkout started it.
if [ "$PG_MAJOR" = 15 ]; then DEMO_PORT=${DEMO_PORT:-25432}; else DEMO_PORT=${DEMO_PORT:-$((25440 + PG_MAJOR))}; fi
DEMO_DIR=$PWD/.demo
# The cluster lives where the postgres user can reach it, whatever the checkout's permissions.
DEMO_PGDATA=${TMPDIR:-/tmp}/databricks_fdw-demo/pg$PG_MAJOR
# The seed's query names databricks_workspace.cleanrooms.task_runs: PostgreSQL takes a
# three-part name whose first part is the current database.
DEMO_DB=databricks_workspace
PSQL=(psql -h 127.0.0.1 -p "$DEMO_PORT" -U postgres -d "$DEMO_DB" -v ON_ERROR_STOP=1)

if [ "${1:-}" = stop ]; then
    stop_cluster "$DEMO_PGDATA"
    [ -s "$DEMO_DIR/sim-$PG_MAJOR.pid" ] && kill "$(cat "$DEMO_DIR/sim-$PG_MAJOR.pid")" 2>/dev/null || true
    log "demo stopped"
    exit 0
fi

check_major "$PG_MAJOR"
# The demo uses only a cluster it made itself: it drops and re-creates its objects there.
if ! cluster_is_ours "$DEMO_PGDATA"; then
    log "$DEMO_PGDATA holds files the demo did not put there (or a cluster of a demo older than its marker file): not used"
    log "stop and remove that cluster, or, if it is the demo's, run: touch $DEMO_PGDATA/$CLUSTER_MARK"
    exit 1
fi
ensure_toolchain "$PG_MAJOR"
install_extension release "$PG_MAJOR"
mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
mkdir -p "$(dirname "$DEMO_PGDATA")"
chmod 755 "$(dirname "$DEMO_PGDATA")"
start_cluster "$DEMO_PGDATA" "$DEMO_PORT" "$PG_MAJOR"
psql -h 127.0.0.1 -p "$DEMO_PORT" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DEMO_DB'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$DEMO_PORT" -U postgres -d postgres -qc "CREATE DATABASE $DEMO_DB"
log "starting the Databricks API simulator"
SIM_URL=$(start_simulator "$DEMO_DIR/sim-$PG_MAJOR.pid" "$DEMO_DIR/sim-$PG_MAJOR.port")
log "simulator at $SIM_URL"

"${PSQL[@]}" -q <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS databricks_fdw CASCADE;
CREATE EXTENSION databricks_fdw;
-- A real workspace: workspace_url 'https://dbc-abcd0123-a1bc.cloud.databricks.com'.
CREATE SERVER dbx FOREIGN DATA WRAPPER databricks_fdw
  OPTIONS (workspace_url '$SIM_URL', deployment_name 'dbc-abcd0123-a1bc');
CREATE USER MAPPING FOR CURRENT_USER SERVER dbx OPTIONS (token 'dapi-simulator-token');
DROP SCHEMA IF EXISTS cleanrooms CASCADE;
CREATE SCHEMA cleanrooms;
CREATE FOREIGN TABLE cleanrooms.task_runs (
  clean_room_name text, deployment_name text, notebook_name text, notebook_etag text,
  notebook_updated_at bigint, notebook_job_run_state jsonb, output_schema_name text,
  output_schema_expiration_time bigint, shared_output_schema_name text,
  shared_output_schema_expiration_time bigint, run_duration bigint, start_time bigint,
  collaborator_job_run_info jsonb, page_size text, page_token text
) SERVER dbx OPTIONS (resource 'task_runs');
-- The rest of the service, typed and commented, in one statement.
IMPORT FOREIGN SCHEMA cleanrooms EXCEPT (task_runs) FROM SERVER dbx INTO cleanrooms;
SQL

log "the seed's query, as StackQL's page writes it (its template values filled in)"
"${PSQL[@]}" <<'SQL'
SELECT
notebook_name,
output_schema_name,
collaborator_job_run_info,
notebook_etag,
notebook_job_run_state,
notebook_updated_at,
output_schema_expiration_time,
run_duration,
start_time
FROM databricks_workspace.cleanrooms.task_runs
WHERE clean_room_name = 'acme_x_retailer' -- required
AND deployment_name = 'dbc-abcd0123-a1bc' -- required
AND notebook_name = 'attribution_model'
AND page_size = '100'
AND page_token = ''
;

SELECT notebook_name, notebook_job_run_state->>'result_state' AS result_state,
       to_timestamp(start_time / 1000.0) AS started
FROM cleanrooms.task_runs
WHERE clean_room_name = 'acme_x_retailer'
ORDER BY start_time DESC
LIMIT 5;

SELECT step, ok, detail FROM databricks_fdw_check('dbx');

SELECT version();

SELECT c.name, c.owner, count(t.*) AS runs
FROM cleanrooms.clean_rooms c
LEFT JOIN cleanrooms.task_runs t ON t.clean_room_name = c.name
GROUP BY 1, 2 ORDER BY 1;
SQL

cat <<EOF

The cluster and the simulator are still running. Try it yourself:
    psql -h 127.0.0.1 -p $DEMO_PORT -U postgres -d $DEMO_DB
    databricks_workspace=# SELECT count(*) FROM cleanrooms.task_runs WHERE clean_room_name = 'acme_x_retailer';
    databricks_workspace=# \d+ cleanrooms.clean_room_task_runs
Clean rooms in the simulator's fixture: acme_x_retailer, bank_x_insurer, empty_room, 'partners/2024 é'.
Stop both with: scripts/demo.sh stop
EOF
