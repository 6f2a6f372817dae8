#!/usr/bin/env python3
"""Concurrency test: many real connections hammer few rows, then every
invariant is checked, both in the database and against the client's own
record of what was acknowledged.

Phase 1 replays the races of docs/background.md deterministically (all threads released by
one barrier). Phase 2 is a random mix of every operation over a few hot and
many cold items for a fixed time, with stock at a few locations besides the
default one: sales, restocks and compare-and-sets there, orders allocated
across them, transfers between them and the default location, and holds
at stores (committed whole or in part, released or expired); after it,
every level (no level below 0, reserved within quantity, what the client
acknowledged there), the total over each item's levels (initial + restocks
- sales), each level's reserved against its active reservation lines,
reconcile() per level, and each transfer's two ledger rows. Transfers are
also shipped in transit (transfer_inventory with p_receive => false) and
received or cancelled later by another call, sometimes twice at once or
again (refused: TRANSFER_NOT_IN_TRANSIT); after it, units in transit plus
every level = initial + restocks - sales per item, each shipment's ledger
rows and status what the client acknowledged.
Two kits of hot and cold components sell, sell beside loose units of a
component and are held; their components' stock is checked as every
item's, and the kits' own rows must still hold nothing. One hot item takes
backorders: its quantity may go below 0, never past its limit; another is
on preorder (quantity - reserved - unsellable never below -cap). Units move
between available and stock states (damaged, quality_control,
safety_stock, incoming; move_stock_state) on the unstriped hot items and
some cold ones while they sell: a monitor samples that no sale or hold
ever took a unit set aside (quantity - reserved - unsellable never below
-backorder_limit, unsellable always the sum of the on-hand states); after
it, no state below 0, each state as the client acknowledged it.
Prints `<invariant>: N passed, N failed` per check and a final
`stress: N passed, N failed`; exits 1 on any violation.

Needs the extension in the database that PG* environment variables name
(pg_test/lib.sh's start_cluster sets them).
"""
import argparse
import collections
import datetime
import json
import random
import threading
import time
import uuid
from decimal import Decimal

import psycopg

from checks import S, Checks, Failure, call, connect, race

EXPECTED_CODES = {
    "ALREADY_FULLY_PACKED", "BASKET_EXHAUSTED", "NOTHING_TO_UNPACK",
    "INSUFFICIENT_INVENTORY", "QUANTITY_MISMATCH", "LOCK_TIMEOUT", "BATCH_UNAVAILABLE",
    "RESERVATION_NOT_ACTIVE", "RESERVATION_EXPIRED", "DRIVER_LIMIT_REACHED", "BELOW_RESERVED",
    "TRANSFER_NOT_IN_TRANSIT",
    "INSUFFICIENT_STOCK_STATE",
}

# move_stock_state pairs the workload makes, with the change of quantity each
# makes per unit: receipts raise it, write-offs lower it, the rest keep it
STATE_MOVES = [
    ("available", "damaged", 0), ("available", "quality_control", 0), ("available", "safety_stock", 0),
    ("damaged", "available", 0), ("quality_control", "available", 0), ("safety_stock", "available", 0),
    ("quality_control", "damaged", 0), ("damaged", "written_off", -1), ("available", "written_off", -1),
    ("ordered", "incoming", 0), ("incoming", "available", 1), ("incoming", "quality_control", 1),
    ("incoming", "written_off", 0),
]
ON_HAND_STATES = ("damaged", "quality_control", "safety_stock")


DEFAULT = "00000000-0000-0000-0000-000000000000"  # the default location (each item's own row)
RUN = uuid.uuid4().hex[:8]  # keeps SKUs unique when re-run against one database


def new_items(conn, n, qty, tag):
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {S}.items (id, sku, quantity) VALUES (%s, %s, %s)",
            [(i, f"{tag}-{RUN}-{k}", qty) for k, i in enumerate(ids)],
        )
    return ids


def phase_races(dsn, admin, checks):
    """The races of docs/background.md, replayed with every caller released at once."""
    # the POS sale: 50 concurrent sales of 1 unit of an item with 50 units
    [item] = new_items(admin, 1, 50, "pos-sale")
    res = race(dsn, 50, lambda c, k: call(c, "decrement_inventory", p_inventory_id=item, p_quantity=1))
    ok = sum(1 for r in res if isinstance(r, dict))
    final = admin.execute(f"SELECT quantity FROM {S}.items WHERE id = %s", (item,)).fetchone()[0]
    checks.check("pos_sale_no_lost_update", ok == 50 and final == 0, f"succeeded={ok} final={final}")
    try:
        call(admin, "decrement_inventory", p_inventory_id=item, p_quantity=1)
        checks.check("pos_sale_no_oversell", False, "51st sale succeeded")
    except Failure as f:
        checks.check("pos_sale_no_oversell", f.sqlstate == "PT409" and f.code == "INSUFFICIENT_INVENTORY", f.code)

    # flash sale on a striped item: 64 buyers of 1 unit, 50 units over 8
    # stripes; exactly 50 sales, whatever stripe each one lands on
    [item] = new_items(admin, 1, 50, "striped")
    call(admin, "stripe_item", p_inventory_id=item, p_stripes=8)
    res = race(dsn, 64, lambda c, k: call(c, "decrement_inventory", p_inventory_id=item, p_quantity=1))
    ok = sum(1 for r in res if isinstance(r, dict))
    refused = sum(1 for r in res if isinstance(r, Failure) and r.code == "INSUFFICIENT_INVENTORY")
    total = call(admin, "get_inventory", p_inventory_id=item)["quantity"]
    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile() WHERE inventory_id = %s", (item,)).fetchone()[0]
    checks.check("striped_flash_sale_sells_exactly_the_stock", ok == 50 and refused == 14 and total == 0 and drift == 0,
                 f"sold={ok} refused={refused} left={total} drift_rows={drift}")

    # the delivery app's checkout: two buyers of 3 units when 5 exist
    [item] = new_items(admin, 1, 5, "delivery-checkout")
    res = race(dsn, 2, lambda c, k: call(c, "decrement_inventory", p_inventory_id=item, p_quantity=3))
    wins = [r for r in res if isinstance(r, dict)]
    losses = [r for r in res if isinstance(r, Failure)]
    checks.check("delivery_checkout_one_buyer_wins", len(wins) == 1 and len(losses) == 1
                 and losses[0].sqlstate == "PT409", str(res))

    # the delivery-batch claim route: 32 drivers claim one batch, exactly one wins, the rest get 409
    bid = call(admin, "create_batch")["batch_id"]
    res = race(dsn, 32, lambda c, k: call(c, "claim_batch", p_batch_id=bid, p_driver_id=f"race-driver-{k}"))
    wins = [r for r in res if isinstance(r, dict)]
    conflicts = [r for r in res if isinstance(r, Failure) and r.sqlstate == "PT409" and r.code == "BATCH_UNAVAILABLE"]
    checks.check("claim_route_one_driver_wins", len(wins) == 1 and len(conflicts) == 31,
                 f"wins={len(wins)} conflicts={len(conflicts)}")

    # the checkout reservation: 5 concurrent reservations of 3 units when 10 exist
    [item] = new_items(admin, 1, 10, "checkout-reservation")
    lines = json.dumps([{"inventory_id": item, "quantity": 3}])
    res = race(dsn, 5, lambda c, k: call(c, "reserve_inventory", p_lines=lines))
    ok = sum(1 for r in res if isinstance(r, dict))
    reserved = admin.execute(f"SELECT reserved FROM {S}.items WHERE id = %s", (item,)).fetchone()[0]
    checks.check("checkout_reservation_no_overbooking", ok == 3 and reserved == 9, f"reservations={ok} reserved={reserved}")


def packing_session(admin, picked, needs):
    """A session in packing with `picked` units of one product and one
    progress line per entry of `needs`; returns (session, [line ids])."""
    session, product = str(uuid.uuid4()), str(uuid.uuid4())
    admin.execute(f"INSERT INTO {S}.picking_sessions (id, status) VALUES (%s, 'packing')", (session,))
    admin.execute(f"INSERT INTO {S}.picking_session_items VALUES (%s, %s, %s)", (session, product, picked))
    lines = []
    for need in needs:
        order, line = str(uuid.uuid4()), str(uuid.uuid4())
        admin.execute(f"INSERT INTO {S}.orders (id, order_number) VALUES (%s, %s)", (order, f"#{RUN}-{order[:6]}"))
        admin.execute(f"INSERT INTO {S}.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed) "
                      "VALUES (%s, %s, %s, %s, %s)", (line, session, order, product, need))
        lines.append(line)
    return session, lines


def phase_packing(dsn, admin, checks):
    """The packing RPC: concurrent clicks on one line, and workers racing over a basket."""
    # 50 packers click [+] on one line that needs 40: exactly 40 succeed
    session, [line] = packing_session(admin, 60, [40])
    res = race(dsn, 50, lambda c, k: call(c, "increment_packing_quantity", p_progress_id=line, p_session_id=session))
    ok = sum(1 for r in res if isinstance(r, dict))
    full = sum(1 for r in res if isinstance(r, Failure) and r.code == "ALREADY_FULLY_PACKED")
    final = admin.execute(f"SELECT quantity_packed FROM {S}.packing_progress WHERE id = %s", (line,)).fetchone()[0]
    checks.check("packing_line_ends_exactly_at_needed", ok == 40 and full == 10 and final == 40,
                 f"ok={ok} fully_packed={full} final={final}")

    # 2 x 8 workers over 4 orders needing 10 each, basket of 30: never above 30
    session, lines = packing_session(admin, 30, [10, 10, 10, 10])

    def packer(c, k):
        rng, done = random.Random(k), 0
        for _ in range(40):
            try:
                call(c, "increment_packing_quantity", p_progress_id=rng.choice(lines), p_session_id=session)
                done += 1
            except Failure as f:
                if f.code not in ("ALREADY_FULLY_PACKED", "BASKET_EXHAUSTED"):
                    raise
        return done

    res = race(dsn, 16, packer)
    acked = sum(r for r in res if isinstance(r, int))
    errors = [r for r in res if isinstance(r, Failure)]
    rows = admin.execute(f"SELECT quantity_packed, quantity_needed FROM {S}.packing_progress "
                         "WHERE picking_session_id = %s", (session,)).fetchall()
    total = sum(p for p, _ in rows)
    checks.check("packing_basket_never_exceeded", total == 30 and acked == 30 and not errors
                 and all(p <= n for p, n in rows), f"packed={total} acknowledged={acked} errors={errors[:2]}")


class Workload:
    """Random operations; every acknowledged effect is recorded client-side."""

    def __init__(self, dsn, items, hot, batches_drivers, seconds, seed, loc_items=(), sellable=(), unsellable=()):
        self.dsn, self.items, self.hot = dsn, items, hot
        # stock at locations: items that have levels, sellable locations
        # (sales there) and the others (a returns area: transfers only)
        self.loc_items, self.sellable, self.unsellable = list(loc_items), list(sellable), list(unsellable)
        self.loc_hot = [i for i in self.loc_items if i in hot]
        self.levels = set()                     # (item, location) acknowledged to exist
        self.level_delta = collections.Counter()  # (item, location) -> acknowledged change there
        self.flow = collections.Counter()       # item -> restocks - sales, any location
        self.transfers = {}                     # transfer_id -> (item, from, to, quantity)
        self.shipped = {}                       # transfer_id -> (item, from, to, quantity), in transit
        self.landed = {}                        # transfer_id -> received / cancelled (acknowledged)
        self.pending = []                       # shipped transfer ids no worker has taken yet
        self.refused_again = 0                  # second receipts refused as they must be
        self.drivers = batches_drivers
        self.deadline = time.monotonic() + seconds
        self.seed = seed
        self.lock = threading.Lock()
        self.delta = collections.Counter()      # item -> acknowledged quantity change
        self.refs = collections.Counter()       # reference -> expected ledger rows
        self.outcomes = collections.Counter()   # (op, code) -> count
        self.unexpected = []
        self.replay_mismatch = 0
        self.kits = {}                          # kit -> [(component, units per kit)]
        self.claims = collections.Counter()     # batch -> acknowledged claims
        self.completed = set()
        self.state_items = []                   # items whose units move between states
        self.states = collections.Counter()     # (item, state) -> acknowledged units

    def pick(self, rng, n=None):
        """One item (n=None) or a list of n distinct items; mostly hot ones."""
        pool = self.hot if rng.random() < 0.7 else self.items
        return rng.choice(pool) if n is None else rng.sample(pool, n)

    def record(self, op, code):
        with self.lock:
            self.outcomes[(op, code)] += 1

    def ack(self, deltas, ref=None, rows=0):
        """Sales, restocks and adjusts at the default location."""
        with self.lock:
            for item, d in deltas:
                self.delta[item] += d
                self.flow[item] += d
            if ref:
                self.refs[ref] += rows

    def ack_lines(self, lines, ref):
        """An order's answer: a line per allocation, each at its location
        (none named: the default location)."""
        with self.lock:
            for l in lines:
                item, loc, d = l["inventory_id"], l.get("location_id") or DEFAULT, -float(l["deducted"])
                if loc == DEFAULT:
                    self.delta[item] += d
                else:
                    self.level_delta[(item, loc)] += d
                    self.levels.add((item, loc))
                self.flow[item] += d
            self.refs[ref] += len(lines)

    def ack_at(self, item, loc, d, ref):
        """A sale, restock or adjust at a location (not the default one)."""
        with self.lock:
            self.level_delta[(item, loc)] += d
            self.flow[item] += d
            self.levels.add((item, loc))
            self.refs[ref] += 1

    def ack_committed(self, committed, rid):
        """A commit's answer: each committed line at its location (none
        named: the default location), one ledger row each under the
        reservation's id."""
        with self.lock:
            for l in committed:
                item, loc, d = l["inventory_id"], l.get("location_id") or DEFAULT, -float(l["quantity"])
                if loc == DEFAULT:
                    self.delta[item] += d
                else:
                    self.level_delta[(item, loc)] += d
                self.flow[item] += d
            self.refs[rid] += len(committed)

    def ack_transfer(self, r, item, src, dst, qty, ref):
        with self.lock:
            for loc, d in ((src, -qty), (dst, qty)):
                if loc == DEFAULT:
                    self.delta[item] += d
                else:
                    self.level_delta[(item, loc)] += d
                    self.levels.add((item, loc))
            self.transfers[r["transfer_id"]] = (item, src, dst, qty)
            self.refs[ref] += 2

    def ack_shipped(self, r, item, src, dst, qty, ref):
        """A shipment: out of its source now, in transit to its destination
        (whose level the shipment created, empty)."""
        with self.lock:
            if src == DEFAULT:
                self.delta[item] -= qty
            else:
                self.level_delta[(item, src)] -= qty
            if dst != DEFAULT:
                self.levels.add((item, dst))
            self.shipped[r["transfer_id"]] = (item, src, dst, qty)
            self.pending.append(r["transfer_id"])
            self.refs[ref] += 1

    def ack_landed(self, tid, received, ref):
        """A receipt (into the destination) or a cancellation (back to the
        source) of a shipment."""
        with self.lock:
            item, src, dst, qty = self.shipped[tid]
            loc = dst if received else src
            if loc == DEFAULT:
                self.delta[item] += qty
            else:
                self.level_delta[(item, loc)] += qty
                self.levels.add((item, loc))
            self.landed[tid] = "received" if received else "cancelled"
            self.refs[ref] += 1

    def pick_level(self, rng, locations):
        """An (item, location) with a level known to exist, at one of `locations`."""
        with self.lock:
            known = [(i, l) for (i, l) in self.levels if l in locations]
        if not known:
            return None
        hot = [(i, l) for (i, l) in known if i in self.loc_hot]
        return rng.choice(hot if hot and rng.random() < 0.7 else known)

    def worker(self, k):
        rng = random.Random(self.seed * 1000 + k)
        conn = connect(self.dsn)
        held = []  # active reservations of this worker
        driver = f"driver-{k % 8}"  # four workers share each driver id
        ops = ["dec"] * 30 + ["many"] * 20 + ["inc"] * 8 + ["adj"] * 6 + ["idem"] * 6 + \
              ["reserve"] * 12 + ["finish"] * 10 + ["claim"] * 8 + ["pack"] * 8
        if self.kits:
            ops += ["kit"] * 8 + ["kit_cart"] * 6 + ["kit_hold"] * 4
        if self.state_items:
            ops += ["state"] * 12
        if self.loc_items:
            ops += ["transfer"] * 14 + ["ship"] * 6 + ["land"] * 6 + ["loc_dec"] * 12 + ["loc_inc"] * 5 + ["loc_adj"] * 3 + ["many_at"] * 6 + \
                   ["hold_at"] * 8
        while time.monotonic() < self.deadline:
            op = rng.choice(ops)
            ref = f"op-{uuid.uuid4()}"
            try:
                self.one(conn, rng, op, ref, held, driver)
                self.record(op, "ok")
            except Failure as f:
                self.record(op, f.code or "?")
                if f.code not in EXPECTED_CODES or f.sqlstate == "40P01":
                    with self.lock:
                        self.unexpected.append(f"{op}: {f.sqlstate} {f}")
            except psycopg.Error as e:  # connection trouble: outcome unknown
                self.record(op, "unknown")
                with self.lock:
                    self.unexpected.append(f"{op}: unknown outcome {e}")
                conn = connect(self.dsn)
        conn.close()

    def one(self, conn, rng, op, ref, held, driver):
        if op == "dec":
            item = self.pick(rng)
            r = call(conn, "decrement_inventory", p_inventory_id=item, p_quantity=rng.randint(1, 3),
                     p_reference=ref, p_lock_timeout_ms=2000)
            self.ack([(item, -float(r["deducted"]))], ref, 1)
        elif op == "many":
            items = self.pick(rng, rng.randint(2, 4))
            lines = [{"inventory_id": i, "quantity": rng.randint(1, 2)} for i in items]
            rng.shuffle(lines)  # callers send lines in any order
            r = call(conn, "decrement_inventory_many", p_lines=json.dumps(lines), p_reference=ref)
            # items with stock at other locations are allocated across them
            self.ack_lines(r["lines"], ref)
        elif op == "many_at":
            # an order whose lines name a store where the item has stock,
            # or none (allocated: the default location first, then stores)
            items = rng.sample(self.loc_items, rng.randint(2, 3))
            lines = []
            for i in items:
                line = {"inventory_id": i, "quantity": rng.randint(1, 2)}
                with self.lock:
                    here = [l for l in self.sellable if (i, l) in self.levels]
                if here and rng.random() < 0.6:
                    line["location_id"] = rng.choice(here)
                lines.append(line)
            rng.shuffle(lines)
            r = call(conn, "decrement_inventory_many", p_lines=json.dumps(lines), p_reference=ref,
                     p_lock_timeout_ms=2000)
            self.ack_lines(r["lines"], ref)
        elif op == "inc":
            item = self.pick(rng)
            r = call(conn, "increment_inventory", p_inventory_id=item, p_quantity=rng.randint(1, 5), p_reference=ref)
            self.ack([(item, float(r["added"]))], ref, 1)
        elif op == "adj":
            item = self.pick(rng)
            # the default location's level (without one, get_inventory
            # answers the totals over every location)
            seen = call(conn, "get_inventory", p_inventory_id=item, p_location_id=DEFAULT)
            # Decimal: psycopg sends floats as float8, which doesn't cast to numeric implicitly
            current = Decimal(str(seen["quantity"]))
            if current < 0:
                return  # backordered: restocks fill it, not a stock count (docs/backorders.md)
            target = max(Decimal(str(seen["reserved"])), current + rng.randint(-3, 3))
            r = call(conn, "adjust_inventory", p_inventory_id=item, p_new_quantity=target,
                     p_expected_quantity=current, p_reference=ref)
            self.ack([(item, float(r["delta"]))], ref, 1)
        elif op == "idem":
            item = self.pick(rng)
            key = f"key-{uuid.uuid4()}"
            kw = dict(p_inventory_id=item, p_quantity=1, p_reference=ref, p_idempotency_key=key)
            first = call(conn, "decrement_inventory", **kw)
            again = call(conn, "decrement_inventory", **kw)   # a client retry
            if first != again:
                with self.lock:
                    self.replay_mismatch += 1
            self.ack([(item, -float(first["deducted"]))], ref, 1)
        elif op == "reserve":
            items = self.pick(rng, rng.randint(1, 3))
            lines = [{"inventory_id": i, "quantity": rng.randint(1, 2)} for i in items]
            rng.shuffle(lines)
            r = call(conn, "reserve_inventory", p_lines=json.dumps(lines), p_reference=ref,
                     p_ttl_seconds=rng.randint(1, 4))
            held.append(r)
        elif op == "hold_at":
            # a cart holding at stores where the items have stock, maybe
            # with a line at the default location (one location per item)
            items = rng.sample(self.loc_items, rng.randint(1, 3))
            lines = []
            for i in items:
                line = {"inventory_id": i, "quantity": rng.randint(1, 2)}
                with self.lock:
                    here = [l for l in self.sellable if (i, l) in self.levels]
                if here and rng.random() < 0.75:
                    line["location_id"] = rng.choice(here)
                lines.append(line)
            rng.shuffle(lines)
            r = call(conn, "reserve_inventory", p_lines=json.dumps(lines), p_reference=ref,
                     p_ttl_seconds=rng.randint(1, 4), p_lock_timeout_ms=2000)
            held.append(r)
        elif op == "kit":
            # a kit sells its components (allocated across their locations)
            kit = rng.choice(list(self.kits))
            r = call(conn, "decrement_inventory", p_inventory_id=kit, p_quantity=rng.randint(1, 2),
                     p_reference=ref, p_lock_timeout_ms=2000)
            if r.get("kit") is not True or len(r["lines"]) < len(self.kits[kit]):
                with self.lock:
                    self.unexpected.append(f"kit: a kit sale answered {r}")
            self.ack_lines(r["lines"], ref)
        elif op == "kit_cart":
            # a kit and loose units of one of its components: checked together
            kit = rng.choice(list(self.kits))
            part = rng.choice(self.kits[kit])[0]
            lines = [{"inventory_id": kit, "quantity": rng.randint(1, 2)},
                     {"inventory_id": part, "quantity": rng.randint(1, 3)}]
            rng.shuffle(lines)
            r = call(conn, "decrement_inventory_many", p_lines=json.dumps(lines), p_reference=ref,
                     p_lock_timeout_ms=2000)
            self.ack_lines(r["lines"], ref)
        elif op == "kit_hold":
            kit = rng.choice(list(self.kits))
            r = call(conn, "reserve_inventory", p_lines=json.dumps([{"inventory_id": kit, "quantity": 1}]),
                     p_reference=ref, p_ttl_seconds=rng.randint(1, 4))
            held.append(r)
        elif op == "finish":
            if not held:
                return
            r = held.pop(rng.randrange(len(held)))
            rid = r["reservation_id"]
            roll = rng.random()
            if roll < 0.2 and not r.get("partial"):
                # a partial commit of one line (1 unit), the rest released
                # or kept held; a kept rest finishes later like any line
                line = rng.choice(r["lines"])
                rest = rng.choice(["keep", "release"])
                c = call(conn, "commit_reservation", p_reservation_id=rid, p_rest=rest,
                         p_lines=json.dumps([{"inventory_id": line["inventory_id"], "quantity": 1}]))
                self.ack_committed(c["committed"], rid)
                if c["status"] == "active":
                    r["partial"] = True
                    held.append(r)
            elif roll < 0.6:
                c = call(conn, "commit_reservation", p_reservation_id=rid)
                self.ack_committed(c["committed"], rid)
            else:
                call(conn, "release_reservation", p_reservation_id=rid)
        elif op == "pack":
            session, lines = rng.choice(self.packing)
            if rng.random() < 0.8:
                call(conn, "increment_packing_quantity", p_progress_id=rng.choice(lines), p_session_id=session,
                     p_quantity=rng.randint(1, 2))
            else:
                call(conn, "decrement_packing_quantity", p_progress_id=rng.choice(lines), p_session_id=session)
        elif op == "transfer":
            # between two of: the default location, the sellable ones and
            # the returns area; out of the default location or a level the
            # item has, into any (the first transfer there makes its level)
            item = rng.choice(self.loc_hot if self.loc_hot and rng.random() < 0.7 else self.loc_items)
            with self.lock:
                sources = [DEFAULT] + [l for l in self.sellable + self.unsellable if (item, l) in self.levels]
            src = rng.choice(sources)
            dst = rng.choice([l for l in [DEFAULT] + self.sellable + self.unsellable if l != src])
            qty = rng.randint(1, 5)
            r = call(conn, "transfer_inventory", p_inventory_id=item, p_from_location_id=src,
                     p_to_location_id=dst, p_quantity=qty, p_reference=ref, p_lock_timeout_ms=2000)
            self.ack_transfer(r, item, src, dst, qty, ref)
        elif op == "ship":
            # as "transfer", but the units stay in transit until a later
            # "land" (of any worker) receives or cancels them
            item = rng.choice(self.loc_hot if self.loc_hot and rng.random() < 0.7 else self.loc_items)
            with self.lock:
                sources = [DEFAULT] + [l for l in self.sellable + self.unsellable if (item, l) in self.levels]
            src = rng.choice(sources)
            dst = rng.choice([l for l in [DEFAULT] + self.sellable + self.unsellable if l != src])
            qty = rng.randint(1, 5)
            r = call(conn, "transfer_inventory", p_inventory_id=item, p_from_location_id=src,
                     p_to_location_id=dst, p_quantity=qty, p_reference=ref, p_lock_timeout_ms=2000,
                     p_receive=False)
            self.ack_shipped(r, item, src, dst, qty, ref)
        elif op == "land":
            with self.lock:
                if not self.pending:
                    return
                tid = self.pending.pop(rng.randrange(len(self.pending)))
            received = rng.random() < 0.75
            try:
                r = call(conn, "receive_transfer" if received else "cancel_transfer", p_transfer_id=tid,
                         p_reference=ref, p_lock_timeout_ms=2000)
            except Failure:
                with self.lock:
                    self.pending.append(tid)  # still in transit: another try later
                raise
            if r["status"] != ("received" if received else "cancelled"):
                with self.lock:
                    self.unexpected.append(f"land: {tid} answered {r}")
            self.ack_landed(tid, received, ref)
            if rng.random() < 0.2:
                # a client retry without its key: refused, nothing moves
                try:
                    call(conn, "receive_transfer", p_transfer_id=tid, p_reference=f"{ref}-again")
                    with self.lock:
                        self.unexpected.append(f"land: {tid} received a second time")
                except Failure as f:
                    with self.lock:
                        if f.code == "TRANSFER_NOT_IN_TRANSIT":
                            self.refused_again += 1
                        else:
                            self.unexpected.append(f"land again: {f.sqlstate} {f}")
        elif op == "loc_dec":
            picked = self.pick_level(rng, self.sellable)
            if picked is None:
                return
            item, loc = picked
            r = call(conn, "decrement_inventory", p_inventory_id=item, p_quantity=rng.randint(1, 3),
                     p_reference=ref, p_lock_timeout_ms=2000, p_location_id=loc)
            self.ack_at(item, loc, -float(r["deducted"]), ref)
        elif op == "loc_inc":
            item = rng.choice(self.loc_hot if self.loc_hot and rng.random() < 0.7 else self.loc_items)
            loc = rng.choice(self.sellable + self.unsellable)
            r = call(conn, "increment_inventory", p_inventory_id=item, p_quantity=rng.randint(1, 5),
                     p_reference=ref, p_location_id=loc)
            self.ack_at(item, loc, float(r["added"]), ref)
        elif op == "loc_adj":
            picked = self.pick_level(rng, self.sellable + self.unsellable)
            if picked is None:
                return
            item, loc = picked
            seen = call(conn, "get_inventory", p_inventory_id=item, p_location_id=loc)
            current = Decimal(str(seen["quantity"]))
            target = max(Decimal(str(seen["reserved"])), current + rng.randint(-3, 3))
            r = call(conn, "adjust_inventory", p_inventory_id=item, p_new_quantity=target,
                     p_expected_quantity=current, p_reference=ref, p_location_id=loc)
            self.ack_at(item, loc, float(r["delta"]), ref)
        elif op == "state":
            # units set aside, brought back, written off, ordered, received
            item = rng.choice(self.state_items)
            src, dst, sign = rng.choice(STATE_MOVES)
            qty = rng.randint(1, 3)
            r = call(conn, "move_stock_state", p_inventory_id=item, p_from=src, p_to=dst, p_quantity=qty,
                     p_reference=ref, p_lock_timeout_ms=2000)
            if r.get("moved") != qty or r.get("from") != src or r.get("to") != dst:
                with self.lock:
                    self.unexpected.append(f"state: a move answered {r}")
            with self.lock:
                self.states[(item, src)] -= qty
                self.states[(item, dst)] += qty
            self.ack([(item, float(sign * qty))], ref, 1)
        elif op == "claim":
            b = call(conn, "claim_next_batch", p_driver_id=driver, p_max_active=2, p_zone=f"stress-{RUN}")
            if b is None:
                return
            with self.lock:
                self.claims[b["batch_id"]] += 1
            call(conn, "complete_batch", p_batch_id=b["batch_id"], p_driver_id=driver)
            with self.lock:
                self.completed.add(b["batch_id"])


def sweeper(dsn, stop):
    conn = connect(dsn)
    while not stop.is_set():
        call(conn, "expire_reservations")
        time.sleep(0.2)
    conn.close()


def limit_monitor(dsn, stop, violations):
    """Samples the batches table: no driver may ever hold more than 2."""
    conn = connect(dsn)
    while not stop.is_set():
        rows = conn.execute(
            f"SELECT claimed_by, count(*) FROM {S}.batches WHERE status IN ('claimed','in_progress') "
            "AND claimed_by LIKE 'driver-%%' GROUP BY 1 HAVING count(*) > 2").fetchall()
        violations.extend(rows)
        time.sleep(0.05)
    conn.close()


def states_monitor(dsn, items, stop, violations):
    """Samples the items whose units move between states, each sample one
    snapshot: no sale or hold ever took a unit set aside (what is left for
    sale never below -backorder_limit) and unsellable is always the sum of
    the on-hand states."""
    conn = connect(dsn)
    while not stop.is_set():
        rows = conn.execute(
            f"SELECT i.id::text, i.quantity, i.reserved, i.unsellable, i.backorder_limit, "
            f"       coalesce((SELECT sum(s.quantity) FROM {S}.stock_states s WHERE s.item_id = i.id "
            f"                  AND s.state IN ('damaged', 'quality_control', 'safety_stock')), 0) "
            f"  FROM {S}.items i WHERE i.id = ANY(%s::uuid[]) "
            f"   AND (i.quantity - i.reserved - i.unsellable + i.backorder_limit < 0 OR i.unsellable < 0 "
            f"        OR i.unsellable <> coalesce((SELECT sum(s.quantity) FROM {S}.stock_states s "
            f"                                       WHERE s.item_id = i.id "
            f"                                         AND s.state IN ('damaged', 'quality_control', 'safety_stock')), 0))",
            (items,)).fetchall()
        violations.extend(rows)
        time.sleep(0.05)
    conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--hot", type=int, default=4)
    ap.add_argument("--cold", type=int, default=200)
    ap.add_argument("--cold-at-locations", type=int, default=16,
                    help="cold items that also have stock at locations (as all hot ones do)")
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    print(f"stress: {a.connections} connections, {a.seconds}s, seed {a.seed}")
    checks = Checks("stress", show="grouped")
    admin = connect(a.dsn)

    phase_races(a.dsn, admin, checks)
    phase_packing(a.dsn, admin, checks)

    hot = new_items(admin, a.hot, 500, "hot")
    # half the hot items in striped mode: their sales take stripes, every
    # other operation gathers and respreads them
    for item in hot[:a.hot // 2]:
        call(admin, "stripe_item", p_inventory_id=item, p_stripes=8)
    cold = new_items(admin, a.cold, 50, "cold")
    items = hot + cold
    # an item's quantity is its row's plus its stripes' (striped mode)
    totals = (f"SELECT i.id::text, i.quantity + coalesce((SELECT sum(s.quantity) FROM {S}.item_stripes s "
              f"WHERE s.item_id = i.id AND s.location_id = '{DEFAULT}'), 0), i.reserved "
              f"FROM {S}.items i WHERE i.id = ANY(%s::uuid[])")
    initial = {i: float(q) for i, q, _ in admin.execute(totals, (items,)).fetchall()}
    # a zone of this run's own: other rows in the database are not ours to count
    batch_ids = [call(admin, "create_batch", p_zone=f"stress-{RUN}")["batch_id"] for _ in range(a.batches)]

    # Locations: three stores (sellable) and a returns area (not sellable).
    # The hot items and the first cold ones have stock at two stores from
    # the start; other levels appear with the first restock or transfer.
    stores = [call(admin, "create_location", p_code=f"stress-{RUN}-store-{k}", p_priority=k)["location_id"]
              for k in range(3)]
    returns = [call(admin, "create_location", p_code=f"stress-{RUN}-returns", p_sellable=False)["location_id"]]
    loc_items = hot + cold[:a.cold_at_locations]
    for item in loc_items:
        for loc in stores[:2]:
            call(admin, "increment_inventory", p_inventory_id=item, p_quantity=100 if item in hot else 20,
                 p_location_id=loc, p_reason="stress initial stock")
    # striped levels: every hot item's level at the first store is striped
    # too, so sales there take its stripes and every other movement there
    # (orders, holds, transfers, restocks, adjusts) gathers and respreads
    for item in hot:
        call(admin, "stripe_item", p_inventory_id=item, p_stripes=4, p_location_id=stores[0])
    # a level's quantity is its row's plus its stripes'
    levels = (f"SELECT l.item_id::text, l.location_id::text, l.quantity + coalesce((SELECT sum(s.quantity) "
              f"FROM {S}.item_stripes s WHERE s.item_id = l.item_id AND s.location_id = l.location_id), 0), "
              f"l.reserved FROM {S}.stock_levels l WHERE l.item_id = ANY(%s::uuid[])")
    initial_levels = {(i, l): float(q) for i, l, q, _ in admin.execute(levels, (items,)).fetchall()}
    initial_total = collections.Counter(initial)
    for (i, _), q in initial_levels.items():
        initial_total[i] += q

    w = Workload(a.dsn, items, hot, 8, a.seconds, a.seed, loc_items, stores, returns)
    w.levels = set(initial_levels)
    # two kits of hot (some striped) and cold components; the kits' own rows
    # hold nothing, before and after
    kit_ids = new_items(admin, 2, 0, "kit")
    w.kits = {kit_ids[0]: [(hot[0], 1), (hot[2 % len(hot)], 2)],
              kit_ids[1]: [(hot[1 % len(hot)], 1), (cold[0], 1), (hot[3 % len(hot)], 1)]}
    # a hot item that takes backorders (5 units past its stock): its
    # quantity may go negative, never past its limit
    backorder = {hot[-1]: 5} if hot[-1] not in hot[:a.hot // 2] else {}
    for item, lim in backorder.items():
        call(admin, "set_backorder_limit", p_inventory_id=item, p_limit=lim)
    # another unstriped hot item on preorder (a cap of 4 past its stock,
    # released in an hour): the same guard, with the release date's term
    preorder = ({hot[a.hot // 2]: 4} if a.hot // 2 < a.hot - 1 and hot[a.hot // 2] not in backorder else {})
    for item, cap in preorder.items():
        call(admin, "set_preorder", p_inventory_id=item, p_limit=cap,
             p_release_at=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    # units move between states on the unstriped hot items (one of them
    # takes backorders, some are kit components) and a few cold ones
    w.state_items = hot[a.hot // 2:] + cold[a.cold_at_locations:a.cold_at_locations + 8]
    for kit, parts in w.kits.items():
        call(admin, "define_kit", p_inventory_id=kit,
             p_components=json.dumps([{"inventory_id": c, "quantity": q} for c, q in dict(parts).items()]))
    # baskets of 20 units over 3 orders needing 10 each: packers run out
    w.packing = [packing_session(admin, 20, [10, 10, 10]) for _ in range(4)]
    stop, violations, set_aside_taken = threading.Event(), [], []
    helpers = [threading.Thread(target=sweeper, args=(a.dsn, stop)),
               threading.Thread(target=limit_monitor, args=(a.dsn, stop, violations)),
               threading.Thread(target=states_monitor, args=(a.dsn, w.state_items, stop, set_aside_taken))]
    workers = [threading.Thread(target=w.worker, args=(k,)) for k in range(a.connections)]
    for t in helpers + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in helpers:
        t.join()

    total_ok = sum(n for (op, code), n in w.outcomes.items() if code == "ok")
    print(f"stress: {sum(w.outcomes.values())} operations, {total_ok} acknowledged; outcomes:")
    for (op, code), n in sorted(w.outcomes.items()):
        print(f"    {op:8s} {code:24s} {n}")

    rows = admin.execute(totals, (items,)).fetchall()
    negative = admin.execute(f"SELECT count(*) FROM {S}.item_stripes WHERE item_id = ANY(%s::uuid[]) AND quantity < 0",
                             (items,)).fetchone()[0]
    checks.check("no_stripe_below_zero", negative == 0, f"{negative} stripes below 0")
    # sales at the striped levels took stripes (a ledger row without
    # quantity_after at the first store)
    level_stripe_sales = admin.execute(
        f"SELECT count(*) FROM {S}.ledger WHERE inventory_id = ANY(%s::uuid[]) AND location_id = %s "
        "AND kind = 'decrement' AND quantity_after IS NULL", (hot, stores[0])).fetchone()[0]
    checks.check("striped_level_sales_took_stripes", level_stripe_sales > 0,
                 f"{level_stripe_sales} sales from stripes of levels")
    kit_rows = admin.execute(f"SELECT count(*) FROM {S}.items WHERE id = ANY(%s::uuid[]) "
                             "AND (quantity <> 0 OR reserved <> 0 OR NOT kit)", (list(w.kits),)).fetchone()[0]
    checks.check("kit_rows_hold_nothing", kit_rows == 0, f"{kit_rows} kit rows with stock")
    # stock states: no sale or hold ever took a unit set aside (sampled
    # during the run), no state below 0, each as the client acknowledged
    checks.check("no_sale_or_hold_took_units_set_aside", not set_aside_taken, f"{set_aside_taken[:3]}")
    state_rows = admin.execute(f"SELECT item_id::text, state, quantity FROM {S}.stock_states "
                               "WHERE item_id = ANY(%s::uuid[])", (items,)).fetchall()
    now_states = {(i, st): float(q) for i, st, q in state_rows}
    for i, st, q in state_rows:
        checks.check("state_never_below_zero", q >= 0, f"{i} {st}: {q}")
    for item in w.state_items:
        for st in ON_HAND_STATES + ("incoming",):
            got, want = now_states.get((item, st), 0.0), float(w.states[(item, st)])
            checks.check("state_matches_acknowledged_moves", abs(got - want) < 1e-9,
                         f"{item} {st} is {got}, client expects {want}")
        set_aside = admin.execute(f"SELECT unsellable FROM {S}.items WHERE id = %s", (item,)).fetchone()[0]
        on_hand = sum(float(w.states[(item, st)]) for st in ON_HAND_STATES)
        checks.check("unsellable_is_the_on_hand_states", abs(float(set_aside) - on_hand) < 1e-9,
                     f"{item} unsellable {set_aside}, states {on_hand}")
    for item, cap in preorder.items():
        q, r, u, lim, dated = admin.execute(
            f"SELECT quantity, reserved, unsellable, backorder_limit, preorder_until IS NOT NULL "
            f"FROM {S}.items WHERE id = %s", (item,)).fetchone()
        checks.check("preorder_within_cap", q - r - u >= -cap and lim == cap and dated,
                     f"{item} quantity {q} reserved {r} unsellable {u} (cap {cap}, limit {lim}, dated {dated})")
    for item, qty, reserved in rows:
        lim = backorder.get(item, preorder.get(item, 0))
        checks.check("quantity_non_negative_or_within_backorder_limit", qty >= -lim, f"{item} quantity {qty}")
        checks.check("reserved_within_quantity_plus_backorder_limit", 0 <= reserved <= qty + lim,
                     f"{item} reserved {reserved} of {qty} (backorder limit {lim})")
        expected = initial[item] + w.delta[item]
        checks.check("quantity_matches_acknowledged_ops", abs(float(qty) - expected) < 1e-9,
                     f"{item} is {qty}, client expects {expected}")
    # stock at locations: every level, then the totals over an item's levels
    now_levels = admin.execute(levels, (items,)).fetchall()
    total = collections.Counter({item: float(qty) for item, qty, _ in rows})
    for item, loc, qty, reserved in now_levels:
        checks.check("level_non_negative", qty >= 0, f"{item} at {loc}: quantity {qty}")
        checks.check("level_reserved_within_quantity", 0 <= reserved <= qty,
                     f"{item} at {loc}: reserved {reserved} of {qty}")
        expected = initial_levels.get((item, loc), 0) + w.level_delta[(item, loc)]
        checks.check("level_matches_acknowledged_ops", abs(float(qty) - expected) < 1e-9,
                     f"{item} at {loc} is {qty}, client expects {expected}")
        total[item] += float(qty)
    unknown = {(i, l) for i, l, _, _ in now_levels} ^ (set(initial_levels) | w.levels)
    checks.check("levels_are_those_acknowledged", not unknown, f"{sorted(unknown)[:3]}")
    # units in transit are in no level: levels + in transit = initial +
    # restocks - sales, and in transit is what the client shipped and did
    # not see received or cancelled
    transit = collections.Counter({i: float(q) for i, q in admin.execute(
        f"SELECT item_id::text, sum(quantity) FROM {S}.transfers WHERE status = 'shipped' "
        "AND item_id = ANY(%s::uuid[]) GROUP BY 1", (items,)).fetchall()})
    client_transit = collections.Counter()
    for tid, (item, _, _, qty) in w.shipped.items():
        if tid not in w.landed:
            client_transit[item] += qty
    for item in items:
        expected = initial_total[item] + w.flow[item]
        checks.check("levels_plus_in_transit_is_initial_plus_restocks_minus_sales",
                     abs(total[item] + transit[item] - expected) < 1e-9,
                     f"{item}: {total[item]} over its levels + {transit[item]} in transit, client expects {expected}")
        checks.check("in_transit_matches_acknowledged_shipments", abs(transit[item] - client_transit[item]) < 1e-9,
                     f"{item}: {transit[item]} in transit, client expects {client_transit[item]}")
    shown = admin.execute(f"SELECT coalesce(sum(({S}.get_inventory(i)->>'in_transit')::numeric), 0) "
                          "FROM unnest(%s::uuid[]) AS i", (items,)).fetchone()[0]
    checks.check("get_inventory_shows_in_transit", abs(float(shown) - sum(transit.values())) < 1e-9,
                 f"get_inventory: {shown} in transit, transfers table {sum(transit.values())}")
    statuses = dict(admin.execute(f"SELECT id::text, status FROM {S}.transfers WHERE id = ANY(%s::uuid[])",
                                  (list(w.shipped),)).fetchall())
    for tid in w.shipped:
        checks.check("shipment_status_matches_acknowledged", statuses.get(tid) == w.landed.get(tid, "shipped"),
                     f"{tid}: {statuses.get(tid)}, client expects {w.landed.get(tid, 'shipped')}")
    checks.check("shipments_were_made_and_landed", len(w.shipped) > 0 and len(w.landed) > 0,
                 f"{len(w.shipped)} shipped, {len(w.landed)} received or cancelled, "
                 f"{w.refused_again} second receipts refused")
    # each level's reserved is what its active tracked lines hold (the
    # default location's: the item row's), counted here without reconcile()
    held_drift = admin.execute(
        f"WITH v AS (SELECT i.id AS item, NULL::uuid AS loc, i.reserved FROM {S}.items i "
        f"            WHERE i.id = ANY(%(items)s::uuid[]) "
        f"           UNION ALL SELECT l.item_id, l.location_id, l.reserved FROM {S}.stock_levels l "
        f"            WHERE l.item_id = ANY(%(items)s::uuid[])), "
        f"     h AS (SELECT x.inventory_id AS item, x.location_id AS loc, sum(x.quantity) AS held "
        f"             FROM {S}.reservation_lines x WHERE x.status = 'active' AND x.tracked "
        f"            GROUP BY 1, 2) "
        f"SELECT v.item::text, v.loc::text, v.reserved, coalesce(h.held, 0) FROM v "
        f"  LEFT JOIN h ON h.item = v.item AND h.loc IS NOT DISTINCT FROM v.loc "
        f" WHERE v.reserved <> coalesce(h.held, 0)",
        {"items": items}).fetchall()
    checks.check("reserved_per_level_equals_active_lines", not held_drift, f"{held_drift[:3]}")
    at_levels = admin.execute(f"SELECT count(*) FROM {S}.reservation_lines WHERE location_id IS NOT NULL "
                              "AND inventory_id = ANY(%s::uuid[])", (items,)).fetchone()[0]
    checks.check("holds_at_locations_were_taken", at_levels > 0, f"{at_levels} lines held at locations")
    drift = admin.execute(f"SELECT inventory_id::text, location_id::text, drift, reserved_drift FROM {S}.reconcile() "
                          "WHERE inventory_id = ANY(%s::uuid[])", (items,)).fetchall()
    checks.check("ledger_and_reservations_reconcile", not drift, f"drift: {drift[:3]}")
    # each transfer: two ledger rows, out of one location and into another,
    # summing to 0, under one transfer_id; exactly the acknowledged ones
    place = "coalesce(location_id, %(default)s::uuid)::text"
    legs = admin.execute(
        f"SELECT transfer_id::text, count(*), sum(delta), count(DISTINCT {place}), count(DISTINCT inventory_id), "
        f"min(delta), max({place}) FILTER (WHERE delta > 0), max({place}) FILTER (WHERE delta < 0) "
        f"FROM {S}.ledger WHERE kind = 'transfer' AND inventory_id = ANY(%(items)s::uuid[]) GROUP BY transfer_id",
        {"default": DEFAULT, "items": items}).fetchall()
    seen = set()
    for tid, n, total_delta, places, n_items, out, dst, src in legs:
        seen.add(tid)
        if tid in w.shipped:
            # a shipment: out of its source; then into its destination
            # (received) or back into its source (cancelled), or nothing yet
            item, s_src, s_dst, qty = w.shipped[tid]
            fate = w.landed.get(tid)
            want = {None: (1, -qty, 1, None, s_src), "received": (2, 0, 2, s_dst, s_src),
                    "cancelled": (2, 0, 1, s_src, s_src)}[fate]
            checks.check("shipment_legs_match_acknowledged",
                         (n, float(total_delta), places, dst, src) == want and n_items == 1 and float(out) == -qty,
                         f"shipment {tid} ({fate}): {n} rows, sum {total_delta}, {places} locations, "
                         f"into {dst} out of {src}; client expects {want}")
            continue
        mine = w.transfers.get(tid)
        want = mine and (mine[2], mine[1], -mine[3])
        checks.check("transfer_legs_sum_to_zero", n == 2 and total_delta == 0 and places == 2 and n_items == 1,
                     f"transfer {tid}: {n} rows, sum {total_delta}, {places} locations")
        checks.check("transfer_legs_match_acknowledged", tid is not None and (dst, src, float(out)) == want,
                     f"transfer {tid}: into {dst} out of {src} {out}, client acknowledged {want}")
    missing = (set(w.transfers) | set(w.shipped)) - seen
    checks.check("acknowledged_transfer_in_ledger", not missing, f"{len(missing)} missing: {sorted(missing)[:3]}")
    ledger = dict(admin.execute(
        f"SELECT reference, count(*) FROM {S}.ledger WHERE reference = ANY(%s) GROUP BY 1",
        (list(w.refs),)).fetchall())
    for ref, n in w.refs.items():
        checks.check("acknowledged_op_in_ledger_exactly_once", ledger.get(ref, 0) == n,
                     f"{ref}: {ledger.get(ref, 0)} ledger rows, expected {n}")
    checks.check("idempotent_retry_replays_first_result", w.replay_mismatch == 0,
                 f"{w.replay_mismatch} retries answered differently")
    checks.check("no_deadlocks_or_unexpected_errors", not w.unexpected, "; ".join(w.unexpected[:3]))
    checks.check("each_batch_claimed_once", all(n == 1 for n in w.claims.values()),
                 f"{[b for b, n in w.claims.items() if n > 1][:3]}")
    db_done = admin.execute(f"SELECT count(*) FROM {S}.batches WHERE id = ANY(%s::uuid[]) AND status = 'completed'",
                            (batch_ids,)).fetchone()[0]
    avail = admin.execute(f"SELECT count(*) FROM {S}.batches WHERE id = ANY(%s::uuid[]) AND status = 'available'",
                          (batch_ids,)).fetchone()[0]
    checks.check("claims_plus_remaining_equals_total",
                 db_done == len(w.completed) and w.completed <= set(batch_ids) and db_done + avail == len(batch_ids),
                 f"completed db={db_done} client={len(w.completed)} available={avail} total={len(batch_ids)}")
    checks.check("no_driver_over_limit", not violations, f"{violations[:3]}")
    for session, lines in w.packing:
        packed, picked, over = admin.execute(
            f"SELECT sum(p.quantity_packed), max(b.quantity_picked), count(*) FILTER (WHERE p.quantity_packed > p.quantity_needed) "
            f"FROM {S}.packing_progress p JOIN {S}.picking_session_items b "
            "ON b.picking_session_id = p.picking_session_id AND b.product_id = p.product_id "
            "WHERE p.picking_session_id = %s", (session,)).fetchone()
        checks.check("packed_never_above_needed_or_picked", packed <= picked and over == 0,
                     f"session {session}: packed {packed} of {picked} picked, {over} lines over")
    admin.close()
    checks.finish()


if __name__ == "__main__":
    main()
