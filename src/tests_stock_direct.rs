//! `#[pg_test]`s of the single-line sale's direct row update (ledger off,
//! stock_direct.rs): same answers and refusals as the SQL statement, and the
//! statement taken instead whenever the table is not plain. Concurrency:
//! pg_test/isolation/specs/direct_sale.spec and pg_test/direct_stress.py.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::stock_direct::{sell, Direct, Sale};
    use crate::test_support::*;

    fn ledger_off() {
        Spi::run("SET LOCAL atomic_inventory.ledger = off").unwrap();
    }

    /// For tests that change items' definition: tests run concurrently, and
    /// DDL taken while another test holds rows of items (and waits for a
    /// lock this one holds) deadlocks. Taken first, the strongest lock makes
    /// the others wait for this test's end instead.
    fn items_to_ourselves() {
        Spi::run("LOCK TABLE atomic_inventory.items IN ACCESS EXCLUSIVE MODE").unwrap();
    }

    /// What the direct path makes of a sale of `qty` from `id` as an admin,
    /// without the statement as a fallback.
    fn direct(id: &str, qty: &str) -> &'static str {
        let qty: AnyNumeric = qty.parse().unwrap();
        let sale = Sale {
            id: pgrx::Uuid::from_bytes(uuid_bytes(id)),
            qty: &qty,
            admin: true,
            tenant: None,
            gathered: false,
        };
        match sell(&sale).unwrap() {
            Direct::Done { .. } => "done",
            Direct::Refused => "refused",
            Direct::Unavailable => "unavailable",
        }
    }

    fn uuid_bytes(id: &str) -> [u8; 16] {
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn sale(id: &str, qty: &str) -> String {
        scalar(&format!(
            "SELECT atomic_inventory.decrement_inventory('{id}', {qty})::text"
        ))
    }

    /// A BEFORE UPDATE trigger that changes nothing: the table is no longer
    /// plain, so sales run the SQL statement (and fire it).
    fn noop_trigger() {
        Spi::run(
            "CREATE OR REPLACE FUNCTION public.count_updates() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN PERFORM pg_catalog.set_config('test.updates',
                     (coalesce(nullif(current_setting('test.updates', true), ''), '0')::int + 1)::text, true);
                   RETURN NEW; END $f$",
        )
        .unwrap();
        Spi::run(
            "CREATE TRIGGER count_updates BEFORE UPDATE ON atomic_inventory.items \
             FOR EACH ROW EXECUTE FUNCTION public.count_updates()",
        )
        .unwrap();
    }

    #[pg_test]
    fn the_direct_sale_answers_as_the_statement_does() {
        items_to_ourselves();
        ledger_off();
        // (stock, sale): scales that differ, so the answers' texts do too
        let cases = [
            ("10", "1"),
            ("10", "1.5"),
            ("10.50", "1"),
            ("7.125", "0.125"),
            ("3", "3"),
        ];
        let ids: Vec<String> = (0..cases.len() * 2)
            .map(|n| format!("00000000-0000-0000-0000-0000000001{n:02}"))
            .collect();
        for (n, (stock, _)) in cases.iter().enumerate() {
            item(&ids[2 * n], stock);
            item(&ids[2 * n + 1], stock);
        }
        item(A, "100");
        assert_eq!(direct(A, "1"), "done");
        let direct_answers: Vec<String> = cases
            .iter()
            .enumerate()
            .map(|(n, (_, q))| sale(&ids[2 * n], q))
            .collect();
        noop_trigger();
        assert_eq!(direct(A, "1"), "unavailable");
        let statement_answers: Vec<String> = cases
            .iter()
            .enumerate()
            .map(|(n, (_, q))| sale(&ids[2 * n + 1], q))
            .collect();
        // the statement ran (and fired the trigger) for each of them
        assert_eq!(scalar("SELECT current_setting('test.updates')"), "5");
        for (n, (d, s)) in direct_answers.iter().zip(&statement_answers).enumerate() {
            assert_eq!(
                d.replace(&ids[2 * n], "ID"),
                s.replace(&ids[2 * n + 1], "ID"),
                "case {:?}",
                cases[n]
            );
            assert_eq!(quantity(&ids[2 * n]), quantity(&ids[2 * n + 1]));
        }
        assert_eq!(quantity(&ids[0]), "9");
        assert_eq!(ledger_rows(&ids[0]), 0, "the ledger is off");
    }

    #[pg_test]
    fn the_direct_sale_is_taken_only_on_a_plain_items_table() {
        items_to_ourselves();
        ledger_off();
        item(A, "100");
        // item_stripes and reservation_lines reference items: their foreign
        // key triggers act only on a changed key, the table stays plain
        assert_eq!(direct(A, "1"), "done");
        let changes = [
            (
                "CREATE TRIGGER t BEFORE UPDATE ON atomic_inventory.items FOR EACH ROW \
                 EXECUTE FUNCTION public.veto()",
                "DROP TRIGGER t ON atomic_inventory.items",
            ),
            (
                "CREATE TRIGGER t AFTER UPDATE ON atomic_inventory.items FOR EACH STATEMENT \
                 EXECUTE FUNCTION public.veto()",
                "DROP TRIGGER t ON atomic_inventory.items",
            ),
            (
                "CREATE RULE r AS ON UPDATE TO atomic_inventory.items DO ALSO NOTIFY items_changed",
                "DROP RULE r ON atomic_inventory.items",
            ),
            (
                "ALTER TABLE atomic_inventory.items ADD CONSTRAINT app_cap CHECK (quantity <= 1000)",
                "ALTER TABLE atomic_inventory.items DROP CONSTRAINT app_cap",
            ),
            (
                "ALTER TABLE atomic_inventory.items ADD COLUMN doubled numeric \
                 GENERATED ALWAYS AS (quantity * 2) STORED",
                "ALTER TABLE atomic_inventory.items DROP COLUMN doubled",
            ),
            (
                "ALTER TABLE atomic_inventory.items ALTER COLUMN reserved DROP NOT NULL",
                "ALTER TABLE atomic_inventory.items ALTER COLUMN reserved SET NOT NULL",
            ),
            (
                "ALTER TABLE atomic_inventory.items DROP CONSTRAINT items_stock_valid, \
                 ADD CONSTRAINT items_stock_valid CHECK (quantity >= 0)",
                "ALTER TABLE atomic_inventory.items DROP CONSTRAINT items_stock_valid, \
                 ADD CONSTRAINT items_stock_valid CHECK (atomic_inventory.stock_valid(quantity, reserved))",
            ),
            (
                "CREATE UNIQUE INDEX app_sku ON atomic_inventory.items (sku, id)",
                "",
            ),
            (
                "ALTER TABLE atomic_inventory.items ADD CONSTRAINT app_deferred UNIQUE (sku, name) \
                 DEFERRABLE INITIALLY DEFERRED",
                "ALTER TABLE atomic_inventory.items DROP CONSTRAINT app_deferred",
            ),
        ];
        Spi::run(
            "CREATE OR REPLACE FUNCTION public.veto() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN RETURN NULL; END $f$",
        )
        .unwrap();
        for (change, undo) in changes {
            Spi::run(change).unwrap();
            let expect = if undo.is_empty() {
                "done"
            } else {
                "unavailable"
            };
            assert_eq!(direct(A, "1"), expect, "after {change}");
            if !undo.is_empty() {
                Spi::run(undo).unwrap();
                assert_eq!(direct(A, "1"), "done", "after {undo}");
            }
        }
        // a child table: an UPDATE of items would update its rows too (the
        // flag stays until a VACUUM or ANALYZE of items clears it)
        Spi::run("CREATE TABLE public.items_child () INHERITS (atomic_inventory.items)").unwrap();
        assert_eq!(direct(A, "1"), "unavailable");
        Spi::run("DROP TABLE public.items_child").unwrap();
        // the fallback runs the statement, which does what the change asks
        veto_updates("atomic_inventory.items");
        let before = quantity(A);
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 1)"
        ));
        assert_eq!(state, "PT409", "the vetoed update changed nothing");
        assert_eq!(quantity(A), before);
        Spi::run("DROP TRIGGER veto ON atomic_inventory.items").unwrap();
        Spi::run(
            "ALTER TABLE atomic_inventory.items ADD CONSTRAINT app_floor CHECK (quantity >= 90)",
        )
        .unwrap();
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 50)"
        ));
        assert_eq!(state, "23514", "the app's CHECK holds");
        // published without a replica identity: refused, as UPDATE is
        Spi::run("ALTER TABLE atomic_inventory.items DROP CONSTRAINT app_floor").unwrap();
        Spi::run("CREATE PUBLICATION ai_direct_pub FOR TABLE atomic_inventory.items").unwrap();
        Spi::run("ALTER TABLE atomic_inventory.items REPLICA IDENTITY NOTHING").unwrap();
        let (state, msg, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 1)"
        ));
        assert_eq!(state, "55000", "{msg}");
        Spi::run("ALTER TABLE atomic_inventory.items REPLICA IDENTITY DEFAULT").unwrap();
        assert_eq!(
            call(&format!("atomic_inventory.decrement_inventory('{A}', 1)"))["success"],
            true
        );
        // a read-only transaction: the statement refuses, as UPDATE does
        Spi::run("SET LOCAL transaction_read_only = on").unwrap();
        assert_eq!(direct(A, "1"), "unavailable");
        let (state, _, _) = err(&format!(
            "SELECT atomic_inventory.decrement_inventory('{A}', 1)"
        ));
        assert_eq!(state, "25006");
    }

    #[pg_test]
    fn the_direct_sale_refuses_as_the_where_clause_does() {
        ledger_off();
        item(A, "5");
        item(B, "5");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET reserved = 3 WHERE id = '{A}'"
        ))
        .unwrap();
        // available 2 of 5: 3 is refused, 2 is sold
        assert_eq!(direct(A, "3"), "refused");
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 3)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(direct(A, "2"), "done");
        assert_eq!(quantity(A), "3");
        assert_eq!(direct(MISSING, "1"), "refused");
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        // untracked: sold by the slow path, quantity left alone
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{B}'"
        ))
        .unwrap();
        assert_eq!(direct(B, "1"), "refused");
        assert_eq!(
            call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"))["tracked"],
            false
        );
        assert_eq!(quantity(B), "5");
        // another tenant's row is not found
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
            call(&format!("atomic_inventory.decrement_inventory('{B}', 1)"))["new_quantity"],
            4
        );
    }

    #[pg_test]
    fn direct_sales_see_each_other_and_roll_back_with_a_subtransaction() {
        ledger_off();
        item(A, "10");
        // two sales in one statement: the second sees the first
        assert_eq!(
            scalar(&format!(
                "SELECT (atomic_inventory.decrement_inventory('{A}', 1)->>'new_quantity') || ',' || \
                        (atomic_inventory.decrement_inventory('{A}', 2)->>'new_quantity')"
            )),
            "9,7"
        );
        // a sale inside a block that fails is undone with the block's
        // subtransaction (seen from inside it first)
        Spi::run(&format!(
            "DO $$ BEGIN
               PERFORM atomic_inventory.decrement_inventory('{A}', 3);
               IF (SELECT quantity FROM atomic_inventory.items WHERE id = '{A}') <> 4 THEN
                 RAISE 'the sale is not visible inside the block';
               END IF;
               RAISE EXCEPTION USING ERRCODE = 'P0004';
             EXCEPTION WHEN assert_failure THEN NULL;
             END $$"
        ))
        .unwrap();
        assert_eq!(quantity(A), "7");
        assert_eq!(
            scalar(&format!(
                "SELECT (updated_at = now())::text FROM atomic_inventory.items WHERE id = '{A}'"
            )),
            "true"
        );
    }

    #[pg_test]
    fn a_direct_sale_that_is_not_hot_writes_its_index_entries() {
        items_to_ourselves();
        ledger_off();
        item(A, "10");
        // an index on updated_at: the sale changes an indexed column, so the
        // new row version needs entries in every index
        Spi::run("CREATE INDEX items_updated_at ON atomic_inventory.items (updated_at)").unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET updated_at = now() - interval '1 day' WHERE id = '{A}'"
        ))
        .unwrap();
        assert_eq!(direct(A, "1"), "done");
        Spi::run("SET LOCAL enable_seqscan = off").unwrap();
        Spi::run("SET LOCAL enable_bitmapscan = off").unwrap();
        // found through each index, at its new version
        for filter in [
            format!("id = '{A}'"),
            format!("sku = 'sku-{A}' AND tenant_id IS NULL"),
            format!("updated_at = now() AND id = '{A}'"),
        ] {
            assert_eq!(
                scalar(&format!(
                    "SELECT quantity::text FROM atomic_inventory.items WHERE {filter}"
                )),
                "9",
                "{filter}"
            );
        }
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.items \
                  WHERE updated_at < now() AND id = '{A}'"
            )),
            "0"
        );
    }
}
