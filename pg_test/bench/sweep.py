#!/usr/bin/env python3
"""The expiry sweep under load: how fast `expire_reservations()` releases
due holds, and what it does to the latency of sales of the same items.

Run by pg_test/bench/sweep.sh (a throwaway cluster with the release build
and the benchmark's data, sweeper off). Steps:

1. `pgbench` sells (`decrement_inventory`, one unit, uniform over the
   100,000 bench items) for --seconds with --clients connections: the
   baseline latencies.
2. N due holds are made (default 100,000): one reservation of one unit
   per bench item, expired a second ago. Written by SQL in bulk (the
   holds' rows and the items' reserved units, as reserve_inventory leaves
   them), so that making them is not part of what is measured; reconcile()
   must be empty before and after.
3. The same sales again while one more connection calls
   `expire_reservations(p_limit)` until none is due: holds per second of
   the sweep, and the sales' latencies meanwhile.

Prints a markdown table (and --json), with the command.
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time

import psycopg

S = "atomic_inventory"
HERE = os.path.dirname(os.path.abspath(__file__))

SALE = """\\set k random(1, 100000)
SELECT atomic_inventory.decrement_inventory(p_inventory_id => lpad(to_hex(:k::int), 32, '0')::uuid, p_quantity => 1);
"""


def pgbench(bindir, clients, seconds, tmp, tag):
    script = os.path.join(tmp, "sale.sql")
    with open(script, "w") as f:
        f.write(SALE)
    prefix = os.path.join(tmp, tag)
    run = subprocess.run([os.path.join(bindir, "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
                          "-j", str(min(clients, 2)), "-T", str(seconds), "-l", "--log-prefix", prefix,
                          "-f", script], capture_output=True, text=True, cwd=tmp)
    if run.returncode != 0:
        raise SystemExit(f"sweep: pgbench failed:\n{run.stdout}\n{run.stderr}")
    lat = []
    for name in os.listdir(tmp):
        if name.startswith(tag + "."):
            with open(os.path.join(tmp, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        lat.append(int(parts[2]) / 1000.0)
            os.remove(os.path.join(tmp, name))
    lat.sort()
    if not lat:
        raise SystemExit("sweep: pgbench logged no transaction")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {"sales": len(lat), "per_s": len(lat) / seconds, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


def make_due(c, n):
    c.execute(f"""
        WITH items AS (
          SELECT id, row_number() OVER (ORDER BY id) AS n FROM {S}.items
           WHERE sku LIKE 'bench-%%' ORDER BY id LIMIT %s
        ), res AS (
          INSERT INTO {S}.reservations (status, reference, expires_at)
          SELECT 'active', 'sweep-bench-' || n, now() - interval '1 second' FROM items
          RETURNING id, reference
        ), lines AS (
          INSERT INTO {S}.reservation_lines (reservation_id, inventory_id, quantity, tracked)
          SELECT r.id, i.id, 1, true FROM res AS r JOIN items AS i ON r.reference = 'sweep-bench-' || i.n
          RETURNING inventory_id
        )
        UPDATE {S}.items AS i SET reserved = i.reserved + 1 FROM lines AS l WHERE i.id = l.inventory_id""",
              (n,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--holds", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10, help="the baseline sales' run")
    ap.add_argument("--limit", type=int, default=1000, help="expire_reservations(p_limit)")
    ap.add_argument("--command", default="bash pg_test/bench/sweep.sh")
    ap.add_argument("--json")
    a = ap.parse_args()
    bindir = os.environ["AI_PG_BINDIR"]
    with psycopg.connect(autocommit=True) as c, tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        if c.execute("SELECT to_regnamespace('bench')").fetchone()[0] is None:
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", os.path.join(HERE, "setup.sql")],
                           check=True, capture_output=True)
        c.execute(f"VACUUM {S}.items")
        c.execute("CHECKPOINT")
        base = pgbench(bindir, a.clients, a.seconds, tmp, "base")
        make_due(c, a.holds)
        drift = c.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
        if drift:
            raise SystemExit(f"sweep: reconcile() reports {drift} rows after making the holds")
        c.execute(f"VACUUM {S}.items")
        c.execute(f"VACUUM {S}.reservations")
        c.execute(f"VACUUM {S}.reservation_lines")
        c.execute("CHECKPOINT")
        out = {}

        def sweep():
            with psycopg.connect(autocommit=True) as s:
                t0 = time.monotonic()
                total = calls = 0
                while True:
                    got = s.execute(f"SELECT ({S}.expire_reservations(%s))->>'expired'", (a.limit,)).fetchone()[0]
                    calls += 1
                    total += int(got)
                    if int(got) == 0:
                        break
                out.update(expired=total, calls=calls, seconds=time.monotonic() - t0)

        th = threading.Thread(target=sweep)
        # the sales run as long as the sweep does (at least the baseline's
        # seconds): start them, then the sweep
        during = {}

        def sales():
            during.update(pgbench(bindir, a.clients, max(a.seconds, 1), tmp, "during"))

        sa = threading.Thread(target=sales)
        sa.start()
        time.sleep(0.5)
        th.start()
        th.join()
        sa.join()
        left = c.execute(f"SELECT count(*) FROM {S}.reservations WHERE status = 'active' "
                         "AND reference LIKE 'sweep-bench-%'").fetchone()[0]
        drift = c.execute(f"SELECT count(*) FROM {S}.reconcile()").fetchone()[0]
        version = c.execute("SHOW server_version").fetchone()[0]
    rate = out["expired"] / out["seconds"]
    print(f"Sweep of {a.holds:,} due holds (`expire_reservations({a.limit})` until none is due, one connection) "
          f"while {a.clients} connections sell the same items; PostgreSQL {version}. Command: `{a.command}`\n")
    print("| | sales/s | sale p50 ms | sale p99 ms |")
    print("|---|---|---|---|")
    print(f"| sales alone ({a.seconds} s) | {base['per_s']:,.0f} | {base['p50_ms']:.2f} | {base['p99_ms']:.2f} |")
    print(f"| sales while the sweep runs | {during['per_s']:,.0f} | {during['p50_ms']:.2f} | "
          f"{during['p99_ms']:.2f} |")
    print(f"\nThe sweep: {out['expired']:,} holds expired in {out['seconds']:.1f} s ({rate:,.0f} holds/s, "
          f"{out['calls']} calls); {left} due holds left; reconcile() rows after: {drift}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"base": base, "during": during, "sweep": out, "left": left, "drift": drift}, f, indent=1)
    if left or drift or out["expired"] < a.holds:
        raise SystemExit("sweep: holds left or drift")


if __name__ == "__main__":
    main()
