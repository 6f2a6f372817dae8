#!/usr/bin/env python3
"""The stats view against what clients saw. Needs the library preloaded
(shared memory, scope 'cluster') and nothing else calling the functions.

Resets the statistics, runs 8 connections of random calls (successes and
several error codes, counted client-side per function and outcome), then a
lock timeout, a statement_timeout cancel and a serialization failure, and
checks the view matches exactly: calls, ok, every error code, the dedicated
columns, ordered percentiles and a max latency covering the slowest call.

Prints `stats: N passed, N failed`. Uses the PG* environment.
"""
import collections
import random
import threading
import time
import uuid

from checks import OK, S, Checks, attempt, call, connect

checks = Checks("stats")
check = checks.check


def outcome(c, sql, args):
    """'ok' or the machine code (our errors) / SQLSTATE (PostgreSQL's)."""
    err = attempt(lambda: c.execute(sql, args).fetchone())
    return "ok" if err == OK else err.code or err.sqlstate


def stats(c):
    cur = c.execute(f"SELECT function, calls, ok, errors, lock_timeouts, deadlocks, serialization_failures, "
                    f"canceled, p50_ms, p95_ms, p99_ms, max_ms, scope FROM {S}.stats")
    cols = [d.name for d in cur.description]
    return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}


def main():
    admin = connect()
    admin.execute(f"SELECT {S}.stats_reset()")
    after_reset = stats(admin)
    check("reset zeroes every function", all(r["calls"] == 0 for r in after_reset.values()), after_reset)
    check("scope is cluster when preloaded", {r["scope"] for r in after_reset.values()} == {"cluster"},
          {r["scope"] for r in after_reset.values()})

    items = [call(admin, "create_item", p_quantity=30, p_sku=f"stats-{uuid.uuid4()}")["inventory_id"] for _ in range(3)]
    batches = [call(admin, "create_batch", p_zone=f"stats-{uuid.uuid4().hex[:6]}")["batch_id"] for _ in range(10)]
    seen = collections.defaultdict(collections.Counter)  # function -> outcome -> n
    lock = threading.Lock()

    def worker(k):
        rng = random.Random(k)
        c = connect()
        local = collections.defaultdict(collections.Counter)
        for _ in range(60):
            op = rng.choice(["dec", "dec", "zero", "unknown", "inc", "claim"])
            if op == "dec":
                fn, sql, args = "decrement_inventory", f"SELECT {S}.decrement_inventory(%s, %s)", (rng.choice(items), rng.randint(1, 3))
            elif op == "zero":
                fn, sql, args = "decrement_inventory", f"SELECT {S}.decrement_inventory(%s, 0)", (rng.choice(items),)
            elif op == "unknown":
                fn, sql, args = "increment_inventory", f"SELECT {S}.increment_inventory(%s, 1)", (str(uuid.uuid4()),)
            elif op == "inc":
                fn, sql, args = "increment_inventory", f"SELECT {S}.increment_inventory(%s, 1)", (rng.choice(items),)
            else:
                fn, sql, args = "claim_batch", f"SELECT {S}.claim_batch(%s, %s)", (rng.choice(batches), f"driver-{k}")
            local[fn][outcome(c, sql, args)] += 1
        with lock:
            for fn, cnt in local.items():
                seen[fn].update(cnt)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # PostgreSQL's own errors inside a call: lock timeout, cancel, 40001
    item = items[0]
    admin.execute(f"SELECT {S}.increment_inventory(%s, 10)", (item,))
    seen["increment_inventory"]["ok"] += 1
    holder = connect(autocommit=False)
    holder.execute(f"SELECT {S}.decrement_inventory(%s, 1)", (item,))
    seen["decrement_inventory"]["ok"] += 1
    c = connect()
    seen["decrement_inventory"][outcome(c, f"SELECT {S}.decrement_inventory(%s, 1, p_lock_timeout_ms => 150)", (item,))] += 1
    c.execute("SET statement_timeout = '300ms'")
    t0 = time.monotonic()
    seen["decrement_inventory"][outcome(c, f"SELECT {S}.decrement_inventory(%s, 1)", (item,))] += 1
    slowest_ms = (time.monotonic() - t0) * 1000
    holder.rollback()
    rr = connect(autocommit=False)
    rr.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    rr.execute("SELECT 1")
    admin.execute(f"SELECT {S}.decrement_inventory(%s, 1)", (item,))
    seen["decrement_inventory"]["ok"] += 1
    seen["decrement_inventory"][outcome(rr, f"SELECT {S}.decrement_inventory(%s, 1)", (item,))] += 1
    rr.rollback()
    # the named ones must really have happened, or the comparison below proves less
    dec = seen["decrement_inventory"]
    check("the forced errors happened", dec["LOCK_TIMEOUT"] == 1 and dec["57014"] == 1 and dec["40001"] == 1, dict(dec))
    check("the random mix produced several codes",
          dec["INSUFFICIENT_INVENTORY"] > 0 and dec["INVALID_QUANTITY"] > 0 and seen["increment_inventory"]["NOT_FOUND"] > 0
          and seen["claim_batch"]["BATCH_UNAVAILABLE"] > 0, {k: dict(v) for k, v in seen.items()})

    names = {"57014": "QUERY_CANCELED", "40001": "SERIALIZATION_FAILURE", "40P01": "DEADLOCK_DETECTED"}
    view = stats(admin)
    for fn, row in view.items():
        want = seen.get(fn, collections.Counter())
        want_errors = {names.get(k, k): n for k, n in want.items() if k != "ok"}
        got = (row["calls"], row["ok"], row["errors"])
        check(f"{fn}: calls, ok and errors match the clients", got == (sum(want.values()), want["ok"], want_errors),
              f"view {got}, clients {dict(want)}")
    d = view["decrement_inventory"]
    check("dedicated columns count lock timeouts, cancels, serialization failures",
          (d["lock_timeouts"], d["canceled"], d["serialization_failures"], d["deadlocks"]) == (1, 1, 1, 0),
          (d["lock_timeouts"], d["canceled"], d["serialization_failures"], d["deadlocks"]))
    check("percentiles are ordered", d["p50_ms"] <= d["p95_ms"] <= d["p99_ms"] <= d["max_ms"] * 2,
          (d["p50_ms"], d["p95_ms"], d["p99_ms"], d["max_ms"]))
    check("max latency covers the call cancelled after 300 ms", 290 <= d["max_ms"] <= slowest_ms + 50,
          (d["max_ms"], slowest_ms))

    admin.execute(f"SELECT {S}.stats_reset()")
    check("reset again zeroes", all(r["calls"] == 0 for r in stats(admin).values()))
    # not granted to PUBLIC
    admin.execute("DROP ROLE IF EXISTS ai_stats_nobody")
    admin.execute("CREATE ROLE ai_stats_nobody")
    admin.execute(f"GRANT USAGE ON SCHEMA {S} TO ai_stats_nobody")
    admin.execute("SET ROLE ai_stats_nobody")
    check("a role without grants may not reset", outcome(admin, f"SELECT {S}.stats_reset()", ()) == "42501")
    admin.execute("RESET ROLE")
    admin.execute(f"REVOKE USAGE ON SCHEMA {S} FROM ai_stats_nobody")
    admin.execute("DROP ROLE ai_stats_nobody")

    checks.finish()


if __name__ == "__main__":
    main()
