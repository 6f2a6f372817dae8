#!/usr/bin/env bash
# The expiry sweep under load (see sweep.py): a throwaway cluster with the
# release build and the benchmark data, the background sweeper off, then
# 100,000 due holds expired by expire_reservations() while sales of the same
# items run. A developer's measurement: not part of the tests.
#
#   bash pg_test/bench/sweep.sh
#   bash pg_test/bench/sweep.sh --holds 20000 --clients 32 --limit 500
#   AI_PG_MAJOR=18 bash pg_test/bench/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source pg_test/lib.sh
ensure_deps "${AI_PG_MAJOR:-15}"
use_pg "${AI_PG_MAJOR:-15}"
install_extension --release
AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=0 -c max_wal_size=4GB" \
    start_cluster
python3 pg_test/bench/sweep.py --command "bash pg_test/bench/sweep.sh${*:+ $*}" "$@"
stop_cluster
