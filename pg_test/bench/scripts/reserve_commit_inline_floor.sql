-- What-if floor (run only when named): reserve_commit_floor with the hold
-- kept as one row of bench.holds (its item and units inline: no line row,
-- no foreign key checks), the shape a one-line hold could take. What the
-- reservation pair could reach with that schema (docs/benchmarks.md,
-- "Floors").
\set k KEY
WITH u AS (
  UPDATE atomic_inventory.items AS i SET reserved = i.reserved + 1, updated_at = now()
   WHERE i.id = lpad(to_hex(:k::int), 32, '0')::uuid AND i.track_inventory AND i.quantity - i.reserved >= 1
  RETURNING i.id, i.tenant_id
)
INSERT INTO bench.holds (item_id, quantity, tenant_id, expires_at)
SELECT u.id, 1, u.tenant_id, now() + interval '15 minutes' FROM u RETURNING id AS rid \gset
WITH h AS (
  UPDATE bench.holds AS h SET status = 'committed', updated_at = now()
   WHERE h.id = :rid::uuid AND h.status = 'active' RETURNING h.item_id, h.quantity
), u AS (
  UPDATE atomic_inventory.items AS i
     SET quantity = i.quantity - h.quantity, reserved = i.reserved - h.quantity, updated_at = now()
    FROM h WHERE i.id = h.item_id RETURNING i.id, i.quantity, i.tenant_id, h.quantity AS q
)
INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind, reference, tenant_id)
SELECT u.id, -u.q, u.quantity, 'commit', :rid::text, u.tenant_id FROM u;
