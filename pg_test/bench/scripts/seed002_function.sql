-- Seed 002's PL/pgSQL function (SELECT ... FOR UPDATE, then UPDATE).
\set k KEY
SELECT bench.seed_decrement_inventory(lpad(to_hex(:k::int), 32, '0')::uuid, 1);
