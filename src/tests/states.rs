//! `#[pg_test]`s for stock states (move_stock_state): units set aside on
//! hand (damaged, quality_control, safety_stock) are never sold or held by
//! any sale or hold, incoming units are received into stock, write-offs
//! lower the quantity, every move is ledgered and reconciles, and bad
//! input is refused with its own code. Many connections at once: the
//! isolation spec stock_states.spec and pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::source::own::states::{plan, State};
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::json;

    fn mv(id: &str, from: &str, to: &str, q: &str) -> serde_json::Value {
        call(&format!(
            "atomic_inventory.move_stock_state('{id}', '{from}', '{to}', {q})"
        ))
    }

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    #[pg_test]
    fn damaged_units_stay_on_hand_and_are_not_sold() {
        item(A, "10");
        let r = mv(A, "available", "damaged", "3");
        assert_eq!(r["quantity"], 10);
        assert_eq!(r["unsellable"], 3);
        assert_eq!(r["available"], 7);
        assert_eq!(r["moved"], 3);
        assert_eq!(r["from"], "available");
        assert_eq!(r["to"], "damaged");
        assert_eq!(
            r["states"],
            json!({"damaged": 3, "quality_control": 0, "safety_stock": 0, "incoming": 0})
        );
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(g["available"], 7);
        assert_eq!(g["unsellable"], 3);
        assert_eq!(g["states"]["damaged"], 3);
        assert_eq!(g["levels"][0]["available"], 7);
        // the move's ledger row: no change of quantity, the two states named
        assert_eq!(
            scalar(&format!(
                "SELECT kind || ' ' || delta || ' ' || from_state || ' ' || to_state \
                   FROM atomic_inventory.ledger WHERE inventory_id = '{A}' ORDER BY id DESC LIMIT 1"
            )),
            "state_move 0 available damaged"
        );
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 8)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "7");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 7)"));
        assert_eq!(quantity(A), "3");
        // back to available: sellable again
        mv(A, "damaged", "available", "1");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"));
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn every_sale_and_hold_sees_only_sellable_units() {
        item(A, "5");
        item(B, "5");
        mv(A, "available", "quality_control", "2");
        mv(A, "available", "safety_stock", "1");
        let many = |qa: &str| {
            format!(
                r#"SELECT atomic_inventory.decrement_inventory_many('[{{"inventory_id":"{A}","quantity":{qa}}},{{"inventory_id":"{B}","quantity":1}}]')"#
            )
        };
        assert_err(&many("3"), "PT409", "INSUFFICIENT_INVENTORY");
        let hold = format!(
            r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":3}}]')"#
        );
        assert_err(&hold, "PT409", "INSUFFICIENT_INVENTORY");
        // a kit of 2 A: only one kit's worth is sellable
        let kit = "00000000-0000-0000-0000-00000000000c";
        item(kit, "0");
        call(&format!(
            r#"atomic_inventory.define_kit('{kit}', '[{{"inventory_id":"{A}","quantity":2}}]')"#
        ));
        assert_eq!(
            call(&format!("atomic_inventory.get_inventory('{kit}')"))["available"],
            1
        );
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{kit}', 2)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        // the ledger-off statements take the same rule
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 3)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_err(&many("3"), "PT409", "INSUFFICIENT_INVENTORY");
        Spi::run("SET LOCAL atomic_inventory.ledger = on").unwrap();
        // what is free sells
        Spi::run(&many("2")).unwrap();
        assert_eq!(quantity(A), "3");
        assert_eq!(
            call(&format!("atomic_inventory.get_inventory('{A}')"))["available"],
            0
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn incoming_units_are_received_into_stock() {
        item(A, "1");
        let r = mv(A, "ordered", "incoming", "10");
        assert_eq!(r["quantity"], 1);
        assert_eq!(r["states"]["incoming"], 10);
        assert_eq!(r["available"], 1);
        // incoming units are not on hand: not for sale
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 2)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let r = mv(A, "incoming", "available", "6");
        assert_eq!(r["quantity"], 7);
        assert_eq!(r["available"], 7);
        // received into quality control: on hand, not for sale yet
        let r = mv(A, "incoming", "quality_control", "3");
        assert_eq!(r["quantity"], 10);
        assert_eq!(r["unsellable"], 3);
        assert_eq!(r["available"], 7);
        // the supplier short-ships the last one
        let r = mv(A, "incoming", "written_off", "1");
        assert_eq!(r["quantity"], 10);
        assert_eq!(r["states"]["incoming"], 0);
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ':' || delta, ',' ORDER BY id) FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND from_state IS NOT NULL"
            )),
            "state_move:0,receive:6,receive:3,state_move:0"
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn written_off_units_leave_the_books() {
        item(A, "10");
        mv(A, "available", "damaged", "4");
        let r = mv(A, "damaged", "written_off", "3");
        assert_eq!(r["quantity"], 7);
        assert_eq!(r["unsellable"], 1);
        assert_eq!(r["available"], 6);
        let r = mv(A, "available", "written_off", "2");
        assert_eq!(r["quantity"], 5);
        assert_eq!(r["available"], 4);
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ':' || delta, ',' ORDER BY id) FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'write_off'"
            )),
            "write_off:-3,write_off:-2"
        );
        // on-hand states move between each other without changing quantity
        let r = mv(A, "damaged", "safety_stock", "1");
        assert_eq!(r["quantity"], 5);
        assert_eq!(r["states"]["safety_stock"], 1);
        assert_eq!(r["states"]["damaged"], 0);
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_move_never_takes_held_or_missing_units() {
        item(A, "5");
        call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":4}}]')"#
        ));
        // 1 is free: the held units can't be set aside
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 2)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "1");
        assert_err(
            &format!(
                "SELECT atomic_inventory.move_stock_state('{A}', 'available', 'written_off', 2)"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        mv(A, "available", "damaged", "1");
        let (msg, d) = assert_err(
            &format!("SELECT atomic_inventory.move_stock_state('{A}', 'damaged', 'available', 2)"),
            "PT409",
            "INSUFFICIENT_STOCK_STATE",
        );
        assert_eq!(d["held"], "1", "{msg}");
        assert_eq!(d["state"], "damaged");
        assert_err(
            &format!("SELECT atomic_inventory.move_stock_state('{A}', 'incoming', 'available', 1)"),
            "PT409",
            "INSUFFICIENT_STOCK_STATE",
        );
        // backorders don't reach into set-aside units either: with a limit,
        // available goes negative but a move to a state needs units on hand
        call(&format!("atomic_inventory.set_backorder_limit('{A}', 3)"));
        assert_err(
            &format!("SELECT atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let r = call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_eq!(r["backordered"], 3);
        let g = call(&format!("atomic_inventory.get_inventory('{A}')"));
        assert_eq!(g["available"], -3);
        assert_eq!(g["backordered"], 3);
        // the limit can't drop below what is owed, set-aside units counted
        assert_err(
            &format!("SELECT atomic_inventory.set_backorder_limit('{A}', 2)"),
            "PT409",
            "BACKORDERS_EXCEED_LIMIT",
        );
        // a stock count can't go below the held and set-aside units
        call(&format!("atomic_inventory.set_backorder_limit('{A}', 3)"));
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', 4, p_force => true)"),
            "PT409",
            "BELOW_RESERVED",
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn bad_moves_are_refused_with_their_codes() {
        item(A, "5");
        let bad = |args: &str, state: &str, code: &str| {
            assert_err(
                &format!("SELECT atomic_inventory.move_stock_state({args})"),
                state,
                code,
            )
        };
        let (_, d) = bad(
            &format!("'{A}', 'available', 'broken', 1"),
            "22023",
            "UNKNOWN_STOCK_STATE",
        );
        assert_eq!(d["field"], "p_to");
        assert_eq!(d["value"], "broken");
        bad(
            &format!("'{A}', 'written_off', 'available', 1"),
            "22023",
            "UNKNOWN_STOCK_STATE",
        );
        bad(
            &format!("'{A}', 'available', 'ordered', 1"),
            "22023",
            "UNKNOWN_STOCK_STATE",
        );
        bad(
            &format!("'{A}', 'Damaged', 'available', 1"),
            "22023",
            "UNKNOWN_STOCK_STATE",
        );
        bad(
            &format!("'{A}', NULL, 'available', 1"),
            "22023",
            "INVALID_INPUT",
        );
        bad(
            &format!("'{A}', 'damaged', 'damaged', 1"),
            "22023",
            "INVALID_INPUT",
        );
        bad(
            &format!("'{A}', 'available', 'incoming', 1"),
            "22023",
            "INVALID_INPUT",
        );
        bad(
            &format!("'{A}', 'ordered', 'available', 1"),
            "22023",
            "INVALID_INPUT",
        );
        for q in ["0", "-1", "'NaN'", "'Infinity'", "NULL", "1000000000001"] {
            bad(
                &format!("'{A}', 'available', 'damaged', {q}"),
                "22023",
                "INVALID_QUANTITY",
            );
        }
        bad(
            &format!("'{MISSING}', 'available', 'damaged', 1"),
            "PT404",
            "NOT_FOUND",
        );
        bad("NULL, 'available', 'damaged', 1", "22023", "INVALID_INPUT");
        // untracked, striped and kit items keep no states
        item(B, "4");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{B}'"
        ))
        .unwrap();
        bad(
            &format!("'{B}', 'available', 'damaged', 1"),
            "22023",
            "INVALID_INPUT",
        );
        let s = "00000000-0000-0000-0000-00000000000d";
        item(s, "10");
        call(&format!("atomic_inventory.stripe_item('{s}', 2)"));
        bad(
            &format!("'{s}', 'available', 'damaged', 1"),
            "22023",
            "INVALID_INPUT",
        );
        let kit = "00000000-0000-0000-0000-00000000000c";
        item(kit, "0");
        call(&format!(
            r#"atomic_inventory.define_kit('{kit}', '[{{"inventory_id":"{A}","quantity":1}}]')"#
        ));
        bad(
            &format!("'{kit}', 'ordered', 'incoming', 1"),
            "22023",
            "INVALID_INPUT",
        );
        // nothing moved
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.stock_states"),
            "0"
        );
    }

    #[pg_test]
    fn another_tenants_item_is_not_found() {
        item(A, "5");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'store-a' WHERE id = '{A}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'store-b'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("SET atomic_inventory.tenant_id = 'store-a'").unwrap();
        mv(A, "available", "damaged", "1");
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            scalar(&format!(
                "SELECT tenant_id FROM atomic_inventory.ledger WHERE inventory_id = '{A}' AND kind = 'state_move'"
            )),
            "store-a"
        );
    }

    #[pg_test]
    fn a_key_replays_the_first_move() {
        item(A, "5");
        let first = call(&format!(
            "atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 2, p_idempotency_key => 'm-1')"
        ));
        let again = call(&format!(
            "atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 2, p_idempotency_key => 'm-1')"
        ));
        assert_eq!(first, again);
        assert_eq!(
            call(&format!("atomic_inventory.get_inventory('{A}')"))["unsellable"],
            2
        );
        assert_err(
            &format!(
                "SELECT atomic_inventory.move_stock_state('{A}', 'available', 'damaged', 3, p_idempotency_key => 'm-1')"
            ),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
    }

    #[pg_test]
    fn the_check_keeps_set_aside_units_on_hand() {
        item(A, "5");
        for set in [
            "unsellable = 6",
            "unsellable = -1",
            "unsellable = 'NaN'",
            "unsellable = 3, reserved = 3",
        ] {
            let (state, msg, _) = err(&format!(
                "UPDATE atomic_inventory.items SET {set} WHERE id = '{A}'"
            ));
            assert_eq!(state, "23514", "{set}: {msg}");
        }
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET unsellable = 2, reserved = 3 WHERE id = '{A}'"
        ))
        .unwrap();
        // with a limit, the held and set-aside units may reach past quantity by it
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET backorder_limit = 1, unsellable = 3 WHERE id = '{A}'"
        ))
        .unwrap();
    }

    #[pg_test]
    fn striping_and_kits_refuse_items_with_states() {
        item(A, "5");
        mv(A, "ordered", "incoming", "2");
        assert_err(
            &format!("SELECT atomic_inventory.stripe_item('{A}', 2)"),
            "22023",
            "INVALID_INPUT",
        );
        item(B, "0");
        mv(B, "ordered", "incoming", "1");
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.define_kit('{B}', '[{{"inventory_id":"{A}","quantity":1}}]')"#
            ),
            "PT409",
            "KIT_HAS_STOCK",
        );
    }

    #[pg_test]
    fn set_aside_units_count_for_low_stock_and_stock_events() {
        item(A, "10");
        call(&format!("atomic_inventory.set_reorder_point('{A}', 5)"));
        mv(A, "available", "damaged", "6");
        assert_eq!(
            scalar(&format!(
                "SELECT available::text FROM atomic_inventory.low_stock_items() WHERE inventory_id = '{A}'"
            )),
            "4"
        );
        assert_eq!(
            call(&format!("atomic_inventory.set_reorder_point('{A}', 5)"))["available"],
            4
        );
        // the last free units set aside: out of stock; one back: in stock
        mv(A, "available", "quality_control", "4");
        mv(A, "quality_control", "available", "1");
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ':' || available_before || '>' || available_after, ' ' ORDER BY id) \
                   FROM atomic_inventory.events WHERE inventory_id = '{A}'"
            )),
            "low_stock:10>4 out_of_stock:4>0 back_in_stock:0>1"
        );
    }

    #[pg_test]
    fn every_pair_has_a_plan_or_a_reason() {
        use State::*;
        let all = [
            Available,
            Damaged,
            QualityControl,
            SafetyStock,
            Incoming,
            Ordered,
            WrittenOff,
        ];
        for from in all {
            for to in all {
                let p = plan(from, to);
                let never = from == to
                    || (from == Ordered && to != Incoming)
                    || (to == Incoming && from != Ordered);
                match p {
                    Err(_) => assert!(never, "{from:?} -> {to:?} refused"),
                    Ok(p) => {
                        assert!(!never, "{from:?} -> {to:?} allowed");
                        // only units leaving available need free stock
                        assert_eq!(p.needs_free, from == Available, "{from:?} -> {to:?}");
                        // quantity changes only on the way in from incoming
                        // or out to written_off
                        let q = match (from, to) {
                            (Incoming, WrittenOff) => 0,
                            (Incoming, _) => 1,
                            (_, WrittenOff) => -1,
                            _ => 0,
                        };
                        assert_eq!(p.quantity_sign, q, "{from:?} -> {to:?}");
                    }
                }
            }
        }
    }
}
