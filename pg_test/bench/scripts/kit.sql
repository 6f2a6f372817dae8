-- Ours: one call sells one kit of three components (one of the 10 000
-- bench kits; hot: kit 1). The kit's row refuses (it holds nothing), the
-- kit is read as its components, and their three rows are sold in one
-- statement, locked in ascending id order, with three ledger rows.
\set k KEY
\set i 1 + (:k - 1) % 10000
SELECT atomic_inventory.decrement_inventory(p_inventory_id => ('6' || lpad(to_hex(:i::int), 31, '0'))::uuid,
  p_quantity => 1);
