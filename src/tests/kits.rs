//! `#[pg_test]`s for kits: define_kit and its refusals, selling and
//! reserving a kit (alone, beside loose components, at a location), the
//! kit's own row holding no stock, get_inventory of a kit. Many connections
//! at once: the isolation spec kits.spec and pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const KIT: &str = "00000000-0000-0000-0000-0000000000c1";
    const C: &str = "00000000-0000-0000-0000-00000000000c";

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    /// A kit KIT of 2 x A and 1 x B (A: 10 units, B: 4).
    fn kit() {
        item(A, "10");
        item(B, "4");
        item(KIT, "0");
        let r = call(&format!(
            "atomic_inventory.define_kit('{KIT}', '[{{\"inventory_id\": \"{A}\", \"quantity\": 2}}, \
              {{\"inventory_id\": \"{B}\", \"quantity\": 1}}]')"
        ));
        assert_eq!(r["success"], true);
        assert_eq!(r["components"].as_array().unwrap().len(), 2);
    }

    #[pg_test]
    fn selling_a_kit_takes_its_components_and_writes_their_ledger_rows() {
        kit();
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{KIT}', 3, p_reference => 'order-1')"
        ));
        assert_eq!(r["kit"], true);
        assert_eq!(r["deducted"], 3);
        assert_eq!(r["lines"].as_array().unwrap().len(), 2);
        assert_eq!(quantity(A), "4");
        assert_eq!(quantity(B), "1");
        assert_eq!(quantity(KIT), "0");
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(delta::text || '@' || reference, ',' ORDER BY inventory_id) \
                   FROM atomic_inventory.ledger WHERE inventory_id IN ('{A}', '{B}') AND kind = 'decrement'"
            )),
            "-6@order-1,-3@order-1"
        );
        assert_eq!(reconciled(), "0");
        // the kit's availability: min(4 / 2, 1 / 1) = 1
        let g = call(&format!("atomic_inventory.get_inventory('{KIT}')"));
        assert_eq!(g["kit"], true);
        assert_eq!(g["available"], 1);
        assert_eq!(g["components"][0]["available"], 4);
    }

    #[pg_test]
    fn a_kit_sale_is_all_or_nothing_and_names_the_short_component() {
        kit();
        // 5 kits need 10 x A (there) and 5 x B (4 there)
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{KIT}', 5)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["inventory_id"], B);
        assert_eq!(quantity(A), "10");
        assert_eq!(quantity(B), "4");
    }

    #[pg_test]
    fn a_kit_beside_loose_units_of_its_component_is_checked_against_both() {
        kit();
        // 4 kits take 8 x A; 3 loose A make 11 > 10: refused, nothing sold
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory_many('[{{\"inventory_id\": \"{KIT}\", \"quantity\": 4}}, \
                  {{\"inventory_id\": \"{A}\", \"quantity\": 3}}]')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["inventory_id"], A);
        assert_eq!(d["lines"][0]["requested"], "11");
        assert_eq!(quantity(A), "10");
        // 4 kits and 2 loose A: exactly A's 10
        let r = call(&format!(
            "atomic_inventory.decrement_inventory_many('[{{\"inventory_id\": \"{KIT}\", \"quantity\": 4}}, \
              {{\"inventory_id\": \"{A}\", \"quantity\": 2}}]')"
        ));
        assert_eq!(r["kits"][0]["inventory_id"], KIT);
        assert_eq!(r["kits"][0]["quantity"], 4);
        assert_eq!(quantity(A), "0");
        assert_eq!(quantity(B), "0");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn reserving_a_kit_holds_its_components_and_a_commit_sells_them() {
        kit();
        let r = call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\": \"{KIT}\", \"quantity\": 2}}, \
              {{\"inventory_id\": \"{A}\", \"quantity\": 1}}]')"
        ));
        assert_eq!(r["kits"][0]["quantity"], 2);
        let lines = r["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["inventory_id"], A);
        assert_eq!(lines[0]["quantity"], 5);
        assert_eq!(lines[1]["quantity"], 2);
        let id = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(
            scalar(&format!(
                "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "5"
        );
        // only 5 A left free: 3 kits (6 A) can't be held now
        assert_err(
            &format!(
                "SELECT atomic_inventory.reserve_inventory('[{{\"inventory_id\": \"{KIT}\", \"quantity\": 3}}]')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        call(&format!("atomic_inventory.commit_reservation('{id}')"));
        assert_eq!(quantity(A), "5");
        assert_eq!(quantity(B), "2");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_kit_sells_at_a_location_from_its_components_levels() {
        kit();
        let store = call("atomic_inventory.create_location('store-1')")["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 4, p_location_id => '{store}')"
        ));
        call(&format!(
            "atomic_inventory.increment_inventory('{B}', 2, p_location_id => '{store}')"
        ));
        let g = call(&format!(
            "atomic_inventory.get_inventory('{KIT}', '{store}')"
        ));
        assert_eq!(g["available"], 2);
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{KIT}', 2, p_location_id => '{store}')"
        ));
        assert_eq!(r["location_id"], store.as_str());
        assert_eq!(quantity(A), "10");
        assert_eq!(
            call(&format!("atomic_inventory.get_inventory('{A}', '{store}')"))["quantity"],
            0
        );
        assert_eq!(reconciled(), "0");
    }

    /// A kit sold without naming a location, one of whose components has
    /// stock elsewhere: the sale's guarded first statement sees the level
    /// and leaves the order to the allocation policy, which takes that
    /// component from the location the default one can't cover it from.
    #[pg_test]
    fn a_kit_sold_anywhere_takes_a_component_from_another_location() {
        kit();
        let store = call("atomic_inventory.create_location('store-2')")["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        call(&format!(
            "atomic_inventory.increment_inventory('{B}', 3, p_location_id => '{store}')"
        ));
        // 5 kits: A's 10 units at the default location; B's 4 there are
        // short of 5, its 3 at the store make up the rest
        let r = call(&format!("atomic_inventory.decrement_inventory('{KIT}', 5)"));
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(quantity(A), "0");
        let b_default: i64 = quantity(B).parse().unwrap();
        let b_store = call(&format!("atomic_inventory.get_inventory('{B}', '{store}')"))
            ["quantity"]
            .as_i64()
            .unwrap();
        assert_eq!(b_default + b_store, 2, "B left: {b_default} + {b_store}");
        assert!(b_store < 3, "nothing taken from the store: {b_store}");
        // one more: A has none anywhere
        let (s, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{KIT}', 1)"
        ));
        assert_eq!(s, "PT409");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_kit_holds_no_stock_of_its_own() {
        kit();
        let (s, msg, _) = err(&format!(
            "SELECT atomic_inventory.increment_inventory('{KIT}', 1)"
        ));
        assert_eq!(s, "23514", "{msg}");
        assert!(msg.contains("items_stock_valid"), "{msg}");
        let (s, _, _) = err(&format!(
            "SELECT atomic_inventory.adjust_inventory('{KIT}', 5, p_force => true)"
        ));
        assert_eq!(s, "23514");
        // an item with stock can't become a kit
        item(C, "5");
        assert_err(
            &format!(
                "SELECT atomic_inventory.define_kit('{C}', '[{{\"inventory_id\": \"{B}\", \"quantity\": 1}}]')"
            ),
            "PT409",
            "KIT_HAS_STOCK",
        );
        // removed, it is a plain item again: restocks work, sales take its own stock
        call(&format!("atomic_inventory.remove_kit('{KIT}')"));
        call(&format!("atomic_inventory.increment_inventory('{KIT}', 2)"));
        assert_eq!(quantity(KIT), "2");
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.kit_components WHERE kit_id = '{KIT}'"
            )),
            "0"
        );
    }

    #[pg_test]
    fn define_kit_refuses_bad_components() {
        kit();
        item(C, "0");
        let bad = |components: &str, state: &str, code: &str| {
            let sql = format!("SELECT atomic_inventory.define_kit('{C}', '{components}')");
            assert_err(&sql, state, code)
        };
        // itself, a kit (kits of kits), zero, negative, not a number, no id
        bad(
            &format!("[{{\"inventory_id\": \"{C}\", \"quantity\": 1}}]"),
            "22023",
            "INVALID_INPUT",
        );
        let (_, d) = bad(
            &format!("[{{\"inventory_id\": \"{KIT}\", \"quantity\": 1}}]"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["kits"][0], KIT);
        for q in ["0", "-1", "\"x\"", "1e400", "null"] {
            bad(
                &format!("[{{\"inventory_id\": \"{A}\", \"quantity\": {q}}}]"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        bad("[{\"quantity\": 1}]", "22023", "INVALID_INPUT");
        bad("[]", "22023", "INVALID_INPUT");
        bad("{}", "22023", "INVALID_INPUT");
        bad(
            &format!("[{{\"inventory_id\": \"{MISSING}\", \"quantity\": 1}}]"),
            "PT404",
            "NOT_FOUND",
        );
        // a component of a kit can't become a kit (one level deep)
        let sql = format!(
            "SELECT atomic_inventory.define_kit('{A}', '[{{\"inventory_id\": \"{C}\", \"quantity\": 1}}]')"
        );
        assert_err(&sql, "22023", "INVALID_INPUT");
        assert_err(
            &format!(
                "SELECT atomic_inventory.define_kit('{MISSING}', '[{{\"inventory_id\": \"{A}\", \"quantity\": 1}}]')"
            ),
            "PT404",
            "NOT_FOUND",
        );
        // nothing of the refusals stayed
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.kit_components WHERE kit_id = '{C}'"
            )),
            "0"
        );
    }

    #[pg_test]
    fn another_tenants_kit_and_components_stay_out_of_reach() {
        kit();
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-b' WHERE id IN ('{KIT}', '{A}', '{B}')"
        ))
        .unwrap();
        item(C, "5");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-a' WHERE id = '{C}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-a'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{KIT}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory_many('[{{\"inventory_id\": \"{KIT}\", \"quantity\": 1}}]')"
            ),
            "PT404",
            "NOT_FOUND",
        );
        // shop-a's item can't take shop-b's components
        assert_err(
            &format!(
                "SELECT atomic_inventory.define_kit('{C}', '[{{\"inventory_id\": \"{A}\", \"quantity\": 1}}]')"
            ),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn a_kit_sale_with_an_idempotency_key_replays() {
        kit();
        let sql = format!(
            "atomic_inventory.decrement_inventory('{KIT}', 1, p_idempotency_key => 'kit-sale-1')"
        );
        let first = call(&sql);
        let again = call(&sql);
        assert_eq!(first, again);
        assert_eq!(quantity(A), "8");
        assert_eq!(quantity(B), "3");
    }
}
