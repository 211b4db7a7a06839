# Shared shell functions for the demo, the tests and the benchmarks. Source it; do not run it.
# Everything here is idempotent: a second run finds what the first one set up.

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
PGRX_VERSION=0.16.1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs PostgreSQL 15 and its dev files, clang, sudo and cargo-pgrx, and initialises pgrx.
ensure_toolchain() {
    local need=()
    [ -x "$PG_BIN/postgres" ] || need+=(postgresql-15)
    # pg_config ships with the client package too: look for the server headers themselves.
    [ -e "$("$PG_CONFIG" --includedir-server 2>/dev/null || echo /nonexistent)/postgres.h" ] ||
        need+=(postgresql-server-dev-15)
    command -v clang >/dev/null || need+=(clang)
    [ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang*.so >/dev/null 2>&1 || need+=(libclang-dev)
    command -v sudo >/dev/null || need+=(sudo)
    command -v curl >/dev/null || need+=(curl)
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (a few minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
    fi
    if ! grep -qs "pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        log "initialising pgrx with the system PostgreSQL 15"
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

# Builds the extension and installs it into the system PostgreSQL 15 (release or debug).
install_extension() {
    local profile=${1:-debug}
    log "building and installing databricks_fdw ($profile)"
    if [ "$profile" = release ]; then
        cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
    else
        cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
    fi
}

# start_cluster DIR PORT: a PostgreSQL cluster owned by the postgres user, listening on
# 127.0.0.1:PORT, with a superuser role "root" for this shell's user. Reuses DIR if present.
start_cluster() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    if [ ! -s "$dir/PG_VERSION" ]; then
        sudo -u postgres "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --locale=C.UTF-8 >/dev/null
    fi
    if sudo -u postgres "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        sudo -u postgres "$PG_BIN/pg_ctl" -D "$dir" stop -m fast >/dev/null
    fi
    sudo -u postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w \
        -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_roles WHERE rolname = 'root'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE ROLE root SUPERUSER LOGIN"
}

stop_cluster() {
    local dir=$1
    sudo -u postgres "$PG_BIN/pg_ctl" -D "$dir" stop -m fast >/dev/null 2>&1 || true
}

# start_simulator PIDFILE PORTFILE [ARGS...]: starts the simulator in the background and waits
# until it answers; prints its URL.
start_simulator() {
    local pidfile=$1 portfile=$2
    shift 2
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$portfile"
    cargo build --quiet --release -p databricks-sim
    ./target/release/databricks-sim --port-file "$portfile" "$@" >"$portfile.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        [ -s "$portfile" ] && break
        sleep 0.1
    done
    [ -s "$portfile" ] || { cat "$portfile.log" >&2; return 1; }
    echo "http://127.0.0.1:$(cat "$portfile")"
}
