-- Baseline: a client selling a kit's three components itself (bench items
-- k, k + 10000, k + 20000 of bench.inventory, in that order): one
-- transaction, each row read with a row lock, then updated.
\set k KEY
\set i 1 + (:k - 1) % 10000
BEGIN;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:i::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:i::int), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:i::int + 10000), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:i::int + 10000), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:i::int + 20000), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:i::int + 20000), 32, '0')::uuid AND quantity - reserved >= 1;
COMMIT;
