#!/usr/bin/env bash
# Stage `packages` of the test command: build the release packages
# (pg_test/package.sh) and install each the way a user would, then remove it.
#
#   bash pg_test/package/check.sh [MAJOR...]     (default: 15 16 18)
#
# For each major: what a source build put into that PostgreSQL
# (atomic_inventory.so, extension/atomic_inventory*) is set aside, then
#   - Debian's PostgreSQL (postgresql-<M> installed, its pg_config under
#     /usr/lib/postgresql/<M>): apt-get install ./dist/...-pg<M>-<arch>.deb;
#   - any other (the wheels under /opt): the tarball, ./install.sh
#     --pg-config <it>, after checking that another major's install.sh
#     refuses this server and writes nothing;
# then on a throwaway cluster with the library preloaded and the sweeper on:
# CREATE EXTENSION; CREATE EXTENSION ... VERSION '0.3.0' (the frozen
# pg_test/upgrade script) and ALTER EXTENSION ... UPDATE through the packaged
# upgrade scripts; in both databases a sale, a reservation committed, a batch
# claimed (a second driver refused), the ledger reconciling; the sweeper
# expiring a 1 s reservation; no crashed backend. Then apt-get remove /
# ./install.sh --uninstall, and no file of the package may be left.
# Last (also on failure or interruption), what was set aside is put back,
# so the stages and people after this find their build where it was.
# Every .deb's control fields and paths are checked too (16/18's cannot be
# installed here: there is no Debian postgresql-16/18 on Debian 12).
set -uo pipefail
cd "$(dirname "$0")/../.."
source pg_test/lib.sh

majors=("$@")
((${#majors[@]})) || majors=(15 16 18)
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
arch="$(dpkg --print-architecture)"
machine="$(uname -m)"
dist="$AI_ROOT/dist"
work="$(mktemp -d /tmp/ai-packages-check.XXXXXX)"
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }
check() { if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }

# The files of the extension in the PostgreSQL AI_PG_CONFIG names.
ext_files() {
    local libdir extdir
    libdir="$("$AI_PG_CONFIG" --pkglibdir)"
    extdir="$("$AI_PG_CONFIG" --sharedir)/extension"
    compgen -G "$libdir/atomic_inventory.so" || true
    compgen -G "$extdir/atomic_inventory*" || true
}

# set aside / put back what a source build left in each major
set_aside() {
    local m="$1" f
    mkdir -p "$work/aside-pg$m"
    : >"$work/aside-pg$m.list"
    while read -r f; do
        [[ -n "$f" ]] || continue
        cp -a "$f" "$work/aside-pg$m/" && echo "$f" >>"$work/aside-pg$m.list" && rm -f "$f"
    done < <(ext_files)
}
put_back() {
    local m f
    for list in "$work"/aside-pg*.list; do
        [[ -f "$list" ]] || continue
        m="${list##*/aside-pg}"; m="${m%.list}"
        use_pg "$m"
        while read -r f; do rm -f "$f"; done < <(ext_files)
        while read -r f; do cp -a "$work/aside-pg$m/$(basename "$f")" "$f"; done <"$list"
        echo "put back the $(wc -l <"$list") files of the earlier install into PostgreSQL $m"
        rm -f "$list"
    done
}
cleanup() {
    stop_cluster
    # a package the check left installed (it failed half-way) goes first
    for m in "${majors[@]}"; do
        if dpkg-query -W -f='${Status}' "postgresql-$m-atomic-inventory" 2>/dev/null | grep -q "install ok installed"; then
            DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "postgresql-$m-atomic-inventory" >/dev/null 2>&1
        fi
    done
    put_back
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Debian's own PostgreSQL of that major (so its .deb applies)
is_debian_pg() {
    [[ "$AI_PG_CONFIG" == "/usr/lib/postgresql/$1/bin/pg_config" ]] &&
        dpkg-query -W -f='${Status}' "postgresql-$1" 2>/dev/null | grep -q "install ok installed"
}

# The work a user does first, on the cluster AI_PG_CONFIG names, with the
# packaged library and scripts installed.
scenario() {
    local m="$1" db item res batch out
    AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=1 -c atomic_inventory.sweep_database=ai_test" \
        start_cluster || { fail "pg$m: cluster with the packaged library preloaded did not start"; return; }
    trap cleanup EXIT
    check "pg$m: CREATE EXTENSION gives $version" \
        "$(q ai_test "SELECT extversion FROM pg_extension WHERE extname = 'atomic_inventory'")" "$version"
    check "pg$m: stats count the whole cluster (the library is preloaded)" \
        "$(q ai_test "SELECT DISTINCT scope FROM atomic_inventory.stats")" "cluster"
    # the previous release from its frozen script, updated through the
    # upgrade scripts the package installed
    local extdir
    extdir="$("$AI_PG_CONFIG" --sharedir)/extension"
    install -m 644 pg_test/upgrade/atomic_inventory--0.3.0.sql "$extdir/"
    q postgres "CREATE DATABASE ai_pkg_upgrade"
    q ai_pkg_upgrade "CREATE EXTENSION atomic_inventory VERSION '0.3.0'"
    q ai_pkg_upgrade "ALTER EXTENSION atomic_inventory UPDATE"
    rm -f "$extdir/atomic_inventory--0.3.0.sql"
    check "pg$m: ALTER EXTENSION UPDATE from 0.3.0 reaches $version" \
        "$(q ai_pkg_upgrade "SELECT extversion FROM pg_extension WHERE extname = 'atomic_inventory'")" "$version"
    for db in ai_test ai_pkg_upgrade; do
        item="$(q "$db" "SELECT atomic_inventory.create_item(p_quantity => 10, p_sku => 'pkg-1')->>'inventory_id'")"
        check "pg$m $db: a sale" \
            "$(q "$db" "SELECT atomic_inventory.decrement_inventory('$item', 3)->>'new_quantity'")" "7"
        res="$(q "$db" "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2)))->>'reservation_id'")"
        q "$db" "SELECT atomic_inventory.commit_reservation('$res')" >/dev/null
        check "pg$m $db: a reservation held and committed" \
            "$(q "$db" "SELECT quantity || '/' || reserved FROM atomic_inventory.items WHERE id = '$item'")" "5/0"
        batch="$(q "$db" "SELECT atomic_inventory.create_batch(p_zone => 'pkg')->>'batch_id'")"
        check "pg$m $db: a batch claimed" \
            "$(q "$db" "SELECT atomic_inventory.claim_batch('$batch', 'driver-1')->>'success'")" "true"
        out="$(q "$db" "SELECT atomic_inventory.claim_batch('$batch', 'driver-2')" 2>&1 | grep -o BATCH_UNAVAILABLE | head -1)"
        check "pg$m $db: a second driver is refused the batch" "$out" "BATCH_UNAVAILABLE"
        check "pg$m $db: the ledger reconciles" "$(q "$db" "SELECT count(*) FROM atomic_inventory.reconcile()")" "0"
    done
    # the sweeper (a background worker of the preloaded library) expires a
    # hold nobody commits; it may take a retry (10 s) to find ai_test
    item="$(q ai_test "SELECT atomic_inventory.create_item(p_quantity => 4)->>'inventory_id'")"
    res="$(q ai_test "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 1)), p_ttl_seconds => 1)->>'reservation_id'")"
    local status=""
    for _ in $(seq 1 60); do
        status="$(q ai_test "SELECT status FROM atomic_inventory.reservations WHERE id = '$res'")"
        [[ "$status" == expired ]] && break
        sleep 0.5
    done
    check "pg$m: the sweeper expires a 1 s reservation" "$status" "expired"
    AI_SERVER_CRASHED=""
    stop_cluster
    check "pg$m: no crashed backend in the server log" "${AI_SERVER_CRASHED:-}" ""
}

# files_gone M WHAT: nothing of the extension left in PostgreSQL M
files_gone() {
    local left
    left="$(ext_files | tr '\n' ' ')"
    check "pg$1: $2 leaves no file of the extension" "$left" ""
}

log "building the packages: bash pg_test/package.sh ${majors[*]}"
start=$SECONDS
if ! bash pg_test/package.sh "${majors[@]}"; then
    echo "FAIL pg_test/package.sh"
    exit 1
fi
echo "packages built in $((SECONDS - start)) s"
check "SHA256SUMS matches dist/" "$(cd "$dist" && sha256sum --quiet -c SHA256SUMS 2>&1)" ""

for m in "${majors[@]}"; do
    deb="$dist/atomic_inventory-$version-pg$m-$arch.deb"
    tarball="$dist/atomic_inventory-$version-pg$m-linux-$machine.tar.gz"
    pkg="postgresql-$m-atomic-inventory"
    check "pg$m: .deb package name" "$(dpkg-deb -f "$deb" Package)" "$pkg"
    check "pg$m: .deb depends on the server package (and glibc)" \
        "$(dpkg-deb -f "$deb" Depends | sed 's/libc6 (>= 2\.[0-9]*)/libc6 (>= 2.x)/')" "postgresql-$m, libc6 (>= 2.x), libgcc-s1"
    want="$( (echo "./usr/lib/postgresql/$m/lib/atomic_inventory.so"
              echo "./usr/share/doc/$pkg/copyright"
              for f in atomic_inventory.control "atomic_inventory--$version.sql" sql/atomic_inventory--*--*.sql; do
                  echo "./usr/share/postgresql/$m/extension/$(basename "$f")"
              done) | sort)"
    check "pg$m: .deb files (library, control, install and upgrade scripts, copyright)" \
        "$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sort)" "$want"
    want="$( (echo "atomic_inventory-$version-pg$m/install.sh" "atomic_inventory-$version-pg$m/lib/atomic_inventory.so"
              for f in atomic_inventory.control "atomic_inventory--$version.sql" sql/atomic_inventory--*--*.sql; do
                  echo "atomic_inventory-$version-pg$m/extension/$(basename "$f")"
              done) | tr ' ' '\n' | sort)"
    check "pg$m: tarball files" "$(tar -tzf "$tarball" | grep -v '/$' | sort)" "$want"
done

for m in "${majors[@]}"; do
    use_pg "$m"
    log "PostgreSQL $m: installing the package into $("$AI_PG_CONFIG" --version)"
    set_aside "$m"
    files_gone "$m" "setting the source build aside"
    if is_debian_pg "$m"; then
        deb="$dist/atomic_inventory-$version-pg$m-$arch.deb"
        pkg="postgresql-$m-atomic-inventory"
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1; then
            ok "pg$m: apt-get install ./$(basename "$deb")"
        else
            fail "pg$m: apt-get install ./$(basename "$deb")"; tail -5 "$work/apt.log"; continue
        fi
        check "pg$m: dpkg knows the package" "$(dpkg-query -W -f='${Status} ${Version}' "$pkg")" "install ok installed $version-1"
        check "pg$m: the package's files are where PostgreSQL looks" \
            "$(ext_files | sort | tr '\n' ' ')" "$(dpkg -L "$pkg" | grep -E '/atomic_inventory[^/]*$' | sort | tr '\n' ' ')"
        scenario "$m"
        if DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$pkg" >"$work/apt.log" 2>&1; then
            ok "pg$m: apt-get remove $pkg"
        else
            fail "pg$m: apt-get remove $pkg"; tail -5 "$work/apt.log"
        fi
        check "pg$m: dpkg has the package removed" \
            "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -c 'install ok installed')" "0"
        check "pg$m: its doc directory is gone" "$(compgen -G "/usr/share/doc/$pkg" || true)" ""
        files_gone "$m" "apt-get remove"
    else
        dir="$work/tar-pg$m"
        mkdir -p "$dir"
        tar -C "$dir" -xzf "$dist/atomic_inventory-$version-pg$m-linux-$machine.tar.gz"
        inst="$dir/atomic_inventory-$version-pg$m/install.sh"
        # another major's install.sh must refuse this server and write nothing
        for other in "${majors[@]}"; do
            [[ "$other" != "$m" ]] || continue
            odir="$work/tar-other-pg$other"
            mkdir -p "$odir"
            tar -C "$odir" -xzf "$dist/atomic_inventory-$version-pg$other-linux-$machine.tar.gz"
            out="$("$odir/atomic_inventory-$version-pg$other/install.sh" --pg-config "$AI_PG_CONFIG" 2>&1)"
            rc=$?
            check "pg$m: the pg$other tarball's install.sh refuses PostgreSQL $m (exit 1)" "$rc" "1"
            check "pg$m: ... and says why" "$(grep -c "refusing: use the package built for PostgreSQL $m" <<<"$out")" "1"
            files_gone "$m" "the refused install"
            break
        done
        if "$inst" --pg-config "$AI_PG_CONFIG" >"$work/install.log" 2>&1; then
            ok "pg$m: ./install.sh --pg-config $AI_PG_CONFIG"
        else
            fail "pg$m: ./install.sh --pg-config $AI_PG_CONFIG"; cat "$work/install.log"; continue
        fi
        check "pg$m: install.sh put every file of the tarball in place" "$(ext_files | wc -l)" \
            "$(find "$dir" -type f \( -path '*/lib/*' -o -path '*/extension/*' \) | wc -l)"
        scenario "$m"
        if "$inst" --uninstall --pg-config "$AI_PG_CONFIG" >"$work/install.log" 2>&1; then
            ok "pg$m: ./install.sh --uninstall"
        else
            fail "pg$m: ./install.sh --uninstall"; cat "$work/install.log"
        fi
        files_gone "$m" "install.sh --uninstall"
    fi
done
put_back
((failed == 0)) && echo "packages: every check passed" || echo "packages: some checks FAILED"
exit $failed
