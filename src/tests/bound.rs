//! `#[pg_test]`s for adopted tables (bind.rs, bound.rs, bound_batches.rs)
//! and the drop-in recipes of docs/adopting.md. The races are in
//! pg_test/bound_stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const U1: &str = "10000000-0000-0000-0000-000000000001";
    const U2: &str = "10000000-0000-0000-0000-000000000002";
    const UX: &str = "10000000-0000-0000-0000-0000000000ff";

    fn run(sql: &str) {
        Spi::run(sql).unwrap();
    }

    /// The POS sale's table: inventory(id uuid, quantity numeric).
    fn inventory() {
        run("CREATE TABLE public.inventory (id uuid PRIMARY KEY, quantity numeric NOT NULL)");
        run(&format!(
            "INSERT INTO public.inventory VALUES ('{U1}', 10), ('{U2}', 5)"
        ));
    }

    /// The delivery app's tables: products with an integer id and quantity, batches.
    fn products_and_batches() {
        run(
            "CREATE TABLE public.products (id integer PRIMARY KEY, name text,
               available_quantity integer NOT NULL,
               CONSTRAINT products_available_quantity_nonnegative CHECK (available_quantity >= 0))",
        );
        run("INSERT INTO public.products VALUES (1, 'a', 10), (2, 'b', 3)");
        run("CREATE TABLE public.batches (id uuid PRIMARY KEY,
               status text NOT NULL DEFAULT 'available', driver_id uuid)");
        run(&format!(
            "INSERT INTO public.batches (id) VALUES ('{U1}'), ('{U2}')"
        ));
    }

    /// Identifiers that need quoting, the checkout reservation's shape plus track and tenant.
    fn stock_items() {
        run(
            r#"CREATE TABLE public."Stock Items" ("Item Id" text PRIMARY KEY,
               "On Hand" numeric NOT NULL, "Held" numeric NOT NULL DEFAULT 0,
               "Sell Always" boolean, "Tenant" text)"#,
        );
        run(
            r#"INSERT INTO public."Stock Items" VALUES ('sku-1', 10, 4, NULL, NULL),
               ('svc', 0, 0, false, NULL), ('t1-item', 5, 0, true, 't1'), ('t2-item', 5, 0, true, 't2')"#,
        );
        call(
            r#"atomic_inventory.bind_stock_source('items4', 'public."Stock Items"', 'Item Id', 'On Hand',
                 p_reserved_column => 'Held', p_track_column => 'Sell Always', p_tenant_column => 'Tenant')"#,
        );
    }

    fn bind_inventory() -> serde_json::Value {
        call("atomic_inventory.bind_stock_source('inv', 'public.inventory', 'id', 'quantity')")
    }

    fn drift(src: &str) -> i64 {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM atomic_inventory.reconcile_source('{src}')"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn bind_validation_errors() {
        inventory();
        run("CREATE TABLE public.loose (id uuid, quantity numeric CHECK (quantity >= 0), label text,
               flag boolean, n numeric(10,2) PRIMARY KEY)");
        run("CREATE UNIQUE INDEX loose_partial ON public.loose (id) WHERE label IS NULL");
        run("CREATE VIEW public.inv_view AS SELECT * FROM public.inventory");
        let b = "SELECT atomic_inventory.bind_stock_source";
        bad_bind(
            &format!("{b}('Bad-Name', 'public.inventory', 'id', 'quantity')"),
            "p_name",
        );
        bad_bind(
            &format!("{b}(NULL, 'public.inventory', 'id', 'quantity')"),
            "p_name",
        );
        bad_bind(
            &format!("{b}('x', 'public.inv_view', 'id', 'quantity')"),
            "p_relation",
        );
        bad_bind(
            &format!("{b}('x', 'atomic_inventory.items', 'id', 'quantity')"),
            "p_relation",
        );
        bad_bind(
            &format!("{b}('x', 'pg_catalog.pg_class', 'oid', 'relpages')"),
            "p_relation",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'nope', 'quantity')"),
            "p_id_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'nope')"),
            "p_quantity_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.loose', 'n', 'quantity')"),
            "p_id_column",
        );
        // not unique: no index, or only a partial one
        bad_bind(
            &format!("{b}('x', 'public.loose', 'id', 'quantity')"),
            "p_id_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.loose', 'label', 'quantity')"),
            "p_id_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'id')"),
            "p_quantity_column",
        );
        run("ALTER TABLE public.inventory ADD COLUMN note text, ADD COLUMN r2 numeric DEFAULT 0");
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'note')"),
            "p_quantity_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity', 'note')"),
            "p_reserved_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity', p_track_column => 'note')"),
            "p_track_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity', p_tenant_column => 'nope')"),
            "p_tenant_column",
        );
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity', 'quantity')"),
            "columns",
        );
        // no CHECK (quantity >= 0) and not allowed to add one
        bad_bind(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity', p_add_check => false)"),
            "p_quantity_column",
        );
        // negative rows: the added CHECK cannot be validated; nothing is left behind
        run(&format!(
            "INSERT INTO public.inventory (id, quantity) VALUES ('{UX}', -1)"
        ));
        let (msg, d) = assert_err(
            &format!("{b}('x', 'public.inventory', 'id', 'quantity')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_quantity_column");
        assert!(msg.contains("1 rows"), "{msg}");
        assert_eq!(scalar("SELECT count(*)::text FROM pg_constraint WHERE conrelid = 'public.inventory'::regclass AND contype = 'c'"), "0");
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.bindings"),
            "0"
        );
        run(&format!("DELETE FROM public.inventory WHERE id = '{UX}'"));
        bind_inventory();
        bad_bind(
            &format!("{b}('inv', 'public.inventory', 'id', 'quantity')"),
            "p_name",
        );
        // batch sources
        run("CREATE TYPE public.bstatus AS ENUM ('open', 'taken')");
        run("CREATE TABLE public.b2 (id bigint PRIMARY KEY, st public.bstatus NOT NULL DEFAULT 'open', n integer, who text)");
        let bb = "SELECT atomic_inventory.bind_batch_source";
        bad_bind(
            &format!("{bb}('y', 'public.b2', 'id', 'n', 'who')"),
            "p_status_column",
        );
        bad_bind(
            &format!("{bb}('y', 'public.b2', 'id', 'st', 'n')"),
            "p_assignee_column",
        );
        bad_bind(
            &format!("{bb}('y', 'public.b2', 'id', 'st', 'who')"),
            "p_available_value",
        );
        bad_bind(
            &format!("{bb}('y', 'public.b2', 'id', 'st', 'who', 'open', 'open')"),
            "p_claimed_value",
        );
        bad_bind(
            &format!("{bb}('y', 'public.b2', 'id', 'st', 'who', 'open', 'nope')"),
            "p_claimed_value",
        );
        let r = call("atomic_inventory.bind_batch_source('y', 'public.b2', 'id', 'st', 'who', 'open', 'taken')");
        assert_eq!(r["id_type"], "bigint");
        // unbind of an unknown name
        assert_err(
            "SELECT atomic_inventory.unbind_source('nope')",
            "PT404",
            "NOT_FOUND",
        );
        // reconcile_source answers as the bound_* functions do: NOT_FOUND
        // (entity "source") for an unknown name, INVALID_INPUT for a batch source
        let (_, d) = assert_err(
            "SELECT * FROM atomic_inventory.reconcile_source('nope')",
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["entity"], "source");
        let (_, d) = assert_err(
            "SELECT * FROM atomic_inventory.reconcile_source('y')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('y', '1', 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        // only the table's owner may bind it
        run("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ai_stranger') THEN CREATE ROLE ai_stranger; END IF; END $$");
        run("GRANT USAGE ON SCHEMA atomic_inventory TO ai_stranger");
        run("GRANT EXECUTE ON FUNCTION atomic_inventory.bind_stock_source(text, regclass, name, name, name, name, name, boolean, name) TO ai_stranger");
        run("SET ROLE ai_stranger");
        bad_bind(
            &format!("{b}('z', 'public.inventory', 'id', 'quantity')"),
            "p_relation",
        );
        run("RESET ROLE");
    }

    #[pg_test]
    fn bind_adds_and_validates_the_check_and_writes_initial_ledger_rows() {
        inventory();
        let r = bind_inventory();
        assert_eq!(r["check_added"], "inventory_ai_quantity_nonnegative");
        assert_eq!(r["initial_ledger_rows"], 2);
        assert_eq!(
            scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'inventory_ai_quantity_nonnegative'"),
            "true"
        );
        assert_eq!(drift("inv"), 0);
        // an existing CHECK is recognised, none added (the delivery app's products)
        products_and_batches();
        let r = call("atomic_inventory.bind_stock_source('products', 'public.products', 'id', 'available_quantity', p_add_check => false)");
        assert_eq!(r["check_added"], serde_json::Value::Null);
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.bound_sources"),
            "2"
        );
        // stock_valid(quantity, reserved) implies quantity >= 0: accepted;
        // a CHECK on another column, or a weaker one, is not
        run("CREATE TABLE public.sv (id uuid PRIMARY KEY, qty numeric NOT NULL, res numeric NOT NULL DEFAULT 0,
                 CHECK (atomic_inventory.stock_valid(qty, res)))");
        let r = call("atomic_inventory.bind_stock_source('sv', 'public.sv', 'id', 'qty', 'res', p_add_check => false)");
        assert_eq!(r["check_added"], serde_json::Value::Null);
        run("CREATE TABLE public.sv2 (id uuid PRIMARY KEY, qty numeric NOT NULL, res numeric NOT NULL DEFAULT 0,
                 CHECK (atomic_inventory.stock_valid(res, 0)), CHECK (qty > -5))");
        bad_bind(
            "SELECT atomic_inventory.bind_stock_source('sv2', 'public.sv2', 'id', 'qty', 'res', p_add_check => false)",
            "p_quantity_column",
        );
        // ledger off: no initial rows
        run("SET LOCAL atomic_inventory.ledger = off");
        let r = call("atomic_inventory.bind_stock_source('products2', 'public.products', 'id', 'available_quantity')");
        assert_eq!(r["initial_ledger_rows"], 0);
    }

    #[pg_test]
    fn uuid_source_operations() {
        inventory();
        bind_inventory();
        let r = call(&format!(
            "atomic_inventory.bound_decrement('inv', '{}', 3)",
            U1.to_uppercase()
        ));
        assert_eq!(r["success"], true);
        assert_eq!(r["item_id"], U1);
        assert_eq!(r["old_quantity"], 10);
        assert_eq!(r["new_quantity"], 7);
        assert_eq!(r["deducted"], 3);
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv', '{U2}', 6)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "5");
        assert_eq!(d["lines"][0]["requested"], "6");
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv', '{UX}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('inv', 'not-a-uuid', 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_item_id");
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv', '{U1}', 0)"),
            "22023",
            "INVALID_QUANTITY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('nope', '{U1}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        let r = call(&format!(
            "atomic_inventory.bound_increment('inv', '{U1}', 2.5)"
        ));
        assert_eq!(r["new_quantity"], 9.5);
        assert_eq!(r["added"], 2.5);
        assert_err(
            &format!("SELECT atomic_inventory.bound_increment('inv', '{UX}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.bound_adjust('inv', '{U1}', 4, p_expected_quantity => 1)"
            ),
            "PT409",
            "QUANTITY_MISMATCH",
        );
        assert_eq!(d["actual"], "9.5");
        assert_err(
            &format!("SELECT atomic_inventory.bound_adjust('inv', '{U1}', 4)"),
            "22023",
            "INVALID_INPUT",
        );
        let r = call(&format!(
            "atomic_inventory.bound_adjust('inv', '{U1}', 4, p_expected_quantity => 9.5)"
        ));
        assert_eq!(r["delta"], -5.5);
        let g = call(&format!("atomic_inventory.bound_get('inv', '{U1}')"));
        assert_eq!(g["quantity"], 4);
        assert_eq!(g["available"], 4);
        assert_err(
            &format!("SELECT atomic_inventory.bound_get('inv', '{UX}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(
            scalar(&format!("SELECT string_agg(kind, ',' ORDER BY id) FROM atomic_inventory.ledger WHERE source = 'inv' AND item_key = '{U1}'")),
            "initial,decrement,increment,adjust"
        );
        assert_eq!(drift("inv"), 0);
        // a write outside the functions shows up as drift
        run(&format!(
            "UPDATE public.inventory SET quantity = quantity + 1 WHERE id = '{U2}'"
        ));
        assert_eq!(drift("inv"), 1);
        // a batch function on a stock source
        assert_err(
            &format!("SELECT atomic_inventory.bound_claim_batch('inv', '{U1}', 'd')"),
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn bigint_source_takes_whole_quantities() {
        run("CREATE TABLE public.stock8 (id bigint PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0))");
        run("INSERT INTO public.stock8 VALUES (9000000000, 5)");
        call("atomic_inventory.bind_stock_source('s8', 'public.stock8', 'id', 'qty', p_add_check => false)");
        let r = call("atomic_inventory.bound_decrement('s8', ' 9000000000', 2)");
        assert_eq!(r["item_id"], "9000000000");
        assert_eq!(r["new_quantity"], 3);
        assert_err(
            "SELECT atomic_inventory.bound_decrement('s8', '9000000000', 1.5)",
            "22023",
            "INVALID_QUANTITY",
        );
        assert_err(
            "SELECT atomic_inventory.bound_increment('s8', '9000000000', 3000000000)",
            "22023",
            "INVALID_QUANTITY",
        );
        // a restock that fits the column's type on its own but not on top of
        // the stock: our error, not the cast's 22003, and the row unchanged
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_increment('s8', '9000000000', 2147483645)",
            "22023",
            "INVALID_QUANTITY",
        );
        assert_eq!(d["field"], "p_quantity");
        assert_eq!(d["value"], "2147483645");
        let r = call("atomic_inventory.bound_increment('s8', '9000000000', 2147483644)");
        assert_eq!(r["new_quantity"], 2147483647_i64);
        call("atomic_inventory.bound_adjust('s8', '9000000000', 3, p_force => true)");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('s8', '12x', 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_item_id");
        assert_err(
            "SELECT atomic_inventory.bound_decrement('s8', '9000000000', 4)",
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_err(
            "SELECT atomic_inventory.bound_decrement('s8', '1', 1)",
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(drift("s8"), 0);
    }

    /// numeric(p, s) columns: PostgreSQL's assignment cast would round a
    /// quantity to the scale without a word (a sale of 0.004 left 10.00 as it
    /// was, answered new_quantity 10.00 and wrote a ledger row of -0.004) and
    /// raise 22003 past the maximum. Both are refused before anything is
    /// written; a reserved column must keep as many places and as large a
    /// value as the quantity column.
    #[pg_test]
    fn numeric_columns_with_a_scale_take_what_they_store() {
        run("CREATE TABLE public.weights (id bigint PRIMARY KEY, q numeric(6,2) NOT NULL CHECK (q >= 0),
               r1 numeric(6,1) NOT NULL DEFAULT 0, r5 numeric(5,2) NOT NULL DEFAULT 0,
               r8 numeric(8,3) NOT NULL DEFAULT 0)");
        run("INSERT INTO public.weights VALUES (1, 10, 0, 0, 0)");
        for column in ["r1", "r5"] {
            bad_bind(
                &format!(
                    "SELECT atomic_inventory.bind_stock_source('w_{column}', 'public.weights', 'id', 'q', \
                       p_reserved_column => '{column}')"
                ),
                "p_reserved_column",
            );
        }
        call("atomic_inventory.bind_stock_source('weights', 'public.weights', 'id', 'q', p_reserved_column => 'r8')");
        let refused = |sql: &str, value: &str| {
            let (msg, d) = assert_err(
                &format!("SELECT atomic_inventory.{sql}"),
                "22023",
                "INVALID_QUANTITY",
            );
            assert_eq!(d["value"], value, "{sql}: {msg}");
        };
        refused("bound_decrement('weights', '1', 0.004)", "0.004");
        refused(
            r#"bound_reserve('weights', '[{"item_id": "1", "quantity": 0.001}]')"#,
            "0.001",
        );
        refused(
            "bound_adjust('weights', '1', 10000, p_force => true)",
            "10000",
        );
        let (msg, _) = assert_err(
            "SELECT atomic_inventory.bound_increment('weights', '1', 9990)",
            "22023",
            "INVALID_QUANTITY",
        );
        assert!(msg.contains("9999.99"), "{msg}");
        assert_eq!(
            Spi::get_one::<String>("SELECT q::text FROM public.weights").unwrap(),
            Some("10.00".into())
        );
        let r = call("atomic_inventory.bound_decrement('weights', '1', 0.01)");
        assert_eq!(r["new_quantity"], serde_json::json!(9.99));
        let r = call("atomic_inventory.bound_increment('weights', '1', 9990)");
        assert_eq!(r["new_quantity"], serde_json::json!(9999.99));
        call(
            r#"atomic_inventory.bound_reserve('weights', '[{"item_id": "1", "quantity": 0.25}]')"#,
        );
        assert_eq!(
            Spi::get_two::<String, String>("SELECT q::text, r8::text FROM public.weights").unwrap(),
            (Some("9999.99".into()), Some("0.250".into()))
        );
        assert_eq!(drift("weights"), 0);
        // the column altered after binding (in this session, whose cached
        // binding has read its scale): the new scale applies at once
        run("ALTER TABLE public.weights ALTER COLUMN q TYPE numeric(7,3)");
        let r = call("atomic_inventory.bound_decrement('weights', '1', 0.004)");
        assert_eq!(r["new_quantity"], serde_json::json!(9999.986));
        refused("bound_decrement('weights', '1', 0.0004)", "0.0004");
    }

    #[pg_test]
    fn quoted_identifiers_reserved_untracked_and_tenants() {
        stock_items();
        // available = "On Hand" - "Held" = 6
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('items4', 'sku-1', 7)",
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "6");
        let r = call("atomic_inventory.bound_decrement('items4', 'sku-1', 6)");
        assert_eq!(r["new_quantity"], 4);
        let r = call("atomic_inventory.bound_decrement('items4', 'svc', 3)");
        assert_eq!(r["tracked"], false);
        assert_eq!(r["deducted"], 0);
        let g = call("atomic_inventory.bound_get('items4', 'sku-1')");
        assert_eq!(g["reserved"], 4);
        assert_eq!(g["available"], 0);
        // below what is held
        assert_err(
            "SELECT atomic_inventory.bound_adjust('items4', 'sku-1', 3, p_force => true)",
            "PT409",
            "BELOW_RESERVED",
        );
        // a non-admin caller of tenant t1 sees shared rows and t1's, not t2's
        as_app_user();
        run("SET atomic_inventory.tenant_id = 't1'");
        call("atomic_inventory.bound_decrement('items4', 't1-item', 1)");
        assert_err(
            "SELECT atomic_inventory.bound_decrement('items4', 't2-item', 1)",
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            "SELECT atomic_inventory.bound_get('items4', 't2-item')",
            "PT404",
            "NOT_FOUND",
        );
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('items4', '[{"item_id": "t1-item", "quantity": 1}, {"item_id": "t2-item", "quantity": 1}]')"#,
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["ids"], serde_json::json!(["t2-item"]));
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile_source('items4')"),
            "0"
        );
        // binding is for owners, not in grant_usage
        let (state, _, _) = err("SELECT atomic_inventory.unbind_source('items4')");
        assert_eq!(state, "42501");
        run("RESET ROLE");
        run("RESET atomic_inventory.tenant_id");
        assert_eq!(
            scalar(
                r#"SELECT "On Hand"::text FROM public."Stock Items" WHERE "Item Id" = 't1-item'"#
            ),
            "4"
        );
        assert_eq!(drift("items4"), 0);
    }

    #[pg_test]
    fn decrement_many_merges_locks_and_is_all_or_nothing() {
        stock_items();
        let r = call(
            r#"atomic_inventory.bound_decrement_many('items4', '[{"item_id": "sku-1", "quantity": 2}, {"item_id": "svc", "quantity": 1}, {"item_id": "sku-1", "quantity": "1.5"}]')"#,
        );
        assert_eq!(r["lines"][0]["item_id"], "sku-1");
        assert_eq!(r["lines"][0]["deducted"], 3.5);
        assert_eq!(r["lines"][0]["new_quantity"], 6.5);
        assert_eq!(r["lines"][1]["tracked"], false);
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('items4', '[{"item_id": "t1-item", "quantity": 1}, {"item_id": "sku-1", "quantity": 3}]')"#,
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["inventory_id"], "sku-1");
        assert_eq!(
            scalar(
                r#"SELECT "On Hand"::text FROM public."Stock Items" WHERE "Item Id" = 't1-item'"#
            ),
            "5"
        );
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('items4', '[{"item_id": "nope", "quantity": 1}]')"#,
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(d["ids"], serde_json::json!(["nope"]));
        for lines in [
            r#"'[]'"#,
            r#"'{}'"#,
            r#"'[{"item_id": ""}]'"#,
            r#"'[{"item_id": "x", "quantity": -1}]'"#,
        ] {
            err(&format!(
                "SELECT atomic_inventory.bound_decrement_many('items4', {lines})"
            ));
        }
        // Nesting deeper than serde_json's 128 levels: read in place, so a
        // nested line is INVALID_INPUT like any non-object (it was a Rust
        // panic, XX000), and an unread nested key is ignored as any other.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.bound_decrement_many('items4', '[{deep}]')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines[0]");
        let r = call(&format!(
            r#"atomic_inventory.bound_decrement_many('items4', '[{{"item_id": "sku-1", "quantity": 1, "x": {deep}}}]')"#
        ));
        assert_eq!(r["lines"][0]["new_quantity"], 5.5);
        assert_eq!(drift("items4"), 0);
    }

    /// Code the table's owner attached to a bound table (a trigger here)
    /// runs as that owner, in a security-restricted operation: it ran as
    /// the extension owner, a superuser (our functions are SECURITY
    /// DEFINER), so the owner of any bound table could act as superuser
    /// through it. The ledger rows are still written, by the extension.
    /// Under a nondeterministic collation 'ABC' and 'abc' are one row but
    /// two of our keys (two holds on one row, lines not merged): such an id
    /// column is refused at bind, and when it is given one after.
    #[pg_test]
    fn id_columns_compare_by_a_deterministic_collation() {
        // Nondeterministic collations need ICU; a server built without it
        // (the PostgreSQL 18 wheel) cannot have such a column at all.
        run("DO $$ BEGIN
               CREATE COLLATION IF NOT EXISTS public.ai_ci
                 (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             EXCEPTION WHEN feature_not_supported THEN NULL;
             END $$");
        if scalar("SELECT (to_regcollation('public.ai_ci') IS NOT NULL)::text") != "true" {
            return;
        }
        run("CREATE TABLE public.ci (id text COLLATE public.ai_ci PRIMARY KEY, q integer NOT NULL CHECK (q >= 0))");
        bad_bind(
            "SELECT atomic_inventory.bind_stock_source('ci', 'public.ci', 'id', 'q')",
            "p_id_column",
        );
        run("CREATE TABLE public.cs (id text PRIMARY KEY, q integer NOT NULL CHECK (q >= 0))");
        run("INSERT INTO public.cs VALUES ('ABC', 5)");
        call("atomic_inventory.bind_stock_source('cs', 'public.cs', 'id', 'q')");
        call("atomic_inventory.bound_decrement('cs', 'ABC', 1)");
        run("ALTER TABLE public.cs ALTER COLUMN id TYPE text COLLATE public.ai_ci");
        let (msg, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('cs', 'abc', 1)",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        assert!(msg.contains("COLLATE"), "{msg}");
        assert_eq!(scalar("SELECT q::text FROM public.cs"), "4");
    }

    /// A numeric quantity column can hold NaN and Infinity, and a `>= 0`
    /// CHECK lets both through: such a row covered any sale (1000000 sold
    /// from Infinity, "success", nothing changed). Now it has nothing to
    /// sell, a restock of it is refused (it answered success, Infinity +
    /// 5, with a ledger row of 5 units), and the CHECK bind adds to a
    /// numeric column keeps it finite.
    #[pg_test]
    fn nan_and_infinity_have_nothing_to_sell() {
        run("CREATE TABLE public.inf (id bigint PRIMARY KEY, q numeric NOT NULL CHECK (q >= 0))");
        run("INSERT INTO public.inf VALUES (1, 'Infinity'), (2, 'NaN'), (3, 5)");
        call("atomic_inventory.bind_stock_source('inf', 'public.inf', 'id', 'q')");
        let ledger =
            || scalar("SELECT count(*)::text FROM atomic_inventory.ledger WHERE source = 'inf'");
        let rows_at_bind = ledger();
        for id in ["1", "2"] {
            assert_err(
                &format!("SELECT atomic_inventory.bound_decrement('inf', '{id}', 1000000)"),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            assert_err(
                &format!(
                    r#"SELECT atomic_inventory.bound_decrement_many('inf', '[{{"item_id": {id}, "quantity": 1}}]')"#
                ),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.bound_increment('inf', '{id}', 5)"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], "p_item_id");
        }
        assert_eq!(ledger(), rows_at_bind, "no movement recorded");
        let r = call("atomic_inventory.bound_increment('inf', '3', 1)");
        assert_eq!(r["new_quantity"], 6, "{r}");
        let r = call("atomic_inventory.bound_decrement('inf', '3', 2)");
        assert_eq!(r["new_quantity"], 4, "{r}");
        // without a CHECK, bind adds one that keeps the column finite
        run("CREATE TABLE public.inf2 (id bigint PRIMARY KEY, q numeric NOT NULL)");
        run("INSERT INTO public.inf2 VALUES (1, 'NaN')");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bind_stock_source('inf2', 'public.inf2', 'id', 'q')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_quantity_column");
        run("UPDATE public.inf2 SET q = 4");
        let r = call("atomic_inventory.bind_stock_source('inf2', 'public.inf2', 'id', 'q')");
        assert_eq!(r["check_added"], "inf2_ai_quantity_nonnegative");
        let (state, msg, _) = err("UPDATE public.inf2 SET q = 'Infinity'");
        assert_eq!(state, "23514", "{msg}");
        // bound again, the CHECK it added counts
        call("atomic_inventory.unbind_source('inf2')");
        let r = call("atomic_inventory.bind_stock_source('inf2', 'public.inf2', 'id', 'q')");
        assert_eq!(r["check_added"], serde_json::Value::Null, "{r}");
    }

    /// The app's BEFORE UPDATE trigger returning NULL skips the write of a
    /// row a call holds locked and found ready: INVALID_INPUT naming the
    /// source, nothing changed. Before: bound_adjust answered INTERNAL (it
    /// read the missing RETURNING row), bound_decrement a shortage of a row
    /// that had enough, bound_decrement_many a success with the line
    /// "untracked", bound_reserve a hold the reserved column never got.
    #[pg_test]
    fn a_write_the_tables_trigger_skips_is_refused() {
        inventory();
        run("ALTER TABLE public.inventory ADD COLUMN reserved numeric NOT NULL DEFAULT 0");
        call(
            "atomic_inventory.bind_stock_source('vetoed', 'public.inventory', 'id', 'quantity',
               p_reserved_column => 'reserved')",
        );
        veto_updates("public.inventory");
        for sql in [
            format!("SELECT atomic_inventory.bound_adjust('vetoed', '{U1}', 3, p_force => true)"),
            format!("SELECT atomic_inventory.bound_decrement('vetoed', '{U1}', 1)"),
            format!("SELECT atomic_inventory.bound_increment('vetoed', '{U1}', 1)"),
            format!(
                r#"SELECT atomic_inventory.bound_decrement_many('vetoed', '[{{"item_id": "{U1}", "quantity": 1}}]')"#
            ),
            format!(
                r#"SELECT atomic_inventory.bound_reserve('vetoed', '[{{"item_id": "{U1}", "quantity": 1}}]')"#
            ),
        ] {
            let (msg, d) = assert_err(&sql, "22023", "INVALID_INPUT");
            assert_eq!(d["field"], "p_source", "{sql}: {msg}");
        }
        assert_eq!(
            scalar(&format!(
                "SELECT quantity || '/' || reserved FROM public.inventory WHERE id = '{U1}'"
            )),
            "10/0"
        );
        assert_eq!(
            scalar(
                "SELECT count(*)::text FROM atomic_inventory.ledger WHERE source = 'vetoed' AND kind <> 'initial'"
            ),
            "0"
        );
        assert_eq!(
            scalar(
                "SELECT count(*)::text FROM atomic_inventory.reservations WHERE source = 'vetoed'"
            ),
            "0"
        );
    }

    /// The same for a batch source: a claim of an available batch, the next
    /// one, or the holder's unclaim that the app's trigger skips is
    /// INVALID_INPUT on p_source (it was BATCH_UNAVAILABLE with status
    /// "open", NULL as if none were left, and BATCH_NOT_HELD for the holder).
    #[pg_test]
    fn a_claim_the_tables_trigger_skips_is_refused() {
        run("CREATE TABLE public.runs3 (id integer PRIMARY KEY, st text NOT NULL DEFAULT 'open', who text)");
        run("INSERT INTO public.runs3 (id) VALUES (1), (2)");
        call("atomic_inventory.bind_batch_source('runs3', 'public.runs3', 'id', 'st', 'who', 'open', 'taken')");
        call("atomic_inventory.bound_claim_batch('runs3', '1', 'd1')");
        veto_updates("public.runs3");
        for sql in [
            "SELECT atomic_inventory.bound_unclaim_batch('runs3', '1', 'd1')",
            "SELECT atomic_inventory.bound_claim_batch('runs3', '2', 'd2')",
            "SELECT atomic_inventory.bound_claim_next_batch('runs3', 'd2')",
        ] {
            let (msg, d) = assert_err(sql, "22023", "INVALID_INPUT");
            assert_eq!(d["field"], "p_source", "{sql}: {msg}");
        }
        assert_eq!(
            scalar("SELECT string_agg(id || ':' || st || ':' || coalesce(who, '-'), ',' ORDER BY id) FROM public.runs3"),
            "1:taken:d1,2:open:-"
        );
    }

    /// A role that owns tables and may create types in public, and a table
    /// of its own where code it writes records who ran it.
    fn table_owner_with_a_log() {
        run("DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ai_table_owner') THEN
                 CREATE ROLE ai_table_owner NOLOGIN;
               END IF;
             END $$");
        run("GRANT CREATE ON SCHEMA public TO ai_table_owner");
        run("CREATE TABLE public.cast_ran (usr text, super boolean)");
        run("ALTER TABLE public.cast_ran OWNER TO ai_table_owner");
    }

    /// Who ran the owner's cast: (calls as a superuser, calls in all).
    fn cast_runs() -> String {
        scalar("SELECT count(*) FILTER (WHERE super) || '/' || count(*) FROM public.cast_ran")
    }

    /// The owner of a bound table gives its tenant column a type of their
    /// own, with a cast to text of their own. Our statements cast that
    /// column: the cast ran as the extension's owner, a superuser (its
    /// function could make its author one). A column that left the types
    /// bind accepts is now refused before any statement runs.
    #[pg_test]
    fn a_bound_column_of_the_owners_type_is_refused() {
        inventory();
        table_owner_with_a_log();
        run("ALTER TABLE public.inventory ADD COLUMN tenant text");
        run("ALTER TABLE public.inventory OWNER TO ai_table_owner");
        call(
            "atomic_inventory.bind_stock_source('owned', 'public.inventory', 'id', 'quantity',
               p_tenant_column => 'tenant')",
        );
        run("SET ROLE ai_table_owner");
        run("CREATE TYPE public.owner_t AS (v text)");
        run(
            "CREATE FUNCTION public.owner_cast(public.owner_t) RETURNS text LANGUAGE plpgsql AS $f$
             BEGIN
               INSERT INTO public.cast_ran SELECT current_user, r.rolsuper
                 FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user;
               RETURN NULL;
             END $f$",
        );
        run("CREATE CAST (public.owner_t AS text) WITH FUNCTION public.owner_cast(public.owner_t)");
        run("ALTER TABLE public.inventory ALTER COLUMN tenant TYPE public.owner_t USING NULL");
        run("RESET ROLE");
        for sql in [
            format!("SELECT atomic_inventory.bound_get('owned', '{U1}')"),
            format!("SELECT atomic_inventory.bound_decrement('owned', '{U1}', 1)"),
            "SELECT count(*) FROM atomic_inventory.reconcile_source('owned')".to_string(),
        ] {
            let (_, d) = assert_err(&sql, "22023", "INVALID_INPUT");
            assert_eq!(d["field"], "p_source", "{sql}");
        }
        assert_eq!(cast_runs(), "0/0");
        // and bind refuses such a tenant column in the first place
        run("CREATE TABLE public.inv2 (id uuid PRIMARY KEY, quantity numeric NOT NULL, tenant public.owner_t)");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bind_stock_source('inv2', 'public.inv2', 'id', 'quantity',
               p_tenant_column => 'tenant')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_tenant_column");
    }

    /// A batch source's status may be the owner's enum, and its cast to
    /// text the owner's function: our reads of the table run as its owner,
    /// as the writes do (they ran as a superuser).
    #[pg_test]
    fn reads_of_a_bound_table_run_as_its_owner() {
        table_owner_with_a_log();
        run("SET ROLE ai_table_owner");
        run("CREATE TYPE public.run_state AS ENUM ('open', 'taken')");
        run("CREATE FUNCTION public.state_text(public.run_state) RETURNS text LANGUAGE plpgsql AS $f$
             BEGIN
               INSERT INTO public.cast_ran SELECT current_user, r.rolsuper
                 FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user;
               RETURN pg_catalog.format('%s', $1);
             END $f$");
        run("CREATE CAST (public.run_state AS text) WITH FUNCTION public.state_text(public.run_state)");
        run("CREATE TABLE public.runs2 (id integer PRIMARY KEY,
               st public.run_state NOT NULL DEFAULT 'open', who text)");
        run("INSERT INTO public.runs2 (id) VALUES (1)");
        run("RESET ROLE");
        call("atomic_inventory.bind_batch_source('runs2', 'public.runs2', 'id', 'st', 'who', 'open', 'taken')");
        call("atomic_inventory.bound_claim_batch('runs2', '1', 'd1')");
        // the retry matches no available row: the row is locked and read to
        // learn that d1 holds it (a refusal would roll back the cast's record)
        let r = call("atomic_inventory.bound_claim_batch('runs2', '1', 'd1')");
        assert_eq!(r["status"], "taken", "{r}");
        let runs = cast_runs();
        assert!(runs.starts_with("0/") && runs != "0/0", "{runs}");
    }

    #[pg_test]
    fn triggers_on_a_bound_table_run_as_its_owner() {
        inventory();
        run("ALTER TABLE public.inventory ADD COLUMN reserved numeric NOT NULL DEFAULT 0");
        run("DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ai_table_owner') THEN
                 CREATE ROLE ai_table_owner NOLOGIN;
               END IF;
             END $$");
        run("CREATE TABLE public.who_ran (usr text, super boolean, restricted boolean)");
        // names qualified: the call's pinned search_path is in force
        run("CREATE FUNCTION public.record_who() RETURNS trigger LANGUAGE plpgsql AS $f$
             DECLARE v_restricted boolean := false;
             BEGIN
               BEGIN
                 CREATE TEMP TABLE IF NOT EXISTS probe (x int);  -- refused in a restricted operation
               EXCEPTION WHEN insufficient_privilege THEN v_restricted := true;
               END;
               INSERT INTO public.who_ran
                 SELECT current_user, r.rolsuper, v_restricted FROM pg_catalog.pg_roles AS r
                  WHERE r.rolname = current_user;
               RETURN NEW;
             END $f$");
        run("CREATE TRIGGER record_who BEFORE UPDATE ON public.inventory
               FOR EACH ROW EXECUTE FUNCTION public.record_who()");
        run("ALTER TABLE public.inventory OWNER TO ai_table_owner");
        run("ALTER TABLE public.who_ran OWNER TO ai_table_owner");
        call(
            "atomic_inventory.bind_stock_source('owned', 'public.inventory', 'id', 'quantity',
               p_reserved_column => 'reserved')",
        );
        call(&format!(
            "atomic_inventory.bound_decrement('owned', '{U1}', 1)"
        ));
        call(&format!(
            "atomic_inventory.bound_increment('owned', '{U1}', 2)"
        ));
        call(&format!(
            "atomic_inventory.bound_adjust('owned', '{U1}', 20, p_expected_quantity => 11)"
        ));
        call(&format!(
            r#"atomic_inventory.bound_decrement_many('owned', '[{{"item_id": "{U1}", "quantity": 1}}, {{"item_id": "{U2}", "quantity": 1}}]')"#
        ));
        let r = call(&format!(
            r#"atomic_inventory.bound_reserve('owned', '[{{"item_id": "{U2}", "quantity": 2}}]')"#
        ));
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        // every write of the table ran as its owner, never as a superuser,
        // and in a restricted operation
        assert_eq!(
            scalar(
                "SELECT count(*) || ' ' || string_agg(DISTINCT usr || '/' || super || '/' || restricted, ',')
                   FROM public.who_ran"
            ),
            "7 ai_table_owner/false/true"
        );
        // the current user is ours again after the call
        assert_eq!(scalar("SELECT current_user::text"), "postgres");
        // ledger rows as before, with their quantities after
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(kind || ' ' || delta || ' ' || quantity_after, ', ' ORDER BY id)
                   FROM atomic_inventory.ledger WHERE source = 'owned' AND item_key = '{U1}'
                    AND kind <> 'initial'"
            )),
            "decrement -1 9, increment 2 11, adjust 9 20, decrement -1 19"
        );
        assert_eq!(drift("owned"), 0);
    }

    #[pg_test]
    fn idempotent_replay_applies_once() {
        inventory();
        bind_inventory();
        let call1 = format!(
            "atomic_inventory.bound_decrement('inv', '{U1}', 2, p_idempotency_key => 'k1')"
        );
        let a = call(&call1);
        let b = call(&call1);
        assert_eq!(a, b);
        assert_eq!(
            scalar(&format!(
                "SELECT quantity::text FROM public.inventory WHERE id = '{U1}'"
            )),
            "8"
        );
        assert_eq!(
            scalar(
                "SELECT count(*)::text FROM atomic_inventory.ledger WHERE idempotency_key = 'k1'"
            ),
            "1"
        );
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv', '{U1}', 3, p_idempotency_key => 'k1')"),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
        let m = format!(
            r#"atomic_inventory.bound_decrement_many('inv', '[{{"item_id": "{U2}", "quantity": 1}}]', p_idempotency_key => 'k2')"#
        );
        assert_eq!(call(&m), call(&m));
        assert_eq!(
            scalar(&format!(
                "SELECT quantity::text FROM public.inventory WHERE id = '{U2}'"
            )),
            "4"
        );
        assert_eq!(drift("inv"), 0);
    }

    #[pg_test]
    fn rebinding_a_name_to_another_table_drops_the_kept_plans() {
        inventory();
        bind_inventory();
        call(&format!(
            "atomic_inventory.bound_decrement('inv', '{U1}', 1)"
        ));
        call("atomic_inventory.unbind_source('inv')");
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('inv', '{U1}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        run("CREATE TABLE public.other (code text PRIMARY KEY, n bigint NOT NULL CHECK (n >= 0))");
        run("INSERT INTO public.other VALUES ('c1', 50)");
        call("atomic_inventory.bind_stock_source('inv', 'public.other', 'code', 'n')");
        let r = call("atomic_inventory.bound_decrement('inv', 'c1', 5)");
        assert_eq!(r["new_quantity"], 45);
        assert_eq!(
            scalar(&format!(
                "SELECT quantity::text FROM public.inventory WHERE id = '{U1}'"
            )),
            "9"
        );
        assert_eq!(drift("inv"), 0);
    }

    /// A quantity column that allows NULL is refused at bind time (NULL + n
    /// is NULL: a restock changed nothing while the ledger recorded it).
    /// Where a NULL still gets in (the column altered after binding, or
    /// bound by 0.2.0) it counts as 0, as a NULL reserved does.
    #[pg_test]
    fn null_quantities_are_refused_at_bind_and_count_as_zero() {
        run("CREATE TABLE public.nullable (id bigint PRIMARY KEY, q numeric CHECK (q >= 0))");
        run("INSERT INTO public.nullable VALUES (1, 0), (2, 5)");
        bad_bind(
            "SELECT atomic_inventory.bind_stock_source('nullable', 'public.nullable', 'id', 'q')",
            "p_quantity_column",
        );
        run("ALTER TABLE public.nullable ALTER COLUMN q SET NOT NULL");
        call("atomic_inventory.bind_stock_source('nullable', 'public.nullable', 'id', 'q')");
        run("ALTER TABLE public.nullable ALTER COLUMN q DROP NOT NULL");
        run("UPDATE public.nullable SET q = NULL WHERE id = 1");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('nullable', '1', 1)",
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "0");
        assert_eq!(
            call("atomic_inventory.bound_get('nullable', '1')")["quantity"],
            0
        );
        let r = call("atomic_inventory.bound_increment('nullable', '1', 3)");
        assert_eq!(
            (r["old_quantity"].clone(), r["new_quantity"].clone()),
            (0.into(), 3.into())
        );
        run("UPDATE public.nullable SET q = NULL WHERE id = 2");
        let r = call("atomic_inventory.bound_adjust('nullable', '2', 4, p_force => true)");
        assert_eq!(r["new_quantity"], 4);
        // row 1: NULL (= 0, as the ledger had it) + 3 = 3, accounted for;
        // row 2: the out-of-band NULL took 5 units the ledger never saw
        assert_eq!(drift("nullable"), 1);
    }

    /// varchar(n) status and assignee columns: a status value or a driver id
    /// longer than the column holds is refused up front (the claim's UPDATE
    /// would fail with 22001, value too long), nothing written.
    #[pg_test]
    fn varchar_status_and_assignee_lengths_are_checked() {
        run("CREATE TABLE public.runs (id bigint PRIMARY KEY, st varchar(5) NOT NULL DEFAULT 'open',
               who varchar(4))");
        run("INSERT INTO public.runs VALUES (1, 'open', NULL)");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bind_batch_source('runs', 'public.runs', 'id', 'st', 'who', 'open', 'claimed')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_claimed_value");
        call("atomic_inventory.bind_batch_source('runs', 'public.runs', 'id', 'st', 'who', 'open', 'taken')");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_claim_batch('runs', '1', 'driver-1')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_driver_id");
        assert_err(
            "SELECT atomic_inventory.bound_claim_next_batch('runs', 'driver-1')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT st::text FROM public.runs").unwrap(),
            Some("open".into())
        );
        let r = call("atomic_inventory.bound_claim_batch('runs', '1', 'd1')");
        assert_eq!(r["status"], "taken");
    }

    #[pg_test]
    fn batch_claims() {
        products_and_batches();
        call("atomic_inventory.bind_batch_source('batches', 'public.batches', 'id', 'status', 'driver_id')");
        let d1 = "20000000-0000-0000-0000-000000000001";
        let d2 = "20000000-0000-0000-0000-000000000002";
        let r = call(&format!(
            "atomic_inventory.bound_claim_batch('batches', '{U1}', '{d1}')"
        ));
        assert_eq!(r["status"], "claimed");
        assert_eq!(r["driver_id"], d1);
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.bound_claim_batch('batches', '{U1}', '{d2}')"),
            "PT409",
            "BATCH_UNAVAILABLE",
        );
        assert_eq!(d["status"], "claimed");
        // the holder retrying is a success
        call(&format!(
            "atomic_inventory.bound_claim_batch('batches', '{U1}', '{d1}')"
        ));
        assert_err(
            &format!("SELECT atomic_inventory.bound_claim_batch('batches', '{UX}', '{d1}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            &format!("SELECT atomic_inventory.bound_claim_batch('batches', '{U1}', 'not-uuid')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            &format!("SELECT atomic_inventory.bound_unclaim_batch('batches', '{U1}', '{d2}')"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        // next: the free one, then none
        let n = call(&format!(
            "atomic_inventory.bound_claim_next_batch('batches', '{d2}')"
        ));
        assert_eq!(n["batch_id"], U2);
        assert_eq!(scalar("SELECT coalesce(atomic_inventory.bound_claim_next_batch('batches', 'ffffffff-0000-0000-0000-000000000000')::text, 'none')"), "none");
        let r = call(&format!(
            "atomic_inventory.bound_unclaim_batch('batches', '{U1}', '{d1}')"
        ));
        assert_eq!(r["status"], "available");
        assert_eq!(scalar(&format!("SELECT status || ':' || coalesce(driver_id::text, '-') FROM public.batches WHERE id = '{U1}'")), "available:-");
        // the driver defaults to the JWT sub
        run(&format!(
            r#"SET LOCAL request.jwt.claims = '{{"sub": "{d2}"}}'"#
        ));
        let r = call(&format!(
            "atomic_inventory.bound_claim_batch('batches', '{U1}')"
        ));
        assert_eq!(r["driver_id"], d2);
        assert_err(
            &format!("SELECT atomic_inventory.bound_decrement('batches', '{U1}', 1)"),
            "22023",
            "INVALID_INPUT",
        );
    }

    const POS_RECIPE: &str = include_str!("../../docs/recipes/pos_decrement_inventory.sql");
    const CLAIM_ROUTE_RECIPE: &str =
        include_str!("../../docs/recipes/claim_route_products_batches.sql");

    #[pg_test]
    fn recipe_pos_sale_keeps_decrement_inventory() {
        inventory();
        run(POS_RECIPE);
        let r = call(&format!("public.decrement_inventory('{U1}', 4)"));
        assert_eq!(
            r,
            serde_json::json!({"success": true, "inventory_id": U1, "old_quantity": 10,
                               "new_quantity": 6, "deducted": 4})
        );
        assert_err(
            &format!("SELECT public.decrement_inventory('{U2}', 6)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(drift("inventory"), 0);
    }

    #[pg_test]
    fn recipe_claim_route_keeps_decrement_product_quantity_and_the_409_claim() {
        products_and_batches();
        run(CLAIM_ROUTE_RECIPE);
        let r = call("public.decrement_product_quantity(1, 4)");
        assert_eq!(r["new_quantity"], 6);
        assert_err(
            "SELECT public.decrement_product_quantity(2, 4)",
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        run(r#"SET LOCAL request.jwt.claims = '{"sub": "30000000-0000-0000-0000-00000000000a"}'"#);
        call(&format!("public.claim_batch('{U1}')"));
        run(r#"SET LOCAL request.jwt.claims = '{"sub": "30000000-0000-0000-0000-00000000000b"}'"#);
        assert_err(
            &format!("SELECT public.claim_batch('{U1}')"),
            "PT409",
            "BATCH_UNAVAILABLE",
        );
        assert_eq!(drift("products"), 0);
    }

    #[pg_test]
    fn the_recipes_in_the_docs_are_the_tested_ones() {
        let doc = include_str!("../../docs/adopting.md");
        assert!(
            doc.contains(POS_RECIPE.trim()),
            "docs/adopting.md lacks the POS sale recipe"
        );
        assert!(
            doc.contains(CLAIM_ROUTE_RECIPE.trim()),
            "docs/adopting.md lacks the claim route recipe"
        );
    }
}
