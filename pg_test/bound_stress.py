#!/usr/bin/env python3
"""Concurrency test of adopted tables (bound sources, docs/adopting.md).

Binds the table shapes of docs/background.md's apps (the POS sale's inventory
uuid/numeric, the delivery app's products with integer id and quantity plus
its batches table, the checkout reservation's "Inventory" with reserved),
replays their races with every caller released at once, then runs many
connections of random bound_decrement, bound_decrement_many,
bound_increment, idempotent retries, batch claims and (on the checkout
reservation's table) bound_reserve / commit / release / expiry racing for the
same reservations, and the packing RPC's races on a warehouse's own tables
(bind_packing_source: clicks on one line, workers racing over one basket,
idempotent retries), and checks every invariant against the database and
the client's own record of what was acknowledged. Prints `<check>: N passed,
N failed` and a final `bound_stress: N passed, N failed`; exits 1 on any
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
from decimal import Decimal

import psycopg

from checks import Checks, Failure, call, connect, race

RUN = uuid.uuid4().hex[:8]
SCHEMA = f"bs_{RUN}"
EXPECTED = {"INSUFFICIENT_INVENTORY", "BATCH_UNAVAILABLE",
            # reservations: another connection committed, released or expired it
            # (or, for a commit by key, the line) first
            "RESERVATION_NOT_ACTIVE", "RESERVATION_EXPIRED", "LINE_NOT_ACTIVE"}
APP_HELD = 5  # the checkout reservation's rows start with units the app itself holds


def setup(admin, hot, cold, batches):
    """Create and bind the three stock shapes and the batches table; return
    {source: {"ids": [...], "initial": {id: qty}, "whole": bool, "reserved": {id: n}}}."""
    s = SCHEMA
    admin.execute(f"CREATE SCHEMA {s}")
    admin.execute(f"CREATE TABLE {s}.inventory (id uuid PRIMARY KEY, quantity numeric NOT NULL)")
    admin.execute(f"""CREATE TABLE {s}.products (id integer PRIMARY KEY, name text,
                      available_quantity integer NOT NULL,
                      CONSTRAINT products_available_quantity_nonnegative CHECK (available_quantity >= 0))""")
    admin.execute(f"""CREATE TABLE {s}."Inventory" ("id" text PRIMARY KEY, "quantity" integer NOT NULL,
                      "reserved" integer NOT NULL DEFAULT 0)""")
    admin.execute(f"CREATE TABLE {s}.batches (id uuid PRIMARY KEY, status text NOT NULL DEFAULT 'available', driver_id text)")
    n = hot + cold
    qty = lambda k: 60 if k < hot else 400  # hot items run out: refusals happen
    src = {}
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {s}.inventory VALUES (%s, %s)", [(i, qty(k)) for k, i in enumerate(ids)])
    src[f"{s}_inv"] = {"ids": ids, "initial": {i: Decimal(qty(k)) for k, i in enumerate(ids)}, "whole": False, "reserved": {}}
    # sold out by phase_races (inserted before binding, so its ledger starts with it)
    race_item = str(uuid.uuid4())
    admin.execute(f"INSERT INTO {s}.inventory VALUES (%s, 40)", (race_item,))
    src[f"{s}_inv"]["race_item"] = race_item
    pids = [str(k + 1) for k in range(n)]
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {s}.products VALUES (%s, 'p', %s)", [(int(i), qty(k)) for k, i in enumerate(pids)])
    src[f"{s}_prod"] = {"ids": pids, "initial": {i: Decimal(qty(k)) for k, i in enumerate(pids)}, "whole": True, "reserved": {}}
    cids = [f"c{uuid.uuid4().hex[:20]}" for _ in range(n)]  # Prisma cuid-like text ids
    with admin.cursor() as cur:
        cur.executemany(f'INSERT INTO {s}."Inventory" VALUES (%s, %s, {APP_HELD})',
                        [(i, qty(k)) for k, i in enumerate(cids)])
    src[f"{s}_inv4"] = {"ids": cids, "initial": {i: Decimal(qty(k)) for k, i in enumerate(cids)}, "whole": True,
                        "reserved": {i: APP_HELD for i in cids}}
    # sold out by the carts of phase_races
    cart_item = f"c{uuid.uuid4().hex[:20]}"
    admin.execute(f'INSERT INTO {s}."Inventory" VALUES (%s, 30, 0)', (cart_item,))
    src[f"{s}_inv4"]["cart_item"] = cart_item
    call(admin, "bind_stock_source", p_name=f"{s}_inv", p_relation=f"{s}.inventory", p_id_column="id",
         p_quantity_column="quantity")
    call(admin, "bind_stock_source", p_name=f"{s}_prod", p_relation=f"{s}.products", p_id_column="id",
         p_quantity_column="available_quantity", p_add_check=False)
    call(admin, "bind_stock_source", p_name=f"{s}_inv4", p_relation=f'{s}."Inventory"', p_id_column="id",
         p_quantity_column="quantity", p_reserved_column="reserved")
    bids = [str(uuid.uuid4()) for _ in range(batches)]
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {s}.batches (id) VALUES (%s)", [(b,) for b in bids])
    call(admin, "bind_batch_source", p_name=f"{s}_batches", p_relation=f"{s}.batches", p_id_column="id",
         p_status_column="status", p_assignee_column="driver_id")
    return src, bids


def table_of(source):
    s = SCHEMA
    return {f"{s}_inv": (f"{s}.inventory", "id::text", "quantity"),
            f"{s}_prod": (f"{s}.products", "id::text", "available_quantity"),
            f"{s}_inv4": (f'{s}."Inventory"', "id", "quantity")}[source]


def phase_races(dsn, admin, src, checks):
    """The POS sale: 50 buyers of 1 unit when 40 exist; the claim route: 32 drivers, one batch."""
    s = SCHEMA
    item = src[f"{s}_inv"]["race_item"]
    res = race(dsn, 50, lambda c, k: call(c, "bound_decrement", p_source=f"{s}_inv", p_item_id=item, p_quantity=1))
    ok = sum(1 for r in res if isinstance(r, dict))
    refused = sum(1 for r in res if isinstance(r, Failure) and r.sqlstate == "PT409" and r.code == "INSUFFICIENT_INVENTORY")
    final = admin.execute(f"SELECT quantity FROM {s}.inventory WHERE id = %s", (item,)).fetchone()[0]
    checks.check("race_pos_sale_sells_exactly_the_stock", ok == 40 and refused == 10 and final == 0,
                 f"ok={ok} refused={refused} final={final}")
    bid = str(uuid.uuid4())
    admin.execute(f"INSERT INTO {s}.batches (id) VALUES (%s)", (bid,))
    res = race(dsn, 32, lambda c, k: call(c, "bound_claim_batch", p_source=f"{s}_batches", p_batch_id=bid,
                                          p_driver_id=f"race-driver-{k}"))
    wins = [r for r in res if isinstance(r, dict)]
    lost = [r for r in res if isinstance(r, Failure) and r.sqlstate == "PT409" and r.code == "BATCH_UNAVAILABLE"]
    holder = admin.execute(f"SELECT driver_id FROM {s}.batches WHERE id = %s", (bid,)).fetchone()[0]
    checks.check("race_claim_route_one_driver_wins", len(wins) == 1 and len(lost) == 31
                 and wins[0]["driver_id"] == holder, f"wins={len(wins)} lost={len(lost)}")
    # The checkout reservation: 40 carts hold 1 of 30 units at once; then
    # every winning hold is committed by one connection while another
    # releases it.
    inv4, cart = f"{s}_inv4", src[f"{s}_inv4"]["cart_item"]
    res = race(dsn, 40, lambda c, k: call(c, "bound_reserve", p_source=inv4,
                                          p_lines=json.dumps([{"item_id": cart, "quantity": 1}])))
    held = [r["reservation_id"] for r in res if isinstance(r, dict)]
    refused = sum(1 for r in res if isinstance(r, Failure) and r.code == "INSUFFICIENT_INVENTORY")
    q, r = admin.execute(f'SELECT quantity, reserved FROM {s}."Inventory" WHERE id = %s', (cart,)).fetchone()
    checks.check("race_checkout_reservation_holds_exactly_the_stock", len(held) == 30 and refused == 10 and (q, r) == (30, 30),
                 f"held={len(held)} refused={refused} quantity={q} reserved={r}")
    jobs = [(rid, fn) for rid in held for fn in ("commit_reservation", "release_reservation")]
    res = race(dsn, len(jobs), lambda c, k: call(c, jobs[k][1], p_reservation_id=jobs[k][0]))
    won = collections.Counter(jobs[k][1] for k, r in enumerate(res) if isinstance(r, dict))
    lost = sum(1 for r in res if isinstance(r, Failure) and r.code == "RESERVATION_NOT_ACTIVE")
    q, r = admin.execute(f'SELECT quantity, reserved FROM {s}."Inventory" WHERE id = %s', (cart,)).fetchone()
    commits = admin.execute("SELECT count(*) FROM atomic_inventory.ledger WHERE source = %s AND item_key = %s "
                            "AND kind = 'commit'", (inv4, cart)).fetchone()[0]
    checks.check("race_commit_vs_release_one_wins", sum(won.values()) == 30 and lost == 30 and r == 0
                 and q == 30 - won["commit_reservation"] and commits == won["commit_reservation"],
                 f"won={dict(won)} lost={lost} quantity={q} reserved={r} commit rows={commits}")


def phase_packing(dsn, admin, checks):
    """The packing RPC on a warehouse's own tables (text ids, its own names):
    concurrent clicks on one line, workers racing over one basket, and
    keyed clicks retried."""
    s = SCHEMA
    admin.execute(f"""CREATE TABLE {s}.picking_sessions (id text PRIMARY KEY, status text NOT NULL,
                        last_activity_at timestamptz);
                      CREATE TABLE {s}.orders (id text PRIMARY KEY, sleeves_status text NOT NULL, order_number text);
                      CREATE TABLE {s}.packing_progress (id text PRIMARY KEY, picking_session_id text NOT NULL,
                        order_id text NOT NULL, product_id text NOT NULL, quantity_needed integer NOT NULL,
                        quantity_packed integer NOT NULL DEFAULT 0, updated_at timestamptz);
                      CREATE TABLE {s}.picking_session_items (picking_session_id text, product_id text,
                        quantity_picked integer NOT NULL)""")
    wh = f"{s}_wh"
    call(admin, "bind_packing_source", p_name=wh, p_sessions=f"{s}.picking_sessions",
         p_lines=f"{s}.packing_progress", p_orders=f"{s}.orders", p_picked=f"{s}.picking_session_items")

    def session(picked, needs):
        sid, product = f"s-{uuid.uuid4().hex[:12]}", f"p-{uuid.uuid4().hex[:8]}"
        admin.execute(f"INSERT INTO {s}.picking_sessions VALUES (%s, 'packing', NULL)", (sid,))
        # the basket in two rows: they add up
        admin.execute(f"INSERT INTO {s}.picking_session_items VALUES (%s, %s, %s), (%s, %s, %s)",
                      (sid, product, picked // 2, sid, product, picked - picked // 2))
        lines = []
        for need in needs:
            order, line = f"o-{uuid.uuid4().hex[:12]}", f"l-{uuid.uuid4().hex[:12]}"
            admin.execute(f"INSERT INTO {s}.orders VALUES (%s, 'packing', %s)", (order, f"#{order[:8]}"))
            admin.execute(f"INSERT INTO {s}.packing_progress (id, picking_session_id, order_id, product_id, "
                          "quantity_needed) VALUES (%s, %s, %s, %s, %s)", (line, sid, order, product, need))
            lines.append(line)
        return sid, lines

    def packed(sid):
        return admin.execute(f"SELECT id, quantity_packed, quantity_needed FROM {s}.packing_progress "
                             "WHERE picking_session_id = %s ORDER BY id", (sid,)).fetchall()

    # 50 packers click [+] on one line that needs 40: exactly 40 succeed
    sid, [line] = session(60, [40])
    res = race(dsn, 50, lambda c, k: call(c, "bound_increment_packing_quantity", p_source=wh,
                                          p_progress_id=line, p_session_id=sid))
    ok = sum(1 for r in res if isinstance(r, dict))
    full = sum(1 for r in res if isinstance(r, Failure) and r.code == "ALREADY_FULLY_PACKED")
    final = packed(sid)[0][1]
    checks.check("bound_packing_line_ends_exactly_at_needed", ok == 40 and full == 10 and final == 40,
                 f"ok={ok} fully_packed={full} final={final}")

    # 16 workers over 4 orders needing 10 each, a basket of 30: never above
    # 30, no line over its need, every acknowledged click counted once; some
    # clicks keyed and sent twice (the retry replays, packs nothing)
    sid, lines = session(30, [10, 10, 10, 10])

    def packer(c, k):
        rng, done, replays = random.Random(k), 0, 0
        for n in range(40):
            kw = dict(p_source=wh, p_progress_id=rng.choice(lines), p_session_id=sid)
            if n % 5 == 0:
                kw["p_idempotency_key"] = f"{wh}-{k}-{n}"
            try:
                first = call(c, "bound_increment_packing_quantity", **kw)
                done += 1
                if "p_idempotency_key" in kw:
                    replays += call(c, "bound_increment_packing_quantity", **kw) == first
            except Failure as f:
                if f.code not in ("ALREADY_FULLY_PACKED", "BASKET_EXHAUSTED"):
                    raise
        return done, replays

    res = race(dsn, 16, packer)
    acked = sum(r[0] for r in res if isinstance(r, tuple))
    errors = [r for r in res if isinstance(r, Failure)]
    rows = packed(sid)
    total = sum(p for _, p, _ in rows)
    checks.check("bound_packing_basket_never_exceeded", total == 30 and acked == 30 and not errors
                 and all(p <= n for _, p, n in rows), f"packed={total} acknowledged={acked} errors={errors[:2]}")
    touched = admin.execute(f"SELECT last_activity_at IS NOT NULL FROM {s}.picking_sessions WHERE id = %s",
                            (sid,)).fetchone()[0]
    checks.check("bound_packing_touches_the_session", touched, "last_activity_at not set")


class Record:
    """What the clients were told: acknowledged deltas, ops and claims."""

    def __init__(self):
        self.lock = threading.Lock()
        self.delta = collections.defaultdict(Decimal)  # (source, id) -> sum
        self.acked = {}  # reference -> expected ledger rows
        self.refused = set()  # references of refused ops
        self.keyed = {}  # key -> (fn, kwargs, first response)
        self.replays = []  # (key, first, again)
        self.claims = collections.defaultdict(set)  # batch -> drivers acknowledged
        self.unexpected = []
        self.open = []  # bound reservations a connection may try to finish
        self.commit_rows = collections.defaultdict(int)  # reservation -> committed lines acked
        self.holds = 0


def qty_for(whole, rnd):
    return Decimal(rnd.randint(1, 3)) if whole else Decimal(rnd.choice(["0.5", "1", "1.25", "2"]))


def reservation_op(conn, rnd, info, rec):
    """Hold, commit (all or some lines), release or extend a reservation on
    the checkout reservation's table; several connections may pick the same one."""
    inv4 = f"{SCHEMA}_inv4"
    op = rnd.random()
    with rec.lock:
        rid = rnd.choice(rec.open) if rec.open and op >= 0.45 else None
    if rid is None:
        hot = info["ids"][: max(1, len(info["ids"]) // 6)]
        lines = [{"item_id": rnd.choice(hot if rnd.random() < 0.6 else info["ids"]), "quantity": rnd.randint(1, 3)}
                 for _ in range(rnd.randint(1, 3))]
        kw = dict(p_source=inv4, p_lines=json.dumps(lines), p_ttl_seconds=rnd.choice([1, 2, 600]))
        if rnd.random() < 0.3:
            kw["p_idempotency_key"] = f"key-{uuid.uuid4().hex}"
        r = call(conn, "bound_reserve", **kw)
        with rec.lock:
            rec.open.append(r["reservation_id"])
            rec.holds += 1
            if "p_idempotency_key" in kw:
                rec.keyed[kw["p_idempotency_key"]] = ("bound_reserve", kw, r)
        return
    if op < 0.75:
        if rnd.random() < 0.3:
            g = call(conn, "get_reservation", p_reservation_id=rid)
            keys = [l["item_id"] for l in g["lines"] if l["status"] == "active"][:1] or None
            r = call(conn, "bound_commit_reservation", p_reservation_id=rid, p_item_ids=keys)
        else:
            r = call(conn, "commit_reservation", p_reservation_id=rid)
        with rec.lock:
            for line in r["committed"]:
                rec.delta[(inv4, line["item_id"])] -= Decimal(str(line["quantity"]))
            rec.commit_rows[rid] += len(r["committed"])
    elif op < 0.93:
        call(conn, "release_reservation" if rnd.random() < 0.5 else "bound_release_reservation", p_reservation_id=rid)
    else:
        call(conn, "extend_reservation", p_reservation_id=rid, p_ttl_seconds=600)


def sweeper(dsn, deadline, rec):
    """The expiry sweep, racing the connections that commit and release."""
    conn = connect(dsn)
    while time.time() < deadline:
        try:
            call(conn, "expire_reservations")
        except (Failure, psycopg.Error) as e:
            with rec.lock:
                rec.unexpected.append(f"sweep: {e}")
        time.sleep(0.2)
    conn.close()


def worker(dsn, k, src, bids, deadline, rec, seed):
    rnd = random.Random(seed * 1000 + k)
    conn = connect(dsn)
    sources = list(src)
    while time.time() < deadline:
        op = rnd.random()
        ref = None
        try:
            if op < 0.12:
                b = rnd.choice(bids)
                driver = f"driver-{k}"
                r = call(conn, "bound_claim_batch", p_source=f"{SCHEMA}_batches", p_batch_id=b, p_driver_id=driver)
                with rec.lock:
                    rec.claims[r["batch_id"]].add(driver)
                continue
            if op < 0.16:
                driver = f"driver-{k}"
                r = call(conn, "bound_claim_next_batch", p_source=f"{SCHEMA}_batches", p_driver_id=driver)
                if r is not None:
                    with rec.lock:
                        rec.claims[r["batch_id"]].add(driver)
                continue
            if op < 0.30:
                reservation_op(conn, rnd, src[f"{SCHEMA}_inv4"], rec)
                continue
            source = rnd.choice(sources)
            info = src[source]
            hot = info["ids"][: max(1, len(info["ids"]) // 6)]
            pick = lambda: rnd.choice(hot if rnd.random() < 0.6 else info["ids"])
            ref = f"op-{uuid.uuid4().hex}"
            # a retry of an earlier keyed call, with its exact arguments
            if op < 0.34 and rec.keyed:
                with rec.lock:
                    key = rnd.choice(list(rec.keyed))
                    fn, kw, first = rec.keyed[key]
                again = call(conn, fn, **kw)
                with rec.lock:
                    rec.replays.append((key, first, again))
                continue
            key = f"key-{uuid.uuid4().hex}" if rnd.random() < 0.3 else None
            if op < 0.60:
                item, q = pick(), qty_for(info["whole"], rnd)
                fn, kw, changes, rows = "bound_decrement", dict(p_source=source, p_item_id=item, p_quantity=q), [(item, -q)], 1
            elif op < 0.80:
                lines = [(pick(), qty_for(info["whole"], rnd)) for _ in range(rnd.randint(2, 4))]
                merged = collections.defaultdict(Decimal)
                for i, q in lines:
                    merged[i] += q
                fn = "bound_decrement_many"
                kw = dict(p_source=source, p_lines=json.dumps([{"item_id": i, "quantity": str(q)} for i, q in lines]))
                changes, rows = [(i, -q) for i, q in merged.items()], len(merged)
            else:
                item, q = pick(), qty_for(info["whole"], rnd)
                fn, kw, changes, rows = "bound_increment", dict(p_source=source, p_item_id=item, p_quantity=q), [(item, q)], 1
            kw["p_reference"] = ref
            if key:
                kw["p_idempotency_key"] = key
            r = call(conn, fn, **kw)
            with rec.lock:
                for i, d in changes:
                    rec.delta[(source, i)] += d
                rec.acked[ref] = rows
                if key:
                    rec.keyed[key] = (fn, kw, r)
        except Failure as f:
            if f.code in EXPECTED:
                if ref is not None:
                    with rec.lock:
                        rec.refused.add(ref)
            else:
                with rec.lock:
                    rec.unexpected.append(f"{f.sqlstate} {f.code or '?'}: {f}")
        except psycopg.Error as e:
            with rec.lock:
                rec.unexpected.append(f"{e.sqlstate}: {e}")
    conn.close()


def verify(admin, src, bids, rec, checks):
    checks.check("no_unexpected_errors", not rec.unexpected, "; ".join(rec.unexpected[:3]))
    inv4 = f"{SCHEMA}_inv4"
    held = dict(admin.execute(
        """SELECT l.item_key, sum(l.quantity) FROM atomic_inventory.bound_reservation_lines AS l
             JOIN atomic_inventory.reservations AS r ON r.id = l.reservation_id
            WHERE r.source = %s AND l.status = 'active' AND l.tracked GROUP BY l.item_key""", (inv4,)).fetchall())
    reserved = dict(admin.execute(f'SELECT id, reserved FROM {SCHEMA}."Inventory"').fetchall())
    for i in src[inv4]["ids"]:
        want = APP_HELD + held.get(i, 0)
        checks.check("reserved_column_is_app_held_plus_active_lines", reserved[i] == want,
                     f"{i}: {reserved[i]} != {want}")
    src[inv4]["reserved"] = reserved
    bad = admin.execute(
        """SELECT count(*) FROM atomic_inventory.reservations AS r
            WHERE r.source = %s AND (r.status = 'active') IS DISTINCT FROM EXISTS (
                  SELECT 1 FROM atomic_inventory.bound_reservation_lines AS l
                   WHERE l.reservation_id = r.id AND l.status = 'active')""", (inv4,)).fetchone()[0]
    checks.check("reservation_active_iff_a_line_is", bad == 0, f"{bad} reservations")
    rows = dict(admin.execute(
        "SELECT reference, count(*) FROM atomic_inventory.ledger WHERE source = %s AND kind = 'commit' "
        "GROUP BY reference", (inv4,)).fetchall())
    for rid, n in rec.commit_rows.items():
        checks.check("acknowledged_commit_in_ledger_exactly_once", rows.get(rid, 0) == n,
                     f"{rid}: {rows.get(rid, 0)} rows, want {n}")
    for source, info in src.items():
        table, key, col = table_of(source)
        rows = dict(admin.execute(f"SELECT {key}, {col} FROM {table}").fetchall())
        for i in info["ids"]:
            q = Decimal(rows[i])
            checks.check("no_quantity_below_zero_or_reserved", q >= info["reserved"].get(i, 0), f"{source} {i}: {q}")
            want = info["initial"][i] + rec.delta[(source, i)]
            checks.check("quantity_is_initial_plus_acknowledged", q == want, f"{source} {i}: {q} != {want}")
        drift = admin.execute("SELECT count(*) FROM atomic_inventory.reconcile_source(%s)", (source,)).fetchone()[0]
        checks.check("reconcile_source_empty", drift == 0, f"{source}: {drift} rows")
    counts = dict(admin.execute(
        "SELECT reference, count(*) FROM atomic_inventory.ledger WHERE reference LIKE 'op-%%' AND source LIKE %s "
        "GROUP BY reference", (f"{SCHEMA}_%",)).fetchall())
    for ref, rows in rec.acked.items():
        checks.check("acknowledged_op_in_ledger_exactly_once", counts.get(ref, 0) == rows,
                     f"{ref}: {counts.get(ref, 0)} rows, want {rows}")
    for ref in rec.refused:
        checks.check("refused_op_not_in_ledger", counts.get(ref, 0) == 0, ref)
    for key, first, again in rec.replays:
        checks.check("idempotent_retry_returns_the_first_answer", first == again, f"{key}: {first} vs {again}")
    held = dict(admin.execute(f"SELECT id::text, coalesce(driver_id, '') FROM {SCHEMA}.batches").fetchall())
    for b in bids:
        drivers = rec.claims.get(b, set())
        ok = (len(drivers) == 1 and held[b] in drivers) or (not drivers and held[b] == "")
        checks.check("batch_claimed_by_exactly_one_driver", ok, f"{b}: acked {drivers}, holder {held[b]!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--hot", type=int, default=4)
    ap.add_argument("--cold", type=int, default=20)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    print(f"bound_stress: seed {a.seed}, {a.connections} connections, {a.seconds} s, schema {SCHEMA}")
    admin = connect(a.dsn)
    checks = Checks("bound_stress", show="grouped")
    src, bids = setup(admin, a.hot, a.cold, a.batches)
    phase_races(a.dsn, admin, src, checks)
    phase_packing(a.dsn, admin, checks)
    rec = Record()
    deadline = time.time() + a.seconds
    threads = [threading.Thread(target=worker, args=(a.dsn, k, src, bids, deadline, rec, a.seed))
               for k in range(a.connections)]
    threads.append(threading.Thread(target=sweeper, args=(a.dsn, deadline, rec)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expired = admin.execute("SELECT count(*) FROM atomic_inventory.reservations WHERE source = %s "
                            "AND status = 'expired'", (f"{SCHEMA}_inv4",)).fetchone()[0]
    print(f"bound_stress: {len(rec.acked)} acknowledged movements, {len(rec.refused)} refused, "
          f"{len(rec.replays)} replays, {sum(len(d) for d in rec.claims.values())} claims, "
          f"{rec.holds} holds ({len(rec.commit_rows)} committed, {expired} expired)")
    checks.check("workload_ran", len(rec.acked) > 100 and rec.replays and rec.refused and rec.claims
                 and rec.holds > 50 and rec.commit_rows and expired,
                 f"acked={len(rec.acked)} replays={len(rec.replays)} refused={len(rec.refused)} "
                 f"holds={rec.holds} commits={len(rec.commit_rows)} expired={expired}")
    verify(admin, src, bids, rec, checks)
    checks.finish()


if __name__ == "__main__":
    main()
