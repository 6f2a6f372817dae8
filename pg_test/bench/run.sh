#!/usr/bin/env bash
# The benchmark: starts a throwaway cluster, installs the release build
# (library preloaded, as in production), loads the data and runs every
# pgbench script of pg_test/bench/scripts for each client count and key
# distribution, one after another, with the same settings. Writes
# docs/benchmarks-results.md, docs/benchmarks-results.json, docs/benchmarks.png.
#
#   bash pg_test/bench/run.sh                          # 1,8,32,64 clients, 8 s each, 2 rounds (~45 min)
#   bash pg_test/bench/run.sh --clients 8,32 --seconds 5 --variants decrement,raw_update --dists hot
set -euo pipefail
cd "$(dirname "$0")/../.."
source pg_test/lib.sh
ensure_deps "${AI_PG_MAJOR:-15}"
use_pg "${AI_PG_MAJOR:-15}"
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q 'matplotlib>=3.7'
install_extension --release
AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=0 -c max_wal_size=4GB" \
    start_cluster
python3 pg_test/bench/bench.py --command "bash pg_test/bench/run.sh${*:+ $*}" "$@"
stop_cluster
