//! `#[pg_test]`s for stock events: crossings of the reorder point and of
//! zero, the ledger row each points to, holds, expiry, lapsed batch
//! claims, the settings, consumer groups and their bad inputs. Many
//! connections at once (LISTEN, consumer groups of 8 workers, killed
//! readers) are tested by pg_test/events_check.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::Value;

    /// (kind, ledger_id or "-", available_before, available_after) of every
    /// event of `id`, in order.
    fn events_of(id: &str) -> Vec<String> {
        let text = scalar(&format!(
            "SELECT string_agg(kind || ':' || COALESCE(ledger_id::text, '-') || ':' \
                               || available_before || '>' || available_after, ' ' ORDER BY id) \
               FROM atomic_inventory.events WHERE inventory_id = '{id}'"
        ));
        text.split_whitespace().map(str::to_string).collect()
    }

    fn newest_ledger(id: &str) -> String {
        scalar(&format!(
            "SELECT max(id)::text FROM atomic_inventory.ledger WHERE inventory_id = '{id}'"
        ))
    }

    fn consumer(name: &str) -> Value {
        call(&format!("atomic_inventory.create_event_consumer('{name}')"))
    }

    fn read(name: &str, limit: i32) -> Vec<Value> {
        let v = call(&format!(
            "atomic_inventory.read_events('{name}', {limit}, 30)"
        ));
        v.as_array().unwrap().clone()
    }

    /// The triggers' WHEN function answers exactly what the expression it
    /// replaced answered, over every combination of values around the
    /// edges (zero available, at the reorder point, NULL reorder points,
    /// units set aside, striped or untracked rows).
    #[pg_test]
    fn stock_event_due_equals_the_expression_it_replaced() {
        let differing = scalar(
            "WITH v(x) AS (VALUES (-2::numeric), (0), (1), (3), (5)), \
                  p(x) AS (VALUES (NULL::numeric), (0), (2), (3)), \
                  u(x) AS (VALUES (0::numeric), (1)), \
                  m(os, ns, ot, nt) AS (VALUES (0::smallint, 0::smallint, true, true), \
                                               (2, 0, true, true), (0, 0, false, true), (0, 0, true, false)), \
                  c AS (SELECT m.*, oq.x + 1 AS oq, 1::numeric AS orr, ou.x AS ou, op.x AS op, \
                               nq.x + 1 AS nq, 1::numeric AS nr, nu.x AS nu, np.x AS np \
                          FROM m, v AS oq, u AS ou, p AS op, v AS nq, u AS nu, p AS np) \
             SELECT count(*)::text FROM c \
              WHERE atomic_inventory.stock_event_due(os::smallint, ns::smallint, ot, nt, oq, orr, ou, op, nq, nr, nu, np) \
                    IS DISTINCT FROM coalesce(os = 0 AND ns = 0 AND ot AND nt \
                        AND ((oq - orr - ou > 0) <> (nq - nr - nu > 0) \
                             OR (nq - nr - nu <= np AND oq - orr - ou > COALESCE(op, -1))), false)",
        );
        assert_eq!(differing, "0");
        // stock levels pass no unsellable (NULL: nothing set aside)
        assert_eq!(
            scalar(
                "SELECT atomic_inventory.stock_event_due(0::smallint, 0::smallint, true, true, \
                        2, 1, NULL, NULL, 1, 1, NULL, NULL)::text"
            ),
            "true"
        );
    }

    #[pg_test]
    fn a_sale_across_the_reorder_point_and_zero_writes_one_event_each() {
        item(A, "10");
        call(&format!("atomic_inventory.set_reorder_point('{A}', 3)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 6)"));
        assert!(events_of(A).is_empty(), "10 -> 4 crosses nothing");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        let low = newest_ledger(A);
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        let out = newest_ledger(A);
        call(&format!("atomic_inventory.increment_inventory('{A}', 2)"));
        let back = newest_ledger(A);
        assert_eq!(
            events_of(A),
            vec![
                format!("low_stock:{low}:4>2"),
                format!("out_of_stock:{out}:1>0"),
                format!("back_in_stock:{back}:0>2"),
            ]
        );
        // still under the point: low_stock is re-armed only above it
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert_eq!(events_of(A).len(), 3);
        call(&format!("atomic_inventory.increment_inventory('{A}', 9)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 8)"));
        assert_eq!(events_of(A).len(), 4);
        assert!(events_of(A)[3].starts_with("low_stock:"));
    }

    #[pg_test]
    fn one_sale_from_above_the_point_to_zero_writes_low_stock_then_out_of_stock() {
        item(A, "10");
        call(&format!("atomic_inventory.set_reorder_point('{A}', 3)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 10)"));
        let l = newest_ledger(A);
        assert_eq!(
            events_of(A),
            vec![
                format!("low_stock:{l}:10>0"),
                format!("out_of_stock:{l}:10>0")
            ]
        );
    }

    #[pg_test]
    fn many_lines_and_adjust_write_their_crossings_with_their_ledger_rows() {
        item(A, "2");
        item(B, "5");
        call(&format!(
            "atomic_inventory.decrement_inventory_many('[{{\"inventory_id\":\"{A}\",\"quantity\":2}},{{\"inventory_id\":\"{B}\",\"quantity\":1}}]')"
        ));
        assert_eq!(
            events_of(A),
            vec![format!("out_of_stock:{}:2>0", newest_ledger(A))]
        );
        assert!(events_of(B).is_empty());
        call(&format!(
            "atomic_inventory.adjust_inventory('{B}', 0, p_expected_quantity => 4)"
        ));
        assert_eq!(
            events_of(B),
            vec![format!("out_of_stock:{}:4>0", newest_ledger(B))]
        );
    }

    #[pg_test]
    fn a_rolled_back_sale_leaves_no_event() {
        item(A, "1");
        Spi::run(&format!(
            "DO $$ BEGIN
               PERFORM atomic_inventory.decrement_inventory('{A}', 1);
               RAISE EXCEPTION 'roll back';
             EXCEPTION WHEN raise_exception THEN NULL;
             END $$"
        ))
        .unwrap();
        assert_eq!(quantity(A), "1");
        assert!(events_of(A).is_empty());
    }

    #[pg_test]
    fn holds_cross_without_a_ledger_row_and_expiry_writes_reservation_expired() {
        item(A, "4");
        call(&format!("atomic_inventory.set_reorder_point('{A}', 1)"));
        let r = call(&format!(
            "atomic_inventory.reserve_inventory('[{{\"inventory_id\":\"{A}\",\"quantity\":4}}]', 60, 'cart-9')"
        ));
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(events_of(A), vec!["low_stock:-:4>0", "out_of_stock:-:4>0"]);
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 second' WHERE id = '{rid}'"
        ))
        .unwrap();
        let swept = call("atomic_inventory.expire_reservations()");
        assert_eq!(swept["expired"], 1);
        assert_eq!(events_of(A)[2], "back_in_stock:-:0>4");
        let e = call(&format!(
            "(SELECT row_to_json(e) FROM atomic_inventory.events e WHERE reservation_id = '{rid}')"
        ));
        assert_eq!(e["kind"], "reservation_expired");
        assert_eq!(e["detail"]["reference"], "cart-9");
        assert_eq!(e["detail"]["lines"][0]["inventory_id"], A);
        assert_eq!(e["detail"]["lines"][0]["quantity"], 4);
    }

    #[pg_test]
    fn the_sweep_returns_lapsed_claims_and_writes_batch_lease_lapsed() {
        let b = call("atomic_inventory.create_batch(p_reference => 'route-1')")["batch_id"]
            .as_str()
            .unwrap()
            .to_string();
        call(&format!(
            "atomic_inventory.claim_batch('{b}', 'driver-a', p_lease_seconds => 60)"
        ));
        assert_eq!(
            call("atomic_inventory.expire_reservations()")["lapsed_batches"],
            0
        );
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET lease_expires_at = now() - interval '1 second' WHERE id = '{b}'"
        ))
        .unwrap();
        assert_eq!(
            call("atomic_inventory.expire_reservations()")["lapsed_batches"],
            1
        );
        assert_eq!(
            scalar(&format!(
                "SELECT status || ':' || COALESCE(claimed_by, '-') FROM atomic_inventory.batches WHERE id = '{b}'"
            )),
            "available:-"
        );
        let e = call(&format!(
            "(SELECT row_to_json(e) FROM atomic_inventory.events e WHERE batch_id = '{b}')"
        ));
        assert_eq!(e["kind"], "batch_lease_lapsed");
        assert_eq!(e["detail"]["previous_driver"], "driver-a");
        assert_eq!(e["detail"]["status"], "available");
        // a claim that still holds its lease is not an event when unclaimed
        call(&format!(
            "atomic_inventory.claim_batch('{b}', 'driver-b', p_lease_seconds => 60)"
        ));
        call(&format!(
            "atomic_inventory.unclaim_batch('{b}', 'driver-b')"
        ));
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.events WHERE batch_id = '{b}'"
            )),
            "1"
        );
    }

    #[pg_test]
    fn events_off_writes_none_and_movement_events_write_one_per_ledger_row() {
        item(A, "1");
        Spi::run("SET atomic_inventory.events = off").unwrap();
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert!(events_of(A).is_empty());
        Spi::run("RESET atomic_inventory.events").unwrap();
        Spi::run("SET atomic_inventory.movement_events = on").unwrap();
        call(&format!("atomic_inventory.increment_inventory('{A}', 3)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        Spi::run("RESET atomic_inventory.movement_events").unwrap();
        // one movement per ledger row written while on, each pointing to it
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.ledger l \
                  WHERE l.inventory_id = '{A}' AND EXISTS (SELECT FROM atomic_inventory.events e \
                        WHERE e.kind = 'movement' AND e.ledger_id = l.id AND (e.detail->>'delta')::numeric = l.delta)"
            )),
            "2"
        );
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.events WHERE kind = 'movement'"),
            "2"
        );
    }

    #[pg_test]
    fn striped_items_write_no_crossing_events() {
        item(A, "8");
        call(&format!("atomic_inventory.stripe_item('{A}', 4)"));
        call(&format!("atomic_inventory.set_reorder_point('{A}', 3)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 8)"));
        assert!(events_of(A).is_empty());
        // counted whole by low_stock_items all the same
        assert_eq!(
            scalar("SELECT string_agg(inventory_id || ':' || available, ',') FROM atomic_inventory.low_stock_items()"),
            format!("{A}:0")
        );
    }

    #[pg_test]
    fn set_reorder_point_above_what_is_available_writes_low_stock_and_lists_it() {
        item(A, "5");
        item(B, "50");
        let r = call(&format!("atomic_inventory.set_reorder_point('{A}', 5)"));
        assert_eq!(r["reorder_point"], 5);
        assert_eq!(r["available"], 5);
        call(&format!("atomic_inventory.set_reorder_point('{B}', 10)"));
        assert_eq!(events_of(A), vec!["low_stock:-:5>5"]);
        assert!(events_of(B).is_empty());
        assert_eq!(
            scalar("SELECT string_agg(inventory_id::text, ',') FROM atomic_inventory.low_stock_items()"),
            A
        );
        // cleared: no longer listed, and no event when it falls
        call(&format!("atomic_inventory.set_reorder_point('{B}', NULL)"));
        call(&format!("atomic_inventory.decrement_inventory('{B}', 45)"));
        assert!(events_of(B).is_empty());
    }

    #[pg_test]
    fn set_reorder_point_and_low_stock_items_refuse_bad_input() {
        item(A, "5");
        for bad in ["-1", "'NaN'", "'Infinity'", "1000000000001"] {
            assert_err(
                &format!("SELECT atomic_inventory.set_reorder_point('{A}', {bad})"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_err(
            "SELECT atomic_inventory.set_reorder_point(NULL, 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.set_reorder_point('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        for bad in ["0", "-5", "NULL", "100001"] {
            assert_err(
                &format!("SELECT * FROM atomic_inventory.low_stock_items({bad})"),
                "22023",
                "INVALID_INPUT",
            );
        }
        // another tenant's item: not found, unchanged
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-1' WHERE id = '{A}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-2'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.set_reorder_point('{A}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            scalar(&format!(
                "SELECT COALESCE(reorder_point::text, 'none') FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "none"
        );
    }

    #[pg_test]
    fn a_consumer_gets_each_event_until_acknowledged_and_only_its_tenants() {
        item(A, "1");
        item(B, "1");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-1' WHERE id = '{A}'; \
             UPDATE atomic_inventory.items SET tenant_id = 'shop-2' WHERE id = '{B}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let c = consumer("erp");
        assert_eq!(c["created"], true);
        assert_eq!(c["tenant_id"], "shop-1");
        assert_eq!(c["all_tenants"], false);
        assert_eq!(consumer("erp")["created"], false);
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        let admin = consumer("audit");
        assert_eq!(admin["all_tenants"], true);

        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"));

        // the admin's consumer sees both, shop-1's only its own
        assert_eq!(read("audit", 10).len(), 2);
        let other = scalar(&format!(
            "SELECT id::text FROM atomic_inventory.events WHERE inventory_id = '{B}'"
        ));
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let got = read("erp", 10);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["inventory_id"], A);
        assert_eq!(got[0]["kind"], "out_of_stock");
        assert_eq!(got[0]["read_count"], 1);
        let id = got[0]["id"].as_i64().unwrap();
        // hidden while its visibility timeout runs
        assert!(read("erp", 10).is_empty());
        // shop-2's event was never delivered to shop-1's consumer
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.ack_events('erp', ARRAY[{id}, {other}])"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "event");
        assert_eq!(d["ids"], serde_json::json!([other.parse::<i64>().unwrap()]));
        // names are per tenant: shop-1 can't reach the admin's consumer
        assert_err(
            "SELECT atomic_inventory.read_events('audit')",
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        // the timeout ran out unacknowledged: handed out again
        Spi::run(&format!(
            "UPDATE atomic_inventory.event_deliveries SET visible_at = now() - interval '1 second' WHERE event_id = {id}"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        let again = read("erp", 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0]["read_count"], 2);
        let acked = call(&format!("atomic_inventory.ack_events('erp', ARRAY[{id}])"));
        assert_eq!(acked["acked"], 1);
        // acknowledging again (a retry) is fine and changes nothing
        let acked = call(&format!("atomic_inventory.ack_events('erp', ARRAY[{id}])"));
        assert_eq!(acked["acked"], 0);
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        Spi::run(
            "UPDATE atomic_inventory.event_deliveries SET visible_at = now() - interval '1 second'",
        )
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        assert!(read("erp", 10).is_empty());
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn consumer_functions_refuse_bad_input() {
        consumer("erp");
        assert_err(
            "SELECT atomic_inventory.read_events('nobody')",
            "PT404",
            "NOT_FOUND",
        );
        for name in ["NULL", "''", "repeat('x', 64)"] {
            assert_err(
                &format!("SELECT atomic_inventory.create_event_consumer({name})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_err(
                &format!("SELECT atomic_inventory.read_events({name})"),
                "22023",
                "INVALID_INPUT",
            );
        }
        for (limit, vis, field) in [
            ("0", "30", "p_limit"),
            ("-1", "30", "p_limit"),
            ("1001", "30", "p_limit"),
            ("NULL", "30", "p_limit"),
            ("10", "0", "p_visibility_seconds"),
            ("10", "-5", "p_visibility_seconds"),
            ("10", "86401", "p_visibility_seconds"),
        ] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.read_events('erp', {limit}, {vis})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], field);
        }
        for ids in [
            "NULL",
            "ARRAY[]::bigint[]",
            "ARRAY[1, NULL]::bigint[]",
            "(SELECT array_agg(g) FROM generate_series(1, 1001) g)",
        ] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.ack_events('erp', {ids})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], "p_event_ids");
        }
        assert_err(
            "SELECT atomic_inventory.purge_events('-1 day')",
            "22023",
            "INVALID_INPUT",
        );
        // a tenant can't make a consumer of another tenant's events
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        assert_err(
            "SELECT atomic_inventory.create_event_consumer('x', 'shop-2')",
            "22023",
            "INVALID_INPUT",
        );
        // nor purge (not granted)
        let (state, _, _) = err("SELECT atomic_inventory.purge_events()");
        assert_eq!(state, "42501");
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            call("atomic_inventory.drop_event_consumer('erp')")["success"],
            true
        );
        assert_err(
            "SELECT atomic_inventory.drop_event_consumer('erp')",
            "PT404",
            "NOT_FOUND",
        );
    }

    #[pg_test]
    fn purge_keeps_what_a_consumer_has_pending() {
        item(A, "2");
        consumer("erp");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        call(&format!("atomic_inventory.increment_inventory('{A}', 1)"));
        let got = read("erp", 10);
        assert_eq!(got.len(), 2);
        call(&format!(
            "atomic_inventory.ack_events('erp', ARRAY[{}])",
            got[0]["id"]
        ));
        let p = call("atomic_inventory.purge_events('0 seconds')");
        // the statement's now() is the test transaction's: nothing is older
        assert_eq!(p["deliveries"], 1);
        Spi::run("UPDATE atomic_inventory.events SET created_at = now() - interval '8 days'")
            .unwrap();
        let p = call("atomic_inventory.purge_events()");
        assert_eq!(p["events"], 1);
        assert_eq!(
            scalar("SELECT string_agg(kind, ',') FROM atomic_inventory.events"),
            "back_in_stock"
        );
    }

    #[pg_test]
    fn a_tenant_reading_the_events_table_sees_its_own_and_shared_rows() {
        item(A, "1");
        item(B, "1");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-2' WHERE id = '{B}'"
        ))
        .unwrap();
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"));
        // as Supabase Realtime reads it: SELECT granted, the policy applied
        as_app_user();
        Spi::run("RESET ROLE").unwrap();
        Spi::run("GRANT USAGE ON SCHEMA atomic_inventory TO ai_app; GRANT SELECT ON atomic_inventory.events TO ai_app").unwrap();
        Spi::run("SET ROLE ai_app").unwrap();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        assert_eq!(
            scalar("SELECT string_agg(inventory_id::text, ',') FROM atomic_inventory.events"),
            A
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn heartbeats_keep_a_started_batch_and_a_lapsed_one_goes_back() {
        let b = call("atomic_inventory.create_batch()")["batch_id"]
            .as_str()
            .unwrap()
            .to_string();
        let lease = |b: &str| {
            scalar(&format!(
                "SELECT COALESCE((lease_expires_at - statement_timestamp() > interval '100 seconds')::text, 'none') \
                   FROM atomic_inventory.batches WHERE id = '{b}'"
            ))
        };
        call(&format!(
            "atomic_inventory.claim_batch('{b}', 'driver-a', p_lease_seconds => 30)"
        ));
        assert_eq!(lease(&b), "false");
        call(&format!(
            "atomic_inventory.extend_batch_lease('{b}', 'driver-a', 600)"
        ));
        assert_eq!(lease(&b), "true");
        // started: no lease until a heartbeat gives it one
        call(&format!("atomic_inventory.start_batch('{b}', 'driver-a')"));
        assert_eq!(lease(&b), "none");
        let r = call(&format!(
            "atomic_inventory.extend_batch_lease('{b}', 'driver-a', 600)"
        ));
        assert_eq!(r["status"], "in_progress");
        assert_eq!(lease(&b), "true");
        // only the holder (an admin may extend any holder's)
        as_app_user();
        assert_err(
            &format!("SELECT atomic_inventory.extend_batch_lease('{b}', 'driver-b', 600)"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        Spi::run("RESET ROLE").unwrap();
        for bad in ["0", "-1", "604801", "NULL"] {
            assert_err(
                &format!("SELECT atomic_inventory.extend_batch_lease('{b}', 'driver-a', {bad})"),
                "22023",
                "INVALID_INPUT",
            );
        }
        assert_err(
            &format!("SELECT atomic_inventory.extend_batch_lease('{MISSING}', 'driver-a', 60)"),
            "PT404",
            "NOT_FOUND",
        );
        // the phone died: the lease lapses, the batch is no longer held
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET lease_expires_at = now() - interval '1 second' WHERE id = '{b}'"
        ))
        .unwrap();
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.extend_batch_lease('{b}', 'driver-a', 60)"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        assert!(d["lease_lapsed_at"].is_string() || d.get("lease_expires_at").is_some());
        assert_err(
            &format!("SELECT atomic_inventory.complete_batch('{b}', 'driver-a')"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        assert_eq!(
            call("atomic_inventory.expire_reservations()")["lapsed_batches"],
            1
        );
        let e = call(&format!(
            "(SELECT row_to_json(e) FROM atomic_inventory.events e WHERE batch_id = '{b}')"
        ));
        assert_eq!(e["kind"], "batch_lease_lapsed");
        assert_eq!(e["detail"]["previous_driver"], "driver-a");
        assert_eq!(e["detail"]["status"], "available");
        // and anyone may claim it again
        call(&format!("atomic_inventory.claim_batch('{b}', 'driver-b')"));
    }
}
