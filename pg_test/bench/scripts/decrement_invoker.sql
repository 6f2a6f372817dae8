-- What-if (not shipped): decrement_noledger's C code declared with neither SECURITY DEFINER nor a pinned search_path (setup.sql).
\set k KEY
SELECT bench.decrement_invoker(p_inventory_id => lpad(to_hex(:k::int), 32, '0')::uuid, p_quantity => 1);
