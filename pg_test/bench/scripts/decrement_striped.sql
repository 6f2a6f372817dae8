-- Ours, striped mode: the hot item's stock is spread over 64 stripes
-- (stripe_item); each sale takes any unlocked stripe that covers it.
SELECT atomic_inventory.decrement_inventory(p_inventory_id => 'f0000000-0000-0000-0000-000000000001'::uuid, p_quantity => 1);
