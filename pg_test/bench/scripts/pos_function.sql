-- Baseline: the POS sale's PL/pgSQL function (SELECT ... FOR UPDATE, then
-- UPDATE; setup.sql, docs/background.md).
\set k KEY
SELECT bench.pos_decrement_inventory(lpad(to_hex(:k::int), 32, '0')::uuid, 1);
