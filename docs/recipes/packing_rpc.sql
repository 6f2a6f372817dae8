-- The packing RPC: keep public.increment_packing_quantity(p_progress_id, p_quantity_needed,
-- p_picked_quantity, p_session_id, p_product_id) returning the packed line (a table, which
-- Supabase answers as an array), now on atomic_inventory's locked, checked path over the
-- warehouse's own tables. The client's p_quantity_needed and p_picked_quantity are not
-- trusted: the tables decide.
SELECT atomic_inventory.bind_packing_source('warehouse', 'public.picking_sessions',
    'public.packing_progress', 'public.orders', 'public.picking_session_items');

CREATE OR REPLACE FUNCTION public.increment_packing_quantity(
    p_progress_id uuid, p_quantity_needed integer, p_picked_quantity integer,
    p_session_id uuid, p_product_id uuid)
RETURNS TABLE (id uuid, quantity_packed integer, quantity_needed integer, remaining integer)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (r->>'id')::uuid, (r->>'quantity_packed')::integer,
           (r->>'quantity_needed')::integer, (r->>'remaining')::integer
      FROM atomic_inventory.bound_increment_packing_quantity('warehouse', p_progress_id::text,
               p_session_id::text, p_product_id::text) AS r;
$$;
