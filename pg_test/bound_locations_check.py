#!/usr/bin/env python3
"""Concurrency check of an adopted stock table keyed by (item, location)
(bind_stock_source's p_location_column, docs/adopting.md).

Binds stock(product_id, warehouse_id, quantity) with a few products in three
warehouses, then runs many connections of random bound_decrement,
bound_increment and bound_decrement_many (lines across warehouses, in random
order) for a few seconds, and checks: no call ends in a deadlock or an
unexpected error, no row below 0, every row = its start + what was
acknowledged at that row (restocks minus sales; another warehouse's calls
never count), and reconcile_source empty. Then the last-units race: n buyers
of one (item, warehouse) row released at once, exactly as many win as the
row covers. Prints `bound_locations: N passed, N failed`; exits 1 on any
failure.

Uses the PG* environment (pg_test/lib.sh's start_cluster sets it).
"""
import argparse
import collections
import json
import random
import threading
import time
import uuid

from checks import S, Checks, Failure, call, connect, race

WAREHOUSES = ["north", "south", "east"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--products", type=int, default=3)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    checks = Checks("bound_locations", show="grouped")
    admin = connect(args.dsn)
    table = f"bl_{uuid.uuid4().hex[:8]}"
    admin.execute(f"""CREATE TABLE public.{table} (product_id integer NOT NULL, warehouse_id text NOT NULL,
                      quantity integer NOT NULL CHECK (quantity >= 0), PRIMARY KEY (product_id, warehouse_id))""")
    rows = [(p, w) for p in range(1, args.products + 1) for w in WAREHOUSES]
    start = {r: 30 for r in rows}
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO public.{table} VALUES (%s, %s, %s)", [(p, w, start[(p, w)]) for p, w in rows])
    call(admin, "bind_stock_source", p_name=table, p_relation=f"public.{table}", p_id_column="product_id",
         p_quantity_column="quantity", p_location_column="warehouse_id")

    moved = collections.Counter()  # (product, warehouse) -> acknowledged delta
    errors = collections.Counter()
    lock = threading.Lock()
    deadline = time.time() + args.seconds

    def worker(k):
        rnd = random.Random(args.seed + k)
        conn = connect(args.dsn)
        while time.time() < deadline:
            op = rnd.random()
            try:
                if op < 0.4:
                    p, w = rnd.choice(rows)
                    n = rnd.randint(1, 4)
                    call(conn, "bound_decrement", p_source=table, p_item_id=str(p), p_quantity=n, p_location=w)
                    delta = {(p, w): -n}
                elif op < 0.6:
                    p, w = rnd.choice(rows)
                    n = rnd.randint(1, 3)
                    call(conn, "bound_increment", p_source=table, p_item_id=str(p), p_quantity=n, p_location=w)
                    delta = {(p, w): n}
                else:
                    picked = rnd.sample(rows, rnd.randint(2, min(5, len(rows))))
                    lines = [{"item_id": p, "location": w, "quantity": rnd.randint(1, 3)} for p, w in picked]
                    rnd.shuffle(lines)  # any order: the rows are locked in (item, location) order
                    call(conn, "bound_decrement_many", p_source=table, p_lines=json.dumps(lines))
                    delta = {(ln["item_id"], ln["location"]): -ln["quantity"] for ln in lines}
            except Failure as f:
                with lock:
                    errors[f.code or f.sqlstate] += 1
                continue
            with lock:
                moved.update(delta)
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    unexpected = {c: n for c, n in errors.items() if c != "INSUFFICIENT_INVENTORY"}
    checks.expect("no deadlock or unexpected error", unexpected, {})
    checks.check("some sales were refused for lack of stock (the race was real)",
                 errors["INSUFFICIENT_INVENTORY"] > 0, f"{dict(errors)}")
    now = dict(((p, w), q) for p, w, q in admin.execute(
        f"SELECT product_id, warehouse_id, quantity FROM public.{table}").fetchall())
    for r in rows:
        checks.expect("row = start + acknowledged moves at that row", now[r], start[r] + moved[r])
        checks.check("no row below 0", now[r] >= 0, f"{r}: {now[r]}")
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile_source(%s)", (table,)).fetchone()[0]
    checks.expect("reconcile_source empty", drift, 0)

    # the last units of one row: 8 buyers of 2 where 5 are left; a buyer at
    # another warehouse of the same product always gets its units
    p = 1
    admin.execute(f"UPDATE public.{table} SET quantity = 5 WHERE product_id = {p} AND warehouse_id = 'north'")
    admin.execute(f"UPDATE public.{table} SET quantity = 100 WHERE product_id = {p} AND warehouse_id = 'south'")

    def buy(conn, k):
        w = "south" if k % 2 else "north"
        return call(conn, "bound_decrement", p_source=table, p_item_id=str(p), p_quantity=2, p_location=w)

    out = race(args.dsn, 16, buy)
    north_won = sum(1 for k, r in enumerate(out) if k % 2 == 0 and not isinstance(r, Failure))
    south_won = sum(1 for k, r in enumerate(out) if k % 2 == 1 and not isinstance(r, Failure))
    checks.expect("last units: 2 of 8 buyers at north win", north_won, 2)
    checks.expect("last units: all 8 buyers at south win", south_won, 8)
    left = admin.execute(f"SELECT quantity FROM public.{table} WHERE product_id = {p} AND warehouse_id IN ('north', 'south') ORDER BY warehouse_id").fetchall()
    checks.expect("last units: north 1 left, south 84", [q for (q,) in left], [1, 84])

    call(admin, "unbind_source", p_name=table)
    admin.execute(f"DROP TABLE public.{table}")
    admin.execute(f"DELETE FROM {S}.ledger WHERE source = %s", (table,))
    checks.finish()


if __name__ == "__main__":
    main()
