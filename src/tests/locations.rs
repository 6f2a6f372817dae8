//! `#[pg_test]`s for locations: stock levels at a location, sales and
//! restocks there, transfers, the errors of each, get_inventory and
//! reconcile per level. Many connections at once: the isolation specs
//! transfers.spec and pg_test/stress.py.

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

    #[pg_test]
    fn restock_sell_and_adjust_at_a_location_leave_the_default_stock_alone() {
        item(A, "10");
        let store = location("store-1");
        let r = call(&format!(
            "atomic_inventory.increment_inventory('{A}', 5, p_location_id => '{store}')"
        ));
        assert_eq!(r["location_id"], store.as_str());
        assert_eq!(r["old_quantity"], 0);
        assert_eq!(r["new_quantity"], 5);
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 2, p_location_id => '{store}')"
        ));
        assert_eq!(r["deducted"], 2);
        assert_eq!(r["new_quantity"], 3);
        let r = call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 7, p_expected_quantity => 3, p_location_id => '{store}')"
        ));
        assert_eq!(r["delta"], 4);
        assert_eq!(quantity(A), "10");
        assert_eq!(level(A, &store)["quantity"], 7);
        let all = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(all["quantity"], 17);
        assert_eq!(all["available"], 17);
        assert_eq!(all["levels"][0]["location_id"], DEFAULT);
        assert_eq!(all["levels"][0]["quantity"], 10);
        assert_eq!(all["levels"][1]["location_id"], store.as_str());
        assert_eq!(all["levels"][1]["quantity"], 7);
        // the ledger names the location of each movement
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ':' || delta, ',' ORDER BY id) FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND location_id = '{store}'"
            )),
            "increment:5,decrement:-2,adjust:4"
        );
        assert_eq!(reconciled(), "0");
        // a call naming no location answers as before, without one
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert!(r.get("location_id").is_none());
        assert_eq!(r["new_quantity"], 9);
    }

    #[pg_test]
    fn a_sale_where_the_item_has_no_stock_level_is_refused_by_name() {
        item(A, "10");
        let store = location("store-1");
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{store}')"
            ),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_eq!(d["location_id"], store.as_str());
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{MISSING}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{MISSING}', 1, p_location_id => '{store}')"
            ),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "inventory item");
        assert_err(
            &format!("SELECT atomic_inventory.get_inventory('{A}', '{store}')"),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn inactive_and_unsellable_locations_refuse_what_they_must() {
        item(A, "10");
        let returns = call("atomic_inventory.create_location('returns', p_sellable => false)")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 4, p_location_id => '{returns}')"
        ));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{returns}')"),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        assert_eq!(d["reason"], "not sellable");
        // its stock still moves out
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{returns}', '{DEFAULT}', 4)"
        ));
        assert_eq!(quantity(A), "14");
        call(&format!(
            "atomic_inventory.update_location('{returns}', p_active => false)"
        ));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.increment_inventory('{A}', 1, p_location_id => '{returns}')"),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        assert_eq!(d["reason"], "inactive");
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{returns}', 1)"
            ),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        // a location holding stock can't be deactivated; the default one never
        let store = location("store-1");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 1, p_location_id => '{store}')"
        ));
        assert_err(
            &format!("SELECT atomic_inventory.update_location('{store}', p_active => false)"),
            "PT409",
            "LOCATION_IN_USE",
        );
        assert_err(
            &format!("SELECT atomic_inventory.update_location('{DEFAULT}', p_active => false)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_transfer_moves_units_all_or_nothing_with_two_ledger_rows() {
        item(A, "10");
        let store = location("store-1");
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 6, p_reference => 'rq-1')"
        ));
        assert_eq!(t["from"]["old_quantity"], 10);
        assert_eq!(t["from"]["new_quantity"], 4);
        assert_eq!(t["to"]["old_quantity"], 0);
        assert_eq!(t["to"]["new_quantity"], 6);
        let id = t["transfer_id"].as_str().unwrap().to_string();
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(COALESCE(location_id::text, 'default') || ':' || delta, ',' ORDER BY delta) \
                   FROM atomic_inventory.ledger WHERE transfer_id = '{id}' AND kind = 'transfer' AND reference = 'rq-1'"
            )),
            format!("default:-6,{store}:6")
        );
        // short: refused, nothing moved
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 7)"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "6");
        // reserved units don't move
        call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\":\"{A}\",\"quantity\":3}}]')"
        ));
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', 2)"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(quantity(A), "4");
        assert_eq!(level(A, &store)["quantity"], 6);
        // a retry with its key moves nothing more
        let k1 = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 1, p_idempotency_key => 'tr-1')"
        ));
        let k2 = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 1, p_idempotency_key => 'tr-1')"
        ));
        assert_eq!(k1, k2);
        assert_eq!(level(A, &store)["quantity"], 5);
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn transfers_refuse_bad_input() {
        item(A, "10");
        let store = location("store-1");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{store}', '{store}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_to_location_id");
        for q in ["0", "-1", "'NaN'", "NULL"] {
            assert_err(
                &format!(
                    "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{store}', {q})"
                ),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', NULL, '{store}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{store}', '{DEFAULT}', 1)"
            ),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{MISSING}', 1)"
            ),
            "PT404",
            "NOT_FOUND",
        );
        // another tenant's location is not found
        let other = call("atomic_inventory.create_location('theirs', p_tenant_id => 'shop-2')")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{DEFAULT}', '{other}', 1)"
            ),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn create_location_is_retry_safe_and_codes_are_unique_per_tenant() {
        let id = "00000000-0000-0000-0000-0000000c0001";
        let a = call(&format!(
            "atomic_inventory.create_location('wh-1', 'Warehouse', p_id => '{id}')"
        ));
        let b = call(&format!(
            "atomic_inventory.create_location('wh-1', 'Warehouse', p_id => '{id}')"
        ));
        assert_eq!(a, b);
        assert_err(
            "SELECT atomic_inventory.create_location('wh-1')",
            "PT409",
            "LOCATION_EXISTS",
        );
        call("atomic_inventory.create_location('wh-1', p_tenant_id => 'shop-2')");
        for bad in ["NULL", "''", "repeat('x', 256)"] {
            assert_err(
                &format!("SELECT atomic_inventory.create_location({bad})"),
                "22023",
                "INVALID_INPUT",
            );
        }
    }

    #[pg_test]
    fn a_level_crossing_zero_writes_its_event_with_the_location() {
        item(A, "0");
        let store = location("store-1");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 2, p_location_id => '{store}')"
        ));
        call(&format!(
            "atomic_inventory.set_reorder_point('{A}', 1, p_location_id => '{store}')"
        ));
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 2, p_location_id => '{store}')"
        ));
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ':' || location_id || ':' || (ledger_id IS NOT NULL), ',' ORDER BY id) \
                   FROM atomic_inventory.events WHERE inventory_id = '{A}'"
            )),
            // the first restock there brought it into stock
            format!(
                "back_in_stock:{store}:true,low_stock:{store}:true,out_of_stock:{store}:true"
            )
        );
        assert_eq!(
            scalar(
                "SELECT string_agg(location_id::text, ',') FROM atomic_inventory.low_stock_items()"
            ),
            store
        );
    }

    fn order(lines: &str) -> Vec<String> {
        let r = call(&format!(
            "atomic_inventory.decrement_inventory_many('{lines}')"
        ));
        r["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let loc = l["location_id"].as_str().unwrap();
                let at = if loc == DEFAULT {
                    "default".to_string()
                } else {
                    loc.to_string()
                };
                format!(
                    "{}@{}:{}",
                    &l["inventory_id"].as_str().unwrap()[34..],
                    at,
                    l["deducted"]
                )
            })
            .collect()
    }

    #[pg_test]
    fn orders_take_the_default_location_first_then_by_priority() {
        item(A, "2");
        let store = location("store-1");
        let wh = call("atomic_inventory.create_location('wh-1', p_priority => 10)")["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        let returns = call("atomic_inventory.create_location('returns', p_sellable => false)")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        for (loc, q) in [(&store, 5), (&wh, 4), (&returns, 50)] {
            call(&format!(
                "atomic_inventory.increment_inventory('{A}', {q}, p_location_id => '{loc}')"
            ));
        }
        // the default location covers it
        assert_eq!(
            order(&format!(r#"[{{"inventory_id":"{A}","quantity":1}}]"#)),
            vec!["0a@default:1"]
        );
        // it doesn't (1 left): one location that covers it, by priority
        assert_eq!(
            order(&format!(r#"[{{"inventory_id":"{A}","quantity":3}}]"#)),
            vec![format!("0a@{wh}:3")]
        );
        // none covers 6 (default 1, wh 1, store 5): the default's, then by priority
        let mut got = order(&format!(r#"[{{"inventory_id":"{A}","quantity":6}}]"#));
        let mut want = vec![
            "0a@default:1".to_string(),
            format!("0a@{wh}:1"),
            format!("0a@{store}:4"),
        ];
        // (answered in lock order: by location id)
        got.sort();
        want.sort();
        assert_eq!(got, want);
        // the returns area's 50 units are not for sale
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":2}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "1");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn an_order_naming_locations_takes_there_all_or_nothing() {
        item(A, "5");
        item(B, "5");
        let store = location("store-1");
        call(&format!(
            "atomic_inventory.increment_inventory('{B}', 3, p_location_id => '{store}')"
        ));
        assert_eq!(
            order(&format!(
                r#"[{{"inventory_id":"{B}","quantity":2,"location_id":"{store}"}},{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":1}}]"#
            )),
            vec![
                "0a@default:1".to_string(),
                "0b@default:1".to_string(),
                format!("0b@{store}:2")
            ]
        );
        // one short line: nothing taken
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":2,"location_id":"{store}"}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(quantity(A), "4");
        // a location where the item has no stock: said so
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]')"#
            ),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1,"location_id":"nope"}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
        );
        // a hold where the item has no level is refused, not taken at the
        // default location (holds at locations: tests/level_holds.rs)
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]')"#
            ),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_eq!(quantity(A), "4");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn another_tenants_level_of_a_shared_item_stays_out_of_sight() {
        item(A, "1");
        let theirs = call("atomic_inventory.create_location('b-1', p_tenant_id => 'shop-b')")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 7, p_location_id => '{theirs}')"
        ));
        call(&format!(
            "atomic_inventory.set_reorder_point('{A}', 9, p_location_id => '{theirs}')"
        ));
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-a'").unwrap();
        let all = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(all["quantity"], 1);
        assert_eq!(all["levels"].as_array().unwrap().len(), 1);
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.get_inventory('{A}', '{theirs}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        assert_err(
            &format!("SELECT atomic_inventory.set_reorder_point('{A}', 1, '{theirs}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.low_stock_items()"),
            "0"
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.low_stock_items()"),
            "1"
        );
    }

    /// A transfer between two levels is one statement: its guard checked
    /// once before a row is read, and the two rows locked in the order of
    /// its line array (ascending location ids), never by a scan of levels,
    /// on its generic plan.
    #[pg_test]
    fn transfer_between_levels_locks_in_location_order() {
        // the settings move_between plans it with (plans::generic_by_index)
        Spi::run(
            "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; \
             SET LOCAL enable_bitmapscan = off",
        )
        .unwrap();
        let (plan, generic) = plan_of(&crate::source::own::levels::MOVE_BETWEEN);
        assert!(generic, "plan: {plan:#?}");
        // under the guard's Result: a nested loop whose outer (first) child
        // is the line array and whose inner is the index lookup per line
        let nodes: Vec<&String> = plan.iter().filter(|l| l.contains("->")).collect();
        let result = nodes.iter().position(|l| l.contains("->  Result"));
        let under: Vec<&&String> = result
            .map(|i| nodes[i + 1..].iter().take(3).collect())
            .unwrap_or_default();
        assert!(
            // (the InitPlan's output: `$0` up to PostgreSQL 17, `(InitPlan 1).col1` on 18)
            plan.iter().any(|l| l.contains("One-Time Filter: (") && l.contains(" = 2)"))
                && under.len() == 3
                && under[0].contains("Nested Loop")
                && under[1].contains("Values Scan")
                // (the key's index, or on a table this small the location's)
                && under[2].contains("Index Scan using stock_levels_")
                && under[2].contains("on stock_levels l")
                && !plan
                    .iter()
                    .any(|l| l.contains("Seq Scan on stock_levels") || l.contains("Bitmap")),
            "plan: {plan:#?}"
        );
    }
}
