#!/bin/sh
# Installs atomic_inventory @VERSION@, built for PostgreSQL @MAJOR@, into the
# PostgreSQL that a pg_config names; or removes it again.
#
#   ./install.sh                          # pg_config from PATH (or $PG_CONFIG)
#   ./install.sh --pg-config /opt/pg/bin/pg_config
#   ./install.sh --uninstall [--pg-config ...]
#
# Copies lib/atomic_inventory.so into `pg_config --pkglibdir` and the files
# of extension/ into `pg_config --sharedir`/extension. Refuses a PostgreSQL
# of another major: the library is built for @MAJOR@ only (the server would
# refuse to load it); needs Linux with glibc @GLIBC@ or newer. Run it as a
# user who may write those directories.
# Afterwards: CREATE EXTENSION atomic_inventory; (or ALTER EXTENSION
# atomic_inventory UPDATE after an upgrade), and for the reservation sweeper
# and cluster-wide stats shared_preload_libraries = 'atomic_inventory'
# (then restart the server). See docs/install.md in the source repository.
set -eu
MAJOR=@MAJOR@
VERSION=@VERSION@
GLIBC=@GLIBC@
here=$(cd "$(dirname "$0")" && pwd)
pg_config=${PG_CONFIG:-}
action=install
while [ $# -gt 0 ]; do
    case "$1" in
        --pg-config) pg_config=${2:?--pg-config needs a path}; shift ;;
        --pg-config=*) pg_config=${1#--pg-config=} ;;
        --uninstall) action=uninstall ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$pg_config" ]; then
    pg_config=$(command -v pg_config || true)
    [ -n "$pg_config" ] || { echo "install.sh: no pg_config on PATH; name one with --pg-config" >&2; exit 1; }
fi
[ -x "$pg_config" ] || { echo "install.sh: $pg_config is not an executable pg_config" >&2; exit 1; }

# "PostgreSQL 16.14", "PostgreSQL 15.10 (Debian 15.10-0+deb12u1)", "PostgreSQL 18beta1"
server=$("$pg_config" --version)
major=$(printf '%s\n' "$server" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
if [ "$major" != "$MAJOR" ]; then
    echo "install.sh: this package is atomic_inventory $VERSION for PostgreSQL $MAJOR, but $pg_config is $server." >&2
    echo "install.sh: refusing: use the package built for PostgreSQL ${major:-?} (atomic_inventory-$VERSION-pg${major:-?}-...)." >&2
    exit 1
fi
# the library needs glibc $GLIBC or newer (the loader would refuse it at
# CREATE EXTENSION with "version `GLIBC_...' not found")
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc //p')
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$GLIBC" "$have" | sort -V | head -1)" != "$GLIBC" ]; then
    echo "install.sh: the library needs glibc $GLIBC or newer; this system has ${have:-no glibc}: build from source here" >&2
    exit 1
fi
libdir=$("$pg_config" --pkglibdir)
extdir=$("$pg_config" --sharedir)/extension
for d in "$libdir" "$extdir"; do
    [ -d "$d" ] || { echo "install.sh: $d (from $pg_config) is not a directory" >&2; exit 1; }
    [ -w "$d" ] || { echo "install.sh: no write access to $d: run as its owner (or root)" >&2; exit 1; }
done

if [ "$action" = uninstall ]; then
    for f in "$here"/lib/*; do
        t="$libdir/$(basename "$f")"
        if [ -e "$t" ]; then rm -f "$t"; echo "removed $t"; fi
    done
    for f in "$here"/extension/*; do
        t="$extdir/$(basename "$f")"
        if [ -e "$t" ]; then rm -f "$t"; echo "removed $t"; fi
    done
    echo "atomic_inventory $VERSION removed from $server. A database that still has the extension"
    echo "fails its next call; DROP EXTENSION atomic_inventory there, and take it out of"
    echo "shared_preload_libraries before the next restart if it is there."
    exit 0
fi

# the library first, under a temporary name and renamed: a backend loading
# it meanwhile sees the old file or the new one, never half of one
tmp="$libdir/.atomic_inventory.so.$$"
cp "$here/lib/atomic_inventory.so" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$libdir/atomic_inventory.so"
echo "installed $libdir/atomic_inventory.so"
for f in "$here"/extension/*; do
    cp "$f" "$extdir/"
    chmod 644 "$extdir/$(basename "$f")"
    echo "installed $extdir/$(basename "$f")"
done
echo "atomic_inventory $VERSION installed into $server."
echo "Next: CREATE EXTENSION atomic_inventory;  (an existing database: ALTER EXTENSION atomic_inventory UPDATE;)"
echo "For the reservation sweeper and cluster-wide stats: shared_preload_libraries = 'atomic_inventory' and a restart."
