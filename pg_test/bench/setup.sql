-- Benchmark data: the same 100 000 item ids (k = 1..100000 as a uuid) in
-- the apps' own table shape (bench.inventory, as in docs/background.md) and
-- in atomic_inventory.items, with stock that never runs out, so every
-- attempt can succeed.
CREATE SCHEMA bench;
CREATE FUNCTION bench.id(p_prefix text, p_k integer) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT (p_prefix || lpad(to_hex(p_k), 32 - length(p_prefix), '0'))::uuid $$;

CREATE TABLE bench.inventory (
    id       uuid    PRIMARY KEY,
    quantity numeric NOT NULL CHECK (quantity >= 0),
    reserved numeric NOT NULL DEFAULT 0
);
INSERT INTO bench.inventory (id, quantity) SELECT bench.id('', k), 1e12 FROM generate_series(1, 100000) k;

-- The POS sale's PL/pgSQL function (docs/background.md), verbatim but for the
-- table name: SELECT ... FOR UPDATE, then UPDATE.
CREATE FUNCTION bench.pos_decrement_inventory(p_inventory_id uuid, p_quantity numeric)
RETURNS json LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  v_old_quantity NUMERIC;
  v_new_quantity NUMERIC;
BEGIN
  SELECT quantity INTO v_old_quantity FROM bench.inventory WHERE id = p_inventory_id FOR UPDATE;
  IF v_old_quantity < p_quantity THEN
    RAISE EXCEPTION 'Insufficient inventory. Available: %, Requested: %', v_old_quantity, p_quantity;
  END IF;
  UPDATE bench.inventory SET quantity = quantity - p_quantity
   WHERE id = p_inventory_id AND quantity >= p_quantity
  RETURNING quantity INTO v_new_quantity;
  RETURN json_build_object('success', true, 'inventory_id', p_inventory_id,
    'old_quantity', v_old_quantity, 'new_quantity', v_new_quantity, 'deducted', p_quantity);
END;
$$;

-- What-if declarations of decrement_inventory's own C function (bench.py's
-- WHAT_IF variants, not shipped): with the SET search_path clause the C
-- functions had until they pinned the path in their code (0.3.0; that pin
-- still runs inside the clause), and without SECURITY DEFINER. Against decrement_noledger
-- they give what a SET clause, and the owner switch, cost per call.
CREATE FUNCTION bench.decrement_set_clause(p_inventory_id uuid, p_quantity numeric, p_reason text DEFAULT NULL,
    p_reference text DEFAULT NULL, p_idempotency_key text DEFAULT NULL, p_lock_timeout_ms integer DEFAULT NULL)
RETURNS json LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS '$libdir/atomic_inventory', 'ai_decrement_inventory';
CREATE FUNCTION bench.decrement_invoker(p_inventory_id uuid, p_quantity numeric, p_reason text DEFAULT NULL,
    p_reference text DEFAULT NULL, p_idempotency_key text DEFAULT NULL, p_lock_timeout_ms integer DEFAULT NULL)
RETURNS json LANGUAGE c VOLATILE
AS '$libdir/atomic_inventory', 'ai_decrement_inventory';

INSERT INTO atomic_inventory.items (id, sku, quantity)
SELECT bench.id('', k), 'bench-' || k, 1e12 FROM generate_series(1, 100000) k;

-- Packing: 1000 sessions in packing, one order and one line each, a basket
-- and a line too big to fill during a run.
INSERT INTO atomic_inventory.picking_sessions (id, status)
SELECT bench.id('b', k), 'packing' FROM generate_series(1, 1000) k;
INSERT INTO atomic_inventory.orders (id) SELECT bench.id('c', k) FROM generate_series(1, 1000) k;
INSERT INTO atomic_inventory.picking_session_items (picking_session_id, product_id, quantity_picked)
SELECT bench.id('b', k), bench.id('d', k), 2000000000 FROM generate_series(1, 1000) k;
INSERT INTO atomic_inventory.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
SELECT bench.id('a', k), bench.id('b', k), bench.id('c', k), bench.id('d', k), 2000000000
  FROM generate_series(1, 1000) k;

-- The same 1000 sessions in a warehouse app's own tables (the packing RPC's
-- shape), bound with bind_packing_source (packing_bound), and the app's own
-- fallback (packing_fallback: four round trips, read then write).
CREATE TABLE bench.picking_sessions (id uuid PRIMARY KEY, status text NOT NULL, last_activity_at timestamptz);
CREATE TABLE bench.orders (id uuid PRIMARY KEY, sleeves_status text NOT NULL, order_number text);
CREATE TABLE bench.packing_progress (id uuid PRIMARY KEY, picking_session_id uuid NOT NULL, order_id uuid NOT NULL,
    product_id uuid NOT NULL, quantity_needed integer NOT NULL, quantity_packed integer NOT NULL DEFAULT 0,
    updated_at timestamptz);
CREATE INDEX ON bench.packing_progress (picking_session_id, product_id);
CREATE TABLE bench.picking_session_items (picking_session_id uuid, product_id uuid, quantity_picked integer NOT NULL,
    PRIMARY KEY (picking_session_id, product_id));
INSERT INTO bench.picking_sessions (id, status) SELECT bench.id('b', k), 'packing' FROM generate_series(1, 1000) k;
INSERT INTO bench.orders (id, sleeves_status) SELECT bench.id('c', k), 'packing' FROM generate_series(1, 1000) k;
INSERT INTO bench.picking_session_items SELECT bench.id('b', k), bench.id('d', k), 2000000000 FROM generate_series(1, 1000) k;
INSERT INTO bench.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
SELECT bench.id('a', k), bench.id('b', k), bench.id('c', k), bench.id('d', k), 2000000000 FROM generate_series(1, 1000) k;
SELECT atomic_inventory.bind_packing_source('bench_wh', 'bench.picking_sessions', 'bench.packing_progress',
    'bench.orders', 'bench.picking_session_items');

-- Reservation history: a shop that has taken orders for a while has
-- finished reservations (100 000 committed, one line each), so reserve_commit
-- runs against tables of a realistic size rather than growing from empty.
INSERT INTO atomic_inventory.reservations (id, status, expires_at, created_at, updated_at)
SELECT bench.id('9', k), 'committed', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
  FROM generate_series(1, 100000) k;
INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked, status)
SELECT bench.id('9', k), bench.id('', k), 1, true, 'committed' FROM generate_series(1, 100000) k;

-- What-if (reserve_commit_inline_floor, run only when named): a hold kept
-- as one row, its item and units inline, with the same history.
CREATE TABLE bench.holds (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    status     text        NOT NULL DEFAULT 'active',
    item_id    uuid        NOT NULL,
    quantity   numeric     NOT NULL,
    tenant_id  text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX holds_due_idx ON bench.holds (expires_at) WHERE status = 'active';
INSERT INTO bench.holds (id, status, item_id, quantity, expires_at, created_at, updated_at)
SELECT bench.id('9', k), 'committed', bench.id('', k), 1, now() - interval '1 day', now() - interval '1 day',
       now() - interval '1 day'
  FROM generate_series(1, 100000) k;

-- Batches for claim_next_batch: reset to available before each run.
INSERT INTO atomic_inventory.batches (id, zone) SELECT bench.id('e', k), 'bench' FROM generate_series(1, 300000) k;
VACUUM ANALYZE;

-- Striped mode: one hot item whose stock is spread over 64 stripes
-- (stripe_item), sold by the decrement_striped variant.
INSERT INTO atomic_inventory.items (id, sku, quantity) VALUES (bench.id('f', 1), 'striped-bench', 1e12);
SELECT atomic_inventory.stripe_item(bench.id('f', 1), 64);
VACUUM ANALYZE atomic_inventory.item_stripes;

-- Adopted table (docs/adopting.md): the items' shape in an app schema, bound,
-- sold by the decrement_bound variant. It has the same CHECK as items (the C
-- stock_valid, which binding accepts as "quantity >= 0"), so that the
-- comparison with decrement measures the binding's own cost, not the table's.
CREATE TABLE bench.items_bound (
    id              uuid    PRIMARY KEY,
    quantity        numeric NOT NULL,
    reserved        numeric NOT NULL DEFAULT 0,
    track_inventory boolean NOT NULL DEFAULT true,
    tenant_id       text,
    CHECK (atomic_inventory.stock_valid(quantity, reserved))
) WITH (fillfactor = 90);
INSERT INTO bench.items_bound (id, quantity) SELECT bench.id('', k), 1e12 FROM generate_series(1, 100000) k;
SELECT atomic_inventory.bind_stock_source('bench_items', 'bench.items_bound', 'id', 'quantity',
                                          'reserved', 'track_inventory', 'tenant_id');
VACUUM ANALYZE bench.items_bound;

-- Transfers between locations: two bench locations, and 10 000 items of
-- their own (ids '8' || k, SKU transfer-bench-k, nothing at the default
-- location) with a level at each holding stock that never runs out, moved
-- by the transfer variant. Their own items, not the first bench items: an
-- order of items that have levels elsewhere is allocated across locations
-- (docs/locations.md), which would change what decrement_many measures. The
-- same levels in a plain table (bench.levels) for the client's transfer,
-- transfer_client; its transfers column counts the transfers made.
INSERT INTO atomic_inventory.locations (id, code, name) VALUES
    (bench.id('7', 1), 'bench-1', 'Bench location 1'),
    (bench.id('7', 2), 'bench-2', 'Bench location 2');
INSERT INTO atomic_inventory.items (id, sku, quantity)
SELECT bench.id('8', k), 'transfer-bench-' || k, 0 FROM generate_series(1, 10000) k;
INSERT INTO atomic_inventory.stock_levels (item_id, location_id, quantity)
SELECT bench.id('8', k), bench.id('7', l), 1e12 FROM generate_series(1, 10000) k, generate_series(1, 2) l;
-- their ledger starts as a restock's would (reconcile() stays empty)
INSERT INTO atomic_inventory.ledger (inventory_id, location_id, delta, quantity_after, kind, reason)
SELECT l.item_id, l.location_id, l.quantity, l.quantity, 'initial', 'bench level'
  FROM atomic_inventory.stock_levels AS l WHERE l.location_id IN (bench.id('7', 1), bench.id('7', 2));
CREATE TABLE bench.levels (
    item_id     uuid    NOT NULL,
    location_id uuid    NOT NULL,
    quantity    numeric NOT NULL CHECK (quantity >= 0),
    transfers   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, location_id)
) WITH (fillfactor = 90);
INSERT INTO bench.levels (item_id, location_id, quantity)
SELECT bench.id('8', k), bench.id('7', l), 1e12 FROM generate_series(1, 10000) k, generate_series(1, 2) l;
VACUUM ANALYZE atomic_inventory.items, atomic_inventory.stock_levels, bench.levels;

-- Kits: 10 000 kits (ids '6' || k, SKU kit-bench-k, no stock of their own)
-- of three bench items each, k, k + 10000 and k + 20000, one unit of each,
-- sold by the kit variant; the client's baseline, kit_client, sells the
-- same three rows of bench.inventory in that order.
INSERT INTO atomic_inventory.items (id, sku, quantity, kit)
SELECT bench.id('6', k), 'kit-bench-' || k, 0, true FROM generate_series(1, 10000) k;
INSERT INTO atomic_inventory.kit_components (kit_id, component_id, quantity)
SELECT bench.id('6', k), bench.id('', k + 10000 * c), 1 FROM generate_series(1, 10000) k, generate_series(0, 2) c;
VACUUM ANALYZE atomic_inventory.items, atomic_inventory.kit_components;
