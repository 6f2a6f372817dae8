-- Ours on the warehouse's own tables (bind_packing_source): pack one unit
-- of one of 1000 lines, the same nine validations.
\set k random(1, 1000)
SELECT atomic_inventory.bound_increment_packing_quantity('bench_wh',
  ('a' || lpad(to_hex(:k::int), 31, '0')),
  ('b' || lpad(to_hex(:k::int), 31, '0')));
