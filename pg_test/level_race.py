#!/usr/bin/env python3
"""Calls that lock a stock level while another connection creates it.

Each round makes a fresh item (100 units at the default location), then at
once: one connection transfers 10 units from the default location to L1
(creating the item's level there), while three others keep calling, until
each has succeeded once, a transfer of one unit L1 -> L2 (creating the level
at L2 too), a sale of one unit at L1, and a hold of one unit at L1
(released at once). Before the level is there these are refused with
LEVEL_NOT_FOUND (or, once it is, served); a call that locks the level in the
moment its creator commits must see it either way, never fail otherwise
(an INTERNAL error, a deadlock). Afterwards, per item: the units over its
own row and its levels are 100 less what was sold, and `reconcile()` is
empty.

Prints `level_race: N passed, N failed`. Uses the PG* environment.
"""
import argparse
import collections
import json
import threading
import uuid

from checks import S, Checks, Failure, call, connect

checks = Checks("level_race")
check = checks.check
# Refusals a call may get while the level it names is not there yet
BEFORE = {"LEVEL_NOT_FOUND"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    a = ap.parse_args()
    admin = connect()
    tag = uuid.uuid4().hex[:8]
    l1, l2 = (call(admin, "create_location", p_code=f"race-{tag}-{k}")["location_id"] for k in (1, 2))
    conns = [connect() for _ in range(4)]
    unexpected = collections.Counter()
    examples = {}
    sold = {}

    def create(c, item):
        call(c, "transfer_inventory", p_inventory_id=item, p_from_location_id=uuid.UUID(int=0),
             p_to_location_id=l1, p_quantity=10)

    def onward(c, item):
        call(c, "transfer_inventory", p_inventory_id=item, p_from_location_id=l1, p_to_location_id=l2, p_quantity=1)

    def sell(c, item):
        call(c, "decrement_inventory", p_inventory_id=item, p_quantity=1, p_location_id=l1)

    def hold(c, item):
        r = call(c, "reserve_inventory", p_lines=json.dumps([{"inventory_id": item, "quantity": 1, "location_id": l1}]))
        call(c, "release_reservation", p_reservation_id=r["reservation_id"])

    kinds = {"transfer_inventory (creates the level)": create, "transfer_inventory (out of it)": onward,
             "decrement_inventory (at it)": sell, "reserve_inventory (at it)": hold}
    tries = collections.Counter()
    for _ in range(a.rounds):
        item = call(admin, "create_item", p_quantity=100, p_sku=f"race-{tag}-{uuid.uuid4()}")["inventory_id"]
        sold[item] = 0
        barrier = threading.Barrier(len(kinds))

        def run(c, name, fn):
            barrier.wait()
            for _ in range(5000):
                tries[name] += 1
                try:
                    fn(c, item)
                    if fn is sell:
                        sold[item] += 1
                    return
                except Failure as f:
                    if f.code in BEFORE and not name.endswith("(creates the level)"):
                        continue
                    unexpected[(name, f.sqlstate, f.code)] += 1
                    examples.setdefault((name, f.sqlstate, f.code), f.message)
                    return
            unexpected[(name, "gave up", None)] += 1

        threads = [threading.Thread(target=run, args=(c, n, fn)) for c, (n, fn) in zip(conns, kinds.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print("level_race: calls per kind: " + ", ".join(f"{n} {tries[n]}" for n in kinds))
    check("no call failed but for the level not being there yet", not unexpected,
          "; ".join(f"{k}: {n} ({examples.get(k, '')})" for k, n in unexpected.items()))
    totals = admin.execute(
        f"SELECT i.id::text, i.quantity + COALESCE((SELECT sum(l.quantity) FROM {S}.stock_levels l "
        f"WHERE l.item_id = i.id), 0), i.reserved + COALESCE((SELECT sum(l.reserved) FROM {S}.stock_levels l "
        f"WHERE l.item_id = i.id), 0) FROM {S}.items i WHERE i.sku LIKE %s", (f"race-{tag}-%",)).fetchall()
    bad = [(i, q, r) for i, q, r in totals if q != 100 - sold[i] or r != 0]
    check("each item's units over its rows are 100 less the sale, nothing held", not bad and len(totals) == a.rounds,
          f"{bad[:3]} of {len(totals)}")
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
    check("reconcile() is empty", drift == 0, f"{drift} rows")
    for c in conns:
        c.close()
    checks.finish()


if __name__ == "__main__":
    main()
