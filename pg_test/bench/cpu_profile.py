#!/usr/bin/env python3
"""Where one call's CPU goes: backend CPU per operation, split by phase.

Called by pg_test/bench/profile.sh (which starts the cluster, installs the
release build and loads pg_test/bench/setup.sql). For each variant of
bench.py it runs pgbench with one client and a fixed number of transactions
under `perf record -a --call-graph dwarf`, keeps the samples of the backend
pgbench talked to, and sorts each sample into the first phase its call stack
contains (PHASES, in order). Samples are taken on CPU time (cpu-clock), so
the figures are backend CPU microseconds per operation, not latency: waiting
for the disk or the client is not in them.

One client on purpose: it measures what one call costs, without the
scheduling noise of many processes on two cores; throughput under
concurrency is run.sh's job.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import VARIANTS, reset, script_for, setup  # noqa: E402

import psycopg  # noqa: E402

# (phase, test on the stack's frames); the first match wins. A frame is
# (symbol, library file name).
PHASES = [
    ("statements run inside the function (SPI, executor)",
     lambda st: any(s.startswith("SPI_") and s != "SPI_connect" and s != "SPI_finish" for s, _ in st)),
    # (our callable functions are all SECURITY DEFINER; the C CHECK of items,
    # also ours, runs inside whichever statement writes the table)
    ("our function's own code (Rust, pgrx, SPI connect)",
     lambda st: any(d.startswith("atomic_inventory") for _, d in st)
     and any(s == "fmgr_security_definer" for s, _ in st)),
    ("function call (fmgr: SECURITY DEFINER, SET search_path; PL/pgSQL's interpreter)",
     lambda st: any(s == "fmgr_security_definer" for s, _ in st)),
    ("plan cache revalidation (search_path check)",
     lambda st: any(s == "GetCachedPlan" for s, _ in st)),
    ("top-level statement: executor (outer SELECT, or the raw statement)",
     lambda st: any(s in ("PortalRun", "PortalStart") for s, _ in st)),
    ("commit (WAL insert and flush)",
     lambda st: any(s == "CommitTransactionCommand" for s, _ in st)),
    ("client protocol (socket read/write, parse of messages)",
     lambda st: any(s in ("secure_write", "secure_read", "pq_getbyte", "pq_getmessage", "socket_flush",
                          "pq_flush", "exec_bind_message") for s, _ in st)),
    ("other", lambda st: True),
]

OURS = PHASES[1][0]
TOP = PHASES[4][0]
PROTOCOL = PHASES[6][0]

FRAME = re.compile(r"^\s*[0-9a-f]+ (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$")
HEAD = re.compile(r"^\s*(\S+)\s+(\d+)/(\d+)\s")


def samples_by_pid(text):
    """perf script output -> {pid: [stack, ...]}, a stack = [(symbol, dso), ...]"""
    out = collections.defaultdict(list)
    pid, stack = None, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith("\t"):
            if stack is not None and pid is not None:
                out[pid].append(stack)
            m = HEAD.match(line)
            pid = int(m.group(2)) if m and m.group(1) == "postgres" else None
            stack = []
            continue
        m = FRAME.match(line)
        if m and stack is not None:
            stack.append((m.group(1), os.path.basename(m.group(2))))
    if stack is not None and pid is not None:
        out[pid].append(stack)
    return out


def top_symbols(stacks, n):
    """The n symbols with the most samples inside the function call (each
    counted once per stack, frames leafward of fmgr_security_definer: what
    the call itself spends, statements included)."""
    inside = collections.Counter()
    for st in stacks:
        names = [s for s, _ in st]
        if "fmgr_security_definer" not in names:
            continue
        inside.update(set(names[:names.index("fmgr_security_definer")]))
    return inside.most_common(n)


def top_leaves(stacks, phase, n):
    """The n leaf symbols (self time) with the most samples among the stacks
    sorted into `phase`."""
    leaves = collections.Counter()
    for st in stacks:
        for name, t in PHASES:
            if t(st):
                if name == phase and st:
                    leaves[st[0][0]] += 1
                break
    return leaves.most_common(n)


def profile(c, variant, dist, calls, freq, bindir, tmp, top=0):
    path, env = script_for(variant, dist, tmp)
    reset(c, variant)
    data = os.path.join(tmp, f"{variant}.perf")
    run = subprocess.run(["perf", "record", "-q", "-F", str(freq), "-a", "--call-graph", "dwarf,16384", "-o", data,
                          "--", os.path.join(bindir, "pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", str(calls),
                          "-f", path], capture_output=True, text=True, env=env)
    if run.returncode != 0 or "number of failed transactions: 0" not in run.stdout:
        sys.exit(f"profile: pgbench failed for {variant}:\n{run.stdout}\n{run.stderr}")
    script_out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,time,ip,sym,dso"],
                                capture_output=True, text=True).stdout
    os.remove(data)
    by_pid = samples_by_pid(script_out)
    if not by_pid:
        sys.exit("profile: no samples of a postgres process (is perf allowed to sample? see perf_event_paranoid)")
    # the backend pgbench talked to is the busiest postgres process
    stacks = max(by_pid.values(), key=len)
    counts = collections.Counter()
    for st in stacks:
        # perf lists the leaf first; phases look at the whole stack
        for name, test in PHASES:
            if test(st):
                counts[name] += 1
                break
    per_sample_us = 1e6 / freq
    for sym, k in top_symbols(stacks, top):
        print(f"profile: {variant}: {k * per_sample_us / calls:7.1f} us  {sym}", flush=True)
    for phase in (OURS, TOP, PROTOCOL) if top else ():
        print(f"profile: {variant}: self time in {phase!r}:")
        for sym, k in top_leaves(stacks, phase, top):
            print(f"profile: {variant}: {k * per_sample_us / calls:7.1f} us  {sym}", flush=True)
    return {name: counts[name] * per_sample_us / calls for name, _ in PHASES}, len(stacks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="raw_update,pos_function,decrement_noledger,raw_update_ledger,decrement")
    ap.add_argument("--dist", default="uniform")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--freq", type=int, default=1999, help="perf samples per second per CPU")
    ap.add_argument("--command", default="bash pg_test/bench/profile.sh")
    ap.add_argument("--top", type=int, default=0,
                    help="also print the N symbols costing the most inside the function call (inclusive)")
    a = ap.parse_args()
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"profile: unknown variant {v} (one of {', '.join(VARIANTS)})")
    bindir = os.environ["AI_PG_BINDIR"]
    c = psycopg.connect("", autocommit=True)
    setup(c)
    version = c.execute("SHOW server_version").fetchone()[0]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        for v in variants:
            rows[v], n = profile(c, v, a.dist, a.calls, a.freq, bindir, tmp, a.top)
            print(f"profile: {v}: {n} backend samples, {sum(rows[v].values()):.1f} us of backend CPU per operation",
                  flush=True)
    print()
    print(f"Backend CPU per operation in µs (PostgreSQL {version}, 1 client, {a.calls:,} operations, "
          f"`{a.dist}` keys, perf at {a.freq} Hz, dwarf call stacks). Command: `{a.command}`")
    print()
    print("| phase | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for name, _ in PHASES:
        vals = [rows[v][name] for v in variants]
        if all(x < 0.05 for x in vals):
            continue
        print(f"| {name} | " + " | ".join(f"{x:.1f}" for x in vals) + " |")
    print("| **total** | " + " | ".join(f"**{sum(rows[v].values()):.1f}**" for v in variants) + " |")


if __name__ == "__main__":
    main()
