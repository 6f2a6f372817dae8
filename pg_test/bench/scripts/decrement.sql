-- Ours: one call; check, update and ledger row in one statement.
\set k KEY
SELECT atomic_inventory.decrement_inventory(p_inventory_id => lpad(to_hex(:k::int), 32, '0')::uuid, p_quantity => 1);
