#!/usr/bin/env bash
# The tests on an assert-enabled PostgreSQL 15 (run by scripts/test.sh; built once per machine by
# ensure_postgres_cassert), for what a release build hides: a failed Assert() (a "TRAP:" line and
# a crashed backend) and, with debug_discard_caches = 1 (every cache invalidated at every
# opportunity), catalog data used after it may have been freed or changed.
#   1. the in-database tests (cargo pgrx test), with debug_discard_caches = 1;
#   2. the end-to-end tests given as arguments (`--test e2e --test planning ...`; default: those
#      of step 3) on a cluster of that build;
#   3. the e2e, planning and write tests again, in sessions with debug_discard_caches = 1.
# The postmaster log must show no crash and no failed assertion.
#
# The build has a pgrx registration of its own (pgrx maps one pg_config per major) and a target
# directory of its own (the same feature pg15 compiled against other headers: in the usual one,
# every switch would rebuild pgrx's bindings and everything above them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

WORK=${TMPDIR:-/tmp}/databricks_fdw-test
TIMES=$WORK/times.txt
PORT=25515
DIR=$WORK/e2e-15-cassert
# Sessions with debug_discard_caches = 1 are slower (measured on 2 busy cores: planning 3 s ->
# 10 s, writes 3 s -> 15 s, writes_exact 12 s -> 13 s, writes_rules 2 s -> 6 s): the tests that
# plan and modify the most. The in-database tests take about 7 minutes with it.
DISCARD_CACHES_TESTS=(--test e2e --test planning --test writes --test writes_exact --test writes_rules)
E2E=("$@")
[ ${#E2E[@]} -gt 0 ] || E2E=("${DISCARD_CACHES_TESTS[@]}")

ensure_toolchain 15
started=$(date +%s)
ensure_postgres_cassert
echo "assert-enabled PostgreSQL 15 (built once per machine): $(( $(date +%s) - started )) s" | tee -a "$TIMES"
PG_CONFIG_CASSERT=$PG_CASSERT_DIR/bin/pg_config
CASSERT_TARGET=${CARGO_TARGET_DIR:-$PWD/target}/cassert
pgrx_cassert() {
    PGRX_HOME=$WORK/pgrx-home-cassert CARGO_TARGET_DIR=$CASSERT_TARGET cargo pgrx "$@"
}
mkdir -p "$WORK/pgrx-home-cassert"
pgrx_cassert init --pg15 "$PG_CONFIG_CASSERT" >/dev/null

trap 'stop_cluster "$DIR"' EXIT

started=$(date +%s)
log "assert-enabled PostgreSQL 15: in-database tests, debug_discard_caches = 1"
data=$WORK/pgrx-data-15-cassert
stop_cluster "$data/15"
rm -rf "$data"
mkdir -p "$data"
chown postgres:postgres "$data"
DATABRICKS_FDW_PG_TEST_SETTINGS="debug_discard_caches=1" pgrx_cassert test pg15 --runas postgres --pgdata "$data"
echo "assert-enabled: in-database tests: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

started=$(date +%s)
log "assert-enabled PostgreSQL 15: building and installing databricks_fdw"
pgrx_cassert install --pg-config "$PG_CONFIG_CASSERT" >/dev/null
new_cluster "$DIR" "$PORT" 15-cassert
psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "ALTER SYSTEM SET max_prepared_transactions = 4"
start_cluster "$DIR" "$PORT" 15-cassert
psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE e2e"
psql -h 127.0.0.1 -p "$PORT" -U postgres -d e2e -qc "CREATE EXTENSION databricks_fdw"
conn="host=127.0.0.1 port=$PORT user=postgres dbname=e2e"
echo "assert-enabled: build and cluster: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

failed=0
started=$(date +%s)
log "assert-enabled PostgreSQL 15: end-to-end tests"
DATABRICKS_FDW_TEST_PG=$conn DATABRICKS_FDW_TEST_PGLOG=$DIR/postgres.log DATABRICKS_FDW_REPORT_DIR=$WORK \
    cargo test -p databricks-fdw-e2e "${E2E[@]}" || failed=1
echo "assert-enabled: end-to-end tests: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

if [ "$failed" = 0 ]; then
    started=$(date +%s)
    log "assert-enabled PostgreSQL 15: ${DISCARD_CACHES_TESTS[*]} with debug_discard_caches = 1"
    DATABRICKS_FDW_TEST_PG="$conn options='-c debug_discard_caches=1'" DATABRICKS_FDW_TEST_PGLOG=$DIR/postgres.log \
        cargo test -p databricks-fdw-e2e "${DISCARD_CACHES_TESTS[@]}" || failed=1
    echo "assert-enabled: debug_discard_caches = 1: $(( $(date +%s) - started )) s" | tee -a "$TIMES"
fi

stop_cluster "$DIR"
if crashed "$DIR/postgres.log"; then
    log "the assert-enabled PostgreSQL 15 shows a crashed backend or a failed assertion ($DIR/postgres.log)"
    exit 1
fi
exit "$failed"
