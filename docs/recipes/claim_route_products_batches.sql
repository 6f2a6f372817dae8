-- The delivery app: keep public.decrement_product_quantity and the claim route's
-- "one driver wins, the other gets 409 BATCH_UNAVAILABLE".
-- products.available_quantity already has its CHECK
-- (products_available_quantity_nonnegative), so binding adds none.
SELECT atomic_inventory.bind_stock_source('products', 'public.products', 'id', 'available_quantity');
SELECT atomic_inventory.bind_batch_source('batches', 'public.batches', 'id', 'status', 'driver_id',
                                          p_available_value => 'available', p_claimed_value => 'claimed');

CREATE OR REPLACE FUNCTION public.decrement_product_quantity(p_product_id integer, p_quantity integer)
RETURNS json
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT atomic_inventory.bound_decrement('products', p_product_id::text, p_quantity);
$$;

-- The claim route calls this with the driver's JWT: the driver is its sub.
-- A lost race raises SQLSTATE PT409, which PostgREST answers with HTTP 409
-- and a message starting with BATCH_UNAVAILABLE.
CREATE OR REPLACE FUNCTION public.claim_batch(p_batch_id uuid)
RETURNS json
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT atomic_inventory.bound_claim_batch('batches', p_batch_id::text);
$$;
