-- Floor for a sale with the ledger off, on our table: decrement_inventory's
-- own statement (decrement_one_bare in src/stock.rs: check, update, old and
-- new quantity) sent by the client. Against decrement_noledger it leaves
-- only what the function call adds; against raw_update, what the table adds.
\set k KEY
UPDATE atomic_inventory.items AS i SET quantity = i.quantity - 1, updated_at = now()
 WHERE i.id = lpad(to_hex(:k::int), 32, '0')::uuid AND i.track_inventory AND i.quantity - i.reserved >= 1
RETURNING (i.quantity + 1)::text, i.quantity::text;
