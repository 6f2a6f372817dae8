//! `#[pg_test]`s for warehouse packing: the packing RPC's nine validations, each with
//! its own code, and the happy paths. The concurrent scenarios (basket
//! exhaustion by two workers, 50 packers on one line) are in pg_test/.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const SESSION: &str = "00000000-0000-0000-0000-00000000a5e1";
    const OTHER_SESSION: &str = "00000000-0000-0000-0000-00000000a5e2";
    const PRODUCT: &str = "00000000-0000-0000-0000-0000000009d1";
    const ORDER1: &str = "00000000-0000-0000-0000-0000000000d1";
    const ORDER2: &str = "00000000-0000-0000-0000-0000000000d2";
    const LINE1: &str = "00000000-0000-0000-0000-0000000001a1";
    const LINE2: &str = "00000000-0000-0000-0000-0000000001a2";
    const FOREIGN_LINE: &str = "00000000-0000-0000-0000-0000000001a3";

    /// Session in packing with `picked` units of PRODUCT; two orders needing
    /// `need1` and `need2`; a line of another session.
    fn warehouse(picked: i32, need1: i32, need2: i32) {
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.picking_sessions (id, code, status, last_activity_at)
               VALUES ('{SESSION}', 'S-1', 'packing', now() - interval '1 hour'),
                      ('{OTHER_SESSION}', 'S-2', 'packing', now());
             INSERT INTO atomic_inventory.picking_session_items VALUES ('{SESSION}', '{PRODUCT}', {picked});
             INSERT INTO atomic_inventory.orders (id, order_number) VALUES ('{ORDER1}', '#1001'), ('{ORDER2}', '#1002');
             INSERT INTO atomic_inventory.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
               VALUES ('{LINE1}', '{SESSION}', '{ORDER1}', '{PRODUCT}', {need1}),
                      ('{LINE2}', '{SESSION}', '{ORDER2}', '{PRODUCT}', {need2}),
                      ('{FOREIGN_LINE}', '{OTHER_SESSION}', '{ORDER2}', '{PRODUCT}', 1);"
        ))
        .unwrap();
    }

    fn pack(line: &str, extra: &str) -> String {
        format!(
            "SELECT atomic_inventory.increment_packing_quantity(p_progress_id => '{line}', \
             p_quantity_needed => 99, p_picked_quantity => 99, p_session_id => '{SESSION}', \
             p_product_id => '{PRODUCT}'{extra})"
        )
    }

    fn packed(line: &str) -> String {
        scalar(&format!(
            "SELECT quantity_packed::text FROM atomic_inventory.packing_progress WHERE id = '{line}'"
        ))
    }

    #[pg_test]
    fn pack_one_returns_the_progress_row_and_touches_activity() {
        warehouse(5, 3, 2);
        let r = call(&pack(LINE1, "").replace("SELECT ", ""));
        assert_eq!(r["success"], true);
        assert_eq!(r["id"], LINE1);
        assert_eq!(r["quantity_packed"], 1);
        assert_eq!(r["quantity_needed"], 3);
        assert_eq!(r["remaining"], 2);
        assert_eq!(
            scalar(&format!(
                "SELECT (last_activity_at > now() - interval '1 minute')::text FROM atomic_inventory.picking_sessions WHERE id = '{SESSION}'"
            )),
            "true"
        );
    }

    #[pg_test]
    fn pack_several_at_once_and_unpack() {
        warehouse(5, 3, 2);
        let r = call(&pack(LINE1, ", p_quantity => 3").replace("SELECT ", ""));
        assert_eq!(r["quantity_packed"], 3);
        let u = call(&format!(
            "atomic_inventory.decrement_packing_quantity(p_progress_id => '{LINE1}', p_session_id => '{SESSION}', p_quantity => 2)"
        ));
        assert_eq!(u["quantity_packed"], 1);
        assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_packing_quantity('{LINE1}', '{SESSION}', 2)"
            ),
            "PT409",
            "NOTHING_TO_UNPACK",
        );
        assert_eq!(packed(LINE1), "1");
    }

    #[pg_test]
    fn e1_session_not_found() {
        warehouse(5, 3, 2);
        assert_err(
            &pack(LINE1, "").replace(SESSION, MISSING),
            "PT404",
            "SESSION_NOT_FOUND",
        );
    }

    #[pg_test]
    fn e2_session_not_in_packing() {
        warehouse(5, 3, 2);
        for status in ["picking", "completed", "cancelled"] {
            Spi::run(&format!(
                "UPDATE atomic_inventory.picking_sessions SET status = '{status}' WHERE id = '{SESSION}'"
            ))
            .unwrap();
            let (_, d) = assert_err(&pack(LINE1, ""), "PT409", "SESSION_NOT_PACKING");
            assert_eq!(d["status"], status);
        }
        assert_eq!(packed(LINE1), "0");
    }

    #[pg_test]
    fn e3_progress_not_found() {
        warehouse(5, 3, 2);
        assert_err(&pack(MISSING, ""), "PT404", "PROGRESS_NOT_FOUND");
    }

    #[pg_test]
    fn e4_progress_of_another_session_is_refused() {
        warehouse(5, 3, 2);
        assert_err(
            &pack(FOREIGN_LINE, ""),
            "PT403",
            "PROGRESS_SESSION_MISMATCH",
        );
        // a product that isn't the line's is refused the same way
        assert_err(
            &pack(LINE1, "").replace(PRODUCT, MISSING),
            "PT403",
            "PROGRESS_SESSION_MISMATCH",
        );
        assert_eq!(packed(FOREIGN_LINE), "0");
    }

    #[pg_test]
    fn e5_order_not_found() {
        warehouse(5, 3, 2);
        // only reachable if the FK is bypassed; simulate a dangling order
        Spi::run("SET session_replication_role = replica").unwrap();
        Spi::run(&format!(
            "DELETE FROM atomic_inventory.orders WHERE id = '{ORDER1}'"
        ))
        .unwrap();
        Spi::run("RESET session_replication_role").unwrap();
        assert_err(&pack(LINE1, ""), "PT404", "ORDER_NOT_FOUND");
    }

    #[pg_test]
    fn e6_completed_orders_are_frozen() {
        warehouse(5, 3, 2);
        for status in ["ready_to_ship", "shipped", "delivered"] {
            Spi::run(&format!(
                "UPDATE atomic_inventory.orders SET status = '{status}' WHERE id = '{ORDER1}'"
            ))
            .unwrap();
            let (msg, d) = assert_err(&pack(LINE1, ""), "PT409", "ORDER_COMPLETED");
            assert!(msg.contains("#1001"), "{msg}");
            assert_eq!(d["status"], status);
        }
    }

    #[pg_test]
    fn e7_closed_orders_cannot_be_packed() {
        warehouse(5, 3, 2);
        for status in ["cancelled", "rejected", "returned"] {
            Spi::run(&format!(
                "UPDATE atomic_inventory.orders SET status = '{status}' WHERE id = '{ORDER1}'"
            ))
            .unwrap();
            let (msg, _) = assert_err(&pack(LINE1, ""), "PT409", "ORDER_CLOSED");
            assert!(msg.contains(status), "{msg}");
        }
    }

    #[pg_test]
    fn e8_no_over_packing_of_a_line() {
        warehouse(10, 2, 2);
        call(&pack(LINE1, ", p_quantity => 2").replace("SELECT ", ""));
        let (_, d) = assert_err(&pack(LINE1, ""), "PT409", "ALREADY_FULLY_PACKED");
        assert_eq!(d["quantity_needed"], 2);
        assert_err(
            &pack(LINE2, ", p_quantity => 3"),
            "PT409",
            "ALREADY_FULLY_PACKED",
        );
        assert_eq!(packed(LINE1), "2");
    }

    /// A line near the integer column's maximum: the check adds in 64 bits
    /// (the i32 sum overflowed: a panic, INTERNAL, in a debug build).
    #[pg_test]
    fn e8_holds_at_the_integer_maximum() {
        warehouse(i32::MAX, i32::MAX, 1);
        Spi::run(&format!(
            "UPDATE atomic_inventory.packing_progress SET quantity_packed = 2147483640 WHERE id = '{LINE1}'"
        ))
        .unwrap();
        let (_, d) = assert_err(
            &pack(LINE1, ", p_quantity => 10000"),
            "PT409",
            "ALREADY_FULLY_PACKED",
        );
        assert_eq!(d["quantity_packed"], 2147483640_i64, "{d}");
        call(&pack(LINE1, ", p_quantity => 7").replace("SELECT ", ""));
        assert_eq!(packed(LINE1), "2147483647");
    }

    #[pg_test]
    fn e9_basket_limit_spans_orders() {
        // 3 picked, orders need 2 + 2: the fourth unit has nowhere to come from
        warehouse(3, 2, 2);
        call(&pack(LINE1, ", p_quantity => 2").replace("SELECT ", ""));
        call(&pack(LINE2, "").replace("SELECT ", ""));
        let (_, d) = assert_err(&pack(LINE2, ""), "PT409", "BASKET_EXHAUSTED");
        assert_eq!(d["quantity_picked"], 3);
        assert_eq!(d["total_packed"], 3);
        assert_eq!(packed(LINE2), "1");
        // unpacking one frees a unit for the other order
        call(&format!(
            "atomic_inventory.decrement_packing_quantity('{LINE1}', '{SESSION}')"
        ));
        call(&pack(LINE2, "").replace("SELECT ", ""));
        assert_eq!(packed(LINE2), "2");
    }

    #[pg_test]
    fn client_numbers_cannot_widen_the_limits() {
        // the client claims 99 needed and 99 picked; the tables say 1 and 1
        warehouse(1, 1, 1);
        call(&pack(LINE1, "").replace("SELECT ", ""));
        assert_err(&pack(LINE1, ""), "PT409", "ALREADY_FULLY_PACKED");
        assert_err(&pack(LINE2, ""), "PT409", "BASKET_EXHAUSTED");
    }

    #[pg_test]
    fn bad_input() {
        warehouse(5, 3, 2);
        for q in ["0", "-1", "10001"] {
            assert_err(
                &pack(LINE1, &format!(", p_quantity => {q}")),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        assert_err(
            &format!("SELECT atomic_inventory.increment_packing_quantity('{LINE1}')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.decrement_packing_quantity(NULL, '{SESSION}')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(packed(LINE1), "0");
    }

    #[pg_test]
    fn sessions_are_tenant_scoped() {
        warehouse(5, 3, 2);
        Spi::run(&format!(
            "UPDATE atomic_inventory.picking_sessions SET tenant_id = 'wh-1' WHERE id = '{SESSION}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'wh-2'").unwrap();
        assert_err(&pack(LINE1, ""), "PT404", "SESSION_NOT_FOUND");
        Spi::run("SET atomic_inventory.tenant_id = 'wh-1'").unwrap();
        call(&pack(LINE1, "").replace("SELECT ", ""));
        // another tenant's line, named with our own session: not found, as
        // other tenants' rows always answer (and never locked by us); it was
        // PROGRESS_SESSION_MISMATCH, which told that it exists
        Spi::run("RESET ROLE").unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.picking_sessions SET tenant_id = 'wh-2' WHERE id = '{OTHER_SESSION}'"
        ))
        .unwrap();
        as_app_user();
        assert_err(&pack(FOREIGN_LINE, ""), "PT404", "PROGRESS_NOT_FOUND");
        // a shared session's line is visible: still the cross-session refusal
        Spi::run("RESET ROLE").unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.picking_sessions SET tenant_id = NULL WHERE id = '{OTHER_SESSION}'"
        ))
        .unwrap();
        as_app_user();
        assert_err(
            &pack(FOREIGN_LINE, ""),
            "PT403",
            "PROGRESS_SESSION_MISMATCH",
        );
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(packed(LINE1), "1");
    }
}
