-- The POS sale: keep public.decrement_inventory(p_inventory_id uuid, p_quantity numeric)
-- returning {success, inventory_id, old_quantity, new_quantity, deducted},
-- now on atomic_inventory's locked, checked, ledgered path.
SELECT atomic_inventory.bind_stock_source('inventory', 'public.inventory', 'id', 'quantity');

CREATE OR REPLACE FUNCTION public.decrement_inventory(p_inventory_id uuid, p_quantity numeric)
RETURNS json
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.json_build_object(
               'success', true,
               'inventory_id', p_inventory_id,
               'old_quantity', (r->>'old_quantity')::numeric,
               'new_quantity', (r->>'new_quantity')::numeric,
               'deducted', (r->>'deducted')::numeric)
      FROM atomic_inventory.bound_decrement('inventory', p_inventory_id::text, p_quantity) AS r;
$$;
