//! `#[pg_test]`s for warehouse packing: the packing RPC's nine validations, each with
//! its own code, and the happy paths, each body run over both packing
//! sources: the extension's own tables and a warehouse's own tables bound
//! with bind_packing_source. The concurrent scenarios (basket exhaustion by
//! two workers, 50 packers on one line) are in pg_test/.

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

    /// One packing source as the tests call it: the extension's tables
    /// (`own`) or the warehouse's own, in schema wh, bound as `wh`.
    struct Fixture {
        own: bool,
    }

    impl Fixture {
        fn name(&self) -> &'static str {
            if self.own {
                "own"
            } else {
                "bound"
            }
        }

        fn sessions(&self) -> &'static str {
            if self.own {
                "atomic_inventory.picking_sessions"
            } else {
                "wh.picking_sessions"
            }
        }

        fn lines(&self) -> &'static str {
            if self.own {
                "atomic_inventory.packing_progress"
            } else {
                "wh.packing_progress"
            }
        }

        fn orders(&self) -> &'static str {
            if self.own {
                "atomic_inventory.orders"
            } else {
                "wh.orders"
            }
        }

        /// the orders table's status column
        fn order_status(&self) -> &'static str {
            if self.own {
                "status"
            } else {
                "sleeves_status"
            }
        }

        /// Session in packing with `picked` units of PRODUCT; two orders
        /// needing `need1` and `need2`; a line of another session.
        fn warehouse(&self, picked: i32, need1: i32, need2: i32) {
            if self.own {
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
                return;
            }
            // the warehouse app's tables, as its packing RPC has them
            Spi::run(&format!(
                "CREATE SCHEMA wh;
                 CREATE TABLE wh.picking_sessions (id uuid PRIMARY KEY, status text NOT NULL,
                   last_activity_at timestamptz, tenant_id text);
                 CREATE TABLE wh.orders (id uuid PRIMARY KEY, sleeves_status text NOT NULL DEFAULT 'new',
                   order_number text);
                 CREATE TABLE wh.packing_progress (id uuid PRIMARY KEY, picking_session_id uuid NOT NULL,
                   order_id uuid NOT NULL, product_id uuid NOT NULL, quantity_needed integer NOT NULL,
                   quantity_packed integer NOT NULL DEFAULT 0, created_at timestamptz DEFAULT now(),
                   updated_at timestamptz);
                 CREATE TABLE wh.picking_session_items (picking_session_id uuid, product_id uuid,
                   quantity_picked integer NOT NULL, PRIMARY KEY (picking_session_id, product_id));
                 INSERT INTO wh.picking_sessions VALUES ('{SESSION}', 'packing', now() - interval '1 hour', NULL),
                                                        ('{OTHER_SESSION}', 'packing', now(), NULL);
                 INSERT INTO wh.picking_session_items VALUES ('{SESSION}', '{PRODUCT}', {picked});
                 INSERT INTO wh.orders (id, order_number) VALUES ('{ORDER1}', '#1001'), ('{ORDER2}', '#1002');
                 INSERT INTO wh.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
                   VALUES ('{LINE1}', '{SESSION}', '{ORDER1}', '{PRODUCT}', {need1}),
                          ('{LINE2}', '{SESSION}', '{ORDER2}', '{PRODUCT}', {need2}),
                          ('{FOREIGN_LINE}', '{OTHER_SESSION}', '{ORDER2}', '{PRODUCT}', 1);"
            ))
            .unwrap();
            call(
                "atomic_inventory.bind_packing_source('wh', 'wh.picking_sessions', 'wh.packing_progress',
                   'wh.orders', 'wh.picking_session_items', p_tenant_column => 'tenant_id')",
            );
        }

        fn pack(&self, line: &str, extra: &str) -> String {
            if self.own {
                format!(
                    "SELECT atomic_inventory.increment_packing_quantity(p_progress_id => '{line}', \
                     p_quantity_needed => 99, p_picked_quantity => 99, p_session_id => '{SESSION}', \
                     p_product_id => '{PRODUCT}'{extra})"
                )
            } else {
                format!(
                    "SELECT atomic_inventory.bound_increment_packing_quantity('wh', p_progress_id => '{line}', \
                     p_session_id => '{SESSION}', p_product_id => '{PRODUCT}'{extra})"
                )
            }
        }

        fn unpack(&self, line: &str, extra: &str) -> String {
            if self.own {
                format!(
                    "SELECT atomic_inventory.decrement_packing_quantity(p_progress_id => '{line}', \
                     p_session_id => '{SESSION}'{extra})"
                )
            } else {
                format!(
                    "SELECT atomic_inventory.bound_decrement_packing_quantity('wh', p_progress_id => '{line}', \
                     p_session_id => '{SESSION}'{extra})"
                )
            }
        }

        fn packed(&self, line: &str) -> String {
            scalar(&format!(
                "SELECT quantity_packed::text FROM {} WHERE id = '{line}'",
                self.lines()
            ))
        }
    }

    fn both(body: impl Fn(&Fixture)) {
        for f in [Fixture { own: true }, Fixture { own: false }] {
            body(&f);
        }
    }

    #[pg_test]
    fn pack_one_returns_the_progress_row_and_touches_activity() {
        both(|f| {
            f.warehouse(5, 3, 2);
            let r = call(&f.pack(LINE1, "").replace("SELECT ", ""));
            assert_eq!(r["success"], true, "{}", f.name());
            assert_eq!(r["id"], LINE1, "{}", f.name());
            assert_eq!(r["quantity_packed"], 1, "{}", f.name());
            assert_eq!(r["quantity_needed"], 3, "{}", f.name());
            assert_eq!(r["remaining"], 2, "{}", f.name());
            assert_eq!(
                scalar(&format!(
                    "SELECT (last_activity_at > now() - interval '1 minute')::text FROM {} WHERE id = '{SESSION}'",
                    f.sessions()
                )),
                "true",
                "{}",
                f.name()
            );
        });
    }

    #[pg_test]
    fn pack_several_at_once_and_unpack() {
        both(|f| {
            f.warehouse(5, 3, 2);
            let r = call(&f.pack(LINE1, ", p_quantity => 3").replace("SELECT ", ""));
            assert_eq!(r["quantity_packed"], 3, "{}", f.name());
            let u = call(&f.unpack(LINE1, ", p_quantity => 2").replace("SELECT ", ""));
            assert_eq!(u["quantity_packed"], 1, "{}", f.name());
            assert_err(
                &f.unpack(LINE1, ", p_quantity => 2"),
                "PT409",
                "NOTHING_TO_UNPACK",
            );
            assert_eq!(f.packed(LINE1), "1", "{}", f.name());
        });
    }

    #[pg_test]
    fn e1_session_not_found() {
        both(|f| {
            f.warehouse(5, 3, 2);
            assert_err(
                &f.pack(LINE1, "").replace(SESSION, MISSING),
                "PT404",
                "SESSION_NOT_FOUND",
            );
        });
    }

    #[pg_test]
    fn e2_session_not_in_packing() {
        both(|f| {
            f.warehouse(5, 3, 2);
            for status in ["picking", "completed", "cancelled"] {
                Spi::run(&format!(
                    "UPDATE {} SET status = '{status}' WHERE id = '{SESSION}'",
                    f.sessions()
                ))
                .unwrap();
                let (_, d) = assert_err(&f.pack(LINE1, ""), "PT409", "SESSION_NOT_PACKING");
                assert_eq!(d["status"], status, "{}", f.name());
            }
            assert_eq!(f.packed(LINE1), "0", "{}", f.name());
        });
    }

    #[pg_test]
    fn e3_progress_not_found() {
        both(|f| {
            f.warehouse(5, 3, 2);
            assert_err(&f.pack(MISSING, ""), "PT404", "PROGRESS_NOT_FOUND");
        });
    }

    #[pg_test]
    fn e4_progress_of_another_session_is_refused() {
        both(|f| {
            f.warehouse(5, 3, 2);
            assert_err(
                &f.pack(FOREIGN_LINE, ""),
                "PT403",
                "PROGRESS_SESSION_MISMATCH",
            );
            // a product that isn't the line's is refused the same way
            assert_err(
                &f.pack(LINE1, "").replace(PRODUCT, MISSING),
                "PT403",
                "PROGRESS_SESSION_MISMATCH",
            );
            assert_eq!(f.packed(FOREIGN_LINE), "0", "{}", f.name());
        });
    }

    #[pg_test]
    fn e5_order_not_found() {
        both(|f| {
            f.warehouse(5, 3, 2);
            // the extension's tables: only reachable if the FK is bypassed;
            // simulate a dangling order
            Spi::run("SET session_replication_role = replica").unwrap();
            Spi::run(&format!("DELETE FROM {} WHERE id = '{ORDER1}'", f.orders())).unwrap();
            Spi::run("RESET session_replication_role").unwrap();
            assert_err(&f.pack(LINE1, ""), "PT404", "ORDER_NOT_FOUND");
        });
    }

    #[pg_test]
    fn e6_completed_orders_are_frozen() {
        both(|f| {
            f.warehouse(5, 3, 2);
            for status in ["ready_to_ship", "shipped", "delivered"] {
                Spi::run(&format!(
                    "UPDATE {} SET {} = '{status}' WHERE id = '{ORDER1}'",
                    f.orders(),
                    f.order_status()
                ))
                .unwrap();
                let (msg, d) = assert_err(&f.pack(LINE1, ""), "PT409", "ORDER_COMPLETED");
                assert!(msg.contains("#1001"), "{}: {msg}", f.name());
                assert_eq!(d["status"], status, "{}", f.name());
            }
        });
    }

    #[pg_test]
    fn e7_closed_orders_cannot_be_packed() {
        both(|f| {
            f.warehouse(5, 3, 2);
            for status in ["cancelled", "rejected", "returned"] {
                Spi::run(&format!(
                    "UPDATE {} SET {} = '{status}' WHERE id = '{ORDER1}'",
                    f.orders(),
                    f.order_status()
                ))
                .unwrap();
                let (msg, _) = assert_err(&f.pack(LINE1, ""), "PT409", "ORDER_CLOSED");
                assert!(msg.contains(status), "{}: {msg}", f.name());
            }
        });
    }

    #[pg_test]
    fn e8_no_over_packing_of_a_line() {
        both(|f| {
            f.warehouse(10, 2, 2);
            call(&f.pack(LINE1, ", p_quantity => 2").replace("SELECT ", ""));
            let (_, d) = assert_err(&f.pack(LINE1, ""), "PT409", "ALREADY_FULLY_PACKED");
            assert_eq!(d["quantity_needed"], 2, "{}", f.name());
            assert_err(
                &f.pack(LINE2, ", p_quantity => 3"),
                "PT409",
                "ALREADY_FULLY_PACKED",
            );
            assert_eq!(f.packed(LINE1), "2", "{}", f.name());
        });
    }

    /// A line near the integer column's maximum: the check adds in 64 bits
    /// (the i32 sum overflowed: a panic, INTERNAL, in a debug build).
    #[pg_test]
    fn e8_holds_at_the_integer_maximum() {
        both(|f| {
            f.warehouse(i32::MAX, i32::MAX, 1);
            Spi::run(&format!(
                "UPDATE {} SET quantity_packed = 2147483640 WHERE id = '{LINE1}'",
                f.lines()
            ))
            .unwrap();
            let (_, d) = assert_err(
                &f.pack(LINE1, ", p_quantity => 10000"),
                "PT409",
                "ALREADY_FULLY_PACKED",
            );
            assert_eq!(d["quantity_packed"], 2147483640_i64, "{}: {d}", f.name());
            call(&f.pack(LINE1, ", p_quantity => 7").replace("SELECT ", ""));
            assert_eq!(f.packed(LINE1), "2147483647", "{}", f.name());
        });
    }

    #[pg_test]
    fn e9_basket_limit_spans_orders() {
        both(|f| {
            // 3 picked, orders need 2 + 2: the fourth unit has nowhere to come from
            f.warehouse(3, 2, 2);
            call(&f.pack(LINE1, ", p_quantity => 2").replace("SELECT ", ""));
            call(&f.pack(LINE2, "").replace("SELECT ", ""));
            let (_, d) = assert_err(&f.pack(LINE2, ""), "PT409", "BASKET_EXHAUSTED");
            assert_eq!(d["quantity_picked"], 3, "{}", f.name());
            assert_eq!(d["total_packed"], 3, "{}", f.name());
            assert_eq!(f.packed(LINE2), "1", "{}", f.name());
            // unpacking one frees a unit for the other order
            call(&f.unpack(LINE1, "").replace("SELECT ", ""));
            call(&f.pack(LINE2, "").replace("SELECT ", ""));
            assert_eq!(f.packed(LINE2), "2", "{}", f.name());
        });
    }

    #[pg_test]
    fn client_numbers_cannot_widen_the_limits() {
        // (the own function's p_quantity_needed and p_picked_quantity: the
        // client claims 99 needed and 99 picked; the tables say 1 and 1)
        both(|f| {
            f.warehouse(1, 1, 1);
            call(&f.pack(LINE1, "").replace("SELECT ", ""));
            assert_err(&f.pack(LINE1, ""), "PT409", "ALREADY_FULLY_PACKED");
            assert_err(&f.pack(LINE2, ""), "PT409", "BASKET_EXHAUSTED");
        });
    }

    #[pg_test]
    fn bad_input() {
        both(|f| {
            f.warehouse(5, 3, 2);
            for q in ["0", "-1", "10001"] {
                assert_err(
                    &f.pack(LINE1, &format!(", p_quantity => {q}")),
                    "22023",
                    "INVALID_QUANTITY",
                );
            }
            assert_eq!(f.packed(LINE1), "0", "{}", f.name());
        });
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
        for (sql, field) in [
            (format!("atomic_inventory.bound_increment_packing_quantity('wh', '{LINE1}', NULL)"), "p_session_id"),
            (format!("atomic_inventory.bound_increment_packing_quantity('wh', 'not-a-uuid', '{SESSION}')"), "p_progress_id"),
            (format!("atomic_inventory.bound_decrement_packing_quantity('wh', NULL, '{SESSION}')"), "p_progress_id"),
            (format!("atomic_inventory.bound_increment_packing_quantity('wh', '{LINE1}', '{SESSION}', 'x')"), "p_product_id"),
        ] {
            let (_, d) = assert_err(&format!("SELECT {sql}"), "22023", "INVALID_INPUT");
            assert_eq!(d["field"], field, "{sql}");
        }
        // a source of another kind, an unknown one
        Spi::run(
            "CREATE TABLE public.pk_stock (id int PRIMARY KEY, q int NOT NULL CHECK (q >= 0))",
        )
        .unwrap();
        call("atomic_inventory.bind_stock_source('pk_stock', 'public.pk_stock', 'id', 'q')");
        assert_err(
            &format!("SELECT atomic_inventory.bound_increment_packing_quantity('pk_stock', '{LINE1}', '{SESSION}')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.bound_increment_packing_quantity('nope', '{LINE1}', '{SESSION}')"),
            "PT404",
            "NOT_FOUND",
        );
    }

    #[pg_test]
    fn sessions_are_tenant_scoped() {
        both(|f| {
            f.warehouse(5, 3, 2);
            Spi::run(&format!(
                "UPDATE {} SET tenant_id = 'wh-1' WHERE id = '{SESSION}'",
                f.sessions()
            ))
            .unwrap();
            as_app_user();
            Spi::run("SET atomic_inventory.tenant_id = 'wh-2'").unwrap();
            assert_err(&f.pack(LINE1, ""), "PT404", "SESSION_NOT_FOUND");
            Spi::run("SET atomic_inventory.tenant_id = 'wh-1'").unwrap();
            call(&f.pack(LINE1, "").replace("SELECT ", ""));
            // another tenant's line, named with our own session: not found,
            // as other tenants' rows always answer (and never locked by us);
            // it was PROGRESS_SESSION_MISMATCH, which told that it exists
            Spi::run("RESET ROLE").unwrap();
            Spi::run(&format!(
                "UPDATE {} SET tenant_id = 'wh-2' WHERE id = '{OTHER_SESSION}'",
                f.sessions()
            ))
            .unwrap();
            as_app_user();
            assert_err(&f.pack(FOREIGN_LINE, ""), "PT404", "PROGRESS_NOT_FOUND");
            // a shared session's line is visible: still the cross-session refusal
            Spi::run("RESET ROLE").unwrap();
            Spi::run(&format!(
                "UPDATE {} SET tenant_id = NULL WHERE id = '{OTHER_SESSION}'",
                f.sessions()
            ))
            .unwrap();
            as_app_user();
            assert_err(
                &f.pack(FOREIGN_LINE, ""),
                "PT403",
                "PROGRESS_SESSION_MISMATCH",
            );
            Spi::run("RESET atomic_inventory.tenant_id").unwrap();
            Spi::run("RESET ROLE").unwrap();
            assert_eq!(f.packed(LINE1), "1", "{}", f.name());
        });
    }

    /// A pack that the table's own trigger skips is refused, nothing
    /// changed (an idempotent retry replays the first answer).
    #[pg_test]
    fn a_skipped_pack_is_refused_and_a_keyed_one_replays() {
        both(|f| {
            f.warehouse(5, 3, 2);
            veto_updates(f.lines());
            let (state, msg, _) = err(&f.pack(LINE1, ""));
            assert_eq!(state, "22023", "{}: {msg}", f.name());
            assert!(msg.contains("skipped the write"), "{}: {msg}", f.name());
            Spi::run(&format!("DROP TRIGGER veto ON {}", f.lines())).unwrap();
            assert_eq!(f.packed(LINE1), "0", "{}", f.name());
        });
        let keyed = format!(
            "atomic_inventory.bound_increment_packing_quantity('wh', '{LINE1}', '{SESSION}', \
             p_idempotency_key => 'pk-1')"
        );
        let first = call(&keyed);
        assert_eq!(call(&keyed), first);
        assert_eq!(Fixture { own: false }.packed(LINE1), "1");
    }

    /// bind_packing_source checks what it is given.
    #[pg_test]
    fn binding_packing_tables_checks_them() {
        Fixture { own: false }.warehouse(5, 3, 2);
        let bind = |extra: &str| {
            format!(
                "SELECT atomic_inventory.bind_packing_source('wh2', 'wh.picking_sessions', 'wh.packing_progress',
                   'wh.orders', 'wh.picking_session_items'{extra})"
            )
        };
        for (extra, field) in [
            (
                ", p_line_needed_column => 'created_at'",
                "p_line_needed_column",
            ),
            (
                ", p_line_session_column => 'quantity_needed'",
                "p_line_session_column",
            ),
            (
                ", p_session_activity_column => 'status'",
                "p_session_activity_column",
            ),
            (", p_order_status_column => 'nope'", "p_order_status_column"),
            (
                ", p_picked_product_column => 'quantity_picked'",
                "p_picked_product_column",
            ),
            (
                ", p_completed_values => ARRAY['shipped', NULL]",
                "p_completed_values",
            ),
            (", p_closed_values => ARRAY['shipped']", "p_closed_values"),
        ] {
            let (_, d) = assert_err(&bind(extra), "22023", "INVALID_INPUT");
            assert_eq!(d["field"], field, "{extra}");
        }
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bind_packing_source('wh2', 'wh.picking_sessions', 'wh.picking_sessions',
               'wh.orders', 'wh.picking_session_items')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_sessions");
        // an enum status: the vocabulary must be its labels
        Spi::run("CREATE TYPE wh.order_state AS ENUM ('new', 'ready_to_ship', 'shipped', 'delivered', 'cancelled', 'rejected', 'returned')").unwrap();
        Spi::run("ALTER TABLE wh.orders ALTER COLUMN sleeves_status DROP DEFAULT, ALTER COLUMN sleeves_status TYPE wh.order_state USING sleeves_status::wh.order_state").unwrap();
        let (_, d) = assert_err(
            &bind(", p_closed_values => ARRAY['lost']"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_closed_values");
        let done = call(&bind("").replace("SELECT ", ""));
        assert_eq!(done["kind"], "packing");
        // the bound table changed under its binding: refused, named
        Spi::run("ALTER TABLE wh.packing_progress ALTER COLUMN quantity_packed TYPE numeric")
            .unwrap();
        let (msg, _) = assert_err(
            &format!("SELECT atomic_inventory.bound_increment_packing_quantity('wh2', '{LINE1}', '{SESSION}')"),
            "22023",
            "INVALID_INPUT",
        );
        assert!(msg.contains("quantity_packed"), "{msg}");
        // a dropped table: SOURCE_GONE's answer, and unbinding works
        Spi::run("DROP TABLE wh.picking_session_items").unwrap();
        let (msg, _) = assert_err(
            &format!("SELECT atomic_inventory.bound_increment_packing_quantity('wh2', '{LINE1}', '{SESSION}')"),
            "22023",
            "INVALID_INPUT",
        );
        assert!(msg.contains("no longer exists"), "{msg}");
        call("atomic_inventory.unbind_source('wh2')");
        assert_eq!(
            scalar(
                "SELECT count(*)::text FROM atomic_inventory.packing_bindings WHERE name = 'wh2'"
            ),
            "0"
        );
    }

    const PACKING_RECIPE: &str = include_str!("../../docs/recipes/packing_rpc.sql");

    /// The warehouse app's tables as its packing RPC has them, in public,
    /// with the recipe on top: its call keeps working, on our path.
    #[pg_test]
    fn recipe_packing_rpc_keeps_increment_packing_quantity() {
        Spi::run(&format!(
            "CREATE TABLE public.picking_sessions (id uuid PRIMARY KEY, status text NOT NULL,
               last_activity_at timestamptz);
             CREATE TABLE public.orders (id uuid PRIMARY KEY, sleeves_status text NOT NULL,
               order_number text);
             CREATE TABLE public.packing_progress (id uuid PRIMARY KEY, picking_session_id uuid NOT NULL
               REFERENCES public.picking_sessions, order_id uuid NOT NULL REFERENCES public.orders,
               product_id uuid NOT NULL, quantity_needed integer NOT NULL,
               quantity_packed integer NOT NULL DEFAULT 0, created_at timestamptz DEFAULT now(),
               updated_at timestamptz DEFAULT now());
             CREATE TABLE public.picking_session_items (picking_session_id uuid REFERENCES public.picking_sessions,
               product_id uuid, quantity_picked integer NOT NULL,
               PRIMARY KEY (picking_session_id, product_id));
             INSERT INTO public.picking_sessions VALUES ('{SESSION}', 'packing', NULL);
             INSERT INTO public.orders VALUES ('{ORDER1}', 'packing', '#1001');
             INSERT INTO public.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
               VALUES ('{LINE1}', '{SESSION}', '{ORDER1}', '{PRODUCT}', 2);
             INSERT INTO public.picking_session_items VALUES ('{SESSION}', '{PRODUCT}', 5);"
        ))
        .unwrap();
        Spi::run(PACKING_RECIPE).unwrap();
        let call = |needed: i32| {
            format!(
                "SELECT quantity_packed::text || '/' || remaining::text FROM public.increment_packing_quantity(
                   '{LINE1}', {needed}, 99, '{SESSION}', '{PRODUCT}')"
            )
        };
        assert_eq!(scalar(&call(2)), "1/1");
        // the client's numbers widen nothing
        assert_eq!(scalar(&call(99)), "2/0");
        assert_err(&call(99), "PT409", "ALREADY_FULLY_PACKED");
        assert_eq!(
            scalar(&format!(
                "SELECT (last_activity_at IS NOT NULL)::text FROM public.picking_sessions WHERE id = '{SESSION}'"
            )),
            "true"
        );
        assert!(
            include_str!("../../docs/adopting.md").contains(PACKING_RECIPE.trim()),
            "docs/adopting.md lacks the packing RPC recipe"
        );
    }
}
