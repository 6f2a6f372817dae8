"""What every Python suite under pg_test/ shares: connecting, calling a
function, reading an error, and counting and reporting checks.

    connect(dsn="", autocommit=True, **kw)  a connection; dsn "" = the PG*
        environment (pg_test/lib.sh's start_cluster sets it). With
        AI_NO_PREPARE set (PgBouncer in transaction mode) no statement is
        prepared server-side.
    call(conn, fn, **kw)    SELECT atomic_inventory.<fn>(k => v, ...): the
        answer as parsed JSON (None for NULL); any error raises Failure.
    decode(e)               a psycopg.Error (or a Failure) as
        Error(sqlstate, code, field, message): code and field from the JSON
        error detail (None when absent), message its primary text.
    Failure                 what call raises: .error, .sqlstate, .code,
        .field, .message; str() is the server's text, as psycopg gives it.
    attempt(fn, *args)      runs fn; OK (sqlstate "none") if it returned,
        else the decoded error.
    race(dsn, n, fn)        fn(conn, k) in n threads released at once, each on
        its own connection; the results, a Failure where one was raised.
    Checks(suite, show)     check(name, ok, info) and expect(name, got, want)
        record a check; show says what is printed: "all" a line per check as
        it runs (`ok  name`, `FAIL name: info`), "failures" only the FAIL
        lines, "grouped" nothing until report() prints `name: N passed,
        N failed` per name (first appearance order) with up to 5 failure
        infos indented under it. report() then prints `<suite>: N passed,
        N failed` and returns whether all passed; finish() reports and exits
        (0 only when there were checks and all passed).

Used by every suite here but crash.py (rewritten on a branch; it will
adopt this). run-tests.sh's digest greps stage logs for `N failed` lines,
`FAIL` and the indented lines under them: keep those formats.
"""
import collections
import json
import os
import sys
import threading

import psycopg

S = "atomic_inventory"

Error = collections.namedtuple("Error", "sqlstate code field message")
OK = Error("none", None, None, "")


def connect(dsn="", autocommit=True, **kw):
    if os.environ.get("AI_NO_PREPARE"):
        # behind PgBouncer in transaction mode a server-side prepared
        # statement may not exist on the next transaction's server
        kw.setdefault("prepare_threshold", None)
    return psycopg.connect(dsn, autocommit=autocommit, **kw)


def decode(e):
    if isinstance(e, Failure):
        return e.error
    try:
        detail = json.loads(e.diag.message_detail or "{}")
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    return Error(e.sqlstate, detail.get("code"), detail.get("field"), e.diag.message_primary or "")


class Failure(Exception):
    def __init__(self, e):
        super().__init__(str(e))
        self.error = decode(e)
        self.sqlstate, self.code, self.field, self.message = self.error


def call(conn, fn, **kw):
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    try:
        row = conn.execute(f"SELECT {S}.{fn}({args})::text", kw).fetchone()
    except psycopg.Error as e:
        raise Failure(e) from None
    return None if row[0] is None else json.loads(row[0])


def attempt(fn, *args):
    try:
        fn(*args)
        return OK
    except (psycopg.Error, Failure) as e:
        return decode(e)


def race(dsn, n, fn):
    conns = [connect(dsn) for _ in range(n)]
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(k):
        barrier.wait()
        try:
            out[k] = fn(conns[k], k)
        except Failure as f:
            out[k] = f

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    return out


class Checks:
    def __init__(self, suite, show="all"):
        assert show in ("all", "failures", "grouped"), show
        self.suite, self.show = suite, show
        self.results = []  # (name, ok, info)
        self.lock = threading.Lock()

    def check(self, name, ok, info=""):
        ok = bool(ok)
        return self._record(name, ok, info, name + ("" if ok or info == "" else f": {info}"))

    def expect(self, name, got, want):
        """A check that got == want; its line shows got (and want when not)."""
        ok = got == want
        return self._record(name, ok, f"{got} (want {want})", f"{name}: {got}" + ("" if ok else f" (want {want})"))

    def _record(self, name, ok, info, line):
        with self.lock:
            self.results.append((name, ok, info))
        if self.show == "all" or (self.show == "failures" and not ok):
            print(f"{'ok  ' if ok else 'FAIL'} {line}")
        return ok

    @property
    def passed(self):
        return sum(1 for _, ok, _ in self.results if ok)

    @property
    def failed(self):
        return len(self.results) - self.passed

    def report(self):
        if self.show == "grouped":
            by = {}
            for name, ok, info in self.results:
                p, f, infos = by.get(name, (0, 0, []))
                by[name] = (p + ok, f + (not ok), infos + ([info] if not ok and info else []))
            for name, (p, f, infos) in by.items():
                print(f"{name}: {p} passed, {f} failed")
                for i in infos[:5]:
                    print(f"    {i}")
        print(f"{self.suite}: {self.passed} passed, {self.failed} failed")
        return bool(self.results) and self.failed == 0

    def finish(self):
        sys.exit(0 if self.report() else 1)
