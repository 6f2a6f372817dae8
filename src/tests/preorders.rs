//! `#[pg_test]`s for preorders: sales and holds past the stock on hand up
//! to the cap while the preorder runs (answered as preordered), refusals
//! past the cap, no room past the stock from the release date on while
//! units already preordered stay owed, restocks after the release, one
//! policy per item, set_preorder's refusals. Many connections at once: the
//! isolation spec preorders.spec.
//!
//! A test runs in one transaction, so now() stands still: a release date
//! reached is written directly (preorder_until in the past), as the clock
//! would leave it.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const NEXT_WEEK: &str = "now() + interval '7 days'";

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    fn preorder(id: &str, cap: &str) -> serde_json::Value {
        call(&format!(
            "atomic_inventory.set_preorder('{id}', {cap}, {NEXT_WEEK})"
        ))
    }

    /// The release date reached: what the clock does to a running preorder.
    fn released(id: &str) {
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET preorder_until = now() - interval '1 second' WHERE id = '{id}'"
        ))
        .unwrap();
    }

    fn sell(id: &str, n: &str) -> serde_json::Value {
        call(&format!(
            "atomic_inventory.decrement_inventory('{id}', {n})"
        ))
    }

    fn refused(id: &str, n: &str) -> serde_json::Value {
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{id}', {n})"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        )
        .1
    }

    #[pg_test]
    fn a_preorder_sells_past_the_stock_up_to_the_cap() {
        item(A, "2");
        let p = preorder(A, "5");
        assert_eq!(p["preorder_limit"], 5);
        assert!(p["preorder_until"].is_string(), "{p}");
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        // a running preorder's cap is for sale too
        assert_eq!(g["available"], 7, "{g}");
        assert!(g["preorder_until"].is_string(), "{g}");
        for ledger in ["on", "off"] {
            Spi::run(&format!("SET LOCAL atomic_inventory.ledger = {ledger}")).unwrap();
            let r = sell(A, "3");
            assert!(r.get("backordered").is_none(), "ledger {ledger}: {r}");
            if ledger == "on" {
                assert_eq!(r["preordered"], 1, "{r}");
                assert_eq!(r["new_quantity"], -1);
            } else {
                assert_eq!(r["preordered"], 3, "{r}");
                assert_eq!(r["new_quantity"], -4);
            }
        }
        // 1 more reaches the cap; past it is refused
        assert_eq!(sell(A, "1")["preordered"], 1);
        let d = refused(A, "1");
        assert_eq!(d["lines"][0]["available"], "-5");
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(g["available"], 0, "{g}");
        assert_eq!(g["backordered"], 5, "{g}");
        // (no reconcile: the ledger-off sale wrote no ledger row)
    }

    #[pg_test]
    fn from_the_release_date_on_only_the_stock_on_hand_sells() {
        item(A, "1");
        preorder(A, "4");
        assert_eq!(sell(A, "3")["preordered"], 2);
        released(A);
        // owed units stay owed, nothing more past the stock, in any statement
        assert_eq!(quantity(A), "-2");
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(g["available"], -2, "{g}");
        assert_eq!(g["backordered"], 2, "{g}");
        let d = refused(A, "1");
        assert_eq!(d["lines"][0]["available"], "-2");
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        refused(A, "1");
        Spi::run("SET LOCAL atomic_inventory.ledger = on").unwrap();
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        // the restock fills the owed units first; then sales within stock
        call(&format!("atomic_inventory.increment_inventory('{A}', 5)"));
        assert_eq!(quantity(A), "3");
        let r = sell(A, "3");
        assert!(r.get("preordered").is_none(), "{r}");
        assert!(r.get("backordered").is_none(), "{r}");
        refused(A, "1");
        // nothing owed now: ending it clears the policy
        let p = call(&format!("atomic_inventory.set_preorder('{A}', 0)"));
        assert_eq!(p["preorder_limit"], 0, "{p}");
        assert!(p["preorder_until"].is_null(), "{p}");
        assert_eq!(
            scalar(&format!(
                "SELECT backorder_limit::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "0"
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn ending_a_preorder_early_keeps_the_owed_units() {
        item(A, "0");
        preorder(A, "3");
        sell(A, "2");
        let p = call(&format!("atomic_inventory.set_preorder('{A}', NULL)"));
        assert_eq!(p["preordered"], 2, "{p}");
        // the cap stays as the CHECK's bound of what is owed
        assert_eq!(p["preorder_limit"], 3, "{p}");
        refused(A, "1");
        // and a new preorder needs a new release date
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 3)"),
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn an_order_and_a_hold_answer_preordered_units() {
        item(A, "1");
        item(B, "5");
        preorder(A, "4");
        for ledger in ["on", "off"] {
            Spi::run(&format!("SET LOCAL atomic_inventory.ledger = {ledger}")).unwrap();
            let r = call(&format!(
                r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":1}}]')"#
            ));
            let lines = r["lines"].as_array().unwrap();
            assert_eq!(lines[0]["inventory_id"], A);
            assert!(lines[0].get("backordered").is_none(), "{r}");
            assert!(lines[1].get("preordered").is_none(), "{r}");
            let want = if ledger == "on" { 1 } else { 2 };
            assert_eq!(lines[0]["preordered"], want, "ledger {ledger}: {r}");
        }
        assert_eq!(quantity(A), "-3");
        // a hold takes the cap's last unit, then none
        let h = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}}]')"#
        ));
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let id = h["reservation_id"].as_str().unwrap();
        call(&format!("atomic_inventory.commit_reservation('{id}')"));
        assert_eq!(quantity(A), "-4");
    }

    #[pg_test]
    fn a_kit_of_a_preordered_component_preorders_it() {
        item(A, "0");
        item(B, "10");
        const KIT: &str = "00000000-0000-0000-0000-0000000000c1";
        item(KIT, "0");
        call(&format!(
            r#"atomic_inventory.define_kit('{KIT}', '[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":2}}]')"#
        ));
        preorder(A, "2");
        sell(KIT, "2");
        assert_eq!(quantity(A), "-2");
        refused(KIT, "1");
        released(A);
        call(&format!("atomic_inventory.increment_inventory('{A}', 3)"));
        sell(KIT, "1");
        refused(KIT, "1");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn preorders_and_backorders_one_policy_at_a_time() {
        item(A, "0");
        call(&format!("atomic_inventory.set_backorder_limit('{A}', 2)"));
        assert_eq!(sell(A, "1")["backordered"], 1);
        // a preorder replaces the backorder limit (the owed unit counts)
        preorder(A, "3");
        assert_eq!(sell(A, "2")["preordered"], 2);
        refused(A, "1");
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 2, {NEXT_WEEK})"),
            "PT409",
            "BACKORDERS_EXCEED_LIMIT",
        );
        // a backorder limit replaces the preorder
        let r = call(&format!("atomic_inventory.set_backorder_limit('{A}', 4)"));
        assert_eq!(r["backordered"], 3);
        assert_eq!(
            scalar(&format!(
                "SELECT coalesce(preorder_until::text, 'none') FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "none"
        );
        assert_eq!(sell(A, "1")["backordered"], 1);
        // a new cap alone keeps a running preorder's date
        preorder(A, "6");
        let p = call(&format!("atomic_inventory.set_preorder('{A}', 8)"));
        assert_eq!(p["preorder_limit"], 8, "{p}");
        assert!(p["preorder_until"].is_string(), "{p}");
    }

    #[pg_test]
    fn set_preorder_refuses_bad_input() {
        item(A, "1");
        for bad in ["-1", "'NaN'", "'Infinity'", "1e13"] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.set_preorder('{A}', {bad}, {NEXT_WEEK})"),
                "22023",
                "INVALID_QUANTITY",
            );
            assert_eq!(d["field"], "p_limit");
        }
        for when in [
            "now() - interval '1 day'",
            "now()",
            "'infinity'",
            "'-infinity'",
        ] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.set_preorder('{A}', 1, {when})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], "p_release_at", "{when}");
        }
        // no release date and no running preorder
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_release_at");
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder(NULL, 1, {NEXT_WEEK})"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{MISSING}', 1, {NEXT_WEEK})"),
            "PT404",
            "NOT_FOUND",
        );
        // striped, untracked and kit items take no preorders
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 1, {NEXT_WEEK})"),
            "22023",
            "INVALID_INPUT",
        );
        call(&format!("atomic_inventory.stripe_item('{A}', 0)"));
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{A}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 1, {NEXT_WEEK})"),
            "22023",
            "INVALID_INPUT",
        );
        item(B, "1");
        const KIT: &str = "00000000-0000-0000-0000-0000000000c1";
        item(KIT, "0");
        call(&format!(
            r#"atomic_inventory.define_kit('{KIT}', '[{{"inventory_id":"{B}","quantity":1}}]')"#
        ));
        let (msg, _) = assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{KIT}', 1, {NEXT_WEEK})"),
            "22023",
            "INVALID_INPUT",
        );
        assert!(msg.contains("kit"), "{msg}");
        // an item on preorder is not striped
        preorder(B, "1");
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{B}', 4)"),
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn another_tenants_item_takes_no_preorder() {
        item(A, "1");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'store-a' WHERE id = '{A}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'store-b'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.set_preorder('{A}', 1, {NEXT_WEEK})"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("SET atomic_inventory.tenant_id = 'store-a'").unwrap();
        assert_eq!(preorder(A, "1")["preorder_limit"], 1);
        assert_eq!(sell(A, "2")["preordered"], 1);
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn the_items_check_does_not_read_the_clock() {
        item(A, "0");
        preorder(A, "2");
        sell(A, "2");
        released(A);
        // a released row with owed units is still valid; past the cap is not
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET name = 'released' WHERE id = '{A}'"
        ))
        .unwrap();
        let (s, msg, _) = err(&format!(
            "UPDATE atomic_inventory.items SET quantity = -3 WHERE id = '{A}'"
        ));
        assert_eq!(s, "23514", "{msg}");
    }
}
