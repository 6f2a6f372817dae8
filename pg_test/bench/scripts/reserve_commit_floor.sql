-- Floor for reserve + commit: the rows the pair must write, sent raw by the
-- client as one statement per step (the pair is two calls): the item's
-- reserved counter, a reservation with its expiry and its line; then the
-- reservation and its line settled, the item sold, its ledger row. No
-- function call, no lock before a write, no idempotency key, no check but
-- the stock test: a lower bound on what any call writing these rows costs
-- (docs/benchmarks.md, "Floors").
\set k KEY
WITH u AS (
  UPDATE atomic_inventory.items AS i SET reserved = i.reserved + 1, updated_at = now()
   WHERE i.id = lpad(to_hex(:k::int), 32, '0')::uuid AND i.track_inventory AND i.quantity - i.reserved >= 1
  RETURNING i.id, i.tenant_id
), r AS (
  INSERT INTO atomic_inventory.reservations (expires_at, tenant_id)
  SELECT now() + interval '15 minutes', u.tenant_id FROM u RETURNING id
), l AS (
  INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked)
  SELECT r.id, u.id, 1, true FROM r, u
)
SELECT r.id AS rid FROM r \gset
WITH r AS (
  UPDATE atomic_inventory.reservations AS r SET status = 'committed', updated_at = now()
   WHERE r.id = :rid::uuid AND r.status = 'active' RETURNING r.id
), l AS (
  UPDATE atomic_inventory.reservation_lines AS l
     SET status = 'committed', committed_quantity = l.quantity, updated_at = now()
    FROM r WHERE l.reservation_id = r.id AND l.status = 'active' RETURNING l.inventory_id, l.quantity
), u AS (
  UPDATE atomic_inventory.items AS i
     SET quantity = i.quantity - l.quantity, reserved = i.reserved - l.quantity, updated_at = now()
    FROM l WHERE i.id = l.inventory_id RETURNING i.id, i.quantity, i.tenant_id, l.quantity AS q
)
INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind, reference, tenant_id)
SELECT u.id, -u.q, u.quantity, 'commit', :rid::text, u.tenant_id FROM u;
