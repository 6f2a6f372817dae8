#!/usr/bin/env python3
"""Faults around a call: timeouts and cancels while it waits for a lock, the
caller rolling back after a success, savepoints, and callers at REPEATABLE
READ / SERIALIZABLE. Each case checks the error a client sees and that stock,
ledger and idempotency keys are exactly as if the failed work never ran.

Prints `faults: N passed, N failed`. Uses the PG* environment.
"""
import json
import threading
import time
import uuid

from checks import S, Checks, attempt, call, connect

RUN = uuid.uuid4().hex[:8]  # idempotency keys unique per run
checks = Checks("faults")
check = checks.check


def new_item(c, qty=10):
    return call(c, "create_item", p_quantity=qty, p_sku=f"fault-{uuid.uuid4()}")["inventory_id"]


def snapshot(c, item):
    return c.execute(f"SELECT i.quantity, i.reserved, (SELECT count(*) FROM {S}.ledger l WHERE l.inventory_id = i.id) "
                     f"FROM {S}.items i WHERE i.id = %s", (item,)).fetchone()


def sqlstate_of(fn):
    """(sqlstate, code) of fn's error, ("none", None) if it had none."""
    return attempt(fn)[:2]


def dec(c, item, qty=1, **kw):
    return call(c, "decrement_inventory", p_inventory_id=item, p_quantity=qty, **kw)


def holder(item):
    """A transaction holding the item's row lock (it decremented 1)."""
    h = connect(autocommit=False)
    dec(h, item)
    return h


def main():
    admin = connect()

    # statement_timeout fires while the call waits for a row lock
    item = new_item(admin)
    before = snapshot(admin, item)
    h = holder(item)
    c = connect()
    c.execute("SET statement_timeout = '200ms'")
    st = sqlstate_of(lambda: dec(c, item))
    h.rollback()
    check("statement_timeout mid-call surfaces 57014, nothing written", st[0] == "57014" and snapshot(admin, item) == before, f"{st} {snapshot(admin, item)} vs {before}")

    # the session's own lock_timeout, and p_lock_timeout_ms: LOCK_TIMEOUT (PT503)
    h = holder(item)
    c = connect()
    c.execute("SET lock_timeout = '150ms'")
    st1 = sqlstate_of(lambda: dec(c, item))
    st2 = sqlstate_of(lambda: dec(c, item, p_lock_timeout_ms=100))
    setting = c.execute("SHOW lock_timeout").fetchone()[0]
    h.rollback()
    check("lock_timeout mid-call surfaces PT503 LOCK_TIMEOUT, nothing written",
          st1 == ("PT503", "LOCK_TIMEOUT") and st2 == ("PT503", "LOCK_TIMEOUT") and snapshot(admin, item) == before,
          f"{st1} {st2}")
    check("the caller's lock_timeout is what it was after p_lock_timeout_ms", setting == "150ms", setting)

    # multi-line call cancelled half way: the line it had already locked is untouched
    other = new_item(admin)
    before_other = snapshot(admin, other)
    h = holder(item)
    c = connect()
    c.execute("SET statement_timeout = '200ms'")
    lines = json.dumps([{"inventory_id": other, "quantity": 1}, {"inventory_id": item, "quantity": 1}])
    st = sqlstate_of(lambda: call(c, "decrement_inventory_many", p_lines=lines))
    h.rollback()
    check("multi-line call timed out after locking some rows writes nothing",
          st[0] == "57014" and snapshot(admin, other) == before_other and snapshot(admin, item) == before, str(st))

    # pg_cancel_backend while waiting
    h = holder(item)
    c = connect()
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    out = {}
    t = threading.Thread(target=lambda: out.update(st=sqlstate_of(lambda: dec(c, item))))
    t.start()
    for _ in range(100):  # wait until it is really waiting on the lock
        if admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            break
        time.sleep(0.02)
    admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
    t.join()
    h.commit()
    after = snapshot(admin, item)
    check("pg_cancel_backend mid-call surfaces 57014; only the holder's sale counts",
          out.get("st", ("?",))[0] == "57014" and after[0] == before[0] - 1 and after[2] == before[2] + 1, f"{out} {after}")
    before = after

    # the caller rolls back after a successful call: nothing stays, the key is free
    c = connect(autocommit=False)
    first = dec(c, item, p_idempotency_key=f"fault-rollback-{RUN}")
    c.rollback()
    unchanged = snapshot(admin, item) == before
    c2 = connect()
    again = dec(c2, item, p_idempotency_key=f"fault-rollback-{RUN}")
    after = snapshot(admin, item)
    check("caller rollback undoes the call, ledger row and idempotency key",
          unchanged and first["new_quantity"] == again["new_quantity"] and after[0] == before[0] - 1 and after[2] == before[2] + 1,
          f"{first} {again} {after}")
    before = after

    # savepoints: a refused call rolled back to a savepoint, then a good one
    c = connect(autocommit=False)
    c.execute("SAVEPOINT s1")
    st = sqlstate_of(lambda: dec(c, item, 999))
    c.execute("ROLLBACK TO SAVEPOINT s1")
    dec(c, item, 2, p_idempotency_key=f"fault-sp-{RUN}")
    c.execute("SAVEPOINT s2")
    replay = dec(c, item, 2, p_idempotency_key=f"fault-sp-{RUN}")  # a retry inside the same transaction
    c.execute("RELEASE SAVEPOINT s2")
    c.commit()
    after = snapshot(admin, item)
    check("savepoints: refused call rolled back, retry inside the transaction applied once",
          st == ("PT409", "INSUFFICIENT_INVENTORY") and after[0] == before[0] - 2 and after[2] == before[2] + 1 and replay,
          f"{st} {after} vs {before}")
    before = after

    # REPEATABLE READ and SERIALIZABLE callers: a concurrent change surfaces 40001
    for level in ("REPEATABLE READ", "SERIALIZABLE"):
        c = connect(autocommit=False)
        c.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        c.execute("SELECT 1")  # take the snapshot
        dec(admin, item)        # someone else sells in between
        st = sqlstate_of(lambda: dec(c, item))
        c.rollback()
        after = snapshot(admin, item)
        check(f"{level} caller gets 40001 on a concurrent change, never swallowed",
              st[0] == "40001" and after[0] == before[0] - 1 and after[2] == before[2] + 1, f"{st}")
        before = after

    # REPEATABLE READ without interference works normally
    c = connect(autocommit=False)
    c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    dec(c, item)
    c.commit()
    after = snapshot(admin, item)
    check("REPEATABLE READ caller without interference succeeds", after[0] == before[0] - 1, str(after))

    # Calls that change nothing consume no transaction id (and so write no
    # commit record): a driver polling an empty pool, a retried request
    # answered from its idempotency key. A call that writes gets one, as ever.
    def xid_after(fn):
        c = connect(autocommit=False)
        try:
            out = fn(c)
            xid = c.execute("SELECT pg_current_xact_id_if_assigned()::text").fetchone()[0]
            return out, xid
        finally:
            c.rollback()

    out, xid = xid_after(lambda c: call(c, "claim_next_batch", p_driver_id="idle-driver", p_zone=f"no-such-zone-{RUN}"))
    check("claim_next_batch with none left: NULL, no transaction id", out is None and xid is None, f"{out} {xid}")
    key = f"replay-{RUN}"
    first = dec(admin, item, p_idempotency_key=key)
    before = snapshot(admin, item)
    out, xid = xid_after(lambda c: dec(c, item, p_idempotency_key=key))
    check("idempotent replay: the first answer, no transaction id, nothing written",
          out == first and xid is None and snapshot(admin, item) == before, f"{xid} {snapshot(admin, item)} vs {before}")
    out, xid = xid_after(lambda c: dec(c, item))
    check("a sale gets a transaction id (the check above can fail)", xid is not None, f"{out} {xid}")

    drift = admin.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
    check("ledger reconciles after all faults", drift == 0, f"{drift} items drift")
    checks.finish()


if __name__ == "__main__":
    main()
