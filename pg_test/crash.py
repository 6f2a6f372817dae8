#!/usr/bin/env python3
"""Crash test: run a workload, SIGKILL the postmaster (or one backend) at a
random moment, restart, and check that every acknowledged operation survived
exactly once, every unacknowledged one is all-or-nothing, idempotent retries
apply once, and the ledger still explains every quantity.

Needs the cluster started by pg_test/lib.sh (AI_CLUSTER_DIR, AI_PG_BINDIR,
AI_PG_START_OPTS, PG*) and root (it restarts the server as user postgres).
Prints `crash: N passed, N failed`.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg

S = "atomic_inventory"


def connect(**kw):
    return psycopg.connect("", autocommit=True, connect_timeout=5, application_name="ai-crash", **kw)


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


def restart_server():
    """Start the server again after the postmaster was killed; orphaned
    backends may hold the shared memory a little while, so retry."""
    data = os.path.join(os.environ["AI_CLUSTER_DIR"], "data")
    log = os.path.join(os.environ["AI_CLUSTER_DIR"], "server.log")
    pg_ctl = os.path.join(os.environ["AI_PG_BINDIR"], "pg_ctl")
    for _ in range(60):
        r = subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-l", log, "-w",
                            "-o", os.environ["AI_PG_START_OPTS"], "start"], capture_output=True, text=True)
        if r.returncode == 0:
            return wait_for_server()
        time.sleep(0.5)
    return False


class Round:
    def __init__(self, items, seed):
        self.items = items
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.ops = []  # (reference, expected ledger rows, state, idempotency key, kind, args)
        self.stop = threading.Event()

    def worker(self, k):
        rng = random.Random(self.rng.random())
        try:
            c = connect()
        except psycopg.Error:
            return
        while not self.stop.is_set():
            ref = f"crash-{uuid.uuid4()}"
            kind = rng.choice(["dec", "many", "inc", "idem"])
            if kind == "many":
                items = rng.sample(self.items, 2)
                args = dict(p_lines=json.dumps([{"inventory_id": i, "quantity": 1} for i in items]))
                fn, rows = "decrement_inventory_many", 2
            else:
                args = dict(p_inventory_id=rng.choice(self.items), p_quantity=1)
                fn, rows = ("increment_inventory" if kind == "inc" else "decrement_inventory"), 1
            key = f"key-{ref}" if kind == "idem" else None
            if key:
                args["p_idempotency_key"] = key
            args["p_reference"] = ref
            sql = f"SELECT {S}.{fn}(" + ", ".join(f"{a} => %({a})s" for a in args) + ")"
            try:
                c.execute(sql, args)
                state = "ok"
            except psycopg.errors.RaiseException:
                state = "refused"
            except psycopg.Error as e:
                if e.sqlstate and e.sqlstate.startswith("PT"):
                    state = "refused"  # e.g. INSUFFICIENT_INVENTORY: known not applied
                else:
                    state = "unknown"  # the connection died: applied or not, we can't know
            with self.lock:
                self.ops.append((ref, rows, state, key, fn, args))
            if state == "unknown":
                return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print(f"crash: {a.rounds} rounds, {a.connections} connections, seed {a.seed}")
    results = []

    def check(name, ok, info=""):
        results.append(bool(ok))
        if not ok:
            print(f"FAIL {name}: {info}")

    totals = dict(acknowledged=0, unknown=0, applied_unknown=0, retried=0, retry_refused=0)
    survived = 0
    for n in range(a.rounds):
        with connect() as admin:
            items = [admin.execute(f"SELECT {S}.create_item(p_quantity => 1000, p_sku => 'crash-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
                     for _ in range(4)]
        r = Round(items, rng.random())
        threads = [threading.Thread(target=r.worker, args=(k,)) for k in range(a.connections)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.5, 2.5))
        target = "postmaster" if n % 2 == 0 else "backend"
        if target == "postmaster":
            with open(os.path.join(os.environ["AI_CLUSTER_DIR"], "data", "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGKILL)
        else:
            with connect() as admin:
                pids = [p for (p,) in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'ai-crash' "
                    "AND pid <> pg_backend_pid() AND state = 'active'").fetchall()]
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)  # the postmaster then resets every backend
        r.stop.set()
        for t in threads:
            t.join(30)
        up = restart_server() if target == "postmaster" else wait_for_server()
        check("server back after crash", up, f"round {n}")
        if not up:
            break
        survived += 1
        with connect() as admin:
            # idempotent operations whose outcome was lost: retry with the same key
            # A retry may be refused (stock ran out meanwhile): then the first
            # attempt cannot have committed (its stored result would have been
            # replayed; failures store nothing), so nothing may be applied.
            refused_retries = set()
            for ref, rows, state, key, fn, args in r.ops:
                if state == "unknown" and key:
                    sql = f"SELECT {S}.{fn}(" + ", ".join(f"{x} => %({x})s" for x in args) + ")"
                    try:
                        admin.execute(sql, args)
                    except psycopg.Error as e:
                        check("idempotent retry after crash answers", e.sqlstate.startswith("PT"), str(e))
                        refused_retries.add(ref)
                        print(f"crash: retry of {ref} refused: {e.sqlstate} {str(e).splitlines()[0][:100]}")
                    totals["retried"] += 1
            refs = [op[0] for op in r.ops]
            counts = dict(admin.execute(f"SELECT reference, count(*) FROM {S}.ledger WHERE reference = ANY(%s) GROUP BY 1",
                                        (refs,)).fetchall())
            for ref, rows, state, key, fn, args in r.ops:
                got = counts.get(ref, 0)
                if state == "ok":
                    totals["acknowledged"] += 1
                    check("acknowledged operation survived exactly once", got == rows, f"{ref}: {got} rows")
                elif state == "refused":
                    check("refused operation left nothing", got == 0, f"{ref}: {got} rows")
                elif key and ref in refused_retries:
                    totals["unknown"] += 1
                    totals["retry_refused"] += 1
                    check("refused idempotent retry: nothing applied", got == 0, f"{ref}: {got} rows")
                elif key:
                    totals["unknown"] += 1
                    check("retried idempotent operation applied exactly once", got == rows, f"{ref}: {got} rows")
                else:
                    totals["unknown"] += 1
                    totals["applied_unknown"] += got > 0
                    check("unacknowledged operation all or nothing", got in (0, rows), f"{ref}: {got} rows")
            drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile() WHERE inventory_id = ANY(%s::uuid[])", (items,)).fetchone()[0]
            check("ledger explains every quantity after recovery", drift == 0, f"round {n}: {drift}")
            low = admin.execute(f"SELECT count(*) FROM {S}.items WHERE id = ANY(%s::uuid[]) AND quantity < 0", (items,)).fetchone()[0]
            check("no negative stock after recovery", low == 0, f"round {n}")
        print(f"crash: round {n + 1}: killed the {target}, {len(r.ops)} operations")
    print(f"crash: {survived} of {a.rounds} crashes survived; {totals['acknowledged']} acknowledged operations all present once; "
          f"{totals['unknown']} in flight at the crash ({totals['applied_unknown']} of the non-idempotent ones had committed); "
          f"{totals['retried']} idempotent retries ({totals['retry_refused']} refused, e.g. stock gone meanwhile)")
    passed = sum(results)
    print(f"crash: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if results and passed == len(results) else 1)


if __name__ == "__main__":
    main()
