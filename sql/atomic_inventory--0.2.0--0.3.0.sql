-- atomic_inventory 0.2.0 -> 0.3.0: faster stock writes (a C CHECK instead of
-- two expression CHECKs, fillfactor 90 on items, no CHECK on ledger.kind),
-- the atomic_inventory.ledger setting, striped hot items (item_stripes,
-- stripe_item), ledger.quantity_after NULL for striped movements.
-- Run by ALTER EXTENSION atomic_inventory UPDATE; the same objects a fresh
-- 0.3.0 install creates (pg_test/upgrade/run.sh compares the two catalogs).
\echo Use "ALTER EXTENSION atomic_inventory UPDATE" to load this file. \quit

-- The CHECK of items and item_stripes, in C (src/validate.rs): PostgreSQL 15
-- re-reads a table's CHECK expressions from their stored text on every
-- statement that writes the table; the two plain CHECKs of 0.2.0 cost 7 us
-- of a 15 us stock update (docs/benchmarks.md). A call with two column
-- references reads back in a fraction of that.
CREATE FUNCTION atomic_inventory.stock_valid(p_quantity numeric, p_reserved numeric) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_stock_valid';
COMMENT ON FUNCTION atomic_inventory.stock_valid(numeric, numeric) IS
    'CHECK of items: quantity is finite and 0 <= reserved <= quantity (so quantity >= 0).';

REVOKE ALL ON FUNCTION atomic_inventory.stock_valid(numeric, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION atomic_inventory.stock_valid(numeric, numeric) TO PUBLIC;

-- items: one C CHECK replaces the two expression CHECKs (same rule: quantity
-- finite, 0 <= reserved <= quantity). Adding it scans items once.
ALTER TABLE atomic_inventory.items
    DROP CONSTRAINT items_quantity_valid,
    DROP CONSTRAINT items_reserved_valid,
    ADD COLUMN stripes smallint NOT NULL DEFAULT 0,
    ADD CONSTRAINT items_stock_valid CHECK (atomic_inventory.stock_valid(quantity, reserved));
-- Applies to pages written from now on; VACUUM FULL atomic_inventory.items
-- (a table rewrite, in a quiet moment) makes room on the existing ones.
ALTER TABLE atomic_inventory.items SET (fillfactor = 90);
COMMENT ON COLUMN atomic_inventory.items.stripes IS 'Striped hot item (stripe_item): number of sub-rows in item_stripes holding its free stock; 0 = single-row mode.';

-- ledger: no CHECK on kind (only our statements write it, with literal
-- kinds); quantity_after is NULL for movements of striped items.
ALTER TABLE atomic_inventory.ledger
    DROP CONSTRAINT ledger_kind_check,
    ALTER COLUMN quantity_after DROP NOT NULL;
COMMENT ON COLUMN atomic_inventory.ledger.quantity_after IS 'The item''s quantity right after this movement; NULL for movements of a striped item (its total is spread over stripes that are not locked together).';

-- Striped mode for hot items (flash sales): the item's free stock is split
-- over N sub-rows, so N sales can hold row locks at once instead of queueing
-- on one row. decrement_inventory takes any stripe that covers the line with
-- SKIP LOCKED; the item's total is items.quantity + the stripes' sum.
CREATE TABLE atomic_inventory.item_stripes (
    item_id  uuid     NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    stripe   smallint NOT NULL CHECK (stripe >= 0),
    quantity numeric  NOT NULL,
    PRIMARY KEY (item_id, stripe),
    CONSTRAINT item_stripes_stock_valid CHECK (atomic_inventory.stock_valid(quantity, 0))
)
-- few rows, each updated at the highest rate of any: keep updates HOT
WITH (fillfactor = 50);
COMMENT ON TABLE atomic_inventory.item_stripes IS
    'Sub-rows of striped items (stripe_item): each holds part of the item''s free stock; never below 0.';
COMMENT ON COLUMN atomic_inventory.item_stripes.item_id IS 'The striped item.';
COMMENT ON COLUMN atomic_inventory.item_stripes.stripe IS 'Stripe number, 0 .. items.stripes - 1.';
COMMENT ON COLUMN atomic_inventory.item_stripes.quantity IS 'Free units in this stripe; the item''s quantity is items.quantity plus the sum over its stripes.';
REVOKE ALL ON atomic_inventory.item_stripes FROM PUBLIC;

-- The initial ledger row honours atomic_inventory.ledger.
CREATE OR REPLACE FUNCTION atomic_inventory.items_initial_ledger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- atomic_inventory.ledger = off: no ledger rows (read as text, since the
    -- setting is only a placeholder until the library is loaded)
    IF pg_catalog.lower(COALESCE(pg_catalog.current_setting('atomic_inventory.ledger', true), 'on'))
       IN ('off', 'false', 'no', '0', 'f', 'n') THEN
        RETURN NULL;
    END IF;
    INSERT INTO atomic_inventory.ledger
        (inventory_id, delta, quantity_after, kind, reason, tenant_id)
    SELECT n.id, n.quantity, n.quantity, 'initial', 'item created', n.tenant_id
      FROM new_rows AS n;
    RETURN NULL;
END;
$$;

-- Quantity of a striped item includes its stripes.
CREATE OR REPLACE FUNCTION atomic_inventory.get_inventory(p_inventory_id uuid) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
DECLARE
    v json;
BEGIN
    -- A striped item's quantity is its row's plus its stripes' (stripes.rs).
    SELECT pg_catalog.json_build_object('inventory_id', i.id, 'sku', i.sku, 'name', i.name,
               'quantity', i.quantity + s.total, 'reserved', i.reserved,
               'available', i.quantity + s.total - i.reserved, 'track_inventory', i.track_inventory,
               'tenant_id', i.tenant_id, 'updated_at', i.updated_at, 'stripes', i.stripes)
      INTO v
      FROM atomic_inventory.items AS i
     CROSS JOIN LATERAL (SELECT COALESCE(pg_catalog.sum(x.quantity), 0) AS total
                           FROM atomic_inventory.item_stripes AS x WHERE x.item_id = i.id) AS s
     WHERE i.id = p_inventory_id
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin());
    IF v IS NULL THEN
        RAISE EXCEPTION 'NOT_FOUND: inventory item % does not exist or is not visible to this tenant', p_inventory_id
            USING ERRCODE = 'PT404',
                  DETAIL = pg_catalog.json_build_object('code', 'NOT_FOUND', 'entity', 'inventory item', 'ids',
                                                        pg_catalog.json_build_array(p_inventory_id))::text;
    END IF;
    RETURN v;
END;
$$;

CREATE OR REPLACE FUNCTION atomic_inventory.reconcile()
RETURNS TABLE (inventory_id uuid, quantity numeric, ledger_sum numeric, drift numeric,
               reserved numeric, reserved_by_lines numeric, reserved_drift numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS $$
    SELECT i.id, i.quantity, COALESCE(l.total, 0), i.quantity - COALESCE(l.total, 0),
           i.reserved, COALESCE(h.held, 0), i.reserved - COALESCE(h.held, 0)
      FROM (SELECT it.id, it.tenant_id, it.reserved,
                   -- a striped item's quantity includes its stripes
                   it.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity)
                                             FROM atomic_inventory.item_stripes AS x
                                            WHERE x.item_id = it.id), 0) AS quantity
              FROM atomic_inventory.items AS it) AS i
      LEFT JOIN (SELECT g.inventory_id, pg_catalog.sum(g.delta) AS total
                   FROM atomic_inventory.ledger AS g GROUP BY g.inventory_id) AS l
             ON l.inventory_id = i.id
      LEFT JOIN (SELECT x.inventory_id, pg_catalog.sum(x.quantity) AS held
                   FROM atomic_inventory.reservation_lines AS x
                  WHERE x.status = 'active' AND x.tracked GROUP BY x.inventory_id) AS h
             ON h.inventory_id = i.id
     WHERE (i.quantity IS DISTINCT FROM COALESCE(l.total, 0)
            OR i.reserved IS DISTINCT FROM COALESCE(h.held, 0))
       AND (i.tenant_id IS NULL OR i.tenant_id = atomic_inventory.caller_tenant()
            OR atomic_inventory.caller_is_admin())
     ORDER BY i.id;
$$;

CREATE FUNCTION atomic_inventory.stripe_item(
    p_inventory_id    uuid,
    p_stripes         integer,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS 'MODULE_PATHNAME', 'ai_stripe_item';
COMMENT ON FUNCTION atomic_inventory.stripe_item(uuid, integer, integer) IS
    'Striped mode for a hot item: spread its free stock over p_stripes sub-rows (2..256) so that many sales can lock at once; 0 puts everything back into the item row. Quantity, available and the ledger are unchanged. Returns {success, inventory_id, stripes, quantity, reserved, stripe_quantities}.';
REVOKE ALL ON FUNCTION atomic_inventory.stripe_item(uuid, integer, integer) FROM PUBLIC;
