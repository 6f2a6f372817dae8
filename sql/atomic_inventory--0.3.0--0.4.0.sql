-- atomic_inventory 0.3.0 -> 0.4.0: every free-text argument has a checked
-- limit (create_item's p_sku, p_name and p_tenant_id, create_batch's
-- p_tenant_id, the source names), reconcile_source on a binding whose
-- table was dropped answers INVALID_INPUT, a 1024-character reference of
-- multi-byte characters fits the ledger's index; packing on a warehouse's
-- own tables (bind_packing_source and the bound_*_packing_quantity pair).
-- Run by ALTER EXTENSION atomic_inventory UPDATE; the same objects a fresh
-- 0.4.0 install creates (pg_test/upgrade/run.sh compares the two catalogs).
\echo Use "ALTER EXTENSION atomic_inventory UPDATE" to load this file. \quit

CREATE OR REPLACE FUNCTION atomic_inventory.create_item(
    p_quantity        numeric DEFAULT 0,
    p_sku             text    DEFAULT NULL,
    p_name            text    DEFAULT NULL,
    p_track_inventory boolean DEFAULT true,
    p_tenant_id       text    DEFAULT NULL,
    p_id              uuid    DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
-- items_initial_ledger writes no 'initial' row while a dump is restored,
-- which it recognizes by check_function_bodies = off and row_security =
-- off; any caller can set both, so here the first is pinned: an item made
-- by this function always starts its ledger.
SET check_function_bodies = on
AS $$
DECLARE
    v_tenant text := COALESCE(p_tenant_id, atomic_inventory.caller_tenant());
    v_row    atomic_inventory.items;
BEGIN
    IF p_quantity IS NULL OR p_quantity = 'NaN' OR p_quantity < 0 OR p_quantity > 1000000000000 THEN
        RAISE EXCEPTION 'INVALID_QUANTITY: p_quantity must be a finite number between 0 and 1000000000000'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_QUANTITY","field":"p_quantity"}';
    END IF;
    -- Free text has a limit, as in every function (docs/functions.md, "Text
    -- limits"): a SKU and a tenant are keys (items_sku_unique indexes both,
    -- and a btree entry holds at most 2704 bytes: 255 characters of up to 4
    -- bytes each, twice, fit), a name is free text.
    IF pg_catalog.length(p_sku) > 255 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_sku is longer than 255 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_sku"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF pg_catalog.length(p_name) > 1024 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_name is longer than 1024 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_name"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF pg_catalog.length(p_tenant_id) > 255 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id is longer than 255 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF v_tenant IS DISTINCT FROM atomic_inventory.caller_tenant()
       AND NOT atomic_inventory.caller_is_admin() THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id can only be your own tenant'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}';
    END IF;
    INSERT INTO atomic_inventory.items (id, sku, name, quantity, track_inventory, tenant_id)
    VALUES (COALESCE(p_id, pg_catalog.gen_random_uuid()), p_sku, p_name, p_quantity,
            COALESCE(p_track_inventory, true), v_tenant)
    ON CONFLICT DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        -- The id or the tenant's SKU is taken. The same call again (a retry
        -- after a lost answer) is answered with the item, its quantity now;
        -- anything else is a conflict, not a raw unique violation (23505).
        SELECT * INTO v_row FROM atomic_inventory.items AS i
         WHERE i.id = p_id AND i.sku IS NOT DISTINCT FROM p_sku AND i.name IS NOT DISTINCT FROM p_name
           AND i.track_inventory = COALESCE(p_track_inventory, true)
           AND i.tenant_id IS NOT DISTINCT FROM v_tenant;
        IF NOT FOUND THEN
            SELECT * INTO v_row FROM atomic_inventory.items AS i
             WHERE i.id = p_id
                OR (i.sku = p_sku AND i.tenant_id IS NOT DISTINCT FROM v_tenant)
             LIMIT 1;
            RAISE EXCEPTION 'ITEM_EXISTS: item % already has this %', v_row.id,
                  CASE WHEN v_row.id = p_id THEN 'id' ELSE 'SKU' END
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.json_build_object('code', 'ITEM_EXISTS', 'inventory_id', v_row.id,
                                                            'sku', p_sku)::text,
                      HINT = 'Use the existing item, or pass another p_id / p_sku.';
        END IF;
    END IF;
    RETURN pg_catalog.json_build_object('success', true, 'inventory_id', v_row.id,
        'sku', v_row.sku, 'quantity', v_row.quantity, 'tenant_id', v_row.tenant_id);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.create_item(numeric, text, text, boolean, text, uuid) IS
    'Create an item (ledger starts with an initial row). Returns {success, inventory_id, sku, quantity, tenant_id}. Retry-safe with p_id: the same call again (same p_id, SKU, name, tracking, tenant) is answered with the item, its quantity now. A taken id or SKU otherwise: ITEM_EXISTS (PT409), also for a repeated call without p_id.';

CREATE OR REPLACE FUNCTION atomic_inventory.create_batch(
    p_zone      text    DEFAULT NULL,
    p_priority  integer DEFAULT 0,
    p_reference text    DEFAULT NULL,
    p_tenant_id text    DEFAULT NULL,
    p_id        uuid    DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_tenant text := COALESCE(p_tenant_id, atomic_inventory.caller_tenant());
    v_id     uuid;
    v_status text;
BEGIN
    IF pg_catalog.length(p_tenant_id) > 255 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id is longer than 255 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF v_tenant IS DISTINCT FROM atomic_inventory.caller_tenant()
       AND NOT atomic_inventory.caller_is_admin() THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id can only be your own tenant'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}';
    END IF;
    -- the same limit as every other free-text argument
    IF pg_catalog.length(p_zone) > 1024 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_zone is longer than 1024 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_zone"}';
    END IF;
    IF pg_catalog.length(p_reference) > 1024 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_reference is longer than 1024 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_reference"}';
    END IF;
    INSERT INTO atomic_inventory.batches (id, zone, priority, reference, tenant_id)
    VALUES (COALESCE(p_id, pg_catalog.gen_random_uuid()), p_zone, COALESCE(p_priority, 0), p_reference, v_tenant)
    ON CONFLICT (id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- p_id names a batch that exists: a retried create (same attributes)
        -- is answered as the first was, with the batch's status now;
        -- anything else is a conflict, not a raw unique violation (23505).
        SELECT b.status INTO v_status FROM atomic_inventory.batches AS b
         WHERE b.id = p_id AND b.zone IS NOT DISTINCT FROM p_zone
           AND b.priority = COALESCE(p_priority, 0) AND b.reference IS NOT DISTINCT FROM p_reference
           AND b.tenant_id IS NOT DISTINCT FROM v_tenant;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'BATCH_EXISTS: batch % exists with other attributes', p_id
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.json_build_object('code', 'BATCH_EXISTS', 'batch_id', p_id)::text,
                      HINT = 'Pass another p_id, or none to have one generated.';
        END IF;
        RETURN pg_catalog.json_build_object('success', true, 'batch_id', p_id, 'status', v_status);
    END IF;
    RETURN pg_catalog.json_build_object('success', true, 'batch_id', v_id, 'status', 'available');
END;
$$;
COMMENT ON FUNCTION atomic_inventory.create_batch(text, integer, text, text, uuid) IS
    'Create an available batch. Returns {success, batch_id, status}. A p_id that exists: the same call again is answered with the batch (its status now), other attributes are BATCH_EXISTS (PT409).';

CREATE OR REPLACE FUNCTION atomic_inventory.reconcile_source(p_source text)
RETURNS TABLE (item_key text, quantity numeric, ledger_sum numeric, drift numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    b atomic_inventory.bindings;
    v_tenant text;
BEGIN
    -- the same answers as the bound_* functions (bindings.rs): NOT_FOUND for
    -- an unknown name, INVALID_INPUT for a batch source or none
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}';
    END IF;
    -- a source's name has at most 63 characters (bind_stock_source's rule)
    IF pg_catalog.length(p_source) > 63 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source is longer than 63 characters (a source name has at most 63)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    SELECT * INTO b FROM atomic_inventory.bindings AS x WHERE x.name = p_source;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'NOT_FOUND: source % does not exist or is not visible to this tenant', p_source
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'source', 'ids',
                                                        pg_catalog.json_build_array(p_source))::text;
    END IF;
    IF b.kind <> 'stock' THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source % is a % source; this function needs a stock source', p_source, b.kind
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}';
    END IF;
    -- The query below casts the app's columns as this function's owner (a
    -- superuser): only while they are of built-in types, whose casts are
    -- built in (the table's owner could give a column a type of their own,
    -- with a cast of their own; bindings.rs refuses the same for bound_*).
    -- A table dropped after binding: the same answer as the bound_*
    -- functions give (bindings.rs). (Its relkind is then NULL, which the
    -- test below lets through.)
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c WHERE c.oid = b.relation) THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source % is bound to a table that no longer exists; unbind_source it', p_source
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = b.relation) NOT IN ('r', 'p')
       OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = b.relation AND NOT a.attisdropped
              AND a.attname IN (b.id_column, b.quantity_column, b.tenant_column))
          <> (CASE WHEN b.tenant_column IS NULL THEN 2 ELSE 3 END)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                   WHERE a.attrelid = b.relation AND NOT a.attisdropped
                     AND a.attname IN (b.id_column, b.quantity_column, b.tenant_column)
                     AND a.atttypid >= 16384) THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source %: its table or a column changed (dropped, renamed or of another type) since it was bound; unbind_source it and bind it again', p_source
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}';
    END IF;
    -- identifiers quoted by format's %I, the relation by regclass output
    -- (schema-qualified: the pinned search_path has no app schema); values
    -- passed with USING.
    v_tenant := CASE WHEN b.tenant_column IS NULL THEN 'NULL::text'
                     ELSE pg_catalog.format('t.%I::text', b.tenant_column) END;
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT r.k, r.q, COALESCE(l.total, 0), r.q - COALESCE(l.total, 0)
           FROM (SELECT t.%I::text AS k, t.%I::numeric AS q, %s AS tenant FROM %s AS t) AS r
           LEFT JOIN (SELECT g.item_key, pg_catalog.sum(g.delta) AS total
                        FROM atomic_inventory.ledger AS g
                       WHERE g.source = $1 GROUP BY g.item_key) AS l ON l.item_key = r.k
          WHERE r.q IS DISTINCT FROM COALESCE(l.total, 0)
            AND (r.tenant IS NULL OR r.tenant = $2 OR $3)
          ORDER BY r.k',
        b.id_column, b.quantity_column, v_tenant, b.relation)
    USING p_source, atomic_inventory.caller_tenant(), atomic_inventory.caller_is_admin();
END;
$$;
COMMENT ON FUNCTION atomic_inventory.reconcile_source(text) IS
    'Rows of a bound stock table whose quantity differs from the sum of their ledger rows (a write outside the bound_* functions, or a row inserted after binding). Empty = everything accounted for.';

COMMENT ON FUNCTION atomic_inventory.increment_packing_quantity(uuid, integer, integer, uuid, uuid, integer, integer) IS
    'Pack p_quantity (default 1) units of a progress line, with all nine packing validations (session, ownership, order status, line and basket limits). p_quantity_needed and p_picked_quantity are accepted for compatibility; the tables decide. Returns the updated progress row as JSON.';

-- A hash index: a reference may have 1024 characters of up to 4 bytes, more
-- than a btree entry holds (2704 bytes: such a movement failed with 54000);
-- lookups by reference are equality. Rebuilding reads the whole ledger once.
DROP INDEX atomic_inventory.ledger_reference_idx;
CREATE INDEX ledger_reference_idx ON atomic_inventory.ledger USING hash (reference) WHERE reference IS NOT NULL;

-- Packing on a warehouse's own tables (bind_packing_source,
-- bound_increment_packing_quantity, bound_decrement_packing_quantity): a
-- binding of kind packing, its other tables in packing_bindings. Roles given
-- grant_usage() before the update get the two new functions by calling it
-- again.
ALTER TABLE atomic_inventory.bindings
    DROP CONSTRAINT bindings_kind_check,
    ADD CONSTRAINT bindings_kind_check CHECK (kind IN ('stock', 'batch', 'packing')),
    DROP CONSTRAINT bindings_kind_columns,
    ADD CONSTRAINT bindings_kind_columns CHECK (
        CASE kind
          WHEN 'stock' THEN quantity_column IS NOT NULL AND quantity_type IS NOT NULL
                            AND status_column IS NULL AND assignee_column IS NULL
          WHEN 'batch' THEN status_column IS NOT NULL AND assignee_column IS NOT NULL
                            AND available_value IS NOT NULL AND claimed_value IS NOT NULL
                            AND quantity_column IS NULL
          -- packing: relation is the sessions table (the rest: packing_bindings)
          ELSE status_column IS NOT NULL AND quantity_column IS NULL AND assignee_column IS NULL
        END);
COMMENT ON TABLE atomic_inventory.bindings IS
    'Tables adopted from the app (bind_stock_source, bind_batch_source, bind_packing_source): the bound_* functions operate on them by binding name. Change only through bind_*/unbind_source.';
COMMENT ON COLUMN atomic_inventory.bindings.kind IS 'stock (quantities: bound_decrement, ...), batch (claims: bound_claim_batch, ...) or packing (bound_increment_packing_quantity, ...; its other tables in packing_bindings).';
COMMENT ON COLUMN atomic_inventory.bindings.relation IS 'The app''s table (packing: its picking sessions table).';
COMMENT ON COLUMN atomic_inventory.bindings.status_column IS 'Batch: the status column; packing: the session''s status column.';

-- A packing source's other tables (bind_packing_source): the progress
-- lines, the orders and the picked baskets of the sessions its binding's
-- relation holds, and the status values that decide what may be packed.
CREATE TABLE atomic_inventory.packing_bindings (
    name                    text      PRIMARY KEY REFERENCES atomic_inventory.bindings (name) ON DELETE CASCADE,
    activity_column         name,
    packing_value           text      NOT NULL,
    lines                   regclass  NOT NULL,
    line_id_column          name      NOT NULL,
    line_id_type            text      NOT NULL CHECK (line_id_type IN ('uuid', 'bigint', 'integer', 'text')),
    line_session_column     name      NOT NULL,
    line_order_column       name      NOT NULL,
    line_product_column     name      NOT NULL,
    product_id_type         text      NOT NULL CHECK (product_id_type IN ('uuid', 'bigint', 'integer', 'text')),
    line_needed_column      name      NOT NULL,
    line_packed_column      name      NOT NULL,
    line_updated_column     name,
    orders                  regclass  NOT NULL,
    order_id_column         name      NOT NULL,
    order_id_type           text      NOT NULL CHECK (order_id_type IN ('uuid', 'bigint', 'integer', 'text')),
    order_status_column     name      NOT NULL,
    order_number_column     name,
    completed_values        text[]    NOT NULL,
    closed_values           text[]    NOT NULL,
    picked                  regclass  NOT NULL,
    picked_session_column   name      NOT NULL,
    picked_product_column   name      NOT NULL,
    picked_quantity_column  name      NOT NULL
);
COMMENT ON TABLE atomic_inventory.packing_bindings IS
    'The tables of a packing source besides its sessions (bind_packing_source). Change only through bind_packing_source/unbind_source.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.name IS 'The binding (bindings.name, kind packing).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.activity_column IS 'Optional: the session column set to now() by every pack and unpack (last_activity_at).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.packing_value IS 'The session status that allows packing.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.lines IS 'The progress lines table (one line per session, order and product).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_id_column IS 'A progress line''s id (unique).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_id_type IS 'How progress line ids passed as text are checked and cast.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_session_column IS 'The line''s session (of the sessions table''s id type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_order_column IS 'The line''s order (of the orders table''s id type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_product_column IS 'The line''s product (of the picked table''s product type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.product_id_type IS 'How product ids passed as text are checked and cast.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_needed_column IS 'Units the line''s order needs (an integer type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_packed_column IS 'Units packed into the order so far (an integer type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.line_updated_column IS 'Optional: the line column set to now() by every pack and unpack.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.orders IS 'The orders table.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.order_id_column IS 'An order''s id (unique).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.order_id_type IS 'How order ids are cast (the lines'' order column has the same type).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.order_status_column IS 'The order''s status column.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.order_number_column IS 'Optional: the number errors name an order by (else its id).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.completed_values IS 'Order statuses meaning it left the warehouse (ORDER_COMPLETED).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.closed_values IS 'Order statuses meaning it won''t ship (ORDER_CLOSED).';
COMMENT ON COLUMN atomic_inventory.packing_bindings.picked IS 'The picked baskets table: units picked per session and product.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.picked_session_column IS 'The basket''s session.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.picked_product_column IS 'The basket''s product.';
COMMENT ON COLUMN atomic_inventory.packing_bindings.picked_quantity_column IS 'Units of the product picked into the session''s basket (an integer type; several rows add up).';
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.packing_bindings', '');
REVOKE ALL ON TABLE atomic_inventory.packing_bindings FROM PUBLIC;

CREATE FUNCTION atomic_inventory.bind_packing_source(
    p_name                    text,
    p_sessions                regclass,
    p_lines                   regclass,
    p_orders                  regclass,
    p_picked                  regclass,
    p_session_id_column       name    DEFAULT 'id',
    p_session_status_column   name    DEFAULT 'status',
    p_session_activity_column name    DEFAULT 'last_activity_at',
    p_line_id_column          name    DEFAULT 'id',
    p_line_session_column     name    DEFAULT 'picking_session_id',
    p_line_order_column       name    DEFAULT 'order_id',
    p_line_product_column     name    DEFAULT 'product_id',
    p_line_needed_column      name    DEFAULT 'quantity_needed',
    p_line_packed_column      name    DEFAULT 'quantity_packed',
    p_line_updated_column     name    DEFAULT 'updated_at',
    p_order_id_column         name    DEFAULT 'id',
    p_order_status_column     name    DEFAULT 'sleeves_status',
    p_order_number_column     name    DEFAULT 'order_number',
    p_picked_session_column   name    DEFAULT 'picking_session_id',
    p_picked_product_column   name    DEFAULT 'product_id',
    p_picked_quantity_column  name    DEFAULT 'quantity_picked',
    p_packing_value           text    DEFAULT 'packing',
    p_completed_values        text[]  DEFAULT ARRAY['ready_to_ship', 'shipped', 'delivered'],
    p_closed_values           text[]  DEFAULT ARRAY['cancelled', 'rejected', 'returned'],
    p_tenant_column           name    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bind_packing_source';
COMMENT ON FUNCTION atomic_inventory.bind_packing_source(text, regclass, regclass, regclass, regclass, name, name, name, name, name, name, name, name, name, name, name, name, name, name, name, name, text, text[], text[], name) IS
    'Adopt a warehouse''s own packing tables (picking sessions, progress lines, orders, picked baskets) under the name p_name for bound_increment_packing_quantity and bound_decrement_packing_quantity. The defaults are the packing RPC''s column names; pass NULL for an optional column the tables lack (activity, updated, order number). Caller must own the four tables, which must have one owner. Returns {success, name, kind, ...}.';

CREATE FUNCTION atomic_inventory.bound_increment_packing_quantity(
    p_source          text,
    p_progress_id     text,
    p_session_id      text,
    p_product_id      text    DEFAULT NULL,
    p_quantity        integer DEFAULT 1,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_increment_packing_quantity';
COMMENT ON FUNCTION atomic_inventory.bound_increment_packing_quantity(text, text, text, text, integer, text, integer) IS
    'increment_packing_quantity on a packing source (bind_packing_source): the same nine validations, lock order and basket limit on the warehouse''s own tables. Returns {success, source, id, picking_session_id, order_id, product_id, quantity_needed, quantity_packed, remaining}.';

CREATE FUNCTION atomic_inventory.bound_decrement_packing_quantity(
    p_source          text,
    p_progress_id     text,
    p_session_id      text,
    p_quantity        integer DEFAULT 1,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_decrement_packing_quantity';
COMMENT ON FUNCTION atomic_inventory.bound_decrement_packing_quantity(text, text, text, integer, text, integer) IS
    'decrement_packing_quantity on a packing source (bind_packing_source). Returns the line as bound_increment_packing_quantity does.';

REVOKE ALL ON FUNCTION atomic_inventory.bind_packing_source(text, regclass, regclass, regclass, regclass, name, name, name, name, name, name, name, name, name, name, name, name, name, name, name, name, text, text[], text[], name) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_increment_packing_quantity(text, text, text, text, integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_decrement_packing_quantity(text, text, text, integer, text, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION atomic_inventory.grant_usage(p_role name) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA atomic_inventory TO %I', p_role);
    FOREACH f IN ARRAY ARRAY[
        'atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer)',
        'atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer)',
        'atomic_inventory.increment_inventory(uuid, numeric, text, text, text, integer)',
        'atomic_inventory.adjust_inventory(uuid, numeric, numeric, boolean, text, text, text, integer)',
        'atomic_inventory.create_item(numeric, text, text, boolean, text, uuid)',
        'atomic_inventory.get_inventory(uuid)',
        'atomic_inventory.reconcile()',
        'atomic_inventory.claim_batch(uuid, text, integer, integer, integer)',
        'atomic_inventory.claim_next_batch(text, text, integer, integer, integer)',
        'atomic_inventory.unclaim_batch(uuid, text, integer)',
        'atomic_inventory.start_batch(uuid, text, integer)',
        'atomic_inventory.complete_batch(uuid, text, integer)',
        'atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer)',
        'atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer)',
        'atomic_inventory.release_reservation(uuid, uuid[], text, text, integer)',
        'atomic_inventory.extend_reservation(uuid, integer, integer)',
        'atomic_inventory.get_reservation(uuid)',
        'atomic_inventory.increment_packing_quantity(uuid, integer, integer, uuid, uuid, integer, integer)',
        'atomic_inventory.decrement_packing_quantity(uuid, uuid, integer, integer)',
        'atomic_inventory.bound_decrement(text, text, numeric, text, text, text, integer)',
        'atomic_inventory.bound_decrement_many(text, jsonb, text, text, text, integer)',
        'atomic_inventory.bound_increment(text, text, numeric, text, text, text, integer)',
        'atomic_inventory.bound_adjust(text, text, numeric, numeric, boolean, text, text, text, integer)',
        'atomic_inventory.bound_get(text, text)',
        'atomic_inventory.bound_claim_batch(text, text, text)',
        'atomic_inventory.bound_claim_next_batch(text, text)',
        'atomic_inventory.bound_unclaim_batch(text, text, text)',
        'atomic_inventory.bound_reserve(text, jsonb, integer, text, text, integer)',
        'atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer)',
        'atomic_inventory.bound_release_reservation(uuid, text[], text, text, integer)',
        'atomic_inventory.bound_increment_packing_quantity(text, text, text, text, integer, text, integer)',
        'atomic_inventory.bound_decrement_packing_quantity(text, text, text, integer, text, integer)',
        'atomic_inventory.reconcile_source(text)',
        'atomic_inventory.caller_tenant()',
        'atomic_inventory.caller_is_admin()'
    ]::regprocedure[] LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', f, p_role);
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION atomic_inventory.grant_usage(name) FROM PUBLIC;
COMMENT ON FUNCTION atomic_inventory.grant_usage(name) IS
    'Let p_role call the caller-facing functions (USAGE on the schema, EXECUTE on each). Tables stay closed: all changes go through the functions.';

