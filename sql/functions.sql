-- atomic_inventory: callable functions and grants. Runs last in CREATE EXTENSION.
--
-- Every function: named p_ arguments with defaults (PostgREST calls them with
-- a JSON body of named arguments), a pinned search path (pg_catalog first,
-- then atomic_inventory, nothing of the caller's, so no caller-created object
-- can shadow what we call), and SECURITY DEFINER: callers need EXECUTE only,
-- never write access to the tables, so stock cannot change outside the
-- locked, ledgered paths.
--
-- The PL/pgSQL and SQL functions pin the search path with a SET clause. The
-- C functions (LANGUAGE c, symbols ai_*) have none: they pin it in their
-- code for the whole call (src/pg/path.rs, PinnedPath). On PostgreSQL 15 fmgr's
-- handling of a SET clause (parse, save, restore, the namespace path
-- recomputed twice) cost about 3 us of CPU per call (docs/benchmarks.md).
-- The #[pg_test] every_function_pins_search_path checks both kinds.

CREATE FUNCTION atomic_inventory.decrement_inventory(
    p_inventory_id    uuid,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_location_id     uuid    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_decrement_inventory';
COMMENT ON FUNCTION atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer, uuid) IS
    'Take p_quantity units of one item (at p_location_id, default: the default location), atomically; refuses (INSUFFICIENT_INVENTORY, PT409) to go below available = quantity - reserved. Returns {success, inventory_id, old_quantity, new_quantity, deducted} (and location_id when given).';

CREATE FUNCTION atomic_inventory.decrement_inventory_many(
    p_lines           jsonb,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
-- Its statements (unnest of the line arrays, grouped, joined to items) kept
-- getting custom plans, i.e. planned on every call; the generic plan is the
-- same index nested loop. Measured: 1,003 -> 1,478 calls/s, 1 client, 5 lines
-- (docs/benchmarks.md). Not set on claim_next_batch: its generic plan is 3x slower.
SET plan_cache_mode = force_generic_plan
-- Its one UPDATE (SELL_LINES in src/source/own/lines.rs) locks rows in the
-- order its join produces them, which must be the index nested loop driven
-- by the sorted line array (id order: no deadlocks). The join is written so
-- that no hash or merge join can use it; on a small items table the planner
-- would still drive it from a sequential scan (physical order). The
-- #[pg_test] many_one_statement_plan_follows_the_sorted_lines pins the plan.
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_decrement_inventory_many';
COMMENT ON FUNCTION atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer) IS
    'Take several lines [{inventory_id, quantity}] at once: all or nothing, rows locked in id order (no deadlocks), duplicates merged. Returns {success, lines:[...]}.';

CREATE FUNCTION atomic_inventory.increment_inventory(
    p_inventory_id    uuid,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_location_id     uuid    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_increment_inventory';
COMMENT ON FUNCTION atomic_inventory.increment_inventory(uuid, numeric, text, text, text, integer, uuid) IS
    'Add p_quantity units (restock, return), at p_location_id (default: the default location; a location without stock of the item gets a level). Returns {success, inventory_id, old_quantity, new_quantity, added} (and location_id when given).';

CREATE FUNCTION atomic_inventory.adjust_inventory(
    p_inventory_id        uuid,
    p_new_quantity        numeric,
    p_expected_quantity   numeric DEFAULT NULL,
    p_force               boolean DEFAULT false,
    p_reason              text    DEFAULT NULL,
    p_reference           text    DEFAULT NULL,
    p_idempotency_key     text    DEFAULT NULL,
    p_lock_timeout_ms     integer DEFAULT NULL,
    p_location_id         uuid    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_adjust_inventory';
COMMENT ON FUNCTION atomic_inventory.adjust_inventory(uuid, numeric, numeric, boolean, text, text, text, integer, uuid) IS
    'Compare-and-set: set quantity (at p_location_id, default: the default location) to p_new_quantity only if it still equals p_expected_quantity (else QUANTITY_MISMATCH, PT409); p_force => true skips the comparison. Returns {success, inventory_id, old_quantity, new_quantity, delta} (and location_id when given).';

CREATE FUNCTION atomic_inventory.transfer_inventory(
    p_inventory_id     uuid,
    p_from_location_id uuid,
    p_to_location_id   uuid,
    p_quantity         numeric,
    p_reason           text    DEFAULT NULL,
    p_reference        text    DEFAULT NULL,
    p_idempotency_key  text    DEFAULT NULL,
    p_lock_timeout_ms  integer DEFAULT NULL,
    p_receive          boolean DEFAULT true
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_transfer_inventory';
COMMENT ON FUNCTION atomic_inventory.transfer_inventory(uuid, uuid, uuid, numeric, text, text, text, integer, boolean) IS
    'Move p_quantity units of one item between two locations, all or nothing: both levels locked in location id order (no deadlocks), refused (INSUFFICIENT_INVENTORY, PT409) unless the source''s available covers it; two ledger rows sharing a transfer_id. Returns {success, transfer_id, inventory_id, quantity, from:{location_id, old_quantity, new_quantity}, to:{...}}. With p_receive => false the units only leave the source (its ledger row) and are in transit (atomic_inventory.transfers) until receive_transfer or cancel_transfer; the answer then has status shipped and no to.quantity fields.';

CREATE FUNCTION atomic_inventory.receive_transfer(
    p_transfer_id     uuid,
    p_quantity        numeric DEFAULT NULL,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_receive_transfer';
COMMENT ON FUNCTION atomic_inventory.receive_transfer(uuid, numeric, text, text, text, integer) IS
    'Receive a transfer in transit: its units added to the destination''s level (created if the item has none there), a transfer ledger row with its transfer_id. p_quantity, if given, must be the shipped quantity (no partial receipt). Received or cancelled already: TRANSFER_NOT_IN_TRANSIT (PT409). Returns {success, transfer_id, inventory_id, quantity, status: received, to:{location_id, old_quantity, new_quantity}}.';

CREATE FUNCTION atomic_inventory.cancel_transfer(
    p_transfer_id     uuid,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_cancel_transfer';
COMMENT ON FUNCTION atomic_inventory.cancel_transfer(uuid, text, text, text, integer) IS
    'Cancel a transfer in transit: its units return to the source''s level, a transfer ledger row with its transfer_id. Received or cancelled already: TRANSFER_NOT_IN_TRANSIT (PT409). Returns {success, transfer_id, inventory_id, quantity, status: cancelled, from:{location_id, old_quantity, new_quantity}}.';

CREATE FUNCTION atomic_inventory.create_item(
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

CREATE FUNCTION atomic_inventory.get_inventory(
    p_inventory_id uuid,
    p_location_id  uuid DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v       json;
    v_found boolean;
BEGIN
    -- a NULL id is bad input (400), as for the C functions, not NOT_FOUND
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    -- Every level: the default location's is the item's own row, the
    -- others are stock_levels rows; a striped level's quantity is its row's
    -- plus its stripes' (stripes.rs). Without a location: the totals and
    -- every level; with one: that level.
    WITH it AS (
        SELECT i.* FROM atomic_inventory.items AS i
         WHERE i.id = p_inventory_id
           AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
                OR atomic_inventory.caller_is_admin())
    ), lv AS (
        SELECT '00000000-0000-0000-0000-000000000000'::uuid AS location_id, 'default'::text AS code,
               it.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x
                                        WHERE x.item_id = it.id
                                          AND x.location_id = '00000000-0000-0000-0000-000000000000'), 0) AS quantity,
               it.reserved, it.reorder_point, 0 AS ord, it.unsellable,
               -- units shipped here, not yet received (transfers in transit)
               COALESCE((SELECT pg_catalog.sum(t.quantity) FROM atomic_inventory.transfers AS t
                          WHERE t.item_id = it.id AND t.status = 'shipped'
                            AND t.to_location_id = '00000000-0000-0000-0000-000000000000'), 0) AS in_transit
          FROM it
        UNION ALL
        SELECT l.location_id, o.code,
               l.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x
                                       WHERE x.item_id = l.item_id AND x.location_id = l.location_id), 0),
               l.reserved, l.reorder_point, 1, 0,
               COALESCE((SELECT pg_catalog.sum(t.quantity) FROM atomic_inventory.transfers AS t
                          WHERE t.item_id = it.id AND t.status = 'shipped'
                            AND t.to_location_id = l.location_id), 0)
          FROM it JOIN atomic_inventory.stock_levels AS l ON l.item_id = it.id
          JOIN atomic_inventory.locations AS o ON o.id = l.location_id
         -- another tenant's location (of a shared item) is not the caller's to see
         WHERE o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
               OR atomic_inventory.caller_is_admin()
    )
    SELECT EXISTS (SELECT FROM it),
           CASE WHEN p_location_id IS NULL THEN
               (SELECT pg_catalog.json_build_object('inventory_id', it.id, 'sku', it.sku, 'name', it.name,
                   'quantity', t.quantity, 'reserved', t.reserved,
                   -- a running preorder's cap is for sale too (what a storefront may still take)
                   'available', t.quantity - t.reserved - it.unsellable
                                + CASE WHEN it.preorder_until > pg_catalog.now() THEN it.backorder_limit ELSE 0 END,
                   'track_inventory', it.track_inventory, 'tenant_id', it.tenant_id,
                   'updated_at', it.updated_at, 'stripes', it.stripes, 'reorder_point', it.reorder_point,
                   'backorder_limit', it.backorder_limit,
                   'backordered', GREATEST(it.reserved + it.unsellable - it.quantity, 0),
                   'preorder_until', it.preorder_until,
                   -- stock states (move_stock_state): the default location's
                   'unsellable', it.unsellable,
                   'states', (SELECT pg_catalog.json_object_agg(n.state, COALESCE(s.quantity, 0) ORDER BY n.ord)
                                FROM ROWS FROM (pg_catalog.unnest(ARRAY['damaged', 'quality_control',
                                                                        'safety_stock', 'incoming'])) WITH ORDINALITY AS n(state, ord)
                                LEFT JOIN atomic_inventory.stock_states AS s
                                       ON s.item_id = it.id AND s.state = n.state),
                   'in_transit', t.in_transit, 'levels', t.levels)
                  FROM it, (SELECT pg_catalog.sum(lv.quantity) AS quantity, pg_catalog.sum(lv.reserved) AS reserved,
                                   pg_catalog.sum(lv.in_transit) AS in_transit,
                                   pg_catalog.json_agg(pg_catalog.json_build_object(
                                       'location_id', lv.location_id, 'code', lv.code, 'quantity', lv.quantity,
                                       'reserved', lv.reserved, 'available', lv.quantity - lv.reserved - lv.unsellable,
                                       'in_transit', lv.in_transit, 'reorder_point', lv.reorder_point)
                                   ORDER BY lv.ord, lv.location_id) AS levels
                              FROM lv) AS t)
           ELSE
               (SELECT pg_catalog.json_build_object('inventory_id', it.id, 'sku', it.sku, 'name', it.name,
                   'location_id', lv.location_id, 'code', lv.code,
                   'quantity', lv.quantity, 'reserved', lv.reserved, 'available', lv.quantity - lv.reserved - lv.unsellable,
                   'in_transit', lv.in_transit,
                   'reorder_point', lv.reorder_point, 'track_inventory', it.track_inventory,
                   'tenant_id', it.tenant_id)
                  FROM it, lv WHERE lv.location_id = p_location_id)
           END
      INTO v_found, v;
    IF NOT v_found THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text;
    END IF;
    IF v IS NULL AND NOT EXISTS (
           SELECT FROM atomic_inventory.locations AS o
            WHERE o.id = p_location_id
              AND (o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
                   OR atomic_inventory.caller_is_admin())) THEN
        RAISE EXCEPTION 'NOT_FOUND: location % does not exist or is not visible to this tenant', p_location_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'location', 'ids',
                                                        pg_catalog.json_build_array(p_location_id))::text,
                  HINT = 'Check the id; locations of another tenant are reported as not found.';
    END IF;
    -- A kit holds nothing itself: what it can sell is the fewest whole kits
    -- its components' free stock covers (untracked components: no limit),
    -- at the location, or without one over the default row and every
    -- active, sellable location (where a sale without a location may take it).
    IF EXISTS (SELECT FROM atomic_inventory.items AS i WHERE i.id = p_inventory_id AND i.kit) THEN
        SELECT COALESCE(v::jsonb, pg_catalog.jsonb_build_object('inventory_id', p_inventory_id,
                                                               'location_id', p_location_id))
               || pg_catalog.jsonb_build_object('kit', true,
                   'available', pg_catalog.min(pg_catalog.floor(c.available / k.quantity))
                                    FILTER (WHERE c.track_inventory),
                   'components', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'inventory_id', k.component_id, 'quantity', k.quantity,
                       'available', CASE WHEN c.track_inventory THEN c.available END)
                       ORDER BY k.component_id))
          INTO v
          FROM atomic_inventory.kit_components AS k
          CROSS JOIN LATERAL (
              SELECT i.track_inventory,
                     CASE WHEN p_location_id IS NULL
                               OR p_location_id = '00000000-0000-0000-0000-000000000000' THEN
                              i.quantity - i.reserved - i.unsellable
                              + COALESCE((SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x
                                           WHERE x.item_id = i.id
                                             AND x.location_id = '00000000-0000-0000-0000-000000000000'), 0)
                          ELSE 0 END
                     + COALESCE((SELECT pg_catalog.sum(l.quantity - l.reserved
                                                       + COALESCE((SELECT pg_catalog.sum(x.quantity)
                                                                     FROM atomic_inventory.item_stripes AS x
                                                                    WHERE x.item_id = l.item_id
                                                                      AND x.location_id = l.location_id), 0))
                                   FROM atomic_inventory.stock_levels AS l
                                   JOIN atomic_inventory.locations AS o ON o.id = l.location_id
                                  WHERE l.item_id = i.id AND o.active AND o.sellable
                                    AND (l.location_id = p_location_id OR p_location_id IS NULL)
                                    AND (o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
                                         OR atomic_inventory.caller_is_admin())), 0) AS available
                FROM atomic_inventory.items AS i WHERE i.id = k.component_id) AS c
         WHERE k.kit_id = p_inventory_id;
    END IF;
    IF v IS NULL THEN
        RAISE EXCEPTION 'LEVEL_NOT_FOUND: item % has no stock level at location %', p_inventory_id, p_location_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'LEVEL_NOT_FOUND', 'inventory_id', p_inventory_id,
                                                        'location_id', p_location_id)::text,
                  HINT = 'Restock (increment_inventory) or transfer stock to that location first.';
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION atomic_inventory.get_inventory(uuid, uuid) IS
    'One item''s stock as JSON: without p_location_id the totals over its locations and every level (levels), each with in_transit (units shipped there, not yet received), with it that level (NOT_FOUND, PT404, if the item does not exist for this caller; LEVEL_NOT_FOUND, PT404, if it has no stock there).';

CREATE FUNCTION atomic_inventory.reconcile()
RETURNS TABLE (inventory_id uuid, quantity numeric, ledger_sum numeric, drift numeric,
               reserved numeric, reserved_by_lines numeric, reserved_drift numeric, location_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
    -- per level: the default location's (the item's own row; ledger rows
    -- without a location) and every other one's, each with its stripes
    WITH lv AS (
        SELECT it.id AS item_id, NULL::uuid AS location_id, it.tenant_id, it.reserved,
               it.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity)
                                         FROM atomic_inventory.item_stripes AS x
                                        WHERE x.item_id = it.id
                                          AND x.location_id = '00000000-0000-0000-0000-000000000000'), 0) AS quantity
          FROM atomic_inventory.items AS it
        UNION ALL
        SELECT l.item_id, l.location_id, COALESCE(o.tenant_id, it.tenant_id), l.reserved,
               l.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity)
                                        FROM atomic_inventory.item_stripes AS x
                                       WHERE x.item_id = l.item_id AND x.location_id = l.location_id), 0)
          FROM atomic_inventory.stock_levels AS l JOIN atomic_inventory.items AS it ON it.id = l.item_id
          JOIN atomic_inventory.locations AS o ON o.id = l.location_id
         -- (a level is its location's tenant's, or its item's: both must be visible)
         WHERE it.tenant_id IS NULL OR it.tenant_id = atomic_inventory.caller_tenant()
               OR atomic_inventory.caller_is_admin()
    )
    SELECT v.item_id, v.quantity, COALESCE(l.total, 0), v.quantity - COALESCE(l.total, 0),
           v.reserved, COALESCE(h.held, 0), v.reserved - COALESCE(h.held, 0), v.location_id
      FROM lv AS v
      LEFT JOIN (SELECT g.inventory_id, g.location_id, pg_catalog.sum(g.delta) AS total
                   FROM atomic_inventory.ledger AS g WHERE g.inventory_id IS NOT NULL
                  GROUP BY g.inventory_id, g.location_id) AS l
             ON l.inventory_id = v.item_id AND l.location_id IS NOT DISTINCT FROM v.location_id
      -- each level's reserved against the active lines holding there
      LEFT JOIN (SELECT x.inventory_id, x.location_id, pg_catalog.sum(x.quantity) AS held
                   FROM atomic_inventory.reservation_lines AS x
                  WHERE x.status = 'active' AND x.tracked GROUP BY x.inventory_id, x.location_id) AS h
             ON h.inventory_id = v.item_id AND h.location_id IS NOT DISTINCT FROM v.location_id
     WHERE (v.quantity IS DISTINCT FROM COALESCE(l.total, 0)
            OR v.reserved IS DISTINCT FROM COALESCE(h.held, 0))
       AND (v.tenant_id IS NULL OR v.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
     ORDER BY v.item_id, v.location_id NULLS FIRST;
$$;
COMMENT ON FUNCTION atomic_inventory.reconcile() IS
    'Stock levels (location_id NULL: the default location) whose quantity differs from the sum of their ledger deltas, or whose reserved differs from their active reservation lines (both mean a write outside the functions). Empty = everything accounted for.';

CREATE FUNCTION atomic_inventory.purge_idempotency_keys(p_older_than interval DEFAULT '24 hours')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    -- A deleted key lets a late retry of its call apply again. A negative
    -- age (now - it = later than every key: all of them) or NULL is a
    -- mistake and refused; 0 (every key up to now) stays possible, on purpose.
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_older_than must be an interval of 0 or more (got %)',
                        COALESCE(p_older_than::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_older_than"}';
    END IF;
    DELETE FROM atomic_inventory.idempotency_keys WHERE created_at < pg_catalog.now() - p_older_than;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END;
$$;
CREATE FUNCTION atomic_inventory.stripe_item(
    p_inventory_id    uuid,
    p_stripes         integer,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_location_id     uuid    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_stripe_item';
COMMENT ON FUNCTION atomic_inventory.stripe_item(uuid, integer, integer, uuid) IS
    'Striped mode for a hot stock level: spread the free stock of the item at p_location_id (NULL: the default location) over p_stripes sub-rows (2..256) so that many sales there can lock at once; 0 puts everything back into the level''s row. Quantity, available and the ledger are unchanged. Returns {success, inventory_id, location_id (if p_location_id is given), stripes, quantity, reserved, stripe_quantities}.';

COMMENT ON FUNCTION atomic_inventory.purge_idempotency_keys(interval) IS
    'Delete idempotency keys older than p_older_than (retries after that apply again). Schedule it, e.g. with pg_cron.';

-- Delivery batches (the delivery-batch claim route of docs/background.md).

CREATE FUNCTION atomic_inventory.claim_batch(
    p_batch_id        uuid,
    p_driver_id       text    DEFAULT NULL,
    p_lease_seconds   integer DEFAULT NULL,
    p_max_active      integer DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_claim_batch';
COMMENT ON FUNCTION atomic_inventory.claim_batch(uuid, text, integer, integer, integer) IS
    'Claim one batch: exactly one concurrent driver wins, the others get BATCH_UNAVAILABLE (PT409 = HTTP 409). Re-claiming a batch you hold succeeds. p_driver_id defaults to the JWT sub.';

CREATE FUNCTION atomic_inventory.claim_next_batch(
    p_driver_id       text    DEFAULT NULL,
    p_zone            text    DEFAULT NULL,
    p_lease_seconds   integer DEFAULT NULL,
    p_max_active      integer DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_claim_next_batch';
COMMENT ON FUNCTION atomic_inventory.claim_next_batch(text, text, integer, integer, integer) IS
    'Claim the next claimable batch (highest priority, oldest first, optionally in p_zone) with SKIP LOCKED: concurrent drivers get different batches without waiting. NULL when none is left.';

CREATE FUNCTION atomic_inventory.unclaim_batch(
    p_batch_id        uuid,
    p_driver_id       text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_unclaim_batch';
COMMENT ON FUNCTION atomic_inventory.unclaim_batch(uuid, text, integer) IS
    'Give a claimed or started batch back (available again). Holder or admin only, else BATCH_NOT_HELD (PT403).';

CREATE FUNCTION atomic_inventory.start_batch(
    p_batch_id        uuid,
    p_driver_id       text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_start_batch';
COMMENT ON FUNCTION atomic_inventory.start_batch(uuid, text, integer) IS
    'claimed -> in_progress (the lease stops applying). Holder or admin only; repeating it succeeds.';

CREATE FUNCTION atomic_inventory.complete_batch(
    p_batch_id        uuid,
    p_driver_id       text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_complete_batch';
COMMENT ON FUNCTION atomic_inventory.complete_batch(uuid, text, integer) IS
    'claimed or in_progress -> completed. Holder or admin only; repeating it succeeds.';

CREATE FUNCTION atomic_inventory.extend_batch_lease(
    p_batch_id        uuid,
    p_driver_id       text    DEFAULT NULL,
    p_seconds         integer DEFAULT 300,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_extend_batch_lease';
COMMENT ON FUNCTION atomic_inventory.extend_batch_lease(uuid, text, integer, integer) IS
    'Heartbeat: lease a claimed or started batch the driver holds for p_seconds (1..604800) from now; the sweep returns a batch whose lease lapsed to available. A lapsed lease is not extended (BATCH_NOT_HELD, PT403): claim it again. Returns the batch.';

CREATE FUNCTION atomic_inventory.create_batch(
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

-- Reservations (the checkout reservation of docs/background.md).
--
-- The reservation functions (these three and bound_reserve /
-- bound_commit_reservation / bound_release_reservation below) run their
-- statements with generic plans and without sequential scans:
-- * plan_cache_mode: left to choose, the plan cache kept making custom plans
--   for most of their statements (the line arrays, the `$n IS NULL OR ...`
--   filters), i.e. planned them on every call: 177 us of a 923 us
--   reserve + commit pair on one client, and 2,011 -> 2,775 pairs/s at 8
--   clients when forced generic (docs/benchmarks.md).
-- * enable_seqscan: every statement finds its rows by key, but a generic plan
--   made while statistics say the reservation tables are empty (a fresh
--   install, just after ANALYZE) scans them sequentially, and keeps doing so
--   as they grow, until the next ANALYZE: 913 pairs/s from such a start,
--   2,779 with this set (docs/benchmarks.md). The #[pg_test]
--   reservation_plans_use_keys pins both.

CREATE FUNCTION atomic_inventory.reserve_inventory(
    p_lines           jsonb,
    p_ttl_seconds     integer DEFAULT 900,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_reserve_inventory';
COMMENT ON FUNCTION atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer) IS
    'Hold stock for lines [{inventory_id, quantity}] for p_ttl_seconds (default 900): all or nothing, locks in id order. Returns {success, reservation_id, status, expires_at, lines}.';

CREATE FUNCTION atomic_inventory.commit_reservation(
    p_reservation_id  uuid,
    p_inventory_ids   uuid[]  DEFAULT NULL,
    p_reason          text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_lines           jsonb   DEFAULT NULL,
    p_rest            text    DEFAULT 'release'
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_commit_reservation';
COMMENT ON FUNCTION atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer, jsonb, text) IS
    'Turn the hold into a sale (quantity and reserved both drop; ledger kind commit). All active lines, or only p_inventory_ids; or, with p_lines [{inventory_id, quantity}], that many units of each named line, its rest released (p_rest = release, the default) or kept held (p_rest = keep: the line and the reservation stay active). Returns {success, reservation_id, status, expires_at, committed} (with p_lines also rest, released and kept). Expired: RESERVATION_EXPIRED (PT410); finished: RESERVATION_NOT_ACTIVE (PT409).';

CREATE FUNCTION atomic_inventory.release_reservation(
    p_reservation_id  uuid,
    p_inventory_ids   uuid[]  DEFAULT NULL,
    p_reason          text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_release_reservation';
COMMENT ON FUNCTION atomic_inventory.release_reservation(uuid, uuid[], text, text, integer) IS
    'Give held units back (all active lines, or only p_inventory_ids). Releasing a finished reservation is RESERVATION_NOT_ACTIVE (PT409), never a double release.';

CREATE FUNCTION atomic_inventory.extend_reservation(
    p_reservation_id  uuid,
    p_ttl_seconds     integer DEFAULT 900,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_extend_reservation';
COMMENT ON FUNCTION atomic_inventory.extend_reservation(uuid, integer, integer) IS
    'Move an active, unexpired reservation''s expiry to now() + p_ttl_seconds.';

CREATE FUNCTION atomic_inventory.expire_reservations(p_limit integer DEFAULT 1000) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_expire_reservations';
COMMENT ON FUNCTION atomic_inventory.expire_reservations(integer) IS
    'The sweep: release up to p_limit due reservations (skipping any being committed or released right now), and return up to p_limit batch claims whose lease lapsed to available. Returns {success, expired, lapsed_batches}. Each wait for a row lock is limited by atomic_inventory.sweep_lock_timeout: LOCK_TIMEOUT (PT503) past it, nothing changed. Schedule it with pg_cron, or let the background worker run it.';

CREATE FUNCTION atomic_inventory.get_reservation(p_reservation_id uuid) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v json;
BEGIN
    -- a NULL id is bad input (400), as for the C functions, not NOT_FOUND
    IF p_reservation_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_reservation_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_reservation_id"}';
    END IF;
    -- lines on managed items carry inventory_id; lines of a bound source
    -- (source set) carry item_id, the row's key
    SELECT pg_catalog.json_build_object('reservation_id', r.id, 'status', r.status,
               'reference', r.reference, 'expires_at', r.expires_at, 'created_at', r.created_at,
               'source', r.source,
               'lines', CASE WHEN r.source IS NULL THEN
                          -- location_id only on lines held at another location than the default
                          (SELECT pg_catalog.json_agg(CASE WHEN l.location_id IS NULL THEN
                                    pg_catalog.json_build_object(
                                    'inventory_id', l.inventory_id, 'quantity', l.quantity, 'status', l.status,
                                    'committed_quantity', l.committed_quantity,
                                    'released_quantity', l.released_quantity)
                                  ELSE pg_catalog.json_build_object(
                                    'inventory_id', l.inventory_id, 'quantity', l.quantity, 'status', l.status,
                                    'committed_quantity', l.committed_quantity,
                                    'released_quantity', l.released_quantity, 'location_id', l.location_id)
                                  END ORDER BY l.inventory_id)
                             FROM atomic_inventory.reservation_lines AS l
                            WHERE l.reservation_id = r.id)
                        ELSE
                          (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                    'item_id', b.item_key, 'quantity', b.quantity, 'status', b.status,
                                    'committed_quantity', b.committed_quantity,
                                    'released_quantity', b.released_quantity)
                                    ORDER BY b.item_key)
                             FROM atomic_inventory.bound_reservation_lines AS b
                            WHERE b.reservation_id = r.id)
                        END)
      INTO v
      FROM atomic_inventory.reservations AS r
     WHERE r.id = p_reservation_id
       AND (r.tenant_id IS NULL OR r.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin());
    IF v IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: reservation % does not exist or is not visible to this tenant', p_reservation_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'reservation', 'ids',
                                                        pg_catalog.json_build_array(p_reservation_id))::text;
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION atomic_inventory.get_reservation(uuid) IS
    'A reservation with its lines and their statuses (source and item_id for a reservation on a bound source); each line also says how many of its units were committed and released so far (partial commits).';

-- Warehouse packing (the packing RPC of docs/background.md).

CREATE FUNCTION atomic_inventory.increment_packing_quantity(
    p_progress_id     uuid,
    p_quantity_needed integer DEFAULT NULL,
    p_picked_quantity integer DEFAULT NULL,
    p_session_id      uuid    DEFAULT NULL,
    p_product_id      uuid    DEFAULT NULL,
    p_quantity        integer DEFAULT 1,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_increment_packing_quantity';
COMMENT ON FUNCTION atomic_inventory.increment_packing_quantity(uuid, integer, integer, uuid, uuid, integer, integer) IS
    'Pack p_quantity (default 1) units of a progress line, with all nine packing validations (session, ownership, order status, line and basket limits). p_quantity_needed and p_picked_quantity are accepted for compatibility; the tables decide. Returns the updated progress row as JSON.';

CREATE FUNCTION atomic_inventory.decrement_packing_quantity(
    p_progress_id     uuid,
    p_session_id      uuid,
    p_quantity        integer DEFAULT 1,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_decrement_packing_quantity';
COMMENT ON FUNCTION atomic_inventory.decrement_packing_quantity(uuid, uuid, integer, integer) IS
    'Un-pack units packed by mistake (same validations; NOTHING_TO_UNPACK below zero). Returns the updated progress row as JSON.';

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

-- Adopted tables (docs/adopting.md, src/source/bound/). The
-- bind/unbind functions are for the table's owner (admins): not in
-- grant_usage. The bound_* operations are caller-facing like their managed
-- counterparts.

CREATE FUNCTION atomic_inventory.bind_stock_source(
    p_name            text,
    p_relation        regclass,
    p_id_column       name,
    p_quantity_column name,
    p_reserved_column name    DEFAULT NULL,
    p_track_column    name    DEFAULT NULL,
    p_tenant_column   name    DEFAULT NULL,
    p_add_check       boolean DEFAULT true,
    p_location_column name    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bind_stock_source';
COMMENT ON FUNCTION atomic_inventory.bind_stock_source(text, regclass, name, name, name, name, name, boolean, name) IS
    'Adopt an existing stock table under the name p_name: checks the columns, that the id is unique (with p_location_column: that (id, location) is, the location NOT NULL) and that quantity has a CHECK (>= 0) (added, NOT VALID then validated, with p_add_check), and writes one initial ledger row per row. Caller must own the table. Returns {success, name, kind, relation, ...}.';

CREATE FUNCTION atomic_inventory.bind_batch_source(
    p_name            text,
    p_relation        regclass,
    p_id_column       name,
    p_status_column   name,
    p_assignee_column name,
    p_available_value text DEFAULT 'available',
    p_claimed_value   text DEFAULT 'claimed',
    p_tenant_column   name DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bind_batch_source';
COMMENT ON FUNCTION atomic_inventory.bind_batch_source(text, regclass, name, name, name, text, text, name) IS
    'Adopt an existing delivery batch table under the name p_name for bound_claim_batch and friends. Caller must own the table. Returns {success, name, kind, relation, ...}.';

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

CREATE FUNCTION atomic_inventory.unbind_source(p_name text) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_unbind_source';
COMMENT ON FUNCTION atomic_inventory.unbind_source(text) IS
    'Forget a binding (NOT_FOUND, PT404, if there is none). The table, its rows, an added CHECK and the ledger rows stay. Returns {success, name, kind, relation}.';

CREATE VIEW atomic_inventory.bound_sources AS
SELECT b.name, b.kind, b.relation, b.id_column, b.id_type, b.quantity_column, b.quantity_type,
       b.reserved_column, b.track_column, b.tenant_column, b.status_column, b.available_value,
       b.claimed_value, b.assignee_column, b.created_at, b.location_column, b.location_type
  FROM atomic_inventory.bindings AS b;
COMMENT ON VIEW atomic_inventory.bound_sources IS
    'The bindings: which app tables the bound_* functions operate on, and with which columns.';

CREATE FUNCTION atomic_inventory.bound_decrement(
    p_source          text,
    p_item_id         text,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_location        text    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_decrement';
COMMENT ON FUNCTION atomic_inventory.bound_decrement(text, text, numeric, text, text, text, integer, text) IS
    'decrement_inventory on a bound table row: take p_quantity units, refusing (INSUFFICIENT_INVENTORY, PT409) to go below available. p_location names the row''s location on a table bound with p_location_column (required there, refused elsewhere). Returns {success, source, item_id, [location,] old_quantity, new_quantity, deducted}.';

CREATE FUNCTION atomic_inventory.bound_decrement_many(
    p_source          text,
    p_lines           jsonb,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
-- As decrement_inventory_many: its statements (line arrays) were planned on
-- every call. 3,327-3,522 -> 4,957-5,104 5-line orders/s at 8 clients when
-- forced generic (docs/benchmarks.md); no sequential scan, as for the
-- reservation functions.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_bound_decrement_many';
COMMENT ON FUNCTION atomic_inventory.bound_decrement_many(text, jsonb, text, text, text, integer) IS
    'Several lines [{item_id, quantity}] ([{item_id, location, quantity}] on a table bound with p_location_column) of a bound table at once: all or nothing, rows locked in (id, location) order, duplicates merged. Returns {success, source, lines:[{item_id, old_quantity, new_quantity, deducted}]}.';

CREATE FUNCTION atomic_inventory.bound_increment(
    p_source          text,
    p_item_id         text,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_location        text    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_increment';
COMMENT ON FUNCTION atomic_inventory.bound_increment(text, text, numeric, text, text, text, integer, text) IS
    'increment_inventory on a bound table row (p_location: as bound_decrement). Returns {success, source, item_id, [location,] old_quantity, new_quantity, added}.';

CREATE FUNCTION atomic_inventory.bound_adjust(
    p_source            text,
    p_item_id           text,
    p_new_quantity      numeric,
    p_expected_quantity numeric DEFAULT NULL,
    p_force             boolean DEFAULT false,
    p_reason            text    DEFAULT NULL,
    p_reference         text    DEFAULT NULL,
    p_idempotency_key   text    DEFAULT NULL,
    p_lock_timeout_ms   integer DEFAULT NULL,
    p_location          text    DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_adjust';
COMMENT ON FUNCTION atomic_inventory.bound_adjust(text, text, numeric, numeric, boolean, text, text, text, integer, text) IS
    'adjust_inventory (compare-and-set) on a bound table row (p_location: as bound_decrement). Returns {success, source, item_id, [location,] old_quantity, new_quantity, delta}.';

CREATE FUNCTION atomic_inventory.bound_get(p_source text, p_item_id text, p_location text DEFAULT NULL) RETURNS json
LANGUAGE c STABLE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_get';
COMMENT ON FUNCTION atomic_inventory.bound_get(text, text, text) IS
    'One bound row''s stock: {source, item_id, [location,] quantity, reserved, available, tracked, tenant_id} (NOT_FOUND, PT404, if not visible; p_location: as bound_decrement).';

-- Reservations on bound sources (src/source/bound/holds.rs): commit,
-- release, extend, get and expiry are the reservation functions above; these
-- two name lines by item key.
CREATE FUNCTION atomic_inventory.bound_reserve(
    p_source          text,
    p_lines           jsonb,
    p_ttl_seconds     integer DEFAULT 900,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_bound_reserve';
COMMENT ON FUNCTION atomic_inventory.bound_reserve(text, jsonb, integer, text, text, integer) IS
    'reserve_inventory on a bound table (bound with p_reserved_column): lines [{item_id, quantity}], all or nothing, rows locked in id order, units added to the reserved column. Commit, release, extend and read it with the reservation functions. Returns {success, reservation_id, source, status, expires_at, lines}.';

CREATE FUNCTION atomic_inventory.bound_commit_reservation(
    p_reservation_id  uuid,
    p_item_ids        text[]  DEFAULT NULL,
    p_reason          text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL,
    p_lines           jsonb   DEFAULT NULL,
    p_rest            text    DEFAULT 'release'
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_bound_commit_reservation';
COMMENT ON FUNCTION atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer, jsonb, text) IS
    'commit_reservation naming lines by item key (p_item_ids, NULL = all active lines; or p_lines [{item_id, quantity}] with p_rest, units of each line as commit_reservation''s p_lines): quantity and reserved both drop, ledger kind commit.';

CREATE FUNCTION atomic_inventory.bound_release_reservation(
    p_reservation_id  uuid,
    p_item_ids        text[]  DEFAULT NULL,
    p_reason          text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_bound_release_reservation';
COMMENT ON FUNCTION atomic_inventory.bound_release_reservation(uuid, text[], text, text, integer) IS
    'release_reservation naming lines by item key (p_item_ids, NULL = all active lines).';

CREATE FUNCTION atomic_inventory.bound_claim_batch(
    p_source    text,
    p_batch_id  text,
    p_driver_id text DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_claim_batch';
COMMENT ON FUNCTION atomic_inventory.bound_claim_batch(text, text, text) IS
    'Claim a batch of a bound batch table for p_driver_id (default: the JWT sub): exactly one driver wins, the others get BATCH_UNAVAILABLE (PT409). Returns {success, source, batch_id, status, driver_id}.';

CREATE FUNCTION atomic_inventory.bound_claim_next_batch(
    p_source    text,
    p_driver_id text DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_claim_next_batch';
COMMENT ON FUNCTION atomic_inventory.bound_claim_next_batch(text, text) IS
    'Claim the available batch with the lowest id that no one else is claiming right now (SKIP LOCKED); NULL when none is left.';

CREATE FUNCTION atomic_inventory.bound_unclaim_batch(
    p_source    text,
    p_batch_id  text,
    p_driver_id text DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_unclaim_batch';
COMMENT ON FUNCTION atomic_inventory.bound_unclaim_batch(text, text, text) IS
    'Give a claimed batch back (status available, assignee NULL); only its holder can (BATCH_NOT_HELD, PT403).';

CREATE FUNCTION atomic_inventory.reconcile_source(p_source text)
RETURNS TABLE (item_key text, quantity numeric, ledger_sum numeric, drift numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    b atomic_inventory.bindings;
    v_tenant text;
    v_key text;
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
              AND a.attname IN (b.id_column, b.quantity_column, b.tenant_column, b.location_column))
          <> 2 + (b.tenant_column IS NOT NULL)::int + (b.location_column IS NOT NULL)::int
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                   WHERE a.attrelid = b.relation AND NOT a.attisdropped
                     AND a.attname IN (b.id_column, b.quantity_column, b.tenant_column, b.location_column)
                     AND a.atttypid >= 16384) THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source %: its table or a column changed (dropped, renamed or of another type) since it was bound; unbind_source it and bind it again', p_source
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}';
    END IF;
    -- identifiers quoted by format's %I, the relation by regclass output
    -- (schema-qualified: the pinned search_path has no app schema); values
    -- passed with USING.
    v_tenant := CASE WHEN b.tenant_column IS NULL THEN 'NULL::text'
                     ELSE pg_catalog.format('t.%I::text', b.tenant_column) END;
    -- a row's key as the bound_* functions write it to the ledger: the id,
    -- or on a table keyed by (id, location) both as a JSON array
    -- (src/source/bound/stock.rs, row_key), so each (item, location) row is
    -- compared with its own ledger rows
    v_key := CASE WHEN b.location_column IS NULL THEN pg_catalog.format('t.%I::text', b.id_column)
                  ELSE pg_catalog.format('pg_catalog.jsonb_build_array(t.%I::text, t.%I::text)::text',
                                         b.id_column, b.location_column) END;
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT r.k, r.q, COALESCE(l.total, 0), r.q - COALESCE(l.total, 0)
           FROM (SELECT %s AS k, t.%I::numeric AS q, %s AS tenant FROM %s AS t) AS r
           LEFT JOIN (SELECT g.item_key, pg_catalog.sum(g.delta) AS total
                        FROM atomic_inventory.ledger AS g
                       WHERE g.source = $1 GROUP BY g.item_key) AS l ON l.item_key = r.k
          WHERE r.q IS DISTINCT FROM COALESCE(l.total, 0)
            AND (r.tenant IS NULL OR r.tenant = $2 OR $3)
          ORDER BY r.k',
        v_key, b.quantity_column, v_tenant, b.relation)
    USING p_source, atomic_inventory.caller_tenant(), atomic_inventory.caller_is_admin();
END;
$$;
COMMENT ON FUNCTION atomic_inventory.reconcile_source(text) IS
    'Rows of a bound stock table whose quantity differs from the sum of their ledger rows (a write outside the bound_* functions, or a row inserted after binding). item_key is the id as text, or ["<id>", "<location>"] on a table bound with p_location_column. Empty = everything accounted for.';

-- Statistics (src/stats.rs): per-function calls, outcomes and latency.
-- Cluster-wide when the library is preloaded, else this backend's own.

-- PARALLEL RESTRICTED: without preloading the counters are in this
-- backend's memory, which a parallel worker would not see (it would answer
-- its own empty table).
CREATE FUNCTION atomic_inventory.stats_snapshot() RETURNS json
LANGUAGE c VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ai_stats_snapshot';
COMMENT ON FUNCTION atomic_inventory.stats_snapshot() IS
    'Counters of every function as a JSON array; read it through the stats view.';

CREATE FUNCTION atomic_inventory.stats_reset() RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ai_stats_reset';
COMMENT ON FUNCTION atomic_inventory.stats_reset() IS
    'Zero the statistics (of the cluster when preloaded, else of this backend).';

CREATE VIEW atomic_inventory.stats AS
SELECT s.*
  FROM pg_catalog.json_to_recordset(atomic_inventory.stats_snapshot()) AS s(
       function text, calls bigint, ok bigint, errors jsonb,
       lock_timeouts bigint, deadlocks bigint, serialization_failures bigint,
       canceled bigint, mean_ms numeric, p50_ms numeric, p95_ms numeric,
       p99_ms numeric, max_ms numeric, scope text, since timestamptz);
COMMENT ON VIEW atomic_inventory.stats IS
    'Per-function calls since stats_reset(): successes, each error code, lock timeouts, deadlocks, serialization failures, cancels, latency percentiles (upper bounds of log-linear buckets, at most 25% high). scope = cluster (preloaded) or backend.';

-- Stock events (docs/events.md): reorder points, consumers, retention. The
-- events themselves are written by triggers (bootstrap.sql).

-- Who may read events: the caller's tenant and shared items' (Supabase
-- Realtime checks it for each subscriber; the functions run as the owner).
CREATE POLICY events_tenant_read ON atomic_inventory.events FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = atomic_inventory.caller_tenant()
           OR atomic_inventory.caller_is_admin());

CREATE FUNCTION atomic_inventory.set_reorder_point(
    p_inventory_id  uuid,
    p_reorder_point numeric DEFAULT NULL,
    p_location_id   uuid    DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_row   atomic_inventory.items;
    v_level atomic_inventory.stock_levels;
BEGIN
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    IF p_reorder_point = 'NaN' OR p_reorder_point < 0 OR p_reorder_point > 1000000000000 THEN
        RAISE EXCEPTION 'INVALID_QUANTITY: p_reorder_point must be a finite number between 0 and 1000000000000, or NULL for none'
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.json_build_object('code', 'INVALID_QUANTITY', 'field', 'p_reorder_point',
                                                        'value', p_reorder_point::text)::text,
                  HINT = 'Pass the available quantity at or below which a low_stock event should be written.';
    END IF;
    -- Takes the row lock like a sale. Raising the point above what is
    -- available now crosses it: the low_stock event is written by this change.
    IF p_location_id IS NULL OR p_location_id = '00000000-0000-0000-0000-000000000000' THEN
        UPDATE atomic_inventory.items AS i SET reorder_point = p_reorder_point
         WHERE i.id = p_inventory_id
           AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
                OR atomic_inventory.caller_is_admin())
        RETURNING * INTO v_row;
    ELSE
        SELECT * INTO v_row FROM atomic_inventory.items AS i
         WHERE i.id = p_inventory_id
           AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
                OR atomic_inventory.caller_is_admin());
        IF v_row.id IS NOT NULL THEN
            IF NOT EXISTS (SELECT FROM atomic_inventory.locations AS o
                            WHERE o.id = p_location_id
                              AND (o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
                                   OR atomic_inventory.caller_is_admin())) THEN
                RAISE EXCEPTION 'NOT_FOUND: location % does not exist or is not visible to this tenant', p_location_id
                    USING ERRCODE = 'PT404',
                          DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'location', 'ids',
                                                                pg_catalog.json_build_array(p_location_id))::text,
                          HINT = 'Check the id; locations of another tenant are reported as not found.';
            END IF;
            UPDATE atomic_inventory.stock_levels AS l SET reorder_point = p_reorder_point
             WHERE l.item_id = p_inventory_id AND l.location_id = p_location_id
            RETURNING * INTO v_level;
            IF v_level.item_id IS NULL THEN
                RAISE EXCEPTION 'LEVEL_NOT_FOUND: item % has no stock level at location %', p_inventory_id, p_location_id
                    USING ERRCODE = 'PT404',
                          DETAIL = pg_catalog.json_build_object('code', 'LEVEL_NOT_FOUND', 'inventory_id',
                                                                p_inventory_id, 'location_id', p_location_id)::text,
                          HINT = 'Restock (increment_inventory) or transfer stock to that location first.';
            END IF;
        END IF;
    END IF;
    IF v_row.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text,
                  HINT = 'Check the id, and that the caller acts for the item''s tenant.';
    END IF;
    IF v_level.item_id IS NOT NULL THEN
        RETURN pg_catalog.json_build_object('success', true, 'inventory_id', v_level.item_id,
            'location_id', v_level.location_id, 'reorder_point', v_level.reorder_point,
            'available', v_level.quantity - v_level.reserved);
    END IF;
    RETURN pg_catalog.json_build_object('success', true, 'inventory_id', v_row.id,
        'reorder_point', v_row.reorder_point, 'available', v_row.quantity - v_row.reserved - v_row.unsellable,
        'stripes', v_row.stripes);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.set_reorder_point(uuid, numeric, uuid) IS
    'Set (or with NULL clear) the reorder point of an item''s stock at p_location_id (default: the default location): a low_stock event is written when available falls to it or below. Returns {success, inventory_id, reorder_point, available, ...}.';

CREATE FUNCTION atomic_inventory.low_stock_items(p_limit integer DEFAULT 1000)
RETURNS TABLE (inventory_id uuid, sku text, name text, quantity numeric, reserved numeric,
               available numeric, reorder_point numeric, tenant_id text, location_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 100000 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_limit must be between 1 and 100000 (got %)', COALESCE(p_limit::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_limit"}';
    END IF;
    RETURN QUERY
    WITH lv AS (
        -- (units set aside in stock states are not available: unsellable)
        SELECT i.id, NULL::uuid AS location_id, i.reserved, i.reorder_point,
               i.quantity + (SELECT COALESCE(pg_catalog.sum(x.quantity), 0)
                               FROM atomic_inventory.item_stripes AS x
                              WHERE x.item_id = i.id
                                AND x.location_id = '00000000-0000-0000-0000-000000000000') AS quantity,
               i.unsellable
          FROM atomic_inventory.items AS i WHERE i.reorder_point IS NOT NULL
        UNION ALL
        SELECT l.item_id, l.location_id, l.reserved, l.reorder_point,
               l.quantity + (SELECT COALESCE(pg_catalog.sum(x.quantity), 0)
                               FROM atomic_inventory.item_stripes AS x
                              WHERE x.item_id = l.item_id AND x.location_id = l.location_id), 0
          FROM atomic_inventory.stock_levels AS l
          JOIN atomic_inventory.locations AS o ON o.id = l.location_id
         WHERE l.reorder_point IS NOT NULL
           AND (o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
                OR atomic_inventory.caller_is_admin())
    )
    SELECT i.id, i.sku, i.name, v.quantity, v.reserved, v.quantity - v.reserved - v.unsellable, v.reorder_point,
           i.tenant_id, v.location_id
      FROM lv AS v JOIN atomic_inventory.items AS i ON i.id = v.id
     WHERE i.track_inventory AND v.quantity - v.reserved - v.unsellable <= v.reorder_point
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
     ORDER BY v.quantity - v.reserved - v.unsellable - v.reorder_point, i.id, v.location_id NULLS FIRST
     LIMIT p_limit;
END;
$$;
COMMENT ON FUNCTION atomic_inventory.low_stock_items(integer) IS
    'Stock levels of tracked items at or below their reorder point, furthest below first (location_id NULL: the default location; striped levels counted whole).';

-- Locations (docs/locations.md).
CREATE FUNCTION atomic_inventory.create_location(
    p_code      text,
    p_name      text    DEFAULT NULL,
    p_priority  integer DEFAULT 0,
    p_sellable  boolean DEFAULT true,
    p_tenant_id text    DEFAULT NULL,
    p_id        uuid    DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_tenant text := COALESCE(p_tenant_id, atomic_inventory.caller_tenant());
    v_row    atomic_inventory.locations;
BEGIN
    IF p_code IS NULL OR p_code = '' OR pg_catalog.length(p_code) > 255 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_code must be a code of 1 to 255 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_code"}',
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
    IF p_priority IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_priority is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_priority"}';
    END IF;
    IF v_tenant IS DISTINCT FROM atomic_inventory.caller_tenant()
       AND NOT atomic_inventory.caller_is_admin() THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id can only be your own tenant'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}';
    END IF;
    INSERT INTO atomic_inventory.locations (id, code, name, priority, sellable, tenant_id)
    VALUES (COALESCE(p_id, pg_catalog.gen_random_uuid()), p_code, p_name, p_priority,
            COALESCE(p_sellable, true), v_tenant)
    ON CONFLICT DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        -- the same call again (a retry) is answered with the location
        SELECT * INTO v_row FROM atomic_inventory.locations AS o
         WHERE o.id = p_id AND o.code = p_code AND o.name IS NOT DISTINCT FROM p_name
           AND o.tenant_id IS NOT DISTINCT FROM v_tenant;
        IF NOT FOUND THEN
            SELECT * INTO v_row FROM atomic_inventory.locations AS o
             WHERE o.id = p_id OR (o.code = p_code AND o.tenant_id IS NOT DISTINCT FROM v_tenant)
             LIMIT 1;
            RAISE EXCEPTION 'LOCATION_EXISTS: location % already has this %', v_row.id,
                  CASE WHEN v_row.id = p_id THEN 'id' ELSE 'code' END
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.json_build_object('code', 'LOCATION_EXISTS', 'location_id', v_row.id,
                                                            'location_code', p_code)::text,
                      HINT = 'Use the existing location, or pass another p_id / p_code.';
        END IF;
    END IF;
    RETURN pg_catalog.json_build_object('success', true, 'location_id', v_row.id, 'code', v_row.code,
        'name', v_row.name, 'priority', v_row.priority, 'active', v_row.active,
        'sellable', v_row.sellable, 'tenant_id', v_row.tenant_id);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.create_location(text, text, integer, boolean, text, uuid) IS
    'Create a location (store, warehouse, zone) for the caller''s tenant. Returns {success, location_id, code, name, priority, active, sellable, tenant_id}. Retry-safe with p_id; a taken code (per tenant) or id: LOCATION_EXISTS (PT409).';

CREATE FUNCTION atomic_inventory.update_location(
    p_location_id uuid,
    p_name        text    DEFAULT NULL,
    p_priority    integer DEFAULT NULL,
    p_active      boolean DEFAULT NULL,
    p_sellable    boolean DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_row     atomic_inventory.locations;
    v_busy    bigint;
    v_transit bigint;
BEGIN
    IF p_location_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_location_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_location_id"}';
    END IF;
    IF pg_catalog.length(p_name) > 1024 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_name is longer than 1024 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_name"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF p_location_id = '00000000-0000-0000-0000-000000000000'
       AND (p_active IS FALSE OR p_sellable IS FALSE) THEN
        RAISE EXCEPTION 'INVALID_INPUT: the default location is always active and sellable'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_location_id"}',
                  HINT = 'It holds every item''s own row; move stock elsewhere with transfer_inventory.';
    END IF;
    -- Locked against other changes of the location. Movements don't lock
    -- it (a lock per sale on one row every sale there shares would cost
    -- them all): one that started before this commits can still land on
    -- the location; its stock can be transferred out (docs/locations.md).
    SELECT * INTO v_row FROM atomic_inventory.locations AS o
     WHERE o.id = p_location_id
       AND (o.tenant_id IS NULL OR o.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
       FOR UPDATE;
    IF v_row.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: location % does not exist or is not visible to this tenant', p_location_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'location', 'ids',
                                                        pg_catalog.json_build_array(p_location_id))::text;
    END IF;
    IF v_row.tenant_id IS NULL AND NOT atomic_inventory.caller_is_admin() THEN
        RAISE EXCEPTION 'INVALID_INPUT: location % is shared; only an admin may change it', p_location_id
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_location_id"}';
    END IF;
    IF p_active IS FALSE AND v_row.active THEN
        -- (a striped level's free units are in its stripes)
        SELECT pg_catalog.count(*) INTO v_busy FROM atomic_inventory.stock_levels AS l
         WHERE l.location_id = p_location_id
           AND (l.quantity <> 0 OR l.reserved <> 0
                OR EXISTS (SELECT FROM atomic_inventory.item_stripes AS x
                            WHERE x.item_id = l.item_id AND x.location_id = l.location_id
                              AND x.quantity <> 0));
        -- active holds there too, untracked items' included (they leave
        -- reserved alone): their commit or release needs the location
        SELECT v_busy + pg_catalog.count(DISTINCT l.inventory_id) INTO v_busy
          FROM atomic_inventory.reservation_lines AS l
         WHERE l.location_id = p_location_id AND l.status = 'active'
           AND NOT EXISTS (SELECT FROM atomic_inventory.stock_levels AS s
                            WHERE s.item_id = l.inventory_id AND s.location_id = p_location_id
                              AND (s.quantity <> 0 OR s.reserved <> 0
                                   OR EXISTS (SELECT FROM atomic_inventory.item_stripes AS x
                                               WHERE x.item_id = s.item_id AND x.location_id = s.location_id
                                                 AND x.quantity <> 0)));
        IF v_busy > 0 THEN
            RAISE EXCEPTION 'LOCATION_IN_USE: location % still holds stock or holds of % items', p_location_id, v_busy
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.json_build_object('code', 'LOCATION_IN_USE', 'location_id', p_location_id,
                                                            'levels_with_stock', v_busy)::text,
                      HINT = 'Transfer or adjust its stock to 0 first.';
        END IF;
        -- units on their way to or from it: their receipt or cancellation
        -- lands there, which an inactive location refuses
        SELECT pg_catalog.count(*) INTO v_transit FROM atomic_inventory.transfers AS t
         WHERE t.status = 'shipped'
           AND (t.from_location_id = p_location_id OR t.to_location_id = p_location_id);
        IF v_transit > 0 THEN
            RAISE EXCEPTION 'LOCATION_IN_USE: location % has % transfers in transit to or from it', p_location_id, v_transit
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.json_build_object('code', 'LOCATION_IN_USE', 'location_id', p_location_id,
                                                            'levels_with_stock', 0,
                                                            'transfers_in_transit', v_transit)::text,
                      HINT = 'Receive (receive_transfer) or cancel (cancel_transfer) them first.';
        END IF;
    END IF;
    UPDATE atomic_inventory.locations AS o
       SET name = COALESCE(p_name, o.name), priority = COALESCE(p_priority, o.priority),
           active = COALESCE(p_active, o.active), sellable = COALESCE(p_sellable, o.sellable),
           updated_at = pg_catalog.now()
     WHERE o.id = p_location_id
    RETURNING * INTO v_row;
    RETURN pg_catalog.json_build_object('success', true, 'location_id', v_row.id, 'code', v_row.code,
        'name', v_row.name, 'priority', v_row.priority, 'active', v_row.active,
        'sellable', v_row.sellable, 'tenant_id', v_row.tenant_id);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.update_location(uuid, text, integer, boolean, boolean) IS
    'Change a location''s name, priority or flags (NULL: unchanged). Deactivating one that still holds stock or holds, or has transfers in transit to or from it: LOCATION_IN_USE (PT409). Returns the location as create_location does.';

-- The consumer a caller names: its own tenant's (names are per tenant).
CREATE FUNCTION atomic_inventory.event_consumer_id(p_consumer text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_consumer IS NULL OR p_consumer = '' OR pg_catalog.length(p_consumer) > 63 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_consumer must be a name of 1 to 63 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_consumer"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    SELECT c.id INTO v_id FROM atomic_inventory.event_consumers AS c
     WHERE c.tenant_scope = COALESCE(atomic_inventory.caller_tenant(), '') AND c.name = p_consumer;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: event consumer % does not exist for this tenant', p_consumer
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'event consumer', 'ids',
                                                        pg_catalog.json_build_array(p_consumer))::text,
                  HINT = 'Create it with create_event_consumer first; names are per tenant.';
    END IF;
    RETURN v_id;
END;
$$;

CREATE FUNCTION atomic_inventory.create_event_consumer(
    p_consumer  text,
    p_tenant_id text DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_caller text := atomic_inventory.caller_tenant();
    v_admin  boolean := atomic_inventory.caller_is_admin();
    v_tenant text := COALESCE(p_tenant_id, v_caller);
    v_row    atomic_inventory.event_consumers;
BEGIN
    IF p_consumer IS NULL OR p_consumer = '' OR pg_catalog.length(p_consumer) > 63 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_consumer must be a name of 1 to 63 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_consumer"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF pg_catalog.length(p_tenant_id) > 255 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id is longer than 255 characters'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}',
                  HINT = 'Check the argument named in the detail.';
    END IF;
    IF v_tenant IS DISTINCT FROM v_caller AND NOT v_admin THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_tenant_id can only be your own tenant'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_tenant_id"}';
    END IF;
    -- the same call again answers with the consumer (created = false)
    INSERT INTO atomic_inventory.event_consumers (tenant_scope, name, tenant_id, all_tenants)
    VALUES (COALESCE(v_caller, ''), p_consumer, v_tenant, v_admin AND v_tenant IS NULL)
    ON CONFLICT (tenant_scope, name) DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        SELECT * INTO v_row FROM atomic_inventory.event_consumers AS c
         WHERE c.tenant_scope = COALESCE(v_caller, '') AND c.name = p_consumer;
        RETURN pg_catalog.json_build_object('success', true, 'consumer', v_row.name, 'created', false,
            'tenant_id', v_row.tenant_id, 'all_tenants', v_row.all_tenants, 'created_at', v_row.created_at);
    END IF;
    RETURN pg_catalog.json_build_object('success', true, 'consumer', v_row.name, 'created', true,
        'tenant_id', v_row.tenant_id, 'all_tenants', v_row.all_tenants, 'created_at', v_row.created_at);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.create_event_consumer(text, text) IS
    'Create a named consumer group: it gets every event written from now on that its tenant may see (an admin without a tenant: all). The same call again answers with it (created = false). Returns {success, consumer, created, tenant_id, all_tenants, created_at}.';

CREATE FUNCTION atomic_inventory.drop_event_consumer(p_consumer text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_id bigint := atomic_inventory.event_consumer_id(p_consumer);
    v_n  bigint;
BEGIN
    SELECT pg_catalog.count(*) INTO v_n FROM atomic_inventory.event_deliveries AS d
     WHERE d.consumer_id = v_id AND d.acked_at IS NULL;
    DELETE FROM atomic_inventory.event_consumers WHERE id = v_id;
    RETURN pg_catalog.json_build_object('success', true, 'consumer', p_consumer, 'pending_dropped', v_n);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.drop_event_consumer(text) IS
    'Drop a consumer group and its pending deliveries. Returns {success, consumer, pending_dropped}.';

CREATE FUNCTION atomic_inventory.read_events(
    p_consumer           text,
    p_limit              integer DEFAULT 100,
    p_visibility_seconds integer DEFAULT 30
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_id  bigint := atomic_inventory.event_consumer_id(p_consumer);
    v_out json;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_limit must be between 1 and 1000 (got %)', COALESCE(p_limit::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_limit"}';
    END IF;
    IF p_visibility_seconds IS NULL OR p_visibility_seconds < 1 OR p_visibility_seconds > 86400 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_visibility_seconds must be between 1 and 86400 (got %)',
                        COALESCE(p_visibility_seconds::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_visibility_seconds"}';
    END IF;
    -- SKIP LOCKED: workers of one group reading at once each take other
    -- events. A taken event is hidden until its visibility timeout; unless
    -- acknowledged by then, the next read hands it out again.
    WITH picked AS (
        SELECT d.event_id FROM atomic_inventory.event_deliveries AS d
         WHERE d.consumer_id = v_id AND d.acked_at IS NULL
           AND d.visible_at <= pg_catalog.clock_timestamp()
         ORDER BY d.event_id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), taken AS (
        UPDATE atomic_inventory.event_deliveries AS d
           SET visible_at = pg_catalog.clock_timestamp()
                            + pg_catalog.make_interval(secs => p_visibility_seconds),
               read_count = d.read_count + 1
          FROM picked AS p
         WHERE d.consumer_id = v_id AND d.event_id = p.event_id
        RETURNING d.event_id, d.read_count
    )
    SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
               'id', e.id, 'kind', e.kind, 'inventory_id', e.inventory_id,
               'reservation_id', e.reservation_id, 'batch_id', e.batch_id, 'ledger_id', e.ledger_id,
               'tenant_id', e.tenant_id, 'available_before', e.available_before,
               'available_after', e.available_after, 'quantity_after', e.quantity_after,
               'reorder_point', e.reorder_point, 'detail', e.detail, 'created_at', e.created_at,
               'read_count', t.read_count) ORDER BY e.id), '[]'::json)
      INTO v_out
      FROM taken AS t JOIN atomic_inventory.events AS e ON e.id = t.event_id;
    RETURN v_out;
END;
$$;
COMMENT ON FUNCTION atomic_inventory.read_events(text, integer, integer) IS
    'Up to p_limit pending events of consumer p_consumer, oldest first, hidden from the group''s other readers for p_visibility_seconds; acknowledge them with ack_events or they come again. Returns a JSON array of events with read_count.';

CREATE FUNCTION atomic_inventory.ack_events(p_consumer text, p_event_ids bigint[]) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_id      bigint := atomic_inventory.event_consumer_id(p_consumer);
    v_unknown bigint[];
    v_n       bigint;
BEGIN
    IF p_event_ids IS NULL OR pg_catalog.cardinality(p_event_ids) = 0
       OR pg_catalog.cardinality(p_event_ids) > 1000 OR pg_catalog.array_position(p_event_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_event_ids must be an array of 1 to 1000 event ids'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_event_ids"}';
    END IF;
    -- Ids never delivered to this consumer (another tenant's, a typo) are
    -- refused as a whole; acknowledging one again (a retry) is fine.
    SELECT pg_catalog.array_agg(DISTINCT x.id ORDER BY x.id) INTO v_unknown
      FROM pg_catalog.unnest(p_event_ids) AS x(id)
     WHERE NOT EXISTS (SELECT FROM atomic_inventory.event_deliveries AS d
                        WHERE d.consumer_id = v_id AND d.event_id = x.id);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: events % were not delivered to consumer %', v_unknown, p_consumer
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'event',
                                                        'ids', pg_catalog.to_json(v_unknown))::text,
                  HINT = 'Acknowledge the ids read_events returned to this consumer.';
    END IF;
    UPDATE atomic_inventory.event_deliveries AS d SET acked_at = pg_catalog.clock_timestamp()
     WHERE d.consumer_id = v_id AND d.event_id = ANY (p_event_ids) AND d.acked_at IS NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN pg_catalog.json_build_object('success', true, 'consumer', p_consumer, 'acked', v_n);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.ack_events(text, bigint[]) IS
    'Acknowledge events read by consumer p_consumer: they are not handed out again. Ids never delivered to it are refused (NOT_FOUND, PT404); acknowledging again is fine. Returns {success, consumer, acked} (newly acknowledged).';

CREATE FUNCTION atomic_inventory.purge_events(p_older_than interval DEFAULT '7 days') RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_deliveries bigint;
    v_events     bigint;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_older_than must be an interval of 0 or more (got %)',
                        COALESCE(p_older_than::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_older_than"}';
    END IF;
    DELETE FROM atomic_inventory.event_deliveries AS d WHERE d.acked_at IS NOT NULL;
    GET DIAGNOSTICS v_deliveries = ROW_COUNT;
    -- an event some consumer has not acknowledged stays, however old
    DELETE FROM atomic_inventory.events AS e
     WHERE e.created_at < pg_catalog.now() - p_older_than
       AND NOT EXISTS (SELECT FROM atomic_inventory.event_deliveries AS d WHERE d.event_id = e.id);
    GET DIAGNOSTICS v_events = ROW_COUNT;
    RETURN pg_catalog.json_build_object('success', true, 'deliveries', v_deliveries, 'events', v_events);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.purge_events(interval) IS
    'Retention: delete acknowledged deliveries, and events older than p_older_than that no consumer still has pending. Schedule it (pg_cron). Returns {success, deliveries, events}.';

-- Backorders (docs/backorders.md): how far past the stock on hand sales and
-- holds of an item may go.
CREATE FUNCTION atomic_inventory.set_backorder_limit(
    p_inventory_id uuid,
    p_limit        numeric DEFAULT 0
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_row atomic_inventory.items;
BEGIN
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    IF p_limit IS NULL OR p_limit = 'NaN' OR p_limit < 0 OR p_limit > 1000000000000 THEN
        RAISE EXCEPTION 'INVALID_QUANTITY: p_limit must be a finite number between 0 (no backorders) and 1000000000000'
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.json_build_object('code', 'INVALID_QUANTITY', 'field', 'p_limit',
                                                        'value', p_limit::text)::text,
                  HINT = 'Pass how many units sales and holds may take past the stock on hand; 0 refuses them.';
    END IF;
    -- the row lock a sale takes: the limit changes between sales, never under one
    SELECT * INTO v_row FROM atomic_inventory.items AS i
     WHERE i.id = p_inventory_id
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
       FOR NO KEY UPDATE;
    IF v_row.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text;
    END IF;
    IF p_limit > 0 AND (v_row.stripes > 0 OR v_row.kit OR NOT v_row.track_inventory) THEN
        RAISE EXCEPTION 'INVALID_INPUT: item % is %: it takes no backorders', p_inventory_id,
                CASE WHEN v_row.kit THEN 'a kit (its components take them)'
                     WHEN v_row.stripes > 0 THEN 'striped'
                     ELSE 'untracked' END
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.json_build_object('code', 'INVALID_INPUT', 'field', 'p_inventory_id')::text,
                  HINT = 'Striped items: stripe_item(p_stripes => 0) first.';
    END IF;
    -- units already sold or held past the stock on hand stay covered (units
    -- set aside in stock states count as held: items_stock_valid)
    IF v_row.reserved + v_row.unsellable - v_row.quantity > p_limit THEN
        RAISE EXCEPTION 'BACKORDERS_EXCEED_LIMIT: item % has % units backordered, more than the limit %',
                p_inventory_id, v_row.reserved + v_row.unsellable - v_row.quantity, p_limit
            USING ERRCODE = 'PT409',
                  DETAIL = pg_catalog.json_build_object('code', 'BACKORDERS_EXCEED_LIMIT', 'inventory_id', p_inventory_id,
                                                        'backordered', v_row.reserved + v_row.unsellable - v_row.quantity,
                                                        'limit', p_limit)::text,
                  HINT = 'Restock first, or keep a limit at least as large as what is backordered.';
    END IF;
    -- one policy per item: a backorder limit replaces a preorder (set_preorder)
    UPDATE atomic_inventory.items AS i SET backorder_limit = p_limit, preorder_until = NULL
     WHERE i.id = p_inventory_id
    RETURNING * INTO v_row;
    RETURN pg_catalog.json_build_object('success', true, 'inventory_id', v_row.id, 'backorder_limit', v_row.backorder_limit,
        'quantity', v_row.quantity, 'reserved', v_row.reserved,
        'backordered', GREATEST(v_row.reserved + v_row.unsellable - v_row.quantity, 0));
END;
$$;
COMMENT ON FUNCTION atomic_inventory.set_backorder_limit(uuid, numeric) IS
    'Backorders: let sales and holds of an item take up to p_limit units past its stock on hand (quantity may fall to reserved - p_limit); 0 refuses them (the default). Replaces a preorder (set_preorder). Not for striped, kit or untracked items; a limit below what is already backordered is BACKORDERS_EXCEED_LIMIT (PT409). Returns {success, inventory_id, backorder_limit, quantity, reserved, backordered}.';

-- Preorders (docs/preorders.md): sell an item before its release, up to a
-- cap. The cap is the item's backorder_limit (the CHECK's bound, which must
-- not depend on the clock); preorder_until is the release date the sale
-- statements compare with now().
CREATE FUNCTION atomic_inventory.set_preorder(
    p_inventory_id uuid,
    p_limit        numeric,
    p_release_at   timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_row   atomic_inventory.items;
    v_limit numeric := COALESCE(p_limit, 0);
    v_until timestamptz;
    v_owed  numeric;
BEGIN
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    IF v_limit = 'NaN' OR v_limit < 0 OR v_limit > 1000000000000 THEN
        RAISE EXCEPTION 'INVALID_QUANTITY: p_limit must be a finite number between 0 (end the preorder) and 1000000000000'
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.jsonb_build_object('code', 'INVALID_QUANTITY', 'field', 'p_limit',
                                                         'value', p_limit::text)::text,
                  HINT = 'Pass how many units may be preordered past the stock on hand; 0 ends the preorder.';
    END IF;
    -- a release date must still be ahead: one already past would open
    -- nothing (and 'infinity' would be a backorder limit by another name)
    IF v_limit > 0 AND p_release_at IS NOT NULL
       AND (p_release_at <= pg_catalog.now() OR NOT pg_catalog.isfinite(p_release_at)) THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_release_at must be a finite moment in the future (got %)', p_release_at
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.jsonb_build_object('code', 'INVALID_INPUT', 'field', 'p_release_at',
                                                         'value', p_release_at::text)::text,
                  HINT = 'Pass the release date; to end a preorder early pass p_limit => 0.';
    END IF;
    -- the row lock a sale takes: the policy changes between sales, never under one
    SELECT * INTO v_row FROM atomic_inventory.items AS i
     WHERE i.id = p_inventory_id
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
       FOR NO KEY UPDATE;
    IF v_row.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.jsonb_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                         pg_catalog.jsonb_build_array(p_inventory_id))::text;
    END IF;
    -- units sold or held past the stock on hand (stock states count as held)
    v_owed := GREATEST(v_row.reserved + v_row.unsellable - v_row.quantity, 0);
    IF v_limit > 0 THEN
        IF v_row.stripes > 0 OR v_row.kit OR NOT v_row.track_inventory THEN
            RAISE EXCEPTION 'INVALID_INPUT: item % is %: it takes no preorders', p_inventory_id,
                    CASE WHEN v_row.kit THEN 'a kit (its components take them)'
                         WHEN v_row.stripes > 0 THEN 'striped'
                         ELSE 'untracked' END
                USING ERRCODE = '22023',
                      DETAIL = pg_catalog.jsonb_build_object('code', 'INVALID_INPUT', 'field', 'p_inventory_id')::text,
                      HINT = 'Striped items: stripe_item(p_stripes => 0) first.';
        END IF;
        -- without a date, a running preorder keeps its own (a new cap only)
        v_until := COALESCE(p_release_at,
                            CASE WHEN v_row.preorder_until > pg_catalog.now() THEN v_row.preorder_until END);
        IF v_until IS NULL THEN
            RAISE EXCEPTION 'INVALID_INPUT: p_release_at is required to start a preorder of item %', p_inventory_id
                USING ERRCODE = '22023',
                      DETAIL = pg_catalog.jsonb_build_object('code', 'INVALID_INPUT', 'field', 'p_release_at')::text,
                      HINT = 'Pass the release date; without one, set_backorder_limit sells past the stock on hand.';
        END IF;
        -- the cap is the CHECK's bound: what is owed must stay within it
        IF v_owed > v_limit THEN
            RAISE EXCEPTION 'BACKORDERS_EXCEED_LIMIT: item % has % units sold past its stock, more than the cap %',
                    p_inventory_id, v_owed, v_limit
                USING ERRCODE = 'PT409',
                      DETAIL = pg_catalog.jsonb_build_object('code', 'BACKORDERS_EXCEED_LIMIT', 'inventory_id', p_inventory_id,
                                                             'backordered', v_owed, 'limit', v_limit)::text,
                      HINT = 'Restock first, or keep a cap at least as large as what is owed.';
        END IF;
        -- one policy per item: a preorder replaces a backorder limit
        UPDATE atomic_inventory.items AS i SET backorder_limit = v_limit, preorder_until = v_until
         WHERE i.id = p_inventory_id
        RETURNING * INTO v_row;
    ELSIF v_row.preorder_until IS NOT NULL THEN
        -- Ending a preorder stops sales past the stock at once. Units already
        -- preordered stay owed: the cap stays as the CHECK's bound until a
        -- restock covers them (a later call then clears it).
        UPDATE atomic_inventory.items AS i
           SET backorder_limit = CASE WHEN v_owed > 0 THEN i.backorder_limit ELSE 0 END,
               preorder_until = CASE WHEN v_owed > 0 THEN LEAST(i.preorder_until, pg_catalog.now()) END
         WHERE i.id = p_inventory_id
        RETURNING * INTO v_row;
    END IF;
    RETURN pg_catalog.jsonb_build_object('success', true, 'inventory_id', v_row.id,
        'preorder_limit', CASE WHEN v_row.preorder_until IS NULL THEN 0 ELSE v_row.backorder_limit END,
        'preorder_until', v_row.preorder_until,
        'quantity', v_row.quantity, 'reserved', v_row.reserved,
        'preordered', CASE WHEN v_row.preorder_until IS NULL THEN 0 ELSE v_owed END);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.set_preorder(uuid, numeric, timestamptz) IS
    'Preorders: until p_release_at, sales and holds of an item may take up to p_limit units past its stock on hand (answered as preordered); from then on only the stock on hand, units already preordered staying owed until restocked. p_limit 0 or NULL ends the preorder now. Replaces a backorder limit (one policy per item). Not for striped, kit or untracked items; a cap below what is owed is BACKORDERS_EXCEED_LIMIT (PT409). Returns {success, inventory_id, preorder_limit, preorder_until, quantity, reserved, preordered}.';

-- Kits (docs/kits.md): define_kit / remove_kit. Selling and reserving a
-- kit is decrement_inventory(_many) and reserve_inventory (src/ops/kits.rs).
CREATE FUNCTION atomic_inventory.define_kit(
    p_inventory_id uuid,
    p_components   jsonb
) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_kit    atomic_inventory.items;
    v_ids    uuid[];
    v_qtys   numeric[];
    v_n      integer;
    v_found  integer;
    v_line   jsonb;
    v_i      integer := 0;
    v_id     uuid;
    v_qty    numeric;
    v_bad    uuid[];
BEGIN
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    IF p_components IS NULL OR pg_catalog.jsonb_typeof(p_components) <> 'array'
       OR pg_catalog.jsonb_array_length(p_components) = 0 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_components must be a non-empty JSON array of {"inventory_id": uuid, "quantity": number}'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_components"}',
                  HINT = 'remove_kit() turns a kit back into a plain item.';
    END IF;
    IF pg_catalog.jsonb_array_length(p_components) > 100 THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_components has % lines; at most 100 are allowed',
                pg_catalog.jsonb_array_length(p_components)
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_components"}';
    END IF;
    -- each line checked on its own, so the error names it
    FOR v_line IN SELECT x FROM pg_catalog.jsonb_array_elements(p_components) AS x LOOP
        IF pg_catalog.jsonb_typeof(v_line) <> 'object'
           OR pg_catalog.jsonb_typeof(v_line -> 'inventory_id') IS DISTINCT FROM 'string'
           OR (v_line ->> 'inventory_id') !~* '^\{?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}\}?$' THEN
            RAISE EXCEPTION 'INVALID_INPUT: p_components[%].inventory_id must be a uuid string', v_i
                USING ERRCODE = '22023',
                      DETAIL = pg_catalog.json_build_object('code', 'INVALID_INPUT',
                                   'field', pg_catalog.format('p_components[%s].inventory_id', v_i))::text;
        END IF;
        IF pg_catalog.jsonb_typeof(v_line -> 'quantity') NOT IN ('number', 'string')
           OR pg_catalog.jsonb_typeof(v_line -> 'quantity') IS NULL
           OR (v_line ->> 'quantity') !~ '^\s*[0-9]{1,13}(\.[0-9]{1,20})?\s*$'
           OR (v_line ->> 'quantity')::numeric <= 0
           OR (v_line ->> 'quantity')::numeric > 1000000000000 THEN
            RAISE EXCEPTION 'INVALID_QUANTITY: p_components[%].quantity must be a number above 0 and at most 1000000000000', v_i
                USING ERRCODE = '22023',
                      DETAIL = pg_catalog.json_build_object('code', 'INVALID_QUANTITY',
                                   'field', pg_catalog.format('p_components[%s].quantity', v_i),
                                   'value', pg_catalog.left(v_line ->> 'quantity', 64))::text;
        END IF;
        v_id := (v_line ->> 'inventory_id')::uuid;
        IF v_id = p_inventory_id THEN
            RAISE EXCEPTION 'INVALID_INPUT: p_components[%] is the kit itself', v_i
                USING ERRCODE = '22023',
                      DETAIL = pg_catalog.json_build_object('code', 'INVALID_INPUT',
                                   'field', pg_catalog.format('p_components[%s].inventory_id', v_i))::text;
        END IF;
        v_i := v_i + 1;
    END LOOP;
    -- lines naming the same component add up
    SELECT pg_catalog.array_agg(c.id ORDER BY c.id), pg_catalog.array_agg(c.qty ORDER BY c.id)
      INTO v_ids, v_qtys
      FROM (SELECT (x ->> 'inventory_id')::uuid AS id, pg_catalog.sum((x ->> 'quantity')::numeric) AS qty
              FROM pg_catalog.jsonb_array_elements(p_components) AS x GROUP BY 1) AS c;
    IF EXISTS (SELECT FROM pg_catalog.unnest(v_qtys) AS q WHERE q > 1000000000000) THEN
        RAISE EXCEPTION 'INVALID_QUANTITY: p_components names a component more than once, adding up to more than 1000000000000'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_QUANTITY","field":"p_components"}';
    END IF;
    -- Lock the kit and its components in ascending id order, the order every
    -- sale locks item rows in, so a definition never deadlocks with sales.
    -- Under the locks (READ COMMITTED: each check below sees what committed
    -- before), two definitions naming each other queue and the second sees
    -- the first: no kit of kits.
    v_n := pg_catalog.array_length(v_ids, 1);
    SELECT pg_catalog.count(*) INTO v_found FROM (
        SELECT i.id FROM atomic_inventory.items AS i
         WHERE (i.id = p_inventory_id OR i.id = ANY (v_ids))
           AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
                OR atomic_inventory.caller_is_admin())
         ORDER BY i.id FOR NO KEY UPDATE) AS l;
    SELECT * INTO v_kit FROM atomic_inventory.items AS i
     WHERE i.id = p_inventory_id
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin());
    IF v_kit.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text;
    END IF;
    -- components: visible, of the kit's tenant (a shared kit takes shared ones)
    SELECT pg_catalog.array_agg(w.id ORDER BY w.id) INTO v_bad
      FROM pg_catalog.unnest(v_ids) AS w(id)
     WHERE NOT EXISTS (SELECT FROM atomic_inventory.items AS i
                        WHERE i.id = w.id AND i.tenant_id IS NOT DISTINCT FROM v_kit.tenant_id);
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not of the kit''s tenant', v_bad
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item',
                                                        'ids', v_bad)::text,
                  HINT = 'A kit''s components are items of the kit''s own tenant.';
    END IF;
    -- one level only: a component that is a kit, or a kit that is a component
    SELECT pg_catalog.array_agg(i.id ORDER BY i.id) INTO v_bad
      FROM atomic_inventory.items AS i WHERE i.id = ANY (v_ids) AND i.kit;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_components names kits (%): kits of kits are not supported', v_bad
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.json_build_object('code', 'INVALID_INPUT', 'field', 'p_components',
                                                        'kits', v_bad)::text,
                  HINT = 'List the inner kit''s components instead.';
    END IF;
    IF EXISTS (SELECT FROM atomic_inventory.kit_components AS k WHERE k.component_id = p_inventory_id) THEN
        RAISE EXCEPTION 'INVALID_INPUT: item % is a component of another kit and cannot be a kit itself', p_inventory_id
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.json_build_object('code', 'INVALID_INPUT', 'field', 'p_inventory_id')::text,
                  HINT = 'Kits are one level deep.';
    END IF;
    -- a kit holds no stock: not while it has units, holds, stripes or levels
    IF NOT v_kit.kit AND (v_kit.quantity <> 0 OR v_kit.reserved <> 0 OR v_kit.stripes <> 0
                          OR NOT v_kit.track_inventory
                          OR EXISTS (SELECT FROM atomic_inventory.stock_levels AS l
                                      WHERE l.item_id = p_inventory_id)
                          -- units in stock states (move_stock_state): damaged, incoming, ...
                          OR EXISTS (SELECT FROM atomic_inventory.stock_states AS s
                                      WHERE s.item_id = p_inventory_id AND s.quantity > 0)) THEN
        RAISE EXCEPTION 'KIT_HAS_STOCK: item % holds stock of its own (quantity %, reserved %, stripes %, levels, stock states or untracked) and cannot become a kit',
                p_inventory_id, v_kit.quantity, v_kit.reserved, v_kit.stripes
            USING ERRCODE = 'PT409',
                  DETAIL = pg_catalog.json_build_object('code', 'KIT_HAS_STOCK', 'inventory_id', p_inventory_id,
                                                        'quantity', v_kit.quantity, 'reserved', v_kit.reserved)::text,
                  HINT = 'Make the kit a new tracked item with no stock (create_item(p_quantity => 0)).';
    END IF;
    DELETE FROM atomic_inventory.kit_components AS k WHERE k.kit_id = p_inventory_id;
    INSERT INTO atomic_inventory.kit_components (kit_id, component_id, quantity)
    SELECT p_inventory_id, c.id, c.qty FROM ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_qtys)) AS c(id, qty);
    UPDATE atomic_inventory.items AS i SET kit = true, updated_at = pg_catalog.now()
     WHERE i.id = p_inventory_id AND NOT i.kit;
    RETURN pg_catalog.json_build_object('success', true, 'inventory_id', p_inventory_id,
        'components', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('inventory_id', c.id, 'quantity', c.qty)
                                                  ORDER BY c.id)
                         FROM ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_qtys)) AS c(id, qty)));
END;
$$;
COMMENT ON FUNCTION atomic_inventory.define_kit(uuid, jsonb) IS
    'Make an item a kit of components (p_components: [{inventory_id, quantity}], units per kit), or redefine one. The kit must hold no stock; components are items of its tenant that are not kits. Selling or reserving the kit then takes its components. Returns {success, inventory_id, components}.';

CREATE FUNCTION atomic_inventory.remove_kit(p_inventory_id uuid) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v_row atomic_inventory.items;
BEGIN
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
    UPDATE atomic_inventory.items AS i SET kit = false, updated_at = pg_catalog.now()
     WHERE i.id = p_inventory_id
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text;
    END IF;
    DELETE FROM atomic_inventory.kit_components AS k WHERE k.kit_id = p_inventory_id;
    RETURN pg_catalog.json_build_object('success', true, 'inventory_id', p_inventory_id);
END;
$$;
COMMENT ON FUNCTION atomic_inventory.remove_kit(uuid) IS
    'Turn a kit back into a plain item with no stock (its component list is deleted). Reservations already holding its components keep them. Returns {success, inventory_id}.';

-- Stock states (docs/stock-states.md): units of an item between available
-- and its named states (src/source/own/states.rs).
CREATE FUNCTION atomic_inventory.move_stock_state(
    p_inventory_id    uuid,
    p_from            text,
    p_to              text,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_move_stock_state';
COMMENT ON FUNCTION atomic_inventory.move_stock_state(uuid, text, text, numeric, text, text, text, integer) IS
    'Move p_quantity units of an item (its default location) from p_from to p_to: available, damaged, quality_control, safety_stock, incoming; ordered (only p_from, into incoming) and written_off (only p_to). On-hand states are not for sale; incoming units are not on hand until moved out of incoming. Ledgered (state_move, receive, write_off). Returns the item''s states as jsonb {success, inventory_id, from, to, moved, quantity, reserved, unsellable, available, states}.';

-- Grants. Nothing is callable by PUBLIC; grant_usage() opens the caller-facing
-- functions to a role (e.g. Supabase's authenticated and service_role).
REVOKE ALL ON ALL TABLES IN SCHEMA atomic_inventory FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA atomic_inventory FROM PUBLIC;
-- The CHECKs run as whoever writes the table; they have no side effects.
GRANT EXECUTE ON FUNCTION atomic_inventory.stock_valid(numeric, numeric) TO PUBLIC;
GRANT EXECUTE ON FUNCTION atomic_inventory.stock_valid(numeric, numeric, numeric, boolean, numeric) TO PUBLIC;
GRANT EXECUTE ON FUNCTION atomic_inventory.reservation_valid(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION atomic_inventory.reservation_line_valid(numeric, text) TO PUBLIC;
-- So does the stock-event triggers' WHEN.
GRANT EXECUTE ON FUNCTION atomic_inventory.stock_event_due(smallint, smallint, boolean, boolean, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric) TO PUBLIC;

CREATE FUNCTION atomic_inventory.grant_usage(p_role name) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA atomic_inventory TO %I', p_role);
    FOREACH f IN ARRAY ARRAY[
        'atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer, uuid)',
        'atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer)',
        'atomic_inventory.increment_inventory(uuid, numeric, text, text, text, integer, uuid)',
        'atomic_inventory.transfer_inventory(uuid, uuid, uuid, numeric, text, text, text, integer, boolean)',
        'atomic_inventory.receive_transfer(uuid, numeric, text, text, text, integer)',
        'atomic_inventory.cancel_transfer(uuid, text, text, text, integer)',
        'atomic_inventory.adjust_inventory(uuid, numeric, numeric, boolean, text, text, text, integer, uuid)',
        'atomic_inventory.create_item(numeric, text, text, boolean, text, uuid)',
        'atomic_inventory.get_inventory(uuid, uuid)',
        'atomic_inventory.create_location(text, text, integer, boolean, text, uuid)',
        'atomic_inventory.update_location(uuid, text, integer, boolean, boolean)',
        'atomic_inventory.reconcile()',
        'atomic_inventory.claim_batch(uuid, text, integer, integer, integer)',
        'atomic_inventory.claim_next_batch(text, text, integer, integer, integer)',
        'atomic_inventory.unclaim_batch(uuid, text, integer)',
        'atomic_inventory.start_batch(uuid, text, integer)',
        'atomic_inventory.complete_batch(uuid, text, integer)',
        'atomic_inventory.extend_batch_lease(uuid, text, integer, integer)',
        'atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer)',
        'atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer, jsonb, text)',
        'atomic_inventory.release_reservation(uuid, uuid[], text, text, integer)',
        'atomic_inventory.extend_reservation(uuid, integer, integer)',
        'atomic_inventory.get_reservation(uuid)',
        'atomic_inventory.increment_packing_quantity(uuid, integer, integer, uuid, uuid, integer, integer)',
        'atomic_inventory.decrement_packing_quantity(uuid, uuid, integer, integer)',
        'atomic_inventory.bound_decrement(text, text, numeric, text, text, text, integer, text)',
        'atomic_inventory.bound_decrement_many(text, jsonb, text, text, text, integer)',
        'atomic_inventory.bound_increment(text, text, numeric, text, text, text, integer, text)',
        'atomic_inventory.bound_adjust(text, text, numeric, numeric, boolean, text, text, text, integer, text)',
        'atomic_inventory.bound_get(text, text, text)',
        'atomic_inventory.bound_claim_batch(text, text, text)',
        'atomic_inventory.bound_claim_next_batch(text, text)',
        'atomic_inventory.bound_unclaim_batch(text, text, text)',
        'atomic_inventory.bound_reserve(text, jsonb, integer, text, text, integer)',
        'atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer, jsonb, text)',
        'atomic_inventory.bound_release_reservation(uuid, text[], text, text, integer)',
        'atomic_inventory.bound_increment_packing_quantity(text, text, text, text, integer, text, integer)',
        'atomic_inventory.bound_decrement_packing_quantity(text, text, text, integer, text, integer)',
        'atomic_inventory.reconcile_source(text)',
        'atomic_inventory.set_reorder_point(uuid, numeric, uuid)',
        'atomic_inventory.set_backorder_limit(uuid, numeric)',
        'atomic_inventory.set_preorder(uuid, numeric, timestamptz)',
        'atomic_inventory.define_kit(uuid, jsonb)',
        'atomic_inventory.remove_kit(uuid)',
        'atomic_inventory.move_stock_state(uuid, text, text, numeric, text, text, text, integer)',
        'atomic_inventory.low_stock_items(integer)',
        'atomic_inventory.create_event_consumer(text, text)',
        'atomic_inventory.drop_event_consumer(text)',
        'atomic_inventory.read_events(text, integer, integer)',
        'atomic_inventory.ack_events(text, bigint[])',
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
