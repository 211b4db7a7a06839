#!/usr/bin/env bash
# Tests upgrades and the .deb on the default PostgreSQL version (run by scripts/test.sh, after
# the debug build was installed):
#   1. ALTER EXTENSION databricks_fdw UPDATE from every frozen earlier version in sql/ keeps the
#      servers, user mappings and foreign tables, and queries work afterwards;
#   2. the upgraded extension has exactly the objects (and function definitions) of a new
#      installation: a change to the generated SQL without an upgrade script fails here;
#   3. the .deb holds the files `cargo pgrx install` installs, at the same places; unpacked into
#      an installation without the build's files, it runs CREATE EXTENSION and the seed's query.
# All of it in a private copy of the installation (private_installation): the frozen install
# scripts and the .deb's files go there, and the machine's PostgreSQL stays as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

WORK=${TMPDIR:-/tmp}/databricks_fdw-test
PORT=$((25420 + PG_MAJOR))
DIR=$WORK/upgrade-$PG_MAJOR
mkdir -p "$WORK"
chmod 755 "$WORK"
private_installation "$PG_MAJOR" "$WORK/installation-$PG_MAJOR"
BIN=$(pg_bin "$PG_MAJOR")
EXTDIR=$("$BIN/pg_config" --sharedir)/extension
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
PSQL=(psql -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -AtqX)

new_cluster "$DIR" "$PORT" "$PG_MAJOR"
trap 'stop_cluster "$DIR"; rm -rf "$PG_PRIVATE_ROOT"; [ -s "$WORK/upgrade-sim.pid" ] && kill "$(cat "$WORK/upgrade-sim.pid")" 2>/dev/null || true' EXIT
SIM_URL=$(start_simulator "$WORK/upgrade-sim.pid" "$WORK/upgrade-sim.port")

# The objects of the extension in database $1, each with its definition and comment.
objects() {
    "${PSQL[@]}" -d "$1" <<'SQL'
SELECT pg_describe_object(classid, objid, objsubid)
       || coalesce(' = ' || md5(pg_get_functiondef(p.oid)), '')
       || coalesce(' -- ' || obj_description(objid, classid::regclass::name), '')
FROM pg_depend d
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid AND p.prokind <> 'a'
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'databricks_fdw')
  AND deptype = 'e'
ORDER BY 1;
SQL
}

"${PSQL[@]}" -d postgres -c "CREATE DATABASE fresh"
"${PSQL[@]}" -d fresh -c "CREATE EXTENSION databricks_fdw"
[ "$("${PSQL[@]}" -d fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'databricks_fdw'")" = "$VERSION" ]
objects fresh >"$WORK/objects-fresh.txt"

for frozen in sql/databricks_fdw--[0-9]*.[0-9]*.[0-9]*.sql; do
    case $frozen in *--*--*) continue ;; esac
    from=${frozen#sql/databricks_fdw--}
    from=${from%.sql}
    log "upgrade from $from to $VERSION on PostgreSQL $PG_MAJOR"
    cp "$frozen" "$EXTDIR/"
    db=from_${from//./_}
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db"
    "${PSQL[@]}" -d "$db" <<SQL
CREATE EXTENSION databricks_fdw VERSION '$from';
CREATE SERVER dbx FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '$SIM_URL', deployment_name 'dbc-abcd0123-a1bc');
CREATE USER MAPPING FOR CURRENT_USER SERVER dbx OPTIONS (token 'dapi-simulator-token');
CREATE FOREIGN TABLE task_runs (clean_room_name text, notebook_name text, start_time bigint) SERVER dbx OPTIONS (resource 'task_runs');
CREATE VIEW acme_runs AS SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer';
ALTER EXTENSION databricks_fdw UPDATE;
SQL
    [ "$("${PSQL[@]}" -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'databricks_fdw'")" = "$VERSION" ]
    [ "$("${PSQL[@]}" -d "$db" -c "SELECT count(*) FROM acme_runs")" = 57 ]
    objects "$db" >"$WORK/objects-$db.txt"
    if ! diff -u "$WORK/objects-fresh.txt" "$WORK/objects-$db.txt"; then
        log "the extension upgraded from $from differs from a new installation of $VERSION:"
        log "write or complete sql/databricks_fdw--$from--$VERSION.sql (or the upgrade chain)"
        exit 1
    fi
    rm -f "$EXTDIR/$(basename "$frozen")"
done

log "the .deb, into a PostgreSQL $PG_MAJOR without the build's files"
bash scripts/package.sh --deb
DEB=dist/postgresql-15-databricks-fdw_${VERSION}_amd64.deb
# Its files are those the build installed (paths as on the machine, below the copy's root).
extension_files "$PG_MAJOR" | sed "s|^$PG_PRIVATE_ROOT||" >"$WORK/files-installed.txt"
dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -n 's|^\./\(.*[^/]\)$|/\1|p' | sort >"$WORK/files-deb.txt"
if ! diff -u "$WORK/files-installed.txt" "$WORK/files-deb.txt"; then
    log "the .deb's files differ from those cargo pgrx install installs"
    exit 1
fi
extension_files "$PG_MAJOR" | xargs -r -d '\n' rm -f
dpkg-deb -x "$DEB" "$PG_PRIVATE_ROOT"
new_cluster "$DIR" "$PORT" "$PG_MAJOR"
rows=$("${PSQL[@]}" -d postgres <<SQL
CREATE EXTENSION databricks_fdw;
CREATE SERVER dbx FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '$SIM_URL', deployment_name 'dbc-abcd0123-a1bc');
CREATE USER MAPPING FOR CURRENT_USER SERVER dbx OPTIONS (token 'dapi-simulator-token');
CREATE SCHEMA cleanrooms;
IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (task_runs) FROM SERVER dbx INTO cleanrooms;
SELECT count(*) FROM (
  SELECT notebook_name, output_schema_name, collaborator_job_run_info, notebook_etag, notebook_job_run_state,
         notebook_updated_at, output_schema_expiration_time, run_duration, start_time
  FROM cleanrooms.task_runs
  WHERE clean_room_name = 'acme_x_retailer' AND deployment_name = 'dbc-abcd0123-a1bc') q;
SQL
)
[ "$rows" = 57 ] || { log "the packaged extension returned $rows rows, not 57"; exit 1; }
log "upgrade and package tests passed"
