-- Baseline: the checkout reservation's fix (docs/background.md; Prisma,
-- reserve then commit): each step is a Serializable transaction that locks
-- the row (SELECT ... FOR UPDATE), checks in the app and updates.
-- The hold is only the `reserved` counter: no reservation record, no lines,
-- no expiry, no ledger (what reserve_inventory / commit_reservation add).
\set k KEY
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT id, quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET reserved = reserved + 1
 WHERE id = lpad(to_hex(:k::int), 32, '0')::uuid AND quantity - reserved >= 1;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT id, quantity, reserved FROM bench.inventory WHERE id = lpad(to_hex(:k::int), 32, '0')::uuid FOR UPDATE;
UPDATE bench.inventory SET quantity = quantity - 1, reserved = reserved - 1
 WHERE id = lpad(to_hex(:k::int), 32, '0')::uuid AND reserved >= 1;
COMMIT;
