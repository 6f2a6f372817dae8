//! `#[pg_test]`s for backorders: sales and holds past the stock on hand
//! within an item's limit, refusals past it, restocks filling backorders,
//! the CHECK that keeps them within the limit, set_backorder_limit's
//! refusals. Many connections at once: the isolation spec backorders.spec.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    fn limit(id: &str, n: &str) -> serde_json::Value {
        call(&format!(
            "atomic_inventory.set_backorder_limit('{id}', {n})"
        ))
    }

    #[pg_test]
    fn a_sale_may_go_past_the_stock_on_hand_up_to_the_limit() {
        item(A, "3");
        assert_eq!(limit(A, "5")["backorder_limit"], 5);
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 6)"));
        assert_eq!(r["new_quantity"], -3);
        assert_eq!(r["backordered"], 3);
        // 2 more reach the limit; one more is refused
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        assert_eq!(r["backordered"], 2);
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "-5");
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(g["backordered"], 5);
        assert_eq!(g["available"], -5);
        // a restock fills the backorders first
        call(&format!("atomic_inventory.increment_inventory('{A}', 7)"));
        assert_eq!(quantity(A), "2");
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert!(r.get("backordered").is_none(), "{r}");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn an_item_without_a_limit_answers_as_before() {
        item(A, "3");
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert!(r.get("backordered").is_none());
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        // and the ledger-off sale takes the same rule
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        limit(A, "1");
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert_eq!(r["backordered"], 1);
        assert_eq!(quantity(A), "-1");
    }

    #[pg_test]
    fn orders_and_holds_backorder_within_the_limit() {
        item(A, "2");
        item(B, "5");
        limit(A, "4");
        let r = call(&format!(
            "atomic_inventory.decrement_inventory_many('[{{\"inventory_id\": \"{A}\", \"quantity\": 3}}, \
              {{\"inventory_id\": \"{B}\", \"quantity\": 1}}]')"
        ));
        assert_eq!(r["success"], true);
        assert_eq!(quantity(A), "-1");
        // a hold of 3 more reaches the limit (reserved 3, quantity -1: 4 backordered)
        let h = call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\": \"{A}\", \"quantity\": 3}}]')"
        ));
        assert_err(
            &format!(
                "SELECT atomic_inventory.reserve_inventory('[{{\"inventory_id\": \"{A}\", \"quantity\": 1}}]')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let id = h["reservation_id"].as_str().unwrap();
        call(&format!("atomic_inventory.commit_reservation('{id}')"));
        assert_eq!(quantity(A), "-4");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn the_limit_cannot_drop_below_what_is_backordered() {
        item(A, "0");
        limit(A, "5");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 4)"));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.set_backorder_limit('{A}', 3)"),
            "PT409",
            "BACKORDERS_EXCEED_LIMIT",
        );
        assert_eq!(d["backordered"], 4);
        assert_eq!(limit(A, "4")["backordered"], 4);
        // the CHECK keeps direct writes within it too
        let (s, msg, _) = err(&format!(
            "UPDATE atomic_inventory.items SET quantity = -5 WHERE id = '{A}'"
        ));
        assert_eq!(s, "23514", "{msg}");
        let (s, _, _) = err(&format!(
            "UPDATE atomic_inventory.items SET backorder_limit = 3 WHERE id = '{A}'"
        ));
        assert_eq!(s, "23514");
    }

    #[pg_test]
    fn a_transfer_moves_stock_on_hand_only() {
        item(A, "2");
        limit(A, "5");
        let store = call("atomic_inventory.create_location('store-1')")["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 3)"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 2)"
        ));
        // backordered at the default location, then stock comes back from the store
        call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(quantity(A), "-3");
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 1)"
        ));
        assert_eq!(quantity(A), "-2");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn set_backorder_limit_refuses_bad_input() {
        item(A, "1");
        for bad in ["-1", "'NaN'", "NULL", "1e13"] {
            assert_err(
                &format!("SELECT atomic_inventory.set_backorder_limit('{A}', {bad})"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_err(
            &format!("SELECT atomic_inventory.set_backorder_limit('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        assert_err(
            &format!("SELECT atomic_inventory.set_backorder_limit('{A}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
        call(&format!("atomic_inventory.stripe_item('{A}', 0)"));
        limit(A, "1");
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{A}', 4)"),
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn an_order_answers_the_backordered_units_per_line() {
        item(A, "3");
        item(B, "5");
        limit(A, "4");
        for ledger in ["on", "off"] {
            Spi::run(&format!("SET LOCAL atomic_inventory.ledger = {ledger}")).unwrap();
            let r = call(&format!(
                r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":1}}]')"#
            ));
            let lines = r["lines"].as_array().unwrap();
            assert_eq!(lines[1]["inventory_id"], B);
            // B is within its stock: no key, as the single sale answers
            assert!(
                lines[1].get("backordered").is_none(),
                "ledger {ledger}: {r}"
            );
            if ledger == "on" {
                // A: 3 on hand, 2 sold, none past it
                assert!(lines[0].get("backordered").is_none(), "{r}");
            } else {
                // A: 1 on hand, 2 sold, 1 past it
                assert_eq!(lines[0]["backordered"], 1, "{r}");
            }
        }
        // units set aside in a state count as held: past them is backordered
        Spi::run("SET LOCAL atomic_inventory.ledger = on").unwrap();
        call(&format!("atomic_inventory.increment_inventory('{A}', 3)"));
        call(&format!(
            "atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 2)"
        ));
        let r = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":3}}]')"#
        ));
        assert_eq!(r["lines"][0]["backordered"], 3, "{r}");
        assert_eq!(quantity(A), "-1");
    }
}
