-- atomic_inventory 0.2.0 -> 0.3.0: faster stock writes (a C CHECK instead of
-- two expression CHECKs, fillfactor 90 on items, no CHECK on ledger.kind),
-- the atomic_inventory.ledger setting, striped hot items (item_stripes,
-- stripe_item), ledger.quantity_after NULL for striped movements, adopted
-- tables (bindings, bind_*_source, bound_*, ledger.source and item_key,
-- reservations on bound sources: reservations.source, bound_reservation_lines),
-- every table's rows in pg_dump (pg_extension_config_dump), claim_next_batch
-- indexes that skip claimed batches, create_batch's and create_item's answer
-- to an existing id, any number of items without a SKU, the C functions'
-- search path pinned in their code instead of by a SET clause.
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
    -- A dump being restored (pg_restore, or psql running pg_dump's script,
    -- both start with these two settings): the restored ledger already has
    -- these items' rows, so an 'initial' row now would count them twice.
    IF pg_catalog.current_setting('check_function_bodies') = 'off'
       AND pg_catalog.current_setting('row_security') = 'off' THEN
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
    -- a NULL id is bad input (400), as for the C functions, not NOT_FOUND
    IF p_inventory_id IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_inventory_id is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_inventory_id"}';
    END IF;
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
AS 'MODULE_PATHNAME', 'ai_stripe_item';
COMMENT ON FUNCTION atomic_inventory.stripe_item(uuid, integer, integer) IS
    'Striped mode for a hot item: spread its free stock over p_stripes sub-rows (2..256) so that many sales can lock at once; 0 puts everything back into the item row. Quantity, available and the ledger are unchanged. Returns {success, inventory_id, stripes, quantity, reserved, stripe_quantities}.';
REVOKE ALL ON FUNCTION atomic_inventory.stripe_item(uuid, integer, integer) FROM PUBLIC;

-- Adopted tables (issue 8, docs/adopting.md): bound sources write ledger
-- rows keyed by (source, item_key) instead of inventory_id.
ALTER TABLE atomic_inventory.ledger
    ALTER COLUMN inventory_id DROP NOT NULL,
    ADD COLUMN source text,
    ADD COLUMN item_key text;
-- reconcile_source sums a bound source's movements per row
CREATE INDEX ledger_source_item_idx ON atomic_inventory.ledger (source, item_key) WHERE source IS NOT NULL;
COMMENT ON COLUMN atomic_inventory.ledger.inventory_id IS 'The item moved; NULL for a row of a bound source (see source, item_key).';
COMMENT ON COLUMN atomic_inventory.ledger.source IS 'The binding (bindings.name) whose table row moved; NULL for items of atomic_inventory.items.';
COMMENT ON COLUMN atomic_inventory.ledger.item_key IS 'The bound row''s id as text (its id column cast to text); NULL for items.';

-- Adopted tables (docs/adopting.md): an app keeps its own stock or batch
-- table and binds it; the bound_* functions then run the same locked,
-- checked, ledgered statements on it, built from this row.
CREATE TABLE atomic_inventory.bindings (
    name             text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind             text        NOT NULL CHECK (kind IN ('stock', 'batch')),
    -- regclass, not oid: pg_dump writes it as the table's name and a restore
    -- looks the new oid up, so a binding follows its table through dumps.
    relation         regclass    NOT NULL,
    id_column        name        NOT NULL,
    id_type          text        NOT NULL CHECK (id_type IN ('uuid', 'bigint', 'integer', 'text')),
    quantity_column  name,
    quantity_type    text        CHECK (quantity_type IN ('numeric', 'smallint', 'integer', 'bigint')),
    reserved_column  name,
    track_column     name,
    tenant_column    name,
    status_column    name,
    available_value  text,
    claimed_value    text,
    assignee_column  name,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT bindings_kind_columns CHECK (
        CASE kind
          WHEN 'stock' THEN quantity_column IS NOT NULL AND quantity_type IS NOT NULL
                            AND status_column IS NULL AND assignee_column IS NULL
          ELSE status_column IS NOT NULL AND assignee_column IS NOT NULL
               AND available_value IS NOT NULL AND claimed_value IS NOT NULL
               AND quantity_column IS NULL
        END)
);
COMMENT ON TABLE atomic_inventory.bindings IS
    'Tables adopted from the app (bind_stock_source, bind_batch_source): the bound_* functions operate on them by binding name. Change only through bind_*/unbind_source.';
COMMENT ON COLUMN atomic_inventory.bindings.name IS 'Binding name, passed as p_source; lower case, digits, underscores.';
COMMENT ON COLUMN atomic_inventory.bindings.kind IS 'stock (quantities: bound_decrement, ...) or batch (claims: bound_claim_batch, ...).';
COMMENT ON COLUMN atomic_inventory.bindings.relation IS 'The app''s table.';
COMMENT ON COLUMN atomic_inventory.bindings.id_column IS 'Column identifying a row (unique: primary key or a unique index on exactly it).';
COMMENT ON COLUMN atomic_inventory.bindings.id_type IS 'How item ids passed as text are checked and cast: uuid, bigint, integer or text (text and varchar columns).';
COMMENT ON COLUMN atomic_inventory.bindings.quantity_column IS 'Stock: units on hand (CHECK >= 0 required); NULL for batch sources.';
COMMENT ON COLUMN atomic_inventory.bindings.quantity_type IS 'Stock: the quantity column''s type; integer types only take whole quantities.';
COMMENT ON COLUMN atomic_inventory.bindings.reserved_column IS 'Stock, optional: units held elsewhere; available = quantity - reserved.';
COMMENT ON COLUMN atomic_inventory.bindings.track_column IS 'Stock, optional boolean: false = sells without stock checks, quantity left alone.';
COMMENT ON COLUMN atomic_inventory.bindings.tenant_column IS 'Optional: owning tenant (compared as text with the caller''s tenant; NULL = shared).';
COMMENT ON COLUMN atomic_inventory.bindings.status_column IS 'Batch: the status column.';
COMMENT ON COLUMN atomic_inventory.bindings.available_value IS 'Batch: status value of a claimable batch.';
COMMENT ON COLUMN atomic_inventory.bindings.claimed_value IS 'Batch: status value set by a claim.';
COMMENT ON COLUMN atomic_inventory.bindings.assignee_column IS 'Batch: column receiving the driver id.';
COMMENT ON COLUMN atomic_inventory.bindings.created_at IS 'When the table was bound.';
-- Bindings are configuration: pg_dump keeps their rows.
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.bindings', '');
REVOKE ALL ON atomic_inventory.bindings FROM PUBLIC;

-- Adopted tables (docs/adopting.md, src/bindings.rs, src/bound.rs). The
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
    p_add_check       boolean DEFAULT true
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bind_stock_source';
COMMENT ON FUNCTION atomic_inventory.bind_stock_source(text, regclass, name, name, name, name, name, boolean) IS
    'Adopt an existing stock table under the name p_name: checks the columns, that the id is unique and that quantity has a CHECK (>= 0) (added, NOT VALID then validated, with p_add_check), and writes one initial ledger row per row. Caller must own the table. Returns {success, name, kind, relation, ...}.';

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

CREATE FUNCTION atomic_inventory.unbind_source(p_name text) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_unbind_source';
COMMENT ON FUNCTION atomic_inventory.unbind_source(text) IS
    'Forget a binding (NOT_FOUND, PT404, if there is none). The table, its rows, an added CHECK and the ledger rows stay. Returns {success, name, kind, relation}.';

CREATE VIEW atomic_inventory.bound_sources AS
SELECT b.name, b.kind, b.relation, b.id_column, b.id_type, b.quantity_column, b.quantity_type,
       b.reserved_column, b.track_column, b.tenant_column, b.status_column, b.available_value,
       b.claimed_value, b.assignee_column, b.created_at
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
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_decrement';
COMMENT ON FUNCTION atomic_inventory.bound_decrement(text, text, numeric, text, text, text, integer) IS
    'decrement_inventory on a bound table row: take p_quantity units, refusing (INSUFFICIENT_INVENTORY, PT409) to go below available. Returns {success, source, item_id, old_quantity, new_quantity, deducted}.';

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
    'Several lines [{item_id, quantity}] of a bound table at once: all or nothing, rows locked in id order, duplicates merged. Returns {success, source, lines:[{item_id, old_quantity, new_quantity, deducted}]}.';

CREATE FUNCTION atomic_inventory.bound_increment(
    p_source          text,
    p_item_id         text,
    p_quantity        numeric,
    p_reason          text    DEFAULT NULL,
    p_reference       text    DEFAULT NULL,
    p_idempotency_key text    DEFAULT NULL,
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_increment';
COMMENT ON FUNCTION atomic_inventory.bound_increment(text, text, numeric, text, text, text, integer) IS
    'increment_inventory on a bound table row. Returns {success, source, item_id, old_quantity, new_quantity, added}.';

CREATE FUNCTION atomic_inventory.bound_adjust(
    p_source            text,
    p_item_id           text,
    p_new_quantity      numeric,
    p_expected_quantity numeric DEFAULT NULL,
    p_force             boolean DEFAULT false,
    p_reason            text    DEFAULT NULL,
    p_reference         text    DEFAULT NULL,
    p_idempotency_key   text    DEFAULT NULL,
    p_lock_timeout_ms   integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_adjust';
COMMENT ON FUNCTION atomic_inventory.bound_adjust(text, text, numeric, numeric, boolean, text, text, text, integer) IS
    'adjust_inventory (compare-and-set) on a bound table row. Returns {success, source, item_id, old_quantity, new_quantity, delta}.';

CREATE FUNCTION atomic_inventory.bound_get(p_source text, p_item_id text) RETURNS json
LANGUAGE c STABLE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ai_bound_get';
COMMENT ON FUNCTION atomic_inventory.bound_get(text, text) IS
    'One bound row''s stock: {source, item_id, quantity, reserved, available, tracked, tenant_id} (NOT_FOUND, PT404, if not visible).';

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
BEGIN
    -- the same answers as the bound_* functions (bindings.rs): NOT_FOUND for
    -- an unknown name, INVALID_INPUT for a batch source or none
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source is required (got NULL)'
            USING ERRCODE = '22023', DETAIL = '{"code":"INVALID_INPUT","field":"p_source"}';
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
    IF (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = b.relation) NOT IN ('r', 'p')
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                   WHERE a.attrelid = b.relation AND NOT a.attisdropped
                     AND a.attname IN (b.id_column, b.quantity_column, b.tenant_column)
                     AND a.atttypid >= 16384) THEN
        RAISE EXCEPTION 'INVALID_INPUT: p_source %: its table or a column changed type since it was bound; unbind_source it and bind it again', p_source
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

REVOKE ALL ON FUNCTION atomic_inventory.bind_stock_source(text, regclass, name, name, name, name, name, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bind_batch_source(text, regclass, name, name, name, text, text, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.unbind_source(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_decrement(text, text, numeric, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_decrement_many(text, jsonb, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_increment(text, text, numeric, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_adjust(text, text, numeric, numeric, boolean, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_get(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_claim_batch(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_claim_next_batch(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_unclaim_batch(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.reconcile_source(text) FROM PUBLIC;
REVOKE ALL ON atomic_inventory.bound_sources FROM PUBLIC;

-- Reservations on bound sources (issue 8): a reservation row with source
-- set, its lines keyed by item key.
ALTER TABLE atomic_inventory.reservations ADD COLUMN source text;
COMMENT ON COLUMN atomic_inventory.reservations.source IS 'NULL: lines on managed items (reservation_lines); else the bound stock source whose rows it holds (bound_reservation_lines, bound_reserve).';
CREATE INDEX reservations_source_active_idx ON atomic_inventory.reservations (source)
    WHERE status = 'active' AND source IS NOT NULL;
-- Lines of reservations on bound sources (bound_reserve): the held rows are
-- the app's, named by item key; units held are in the binding's reserved
-- column.
CREATE TABLE atomic_inventory.bound_reservation_lines (
    reservation_id  uuid        NOT NULL REFERENCES atomic_inventory.reservations (id) ON DELETE CASCADE,
    item_key        text        NOT NULL,
    quantity        numeric     NOT NULL CHECK (quantity > 0 AND quantity < 'Infinity'),
    tracked         boolean     NOT NULL,
    status          text        NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'committed', 'released', 'expired')),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (reservation_id, item_key)
);
COMMENT ON TABLE atomic_inventory.bound_reservation_lines IS
    'One held row of a bound stock table per reservation (lines naming the same row are merged).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.reservation_id IS 'The reservation (its source names the binding).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.item_key IS 'The held row''s id as text (PostgreSQL''s id::text).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.quantity IS 'Units held.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.tracked IS 'Whether the row tracked inventory when reserved; untracked lines never touch the reserved column.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.status IS 'active, committed, released or expired; lines can finish separately.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.updated_at IS 'When the line''s status last changed.';
REVOKE ALL ON atomic_inventory.bound_reservation_lines FROM PUBLIC;

CREATE OR REPLACE FUNCTION atomic_inventory.get_reservation(p_reservation_id uuid) RETURNS json
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
                          (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                    'inventory_id', l.inventory_id, 'quantity', l.quantity, 'status', l.status)
                                    ORDER BY l.inventory_id)
                             FROM atomic_inventory.reservation_lines AS l
                            WHERE l.reservation_id = r.id)
                        ELSE
                          (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                    'item_id', b.item_key, 'quantity', b.quantity, 'status', b.status)
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
    'A reservation with its lines and their statuses (source and item_id for a reservation on a bound source).';

-- Reservations on bound sources (src/bound_reservations.rs): commit,
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
    p_lock_timeout_ms integer DEFAULT NULL
) RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'ai_bound_commit_reservation';
COMMENT ON FUNCTION atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer) IS
    'commit_reservation naming lines by item key (p_item_ids, NULL = all active lines): quantity and reserved both drop, ledger kind commit.';

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
REVOKE ALL ON FUNCTION atomic_inventory.bound_reserve(text, jsonb, integer, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.bound_release_reservation(uuid, text[], text, text, integer) FROM PUBLIC;

-- grant_usage opens the bound_* operations too.
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

-- pg_dump skips the rows of an extension's tables unless they are marked as
-- configuration: without these calls a dump (Supabase's daily backups
-- included) would hold the extension but no stock, ledger, reservations or
-- batches. The ledger's identity sequence is marked too, so new ledger rows
-- after a restore don't reuse ids. pg_dump loads the rows in foreign-key
-- order; items_initial_ledger stays quiet while a dump is restored.
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.items', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.item_stripes', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.batches', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.reservation_lines', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.picking_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.picking_session_items', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.orders', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.packing_progress', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.bound_reservation_lines', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.ledger_id_seq', '');

-- decrement_inventory_many sells most orders with one UPDATE whose lock order
-- is its join's; this keeps that join driven by the sorted lines on tables of
-- any size (see functions.sql).
ALTER FUNCTION atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer)
    SET enable_seqscan = off;

-- claim_next_batch: one index over available and claimed batches made every
-- call walk past all claimed, unstarted batches to re-check their leases.
-- Available batches and claims with a lease now have an index each
-- (src/batches.rs, CLAIM_NEXT). Built on the whole table once.
DROP INDEX atomic_inventory.batches_claimable_idx;
CREATE INDEX batches_available_idx ON atomic_inventory.batches (priority DESC, created_at, id)
    WHERE status = 'available';
CREATE INDEX batches_lease_idx ON atomic_inventory.batches (lease_expires_at)
    WHERE status = 'claimed';
-- A driver's active batches: a predicate the lapsed-claim query cannot
-- imply, so that query is never planned over every claimed batch.
DROP INDEX atomic_inventory.batches_claimed_by_idx;
CREATE INDEX batches_claimed_by_idx ON atomic_inventory.batches (claimed_by)
    WHERE claimed_by IS NOT NULL AND status IN ('claimed', 'in_progress');

-- create_batch: a p_id that exists answers a retried create as the first
-- was and anything else with BATCH_EXISTS (PT409) instead of a raw unique
-- violation; p_zone and p_reference limited to 1024 characters.
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

-- items: a SKU stays unique per tenant, but items without one are no longer
-- counted (0.2.0's constraint let each tenant have a single SKU-less item).
ALTER TABLE atomic_inventory.items DROP CONSTRAINT items_sku_unique;
CREATE UNIQUE INDEX items_sku_unique ON atomic_inventory.items (tenant_id, sku) NULLS NOT DISTINCT
    WHERE sku IS NOT NULL;

-- create_item: a retried create with the same p_id is answered as the
-- first was, any other taken id or SKU with ITEM_EXISTS (PT409) instead of
-- a raw unique violation.
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

-- The reservation functions run their statements with generic plans and
-- without sequential scans (why: sql/functions.sql, "Reservations").
-- bound_reserve and its commit / release twins are created above with the
-- same settings.
ALTER FUNCTION atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer)
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off;
ALTER FUNCTION atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer)
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off;
ALTER FUNCTION atomic_inventory.release_reservation(uuid, uuid[], text, text, integer)
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off;

-- purge_idempotency_keys refuses a negative or NULL age (a negative one
-- deleted every key, so late retries applied again); now PL/pgSQL.
CREATE OR REPLACE FUNCTION atomic_inventory.purge_idempotency_keys(p_older_than interval DEFAULT '24 hours')
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

-- stats_snapshot() is PARALLEL RESTRICTED: without preloading the counters
-- are in the backend's own memory, which a parallel worker does not see
-- (under debug_parallel_query the view showed an empty worker's table).
ALTER FUNCTION atomic_inventory.stats_snapshot() PARALLEL RESTRICTED;

-- The C functions pin their search path themselves, for the whole call
-- (src/spi.rs, PinnedPath: pg_catalog, then atomic_inventory; nothing of
-- the caller's), instead of by a SET clause: on PostgreSQL 15 fmgr's
-- handling of the clause (parse, save, restore, the namespace path
-- recomputed twice) cost about 3 us per call, 2-5% of a single-line sale's
-- throughput (docs/benchmarks.md). The C functions created above have no
-- such clause; the PL/pgSQL and SQL functions keep theirs.
ALTER FUNCTION atomic_inventory.decrement_inventory(uuid, numeric, text, text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.increment_inventory(uuid, numeric, text, text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.adjust_inventory(uuid, numeric, numeric, boolean, text, text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.claim_batch(uuid, text, integer, integer, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.claim_next_batch(text, text, integer, integer, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.unclaim_batch(uuid, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.start_batch(uuid, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.complete_batch(uuid, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.release_reservation(uuid, uuid[], text, text, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.extend_reservation(uuid, integer, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.expire_reservations(integer) RESET search_path;
ALTER FUNCTION atomic_inventory.increment_packing_quantity(uuid, integer, integer, uuid, uuid, integer, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.decrement_packing_quantity(uuid, uuid, integer, integer) RESET search_path;
ALTER FUNCTION atomic_inventory.stats_snapshot() RESET search_path;
ALTER FUNCTION atomic_inventory.stats_reset() RESET search_path;

-- Each lock wait of the sweep is limited (atomic_inventory.sweep_lock_timeout,
-- src/sweeper.rs): the function answers LOCK_TIMEOUT instead of waiting.
COMMENT ON FUNCTION atomic_inventory.expire_reservations(integer) IS
    'The sweep: release up to p_limit due reservations (skipping any being committed or released right now). Returns {success, expired}. Each wait for a row lock is limited by atomic_inventory.sweep_lock_timeout: LOCK_TIMEOUT (PT503) past it, nothing changed. Schedule it with pg_cron, or let the background worker run it.';
