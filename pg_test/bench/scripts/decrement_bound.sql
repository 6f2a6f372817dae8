-- Ours on an adopted table: bound_decrement on bench.items_bound, a bound
-- copy of atomic_inventory.items' shape (same ids, stock, reserved, track,
-- tenant columns); compare with decrement.sql.
\set k KEY
SELECT atomic_inventory.bound_decrement(p_source => 'bench_items', p_item_id => lpad(to_hex(:k::int), 32, '0'), p_quantity => 1);
