-- What-if (not shipped since 0.3.0): decrement_noledger's C code declared as before 0.3.0 pinned its search path, with SET search_path on the declaration (setup.sql); the code's own pin runs too.
\set k KEY
SELECT bench.decrement_set_clause(p_inventory_id => lpad(to_hex(:k::int), 32, '0')::uuid, p_quantity => 1);
