-- What-if (not shipped): decrement_noledger's C code declared without SECURITY DEFINER (setup.sql); the code pins its search path as shipped.
\set k KEY
SELECT bench.decrement_invoker(p_inventory_id => lpad(to_hex(:k::int), 32, '0')::uuid, p_quantity => 1);
