#!/usr/bin/env python3
"""Run the pgbench scripts of pg_test/bench/scripts side by side and report
successful operations per second, p50/p99 latency and ratios to baselines.

Called by pg_test/bench/run.sh (which starts the cluster and installs the
release build); uses the PG* environment and AI_PG_BINDIR.

Successes are counted from the database, not from pgbench's TPS: the stock
(or packed units, or claimed batches, or transfers' ledger rows) consumed
during the run divided by the units one operation consumes. A transaction that failed or changed nothing
does not count. Latency percentiles come from pgbench's per-transaction log.
"""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from plot import plot

HERE = os.path.dirname(os.path.abspath(__file__))
S = "atomic_inventory"

# pgbench expressions for an item number per key distribution; multi-line
# orders on the hot distribution take 5 of 5 hot items in random order.
DISTS = {
    "uniform": ("random(1, 100000)", "random(1, 100000)"),
    "zipf": ("random_zipfian(1, 100000, 1.1)", "random_zipfian(1, 100000, 1.1)"),
    "hot": ("1", "random(1, 5)"),
}

ITEMS = f"SELECT coalesce(sum(1e12 - quantity), 0) FROM {S}.items WHERE sku LIKE 'bench-%'"
BASE = "SELECT coalesce(sum(1e12 - quantity), 0) FROM bench.inventory"
# a striped item's quantity is its row's plus its stripes'
STRIPED = (f"SELECT 1e12 - i.quantity - coalesce((SELECT sum(s.quantity) FROM {S}.item_stripes s "
           f"WHERE s.item_id = i.id), 0) FROM {S}.items i WHERE i.sku = 'striped-bench'")
CLAIMED = f"SELECT count(*) FROM {S}.batches WHERE zone = 'bench' AND status = 'claimed'"
# transfers: two ledger rows each, on the transfer items' own ids (an index
# range); the client's transfer counts itself on its source row
TRANSFERS = (f"SELECT count(*) FROM {S}.ledger WHERE kind = 'transfer' "
             "AND inventory_id BETWEEN bench.id('8', 1) AND bench.id('8', 10000)")
TRANSFERS_CLIENT = "SELECT coalesce(sum(transfers), 0) FROM bench.levels"
RELEASED = f"SELECT count(*) FROM {S}.reservations WHERE status = 'released'"
# variant: (script, success counter query, units per operation, multi-line?, distributions)
VARIANTS = {
    "raw_update": ("raw_update.sql", BASE, 1, False, None),
    "pos_function": ("pos_function.sql", BASE, 1, False, None),
    "raw_update_items": ("raw_update_items.sql", ITEMS, 1, False, None),
    "raw_update_ledger": ("raw_update_ledger.sql", ITEMS, 1, False, None),
    "decrement": ("decrement.sql", ITEMS, 1, False, None),
    "decrement_noledger": ("decrement.sql", ITEMS, 1, False, None),
    "decrement_events": ("decrement.sql", ITEMS, 1, False, None),
    "decrement_events_off": ("decrement.sql", ITEMS, 1, False, None),
    "decrement_bound": ("decrement_bound.sql", "SELECT coalesce(sum(1e12 - quantity), 0) FROM bench.items_bound",
                        1, False, None),
    "decrement_striped": ("decrement_striped.sql", STRIPED, 1, False, ["hot"]),
    "checkout_per_item": ("checkout_per_item.sql", BASE, 5, True, None),
    "decrement_many": ("decrement_many.sql", ITEMS, 5, True, None),
    "decrement_many_noledger": ("decrement_many.sql", ITEMS, 5, True, None),
    "reserve_commit": ("reserve_commit.sql", ITEMS, 1, False, ["uniform"]),
    # pairs: the reservations released (the finished ones of the set-up are
    # committed)
    "reserve_release": ("reserve_release.sql", RELEASED, 1, False, ["uniform"]),
    "packing": ("packing.sql", f"SELECT coalesce(sum(quantity_packed), 0) FROM {S}.packing_progress", 1, False, ["uniform"]),
    "packing_bound": ("packing_bound.sql", "SELECT coalesce(sum(quantity_packed), 0) FROM bench.packing_progress",
                      1, False, ["uniform"]),
    "packing_fallback": ("packing_fallback.sql", "SELECT coalesce(sum(quantity_packed), 0) FROM bench.packing_progress",
                         1, False, ["uniform"]),
    "claim_next": ("claim_next.sql", CLAIMED, 1, False, ["uniform"]),
    "checkout_reserve_commit": ("checkout_reserve_commit.sql", BASE, 1, False, ["uniform"]),
    "claim_route": ("claim_route.sql", CLAIMED, 1, False, ["uniform"]),
    "transfer": ("transfer.sql", TRANSFERS, 2, False, None),
    "transfer_client": ("transfer_client.sql", TRANSFERS_CLIENT, 1, False, None),
    "kit": ("kit.sql", ITEMS, 3, False, None),
    "kit_client": ("kit_client.sql", BASE, 3, False, None),
    # floors: the rows a call must write, sent raw as one statement per call
    # (docs/benchmarks.md, "Floors"); what no call writing them can beat
    "reserve_commit_floor": ("reserve_commit_floor.sql", ITEMS, 1, False, ["uniform"]),
    "transfer_floor": ("transfer_floor.sql", TRANSFERS, 2, False, None),
    "kit_floor": ("kit_floor.sql", ITEMS, 3, False, None),
    "reserve_commit_inline_floor": ("reserve_commit_inline_floor.sql", ITEMS, 1, False, ["uniform"]),
    "packing_floor": ("packing_floor.sql", "SELECT coalesce(sum(quantity_packed), 0) FROM bench.packing_progress",
                      1, False, ["uniform"]),
    "decrement_set_clause": ("decrement_set_clause.sql", ITEMS, 1, False, None),
    "decrement_invoker": ("decrement_invoker.sql", ITEMS, 1, False, None),
}
# What-if variants, run only when named in --variants: decrement_noledger's
# own C code declared with the SET search_path clause of before 0.3.0, or
# without SECURITY DEFINER (what the call's declaration costs); the
# reservation pair's floor with a hold kept as one row (what that schema
# could reach). Not shipped; for docs/benchmarks.md.
WHAT_IF = ("decrement_set_clause", "decrement_invoker", "reserve_commit_inline_floor")
# Server settings per variant (PGOPTIONS of pgbench's connections; the
# benchmark connects as a superuser, who may set atomic_inventory.ledger).
OPTIONS = {
    "decrement_noledger": "-c atomic_inventory.ledger=off",
    "decrement_many_noledger": "-c atomic_inventory.ledger=off",
    "decrement_set_clause": "-c atomic_inventory.ledger=off",
    "decrement_invoker": "-c atomic_inventory.ledger=off",
    "decrement_events_off": "-c atomic_inventory.events=off",
}
# Sales with stock events: every bench item gets a reorder point 3 units
# under its stock (the hot item and the zipf head cross it early in the
# run, writing a low_stock event each), and a LISTEN session is connected.
# The same sale with events off is the baseline (the trigger's WHEN clause
# still runs there).
EVENTS = ("decrement_events", "decrement_events_off")
# ours vs the baseline it replaces
RATIOS = [("decrement_noledger", "raw_update"), ("decrement_noledger", "raw_update_items"),
          ("decrement_noledger", "pos_function"),
          ("decrement", "raw_update_ledger"), ("decrement", "raw_update"), ("decrement", "pos_function"),
          ("decrement_many_noledger", "checkout_per_item"), ("decrement_many", "checkout_per_item"),
          ("decrement_striped", "decrement"), ("decrement_bound", "decrement"),
          ("reserve_commit", "checkout_reserve_commit"), ("reserve_release", "checkout_reserve_commit"),
          ("claim_next", "claim_route"),
          ("packing_bound", "packing"), ("packing_bound", "packing_fallback"),
          ("decrement_set_clause", "raw_update"), ("decrement_invoker", "raw_update"),
          ("decrement_noledger", "decrement_set_clause"), ("decrement_events", "decrement_events_off"),
          ("transfer", "transfer_client"), ("kit", "kit_client"),
          ("reserve_commit_floor", "checkout_reserve_commit"), ("reserve_commit", "reserve_commit_floor"),
          ("reserve_commit_inline_floor", "checkout_reserve_commit"),
          ("transfer_floor", "transfer_client"), ("transfer", "transfer_floor"),
          ("kit_floor", "kit_client"), ("kit", "kit_floor"),
          ("packing_floor", "packing_fallback"), ("packing_bound", "packing_floor")]
BASELINES = ("raw_update", "raw_update_items", "pos_function", "raw_update_ledger", "checkout_per_item",
             "checkout_reserve_commit", "claim_route", "packing_fallback", "transfer_client", "kit_client",
             "reserve_commit_floor", "transfer_floor", "kit_floor", "packing_floor", "reserve_commit_inline_floor")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def setup(c):
    if c.execute("SELECT to_regnamespace('bench')").fetchone()[0] is None:
        print("bench: loading data (100 000 items twice, 1000 packing lines, 100 000 finished reservations, 300 000 batches, "
              "10 000 items at 2 locations, 10 000 kits)", flush=True)
        sh(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", os.path.join(HERE, "setup.sql")])


def reset(c, variant):
    if variant in ("claim_next", "claim_route"):
        c.execute(f"UPDATE {S}.batches SET status = 'available', claimed_by = NULL, claimed_at = NULL, "
                  f"lease_expires_at = NULL WHERE zone = 'bench' AND status <> 'available'")
    points = "quantity - 3" if variant in EVENTS else "NULL"
    c.execute(f"UPDATE {S}.items SET reorder_point = {points} WHERE sku LIKE 'bench-%' "
              f"AND reorder_point IS DISTINCT FROM {points}")
    # the same clean start for every variant: no dead tuples, no dirty buffers
    for t in ("bench.inventory", "bench.packing_progress", f"{S}.items", f"{S}.packing_progress", f"{S}.batches", f"{S}.reservations",
              f"{S}.reservation_lines", f"{S}.ledger", f"{S}.item_stripes", f"{S}.stock_levels", "bench.levels"):
        c.execute(f"VACUUM {t}")
    c.execute("CHECKPOINT")


def latencies(prefix):
    lat, failed = [], 0
    for path in glob.glob(prefix + "*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    lat.append(int(parts[2]))
                else:
                    failed += 1
        os.remove(path)
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000.0 if lat else None
    return pick(0.50), pick(0.99), failed


def script_for(variant, dist, tmp):
    """The variant's pgbench script with its keys drawn from `dist`, written to
    `tmp`; and the environment for pgbench (the variant's server settings)."""
    script, _, _, multi, _ = VARIANTS[variant]
    with open(os.path.join(HERE, "scripts", script)) as f:
        text = f.read().replace("KEY", DISTS[dist][1 if multi else 0])
    path = os.path.join(tmp, f"{variant}-{dist}.sql")
    with open(path, "w") as f:
        f.write(text)
    env = dict(os.environ)
    if variant in OPTIONS:
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + OPTIONS[variant]).strip()
    return path, env


def cpu_times():
    """The machine's CPU time so far, in seconds, from /proc/stat's first
    line: (busy, idle, iowait); busy = user + nice + system + irq + softirq
    + steal. None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / hz, idle / hz, iowait / hz


def run_one(c, variant, dist, clients, seconds, bindir, tmp):
    _, counter, units, _, _ = VARIANTS[variant]
    path, env = script_for(variant, dist, tmp)
    reset(c, variant)
    before = c.execute(counter).fetchone()[0]
    prefix = os.path.join(tmp, f"log-{variant}-{dist}-{clients}")
    cmd = [os.path.join(bindir, "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
           "-T", str(seconds), "-f", path, "--max-tries", "10", "-l", "--log-prefix", prefix]
    listener = None
    if variant in EVENTS:
        import psycopg
        listener = psycopg.connect("", autocommit=True)
        listener.execute("LISTEN atomic_inventory_events")
    cpu0 = cpu_times()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    cpu1 = cpu_times()
    if listener:
        listener.close()
    if out.returncode not in (0, 2):  # 2: some transactions failed (counted below)
        sys.exit(f"pgbench failed for {variant}/{dist}/{clients}:\n{out.stderr}")
    after = c.execute(counter).fetchone()[0]
    ok = float(after - before) / units
    tx = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    fails = re.search(r"number of failed transactions: (\d+)", out.stdout)
    retried = re.search(r"number of transactions retried: (\d+)", out.stdout)
    p50, p99, _ = latencies(prefix)
    # Where the whole machine's time went during the run (server, pgbench
    # and kernel share it): CPU busy per successful operation, and the share
    # of CPU time nobody used (idle, and idle waiting for I/O: with few
    # clients, mostly every backend waiting for its commit's WAL flush).
    cpu = {}
    if cpu0 and cpu1:
        busy, idle, iowait = (b - a for a, b in zip(cpu0, cpu1))
        total = busy + idle + iowait
        cpu = {"cpu_us_per_op": round(busy * 1e6 / ok, 1) if ok > 0 else None,
               "idle_pct": round(100 * (idle + iowait) / total, 1) if total > 0 else None}
    return {
        "variant": variant, "dist": dist, "clients": clients, "seconds": seconds,
        "ok_per_s": round(ok / seconds, 1), "transactions": int(tx.group(1)) if tx else None,
        "failed": int(fails.group(1)) if fails else 0, "retried": int(retried.group(1)) if retried else 0,
        "p50_ms": p50, "p99_ms": p99, **cpu,
    }


def machine(c):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    settings = dict(c.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                              "('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', "
                              "'shared_preload_libraries', 'wal_level', 'max_wal_size')").fetchall())
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "postgres": c.execute("SELECT version()").fetchone()[0], "settings": settings}


def paired_order(todo):
    """`todo` with each variant followed by the variants RATIOS compares it
    with (ours right after its baseline, or the other way round), so that a
    pair's two runs are neighbours in every round."""
    out = []
    for v in todo:
        for w in [v] + [o if b == v else b for o, b in RATIOS if v in (o, b)]:
            if w in todo and w not in out:
                out.append(w)
    return out


def round_ratios(every_run, ours, base, dist, clients):
    """The ratio ours / base of each round (both measured in it, neighbours
    by paired_order), in round order."""
    ok = {(r["variant"], r["round"]): r["ok_per_s"] for r in every_run
          if r["dist"] == dist and r["clients"] == clients}
    rounds = sorted({rnd for v, rnd in ok})
    return [ok[(ours, n)] / ok[(base, n)] for n in rounds
            if (ours, n) in ok and ok.get((base, n))]


def ratio_table(meta, cell):
    """A markdown table with a row per RATIOS pair and distribution and a
    column per client count; `cell(ours, base, dist, clients)` gives a cell,
    None where the run did not measure it. Pairs this run did not measure at
    all (--variants, --dists) are left out."""
    out = ["| ours | baseline | dist | " + " | ".join(f"{c} clients" for c in meta["clients"]) + " |",
           "|---|---|---|" + "---|" * len(meta["clients"])]
    for ours, base in RATIOS:
        for d in meta["dists"]:
            cells = [cell(ours, base, d, c) for c in meta["clients"]]
            if any(cells):
                out.append(f"| {ours} | {base} | {d} | " + " | ".join(x or "-" for x in cells) + " |")
    return out


def report(results, meta, out_dir, command, every_run):
    by = {(r["variant"], r["dist"], r["clients"]): r for r in results}
    lines = ["# Benchmarks", "",
             f"Measured {meta['date']} on {meta['machine']['cores']} cores ({meta['machine']['cpu']}), "
             f"{meta['machine']['postgres'].split(',')[0]}, release build, library preloaded.",
             f"Settings: {', '.join(f'{k}={v}' for k, v in sorted(meta['machine']['settings'].items()))}; "
             f"pgbench `-M prepared -T {meta['seconds']} --max-tries 10`, `-j min(clients, 2)`, cluster and pgbench on the same machine; "
             f"every variant run {meta['rounds']} times, interleaved (A B C, A B C, ...), the upper-median run by ok/s "
             f"reported (with 2 rounds: the better one).",
             "", f"Command: `{command}`", "",
             "**ok/s** = successful operations per second, counted from the database (stock consumed / units per "
             "operation), never from pgbench's TPS. p50/p99: per-transaction latency from pgbench's log. "
             "failed: transactions that failed after retries (deadlocks, serialization). "
             "CPU µs/op: the whole machine's busy CPU time (server, pgbench, kernel; /proc/stat) per successful "
             "operation; idle %: the share of CPU time nobody used during the run (idle and I/O wait).", "",
             "## Ratios (ours / baseline, ok/s, same run)", ""]

    def of_medians(ours, base, d, c):
        a, b = by.get((ours, d, c)), by.get((base, d, c))
        return f"{a['ok_per_s'] / b['ok_per_s']:.2f}x" if a and b and b["ok_per_s"] else None

    def by_round(ours, base, d, c):
        rs = round_ratios(every_run, ours, base, d, c)
        return f"{statistics.median(rs):.2f}x ({', '.join(f'{x:.2f}' for x in rs)})" if rs else None

    lines += ratio_table(meta, of_medians)
    if meta["rounds"] >= 3:
        lines += ["", "## Ratios round by round (ours / baseline, each round's two neighbouring runs)", "",
                  "The median of the rounds' ratios, then every round's: less sensitive to the machine's slow "
                  "spells than the ratio of two medians above, as each round's two runs are back to back.", ""]
        lines += ratio_table(meta, by_round)
    lines += ["", "## All runs (upper median of the rounds; every round's ok/s in the last column)", "",
              "| variant | dist | clients | ok/s | p50 ms | p99 ms | failed | retried | CPU µs/op | idle % | rounds ok/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f = lambda v: "-" if v is None else f"{v:.2f}"
        g = lambda v: "-" if v is None else f"{v:.1f}"
        lines.append(f"| {r['variant']} | {r['dist']} | {r['clients']} | {r['ok_per_s']:.0f} | {f(r['p50_ms'])} | "
                     f"{f(r['p99_ms'])} | {r['failed']} | {r['retried']} | {g(r.get('cpu_us_per_op'))} | "
                     f"{g(r.get('idle_pct'))} | "
                     f"{', '.join(f'{x:.0f}' for x in r.get('rounds_ok_per_s', []))} |")
    with open(os.path.join(out_dir, "benchmarks-results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "benchmarks-results.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "every_run": every_run}, f, indent=1)
    return plot(results, meta, os.path.join(out_dir, "benchmarks.png"), list(VARIANTS), BASELINES)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="1,8,32,64")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--variants", default=",".join(v for v in VARIANTS if v not in WHAT_IF))
    ap.add_argument("--dists", default=",".join(DISTS))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "docs"))
    ap.add_argument("--command", default="bash pg_test/bench/run.sh")
    ap.add_argument("--rounds", type=int, default=2,
                    help="runs of each variant, interleaved; the upper median by ok/s is reported (the better of 2)")
    a = ap.parse_args()
    clients = [int(x) for x in a.clients.split(",")]
    variants = a.variants.split(",")
    dists = a.dists.split(",")
    bindir = os.environ["AI_PG_BINDIR"]
    import psycopg  # here, so that plot.py and cpu_profile.py can import this module's tables without it
    c = psycopg.connect("", autocommit=True)
    setup(c)
    results, every_run = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Variants compared with each other run back to back (paired_order),
        # and the whole sequence is repeated, so slow drift of the machine
        # (disk, neighbours) hits them alike; each variant's median run by
        # ok/s is the one reported, and each ratio also round by round.
        for d in dists:
            for n in clients:
                todo = paired_order([v for v in variants if not VARIANTS[v][4] or d in VARIANTS[v][4]])
                runs = {v: [] for v in todo}
                for rnd in range(a.rounds):
                    # every other round backwards (A B C, C B A, ...): each
                    # pair's two runs swap places, so a drift of the machine
                    # within a round favours neither side
                    for v in (todo if rnd % 2 == 0 else todo[::-1]):
                        r = run_one(c, v, d, n, a.seconds, bindir, tmp)
                        r["round"] = rnd + 1
                        runs[v].append(r)
                        every_run.append(r)
                        print(f"bench: round {rnd + 1} {v:23} {d:8} {n:3} clients: {r['ok_per_s']:9.1f} ok/s  "
                              f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  failed {r['failed']}  "
                              f"CPU {r.get('cpu_us_per_op')} us/op  idle {r.get('idle_pct')}%", flush=True)
                for v in todo:
                    ordered = sorted(runs[v], key=lambda r: r["ok_per_s"])
                    med = dict(ordered[len(ordered) // 2])
                    med["rounds_ok_per_s"] = [r["ok_per_s"] for r in runs[v]]
                    results.append(med)
    meta = {"date": time.strftime("%Y-%m-%d"), "seconds": a.seconds, "rounds": a.rounds, "clients": clients,
            "variants": variants,
            "dists": dists, "machine": machine(c)}
    os.makedirs(os.path.abspath(a.out), exist_ok=True)
    drawn = report(results, meta, os.path.abspath(a.out), a.command, every_run)
    print(f"bench: wrote {os.path.abspath(a.out)}/benchmarks-results.md, .json"
          + (" and benchmarks.png" if drawn else " (no plot)"))


if __name__ == "__main__":
    main()
