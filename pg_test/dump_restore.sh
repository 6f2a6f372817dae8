#!/usr/bin/env bash
# Backups: pg_dump of a database using atomic_inventory, restored into a new
# database (custom format through pg_restore, and the plain script through
# psql), holds every row of every extension table, reconciles, and keeps
# working: sales, a pre-dump reservation's commit, an idempotent replay, new
# ledger ids after the old ones. Runs on a cluster without the sweeper worker
# (nothing may change the source database between checksum and dump).
set -euo pipefail
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
bindir="${AI_PG_BINDIR:?start_cluster sets it}"
S=atomic_inventory
failed=0
check() { # name, condition-result ("t" = pass), detail
    if [[ "$2" == t ]]; then echo "ok   $1"; else echo "FAIL $1: $3"; failed=1; fi
}

# Something of everything: items (one striped), sales, a multi-line order,
# restock, adjust, keyed (idempotent) calls, reservations active and
# committed, batches claimed, packing, an adopted table with a hold on it.
q <<'SQL' >/dev/null
SELECT atomic_inventory.create_item(p_quantity => 50, p_sku => 'dump-a', p_id => '00000000-0000-0000-0000-0000000d0001');
SELECT atomic_inventory.create_item(p_quantity => 20, p_sku => 'dump-b', p_id => '00000000-0000-0000-0000-0000000d0002');
SELECT atomic_inventory.create_item(p_quantity => 100, p_sku => 'dump-hot', p_id => '00000000-0000-0000-0000-0000000d0003');
SELECT atomic_inventory.stripe_item('00000000-0000-0000-0000-0000000d0003', 4);
-- a store with stock of dump-c, moved there by a transfer, and an event consumer
SELECT atomic_inventory.create_location('dump-store', p_id => '00000000-0000-0000-0000-0000000d0c01');
SELECT atomic_inventory.create_item(p_quantity => 10, p_sku => 'dump-c', p_id => '00000000-0000-0000-0000-0000000d0004');
SELECT atomic_inventory.transfer_inventory('00000000-0000-0000-0000-0000000d0004',
    '00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-0000000d0c01', 5);
SELECT atomic_inventory.create_event_consumer('dump-consumer');
-- units of dump-a set aside (damaged) and expected (incoming): stock states
SELECT atomic_inventory.move_stock_state('00000000-0000-0000-0000-0000000d0001', 'available', 'damaged', 3);
SELECT atomic_inventory.move_stock_state('00000000-0000-0000-0000-0000000d0001', 'ordered', 'incoming', 5);
SELECT atomic_inventory.set_reorder_point('00000000-0000-0000-0000-0000000d0002', 100);
SELECT atomic_inventory.decrement_inventory('00000000-0000-0000-0000-0000000d0001', 3, p_idempotency_key => 'dump-sale-1');
SELECT atomic_inventory.decrement_inventory('00000000-0000-0000-0000-0000000d0003', 7);
SELECT atomic_inventory.decrement_inventory_many('[{"inventory_id": "00000000-0000-0000-0000-0000000d0001", "quantity": 1},
                                                   {"inventory_id": "00000000-0000-0000-0000-0000000d0002", "quantity": 2}]');
SELECT atomic_inventory.increment_inventory('00000000-0000-0000-0000-0000000d0002', 5);
SELECT atomic_inventory.adjust_inventory('00000000-0000-0000-0000-0000000d0002', 30, p_expected_quantity => 23);
SELECT atomic_inventory.commit_reservation((atomic_inventory.reserve_inventory(
         '[{"inventory_id": "00000000-0000-0000-0000-0000000d0001", "quantity": 2}]')->>'reservation_id')::uuid);
SELECT atomic_inventory.reserve_inventory('[{"inventory_id": "00000000-0000-0000-0000-0000000d0002", "quantity": 4}]',
                                          p_ttl_seconds => 86400, p_reference => 'dump-open-cart');
SELECT atomic_inventory.claim_batch((atomic_inventory.create_batch()->>'batch_id')::uuid, 'driver-1');
SELECT atomic_inventory.create_batch();
CREATE TABLE public.dump_inventory (id integer PRIMARY KEY, quantity integer NOT NULL CHECK (quantity >= 0),
                                    reserved integer NOT NULL DEFAULT 0);
INSERT INTO public.dump_inventory VALUES (1, 10, 0), (2, 5, 0);
SELECT atomic_inventory.bind_stock_source('dump_inv', 'public.dump_inventory', 'id', 'quantity',
                                          p_reserved_column => 'reserved');
SELECT atomic_inventory.bound_decrement('dump_inv', '1', 2);
SELECT atomic_inventory.bound_reserve('dump_inv', '[{"item_id": 2, "quantity": 3}]', p_ttl_seconds => 86400,
                                      p_reference => 'dump-bound-cart');
CREATE TABLE public.dump_stock (product_id integer NOT NULL, warehouse_id text NOT NULL,
                                quantity integer NOT NULL CHECK (quantity >= 0), PRIMARY KEY (product_id, warehouse_id));
INSERT INTO public.dump_stock VALUES (1, 'north', 10), (1, 'south', 4);
SELECT atomic_inventory.bind_stock_source('dump_stock', 'public.dump_stock', 'product_id', 'quantity',
                                          p_location_column => 'warehouse_id');
SELECT atomic_inventory.bound_decrement('dump_stock', '1', 3, p_location => 'north');
INSERT INTO atomic_inventory.picking_sessions (id, status) VALUES ('00000000-0000-0000-0000-0000000d0010', 'packing');
INSERT INTO atomic_inventory.picking_session_items VALUES ('00000000-0000-0000-0000-0000000d0010', '00000000-0000-0000-0000-0000000d0001', 3);
INSERT INTO atomic_inventory.orders (id) VALUES ('00000000-0000-0000-0000-0000000d0020');
INSERT INTO atomic_inventory.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
VALUES ('00000000-0000-0000-0000-0000000d0030', '00000000-0000-0000-0000-0000000d0010',
        '00000000-0000-0000-0000-0000000d0020', '00000000-0000-0000-0000-0000000d0001', 2);
SELECT atomic_inventory.increment_packing_quantity('00000000-0000-0000-0000-0000000d0030',
         p_session_id => '00000000-0000-0000-0000-0000000d0010');
SQL

# One line per table: name, row count, checksum of its rows.
snapshot() {
    q -d "$1" <<'SQL'
DO $$ BEGIN CREATE TEMP TABLE snap (line text); END $$;
DO $$
DECLARE r record; line text;
BEGIN
  FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'atomic_inventory'::regnamespace
              AND c.relkind = 'r' ORDER BY 1 LOOP
    -- (the default location is made by CREATE EXTENSION, not restored:
    -- its timestamps are those of each database's install)
    EXECUTE format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY t::text)), ''-'')
                      FROM atomic_inventory.%I AS t %s', r.relname, r.relname,
                   CASE WHEN r.relname = 'locations'
                        THEN 'WHERE t.id <> ''00000000-0000-0000-0000-000000000000''' ELSE '' END) INTO line;
    INSERT INTO snap VALUES (line);
  END LOOP;
  INSERT INTO snap SELECT 'public.dump_inventory ' || string_agg(t::text, ',' ORDER BY id) FROM public.dump_inventory t;
END $$;
SELECT line FROM snap ORDER BY line;
SQL
}

before="$(snapshot "$PGDATABASE")"
rows=$(echo "$before" | awk '$1 !~ /^public/ {n += $2} END {print n}')
check "source database reconciles" "$(q -c "SELECT NOT EXISTS (SELECT 1 FROM $S.reconcile()) AND NOT EXISTS (SELECT 1 FROM $S.reconcile_source('dump_inv'))")" "drift before the dump"
dump="$(mktemp /tmp/ai-dump.XXXXXX)"
"$bindir/pg_dump" -Fc -f "$dump" "$PGDATABASE"
"$bindir/pg_dump" -Fp -f "$dump.sql" "$PGDATABASE"
q -d postgres -c "DROP DATABASE IF EXISTS ai_restored" -c "DROP DATABASE IF EXISTS ai_restored_plain"
q -d postgres -c "CREATE DATABASE ai_restored" -c "CREATE DATABASE ai_restored_plain"
"$bindir/pg_restore" --exit-on-error -d ai_restored "$dump"
q -d ai_restored_plain -f "$dump.sql" >/dev/null

for db in ai_restored ai_restored_plain; do
    after="$(snapshot "$db")"
    check "$db: every table's rows as dumped" "$([[ "$before" == "$after" ]] && echo t || echo f)" \
        "$(diff <(echo "$before") <(echo "$after") | head -6 | tr '\n' ' ')"
    check "$db: reconcile() and reconcile_source empty" \
        "$(q -d "$db" -c "SELECT NOT EXISTS (SELECT 1 FROM $S.reconcile()) AND NOT EXISTS (SELECT 1 FROM $S.reconcile_source('dump_inv'))")" \
        "$(q -d "$db" -c "SELECT string_agg(r::text, ' ') FROM $S.reconcile() r")"
    # keeps working: a sale (new ledger id above the restored ones), the
    # replayed keyed sale answered from its stored key, the open carts commit
    max_id=$(q -d "$db" -c "SELECT max(id) FROM $S.ledger")
    q -d "$db" -c "SELECT $S.decrement_inventory('00000000-0000-0000-0000-0000000d0002', 1)" >/dev/null
    check "$db: new ledger ids continue after the restored ones" \
        "$(q -d "$db" -c "SELECT count(*) = 1 FROM $S.ledger WHERE id > $max_id")" "max id was $max_id"
    check "$db: an idempotent retry is answered from the restored key" \
        "$(q -d "$db" -c "SELECT ($S.decrement_inventory('00000000-0000-0000-0000-0000000d0001', 3, p_idempotency_key => 'dump-sale-1')->>'new_quantity')::int = 47
                              AND (SELECT quantity FROM $S.items WHERE sku = 'dump-a') = 44")" "replayed or lost"
    check "$db: a table keyed by (item, location) keeps its binding" \
        "$(q -d "$db" -c "SELECT ($S.bound_decrement('dump_stock', '1', 1, p_location => 'south')->>'new_quantity')::int = 3
                              AND NOT EXISTS (SELECT 1 FROM $S.reconcile_source('dump_stock'))")" ""
    check "$db: the open reservations commit" \
        "$(q -d "$db" -c "SELECT bool_and(($S.commit_reservation(id)->>'status') = 'committed') FROM $S.reservations WHERE status = 'active'")" ""
    check "$db: and still reconcile" \
        "$(q -d "$db" -c "SELECT NOT EXISTS (SELECT 1 FROM $S.reconcile()) AND NOT EXISTS (SELECT 1 FROM $S.reconcile_source('dump_inv'))")" ""
done
rm -f "$dump" "$dump.sql"
q -d postgres -c "DROP DATABASE ai_restored" -c "DROP DATABASE ai_restored_plain"
echo "dump_restore: $rows live rows in the extension's tables dumped and restored twice"
exit $failed
