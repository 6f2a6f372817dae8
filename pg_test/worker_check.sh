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

# Terminated (pg_terminate_backend, as an operator might), the worker comes
# back after its restart time (10 s) instead of leaving expiry off until the
# next server restart, and expires again.
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'" >/dev/null
back=0
for _ in $(seq 1 40); do
    sleep 0.5
    back=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'atomic_inventory sweeper'")
    [[ "$back" == 1 ]] && break
done
res=$(q "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2)), p_ttl_seconds => 1)->>'reservation_id'")
status=""
wait_expired "$res"
echo "worker_check: after pg_terminate_backend the sweeper is back: $back process(es); a new hold is $status"
[[ "$back" == 1 && "$status" == expired ]]

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

# A transaction that keeps an item row locked (an open admin session, a stuck
# job) must not let the sweep freeze other items' sales. The sweep locks the
# due holds' items in ascending id order; it used to wait for the locked one
# with no limit while holding the items before it, so their sales queued
# behind it for as long as that transaction lived, and nothing expired.
# Now each lock wait of a sweep is limited (atomic_inventory.sweep_lock_timeout,
# default 1 s): expire_reservations() answers LOCK_TIMEOUT (nothing changed),
# and the worker expires the other holds one by one, leaving the busy one
# until its row is free. In both parts item a's id sorts before item b's, so
# the sweep locks a first and then waits for b.
# make_pair DB: items $a < $b and a due-soon hold $ra, $rb on each, in DB.
make_pair() {
    read -r a b <<<"$(psql -X -A -t -q -d "$1" -c "SELECT string_agg(x::text, ' ' ORDER BY x) FROM (SELECT gen_random_uuid() AS x FROM generate_series(1, 2)) AS s")"
    for i in "$a" "$b"; do
        psql -X -A -t -q -d "$1" -v ON_ERROR_STOP=1 -c "SELECT atomic_inventory.create_item(p_id => '$i', p_sku => 'worker-lock-$i', p_quantity => 10)" >/dev/null
    done
    ra=$(psql -X -A -t -q -d "$1" -c "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$a', 'quantity', 1)), p_ttl_seconds => 60)->>'reservation_id'")
    rb=$(psql -X -A -t -q -d "$1" -c "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$b', 'quantity', 1)), p_ttl_seconds => 60)->>'reservation_id'")
}
# hold_b DB SECONDS: another transaction locks item $b's row for SECONDS.
hold_b() {
    psql -X -q -d "$1" -c "BEGIN" -c "SELECT 1 FROM atomic_inventory.items WHERE id = '$b' FOR UPDATE" \
        -c "SELECT pg_sleep($2)" -c "COMMIT" >/dev/null &
    holder=$!
}
# 1. expire_reservations(), in a database the worker does not sweep
q "CREATE DATABASE ai_worker_lock"
psql -X -q -d ai_worker_lock -v ON_ERROR_STOP=1 -c "CREATE EXTENSION atomic_inventory"
make_pair ai_worker_lock
psql -X -q -d ai_worker_lock -c "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 second'"
hold_b ai_worker_lock 6
sleep 0.5
started=$(date +%s%N)
fn_out=$(psql -X -A -t -q -d ai_worker_lock -c "SET atomic_inventory.sweep_lock_timeout = 500" \
    -c "SET statement_timeout = '5s'" -c "SELECT atomic_inventory.expire_reservations()" 2>&1 || true)
fn_ms=$(( ($(date +%s%N) - started) / 1000000 ))
fn_code=$(grep -oE 'LOCK_TIMEOUT|statement timeout' <<<"$fn_out" | head -1 || true)
fn_limit=$(grep -oE '"lock_timeout_ms" *: *[0-9]+' <<<"$fn_out" | grep -oE '[0-9]+$' || true)
wait "$holder"
fn_after=$(psql -X -A -t -q -d ai_worker_lock -c "SELECT atomic_inventory.expire_reservations()->>'expired'")
echo "worker_check: item b locked by another transaction: expire_reservations() ${fn_code:-answered '$fn_out'} (limit $fn_limit ms) after $fn_ms ms; once b was free it expired $fn_after"
[[ "$fn_code" == LOCK_TIMEOUT && "$fn_limit" == 500 && "$fn_ms" -lt 4000 && "$fn_after" == 2 ]]
# On a bound source, a row held past the limit fails that source's part of
# the sweep only (a WARNING naming it); a managed hold due at the same time
# expires, and the bound one once its row is free.
fq() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d ai_worker_lock -c "$1"; }
fq "CREATE TABLE public.lock_stock (id integer PRIMARY KEY, quantity numeric NOT NULL CHECK (quantity >= 0), reserved numeric NOT NULL DEFAULT 0)"
fq "INSERT INTO public.lock_stock VALUES (1, 10)"
fq "SELECT atomic_inventory.bind_stock_source('lock_stock', 'public.lock_stock', 'id', 'quantity', 'reserved')" >/dev/null
rbound=$(fq "SELECT atomic_inventory.bound_reserve('lock_stock', '[{\"item_id\": \"1\", \"quantity\": 2}]')->>'reservation_id'")
rmanaged=$(fq "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$a', 'quantity', 1)))->>'reservation_id'")
fq "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 second' WHERE id IN ('$rbound', '$rmanaged')"
psql -X -q -d ai_worker_lock -c "BEGIN" -c "SELECT 1 FROM public.lock_stock WHERE id = 1 FOR UPDATE" \
    -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
bound_out=$(psql -X -A -t -q -d ai_worker_lock -c "SET atomic_inventory.sweep_lock_timeout = 500" \
    -c "SET statement_timeout = '3s'" -c "SELECT atomic_inventory.expire_reservations()->>'expired'" 2>&1 || true)
bound_warned=$(grep -c "could not expire the reservations of source lock_stock" <<<"$bound_out" || true)
bound_expired=$(tail -1 <<<"$bound_out")
bound_status=$(fq "SELECT string_agg(status, ',' ORDER BY id = '$rmanaged') FROM atomic_inventory.reservations WHERE id IN ('$rbound', '$rmanaged')")
wait "$holder"
bound_after=$(fq "SELECT atomic_inventory.expire_reservations()->>'expired'")
bound_reserved=$(fq "SELECT reserved FROM public.lock_stock WHERE id = 1")
q "DROP DATABASE ai_worker_lock WITH (FORCE)"
echo "worker_check: a bound source's row locked by another transaction: expire_reservations() expired $bound_expired with $bound_warned warning(s) naming the source; bound,managed holds $bound_status; once free it expired $bound_after; reserved column $bound_reserved"
[[ "$bound_expired" == 1 && "$bound_warned" == 1 && "$bound_status" == "active,expired" && "$bound_after" == 1 && "$bound_reserved" == 0 ]]
# 2. the worker (sweep_interval = 1 s): both holds due at once, so one
# round takes both; b is locked before they are due
make_pair ai_test
hold_b ai_test 14
q "UPDATE atomic_inventory.reservations SET expires_at = now() + interval '2 seconds' WHERE id IN ('$ra', '$rb')"
sleep 4.5
started=$(date +%s%N)
sale=$(psql -X -A -t -q -c "SET statement_timeout = '5s'" \
    -c "SELECT atomic_inventory.decrement_inventory(p_inventory_id => '$a', p_quantity => 1)->>'success'" 2>&1 || true)
sale_ms=$(( ($(date +%s%N) - started) / 1000000 ))
a_status=""
for _ in $(seq 1 10); do
    a_status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$ra'")
    [[ "$a_status" == expired ]] && break
    sleep 0.5
done
b_status=$(q "SELECT status FROM atomic_inventory.reservations WHERE id = '$rb'")
holding=$(q "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(14)' AND state = 'active'")
wait "$holder"
# logged once the round's one-by-one pass is over (after b's wait too)
busy_warnings=$(grep -c "stayed locked longer than sweep_lock_timeout" "$AI_CLUSTER_DIR/server.log" || true)
wait_expired "$rb"
reserved=$(q "SELECT string_agg(reserved::text, ',' ORDER BY id) FROM atomic_inventory.items WHERE id IN ('$a', '$b')")
# A sweep rolled back after a lock wait releases what it held (buffer pins,
# relation, plan and snapshot references) with its subtransaction; when they
# were the outer transaction's, its commit logged each as a leak. (Counts the
# whole server log: every stage before this one ran on this cluster.)
leaks=$(grep -cE "(reference|refcount) leak" "$AI_CLUSTER_DIR/server.log" || true)
echo "worker_check: item b locked by another transaction: a sale of a '$sale' in $sale_ms ms; a's due hold $a_status while b was still locked (holder running: $holding, $busy_warnings warning(s)), b's $status once free; reserved a,b $reserved; $leaks resource leak warning(s) in the server log"
[[ "$sale" == true && "$sale_ms" -lt 3000 && "$a_status" == expired && "$b_status" == active \
    && "$holding" == 1 && "$busy_warnings" -ge 1 && "$status" == expired && "$reserved" == "0,0" && "$leaks" == 0 ]]
