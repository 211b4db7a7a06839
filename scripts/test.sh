#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (as root): installs what is missing, then
#   1. the simulator's unit tests,
#   2. the extension's unit tests and in-database tests (cargo pgrx test, cluster run as postgres),
#   3. the end-to-end tests: a PostgreSQL 15 cluster with the extension installed, simulators on
#      loopback, SQL through a client connection (extended and simple protocol), including a
#      short load test (16 sessions under injected faults) and a memory test,
#   4. the benchmark's short form: every contender returns the same rows (no timing checks).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

E2E_PORT=${E2E_PORT:-55433}
WORK=${TMPDIR:-/tmp}/databricks_fdw-test
PGRX_DATA=$WORK/pgrx-data
E2E_DATA=$WORK/e2e-data

ensure_toolchain
# cargo pgrx test wants to initdb its own cluster: start from an empty directory every time.
stop_cluster "$PGRX_DATA/15"
rm -rf "$PGRX_DATA"
mkdir -p "$WORK" "$PGRX_DATA"
chmod 755 "$WORK"
chown postgres:postgres "$PGRX_DATA"

log "simulator unit tests"
cargo test -p databricks-sim

log "extension unit tests and in-database tests"
cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_DATA"

install_extension debug
trap 'stop_cluster "$E2E_DATA"' EXIT
start_cluster "$E2E_DATA" "$E2E_PORT"
psql -h 127.0.0.1 -p "$E2E_PORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS e2e" -c "CREATE DATABASE e2e"
psql -h 127.0.0.1 -p "$E2E_PORT" -U postgres -d e2e -qc "CREATE EXTENSION databricks_fdw"

log "end-to-end tests"
DATABRICKS_FDW_TEST_PG="host=127.0.0.1 port=$E2E_PORT user=postgres dbname=e2e" \
DATABRICKS_FDW_TEST_PGLOG="$E2E_DATA/postgres.log" \
DATABRICKS_FDW_REPORT_DIR="$WORK" \
    cargo test -p databricks-fdw-e2e
cat "$WORK/load.txt" "$WORK/memory.txt"

log "benchmark, short form (correctness only)"
stop_cluster "$E2E_DATA"
bash bench/run.sh --quick

if grep -E "PANIC|server process .* was terminated|terminated by signal" "$E2E_DATA/postgres.log"; then
    log "the postmaster log shows a crashed backend"
    exit 1
fi
log "all tests passed"
