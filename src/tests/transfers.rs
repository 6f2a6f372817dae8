//! `#[pg_test]`s for transfers in transit: ship (transfer_inventory with
//! p_receive => false), receive_transfer, cancel_transfer, their errors,
//! in_transit in get_inventory, reconcile, update_location. Many
//! connections at once: transfers_in_transit.spec and pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

    fn location(code: &str) -> String {
        call(&format!("atomic_inventory.create_location('{code}')"))["location_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn level(item: &str, loc: &str) -> serde_json::Value {
        call(&format!(
            "atomic_inventory.get_inventory('{item}', '{loc}')"
        ))
    }

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    /// Ship `qty` of `item` from `from` to `to`: the transfer id.
    fn ship(item: &str, from: &str, to: &str, qty: &str) -> String {
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{item}', '{from}', '{to}', {qty}, p_receive => false)"
        ));
        assert_eq!(t["status"], "shipped");
        t["transfer_id"].as_str().unwrap().to_string()
    }

    fn status(id: &str) -> String {
        scalar(&format!(
            "SELECT status FROM atomic_inventory.transfers WHERE id = '{id}'"
        ))
    }

    #[pg_test]
    fn a_shipment_leaves_the_source_now_and_lands_when_received() {
        item(A, "0");
        let wh = location("WH");
        let store = location("S1");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 100, p_location_id => '{wh}')"
        ));
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{wh}', '{store}', 20, p_reference => 'truck-7', p_receive => false)"
        ));
        assert_eq!(t["status"], "shipped");
        assert_eq!(t["quantity"], 20);
        assert_eq!(t["from"]["old_quantity"], 100);
        assert_eq!(t["from"]["new_quantity"], 80);
        assert_eq!(t["to"]["location_id"], store.as_str());
        assert!(t["to"].get("new_quantity").is_none());
        let id = t["transfer_id"].as_str().unwrap().to_string();
        assert_eq!(status(&id), "shipped");
        // in transit: in no level's quantity, counted at the destination
        assert_eq!(level(A, &wh)["quantity"], 80);
        let s1 = level(A, &store);
        assert_eq!(s1["quantity"], 0);
        assert_eq!(s1["available"], 0);
        assert_eq!(s1["in_transit"], 20);
        let all = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(all["quantity"], 80);
        assert_eq!(all["available"], 80);
        assert_eq!(all["in_transit"], 20);
        // not sellable at the destination yet
        assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{store}')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(reconciled(), "0");
        let r = call(&format!(
            "atomic_inventory.receive_transfer('{id}', p_reference => 'gr-1')"
        ));
        assert_eq!(r["status"], "received");
        assert_eq!(r["to"]["old_quantity"], 0);
        assert_eq!(r["to"]["new_quantity"], 20);
        assert_eq!(status(&id), "received");
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.transfers WHERE id = '{id}' AND received_at IS NOT NULL"
            )),
            "1"
        );
        let s1 = level(A, &store);
        assert_eq!(s1["quantity"], 20);
        assert_eq!(s1["in_transit"], 0);
        // both ledger rows carry the transfer's id
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(location_id::text || ':' || delta || ':' || COALESCE(reference, ''), ',' ORDER BY id) \
                   FROM atomic_inventory.ledger WHERE transfer_id = '{id}' AND kind = 'transfer'"
            )),
            format!("{wh}:-20:truck-7,{store}:20:gr-1")
        );
        assert_eq!(reconciled(), "0");
        // a second receipt is refused, nothing moves
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.receive_transfer('{id}')"),
            "PT409",
            "TRANSFER_NOT_IN_TRANSIT",
        );
        assert_eq!(d["status"], "received");
        assert_eq!(d["transfer_id"], id.as_str());
        assert_err(
            &format!("SELECT atomic_inventory.cancel_transfer('{id}')"),
            "PT409",
            "TRANSFER_NOT_IN_TRANSIT",
        );
        assert_eq!(level(A, &store)["quantity"], 20);
    }

    #[pg_test]
    fn a_cancelled_shipment_returns_to_the_source() {
        item(A, "10");
        let store = location("S1");
        let id = ship(A, DEFAULT, &store, "4");
        assert_eq!(quantity(A), "6");
        let r = call(&format!(
            "atomic_inventory.cancel_transfer('{id}', p_reason => 'truck broke down')"
        ));
        assert_eq!(r["status"], "cancelled");
        assert_eq!(r["from"]["location_id"], DEFAULT);
        assert_eq!(r["from"]["old_quantity"], 6);
        assert_eq!(r["from"]["new_quantity"], 10);
        assert_eq!(quantity(A), "10");
        assert_eq!(status(&id), "cancelled");
        assert_eq!(level(A, &store)["in_transit"], 0);
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(COALESCE(location_id::text, 'default') || ':' || delta, ',' ORDER BY id) \
                   FROM atomic_inventory.ledger WHERE transfer_id = '{id}'"
            )),
            "default:-4,default:4"
        );
        assert_err(
            &format!("SELECT atomic_inventory.receive_transfer('{id}')"),
            "PT409",
            "TRANSFER_NOT_IN_TRANSIT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.cancel_transfer('{id}')"),
            "PT409",
            "TRANSFER_NOT_IN_TRANSIT",
        );
        assert_eq!(quantity(A), "10");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_shipment_to_the_default_location_of_a_striped_item_is_received_into_its_total() {
        item(A, "0");
        let wh = location("WH");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 30, p_location_id => '{wh}')"
        ));
        call(&format!("atomic_inventory.increment_inventory('{A}', 8)"));
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        let id = ship(A, &wh, DEFAULT, "12");
        assert_eq!(level(A, DEFAULT)["in_transit"], 12);
        let r = call(&format!("atomic_inventory.receive_transfer('{id}')"));
        assert_eq!(r["to"]["new_quantity"], 20);
        assert_eq!(level(A, DEFAULT)["quantity"], 20);
        // and back out of the striped row, in transit
        let back = ship(A, DEFAULT, &wh, "15");
        assert_eq!(level(A, DEFAULT)["quantity"], 5);
        call(&format!("atomic_inventory.receive_transfer('{back}')"));
        assert_eq!(level(A, &wh)["quantity"], 33);
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn receipts_and_shipments_answer_once_per_idempotency_key() {
        item(A, "10");
        let store = location("S1");
        let sql = format!(
            "atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 3, p_idempotency_key => 'ship-1', p_receive => false)"
        );
        let a = call(&sql);
        let b = call(&sql);
        assert_eq!(a, b);
        assert_eq!(quantity(A), "7");
        // the same key for a transfer received at once is another request
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 3, p_idempotency_key => 'ship-1')"
            ),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
        let id = a["transfer_id"].as_str().unwrap();
        let sql = format!(
            "atomic_inventory.receive_transfer('{id}', p_quantity => 3, p_idempotency_key => 'recv-1')"
        );
        let a = call(&sql);
        let b = call(&sql);
        assert_eq!(a, b);
        assert_eq!(level(A, &store)["quantity"], 3);
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn transfers_in_transit_refuse_bad_input() {
        item(A, "10");
        let store = location("S1");
        let id = ship(A, DEFAULT, &store, "4");
        for q in ["0", "-1", "'NaN'"] {
            assert_err(
                &format!("SELECT atomic_inventory.receive_transfer('{id}', {q})"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        // no partial receipt: the shipped quantity or none
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.receive_transfer('{id}', 3)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_quantity");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.receive_transfer(NULL)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_transfer_id");
        assert_err(
            "SELECT atomic_inventory.cancel_transfer(NULL)",
            "22023",
            "INVALID_INPUT",
        );
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.receive_transfer('{MISSING}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "transfer");
        assert_err(
            &format!("SELECT atomic_inventory.cancel_transfer('{MISSING}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            &format!("SELECT atomic_inventory.receive_transfer('{id}', p_lock_timeout_ms => 0)"),
            "22023",
            "INVALID_INPUT",
        );
        // shipping: as a transfer received at once
        assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{store}', '{store}', 1, p_receive => false)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 7, p_receive => false)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{MISSING}', 1, p_receive => false)"),
            "PT404",
            "NOT_FOUND",
        );
        let closed = location("closed");
        call(&format!(
            "atomic_inventory.update_location('{closed}', p_active => false)"
        ));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{closed}', 1, p_receive => false)"),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        assert_eq!(d["reason"], "inactive");
        assert_eq!(quantity(A), "6");
        assert_eq!(status(&id), "shipped");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_location_with_transfers_in_transit_cannot_be_deactivated() {
        item(A, "10");
        let store = location("S1");
        let id = ship(A, DEFAULT, &store, "4");
        // the destination: empty, but units are on their way
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.update_location('{store}', p_active => false)"),
            "PT409",
            "LOCATION_IN_USE",
        );
        assert_eq!(d["transfers_in_transit"], 1);
        call(&format!("atomic_inventory.receive_transfer('{id}')"));
        // the source: empty once it shipped everything
        let id = ship(A, &store, DEFAULT, "4");
        assert_eq!(level(A, &store)["quantity"], 0);
        assert_err(
            &format!("SELECT atomic_inventory.update_location('{store}', p_active => false)"),
            "PT409",
            "LOCATION_IN_USE",
        );
        call(&format!("atomic_inventory.cancel_transfer('{id}')"));
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 4)"
        ));
        let r = call(&format!(
            "atomic_inventory.update_location('{store}', p_active => false)"
        ));
        assert_eq!(r["active"], false);
    }

    #[pg_test]
    fn another_tenant_can_neither_receive_nor_cancel() {
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.items (id, sku, quantity, tenant_id) VALUES ('{A}', 'a', 10, 'shop-1')"
        ))
        .unwrap();
        let store = call("atomic_inventory.create_location('S1', p_tenant_id => 'shop-1')")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let id = ship(A, DEFAULT, &store, "4");
        Spi::run("SET atomic_inventory.tenant_id = 'shop-2'").unwrap();
        for f in ["receive_transfer", "cancel_transfer"] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.{f}('{id}')"),
                "PT404",
                "NOT_FOUND",
            );
            assert_eq!(d["entity"], "transfer");
        }
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let r = call(&format!("atomic_inventory.receive_transfer('{id}')"));
        assert_eq!(r["to"]["new_quantity"], 4);
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(status(&id), "received");
        assert_eq!(reconciled(), "0");
    }

    /// A receipt or cancellation finds its transfer by key, on a generic
    /// plan, however many finished transfers the table keeps.
    #[pg_test]
    fn transfer_plans_use_keys() {
        // a history of finished transfers, as a shop accumulates
        item(A, "0");
        let store = location("S1");
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.transfers (id, item_id, from_location_id, to_location_id, quantity, status) \
             SELECT gen_random_uuid(), '{A}', '{DEFAULT}', '{store}', 1, 'received' FROM generate_series(1, 5000)"
        ))
        .unwrap();
        Spi::run("ANALYZE atomic_inventory.transfers, atomic_inventory.locations").unwrap();
        // the plan kept for every later call, not one made for NULL ids
        Spi::run("SET LOCAL plan_cache_mode = force_generic_plan").unwrap();
        use crate::source::own::transfers as t;
        for stmt in [&t::LOCK, &t::FINISH] {
            let (plan, generic) = plan_of(stmt);
            let text = plan.join("\n");
            assert!(generic, "{}: not a generic plan:\n{text}", stmt.name);
            assert!(
                text.contains("transfers_pkey"),
                "{}: does not use the key:\n{text}",
                stmt.name
            );
        }
    }

    /// The default (p_receive => true) writes no transfer row: its cost is
    /// today's.
    #[pg_test]
    fn a_transfer_received_at_once_records_nothing_in_transit() {
        item(A, "10");
        let store = location("S1");
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 4)"
        ));
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 1, p_receive => NULL)"
        ));
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.transfers"),
            "0"
        );
        assert_eq!(level(A, &store)["quantity"], 5);
    }
}
