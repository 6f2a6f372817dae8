-- Floor: one client-sent statement, one round trip, no ledger.
\set k KEY
UPDATE bench.inventory SET quantity = quantity - 1
 WHERE id = lpad(to_hex(:k::int), 32, '0')::uuid AND quantity - reserved >= 1
RETURNING quantity;
