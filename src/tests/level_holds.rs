//! `#[pg_test]`s for reservations at locations: a line naming a
//! `location_id` holds at that level, and its commit (whole or partial),
//! release and expiry act on that level; the errors of each. The invariant
//! checked throughout: each level's reserved = its active tracked lines
//! (reconcile() empty). Many connections at once:
//! pg_test/isolation/specs/level_holds.spec and pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn location(code: &str) -> String {
        call(&format!("atomic_inventory.create_location('{code}')"))["location_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// quantity/reserved of an item at a location
    fn level(item: &str, loc: &str) -> String {
        scalar(&format!(
            "SELECT quantity || '/' || reserved FROM atomic_inventory.stock_levels \
              WHERE item_id = '{item}' AND location_id = '{loc}'"
        ))
    }

    /// quantity/reserved of an item's own row (the default location)
    fn own(item: &str) -> String {
        scalar(&format!(
            "SELECT quantity || '/' || reserved FROM atomic_inventory.items WHERE id = '{item}'"
        ))
    }

    fn reconciled() -> String {
        scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()")
    }

    fn restock(item: &str, n: &str, loc: &str) {
        call(&format!(
            "atomic_inventory.increment_inventory('{item}', {n}, p_location_id => '{loc}')"
        ));
    }

    fn reserve(lines: &str) -> String {
        call(&format!("atomic_inventory.reserve_inventory('{lines}')"))["reservation_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// status, quantity, committed, released and location of a line
    fn line(rid: &str, item: &str) -> String {
        scalar(&format!(
            "SELECT status || ' ' || quantity || ' ' || committed_quantity || ' ' || released_quantity \
                    || ' ' || COALESCE(location_id::text, 'default') \
               FROM atomic_inventory.reservation_lines \
              WHERE reservation_id = '{rid}' AND inventory_id = '{item}'"
        ))
    }

    /// A hold that names no location, of an item with stock elsewhere: the
    /// default location when it covers the whole line, else the first
    /// sellable, active location by priority that does (a returns area is
    /// passed over), never split; refused when none covers it.
    #[pg_test]
    fn a_hold_naming_no_location_is_placed_by_the_policy() {
        item(A, "1");
        let low = location("store-low");
        let high = call("atomic_inventory.create_location('store-high', p_priority => 5)")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        let ret = call(
            "atomic_inventory.create_location('returns', p_priority => 9, p_sellable => false)",
        )["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        restock(A, "4", &low);
        restock(A, "4", &high);
        restock(A, "50", &ret);
        // 1 unit: the default location covers it
        let r1 = reserve(&format!(r#"[{{"inventory_id":"{A}","quantity":1}}]"#));
        assert_eq!(line(&r1, A), "active 1 0 0 default");
        assert_eq!(own(A), "1/1");
        // 3 units: the default location can't; the higher priority store can
        let r2 = reserve(&format!(r#"[{{"inventory_id":"{A}","quantity":3}}]"#));
        assert_eq!(line(&r2, A), format!("active 3 0 0 {high}"));
        assert_eq!(level(A, &high), "4/3");
        assert_eq!(level(A, &low), "4/0");
        // 4 units: only the other store covers the whole line now
        let r3 = reserve(&format!(r#"[{{"inventory_id":"{A}","quantity":4}}]"#));
        assert_eq!(line(&r3, A), format!("active 4 0 0 {low}"));
        // 2 more: 1 free at the high store, none elsewhere that sells
        let (s, _, _) = err(&format!(
            r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":2}}]')"#
        ));
        assert_eq!(s, "PT409");
        assert_eq!(level(A, &ret), "50/0");
        // the commit sells where the hold was
        call(&format!("atomic_inventory.commit_reservation('{r2}')"));
        assert_eq!(level(A, &high), "1/0");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_hold_at_a_location_takes_that_levels_units_only() {
        item(A, "10");
        let store = location("store-1");
        restock(A, "5", &store);
        let r = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":3,"location_id":"{store}"}}]')"#
        ));
        assert_eq!(r["status"], "active");
        assert_eq!(r["lines"][0]["inventory_id"], A);
        assert_eq!(r["lines"][0]["quantity"], 3);
        assert_eq!(r["lines"][0]["location_id"], store.as_str());
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(level(A, &store), "5/3");
        assert_eq!(own(A), "10/0");
        assert_eq!(line(&rid, A), format!("active 3 0 0 {store}"));
        assert_eq!(reconciled(), "0");
        // get_reservation and get_inventory say where
        let g = call(&format!("atomic_inventory.get_reservation('{rid}')"));
        assert_eq!(g["lines"][0]["location_id"], store.as_str());
        let lv = call(&format!("atomic_inventory.get_inventory('{A}', '{store}')"));
        assert_eq!(lv["reserved"], 3);
        assert_eq!(lv["available"], 2);
        // the held units can't be sold or transferred out there...
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.decrement_inventory('{A}', 3, p_location_id => '{store}')"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "2");
        assert_err(
            &format!(
                "SELECT atomic_inventory.transfer_inventory('{A}', '{store}', '00000000-0000-0000-0000-000000000000', 3)"
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        // ...nor deactivate the location
        assert_err(
            &format!("SELECT atomic_inventory.update_location('{store}', p_active => false)"),
            "PT409",
            "LOCATION_IN_USE",
        );
        // the free ones can
        call(&format!(
            "atomic_inventory.transfer_inventory('{A}', '{store}', '00000000-0000-0000-0000-000000000000', 2)"
        ));
        assert_eq!(level(A, &store), "3/3");
        assert_eq!(own(A), "12/0");
        // commit: that level's quantity and reserved drop, the ledger row names it
        let c = call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(c["status"], "committed");
        assert_eq!(c["committed"][0]["location_id"], store.as_str());
        assert_eq!(level(A, &store), "0/0");
        assert_eq!(own(A), "12/0");
        assert_eq!(
            scalar(&format!(
                "SELECT kind || ':' || delta || ':' || quantity_after || ':' || location_id \
                   FROM atomic_inventory.ledger WHERE inventory_id = '{A}' AND kind = 'commit'"
            )),
            format!("commit:-3:0:{store}")
        );
        assert_eq!(line(&rid, A), format!("committed 3 3 0 {store}"));
        assert_eq!(reconciled(), "0");
        // a location with no stock and no holds left can be deactivated
        call(&format!(
            "atomic_inventory.update_location('{store}', p_active => false)"
        ));
    }

    #[pg_test]
    fn a_reservation_mixing_locations_settles_each_line_where_it_holds() {
        item(A, "10");
        item(B, "10");
        let store = location("store-1");
        let wh = location("wh");
        restock(B, "4", &store);
        restock(A, "6", &wh);
        let rid = reserve(&format!(
            r#"[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":1,"location_id":"{store}"}},{{"inventory_id":"{B}","quantity":2,"location_id":"{store}"}}]"#
        ));
        assert_eq!(own(A), "10/2");
        assert_eq!(level(B, &store), "4/3");
        assert_eq!(own(B), "10/0");
        assert_eq!(level(A, &wh), "6/0");
        assert_eq!(line(&rid, A), "active 2 0 0 default");
        assert_eq!(line(&rid, B), format!("active 3 0 0 {store}"));
        assert_eq!(reconciled(), "0");
        // release B only: its level gets its units back
        let r = call(&format!(
            "atomic_inventory.release_reservation('{rid}', p_inventory_ids => ARRAY['{B}']::uuid[])"
        ));
        assert_eq!(r["status"], "active");
        assert_eq!(level(B, &store), "4/0");
        assert_eq!(own(A), "10/2");
        assert_eq!(reconciled(), "0");
        // commit the rest (A at the default location): a ledger row without location
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(own(A), "8/0");
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'commit' AND location_id IS NULL"
            )),
            "1"
        );
        assert_eq!(reconciled(), "0");
        // an order of lines at the default location answers as before: no location_id
        let r = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}}]')"#
        ));
        assert!(r["lines"][0].get("location_id").is_none());
        // an idempotent retry of a hold at a location answers its first result
        let sql = format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{B}","quantity":1,"location_id":"{store}"}}]', p_idempotency_key => 'cart-7')"#
        );
        let first = call(&sql);
        let again = call(&sql);
        assert_eq!(first, again);
        assert_eq!(level(B, &store), "4/1");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn partial_commits_at_a_location_keep_or_release_the_rest_there() {
        item(A, "10");
        let store = location("store-1");
        restock(A, "10", &store);
        let rid = reserve(&format!(
            r#"[{{"inventory_id":"{A}","quantity":5,"location_id":"{store}"}}]"#
        ));
        // 2 sold, 3 kept
        let c = call(&format!(
            r#"atomic_inventory.commit_reservation('{rid}', p_lines => '[{{"inventory_id":"{A}","quantity":2}}]', p_rest => 'keep')"#
        ));
        assert_eq!(c["status"], "active");
        assert_eq!(c["committed"][0]["quantity"], 2);
        assert_eq!(c["committed"][0]["location_id"], store.as_str());
        assert_eq!(c["kept"][0]["quantity"], 3);
        assert_eq!(level(A, &store), "8/3");
        assert_eq!(line(&rid, A), format!("active 3 2 0 {store}"));
        assert_eq!(reconciled(), "0");
        // 1 sold, the other 2 released
        let c = call(&format!(
            r#"atomic_inventory.commit_reservation('{rid}', p_lines => '[{{"inventory_id":"{A}","quantity":1}}]')"#
        ));
        assert_eq!(c["status"], "committed");
        assert_eq!(c["released"][0]["quantity"], 2);
        assert_eq!(level(A, &store), "7/0");
        assert_eq!(own(A), "10/0");
        assert_eq!(line(&rid, A), format!("committed 3 3 2 {store}"));
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(delta::text, ',' ORDER BY id) FROM atomic_inventory.ledger \
                  WHERE inventory_id = '{A}' AND kind = 'commit' AND location_id = '{store}'"
            )),
            "-2,-1"
        );
        assert_eq!(reconciled(), "0");
        // p_lines names a line by its item alone
        let rid2 = reserve(&format!(
            r#"[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]"#
        ));
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.commit_reservation('{rid2}', p_lines => '[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines");
        assert_eq!(level(A, &store), "7/1");
    }

    #[pg_test]
    fn an_expired_hold_at_a_location_gives_that_levels_units_back() {
        item(A, "10");
        item(B, "10");
        let store = location("store-1");
        restock(A, "4", &store);
        let r1 = reserve(&format!(
            r#"[{{"inventory_id":"{A}","quantity":4,"location_id":"{store}"}},{{"inventory_id":"{B}","quantity":1}}]"#
        ));
        // a due reservation at the default location only, swept in the same batch
        let r2 = reserve(&format!(r#"[{{"inventory_id":"{A}","quantity":3}}]"#));
        assert_eq!(level(A, &store), "4/4");
        assert_eq!(own(A), "10/3");
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' \
              WHERE id IN ('{r1}', '{r2}')"
        ))
        .unwrap();
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 2);
        assert_eq!(level(A, &store), "4/0");
        assert_eq!(own(A), "10/0");
        assert_eq!(own(B), "10/0");
        assert_eq!(line(&r1, A), format!("expired 4 0 4 {store}"));
        assert_eq!(reconciled(), "0");
        // its reservation_expired event says where each line held
        let e = call(&format!(
            "(SELECT detail FROM atomic_inventory.events WHERE reservation_id = '{r1}' \
               AND kind = 'reservation_expired')"
        ));
        assert_eq!(e["lines"][0]["inventory_id"], A);
        assert_eq!(e["lines"][0]["location_id"], store.as_str());
        assert!(e["lines"][1].get("location_id").is_none());
        // and the level's crossings name the location (its first restock
        // crossed in, the hold of its 4 units out, the expiry in again)
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind, ',' ORDER BY id) FROM atomic_inventory.events \
                  WHERE inventory_id = '{A}' AND location_id = '{store}'"
            )),
            "back_in_stock,out_of_stock,back_in_stock"
        );
        // and a commit after expiry is refused, as at the default location
        let r3 = reserve(&format!(
            r#"[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]"#
        ));
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{r3}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{r3}')"),
            "PT410",
            "RESERVATION_EXPIRED",
        );
        // release of an expired, unswept hold gives it back there
        call(&format!("atomic_inventory.release_reservation('{r3}')"));
        assert_eq!(level(A, &store), "4/0");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn holds_at_locations_are_refused_as_sales_there_are() {
        item(A, "10");
        item(B, "10");
        let store = location("store-1");
        restock(B, "2", &store);
        let hold = |lines: String| format!("SELECT atomic_inventory.reserve_inventory('{lines}')");
        // no stock level there
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{A}","quantity":1,"location_id":"{store}"}}]"#
            )),
            "PT404",
            "LEVEL_NOT_FOUND",
        );
        assert_eq!(d["location_id"], store.as_str());
        // unknown location, another tenant's location
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{B}","quantity":1,"location_id":"{MISSING}"}}]"#
            )),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        let theirs = call("atomic_inventory.create_location('b-1', p_tenant_id => 'shop-b')")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        restock(B, "5", &theirs);
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-a'").unwrap();
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{B}","quantity":1,"location_id":"{theirs}"}}]"#
            )),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "location");
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        // not sellable (a returns area), inactive
        let returns = call("atomic_inventory.create_location('ret', p_sellable => false)")
            ["location_id"]
            .as_str()
            .unwrap()
            .to_string();
        restock(B, "3", &returns);
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{B}","quantity":1,"location_id":"{returns}"}}]"#
            )),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        assert_eq!(d["reason"], "not sellable");
        let shut = location("shut");
        call(&format!(
            "atomic_inventory.update_location('{shut}', p_active => false)"
        ));
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{B}","quantity":1,"location_id":"{shut}"}}]"#
            )),
            "PT409",
            "LOCATION_UNAVAILABLE",
        );
        assert_eq!(d["reason"], "inactive");
        // short at the level and at the default location: both listed, nothing held
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{A}","quantity":11}},{{"inventory_id":"{B}","quantity":3,"location_id":"{store}"}}]"#
            )),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"].as_array().unwrap().len(), 2);
        // one item at two locations in one reservation
        let (_, d) = assert_err(
            &hold(format!(
                r#"[{{"inventory_id":"{B}","quantity":1}},{{"inventory_id":"{B}","quantity":1,"location_id":"{store}"}}]"#
            )),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines");
        assert_eq!(level(B, &store), "2/0");
        assert_eq!(own(A), "10/0");
        assert_eq!(own(B), "10/0");
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reservations"),
            "0"
        );
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn a_kit_held_at_a_location_holds_its_components_there() {
        item(A, "0");
        item(B, "0");
        let store = location("store-1");
        restock(A, "4", &store);
        restock(B, "4", &store);
        let kit = "00000000-0000-0000-0000-0000000000c1";
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.items (id, sku, quantity) VALUES ('{kit}', 'kit', 0)"
        ))
        .unwrap();
        call(&format!(
            r#"atomic_inventory.define_kit('{kit}', '[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":2}}]')"#
        ));
        let r = call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id":"{kit}","quantity":2,"location_id":"{store}"}}]')"#
        ));
        assert_eq!(r["kits"][0]["location_id"], store.as_str());
        assert_eq!(level(A, &store), "4/2");
        assert_eq!(level(B, &store), "4/4");
        let rid = r["reservation_id"].as_str().unwrap();
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(level(A, &store), "2/0");
        assert_eq!(level(B, &store), "0/0");
        assert_eq!(reconciled(), "0");
    }

    #[pg_test]
    fn an_adopted_table_refuses_a_line_naming_a_location() {
        Spi::run(
            "CREATE TABLE public.stock (id uuid PRIMARY KEY, q integer NOT NULL, r integer NOT NULL DEFAULT 0)",
        )
        .unwrap();
        Spi::run(&format!("INSERT INTO public.stock VALUES ('{A}', 5, 0)")).unwrap();
        call("atomic_inventory.bind_stock_source('st', 'public.stock', 'id', 'q', p_reserved_column => 'r')");
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.bound_reserve('st', '[{{"item_id":"{A}","quantity":1,"location_id":"{B}"}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines[0].location_id");
        assert_eq!(scalar("SELECT r::text FROM public.stock"), "0");
    }

    /// The statements of holds at locations find their rows by key under
    /// the settings the reservation functions run with, on generic plans
    /// (as reservation_plans_use_keys checks the default location's).
    #[pg_test]
    fn level_hold_plans_use_keys() {
        Spi::run(
            "ANALYZE atomic_inventory.items, atomic_inventory.reservations, \
                     atomic_inventory.reservation_lines, atomic_inventory.stock_levels, \
                     atomic_inventory.locations",
        )
        .unwrap();
        settings_of("atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer)");
        use crate::source::own::level_holds as h;
        for stmt in [
            &h::LOCK_FOR_HOLD,
            &h::RESERVE_APPLY_AT,
            &h::LOCK_HELD,
            &h::FINISH_AT,
            &h::COMMIT_PARTS_AT,
        ] {
            let (plan, generic) = plan_of(stmt);
            let text = plan.join("\n");
            assert!(generic, "{}: not a generic plan:\n{text}", stmt.name);
            assert!(
                !text.contains("Seq Scan"),
                "{}: scans a table:\n{text}",
                stmt.name
            );
        }
    }
}
