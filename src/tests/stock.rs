//! `#[pg_test]` unit tests: every function, every error path, in one backend.
//! Concurrency is tested against a live server in `pg_test/` (isolation specs
//! and the multi-connection stress test).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::tests::support::*;

    // ids of the tests that take a table lock (DDL, ANALYZE) and so must not
    // share rows with concurrently running tests
    const P1: &str = "00000000-0000-0000-0000-0000000000c1";
    const P2: &str = "00000000-0000-0000-0000-0000000000c2";
    const E1: &str = "00000000-0000-0000-0000-0000000000e1";
    const E2: &str = "00000000-0000-0000-0000-0000000000e2";

    // ---------- decrement_inventory ----------

    #[pg_test]
    fn decrement_returns_the_pos_sale_shape() {
        item(A, "11.52");
        let r = call(&format!(
            "atomic_inventory.decrement_inventory(p_inventory_id => '{A}', p_quantity => 5)"
        ));
        assert_eq!(r["success"], true);
        assert_eq!(r["inventory_id"], A);
        assert_eq!(r["old_quantity"].to_string(), "11.52");
        assert_eq!(r["new_quantity"].to_string(), "6.52");
        assert_eq!(r["deducted"].to_string(), "5");
        assert_eq!(quantity(A), "6.52");
        // initial + decrement, and the ledger explains the quantity
        assert_eq!(ledger_rows(A), 2);
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0"
        );
    }

    #[pg_test]
    fn decrement_to_exactly_zero_then_refuses() {
        item(A, "3");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(quantity(A), "0");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "0");
        assert_eq!(d["lines"][0]["requested"], "1");
        assert_eq!(quantity(A), "0");
    }

    #[pg_test]
    fn decrement_respects_reserved() {
        item(A, "10");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET reserved = 8 WHERE id = '{A}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 3)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        assert_eq!(quantity(A), "8");
    }

    #[pg_test]
    fn decrement_unknown_item_is_not_found() {
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["ids"][0], MISSING);
    }

    #[pg_test]
    fn decrement_rejects_bad_quantities_without_writing() {
        item(A, "10");
        for q in [
            "NULL",
            "0",
            "-1",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "1000000000001",
            "1e30",
        ] {
            assert_err(
                &format!("SELECT atomic_inventory.decrement_inventory('{A}', {q})"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_err(
            "SELECT atomic_inventory.decrement_inventory(NULL, 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(quantity(A), "10");
        assert_eq!(ledger_rows(A), 1);
    }

    #[pg_test]
    fn decrement_rejects_bad_options() {
        item(A, "10");
        for (args, field) in [
            ("p_lock_timeout_ms => 0", "p_lock_timeout_ms"),
            ("p_lock_timeout_ms => -5", "p_lock_timeout_ms"),
            ("p_lock_timeout_ms => 600001", "p_lock_timeout_ms"),
            ("p_idempotency_key => ''", "p_idempotency_key"),
            ("p_idempotency_key => repeat('k', 256)", "p_idempotency_key"),
            ("p_reason => repeat('r', 1025)", "p_reason"),
            ("p_reference => repeat('r', 1025)", "p_reference"),
        ] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1, {args})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], field);
        }
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn decrement_untracked_item_succeeds_without_touching_quantity() {
        item(A, "0");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{A}'"
        ))
        .unwrap();
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 7)"));
        assert_eq!(r["success"], true);
        assert_eq!(r["tracked"], false);
        assert_eq!(r["deducted"].to_string(), "0");
        assert_eq!(quantity(A), "0");
        assert_eq!(ledger_rows(A), 1);
    }

    #[pg_test]
    fn decrement_with_lock_timeout_restores_the_setting() {
        item(A, "10");
        Spi::run("SET lock_timeout = '7s'").unwrap();
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_lock_timeout_ms => 250)"
        ));
        assert_eq!(scalar("SELECT current_setting('lock_timeout')"), "7s");
        assert_eq!(quantity(A), "9");
    }

    #[pg_test]
    fn reference_text_is_data_never_sql() {
        item(A, "10");
        let evil = "x'); DROP TABLE atomic_inventory.items; --";
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_reference => $r${evil}$r$, p_reason => 'ünïcödé 🚚')"
        ));
        assert_eq!(
            scalar(&format!(
                "SELECT reference FROM atomic_inventory.ledger WHERE inventory_id = '{A}' AND kind = 'decrement'"
            )),
            evil
        );
        assert_eq!(quantity(A), "9");
    }

    // ---------- idempotency ----------

    #[pg_test]
    fn idempotent_retry_applies_once_and_replays_the_first_result() {
        item(A, "10");
        let sql = format!(
            "atomic_inventory.decrement_inventory('{A}', 4, p_idempotency_key => 'order-1')"
        );
        let first = call(&sql);
        let second = call(&sql);
        assert_eq!(first, second);
        assert_eq!(quantity(A), "6");
        assert_eq!(ledger_rows(A), 2);
        // the same arguments in another numeric spelling are the same request
        let third = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 4.000, p_idempotency_key => 'order-1')"
        ));
        assert_eq!(first, third);
        assert_eq!(quantity(A), "6");
    }

    #[pg_test]
    fn idempotency_key_with_other_arguments_conflicts() {
        item(A, "10");
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 4, p_idempotency_key => 'k')"
        ));
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 5, p_idempotency_key => 'k')"
            ),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
        assert_eq!(d["first_function"], "decrement_inventory");
        // and across functions
        assert_err(
            &format!(
                "SELECT atomic_inventory.increment_inventory('{A}', 4, p_idempotency_key => 'k')"
            ),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
        assert_eq!(quantity(A), "6");
    }

    #[pg_test]
    fn failed_call_does_not_burn_its_key() {
        item(A, "2");
        assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 5, p_idempotency_key => 'k2')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        call(&format!("atomic_inventory.increment_inventory('{A}', 10)"));
        let r = call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 5, p_idempotency_key => 'k2')"
        ));
        assert_eq!(r["new_quantity"].to_string(), "7");
    }

    #[pg_test]
    fn purge_removes_old_keys() {
        item(A, "10");
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_idempotency_key => 'old')"
        ));
        Spi::run(
            "UPDATE atomic_inventory.idempotency_keys SET created_at = now() - interval '2 days'",
        )
        .unwrap();
        assert_eq!(
            scalar("SELECT atomic_inventory.purge_idempotency_keys()::text"),
            "1"
        );
        // a negative age would delete every key (retries would apply again)
        call(&format!(
            "atomic_inventory.decrement_inventory('{A}', 1, p_idempotency_key => 'new')"
        ));
        for bad in ["interval '-1 day'", "NULL"] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.purge_idempotency_keys({bad})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], "p_older_than");
        }
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.idempotency_keys WHERE idempotency_key = 'new'"),
            "1"
        );
    }

    // ---------- decrement_inventory_many ----------

    #[pg_test]
    fn many_merges_duplicates_and_sorts_lines() {
        item(A, "10");
        item(B, "5");
        let r = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{B}","quantity":2}},{{"inventory_id":"{A}","quantity":"1.5"}},{{"inventory_id":"{B}","quantity":1}}]')"#
        ));
        assert_eq!(r["success"], true);
        let lines = r["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["inventory_id"], A);
        assert_eq!(lines[0]["deducted"].to_string(), "1.5");
        assert_eq!(lines[1]["inventory_id"], B);
        assert_eq!(lines[1]["deducted"].to_string(), "3");
        assert_eq!(quantity(A), "8.5");
        assert_eq!(quantity(B), "2");
    }

    #[pg_test]
    fn many_is_all_or_nothing() {
        item(A, "10");
        item(B, "1");
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":2}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"].as_array().unwrap().len(), 1);
        assert_eq!(d["lines"][0]["inventory_id"], B);
        assert_eq!(quantity(A), "10");
        assert_eq!(quantity(B), "1");
        assert_eq!(ledger_rows(A), 1);
    }

    #[pg_test]
    fn many_reports_every_missing_item() {
        item(A, "10");
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{MISSING}","quantity":1}}]')"#
            ),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["ids"], serde_json::json!([MISSING]));
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn many_rejects_malformed_lines() {
        item(A, "10");
        let bad_input = [
            "NULL",
            "'[]'",
            r#"'{"inventory_id":"x"}'"#,
            "'42'",
            r#"'["a"]'"#,
            r#"'[{"quantity":1}]'"#,
            r#"'[{"inventory_id":null,"quantity":1}]'"#,
            r#"'[{"inventory_id":"not-a-uuid","quantity":1}]'"#,
            r#"'[{"inventory_id":7,"quantity":1}]'"#,
            "(SELECT jsonb_agg(jsonb_build_object('inventory_id', gen_random_uuid(), 'quantity', 1)) FROM generate_series(1, 1001))",
        ];
        for lines in bad_input {
            assert_err(
                &format!("SELECT atomic_inventory.decrement_inventory_many({lines})"),
                "22023",
                "INVALID_INPUT",
            );
        }
        let bad_quantity = [
            r#"[{"inventory_id":"ID"}]"#,
            r#"[{"inventory_id":"ID","quantity":0}]"#,
            r#"[{"inventory_id":"ID","quantity":-2}]"#,
            r#"[{"inventory_id":"ID","quantity":"NaN"}]"#,
            r#"[{"inventory_id":"ID","quantity":"Infinity"}]"#,
            r#"[{"inventory_id":"ID","quantity":"ten"}]"#,
            r#"[{"inventory_id":"ID","quantity":true}]"#,
            r#"[{"inventory_id":"ID","quantity":[1]}]"#,
            r#"[{"inventory_id":"ID","quantity":1e13}]"#,
        ];
        for lines in bad_quantity {
            let lines = lines.replace("ID", A);
            assert_err(
                &format!("SELECT atomic_inventory.decrement_inventory_many('{lines}')"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_eq!(quantity(A), "10");
    }

    /// p_lines is read in place from the jsonb (jsonb.rs): each shape gets
    /// the field path and reason a client would fix it by, and numbers keep
    /// the exact value and scale they were written with.
    #[pg_test]
    fn many_lines_read_from_jsonb() {
        item(A, "10");
        item(B, "10");
        let cases = [
            ("'42'", "INVALID_INPUT", "p_lines must be a JSON array"),
            (
                r#"'{"a":1}'"#,
                "INVALID_INPUT",
                "p_lines must be a JSON array",
            ),
            (
                "'[]'",
                "INVALID_INPUT",
                "p_lines must contain at least one line",
            ),
            ("'[[1]]'", "INVALID_INPUT", "p_lines[0] must be an object"),
            ("'[null]'", "INVALID_INPUT", "p_lines[0] must be an object"),
            (
                r#"'[{"inventory_id":"AID","quantity":1}, "x"]'"#,
                "INVALID_INPUT",
                "p_lines[1] must be an object",
            ),
            (
                r#"'[{"quantity":1}]'"#,
                "INVALID_INPUT",
                "p_lines[0].inventory_id is required",
            ),
            (
                r#"'[{"inventory_id":{"id":"AID"},"quantity":1}]'"#,
                "INVALID_INPUT",
                "p_lines[0].inventory_id must be a uuid string",
            ),
            (
                r#"'[{"inventory_id":"AID!","quantity":1}]'"#,
                "INVALID_INPUT",
                "p_lines[0].inventory_id is not a valid uuid",
            ),
            (
                r#"'[{"inventory_id":"AID","quantity":{"n":1}}]'"#,
                "INVALID_QUANTITY",
                "p_lines[0].quantity must be a number",
            ),
            (
                r#"'[{"inventory_id":"AID","quantity":null}]'"#,
                "INVALID_QUANTITY",
                "p_lines[0].quantity is required",
            ),
            (
                r#"'[{"inventory_id":"AID","quantity":"1e"}]'"#,
                "INVALID_QUANTITY",
                "p_lines[0].quantity must be a finite decimal number",
            ),
        ];
        for (lines, code, starts) in cases {
            let sql = format!(
                "SELECT atomic_inventory.decrement_inventory_many({})",
                lines.replace("AID", A)
            );
            let (msg, d) = assert_err(&sql, "22023", code);
            assert!(
                msg.starts_with(&format!("{code}: {starts}")),
                "{sql}: {msg}"
            );
            if code == "INVALID_INPUT" {
                assert!(starts.contains(d["field"].as_str().unwrap()), "{sql}: {d}");
            }
        }
        // extra keys are ignored; a quantity string with spaces is trimmed;
        // numbers keep their scale (2.50) and every digit
        let r = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"note":"gift","inventory_id":"{A}","quantity":2.50}},{{"inventory_id":"{B}","quantity":" 0.000000000001 "}}]')"#
        ));
        let lines = r["lines"].as_array().unwrap();
        assert_eq!(lines[0]["deducted"].to_string(), "2.50");
        assert_eq!(lines[1]["deducted"].to_string(), "0.000000000001");
        assert_eq!(quantity(A), "7.50");
        assert_eq!(quantity(B), "9.999999999999");
    }

    /// p_lines stored in a table arrives packed (short varlena header) when
    /// small and compressed when large; both are detoasted before reading.
    #[pg_test]
    fn many_lines_from_stored_jsonb() {
        item(A, "200");
        item(B, "200");
        Spi::run(&format!(
            r#"CREATE TEMP TABLE orders (n int, lines jsonb);
               INSERT INTO orders VALUES (1, '[{{"inventory_id":"{A}","quantity":1}}]');
               INSERT INTO orders SELECT 2, jsonb_agg(jsonb_build_object(
                   'inventory_id', CASE WHEN g % 2 = 0 THEN '{A}' ELSE '{B}' END,
                   'quantity', 0.25, 'note', repeat('x', 20)))
                 FROM generate_series(1, 800) g"#
        ))
        .unwrap();
        // the big value is stored compressed (smaller than the same value in memory)
        let compressed = scalar(
            "SELECT (pg_column_size(lines) < pg_column_size(lines::text::jsonb))::text FROM orders WHERE n = 2",
        );
        assert_eq!(compressed, "true");
        for n in [1, 2] {
            let r = call(&format!(
                "atomic_inventory.decrement_inventory_many((SELECT lines FROM orders WHERE n = {n}))"
            ));
            assert_eq!(r["success"], true, "order {n}: {r}");
        }
        // A: 200 - 1 - 400 x 0.25; B: 200 - 400 x 0.25
        assert_eq!(quantity(A), "99.00");
        assert_eq!(quantity(B), "100.00");
    }

    #[pg_test]
    fn many_is_idempotent_regardless_of_line_order() {
        item(A, "10");
        item(B, "10");
        let first = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":2}}]', p_idempotency_key => 'cart-9')"#
        ));
        let again = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{B}","quantity":2}},{{"inventory_id":"{A}","quantity":1}}]', p_idempotency_key => 'cart-9')"#
        ));
        assert_eq!(first, again);
        assert_eq!(quantity(A), "9");
        assert_eq!(quantity(B), "8");
    }

    /// The one-statement path locks rows in the order its join produces
    /// them; under the function's own settings that must be the index nested
    /// loop driven by the sorted line array even on a tiny table (where the
    /// planner otherwise joins a sequential scan of items).
    #[pg_test]
    fn many_one_statement_plan_follows_the_sorted_lines() {
        // Two rows with ids no other test uses: this test waits for
        // ANALYZE's lock (another test may hold a conflicting one), and no
        // test may then wait for a row of ours (tests run concurrently).
        item(P1, "10");
        item(P2, "10");
        Spi::run("ANALYZE atomic_inventory.items").unwrap();
        // decrement_inventory_many's SET clauses, as the call runs with them
        settings_of("atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer)");
        assert_eq!(scalar("SELECT current_setting('enable_seqscan')"), "off");
        for (stmt, guarded) in [
            (&crate::source::own::lines::SELL_LINES_BARE, false),
            (&crate::source::own::lines::SELL_PLAIN_BARE, true),
        ] {
            let (plan, _) = plan_of(stmt);
            // the nested loop's outer (first) child is the line array; its
            // inner is an index lookup per line (plain or bitmap), never a
            // scan of items
            let nodes: Vec<&String> = plan.iter().filter(|l| l.contains("->")).collect();
            let nl = nodes.iter().position(|l| l.contains("Nested Loop"));
            let outer = nl.and_then(|i| nodes.get(i + 1));
            assert!(
                outer.is_some_and(|l| l.contains("Function Scan on r"))
                    && plan
                        .iter()
                        .any(|l| l.contains("Index Cond: (id = ANY (ARRAY[r.id]))"))
                    && !plan.iter().any(|l| l.contains("Seq Scan")),
                "plan: {plan:#?}"
            );
            // an order's first statement checks its guard once, before it
            // reads a row (a one-time filter over InitPlans), never per row
            assert_eq!(
                plan.iter().any(|l| l.contains("One-Time Filter")),
                guarded,
                "plan: {plan:#?}"
            );
        }
    }

    /// A line the one statement leaves (here an untracked item) is answered
    /// after it, unchanged; the other line is taken exactly once.
    #[pg_test]
    fn many_with_an_untracked_line_takes_each_line_once() {
        item(A, "10");
        item(B, "4");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{B}'"
        ))
        .unwrap();
        let r = call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":3}}]')"#
        ));
        assert_eq!(r["lines"][0]["old_quantity"].to_string(), "10");
        assert_eq!(r["lines"][0]["new_quantity"].to_string(), "8");
        assert_eq!(r["lines"][1]["deducted"].to_string(), "0");
        assert_eq!(quantity(A), "8");
        assert_eq!(quantity(B), "4");
        // initial row + one decrement; none for the untracked item's sale
        assert_eq!(ledger_rows(A), 2);
        assert_eq!(ledger_rows(B), 1);
    }

    /// An error inside the one statement (here a user's trigger on items,
    /// raised after the first line was taken) propagates to a caller's own
    /// EXCEPTION block, which rolls back everything the call did and goes on
    /// (with the subtransaction of 0.3.0's first one-statement version, this
    /// checked that ours was rolled back before the error left it).
    #[pg_test]
    fn many_error_inside_the_one_statement_leaves_callers_block_intact() {
        // The trigger first, and ids no other test uses: tests run
        // concurrently, and DDL taken while holding rows another test waits
        // for deadlocked (seen once on PostgreSQL 18).
        Spi::run(&format!(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.id = '{E2}' THEN RAISE EXCEPTION 'refused by trigger'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse BEFORE UPDATE ON atomic_inventory.items \
               FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        ))
        .unwrap();
        item(E1, "10");
        item(E2, "10");
        Spi::run(&format!(
            r#"CREATE FUNCTION pg_temp.try_sale() RETURNS text LANGUAGE plpgsql AS $$
               BEGIN
                 PERFORM atomic_inventory.decrement_inventory_many(
                   '[{{"inventory_id":"{E1}","quantity":1}},{{"inventory_id":"{E2}","quantity":1}}]');
                 RETURN 'sold';
               EXCEPTION WHEN raise_exception THEN
                 RETURN 'caught: ' || SQLERRM;
               END $$"#
        ))
        .unwrap();
        let caught = scalar("SELECT pg_temp.try_sale()");
        assert_eq!(caught, "caught: refused by trigger");
        // the caller's transaction goes on: A untouched, a later sale works
        assert_eq!(quantity(E1), "10");
        call(&format!(
            r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{E1}","quantity":1}}]')"#
        ));
        assert_eq!(quantity(E1), "9");
        assert_eq!(ledger_rows(E1), 2);
    }

    // ---------- increment_inventory ----------

    #[pg_test]
    fn increment_adds_and_ledgers() {
        item(A, "1");
        let r = call(&format!(
            "atomic_inventory.increment_inventory('{A}', 2.25, p_reason => 'restock')"
        ));
        assert_eq!(r["added"].to_string(), "2.25");
        assert_eq!(r["new_quantity"].to_string(), "3.25");
        assert_eq!(
            scalar(&format!(
                "SELECT kind || ':' || delta || ':' || reason FROM atomic_inventory.ledger WHERE inventory_id = '{A}' ORDER BY id DESC LIMIT 1"
            )),
            "increment:2.25:restock"
        );
    }

    #[pg_test]
    fn increment_errors() {
        assert_err(
            &format!("SELECT atomic_inventory.increment_inventory('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        item(A, "1");
        assert_err(
            &format!("SELECT atomic_inventory.increment_inventory('{A}', 0)"),
            "22023",
            "INVALID_QUANTITY",
        );
    }

    // ---------- adjust_inventory ----------

    #[pg_test]
    fn adjust_is_compare_and_set() {
        item(A, "10");
        let r = call(&format!(
            "atomic_inventory.adjust_inventory('{A}', p_new_quantity => 7, p_expected_quantity => 10)"
        ));
        assert_eq!(r["delta"].to_string(), "-3");
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.adjust_inventory('{A}', 20, p_expected_quantity => 10)"
            ),
            "PT409",
            "QUANTITY_MISMATCH",
        );
        assert_eq!(d["actual"], "7");
        assert_eq!(quantity(A), "7");
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0"
        );
    }

    #[pg_test]
    fn adjust_needs_expected_or_force() {
        item(A, "10");
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', 3)"),
            "22023",
            "INVALID_INPUT",
        );
        let r = call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 3, p_force => true)"
        ));
        assert_eq!(r["new_quantity"].to_string(), "3");
        call(&format!(
            "atomic_inventory.adjust_inventory('{A}', 0, p_force => true)"
        ));
        assert_eq!(quantity(A), "0");
    }

    #[pg_test]
    fn adjust_errors() {
        item(A, "10");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET reserved = 4 WHERE id = '{A}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', 3, 10)"),
            "PT409",
            "BELOW_RESERVED",
        );
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', -1, 10)"),
            "22023",
            "INVALID_QUANTITY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', 1, 'NaN')"),
            "22023",
            "INVALID_QUANTITY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{MISSING}', 1, 1)"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(quantity(A), "10");
    }

    // ---------- items, reads, reconcile ----------

    #[pg_test]
    fn create_item_and_get_inventory() {
        let r = call("atomic_inventory.create_item(p_quantity => 4, p_sku => 'S1')");
        let id = r["inventory_id"].as_str().unwrap().to_string();
        let g = call(&format!("atomic_inventory.get_inventory('{id}')"));
        assert_eq!(g["available"].to_string(), "4");
        assert_eq!(ledger_rows(&id), 1);
        assert_err(
            &format!("SELECT atomic_inventory.get_inventory('{MISSING}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            "SELECT atomic_inventory.create_item(p_quantity => -1)",
            "22023",
            "INVALID_QUANTITY",
        );
    }

    /// Items without a SKU: any number (0.2.0 allowed one per tenant). An id
    /// that exists: the same call again is answered with the item (a retry
    /// after a lost answer); anything else, a taken SKU without p_id
    /// included, is ITEM_EXISTS (PT409), not a raw unique violation.
    #[pg_test]
    fn create_item_twice() {
        // an id no other test uses: tests run at once, and no test may wait
        // for a row another one inserted
        const R: &str = "00000000-0000-0000-0000-0000000000d7";
        let a = call("atomic_inventory.create_item(p_quantity => 1)");
        let b = call("atomic_inventory.create_item(p_quantity => 1)");
        assert_ne!(a["inventory_id"], b["inventory_id"]);
        let first = call("atomic_inventory.create_item(p_quantity => 1, p_sku => 'DUP')");
        for again in [
            // another item with a taken SKU
            "SELECT atomic_inventory.create_item(p_quantity => 2, p_sku => 'DUP')",
            // the identical call without p_id: not told apart from that
            "SELECT atomic_inventory.create_item(p_quantity => 1, p_sku => 'DUP')",
        ] {
            let (_, d) = assert_err(again, "PT409", "ITEM_EXISTS");
            assert_eq!(d["inventory_id"], first["inventory_id"]);
        }
        // another tenant's SKU namespace
        call("atomic_inventory.create_item(p_quantity => 1, p_sku => 'DUP', p_tenant_id => 'shop-9')");
        let retry =
            format!("atomic_inventory.create_item(p_quantity => 3, p_sku => 'R1', p_id => '{R}')");
        call(&retry);
        call(&format!("atomic_inventory.decrement_inventory('{R}', 1)"));
        let again = call(&retry);
        assert_eq!(
            (
                again["inventory_id"].as_str(),
                again["quantity"].to_string()
            ),
            (Some(R), "2".into())
        );
        assert_eq!(ledger_rows(R), 2);
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.create_item(p_quantity => 3, p_sku => 'R2', p_id => '{R}')"),
            "PT409",
            "ITEM_EXISTS",
        );
        assert_eq!(d["inventory_id"], R);
    }

    #[pg_test]
    fn reconcile_reports_out_of_band_writes() {
        item(A, "10");
        item(B, "10");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0"
        );
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET quantity = 99 WHERE id = '{B}'"
        ))
        .unwrap();
        assert_eq!(
            scalar("SELECT inventory_id || ':' || drift FROM atomic_inventory.reconcile()"),
            format!("{B}:89")
        );
    }

    #[pg_test]
    fn table_constraints_backstop_the_functions() {
        item(A, "1");
        for bad in [
            "quantity = -1",
            "quantity = 'NaN'",
            "reserved = 2",
            "reserved = -1",
        ] {
            let (state, _, _) = err(&format!(
                "UPDATE atomic_inventory.items SET {bad} WHERE id = '{A}'"
            ));
            assert_eq!(state, "23514", "{bad}");
        }
    }

    // ---------- tenants and security ----------

    #[pg_test]
    fn tenants_only_touch_their_own_rows() {
        item(A, "10");
        item(B, "10");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'store-a' WHERE id = '{A}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'store-b'").unwrap();
        for f in [
            format!("atomic_inventory.decrement_inventory('{A}', 1)"),
            format!("atomic_inventory.increment_inventory('{A}', 1)"),
            format!("atomic_inventory.adjust_inventory('{A}', 1, 10)"),
            format!(
                r#"atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":1}}]')"#
            ),
            format!("atomic_inventory.get_inventory('{A}')"),
        ] {
            assert_err(&format!("SELECT {f}"), "PT404", "NOT_FOUND");
        }
        // shared rows (tenant NULL) stay usable
        call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"));
        // the owner tenant, here via a PostgREST-style JWT claim
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run(r#"SET request.jwt.claims = '{"sub":"u1","tenant_id":"store-a"}'"#).unwrap();
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        Spi::run("RESET request.jwt.claims").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(quantity(A), "9");
        assert_eq!(quantity(B), "9");
    }

    #[pg_test]
    fn nested_jwt_claim_path() {
        item(A, "10");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 't9' WHERE id = '{A}'"
        ))
        .unwrap();
        // superuser-only: a caller can't point it at a claim they control
        Spi::run("SET atomic_inventory.tenant_claim = 'app_metadata.store'").unwrap();
        as_app_user();
        let (state, _, _) = err("SET atomic_inventory.tenant_claim = 'sub'");
        assert_eq!(state, "42501");
        Spi::run(r#"SET request.jwt.claims = '{"app_metadata":{"store":"t9"}}'"#).unwrap();
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        Spi::run("SET request.jwt.claims = 'not json'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
        // The PL/pgSQL functions ask caller_tenant() / caller_is_admin(): the
        // same refusal, not "no tenant" (create_item made a shared item here)
        Spi::run("SET atomic_inventory.tenant_id = 't9'").unwrap();
        for sql in [
            "SELECT atomic_inventory.caller_tenant()",
            "SELECT atomic_inventory.caller_is_admin()::text",
            "SELECT atomic_inventory.create_item(p_quantity => 1)",
        ] {
            let (state, msg, _) = err(sql);
            assert_eq!(state, "22023", "{sql}: {msg}");
            assert!(msg.starts_with("INVALID_INPUT"), "{sql}: {msg}");
        }
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(quantity(A), "9");
    }

    #[pg_test]
    fn execute_is_not_granted_to_public() {
        item(A, "10");
        Spi::run(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ai_stranger') THEN
                 CREATE ROLE ai_stranger NOLOGIN;
               END IF;
             END $$",
        )
        .unwrap();
        Spi::run("GRANT USAGE ON SCHEMA atomic_inventory TO ai_stranger").unwrap();
        Spi::run("SET ROLE ai_stranger").unwrap();
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 1)"
        ));
        assert_eq!(state, "42501");
        let (state, _, _) = err("UPDATE atomic_inventory.items SET quantity = 0");
        assert_eq!(state, "42501");
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(quantity(A), "10");
    }

    #[pg_test]
    fn every_function_pins_search_path() {
        // PL/pgSQL and SQL functions (and pgrx's two wrappers) pin it with a
        // SET clause. The C entry points (pg/fmgr.rs, symbols ai_*) pin it in
        // code for the whole call (path::PinnedPath), which
        // shadowing_objects_in_caller_schemas_change_nothing checks by
        // behaviour; a SET clause on them would add fmgr's GUC work back.
        // Four C functions pin nothing: stock_valid and the reservation
        // tables' reservation_valid and reservation_line_valid, the C
        // functions of CHECKs, and stock_event_due, the stock-event
        // triggers' WHEN. They run
        // no SQL and resolve no names, and a SET clause would route every
        // evaluation through fmgr_security_definer's GUC save/restore. Both
        // run as whoever writes the table, so PUBLIC may execute them (they
        // have no side effects).
        let entry_point =
            "(p.prolang = (SELECT l.oid FROM pg_language AS l WHERE l.lanname = 'c') \
                            AND p.prosrc LIKE 'ai\\_%')";
        let unpinned = scalar(&format!(
            "SELECT coalesce(string_agg(p.proname, ','), '')
               FROM pg_proc p
              WHERE p.pronamespace = 'atomic_inventory'::regnamespace
                AND NOT {entry_point}
                AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE 'search_path=pg_catalog%pg_temp%', false)"
        ));
        assert_eq!(unpinned, "");
        let entry_points = scalar(&format!(
            "SELECT count(*)::text FROM pg_proc p
              WHERE p.pronamespace = 'atomic_inventory'::regnamespace AND {entry_point}
                AND p.proname NOT IN ('stock_valid', 'stock_event_due', 'reservation_valid', 'reservation_line_valid')"
        ));
        assert_eq!(
            entry_points, "41",
            "the C entry points of sql/functions.sql"
        );
        let set_clause = scalar(&format!(
            "SELECT coalesce(string_agg(p.proname, ','), '')
               FROM pg_proc p
              WHERE p.pronamespace = 'atomic_inventory'::regnamespace AND {entry_point}
                AND array_to_string(p.proconfig, ',') LIKE '%search_path=%'"
        ));
        assert_eq!(set_clause, "");
        let public_exec = scalar(
            "SELECT coalesce(string_agg(p.proname, ','), '')
               FROM pg_proc p
              WHERE p.pronamespace = 'atomic_inventory'::regnamespace
                AND p.proname NOT IN ('stock_valid', 'stock_event_due', 'reservation_valid', 'reservation_line_valid')
                AND has_function_privilege('public', p.oid, 'EXECUTE')",
        );
        assert_eq!(public_exec, "");
        assert_eq!(
            scalar(
                "SELECT l.lanname || ',' || p.provolatile::text || ',' || (p.proconfig IS NULL)::text \
                   FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang \
                  WHERE p.oid = 'atomic_inventory.stock_valid(numeric, numeric)'::regprocedure"
            ),
            "c,i,true"
        );
    }

    /// Every C function of sql/functions.sql reads its arguments as the
    /// entry point declares them (entry_points!, pg::check), and every
    /// declaration is a function of the catalog: a reordered or retyped
    /// argument fails here instead of reading a datum as the wrong type.
    #[pg_test]
    fn the_entry_points_read_the_argument_types_the_catalog_declares() {
        let rows = Spi::connect(|c| {
            let mut out = Vec::new();
            for row in c
                .select(
                    "SELECT p.prosrc, array_to_string(p.proargtypes::oid[], ',') FROM pg_proc AS p \
                      WHERE p.pronamespace = 'atomic_inventory'::regnamespace \
                        AND p.prolang = (SELECT l.oid FROM pg_language AS l WHERE l.lanname = 'c') \
                        AND p.prosrc LIKE 'ai\\_%' ORDER BY 1",
                    None,
                    &[],
                )
                .unwrap()
            {
                out.push((
                    row.get::<String>(1).unwrap().unwrap(),
                    row.get::<String>(2).unwrap().unwrap(),
                ));
            }
            out
        });
        let declared = crate::api::declared();
        assert!(
            rows.len() >= 34,
            "only {} C functions in pg_proc",
            rows.len()
        );
        for (symbol, types) in &rows {
            let d = declared
                .iter()
                .find(|d| d.symbol == symbol)
                .unwrap_or_else(|| panic!("{symbol} is in pg_proc but declares no argument types"));
            let want: Vec<String> = d.args.iter().map(|o| o.to_u32().to_string()).collect();
            assert_eq!(
                *types,
                want.join(","),
                "{symbol}: pg_proc's argument types differ from the entry point's"
            );
        }
        for d in &declared {
            assert!(
                rows.iter().any(|(s, _)| s == d.symbol),
                "{} is declared in Rust but not in sql/functions.sql",
                d.symbol
            );
        }
    }

    /// Objects a caller creates in schemas of their own, put first in their
    /// search_path (before pg_catalog), change nothing our calls do: a temp
    /// table named like ours, and operators that would turn subtraction into
    /// addition and the reverse, pass every stock check and make every uuid
    /// equal, if our SQL resolved names through them. The C functions pin
    /// their search path in code (path::PinnedPath), so this covers that pin
    /// through a sale, a restock, a refused sale, a reservation and its
    /// commit, and a batch claim; the caller's search path is theirs again
    /// after each call, one that failed included.
    #[pg_test]
    fn shadowing_objects_in_caller_schemas_change_nothing() {
        item(A, "10");
        item(B, "10");
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.batches (id, zone) VALUES ('{A}', 'shadow'), ('{B}', 'shadow')"
        ))
        .unwrap();
        Spi::run("CREATE TEMP TABLE items (id uuid, quantity numeric)").unwrap();
        Spi::run(
            "CREATE FUNCTION public.evil_minus(numeric, numeric) RETURNS numeric
               LANGUAGE sql AS 'SELECT $1 + $2';
             CREATE FUNCTION public.evil_plus(numeric, numeric) RETURNS numeric
               LANGUAGE sql AS 'SELECT $1 OPERATOR(pg_catalog.-) $2';
             CREATE FUNCTION public.evil_ge(numeric, numeric) RETURNS boolean
               LANGUAGE sql AS 'SELECT true';
             CREATE FUNCTION public.evil_eq(uuid, uuid) RETURNS boolean
               LANGUAGE sql AS 'SELECT true';
             CREATE OPERATOR public.- (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.evil_minus);
             CREATE OPERATOR public.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.evil_plus);
             CREATE OPERATOR public.>= (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.evil_ge);
             CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = public.evil_eq);",
        )
        .unwrap();
        Spi::run("SET search_path = pg_temp, public, pg_catalog").unwrap();
        let path = || scalar("SELECT pg_catalog.current_schemas(true)::text");
        let before = path();
        call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(path(), before);
        call(&format!("atomic_inventory.increment_inventory('{A}', 1)"));
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 100)"
        ));
        assert_eq!(state, "PT409", "a sale past the stock is refused");
        assert_eq!(path(), before, "after a call that failed");
        let r = call(&format!(
            "atomic_inventory.reserve_inventory(pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(\
               'inventory_id', '{A}', 'quantity', 2)))"
        ));
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        let claim = call(&format!(
            "atomic_inventory.claim_batch(p_batch_id => '{A}', p_driver_id => 'd1')"
        ));
        assert_eq!(path(), before);
        Spi::run("RESET search_path").unwrap();
        assert_eq!(claim["success"], true);
        assert_eq!(quantity(A), "6", "10 - 3 + 1 - 2");
        assert_eq!(quantity(B), "10", "only the named item changed");
        assert_eq!(
            scalar(&format!(
                "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "0"
        );
        assert_eq!(
            scalar(&format!(
                "SELECT status FROM atomic_inventory.batches WHERE id = '{B}'"
            )),
            "available",
            "only the named batch was claimed"
        );
    }

    /// items_initial_ledger skips its row while a dump is restored, which it
    /// recognizes by two settings any caller can set; create_item pins one
    /// of them, so an item it makes always starts its ledger (the item
    /// started without one: reconcile reported 100 units of drift).
    #[pg_test]
    fn create_item_always_starts_the_ledger() {
        as_app_user();
        Spi::run("SET check_function_bodies = off").unwrap();
        Spi::run("SET row_security = off").unwrap();
        let r =
            call("atomic_inventory.create_item(p_quantity => 100, p_sku => 'restore-lookalike')");
        Spi::run("RESET check_function_bodies").unwrap();
        Spi::run("RESET row_security").unwrap();
        Spi::run("RESET ROLE").unwrap();
        let id = r["inventory_id"].as_str().unwrap().to_string();
        assert_eq!(ledger_rows(&id), 1);
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0"
        );
    }

    #[pg_test]
    fn get_reservation_of_null_is_bad_input() {
        let (_, d) = assert_err(
            "SELECT atomic_inventory.get_reservation(NULL)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_reservation_id");
    }

    /// For tests that change items' definition: tests run concurrently, and
    /// DDL taken while another test holds rows of items (and waits for a
    /// lock this one holds) deadlocks. Taken first, the strongest lock makes
    /// the others wait for this test's end instead.
    fn items_to_ourselves() {
        Spi::run("LOCK TABLE atomic_inventory.items IN ACCESS EXCLUSIVE MODE").unwrap();
    }

    /// Every sale, ledger on or off, is an UPDATE the executor runs: the
    /// app's triggers and CHECKs hold, a table published without a replica
    /// identity refuses it (logical replication could not carry it), a
    /// read-only transaction refuses it; nothing changes either way.
    #[pg_test]
    fn every_sale_runs_as_a_statement_the_executor_checks() {
        items_to_ourselves();
        item(A, "100");
        Spi::run(
            "CREATE OR REPLACE FUNCTION public.veto() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN RETURN NULL; END $f$",
        )
        .unwrap();
        for ledger in ["on", "off"] {
            Spi::run(&format!("SET LOCAL atomic_inventory.ledger = {ledger}")).unwrap();
            let sale = format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)");
            let before = quantity(A);
            // a trigger that skips the write: nothing sold, and said so
            Spi::run(
                "CREATE TRIGGER t BEFORE UPDATE ON atomic_inventory.items FOR EACH ROW \
                 EXECUTE FUNCTION public.veto()",
            )
            .unwrap();
            let (state, msg, _) = err(&sale);
            assert_ne!(
                state, "none",
                "ledger {ledger}: the vetoed sale answered success"
            );
            assert_eq!(quantity(A), before, "ledger {ledger}: {msg}");
            Spi::run("DROP TRIGGER t ON atomic_inventory.items").unwrap();
            // the app's own CHECK holds
            Spi::run(
                "ALTER TABLE atomic_inventory.items ADD CONSTRAINT app_floor CHECK (quantity >= 90)",
            )
            .unwrap();
            let (state, _, _) = err(&format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 50)"
            ));
            assert_eq!(state, "23514", "ledger {ledger}: the app's CHECK holds");
            Spi::run("ALTER TABLE atomic_inventory.items DROP CONSTRAINT app_floor").unwrap();
            // published without a replica identity: refused, as UPDATE is
            Spi::run("CREATE PUBLICATION ai_sale_pub FOR TABLE atomic_inventory.items").unwrap();
            Spi::run("ALTER TABLE atomic_inventory.items REPLICA IDENTITY NOTHING").unwrap();
            let (state, msg, _) = err(&sale);
            assert_eq!(state, "55000", "ledger {ledger}: {msg}");
            assert_eq!(quantity(A), before, "ledger {ledger}: nothing changed");
            Spi::run("ALTER TABLE atomic_inventory.items REPLICA IDENTITY DEFAULT").unwrap();
            Spi::run("DROP PUBLICATION ai_sale_pub").unwrap();
            assert_eq!(
                call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"))["success"],
                true
            );
        }
        // a read-only transaction: refused, as UPDATE is
        Spi::run("SET LOCAL transaction_read_only = on").unwrap();
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 1)"
        ));
        assert_eq!(state, "25006");
    }

    /// With the ledger off, a sale refuses as with it on, sees the sales
    /// before it in the same statement and is undone with a subtransaction.
    #[pg_test]
    fn a_sale_without_the_ledger_refuses_and_rolls_back_as_one_with_it() {
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        item(A, "5");
        item(B, "5");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET reserved = 3 WHERE id = '{A}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 3)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(
            call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"))["new_quantity"],
            3
        );
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{B}'"
        ))
        .unwrap();
        assert_eq!(
            call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"))["tracked"],
            false
        );
        assert_eq!(quantity(B), "5");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = true, tenant_id = 'shop-1' WHERE id = '{B}'"
        ))
        .unwrap();
        Spi::run("SET LOCAL atomic_inventory.tenant_id = 'shop-2'").unwrap();
        as_app_user();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{B}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("SET LOCAL atomic_inventory.tenant_id = 'shop-1'").unwrap();
        assert_eq!(
            scalar(&format!(
                "SELECT (atomic_inventory.decrement_inventory('{B}', 1)->>'new_quantity') || ',' || \
                        (atomic_inventory.decrement_inventory('{B}', 2)->>'new_quantity')"
            )),
            "4,2"
        );
        Spi::run(&format!(
            "DO $$ BEGIN
               PERFORM atomic_inventory.decrement_inventory('{B}', 1);
               RAISE EXCEPTION USING ERRCODE = 'P0004';
             EXCEPTION WHEN assert_failure THEN NULL;
             END $$"
        ))
        .unwrap();
        // (the app user can't read items: the next sale shows it)
        assert_eq!(
            call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"))["old_quantity"],
            2
        );
    }
}
