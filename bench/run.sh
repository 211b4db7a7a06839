#!/usr/bin/env bash
# The benchmark: starts a PostgreSQL 15 cluster and two simulators, then measures side by side
# the floor, the extension, a local table and the Databricks Python SDK (see bench.py), prints
# one table of medians and ratios, and writes bench/RESULTS.md.
#
#   bench/run.sh            the full benchmark (10k and 1M runs; about 10 minutes)
#   bench/run.sh --quick    a short form for the test command: small rooms, one repetition,
#                           checks that every contender returns the same rows; no timing checks
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

QUICK=
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done

WORK=$PWD/bench/work
# The cluster lives where the postgres user can reach it, whatever the checkout's permissions.
PGDATA_DIR=${TMPDIR:-/tmp}/databricks_fdw-bench/pgdata
mkdir -p "$(dirname "$PGDATA_DIR")"
chmod 755 "$(dirname "$PGDATA_DIR")"
PORT=${BENCH_PORT:-25436}
mkdir -p "$WORK"
chmod 755 "$WORK"

ensure_toolchain
if [ -n "$QUICK" ]; then
    # The test command has just installed the (debug) extension; reuse it and debug tools.
    cargo build --quiet -p databricks-sim -p databricks-fdw-bench
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug
else
    install_extension release
    cargo build --quiet --release -p databricks-sim -p databricks-fdw-bench
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi

if [ ! -x "$WORK/venv/bin/python" ]; then
    log "creating a Python environment with databricks-sdk"
    python3 -m venv "$WORK/venv"
fi
"$WORK/venv/bin/python" -c "import databricks.sdk" 2>/dev/null || "$WORK/venv/bin/pip" install --quiet databricks-sdk

cleanup() {
    for f in "$WORK"/*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; done
    stop_cluster "$PGDATA_DIR"
}
trap cleanup EXIT
start_cluster "$PGDATA_DIR" "$PORT"

if [ -n "$QUICK" ]; then SMALL=2000 BIG=20000 LAT=200 ONE=20000; else SMALL=10000 BIG=1000000 LAT=1000 ONE=300000; fi
start_sim() {
    local portfile=$1
    shift
    rm -f "$portfile"
    "$BIN/databricks-sim" --port-file "$portfile" --cache-pages "$@" >"$portfile.log" 2>&1 &
    # Called in $(...), a subshell: the pid goes to a file for cleanup.
    echo $! >"${portfile%.port}.pid"
    for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
    cat "$portfile"
}
SIM=$(start_sim "$WORK/sim.port" --page-size 100 --synthetic "bench_small=$SMALL" --synthetic "bench_big=$BIG")
# Runs as the service sends them: a room's whole history in one page.
SIM_ONE=$(start_sim "$WORK/sim-one.port" --synthetic "one_page=$ONE")
LAT_ARGS=()
for i in 0 1 2 3 4 5 6 7; do LAT_ARGS+=(--synthetic "lat_$i=$LAT"); done
SIM_LAT=$(start_sim "$WORK/sim-lat.port" --page-size 100 --latency-ms 50 "${LAT_ARGS[@]}")
# A workspace of 64 clean rooms (50 runs each, one page) at 50 ms per request, for a table read
# without WHERE: every room listed, then each room's runs.
echo '{"clean_rooms": []}' >"$WORK/empty-fixture.json"
WIDE_ARGS=(--fixture "$WORK/empty-fixture.json")
for i in $(seq 0 63); do WIDE_ARGS+=(--synthetic "wide_$i=50"); done
SIM_WIDE=$(start_sim "$WORK/sim-wide.port" --page-size 100 --latency-ms 50 "${WIDE_ARGS[@]}")

"$WORK/venv/bin/python" bench/bench.py --pg-port "$PORT" --sim-port "$SIM" --sim-lat-port "$SIM_LAT" --sim-wide-port "$SIM_WIDE" \
    --sim-one-port "$SIM_ONE" --floor "$BIN/floor" --small "$SMALL" --big "$BIG" --lat "$LAT" --one "$ONE" ${QUICK:+--quick} --command "bench/run.sh $*"

# --- Dashboards (issue #23): 16 sessions of one query, without and with preloading -------------
# Its own section: restarts the cluster with shared_preload_libraries, then without again.
dashboards() {
    local lines=$WORK/dashboards.txt sim_port=${SIM_WIDE##*:}
    : >"$lines"
    for mode in "per backend" preloaded; do
        if [ "$mode" = preloaded ]; then
            psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "ALTER SYSTEM SET shared_preload_libraries = 'databricks_fdw'"
        else
            psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "ALTER SYSTEM RESET shared_preload_libraries"
        fi
        stop_cluster "$PGDATA_DIR"
        start_cluster "$PGDATA_DIR" "$PORT"
        python3 bench/dashboards.py --pg-port "$PORT" --sim-port "$sim_port" --label "$mode" | tee -a "$lines"
    done
    # Superset's recorded traffic, on the preloaded cluster: request counts per step.
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS dash_replay" -c "CREATE DATABASE dash_replay"
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d dash_replay -qc "CREATE EXTENSION databricks_fdw"
    DATABRICKS_FDW_TEST_PG="host=127.0.0.1 port=$PORT user=postgres dbname=dash_replay" DATABRICKS_FDW_REPORT_DIR="$WORK" \
        cargo test --quiet -p databricks-fdw-e2e --test dashboards superset_traffic >/dev/null
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "ALTER SYSTEM RESET shared_preload_libraries"
    [ -n "$QUICK" ] && return
    python3 bench/dashboards.py --report bench/RESULTS.md --lines "$lines" --superset "$WORK/superset.txt"
}
dashboards
