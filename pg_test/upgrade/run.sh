#!/usr/bin/env bash
# ALTER EXTENSION atomic_inventory UPDATE from every earlier release, on the
# running test cluster (PG* environment, superuser):
#   1. install release A from its frozen script (pg_test/upgrade/), write data
#      through its functions (items, sales, a reservation, a claimed batch);
#   2. update to the current version with the shipped sql/atomic_inventory--A--B.sql;
#   3. check the data is untouched, work started before the update finishes
#      after it (commit the reservation, complete the batch), the ledger
#      reconciles, and the new objects work;
#   4. compare the whole catalog of the extension with a fresh install (diff).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
current="$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -1)"
extdir="$("${AI_PG_CONFIG:-pg_config}" --sharedir)/extension"
failed=0
check() { if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: got '$2', want '$3'"; failed=1; fi; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }

for script in "$here"/atomic_inventory--*.sql; do
    from="$(basename "$script" .sql)"; from="${from#atomic_inventory--}"
    [[ "$from" == "$current" ]] && continue
    install -m 644 "$script" "$extdir/atomic_inventory--$from.sql"
    db="ai_upgrade_${from//./_}"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS ai_fresh" -c "CREATE DATABASE $db" -c "CREATE DATABASE ai_fresh"
    q "$db" "CREATE EXTENSION atomic_inventory VERSION '$from'"
    check "$from installed" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'atomic_inventory'")" "$from"
    # The installed library is already the new one, which refuses to run on
    # release A's tables (SCHEMA_OUTDATED, checked below). So the rows A's
    # functions leave behind are written here in plain SQL: an item (its
    # initial ledger row comes from A's trigger), an idempotent sale of 7 and
    # a 3-unit order with their ledger rows, a live 10-unit reservation, a
    # batch claimed by driver-1.
    item="$(q "$db" "INSERT INTO atomic_inventory.items (sku, quantity) VALUES ('up-1', 100) RETURNING id")"
    q "$db" "UPDATE atomic_inventory.items SET quantity = quantity - 7 WHERE id = '$item';
             INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind, idempotency_key)
             VALUES ('$item', -7, 93, 'decrement', 'sale-1');
             INSERT INTO atomic_inventory.idempotency_keys (tenant_scope, idempotency_key, function_name, request, response)
             VALUES ('', 'sale-1', 'decrement_inventory',
                     '{\"inventory_id\": \"$item\", \"quantity\": \"7\", \"reason\": null, \"reference\": null}',
                     '{\"success\" : true, \"inventory_id\" : \"$item\", \"old_quantity\" : 100, \"new_quantity\" : 93, \"deducted\" : 7}');
             UPDATE atomic_inventory.items SET quantity = quantity - 3 WHERE id = '$item';
             INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind) VALUES ('$item', -3, 90, 'decrement');"
    res="$(q "$db" "INSERT INTO atomic_inventory.reservations (status, expires_at) VALUES ('active', now() + interval '1 hour') RETURNING id")"
    q "$db" "INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked) VALUES ('$res', '$item', 10, true);
             UPDATE atomic_inventory.items SET reserved = 10 WHERE id = '$item'"
    batch="$(q "$db" "INSERT INTO atomic_inventory.batches (status, claimed_by, claimed_at, zone) VALUES ('claimed', 'driver-1', now(), 'up') RETURNING id")"
    check "$from: the new library refuses release A's tables until the update" \
        "$(psql -X -q -At -d "$db" -c "SELECT atomic_inventory.decrement_inventory('$item', 1)" 2>&1 | grep -o 'SCHEMA_OUTDATED' | head -1)" "SCHEMA_OUTDATED"
    # an app role allowed to sell (as grant_usage or a grant of the user's own would)
    psql -X -q -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ai_upgrade_app') THEN CREATE ROLE ai_upgrade_app; END IF; END \$\$"
    q "$db" "GRANT EXECUTE ON FUNCTION atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer) TO ai_upgrade_app"
    state="SELECT i.quantity || '/' || i.reserved || '/' || (SELECT count(*) FROM atomic_inventory.ledger) || '/' || (SELECT status FROM atomic_inventory.reservations) || '/' || (SELECT status || ':' || claimed_by FROM atomic_inventory.batches) FROM atomic_inventory.items i"
    before="$(q "$db" "$state")"
    check "$from data written" "$before" "90/10/3/active/claimed:driver-1"

    q "$db" "ALTER EXTENSION atomic_inventory UPDATE"
    check "$from -> $current: version" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'atomic_inventory'")" "$current"
    check "$from -> $current: data untouched" "$(q "$db" "$state")" "$before"
    check "$from -> $current: idempotent retry of a pre-update sale returns its first result" \
        "$(q "$db" "SELECT atomic_inventory.decrement_inventory('$item', 7, p_idempotency_key => 'sale-1')->>'new_quantity'")" "93"
    q "$db" "SELECT atomic_inventory.commit_reservation('$res')" >/dev/null
    q "$db" "SELECT atomic_inventory.complete_batch('$batch', 'driver-1')" >/dev/null
    q "$db" "SELECT atomic_inventory.decrement_inventory('$item', 1)" >/dev/null
    check "$from -> $current: pre-update reservation and batch finish after it" "$(q "$db" "$state")" "79/0/5/committed/completed:driver-1"
    check "$from -> $current: ledger reconciles" "$(q "$db" "SELECT count(*) FROM atomic_inventory.reconcile()")" "0"
    check "$from -> $current: stats view answers" "$(q "$db" "SELECT count(*) > 0 FROM atomic_inventory.stats")" "t"
    q "$db" "SELECT atomic_inventory.stripe_item('$item', 4)" >/dev/null
    q "$db" "SELECT atomic_inventory.decrement_inventory('$item', 2)" >/dev/null
    check "$from -> $current: an upgraded item stripes, sells from a stripe and still reconciles" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item')->>'quantity') || '/' || (SELECT count(*) FROM atomic_inventory.reconcile())")" "77/0"

    # the functions whose arguments changed keep their grants
    check "$from -> $current: a role allowed to call decrement_inventory still may" \
        "$(q "$db" "SELECT has_function_privilege('ai_upgrade_app', 'atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer, uuid)', 'EXECUTE')")" "t"
    q "$db" "REVOKE ALL ON FUNCTION atomic_inventory.decrement_inventory FROM ai_upgrade_app"
    # stock at a second location, moved back and forth, still reconciles
    loc="$(q "$db" "SELECT atomic_inventory.create_location('up-store')->>'location_id'")"
    q "$db" "SELECT atomic_inventory.transfer_inventory('$item', '00000000-0000-0000-0000-000000000000', '$loc', 5)" >/dev/null
    q "$db" "SELECT atomic_inventory.decrement_inventory('$item', 2, p_location_id => '$loc')" >/dev/null
    check "$from -> $current: a transfer to a new location and a sale there reconcile" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item', '$loc')->>'quantity') || '/' || (atomic_inventory.get_inventory('$item')->>'quantity') || '/' || (SELECT count(*) FROM atomic_inventory.reconcile())")" "3/75/0"
    # reservation lines from before the update hold at the default location;
    # a hold at the new location takes its level's units and commits there
    check "$from -> $current: pre-update reservation lines are at the default location" \
        "$(q "$db" "SELECT count(*) FILTER (WHERE location_id IS NULL) || '/' || count(*) FROM atomic_inventory.reservation_lines")" "1/1"
    hold="$(q "$db" "SELECT atomic_inventory.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', '$item', 'quantity', 2, 'location_id', '$loc')))->>'reservation_id'")"
    check "$from -> $current: a hold at a location raises that level's reserved" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item', '$loc')->>'reserved') || '/' || (SELECT reserved FROM atomic_inventory.items WHERE id = '$item')")" "2/0"
    q "$db" "SELECT atomic_inventory.commit_reservation('$hold')" >/dev/null
    check "$from -> $current: its commit takes the units there and reconciles" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item', '$loc')->>'quantity') || '/' || (SELECT count(*) FROM atomic_inventory.reconcile())")" "1/0"
    # a transfer in transit (new in 0.4.0) of an upgraded item: shipped,
    # counted at its destination, received, reconciled
    d0='00000000-0000-0000-0000-000000000000'
    tid="$(q "$db" "SELECT atomic_inventory.transfer_inventory('$item', '$loc', '$d0', 1, p_receive => false)->>'transfer_id'")"
    check "$from -> $current: a shipment leaves its source and is in transit" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item', '$loc')->>'quantity') || '/' || (atomic_inventory.get_inventory('$item', '$d0')->>'in_transit')")" "0/1"
    q "$db" "SELECT atomic_inventory.receive_transfer('$tid')" >/dev/null
    check "$from -> $current: its receipt lands and reconciles" \
        "$(q "$db" "SELECT (atomic_inventory.get_inventory('$item', '$d0')->>'quantity') || '/' || (atomic_inventory.get_inventory('$item')->>'in_transit') || '/' || (SELECT count(*) FROM atomic_inventory.reconcile())")" "73/0/0"

    q ai_fresh "CREATE EXTENSION atomic_inventory"
    q "$db" "$(cat "$here/catalog.sql")" >"/tmp/ai-upgrade-$from.upgraded"
    q ai_fresh "$(cat "$here/catalog.sql")" >"/tmp/ai-upgrade-$from.fresh"
    facts="$(grep -c '^[a-z]' "/tmp/ai-upgrade-$from.fresh")"
    if ((facts < 100)); then
        echo "FAIL catalog query found only $facts facts"; failed=1
    elif diff "/tmp/ai-upgrade-$from.upgraded" "/tmp/ai-upgrade-$from.fresh" >"/tmp/ai-upgrade-$from.diff"; then
        echo "ok   $from -> $current: catalog identical to a fresh $current install ($facts facts)"
    else
        echo "FAIL $from -> $current: catalog differs from a fresh install (< upgraded, > fresh):"
        head -40 "/tmp/ai-upgrade-$from.diff"
        failed=1
    fi
    psql -X -q -d postgres -c "DROP DATABASE $db" -c "DROP DATABASE ai_fresh"
    rm -f "$extdir/atomic_inventory--$from.sql"
done
exit $failed
