-- Floor for a kit sale: its three components' rows sold and their three
-- ledger rows, in one statement sent raw by the client (no function call,
-- no kit lookup, no all-or-nothing check): a lower bound on what any call
-- selling the kit costs (docs/benchmarks.md, "Floors").
\set k KEY
\set i 1 + (:k - 1) % 10000
WITH u AS (
  UPDATE atomic_inventory.items AS i SET quantity = i.quantity - 1, updated_at = now()
   WHERE i.id IN (lpad(to_hex(:i::int), 32, '0')::uuid, lpad(to_hex(:i::int + 10000), 32, '0')::uuid,
                  lpad(to_hex(:i::int + 20000), 32, '0')::uuid)
     AND i.track_inventory AND i.quantity - i.reserved >= 1
  RETURNING i.id, i.quantity, i.tenant_id
), led AS (
  INSERT INTO atomic_inventory.ledger (inventory_id, delta, quantity_after, kind, tenant_id)
  SELECT u.id, -1, u.quantity, 'decrement', u.tenant_id FROM u
)
SELECT count(*) FROM u;
