-- Floor for a packing click on the warehouse's own tables: the line packed
-- if it and the session's basket of its product allow it, and the
-- session's last activity, in one statement sent raw by the client (no
-- function call, no row locks before the write, no order or status checks):
-- a lower bound on what any call packing the click costs
-- (docs/benchmarks.md, "Floors").
\set k random(1, 1000)
WITH s AS (
  UPDATE bench.picking_sessions SET last_activity_at = now()
   WHERE id = ('b' || lpad(to_hex(:k::int), 31, '0'))::uuid
)
UPDATE bench.packing_progress AS p SET quantity_packed = p.quantity_packed + 1, updated_at = now()
 WHERE p.id = ('a' || lpad(to_hex(:k::int), 31, '0'))::uuid
   AND p.picking_session_id = ('b' || lpad(to_hex(:k::int), 31, '0'))::uuid
   AND p.quantity_packed < p.quantity_needed
   AND (SELECT coalesce(sum(x.quantity_packed), 0) FROM bench.packing_progress AS x
         WHERE x.picking_session_id = p.picking_session_id AND x.product_id = p.product_id)
     < (SELECT coalesce(sum(k.quantity_picked), 0) FROM bench.picking_session_items AS k
         WHERE k.picking_session_id = p.picking_session_id AND k.product_id = p.product_id);
