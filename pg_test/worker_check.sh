#!/usr/bin/env bash
# The background worker (shared_preload_libraries, sweep_interval = 1 s)
# expires a reservation with nobody calling expire_reservations().
set -euo pipefail
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
workers=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
item=$(q "SELECT atomic_inventory.create_item(p_quantity => 5, p_sku => 'worker-check-' || gen_random_uuid())->>'inventory_id'")
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2)), p_ttl_seconds => 1)->>'reservation_id'")
status=""
# The worker may still be (re)connecting: the database is created after the
# server starts, and a failed start is retried after 10 s.
for _ in $(seq 1 60); do
    status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$res'")
    [[ "$status" == expired ]] && break
    sleep 0.5
done
reserved=$(q "SELECT reserved FROM atomic_inventory.items WHERE id = '$item'")
echo "worker_check: sweeper processes at start: $workers; reservation is $status; item reserved $reserved"
[[ "$status" == expired && "$reserved" == 0 ]]
