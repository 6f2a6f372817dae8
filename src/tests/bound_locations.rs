//! `#[pg_test]`s for adopted stock tables keyed by (item, location)
//! (bind_stock_source's p_location_column; docs/adopting.md). The race of
//! two sales for one (item, location) row is in
//! pg_test/isolation/specs/bound_locations.spec.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn run(sql: &str) {
        Spi::run(sql).unwrap();
    }

    /// The app's stock(product_id, warehouse_id, quantity) with its
    /// composite key, two products in two warehouses, bound as 'stock'.
    fn stock() {
        run("CREATE TABLE public.stock (product_id integer NOT NULL, warehouse_id text NOT NULL,
               quantity integer NOT NULL CHECK (quantity >= 0), PRIMARY KEY (product_id, warehouse_id))");
        run("INSERT INTO public.stock VALUES (1, 'north', 10), (1, 'south', 4), (2, 'north', 3)");
        let r = call(
            "atomic_inventory.bind_stock_source('stock', 'public.stock', 'product_id', 'quantity',
               p_location_column => 'warehouse_id')",
        );
        assert_eq!(r["location_column"], "warehouse_id");
        assert_eq!(r["location_type"], "text");
        assert_eq!(r["initial_ledger_rows"], 3);
    }

    fn on_hand(product: i32, warehouse: &str) -> String {
        scalar(&format!(
            "SELECT quantity::text FROM public.stock WHERE product_id = {product} AND warehouse_id = '{warehouse}'"
        ))
    }

    fn drift(src: &str) -> i64 {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM atomic_inventory.reconcile_source('{src}')"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn bind_checks_the_location_column() {
        let b = "SELECT atomic_inventory.bind_stock_source";
        // unique on the item alone, nothing over (item, location)
        run(
            "CREATE TABLE public.s1 (product_id integer NOT NULL, warehouse_id text NOT NULL,
               quantity integer NOT NULL CHECK (quantity >= 0))",
        );
        bad_bind(
            &format!("{b}('s1', 'public.s1', 'product_id', 'quantity', p_location_column => 'warehouse_id')"),
            "p_location_column",
        );
        // a unique index over three columns is not one over the two
        run("CREATE UNIQUE INDEX s1_three ON public.s1 (product_id, warehouse_id, quantity)");
        bad_bind(
            &format!("{b}('s1', 'public.s1', 'product_id', 'quantity', p_location_column => 'warehouse_id')"),
            "p_location_column",
        );
        // a partial one neither
        run("CREATE UNIQUE INDEX s1_partial ON public.s1 (warehouse_id, product_id) WHERE quantity > 0");
        bad_bind(
            &format!("{b}('s1', 'public.s1', 'product_id', 'quantity', p_location_column => 'warehouse_id')"),
            "p_location_column",
        );
        // wrong type, missing column, NULLs allowed, the same column twice
        run(
            "CREATE TABLE public.s2 (product_id integer NOT NULL, at numeric NOT NULL, w text,
               quantity integer NOT NULL CHECK (quantity >= 0),
               UNIQUE (product_id, at), UNIQUE (product_id, w))",
        );
        bad_bind(
            &format!("{b}('s2', 'public.s2', 'product_id', 'quantity', p_location_column => 'at')"),
            "p_location_column",
        );
        bad_bind(
            &format!(
                "{b}('s2', 'public.s2', 'product_id', 'quantity', p_location_column => 'nope')"
            ),
            "p_location_column",
        );
        bad_bind(
            &format!("{b}('s2', 'public.s2', 'product_id', 'quantity', p_location_column => 'w')"),
            "p_location_column",
        );
        bad_bind(
            &format!("{b}('s2', 'public.s2', 'product_id', 'quantity', p_location_column => 'product_id')"),
            "columns",
        );
        // the order of the unique index's columns does not matter; the id
        // column need not be unique on its own
        run(
            "CREATE TABLE public.s3 (product_id uuid NOT NULL, warehouse_id bigint NOT NULL,
               quantity numeric NOT NULL, UNIQUE (warehouse_id, product_id))",
        );
        let r = call(
            "atomic_inventory.bind_stock_source('s3', 'public.s3', 'product_id', 'quantity',
               p_location_column => 'warehouse_id')",
        );
        assert_eq!(r["location_type"], "bigint");
        assert_eq!(
            scalar("SELECT location_column::text FROM atomic_inventory.bound_sources WHERE name = 's3'"),
            "warehouse_id"
        );
        // nothing was registered for the refused tables
        assert_eq!(
            scalar(
                "SELECT count(*)::text FROM atomic_inventory.bindings WHERE name IN ('s1', 's2')"
            ),
            "0"
        );
    }

    #[pg_test]
    fn sales_and_restocks_per_item_and_location() {
        stock();
        let r = call("atomic_inventory.bound_decrement('stock', '1', 3, p_location => 'north')");
        assert_eq!(r["item_id"], "1");
        assert_eq!(r["location"], "north");
        assert_eq!(r["old_quantity"], 10);
        assert_eq!(r["new_quantity"], 7);
        assert_eq!(on_hand(1, "north"), "7");
        assert_eq!(on_hand(1, "south"), "4");
        // the other warehouse's row has its own stock
        assert_err(
            "SELECT atomic_inventory.bound_decrement('stock', '1', 5, p_location => 'south')",
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let r = call("atomic_inventory.bound_increment('stock', '1', 6, p_location => 'south')");
        assert_eq!(r["location"], "south");
        assert_eq!(r["new_quantity"], 10);
        let r = call(
            "atomic_inventory.bound_adjust('stock', '2', 8, p_expected_quantity => 3, p_location => 'north')",
        );
        assert_eq!(r["delta"], 5);
        assert_err(
            "SELECT atomic_inventory.bound_adjust('stock', '2', 1, p_expected_quantity => 3, p_location => 'north')",
            "PT409",
            "QUANTITY_MISMATCH",
        );
        let g = call("atomic_inventory.bound_get('stock', '1', 'south')");
        assert_eq!(g["quantity"], 10);
        assert_eq!(g["location"], "south");
        // a row that does not exist at that location
        assert_err(
            "SELECT atomic_inventory.bound_decrement('stock', '2', 1, p_location => 'south')",
            "PT404",
            "NOT_FOUND",
        );
        // the ledger names each row by item and location
        assert_eq!(
            scalar(
                "SELECT string_agg(item_key || ':' || delta, ',' ORDER BY id) FROM atomic_inventory.ledger
                  WHERE source = 'stock' AND kind <> 'initial'"
            ),
            r#"["1", "north"]:-3,["1", "south"]:6,["2", "north"]:5"#
        );
        assert_eq!(drift("stock"), 0);
        // a write outside the functions shows up on its own row
        run("UPDATE public.stock SET quantity = quantity + 1 WHERE product_id = 1 AND warehouse_id = 'north'");
        assert_eq!(
            scalar(
                "SELECT item_key || '/' || drift FROM atomic_inventory.reconcile_source('stock')"
            ),
            r#"["1", "north"]/1"#
        );
    }

    #[pg_test]
    fn an_ambiguous_row_is_refused() {
        stock();
        // no location on a table keyed by one: which row is not known
        for sql in [
            "SELECT atomic_inventory.bound_decrement('stock', '1', 1)",
            "SELECT atomic_inventory.bound_increment('stock', '1', 1)",
            "SELECT atomic_inventory.bound_adjust('stock', '1', 1, p_force => true)",
            "SELECT atomic_inventory.bound_get('stock', '1')",
        ] {
            let (_, d) = assert_err(sql, "22023", "INVALID_INPUT");
            assert_eq!(d["field"], "p_location", "{sql}");
        }
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('stock', '[{"item_id": "1", "quantity": 1}]')"#,
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines[0].location");
        // a location on a table without one
        run("CREATE TABLE public.flat (id integer PRIMARY KEY, quantity integer NOT NULL CHECK (quantity >= 0))");
        run("INSERT INTO public.flat VALUES (1, 5)");
        call("atomic_inventory.bind_stock_source('flat', 'public.flat', 'id', 'quantity')");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('flat', '1', 1, p_location => 'north')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_location");
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('flat', '[{"item_id": 1, "location": "north", "quantity": 1}]')"#,
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines[0].location");
        // and without one, as before
        let r = call("atomic_inventory.bound_decrement('flat', '1', 2)");
        assert_eq!(r["new_quantity"], 3);
        assert!(r.get("location").is_none());
        // a location of the wrong type
        run("CREATE TABLE public.wh (id integer NOT NULL, w integer NOT NULL, quantity integer NOT NULL
               CHECK (quantity >= 0), PRIMARY KEY (id, w))");
        call("atomic_inventory.bind_stock_source('wh', 'public.wh', 'id', 'quantity', p_location_column => 'w')");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('wh', '1', 1, p_location => 'north')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_location");
        // reservations do not take located tables yet
        let (_, d) = assert_err(
            r#"SELECT atomic_inventory.bound_reserve('stock', '[{"item_id": "1", "location": "north", "quantity": 1}]')"#,
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
    }

    #[pg_test]
    fn orders_across_locations() {
        stock();
        let r = call(
            r#"atomic_inventory.bound_decrement_many('stock', '[
                 {"item_id": 2, "location": "north", "quantity": 1},
                 {"item_id": "1", "location": "south", "quantity": 2},
                 {"item_id": "1", "location": "north", "quantity": 3},
                 {"item_id": "1", "location": "north", "quantity": 1}]')"#,
        );
        let lines = r["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 3);
        // merged per row, answered in (item, location) order
        assert_eq!(lines[0]["item_id"], "1");
        assert_eq!(lines[0]["location"], "north");
        assert_eq!(lines[0]["deducted"], 4);
        assert_eq!(lines[1]["location"], "south");
        assert_eq!(lines[2]["item_id"], "2");
        assert_eq!(on_hand(1, "north"), "6");
        assert_eq!(on_hand(1, "south"), "2");
        assert_eq!(on_hand(2, "north"), "2");
        // all or nothing: one short row leaves every row as it was
        assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('stock', '[
                 {"item_id": "1", "location": "north", "quantity": 1},
                 {"item_id": "1", "location": "south", "quantity": 3}]')"#,
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(on_hand(1, "north"), "6");
        assert_err(
            r#"SELECT atomic_inventory.bound_decrement_many('stock', '[
                 {"item_id": "2", "location": "south", "quantity": 1}]')"#,
            "PT404",
            "NOT_FOUND",
        );
        assert_eq!(drift("stock"), 0);
        // binding again brings each row's ledger sum to its quantity
        run("UPDATE public.stock SET quantity = 9 WHERE product_id = 2");
        assert_eq!(drift("stock"), 1);
        call("atomic_inventory.unbind_source('stock')");
        call(
            "atomic_inventory.bind_stock_source('stock', 'public.stock', 'product_id', 'quantity',
               p_location_column => 'warehouse_id')",
        );
        assert_eq!(drift("stock"), 0);
    }

    #[pg_test]
    fn idempotent_replay_names_the_location() {
        stock();
        let first = call(
            "atomic_inventory.bound_decrement('stock', '1', 2, p_location => 'north', p_idempotency_key => 'k1')",
        );
        let again = call(
            "atomic_inventory.bound_decrement('stock', '1', 2, p_location => 'north', p_idempotency_key => 'k1')",
        );
        assert_eq!(first, again);
        assert_eq!(on_hand(1, "north"), "8");
        // the same key for another row is another request
        assert_err(
            "SELECT atomic_inventory.bound_decrement('stock', '1', 2, p_location => 'south', p_idempotency_key => 'k1')",
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
    }

    #[pg_test]
    fn a_location_column_changed_under_its_binding_is_refused() {
        stock();
        run("ALTER TABLE public.stock RENAME COLUMN warehouse_id TO wh");
        let (_, d) = assert_err(
            "SELECT atomic_inventory.bound_decrement('stock', '1', 1, p_location => 'north')",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_source");
        assert_err(
            "SELECT * FROM atomic_inventory.reconcile_source('stock')",
            "22023",
            "INVALID_INPUT",
        );
    }

    /// The row is found through the key over (item, location): the
    /// statements' text (stock.rs's key_match, one text key parameter
    /// unpacked in SQL) planned generic, as the kept plans are.
    #[pg_test]
    fn a_located_row_is_found_by_its_key() {
        stock();
        run(
            "INSERT INTO public.stock SELECT g, w, 5 FROM generate_series(3, 3000) AS g,
               unnest(ARRAY['north', 'south']) AS w",
        );
        run("ANALYZE public.stock");
        run("SET LOCAL plan_cache_mode = force_generic_plan");
        run("PREPARE one_row(text) AS UPDATE public.stock AS t SET quantity = t.quantity - 1
               WHERE t.product_id = ($1::jsonb ->> 0)::integer AND t.warehouse_id = ($1::jsonb ->> 1)::text");
        let mut lines = Vec::new();
        Spi::connect(|c| {
            for row in c
                .select(r#"EXPLAIN EXECUTE one_row('["1", "north"]')"#, None, &[])
                .unwrap()
            {
                lines.push(row.get::<String>(1).unwrap().unwrap_or_default());
            }
        });
        let text = lines.join("\n");
        assert!(text.contains("Index Scan using stock_pkey"), "{text}");
        run("DEALLOCATE one_row");
    }
}
