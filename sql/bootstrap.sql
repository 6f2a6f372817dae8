-- atomic_inventory: tables. Runs first in CREATE EXTENSION, inside the
-- extension's own schema (control file: schema = atomic_inventory).

-- The CHECKs of items, item_stripes and stock levels, in C (src/pg/check.rs): PostgreSQL 15
-- re-reads a table's CHECK expressions from their stored text on every
-- statement that writes the table; the two plain CHECKs of 0.2.0 cost 7 us
-- of a 15 us stock update (docs/benchmarks.md). A call with two column
-- references reads back in a fraction of that.
CREATE FUNCTION atomic_inventory.stock_valid(p_quantity numeric, p_reserved numeric) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_stock_valid';
COMMENT ON FUNCTION atomic_inventory.stock_valid(numeric, numeric) IS
    'CHECK of item_stripes and stock_levels: quantity is finite and 0 <= reserved <= quantity (so quantity >= 0).';
CREATE FUNCTION atomic_inventory.stock_valid(p_quantity numeric, p_reserved numeric, p_backorder_limit numeric,
                                             p_kit boolean, p_unsellable numeric) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_item_stock_valid';
COMMENT ON FUNCTION atomic_inventory.stock_valid(numeric, numeric, numeric, boolean, numeric) IS
    'CHECK of items: quantity, backorder_limit and unsellable finite, reserved >= 0, unsellable >= 0, reserved + unsellable <= quantity + backorder_limit, and a kit holds nothing (quantity = reserved = unsellable = 0).';
CREATE FUNCTION atomic_inventory.reservation_valid(p_status text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_reservation_valid';
COMMENT ON FUNCTION atomic_inventory.reservation_valid(text) IS
    'CHECK of reservations: status is active, committed, released or expired.';
CREATE FUNCTION atomic_inventory.reservation_line_valid(p_quantity numeric, p_status text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_reservation_line_valid';
COMMENT ON FUNCTION atomic_inventory.reservation_line_valid(numeric, text) IS
    'CHECK of reservation_lines and bound_reservation_lines: quantity > 0 and finite, status is active, committed, released or expired.';

CREATE TABLE atomic_inventory.items (
    id              uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    sku             text,
    name            text,
    quantity        numeric     NOT NULL DEFAULT 0,
    reserved        numeric     NOT NULL DEFAULT 0,
    track_inventory boolean     NOT NULL DEFAULT true,
    tenant_id       text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    stripes         smallint    NOT NULL DEFAULT 0,
    -- low-stock threshold (set_reorder_point); NULL = none
    reorder_point   numeric,
    -- a kit (define_kit) sells as its components and holds no stock itself
    kit             boolean     NOT NULL DEFAULT false,
    -- units a sale or hold may take past the stock on hand (set_backorder_limit)
    backorder_limit numeric     NOT NULL DEFAULT 0,
    -- on-hand units not for sale (move_stock_state): the sum of the item's
    -- on-hand stock_states, kept here so a sale's guard reads one row
    unsellable      numeric     NOT NULL DEFAULT 0,
    -- a preorder (set_preorder): sales past the stock on hand, up to
    -- backorder_limit, only before this moment; NULL = not a preorder. Kept
    -- out of the CHECK (the clock would make a stored row turn invalid):
    -- the sale statements test it.
    preorder_until  timestamptz,
    -- One CHECK, in C, for every rule of a row (pg/check.rs): quantity
    -- finite, 0 <= reserved, 0 <= unsellable, reserved + unsellable <=
    -- quantity + backorder_limit (NaN and Infinity excluded; quantity goes
    -- below 0 only by backorders), and a kit's row holds nothing (a restock
    -- or adjust of a kit fails here).
    CONSTRAINT items_stock_valid
        CHECK (atomic_inventory.stock_valid(quantity, reserved, backorder_limit, kit, unsellable))
)
-- Stock rows are updated all day: room on each page keeps the updates HOT
-- (no index entries written; docs/benchmarks.md has the measurement).
WITH (fillfactor = 90);
-- A SKU names one item per tenant (shared items, tenant NULL, count as one
-- tenant: NULLS NOT DISTINCT); items without a SKU are not counted (WHERE),
-- so any number of them may exist.
CREATE UNIQUE INDEX items_sku_unique ON atomic_inventory.items (tenant_id, sku) NULLS NOT DISTINCT
    WHERE sku IS NOT NULL;
COMMENT ON TABLE atomic_inventory.items IS
    'Stock items managed by atomic_inventory. Change quantities through the functions so every movement is locked, checked and written to the ledger.';
COMMENT ON COLUMN atomic_inventory.items.id IS 'Item id, passed as p_inventory_id.';
COMMENT ON COLUMN atomic_inventory.items.sku IS 'Optional stock keeping unit; unique per tenant.';
COMMENT ON COLUMN atomic_inventory.items.name IS 'Optional display name.';
COMMENT ON COLUMN atomic_inventory.items.quantity IS 'Units on hand, including reserved ones; below 0 only by backorders (backorder_limit).';
COMMENT ON COLUMN atomic_inventory.items.reserved IS 'Units held by active reservations; available = quantity - reserved - unsellable.';
COMMENT ON COLUMN atomic_inventory.items.track_inventory IS 'false: sells without stock checks and quantity is left alone (services, made-to-order).';
COMMENT ON COLUMN atomic_inventory.items.tenant_id IS 'Owning tenant/store; NULL = shared. Callers only see their own tenant''s rows (docs/security.md).';
COMMENT ON COLUMN atomic_inventory.items.created_at IS 'When the item was created.';
COMMENT ON COLUMN atomic_inventory.items.updated_at IS 'When quantity or reserved last changed through a function.';
COMMENT ON COLUMN atomic_inventory.items.stripes IS 'Striped hot item (stripe_item): number of sub-rows in item_stripes holding its free stock; 0 = single-row mode.';
COMMENT ON COLUMN atomic_inventory.items.reorder_point IS 'Low-stock threshold (set_reorder_point): a low_stock event when available falls to it or below; NULL = none.';
COMMENT ON COLUMN atomic_inventory.items.kit IS 'true: a kit (define_kit), sold and reserved as its components (kit_components); it holds no stock of its own.';
COMMENT ON COLUMN atomic_inventory.items.backorder_limit IS 'Backorders (set_backorder_limit): units sales and holds may take past the stock on hand, so quantity may fall to reserved - backorder_limit; 0 = none (deny).';
COMMENT ON COLUMN atomic_inventory.items.unsellable IS 'Units on hand that are not for sale (damaged, quality_control, safety_stock in stock_states; move_stock_state): counted in quantity, never sold or held.';
COMMENT ON COLUMN atomic_inventory.items.preorder_until IS 'Preorders (set_preorder): release date; before it sales and holds may take up to backorder_limit units past the stock on hand (reported as preordered), from it on only the stock on hand (units already preordered stay owed). NULL = not a preorder.';

-- Striped mode for hot items (flash sales): the free stock of a stock level
-- (an item at a location) is split over N sub-rows, so N sales can hold row
-- locks at once instead of queueing on one row. decrement_inventory takes
-- any stripe that covers the line with SKIP LOCKED; the level's total is its
-- row's quantity (items.quantity at the default location, else
-- stock_levels.quantity) + its stripes' sum. location_id comes last: the
-- column was added in 0.4.0 (ALTER TABLE appends), and a fresh install
-- keeps the upgraded one's column order.
CREATE TABLE atomic_inventory.item_stripes (
    item_id     uuid     NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    stripe      smallint NOT NULL CHECK (stripe >= 0),
    quantity    numeric  NOT NULL,
    location_id uuid     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    PRIMARY KEY (item_id, location_id, stripe),
    CONSTRAINT item_stripes_stock_valid CHECK (atomic_inventory.stock_valid(quantity, 0))
)
-- few rows, each updated at the highest rate of any: keep updates HOT
WITH (fillfactor = 50);
COMMENT ON TABLE atomic_inventory.item_stripes IS
    'Sub-rows of striped items (stripe_item): each holds part of the item''s free stock; never below 0.';
COMMENT ON COLUMN atomic_inventory.item_stripes.item_id IS 'The striped item.';
COMMENT ON COLUMN atomic_inventory.item_stripes.stripe IS 'Stripe number, 0 .. items.stripes - 1.';
COMMENT ON COLUMN atomic_inventory.item_stripes.quantity IS 'Free units in this stripe; the item''s quantity is items.quantity plus the sum over its stripes.';
COMMENT ON COLUMN atomic_inventory.item_stripes.location_id IS 'The striped level''s location: the default one (all zeros; the item''s own row holds the rest) or a location whose stock_levels row holds the rest.';

-- Locations (docs/locations.md): stores, warehouses, zones. An item's own
-- row (items.quantity, reserved) is its stock at the default location, so
-- an item stocked in one place works as before without naming one; its
-- stock elsewhere is one stock_levels row per location. Rows are locked in
-- (item, location id) order, the default location's id (all zeros) first.
CREATE TABLE atomic_inventory.locations (
    id         uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    code       text        NOT NULL,
    name       text,
    tenant_id  text,
    priority   integer     NOT NULL DEFAULT 0,
    active     boolean     NOT NULL DEFAULT true,
    sellable   boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the default location holds every item's own row: always usable
    CONSTRAINT locations_default_usable CHECK (
        id <> '00000000-0000-0000-0000-000000000000' OR (active AND sellable AND tenant_id IS NULL))
);
-- a code names one location per tenant (shared ones count as one tenant)
CREATE UNIQUE INDEX locations_code_unique ON atomic_inventory.locations (tenant_id, code) NULLS NOT DISTINCT;
INSERT INTO atomic_inventory.locations (id, code, name)
VALUES ('00000000-0000-0000-0000-000000000000', 'default', 'Default location');
COMMENT ON TABLE atomic_inventory.locations IS
    'Where stock is kept (create_location). The default location (id 00000000-0000-0000-0000-000000000000) holds each item''s own row; others hold stock_levels rows.';
COMMENT ON COLUMN atomic_inventory.locations.id IS 'Location id, passed as p_location_id.';
COMMENT ON COLUMN atomic_inventory.locations.code IS 'Your code for it (store number, warehouse code); unique per tenant.';
COMMENT ON COLUMN atomic_inventory.locations.name IS 'Optional display name.';
COMMENT ON COLUMN atomic_inventory.locations.tenant_id IS 'Owning tenant; NULL = shared.';
COMMENT ON COLUMN atomic_inventory.locations.priority IS 'Lines that name no location take stock from the default location first, then from sellable locations by priority, higher first.';
COMMENT ON COLUMN atomic_inventory.locations.active IS 'false: no stock moves in or out (deactivate only when it holds no stock and no holds).';
COMMENT ON COLUMN atomic_inventory.locations.sellable IS 'false: its stock is not for sale or holds (a returns area); transfers still move it.';
COMMENT ON COLUMN atomic_inventory.locations.created_at IS 'When it was created.';
COMMENT ON COLUMN atomic_inventory.locations.updated_at IS 'When its flags or priority last changed.';

CREATE TABLE atomic_inventory.stock_levels (
    item_id       uuid        NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    location_id   uuid        NOT NULL REFERENCES atomic_inventory.locations (id),
    quantity      numeric     NOT NULL DEFAULT 0,
    reserved      numeric     NOT NULL DEFAULT 0,
    reorder_point numeric,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- last: added in 0.4.0 (see item_stripes.location_id)
    stripes       smallint    NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, location_id),
    CONSTRAINT stock_levels_stock_valid CHECK (atomic_inventory.stock_valid(quantity, reserved)),
    -- the default location's stock is the item's own row
    CONSTRAINT stock_levels_not_default CHECK (location_id <> '00000000-0000-0000-0000-000000000000')
)
-- updated all day, like items: keep updates HOT
WITH (fillfactor = 90);
-- a location's levels (update_location's check, the foreign key)
CREATE INDEX stock_levels_location_idx ON atomic_inventory.stock_levels (location_id);
COMMENT ON TABLE atomic_inventory.stock_levels IS
    'An item''s stock at a location other than the default one; created by the first restock or transfer there.';
COMMENT ON COLUMN atomic_inventory.stock_levels.item_id IS 'The item.';
COMMENT ON COLUMN atomic_inventory.stock_levels.location_id IS 'The location (never the default one).';
COMMENT ON COLUMN atomic_inventory.stock_levels.quantity IS 'Units on hand here, including reserved ones; never below 0.';
COMMENT ON COLUMN atomic_inventory.stock_levels.reserved IS 'Units held here by active reservations.';
COMMENT ON COLUMN atomic_inventory.stock_levels.reorder_point IS 'Low-stock threshold of this level (set_reorder_point with p_location_id); NULL = none.';
COMMENT ON COLUMN atomic_inventory.stock_levels.updated_at IS 'When quantity or reserved last changed.';
COMMENT ON COLUMN atomic_inventory.stock_levels.stripes IS 'Striped level (stripe_item with p_location_id): number of sub-rows in item_stripes holding its free stock; 0 = single-row mode.';

CREATE TABLE atomic_inventory.ledger (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for movements of bound sources (source, item_key instead)
    inventory_id    uuid,
    delta           numeric     NOT NULL,
    quantity_after  numeric,
    -- No CHECK on kind: only this extension's statements write the ledger,
    -- with literal kinds, and a CHECK is re-read on every insert (see items).
    kind            text        NOT NULL,
    reason          text,
    reference       text,
    idempotency_key text,
    tenant_id       text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source          text,
    item_key        text,
    -- NULL = the default location (the item's own row)
    location_id     uuid,
    transfer_id     uuid,
    -- move_stock_state: the states the units left and entered
    from_state      text,
    to_state        text
);
-- No foreign key to items on purpose: the ledger is an audit trail that
-- outlives deleted items, and an FK check per movement would cost a lookup.
-- (inventory_id, id): an item's movements in order; a stock event finds the
-- ledger row of its movement as the item's newest one (items_stock_events)
CREATE INDEX ledger_inventory_id_idx ON atomic_inventory.ledger (inventory_id, id);
-- A hash index: a reference may have 1024 characters of up to 4 bytes, more
-- than a btree entry holds (2704 bytes); lookups by reference are equality.
CREATE INDEX ledger_reference_idx ON atomic_inventory.ledger USING hash (reference) WHERE reference IS NOT NULL;
-- reconcile_source sums a bound source's movements per row
CREATE INDEX ledger_source_item_idx ON atomic_inventory.ledger (source, item_key) WHERE source IS NOT NULL;
COMMENT ON TABLE atomic_inventory.ledger IS
    'Append-only movement ledger: one row per change of an item''s quantity. For every item, quantity = sum(delta); reconcile() lists the items where it is not.';
COMMENT ON COLUMN atomic_inventory.ledger.id IS 'Movement number, increasing in commit-independent insertion order.';
COMMENT ON COLUMN atomic_inventory.ledger.inventory_id IS 'The item moved; NULL for a row of a bound source (see source, item_key).';
COMMENT ON COLUMN atomic_inventory.ledger.delta IS 'Signed change of quantity (negative for decrements).';
COMMENT ON COLUMN atomic_inventory.ledger.quantity_after IS 'The level''s quantity (the item''s at location_id, or at the default location) right after this movement; NULL for sales from a stripe of a striped level and commits there (its total is spread over stripes that are not locked together).';
COMMENT ON COLUMN atomic_inventory.ledger.kind IS 'initial (item created), decrement, increment (restock), adjust (set by compare-and-set), commit (a reservation turned into a sale; reference = reservation id), transfer (one row per side, sharing transfer_id), state_move (move_stock_state between on-hand states, or of incoming units: delta 0), receive (incoming units arrived: delta > 0) or write_off (on-hand units written off: delta < 0).';
COMMENT ON COLUMN atomic_inventory.ledger.reason IS 'Caller-given reason (p_reason).';
COMMENT ON COLUMN atomic_inventory.ledger.reference IS 'Caller-given reference such as an order or sale id (p_reference).';
COMMENT ON COLUMN atomic_inventory.ledger.idempotency_key IS 'The idempotency key of the call that made this movement, if any.';
COMMENT ON COLUMN atomic_inventory.ledger.tenant_id IS 'The item''s tenant at the time of the movement.';
COMMENT ON COLUMN atomic_inventory.ledger.created_at IS 'Transaction time of the movement.';
COMMENT ON COLUMN atomic_inventory.ledger.source IS 'The binding (bindings.name) whose table row moved; NULL for items of atomic_inventory.items.';
COMMENT ON COLUMN atomic_inventory.ledger.item_key IS 'The bound row''s id as text (its id column cast to text); on a table bound with a location column the row''s id and location as the JSON array text ["<id>", "<location>"] (jsonb_build_array(id::text, location::text)::text), one key per row so reconcile_source sums each (item, location) apart; NULL for items.';
COMMENT ON COLUMN atomic_inventory.ledger.location_id IS 'The location whose stock moved; NULL = the default location (the item''s own row).';
COMMENT ON COLUMN atomic_inventory.ledger.transfer_id IS 'transfer_inventory: the id the rows of one transfer share (its source''s and destination''s; of a transfer in transit also its receipt''s or cancellation''s, transfers.id).';
COMMENT ON COLUMN atomic_inventory.ledger.from_state IS 'move_stock_state: the state the units left (available, damaged, quality_control, safety_stock, incoming or ordered); NULL for other movements.';
COMMENT ON COLUMN atomic_inventory.ledger.to_state IS 'move_stock_state: the state the units entered (available, damaged, quality_control, safety_stock, incoming or written_off); NULL for other movements.';

CREATE TABLE atomic_inventory.idempotency_keys (
    tenant_scope    text        NOT NULL,
    idempotency_key text        NOT NULL,
    function_name   text        NOT NULL,
    request         jsonb       NOT NULL,
    response        json,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_scope, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at_idx ON atomic_inventory.idempotency_keys (created_at);
COMMENT ON TABLE atomic_inventory.idempotency_keys IS
    'First result of every call made with p_idempotency_key; a retry with the same key and arguments returns it instead of applying again. Purge old keys with purge_idempotency_keys().';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.tenant_scope IS 'Caller''s tenant ('''' for none): keys are namespaced per tenant.';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.idempotency_key IS 'The caller''s key (p_idempotency_key).';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.function_name IS 'Function first called with the key.';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.request IS 'Normalized arguments of the first call; a retry must match them.';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.response IS 'The first call''s result, returned again to retries.';
COMMENT ON COLUMN atomic_inventory.idempotency_keys.created_at IS 'When the key was first used.';

-- Items created by plain INSERT start their ledger with an 'initial' row, so
-- quantity = sum(delta) holds from the first moment.
CREATE FUNCTION atomic_inventory.items_initial_ledger() RETURNS trigger
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
CREATE TRIGGER items_initial_ledger
    AFTER INSERT ON atomic_inventory.items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION atomic_inventory.items_initial_ledger();

CREATE TABLE atomic_inventory.batches (
    id               uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    status           text        NOT NULL DEFAULT 'available'
                     CHECK (status IN ('available', 'claimed', 'in_progress', 'completed', 'cancelled')),
    claimed_by       text,
    claimed_at       timestamptz,
    lease_expires_at timestamptz,
    completed_at     timestamptz,
    zone             text,
    priority         integer     NOT NULL DEFAULT 0,
    reference        text,
    tenant_id        text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- a claimed or started batch always has a holder; an available one never
    CONSTRAINT batches_holder_matches_status CHECK (
        (status IN ('claimed', 'in_progress')) = (claimed_by IS NOT NULL)
        OR status IN ('completed', 'cancelled'))
);
-- claim_next_batch: available batches in priority order (a claimed row
-- leaves it), and claims whose lease may lapse (src/source/own/batches.rs, CLAIM_NEXT)
CREATE INDEX batches_available_idx ON atomic_inventory.batches (priority DESC, created_at, id)
    WHERE status = 'available';
CREATE INDEX batches_lease_idx ON atomic_inventory.batches (lease_expires_at)
    WHERE status IN ('claimed', 'in_progress');
-- a driver's active batches (p_max_active). `claimed_by IS NOT NULL` keeps
-- the planner from reading every claimed batch through it to find lapsed
-- claims (a query on status alone cannot use it)
CREATE INDEX batches_claimed_by_idx ON atomic_inventory.batches (claimed_by)
    WHERE claimed_by IS NOT NULL AND status IN ('claimed', 'in_progress');
COMMENT ON TABLE atomic_inventory.batches IS
    'Delivery batches handed to drivers: claim_batch / claim_next_batch give each batch to exactly one driver.';
COMMENT ON COLUMN atomic_inventory.batches.id IS 'Batch id, passed as p_batch_id.';
COMMENT ON COLUMN atomic_inventory.batches.status IS 'available -> claimed -> in_progress -> completed; cancelled by admins; unclaim returns to available.';
COMMENT ON COLUMN atomic_inventory.batches.claimed_by IS 'Driver holding the batch (p_driver_id or the JWT sub).';
COMMENT ON COLUMN atomic_inventory.batches.claimed_at IS 'When the current holder claimed it.';
COMMENT ON COLUMN atomic_inventory.batches.lease_expires_at IS 'A claimed or started batch becomes claimable again after this (the sweep returns it to available); NULL = no lease. Set by claims with p_lease_seconds and by extend_batch_lease; start_batch clears it.';
COMMENT ON COLUMN atomic_inventory.batches.completed_at IS 'When it was completed.';
COMMENT ON COLUMN atomic_inventory.batches.zone IS 'Optional zone/area; claim_next_batch can filter on it.';
COMMENT ON COLUMN atomic_inventory.batches.priority IS 'Higher first in claim_next_batch; then oldest first.';
COMMENT ON COLUMN atomic_inventory.batches.reference IS 'Your own id for the batch (route, wave).';
COMMENT ON COLUMN atomic_inventory.batches.tenant_id IS 'Owning tenant; NULL = shared (docs/security.md).';
COMMENT ON COLUMN atomic_inventory.batches.created_at IS 'When the batch was created.';
COMMENT ON COLUMN atomic_inventory.batches.updated_at IS 'When its status last changed.';

CREATE TABLE atomic_inventory.reservations (
    id              uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    status          text        NOT NULL DEFAULT 'active',
    reference       text,
    tenant_id       text,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- no foreign key to bindings: finished reservations outlive a binding;
    -- unbind_source refuses while active ones exist (src/source/bound/bind.rs)
    source          text,
    -- status one of active, committed, released, expired: a C function
    -- (src/pg/check.rs), since a plain CHECK is parsed from its text in
    -- every statement writing the table
    CONSTRAINT reservations_valid CHECK (atomic_inventory.reservation_valid(status))
);
-- the sweep finds due reservations without scanning finished ones
CREATE INDEX reservations_due_idx ON atomic_inventory.reservations (expires_at)
    WHERE status = 'active';
-- unbind_source counts a source's active reservations
CREATE INDEX reservations_source_active_idx ON atomic_inventory.reservations (source)
    WHERE status = 'active' AND source IS NOT NULL;
COMMENT ON TABLE atomic_inventory.reservations IS
    'Inventory holds (carts, pending orders): reserve_inventory creates them, commit_reservation turns them into sales, release_reservation and expiry give the units back.';
COMMENT ON COLUMN atomic_inventory.reservations.id IS 'Reservation id, passed as p_reservation_id.';
COMMENT ON COLUMN atomic_inventory.reservations.status IS 'active while any line is held; then committed (any units of any line committed), released or expired.';
COMMENT ON COLUMN atomic_inventory.reservations.reference IS 'Caller''s order or cart id (p_reference).';
COMMENT ON COLUMN atomic_inventory.reservations.tenant_id IS 'Tenant of the caller who reserved; NULL = shared.';
COMMENT ON COLUMN atomic_inventory.reservations.expires_at IS 'After this the hold lapses: commit is refused and the sweep releases it.';
COMMENT ON COLUMN atomic_inventory.reservations.created_at IS 'When it was reserved.';
COMMENT ON COLUMN atomic_inventory.reservations.updated_at IS 'When its status or expiry last changed.';
COMMENT ON COLUMN atomic_inventory.reservations.source IS 'NULL: lines on managed items (reservation_lines); else the bound stock source whose rows it holds (bound_reservation_lines, bound_reserve).';

CREATE TABLE atomic_inventory.reservation_lines (
    reservation_id  uuid        NOT NULL REFERENCES atomic_inventory.reservations (id) ON DELETE CASCADE,
    -- RESTRICT: an item with open or past reservation lines can't vanish under them
    inventory_id    uuid        NOT NULL REFERENCES atomic_inventory.items (id),
    quantity        numeric     NOT NULL,
    tracked         boolean     NOT NULL,
    status          text        NOT NULL DEFAULT 'active',
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- what the line settled so far (partial commits, docs/reservations.md)
    -- (no CHECK: each would be read back from its text on every write of
    -- the table, pg/check.rs; the functions keep them, the tests check them)
    committed_quantity numeric  NOT NULL DEFAULT 0,
    released_quantity  numeric  NOT NULL DEFAULT 0,
    -- whose stock the line holds: NULL for the default location (the
    -- item's own row), as in the ledger; else that location's stock_levels
    -- row. No foreign key: the level row the line holds references the
    -- location already, and a check on every insert would slow the holds
    -- at the default location, which never name one.
    location_id     uuid,
    PRIMARY KEY (reservation_id, inventory_id),
    -- quantity > 0 and finite, status one of the four (in C, as above)
    CONSTRAINT reservation_lines_valid CHECK (atomic_inventory.reservation_line_valid(quantity, status))
);
-- reconcile: reserved = sum of active tracked lines per item
CREATE INDEX reservation_lines_active_idx ON atomic_inventory.reservation_lines (inventory_id)
    WHERE status = 'active';
-- update_location: does a location still have active holds? (only lines
-- at other locations enter it)
CREATE INDEX reservation_lines_location_active_idx ON atomic_inventory.reservation_lines (location_id)
    WHERE status = 'active' AND location_id IS NOT NULL;
COMMENT ON TABLE atomic_inventory.reservation_lines IS
    'One held item per reservation (lines naming the same item are merged), at one location.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.reservation_id IS 'The reservation.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.inventory_id IS 'The held item.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.quantity IS 'Units held (an active line: what it holds now, after partial commits that kept the rest; a finished line: what it held when it finished).';
COMMENT ON COLUMN atomic_inventory.reservation_lines.tracked IS 'Whether the item tracked inventory when reserved; untracked lines never touch items.reserved.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.status IS 'active, committed, released or expired; lines can finish separately (partial commit/release).';
COMMENT ON COLUMN atomic_inventory.reservation_lines.updated_at IS 'When the line''s status or quantity last changed.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.committed_quantity IS 'Units of the line committed (sold) so far, over all its commits (commit_reservation''s p_lines may commit part of a line).';
COMMENT ON COLUMN atomic_inventory.reservation_lines.released_quantity IS 'Units of the line given back: by release_reservation, by expiry, or as the rest of a partial commit (p_rest = release). A finished line''s committed and released units add up to what it was reserved with.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.location_id IS 'Where the line holds its units: NULL = the default location (items.reserved), else that location (its stock_levels.reserved). A reservation holds an item at one location.';

-- Warehouse packing (the packing RPC of docs/background.md): pickers fill a
-- basket per session, packers move units from the basket into orders.

CREATE TABLE atomic_inventory.picking_sessions (
    id               uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    code             text,
    status           text        NOT NULL DEFAULT 'picking'
                     CHECK (status IN ('picking', 'packing', 'completed', 'cancelled')),
    tenant_id        text,
    last_activity_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE atomic_inventory.picking_sessions IS 'A picking/packing session: one basket of picked products packed into several orders.';
COMMENT ON COLUMN atomic_inventory.picking_sessions.id IS 'Session id, passed as p_session_id.';
COMMENT ON COLUMN atomic_inventory.picking_sessions.code IS 'Optional human code of the session.';
COMMENT ON COLUMN atomic_inventory.picking_sessions.status IS 'picking -> packing -> completed (or cancelled). Packing is allowed only in packing.';
COMMENT ON COLUMN atomic_inventory.picking_sessions.tenant_id IS 'Owning tenant/store; NULL = shared (docs/security.md).';
COMMENT ON COLUMN atomic_inventory.picking_sessions.last_activity_at IS 'Updated by every pack/unpack; for staleness warnings.';
COMMENT ON COLUMN atomic_inventory.picking_sessions.created_at IS 'When the session started.';

CREATE TABLE atomic_inventory.picking_session_items (
    picking_session_id uuid    NOT NULL REFERENCES atomic_inventory.picking_sessions (id) ON DELETE CASCADE,
    product_id         uuid    NOT NULL,
    quantity_picked    integer NOT NULL CHECK (quantity_picked >= 0),
    PRIMARY KEY (picking_session_id, product_id)
);
COMMENT ON TABLE atomic_inventory.picking_session_items IS 'The basket: units of each product picked in a session.';
COMMENT ON COLUMN atomic_inventory.picking_session_items.picking_session_id IS 'The session.';
COMMENT ON COLUMN atomic_inventory.picking_session_items.product_id IS 'The product picked.';
COMMENT ON COLUMN atomic_inventory.picking_session_items.quantity_picked IS 'Units in the basket; packing across all orders can never exceed it.';

CREATE TABLE atomic_inventory.orders (
    id           uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    order_number text,
    status       text        NOT NULL DEFAULT 'confirmed'
                 CHECK (status IN ('pending', 'confirmed', 'in_preparation', 'ready_to_ship', 'shipped',
                                   'delivered', 'cancelled', 'rejected', 'returned')),
    tenant_id    text,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE atomic_inventory.orders IS 'Orders being packed.';
COMMENT ON COLUMN atomic_inventory.orders.id IS 'Order id.';
COMMENT ON COLUMN atomic_inventory.orders.order_number IS 'Human order number, shown in errors.';
COMMENT ON COLUMN atomic_inventory.orders.status IS 'ready_to_ship, shipped, delivered = completed; cancelled, rejected, returned = closed; neither can be packed.';
COMMENT ON COLUMN atomic_inventory.orders.tenant_id IS 'Owning tenant/store.';
COMMENT ON COLUMN atomic_inventory.orders.created_at IS 'When the order was created.';

CREATE TABLE atomic_inventory.packing_progress (
    id                 uuid        PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    picking_session_id uuid        NOT NULL REFERENCES atomic_inventory.picking_sessions (id) ON DELETE CASCADE,
    order_id           uuid        NOT NULL REFERENCES atomic_inventory.orders (id),
    product_id         uuid        NOT NULL,
    quantity_needed    integer     NOT NULL CHECK (quantity_needed >= 0),
    quantity_packed    integer     NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT packing_progress_packed_valid CHECK (quantity_packed >= 0 AND quantity_packed <= quantity_needed),
    UNIQUE (picking_session_id, order_id, product_id)
);
-- the basket check sums packed units per session and product
CREATE INDEX packing_progress_basket_idx ON atomic_inventory.packing_progress (picking_session_id, product_id);
COMMENT ON TABLE atomic_inventory.packing_progress IS 'Per session, order and product: units needed and units packed so far.';
COMMENT ON COLUMN atomic_inventory.packing_progress.id IS 'Progress id, passed as p_progress_id.';
COMMENT ON COLUMN atomic_inventory.packing_progress.picking_session_id IS 'The session packing it.';
COMMENT ON COLUMN atomic_inventory.packing_progress.order_id IS 'The order receiving the units.';
COMMENT ON COLUMN atomic_inventory.packing_progress.product_id IS 'The product.';
COMMENT ON COLUMN atomic_inventory.packing_progress.quantity_needed IS 'Units the order needs of this product.';
COMMENT ON COLUMN atomic_inventory.packing_progress.quantity_packed IS 'Units packed so far; never above quantity_needed (CHECK).';
COMMENT ON COLUMN atomic_inventory.packing_progress.created_at IS 'When the line was created.';
COMMENT ON COLUMN atomic_inventory.packing_progress.updated_at IS 'When quantity_packed last changed.';

-- Adopted tables (docs/adopting.md): an app keeps its own stock or batch
-- table and binds it; the bound_* functions then run the same locked,
-- checked, ledgered statements on it, built from this row.
CREATE TABLE atomic_inventory.bindings (
    name             text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind             text        NOT NULL CHECK (kind IN ('stock', 'batch', 'packing')),
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
    -- last: 0.4.0 added them (ALTER TABLE ... ADD COLUMN appends)
    location_column  name,
    location_type    text        CHECK (location_type IN ('uuid', 'bigint', 'integer', 'text')),
    CONSTRAINT bindings_location CHECK ((location_column IS NULL) = (location_type IS NULL)
                                        AND (location_column IS NULL OR kind = 'stock')),
    CONSTRAINT bindings_kind_columns CHECK (
        CASE kind
          WHEN 'stock' THEN quantity_column IS NOT NULL AND quantity_type IS NOT NULL
                            AND status_column IS NULL AND assignee_column IS NULL
          WHEN 'batch' THEN status_column IS NOT NULL AND assignee_column IS NOT NULL
                            AND available_value IS NOT NULL AND claimed_value IS NOT NULL
                            AND quantity_column IS NULL
          -- packing: relation is the sessions table (the rest: packing_bindings)
          ELSE status_column IS NOT NULL AND quantity_column IS NULL AND assignee_column IS NULL
        END)
);
COMMENT ON TABLE atomic_inventory.bindings IS
    'Tables adopted from the app (bind_stock_source, bind_batch_source, bind_packing_source): the bound_* functions operate on them by binding name. Change only through bind_*/unbind_source.';
COMMENT ON COLUMN atomic_inventory.bindings.name IS 'Binding name, passed as p_source; lower case, digits, underscores.';
COMMENT ON COLUMN atomic_inventory.bindings.kind IS 'stock (quantities: bound_decrement, ...), batch (claims: bound_claim_batch, ...) or packing (bound_increment_packing_quantity, ...; its other tables in packing_bindings).';
COMMENT ON COLUMN atomic_inventory.bindings.relation IS 'The app''s table (packing: its picking sessions table).';
COMMENT ON COLUMN atomic_inventory.bindings.id_column IS 'Column identifying a row (unique: primary key or a unique index on exactly it).';
COMMENT ON COLUMN atomic_inventory.bindings.id_type IS 'How item ids passed as text are checked and cast: uuid, bigint, integer or text (text and varchar columns).';
COMMENT ON COLUMN atomic_inventory.bindings.quantity_column IS 'Stock: units on hand (CHECK >= 0 required); NULL for batch sources.';
COMMENT ON COLUMN atomic_inventory.bindings.quantity_type IS 'Stock: the quantity column''s type; integer types only take whole quantities.';
COMMENT ON COLUMN atomic_inventory.bindings.reserved_column IS 'Stock, optional: units held elsewhere; available = quantity - reserved.';
COMMENT ON COLUMN atomic_inventory.bindings.track_column IS 'Stock, optional boolean: false = sells without stock checks, quantity left alone.';
COMMENT ON COLUMN atomic_inventory.bindings.tenant_column IS 'Optional: owning tenant (compared as text with the caller''s tenant; NULL = shared).';
COMMENT ON COLUMN atomic_inventory.bindings.status_column IS 'Batch: the status column; packing: the session''s status column.';
COMMENT ON COLUMN atomic_inventory.bindings.available_value IS 'Batch: status value of a claimable batch.';
COMMENT ON COLUMN atomic_inventory.bindings.claimed_value IS 'Batch: status value set by a claim.';
COMMENT ON COLUMN atomic_inventory.bindings.assignee_column IS 'Batch: column receiving the driver id.';
COMMENT ON COLUMN atomic_inventory.bindings.created_at IS 'When the table was bound.';
COMMENT ON COLUMN atomic_inventory.bindings.location_column IS 'Stock, optional: the location of a row of a table keyed by (id column, location column) (a primary key or unique index over exactly the two); the bound_* functions then name a row by p_item_id and p_location. NULL: one row per id.';
COMMENT ON COLUMN atomic_inventory.bindings.location_type IS 'How locations passed as text are checked and cast: uuid, bigint, integer or text (text and varchar columns); NULL without a location column.';
-- Bindings are configuration: pg_dump keeps their rows.
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.bindings', '');

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

-- Lines of reservations on bound sources (bound_reserve): the held rows are
-- the app's, named by item key; units held are in the binding's reserved
-- column.
CREATE TABLE atomic_inventory.bound_reservation_lines (
    reservation_id  uuid        NOT NULL REFERENCES atomic_inventory.reservations (id) ON DELETE CASCADE,
    item_key        text        NOT NULL,
    quantity        numeric     NOT NULL,
    tracked         boolean     NOT NULL,
    status          text        NOT NULL DEFAULT 'active',
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- what the line settled so far (partial commits, docs/reservations.md)
    -- (no CHECK: each would be read back from its text on every write of
    -- the table, pg/check.rs; the functions keep them, the tests check them)
    committed_quantity numeric  NOT NULL DEFAULT 0,
    released_quantity  numeric  NOT NULL DEFAULT 0,
    PRIMARY KEY (reservation_id, item_key),
    -- quantity > 0 and finite, status one of the four (in C, as above)
    CONSTRAINT bound_reservation_lines_valid CHECK (atomic_inventory.reservation_line_valid(quantity, status))
);
COMMENT ON TABLE atomic_inventory.bound_reservation_lines IS
    'One held row of a bound stock table per reservation (lines naming the same row are merged).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.reservation_id IS 'The reservation (its source names the binding).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.item_key IS 'The held row''s id as text (PostgreSQL''s id::text).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.quantity IS 'Units held (an active line: what it holds now, after partial commits that kept the rest; a finished line: what it held when it finished).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.tracked IS 'Whether the row tracked inventory when reserved; untracked lines never touch the reserved column.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.status IS 'active, committed, released or expired; lines can finish separately.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.updated_at IS 'When the line''s status or quantity last changed.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.committed_quantity IS 'Units of the row committed (sold) so far, over all the line''s commits (p_lines may commit part of a line).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.released_quantity IS 'Units of the line given back: by a release, by expiry, or as the rest of a partial commit (p_rest = release). A finished line''s committed and released units add up to what it was reserved with.';

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

-- Stock events (docs/events.md): a transactional outbox. Each event is
-- written by a trigger in the statement that made it, so it commits or rolls
-- back with the movement; pg_notify tells LISTEN clients at commit; each
-- consumer (event_consumers) gets its own delivery row per event, read with
-- SKIP LOCKED and a visibility timeout, acknowledged by ack_events.
CREATE TABLE atomic_inventory.events (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    inventory_id     uuid,
    reservation_id   uuid,
    batch_id         uuid,
    ledger_id        bigint,
    tenant_id        text,
    available_before numeric,
    available_after  numeric,
    quantity_after   numeric,
    reorder_point    numeric,
    detail           jsonb,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- NULL = the default location
    location_id      uuid
);
-- purge_events deletes by age
CREATE INDEX events_created_at_idx ON atomic_inventory.events (created_at);
COMMENT ON TABLE atomic_inventory.events IS
    'Stock events, written in the transaction of the change they report (a rolled-back change leaves none). Read them with read_events, LISTEN atomic_inventory_events, or Supabase Realtime (docs/events.md).';
COMMENT ON COLUMN atomic_inventory.events.id IS 'Event number; for one item, increasing in commit order (the item''s row lock is held from the change to the commit).';
COMMENT ON COLUMN atomic_inventory.events.kind IS 'low_stock, out_of_stock, back_in_stock, reservation_expired, batch_lease_lapsed, or movement (atomic_inventory.movement_events = on).';
COMMENT ON COLUMN atomic_inventory.events.inventory_id IS 'The item; NULL for reservation and batch events and movements of bound sources.';
COMMENT ON COLUMN atomic_inventory.events.reservation_id IS 'The reservation (reservation_expired).';
COMMENT ON COLUMN atomic_inventory.events.batch_id IS 'The batch (batch_lease_lapsed).';
COMMENT ON COLUMN atomic_inventory.events.ledger_id IS 'The ledger row of the movement that caused it; NULL when the change wrote none (holds, releases, expiry, ledger off).';
COMMENT ON COLUMN atomic_inventory.events.tenant_id IS 'The tenant of the item, reservation or batch; NULL = shared.';
COMMENT ON COLUMN atomic_inventory.events.available_before IS 'Available (quantity - reserved) before the change.';
COMMENT ON COLUMN atomic_inventory.events.available_after IS 'Available after the change.';
COMMENT ON COLUMN atomic_inventory.events.quantity_after IS 'On-hand quantity after the change.';
COMMENT ON COLUMN atomic_inventory.events.reorder_point IS 'The item''s reorder point at the time (low_stock).';
COMMENT ON COLUMN atomic_inventory.events.detail IS 'Kind-specific facts: a reservation''s reference and lines, a batch''s previous holder, a movement''s delta and ledger kind.';
COMMENT ON COLUMN atomic_inventory.events.created_at IS 'Transaction time of the change.';
COMMENT ON COLUMN atomic_inventory.events.location_id IS 'The location of the stock level that crossed; NULL = the default location.';

CREATE TABLE atomic_inventory.event_consumers (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- names are per tenant, as idempotency keys are ('' for none)
    tenant_scope text        NOT NULL,
    name         text        NOT NULL,
    tenant_id    text,
    all_tenants  boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (tenant_scope, name)
);
COMMENT ON TABLE atomic_inventory.event_consumers IS
    'Named consumer groups (create_event_consumer): each gets every event written after it was created that its tenant may see, once per group.';
COMMENT ON COLUMN atomic_inventory.event_consumers.id IS 'Internal id (event_deliveries.consumer_id).';
COMMENT ON COLUMN atomic_inventory.event_consumers.tenant_scope IS 'The creating caller''s tenant ('''' for none); names are unique per tenant.';
COMMENT ON COLUMN atomic_inventory.event_consumers.name IS 'The consumer''s name (p_consumer).';
COMMENT ON COLUMN atomic_inventory.event_consumers.tenant_id IS 'The tenant whose events it gets (and shared items'').';
COMMENT ON COLUMN atomic_inventory.event_consumers.all_tenants IS 'Made by an admin without a tenant: gets every tenant''s events.';
COMMENT ON COLUMN atomic_inventory.event_consumers.created_at IS 'When it was created; it gets events written from then on.';

-- No foreign key to events: purge_events deletes deliveries first, and an
-- RI check per event and consumer would buy nothing.
CREATE TABLE atomic_inventory.event_deliveries (
    consumer_id bigint      NOT NULL REFERENCES atomic_inventory.event_consumers (id) ON DELETE CASCADE,
    event_id    bigint      NOT NULL,
    visible_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    read_count  integer     NOT NULL DEFAULT 0,
    acked_at    timestamptz,
    PRIMARY KEY (consumer_id, event_id)
);
-- read_events: a consumer's unacknowledged events in order
CREATE INDEX event_deliveries_pending_idx ON atomic_inventory.event_deliveries (consumer_id, event_id)
    WHERE acked_at IS NULL;
COMMENT ON TABLE atomic_inventory.event_deliveries IS
    'One row per event and consumer: pending until ack_events, hidden from other readers until visible_at.';
COMMENT ON COLUMN atomic_inventory.event_deliveries.consumer_id IS 'The consumer (event_consumers.id).';
COMMENT ON COLUMN atomic_inventory.event_deliveries.event_id IS 'The event (events.id).';
COMMENT ON COLUMN atomic_inventory.event_deliveries.visible_at IS 'read_events hands it out from this time on (again after a reader''s visibility timeout ran out unacknowledged).';
COMMENT ON COLUMN atomic_inventory.event_deliveries.read_count IS 'How many times read_events handed it out.';
COMMENT ON COLUMN atomic_inventory.event_deliveries.acked_at IS 'When ack_events acknowledged it; NULL = pending.';

-- Write one event: its row, a delivery per consumer that may see it, and a
-- notification on atomic_inventory_events (sent at commit; nothing for a
-- rollback). Called by the triggers below only.
CREATE FUNCTION atomic_inventory.emit_event(
    p_kind text, p_inventory_id uuid, p_tenant_id text,
    p_available_before numeric, p_available_after numeric, p_quantity_after numeric,
    p_reorder_point numeric, p_ledger_id bigint, p_reservation_id uuid, p_batch_id uuid,
    p_detail jsonb, p_location_id uuid DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO atomic_inventory.events
        (kind, inventory_id, tenant_id, available_before, available_after, quantity_after,
         reorder_point, ledger_id, reservation_id, batch_id, detail, location_id)
    VALUES (p_kind, p_inventory_id, p_tenant_id, p_available_before, p_available_after,
            p_quantity_after, p_reorder_point, p_ledger_id, p_reservation_id, p_batch_id, p_detail,
            p_location_id)
    RETURNING id INTO v_id;
    INSERT INTO atomic_inventory.event_deliveries (consumer_id, event_id)
    SELECT c.id, v_id FROM atomic_inventory.event_consumers AS c
     WHERE c.all_tenants OR p_tenant_id IS NULL OR c.tenant_id = p_tenant_id;
    -- ids only: any session may LISTEN, so the payload names no quantities
    PERFORM pg_catalog.pg_notify('atomic_inventory_events',
        pg_catalog.json_strip_nulls(pg_catalog.json_build_object(
            'id', v_id, 'kind', p_kind, 'inventory_id', p_inventory_id, 'location_id', p_location_id,
            'reservation_id', p_reservation_id, 'batch_id', p_batch_id,
            'tenant_id', p_tenant_id))::text);
    RETURN v_id;
END;
$$;

-- Are events on (atomic_inventory.events), and is this not a dump being
-- restored (the test of items_initial_ledger)? Read as text: the setting is a
-- placeholder until the library is loaded.
CREATE FUNCTION atomic_inventory.events_on() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.lower(COALESCE(pg_catalog.current_setting('atomic_inventory.events', true), 'on'))
               NOT IN ('off', 'false', 'no', '0', 'f', 'n')
       AND NOT (pg_catalog.current_setting('check_function_bodies') = 'off'
                AND pg_catalog.current_setting('row_security') = 'off');
$$;

-- Crossings of an item's available stock (quantity - reserved - unsellable): the
-- trigger's WHEN clause picks the rows that cross, so a change that crosses
-- nothing (nearly every one) costs an expression, no call. Striped items are
-- left out: their free stock is spread over item_stripes, which no one
-- statement sees whole. SECURITY DEFINER: whoever changes an item (an admin
-- writing the table directly too) writes its events.
-- The stock-event triggers' WHEN, in C (src/pg/check.rs): PostgreSQL reads a
-- trigger's WHEN back from its text in every statement writing the table;
-- the expression this computes cost about 16 us of each (docs/benchmarks.md).
CREATE FUNCTION atomic_inventory.stock_event_due(
    p_old_stripes smallint, p_new_stripes smallint, p_old_track boolean, p_new_track boolean,
    p_old_quantity numeric, p_old_reserved numeric, p_old_unsellable numeric, p_old_reorder_point numeric,
    p_new_quantity numeric, p_new_reserved numeric, p_new_unsellable numeric, p_new_reorder_point numeric
) RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ai_stock_event_due';
COMMENT ON FUNCTION atomic_inventory.stock_event_due(smallint, smallint, boolean, boolean, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric) IS
    'WHEN of the stock-event triggers: an unstriped row tracking stock (before and after) whose available (quantity - reserved - unsellable) crosses 0, or falls to or below its reorder point from above the old one.';
CREATE FUNCTION atomic_inventory.items_stock_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before numeric := OLD.quantity - OLD.reserved - OLD.unsellable;
    v_after  numeric := NEW.quantity - NEW.reserved - NEW.unsellable;
    v_ledger bigint;
BEGIN
    IF NOT atomic_inventory.events_on() THEN
        RETURN NULL;
    END IF;
    -- The movement's ledger row, written by the same statement: the item's
    -- newest one, since its row stays locked from the change to the commit.
    -- Checked against the change, so a change that wrote none (a hold, the
    -- ledger off) gets NULL rather than an older movement.
    IF NEW.quantity <> OLD.quantity THEN
        SELECT l.id INTO v_ledger
          FROM (SELECT g.id, g.delta, g.quantity_after, g.created_at
                  FROM atomic_inventory.ledger AS g
                 WHERE g.inventory_id = NEW.id
                 ORDER BY g.id DESC LIMIT 1) AS l
         WHERE l.delta = NEW.quantity - OLD.quantity
           AND l.quantity_after = NEW.quantity
           AND l.created_at = pg_catalog.now();
    END IF;
    IF NEW.reorder_point IS NOT NULL AND v_after <= NEW.reorder_point
       AND v_before > COALESCE(OLD.reorder_point, -1) THEN
        PERFORM atomic_inventory.emit_event('low_stock', NEW.id, NEW.tenant_id, v_before, v_after,
                                            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL);
    END IF;
    IF v_before > 0 AND v_after <= 0 THEN
        PERFORM atomic_inventory.emit_event('out_of_stock', NEW.id, NEW.tenant_id, v_before, v_after,
                                            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL);
    ELSIF v_before <= 0 AND v_after > 0 THEN
        PERFORM atomic_inventory.emit_event('back_in_stock', NEW.id, NEW.tenant_id, v_before, v_after,
                                            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER items_stock_events
    AFTER UPDATE ON atomic_inventory.items
    FOR EACH ROW
    WHEN (atomic_inventory.stock_event_due(OLD.stripes, NEW.stripes, OLD.track_inventory, NEW.track_inventory,
                                           OLD.quantity, OLD.reserved, OLD.unsellable, OLD.reorder_point,
                                           NEW.quantity, NEW.reserved, NEW.unsellable, NEW.reorder_point))
    EXECUTE FUNCTION atomic_inventory.items_stock_events();

-- The same crossings for an item's stock at another location; its ledger
-- row is the level's newest (the level's row lock is held to the commit).
-- Striped levels are left out, as striped items are.
CREATE FUNCTION atomic_inventory.levels_stock_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before numeric := OLD.quantity - OLD.reserved;
    v_after  numeric := NEW.quantity - NEW.reserved;
    v_ledger bigint;
    v_tenant text;
BEGIN
    IF NOT atomic_inventory.events_on() THEN
        RETURN NULL;
    END IF;
    SELECT i.tenant_id INTO v_tenant FROM atomic_inventory.items AS i WHERE i.id = NEW.item_id;
    IF NEW.quantity <> OLD.quantity THEN
        SELECT l.id INTO v_ledger
          FROM (SELECT g.id, g.delta, g.quantity_after, g.created_at
                  FROM atomic_inventory.ledger AS g
                 WHERE g.inventory_id = NEW.item_id AND g.location_id = NEW.location_id
                 ORDER BY g.id DESC LIMIT 1) AS l
         WHERE l.delta = NEW.quantity - OLD.quantity
           AND l.quantity_after = NEW.quantity
           AND l.created_at = pg_catalog.now();
    END IF;
    IF NEW.reorder_point IS NOT NULL AND v_after <= NEW.reorder_point
       AND v_before > COALESCE(OLD.reorder_point, -1) THEN
        PERFORM atomic_inventory.emit_event('low_stock', NEW.item_id, v_tenant, v_before, v_after,
            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL, NEW.location_id);
    END IF;
    IF v_before > 0 AND v_after <= 0 THEN
        PERFORM atomic_inventory.emit_event('out_of_stock', NEW.item_id, v_tenant, v_before, v_after,
            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL, NEW.location_id);
    ELSIF v_before <= 0 AND v_after > 0 THEN
        PERFORM atomic_inventory.emit_event('back_in_stock', NEW.item_id, v_tenant, v_before, v_after,
            NEW.quantity, NEW.reorder_point, v_ledger, NULL, NULL, NULL, NEW.location_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER levels_stock_events
    AFTER UPDATE ON atomic_inventory.stock_levels
    FOR EACH ROW
    WHEN (atomic_inventory.stock_event_due(OLD.stripes, NEW.stripes, true, true,
                                           OLD.quantity, OLD.reserved, NULL::numeric, OLD.reorder_point,
                                           NEW.quantity, NEW.reserved, NULL::numeric, NEW.reorder_point))
    EXECUTE FUNCTION atomic_inventory.levels_stock_events();

-- Every movement as an event, when atomic_inventory.movement_events = on
-- (off by default: an event row, a delivery per consumer and a notification
-- per ledger row).
CREATE FUNCTION atomic_inventory.ledger_movement_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT atomic_inventory.events_on() THEN
        RETURN NULL;
    END IF;
    PERFORM atomic_inventory.emit_event('movement', NEW.inventory_id, NEW.tenant_id, NULL, NULL,
        NEW.quantity_after, NULL, NEW.id, NULL, NULL,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'delta', NEW.delta, 'ledger_kind', NEW.kind, 'reason', NEW.reason,
            'reference', NEW.reference, 'source', NEW.source, 'item_key', NEW.item_key,
            'transfer_id', NEW.transfer_id)),
        NEW.location_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_movement_events
    AFTER INSERT ON atomic_inventory.ledger
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('atomic_inventory.movement_events', true) = 'on')
    EXECUTE FUNCTION atomic_inventory.ledger_movement_events();

-- A reservation that expired (the sweep, expire_reservations): its
-- reference and the lines it gave back.
CREATE FUNCTION atomic_inventory.reservations_expired_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lines jsonb;
BEGIN
    IF NOT atomic_inventory.events_on() THEN
        RETURN NULL;
    END IF;
    IF NEW.source IS NULL THEN
        -- (location_id only on lines held at another location than the default)
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('inventory_id', l.inventory_id,
                                                                  'quantity', l.quantity)
                                    || CASE WHEN l.location_id IS NULL THEN '{}'::jsonb
                                            ELSE pg_catalog.jsonb_build_object('location_id', l.location_id) END
                                    ORDER BY l.inventory_id)
          INTO v_lines
          FROM atomic_inventory.reservation_lines AS l
         WHERE l.reservation_id = NEW.id AND l.status IN ('active', 'expired');
    ELSE
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('item_id', l.item_key,
                                                                  'quantity', l.quantity)
                                    ORDER BY l.item_key)
          INTO v_lines
          FROM atomic_inventory.bound_reservation_lines AS l
         WHERE l.reservation_id = NEW.id AND l.status IN ('active', 'expired');
    END IF;
    PERFORM atomic_inventory.emit_event('reservation_expired', NULL, NEW.tenant_id, NULL, NULL,
        NULL, NULL, NULL, NEW.id, NULL,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'reference', NEW.reference, 'source', NEW.source, 'expires_at', NEW.expires_at,
            'lines', COALESCE(v_lines, '[]'::jsonb))));
    RETURN NULL;
END;
$$;
CREATE TRIGGER reservations_expired_events
    AFTER UPDATE ON atomic_inventory.reservations
    FOR EACH ROW
    WHEN (OLD.status = 'active' AND NEW.status = 'expired')
    EXECUTE FUNCTION atomic_inventory.reservations_expired_events();

-- A claim or started batch whose lease ran out, taken away from its
-- driver: by the sweep (back to available) or by another claim.
CREATE FUNCTION atomic_inventory.batches_lease_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT atomic_inventory.events_on() THEN
        RETURN NULL;
    END IF;
    PERFORM atomic_inventory.emit_event('batch_lease_lapsed', NULL, NEW.tenant_id, NULL, NULL,
        NULL, NULL, NULL, NULL, NEW.id,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'previous_driver', OLD.claimed_by, 'lease_expired_at', OLD.lease_expires_at,
            'status', NEW.status, 'claimed_by', NEW.claimed_by, 'reference', NEW.reference)));
    RETURN NULL;
END;
$$;
CREATE TRIGGER batches_lease_events
    AFTER UPDATE ON atomic_inventory.batches
    FOR EACH ROW
    WHEN (OLD.status IN ('claimed', 'in_progress') AND OLD.lease_expires_at < pg_catalog.statement_timestamp()
          AND (NEW.status = 'available' OR NEW.claimed_by IS DISTINCT FROM OLD.claimed_by
               OR NEW.claimed_at IS DISTINCT FROM OLD.claimed_at))
    EXECUTE FUNCTION atomic_inventory.batches_lease_events();

-- Supabase Realtime (docs/events.md): with SELECT granted and the table in
-- the supabase_realtime publication, a subscriber sees only the events this
-- policy lets it read (functions.sql defines it, with the caller functions).
-- The extension's functions run as the table's owner, which bypasses it.
ALTER TABLE atomic_inventory.events ENABLE ROW LEVEL SECURITY;

SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.locations',
    'WHERE id <> ''00000000-0000-0000-0000-000000000000''');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.stock_levels', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.events', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.event_consumers', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.event_consumers_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.event_deliveries', '');

-- Kits (docs/kits.md): an item sold as a set of components. Selling or
-- reserving a kit takes each component's units in the same call; the kit's
-- own row holds no stock (items_stock_valid).
CREATE TABLE atomic_inventory.kit_components (
    kit_id       uuid    NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    -- RESTRICT: a component can't vanish from under its kits
    component_id uuid    NOT NULL REFERENCES atomic_inventory.items (id),
    quantity     numeric NOT NULL CHECK (quantity > 0 AND quantity <= 1000000000000),
    PRIMARY KEY (kit_id, component_id)
);
-- "is this item a component of a kit" (define_kit refuses nested kits)
CREATE INDEX kit_components_component_idx ON atomic_inventory.kit_components (component_id);
COMMENT ON TABLE atomic_inventory.kit_components IS
    'The components of each kit (define_kit): units of each component one kit takes.';
COMMENT ON COLUMN atomic_inventory.kit_components.kit_id IS 'The kit (an item with kit = true).';
COMMENT ON COLUMN atomic_inventory.kit_components.component_id IS 'A component (an item that is not a kit, of the kit''s tenant).';
COMMENT ON COLUMN atomic_inventory.kit_components.quantity IS 'Units of the component in one kit.';
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.kit_components', '');

-- Transfers in transit (docs/locations.md): transfer_inventory with
-- p_receive => false takes the units out of the source's level now and
-- records them here until receive_transfer adds them to the destination's
-- level or cancel_transfer returns them. Units in transit are in no
-- level's quantity, so each level's quantity stays the sum of its ledger
-- rows. A transfer that completes at once (the default) writes no row here.
CREATE TABLE atomic_inventory.transfers (
    id               uuid        PRIMARY KEY,
    item_id          uuid        NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    from_location_id uuid        NOT NULL REFERENCES atomic_inventory.locations (id),
    to_location_id   uuid        NOT NULL REFERENCES atomic_inventory.locations (id),
    quantity         numeric     NOT NULL CHECK (quantity > 0 AND quantity <= 1000000000000),
    status           text        NOT NULL DEFAULT 'shipped'
                                 CHECK (status IN ('shipped', 'received', 'cancelled')),
    tenant_id        text,
    reason           text,
    reference        text,
    shipped_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    received_at      timestamptz,
    cancelled_at     timestamptz,
    CONSTRAINT transfers_two_locations CHECK (from_location_id <> to_location_id)
);
-- Only transfers in transit are looked up by item or location (get_inventory's
-- in_transit, update_location's check); finished ones are history.
CREATE INDEX transfers_in_transit_item_idx ON atomic_inventory.transfers (item_id, to_location_id)
    WHERE status = 'shipped';
CREATE INDEX transfers_in_transit_from_idx ON atomic_inventory.transfers (from_location_id)
    WHERE status = 'shipped';
CREATE INDEX transfers_in_transit_to_idx ON atomic_inventory.transfers (to_location_id)
    WHERE status = 'shipped';
COMMENT ON TABLE atomic_inventory.transfers IS
    'Transfers shipped in transit (transfer_inventory with p_receive => false), then received (receive_transfer) or cancelled (cancel_transfer). Units in transit are in no stock level''s quantity.';
COMMENT ON COLUMN atomic_inventory.transfers.id IS 'The transfer id (transfer_id of the answer and of its ledger rows), passed to receive_transfer and cancel_transfer.';
COMMENT ON COLUMN atomic_inventory.transfers.item_id IS 'The item moved.';
COMMENT ON COLUMN atomic_inventory.transfers.from_location_id IS 'The location the units left (the default location''s id for the item''s own row).';
COMMENT ON COLUMN atomic_inventory.transfers.to_location_id IS 'The location the units go to; counted there as in_transit until received.';
COMMENT ON COLUMN atomic_inventory.transfers.quantity IS 'Units shipped; all of them are received or returned to the source.';
COMMENT ON COLUMN atomic_inventory.transfers.status IS 'shipped (in transit), received (added to the destination''s level) or cancelled (returned to the source''s level).';
COMMENT ON COLUMN atomic_inventory.transfers.tenant_id IS 'The item''s tenant when it was shipped.';
COMMENT ON COLUMN atomic_inventory.transfers.reason IS 'p_reason of the shipment.';
COMMENT ON COLUMN atomic_inventory.transfers.reference IS 'p_reference of the shipment (a delivery note, a truck).';
COMMENT ON COLUMN atomic_inventory.transfers.shipped_at IS 'When the units left the source.';
COMMENT ON COLUMN atomic_inventory.transfers.received_at IS 'When receive_transfer added them to the destination; NULL until then.';
COMMENT ON COLUMN atomic_inventory.transfers.cancelled_at IS 'When cancel_transfer returned them to the source; NULL unless cancelled.';
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.transfers', '');

-- Stock states (docs/stock-states.md): an item's units that are on hand but
-- not for sale (damaged, quality_control, safety_stock) and units expected
-- but not on hand (incoming), moved by move_stock_state. The on-hand
-- states' sum is also kept in items.unsellable, the one column a sale's
-- guarded UPDATE reads (no join on the hot path).
CREATE TABLE atomic_inventory.stock_states (
    item_id    uuid        NOT NULL REFERENCES atomic_inventory.items (id) ON DELETE CASCADE,
    state      text        NOT NULL
        CHECK (state IN ('damaged', 'quality_control', 'safety_stock', 'incoming')),
    -- NaN and Infinity sort above every number: never below 0, always finite
    quantity   numeric     NOT NULL DEFAULT 0 CHECK (quantity >= 0 AND quantity < 'Infinity'),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (item_id, state)
);
COMMENT ON TABLE atomic_inventory.stock_states IS
    'Units of an item (at its default location) in a named state other than available (move_stock_state); the on-hand states add up to items.unsellable.';
COMMENT ON COLUMN atomic_inventory.stock_states.item_id IS 'The item (items.id).';
COMMENT ON COLUMN atomic_inventory.stock_states.state IS 'damaged, quality_control or safety_stock (on hand, counted in items.quantity, not for sale) or incoming (expected, not in items.quantity).';
COMMENT ON COLUMN atomic_inventory.stock_states.quantity IS 'Units in this state now; never below 0.';
COMMENT ON COLUMN atomic_inventory.stock_states.updated_at IS 'When a move last changed it.';
SELECT pg_catalog.pg_extension_config_dump('atomic_inventory.stock_states', '');
