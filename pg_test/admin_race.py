#!/usr/bin/env python3
"""Admin changes while the stock moves: striped mode switched on, reshaped
and off, a location made unsellable and sellable again, a kit defined and
removed, and an adopted stock table's binding moved between two tables.

One item X with 2,000 units at the default location, 1,000 of them moved
to a location L1, and a plain item Y. For `--seconds`, one connection keeps
calling `stripe_item` on X at the default location and at L1 with 0, 2, 8
or 16 stripes, another switches L1's `sellable` off and on
(`update_location`), another makes an item K a kit of one X and back
(`define_kit`, `remove_kit`), while others sell X (at each location and
without one), order X and Y together, hold 2 of X (committing 1, releasing
the rest, or releasing all), restock X, transfer 1 of X between the two
locations, and sell K alone and in an order with Y. Meanwhile one
connection rebinds a stock source (`unbind_source` and `bind_stock_source`
in one transaction) to either of two app tables with the same keys, and
one sells through it (`bound_decrement`).

Checked afterwards: no call failed but for stock running short
(INSUFFICIENT_INVENTORY) or, for a sale, order, kit sale or hold, L1 being
unsellable (LOCATION_UNAVAILABLE) — never an INTERNAL error or a deadlock;
X's units over its row, its level and all their stripes are 2,000 plus the
acknowledged restocks less the acknowledged sales and commits; nothing is
held; no stripe is below zero; `reconcile()` is empty; the units gone from
the two app tables are the acknowledged `bound_decrement` sales.

Prints `admin_race: N passed, N failed`. Uses the PG* environment.
"""
import argparse
import collections
import json
import random
import threading
import time
import uuid

from checks import S, Checks, Failure, call, connect

checks = Checks("admin_race")
check = checks.check
D0 = uuid.UUID(int=0)
# a sale or a hold at L1 while it is unsellable, or an order or a kit sale
# that chose L1 and found it made unsellable before its write
UNSELLABLE = {("LOCATION_UNAVAILABLE", n) for n in ("decrement_inventory", "reserve/commit/release",
                                                   "decrement_inventory_many", "kit sale")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    admin = connect()
    tag = uuid.uuid4().hex[:8]
    l1 = call(admin, "create_location", p_code=f"stripes-{tag}")["location_id"]
    x = call(admin, "create_item", p_quantity=2000, p_sku=f"stripes-{tag}-x")["inventory_id"]
    y = call(admin, "create_item", p_quantity=100000, p_sku=f"stripes-{tag}-y")["inventory_id"]
    k = call(admin, "create_item", p_quantity=0, p_sku=f"stripes-{tag}-k")["inventory_id"]
    kit = json.dumps([{"inventory_id": x, "quantity": 1}])
    call(admin, "transfer_inventory", p_inventory_id=x, p_from_location_id=D0, p_to_location_id=l1, p_quantity=1000)
    app, source = f"admin_race_{tag}", f"admin_race_{tag}"
    admin.execute(f"CREATE SCHEMA {app}")
    for t in ("t1", "t2"):
        admin.execute(f"CREATE TABLE {app}.{t} (id text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0))")
        admin.execute(f"INSERT INTO {app}.{t} SELECT 'k' || g, 100000 FROM generate_series(1, 20) g")
    call(admin, "bind_stock_source", p_name=source, p_relation=f"{app}.t1", p_id_column="id", p_quantity_column="qty")

    lock = threading.Lock()
    moved = collections.Counter()  # acknowledged units of X: "in" (restocks) and "out" (sales, commits)
    calls, unexpected, examples = collections.Counter(), collections.Counter(), {}
    deadline = time.monotonic() + a.seconds

    def reshape(c, rng):
        call(c, "stripe_item", p_inventory_id=x, p_stripes=rng.choice([0, 2, 8, 16]),
             **({"p_location_id": l1} if rng.random() < 0.5 else {}))

    def toggle(c, rng):
        call(c, "update_location", p_location_id=l1, p_sellable=rng.random() < 0.6)
        time.sleep(0.002)

    def kit_toggle(c, rng):
        if rng.random() < 0.6:
            call(c, "define_kit", p_inventory_id=k, p_components=kit)
        else:
            call(c, "remove_kit", p_inventory_id=k)
        time.sleep(0.005)

    def kit_sale(c, rng):
        if rng.random() < 0.5:
            call(c, "decrement_inventory", p_inventory_id=k, p_quantity=1)
        else:
            call(c, "decrement_inventory_many",
                 p_lines=json.dumps([{"inventory_id": k, "quantity": 1}, {"inventory_id": y, "quantity": 1}]))
        return ("out", 1)

    def rebind(c, rng):
        with c.transaction():
            call(c, "unbind_source", p_name=source)
            call(c, "bind_stock_source", p_name=source, p_relation=f"{app}.t{rng.choice([1, 2])}", p_id_column="id",
                 p_quantity_column="qty")
        time.sleep(0.01)

    def bound_sell(c, rng):
        call(c, "bound_decrement", p_source=source, p_item_id=f"k{rng.randint(1, 20)}", p_quantity=1)
        return ("bound", 1)

    def sell(c, rng):
        at = rng.choice([None, D0, l1])
        call(c, "decrement_inventory", p_inventory_id=x, p_quantity=1, **({"p_location_id": at} if at else {}))
        return ("out", 1)

    def order(c, rng):
        call(c, "decrement_inventory_many",
             p_lines=json.dumps([{"inventory_id": x, "quantity": 1}, {"inventory_id": y, "quantity": 1}]))
        return ("out", 1)

    def hold(c, rng):
        line = {"inventory_id": x, "quantity": 2}
        if rng.random() < 0.5:
            line["location_id"] = l1
        r = call(c, "reserve_inventory", p_lines=json.dumps([line]))["reservation_id"]
        if rng.random() < 0.5:
            call(c, "commit_reservation", p_reservation_id=r, p_lines=json.dumps([{"inventory_id": x, "quantity": 1}]))
            return ("out", 1)
        call(c, "release_reservation", p_reservation_id=r)
        return None

    def restock(c, rng):
        at = rng.choice([None, l1])
        call(c, "increment_inventory", p_inventory_id=x, p_quantity=1, **({"p_location_id": at} if at else {}))
        return ("in", 1)

    def transfer(c, rng):
        src, dst = (D0, l1) if rng.random() < 0.5 else (l1, D0)
        call(c, "transfer_inventory", p_inventory_id=x, p_from_location_id=src, p_to_location_id=dst, p_quantity=1)

    kinds = [("stripe_item", reshape), ("update_location", toggle), ("define_kit/remove_kit", kit_toggle),
             ("kit sale", kit_sale), ("decrement_inventory", sell), ("decrement_inventory_many", order),
             ("reserve/commit/release", hold), ("increment_inventory", restock), ("transfer_inventory", transfer),
             ("decrement_inventory", sell), ("reserve/commit/release", hold), ("rebind", rebind),
             ("bound_decrement", bound_sell)]

    def run(k, name, fn):
        rng = random.Random(a.seed + k)
        c = connect()
        while time.monotonic() < deadline:
            try:
                out = fn(c, rng)
            except Failure as f:
                with lock:
                    calls[name] += 1
                    if f.code != "INSUFFICIENT_INVENTORY" and (f.code, name) not in UNSELLABLE:
                        unexpected[(name, f.sqlstate, f.code)] += 1
                        examples.setdefault((name, f.sqlstate, f.code), f.message)
                continue
            with lock:
                calls[name] += 1
                if out:
                    moved[out[0]] += out[1]
        c.close()

    threads = [threading.Thread(target=run, args=(k, n, fn)) for k, (n, fn) in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"admin_race: seed {a.seed}, {a.seconds} s; calls: " + ", ".join(f"{n} {m}" for n, m in calls.items())
          + f"; units of X in {moved['in']}, out {moved['out']}; bound sales {moved['bound']}")
    check("every kind of call ran", all(calls[n] > 0 for n, _ in kinds), dict(calls))
    check("no call failed but for stock running short", not unexpected,
          "; ".join(f"{k}: {n} ({examples.get(k, '')})" for k, n in unexpected.items()))
    units, held = admin.execute(
        f"SELECT i.quantity + COALESCE((SELECT sum(l.quantity) FROM {S}.stock_levels l WHERE l.item_id = i.id), 0)"
        f"       + COALESCE((SELECT sum(s.quantity) FROM {S}.item_stripes s WHERE s.item_id = i.id), 0),"
        f"       i.reserved + COALESCE((SELECT sum(l.reserved) FROM {S}.stock_levels l WHERE l.item_id = i.id), 0)"
        f"  FROM {S}.items i WHERE i.id = %s", (x,)).fetchone()
    want = 2000 + moved["in"] - moved["out"]
    check("X's units are 2,000 plus acknowledged restocks less acknowledged sales and commits", units == want,
          f"{units} (want {want})")
    check("nothing held", held == 0, f"{held}")
    low = admin.execute(f"SELECT count(*) FROM {S}.item_stripes s WHERE s.item_id = %s AND s.quantity < 0", (x,)).fetchone()[0]
    check("no stripe below zero", low == 0, f"{low}")
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
    check("reconcile() is empty", drift == 0, f"{drift} rows")
    gone = admin.execute(f"SELECT (SELECT sum(100000 - qty) FROM {app}.t1) + (SELECT sum(100000 - qty) FROM {app}.t2)"
                         ).fetchone()[0]
    check("the units gone from the two rebound tables are the acknowledged bound sales", gone == moved["bound"],
          f"{gone} (want {moved['bound']})")
    call(admin, "update_location", p_location_id=l1, p_sellable=True)
    call(admin, "unbind_source", p_name=source)
    checks.finish()


if __name__ == "__main__":
    main()
