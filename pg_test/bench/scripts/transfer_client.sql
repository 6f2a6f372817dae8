-- Baseline: a client's transfer of one unit over a plain table of levels
-- (bench.levels): one transaction, each of the two levels read with a row
-- lock in the order the request names them (source first), then the two
-- UPDATEs. Transfers of one item in opposite directions lock in opposite
-- orders and can deadlock (pgbench retries them, --max-tries). Successes:
-- the source row's transfers counter.
\set k KEY
\set i 1 + (:k - 1) % 10000
\set src random(1, 2)
\set dst 3 - :src
BEGIN;
SELECT quantity FROM bench.levels WHERE item_id = ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid
   AND location_id = ('7' || lpad(to_hex(:src::int), 31, '0'))::uuid FOR UPDATE;
SELECT quantity FROM bench.levels WHERE item_id = ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid
   AND location_id = ('7' || lpad(to_hex(:dst::int), 31, '0'))::uuid FOR UPDATE;
UPDATE bench.levels SET quantity = quantity - 1, transfers = transfers + 1
 WHERE item_id = ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid
   AND location_id = ('7' || lpad(to_hex(:src::int), 31, '0'))::uuid AND quantity >= 1;
UPDATE bench.levels SET quantity = quantity + 1
 WHERE item_id = ('8' || lpad(to_hex(:i::int), 31, '0'))::uuid
   AND location_id = ('7' || lpad(to_hex(:dst::int), 31, '0'))::uuid;
COMMIT;
