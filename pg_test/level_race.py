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

A second scenario (`orders`) takes stock from wherever it is: each round
two fresh items, A and B, with 10 units each at the default location; two
connections move 8 of A and 7 of B to L1 (creating the levels; what the
others take at most from the default location stays there), while
others keep calling, until each has succeeded once: an order of one A and
one B without a location (taken from the default location, or once it is
empty, from L1), a sale of one B without a location, a hold of one A and
one B without a location (released at once), and a transfer of one A from
L1 to L2. Calls refused INSUFFICIENT_INVENTORY or LEVEL_NOT_FOUND retry; any
other error fails the check. Afterwards the two items' units over all
their rows are 20 less what the ledger says was sold, nothing is held and
`reconcile()` is empty.

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


class Race:
    """Rounds of calls started together, each kind on its connection and
    retried on the refusals `retry` allows it until it succeeds; what else
    they answered, by kind and error."""

    def __init__(self, kinds, retry):
        self.kinds, self.retry = kinds, retry  # name -> fn(conn, *args); name -> codes
        self.conns = [connect() for _ in kinds]
        self.tries, self.unexpected, self.examples = collections.Counter(), collections.Counter(), {}
        self.lock = threading.Lock()

    def round(self, *args, on_ok=lambda name: None):
        barrier = threading.Barrier(len(self.kinds))

        def run(c, name, fn):
            barrier.wait()
            for _ in range(5000):
                with self.lock:
                    self.tries[name] += 1
                try:
                    fn(c, *args)
                except Failure as f:
                    if f.code in self.retry.get(name, ()):
                        continue
                    with self.lock:
                        self.unexpected[(name, f.sqlstate, f.code)] += 1
                        self.examples.setdefault((name, f.sqlstate, f.code), f.message)
                    return
                with self.lock:
                    on_ok(name)
                return
            with self.lock:
                self.unexpected[(name, "gave up", None)] += 1

        threads = [threading.Thread(target=run, args=(c, n, fn)) for c, (n, fn) in zip(self.conns, self.kinds.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def report(self, label, what):
        print(f"level_race: {label}calls per kind: " + ", ".join(f"{n} {self.tries[n]}" for n in self.kinds))
        check(what, not self.unexpected,
              "; ".join(f"{k}: {n} ({self.examples.get(k, '')})" for k, n in self.unexpected.items()))
        for c in self.conns:
            c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    a = ap.parse_args()
    admin = connect()
    tag = uuid.uuid4().hex[:8]
    l1, l2 = (call(admin, "create_location", p_code=f"race-{tag}-{k}")["location_id"] for k in (1, 2))
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
    race = Race(kinds, {n: BEFORE for n in kinds if not n.endswith("(creates the level)")})
    for _ in range(a.rounds):
        item = call(admin, "create_item", p_quantity=100, p_sku=f"race-{tag}-{uuid.uuid4()}")["inventory_id"]
        sold[item] = 0

        def ok(name, item=item):
            if name == "decrement_inventory (at it)":
                sold[item] += 1

        race.round(item, on_ok=ok)
    race.report("", "no call failed but for the level not being there yet")
    totals = admin.execute(
        f"SELECT i.id::text, i.quantity + COALESCE((SELECT sum(l.quantity) FROM {S}.stock_levels l "
        f"WHERE l.item_id = i.id), 0), i.reserved + COALESCE((SELECT sum(l.reserved) FROM {S}.stock_levels l "
        f"WHERE l.item_id = i.id), 0) FROM {S}.items i WHERE i.sku LIKE %s", (f"race-{tag}-%",)).fetchall()
    bad = [(i, q, r) for i, q, r in totals if q != 100 - sold[i] or r != 0]
    check("each item's units over its rows are 100 less the sale, nothing held", not bad and len(totals) == a.rounds,
          f"{bad[:3]} of {len(totals)}")
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
    check("reconcile() is empty", drift == 0, f"{drift} rows")
    orders(admin, tag, l1, l2, a.rounds)
    checks.finish()


def orders(admin, tag, l1, l2, rounds):
    """The `orders` scenario (see the module's doc)."""
    default = uuid.UUID(int=0)

    def lines(*items):
        return json.dumps([{"inventory_id": i, "quantity": 1} for i in items])

    def hold(c, a, b):
        r = call(c, "reserve_inventory", p_lines=lines(a, b))
        call(c, "release_reservation", p_reservation_id=r["reservation_id"])

    kinds = {
        "transfer_inventory (A's level)": lambda c, a, b: call(
            c, "transfer_inventory", p_inventory_id=a, p_from_location_id=default, p_to_location_id=l1,
            p_quantity=8),
        "transfer_inventory (B's level)": lambda c, a, b: call(
            c, "transfer_inventory", p_inventory_id=b, p_from_location_id=default, p_to_location_id=l1,
            p_quantity=7),
        "decrement_inventory_many (A, B)": lambda c, a, b: call(
            c, "decrement_inventory_many", p_lines=lines(a, b)),
        "decrement_inventory (B)": lambda c, a, b: call(
            c, "decrement_inventory", p_inventory_id=b, p_quantity=1),
        "reserve_inventory (A, B)": hold,
        "transfer_inventory (A, L1 to L2)": lambda c, a, b: call(
            c, "transfer_inventory", p_inventory_id=a, p_from_location_id=l1, p_to_location_id=l2,
            p_quantity=1),
    }
    # (a creator: units held for a moment by the hold)
    race = Race(kinds, {n: ("INSUFFICIENT_INVENTORY", "LEVEL_NOT_FOUND") for n in kinds})
    made = []
    for _ in range(rounds):
        a, b = (call(admin, "create_item", p_quantity=10, p_sku=f"race-{tag}-o-{uuid.uuid4()}")["inventory_id"]
                for _ in range(2))
        made += [a, b]
        race.round(a, b)
    race.report("orders: ", "orders: no call failed but for stock or the level not being there yet")
    bad = admin.execute(
        f"SELECT i.id::text FROM {S}.items i WHERE i.id = ANY (%s::uuid[]) AND ("
        f" i.quantity + COALESCE((SELECT sum(l.quantity) FROM {S}.stock_levels l WHERE l.item_id = i.id), 0)"
        f" <> 10 + (SELECT COALESCE(sum(g.delta), 0) FROM {S}.ledger g WHERE g.inventory_id = i.id"
        f"          AND g.kind <> 'initial' AND g.kind <> 'transfer')"
        f" OR i.reserved + COALESCE((SELECT sum(l.reserved) FROM {S}.stock_levels l WHERE l.item_id = i.id), 0) <> 0)",
        (made,)).fetchall()
    check("orders: each item's units over its rows are 10 less its sales, nothing held", not bad, f"{bad[:3]}")
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
    check("orders: reconcile() is empty", drift == 0, f"{drift} rows")


if __name__ == "__main__":
    main()
