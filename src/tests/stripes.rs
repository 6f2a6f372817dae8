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
        // no location named: the answer of earlier releases
        assert!(r.get("location_id").is_none());
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

    /// A striped sale's first attempt limits its lock waits (10 ms) for
    /// its own statement only: the caller's lock_timeout is back after a
    /// sale the attempt made, after one it gave up (no single stripe
    /// covered it), and around a call's own p_lock_timeout_ms.
    #[pg_test]
    fn striped_sales_leave_the_callers_lock_timeout_alone() {
        item(A, "40");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        Spi::run("SET LOCAL lock_timeout = '1234ms'").unwrap();
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(r["striped"], true);
        assert_eq!(scalar("SHOW lock_timeout"), "1234ms");
        // 37 left, about 9 a stripe: the attempt finds none and rolls back
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 20)"));
        assert_eq!(r["new_quantity"].to_string(), "17");
        assert_eq!(scalar("SHOW lock_timeout"), "1234ms");
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_lock_timeout_ms => 500)"
        ));
        assert_eq!(r["new_quantity"].to_string(), "16");
        assert_eq!(scalar("SHOW lock_timeout"), "1234ms");
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

    // ---- striped levels at other locations (stripes.rs, LEVEL_*) ----

    fn location(code: &str) -> String {
        call(&format!("atomic_inventory.create_location('{code}')"))["location_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Item A: 10 units at the default location, 40 at a new location,
    /// that level striped 4 ways (10 each): the location's id.
    fn striped_level() -> String {
        item(A, "10");
        let loc = location("hot-1");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 40, p_location_id => '{loc}')"
        ));
        let r = call(&format!(
            "atomic_inventory.stripe_item('{A}', 4, p_location_id => '{loc}')"
        ));
        assert_eq!(r["location_id"], loc.as_str());
        loc
    }

    fn level_stripes(id: &str, loc: &str) -> String {
        scalar(&format!(
            "SELECT string_agg(quantity::text, ',' ORDER BY stripe) FROM atomic_inventory.item_stripes \
              WHERE item_id = '{id}' AND location_id = '{loc}'"
        ))
    }

    fn level_row(id: &str, loc: &str) -> String {
        scalar(&format!(
            "SELECT quantity::text || '/' || reserved::text || '/' || stripes::text \
               FROM atomic_inventory.stock_levels WHERE item_id = '{id}' AND location_id = '{loc}'"
        ))
    }

    fn level_total(id: &str, loc: &str) -> String {
        call(&format!("atomic_inventory.get_inventory('{id}', '{loc}')"))["quantity"].to_string()
    }

    #[pg_test]
    fn striping_a_level_spreads_its_free_stock_and_leaves_the_default_alone() {
        item(A, "10");
        let loc = location("hot-1");
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 40, p_location_id => '{loc}')"
        ));
        // 4 units held there stay in the level's row
        call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":4,"location_id":"{loc}"}}]')"#
        ));
        let rows = ledger_rows(A);
        let r = call(&format!(
            "atomic_inventory.stripe_item('{A}', 4, p_location_id => '{loc}')"
        ));
        assert_eq!(r["location_id"], loc.as_str());
        assert_eq!(r["stripes"], 4);
        assert_eq!(r["quantity"], 40);
        assert_eq!(r["reserved"], 4);
        assert_eq!(r["stripe_quantities"].to_string(), "[9,9,9,9]");
        assert_eq!(level_row(A, &loc), "4/4/4");
        assert_eq!(level_stripes(A, &loc), "9,9,9,9");
        // the default location: its row, no stripes, unstriped
        assert_eq!(quantity(A), "10");
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.item_stripes \
                  WHERE item_id = '{A}' AND location_id = '00000000-0000-0000-0000-000000000000'"
            )),
            "0"
        );
        let lv = call(&format!("atomic_inventory.get_inventory('{A}', '{loc}')"));
        assert_eq!(lv["quantity"], 40);
        assert_eq!(lv["available"], 36);
        let all = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(all["quantity"], 50);
        assert_eq!(all["stripes"], 0);
        assert_eq!(ledger_rows(A), rows);
        assert!(reconciles());
        // the default location's id names the item's own row, as NULL does
        let d = call(&format!(
            "atomic_inventory.stripe_item('{A}', 2, p_location_id => '00000000-0000-0000-0000-000000000000')"
        ));
        assert_eq!(d["location_id"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(d["stripe_quantities"].to_string(), "[5,5]");
        assert_eq!(level_stripes(A, &loc), "9,9,9,9");
        assert!(reconciles());
    }

    #[pg_test]
    fn a_sale_at_a_striped_level_takes_one_stripe() {
        let loc = striped_level();
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 3, p_location_id => '{loc}')"
        ));
        assert_eq!(r["striped"], true);
        assert_eq!(r["location_id"], loc.as_str());
        assert_eq!(r["old_quantity"], 40);
        assert_eq!(r["new_quantity"], 37);
        assert_eq!(r["deducted"], 3);
        assert_eq!(level_total(A, &loc), "37");
        assert_eq!(level_row(A, &loc), "0/0/4");
        assert_eq!(
            scalar(&format!(
                "SELECT location_id::text || ':' || (quantity_after IS NULL)::text FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'decrement'"
            )),
            format!("{loc}:true")
        );
        // the default location's stock is not a stripe of this level
        assert_eq!(quantity(A), "10");
        assert!(reconciles());
    }

    #[pg_test]
    fn a_sale_no_stripe_of_a_level_covers_gathers_sells_and_respreads() {
        let loc = striped_level();
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 25, p_location_id => '{loc}')"
        ));
        assert!(r.get("striped").is_none());
        assert_eq!(r["location_id"], loc.as_str());
        assert_eq!(r["old_quantity"], 40);
        assert_eq!(r["new_quantity"], 15);
        assert_eq!(level_stripes(A, &loc), "6,3,3,3");
        assert_eq!(level_row(A, &loc), "0/0/4");
        // past the level's total: refused with it, nothing moved
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 16, p_location_id => '{loc}')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "15");
        assert_eq!(level_total(A, &loc), "15");
        assert!(reconciles());
    }

    #[pg_test]
    fn restock_and_adjust_at_a_striped_level_work_on_its_total() {
        let loc = striped_level();
        let r = call(&format!(
            "atomic_inventory.increment_inventory('{A}', 8, p_location_id => '{loc}')"
        ));
        assert_eq!(r["old_quantity"], 40);
        assert_eq!(r["new_quantity"], 48);
        assert_eq!(level_stripes(A, &loc), "12,12,12,12");
        assert_eq!(level_row(A, &loc), "0/0/4");
        let r = call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 30, p_expected_quantity => 48, p_location_id => '{loc}')"
        ));
        assert_eq!(r["old_quantity"], 48);
        assert_eq!(r["new_quantity"], 30);
        assert_eq!(level_total(A, &loc), "30");
        assert_eq!(level_stripes(A, &loc), "9,7,7,7");
        assert_eq!(quantity(A), "10");
        assert!(reconciles());
    }

    #[pg_test]
    fn transfers_out_of_and_into_a_striped_level() {
        let loc = striped_level();
        let other = location("store-2");
        // to the default location
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{loc}', '00000000-0000-0000-0000-000000000000', 12)"
        ));
        assert_eq!(t["from"]["old_quantity"], 40);
        assert_eq!(t["from"]["new_quantity"], 28);
        assert_eq!(quantity(A), "22");
        assert_eq!(level_stripes(A, &loc), "7,7,7,7");
        // between two levels (not the one-statement path: one is striped)
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{loc}', '{other}', 20)"
        ));
        assert_eq!(t["from"]["new_quantity"], 8);
        assert_eq!(t["to"]["new_quantity"], 20);
        let t = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{other}', '{loc}', 4)"
        ));
        assert_eq!(t["to"]["old_quantity"], 8);
        assert_eq!(t["to"]["new_quantity"], 12);
        assert_eq!(level_stripes(A, &loc), "3,3,3,3");
        // more than the level holds: refused with its whole available
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.transfer_inventory('{A}', '{loc}', '{other}', 13)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "12");
        // shipped out, then cancelled back in
        let s = call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{loc}', '{other}', 10, p_receive => false)"
        ));
        assert_eq!(s["from"]["new_quantity"], 2);
        let id = s["transfer_id"].as_str().unwrap().to_string();
        let c = call(&format!("atomic_inventory.cancel_transfer('{id}')"));
        assert_eq!(c["from"]["new_quantity"], 12);
        assert_eq!(level_stripes(A, &loc), "3,3,3,3");
        assert_eq!(level_row(A, &loc), "0/0/4");
        assert!(reconciles());
    }

    #[pg_test]
    fn holds_and_orders_at_a_striped_level_see_its_whole_stock() {
        let loc = striped_level();
        // more than one stripe holds
        let rid = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":25,"location_id":"{loc}"}}]')"#
        ))["reservation_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(level_row(A, &loc), "25/25/4");
        assert_eq!(level_stripes(A, &loc), "6,3,3,3");
        let lv = call(&format!("atomic_inventory.get_inventory('{A}', '{loc}')"));
        assert_eq!(lv["quantity"], 40);
        assert_eq!(lv["available"], 15);
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(level_total(A, &loc), "15");
        assert_eq!(level_row(A, &loc), "0/0/4");
        // a hold naming no location, which the default location can't cover,
        // is placed at the striped level (its stripes counted)
        let r = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":12}}]')"#
        ));
        assert_eq!(r["lines"][0]["location_id"], loc.as_str());
        assert_eq!(level_row(A, &loc), "12/12/4");
        assert_eq!(level_stripes(A, &loc), "3,0,0,0");
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.release_reservation('{rid}')"));
        assert_eq!(level_total(A, &loc), "15");
        // an order: a line at the level, and one allocated there
        let o = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":5,"location_id":"{loc}"}}]')"#
        ));
        assert_eq!(o["lines"][0]["new_quantity"], 10);
        let o = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":15}}]')"#
        ));
        assert_eq!(o["success"], true);
        assert_eq!(quantity(A), "0");
        assert_eq!(level_total(A, &loc), "5");
        assert_eq!(level_row(A, &loc), "0/0/4");
        assert!(reconciles());
    }

    #[pg_test]
    fn totals_low_stock_and_deactivation_count_a_levels_stripes() {
        let loc = striped_level();
        let all = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(all["quantity"], 50);
        assert_eq!(all["available"], 50);
        call(&format!(
            "atomic_inventory.set_reorder_point('{A}', 45, p_location_id => '{loc}')"
        ));
        assert_eq!(
            scalar(&format!(
                "SELECT quantity::text FROM atomic_inventory.low_stock_items() \
                  WHERE inventory_id = '{A}' AND location_id = '{loc}'"
            )),
            "40"
        );
        // its units are in the stripes, yet the location holds stock
        assert_err(
            &format!("SELECT atomic_inventory.update_location('{loc}', p_active => false)"),
            "PT409",
            "LOCATION_IN_USE",
        );
        // a ledger row moved by hand is seen per level
        assert!(reconciles());
        Spi::run(&format!(
            "UPDATE atomic_inventory.item_stripes SET quantity = quantity + 1 \
              WHERE item_id = '{A}' AND location_id = '{loc}' AND stripe = 0"
        ))
        .unwrap();
        assert_eq!(
            scalar(&format!(
                "SELECT location_id::text || ':' || drift::text FROM atomic_inventory.reconcile() \
                  WHERE inventory_id = '{A}'"
            )),
            format!("{loc}:1")
        );
    }

    #[pg_test]
    fn unstriping_a_level_puts_its_stock_back_into_its_row() {
        let loc = striped_level();
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 3, p_location_id => '{loc}')"
        ));
        let r = call(&format!(
            "atomic_inventory.stripe_item('{A}', 0, p_location_id => '{loc}')"
        ));
        assert_eq!(r["stripes"], 0);
        assert_eq!(r["quantity"], 37);
        assert_eq!(level_row(A, &loc), "37/0/0");
        assert_eq!(level_stripes(A, &loc), "");
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{loc}')"
        ));
        assert!(r.get("striped").is_none());
        assert!(reconciles());
    }

    #[pg_test]
    fn striping_a_level_refuses_what_a_sale_there_refuses() {
        item(A, "10");
        let loc = location("hot-1");
        // no level there: the error a sale there gives
        for sql in [
            format!("SELECT atomic_inventory.stripe_item('{A}', 4, p_location_id => '{loc}')"),
            format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 1, p_location_id => '{loc}')"
            ),
        ] {
            let (_, d) = assert_err(&sql, "PT404", "LEVEL_NOT_FOUND");
            assert_eq!(d["location_id"], loc.as_str());
        }
        // an unknown location
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{A}', 4, p_location_id => '{MISSING}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        // an unknown item
        assert_err(
            &format!(
                "SELECT atomic_inventory.stripe_item('{MISSING}', 4, p_location_id => '{loc}')"
            ),
            "PT404",
            "NOT_FOUND",
        );
        // an inactive location takes no stripes (but is unstriped)
        call(&format!(
            "atomic_inventory.increment_inventory('{A}', 5, p_location_id => '{loc}')"
        ));
        call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 0, p_force => true, p_location_id => '{loc}')"
        ));
        call(&format!(
            "atomic_inventory.update_location('{loc}', p_active => false)"
        ));
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{A}', 4, p_location_id => '{loc}')"),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        let r = call(&format!(
            "atomic_inventory.stripe_item('{A}', 0, p_location_id => '{loc}')"
        ));
        assert_eq!(r["stripes"], 0);
    }
}
