-- Ours: pack one unit of one of 1000 lines (the packing RPC's nine validations).
\set k random(1, 1000)
SELECT atomic_inventory.increment_packing_quantity(
  p_progress_id => ('a' || lpad(to_hex(:k::int), 31, '0'))::uuid,
  p_session_id  => ('b' || lpad(to_hex(:k::int), 31, '0'))::uuid);
