#!/usr/bin/env bash
# The clients BI tools use, end to end (run by scripts/test.sh on the default version): pgjdbc
# (Debian's libpostgresql-jdbc-java, on the machine's Java 17) and psycopg 3, against a cluster
# with the installed extension and a simulator. See tests/clients/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

WORK=${TMPDIR:-/tmp}/databricks_fdw-test
PORT=$((25440 + PG_MAJOR))
DIR=$WORK/clients-$PG_MAJOR
JAR=/usr/share/java/postgresql.jar

if [ ! -e "$JAR" ]; then
    log "installing pgjdbc (libpostgresql-jdbc-java)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libpostgresql-jdbc-java >/dev/null
fi
command -v java >/dev/null || { log "java is missing: install a JDK (17 or later)"; exit 1; }
if [ ! -x "$WORK/clients-venv/bin/python" ] || ! "$WORK/clients-venv/bin/python" -c "import psycopg" 2>/dev/null; then
    log "creating a Python environment with psycopg"
    python3 -m venv "$WORK/clients-venv"
    "$WORK/clients-venv/bin/pip" install --quiet "psycopg[binary]"
fi

new_cluster "$DIR" "$PORT" "$PG_MAJOR"
trap 'stop_cluster "$DIR"; [ -s "$WORK/clients-sim.pid" ] && kill "$(cat "$WORK/clients-sim.pid")" 2>/dev/null || true' EXIT
SIM_URL=$(start_simulator "$WORK/clients-sim.pid" "$WORK/clients-sim.port")
psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
CREATE EXTENSION databricks_fdw;
CREATE SERVER dbx FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '$SIM_URL', deployment_name 'dbc-abcd0123-a1bc');
CREATE USER MAPPING FOR PUBLIC SERVER dbx OPTIONS (token 'dapi-simulator-token');
CREATE SCHEMA cleanrooms;
IMPORT FOREIGN SCHEMA cleanrooms FROM SERVER dbx INTO cleanrooms;
SQL
# Every run of the fixture's rooms, as the simulator serves them.
# Every run of every listable room (a DELETED room is listed, but its runs cannot be).
EXPECTED=$(python3 -c "import json; print(sum(len(r['runs']) for r in json.load(open('simulator/fixtures/cleanrooms.json'))['clean_rooms'] if r['status'] != 'DELETED'))")

log "psycopg"
"$WORK/clients-venv/bin/python" tests/clients/bi_psycopg.py "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" cleanrooms "$EXPECTED"
log "pgjdbc"
java -cp "$JAR" tests/clients/BiPgjdbc.java "jdbc:postgresql://127.0.0.1:$PORT/postgres?user=postgres" cleanrooms "$EXPECTED"
