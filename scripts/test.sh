#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (as root): installs what is missing, then
#   0. cargo fmt --check and cargo clippy with warnings as errors (rustfmt.toml: 140 columns),
#   1. the unit tests that need no Postgres, once: the core crate (client, conversions,
#      resources, options, shared memory's structures) and the simulator,
#   2. for every supported PostgreSQL version (14 to 18):
#      the glue's unit tests and the in-database tests (cargo pgrx test, cluster run as
#      postgres), then the end-to-end tests against a cluster of that version with the
#      extension installed: simulators on loopback, SQL through a client connection (extended
#      and simple protocol), safety, memory and TLS tests,
#   3. on the default version (15) only: the short load test; the dashboards tests, with bi and
#      e2e again, on the same cluster restarted with the library preloaded; pgjdbc and psycopg as BI tools use
#      them; the benchmark's short form (every contender returns the same rows, no timing
#      checks); upgrades from 0.1.0 and the .deb (in a private copy of the installation);
#   4. on an assert-enabled PostgreSQL 15 (built once per machine, see ensure_postgres_cassert):
#      the in-database tests and the end-to-end tests, those of planning and writes again with
#      debug_discard_caches = 1; a failed assertion (TRAP) or a crashed backend fails the stage.
#
# DATABRICKS_FDW_PG_VERSIONS="15 17" narrows the versions (default: all supported);
# DATABRICKS_FDW_CASSERT=0 leaves out stage 4. The extension's files installed in each version
# before the tests (the machine's PostgreSQL 15 among them) are put back at the end.
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

log "format and lint: cargo fmt --check, cargo clippy with warnings as errors"
cargo fmt --all --check
# The in-database tests (pg_test) are linted too; the default version's bindings.
cargo clippy --workspace --all-targets --features pg_test -- -D warnings

mkdir -p "$WORK"
chmod 755 "$WORK"
: >"$TIMES"

# The stages below install their builds into each version's installation: what was there before
# is put back at the end, whatever happens (checked by checksum).
INSTALLED=$(printf '%s\n' $VERSIONS "$PG_MAJOR" | sort -u)
for v in $INSTALLED; do keep_installed_extension "$v" "$WORK/installed-before/$v"; done
finish() {
    local status=$? v d
    for d in "$WORK"/e2e-*/; do stop_cluster "$d"; done
    for v in $INSTALLED; do restore_installed_extension "$v" "$WORK/installed-before/$v" || status=1; done
    exit "$status"
}
trap finish EXIT

started=$(date +%s)
log "unit tests without Postgres: the core crate and the simulator (once, whatever the version)"
cargo test -p databricks-fdw-core
cargo test -p databricks-sim
echo "core and simulator unit tests: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

log "building the end-to-end tests"
cargo test -p databricks-fdw-e2e --no-run

# e2e_cluster MAJOR [PORT]: a new cluster of that version (or build, as 15-cassert) with the
# extension created in database e2e, in $WORK/e2e-MAJOR; prints its connection string.
e2e_cluster() {
    local major=$1 port=${2:-$((25400 + $1))} dir=$WORK/e2e-$1
    new_cluster "$dir" "$port" "$major"
    # The writes tests PREPARE TRANSACTION, which needs prepared transactions on (a restart).
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "ALTER SYSTEM SET max_prepared_transactions = 4"
    start_cluster "$dir" "$port" "$major"
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE e2e"
    psql -h 127.0.0.1 -p "$port" -U postgres -d e2e -qc "CREATE EXTENSION databricks_fdw"
    echo "host=127.0.0.1 port=$port user=postgres dbname=e2e"
}

for v in $VERSIONS; do
    started=$(date +%s)
    log "PostgreSQL $v: unit tests and in-database tests"
    pgrx_data=$WORK/pgrx-data-$v
    stop_cluster "$pgrx_data/$v"
    rm -rf "$pgrx_data"
    mkdir -p "$pgrx_data"
    chown postgres:postgres "$pgrx_data"
    # What was installed before is saved (put back at the end): the build installs into an
    # empty place, so no file of another install (its mode, say) outlives it.
    extension_files "$v" | xargs -r -d '\n' rm -f
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

started=$(date +%s)
log "upgrades and the .deb (PostgreSQL $PG_MAJOR, in a private copy of the installation)"
bash scripts/upgrade-test.sh
echo "upgrades and .deb: $(( $(date +%s) - started )) s" | tee -a "$TIMES"

stages=$(( $(echo $VERSIONS | wc -w) + 4 ))
if [ "${DATABRICKS_FDW_CASSERT:-1}" != 0 ]; then
    started=$(date +%s)
    log "the assert-enabled PostgreSQL 15"
    bash scripts/cassert-test.sh "${E2E_TESTS[@]}"
    echo "assert-enabled PostgreSQL 15, in all: $(( $(date +%s) - started )) s" | tee -a "$TIMES"
    stages=$((stages + 1))
fi

cat "$TIMES"
log "all tests passed"
# One line for whoever reads only the end: every stage above (simulator, each version, clients,
# benchmark's short form, upgrades and .deb, the assert-enabled build) passed, or the script
# would have stopped.
echo "test.sh: $stages passed, 0 failed"
