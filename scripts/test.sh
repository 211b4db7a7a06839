#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (as root): installs what is missing, then
#   1. the simulator's unit tests,
#   2. for every supported PostgreSQL version (14 to 18):
#      the extension's unit tests and in-database tests (cargo pgrx test, cluster run as
#      postgres), then the end-to-end tests against a cluster of that version with the
#      extension installed: simulators on loopback, SQL through a client connection (extended
#      and simple protocol), safety, memory and TLS tests,
#   3. on the default version (15) only: the short load test; the dashboards tests, with bi and
#      e2e again, on the same cluster restarted with the library preloaded; pgjdbc and psycopg as BI tools use
#      them; the benchmark's short form (every contender returns the same rows, no timing
#      checks); upgrades from 0.1.0 and the .deb.
#
# DATABRICKS_FDW_PG_VERSIONS="15 17" narrows the versions (default: all supported).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VERSIONS=${DATABRICKS_FDW_PG_VERSIONS:-$SUPPORTED_PG_MAJORS}
WORK=${TMPDIR:-/tmp}/databricks_fdw-test
TIMES=$WORK/times.txt
# Every end-to-end test file but the load and memory tests, which run on the default version
# only (they measure the extension's own code, the same on every version, and take minutes).
E2E_TESTS=(--test e2e --test planning --test reliability --test safety --test security --test auth --test service --test tls --test bi --test writes --test writes_exact --test writes_rules --test every_row --test oracle --test stackql --test real_service)

ensure_toolchain $VERSIONS
mkdir -p "$WORK"
chmod 755 "$WORK"
: >"$TIMES"

log "simulator unit tests"
cargo test -p databricks-sim

log "building the end-to-end tests"
cargo test -p databricks-fdw-e2e --no-run

crashed() {
    grep -E "PANIC|server process .* was terminated|terminated by signal" "$1" && return 0
    return 1
}

# e2e_cluster MAJOR: a new cluster of that version with the extension created in database e2e;
# prints its connection string.
e2e_cluster() {
    local major=$1 port=$((25400 + $1)) dir=$WORK/e2e-$1
    new_cluster "$dir" "$port" "$major"
    # The writes tests PREPARE TRANSACTION, which needs prepared transactions on (a restart).
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "ALTER SYSTEM SET max_prepared_transactions = 4"
    start_cluster "$dir" "$port" "$major"
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE e2e"
    psql -h 127.0.0.1 -p "$port" -U postgres -d e2e -qc "CREATE EXTENSION databricks_fdw"
    echo "host=127.0.0.1 port=$port user=postgres dbname=e2e"
}

trap 'for v in $VERSIONS; do stop_cluster "$WORK/e2e-$v"; done' EXIT

for v in $VERSIONS; do
    started=$(date +%s)
    log "PostgreSQL $v: unit tests and in-database tests"
    pgrx_data=$WORK/pgrx-data-$v
    stop_cluster "$pgrx_data/$v"
    rm -rf "$pgrx_data"
    mkdir -p "$pgrx_data"
    chown postgres:postgres "$pgrx_data"
    # cargo pgrx test wants to initdb its own cluster: an empty directory every time.
    cargo pgrx test "pg$v" --runas postgres --pgdata "$pgrx_data"

    install_extension debug "$v"
    conn=$(e2e_cluster "$v")
    log "PostgreSQL $v: end-to-end tests"
    tests=("${E2E_TESTS[@]}")
    [ "$v" = "$PG_MAJOR" ] && tests+=(--test load --test memory)
    DATABRICKS_FDW_TEST_PG=$conn \
    DATABRICKS_FDW_TEST_PGLOG="$WORK/e2e-$v/postgres.log" \
    DATABRICKS_FDW_REPORT_DIR="$WORK" \
        cargo test -p databricks-fdw-e2e "${tests[@]}"
    if [ "$v" = "$PG_MAJOR" ]; then
        # Preloaded (shared cache, budgets, cluster figures): the same cluster restarted so.
        log "PostgreSQL $v: end-to-end tests with the library preloaded"
        psql -h 127.0.0.1 -p $((25400 + v)) -U postgres -d postgres -qc "ALTER SYSTEM SET shared_preload_libraries = 'databricks_fdw'"
        start_cluster "$WORK/e2e-$v" $((25400 + v)) "$v"
        DATABRICKS_FDW_TEST_PG=$conn \
        DATABRICKS_FDW_TEST_PGLOG="$WORK/e2e-$v/postgres.log" \
        DATABRICKS_FDW_REPORT_DIR="$WORK" \
            cargo test -p databricks-fdw-e2e --test dashboards --test bi --test e2e
    fi
    stop_cluster "$WORK/e2e-$v"
    if crashed "$WORK/e2e-$v/postgres.log"; then
        log "the postmaster log of PostgreSQL $v shows a crashed backend"
        exit 1
    fi
    echo "PostgreSQL $v: $(( $(date +%s) - started )) s" | tee -a "$TIMES"
done

[ -s "$WORK/load.txt" ] && cat "$WORK/load.txt"
[ -s "$WORK/memory.txt" ] && cat "$WORK/memory.txt"

# The stages below run on the default version: install it if the versions above left it out.
case " $VERSIONS " in *" $PG_MAJOR "*) ;; *) install_extension debug "$PG_MAJOR" ;; esac

started=$(date +%s)
log "the clients BI tools use: pgjdbc and psycopg (PostgreSQL $PG_MAJOR)"
bash scripts/clients-test.sh
echo "pgjdbc and psycopg: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

log "benchmark, short form (correctness only)"
bash bench/run.sh --quick

# Last: the package test replaces the installed build with the .deb, then removes it.
started=$(date +%s)
log "upgrades and the .deb (PostgreSQL $PG_MAJOR)"
bash scripts/upgrade-test.sh
echo "upgrades and .deb: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

cat "$TIMES"
log "all tests passed"
# One line for whoever reads only the end: every stage above (simulator, each version, clients,
# benchmark's short form, upgrades and .deb) passed, or the script would have stopped.
echo "test.sh: $(( $(echo $VERSIONS | wc -w) + 4 )) passed, 0 failed"
