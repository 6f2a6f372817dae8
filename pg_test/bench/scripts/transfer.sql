-- Ours: one call moves a unit of one of the 10 000 transfer items between
-- its two bench locations, in a random direction; both levels are locked in
-- location id order (A -> B and B -> A queue, never deadlock), two ledger
-- rows. The item number is folded into 1..10000 (hot: item 1).
\set k KEY
\set i 1 + (:k - 1) % 10000
\set src random(1, 2)
\set dst 3 - :src
SELECT atomic_inventory.transfer_inventory(p_inventory_id => ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid,
  p_from_location_id => ('7' || lpad(to_hex(:src::int), 31, '0'))::uuid,
  p_to_location_id => ('7' || lpad(to_hex(:dst::int), 31, '0'))::uuid, p_quantity => 1);
