#!/usr/bin/env bash
# Release packages of atomic_inventory, one set per PostgreSQL major found on
# this machine (15, 16, 17, 18: those whose pg_config with server headers
# exists, see lib.sh), into dist/:
#
#   atomic_inventory-<version>-pg<M>-<arch>.deb
#       for Debian's (and apt.postgresql.org's) postgresql-<M>: the files
#       `cargo pgrx package` lays out, at Debian's paths
#       (/usr/lib/postgresql/<M>/lib, /usr/share/postgresql/<M>/extension),
#       upgrade scripts included; depends on postgresql-<M> (and the glibc
#       the library needs).
#       Install: apt-get install ./atomic_inventory-<version>-pg<M>-<arch>.deb
#   atomic_inventory-<version>-pg<M>-linux-<machine>.tar.gz
#       the same files and install.sh, for a PostgreSQL installed elsewhere
#       (a wheel, a custom prefix): ./install.sh --pg-config <its pg_config>
#       checks that it is PostgreSQL <M> and refuses any other major (and a
#       glibc older than the library needs).
#   SHA256SUMS
#       of every package in dist/.
#
#   bash pg_test/package.sh           # every major available here
#   bash pg_test/package.sh 15 18     # those majors only (each must be available)
#
# Release builds (fat LTO), each major in a target directory of its own
# (target/package-pg<M>), so building again after no change is quick.
# Needs what the tests need (lib.sh's ensure_deps) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
source pg_test/lib.sh

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
arch="$(dpkg --print-architecture)"
machine="$(uname -m)"
dist="$AI_ROOT/dist"
description="$(sed -n 's/^description = "\(.*\)"/\1/p' Cargo.toml | head -1)"

majors=("$@")
if ((${#majors[@]} == 0)); then
    for m in 15 16 17 18; do
        (use_pg "$m" 2>/dev/null && [[ -x "$AI_PG_CONFIG" ]]) && majors+=("$m")
    done
fi
((${#majors[@]})) || { echo "package.sh: no PostgreSQL with pg_config found (see pg_test/lib.sh)" >&2; exit 1; }
for m in "${majors[@]}"; do
    use_pg "$m"
    [[ -x "$AI_PG_CONFIG" ]] || { echo "package.sh: no PostgreSQL $m here ($AI_PG_CONFIG)" >&2; exit 1; }
done
ensure_deps "${majors[@]}"
mkdir -p "$dist"
work="$(mktemp -d /tmp/ai-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# build MAJOR: cargo pgrx package for that major; prints the layout's root
build() {
    local m="$1" out="$work/pgrx-pg$1"
    use_pg "$m"
    log "release build for $("$AI_PG_CONFIG" --version) (target/package-pg$m)"
    CARGO_TARGET_DIR="$AI_ROOT/target/package-pg$m" \
        cargo pgrx package --pg-config "$AI_PG_CONFIG" --out-dir "$out" >"$work/build-pg$m.log" 2>&1 ||
        { tail -30 "$work/build-pg$m.log" >&2; return 1; }
    echo "$out"
}

for m in "${majors[@]}"; do
    start=$SECONDS
    layout="$(build "$m")"
    use_pg "$m"
    # the layout mirrors the build's pg_config: pick the files from there
    so="$layout$("$AI_PG_CONFIG" --pkglibdir)/atomic_inventory.so"
    ext="$layout$("$AI_PG_CONFIG" --sharedir)/extension"
    [[ -f "$so" && -f "$ext/atomic_inventory.control" && -f "$ext/atomic_inventory--$version.sql" ]] ||
        { echo "package.sh: cargo pgrx package laid out no library/control/install script for $m under $layout" >&2; exit 1; }
    for up in sql/atomic_inventory--*--*.sql; do
        [[ -f "$ext/$(basename "$up")" ]] || { echo "package.sh: upgrade script $up missing from the layout" >&2; exit 1; }
    done
    strip --strip-unneeded "$so"
    # the newest glibc symbol version the library needs (2.34 on Debian 12)
    glibc="$(objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
    name="atomic_inventory-$version-pg$m"
    rm -f "$dist/$name"-*.deb "$dist/$name"-*.tar.gz

    # Debian package: Debian's paths for that major
    pkg="postgresql-$m-atomic-inventory"
    root="$work/deb-pg$m"
    install -d "$root/DEBIAN" "$root/usr/lib/postgresql/$m/lib" "$root/usr/share/postgresql/$m/extension" \
        "$root/usr/share/doc/$pkg"
    install -m 644 "$so" "$root/usr/lib/postgresql/$m/lib/"
    install -m 644 "$ext"/atomic_inventory* "$root/usr/share/postgresql/$m/extension/"
    sed "s/@PACKAGE@/$pkg/" pg_test/package/copyright >"$root/usr/share/doc/$pkg/copyright"
    (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
    cat >"$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $version-1
Architecture: $arch
Maintainer: atomic_inventory maintainers <maintainers@atomic-inventory.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: postgresql-$m, libc6 (>= $glibc), libgcc-s1
Section: database
Priority: optional
Description: atomic_inventory $version for PostgreSQL $m
$(fold -s -w 72 <<<"$description" | sed 's/ *$//; s/^/ /')
 .
 After installing: CREATE EXTENSION atomic_inventory; in each database
 (ALTER EXTENSION atomic_inventory UPDATE; when upgrading), and
 shared_preload_libraries = 'atomic_inventory' for the reservation
 sweeper and cluster-wide statistics.
CONTROL
    dpkg-deb --root-owner-group -Zxz --build "$root" "$dist/$name-$arch.deb" >/dev/null

    # tarball with install.sh, for a PostgreSQL installed elsewhere
    tdir="$work/tar-pg$m/$name"
    install -d "$tdir/lib" "$tdir/extension"
    install -m 755 "$so" "$tdir/lib/"
    install -m 644 "$ext"/atomic_inventory* "$tdir/extension/"
    sed -e "s/@MAJOR@/$m/g" -e "s/@VERSION@/$version/g" -e "s/@GLIBC@/$glibc/g" \
        pg_test/package/install.sh >"$tdir/install.sh"
    chmod 755 "$tdir/install.sh"
    tar -C "$work/tar-pg$m" --owner=0 --group=0 --numeric-owner --sort=name -czf \
        "$dist/$name-linux-$machine.tar.gz" "$name"
    log "PostgreSQL $m: $name-$arch.deb, $name-linux-$machine.tar.gz ($((SECONDS - start)) s)"
done

(cd "$dist" && rm -f SHA256SUMS && sha256sum -- *.deb *.tar.gz >SHA256SUMS)
log "dist/:"
(cd "$dist" && ls -l -- *.deb *.tar.gz SHA256SUMS) >&2
