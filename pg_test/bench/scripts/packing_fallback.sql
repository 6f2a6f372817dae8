-- Baseline: the packing RPC's fallback path (docs/background.md), four round
-- trips, each its own transaction: read the line, read the picked basket,
-- sum what the session packed of the product, then write the line's value
-- read plus one. Concurrent clicks on one line lose updates (counted as
-- nothing: successes are units packed in the table).
\set k random(1, 1000)
SELECT quantity_packed AS packed, quantity_needed AS needed FROM bench.packing_progress
 WHERE id = ('a' || lpad(to_hex(:k::int), 31, '0'))::uuid \gset
SELECT quantity_picked AS picked FROM bench.picking_session_items
 WHERE picking_session_id = ('b' || lpad(to_hex(:k::int), 31, '0'))::uuid
   AND product_id = ('d' || lpad(to_hex(:k::int), 31, '0'))::uuid \gset
SELECT coalesce(sum(quantity_packed), 0) AS total FROM bench.packing_progress
 WHERE picking_session_id = ('b' || lpad(to_hex(:k::int), 31, '0'))::uuid
   AND product_id = ('d' || lpad(to_hex(:k::int), 31, '0'))::uuid \gset
-- (the values read are cast: with -M prepared pgbench sends them as
-- untyped parameters, which would compare as text)
UPDATE bench.packing_progress SET quantity_packed = :packed::int + 1, updated_at = now()
 WHERE id = ('a' || lpad(to_hex(:k::int), 31, '0'))::uuid
   AND :packed::int < :needed::int AND :total::bigint < :picked::bigint;
