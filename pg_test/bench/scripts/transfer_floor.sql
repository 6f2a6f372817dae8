-- Floor for a transfer: the item's two levels moved and their two ledger
-- rows sharing one transfer id, in one statement sent raw by the client
-- (no function call, no checks of item, locations or tenant), locking the
-- levels in location order as transfer_inventory does: a lower bound on what
-- any call making the transfer costs (docs/benchmarks.md, "Floors").
\set k KEY
\set i 1 + (:k - 1) % 10000
\set src random(1, 2)
\set d1 2 * :src - 3
WITH t AS (SELECT gen_random_uuid() AS id), upd AS (
  UPDATE atomic_inventory.stock_levels AS l SET quantity = l.quantity + d.delta, updated_at = now()
    FROM (VALUES (('7' || lpad(to_hex(1), 31, '0'))::uuid, :d1::numeric),
                 (('7' || lpad(to_hex(2), 31, '0'))::uuid, -:d1::numeric)) AS d(loc, delta)
   WHERE l.item_id = ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid AND l.location_id = d.loc
     AND l.quantity - l.reserved + d.delta >= 0
  RETURNING l.item_id, l.location_id, l.quantity, d.delta
)
INSERT INTO atomic_inventory.ledger (inventory_id, location_id, delta, quantity_after, kind, transfer_id)
SELECT u.item_id, u.location_id, u.delta, u.quantity, 'transfer', t.id FROM upd AS u, t;
