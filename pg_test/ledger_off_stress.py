#!/usr/bin/env python3
"""Concurrency test of the single-line sale with the ledger off (its bare
UPDATE, no ledger row): many connections sell the same few rows at once, in READ
COMMITTED, REPEATABLE READ and SERIALIZABLE, while others restock, sell with
the ledger on (the SQL statement), reserve and commit or release (which
write the same rows through SQL). Then:

- each item's quantity is its initial one plus every acknowledged change,
  never below its reserved units, reserved never below 0;
- 40001 (serialization failure) came only from REPEATABLE READ or
  SERIALIZABLE sessions, and no other unexpected error happened;
- every index of items holds every row version it should (amcheck's
  bt_index_check with heapallindexed; where amcheck is not installed, as in
  the PostgreSQL 16 wheel, a full scan of each index finds exactly the rows
  a sequential scan does), in a second phase run with an extra index on
  updated_at, which makes every sale a non-HOT update that writes index
  entries.

Prints `<invariant>: N passed, N failed` per check and a final
`ledger_off_stress: N passed, N failed`; exits 1 on any violation.
"""
import argparse
import collections
import json
import random
import threading
import time
import uuid

import psycopg

from checks import S, Checks, Failure, call, connect, decode

EXPECTED = {"INSUFFICIENT_INVENTORY", "LOCK_TIMEOUT"}
amcheck = True  # main() sets it: whether the server has the amcheck extension


class Run:
    def __init__(self, dsn, items, hot, seconds, seed):
        self.dsn, self.items, self.hot, self.seed = dsn, items, hot, seed
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.delta = collections.Counter()
        self.outcomes = collections.Counter()
        self.unexpected = []

    def ack(self, item, d):
        with self.lock:
            self.delta[item] += d

    def note(self, what, code):
        with self.lock:
            self.outcomes[(what, code)] += 1

    def worker(self, k):
        rng = random.Random(self.seed * 1000 + k)
        bare = connect(self.dsn)
        bare.execute(f"SET {S}.ledger = off")
        full = connect(self.dsn)
        ops = ["sale"] * 40 + ["sale_rr"] * 10 + ["sale_ser"] * 10 + ["sale_ledger"] * 10 + \
              ["restock"] * 12 + ["reserve"] * 18
        while time.monotonic() < self.deadline:
            op = rng.choice(ops)
            item = rng.choice(self.hot if rng.random() < 0.7 else self.items)
            qty = rng.randint(1, 3)
            try:
                self.one(bare, full, op, item, qty, rng)
                self.note(op, "ok")
            except (Failure, psycopg.Error) as e:
                err = decode(e)
                code = "40001" if err.sqlstate == "40001" else err.code or "?"
                self.note(op, code)
                allowed = code in EXPECTED or (code == "40001" and op in ("sale_rr", "sale_ser"))
                if not allowed:
                    with self.lock:
                        self.unexpected.append(f"{op}: {err.sqlstate} {e}")
                for c in (bare, full):
                    if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        c.execute("ROLLBACK")
            except Exception as e:  # an answer not as documented: counted, not a dead thread
                self.note(op, "bad answer")
                with self.lock:
                    self.unexpected.append(f"{op}: {e!r}")
                for c in (bare, full):
                    if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        c.execute("ROLLBACK")
        bare.close()
        full.close()

    def one(self, bare, full, op, item, qty, rng):
        def sale(conn):
            return call(conn, "decrement_inventory", p_inventory_id=item, p_quantity=qty)
        if op == "sale":
            r = sale(bare)
            self.ack(item, -float(r["deducted"]))
        elif op in ("sale_rr", "sale_ser"):
            level = "REPEATABLE READ" if op == "sale_rr" else "SERIALIZABLE"
            bare.execute(f"BEGIN ISOLATION LEVEL {level}")
            # the snapshot is taken here, so a sale committed by another
            # session before ours runs is a concurrent update (40001)
            bare.execute(f"SELECT quantity FROM {S}.items WHERE id = %s", (item,)).fetchone()
            time.sleep(rng.random() * 0.002)
            r = sale(bare)
            bare.execute("COMMIT")
            self.ack(item, -float(r["deducted"]))
        elif op == "sale_ledger":
            r = sale(full)
            self.ack(item, -float(r["deducted"]))
        elif op == "restock":
            r = call(full, "increment_inventory", p_inventory_id=item, p_quantity=qty * 4)
            self.ack(item, float(r["added"]))
        elif op == "reserve":
            lines = json.dumps([{"inventory_id": item, "quantity": qty}])
            r = call(full, "reserve_inventory", p_lines=lines, p_ttl_seconds=60)
            rid = r["reservation_id"]
            if rng.random() < 0.5:
                c = call(full, "commit_reservation", p_reservation_id=rid)
                for line in c["committed"]:
                    self.ack(line["inventory_id"], -float(line["quantity"]))
            else:
                call(full, "release_reservation", p_reservation_id=rid)


def phase(a, admin, checks, label, seed):
    tag = f"ledger-off-{label}-{uuid.uuid4().hex[:8]}"
    items = [admin.execute(
        f"INSERT INTO {S}.items (sku, quantity) VALUES (%s, %s) RETURNING id::text",
        (f"{tag}-{n}", 400 if n < a.hot else 60)).fetchone()[0] for n in range(a.hot + a.cold)]
    hot = items[:a.hot]
    initial = dict(admin.execute(f"SELECT id::text, quantity FROM {S}.items WHERE id = ANY(%s::uuid[])",
                                 (items,)).fetchall())
    run = Run(a.dsn, items, hot, a.seconds, seed)
    threads = [threading.Thread(target=run.worker, args=(k,)) for k in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(n for (op, code), n in run.outcomes.items() if code == "ok")
    print(f"ledger_off_stress [{label}]: {sum(run.outcomes.values())} operations, {ok} acknowledged; outcomes:")
    for (op, code), n in sorted(run.outcomes.items()):
        print(f"    {op:12s} {code:24s} {n}")
    # the reservations still held are released first: reserved back to 0
    rows = admin.execute(f"SELECT id::text, quantity, reserved FROM {S}.items WHERE id = ANY(%s::uuid[])",
                         (items,)).fetchall()
    for item, qty, reserved in rows:
        checks.check("quantity_not_below_reserved", reserved <= qty, f"{item}: {qty} < reserved {reserved}")
        checks.check("reserved_not_below_zero", reserved >= 0, f"{item}: reserved {reserved}")
        expected = float(initial[item]) + run.delta[item]
        checks.check("quantity_matches_acknowledged_ops", abs(float(qty) - expected) < 1e-9,
                     f"{item} is {qty}, client expects {expected}")
    sold = sum(n for (op, code), n in run.outcomes.items() if op == "sale" and code == "ok")
    checks.check("ledger_off_sales_ran", sold > 0, "no ledger-off sale succeeded")
    conflicts = sum(n for (op, code), n in run.outcomes.items() if code == "40001")
    print(f"ledger_off_stress [{label}]: {sold} ledger-off sales in READ COMMITTED, "
          f"{conflicts} serialization failures in REPEATABLE READ / SERIALIZABLE")
    checks.check("no_unexpected_errors", not run.unexpected, "; ".join(run.unexpected[:3]))
    # every index of items holds exactly the row versions it should
    for (index,) in admin.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
            (f"{S}.items",)).fetchall():
        if not amcheck:
            index_scan_check(admin, checks, index)
            continue
        try:
            admin.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            checks.check("indexes_hold_every_row", True)
        except psycopg.Error as e:
            checks.check("indexes_hold_every_row", False, f"{index}: {e}")
    # and a lookup through the primary key finds what a sequential scan does
    with admin.transaction():
        admin.execute("SET LOCAL enable_seqscan = off")
        admin.execute("SET LOCAL enable_bitmapscan = off")
        by_index = admin.execute(f"SELECT id::text, quantity FROM {S}.items WHERE id = ANY(%s::uuid[])",
                                 (items,)).fetchall()
    checks.check("index_lookup_matches_table", sorted(by_index) == sorted((i, q) for i, q, _ in rows))
    # Sales with the ledger off leave these items' ledger short of their
    # quantity by design: remove them, so that later stages reconciling the
    # whole database (faults.py) see only their own items.
    with admin.transaction():
        held = [r for (r,) in admin.execute(
            f"SELECT DISTINCT reservation_id FROM {S}.reservation_lines WHERE inventory_id = ANY(%s::uuid[])",
            (items,)).fetchall()]
        admin.execute(f"DELETE FROM {S}.reservation_lines WHERE inventory_id = ANY(%s::uuid[])", (items,))
        admin.execute(f"DELETE FROM {S}.reservations r WHERE r.id = ANY(%s) AND NOT EXISTS "
                      f"(SELECT 1 FROM {S}.reservation_lines l WHERE l.reservation_id = r.id)", (held,))
        admin.execute(f"DELETE FROM {S}.ledger WHERE inventory_id = ANY(%s::uuid[])", (items,))
        admin.execute(f"DELETE FROM {S}.items WHERE id = ANY(%s::uuid[])", (items,))


def index_scan_check(admin, checks, index):
    """Where amcheck is not installed (the PostgreSQL 16 wheel ships no
    contrib): every row a sequential scan sees is found by a full scan of
    INDEX, and nothing else (the live rows' part of heapallindexed; the
    tree's structure is not checked)."""
    keys, pred = admin.execute(
        "SELECT array(SELECT pg_get_indexdef(indexrelid, k, true) FROM generate_series(1, indnkeyatts) k),"
        "       pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = %s::regclass",
        (index,)).fetchone()
    where = f" WHERE {pred}" if pred else ""
    with admin.transaction():
        admin.execute("SET LOCAL enable_indexscan = off")
        admin.execute("SET LOCAL enable_bitmapscan = off")
        admin.execute("SET LOCAL enable_indexonlyscan = off")
        heap = admin.execute(f"SELECT ctid::text FROM {S}.items{where}").fetchall()
    with admin.transaction():
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_indexonlyscan"):
            admin.execute(f"SET LOCAL {setting} = off")
        query = f"SELECT ctid::text FROM {S}.items{where} ORDER BY {', '.join(keys)}"
        plan = "\n".join(r for (r,) in admin.execute(f"EXPLAIN {query}").fetchall())
        if f"Index Scan using {index.split('.')[-1]} " not in plan:
            checks.check("indexes_hold_every_row", False, f"{index}: no full scan of it planned: {plan}")
            return
        by_index = admin.execute(query).fetchall()
    checks.check("indexes_hold_every_row", sorted(by_index) == sorted(heap),
                 f"{index}: {len(by_index)} rows through the index, {len(heap)} in the table")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="")
    ap.add_argument("--connections", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--hot", type=int, default=3)
    ap.add_argument("--cold", type=int, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    print(f"ledger_off_stress: {a.connections} connections, 2 x {a.seconds}s, seed {a.seed}")
    admin = connect(a.dsn)
    global amcheck
    amcheck = admin.execute("SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone()[0]
    if amcheck:
        admin.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    else:
        print("ledger_off_stress: amcheck is not installed here; each index of items is checked by a full scan instead")
    checks = Checks("ledger_off_stress", show="grouped")
    phase(a, admin, checks, "hot-updates", a.seed)
    # an index on updated_at: every sale changes an indexed column, so none
    # is HOT and each writes its index entries (ExecInsertIndexTuples)
    admin.execute(f"CREATE INDEX ledger_off_stress_updated_at ON {S}.items (updated_at)")
    try:
        phase(a, admin, checks, "index-entries", a.seed + 1)
    finally:
        admin.execute(f"DROP INDEX {S}.ledger_off_stress_updated_at")
    checks.finish()


if __name__ == "__main__":
    main()
