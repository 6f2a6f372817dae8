#!/usr/bin/env bash
# The stats view without preloading (each backend counts its own calls, in
# its own memory), read by a parallel plan: stats_snapshot() must run in the
# backend that made the calls. Declared PARALLEL SAFE (0.2.0), a forced
# parallel plan ran it in a worker, which answered its own empty table
# (0 calls). Runs on the cluster without shared_preload_libraries.
set -euo pipefail
out="$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT atomic_inventory.stats_reset() IS NOT NULL;
SELECT atomic_inventory.create_item(p_quantity => 5, p_id => '00000000-0000-0000-0000-00000005ba01') IS NOT NULL;
SELECT atomic_inventory.increment_inventory('00000000-0000-0000-0000-00000005ba01', 1) IS NOT NULL;
SELECT atomic_inventory.increment_inventory('00000000-0000-0000-0000-00000005ba01', 1) IS NOT NULL;
-- PostgreSQL 16 renamed the setting
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false);
SELECT 'scope=' || scope || ' calls=' || calls FROM atomic_inventory.stats WHERE function = 'increment_inventory';
SQL
)"
line="$(grep '^scope=' <<<"$out")"
echo "stats_backend: under a forced parallel plan the view says: $line"
if [[ "$line" == "scope=backend calls=2" ]]; then
    echo "stats_backend: 1 passed, 0 failed"
else
    echo "FAIL stats_backend: expected scope=backend calls=2"
    echo "stats_backend: 0 passed, 1 failed"
    exit 1
fi
