#!/usr/bin/env bash
# The background worker (shared_preload_libraries, sweep_interval = 1 s)
# expires a reservation with nobody calling expire_reservations().
set -euo pipefail
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
workers=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
item=$(q "SELECT atomic_inventory.create_item(p_quantity => 5, p_sku => 'worker-check-' || gen_random_uuid())->>'inventory_id'")
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2)), p_ttl_seconds => 1)->>'reservation_id'")
# wait_expired ID: up to 30 s for the worker to expire reservation ID; sets $status.
wait_expired() {
    for _ in $(seq 1 60); do
        status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$1'")
        [[ "$status" == expired ]] && return
        sleep 0.5
    done
}
status=""
# The worker may still be (re)connecting: the database is created after the
# server starts, and a failed start is retried after 10 s.
wait_expired "$res"
reserved=$(q "SELECT reserved FROM atomic_inventory.items WHERE id = '$item'")
echo "worker_check: sweeper processes at start: $workers; reservation is $status; item reserved $reserved"
[[ "$status" == expired && "$reserved" == 0 ]]

# Between a new library and ALTER EXTENSION UPDATE (simulated: pg_extension
# names another version; the tables stay current, so only the check stops
# the sweep) the worker skips its rounds with one warning and keeps running;
# it sweeps again once the versions agree. (It used to sweep regardless, and
# on a real older schema fail every round, ending the worker each time.)
version=$(q "SELECT extversion FROM pg_extension WHERE extname = 'atomic_inventory'")
restore() { q "UPDATE pg_catalog.pg_extension SET extversion = '$version' WHERE extname = 'atomic_inventory'"; }
trap restore EXIT
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2)))->>'reservation_id'")
pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
q "UPDATE pg_catalog.pg_extension SET extversion = '0.0.0-worker-check' WHERE extname = 'atomic_inventory'"
q "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 second' WHERE id = '$res'"
sleep 4
outdated_status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$res'")
outdated_pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
warnings=$(grep -c "not sweeping until the update: SCHEMA_OUTDATED" "$AI_CLUSTER_DIR/server.log" || true)
restore
trap - EXIT
wait_expired "$res"
echo "worker_check: outdated schema: reservation $outdated_status after 4 s, worker $pid -> $outdated_pid, $warnings warning(s); after the versions agree: $status"
[[ "$outdated_status" == active && -n "$pid" && "$outdated_pid" == "$pid" && "$warnings" == 1 && "$status" == expired ]]

# In a database without the extension (simulated: pg_extension's row renamed
# for a few seconds) the worker says so once, in a WARNING naming the
# database, instead of sweeping nothing in silence (the default database is
# `postgres`); it sweeps again once the extension is there.
missing_before=$(grep -c 'the extension is not installed in database "ai_test"' "$AI_CLUSTER_DIR/server.log" || true)
unrename() { q "UPDATE pg_catalog.pg_extension SET extname = 'atomic_inventory' WHERE extname = 'atomic_inventory_worker_check'"; }
trap unrename EXIT
q "UPDATE pg_catalog.pg_extension SET extname = 'atomic_inventory_worker_check' WHERE extname = 'atomic_inventory'"
sleep 4
missing_after=$(grep -c 'the extension is not installed in database "ai_test"' "$AI_CLUSTER_DIR/server.log" || true)
unrename
trap - EXIT
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 1)), p_ttl_seconds => 1)->>'reservation_id'")
wait_expired "$res"
echo "worker_check: extension missing for 4 s: $((missing_after - missing_before)) warning(s); after it is back: $status"
[[ $((missing_after - missing_before)) == 1 && "$status" == expired ]]

# The worker's rounds resolve names through the extension's pinned search
# path, not the database's. The worker runs as the bootstrap superuser; a
# database owner could set search_path = public, pg_catalog for the database
# and create in public a `<` for timestamptz that calls every time past.
# Under that path the round's "expires_at < now()" picked it: every hold
# expired at once, and the owner's function ran as superuser. The setting
# applies to new connections: the server restarts to give the worker one.
evil_off() {
    q "ALTER DATABASE ai_test RESET search_path"
    q "DROP OPERATOR IF EXISTS public.< (timestamptz, timestamptz)"
    q "DROP FUNCTION IF EXISTS public.ai_worker_check_lt(timestamptz, timestamptz)"
}
trap evil_off EXIT
q "CREATE FUNCTION public.ai_worker_check_lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS 'SELECT true'"
q "CREATE OPERATOR public.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.ai_worker_check_lt)"
q "ALTER DATABASE ai_test SET search_path = public, pg_catalog"
long=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 1)), p_ttl_seconds => 3600)->>'reservation_id'")
pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
runuser -u postgres -- env -u RUST_BACKTRACE "$AI_PG_BINDIR/pg_ctl" -D "$AI_CLUSTER_DIR/data" -l "$AI_CLUSTER_DIR/server.log" \
    -w -o "$AI_PG_START_OPTS" restart >/dev/null
path=$(q "SHOW search_path")
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 1)), p_ttl_seconds => 1)->>'reservation_id'")
wait_expired "$res"
long_status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$long'")
new_pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
evil_off
trap - EXIT
echo "worker_check: database search_path '$path' with a hostile < in public, worker $pid -> $new_pid: a 1 s hold $status, a 1 h hold $long_status"
[[ "$path" == "public, pg_catalog" && -n "$new_pid" && "$new_pid" != "$pid" && "$status" == expired && "$long_status" == active ]]
