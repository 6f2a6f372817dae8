#!/usr/bin/env bash
# The main job: install what is missing, build the extension (release),
# install it into a throwaway cluster, and show 50 concurrent sales of one
# item losing nothing, next to the POS sale's read-then-write code
# (docs/background.md) losing most.
set -euo pipefail
cd "$(dirname "$0")/.."
source pg_test/lib.sh
ensure_deps "$AI_PG_MAJOR"
install_extension --release
start_cluster

python3 - <<'PY'
import json, threading, psycopg

N = 50
admin = psycopg.connect("", autocommit=True)
item = admin.execute("SELECT atomic_inventory.create_item(p_quantity => 50, p_sku => 'demo-widget')->>'inventory_id'").fetchone()[0]
admin.execute("CREATE TABLE naive_inventory (id int PRIMARY KEY, quantity numeric)")
admin.execute("INSERT INTO naive_inventory VALUES (1, 50)")

def run_all(fn):
    conns = [psycopg.connect("", autocommit=True) for _ in range(N)]
    gate, results = threading.Barrier(N), []
    def one(c):
        gate.wait()
        try:
            fn(c); results.append(True)
        except psycopg.Error:
            results.append(False)
    ts = [threading.Thread(target=one, args=(c,)) for c in conns]
    [t.start() for t in ts]; [t.join() for t in ts]; [c.close() for c in conns]
    return results.count(True), results.count(False)

def naive_sale(c):
    # the POS sale's original code: read, compute, write back
    q = c.execute("SELECT quantity FROM naive_inventory WHERE id = 1").fetchone()[0]
    c.execute("UPDATE naive_inventory SET quantity = %s WHERE id = 1", (q - 1,))

def atomic_sale(c):
    c.execute("SELECT atomic_inventory.decrement_inventory(p_inventory_id => %s, p_quantity => 1)", (item,))

n_ok, n_err = run_all(naive_sale)
naive_final = admin.execute("SELECT quantity FROM naive_inventory").fetchone()[0]
a_ok, a_err = run_all(atomic_sale)
atomic_final, ledger = admin.execute(
    "SELECT i.quantity, (SELECT sum(delta) FROM atomic_inventory.ledger l WHERE l.inventory_id = i.id) "
    "FROM atomic_inventory.items i WHERE i.id = %s", (item,)).fetchone()
try:
    admin.execute("SELECT atomic_inventory.decrement_inventory(p_inventory_id => %s, p_quantity => 1)", (item,))
    extra = "sold (WRONG)"
except psycopg.Error as e:
    extra = f"refused: {e.sqlstate} {e.diag.message_primary.split(':')[0]}"

print()
print("50 concurrent sales of 1 unit, starting stock 50")
print(f"{'':34s}{'read-then-write (POS sale)':>28s}{'atomic_inventory':>20s}")
print(f"{'calls that reported success':34s}{n_ok:>28d}{a_ok:>20d}")
print(f"{'stock before':34s}{50:>28d}{50:>20d}")
print(f"{'stock after':34s}{str(naive_final):>28s}{str(atomic_final):>20s}")
print(f"{'units sold but not deducted':34s}{str(n_ok - (50 - naive_final)):>28s}{str(a_ok - (50 - atomic_final)):>20s}")
print(f"{'ledger: initial + movements':34s}{'(none)':>28s}{str(ledger):>20s}")
print()
print(f"A 51st sale through atomic_inventory: {extra}")
print()
PY
stop_cluster
