-- Ours: hold one unit at checkout, then give it back (an abandoned cart
-- released by the app).
\set k KEY
SELECT atomic_inventory.reserve_inventory(p_lines => jsonb_build_array(
  jsonb_build_object('inventory_id', lpad(to_hex(:k::int), 32, '0'), 'quantity', 1)))->>'reservation_id' AS rid \gset
SELECT atomic_inventory.release_reservation(p_reservation_id => :rid::uuid);
