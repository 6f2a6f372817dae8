-- Baseline: the checkout reservation's per-item pattern (docs/background.md)
-- for a 5-line order: one client transaction, each line read with a row
-- lock and updated in its own statements, in the given order.
\set k1 KEY
\set k2 KEY
\set k3 KEY
\set k4 KEY
\set k5 KEY
BEGIN;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k1::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:k1::int), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k2::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:k2::int), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k3::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:k3::int), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k4::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:k4::int), 32, '0')::uuid AND quantity - reserved >= 1;
SELECT quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k5::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1 WHERE id = lpad(to_hex(:k5::int), 32, '0')::uuid AND quantity - reserved >= 1;
COMMIT;
