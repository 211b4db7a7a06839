#!/usr/bin/env bash
# Builds what a user installs without a Rust toolchain, into dist/:
#   - postgresql-15-databricks-fdw_<version>_amd64.deb, for Debian's PostgreSQL 15;
#   - databricks_fdw-<version>-pg<major>-linux-x86_64.tar.gz for every supported version, with an
#     install script and note (INSTALL.md) inside.
# Release builds, one per PostgreSQL version (a few minutes each).
#
#   scripts/package.sh            everything
#   scripts/package.sh --deb      only the .deb
#   scripts/package.sh 16 17      only the tarballs of these versions
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DEB=1
MAJORS=()
for arg in "$@"; do
    case $arg in
        --deb) MAJORS=() ; DEB=only ;;
        [0-9][0-9]) check_major "$arg"; MAJORS+=("$arg"); DEB=0 ;;
        *) echo "usage: scripts/package.sh [--deb | MAJOR...]" >&2; exit 2 ;;
    esac
done
[ "$DEB" = 1 ] && [ ${#MAJORS[@]} -eq 0 ] && read -r -a MAJORS <<<"$SUPPORTED_PG_MAJORS"
[ "$DEB" = only ] && DEB=1

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST=$PWD/dist
STAGE=$PWD/target/package-stage
mkdir -p "$DIST"

# stage MAJOR: a release build for that version, laid out under $STAGE/pgMAJOR as cargo-pgrx
# installs it (absolute paths of that version's pg_config).
stage() {
    local major=$1
    rm -rf "$STAGE/pg$major"
    log "building databricks_fdw $VERSION (release) for PostgreSQL $major"
    cargo pgrx package --pg-config "$(pg_bin "$major")/pg_config" --out-dir "$STAGE/pg$major" >/dev/null
}

if [ "$DEB" = 1 ]; then
    ensure_toolchain 15
    stage 15
    root=$STAGE/deb
    rm -rf "$root"
    mkdir -p "$root/DEBIAN"
    cp -a "$STAGE/pg15/." "$root/"
    size=$(du -sk "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<EOF
Package: postgresql-15-databricks-fdw
Version: $VERSION
Architecture: amd64
Maintainer: databricks_fdw developers <databricks-fdw@example.com>
Depends: postgresql-15, libc6 (>= 2.34)
Installed-Size: $size
Section: database
Priority: optional
Homepage: https://example.com/databricks_fdw
Description: PostgreSQL 15 foreign data wrapper for Databricks Clean Rooms
 Query Databricks Clean Rooms (task runs, clean rooms, assets, revisions,
 auto-approval rules) from SQL: WHERE conditions become REST requests, every
 page is followed, rows join with local tables. CREATE EXTENSION databricks_fdw.
EOF
    deb=$DIST/postgresql-15-databricks-fdw_${VERSION}_amd64.deb
    dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
    log "wrote $deb"
fi

for major in "${MAJORS[@]}"; do
    ensure_toolchain "$major"
    stage "$major"
    name=databricks_fdw-$VERSION-pg$major-linux-x86_64
    dir=$STAGE/$name
    rm -rf "$dir"
    mkdir -p "$dir/lib" "$dir/extension"
    find "$STAGE/pg$major" -name 'databricks_fdw.so' -exec cp {} "$dir/lib/" \;
    find "$STAGE/pg$major" \( -name 'databricks_fdw.control' -o -name 'databricks_fdw--*.sql' \) -exec cp {} "$dir/extension/" \;
    cat >"$dir/install.sh" <<'EOF'
#!/bin/sh
# Installs databricks_fdw into the PostgreSQL that PG_CONFIG (default: pg_config on PATH) names.
set -eu
PG_CONFIG=${PG_CONFIG:-pg_config}
here=$(cd "$(dirname "$0")" && pwd)
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
install -m 755 "$here/lib/databricks_fdw.so" "$libdir/"
install -m 644 "$here"/extension/* "$extdir/"
echo "installed into $libdir and $extdir; now: CREATE EXTENSION databricks_fdw;"
EOF
    chmod 755 "$dir/install.sh"
    cat >"$dir/INSTALL.md" <<EOF
# databricks_fdw $VERSION for PostgreSQL $major (Linux x86_64)

Built for PostgreSQL $major; needs glibc 2.34 or later. As a user who may write to the server's
library and extension directories (usually root):

    PG_CONFIG=/path/to/pg_config ./install.sh

which copies \`lib/databricks_fdw.so\` into \`\$(pg_config --pkglibdir)\` and \`extension/*\` into
\`\$(pg_config --sharedir)/extension\`. Then, in the database:

    CREATE EXTENSION databricks_fdw;            -- a new installation
    ALTER EXTENSION databricks_fdw UPDATE;      -- from an earlier version, keeping every object
EOF
    tar czf "$DIST/$name.tar.gz" -C "$STAGE" "$name"
    log "wrote $DIST/$name.tar.gz"
done
