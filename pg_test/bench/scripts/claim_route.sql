-- Baseline: the delivery-batch claim route's fix (docs/background.md): the
-- driver's app reads an available batch (here the next one in the order
-- claim_next_batch uses), then claims it with one atomic UPDATE ... WHERE
-- status = 'available'; a driver who loses the race changes nothing (the
-- route answers BATCH_UNAVAILABLE, 409) and must pick again. Each statement
-- is its own transaction, as from the edge function. Same table and batches
-- as claim_next.
SELECT id AS bid FROM atomic_inventory.batches
 WHERE zone = 'bench' AND status = 'available'
 ORDER BY priority DESC, created_at, id LIMIT 1 \gset
UPDATE atomic_inventory.batches
   SET status = 'claimed', claimed_by = 'driver-' || :client_id, claimed_at = now(), updated_at = now()
 WHERE id = :bid::uuid AND status = 'available'
RETURNING id;
