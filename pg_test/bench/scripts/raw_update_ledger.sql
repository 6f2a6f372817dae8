-- Floor for a ledgered sale: our function's own statement (check, update and
-- ledger row, returning old and new quantity; the function builds its JSON
-- answer from them), sent by the client: one round trip, no function call.
\set k KEY
WITH upd AS (
  UPDATE atomic_inventory.items AS i SET quantity = i.quantity - 1, updated_at = now()
   WHERE i.id = lpad(to_hex(:k::int), 32, '0')::uuid AND i.track_inventory AND i.quantity - i.reserved >= 1
  RETURNING i.id, i.quantity, i.tenant_id
), led AS (
  INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind, tenant_id)
  SELECT u.id, -1, u.quantity, 'decrement', u.tenant_id FROM upd AS u
)
SELECT (u.quantity + 1)::text, u.quantity::text FROM upd AS u;
