#!/usr/bin/env python3
"""Draw a benchmark run: successful operations per second of each variant
against the number of clients, one panel per key distribution.

    python3 pg_test/bench/plot.py docs/benchmarks-results.json             # -> docs/benchmarks.png
    python3 pg_test/bench/plot.py /tmp/run/benchmarks-results.json -o /tmp/run.png

Reads the results .json that bench.py writes ({"meta": ..., "results": [...]};
each result has variant, dist, clients, ok_per_s). bench.py calls plot() itself
at the end of a run. Baselines (bench.py's BASELINES) are drawn dashed; each
variant keeps one colour and marker in every panel and every run (its place in bench.py's
VARIANTS). Needs matplotlib (`python3 -m pip install matplotlib`).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _pyplot():
    """matplotlib.pyplot with a file-only backend, or None if not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(results, meta, path, order=(), baselines=()):
    """Write the PNG to `path`; False (and a message) if matplotlib is missing.
    `order`: every known variant name, for stable colours; `baselines`: the
    variants drawn dashed."""
    plt = _pyplot()
    if plt is None:
        print("plot: matplotlib is not installed, no plot drawn "
              "(install it with: python3 -m pip install matplotlib)", file=sys.stderr)
        return False
    order = list(order) + [v for v in meta["variants"] if v not in order]
    by = {(r["variant"], r["dist"], r["clients"]): r for r in results}
    colours = plt.get_cmap("tab20").colors
    markers = "osD^vPX*"  # tab20 pairs look alike; a marker tells them apart
    dists, clients = meta["dists"], meta["clients"]
    fig, axes = plt.subplots(1, len(dists), figsize=(6 * len(dists), 5), squeeze=False)
    shown = {}
    for ax, d in zip(axes[0], dists):
        for v in meta["variants"]:
            pts = [(c, by[(v, d, c)]["ok_per_s"]) for c in clients if (v, d, c) in by]
            if pts:
                k = order.index(v)
                (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=v,
                                  color=colours[k % len(colours)], marker=markers[k % len(markers)],
                                  linestyle="--" if v in baselines else "-")
                shown.setdefault(v, line)
        ax.set_title(f"{d} keys")
        ax.set_xlabel("clients")
        ax.set_ylabel("successful operations / s")
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.grid(alpha=0.3)
    fig.legend(list(shown.values()), list(shown), loc="lower center", ncol=min(6, len(shown)), fontsize=8)
    postgres = meta.get("machine", {}).get("postgres", "").split(" (")[0].split(" on ")[0]
    fig.suptitle(f"atomic_inventory vs baselines (dashed), same run: {meta.get('date', '?')}, "
                 f"{meta.get('machine', {}).get('cores', '?')} cores, {postgres}")
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="a results .json written by bench.py")
    ap.add_argument("-o", "--out", help="PNG to write (default: benchmarks.png next to the .json)")
    a = ap.parse_args()
    with open(a.json) as f:
        saved = json.load(f)
    sys.path.insert(0, HERE)
    from bench import BASELINES, VARIANTS  # bench.py needs psycopg only to run, not to be imported
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.json)), "benchmarks.png")
    if not plot(saved["results"], saved["meta"], out, list(VARIANTS), BASELINES):
        sys.exit(1)
    print(f"plot: wrote {out}")


if __name__ == "__main__":
    main()
