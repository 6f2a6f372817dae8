-- Ours: the same 5-line order in one call (locks in id order, one ledger row a line).
\set k1 KEY
\set k2 KEY
\set k3 KEY
\set k4 KEY
\set k5 KEY
SELECT atomic_inventory.decrement_inventory_many(p_lines => jsonb_build_array(
  jsonb_build_object('inventory_id', lpad(to_hex(:k1::int), 32, '0'), 'quantity', 1),
  jsonb_build_object('inventory_id', lpad(to_hex(:k2::int), 32, '0'), 'quantity', 1),
  jsonb_build_object('inventory_id', lpad(to_hex(:k3::int), 32, '0'), 'quantity', 1),
  jsonb_build_object('inventory_id', lpad(to_hex(:k4::int), 32, '0'), 'quantity', 1),
  jsonb_build_object('inventory_id', lpad(to_hex(:k5::int), 32, '0'), 'quantity', 1)));
