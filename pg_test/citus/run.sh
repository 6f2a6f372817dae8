#!/usr/bin/env bash
# atomic_inventory on Citus: a coordinator and two workers on loopback.
#
#   CITUS_SRC=/path/to/citus bash pg_test/citus/run.sh
#
# CITUS_SRC is a Citus 13 source tree (e.g. `git archive v13.2.2`); it is
# configured, built (nice -n 19) and installed into PostgreSQL 15 unless
# citus.so is already there. Without CITUS_SRC and without an installed
# Citus, the script says it is skipped and exits 0.
#
# It uses the atomic_inventory already installed in PostgreSQL 15 (it never
# builds or installs the extension: run pg_test/demo.sh or install a package
# first). Three clusters are started as user postgres in /tmp on free loopback
# ports with shared_preload_libraries = 'citus,atomic_inventory', database
# ai_test on each, CREATE EXTENSION citus and atomic_inventory on all three,
# the coordinator registered and the two workers added. Then:
#   1. a workload through the coordinator with the tables local to it
#      (create_item, decrement_inventory from 8 connections at once,
#      decrement_inventory_many, an idempotent sale twice, reserve_inventory +
#      commit_reservation, a non-superuser of another tenant refused), with
#      invariants checked (no oversell, quantities = sum of the ledger);
#   2. every table of the schema probed, each in a transaction rolled back:
#      create_distributed_table(t, 'tenant_id') when it has that column,
#      else create_reference_table(t); every Citus error is printed with
#      its SQLSTATE (docs/scaling.md records the results);
#   3. the same with the successes kept, then the workload again.
# Exit status: 1 if the workload on local tables breaks an invariant or the
# cluster cannot be set up; the distribution probe only reports.
# The clusters are stopped and removed at exit; no other server is touched.
set -euo pipefail
export AI_PG_MAJOR=15
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PG_CONFIG="$AI_PG15_CONFIG"
BINDIR="$("$PG_CONFIG" --bindir)"
PKGLIBDIR="$("$PG_CONFIG" --pkglibdir)"
SHAREDIR="$("$PG_CONFIG" --sharedir)"

citus_installed() { [[ -f "$PKGLIBDIR/citus.so" && -f "$SHAREDIR/extension/citus.control" ]]; }

build_citus() {
    local src="$1" t0 t1
    [[ -x "$src/configure" ]] || { log "CITUS_SRC=$src has no configure script"; return 1; }
    log "building Citus from $src against $("$PG_CONFIG" --version) (nice -n 19)"
    # Debian packages configure and the build need (libcurl for the stats
    # collector, zstd/lz4 for columnar, plus what pg_config --configure links)
    ensure_debs libzstd-dev liblz4-dev libcurl4-openssl-dev libkrb5-dev libselinux1-dev \
        libxslt1-dev libpam0g-dev libreadline-dev libssl-dev
    # Debian's PostgreSQL 15.20 headers declare have_createdb_privilege()
    # (commands/dbcommands.h) and Citus 13.2.2's pg_version_compat.h defines a
    # static one for PG 15: "static declaration of 'have_createdb_privilege'
    # follows non-static declaration". Rename Citus's copy (same body).
    local compat="$src/src/include/pg_version_compat.h"
    if grep -q 'extern bool have_createdb_privilege' "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h" &&
        grep -q '^have_createdb_privilege(void)$' "$compat"; then
        log "patching $compat: have_createdb_privilege is exported by these PostgreSQL headers"
        python3 - "$compat" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = "static inline bool\nhave_createdb_privilege(void)"
new = ("#define have_createdb_privilege citus_compat_have_createdb_privilege\n"
       "static inline bool\ncitus_compat_have_createdb_privilege(void)")
assert s.count(old) == 1, "unexpected pg_version_compat.h"
open(p, "w").write(s.replace(old, new))
PY
    fi
    t0=$(date +%s)
    (cd "$src" && nice -n 19 ./configure PG_CONFIG="$PG_CONFIG" >/tmp/citus-configure.log 2>&1) ||
        { log "configure failed: /tmp/citus-configure.log"; tail -5 /tmp/citus-configure.log >&2; return 1; }
    (cd "$src" && nice -n 19 make -j2 >/tmp/citus-make.log 2>&1) ||
        { log "make failed: /tmp/citus-make.log"; grep -E 'error:|\*\*\*' /tmp/citus-make.log | head -5 >&2; return 1; }
    (cd "$src" && make install >/tmp/citus-install.log 2>&1) ||
        { log "make install failed: /tmp/citus-install.log"; return 1; }
    t1=$(date +%s)
    log "Citus built and installed in $((t1 - t0)) s"
}

if ! citus_installed; then
    if [[ -z "${CITUS_SRC:-}" ]]; then
        echo "citus: skipped: Citus is not installed in PostgreSQL 15 ($PKGLIBDIR/citus.so) and CITUS_SRC is not set"
        echo "       (Citus is in no package registry here; run: CITUS_SRC=/path/to/citus-13-source bash $0)"
        exit 0
    fi
    build_citus "$CITUS_SRC"
fi
if [[ ! -f "$SHAREDIR/extension/atomic_inventory.control" ]]; then
    echo "citus: skipped: atomic_inventory is not installed in PostgreSQL 15 (this script does not install it)"
    exit 0
fi
log "$("$PG_CONFIG" --version), citus $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SHAREDIR/extension/citus.control"), atomic_inventory $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SHAREDIR/extension/atomic_inventory.control")"

CITUS_DIR="$(mktemp -d /tmp/ai-citus.XXXXXX)"
chown postgres "$CITUS_DIR"
chmod 700 "$CITUS_DIR"
NODES=(coord w1 w2)
declare -A PORT=()

cleanup() {
    local n
    # a backend that crashed shows in a server log: say so and keep the logs
    local crash='PANIC|was terminated by signal|server process \(PID [0-9]+\) exited with exit code'
    if grep -qE "$crash" "$CITUS_DIR"/*/server.log 2>/dev/null; then
        log "a server log shows a crashed backend:"
        grep -E "$crash" "$CITUS_DIR"/*/server.log | head -5 >&2
        AI_CITUS_KEEP_LOGS="${AI_CITUS_KEEP_LOGS:-$(mktemp -d /tmp/ai-citus-logs.XXXXXX)}"
        log "server logs kept in $AI_CITUS_KEEP_LOGS"
    fi
    for n in "${NODES[@]}"; do
        [[ -f "$CITUS_DIR/$n/data/postmaster.pid" ]] &&
            as_postgres "$BINDIR/pg_ctl" -D "$CITUS_DIR/$n/data" -m fast -w stop >/dev/null 2>&1 || true
    done
    if [[ -n "${AI_CITUS_KEEP_LOGS:-}" ]]; then
        mkdir -p "$AI_CITUS_KEEP_LOGS"
        for n in "${NODES[@]}"; do cp "$CITUS_DIR/$n/server.log" "$AI_CITUS_KEEP_LOGS/$n.log" 2>/dev/null || true; done
    fi
    rm -rf "$CITUS_DIR"
}
trap cleanup EXIT

start_node() {
    local n="$1" port
    as_postgres mkdir -p "$CITUS_DIR/$n"
    as_postgres "$BINDIR/initdb" -A trust -U postgres -D "$CITUS_DIR/$n/data" >/dev/null
    cat >>"$CITUS_DIR/$n/data/postgresql.conf" <<EOF
shared_preload_libraries = 'citus,atomic_inventory'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CITUS_DIR/$n'
max_connections = 200
shared_buffers = 128MB
atomic_inventory.sweep_interval = 0
EOF
    # the port is bound by the time the next node asks for one
    port="$(free_port 300)"
    as_postgres "$BINDIR/pg_ctl" -D "$CITUS_DIR/$n/data" -l "$CITUS_DIR/$n/server.log" -w \
        -o "-p $port" start >/dev/null || { log "$n did not start"; tail -5 "$CITUS_DIR/$n/server.log" >&2; return 1; }
    if [[ "$(psql -X -A -t -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SHOW data_directory')" != "$CITUS_DIR/$n/data" ]]; then
        log "another server answers on port $port"
        return 1
    fi
    PORT[$n]="$port"
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE ai_test" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d ai_test \
        -c "CREATE EXTENSION citus" -c "CREATE EXTENSION atomic_inventory" >/dev/null
    log "$n up on 127.0.0.1:$port"
}

for n in "${NODES[@]}"; do start_node "$n"; done
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[coord]}" -U postgres -d ai_test <<EOF >/dev/null
SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coord]});
SELECT citus_add_node('127.0.0.1', ${PORT[w1]});
SELECT citus_add_node('127.0.0.1', ${PORT[w2]});
EOF
log "nodes: $(psql -X -A -t -h 127.0.0.1 -p "${PORT[coord]}" -U postgres -d ai_test \
    -c "SELECT string_agg(nodename || ':' || nodeport || ' ' || noderole || CASE WHEN groupid = 0 THEN ' (coordinator)' ELSE '' END, ', ' ORDER BY groupid) FROM pg_dist_node")"

export AI_CITUS_DSN="host=127.0.0.1 port=${PORT[coord]} user=postgres dbname=ai_test"
python3 - <<'PY'
import json, os, sys, threading
from decimal import Decimal
import psycopg

DSN = os.environ["AI_CITUS_DSN"]
failed = []

def conn(tenant=None, role=None):
    c = psycopg.connect(DSN, autocommit=True)
    if role is not None:
        c.execute(f"SET ROLE {role}")
    if tenant is not None:
        c.execute("SELECT set_config('atomic_inventory.tenant_id', %s, false)", (tenant,))
    return c

def err(e):
    d = e.diag
    return f"{d.sqlstate}: {d.message_primary}" + (f" (DETAIL: {d.message_detail})" if d.message_detail else "") \
        + (f" (HINT: {d.message_hint})" if d.message_hint else "")

def step(name, fn):
    try:
        out = fn()
        print(f"  ok    {name}" + (f": {out}" if out else ""))
        return True
    except psycopg.Error as e:
        print(f"  ERROR {name}: {err(e)}")
        return False
    except AssertionError as e:
        print(f"  FAIL  {name}: {e}")
        return False

def workload(label):
    """Calls through the coordinator; returns the names of the steps that failed."""
    print(f"workload ({label}):")
    bad = []
    items = {}
    def create():
        for t in ("t1", "t2"):
            with conn(t) as c:
                r = c.execute("SELECT atomic_inventory.create_item(p_quantity => 100, p_sku => %s)",
                              (f"SKU-{label[:5]}-{t}",)).fetchone()[0]
                items[t] = r["inventory_id"] if isinstance(r, dict) else json.loads(r)["inventory_id"]
        return f"items {items}"
    if not step("create_item (tenants t1, t2)", create):
        return ["create_item"]
    item = items["t1"]
    sold = []
    errors = []
    def sell():
        try:
            with conn("t1") as c:
                for _ in range(20):
                    try:
                        c.execute("SELECT atomic_inventory.decrement_inventory(%s, 1)", (item,))
                        sold.append(1)
                    except psycopg.errors.RaiseException:
                        raise
                    except psycopg.Error as e:
                        if e.diag.sqlstate == "PT409" or "INSUFFICIENT" in (e.diag.message_primary or ""):
                            continue
                        errors.append(err(e))
                        return
        except psycopg.Error as e:
            errors.append(err(e))
    def concurrent():
        ts = [threading.Thread(target=sell) for _ in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert not errors, f"{len(errors)} errors, first: {errors[0]}"
        with conn() as c:
            q = c.execute("SELECT quantity FROM atomic_inventory.items WHERE id = %s", (item,)).fetchone()[0]
        assert len(sold) == 100 and q == 0, f"sold {len(sold)} of 100 (160 tried), quantity now {q}"
        return f"8 connections x 20 sales of 1 from 100: {len(sold)} sold, quantity 0"
    if not step("decrement_inventory, 8 connections at once", concurrent): bad.append("decrement_inventory")
    def many():
        with conn("t2") as c:
            c.execute("SELECT atomic_inventory.decrement_inventory_many(%s::jsonb)",
                      (json.dumps([{"inventory_id": items["t2"], "quantity": 3}]),))
            q = c.execute("SELECT quantity FROM atomic_inventory.items WHERE id = %s", (items["t2"],)).fetchone()[0]
        assert q == 97, f"quantity {q}, expected 97"
        return "quantity 100 -> 97"
    if not step("decrement_inventory_many", many): bad.append("decrement_inventory_many")
    def idempotent():
        with conn("t2") as c:
            key = f"key-{label[:5]}"
            a = c.execute("SELECT atomic_inventory.decrement_inventory(%s, 1, p_idempotency_key => %s)",
                          (items["t2"], key)).fetchone()[0]
            b = c.execute("SELECT atomic_inventory.decrement_inventory(%s, 1, p_idempotency_key => %s)",
                          (items["t2"], key)).fetchone()[0]
            q = c.execute("SELECT quantity FROM atomic_inventory.items WHERE id = %s", (items["t2"],)).fetchone()[0]
        assert a == b and q == 96, f"answers {a} / {b}, quantity {q}, expected the same answer and 96"
        return "same key twice: one sale, the same answer, quantity 97 -> 96"
    if not step("decrement_inventory with p_idempotency_key, twice", idempotent): bad.append("idempotency")
    def reserve_commit():
        with conn("t2") as c:
            r = c.execute("SELECT atomic_inventory.reserve_inventory(%s::jsonb)",
                          (json.dumps([{"inventory_id": items["t2"], "quantity": 5}]),)).fetchone()[0]
            r = r if isinstance(r, dict) else json.loads(r)
            rid = r["reservation_id"]
            c.execute("SELECT atomic_inventory.commit_reservation(%s)", (rid,))
            q, res = c.execute("SELECT quantity, reserved FROM atomic_inventory.items WHERE id = %s",
                               (items["t2"],)).fetchone()
        assert q == 91 and res == 0, f"quantity {q} reserved {res}, expected 91 and 0"
        return "quantity 96 -> 91, reserved 0"
    if not step("reserve_inventory + commit_reservation", reserve_commit): bad.append("reservations")
    def other_tenant():
        with conn("t2", role="ai_app") as c:
            try:
                c.execute("SELECT atomic_inventory.decrement_inventory(%s, 1)", (items["t1"],))
            except psycopg.Error as e:
                assert e.diag.sqlstate == "PT404", err(e)
                return "role ai_app as tenant t2 selling t1's item: PT404"
        raise AssertionError("t2 could sell t1's item")
    if not step("tenant isolation", other_tenant): bad.append("tenant isolation")
    def ledger():
        with conn() as c:
            rows = c.execute("""SELECT i.id, i.quantity, COALESCE(sum(l.delta), 0)
                                  FROM atomic_inventory.items i
                                  LEFT JOIN atomic_inventory.ledger l ON l.inventory_id = i.id
                                 WHERE i.id = ANY(%s::uuid[]) GROUP BY i.id, i.quantity""",
                             (list(items.values()),)).fetchall()
        off = [(str(r[0]), r[1], r[2]) for r in rows if r[1] != r[2]]
        assert len(rows) == 2 and not off, f"quantity != sum(ledger.delta): {off}"
        return "quantity = sum(ledger.delta) for both items"
    if not step("invariant: ledger", ledger): bad.append("ledger")
    return bad

with conn() as c:
    c.execute("CREATE ROLE ai_app LOGIN")
    c.execute("SELECT atomic_inventory.grant_usage('ai_app')")

# 1. tables local to the coordinator
bad = workload("local tables")
if bad:
    failed.append("local: " + ", ".join(bad))

# 2. each table alone, rolled back
with conn() as c:
    tables = [r[0] for r in c.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'atomic_inventory' AND c.relkind IN ('r', 'p') ORDER BY c.relname""")]
    has_tenant = {r[0] for r in c.execute("""
        SELECT table_name FROM information_schema.columns
         WHERE table_schema = 'atomic_inventory' AND column_name = 'tenant_id'""")}

def call_for(t):
    """Distributed by tenant_id where the table has one, else a reference table."""
    if t in has_tenant:
        return f"create_distributed_table('atomic_inventory.{t}', 'tenant_id')"
    return f"create_reference_table('atomic_inventory.{t}')"

print("distribution probe (each table alone, in a transaction rolled back):")
for t in tables:
    with conn() as c:
        call = call_for(t)
        try:
            with c.transaction():
                c.execute(f"SELECT {call}")
                raise psycopg.Rollback()
        except psycopg.Error as e:
            print(f"  {t:24} {call}: ERROR {err(e)}")
            if "because it has triggers" in (e.diag.message_primary or ""):
                # Citus refuses triggers unless citus.enable_unsafe_triggers: the next blocker
                try:
                    with c.transaction():
                        c.execute("SET LOCAL citus.enable_unsafe_triggers = on")
                        c.execute(f"SELECT {call}")
                        raise psycopg.Rollback()
                except psycopg.Error as e2:
                    print(f"  {'':24}   with citus.enable_unsafe_triggers = on: ERROR {err(e2)}")
                else:
                    print(f"  {'':24}   with citus.enable_unsafe_triggers = on: ok (rolled back)")
        else:
            print(f"  {t:24} {call}: ok (rolled back)")

def probe(name, stmts):
    with conn() as c:
        try:
            with c.transaction():
                for q in stmts:
                    c.execute(q)
                raise psycopg.Rollback()
        except psycopg.Error as e:
            print(f"  {name}: ERROR {err(e)}")
        else:
            print(f"  {name}: ok (rolled back)")

print("other probes (rolled back):")
probe("idempotency_keys by tenant_scope (its key leads with it)",
      ["SELECT create_distributed_table('atomic_inventory.idempotency_keys', 'tenant_scope')"])
probe("copy of items outside the extension, PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, sku) NULLS NOT DISTINCT, tenant_id NOT NULL, no triggers/FKs",
      ["CREATE TABLE public.items_copy (LIKE atomic_inventory.items INCLUDING DEFAULTS)",
       "ALTER TABLE public.items_copy ALTER tenant_id SET NOT NULL",
       "ALTER TABLE public.items_copy ADD PRIMARY KEY (tenant_id, id)",
       "CREATE UNIQUE INDEX ON public.items_copy (tenant_id, sku) NULLS NOT DISTINCT",
       "SELECT create_distributed_table('public.items_copy', 'tenant_id')"])
probe("the same copy, tenant_id nullable, holding a row with tenant_id NULL",
      ["CREATE TABLE public.items_copy (LIKE atomic_inventory.items INCLUDING DEFAULTS)",
       "INSERT INTO public.items_copy (sku, quantity) VALUES ('shared', 1)",
       "SELECT create_distributed_table('public.items_copy', 'tenant_id')"])

# 3. keep what distributes, reference tables first, then the workload again
print("distribution kept (reference tables first, then by tenant_id):")
kept = []
for t in sorted(tables, key=lambda t: t in has_tenant):
    with conn() as c:
        try:
            call = call_for(t)
            c.execute(f"SELECT {call}")
            kept.append(t)
            print(f"  {t:24} {call}: ok")
        except psycopg.Error as e:
            print(f"  {t:24} ERROR {err(e)}")
with conn() as c:
    # (citus_tables leaves out tables that belong to an extension: read pg_dist_partition)
    dist = c.execute("""SELECT logicalrelid::regclass::text, partmethod, repmodel FROM pg_dist_partition
                         ORDER BY 1""").fetchall()
print(f"pg_dist_partition (partmethod n = reference/none, h = hash): {dist if dist else 'none'}")
if kept:
    workload("with the tables above distributed")
    with conn() as c:
        for t in kept:
            rows = c.execute(f"""SELECT nodeid, result FROM run_command_on_all_nodes(
                                   'SELECT count(*) FROM atomic_inventory.{t}') ORDER BY nodeid""").fetchall()
            print(f"  rows of {t} on each node (nodeid, count): {rows}")

if failed:
    print("FAILED: " + "; ".join(failed))
    sys.exit(1)
PY
log "citus: done"
