//! `#[pg_test]`s of the protocols of ops/, one body each, run over both
//! sources: the extension's own items and an adopted table (an app's
//! `stock(id text, qty integer, held integer, sell boolean)`). What differs
//! between them (function names, the key argument and its name in the
//! answers) is the fixture's; what is checked is the same.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::Value;

    /// One source as the tests call it.
    struct Fixture {
        /// "own" or "bound"
        name: &'static str,
        /// the two items the bodies use: 10 units, 4 of them reserved; 5
        keys: [&'static str; 2],
        /// an untracked item with 3 units
        untracked: &'static str,
        /// a key no item has
        missing: &'static str,
    }

    const OWN: Fixture = Fixture {
        name: "own",
        keys: [
            "50000000-0000-0000-0000-000000000001",
            "50000000-0000-0000-0000-000000000002",
        ],
        untracked: "50000000-0000-0000-0000-000000000003",
        missing: "50000000-0000-0000-0000-0000000000ff",
    };

    const BOUND: Fixture = Fixture {
        name: "bound",
        keys: ["a-1", "a-2"],
        untracked: "a-3",
        missing: "a-missing",
    };

    impl Fixture {
        /// The items, as each source keeps them.
        fn setup(&self) {
            let [k1, k2] = self.keys;
            let u = self.untracked;
            if self.name == "own" {
                Spi::run(&format!(
                    "INSERT INTO atomic_inventory.items (id, sku, quantity, reserved, track_inventory)
                     VALUES ('{k1}', 'src-1', 10, 4, true), ('{k2}', 'src-2', 5, 0, true),
                            ('{u}', 'src-3', 3, 0, false)"
                ))
                .unwrap();
            } else {
                Spi::run(
                    "CREATE TABLE public.src_stock (id text PRIMARY KEY,
                       qty integer NOT NULL CHECK (qty >= 0), held integer NOT NULL DEFAULT 0,
                       sell boolean)",
                )
                .unwrap();
                Spi::run(&format!(
                    "INSERT INTO public.src_stock VALUES ('{k1}', 10, 4, true), ('{k2}', 5, 0, true),
                            ('{u}', 3, 0, false)"
                ))
                .unwrap();
                call(
                    "atomic_inventory.bind_stock_source('src', 'public.src_stock', 'id', 'qty',
                       p_reserved_column => 'held', p_track_column => 'sell')",
                );
            }
        }

        /// The table that holds the rows (for the app's own triggers).
        fn table(&self) -> &'static str {
            if self.name == "own" {
                "atomic_inventory.items"
            } else {
                "public.src_stock"
            }
        }

        /// The name answers give a line's item.
        fn key_field(&self) -> &'static str {
            if self.name == "own" {
                "inventory_id"
            } else {
                "item_id"
            }
        }

        /// `function(key, rest)` as this source spells it.
        fn one(&self, function: &str, key: &str, rest: &str) -> String {
            if self.name == "own" {
                format!("atomic_inventory.{function}_inventory('{key}'{rest})")
            } else {
                format!("atomic_inventory.bound_{function}('src', '{key}'{rest})")
            }
        }

        fn sale(&self, key: &str, qty: &str) -> String {
            self.one("decrement", key, &format!(", {qty}"))
        }

        fn restock(&self, key: &str, qty: &str) -> String {
            self.one("increment", key, &format!(", {qty}"))
        }

        fn adjust(&self, key: &str, rest: &str) -> String {
            self.one("adjust", key, rest)
        }

        /// The JSON lines of a many-line call.
        fn lines(&self, lines: &[(&str, &str)]) -> String {
            let field = self.key_field();
            let parts: Vec<String> = lines
                .iter()
                .map(|(k, q)| format!("{{\"{field}\": \"{k}\", \"quantity\": {q}}}"))
                .collect();
            format!("'[{}]'", parts.join(", "))
        }

        fn sale_many(&self, lines: &[(&str, &str)]) -> String {
            if self.name == "own" {
                format!(
                    "atomic_inventory.decrement_inventory_many({})",
                    self.lines(lines)
                )
            } else {
                format!(
                    "atomic_inventory.bound_decrement_many('src', {})",
                    self.lines(lines)
                )
            }
        }

        fn reserve(&self, lines: &[(&str, &str)]) -> String {
            if self.name == "own" {
                format!("atomic_inventory.reserve_inventory({})", self.lines(lines))
            } else {
                format!(
                    "atomic_inventory.bound_reserve('src', {})",
                    self.lines(lines)
                )
            }
        }

        /// commit or release of reservation `id`, of the lines `only` names
        fn finish(&self, how: &str, id: &str, only: Option<&[&str]>) -> String {
            let only = only
                .map(|keys| {
                    let quoted: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
                    if self.name == "own" {
                        format!(", ARRAY[{}]::uuid[]", quoted.join(", "))
                    } else {
                        format!(", ARRAY[{}]", quoted.join(", "))
                    }
                })
                .unwrap_or_default();
            if self.name == "own" {
                format!("atomic_inventory.{how}_reservation('{id}'{only})")
            } else {
                format!("atomic_inventory.bound_{how}_reservation('{id}'{only})")
            }
        }

        /// quantity/reserved of a row
        fn state(&self, key: &str) -> String {
            if self.name == "own" {
                scalar(&format!(
                    "SELECT quantity::text || '/' || reserved::text FROM atomic_inventory.items WHERE id = '{key}'"
                ))
            } else {
                scalar(&format!(
                    "SELECT qty::text || '/' || held::text FROM public.src_stock WHERE id = '{key}'"
                ))
            }
        }

        /// The sum of the ledger's deltas for a row (its movements here).
        fn ledger(&self, key: &str) -> String {
            let filter = if self.name == "own" {
                format!("inventory_id = '{key}' AND kind <> 'initial'")
            } else {
                format!("source = 'src' AND item_key = '{key}' AND kind <> 'initial'")
            };
            scalar(&format!(
                "SELECT coalesce(sum(delta), 0)::text FROM atomic_inventory.ledger WHERE {filter}"
            ))
        }
    }

    fn both(body: impl Fn(&Fixture)) {
        for f in [&OWN, &BOUND] {
            f.setup();
            body(f);
        }
    }

    fn num(v: &Value) -> String {
        v.to_string()
    }

    #[pg_test]
    fn a_sale_takes_available_units_and_refuses_past_them() {
        both(|f| {
            let [k1, _] = f.keys;
            let done = call(&f.sale(k1, "6"));
            assert_eq!(done["success"], true, "{}", f.name);
            assert_eq!(num(&done["old_quantity"]), "10", "{}", f.name);
            assert_eq!(num(&done["new_quantity"]), "4", "{}", f.name);
            assert_eq!(f.state(k1), "4/4", "{}", f.name);
            // 4 on hand, all 4 reserved: nothing available
            let (_, d) = assert_err(
                &format!("SELECT {}", f.sale(k1, "1")),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            assert_eq!(d["lines"][0]["available"], "0", "{}", f.name);
            assert_eq!(
                f.state(k1),
                "4/4",
                "{}: the refusal changed nothing",
                f.name
            );
            assert_err(
                &format!("SELECT {}", f.sale(f.missing, "1")),
                "PT404",
                "NOT_FOUND",
            );
            assert_eq!(f.ledger(k1), "-6", "{}: one ledger row", f.name);
        });
    }

    #[pg_test]
    fn an_untracked_item_sells_without_a_check_and_keeps_its_quantity() {
        both(|f| {
            let done = call(&f.sale(f.untracked, "50"));
            assert_eq!(done["tracked"], false, "{}", f.name);
            assert_eq!(done["deducted"], 0, "{}", f.name);
            assert_eq!(f.state(f.untracked), "3/0", "{}", f.name);
            let many = call(&f.sale_many(&[(f.untracked, "7"), (f.keys[1], "1")]));
            assert_eq!(many["success"], true, "{}", f.name);
            assert_eq!(f.state(f.untracked), "3/0", "{}", f.name);
            assert_eq!(f.state(f.keys[1]), "4/0", "{}", f.name);
        });
    }

    #[pg_test]
    fn a_restock_adds_and_writes_its_ledger_row() {
        both(|f| {
            let [_, k2] = f.keys;
            let done = call(&f.restock(k2, "7"));
            assert_eq!(num(&done["old_quantity"]), "5", "{}", f.name);
            assert_eq!(num(&done["new_quantity"]), "12", "{}", f.name);
            assert_eq!(num(&done["added"]), "7", "{}", f.name);
            assert_eq!(f.ledger(k2), "7", "{}", f.name);
            assert_err(
                &format!("SELECT {}", f.restock(f.missing, "1")),
                "PT404",
                "NOT_FOUND",
            );
        });
    }

    #[pg_test]
    fn adjust_compares_and_sets_never_below_reserved() {
        both(|f| {
            let [k1, _] = f.keys;
            assert_err(
                &format!("SELECT {}", f.adjust(k1, ", 20, p_expected_quantity => 9")),
                "PT409",
                "QUANTITY_MISMATCH",
            );
            assert_err(
                &format!("SELECT {}", f.adjust(k1, ", 3, p_expected_quantity => 10")),
                "PT409",
                "BELOW_RESERVED",
            );
            assert_eq!(f.state(k1), "10/4", "{}", f.name);
            let done = call(&f.adjust(k1, ", 20, p_expected_quantity => 10"));
            assert_eq!(num(&done["delta"]), "10", "{}", f.name);
            assert_eq!(f.state(k1), "20/4", "{}", f.name);
            assert_eq!(f.ledger(k1), "10", "{}", f.name);
        });
    }

    #[pg_test]
    fn many_lines_sell_all_or_nothing() {
        both(|f| {
            let [k1, k2] = f.keys;
            // one line missing: NOT_FOUND naming it, nothing sold
            let (_, d) = assert_err(
                &format!("SELECT {}", f.sale_many(&[(k1, "1"), (f.missing, "1")])),
                "PT404",
                "NOT_FOUND",
            );
            assert_eq!(d["ids"][0], f.missing, "{}", f.name);
            // one line short: INSUFFICIENT_INVENTORY, nothing sold
            assert_err(
                &format!("SELECT {}", f.sale_many(&[(k1, "1"), (k2, "6")])),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            assert_eq!(f.state(k1), "10/4", "{}", f.name);
            assert_eq!(f.state(k2), "5/0", "{}", f.name);
            // a repeated item counts once, with its quantities added
            let done = call(&f.sale_many(&[(k2, "2"), (k1, "3"), (k2, "1")]));
            assert_eq!(done["lines"].as_array().unwrap().len(), 2, "{}", f.name);
            assert_eq!(f.state(k1), "7/4", "{}", f.name);
            assert_eq!(f.state(k2), "2/0", "{}", f.name);
            assert_eq!(f.ledger(k2), "-3", "{}", f.name);
        });
    }

    #[pg_test]
    fn reserved_units_follow_holds_commits_and_releases_exactly() {
        both(|f| {
            let [k1, k2] = f.keys;
            // 6 of k1 are free (10 - 4)
            assert_err(
                &format!("SELECT {}", f.reserve(&[(k1, "7")])),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            let r = call(&f.reserve(&[(k1, "6"), (k2, "2")]));
            let id = r["reservation_id"].as_str().unwrap().to_string();
            assert_eq!(f.state(k1), "10/10", "{}", f.name);
            assert_eq!(f.state(k2), "5/2", "{}", f.name);
            // nothing left to sell of k1
            assert_err(
                &format!("SELECT {}", f.sale(k1, "1")),
                "PT409",
                "INSUFFICIENT_INVENTORY",
            );
            // commit one line: sold from the hold
            let done = call(&f.finish("commit", &id, Some(&[k1])));
            assert_eq!(done["status"], "active", "{}: a line is still held", f.name);
            assert_eq!(f.state(k1), "4/4", "{}", f.name);
            assert_eq!(f.ledger(k1), "-6", "{}", f.name);
            // the committed line can't be finished again
            assert_err(
                &format!("SELECT {}", f.finish("release", &id, Some(&[k1]))),
                "PT409",
                "LINE_NOT_ACTIVE",
            );
            // release the rest: given back exactly
            let done = call(&f.finish("release", &id, None));
            assert_eq!(done["status"], "committed", "{}", f.name);
            assert_eq!(f.state(k2), "5/0", "{}", f.name);
            assert_eq!(
                f.ledger(k2),
                "0",
                "{}: a release writes no ledger row",
                f.name
            );
            assert_err(
                &format!("SELECT {}", f.finish("release", &id, None)),
                "PT409",
                "RESERVATION_NOT_ACTIVE",
            );
        });
    }

    /// A row the call holds locked and found ready, whose write the
    /// table's own trigger skips: refused as such (INVALID_INPUT), never
    /// a success, a shortage or INTERNAL, with nothing changed, for the
    /// extension's items as for an adopted table.
    #[pg_test]
    fn a_skipped_write_is_refused_on_either_source() {
        Spi::run("LOCK TABLE atomic_inventory.items IN ACCESS EXCLUSIVE MODE").unwrap();
        both(|f| {
            let [k1, k2] = f.keys;
            veto_updates(f.table());
            for sql in [
                f.sale(k1, "1"),
                f.restock(k2, "1"),
                f.adjust(k1, ", 20, p_expected_quantity => 10"),
                f.sale_many(&[(k1, "1"), (k2, "1")]),
                f.reserve(&[(k2, "1")]),
            ] {
                let (state, msg, d) = err(&format!("SELECT {sql}"));
                assert_eq!(state, "22023", "{}: {sql}: {msg}", f.name);
                assert!(
                    msg.contains("skipped the write"),
                    "{}: {sql}: {msg}",
                    f.name
                );
                assert_eq!(d["code"], "INVALID_INPUT", "{}: {sql}", f.name);
            }
            assert_eq!(f.state(k1), "10/4", "{}", f.name);
            assert_eq!(f.state(k2), "5/0", "{}", f.name);
            Spi::run(&format!("DROP TRIGGER veto ON {}", f.table())).unwrap();
        });
    }

    /// A commit or release whose write of the reservation's row a trigger
    /// skips: refused (INVALID_INPUT), never a success or INTERNAL, with
    /// the lines still active and the stock unchanged, on either source,
    /// for a one-line reservation, a two-line one, one line of it and a
    /// partial commit.
    #[pg_test]
    fn a_skipped_write_of_a_reservation_is_refused_on_either_source() {
        both(|f| {
            let [k1, k2] = f.keys;
            let one = call(&f.reserve(&[(k2, "1")]))["reservation_id"]
                .as_str()
                .unwrap()
                .to_string();
            let two = call(&f.reserve(&[(k1, "1"), (k2, "1")]))["reservation_id"]
                .as_str()
                .unwrap()
                .to_string();
            veto_updates("atomic_inventory.reservations");
            let parts = if f.name == "own" {
                format!(
                    "atomic_inventory.commit_reservation('{two}', p_lines => {})",
                    f.lines(&[(k1, "1")])
                )
            } else {
                format!(
                    "atomic_inventory.bound_commit_reservation('{two}', p_lines => {})",
                    f.lines(&[(k1, "1")])
                )
            };
            for sql in [
                f.finish("commit", &one, None),
                f.finish("release", &one, None),
                f.finish("commit", &two, None),
                f.finish("release", &two, None),
                f.finish("commit", &two, Some(&[k1])),
                parts.clone(),
            ] {
                let (state, msg, d) = err(&format!("SELECT {sql}"));
                assert_eq!(state, "22023", "{}: {sql}: {msg}", f.name);
                assert!(msg.contains("skipped"), "{}: {sql}: {msg}", f.name);
                assert_eq!(d["code"], "INVALID_INPUT", "{}: {sql}", f.name);
            }
            Spi::run("DROP TRIGGER veto ON atomic_inventory.reservations").unwrap();
            // a line's write skipped in a partial commit: the same
            let lines = if f.name == "own" {
                "atomic_inventory.reservation_lines"
            } else {
                "atomic_inventory.bound_reservation_lines"
            };
            veto_updates(lines);
            let (state, msg, d) = err(&format!("SELECT {parts}"));
            assert_eq!(state, "22023", "{}: {parts}: {msg}", f.name);
            assert!(msg.contains("skipped"), "{}: {parts}: {msg}", f.name);
            assert_eq!(d["field"], "p_lines", "{}: {parts}", f.name);
            Spi::run(&format!("DROP TRIGGER veto ON {lines}")).unwrap();
            assert_eq!(f.state(k1), "10/5", "{}", f.name);
            assert_eq!(f.state(k2), "5/2", "{}", f.name);
            for rid in [&one, &two] {
                call(&f.finish("release", rid, None));
            }
            assert_eq!(f.state(k1), "10/4", "{}", f.name);
            assert_eq!(f.state(k2), "5/0", "{}", f.name);
        });
    }

    #[pg_test]
    fn an_idempotency_key_applies_once() {
        both(|f| {
            let [_, k2] = f.keys;
            let key = format!("src-key-{}", f.name);
            let sale = f.one(
                "decrement",
                k2,
                &format!(", 2, p_idempotency_key => '{key}'"),
            );
            let first = call(&sale);
            let again = call(&sale);
            assert_eq!(first, again, "{}", f.name);
            assert_eq!(f.state(k2), "3/0", "{}", f.name);
            let other = f.one(
                "decrement",
                k2,
                &format!(", 1, p_idempotency_key => '{key}'"),
            );
            assert_err(&format!("SELECT {other}"), "PT422", "IDEMPOTENCY_CONFLICT");
        });
    }
}
