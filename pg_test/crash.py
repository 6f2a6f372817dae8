#!/usr/bin/env python3
"""Crash test: SIGKILL the postmaster or, alternately, one backend while many
connections call every mutating function, on the extension's own tables and
on adopted (bound) tables, with and without idempotency keys; restart;
retry the keyed calls whose answer was lost; then check each capability's
invariants against the database and against what the clients were told:

- stock: every acknowledged movement in the ledger exactly once (with the
  deltas it answered), refused ones not at all, unacknowledged ones all or
  nothing, keyed retries applied once, acknowledged keyed calls replayed
  with their first answer, quantity = initial + what was applied,
  reconcile() (per level) / reconcile_source() empty, no stock below
  reserved (below reserved - its backorder limit for the item given one at
  setup with set_backorder_limit: quantity + limit >= reserved >= 0);
- transfers (transfer_inventory between the default location and two
  made with create_location): an acknowledged one's two ledger rows (kind
  transfer, the transfer_id answered, -q and +q) exactly once, an
  unacknowledged one both rows or none, each item's total over its own row
  and its stock_levels rows and its units in transit = initial + the other
  movements (transfers make and lose nothing);
- transfers in transit (transfer_inventory with p_receive => false, then
  receive_transfer or cancel_transfer, some of a shipment landed already):
  each shipment's ledger rows match its status (-q at its source; then +q
  at its destination, or back at its source), acknowledged shipments,
  receipts and cancellations applied once, unacknowledged ones all or
  nothing;
- kits (define_kit at setup, then decrement_inventory of the kit): an
  acknowledged kit sale's component ledger rows exactly once, matching its
  answer's lines, an unacknowledged one all components or none, the kit's
  own row at quantity 0 and reserved 0;
- reservations: every reserve all or nothing (a reservation with all its
  lines, or none; some lines held at a location), its status matching its
  lines, each level's `reserved` (the item row's for the default location,
  a stock_levels row's for another) = the active lines held there, each line's commit ledger rows adding up to its
  committed_quantity (a committed line sold some), those rows being its
  acknowledged (or retried) commits' plus perhaps the one in flight,
  partial ones (commit_reservation p_lines, p_rest release or keep)
  included, its committed + released + still held units = what it was
  reserved with, acknowledged commits/releases/extends standing, an
  unacknowledged one all or nothing, the preloaded sweeper running again
  after the crash (a new process) and expiring what fell due while the
  server was down, nothing expired before its time;
- batches (managed and bound): each batch held by at most one driver, the
  one told it holds it; acknowledged claims, starts, completions and
  unclaims standing, no holder that was told nothing; an acknowledged
  heartbeat (extend_batch_lease) that is its driver's last call on the
  batch leaves it held with a lease at least the one answered; every
  driver within its limit; a lease that lapsed during the outage claimable
  afterwards;
- packing: packed never above needed or picked, and each line's packed
  quantity = its acknowledged clicks plus some of its unacknowledged ones.

create_location, define_kit and set_backorder_limit run at each round's
setup (crash_more.py: the transfer, kit and backorder parts), counted by
every_function_ran like the workload's calls.

After the last crash every round is checked again (what was acknowledged
before a crash must survive the later ones too).

--inject NAME corrupts the state in one specific way after recovery (before
the checks) and names the check that must report it: each invariant has an
injection that proves it can fail (--list-injections).

Needs the cluster started by pg_test/lib.sh (AI_CLUSTER_DIR, AI_PG_BINDIR,
AI_PG_START_OPTS, PG*) with the library preloaded and its sweeper on
(shared_preload_libraries = atomic_inventory, atomic_inventory.sweep_interval
= 1, sweep_database = ai_test), and root (it restarts the server as user
postgres). Prints `crash: N passed, N failed`.
"""
import argparse
import collections
import datetime
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import psycopg

import crash_more as more
from checks import Checks, Failure, call
from crash_more import NoTarget
from stress import packing_session

S = "atomic_inventory"
RUN = uuid.uuid4().hex[:6]
APP_HELD = 2  # units the checkout app itself holds in each "Inventory" row
MAX_ACTIVE = 2  # the per-driver limit of managed batch claims
# A call whose connection died: it may or may not have committed.
LOST = {None, "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"}
DONE = {"commit": "committed", "release": "released"}
PARTIAL = "commit_reservation (partial)"  # commit_reservation with p_lines (and p_rest)
KEYED = {"decrement_inventory", "decrement_inventory_many", "increment_inventory", "adjust_inventory",
         "reserve_inventory", "commit_reservation", "release_reservation", "bound_decrement",
         "bound_decrement_many", "bound_increment", "bound_adjust", "bound_reserve",
         "bound_commit_reservation", "bound_release_reservation", "transfer_inventory", more.KIT_SALE,
         PARTIAL, more.SHIP, "receive_transfer", "cancel_transfer"}
# every mutating function the workload calls (the coverage check wants each
# acknowledged); create_location, define_kit, set_backorder_limit at each
# round's setup
FUNCTIONS = sorted(KEYED | {"extend_reservation", "expire_reservations", "claim_batch", "claim_next_batch",
                            "start_batch", "complete_batch", "unclaim_batch", "increment_packing_quantity",
                            "decrement_packing_quantity", "bound_claim_batch", "bound_claim_next_batch",
                            "bound_unclaim_batch", "extend_batch_lease", "create_location", "define_kit",
                            "set_backorder_limit"})
# (rows of the per-function table; "(kit)" and "(partial)" are calls of
# decrement_inventory and commit_reservation counted apart)
CAPABILITY = {
    "stock": ["decrement_inventory", "decrement_inventory_many", "increment_inventory", "adjust_inventory"],
    "bound stock": ["bound_decrement", "bound_decrement_many", "bound_increment", "bound_adjust"],
    "locations": ["create_location", "transfer_inventory", more.SHIP, "receive_transfer", "cancel_transfer"],
    "kits": ["define_kit", more.KIT_SALE],
    "backorders": ["set_backorder_limit"],
    "reservations": ["reserve_inventory", "commit_reservation", PARTIAL, "release_reservation",
                     "extend_reservation", "expire_reservations"],
    "bound reservations": ["bound_reserve", "bound_commit_reservation", "bound_release_reservation"],
    "batches": ["claim_batch", "claim_next_batch", "start_batch", "complete_batch", "unclaim_batch",
                "extend_batch_lease"],
    "bound batches": ["bound_claim_batch", "bound_claim_next_batch", "bound_unclaim_batch"],
    "packing": ["increment_packing_quantity", "decrement_packing_quantity"],
}
# (operation, weight): what a worker does next
OPS = [("decrement_inventory", 6), ("decrement_inventory_many", 4), ("increment_inventory", 3),
       ("adjust_inventory", 2), ("reserve_inventory", 5), ("commit_reservation", 3),
       ("release_reservation", 2), ("extend_reservation", 2), ("expire_reservations", 1),
       ("claim_batch", 2), ("claim_next_batch", 3), ("start_batch", 2), ("complete_batch", 1),
       ("unclaim_batch", 1), ("increment_packing_quantity", 3), ("decrement_packing_quantity", 1),
       ("bound_decrement", 5), ("bound_decrement_many", 3), ("bound_increment", 3), ("bound_adjust", 2),
       ("bound_reserve", 4), ("bound_commit", 3), ("bound_release", 2), ("bound_extend", 1),
       ("bound_claim_batch", 2), ("bound_claim_next_batch", 2), ("bound_unclaim_batch", 1),
       ("transfer_inventory", 3), ("ship", 2), ("land", 2), ("kit_sale", 2), ("extend_batch_lease", 2)]


def D(x):
    return Decimal(str(x))


def ts(s):
    return None if s is None else datetime.datetime.fromisoformat(s)


APP = "ai_crash_app"  # the workload's role: an app backend, not an admin (batches check who holds them)


def connect(**kw):
    return psycopg.connect("", autocommit=True, connect_timeout=5, application_name="ai-crash", **kw)


def connect_app():
    return connect(user=APP)


def ensure_app_role():
    with connect() as a:
        if not a.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP,)).fetchone():
            a.execute(f"CREATE ROLE {APP} LOGIN")
        a.execute(f"SELECT {S}.grant_usage(%s)", (APP,))


def wait_for_server(seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with connect() as c:
                c.execute("SELECT 1")
                return True
        except psycopg.Error:
            time.sleep(0.2)
    return False


# as lib.sh's start_cluster starts it: without RUST_BACKTRACE, so that error
# details stay what users would see
SERVER_ENV = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}


def children(pid):
    """The processes whose parent is pid (the postmaster's backends and workers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def restart_cleanly():
    data = os.path.join(os.environ["AI_CLUSTER_DIR"], "data")
    log = os.path.join(os.environ["AI_CLUSTER_DIR"], "server.log")
    pg_ctl = os.path.join(os.environ["AI_PG_BINDIR"], "pg_ctl")
    subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-l", log, "-w", "-m", "fast",
                    "-o", os.environ["AI_PG_START_OPTS"], "restart"], capture_output=True, check=True, env=SERVER_ENV)
    return wait_for_server()


def restart_server():
    """Start the server again after the postmaster was killed; orphaned
    backends may hold the shared memory a little while, so retry."""
    data = os.path.join(os.environ["AI_CLUSTER_DIR"], "data")
    log = os.path.join(os.environ["AI_CLUSTER_DIR"], "server.log")
    pg_ctl = os.path.join(os.environ["AI_PG_BINDIR"], "pg_ctl")
    for _ in range(60):
        r = subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-l", log, "-w",
                            "-o", os.environ["AI_PG_START_OPTS"], "start"], capture_output=True, text=True, env=SERVER_ENV)
        if r.returncode == 0:
            return wait_for_server()
        time.sleep(0.5)
    return False


class Op:
    """One call as the client saw it: state ok / refused (a PT error: known
    not applied) / unknown (the connection died) / error (anything else)."""
    __slots__ = ("fn", "kw", "cat", "x", "key", "state", "answer", "code", "retry_state", "retry_answer", "t0", "t1")

    def __init__(self, fn, kw, cat, x):
        self.fn, self.kw, self.cat, self.x = fn, kw, cat, x
        self.key = kw.get("p_idempotency_key")
        self.state = self.answer = self.code = self.retry_state = self.retry_answer = None

    def final(self):
        """What is known after recovery: a retried keyed call counts as its retry's answer."""
        if self.state == "unknown" and self.retry_state is not None:
            return self.retry_state, self.retry_answer
        return self.state, self.answer


class Hold:
    """A reservation a worker made (or one found applied after the crash)."""

    def __init__(self, rid, src, lines, expires_at, reserve_op, due=False):
        self.rid, self.src, self.lines, self.expires_at = rid, src, lines, expires_at
        self.reserve_op, self.due = reserve_op, due
        self.ops = []  # commit / release / extend calls on it, in order
        self.model = {i: "active" for i in lines}  # the worker's view, to pick lines
        self.held = dict(lines)  # units each line holds now, by the answers (partial commits keep some)

    def walk(self):
        """Line states, the unacknowledged finishing call if any, expiry and
        whether an unacknowledged extend may have moved it: from the answers."""
        states, unknown, exp, ext_unknown = {i: "active" for i in self.lines}, None, ts(self.expires_at), None
        for op in self.ops:
            st, ans = op.final()
            if op.cat == "finish":
                if st == "ok":
                    for i in finished(op, ans):
                        states[i] = DONE[op.x["action"]]
                elif st == "unknown":
                    unknown = op
            elif op.cat == "extend":
                if st == "ok":
                    exp = ts(ans["expires_at"])
                elif st == "unknown":
                    ext_unknown = op  # it may have set now() + its ttl, later or earlier than exp
        return states, unknown, exp, ext_unknown

    def unsettled(self):
        return any(op.final()[0] == "unknown" for op in self.ops) or self.reserve_op.state == "unknown"


def kit_answer(ans):
    """A kit sale's answer: each component's deduction, as ledger deltas."""
    if not ans.get("kit"):
        return None
    out = collections.defaultdict(Decimal)
    for l in ans["lines"]:  # (a line per location it was taken from)
        out[l["inventory_id"]] -= D(l["deducted"])
    return dict(out)


def same_lines(got, want):
    """A reservation's lines as found (their units, or "partly committed") against the ones asked or answered."""
    return got is not None and got.keys() == want.keys() and all(
        q == "partly committed" or q == want[i] for i, q in got.items())


def line_id(l):
    return l.get("inventory_id") or l.get("item_id")


def finished(op, ans):
    """The lines a commit or release answered finished (a partial commit's
    line whose rest was kept stays active)."""
    kept = {line_id(l) for l in ans.get("kept", [])}
    return [line_id(l) for l in ans[DONE[op.x["action"]]] if line_id(l) not in kept]


def answer_lines(ans):
    return {(l.get("inventory_id") or l.get("item_id")): D(l["quantity"]) for l in ans["lines"]}


class Round:
    def __init__(self, admin, n, seed):
        self.n, self.seed = n, seed
        self.tag = f"cr{RUN}r{n}"
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ops = []
        self.holds = {}  # reservation id -> Hold
        self.batch_log = collections.defaultdict(list)  # driver -> batch calls, in order
        self.bbatch_log = collections.defaultdict(list)
        self.t_kill = self.t_up = None
        self.outage = 0  # holds that fell due while the server was down
        self.probes = 0
        self.applied = set()  # ids of unacknowledged calls without a key found applied
        self.cleanup = []  # undo an injection after the round: f(admin connection)
        a = admin
        self.items = [a.execute(f"SELECT {S}.create_item(p_quantity => %s, p_sku => %s)->>'inventory_id'",
                                (q, f"{self.tag}-{k}")).fetchone()[0] for k, q in enumerate([300] * 4 + [12])]
        self.initial = {("m", i): D(q) for i, q in zip(self.items, [300] * 4 + [12])}
        more.setup(self, a)  # locations, a kit of items 0 and 1, item 4's backorder limit
        self.zone = self.tag
        self.batches = [call(a, "create_batch", p_zone=self.zone)["batch_id"] for _ in range(60)]
        # two packing sessions: baskets of 20 for 3 orders needing 8 each
        self.packing = [packing_session(a, 20, [8, 8, 8]) for _ in range(2)]
        self.pack_lines = [(s, l) for s, ls in self.packing for l in ls]
        # adopted tables: the POS sale's inventory (uuid, numeric), the
        # checkout reservation's "Inventory" (text ids, integer, reserved),
        # the delivery app's batches
        sc = self.tag
        a.execute(f"CREATE SCHEMA {sc}")
        a.execute(f"CREATE TABLE {sc}.inventory (id uuid PRIMARY KEY, quantity numeric NOT NULL)")
        a.execute(f'CREATE TABLE {sc}."Inventory" (id text PRIMARY KEY, quantity integer NOT NULL, '
                  'reserved integer NOT NULL DEFAULT 0)')
        a.execute(f"CREATE TABLE {sc}.batches (id uuid PRIMARY KEY, status text NOT NULL DEFAULT 'available', "
                  "driver_id text)")
        self.inv, self.inv4, self.bsrc = f"{sc}_inv", f"{sc}_inv4", f"{sc}_batches"
        self.binv = [str(uuid.uuid4()) for _ in range(5)]
        self.binv4 = [f"c{uuid.uuid4().hex[:16]}" for _ in range(5)]
        self.bbatches = [str(uuid.uuid4()) for _ in range(16)]
        with a.cursor() as cur:
            for k, i in enumerate(self.binv):
                q = 300 if k < 4 else 12
                cur.execute(f"INSERT INTO {sc}.inventory VALUES (%s, %s)", (i, q))
                self.initial[(self.inv, i)] = D(q)
            for k, i in enumerate(self.binv4):
                q = 300 if k < 4 else 12
                cur.execute(f'INSERT INTO {sc}."Inventory" VALUES (%s, %s, {APP_HELD})', (i, q))
                self.initial[(self.inv4, i)] = D(q)
            cur.executemany(f"INSERT INTO {sc}.batches (id) VALUES (%s)", [(b,) for b in self.bbatches])
        call(a, "bind_stock_source", p_name=self.inv, p_relation=f"{sc}.inventory", p_id_column="id",
             p_quantity_column="quantity")
        call(a, "bind_stock_source", p_name=self.inv4, p_relation=f'{sc}."Inventory"', p_id_column="id",
             p_quantity_column="quantity", p_reserved_column="reserved")
        call(a, "bind_batch_source", p_name=self.bsrc, p_relation=f"{sc}.batches", p_id_column="id",
             p_status_column="status", p_assignee_column="driver_id")

    # -- calls -------------------------------------------------------------

    def run(self, conn, fn, kw, cat, **x):
        op = Op(fn, kw, cat, x)
        op.t0 = time.time()
        try:
            op.answer = call(conn, fn, **kw)
            op.state = "ok"
        except Failure as f:
            if f.sqlstate and f.sqlstate.startswith("PT"):
                op.state, op.code = "refused", f.code
            elif f.sqlstate in LOST or conn.broken or conn.closed:
                op.state = "unknown"
            else:
                op.state, op.code = "error", f"{f.sqlstate} {str(f).splitlines()[0][:160]}"
        op.t1 = time.time()
        with self.lock:
            self.ops.append(op)
        return op

    def key(self, rng, kw):
        if rng.random() < 0.3:
            kw["p_idempotency_key"] = f"{self.tag}-k{uuid.uuid4().hex}"
        return kw

    def move(self, conn, rng, fn, src, kw, changes, **x):
        ref = f"{self.tag}-{uuid.uuid4().hex}"
        kw["p_reference"] = ref
        return self.run(conn, fn, self.key(rng, kw), "move", src=src, ref=ref, rows=len(changes), changes=changes,
                        **x)

    def new_hold(self, op, src, ans, due=False):
        h = Hold(ans["reservation_id"], src, answer_lines(ans), ans["expires_at"], op, due)
        with self.lock:
            self.holds[h.rid] = h
        return h

    def reserve(self, conn, rng, w, src, ttl=None, due=False):
        ids = self.items if src == "m" else self.binv4
        top = 3 if src == "m" else 2  # a line of 2 or 3 units can be committed in parts
        lines = {i: rng.randint(1, top) for i in rng.sample(ids, 1 if due else rng.randint(1, 2))}
        name = "inventory_id" if src == "m" else "item_id"
        ref = f"{self.tag}-{uuid.uuid4().hex}"
        body = [{name: i, "quantity": q} for i, q in lines.items()]
        # some holds at a location, for the items with stock there (their
        # units count in the item's total as any; reserved per level below)
        for line in body:
            if src == "m" and line[name] in self.items[:4] and rng.random() < 0.3:
                line["location_id"] = rng.choice(self.locations)
        kw = dict(p_lines=json.dumps(body),
                  p_ttl_seconds=ttl or rng.choice([1, 2, 3, 3600]), p_reference=ref)
        if src != "m":
            kw = dict(p_source=src, **kw)
        if not due:
            self.key(rng, kw)
        op = self.run(conn, "reserve_inventory" if src == "m" else "bound_reserve", kw, "reserve",
                      src=src, ref=ref, lines={i: D(q) for i, q in lines.items()})
        if op.state == "ok":
            h = self.new_hold(op, src, op.answer, due)
            if w is not None:
                w["holds" if src == "m" else "bholds"].append(h)
        return op

    def finish(self, conn, rng, w, src, action):
        holds = w["holds" if src == "m" else "bholds"]
        if not holds:
            return self.reserve(conn, rng, w, src)
        h = rng.choice(holds)
        active = sorted(i for i, s in h.model.items() if s == "active")
        bound = src != "m" and rng.random() < 0.5
        fn = ("bound_" if bound else "") + f"{action}_reservation"
        kw = dict(p_reservation_id=uuid.UUID(h.rid))
        targets = active
        if len(active) > 1 and rng.random() < 0.4 and (src == "m" or bound):
            targets = [rng.choice(active)]
            if bound:
                kw["p_item_ids"] = targets
            else:
                kw["p_inventory_ids"] = [uuid.UUID(t) for t in targets]
        x = {}
        if action == "commit" and src == "m" and rng.random() < 0.4:
            # a partial commit: some units of one line, the rest released or kept held
            i = rng.choice(active)
            k, rest = rng.randint(1, int(h.held[i])), rng.choice(["release", "keep"])
            kw.pop("p_inventory_ids", None)
            kw.update(p_lines=json.dumps([{"inventory_id": i, "quantity": k}]), p_rest=rest)
            targets, x = [i], dict(partial=(i, D(k)), rest=rest, label=PARTIAL)
        op = self.run(conn, fn, self.key(rng, kw), "finish", action=action, targets=set(targets), hold=h.rid, **x)
        h.ops.append(op)
        if op.state == "ok":
            for i in finished(op, op.answer):
                h.model[i] = DONE[action]
            for l in op.answer.get("kept", []):
                h.held[line_id(l)] = D(l["quantity"])
        if op.state == "refused" or "active" not in h.model.values():
            holds.remove(h)
        return op

    def extend(self, conn, rng, w, src):
        holds = w["holds" if src == "m" else "bholds"]
        if not holds:
            return self.reserve(conn, rng, w, src)
        h = rng.choice(holds)
        op = self.run(conn, "extend_reservation", dict(p_reservation_id=uuid.UUID(h.rid),
                                                       p_ttl_seconds=rng.choice([2, 3600])), "extend", hold=h.rid)
        h.ops.append(op)
        if op.state == "refused":
            holds.remove(h)
        return op

    def batch(self, conn, rng, w, action):
        held = w["batches"]
        driver = w["driver"]
        kw = dict(p_driver_id=driver)
        if action in ("start", "complete", "unclaim", "extend"):
            pool = [b for b, s in held.items() if action != "start" or s == "claimed"]
            if not pool:
                action = "claim_next"
            elif action == "extend":  # a heartbeat: the lease of a claimed or started batch it holds
                b = rng.choice(pool)
                op = self.run(conn, "extend_batch_lease", dict(p_batch_id=uuid.UUID(b), p_seconds=rng.choice([30, 600]),
                                                               **kw), "batch", driver=driver, batch=b, action=action)
                if op.state == "refused":  # its lease lapsed: no longer held
                    held.pop(b, None)
                self.batch_log[driver].append(op)
                return op
            else:
                b = rng.choice(pool)
                op = self.run(conn, f"{action}_batch", dict(p_batch_id=uuid.UUID(b), **kw), "batch",
                              driver=driver, batch=b, action=action)
                if op.state == "ok" and action == "start":
                    held[b] = "in_progress"
                elif op.state in ("ok", "refused"):
                    held.pop(b, None)
                self.batch_log[driver].append(op)
                return op
        lease = rng.choice([None, 1, 2, 2])
        if lease:
            kw["p_lease_seconds"] = lease
        kw["p_max_active"] = MAX_ACTIVE
        if action == "claim":
            b = rng.choice(self.batches)
            op = self.run(conn, "claim_batch", dict(p_batch_id=uuid.UUID(b), **kw), "batch",
                          driver=driver, batch=b, action="claim")
        else:
            op = self.run(conn, "claim_next_batch", dict(p_zone=self.zone, **kw), "batch",
                          driver=driver, batch=None, action="claim")
            if op.state == "ok" and op.answer is not None:
                op.x["batch"] = op.answer["batch_id"]
        if op.state == "ok" and op.x["batch"] is not None:
            held[op.x["batch"]] = "claimed"
        self.batch_log[driver].append(op)
        return op

    def bbatch(self, conn, rng, w, action):
        held, driver = w["bbatches"], w["bdriver"]
        kw = dict(p_source=self.bsrc, p_driver_id=driver)
        if action == "unclaim" and held:
            b = rng.choice(sorted(held))
            op = self.run(conn, "bound_unclaim_batch", dict(p_batch_id=b, **kw), "bbatch",
                          driver=driver, batch=b, action="unclaim")
            if op.state in ("ok", "refused"):
                held.discard(b)
        elif action == "claim":
            b = rng.choice(self.bbatches)
            op = self.run(conn, "bound_claim_batch", dict(p_batch_id=b, **kw), "bbatch",
                          driver=driver, batch=b, action="claim")
            if op.state == "ok":
                held.add(b)
        else:
            op = self.run(conn, "bound_claim_next_batch", kw, "bbatch", driver=driver, batch=None, action="claim")
            if op.state == "ok" and op.answer is not None:
                op.x["batch"] = op.answer["batch_id"]
                held.add(op.x["batch"])
        self.bbatch_log[driver].append(op)
        return op

    def one(self, conn, rng, w, kind):
        """One operation; None when there was nothing to call."""
        if kind == "decrement_inventory":
            i, q = rng.choice(self.items), rng.choice([1, 1, 2])
            return self.move(conn, rng, kind, "m", dict(p_inventory_id=uuid.UUID(i), p_quantity=q), [(i, -q)])
        if kind == "increment_inventory":
            i, q = rng.choice(self.items), rng.randint(1, 3)
            return self.move(conn, rng, kind, "m", dict(p_inventory_id=uuid.UUID(i), p_quantity=q), [(i, q)])
        if kind == "decrement_inventory_many":
            items = rng.sample(self.items, rng.randint(2, 3))
            lines = [{"inventory_id": i, "quantity": 1} for i in items]
            return self.move(conn, rng, kind, "m", dict(p_lines=json.dumps(lines)), [(i, -1) for i in items])
        if kind == "adjust_inventory":
            # (a backordered item's quantity, below 0, is no p_expected_quantity)
            i = rng.choice([i for i in self.items if i not in self.backorder])
            seen = call(conn, "get_inventory", p_inventory_id=uuid.UUID(i))
            # the default location's row (with levels elsewhere, the answer's totals cover those too)
            seen = next((l for l in seen.get("levels") or [] if l["location_id"] == more.DEFAULT_LOC), seen)
            cur, res = D(seen["quantity"]), D(seen["reserved"])
            new = max(res, cur + rng.choice([-3, -2, -1, 1, 2, 3]))
            new = cur + 1 if new == cur else new
            return self.move(conn, rng, kind, "m", dict(p_inventory_id=uuid.UUID(i), p_new_quantity=new,
                                                        p_expected_quantity=cur), [(i, None)])
        if kind in ("bound_decrement", "bound_increment", "bound_decrement_many", "bound_adjust"):
            src = rng.choice([self.inv, self.inv4])
            ids = self.binv if src == self.inv else self.binv4
            qty = (lambda: D(rng.choice(["0.5", "1", "2"]))) if src == self.inv else (lambda: D(rng.randint(1, 2)))
            if kind == "bound_decrement_many":
                items = rng.sample(ids, rng.randint(2, 3))
                lines = [(i, qty()) for i in items]
                return self.move(conn, rng, kind, src, dict(p_source=src, p_lines=json.dumps(
                    [{"item_id": i, "quantity": str(q)} for i, q in lines])), [(i, -q) for i, q in lines])
            i = rng.choice(ids)
            if kind == "bound_adjust":
                seen = call(conn, "bound_get", p_source=src, p_item_id=i)
                cur, res = D(seen["quantity"]), D(seen["reserved"] or 0)
                new = max(res, cur + rng.choice([-3, -2, -1, 1, 2, 3]))
                new = cur + 1 if new == cur else new
                return self.move(conn, rng, kind, src, dict(p_source=src, p_item_id=i, p_new_quantity=new,
                                                            p_expected_quantity=cur), [(i, None)])
            q = qty()
            return self.move(conn, rng, kind, src, dict(p_source=src, p_item_id=i, p_quantity=q),
                             [(i, -q if kind == "bound_decrement" else q)])
        if kind == "transfer_inventory":
            return more.transfer(self, conn, rng)
        if kind == "ship":
            return more.ship(self, conn, rng)
        if kind == "land":
            return more.land(self, conn, rng)
        if kind == "kit_sale":
            return more.kit_sale(self, conn, rng)
        if kind == "reserve_inventory":
            return self.reserve(conn, rng, w, "m")
        if kind == "bound_reserve":
            return self.reserve(conn, rng, w, self.inv4)
        if kind in ("commit_reservation", "release_reservation"):
            return self.finish(conn, rng, w, "m", kind.split("_")[0])
        if kind in ("bound_commit", "bound_release"):
            return self.finish(conn, rng, w, self.inv4, kind.split("_")[1])
        if kind == "extend_reservation":
            return self.extend(conn, rng, w, "m")
        if kind == "bound_extend":
            return self.extend(conn, rng, w, self.inv4)
        if kind in ("claim_batch", "claim_next_batch", "start_batch", "complete_batch", "unclaim_batch"):
            return self.batch(conn, rng, w, kind[:-6])
        if kind == "extend_batch_lease":
            return self.batch(conn, rng, w, "extend")
        if kind in ("bound_claim_batch", "bound_claim_next_batch", "bound_unclaim_batch"):
            return self.bbatch(conn, rng, w, {"bound_claim_batch": "claim", "bound_claim_next_batch": "next",
                                              "bound_unclaim_batch": "unclaim"}[kind])
        if kind in ("increment_packing_quantity", "decrement_packing_quantity"):
            session, line = rng.choice(self.pack_lines)
            q = rng.randint(1, 2) if kind.startswith("inc") else 1
            return self.run(conn, kind, dict(p_progress_id=uuid.UUID(line), p_session_id=uuid.UUID(session),
                                             p_quantity=q), "pack", line=line, delta=q if kind.startswith("inc") else -q)
        raise ValueError(kind)

    def worker(self, k):
        rng = random.Random(self.seed * 1000 + k)
        kinds, weights = zip(*OPS)
        w = dict(driver=f"{self.tag}-d{k}", bdriver=f"{self.tag}-b{k}", holds=[], bholds=[], batches={},
                 bbatches=set())
        try:
            conn = connect_app()
        except psycopg.Error:
            return
        while not self.stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            try:
                if kind == "expire_reservations":  # admin only: an operator's scheduled job
                    if "admin" not in w:
                        w["admin"] = connect()
                    op = self.run(w["admin"], kind, {}, "sweep")
                else:
                    op = self.one(conn, rng, w, kind)
            except (Failure, psycopg.Error):
                return  # a read before a call (get_inventory, bound_get) lost the server
            if op is not None and op.state == "unknown":
                return  # this connection is gone; its last call's outcome is settled after recovery
        conn.close()
        if "admin" in w:
            w["admin"].close()

    def due_holds(self, at):
        """Holds made just before the crash that fall due while the server is down."""
        time.sleep(max(0.0, at - time.monotonic()))
        try:
            conn = connect_app()
            for src in ("m", self.inv4):
                self.reserve(conn, self.rng, None, src, ttl=1, due=True)
            conn.close()
        except psycopg.Error:
            pass

    # -- after recovery ------------------------------------------------------

    def retry_keyed(self, a, ck):
        """Retry every keyed call whose answer was lost, with its exact arguments."""
        n = refused = 0
        for op in self.ops:
            if op.state != "unknown" or not op.key:
                continue
            n += 1
            try:
                op.retry_answer, op.retry_state = call(a, op.fn, **op.kw), "ok"
            except Failure as f:
                # refused like any call (stock gone meanwhile, say), never as a
                # conflict: it sends the first call's arguments
                ok = bool(f.sqlstate) and f.sqlstate.startswith("PT") and f.code != "IDEMPOTENCY_CONFLICT"
                ck("keyed_retry_answered", ok, f"{op.fn}: {f.sqlstate} {str(f).splitlines()[0][:120]}")
                if not ok:
                    continue
                op.retry_state, op.code = "refused", f.code
                refused += 1
                continue
            ck("keyed_retry_answered", True)
            if op.cat == "reserve":
                self.new_hold(op, op.x["src"], op.retry_answer)
        return n, refused

    def replay_keyed(self, a, ck):
        """Acknowledged keyed calls sent again after the crash: the first answer, nothing applied."""
        n = 0
        for op in self.ops:
            if op.state == "ok" and op.key:
                n += 1
                try:
                    again = call(a, op.fn, **op.kw)
                except Failure as f:
                    again = f"{f.sqlstate} {f}"
                ck("keyed_call_replays_after_crash", again == op.answer, f"{op.fn} {op.key}: {again} != {op.answer}")
        return n

    def due_set(self):
        """Holds that may still be active by what the clients were told, due by recovery."""
        out = []
        for h in self.holds.values():
            if h.unsettled():
                continue
            states, _, exp, _ = h.walk()
            active = [i for i, s in states.items() if s == "active"]
            if active and exp <= self.t_up:
                out.append((h, active, exp))
        return out

    def wait_for_sweeper(self, a, ck, seconds=20):
        fresh, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            fresh = [t for (t,) in a.execute("SELECT backend_start FROM pg_stat_activity "
                                             "WHERE backend_type = 'atomic_inventory sweeper'").fetchall()
                     if t > self.t_kill]
            if fresh:
                break
            time.sleep(0.2)
        preload = a.execute("SHOW shared_preload_libraries").fetchone()[0]
        ck("sweeper_running_again", bool(fresh),
           f"round {self.n}: no sweeper process started since the crash (shared_preload_libraries = '{preload}')")
        due = self.due_set()
        self.outage = sum(1 for _, _, exp in due if exp > self.t_kill)
        want = {(h.rid, i) for h, active, _ in due for i in active}
        ids = sorted({h.rid for h, _, _ in due})
        left = want
        while True:
            rows = a.execute(f"SELECT reservation_id::text, inventory_id::text, status FROM {S}.reservation_lines "
                             "WHERE reservation_id = ANY(%s::uuid[]) UNION ALL "
                             f"SELECT reservation_id::text, item_key, status FROM {S}.bound_reservation_lines "
                             "WHERE reservation_id = ANY(%s::uuid[])", (ids, ids)).fetchall()
            left = want - {(r, i) for r, i, s in rows if s == "expired"}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        ck("sweeper_expired_what_fell_due", not left,
           f"round {self.n}: {len(left)} of {len(want)} held lines due by recovery still not expired, "
           f"e.g. {sorted(left)[:2]}")
        return len(due)

    def probe_lapsed(self, a, app, ck):
        """A claim whose lease lapsed (during the outage, say) can be claimed again."""
        rows = a.execute(f"SELECT id::text FROM {S}.batches WHERE zone = %s AND status = 'claimed' "
                         "AND lease_expires_at < statement_timestamp() ORDER BY id LIMIT %s", (self.zone, MAX_ACTIVE)).fetchall()
        driver = f"{self.tag}-probe"
        for (b,) in rows:
            op = self.run(app, "claim_batch", dict(p_batch_id=uuid.UUID(b), p_driver_id=driver,
                                                   p_lock_timeout_ms=2000), "batch",
                          driver=driver, batch=b, action="claim")
            self.batch_log[driver].append(op)
            ck("lapsed_claim_claimable_after_recovery", op.state == "ok", f"{b}: {op.state} {op.code}")
            self.probes += op.state == "ok"

    # -- the checks ----------------------------------------------------------

    def verify(self, a, ck):
        now = a.execute("SELECT statement_timestamp()").fetchone()[0]
        for op in self.ops:
            if op.state == "error":
                ck("no_unexpected_errors", False, f"{op.fn}: {op.code}")
        applied = collections.defaultdict(Decimal)  # (src, item) -> applied delta
        self.verify_moves(a, ck, applied)
        committed = self.verify_reservations(a, ck, now)
        for key, q in committed.items():
            applied[key] -= q
        more.verify_transfers(self, a, ck)
        more.verify_transfer_totals(self, a, ck)
        more.verify_shipments(self, a, ck)
        more.verify_kit_row(self, a, ck)
        self.verify_stock(a, ck, applied)
        self.verify_batches(a, ck, now)
        self.verify_bbatches(a, ck)
        self.verify_packing(a, ck)
        self.verify_events(a, ck)

    def verify_events(self, a, ck):
        """Events commit with their movements: with movement_events on (set by
        main), every committed ledger row of the round has exactly one
        movement event and every movement event its ledger row; each item's
        out_of_stock / back_in_stock events alternate, starting in stock, and
        the last one matches its stock now."""
        srcs = [self.inv, self.inv4]
        rows = a.execute(
            f"SELECT l.id, (SELECT count(*) FROM {S}.events e WHERE e.kind = 'movement' AND e.ledger_id = l.id) "
            f"FROM {S}.ledger l WHERE l.inventory_id = ANY(%s::uuid[]) OR l.source = ANY(%s)",
            (self.items, srcs)).fetchall()
        missing = [i for i, n in rows if n == 0]
        twice = [i for i, n in rows if n > 1]
        ck("every_committed_movement_has_its_event", rows and not missing,
           f"{len(missing)} of {len(rows)} ledger rows without a movement event, e.g. {missing[:3]}")
        ck("movement_event_written_once", not twice, f"ledger rows with several movement events: {twice[:3]}")
        orphans = [e for (e,) in a.execute(
            f"SELECT e.id FROM {S}.events e WHERE e.kind = 'movement' "
            f"AND (e.inventory_id = ANY(%s::uuid[]) OR e.detail->>'source' = ANY(%s)) "
            f"AND NOT EXISTS (SELECT FROM {S}.ledger l WHERE l.id = e.ledger_id)", (self.items, srcs)).fetchall()]
        ck("no_event_without_its_movement", not orphans, f"movement events whose ledger row is gone: {orphans[:3]}")
        for item in self.items:
            kinds = [k for (k,) in a.execute(
                f"SELECT kind FROM {S}.events WHERE inventory_id = %s AND kind IN ('out_of_stock', 'back_in_stock') "
                "AND location_id IS NULL ORDER BY id", (item,)).fetchall()]  # the default location's
            free = a.execute(f"SELECT quantity - reserved FROM {S}.items WHERE id = %s", (item,)).fetchone()[0]
            alternate = all(k == ("out_of_stock" if j % 2 == 0 else "back_in_stock") for j, k in enumerate(kinds))
            ck("stock_crossings_alternate_and_match_stock", alternate and (free <= 0) == (len(kinds) % 2 == 1),
               f"{item}: {kinds}, available now {free}")

    def verify_moves(self, a, ck, applied):
        moves = [op for op in self.ops if op.cat == "move"]
        led = collections.defaultdict(dict)
        for ref, item, n, s in a.execute(
                f"SELECT reference, coalesce(inventory_id::text, item_key), count(*), sum(delta) FROM {S}.ledger "
                "WHERE reference = ANY(%s) GROUP BY 1, 2", ([op.x["ref"] for op in moves],)).fetchall():
            led[ref][item] = (n, s)
        for op in moves:
            got = led.get(op.x["ref"], {})
            # rows = lines: a line taken from several locations (the default
            # one short) has a row per location; their sum is the line's
            n = len(got)
            sums = {i: D(s) for i, (_, s) in got.items()}
            st, ans = op.final()
            want = {i: D(ans["delta"]) if d is None else D(d) for i, d in op.x["changes"]} if st == "ok" else None
            info = (f"{op.fn} {op.x['ref']}: {sum(c for c, _ in got.values())} ledger rows of {n} items {sums}, "
                    f"want {op.x['rows']} {want}")
            kit = op.x.get("kit")  # a kit sale: a ledger row per component
            if op.state == "ok":
                ck("acknowledged_kit_sale_applied_once" if kit else "acknowledged_movement_applied_once",
                   n == op.x["rows"] and sums == want and (not kit or kit_answer(ans) == want), info)
            elif op.state == "refused":
                ck("refused_movement_applied_nothing", n == 0, info)
            elif op.state == "unknown" and st == "ok":
                ck("keyed_retry_applied_once", n == op.x["rows"] and sums == want, info)
            elif op.state == "unknown" and st == "refused":
                ck("keyed_retry_applied_once", n == 0, info + " (the retry was refused)")
            elif op.state == "unknown":
                req = {i: D(d) for i, d in op.x["changes"] if d is not None}
                ck("unacknowledged_kit_sale_all_or_nothing" if kit else "unacknowledged_movement_all_or_nothing",
                   n == 0 or (n == op.x["rows"] and all(sums.get(i) == d for i, d in req.items())), info)
                want = sums if n == op.x["rows"] else None
                if want:
                    self.applied.add(id(op))
            if want:
                for i, d in want.items():
                    applied[(op.x["src"], i)] += d

    def verify_reservations(self, a, ck, now):
        """Returns the committed units per (src, item)."""
        res = {r: (st, src, ref, exp, due) for r, st, src, ref, exp, due in a.execute(
            f"SELECT id::text, status, coalesce(source, 'm'), reference, expires_at, expires_at <= statement_timestamp() "
            f"FROM {S}.reservations WHERE reference LIKE %s", (self.tag + "-%",)).fetchall()}
        ids = sorted(res)
        lines = collections.defaultdict(dict)
        units = collections.defaultdict(dict)  # the units each line committed and released so far
        for r, i, q, st, cq, rq in a.execute(
                f"SELECT reservation_id::text, inventory_id::text, quantity, status, committed_quantity, "
                f"released_quantity FROM {S}.reservation_lines WHERE reservation_id = ANY(%s::uuid[]) UNION ALL "
                f"SELECT reservation_id::text, item_key, quantity, status, committed_quantity, released_quantity "
                f"FROM {S}.bound_reservation_lines WHERE reservation_id = ANY(%s::uuid[])", (ids, ids)).fetchall():
            lines[r][i] = (D(q), st)
            units[r][i] = (D(cq), D(rq))
        commits = {(r, i): (n, D(s)) for r, i, n, s in a.execute(
            f"SELECT reference, coalesce(inventory_id::text, item_key), count(*), sum(delta) FROM {S}.ledger "
            "WHERE kind = 'commit' AND reference = ANY(%s) GROUP BY 1, 2", (ids,)).fetchall()}
        by_ref = collections.defaultdict(list)
        for r, (_, _, ref, _, _) in res.items():
            by_ref[ref].append(r)
        # each reserve: all or nothing, with all its lines
        for op in (o for o in self.ops if o.cat == "reserve"):
            found = by_ref.get(op.x["ref"], [])
            st, ans = op.final()
            # what it holds, or held when it finished (a line committed from
            # in parts holds less: line_units_add_up checks those)
            got = {i: (q if units[found[0]][i][0] == 0 else "partly committed")
                   for i, (q, _) in lines.get(found[0], {}).items()} if found else None
            info = f"{op.fn} {op.x['ref']}: {len(found)} reservations, lines {got}"
            if st == "ok":
                name = "reserve_all_or_nothing" if op.state == "ok" else "keyed_retry_applied_once"
                ck(name, found == [ans["reservation_id"]] and same_lines(got, answer_lines(ans)),
                   info + f", answered {ans['reservation_id']} {answer_lines(ans)}")
            elif st == "refused":
                ck("reserve_all_or_nothing" if op.state == "refused" else "keyed_retry_applied_once",
                   not found, info + " (refused)")
            else:
                ck("reserve_all_or_nothing", not found or (len(found) == 1 and same_lines(got, op.x["lines"])),
                   info + f", asked {op.x['lines']} (unacknowledged)")
                if len(found) == 1 and found[0] not in self.holds:
                    self.holds[found[0]] = Hold(found[0], op.x["src"], got, None, op)
                if found:
                    self.applied.add(id(op))
        # every reservation: its status follows its lines; a line's commit
        # ledger rows (one per commit, partial ones too) add up to its
        # committed units; a committed line sold some
        committed = collections.defaultdict(Decimal)
        for r, (st, src, _, _, _) in res.items():
            ls = lines.get(r, {})
            sts = {s for _, s in ls.values()}
            sold = any(units[r][i][0] > 0 for i in ls)  # (a line committed in part, then released, sold some)
            want = ("active" if "active" in sts else "committed" if "committed" in sts or sold else None)
            ck("reservation_status_matches_lines", ls and (st == want if want else st in sts),
               f"{r}: status {st}, lines {sorted(sts) or 'none'}")
            for i, (q, s) in ls.items():
                n, d = commits.get((r, i), (0, Decimal(0)))
                cq = units[r][i][0]
                ck("commit_has_its_sale", -d == cq and (n == 0) == (cq == 0) and (s != "committed" or cq > 0),
                   f"{r} {i}: line {s} {q}, {cq} committed, {n} commit ledger rows ({d})")
                committed[(src, i)] += cq
            for (r2, i) in commits:
                if r2 == r and i not in ls:
                    ck("commit_has_its_sale", False, f"{r} {i}: a commit ledger row without a line")
        # every hold: what the clients were told stands; the unacknowledged call all or nothing
        for h in self.holds.values():
            if h.rid not in res:
                continue  # reported above
            st, _, _, exp, due = res[h.rid]
            states, unk, want_exp, ext_unknown = h.walk()
            ls = lines.get(h.rid, {})
            bad = []
            for i, m in states.items():
                s = ls.get(i, (None, None))[1]
                if m != "active":
                    ok = s == m
                else:
                    ok = s == "active" or (s == "expired" and due) or (
                        unk is not None and i in unk.x["targets"] and s == DONE[unk.x["action"]])
                if not ok:
                    bad.append(f"{i}: told {m}, is {s}{' before its expiry' if s == 'expired' else ''}")
            if unk is not None:
                moved = [i for i in unk.x["targets"] if ls.get(i, (None, None))[1] == DONE[unk.x["action"]]]
                if len(moved) not in (0, len(unk.x["targets"])):
                    bad.append(f"unacknowledged {unk.fn}: {len(moved)} of {len(unk.x['targets'])} lines")
                elif moved:
                    self.applied.add(id(unk))
            ck("finished_lines_stand", not bad, f"{h.rid}: {'; '.join(bad)}" + (self.calls_on(h) if bad else ""))
            self.verify_line_units(ck, h, ls, units[h.rid], commits, unk)
            if want_exp is not None:
                ok = exp == want_exp
                if not ok and ext_unknown is not None:  # set by the extend in flight: now() + its ttl
                    at = exp.timestamp() - ext_unknown.kw["p_ttl_seconds"]
                    ok = ext_unknown.t0 - 0.5 <= at <= ext_unknown.t1 + 0.5
                ck("extend_stands", ok, f"{h.rid}: expires {exp}, told {want_exp}" + ("" if ok else self.calls_on(h)))
        # reserved = the active held lines, per level: the item's own row
        # holds the lines at the default location (location_id NULL), each
        # stock_levels row those at its location
        for i, loc, r, held in a.execute(
                f"WITH v AS (SELECT i.id, NULL::uuid AS loc, i.reserved FROM {S}.items i "
                f"            WHERE i.id = ANY(%(items)s::uuid[]) "
                f"           UNION ALL SELECT l.item_id, l.location_id, l.reserved FROM {S}.stock_levels l "
                f"            WHERE l.item_id = ANY(%(items)s::uuid[])) "
                f"SELECT v.id::text, coalesce(v.loc::text, 'default'), v.reserved, "
                f"       coalesce((SELECT sum(l.quantity) FROM {S}.reservation_lines l WHERE l.inventory_id = v.id "
                f"                  AND l.location_id IS NOT DISTINCT FROM v.loc "
                f"                  AND l.status = 'active' AND l.tracked), 0) FROM v",
                {"items": self.items}).fetchall():
            ck("reserved_equals_active_lines", r == held, f"item {i} at {loc}: reserved {r}, active lines {held}")
        held = dict(a.execute(
            f"SELECT l.item_key, sum(l.quantity) FROM {S}.bound_reservation_lines l JOIN {S}.reservations r "
            "ON r.id = l.reservation_id WHERE r.source = %s AND l.status = 'active' AND l.tracked GROUP BY 1",
            (self.inv4,)).fetchall())
        for i, r in a.execute(f'SELECT id, reserved FROM {self.tag}."Inventory"').fetchall():
            ck("reserved_equals_active_lines", r == APP_HELD + held.get(i, 0),
               f"{self.inv4} {i}: reserved {r}, app-held {APP_HELD} + active lines {held.get(i, 0)}")
        return committed

    def verify_line_units(self, ck, h, ls, units, commits, unk):
        """A hold's commits, partial ones too: each line's commit ledger rows
        are its acknowledged (or retried) commits' and perhaps the
        unacknowledged one's; its committed, released and still held units
        add up to what it was reserved with."""
        acked = collections.defaultdict(list)
        for op in h.ops:
            st, ans = op.final()
            if op.cat == "finish" and op.x["action"] == "commit" and st == "ok":
                for l in ans["committed"]:
                    acked[line_id(l)].append(D(l["quantity"]))
        for i, reserved in h.lines.items():
            if i not in ls:
                continue  # reported by reserve_all_or_nothing
            n, d = commits.get((h.rid, i), (0, Decimal(0)))
            k, sold = len(acked[i]), sum(acked[i], Decimal(0))
            ok = n == k and -d == sold
            if not ok and unk is not None and unk.x["action"] == "commit" and i in unk.x["targets"]:
                part = unk.x.get("partial")  # the commit in flight: one more row, of its units if it named them
                ok = n == k + 1 and -d > sold and (part is None or -d == sold + part[1])
                if ok:
                    self.applied.add(id(unk))
            ck("commit_rows_match_commits", ok,
               f"{h.rid} {i}: {n} commit ledger rows ({d}); acknowledged commits {acked[i]}"
               + (f", {unk.fn} in flight" if unk is not None else "") + ("" if ok else self.calls_on(h)))
            (q, s), (cq, rq) = ls[i], units[i]
            ck("line_units_add_up", cq + rq + (q if s == "active" else 0) == reserved,
               f"{h.rid} {i}: {s}, {cq} committed + {rq} released + {q if s == 'active' else 0} held, "
               f"reserved with {reserved}")

    def calls_on(self, h):
        """The calls on a hold, with their times from the crash, for a failure's details."""
        kill = self.t_kill.timestamp() if self.t_kill else 0
        return "; calls (seconds from the crash): " + " | ".join(
            f"{op.fn} {op.state}{' ' + op.code if op.code else ''} {op.t0 - kill:+.3f}..{op.t1 - kill:+.3f} "
            f"{(op.answer or {}).get('expires_at')}" for op in [h.reserve_op] + h.ops)

    def verify_stock(self, a, ck, applied):
        # an item's quantity over all its locations: its own row (the default
        # location's) and its stock_levels rows (transfers move units between
        # them; a sale without a location takes from the others once the
        # default one runs short); reserved is the own row's
        rows = [("m", i, q, r, lim) for i, q, r, lim in a.execute(
            f"SELECT id::text, quantity + coalesce((SELECT sum(l.quantity) FROM {S}.stock_levels l "
            f"WHERE l.item_id = i.id), 0) + coalesce((SELECT sum(t.quantity) FROM {S}.transfers t "
            f"WHERE t.item_id = i.id AND t.status = 'shipped'), 0), reserved, backorder_limit "
            f"FROM {S}.items i WHERE id = ANY(%s::uuid[])",
            (self.items,)).fetchall()]
        rows += [(self.inv, i, q, 0, 0) for i, q in a.execute(
            f"SELECT id::text, quantity FROM {self.tag}.inventory").fetchall()]
        rows += [(self.inv4, i, q, r, 0) for i, q, r in a.execute(
            f'SELECT id, quantity, reserved FROM {self.tag}."Inventory"').fetchall()]
        for src, i, q, r, lim in rows:
            want = self.initial[(src, i)] + applied[(src, i)]
            ck("quantity_is_initial_plus_applied", D(q) == want, f"{src} {i}: {q}, clients' record {want}")
            # a backorder limit lets sales and holds take quantity below 0, down to reserved - limit
            ck("stock_never_below_reserved", 0 <= r <= q + lim,
               f"{src} {i}: quantity {q}, reserved {r}, backorder limit {lim}")
        # (reconcile() reports per level: the default row and each location's)
        drift = a.execute(f"SELECT inventory_id::text, drift, reserved_drift FROM {S}.reconcile() "
                          "WHERE inventory_id = ANY(%s::uuid[])", (self.items,)).fetchall()
        ck("reconcile_empty", not drift, f"round {self.n}: {drift[:3]}")
        for src in (self.inv, self.inv4):
            drift = a.execute(f"SELECT * FROM {S}.reconcile_source(%s)", (src,)).fetchall()
            ck("reconcile_source_empty", not drift, f"{src}: {drift[:3]}")

    def last_calls(self, log):
        """(driver, batch) -> that driver's last call on it that was not refused
        (a refused call changes nothing, nor does one that failed otherwise:
        its transaction rolled back); drivers whose last call was an
        unacknowledged claim-next (they may hold any batch)."""
        last, anyb = {}, set()
        for driver, ops in log.items():
            for op in ops:
                if op.state == "unknown" and op.x["batch"] is None:
                    anyb.add(driver)
                elif op.state not in ("refused", "error") and op.x["batch"] is not None:
                    last[(driver, op.x["batch"])] = op
        per = collections.defaultdict(dict)
        for (d, b), op in last.items():
            per[b][d] = op
        return per, anyb

    @staticmethod
    def history(log, b):
        out = []
        for d, ops in log.items():
            for op in ops:
                if op.x["batch"] == b or (op.x["batch"] is None and op.state == "unknown"):
                    ans = op.answer or {}
                    out.append(f"{d} {op.fn} {op.state}{' ' + op.code if op.code else ''} "
                               f"{ans.get('status', '')} at {ans.get('claimed_at', '')} lease {ans.get('lease_expires_at')}")
        return " | ".join(out)

    def verify_batches(self, a, ck, now):
        per, anyb = self.last_calls(self.batch_log)
        for b, st, who, lease in a.execute(f"SELECT id::text, status, claimed_by, lease_expires_at FROM {S}.batches "
                                           "WHERE zone = %s", (self.zone,)).fetchall():
            believed, allowed, bad = set(), set(anyb), []
            for d, op in per.get(b, {}).items():
                act = op.x["action"]
                if op.state == "unknown":
                    allowed.add(d)
                elif act == "claim":
                    allowed.add(d)
                    le = ts(op.answer.get("lease_expires_at"))
                    if le is None or le > now:
                        believed.add(d)
                elif act == "start":
                    allowed.add(d)
                    believed.add(d)
                    if st != "in_progress" or who != d:
                        bad.append(f"{d} was told it started it; {st} by {who}")
                elif act == "complete":
                    allowed.add(d)
                    if st != "completed" or who != d:
                        bad.append(f"{d} was told it completed it; {st} by {who}")
                elif act == "extend":  # its last call: a heartbeat (30 or 600 s)
                    allowed.add(d)
                    want = ts(op.answer["lease_expires_at"])
                    if want > now:  # (a later check, after later crashes, may find it lapsed)
                        believed.add(d)
                        ck("lease_extension_stands", st in ("claimed", "in_progress") and who == d
                           and lease is not None and lease >= want,
                           f"batch {b}: {d} was told its lease runs to {want}; {st} by {who}, lease {lease}; calls: "
                           + self.history(self.batch_log, b))
                elif act == "unclaim" and who == d and st in ("claimed", "in_progress") and d not in anyb:
                    bad.append(f"{d} was told it gave it back; {st} by {d}")
            if who is not None and who not in allowed:
                bad.append(f"{st} by {who}, who was told nothing of it")
            ok = len(believed) <= 1 and (not believed or (who in believed and st in ("claimed", "in_progress")))
            hist = "" if ok and not bad else "; calls: " + self.history(self.batch_log, b)
            ck("batch_ops_stand", not bad, f"batch {b}: {'; '.join(bad)}{hist}")
            ck("batch_held_by_at_most_one_driver", ok,
               f"batch {b}: drivers told they hold it {sorted(believed)}; {st} by {who}{hist}")
        over = a.execute(f"SELECT claimed_by, count(*) FROM {S}.batches WHERE zone = %s AND (status = 'in_progress' "
                         "OR (status = 'claimed' AND (lease_expires_at IS NULL OR lease_expires_at > statement_timestamp()))) "
                         "GROUP BY 1 HAVING count(*) > %s", (self.zone, MAX_ACTIVE)).fetchall()
        ck("driver_within_limit", not over, f"round {self.n}: {over}")

    def verify_bbatches(self, a, ck):
        per, anyb = self.last_calls(self.bbatch_log)
        for b, st, who in a.execute(f"SELECT id::text, status, driver_id FROM {self.tag}.batches").fetchall():
            believed, allowed, bad = set(), set(anyb), []
            for d, op in per.get(b, {}).items():
                if op.state == "unknown":
                    allowed.add(d)
                elif op.x["action"] == "claim":
                    allowed.add(d)
                    believed.add(d)
                elif who == d and d not in anyb:
                    bad.append(f"{d} was told it gave it back; {st} by {d}")
            if who is not None and who not in allowed:
                bad.append(f"{st} by {who}, who was told nothing of it")
            ck("batch_ops_stand", not bad, f"{self.bsrc} {b}: {'; '.join(bad)}")
            ck("batch_held_by_at_most_one_driver",
               len(believed) <= 1 and (not believed or (who in believed and st == "claimed")),
               f"{self.bsrc} {b}: drivers told they hold it {sorted(believed)}; {st} by {who}")

    def verify_packing(self, a, ck):
        net, unknown = collections.defaultdict(int), collections.defaultdict(list)
        for op in self.ops:
            if op.cat == "pack":
                if op.state == "ok":
                    net[op.x["line"]] += op.x["delta"]
                elif op.state == "unknown":
                    unknown[op.x["line"]].append(op.x["delta"])
        for session, lines in self.packing:
            rows = a.execute(f"SELECT id::text, quantity_packed, quantity_needed FROM {S}.packing_progress "
                             "WHERE picking_session_id = %s", (session,)).fetchall()
            picked = a.execute(f"SELECT sum(quantity_picked) FROM {S}.picking_session_items "
                               "WHERE picking_session_id = %s", (session,)).fetchone()[0]
            packed = sum(p for _, p, _ in rows)
            ck("packed_within_needed_and_picked", packed <= picked and all(0 <= p <= n for _, p, n in rows),
               f"session {session}: packed {packed} of {picked} picked; lines {[(p, n) for _, p, n in rows]}")
            for line, p, _ in rows:
                sums = {sum(c) for k in range(len(unknown[line]) + 1) for c in itertools.combinations(unknown[line], k)}
                ck("packed_equals_acknowledged_clicks", p - net[line] in sums,
                   f"line {line}: packed {p}, acknowledged {net[line]:+d}, unacknowledged {unknown[line]}")

    def figures(self):
        f = collections.defaultdict(collections.Counter)
        for op in self.ops:
            c = f[op.x.get("label", op.fn)]
            c["calls"] += 1
            c[op.state] += 1
            if op.key:
                c["keyed"] += 1
                c["keyed ok"] += op.state == "ok"
            if op.state == "unknown" and op.retry_state:
                c["retried"] += 1
            c["applied"] += id(op) in self.applied
        return f


# -- fault injection ------------------------------------------------------------


def pick(seq, what):
    seq = list(seq)
    if not seq:
        raise NoTarget(what)
    return seq[0]


def ledger_copy(a, ref):
    a.execute(f"INSERT INTO {S}.ledger (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, "
              "tenant_id, source, item_key) SELECT inventory_id, delta, quantity_after, kind, reason, reference, "
              f"idempotency_key, tenant_id, source, item_key FROM {S}.ledger WHERE reference = %s ORDER BY id LIMIT 1",
              (ref,))


def inj_extra_ledger_row(a, rd):
    op = pick((o for o in rd.ops if o.cat == "move" and o.state == "ok"), "an acknowledged movement")
    ledger_copy(a, op.x["ref"])
    return f"a second ledger row for the acknowledged {op.fn} {op.x['ref']}"


def inj_refused_applied(a, rd):
    op = pick((o for o in rd.ops if o.cat == "move" and o.state == "refused"), "a refused movement")
    i, d = op.x["changes"][0]
    src = op.x["src"]
    a.execute(f"INSERT INTO {S}.ledger (inventory_id, source, item_key, delta, kind, reference) VALUES (%s, %s, %s, %s, "
              "'decrement', %s)", (i if src == "m" else None, None if src == "m" else src, None if src == "m" else i,
                                   d if d is not None else -1, op.x["ref"]))
    return f"a ledger row for the refused ({op.code}) {op.fn} {op.x['ref']}"


def inj_half_applied(a, rd):
    cand = [o for o in rd.ops if o.cat == "move" and o.state == "unknown" and not o.key]
    op = pick(sorted(cand, key=lambda o: -o.x["rows"]), "an unacknowledged movement without a key")
    n = a.execute(f"SELECT count(*) FROM {S}.ledger WHERE reference = %s", (op.x["ref"],)).fetchone()[0]
    want = 1 if op.x["rows"] > 1 else 2
    if n > want:
        a.execute(f"DELETE FROM {S}.ledger WHERE id IN (SELECT id FROM {S}.ledger WHERE reference = %s ORDER BY id "
                  "LIMIT %s)", (op.x["ref"], n - want))
    else:
        src, (i, d) = op.x["src"], op.x["changes"][0]
        for _ in range(want - n):
            a.execute(f"INSERT INTO {S}.ledger (inventory_id, source, item_key, delta, kind, reference) "
                      "VALUES (%s, %s, %s, %s, 'decrement', %s)",
                      (i if src == "m" else None, None if src == "m" else src, None if src == "m" else i,
                       d if d is not None else -1, op.x["ref"]))
    return f"the unacknowledged {op.fn} {op.x['ref']} ({op.x['rows']} lines, {n} applied) left with {want} ledger rows"


def inj_keyed_retry_twice(a, rd):
    op = pick((o for o in rd.ops if o.cat == "move" and o.state == "unknown" and o.retry_state == "ok"),
              "a keyed movement retried after the crash")
    ledger_copy(a, op.x["ref"])
    return f"the retried {op.fn} {op.x['ref']} applied a second time"


def inj_stale_replay(a, rd):
    op = pick((o for o in rd.ops if o.state == "ok" and o.key), "an acknowledged keyed call")
    a.execute(f"UPDATE {S}.idempotency_keys SET response = (response::jsonb || '{{\"injected\": true}}')::json "
              "WHERE idempotency_key = %s", (op.key,))
    return f"the stored answer of the acknowledged {op.fn} {op.key} changed"


def inj_stock_drift(a, rd):
    a.execute(f"UPDATE {S}.items SET quantity = quantity + 1 WHERE id = %s", (rd.items[0],))
    return f"item {rd.items[0]}: one unit more than its ledger and the clients' record"


def inj_bound_stock_drift(a, rd):
    a.execute(f"UPDATE {rd.tag}.inventory SET quantity = quantity + 1 WHERE id = %s", (rd.binv[0],))
    return f"{rd.inv} {rd.binv[0]}: one unit more than its ledger and the clients' record"


def inj_ledger_without_stock(a, rd):
    a.execute(f"INSERT INTO {S}.ledger (inventory_id, delta, kind, reference) VALUES (%s, -1, 'decrement', %s)",
              (rd.items[1], f"injected-{rd.tag}"))
    return f"a ledger row of -1 for item {rd.items[1]} without its stock change"


def inj_reserved_off_by_one(a, rd):
    i, r = pick(a.execute(f"SELECT id::text, reserved FROM {S}.items WHERE id = ANY(%s::uuid[]) AND reserved > 0 "
                          "ORDER BY id", (rd.items,)).fetchall(), "an item with held units")
    a.execute(f"UPDATE {S}.items SET reserved = reserved - 1 WHERE id = %s", (i,))
    return f"item {i}: reserved {r} -> {r - 1}"


def inj_bound_reserved_off_by_one(a, rd):
    i = rd.binv4[0]
    a.execute(f'UPDATE {rd.tag}."Inventory" SET reserved = reserved + 1 WHERE id = %s', (i,))
    return f"{rd.inv4} {i}: reserved one more"


def finished_holds(a, rd, src="m", min_lines=1):
    """Acknowledged holds whose lines all ended released or expired."""
    out = []
    for h in rd.holds.values():
        if h.src != src or h.reserve_op.state != "ok" or len(h.lines) < min_lines:
            continue
        sts = {s for (s,) in a.execute(f"SELECT status FROM {S}.reservation_lines WHERE reservation_id = %s",
                                       (h.rid,)).fetchall()}
        if sts and sts <= {"released", "expired"}:
            out.append(h)
    return out


def inj_reservation_without_lines(a, rd):
    h = pick(finished_holds(a, rd), "a released or expired reservation")
    a.execute(f"DELETE FROM {S}.reservation_lines WHERE reservation_id = %s", (h.rid,))
    return f"reservation {h.rid}: its {len(h.lines)} lines deleted"


def inj_dropped_reservation_line(a, rd):
    h = pick(finished_holds(a, rd, min_lines=2), "a released or expired reservation of two lines")
    i = sorted(h.lines)[0]
    a.execute(f"DELETE FROM {S}.reservation_lines WHERE reservation_id = %s AND inventory_id = %s", (h.rid, i))
    return f"reservation {h.rid}: line {i} deleted"


def inj_commit_without_sale(a, rd):
    r, i = pick(a.execute(f"SELECT l.reservation_id::text, l.inventory_id::text FROM {S}.reservation_lines l "
                          f"JOIN {S}.reservations r ON r.id = l.reservation_id WHERE r.reference LIKE %s "
                          "AND l.status = 'committed' ORDER BY 1, 2", (rd.tag + "-%",)).fetchall(), "a committed line")
    a.execute(f"DELETE FROM {S}.ledger WHERE kind = 'commit' AND reference = %s AND inventory_id = %s", (r, i))
    return f"reservation {r}: the commit ledger row of line {i} deleted"


def inj_release_undone(a, rd):
    cand = []
    for h in rd.holds.values():
        for op in h.ops:
            if h.src == "m" and op.cat == "finish" and op.x["action"] == "release" and op.state == "ok":
                cand += [(h, l["inventory_id"], l["quantity"]) for l in op.answer["released"]]
    h, i, q = pick(cand, "an acknowledged release")
    a.execute(f"UPDATE {S}.reservation_lines SET status = 'active' WHERE reservation_id = %s AND inventory_id = %s",
              (h.rid, i))
    a.execute(f"UPDATE {S}.reservations SET status = 'active' WHERE id = %s", (h.rid,))
    a.execute(f"UPDATE {S}.items SET reserved = reserved + %s WHERE id = %s", (q, i))
    return f"reservation {h.rid}: released line {i} active again (and its {q} units held)"


def inj_extend_lost(a, rd):
    h = pick((h for h in rd.holds.values() if any(o.cat == "extend" and o.state == "ok" for o in h.ops)),
             "an acknowledged extend")
    a.execute(f"UPDATE {S}.reservations SET expires_at = expires_at - interval '1 minute' WHERE id = %s", (h.rid,))
    return f"reservation {h.rid}: expires a minute before what extend_reservation answered"


def inj_commit_row_twice(a, rd):
    op = pick((o for h in rd.holds.values() for o in h.ops if o.x.get("partial") and o.state == "ok"
               and o.answer["committed"]), "an acknowledged partial commit")
    i = op.x["partial"][0]
    a.execute(f"INSERT INTO {S}.ledger (inventory_id, delta, quantity_after, kind, reason, reference, tenant_id) "
              f"SELECT inventory_id, delta, quantity_after, kind, reason, reference, tenant_id FROM {S}.ledger "
              "WHERE kind = 'commit' AND reference = %s AND inventory_id = %s ORDER BY id LIMIT 1", (op.x["hold"], i))
    return f"reservation {op.x['hold']}: the commit ledger row of the partial commit of line {i} written twice"


def inj_line_units_lost(a, rd):
    r, i = pick(a.execute(f"SELECT l.reservation_id::text, l.inventory_id::text FROM {S}.reservation_lines l "
                          "WHERE l.reservation_id = ANY(%s::uuid[]) AND l.status IN ('released', 'expired') "
                          "ORDER BY 1, 2", (sorted(rd.holds),)).fetchall(), "a released or expired line")
    a.execute(f"UPDATE {S}.reservation_lines SET released_quantity = released_quantity + 1 "
              "WHERE reservation_id = %s AND inventory_id = %s", (r, i))
    return f"reservation {r}: line {i} counts one unit more given back than it held"


def inj_lease_extension_lost(a, rd):
    per, _ = rd.last_calls(rd.batch_log)
    b = pick(sorted(b for b, ds in per.items() for d, op in ds.items() if op.x["action"] == "extend"
                    and op.state == "ok"), "a batch whose driver's last call was an acknowledged heartbeat")
    a.execute(f"UPDATE {S}.batches SET lease_expires_at = lease_expires_at - interval '1 second' WHERE id = %s", (b,))
    return f"batch {b}: its lease a second shorter than extend_batch_lease answered"


def believed(rd, log, actions):
    out = []
    for driver, ops in log.items():
        for op in ops:
            if op.state == "ok" and op.x["batch"] and op.x["action"] in actions:
                out.append((driver, op.x["batch"], op))
    return out


def inj_second_driver(a, rd):
    d, b, _ = pick((t for t in believed(rd, rd.batch_log, ("start",))
                    if a.execute(f"SELECT status = 'in_progress' AND claimed_by = %s FROM {S}.batches WHERE id = %s",
                                 (t[0], t[1])).fetchone()[0]), "a started batch")
    other = f"{rd.tag}-d-other"
    a.execute(f"UPDATE {S}.batches SET claimed_by = %s WHERE id = %s", (other, b))
    return f"batch {b}, started by {d}, now held by {other}"


def inj_bound_second_driver(a, rd):
    d, b, _ = pick((t for t in believed(rd, rd.bbatch_log, ("claim",))
                    if a.execute(f"SELECT driver_id = %s FROM {rd.tag}.batches WHERE id = %s",
                                 (t[0], t[1])).fetchone()[0]), "a claimed bound batch")
    other = f"{rd.tag}-b-other"
    a.execute(f"UPDATE {rd.tag}.batches SET driver_id = %s WHERE id = %s", (other, b))
    return f"{rd.bsrc} batch {b}, claimed by {d}, now held by {other}"


def inj_driver_over_limit(a, rd):
    d = f"{rd.tag}-d0"
    for _ in range(MAX_ACTIVE + 1):
        b = call(a, "create_batch", p_zone=rd.zone)["batch_id"]
        a.execute(f"UPDATE {S}.batches SET status = 'claimed', claimed_by = %s, claimed_at = now() WHERE id = %s", (d, b))
    return f"{MAX_ACTIVE + 1} more batches claimed by {d} without a lease"


def inj_completed_batch_reopened(a, rd):
    d, b, _ = pick(believed(rd, rd.batch_log, ("complete",)), "a completed batch")
    a.execute(f"UPDATE {S}.batches SET status = 'available', claimed_by = NULL, claimed_at = NULL, "
              "completed_at = NULL, lease_expires_at = NULL WHERE id = %s", (b,))
    return f"batch {b}, completed by {d}, available again"


def inj_packed_over_picked(a, rd):
    s, packed = pick(a.execute(f"SELECT picking_session_id::text, sum(quantity_packed) FROM {S}.packing_progress "
                               "WHERE picking_session_id = ANY(%s::uuid[]) GROUP BY 1 HAVING sum(quantity_packed) > 0 "
                               "ORDER BY 1", ([s for s, _ in rd.packing],)).fetchall(), "a session with packed units")
    a.execute(f"UPDATE {S}.picking_session_items SET quantity_picked = %s WHERE picking_session_id = %s",
              (packed - 1, s))
    return f"session {s}: {packed} packed, the basket lowered to {packed - 1} picked"


def inj_packed_over_needed(a, rd):
    _, line = rd.pack_lines[0]
    a.execute(f"ALTER TABLE {S}.packing_progress DROP CONSTRAINT IF EXISTS packing_progress_packed_valid")
    a.execute(f"UPDATE {S}.packing_progress SET quantity_packed = quantity_needed + 1 WHERE id = %s", (line,))
    return f"line {line}: packed one above needed (its CHECK dropped)"


def inj_lost_click(a, rd):
    line = pick(a.execute(f"SELECT id::text FROM {S}.packing_progress WHERE id = ANY(%s::uuid[]) AND quantity_packed > 0 "
                          "ORDER BY id", ([l for _, l in rd.pack_lines],)).fetchall(), "a packed line")[0]
    a.execute(f"UPDATE {S}.packing_progress SET quantity_packed = quantity_packed - 1 WHERE id = %s", (line,))
    return f"line {line}: one acknowledged click lost"


def inj_stopped_sweeper(a, rd):
    a.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
    return "the sweeper terminated as the server came back (it exits 0, so PostgreSQL does not start it again)"


def inj_unexpected_errors(a, rd):
    a.execute(f"ALTER ROLE {APP} SET statement_timeout = '1ms'")
    rd.cleanup.append(lambda c: c.execute(f"ALTER ROLE {APP} RESET statement_timeout"))
    return "the workload's role given statement_timeout = 1ms: its calls are canceled (57014)"


def inj_retry_conflict(a, rd):
    op = pick((o for o in rd.ops if o.state == "unknown" and o.key), "a keyed call in flight at the crash")
    a.execute(f"INSERT INTO {S}.idempotency_keys (tenant_scope, idempotency_key, function_name, request, response) "
              "VALUES ('', %s, %s, '{\"injected\": true}', '{}') ON CONFLICT (tenant_scope, idempotency_key) "
              "DO UPDATE SET request = '{\"injected\": true}', response = '{}'", (op.key, op.fn))
    return f"the key of the {op.fn} in flight ({op.key}) now stored with other arguments"


def inj_sweeper_misses_due(a, rd):
    ids = [h.rid for h, _, _ in rd.due_set()]
    if not ids:
        raise NoTarget("a hold due by recovery")
    a.execute(f"UPDATE {S}.reservations SET expires_at = expires_at + interval '1 hour' WHERE id = ANY(%s::uuid[])",
              (ids,))
    return f"{len(ids)} holds due by recovery moved an hour ahead, out of the sweeper's sight"


def inj_bound_reserved_above_quantity(a, rd):
    i = rd.binv4[1]
    a.execute(f'UPDATE {rd.tag}."Inventory" SET reserved = quantity + 1 WHERE id = %s', (i,))
    return f"{rd.inv4} {i}: reserved one above its quantity"


def inj_movement_event_lost(a, rd):
    ev = a.execute(f"DELETE FROM {S}.events WHERE id = (SELECT max(id) FROM {S}.events WHERE kind = 'movement' "
                   "AND inventory_id = ANY(%s::uuid[])) RETURNING ledger_id", (rd.items,)).fetchone()
    if not ev:
        raise NoTarget("no movement event")
    return f"deleted the movement event of ledger row {ev[0]}"


def inj_crossing_event_lost(a, rd):
    ev = a.execute(f"DELETE FROM {S}.events WHERE id = (SELECT max(id) FROM {S}.events "
                   "WHERE kind IN ('out_of_stock', 'back_in_stock') AND inventory_id = ANY(%s::uuid[])) "
                   "RETURNING kind, inventory_id", (rd.items,)).fetchone()
    if not ev:
        raise NoTarget("no crossing event")
    return f"deleted the last {ev[0]} event of item {ev[1]}"


def inj_lapsed_claim_locked(a, rd):
    rows = a.execute(f"SELECT id FROM {S}.batches WHERE zone = %s AND status = 'claimed' "
                     "AND lease_expires_at < statement_timestamp()", (rd.zone,)).fetchall()
    if not rows:
        raise NoTarget("a lapsed claim")
    c = connect()
    c.autocommit = False
    c.execute(f"SELECT 1 FROM {S}.batches WHERE id = ANY(%s) FOR UPDATE", ([r for (r,) in rows],))
    rd.cleanup.append(lambda _: c.close())
    return f"{len(rows)} lapsed claims' rows locked by a transaction left open"


# name -> (the check that must report it, injection, when: before the load,
# at recovery (before the keyed retries) or before the checks)
INJECTIONS = {
    "unexpected_errors": ("no_unexpected_errors", inj_unexpected_errors, "load"),
    "retry_conflict": ("keyed_retry_answered", inj_retry_conflict, "recovery"),
    "extra_ledger_row": ("acknowledged_movement_applied_once", inj_extra_ledger_row, "checks"),
    "refused_applied": ("refused_movement_applied_nothing", inj_refused_applied, "checks"),
    "half_applied": ("unacknowledged_movement_all_or_nothing", inj_half_applied, "checks"),
    "keyed_retry_twice": ("keyed_retry_applied_once", inj_keyed_retry_twice, "checks"),
    "stale_replay": ("keyed_call_replays_after_crash", inj_stale_replay, "checks"),
    "stock_drift": ("quantity_is_initial_plus_applied", inj_stock_drift, "checks"),
    "bound_stock_drift": ("reconcile_source_empty", inj_bound_stock_drift, "checks"),
    "ledger_without_stock": ("reconcile_empty", inj_ledger_without_stock, "checks"),
    "reserved_off_by_one": ("reserved_equals_active_lines", inj_reserved_off_by_one, "checks"),
    "bound_reserved_off_by_one": ("reserved_equals_active_lines", inj_bound_reserved_off_by_one, "checks"),
    "reservation_without_lines": ("reservation_status_matches_lines", inj_reservation_without_lines, "checks"),
    "dropped_reservation_line": ("reserve_all_or_nothing", inj_dropped_reservation_line, "checks"),
    "commit_without_sale": ("commit_has_its_sale", inj_commit_without_sale, "checks"),
    "release_undone": ("finished_lines_stand", inj_release_undone, "checks"),
    "extend_lost": ("extend_stands", inj_extend_lost, "checks"),
    "stopped_sweeper": ("sweeper_running_again", inj_stopped_sweeper, "recovery"),
    "sweeper_misses_due": ("sweeper_expired_what_fell_due", inj_sweeper_misses_due, "recovery"),
    "bound_reserved_above_quantity": ("stock_never_below_reserved", inj_bound_reserved_above_quantity, "checks"),
    "second_driver": ("batch_held_by_at_most_one_driver", inj_second_driver, "checks"),
    "bound_second_driver": ("batch_held_by_at_most_one_driver", inj_bound_second_driver, "checks"),
    "driver_over_limit": ("driver_within_limit", inj_driver_over_limit, "checks"),
    "completed_batch_reopened": ("batch_ops_stand", inj_completed_batch_reopened, "checks"),
    "packed_over_picked": ("packed_within_needed_and_picked", inj_packed_over_picked, "checks"),
    "packed_over_needed": ("packed_within_needed_and_picked", inj_packed_over_needed, "checks"),
    "lost_click": ("packed_equals_acknowledged_clicks", inj_lost_click, "checks"),
    "lapsed_claim_locked": ("lapsed_claim_claimable_after_recovery", inj_lapsed_claim_locked, "checks"),
    "movement_event_lost": ("every_committed_movement_has_its_event", inj_movement_event_lost, "checks"),
    "crossing_event_lost": ("stock_crossings_alternate_and_match_stock", inj_crossing_event_lost, "checks"),
    "transfer_twice": ("acknowledged_transfer_applied_once", more.inj_transfer_twice, "checks"),
    "transfer_half_applied": ("unacknowledged_transfer_all_or_nothing", more.inj_transfer_half_applied, "checks"),
    "transfer_made_units": ("item_total_unchanged_by_transfers", more.inj_transfer_made_units, "checks"),
    "kit_sale_twice": ("acknowledged_kit_sale_applied_once", more.inj_kit_sale_twice, "checks"),
    "kit_sale_half_applied": ("unacknowledged_kit_sale_all_or_nothing", more.inj_kit_sale_half_applied, "checks"),
    "kit_row_stock": ("kit_row_holds_nothing", more.inj_kit_row_stock, "checks"),
    "backorder_past_limit": ("stock_never_below_reserved", more.inj_backorder_past_limit, "checks"),
    "commit_row_twice": ("commit_rows_match_commits", inj_commit_row_twice, "checks"),
    "line_units_lost": ("line_units_add_up", inj_line_units_lost, "checks"),
    "lease_extension_lost": ("lease_extension_stands", inj_lease_extension_lost, "checks"),
}


def main():
    try:
        run()
    finally:
        # leave the cluster's settings as they were
        try:
            with connect() as admin:
                admin.execute("ALTER SYSTEM RESET atomic_inventory.movement_events")
                admin.execute("SELECT pg_reload_conf()")
        except psycopg.Error:
            pass


def run():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="20 rounds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--inject", choices=sorted(INJECTIONS), help="corrupt the state after recovery (see above)")
    ap.add_argument("--list-injections", action="store_true")
    ap.add_argument("--level-race", action="store_true",
                    help="let the workload's transfers create the items' levels concurrently (still deadlocks at times: crash_more.LEVEL_RACE)")
    ap.add_argument("--kill", default="postmaster,backend,server",
                    help="what to kill, in turn: postmaster (alone), backend (one), server (the postmaster and all its processes)")
    a = ap.parse_args()
    if a.list_injections:
        for name, (check, _, _) in INJECTIONS.items():
            print(f"{name} {check}")
        return
    rounds = 20 if a.long else a.rounds
    more.LEVEL_RACE = a.level_race
    rng = random.Random(a.seed)
    print(f"crash: {rounds} rounds, {a.connections} connections, seed {a.seed}"
          + (f", injecting {a.inject}" if a.inject else ""))
    started = time.monotonic()
    ensure_app_role()
    # every movement as an event, in every session (the sweeper's too), so
    # the checks can pair each committed ledger row with its event
    with connect() as admin:
        admin.execute("ALTER SYSTEM SET atomic_inventory.movement_events = on")
        admin.execute("SELECT pg_reload_conf()")
    checks = Checks("crash", show="failures")

    def ck(name, ok, info=""):
        checks.check(name, ok, info)

    done, injected, totals = [], None, collections.Counter()

    def inject(phase, admin, rd):
        """Apply the injection if it belongs to this phase and has a target; its description."""
        name = a.inject if a.inject and injected is None else None
        if not name or INJECTIONS[name][2] != phase:
            return None
        try:
            desc = INJECTIONS[name][1](admin, rd)
        except NoTarget as e:
            print(f"crash: inject {name}: no target in round {rd.n} ({e}); trying the next round")
            return None
        print(f"crash: inject {name}: {desc}")
        return name, desc

    for n in range(rounds):
        pending = None  # (name, description) of an injection applied this round
        with connect() as admin:
            rd = Round(admin, n, rng.random())
            pending = inject("load", admin, rd)
        load = rng.uniform(2.0, 4.0)
        threads = [threading.Thread(target=rd.worker, args=(k,)) for k in range(a.connections)]
        threads.append(threading.Thread(target=rd.due_holds, args=(time.monotonic() + load - 0.8,)))
        for t in threads:
            t.start()
        time.sleep(load)
        kills = a.kill.split(",")
        target = kills[n % len(kills)]
        rd.t_kill = datetime.datetime.now(datetime.timezone.utc)
        kill_at = time.monotonic()
        if target in ("postmaster", "server"):
            with open(os.path.join(os.environ["AI_CLUSTER_DIR"], "data", "postmaster.pid")) as f:
                pm = int(f.readline())
            procs = children(pm) if target == "server" else []
            os.kill(pm, signal.SIGKILL)
            for p in procs:  # the whole server at once, as a killed container or host would
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        else:
            with connect() as admin:
                pids = [p for (p, busy) in admin.execute(
                    "SELECT pid, state = 'active' FROM pg_stat_activity WHERE application_name = 'ai-crash' "
                    "AND pid <> pg_backend_pid() ORDER BY 2 DESC").fetchall()]
            # an active one if there is one; the postmaster then resets every backend
            if pids:
                os.kill(pids[0] if rng.random() < 0.8 else rng.choice(pids), signal.SIGKILL)
        # every connection ends on its first call that fails: its outcome
        # unknown, settled after recovery (the stop is only a backstop)
        for t in threads:
            t.join(max(0.1, 5 - (time.monotonic() - kill_at)))
        rd.stop.set()
        for t in threads:
            t.join(30)
        up = wait_for_server() if target == "backend" else restart_server()
        ck("server_back_after_crash", up, f"round {n}")
        if not up:
            break
        with connect() as admin, connect_app() as app:
            rd.t_up = admin.execute("SELECT now()").fetchone()[0]
            pending = pending or inject("recovery", admin, rd)
            start = len(checks.results)
            retried, retry_refused = rd.retry_keyed(app, ck)
            due = rd.wait_for_sweeper(admin, ck)
            pending = pending or inject("checks", admin, rd)
            if pending:
                injected = pending + (start,)
            replayed = rd.replay_keyed(app, ck)
            rd.verify(admin, ck)
            rd.probe_lapsed(admin, app, ck)
            for undo in rd.cleanup:
                undo(admin)
        figs = rd.figures()
        unknown = sum(c["unknown"] for c in figs.values())
        totals.update(rounds=1, ops=len(rd.ops), acked=sum(c["ok"] for c in figs.values()), unknown=unknown,
                      retried=retried, retry_refused=retry_refused, replayed=replayed, due=due, outage=rd.outage,
                      probes=rd.probes)
        print(f"crash: round {n + 1}: killed the {target} after {load:.1f} s; {len(rd.ops)} calls, {unknown} in flight, "
              f"{retried} keyed retried ({retry_refused} refused), {replayed} keyed replays; {due} holds due by "
              f"recovery ({rd.outage} fell due while down) expired by the sweeper; {rd.probes} lapsed claims "
              f"claimed again")
        done.append(rd)
        if injected:
            break  # the injected round is checked; more rounds would prove nothing more
    # what was acknowledged before a crash must survive the later ones too
    if len(done) > 1:
        with connect() as admin:
            for rd in done[:-1]:
                rd.verify(admin, lambda name, ok, info="": ck("after_later_crashes/" + name, ok, info))
    figs = collections.defaultdict(collections.Counter)
    for rd in done:
        for fn, c in rd.figures().items():
            figs[fn].update(c)
    print("crash: per function: calls; acknowledged (with a key); refused; in flight at a crash, of them "
          "settled by a keyed retry / found applied without a key")
    for cap, fns in CAPABILITY.items():
        for fn in fns:
            c = figs[fn]
            print(f"    {cap:18s} {fn:28s} {c['calls']:6d} {c['ok']:6d} ({c['keyed ok']:5d}) {c['refused']:5d} "
                  f"{c['unknown']:4d} {c['retried']:3d} / {c['applied']:3d}")
    if not a.inject:
        missing = [fn for fn in FUNCTIONS if not figs[fn]["ok"] or (fn in KEYED and not figs[fn]["keyed ok"])]
        ck("every_function_ran", not missing and totals["outage"] > 0,
           f"never acknowledged (with a key, for those that take one): {missing}; "
           f"{totals['outage']} holds fell due while the server was down")
    print(f"crash: {len(done)} of {rounds} crashes survived; {totals['ops']} calls, {totals['acked']} acknowledged, "
          f"{totals['unknown']} in flight at a crash, {totals['retried']} keyed retries ({totals['retry_refused']} "
          f"refused), {totals['replayed']} keyed replays, {totals['due']} holds expired by the restarted sweeper "
          f"({totals['outage']} fell due while the server was down), {totals['probes']} lapsed claims claimed again; "
          f"{time.monotonic() - started:.0f} s")
    by = collections.Counter()
    fails = collections.Counter()
    for name, ok, _ in checks.results:
        by[name] += 1
        fails[name] += not ok
    for name in by:
        print(f"    {name}: {by[name] - fails[name]} passed, {fails[name]} failed")
    if a.inject:
        if injected is None:
            print(f"crash: inject {a.inject}: no round had a target")
            sys.exit(2)
        name, desc, start = injected
        want = INJECTIONS[name][0]
        hits = [info for n_, ok, info in checks.results[start:] if not ok and n_ == want]
        others = sorted({n_ for n_, ok, _ in checks.results[start:] if not ok and n_ != want})
        if hits:
            print(f"crash: inject {name}: reported by {want} ({len(hits)} failures): {hits[0]}")
        else:
            print(f"crash: inject {name}: NOT reported by {want}")
        if others:
            print(f"crash: inject {name}: also reported by {', '.join(others)}")
        if name == "stopped_sweeper":
            restart_cleanly()  # the sweeper back for whatever runs next on this cluster
    passed = sum(1 for _, ok, _ in checks.results if ok)
    if passed < len(checks.results) and not a.inject:
        kept = f"/tmp/ai-crash-{RUN}-server.log"
        subprocess.run(["cp", os.path.join(os.environ["AI_CLUSTER_DIR"], "server.log"), kept])
        print(f"crash: the server log is kept in {kept}")
    print(f"crash: {passed} passed, {len(checks.results) - passed} failed")
    sys.exit(0 if checks.results and passed == len(checks.results) else 1)


if __name__ == "__main__":
    main()
