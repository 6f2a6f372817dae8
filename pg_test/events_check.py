#!/usr/bin/env python3
"""Stock events under real concurrency, as clients receive them.

1. LISTEN: a psycopg connection listens on atomic_inventory_events while 32
   connections sell, restock, hold and release, sell many lines, and sell
   inside transactions they roll back, for --seconds. Afterwards: the
   notifications received are exactly the committed events (each once, none
   for a rollback), per item in commit order; each item's out_of_stock and
   back_in_stock alternate and the last one matches its stock; each event
   with a ledger row points at one of its item's with the same quantity.
2. 64 concurrent sales of the last 64 units across a reorder point of 32:
   exactly one low_stock and one out_of_stock, both notified.
3. A consumer group of 8 workers reading and acknowledging at once gets
   every event of the run exactly once; a worker killed before acknowledging
   (its backend terminated) has its events handed out again after its
   visibility timeout, and not before.

Prints `events: N passed, N failed`. Uses the PG* environment (superuser).
"""
import argparse
import collections
import json
import random
import threading
import time

import psycopg

from checks import S, Checks, Failure, call, connect, race

checks = Checks("events")
check, expect = checks.check, checks.expect
CHANNEL = "atomic_inventory_events"


class Listener:
    """Collects notifications in a thread, in the order received."""

    def __init__(self):
        self.conn = connect()
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.got = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for n in self.conn.notifies(timeout=0.2):
                self.got.append(json.loads(n.payload))

    def drain(self, quiet=1.5):
        """Wait until nothing arrives for `quiet` seconds, then stop."""
        last = -1
        while len(self.got) != last:
            last = len(self.got)
            time.sleep(quiet)
        self.stop.set()
        self.thread.join()
        self.conn.close()
        return self.got


def top_event_id(c):
    return c.execute(f"SELECT coalesce(max(id), 0) FROM {S}.events").fetchone()[0]


def lines(*pairs):
    return json.dumps([{"inventory_id": i, "quantity": q} for i, q in pairs])


def worker(k, items, deadline, counts):
    rng = random.Random(k)
    c = connect()
    while time.monotonic() < deadline:
        i = rng.choice(items)
        r = rng.random()
        try:
            if r < 0.55:
                call(c, "decrement_inventory", p_inventory_id=i, p_quantity=rng.randint(1, 3))
                counts["sale"] += 1
            elif r < 0.70:
                call(c, "increment_inventory", p_inventory_id=i, p_quantity=rng.randint(1, 6))
                counts["restock"] += 1
            elif r < 0.80:
                a, b = sorted(rng.sample(items, 2))
                call(c, "decrement_inventory_many", p_lines=lines((a, 1), (b, 1)))
                counts["many"] += 1
            elif r < 0.90:
                res = call(c, "reserve_inventory", p_lines=lines((i, rng.randint(1, 4))), p_ttl_seconds=60)
                time.sleep(rng.random() * 0.01)
                call(c, "release_reservation", p_reservation_id=res["reservation_id"])
                counts["hold"] += 1
            else:
                # a sale rolled back: no event, no notification
                with c.transaction(force_rollback=True):
                    call(c, "decrement_inventory", p_inventory_id=i, p_quantity=1)
                counts["rolled back"] += 1
        except Failure as f:
            counts[f.code or f.sqlstate] += 1
    c.close()


def listen_stress(admin, connections, seconds):
    items = [call(admin, "create_item", p_quantity=12)["inventory_id"] for _ in range(12)]
    for i in items:
        call(admin, "set_reorder_point", p_inventory_id=i, p_reorder_point=4)
    start = top_event_id(admin)
    listener = Listener()
    counts = collections.Counter()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=worker, args=(k, items, deadline, counts)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [n for n in listener.drain() if n["id"] > start]
    print(f"events: {connections} connections for {seconds} s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    rows = admin.execute(
        f"SELECT id, kind, inventory_id::text, ledger_id, quantity_after FROM {S}.events "
        "WHERE id > %s ORDER BY id", (start,)).fetchall()
    table = {r[0]: r for r in rows}
    ids = [n["id"] for n in got]
    check("rolled_back_sales_ran", counts["rolled back"] > 0, f"{counts['rolled back']}")
    check("crossings_happened", sum(1 for r in rows if r[1] == "out_of_stock") >= 3,
          f"{len(rows)} events: {collections.Counter(r[1] for r in rows)}")
    dup = [i for i, n in collections.Counter(ids).items() if n > 1]
    check("each_committed_event_notified_once", not dup and sorted(ids) == sorted(table),
          f"{len(ids)} notifications, {len(table)} committed events; twice: {dup[:5]}, "
          f"not notified: {sorted(set(table) - set(ids))[:5]}, not committed: {sorted(set(ids) - set(table))[:5]}")
    expect("notification_matches_its_row",
           [n["id"] for n in got if (n["kind"], n.get("inventory_id")) != tuple(table.get(n["id"], (0, 0, 0))[1:3])],
           [])
    per_item = collections.defaultdict(list)
    for n in got:
        per_item[n.get("inventory_id")].append(n["id"])
    expect("per_item_in_commit_order", [i for i, seq in per_item.items() if seq != sorted(seq)], [])
    for i in items:
        kinds = [r[1] for r in rows if r[2] == i and r[1] in ("out_of_stock", "back_in_stock")]
        free = admin.execute(f"SELECT quantity - reserved FROM {S}.items WHERE id = %s", (i,)).fetchone()[0]
        alternate = all(k == ("out_of_stock" if j % 2 == 0 else "back_in_stock") for j, k in enumerate(kinds))
        check("crossings_alternate_and_match_stock", alternate and (free <= 0) == (len(kinds) % 2 == 1),
              f"{i}: {kinds}, available {free}")
    bad = admin.execute(
        f"SELECT e.id FROM {S}.events e LEFT JOIN {S}.ledger l ON l.id = e.ledger_id "
        "WHERE e.id > %s AND e.ledger_id IS NOT NULL "
        "AND (l.id IS NULL OR l.inventory_id <> e.inventory_id OR l.quantity_after <> e.quantity_after)",
        (start,)).fetchall()
    expect("ledger_id_points_at_the_movement", bad, [])
    return start, len(rows)


def hot_item_across_the_point(admin):
    item = call(admin, "create_item", p_quantity=64)["inventory_id"]
    call(admin, "set_reorder_point", p_inventory_id=item, p_reorder_point=32)
    listener = Listener()
    out = race("", 64, lambda c, k: call(c, "decrement_inventory", p_inventory_id=item, p_quantity=1))
    got = [n for n in listener.drain(1.0) if n.get("inventory_id") == item]
    expect("hot_item_all_64_sales_succeeded", sum(1 for o in out if not isinstance(o, Failure)), 64)
    kinds = [k for (k,) in admin.execute(f"SELECT kind FROM {S}.events WHERE inventory_id = %s ORDER BY id",
                                         (item,)).fetchall()]
    expect("hot_item_one_low_stock_then_one_out_of_stock", kinds, ["low_stock", "out_of_stock"])
    expect("hot_item_both_notified", [n["kind"] for n in got], ["low_stock", "out_of_stock"])


def consumer_group(admin, start, expected):
    """The 'group' consumer was created before the stress run."""
    seen = collections.Counter()
    lock = threading.Lock()
    errors = []

    def read_and_ack(k):
        c = connect()
        empty = 0
        while empty < 3:
            try:
                evs = call(c, "read_events", p_consumer="group", p_limit=7, p_visibility_seconds=60)
            except Failure as f:
                errors.append(str(f))
                return
            if not evs:
                empty += 1
                time.sleep(0.05)
                continue
            empty = 0
            with lock:
                seen.update(e["id"] for e in evs)
            call(c, "ack_events", p_consumer="group", p_event_ids=[e["id"] for e in evs])
        c.close()

    threads = [threading.Thread(target=read_and_ack, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expect("group_read_errors", errors, [])
    ids = [i for i in seen if i > start]
    expect("group_got_every_stress_event", len(ids), expected)
    expect("group_got_each_event_once", [i for i, n in seen.items() if n > 1], [])

    # a worker that dies before acknowledging
    item = call(admin, "create_item", p_quantity=1)["inventory_id"]
    call(admin, "decrement_inventory", p_inventory_id=item, p_quantity=1)
    call(admin, "increment_inventory", p_inventory_id=item, p_quantity=1)
    doomed = connect()
    taken = call(doomed, "read_events", p_consumer="group", p_limit=10, p_visibility_seconds=3)
    t_read = time.monotonic()
    expect("doomed_worker_took_both", sorted(e["kind"] for e in taken), ["back_in_stock", "out_of_stock"])
    pid = doomed.info.backend_pid
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    other = connect()
    expect("hidden_while_its_timeout_runs", call(other, "read_events", p_consumer="group"), [])
    time.sleep(max(0.0, 3.3 - (time.monotonic() - t_read)))
    again = call(other, "read_events", p_consumer="group", p_visibility_seconds=30)
    expect("handed_out_again_after_the_timeout", sorted((e["id"], e["read_count"]) for e in again),
           sorted((e["id"], 2) for e in taken))
    call(other, "ack_events", p_consumer="group", p_event_ids=[e["id"] for e in again])
    expect("nothing_left", call(other, "read_events", p_consumer="group"), [])
    other.close()
    try:
        doomed.close()
    except psycopg.Error:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8)
    a = ap.parse_args()
    admin = connect()
    admin.execute(f"SELECT {S}.drop_event_consumer('group') WHERE EXISTS "
                  f"(SELECT FROM {S}.event_consumers WHERE name = 'group' AND tenant_scope = '')")
    call(admin, "create_event_consumer", p_consumer="group")
    start, n = listen_stress(admin, a.connections, a.seconds)
    hot_item_across_the_point(admin)
    # the hot item's two events are the group's too
    consumer_group(admin, start, n + 2)
    call(admin, "drop_event_consumer", p_consumer="group")
    admin.close()
    checks.finish()


if __name__ == "__main__":
    main()
