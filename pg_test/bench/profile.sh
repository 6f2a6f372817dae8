#!/usr/bin/env bash
# Where one call's CPU goes (see cpu_profile.py): a throwaway cluster with the
# release build and the benchmark data, then each variant under perf with
# one client. Prints a markdown table of backend CPU per operation by phase.
#
#   bash pg_test/bench/profile.sh                                    # the single-line sale variants
#   bash pg_test/bench/profile.sh --variants checkout_per_item,decrement_many --calls 5000
#   bash pg_test/bench/profile.sh --variants decrement_many_noledger --top 40   # + symbols inside the call
#   AI_PG_MAJOR=18 bash pg_test/bench/profile.sh
#
# Needs perf (Debian package linux-perf, installed here if missing) and a
# kernel that lets root sample (perf_event_paranoid <= 1, or root in most
# virtual machines). A developer's tool: not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
source pg_test/lib.sh
ensure_deps "${AI_PG_MAJOR:-15}"
use_pg "${AI_PG_MAJOR:-15}"
if ! command -v perf >/dev/null; then
    log "installing perf (Debian package linux-perf)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
install_extension --release
AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=0 -c max_wal_size=4GB" \
    start_cluster
python3 pg_test/bench/cpu_profile.py --command "bash pg_test/bench/profile.sh${*:+ $*}" "$@"
stop_cluster
