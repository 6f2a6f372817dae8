//! `#[pg_test]`s for reservations on bound tables (bound_reservations.rs):
//! the checkout reservation's `"Inventory"(id, quantity, reserved)` adopted as it is. The
//! races are in pg_test/bound_stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::json;

    const U1: &str = "20000000-0000-0000-0000-000000000001";
    const U2: &str = "20000000-0000-0000-0000-000000000002";
    const UX: &str = "20000000-0000-0000-0000-0000000000ff";

    fn run(sql: &str) {
        Spi::run(sql).unwrap();
    }

    /// The checkout reservation's table (Prisma's quoted name, integer columns), bound.
    fn checkout_inventory() {
        run(r#"CREATE TABLE public."Inventory" (id uuid PRIMARY KEY,
                 quantity integer NOT NULL CHECK (quantity >= 0),
                 reserved integer NOT NULL DEFAULT 0)"#);
        run(&format!(
            r#"INSERT INTO public."Inventory" VALUES ('{U1}', 10, 0), ('{U2}', 5, 0)"#
        ));
        call(
            r#"atomic_inventory.bind_stock_source('inv4', 'public."Inventory"', 'id', 'quantity',
                 p_reserved_column => 'reserved')"#,
        );
    }

    fn row(id: &str) -> (String, String) {
        let r = Spi::get_two::<String, String>(&format!(
            r#"SELECT quantity::text, reserved::text FROM public."Inventory" WHERE id = '{id}'"#
        ))
        .unwrap();
        (r.0.unwrap(), r.1.unwrap())
    }

    fn pair(q: &str, r: &str) -> (String, String) {
        (q.to_string(), r.to_string())
    }

    fn drift(src: &str) -> i64 {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM atomic_inventory.reconcile_source('{src}')"
        ))
        .unwrap()
        .unwrap()
    }

    /// A reserved column narrower than the quantity column could not hold
    /// every reservation: an integer one beside a numeric quantity rounded
    /// a hold of 0.4 to 0 (silently), a smallint one beside an integer
    /// quantity overflowed (22003). bind_stock_source refuses both; a
    /// binding made before that refused them (0.2.0) takes no new holds.
    #[pg_test]
    fn reserved_column_must_be_as_wide_as_quantity() {
        run(
            "CREATE TABLE public.wide (id bigint PRIMARY KEY, q numeric NOT NULL CHECK (q >= 0),
               r_int integer NOT NULL DEFAULT 0, r_num numeric NOT NULL DEFAULT 0)",
        );
        run(
            "CREATE TABLE public.narrow (id bigint PRIMARY KEY, q integer NOT NULL CHECK (q >= 0),
               r_small smallint NOT NULL DEFAULT 0, r_big bigint NOT NULL DEFAULT 0)",
        );
        run("INSERT INTO public.wide VALUES (1, 10, 0, 0)");
        run("INSERT INTO public.narrow VALUES (1, 100000, 0, 0)");
        for (table, column) in [("wide", "r_int"), ("narrow", "r_small")] {
            bad_bind(
                &format!(
                    "SELECT atomic_inventory.bind_stock_source('{table}', 'public.{table}', 'id', 'q', \
                       p_reserved_column => '{column}')"
                ),
                "p_reserved_column",
            );
        }
        // as wide or wider: bound, and a fractional hold is held exactly
        call("atomic_inventory.bind_stock_source('wide', 'public.wide', 'id', 'q', p_reserved_column => 'r_num')");
        call(r#"atomic_inventory.bound_reserve('wide', '[{"item_id": "1", "quantity": 0.4}]')"#);
        assert_eq!(
            Spi::get_one::<String>("SELECT r_num::text FROM public.wide").unwrap(),
            Some("0.4".into())
        );
        // a binding recorded before the check (as 0.2.0 made them; written
        // here before this backend first reads it, so no cached copy): new
        // holds refused, the column untouched
        call("atomic_inventory.bind_stock_source('narrow', 'public.narrow', 'id', 'q', p_reserved_column => 'r_big')");
        run("UPDATE atomic_inventory.bindings SET reserved_column = 'r_small' WHERE name = 'narrow'");
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_reserve('narrow', '[{"item_id": "1", "quantity": 1}]')"#,
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        assert_eq!(
            Spi::get_one::<String>("SELECT r_small::text FROM public.narrow").unwrap(),
            Some("0".into())
        );
    }

    fn reserve(lines: &str) -> String {
        let r = call(&format!(
            "atomic_inventory.bound_reserve('inv4', '{lines}', p_reference => 'cart-1')"
        ));
        assert_eq!(r["success"], true);
        assert_eq!(r["status"], "active");
        r["reservation_id"].as_str().unwrap().to_string()
    }

    #[pg_test]
    fn reserve_holds_in_the_apps_column_and_commit_and_release_settle_it() {
        checkout_inventory();
        let r = call(&format!(
            r#"atomic_inventory.bound_reserve('inv4', '[{{"item_id": "{U1}", "quantity": 2}},
                 {{"item_id": "{U2}", "quantity": 5}}, {{"item_id": "{U1}", "quantity": 1}}]')"#
        ));
        assert_eq!(r["source"], "inv4");
        assert_eq!(
            r["lines"],
            json!([{"item_id": U1, "quantity": 3}, {"item_id": U2, "quantity": 5}])
        );
        let id = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(row(U1), pair("10", "3"));
        assert_eq!(row(U2), pair("5", "5"));
        // the hold is seen by sales and by further holds
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv4', '{U2}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "0");
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.bound_reserve('inv4', '[{{"item_id": "{U1}", "quantity": 8}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let g = call(&format!("atomic_inventory.get_reservation('{id}')"));
        assert_eq!(g["source"], "inv4");
        assert_eq!(g["lines"][0]["item_id"], U1);
        assert_eq!(g["lines"][1]["status"], "active");
        // commit one line by key: quantity and reserved drop, a ledger row
        let c = call(&format!(
            "atomic_inventory.bound_commit_reservation('{id}', ARRAY['{U1}'], p_reason => 'paid')"
        ));
        assert_eq!(c["status"], "active");
        assert_eq!(c["committed"], json!([{"item_id": U1, "quantity": 3}]));
        assert_eq!(row(U1), pair("7", "0"));
        // the same line again (a concurrent request's lost race): a conflict
        // naming the line and its status, not bad input; nothing changes
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.bound_commit_reservation('{id}', ARRAY['{U1}'])"),
            "PT409",
            "LINE_NOT_ACTIVE",
        );
        assert_eq!(d["lines"], json!([{"item_id": U1, "status": "committed"}]));
        assert_eq!(row(U1), pair("7", "0"));
        // a line never in it, named with a finished one: bad input wins
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.bound_release_reservation('{id}', ARRAY['{U1}', 'nope'])"
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_item_ids");
        assert_eq!(
            scalar(&format!(
                "SELECT kind || ' ' || delta || ' ' || quantity_after || ' ' || reference || ' ' || reason
                   FROM atomic_inventory.ledger WHERE source = 'inv4' AND item_key = '{U1}' AND kind = 'commit'"
            )),
            format!("commit -3 7 {id} paid")
        );
        // the managed function takes a bound reservation too: release the rest
        let rel = call(&format!("atomic_inventory.release_reservation('{id}')"));
        assert_eq!(rel["status"], "committed");
        assert_eq!(rel["released"], json!([{"item_id": U2, "quantity": 5}]));
        assert_eq!(row(U2), pair("5", "0"));
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}')"),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        assert_eq!(drift("inv4"), 0);
        let g = call(&format!("atomic_inventory.get_reservation('{id}')"));
        assert_eq!(g["status"], "committed");
        assert_eq!(g["lines"][1]["status"], "released");
    }

    #[pg_test]
    fn bound_reservation_errors() {
        checkout_inventory();
        run("CREATE TABLE public.inventory (id uuid PRIMARY KEY, quantity numeric NOT NULL CHECK (quantity >= 0))");
        call("atomic_inventory.bind_stock_source('plain', 'public.inventory', 'id', 'quantity')");
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.bound_reserve('plain', '[{{"item_id": "{U1}", "quantity": 1}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.bound_reserve('inv4', '[{{"item_id": "{U1}", "quantity": 1}}, {{"item_id": "{UX}", "quantity": 1}}]')"#
            ),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["ids"], json!([UX]));
        assert_eq!(row(U1), pair("10", "0"), "all or nothing");
        for (sql, field) in [
            (
                r#"SELECT atomic_inventory.bound_reserve('inv4', '[{"item_id": "nope", "quantity": 1}]')"#.to_string(),
                "p_lines[0].item_id",
            ),
            (
                format!(r#"SELECT atomic_inventory.bound_reserve('inv4', '[{{"item_id": "{U1}", "quantity": 1}}]', p_ttl_seconds => 0)"#),
                "p_ttl_seconds",
            ),
            (
                "SELECT atomic_inventory.bound_reserve('inv4', '[]')".to_string(),
                "p_lines",
            ),
            // deeper than serde_json's 128 levels: was a Rust panic (XX000)
            (
                format!(
                    "SELECT atomic_inventory.bound_reserve('inv4', '[{}{}]')",
                    "[".repeat(200),
                    "]".repeat(200)
                ),
                "p_lines[0]",
            ),
        ] {
            let (_, d) = assert_err(&sql, "22023", "INVALID_INPUT");
            assert_eq!(d["field"], field, "{sql}");
        }
        // a fraction on an integer column
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.bound_reserve('inv4', '[{{"item_id": "{U1}", "quantity": 1.5}}]')"#
            ),
            "22023",
            "INVALID_QUANTITY",
        );
        let id = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 2}}]"#));
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.bound_release_reservation('{id}', ARRAY['{U2}', 'x'])"
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_item_ids");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}', ARRAY['{U2}']::uuid[])"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_inventory_ids");
        assert_err(
            &format!("SELECT atomic_inventory.bound_commit_reservation('{id}', ARRAY[]::text[])"),
            "22023",
            "INVALID_INPUT",
        );
        // expired: commit refused (PT410), nothing changed
        run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{id}'"
        ));
        assert_err(
            &format!("SELECT atomic_inventory.bound_commit_reservation('{id}')"),
            "PT410",
            "RESERVATION_EXPIRED",
        );
        assert_eq!(row(U1), pair("10", "2"));
        // a managed reservation named by key through bound_release_reservation
        item(A, "4");
        let mid = &reserve_managed(1);
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.bound_release_reservation('{mid}', ARRAY['not-a-uuid'])"
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_item_ids");
        let r = call(&format!(
            "atomic_inventory.bound_release_reservation('{mid}', ARRAY['{A}'])"
        ));
        assert_eq!(r["status"], "released");
        // a bound line named as the client wrote it to bound_reserve (upper
        // case, no hyphens): the key is normalized as bound_reserve stored it
        let spelled = "2000000000000000000000000000000F";
        run(&format!(
            r#"INSERT INTO public."Inventory" VALUES ('{spelled}', 3, 0)"#
        ));
        let id = reserve(&format!(r#"[{{"item_id": "{spelled}", "quantity": 1}}]"#));
        let r = call(&format!(
            "atomic_inventory.bound_release_reservation('{id}', ARRAY['{spelled}'])"
        ));
        assert_eq!(
            r["released"],
            json!([{"item_id": "20000000-0000-0000-0000-00000000000f", "quantity": 1}])
        );
        assert_eq!(row("20000000-0000-0000-0000-00000000000f"), pair("3", "0"));
    }

    #[pg_test]
    fn the_sweep_expires_bound_and_managed_reservations_together() {
        checkout_inventory();
        item(A, "4");
        let bound = reserve(&format!(
            r#"[{{"item_id": "{U1}", "quantity": 4}}, {{"item_id": "{U2}", "quantity": 1}}]"#
        ));
        let other = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 1}}]"#));
        let managed = reserve_managed(3);
        let keep = reserve(&format!(r#"[{{"item_id": "{U2}", "quantity": 2}}]"#));
        assert_eq!(row(U1), pair("10", "5"));
        run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute'
              WHERE id IN ('{bound}', '{other}', '{managed}')"
        ));
        // the worker's one-by-one pass (after a lock wait past
        // sweep_lock_timeout) lists only holds on managed items
        let listed = Spi::connect_mut(|c| crate::source::holds::due_ids(c, 10, &[]))
            .unwrap()
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>();
        assert_eq!(listed, vec![managed.clone()]);
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 3);
        assert_eq!(row(U1), pair("10", "0"));
        assert_eq!(row(U2), pair("5", "2"), "the unexpired hold stays");
        assert_eq!(
            scalar(&format!(
                "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "0"
        );
        for id in [&bound, &other] {
            let g = call(&format!("atomic_inventory.get_reservation('{id}')"));
            assert_eq!(g["status"], "expired");
            assert_eq!(g["lines"][0]["status"], "expired");
        }
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 0);
        // a hold that was partly committed ends committed
        let c = call(&format!("atomic_inventory.commit_reservation('{keep}')"));
        assert_eq!(c["status"], "committed");
        assert_eq!(row(U2), pair("3", "0"));
        assert_eq!(drift("inv4"), 0);
    }

    /// A reservation of `qty` units of managed item A; its id.
    fn reserve_managed(qty: u32) -> String {
        call(&format!(
            r#"atomic_inventory.reserve_inventory('[{{"inventory_id": "{A}", "quantity": {qty}}}]')"#
        ))["reservation_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A hold of 2 on the bound `Inventory` and one of 3 on managed item A,
    /// both past their expiry: (bound id, managed id).
    fn due_bound_and_managed_holds() -> (String, String) {
        checkout_inventory();
        item(A, "4");
        let bound = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 2}}]"#));
        let managed = reserve_managed(3);
        run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute'
              WHERE id IN ('{bound}', '{managed}')"
        ));
        (bound, managed)
    }

    fn status(id: &str) -> String {
        scalar(&format!(
            "SELECT status FROM atomic_inventory.reservations WHERE id = '{id}'"
        ))
    }

    /// A bound source whose table broke under its binding (its reserved
    /// column renamed) is skipped by the sweep with a warning: the managed
    /// reservations and other sources still expire. The error ended the
    /// whole sweep (and, in the background worker, the worker, every round).
    #[pg_test]
    fn a_broken_source_does_not_stop_the_sweep() {
        let (bound, managed) = due_bound_and_managed_holds();
        run(r#"ALTER TABLE public."Inventory" RENAME COLUMN reserved TO held"#);
        let r = call("atomic_inventory.expire_reservations()");
        assert_eq!(r["expired"], 1, "{r}");
        assert_eq!(status(&managed), "expired");
        assert_eq!(status(&bound), "active", "its units stay held until fixed");
        // fixed: the next sweep expires it and gives the units back
        run(r#"ALTER TABLE public."Inventory" RENAME COLUMN held TO reserved"#);
        let r = call("atomic_inventory.expire_reservations()");
        assert_eq!(r["expired"], 1, "{r}");
        assert_eq!(status(&bound), "expired");
        assert_eq!(row(U1), pair("10", "0"));
    }

    /// The sweep takes the lowest ids first and a broken source's due rows
    /// stay due. With p_limit => 1 and the broken hold first in id order,
    /// the sweep spent every round on it and expired nothing else.
    #[pg_test]
    fn a_broken_source_does_not_starve_the_others() {
        let (bound, managed) = due_bound_and_managed_holds();
        // the managed hold last in id order (foreign keys off for the swap)
        let last = "ffffffff-ffff-ffff-ffff-ffffffffffff";
        run(&format!(
            "SET LOCAL session_replication_role = replica;
             UPDATE atomic_inventory.reservations SET id = '{last}' WHERE id = '{managed}';
             UPDATE atomic_inventory.reservation_lines SET reservation_id = '{last}'
              WHERE reservation_id = '{managed}';
             SET LOCAL session_replication_role = origin"
        ));
        run(r#"ALTER TABLE public."Inventory" RENAME COLUMN reserved TO held"#);
        let r = call("atomic_inventory.expire_reservations(p_limit => 1)");
        assert_eq!(r["expired"], 1, "{r}");
        assert_eq!(status(last), "expired");
        assert_eq!(status(&bound), "active");
        assert_eq!(
            scalar(&format!(
                "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "0"
        );
        let r = call("atomic_inventory.expire_reservations(p_limit => 1)");
        assert_eq!(r["expired"], 0, "{r}");
    }

    /// The app's BEFORE UPDATE trigger returning NULL skips the write that
    /// gives a hold back or sells it: commit and release are refused
    /// (INVALID_INPUT on p_source) and the sweep skips the source, the
    /// holds stay active. Before, each ended the hold with the units still
    /// in the reserved column (and a commit sold nothing).
    #[pg_test]
    fn a_settle_the_tables_trigger_skips_keeps_the_hold() {
        checkout_inventory();
        let a = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 2}}]"#));
        let due = reserve(&format!(r#"[{{"item_id": "{U2}", "quantity": 1}}]"#));
        veto_updates(r#"public."Inventory""#);
        for f in ["commit_reservation", "release_reservation"] {
            let (msg, d) = assert_err(
                &format!("SELECT atomic_inventory.{f}('{a}')"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], "p_source", "{f}: {msg}");
        }
        run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute'
              WHERE id = '{due}'"
        ));
        let r = call("atomic_inventory.expire_reservations()");
        assert_eq!(r["expired"], 0, "{r}");
        assert_eq!(status(&a), "active");
        assert_eq!(status(&due), "active");
        assert_eq!(row(U1), pair("10", "2"));
        assert_eq!(row(U2), pair("5", "1"));
    }

    #[pg_test]
    fn unbinding_waits_for_active_holds_and_a_dropped_table_releases_them() {
        checkout_inventory();
        let id = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 2}}]"#));
        let (_, d) = assert_err(
            "SELECT atomic_inventory.unbind_source('inv4')",
            "PT409",
            "SOURCE_IN_USE",
        );
        assert_eq!(d["active_reservations"], 1);
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.bound_sources WHERE name = 'inv4'"),
            "1"
        );
        call(&format!("atomic_inventory.release_reservation('{id}')"));
        call("atomic_inventory.unbind_source('inv4')");
        // bound again, a hold, then the app drops its table: nothing to give
        // back; unbinding ends the hold
        call(
            r#"atomic_inventory.bind_stock_source('inv4', 'public."Inventory"', 'id', 'quantity',
                 p_reserved_column => 'reserved')"#,
        );
        let id = reserve(&format!(r#"[{{"item_id": "{U2}", "quantity": 1}}]"#));
        run(r#"DROP TABLE public."Inventory""#);
        call("atomic_inventory.unbind_source('inv4')");
        let g = call(&format!("atomic_inventory.get_reservation('{id}')"));
        assert_eq!(g["status"], "released");
        assert_eq!(g["lines"][0]["status"], "released");
    }

    #[pg_test]
    fn what_the_app_wrote_meanwhile_is_never_made_worse() {
        checkout_inventory();
        let a = reserve(&format!(r#"[{{"item_id": "{U1}", "quantity": 4}}]"#));
        let b = reserve(&format!(r#"[{{"item_id": "{U2}", "quantity": 3}}]"#));
        // the app zeroes the reserved column: a release leaves 0, not -4
        run(&format!(
            r#"UPDATE public."Inventory" SET reserved = 0 WHERE id = '{U1}'"#
        ));
        call(&format!("atomic_inventory.release_reservation('{a}')"));
        assert_eq!(row(U1), pair("10", "0"));
        // the app sells under the hold: the commit is refused, the hold stays
        run(&format!(
            r#"UPDATE public."Inventory" SET quantity = 2 WHERE id = '{U2}'"#
        ));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{b}')"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "2");
        let g = call(&format!("atomic_inventory.get_reservation('{b}')"));
        assert_eq!(g["status"], "active");
        // the app deletes the row: commit is NOT_FOUND, release still works
        run(&format!(
            r#"DELETE FROM public."Inventory" WHERE id = '{U2}'"#
        ));
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{b}')"),
            "PT404",
            "NOT_FOUND",
        );
        let r = call(&format!("atomic_inventory.release_reservation('{b}')"));
        assert_eq!(r["status"], "released");
    }

    #[pg_test]
    fn integer_keys_untracked_rows_tenants_and_idempotent_replay() {
        run("CREATE TABLE public.products (id integer PRIMARY KEY, stock integer NOT NULL CHECK (stock >= 0),
               held integer, sell_always boolean, tenant text)");
        run(
            "INSERT INTO public.products VALUES (9, 5, NULL, NULL, NULL), (10, 5, 0, NULL, 't2'),
               (11, 0, 0, false, NULL)",
        );
        call("atomic_inventory.bind_stock_source('prod', 'public.products', 'id', 'stock',
                p_reserved_column => 'held', p_track_column => 'sell_always', p_tenant_column => 'tenant')");
        let lines = r#"[{"item_id": 9, "quantity": 2}, {"item_id": "11", "quantity": 7}]"#;
        let first = call(&format!(
            "atomic_inventory.bound_reserve('prod', '{lines}', p_idempotency_key => 'k1')"
        ));
        let again = call(&format!(
            "atomic_inventory.bound_reserve('prod', '{lines}', p_idempotency_key => 'k1')"
        ));
        assert_eq!(first, again);
        assert_eq!(
            scalar("SELECT held::text FROM public.products WHERE id = 9"),
            "2",
            "held once"
        );
        assert_eq!(
            scalar("SELECT held::text FROM public.products WHERE id = 11"),
            "0",
            "untracked rows are not held"
        );
        let id = first["reservation_id"].as_str().unwrap().to_string();
        let c = call(&format!(
            "atomic_inventory.bound_commit_reservation('{id}', ARRAY['11', '009'])"
        ));
        assert_eq!(c["status"], "committed");
        assert_eq!(
            scalar("SELECT stock || '/' || held FROM public.products WHERE id = 9"),
            "3/0"
        );
        assert_eq!(
            scalar("SELECT stock || '/' || held FROM public.products WHERE id = 11"),
            "0/0"
        );
        // an admin's hold on t2's row is t2's reservation (it was stored
        // with the admin's tenant, NULL: shared, so any tenant could settle it)
        let t2 =
            call(r#"atomic_inventory.bound_reserve('prod', '[{"item_id": 10, "quantity": 1}]')"#);
        let t2 = t2["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(
            scalar(&format!(
                "SELECT tenant_id FROM atomic_inventory.reservations WHERE id = '{t2}'"
            )),
            "t2"
        );
        // another tenant's row is not found, for reserving as for selling
        as_app_user();
        run("SET atomic_inventory.tenant_id = 't1'");
        assert_err(
            r#"SELECT atomic_inventory.bound_reserve('prod', '[{"item_id": 10, "quantity": 1}]')"#,
            "PT404",
            "NOT_FOUND",
        );
        let mine =
            call(r#"atomic_inventory.bound_reserve('prod', '[{"item_id": 9, "quantity": 1}]')"#);
        let mid = mine["reservation_id"].as_str().unwrap().to_string();
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{t2}')"),
            "PT404",
            "NOT_FOUND",
        );
        run("RESET ROLE");
        run("SET atomic_inventory.tenant_id = 't2'");
        as_app_user();
        assert_err(
            &format!("SELECT atomic_inventory.release_reservation('{mid}')"),
            "PT404",
            "NOT_FOUND",
        );
        let r = call(&format!("atomic_inventory.release_reservation('{t2}')"));
        assert_eq!(r["status"], "released");
        run("RESET ROLE");
        run("RESET atomic_inventory.tenant_id");
        assert_eq!(drift("prod"), 0);
    }
}
