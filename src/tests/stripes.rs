//! `#[pg_test]`s of striped items (stripes.rs), the C CHECK of items
//! (validate::ai_stock_valid) and the `atomic_inventory.ledger` setting.
//! Concurrency of striped sales: pg_test/stress.py (flash sale, striped hot
//! items in the random mix) and pg_test/isolation/specs/striped.spec.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::tests::support::*;

    /// The item's quantity as get_inventory reports it (row + stripes).
    fn total(id: &str) -> String {
        call(&format!("atomic_inventory.get_inventory('{id}')"))["quantity"].to_string()
    }

    fn stripes(id: &str) -> String {
        scalar(&format!(
            "SELECT string_agg(quantity::text, ',' ORDER BY stripe) FROM atomic_inventory.item_stripes \
              WHERE item_id = '{id}'"
        ))
    }

    fn reconciles() -> bool {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()") == "0"
    }

    #[pg_test]
    fn stripe_item_spreads_free_stock_and_changes_no_total() {
        item(A, "103.5");
        let r = call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        assert_eq!(r["stripes"], 4);
        assert_eq!(r["quantity"].to_string(), "103.5");
        // 103.5 free: 25 each, stripe 0 takes the remainder with the fraction
        assert_eq!(stripes(A), "28.5,25,25,25");
        assert_eq!(quantity(A), "0");
        assert_eq!(total(A), "103.5");
        // moving stock between rows is not a movement: only the initial row
        assert_eq!(ledger_rows(A), 1);
        assert!(reconciles());
    }

    #[pg_test]
    fn striped_sale_takes_one_stripe_and_ledgers_without_quantity_after() {
        item(A, "40");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(r["striped"], true);
        assert_eq!(r["old_quantity"].to_string(), "40");
        assert_eq!(r["new_quantity"].to_string(), "37");
        assert_eq!(r["deducted"].to_string(), "3");
        assert_eq!(total(A), "37");
        // exactly one stripe lost 3
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.item_stripes WHERE item_id = '{A}' AND quantity = 7"
            )),
            "1"
        );
        assert_eq!(
            scalar(&format!(
                "SELECT (quantity_after IS NULL)::text FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'decrement'"
            )),
            "true"
        );
        assert!(reconciles());
    }

    /// An error inside a stripe attempt (here a user's trigger on the
    /// stripes) rolls the attempt's subtransaction back before it propagates,
    /// so a caller's own EXCEPTION block catches it with its own nesting
    /// intact and its transaction goes on.
    #[pg_test]
    fn error_in_a_stripe_attempt_leaves_callers_block_intact() {
        const S1: &str = "00000000-0000-0000-0000-0000000000d1";
        // The trigger first, and an id no other test uses: tests run
        // concurrently, and DDL taken while holding rows another test waits
        // for can deadlock. It refuses only while ai_test.refuse is on.
        Spi::run(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF current_setting('ai_test.refuse', true) = 'on' THEN \
                 RAISE EXCEPTION 'refused by trigger'; \
               END IF; \
               RETURN NEW; \
             END $$; \
             CREATE TRIGGER refuse BEFORE UPDATE ON atomic_inventory.item_stripes \
               FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()",
        )
        .unwrap();
        item(S1, "40");
        call(&format!("atomic_inventory.stripe_item('{S1}', 4)"));
        Spi::run(&format!(
            "CREATE FUNCTION pg_temp.try_sale() RETURNS text LANGUAGE plpgsql AS $$ \
             BEGIN \
               PERFORM atomic_inventory.decrement_inventory('{S1}', 3); \
               RETURN 'sold'; \
             EXCEPTION WHEN raise_exception THEN \
               RETURN 'caught: ' || SQLERRM; \
             END $$"
        ))
        .unwrap();
        Spi::run("SELECT set_config('ai_test.refuse', 'on', true)").unwrap();
        assert_eq!(
            scalar("SELECT pg_temp.try_sale()"),
            "caught: refused by trigger"
        );
        Spi::run("SELECT set_config('ai_test.refuse', 'off', true)").unwrap();
        assert_eq!(total(S1), "40");
        let r = call(&format!("atomic_inventory.decrement_inventory('{S1}', 3)"));
        assert_eq!(r["new_quantity"].to_string(), "37");
        assert_eq!(total(S1), "37");
    }

    #[pg_test]
    fn striped_sale_no_single_stripe_covers_gathers_sells_and_respreads() {
        item(A, "40");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        // 10 per stripe: 25 needs the whole item
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 25)"));
        assert_eq!(r["old_quantity"].to_string(), "40");
        assert_eq!(r["new_quantity"].to_string(), "15");
        assert_eq!(stripes(A), "6,3,3,3");
        assert_eq!(quantity(A), "0");
        // the gathered sale knows the total after it
        assert_eq!(
            scalar(&format!(
                "SELECT quantity_after::text FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'decrement'"
            )),
            "15"
        );
        assert!(reconciles());
    }

    #[pg_test]
    fn striped_sale_beyond_the_total_is_refused_with_the_total_available() {
        item(A, "10");
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 11)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "10");
        assert_eq!(total(A), "10");
        assert_eq!(stripes(A), "5,5");
    }

    #[pg_test]
    fn striped_restock_adjust_and_multi_line_work_on_the_total() {
        item(A, "20");
        item(B, "20");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        let r = call(&format!("atomic_inventory.increment_inventory('{A}', 8)"));
        assert_eq!(r["old_quantity"].to_string(), "20");
        assert_eq!(r["new_quantity"].to_string(), "28");
        assert_eq!(stripes(A), "7,7,7,7");
        let lines = format!(
            "'[{{\"inventory_id\":\"{A}\",\"quantity\":9}},{{\"inventory_id\":\"{B}\",\"quantity\":1}}]'"
        );
        let r = call(&format!(
            "atomic_inventory.decrement_inventory_many({lines})"
        ));
        assert_eq!(r["lines"][0]["new_quantity"].to_string(), "19");
        assert_eq!(total(A), "19");
        assert_eq!(quantity(B), "19");
        // compare-and-set against the total, not the item row's part
        assert_err(
            &format!(
                "SELECT atomic_inventory.adjust_inventory('{A}', 5, p_expected_quantity => 0)"
            ),
            "PT409",
            "QUANTITY_MISMATCH",
        );
        let r = call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 5, p_expected_quantity => 19)"
        ));
        assert_eq!(r["delta"].to_string(), "-14");
        assert_eq!(total(A), "5");
        assert!(reconciles());
    }

    #[pg_test]
    fn striped_reservations_keep_reserved_units_in_the_item_row() {
        item(A, "20");
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let lines = format!("'[{{\"inventory_id\":\"{A}\",\"quantity\":6}}]'");
        let res = call(&format!("atomic_inventory.reserve_inventory({lines})"));
        assert_eq!(quantity(A), "6");
        assert_eq!(stripes(A), "7,7");
        assert_eq!(
            call(&format!("atomic_inventory.get_inventory('{A}')"))["available"].to_string(),
            "14"
        );
        // the reservation can't be sold from under it: 15 > 14 available
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 15)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let rid = res["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(total(A), "14");
        // the item row held only the reserved units: its quantity (now 0)
        // is not the item's; NULL like a stripe sale's (it was 0)
        assert_eq!(
            scalar(&format!(
                "SELECT delta || ' ' || coalesce(quantity_after::text, 'null')
                   FROM atomic_inventory.ledger WHERE inventory_id = '{A}' AND kind = 'commit'"
            )),
            "-6 null"
        );
        assert!(reconciles());
    }

    /// Units a release frees stay in the item row (until the next gather):
    /// a sale must still answer the item's total and write quantity_after
    /// NULL, as every sale of a striped item does. The fast path sold from
    /// the row: old 6, new 1 (the total went 20 -> 15), quantity_after 1.
    #[pg_test]
    fn a_sale_after_a_release_answers_the_items_total() {
        item(A, "20");
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let res = call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\":\"{A}\",\"quantity\":6}}]')"
        ));
        let rid = res["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.release_reservation('{rid}')"));
        assert_eq!(quantity(A), "6", "the freed units are in the item row");
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 5)"));
        assert_eq!(r["striped"], true, "{r}");
        assert_eq!(r["old_quantity"].to_string(), "20", "{r}");
        assert_eq!(r["new_quantity"].to_string(), "15", "{r}");
        assert_eq!(total(A), "15");
        assert_eq!(
            scalar(&format!(
                "SELECT coalesce(quantity_after::text, 'null') FROM atomic_inventory.ledger
                  WHERE inventory_id = '{A}' AND kind = 'decrement'"
            )),
            "null"
        );
        assert!(reconciles());
        // the same with the ledger off (the bare statement)
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let res = call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\":\"{A}\",\"quantity\":4}}]')"
        ));
        let rid = res["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.release_reservation('{rid}')"));
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        Spi::run("SET LOCAL atomic_inventory.ledger = on").unwrap();
        assert_eq!(r["striped"], true, "{r}");
        assert_eq!(r["new_quantity"].to_string(), "12", "{r}");
        assert_eq!(total(A), "12");
    }

    #[pg_test]
    fn unstripe_puts_everything_back_into_the_item_row() {
        item(A, "30");
        call(&format!("atomic_inventory.stripe_item('{A}', 3)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        let r = call(&format!("atomic_inventory.stripe_item('{A}', 0)"));
        assert_eq!(r["stripes"], 0);
        assert_eq!(quantity(A), "28");
        assert_eq!(stripes(A), "");
        // and back to the single-row fast path
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert!(r.get("striped").is_none());
        assert!(reconciles());
    }

    #[pg_test]
    fn stripe_item_validates_its_arguments() {
        item(A, "10");
        for bad in ["1", "-1", "257", "NULL"] {
            assert_err(
                &format!("SELECT atomic_inventory.stripe_item('{A}', {bad})"),
                "22023",
                "INVALID_INPUT",
            );
        }
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{MISSING}', 4)"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.items (id, sku, quantity, track_inventory) VALUES ('{B}', 'svc', 0, false)"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{B}', 4)"),
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn stock_check_refuses_what_the_two_old_checks_refused() {
        item(A, "10");
        for (set, why) in [
            ("quantity = -1", "negative quantity"),
            ("reserved = -1", "negative reserved"),
            ("reserved = 11", "reserved above quantity"),
            ("quantity = 'NaN'", "NaN quantity"),
            ("quantity = 'Infinity', reserved = 0", "infinite quantity"),
            ("quantity = '-Infinity'", "minus infinity"),
            ("reserved = 'NaN'", "NaN reserved"),
        ] {
            let (state, _, _) = err(&format!(
                "UPDATE atomic_inventory.items SET {set} WHERE id = '{A}'"
            ));
            assert_eq!(state, "23514", "{why} must violate items_stock_valid");
        }
        // the edges are fine
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET quantity = 0, reserved = 0 WHERE id = '{A}'"
        ))
        .unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET quantity = 5.5, reserved = 5.5 WHERE id = '{A}'"
        ))
        .unwrap();
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let (state, _, _) = err(&format!(
            "UPDATE atomic_inventory.item_stripes SET quantity = -1 WHERE item_id = '{A}'"
        ));
        assert_eq!(state, "23514", "a stripe never goes below 0");
    }

    #[pg_test]
    fn ledger_off_moves_stock_without_ledger_rows() {
        item(A, "10");
        item(B, "10");
        let on = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        let off = call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        // the same answer, key for key
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&on), keys(&off));
        assert_eq!(off["new_quantity"].to_string(), "8");
        let lines = format!("'[{{\"inventory_id\":\"{B}\",\"quantity\":2}}]'");
        call(&format!(
            "atomic_inventory.decrement_inventory_many({lines})"
        ));
        call(&format!("atomic_inventory.increment_inventory('{B}', 5)"));
        assert_eq!(quantity(A), "8");
        assert_eq!(quantity(B), "13");
        // initial + the one sale made with the ledger on
        assert_eq!(ledger_rows(A), 2);
        assert_eq!(ledger_rows(B), 1);
        // reconcile says so
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "2"
        );
        // created with the ledger off: no initial row either
        item(MISSING, "3");
        assert_eq!(ledger_rows(MISSING), 0);
    }

    /// One order naming a striped item, an untracked one and a plain one:
    /// the one UPDATE takes the plain line and locks the striped row
    /// unchanged; the striped line is then sold from its gathered stripes
    /// and the untracked one answered. Each line once, a ledger row per
    /// tracked line. Short lines, striped or not, are all reported, and the
    /// error leaves every line as it was.
    #[pg_test]
    fn many_with_striped_untracked_and_plain_lines() {
        item(A, "20");
        item(B, "10");
        item(MISSING, "4");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{MISSING}'"
        ))
        .unwrap();
        let order = |a: u32, b: u32| {
            format!(
                "atomic_inventory.decrement_inventory_many('[{{\"inventory_id\":\"{MISSING}\",\"quantity\":3}},\
                 {{\"inventory_id\":\"{A}\",\"quantity\":{a}}},{{\"inventory_id\":\"{B}\",\"quantity\":{b}}}]')"
            )
        };
        let r = call(&order(9, 2));
        let lines = r["lines"].as_array().unwrap();
        let got: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {}",
                    l["inventory_id"], l["old_quantity"], l["new_quantity"], l["deducted"]
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                format!("\"{A}\" 20 11 9"),
                format!("\"{B}\" 10 8 2"),
                format!("\"{MISSING}\" 4 4 0"),
            ]
        );
        assert_eq!(total(A), "11");
        assert_eq!(stripes(A).split(',').count(), 4, "spread again");
        assert_eq!(quantity(B), "8");
        assert_eq!(quantity(MISSING), "4");
        // the creation rows plus one sale each for the tracked lines
        assert_eq!(ledger_rows(A), 2);
        assert_eq!(ledger_rows(B), 2);
        // A short on its total (11) and B short (8): both reported, in id order
        let (_, detail) = assert_err(
            &format!("SELECT {}", order(12, 9)),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let short: Vec<String> = detail["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{} {} {}",
                    l["inventory_id"], l["available"], l["requested"]
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                format!("\"{A}\" \"11\" \"12\""),
                format!("\"{B}\" \"8\" \"9\"")
            ]
        );
        assert_eq!(total(A), "11");
        assert_eq!(quantity(B), "8");
        assert_eq!(ledger_rows(A), 2);
    }

    #[pg_test]
    fn ledger_setting_is_superuser_only() {
        as_app_user();
        let (state, _, _) = err("SET atomic_inventory.ledger = off");
        assert_eq!(
            state, "42501",
            "a caller must not switch the audit trail off"
        );
    }
}
