-- Ours: each client is a driver taking the next available batch (SKIP LOCKED).
SELECT atomic_inventory.claim_next_batch(p_driver_id => 'driver-' || :client_id, p_zone => 'bench');
